package storetest

import (
	"encoding/json"
	"testing"

	"github.com/ordercast/ordercast"
)

// exerciseDetailsAsGiven: details come back exactly as given (compacted), with no number
// re-rendered; a repeat with the same values spelled otherwise is the same order; numbers outside
// float64's range and NUL in details or notes are refused with 422 codes on every store (issue
// 13, findings 2 and 7).
func exerciseDetailsAsGiven(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	given := `{"z":1,"a":{"n":1e300,"m":0.10},"s":"\u00e9<x>"}`
	want := `{"z":1,"a":{"n":1e300,"m":0.10},"s":"\u00e9\u003cx\u003e"}`
	o := h.create(t, ordercast.NewOrder{ID: "d-1", Details: json.RawMessage(given)})
	if string(o.Details) != want {
		t.Errorf("created details = %s, want %s", o.Details, want)
	}
	if got := h.order(t, "d-1").Details; string(got) != want {
		t.Errorf("stored details = %s, want %s", got, want)
	}
	again, created, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "d-1",
		Details: json.RawMessage(`{"a":{"m":0.1,"n":1E+300},"s":"é<x>","z":1.0}`)})
	if err != nil || created || string(again.Details) != want {
		t.Errorf("repeat with the same values: created %v, details %s, %v", created, again.Details, err)
	}

	before := h.snapshot(t, "d-1", "d-2")
	for _, n := range []ordercast.NewOrder{
		{ID: "d-2", Details: json.RawMessage(`{"n":1e131000}`)},
		{ID: "d-2", Details: json.RawMessage(`{"n":-1e-131000}`)},
		{ID: "d-2", Details: json.RawMessage(`{"s":"\u0000"}`)},
	} {
		_, _, err := h.s.CreateOrder(h.ctx, n)
		wantCode(t, err, ordercast.EInvalidDetails)
	}
	_, _, err = h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "d-2", Note: "a\x00b"})
	wantCode(t, err, ordercast.EInvalid)
	_, _, _, err = h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "d-1", Status: ordercast.StatusConfirmed, Note: "a\x00b"})
	wantCode(t, err, ordercast.EInvalid)
	h.unchanged(t, before, "d-1", "d-2")
}
