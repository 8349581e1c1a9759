package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/ordercast/ordercast"
)

var (
	restaurant1 = ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}
	restaurant2 = ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-2"}
	customer1   = ordercast.Party{Kind: ordercast.PartyCustomer, ID: "u-1"}
	courier1    = ordercast.Party{Kind: ordercast.PartyCourier, ID: "c-1"}
	courier2    = ordercast.Party{Kind: ordercast.PartyCourier, ID: "c-2"}
)

// exerciseOwners checks who an order belongs to, courier assignment as an event, the owner check
// made inside the write, and the party logs that party streams resume from.
func exerciseOwners(t *testing.T, open opener) {
	t.Run("CreateWithOwners", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		o := h.create(t, ordercast.NewOrder{ID: "o1", RestaurantID: "r-1", CustomerID: "u-1"})
		if o.RestaurantID != "r-1" || o.CustomerID != "u-1" || o.CourierID != "" {
			t.Errorf("created %+v, want restaurant r-1, customer u-1, no courier", o)
		}
		equalOrder(t, "Order after create", h.order(t, "o1"), o)
		_, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "o2", RestaurantID: "bad id"})
		wantCode(t, err, ordercast.EInvalid)
	})

	t.Run("AssignCourier", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "o1", RestaurantID: "r-1"})
		h.move(t, "o1", ordercast.StatusConfirmed)
		o, ev, changed, err := h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-1", Actor: "restaurant:r-1"})
		if err != nil || !changed {
			t.Fatalf("AssignCourier = changed %v, %v; want a change", changed, err)
		}
		if o.CourierID != "c-1" || o.Version != 3 || o.Status != ordercast.StatusConfirmed {
			t.Errorf("order after assignment = %+v, want courier c-1 at version 3, still confirmed", o)
		}
		if ev.Kind != ordercast.KindCourier || ev.Seq != 3 || ev.CourierID != "c-1" || ev.Status != ordercast.StatusConfirmed {
			t.Errorf("assignment event = %+v, want kind courier, seq 3, courier c-1, status confirmed", ev)
		}
		evs := h.events(t, "o1")
		if got := evs[len(evs)-1]; normEvent(got) != normEvent(ev.Wire()) {
			t.Errorf("stored event = %+v, want %+v", got, ev.Wire())
		}
		// The repeat is a no-op; a stranger restaurant is refused inside the write.
		before := h.snapshot(t, "o1")
		_, _, changed, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-1"})
		if err != nil || changed {
			t.Errorf("repeated assignment = changed %v, %v; want a quiet no-op", changed, err)
		}
		_, _, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-2", Owner: restaurant2})
		wantCode(t, err, ordercast.EForbidden)
		_, _, _, err = h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "o1", Status: ordercast.StatusOutForDelivery, Owner: courier2})
		wantCode(t, err, ordercast.EForbidden)
		h.unchanged(t, before, "o1")
		// The assigned courier may move it; unassigned, it may not.
		h.moveAs(t, "o1", ordercast.StatusOutForDelivery, courier1)
		o, ev, changed, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", Owner: restaurant1})
		if err != nil || !changed || o.CourierID != "" || ev.CourierID != "" || ev.Kind != ordercast.KindCourier {
			t.Fatalf("unassign = %+v %+v changed %v, %v; want no courier", o, ev, changed, err)
		}
		_, _, _, err = h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "o1", Status: ordercast.StatusDelivered, Owner: courier1})
		wantCode(t, err, ordercast.EForbidden)
		h.move(t, "o1", ordercast.StatusDelivered)
		_, _, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-2"})
		wantCode(t, err, ordercast.EInvalidTransition)
	})

	// A party's part of an order ends at a stage (StatusChange.Before, CourierChange.Before: a
	// restaurant's at the pickup): from there its cancel and its unassignment are refused inside
	// the write and change nothing, while a repeat of what the order is stays a quiet no-op, and
	// dispatch (no Before) may do both.
	t.Run("PartsEnd", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "o1", RestaurantID: "r-1"})
		h.move(t, "o1", ordercast.StatusReady)
		if _, _, _, err := h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-1", Owner: restaurant1, Before: ordercast.StatusOutForDelivery}); err != nil {
			t.Fatalf("assign before the end of the restaurant's part: %v", err)
		}
		h.moveAs(t, "o1", ordercast.StatusOutForDelivery, courier1)
		before := h.snapshot(t, "o1")
		_, _, _, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "o1", Status: ordercast.StatusCancelled, Owner: restaurant1, Before: ordercast.StatusOutForDelivery})
		wantCode(t, err, ordercast.EInvalidTransition)
		_, _, _, err = h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", Owner: restaurant1, Before: ordercast.StatusOutForDelivery})
		wantCode(t, err, ordercast.EInvalidTransition)
		_, _, changed, err := h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1", CourierID: "c-1", Owner: restaurant1, Before: ordercast.StatusOutForDelivery})
		if err != nil || changed {
			t.Errorf("the courier it has, after the restaurant's part: changed %v, %v; want a quiet no-op", changed, err)
		}
		h.unchanged(t, before, "o1")
		if _, _, _, err := h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: "o1"}); err != nil {
			t.Fatalf("dispatch unassigns: %v", err)
		}
		h.move(t, "o1", ordercast.StatusCancelled)
	})

	t.Run("PartyLogs", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "a", RestaurantID: "r-1", CustomerID: "u-1"}) // r1:1 u1:1
		h.create(t, ordercast.NewOrder{ID: "b", RestaurantID: "r-1"})                    // r1:2
		h.create(t, ordercast.NewOrder{ID: "c", RestaurantID: "r-2"})                    // r2:1
		h.assign(t, "a", "c-1")                                                          // r1:3 u1:2 c1:1
		h.move(t, "a", ordercast.StatusConfirmed)                                        // r1:4 u1:3 c1:2
		h.assign(t, "a", "c-2")                                                          // r1:5 u1:4 c1:3 c2:1
		h.move(t, "a", ordercast.StatusOutForDelivery)                                   // r1:6 u1:5 c2:2
		h.move(t, "b", ordercast.StatusCancelled)                                        // r1:7

		wantLog(t, h, restaurant1, 0, "a/1 b/1 a/2 a/3 a/4 a/5 b/2")
		wantLog(t, h, restaurant1, 5, "a/5 b/2")
		wantLog(t, h, customer1, 0, "a/1 a/2 a/3 a/4 a/5")
		wantLog(t, h, courier1, 0, "a/2 a/3 a/4") // assigned, moved, reassigned away
		wantLog(t, h, courier2, 0, "a/4 a/5")
		wantLog(t, h, restaurant2, 0, "c/1")
		wantBounds(t, h, restaurant1, 7, 0)
		wantBounds(t, h, courier1, 3, 0)
		wantBounds(t, h, ordercast.Party{Kind: ordercast.PartyCourier, ID: "nobody"}, 0, 0)

		// Every published event carries its positions, the same the log holds.
		for _, ev := range h.pub.Events() {
			for _, key := range ev.Marks.Parties() {
				p, ok := ordercast.ParsePartyKey(key)
				if !ok {
					t.Fatalf("event %s/%d has a mark for %q, not a party", ev.OrderID, ev.Seq, key)
				}
				pos := ev.Marks.Pos(key)
				got, err := h.s.ScopeEventsAfter(h.ctx, p, pos-1, 1)
				if err != nil || len(got) != 1 || got[0].OrderID != ev.OrderID || got[0].Seq != ev.Seq {
					t.Errorf("log %s at %d = %+v, %v; want %s/%d", key, pos, got, err, ev.OrderID, ev.Seq)
				}
			}
		}

		snap, err := h.s.ScopeSnapshot(h.ctx, restaurant1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Pos != 7 || len(snap.Orders) != 1 || snap.Orders[0].ID != "a" {
			t.Errorf("snapshot of r-1 = pos %d, %d orders; want pos 7 and order a only (b ended)", snap.Pos, len(snap.Orders))
		}
		snap, err = h.s.ScopeSnapshot(h.ctx, courier1, 0)
		if err != nil || snap.Pos != 3 || len(snap.Orders) != 0 {
			t.Errorf("snapshot of c-1 = %+v, %v; want pos 3 and no orders (reassigned)", snap, err)
		}
		snap, err = h.s.ScopeSnapshot(h.ctx, ordercast.Party{Kind: ordercast.PartyCourier, ID: "nobody"}, 0)
		if err != nil || snap.Pos != 0 || len(snap.Orders) != 0 {
			t.Errorf("snapshot of an unknown party = %+v, %v; want empty at 0", snap, err)
		}
	})

	t.Run("CouriersOrders", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
			h.create(t, ordercast.NewOrder{ID: id, RestaurantID: "r-1"})
		}
		h.assign(t, "a", "c-1")
		h.assign(t, "b", "c-1")
		h.assign(t, "b", "c-2") // reassigned: c-2's now
		h.assign(t, "c", "c-2")
		h.assign(t, "d", "c-1")
		h.move(t, "d", ordercast.StatusCancelled) // ended: no one's to carry
		h.assign(t, "e", "c-3")                   // a courier not asked for; f has none

		got, err := h.s.CouriersOrders(h.ctx, []string{"c-1", "c-2", "nobody"})
		if err != nil {
			t.Fatalf("CouriersOrders: %v", err)
		}
		ids := map[string][]string{}
		for courier, orders := range got {
			for _, o := range orders {
				if o.CourierID != courier {
					t.Errorf("order %s of courier %s is under %s", o.ID, o.CourierID, courier)
				}
				equalOrder(t, "CouriersOrders entry "+o.ID, o, h.order(t, o.ID))
				ids[courier] = append(ids[courier], o.ID)
			}
			slices.Sort(ids[courier])
		}
		if got, want := fmt.Sprint(ids), fmt.Sprint(map[string][]string{"c-1": {"a"}, "c-2": {"b", "c"}}); got != want {
			t.Errorf("CouriersOrders(c-1, c-2, nobody) = %s, want %s (nothing for nobody)", got, want)
		}
		if got, err := h.s.CouriersOrders(h.ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("CouriersOrders of no courier = %v, %v; want none", got, err)
		}
	})

	t.Run("ConcurrentWritersOfOneParty", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		const orders, moves = 8, 3
		for i := range orders {
			h.create(t, ordercast.NewOrder{ID: fmt.Sprintf("o%d", i), RestaurantID: "r-1"})
		}
		var wg sync.WaitGroup
		for i := range orders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, st := range []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady}[:moves] {
					if _, _, _, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: fmt.Sprintf("o%d", i), Status: st}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		evs, err := h.s.ScopeEventsAfter(h.ctx, restaurant1, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != orders*(moves+1) {
			t.Fatalf("log has %d events, want %d", len(evs), orders*(moves+1))
		}
		last := map[string]int64{}
		for i, ev := range evs {
			if ev.Pos != int64(i+1) {
				t.Fatalf("position %d is %d: positions must run 1, 2, 3… without holes", i+1, ev.Pos)
			}
			if ev.Seq != last[ev.OrderID]+1 {
				t.Fatalf("order %s seq %d after %d in the log: each order's events must be in seq order", ev.OrderID, ev.Seq, last[ev.OrderID])
			}
			last[ev.OrderID] = ev.Seq
		}
	})
}

