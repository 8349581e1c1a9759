package postgres

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// TestPositionNoticesRoundTrip: every field of a position, present or absent, and ids made of
// the bytes the format escapes, come back from the notices exactly; the positions are split
// over notices that each stay within the bound, in order; and a node skips its own notices.
func TestPositionNoticesRoundTrip(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	eta := int64(420)
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	us := []ordercast.LocationUpdate{
		{OrderID: "o-1", CourierID: "c-1", Lat: 52.520008, Lng: 13.404954, At: at},
		{OrderID: "o-2", CourierID: "c-2", Lat: -33.8688, Lng: 151.2093, At: at.Add(time.Nanosecond),
			AccuracyM: f(4.5), Heading: f(359.9), SpeedMPS: f(0), DistanceM: f(1234.56789), ETAS: &eta, Nearby: true,
			Parties: []string{"restaurant:r-1", "customer:u-1", "courier:c-2"}, OrderVersion: 1 << 40},
		{OrderID: "o%\t\n,\x00é", CourierID: "%41", Lat: 1e-9, Lng: -180, At: time.Unix(0, 0).UTC(),
			Parties: []string{"restaurant:a,b", "customer:%", ""}},
		{OrderID: "", CourierID: "", Lat: 90, Lng: 180, At: at},
	}
	for i := range 40 { // enough to need several notices of the bound below
		us = append(us, ordercast.LocationUpdate{OrderID: strings.Repeat("x", i), CourierID: "c", Lat: float64(i) / 7, Lng: 2, At: at})
	}
	const max = 500
	p := newPositionPacker("node-a", max)
	for _, u := range us {
		if err := p.add(u); err != nil {
			t.Fatal(err)
		}
	}
	notices := p.done()
	if len(notices) < 2 {
		t.Fatalf("%d positions in %d notice, want them split", len(us), len(notices))
	}
	var got []ordercast.LocationUpdate
	for i, n := range notices {
		if len(n) > max || strings.IndexByte(n, 0) >= 0 {
			t.Fatalf("notice %d is %d bytes (bound %d), NUL at %d", i, len(n), max, strings.IndexByte(n, 0))
		}
		if own, err := decodePositions(n, "node-a"); err != nil || own != nil {
			t.Fatalf("the sending node read its own notice %d: %v, %v; want nothing", i, own, err)
		}
		ps, err := decodePositions(n, "node-b")
		if err != nil {
			t.Fatalf("notice %d: %v", i, err)
		}
		got = append(got, ps...)
	}
	for i := range us {
		us[i].Type = ordercast.LocationType
	}
	if len(got) != len(us) {
		t.Fatalf("read %d positions, want %d", len(got), len(us))
	}
	for i := range us {
		if !reflect.DeepEqual(got[i], us[i]) {
			t.Errorf("position %d came back as\n%+v\nwant\n%+v", i, got[i], us[i])
		}
	}
}

// TestPositionNoticesRefuseWhatTheyCannotRead: a notice of another version, a line with fields
// missing or too many, a number or an escape that does not parse: an error, never a position.
func TestPositionNoticesRefuseWhatTheyCannotRead(t *testing.T) {
	good := "o\tc\t1\t2\t3\t\t\t\t\t\t\t\t7"
	if us, err := decodePositions("2 n\n"+good, "me"); err != nil || len(us) != 1 || us[0].OrderVersion != 7 {
		t.Fatalf("the well-formed line: %+v, %v; want one position of order version 7", us, err)
	}
	for name, payload := range map[string]string{
		"json of an older node": `[{"u":{"order_id":"o"}}]`,
		"another version":       "3 n\n" + good,
		"no header":             good,
		"a field missing":       "2 n\n" + strings.TrimSuffix(good, "\t7"),
		"a field too many":      "2 n\n" + good + "\t",
		"version 1, 13 fields":  "1 n\n" + good,
		"latitude":              "2 n\n" + strings.Replace(good, "\t1\t", "\tone\t", 1),
		"time":                  "2 n\n" + strings.Replace(good, "\t3\t", "\t3.5\t", 1),
		"eta":                   "2 n\n" + "o\tc\t1\t2\t3\t\t\t\t\tsoon\t\t\t",
		"order version":         "2 n\n" + strings.TrimSuffix(good, "7") + "v7",
		"escape":                "2 n\n" + "o%4\tc\t1\t2\t3\t\t\t\t\t\t\t\t",
		"escape not hex":        "2 n\n" + "o%zz\tc\t1\t2\t3\t\t\t\t\t\t\t\t",
	} {
		if us, err := decodePositions(payload, "me"); err == nil {
			t.Errorf("%s: read %+v, want an error", name, us)
		}
	}
}

// A notice of version 1 (2026-12-01, before lines carried the order's version), as a node of
// that version sends it during a rolling upgrade, is read as positions of unknown version.
func TestPositionNoticesReadVersion1(t *testing.T) {
	us, err := decodePositions("1 n\no\tc\t1\t2\t3\t\t\t\t\t\t\tcourier:c", "me")
	if err != nil {
		t.Fatal(err)
	}
	want := ordercast.LocationUpdate{Type: ordercast.LocationType, OrderID: "o", CourierID: "c", Lat: 1, Lng: 2,
		At: time.Unix(0, 3).UTC(), Parties: []string{"courier:c"}}
	if len(us) != 1 || !reflect.DeepEqual(us[0], want) {
		t.Fatalf("read %+v, want %+v", us, want)
	}
}

// A position too large for a notice even alone is refused, not sent cut.
func TestPositionTooLargeForANotice(t *testing.T) {
	p := newPositionPacker("n", 100)
	if err := p.add(ordercast.LocationUpdate{OrderID: strings.Repeat("o", 100), At: time.Now()}); err == nil {
		t.Fatal("a position over the bound was taken")
	}
}

// FuzzPositionNotice: whatever a notice holds, reading it never panics, and what it reads is
// written back to a notice that reads the same.
func FuzzPositionNotice(f *testing.F) {
	f.Add("1 n\no\tc\t1\t2\t3\t4\t5\t6\t7\t8\t1\tr:1,c:%2C")
	f.Add("2 n\no\tc\t1\t2\t3\t4\t5\t6\t7\t8\t1\tr:1,c:%2C\t9")
	f.Add("1 n\n%00\t\t-0\t1e308\t-1\t\t\t\t\t\t\t")
	f.Fuzz(func(t *testing.T, payload string) {
		us, err := decodePositions(payload, "")
		if err != nil {
			return
		}
		p := newPositionPacker("n", 1<<20)
		for _, u := range us {
			if err := p.add(u); err != nil {
				t.Fatal(err)
			}
		}
		var again []ordercast.LocationUpdate
		for _, n := range p.done() {
			ps, err := decodePositions(n, "")
			if err != nil {
				t.Fatalf("rewritten notice %q: %v", n, err)
			}
			again = append(again, ps...)
		}
		if len(again) != len(us) {
			t.Fatalf("read %d positions, then %d from the rewritten notice", len(us), len(again))
		}
		for i := range us {
			if !reflect.DeepEqual(us[i], again[i]) && !(us[i].Lat != us[i].Lat || us[i].Lng != us[i].Lng) {
				t.Fatalf("position %d: %+v, then %+v", i, us[i], again[i])
			}
		}
	})
}
