package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// exercisePurge: PurgeEnded deletes the orders that ended before the time it is given, those
// that ended first first and no more than its limit, with their events and their entries in
// every party log that held them (an order's restaurant, customer and every courier it had);
// it leaves orders in progress and orders that ended later whole, publishes nothing, and the
// logs read after it have no gap: a position below the highest one a party lost is
// ErrLogPurged, and the positions above it follow each other. A deleted order's id may be given
// again, to a new order.
func exercisePurge(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	p, ok := h.s.(ordercast.Purger)
	if !ok {
		t.Fatalf("%T is not an ordercast.Purger", h.s)
	}
	r := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}
	u := ordercast.Party{Kind: ordercast.PartyCustomer, ID: "u-1"}
	c1 := ordercast.Party{Kind: ordercast.PartyCourier, ID: "c-1"}
	c2 := ordercast.Party{Kind: ordercast.PartyCourier, ID: "c-2"}

	// Positions in r-1's log on the right; u-1's and the couriers' where they differ.
	h.create(t, ordercast.NewOrder{ID: "live", RestaurantID: "r-1", CustomerID: "u-1"}) // r1 u1
	h.create(t, ordercast.NewOrder{ID: "old", RestaurantID: "r-1", CustomerID: "u-1"})  // r2 u2
	h.assign(t, "old", "c-1")                                                           // r3 u3 c-1:1
	h.assign(t, "live", "c-1")                                                          // r4 u4 c-1:2
	h.assign(t, "old", "c-2")                                                           // r5 u5 c-1:3 c-2:1
	h.move(t, "old", ordercast.StatusCancelled)                                         // r6 u6 c-2:2
	h.create(t, ordercast.NewOrder{ID: "old-2", RestaurantID: "r-1"})                   // r7
	_, end2 := h.move(t, "old-2", ordercast.StatusCancelled)                            // r8
	h.create(t, ordercast.NewOrder{ID: "recent", RestaurantID: "r-1"})                  // r9
	_, end3 := h.move(t, "recent", ordercast.StatusCancelled)                           // r10
	cut := end2.At.Add(time.Microsecond)
	if !end3.At.After(cut) {
		t.Fatalf("the store's clock did not move between two commits: %s, then %s", end2.At, end3.At)
	}
	published := h.pub.Len()

	if n, err := p.PurgeEnded(h.ctx, cut, 0); n != 0 || err != nil {
		t.Errorf("PurgeEnded with limit 0 = %d, %v; want 0, nil", n, err)
	}
	if n, err := p.PurgeEnded(h.ctx, cut, 1); n != 1 || err != nil {
		t.Fatalf("PurgeEnded(limit 1) = %d, %v; want 1 (the order that ended first)", n, err)
	}
	for _, id := range []string{"old"} {
		if _, err := h.s.Order(h.ctx, id); ordercast.ErrorCode(err) != ordercast.ENotFound {
			t.Errorf("Order(%s) after its purge: %v, want %s", id, err, ordercast.ENotFound)
		}
		if _, err := h.s.EventsAfter(h.ctx, id, 0, 0); ordercast.ErrorCode(err) != ordercast.ENotFound {
			t.Errorf("EventsAfter(%s) after its purge: %v, want %s", id, err, ordercast.ENotFound)
		}
	}
	for _, id := range []string{"live", "old-2", "recent"} {
		if _, err := h.s.Order(h.ctx, id); err != nil {
			t.Errorf("Order(%s), which this purge does not delete: %v", id, err)
		}
	}
	if evs, err := h.s.EventsAfter(h.ctx, "live", 0, 0); err != nil || len(evs) != 2 {
		t.Errorf("EventsAfter(live) = %d events, %v; want its 2", len(evs), err)
	}

	// Each log lost the deleted order's entries: from below the highest of them it is
	// ErrLogPurged; from it on, the rest, at consecutive positions.
	wantPurged(t, h, r, 0)
	wantPurged(t, h, r, 5)
	wantLog(t, h, r, 6, "old-2/1 old-2/2 recent/1 recent/2")
	wantPurged(t, h, u, 5)
	wantLog(t, h, u, 6, "")
	wantPurged(t, h, c1, 2) // c-1:3 is the order leaving c-1, deleted with it
	wantLog(t, h, c1, 3, "")
	wantPurged(t, h, c2, 1)
	wantLog(t, h, c2, 2, "")
	wantBounds(t, h, r, 10, 6)
	wantBounds(t, h, u, 6, 6)
	wantBounds(t, h, c1, 3, 3)
	wantBounds(t, h, c2, 2, 2)
	snap, err := h.s.ScopeSnapshot(h.ctx, u, 0)
	if err != nil || len(snap.Orders) != 1 || snap.Orders[0].ID != "live" || snap.Pos != 6 {
		t.Errorf("ScopeSnapshot(u-1) = %+v, %v; want the order in progress at position 6", snap, err)
	}

	// The rest that ended before the cut, then nothing.
	if n, err := p.PurgeEnded(h.ctx, cut, 10); n != 1 || err != nil {
		t.Errorf("PurgeEnded(limit 10) = %d, %v; want 1 (old-2)", n, err)
	}
	if n, err := p.PurgeEnded(h.ctx, cut, 10); n != 0 || err != nil {
		t.Errorf("PurgeEnded again = %d, %v; want 0", n, err)
	}
	wantPurged(t, h, r, 7)
	wantLog(t, h, r, 8, "recent/1 recent/2")
	wantBounds(t, h, r, 10, 8)
	if _, err := h.s.Order(h.ctx, "recent"); err != nil {
		t.Errorf("Order(recent), which ended after the cut: %v", err)
	}
	if n := h.pub.Len(); n != published {
		t.Errorf("the purges published %d events; want none", n-published)
	}

	// The logs go on from their heads, and a deleted order's id is free for a new order.
	h.create(t, ordercast.NewOrder{ID: "old", RestaurantID: "r-1"}) // r11
	if evs, err := h.s.EventsAfter(h.ctx, "old", 0, 0); err != nil || len(evs) != 1 || evs[0].Seq != 1 {
		t.Errorf("EventsAfter of the new order old = %+v, %v; want its creation alone, seq 1", evs, err)
	}
	wantLog(t, h, r, 8, "recent/1 recent/2 old/1")

	// With nothing in progress left in the way, everything that ended goes.
	h.move(t, "live", ordercast.StatusCancelled) // r12 u7 c-1:4
	h.move(t, "old", ordercast.StatusCancelled)  // r13
	if n, err := p.PurgeEnded(h.ctx, time.Now().Add(time.Hour), 10); n != 3 || err != nil {
		t.Errorf("PurgeEnded of everything = %d, %v; want 3 (recent, live, old)", n, err)
	}
	wantPurged(t, h, r, 12)
	wantLog(t, h, r, 13, "")
	wantPurged(t, h, c1, 3)
	wantLog(t, h, c1, 4, "")
	if orders, err := h.s.ActiveOrders(h.ctx, 0); err != nil || len(orders) != 0 {
		t.Errorf("ActiveOrders after it = %d, %v; want none", len(orders), err)
	}
}

