package storetest

import (
	"fmt"
	"testing"

	"github.com/ordercast/ordercast"
)

// exerciseHistoryBound checks that an order's history is bounded: a restaurant that alternates
// two couriers gets a change each time until it has made as many as a party may, then
// too_many_assignments, which changes nothing, while dispatch still reassigns the order until it
// holds as many events as it may, then too_many_assignments too; the status still moves through
// every stage, and the version never passes ordercast.MaxOrderVersion. It also checks the read
// that finds the last status event behind the courier events.
func exerciseHistoryBound(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	h.create(t, ordercast.NewOrder{ID: "o1", RestaurantID: "r-1"})
	alternate := func(owner ordercast.Party) (changes int, err error) {
		for changes = 0; changes <= ordercast.MaxOrderVersion; changes++ {
			c := ordercast.CourierChange{OrderID: "o1", CourierID: fmt.Sprintf("k%d", changes%2), Owner: owner}
			if _, _, _, err = h.s.AssignCourier(h.ctx, c); err != nil {
				break
			}
		}
		return changes, err
	}
	byParty, err := alternate(restaurant1)
	if ordercast.ErrorCode(err) != ordercast.ETooManyAssignments {
		t.Fatalf("after %d courier changes by the restaurant: %v; want %s", byParty, err, ordercast.ETooManyAssignments)
	}
	if byParty < 20 || byParty > 40 {
		t.Errorf("the restaurant made %d courier changes before its bound, want 20 to 40", byParty)
	}
	byDispatch, err := alternate(ordercast.Party{})
	if ordercast.ErrorCode(err) != ordercast.ETooManyAssignments {
		t.Fatalf("after %d more courier changes by dispatch: %v; want %s by %d", byDispatch, err, ordercast.ETooManyAssignments, ordercast.MaxOrderVersion)
	}
	if byDispatch < 80 || byParty+byDispatch < 100 {
		t.Errorf("dispatch made %d courier changes after the restaurant's %d, want at least 80 and 100 in all", byDispatch, byParty)
	}
	o := h.order(t, "o1")
	before := h.snapshot(t, "o1")
	_, _, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1"})
	wantCode(t, err, ordercast.ETooManyAssignments)
	// The current courier again is still the quiet no-op a retried PUT relies on.
	if _, _, changed, err := h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: o.CourierID}); err != nil || changed {
		t.Errorf("repeated assignment at the bound = changed %v, %v; want a quiet no-op", changed, err)
	}
	h.unchanged(t, before, "o1")

	// Every stage is still reachable, from placed, the longest way: the bound keeps room for
	// the status events.
	for _, st := range []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady,
		ordercast.StatusOutForDelivery, ordercast.StatusDelivered} {
		o, _ = h.move(t, "o1", st)
	}
	if o.Version > ordercast.MaxOrderVersion {
		t.Errorf("version %d once delivered, want at most %d", o.Version, ordercast.MaxOrderVersion)
	}

	// The last event of a kind before a seq, found behind every event of the other kind.
	evs := h.events(t, "o1")
	confirmed := o.Version - 4
	for _, tt := range []struct {
		kind    ordercast.EventKind
		before  int64
		wantSeq int64 // 0: none
	}{
		{ordercast.KindStatus, o.Version + 1, o.Version}, {ordercast.KindStatus, o.Version, o.Version - 1},
		{ordercast.KindStatus, confirmed, 1}, {ordercast.KindStatus, 2, 1}, {ordercast.KindStatus, 1, 0},
		{ordercast.KindCourier, o.Version + 1, confirmed - 1}, {ordercast.KindCourier, confirmed - 1, confirmed - 2},
		{ordercast.KindCourier, 2, 0},
	} {
		name := fmt.Sprintf("LastEvent(o1, %s, %d)", tt.kind.Name(), tt.before)
		got, err := h.s.LastEvent(h.ctx, "o1", tt.kind, tt.before)
		if tt.wantSeq == 0 {
			wantCode(t, err, ordercast.ENotFound)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		equalEvents(t, name, []ordercast.Event{got}, []ordercast.Event{evs[tt.wantSeq-1]})
	}
	_, err = h.s.LastEvent(h.ctx, "unknown", ordercast.KindStatus, 5)
	wantCode(t, err, ordercast.ENotFound)
}
