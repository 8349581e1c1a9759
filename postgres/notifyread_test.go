package postgres

import (
	"reflect"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// variedEvents are events of every kind and shape a batch holds: every status, courier events
// that assign (with and without a name) and unassign, empty and full optional fields, and text
// that json.Marshal escapes (quotes, backslashes, controls, <>&, U+2028/9), other Unicode, and
// invalid UTF-8, which it writes as U+FFFD.
func variedEvents() []ordercast.Event {
	at := time.Date(2026, 12, 1, 19, 30, 0, 123456000, time.UTC)
	marks := ordercast.Marks("").With("restaurant:r-1", 48211).With("customer:u-9", 17)
	evs := []ordercast.Event{
		{OrderID: "a", Seq: 1, Status: ordercast.StatusPlaced, At: at},
		{OrderID: "ord-0123456789abcdef01234567", Seq: 2, Status: ordercast.StatusConfirmed, At: at, Actor: "restaurant:r-1", Marks: marks},
		{OrderID: "a", Seq: 3, Kind: ordercast.KindCourier, Status: ordercast.StatusReady, CourierID: "c-7", At: at,
			Marks: marks.With("courier:c-7", 3)},
		{OrderID: "a", Seq: 4, Kind: ordercast.KindCourier, Status: ordercast.StatusReady, CourierID: "c-7", CourierName: "Zoë Ødegård 山田", At: at},
		{OrderID: "a", Seq: 5, Kind: ordercast.KindCourier, Status: ordercast.StatusReady, At: at, Actor: "admin:x"}, // unassigned
		{OrderID: "b", Seq: 9, Status: ordercast.StatusCancelled, At: at, Note: `say "hi" \ back\slash / <b>&amp;</b>`},
		{OrderID: "b", Seq: 10, Status: ordercast.StatusDelivered, At: at, Note: "tab\tnl\ncr\r bs\b ff\f nul\x00 us\x1f del\x7f \u2028\u2029 😀 é"},
		{OrderID: "c", Seq: 1 << 62, Status: ordercast.StatusOutForDelivery, At: time.UnixMicro(-1).UTC(), Note: "bad \xff\xfe utf-8 \xed\xa0\x80 \uFFFD"},
		{OrderID: "c\"q\\", Seq: 2, Status: ordercast.StatusPreparing, At: time.Unix(0, 0).UTC(), Actor: "courier:c-7", Marks: "customer:u=1"},
		{OrderID: "d", Seq: 3, Status: "a status of a later version", At: at, Note: "n"},
		{OrderID: "e", Seq: 4, Status: ordercast.StatusReady, At: at, CourierName: "only a name"},
	}
	for _, s := range ordercast.Statuses {
		evs = append(evs, ordercast.Event{OrderID: "s-" + string(s), Seq: 7, Status: s, At: at, Actor: string(s)})
	}
	return evs
}

// assertAsJSON checks that parseNotification gives for payload what encoding/json gives, and
// that readNotices, when it takes payload, reads what encoding/json reads. It returns whether
// readNotices took it.
func assertAsJSON(t testing.TB, payload string) (took bool) {
	t.Helper()
	want, wantErr := parseNotificationJSON(payload)
	got, err := parseNotification(payload)
	if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("parseNotification(%q)\n = %#v, %v\n encoding/json: %#v, %v", payload, got, err, want, wantErr)
	}
	read, took := readNotices(payload)
	switch {
	case !took:
	case wantErr == nil && !reflect.DeepEqual(read, want):
		t.Fatalf("readNotices(%q)\n = %#v\n encoding/json: %#v", payload, read, want)
	case wantErr != nil && !anyInvalid(read):
		t.Fatalf("readNotices(%q) read %#v, all valid; encoding/json: %v", payload, read, wantErr)
	}
	return took
}

func anyInvalid(evs []ordercast.Event) bool {
	for _, ev := range evs {
		if validNotice(ev) != nil {
			return true
		}
	}
	return false
}