// assign assigns a courier and fails the test unless it changed the order.
func (h *harness) assign(t *testing.T, id, courier string) {
	t.Helper()
	if _, _, changed, err := h.s.AssignCourier(h.ctx, ordercast.CourierChange{OrderID: id, CourierID: courier}); err != nil || !changed {
		t.Fatalf("AssignCourier(%s, %s) = changed %v, %v", id, courier, changed, err)
	}
}

// moveAs applies a status change made for owner and fails the test unless it changed the order.
func (h *harness) moveAs(t *testing.T, id string, to ordercast.Status, owner ordercast.Party) {
	t.Helper()
	if _, _, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: id, Status: to, Owner: owner}); err != nil || !changed {
		t.Fatalf("AppendStatus(%s -> %s as %s) = changed %v, %v", id, to, owner.Key(), changed, err)
	}
}

// wantBounds fails the test unless party p's log stands at head, purged up to purged
// (ScopeLogBounds).
func wantBounds(t *testing.T, h *harness, p ordercast.Party, head, purged int64) {
	t.Helper()
	b, err := h.s.ScopeLogBounds(h.ctx, p)
	if want := (ordercast.LogBounds{Head: head, Purged: purged}); err != nil || b != want {
		t.Errorf("ScopeLogBounds(%s) = %+v, %v; want %+v", p.Key(), b, err, want)
	}
}

// wantLog fails the test unless party p's log after position after holds exactly the events
// want names ("order/seq …"), at consecutive positions.
func wantLog(t *testing.T, h *harness, p ordercast.Party, after int64, want string) {
	t.Helper()
	evs, err := h.s.ScopeEventsAfter(h.ctx, p, after, 0)
	if err != nil {
		t.Fatalf("ScopeEventsAfter(%s, %d): %v", p.Key(), after, err)
	}
	got := ""
	for i, ev := range evs {
		if ev.Pos != after+int64(i)+1 {
			t.Errorf("log %s: event %d at position %d, want %d", p.Key(), i, ev.Pos, after+int64(i)+1)
		}
		if got != "" {
			got += " "
		}
		got += fmt.Sprintf("%s/%d", ev.OrderID, ev.Seq)
	}
	if got != want {
		t.Errorf("log %s after %d = %q, want %q", p.Key(), after, got, want)
	}
}