// wantPurged fails the test unless party p's log after position after is ErrLogPurged.
func wantPurged(t *testing.T, h *harness, p ordercast.Party, after int64) {
	t.Helper()
	if evs, err := h.s.ScopeEventsAfter(h.ctx, p, after, 0); !errors.Is(err, ordercast.ErrLogPurged) {
		t.Errorf("ScopeEventsAfter(%s, %d) = %d events, %v; want ErrLogPurged", p.Key(), after, len(evs), err)
	}
}

// PurgeLeavesNothing: a purge of every ended order leaves no row of theirs in any table, though
// the reads never show such rows (a log's entry whose order is gone is hidden by their join),
// so only the store's own tables can tell. count returns the rows of a table, read in SQL.
func PurgeLeavesNothing(t *testing.T, s ordercast.Store, count func(table string) int) {
	t.Helper()
	ctx := t.Context()
	for i, id := range []string{"gone-1", "gone-2", "gone-3"} {
		if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: "r-1", CustomerID: "u-" + id}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"c-1", "c-2"}[:i%2+1] {
			if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: id, CourierID: c}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: ordercast.StatusCancelled}); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"orders", "order_events", "party_log"} {
		if count(table) == 0 {
			t.Fatalf("no row in %s before the purge: the test proves nothing", table)
		}
	}
	if n, err := s.(ordercast.Purger).PurgeEnded(ctx, time.Now().Add(time.Hour), 100); n != 3 || err != nil {
		t.Fatalf("PurgeEnded = %d, %v; want 3", n, err)
	}
	for _, table := range []string{"orders", "order_events", "party_log"} {
		if n := count(table); n != 0 {
			t.Errorf("%d rows left in %s after every order was purged; want none", n, table)
		}
	}
}