// writtenPayloads are the payloads notifyPayloads writes for batches of evs, whole, split, and
// with events in their short form.
func writtenPayloads(t testing.TB, evs []ordercast.Event) []string {
	t.Helper()
	var all []string
	for _, max := range []int{DefaultMaxNotifyPayload, 600, MinNotifyPayload} {
		payloads, err := notifyPayloads(evs, max)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, payloads...)
		for _, ev := range evs { // each alone too, and its short forms
			for _, short := range []ordercast.Event{ev, {OrderID: ev.OrderID, Seq: ev.Seq}, {OrderID: ev.OrderID, Seq: ev.Seq, Marks: ev.Marks}} {
				enc, err := shortNotice(short)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, "["+string(enc)+"]")
			}
		}
	}
	return all
}

// TestReadNotices_WhatTheWriterWrites: every payload notifyPayloads writes is read by hand, to
// what encoding/json reads from it.
func TestReadNotices_WhatTheWriterWrites(t *testing.T) {
	payloads := writtenPayloads(t, append(variedEvents(), benchEvents(64)...))
	for _, p := range payloads {
		if !assertAsJSON(t, p) {
			t.Errorf("readNotices left %q to encoding/json", p)
		}
	}
	// Spot checks against the events themselves, not only against encoding/json.
	evs := variedEvents()
	payloads, err := notifyPayloads(evs, DefaultMaxNotifyPayload)
	if err != nil || len(payloads) != 1 {
		t.Fatalf("%d payloads, %v", len(payloads), err)
	}
	got, ok := readNotices(payloads[0])
	if !ok || len(got) != len(evs) {
		t.Fatalf("readNotices: %d events, %v; want %d", len(got), ok, len(evs))
	}
	for i, want := range evs {
		if i == 7 { // invalid UTF-8 comes back as U+FFFD, as json.Marshal wrote it
			want.Note = "bad \uFFFD\uFFFD utf-8 \uFFFD\uFFFD\uFFFD \uFFFD"
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("event %d:\n got  %#v\n want %#v", i, got[i], want)
		}
	}
}

