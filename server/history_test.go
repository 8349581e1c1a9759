package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
)

// TestOrderHistoryIsBounded is the denial of service a security review found, end to end: a
// writer alternating two couriers on one order, with the longest notes, made its history grow
// without end, and every read of it (the history, a fresh stream) load all of it. Now the
// assignments stop at the order's bound (409 too_many_assignments) while its status still
// moves; the history comes in pages; a fresh stream opens with two events.
func TestOrderHistoryIsBounded(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "big")
	note := strings.Repeat("n", ordercast.MaxNoteLength)
	changes := 0
	for {
		body := fmt.Sprintf(`{"courier_id":"k%d","note":%q}`, changes%2, note)
		resp, b := call(t, "PUT", base+"/v1/orders/big/courier", "", body)
		if resp.StatusCode != http.StatusOK {
			var e api.ErrorBody
			if resp.StatusCode != http.StatusConflict || json.Unmarshal(b, &e) != nil || e.Error.Code != ordercast.ETooManyAssignments {
				t.Fatalf("courier change %d: %d %s, want 409 %s", changes+1, resp.StatusCode, b, ordercast.ETooManyAssignments)
			}
			break
		}
		if changes++; changes >= ordercast.MaxOrderVersion {
			t.Fatalf("%d courier changes taken; an order holds at most %d events", changes, ordercast.MaxOrderVersion)
		}
	}
	if changes < 100 {
		t.Errorf("%d courier changes taken, want at least 100", changes)
	}
	last := int64(changes) + 1 // the creation, then one event per change

	// A fresh stream opens with the last status event and the newest assignment: two events,
	// however many assignments came between. Then live changes follow.
	r := client.NewSSEReader(rawStream(t, base, "big", "").Body)
	wantSeqStatus(t, next(t, r), 1, ordercast.StatusPlaced)
	if ev, err := r.Next(); err != nil || ev.Type != api.EventCourier || ev.ID != fmt.Sprint(last) {
		t.Fatalf("second opening event %+v, %v; want the newest assignment, seq %d", ev, err, last)
	}
	for _, st := range []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady,
		ordercast.StatusOutForDelivery, ordercast.StatusDelivered} {
		last = mustSetStatus(t, base, "big", st).Seq
		wantSeqStatus(t, next(t, r), last, st)
	}
	if last > ordercast.MaxOrderVersion {
		t.Errorf("delivered at version %d, want at most %d", last, ordercast.MaxOrderVersion)
	}

	// The history in pages of 50: each full but the last, which is the end; together, all of it.
	var seqs []int64
	for after, pages := int64(0), 0; ; pages++ {
		if pages > int(last)/50+1 {
			t.Fatalf("%d pages and no end: a page is never shorter than its limit", pages)
		}
		evs := eventsPage(t, base, "big", fmt.Sprintf("?after=%d&limit=50", after))
		if len(evs) > 50 {
			t.Fatalf("a page of %d events, asked for 50", len(evs))
		}
		for _, ev := range evs {
			seqs = append(seqs, ev.Seq)
		}
		if len(evs) < 50 {
			break
		}
		after = evs[len(evs)-1].Seq
	}
	if int64(len(seqs)) != last || seqs[0] != 1 || seqs[len(seqs)-1] != last {
		t.Errorf("paged history: %d events, seqs %d…%d; want 1…%d", len(seqs), seqs[0], seqs[len(seqs)-1], last)
	}
	if evs := eventsPage(t, base, "big", ""); int64(len(evs)) != last {
		t.Errorf("history without a limit: %d events, want all %d (one page holds any order's history)", len(evs), last)
	}
}

// TestEventsLimit: limit is 1 to api.MaxEventsPerPage; anything else is 422 invalid_argument,
// never a silently smaller page that a pager would take for the end.
func TestEventsLimit(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)
	mustSetStatus(t, base, "o-1", ordercast.StatusPreparing)
	if evs := eventsPage(t, base, "o-1", "?limit=2"); len(evs) != 2 || evs[1].Seq != 2 {
		t.Errorf("limit=2: %+v, want seqs 1 and 2", evs)
	}
	if evs := eventsPage(t, base, "o-1", fmt.Sprintf("?after=1&limit=%d", api.MaxEventsPerPage)); len(evs) != 2 || evs[0].Seq != 2 {
		t.Errorf("after=1, the largest limit: %+v, want seqs 2 and 3", evs)
	}
	for _, bad := range []string{"0", "-1", fmt.Sprint(api.MaxEventsPerPage + 1), "x", "1.5", "99999999999999999999"} {
		code, body := do(t, "GET", base+"/v1/orders/o-1/events?limit="+bad, "", "")
		var e api.ErrorBody
		if code != http.StatusUnprocessableEntity || json.Unmarshal(body, &e) != nil || e.Error.Code != ordercast.EInvalid {
			t.Errorf("limit=%s: %d %s, want 422 %s", bad, code, body, ordercast.EInvalid)
		}
	}
}