// exercisePurgeUnderLoad: purges run while writers create orders of one restaurant, hand them
// from one courier to another and end them, and readers read the restaurant's and a courier's
// logs from cursors all over them. A read is either ErrLogPurged or positions that follow on
// from its cursor with no hole, each order's events in seq order, whatever commits between the
// read's statements; in the end every order is purged, and the logs with them.
func exercisePurgeUnderLoad(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	p := h.s.(ordercast.Purger)
	ctx := h.ctx
	const writers, each = 4, 12
	var (
		wg, bg          sync.WaitGroup
		stop            = make(chan struct{})
		purged          atomic.Int64
		reads, refusals atomic.Int64
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				steps := []func() error{
					func() error {
						_, _, err := h.s.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: "r-1", CustomerID: fmt.Sprintf("u-%d", w)})
						return err
					},
					func() error {
						_, _, _, err := h.s.AssignCourier(ctx, ordercast.CourierChange{OrderID: id, CourierID: "c-1"})
						return err
					},
					func() error {
						_, _, _, err := h.s.AssignCourier(ctx, ordercast.CourierChange{OrderID: id, CourierID: []string{"c-1", "c-2"}[i%2]})
						return err
					},
					func() error {
						_, _, _, err := h.s.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: ordercast.StatusCancelled})
						return err
					},
				}
				for _, step := range steps {
					if err := step(); err != nil {
						t.Errorf("order %s: %v", id, err)
						return
					}
				}
			}
		})
	}
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := p.PurgeEnded(ctx, time.Now().Add(time.Hour), 3)
			if err != nil {
				t.Errorf("PurgeEnded: %v", err)
				return
			}
			purged.Add(int64(n))
		}
	})
	for r, party := range []ordercast.Party{{Kind: ordercast.PartyRestaurant, ID: "r-1"}, {Kind: ordercast.PartyCourier, ID: "c-1"}} {
		bg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				snap, err := h.s.ScopeSnapshot(ctx, party, 0)
				if err != nil {
					t.Errorf("ScopeSnapshot(%s): %v", party.Key(), err)
					return
				}
				cursor := snap.Pos * int64((k*7+r*3)%11) / 10 // all over the log, the head included
				evs, err := h.s.ScopeEventsAfter(ctx, party, cursor, 20)
				if errors.Is(err, ordercast.ErrLogPurged) {
					refusals.Add(1)
					continue
				} else if err != nil {
					t.Errorf("ScopeEventsAfter(%s, %d): %v", party.Key(), cursor, err)
					return
				}
				reads.Add(1)
				last := map[string]int64{}
				for i, ev := range evs {
					if ev.Pos != cursor+int64(i)+1 {
						t.Errorf("%s after %d: entry %d at position %d, want %d: a hole no reader was told of", party.Key(), cursor, i, ev.Pos, cursor+int64(i)+1)
						return
					}
					if ev.Seq <= last[ev.OrderID] {
						t.Errorf("%s after %d: %s/%d after its seq %d", party.Key(), cursor, ev.OrderID, ev.Seq, last[ev.OrderID])
						return
					}
					last[ev.OrderID] = ev.Seq
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	for {
		n, err := p.PurgeEnded(ctx, time.Now().Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		purged.Add(int64(n))
	}
	t.Logf("%d reads of a log, %d refused as purged", reads.Load(), refusals.Load())
	if n := purged.Load(); n != writers*each {
		t.Errorf("purged %d orders in all, want every one of the %d", n, writers*each)
	}
	for _, party := range []ordercast.Party{{Kind: ordercast.PartyRestaurant, ID: "r-1"}, {Kind: ordercast.PartyCourier, ID: "c-1"}, {Kind: ordercast.PartyCourier, ID: "c-2"}} {
		snap, err := h.s.ScopeSnapshot(ctx, party, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantPurged(t, h, party, snap.Pos-1)
		wantLog(t, h, party, snap.Pos, "")
	}
}