// TestReadNotices_OtherForms: what json.Marshal does not write, but encoding/json reads or
// refuses, is read exactly as encoding/json does; readNotices takes what it can and leaves the
// rest (took says which, so that a change of what it takes is seen).
func TestReadNotices_OtherForms(t *testing.T) {
	tests := []struct {
		payload string
		took    bool
	}{
		{`[]`, true},
		{`[["a",1]]`, true},
		{`[["a",1,"m=1"]]`, true},
		{`[["a",1,"placed",0]]`, true},
		{`[["a",-0,"placed",-1]]`, true}, // valid JSON; an invalid seq
		{`[["a",9223372036854775807,"ready",-9223372036854775808,"","","","","",""]]`, true},
		{`[["\u0061\u00e9\u2028\uFFFF\/\"\\\b\f\n\r\t",2,"\u0072eady",1]]`, true},
		{`[["\u00E9",2,"ready",1,"\uABCD"]]`, true},
		{`[["a",2],["b",3,"m=1"],["c",4,"placed",5,"n"]]`, true},
		{`[["a",0]]`, true}, // read, then refused as a notice
		{`[["",1]]`, true},
		{`[["a",2,"confirmed",1796079600500000,"n","restaurant:r","","",null,"",{"a later field":true},42]]`, false},
		{`[["a",2,"ready",1,"","","","","","","later"]]`, false},
		{`[["a",2,"ready",1,"","","","","","",1.5]]`, false},
		{`[["a",2,null,1]]`, false},
		{`[[null,2]]`, false},
		{`[["a",null]]`, false},
		{` [["a",1]]`, false},
		{`[["a",1]] `, false},
		{"[\n[ \"a\" , 1 ]\t]", false},
		{`[["\ud83d\ude00",1]]`, false}, // a surrogate pair: 😀
		{`[["\ud83d",1]]`, false},       // a lone surrogate: U+FFFD
		{`[["\udc00\ud83d",1]]`, false},
		{`[["\ud83d\u0041",1]]`, false},
		{"[[\"\xff\",1]]", false},
		{"[[\"\xed\xa0\x80\",1]]", false},
		{"[[\"\xe2\x82\",1]]", false},
		{`{"order_id":"a","seq":2,"status":"confirmed","at":"2026-11-30T23:00:00.5Z","note":"n"}`, false},
		{`{"order_id":"a","seq":0}`, false},
		{`null`, false},
		{`[null]`, false},
		{`[[]]`, false},
		{`[["a"]]`, false},
		{`[[1,2]]`, false},
		{`[["a","1"]]`, false},
		{`[["a",1.0]]`, false},
		{`[["a",1e3]]`, false},
		{`[["a",01]]`, false},
		{`[["a",-]]`, false},
		{`[["a",--1]]`, false},
		{`[["a",+1]]`, false},
		{`[["a",9223372036854775808]]`, false},
		{`[["a",1,2]]`, false},
		{`[["a",1,"placed","1"]]`, false},
		{`[["a",1,"placed",1,2]]`, false},
		{`[["a",1,"placed",1,true]]`, false},
		{`[["a",1,"placed",1,[]]]`, false},
		{`[["a",1,"placed",1,{}]]`, false},
		{``, false},
		{`[`, false},
		{`]`, false},
		{`[[`, false},
		{`[["a",1]`, false},
		{`[["a",1]]]`, false},
		{`[["a",1]],`, false},
		{`[["a",1],]`, false},
		{`[["a",1,]]`, false},
		{`[,["a",1]]`, false},
		{`[["a",1]["b",2]]`, false},
		{`[["a" 1]]`, false},
		{`[["a",1]]x`, false},
		{`[["a\`, false},
		{`[["a\"`, false},
		{`[["a\x",1]]`, false},
		{`[["a\u12",1]]`, false},
		{`[["a\u12g4",1]]`, false},
		{`[["a\u`, false},
		{"[[\"a\nb\",1]]", false},
		{"[[\"a\x00\",1]]", false},
		{`[["a",1`, false},
		{`[["a",`, false},
		{`["a",1]`, false},
		{`[1]`, false},
		{`"a"`, false},
		{`{`, false},
	}
	for _, tt := range tests {
		if took := assertAsJSON(t, tt.payload); took != tt.took {
			t.Errorf("readNotices took %q: %v, want %v", tt.payload, took, tt.took)
		}
	}
}

// TestParseNotification_EveryPrefix: every prefix of a written payload, and the payload with
// each byte changed, is read as encoding/json reads it (an error for nearly all), never with a
// panic.
func TestParseNotification_EveryPrefix(t *testing.T) {
	payloads, err := notifyPayloads(variedEvents(), DefaultMaxNotifyPayload)
	if err != nil {
		t.Fatal(err)
	}
	p := payloads[0]
	for i := range len(p) {
		assertAsJSON(t, p[:i])
		for _, c := range []byte{'"', '\\', ',', ']', '[', '0', 'u', 0xff} {
			assertAsJSON(t, p[:i]+string(c)+p[i+1:])
		}
	}
}

// FuzzParseNotification: whatever the payload, parseNotification reads what encoding/json reads,
// and fails where it fails: go test -run '^$' -fuzz FuzzParseNotification ./postgres
func FuzzParseNotification(f *testing.F) {
	for _, p := range writtenPayloads(f, variedEvents()) {
		f.Add(p)
	}
	for _, p := range []string{
		`[["a",2,"confirmed",1796079600500000,"n","restaurant:r","","",null,"",{"a later field":true},42]]`,
		`[["\ud83d\ude00",1]]`, `[["\ud83d",1]]`, "[[\"\xff\",1]]", ` [ ["a" , 1 ] ] `, `[["a",1.0]]`, `[["a",01]]`,
		`{"order_id":"a","seq":2,"status":"confirmed","at":"2026-11-30T23:00:00.5Z","note":"n"}`, `null`, `[]`, `[[]]`,
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		assertAsJSON(t, payload)
	})
}

// TestVariedEventsCoverEveryField: a comparison with encoding/json proves nothing of a field the
// events all leave empty.
func TestVariedEventsCoverEveryField(t *testing.T) {
	var seen [10]bool
	for _, ev := range variedEvents() {
		for i, set := range []bool{ev.OrderID != "", ev.Seq != 0, ev.Status != "", !ev.At.IsZero(), ev.Note != "", ev.Actor != "",
			ev.Kind != "", ev.CourierID != "", ev.Marks != "", ev.CourierName != ""} {
			seen[i] = seen[i] || set
		}
	}
	if seen != [10]bool{true, true, true, true, true, true, true, true, true, true} {
		t.Errorf("fields set by some event: %v", seen)
	}
}