// eventsPage gets one page of an order's history, with query (after the path), failing the test
// unless it is a 200.
func eventsPage(t *testing.T, base, id, query string) []ordercast.Event {
	t.Helper()
	code, body := do(t, "GET", base+"/v1/orders/"+id+"/events"+query, "", "")
	var res api.EventsResponse
	if code != http.StatusOK || json.Unmarshal(body, &res) != nil {
		t.Fatalf("GET events%s: %d %s", query, code, body)
	}
	return res.Events
}

// TestACourierChangeCarriesAnExpectedVersion: PUT …/courier takes expected_version as a status
// change does: at another version it is 409 version_conflict and changes nothing, 0 is refused
// (it would silently mean "any"), and at the order's version it applies.
func TestACourierChangeCarriesAnExpectedVersion(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "v-1")
	put := func(body string, want int, code string) {
		t.Helper()
		resp, b := call(t, "PUT", base+"/v1/orders/v-1/courier", "", body)
		var e api.ErrorBody
		if resp.StatusCode != want || code != "" && (json.Unmarshal(b, &e) != nil || e.Error.Code != code) {
			t.Fatalf("PUT %s: %d %s, want %d %s", body, resp.StatusCode, b, want, code)
		}
	}
	put(`{"courier_id":"ama","expected_version":1}`, http.StatusOK, "")
	put(`{"courier_id":"kofi","expected_version":1}`, http.StatusConflict, ordercast.EVersionConflict) // ama came meanwhile
	put(`{"courier_id":"kofi","expected_version":0}`, http.StatusUnprocessableEntity, ordercast.EInvalid)
	if o, err := ts.store.Order(t.Context(), "v-1"); err != nil || o.CourierID != "ama" || o.Version != 2 {
		t.Fatalf("after the refused changes the order is %+v, %v; want ama's at version 2", o, err)
	}
	put(`{"courier_id":"kofi","expected_version":2}`, http.StatusOK, "")
}

// TestAConflictSaysTheOrdersVersion: a change refused for its expected_version (409
// version_conflict) or its If-Match (412 precondition_failed) said the order's version only in
// its message: a dispatcher had to read the order again, or parse English, to decide whether
// its change still stood. The error carries it, current_version, on every kind of change and in
// a request of many.
func TestAConflictSaysTheOrdersVersion(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "cv-1")
	mustSetStatus(t, base, "cv-1", ordercast.StatusConfirmed) // v2
	for _, tt := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		code                     string
	}{
		{"a status change", "POST", "/v1/orders/cv-1/status", `{"status":"preparing","expected_version":1}`, nil, http.StatusConflict, ordercast.EVersionConflict},
		{"a courier change", "PUT", "/v1/orders/cv-1/courier", `{"courier_id":"c-1","expected_version":1}`, nil, http.StatusConflict, ordercast.EVersionConflict},
		{"a status change with If-Match", "POST", "/v1/orders/cv-1/status", `{"status":"preparing"}`, []string{"If-Match", `"v1"`}, http.StatusPreconditionFailed, ordercast.EPreconditionFailed},
	} {
		resp, body := call(t, tt.method, base+tt.path, "", tt.body, tt.header...)
		var e api.ErrorBody
		if err := json.Unmarshal(body, &e); resp.StatusCode != tt.status || err != nil || e.Error.Code != tt.code || e.Error.CurrentVersion != 2 {
			t.Errorf("%s at a stale version: %d %s, want %d %s with current_version 2", tt.name, resp.StatusCode, body, tt.status, tt.code)
		}
	}
	resp, body := call(t, "POST", base+"/v1/status-changes", "", `{"changes":[{"order_id":"cv-1","status":"preparing","expected_version":1}]}`)
	var res struct {
		Results []struct {
			Error *api.ErrorDetail `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &res); resp.StatusCode != http.StatusOK || err != nil || len(res.Results) != 1 || res.Results[0].Error == nil ||
		res.Results[0].Error.Code != ordercast.EVersionConflict || res.Results[0].Error.CurrentVersion != 2 {
		t.Errorf("a request of many, one change at a stale version: %d %s, want its result version_conflict with current_version 2", resp.StatusCode, body)
	}
}
