package storetest

import (
	"fmt"
	"testing"

	"github.com/ordercast/ordercast"
)

// exerciseCourierNames: the name an assignment gives its courier is kept on the order and on the
// event, read back by every read (the order, its history, a party's log and snapshot, a batch's
// answer to a repeat), and goes with the courier: a repeat keeps the name the courier was
// assigned under, another courier brings its own (or none), an unassignment leaves none.
func exerciseCourierNames(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	h.create(t, ordercast.NewOrder{ID: "o1", RestaurantID: "r-1", CustomerID: "u-1"})
	o, ev, changed, err := h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-1", CourierName: "Omar"})
	if err != nil || !changed || o.CourierName != "Omar" || ev.CourierName != "Omar" {
		t.Fatalf("assign c-1 as Omar = %+v %+v changed %v, %v; want Omar on both", o, ev, changed, err)
	}
	equalOrder(t, "Order after a named assignment", h.order(t, "o1"), o)
	if evs := h.events(t, "o1"); normEvent(evs[len(evs)-1]) != normEvent(ev.Wire()) {
		t.Errorf("stored event = %+v, want %+v", evs[len(evs)-1], ev.Wire())
	}
	for _, p := range []ordercast.Party{customer1, courier1} {
		logged, err := h.s.ScopeEventsAfter(h.ctx, p, 0, 0)
		if err != nil || len(logged) == 0 || logged[len(logged)-1].CourierName != "Omar" {
			t.Errorf("log of %s = %+v, %v; want it to end with the assignment to Omar", p.Key(), logged, err)
		}
		snap, err := h.s.ScopeSnapshot(h.ctx, p, 0)
		if err != nil || len(snap.Orders) != 1 || snap.Orders[0].CourierName != "Omar" {
			t.Errorf("snapshot of %s = %+v, %v; want o1 with Omar", p.Key(), snap, err)
		}
	}
	before := h.snapshot(t, "o1")
	o, ev, changed, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-1", CourierName: "Someone else"})
	if err != nil || changed || o.CourierName != "Omar" || ev.CourierName != "Omar" {
		t.Errorf("the same courier under another name = %+v %+v changed %v, %v; want a quiet no-op answered with Omar", o, ev, changed, err)
	}
	h.unchanged(t, before, "o1")
	if o, ev, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-2"}); err != nil || o.CourierName != "" || ev.CourierName != "" {
		t.Errorf("reassigned to c-2 without a name = %+v %+v, %v; want no name", o, ev, err)
	}
	h.assign(t, "o1", "c-1")
	if o, _, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-3", CourierName: "Ana"}); err != nil || o.CourierName != "Ana" {
		t.Fatalf("reassigned to c-3 as Ana = %+v, %v", o, err)
	}
	if o, _, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1"}); err != nil || o.CourierName != "" {
		t.Errorf("unassigned = %+v, %v; want no name", o, err)
	}
	equalOrder(t, "Order after unassignment", h.order(t, "o1"), o)
	var names []string
	for _, ev := range h.events(t, "o1") {
		if ev.Kind == ordercast.KindCourier {
			names = append(names, ev.CourierID+"="+ev.CourierName)
		}
	}
	if got, want := fmt.Sprint(names), "[c-1=Omar c-2= c-1= c-3=Ana =]"; got != want {
		t.Errorf("the history's assignments = %s, want %s", got, want)
	}
	// A name is refused on an unassignment and on more than one line, and refused, changes
	// nothing.
	before = h.snapshot(t, "o1")
	_, _, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierName: "Omar"})
	wantCode(t, err, ordercast.EInvalid)
	_, _, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-1", CourierName: "Omar\nthe courier"})
	wantCode(t, err, ordercast.EInvalid)
	h.unchanged(t, before, "o1")
}

// exerciseCourierNamesInOneBatch: a batch that gives an order to another courier and back under
// a new name leaves its courier where it was and its name changed: the stored order has the name
// of the batch's last assignment, as its events and answers do.
func exerciseCourierNamesInOneBatch(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	h.create(t, ordercast.NewOrder{ID: "o1", RestaurantID: "r-1"})
	if _, _, _, err := h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-1", CourierName: "Omar"}); err != nil {
		t.Fatal(err)
	}
	res := h.inOneBatch(t, []write{
		{assign: &ordercast.CourierChange{OrderID: "o1", CourierID: "c-2"}, changed: true, version: 3},
		{assign: &ordercast.CourierChange{OrderID: "o1", CourierID: "c-1", CourierName: "Ana"}, changed: true, version: 4},
	})
	if o := res[1].o; o.CourierID != "c-1" || o.CourierName != "Ana" {
		t.Fatalf("the batch's last answer = %+v, want c-1 as Ana", o)
	}
	equalOrder(t, "Order after the batch", h.order(t, "o1"), res[1].o)
	snap, err := h.s.ScopeSnapshot(h.ctx, restaurant1, 0)
	if err != nil || len(snap.Orders) != 1 || snap.Orders[0].CourierName != "Ana" {
		t.Errorf("snapshot of r-1 = %+v, %v; want o1 with Ana", snap, err)
	}
}
