package storetest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// exerciseCustomerData: ListOrders with a CustomerID exports one customer's orders, ended ones
// too, in pages; EraseCustomer refuses while the customer has an order in progress, saying how
// many, and changes nothing then; once every order ended it clears their details, customer,
// drop-off and notes, keeps each order's status history and times, deletes the customer's party
// log, and counts what it did; a second erasure erases nothing; another customer's orders and
// log, and the restaurant's log, stay; and the customer's log stands where it stood, purged up to
// its head: a cursor from before the erasure is ErrLogPurged (a fresh snapshot), and the next
// order's events follow the head.
func exerciseCustomerData(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	u1 := ordercast.Party{Kind: ordercast.PartyCustomer, ID: "u-1"}
	u2 := ordercast.Party{Kind: ordercast.PartyCustomer, ID: "u-2"}
	r1 := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}
	drop := &ordercast.Point{Lat: 52.52, Lng: 13.405}
	details := json.RawMessage(`{"name":"Alice","phone":"+49 30 1234"}`)
	noted := func(id string, to ordercast.Status, note string) {
		t.Helper()
		if _, _, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: id, Status: to, Note: note}); err != nil || !changed {
			t.Fatalf("AppendStatus(%s -> %s) = changed %v, %v", id, to, changed, err)
		}
	}
	for _, id := range []string{"e-1", "e-2", "e-3"} {
		h.create(t, ordercast.NewOrder{ID: id, Details: details, RestaurantID: "r-1", CustomerID: "u-1", Dropoff: drop, Note: "ring twice, Alice"})
	}
	h.create(t, ordercast.NewOrder{ID: "f-1", Details: json.RawMessage(`{"name":"Bob"}`), RestaurantID: "r-1", CustomerID: "u-2", Dropoff: drop, Note: "Bob's"})
	h.create(t, ordercast.NewOrder{ID: "g-1", RestaurantID: "r-1"}) // nobody's
	noted("e-1", ordercast.StatusConfirmed, "call Alice on +49 30 1234")
	noted("e-1", ordercast.StatusDelivered, "")
	h.assign(t, "e-2", "c-1")
	noted("e-2", ordercast.StatusCancelled, "Alice cancelled")
	noted("f-1", ordercast.StatusCancelled, "Bob cancelled")

	list := func(q ordercast.OrderQuery) []string {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 100
		}
		got, err := h.s.ListOrders(h.ctx, q)
		if err != nil {
			t.Fatalf("ListOrders(%+v): %v", q, err)
		}
		return listed(got)
	}
	sameIDs := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	// The export: the orders in creation order (e-1, e-2, e-3 are created one after the other),
	// and in pages of one, each after the cursor of the one before.
	sameIDs("u-1's orders", list(ordercast.OrderQuery{CustomerID: "u-1"}), "e-1", "e-2", "e-3")
	sameIDs("u-2's orders", list(ordercast.OrderQuery{CustomerID: "u-2"}), "f-1")
	sameIDs("u-1's delivered", list(ordercast.OrderQuery{CustomerID: "u-1", Status: ordercast.StatusDelivered}), "e-1")
	sameIDs("u-1's placed", list(ordercast.OrderQuery{CustomerID: "u-1", Status: ordercast.StatusPlaced}), "e-3")
	sameIDs("u-1's at r-2", list(ordercast.OrderQuery{CustomerID: "u-1", RestaurantID: "r-2"}))
	sameIDs("nobody's orders", list(ordercast.OrderQuery{CustomerID: "u-9"}))
	sameIDs("u-1's orders newest first", list(ordercast.OrderQuery{CustomerID: "u-1", Newest: true}), "e-3", "e-2", "e-1")
	paged := func(newest bool) []string {
		var ids []string
		page := ordercast.OrderQuery{CustomerID: "u-1", Limit: 1, Newest: newest}
		for range 4 {
			got, err := h.s.ListOrders(h.ctx, page)
			if err != nil {
				t.Fatalf("ListOrders(%+v): %v", page, err)
			}
			if len(got) == 0 {
				break
			}
			ids = append(ids, got[0].ID)
			c := page.Next(got[0])
			page.After = &c
		}
		return ids
	}
	sameIDs("u-1's orders in pages of one", paged(false), "e-1", "e-2", "e-3")
	sameIDs("u-1's orders in pages of one, newest first", paged(true), "e-3", "e-2", "e-1")

	// Refused while e-3 is in progress: nothing changes.
	ids := []string{"e-1", "e-2", "e-3", "f-1", "g-1"}
	before := h.snapshot(t, ids...)
	_, err := h.s.EraseCustomer(h.ctx, "u-1")
	wantCode(t, err, ordercast.ECustomerActive)
	if err != nil && !strings.Contains(ordercast.ErrorMessage(err), " 1 order") {
		t.Errorf("the refusal %q does not say how many orders are in progress (1)", ordercast.ErrorMessage(err))
	}
	h.unchanged(t, before, ids...)
	wantBounds(t, h, u1, 7, 0)
	_, err = h.s.EraseCustomer(h.ctx, "not a valid id")
	wantCode(t, err, ordercast.EInvalid)

	noted("e-3", ordercast.StatusCancelled, "")
	kept := h.snapshot(t, ids...)
	logR1, err := h.s.ScopeEventsAfter(h.ctx, r1, 0, 0)
	if err != nil {
		t.Fatalf("ScopeEventsAfter(%s): %v", r1.Key(), err)
	}
	published := h.pub.Len()
	erasing := time.Now()
	got, err := h.s.EraseCustomer(h.ctx, "u-1")
	erased := time.Now()
	// u-1's log: 3 creates, e-1's 2 changes, e-2's assignment and cancel, e-3's cancel. Notes: the
	// three creates', e-1's confirmation, e-2's cancel.
	if want := (ordercast.Erasure{Orders: 3, Notes: 5, LogEntries: 8}); err != nil || got != want {
		t.Fatalf("EraseCustomer(u-1) = %+v, %v; want %+v", got, err, want)
	}
	if h.pub.Len() != published {
		t.Errorf("EraseCustomer published %d events; an erasure is no event", h.pub.Len()-published)
	}
	for _, id := range []string{"e-1", "e-2", "e-3"} {
		want := kept.Orders[id]
		want.Details, want.CustomerID, want.Dropoff = json.RawMessage(`{}`), "", nil
		// When it was erased (the database's clock on PostgreSQL: within a second of ours).
		o := h.order(t, id)
		if o.ErasedAt == nil || o.ErasedAt.Before(erasing.Add(-time.Second)) || o.ErasedAt.After(erased.Add(time.Second)) {
			t.Errorf("erased %s's erased_at = %v, want the erasure's time, %s to %s", id, o.ErasedAt, erasing, erased)
		}
		want.ErasedAt = o.ErasedAt
		equalOrder(t, "erased "+id, o, want)
		evs, wantEvs := h.events(t, id), kept.Events[id]
		if len(evs) != len(wantEvs) {
			t.Fatalf("erased %s has %d events, want its %d", id, len(evs), len(wantEvs))
		}
		for i := range evs {
			w := wantEvs[i]
			w.Note = ""
			if g := normEvent(evs[i]); !reflect.DeepEqual(g, w) {
				t.Errorf("erased %s's event %d = %+v, want %+v (its note cleared, the rest kept)", id, i+1, g, w)
			}
		}
	}
	for _, id := range []string{"f-1", "g-1"} {
		equalOrder(t, "another customer's "+id, h.order(t, id), kept.Orders[id])
		if evs := normEvents(h.events(t, id)); !reflect.DeepEqual(evs, kept.Events[id]) {
			t.Errorf("another customer's %s's events changed: %+v, want %+v", id, evs, kept.Events[id])
		}
	}
	sameIDs("u-1's orders after the erasure", list(ordercast.OrderQuery{CustomerID: "u-1"}))
	sameIDs("u-2's orders after u-1's erasure", list(ordercast.OrderQuery{CustomerID: "u-2"}), "f-1")
	// The log stands where it stood, purged up to its head: a cursor from before is answered
	// with a fresh snapshot, from its head nothing.
	wantBounds(t, h, u1, 8, 8)
	wantPurged(t, h, u1, 0)
	wantPurged(t, h, u1, 7)
	wantLog(t, h, u1, 8, "")
	wantBounds(t, h, u2, 2, 0)
	// The restaurant's log keeps its entries; those of the erased orders read without notes.
	logR1After, err := h.s.ScopeEventsAfter(h.ctx, r1, 0, 0)
	if err != nil || len(logR1After) != len(logR1) {
		t.Fatalf("r-1's log after the erasure = %d entries, %v; want its %d", len(logR1After), err, len(logR1))
	}
	for i, e := range logR1After {
		erased := strings.HasPrefix(e.OrderID, "e-")
		if e.Pos != logR1[i].Pos || e.OrderID != logR1[i].OrderID || e.Seq != logR1[i].Seq || (erased && e.Note != "") || (!erased && e.Note != logR1[i].Note) {
			t.Errorf("r-1's entry %d after the erasure: %s seq %d note %q; before: %s seq %d note %q",
				i+1, e.OrderID, e.Seq, e.Note, logR1[i].OrderID, logR1[i].Seq, logR1[i].Note)
		}
	}

	// Idempotent: a second erasure finds nothing more.
	if got, err := h.s.EraseCustomer(h.ctx, "u-1"); err != nil || got != (ordercast.Erasure{}) {
		t.Errorf("a second EraseCustomer(u-1) = %+v, %v; want nothing erased", got, err)
	}
	after := h.snapshot(t, ids...)
	if got, err := h.s.EraseCustomer(h.ctx, "u-1"); err != nil || got != (ordercast.Erasure{}) {
		t.Errorf("a third EraseCustomer(u-1) = %+v, %v; want nothing erased", got, err)
	}
	h.unchanged(t, after, ids...)

	// The customer's next order goes on from the head: a cursor from before the erasure still
	// gets a snapshot, never the new order's entries as if they came after it.
	h.create(t, ordercast.NewOrder{ID: "e-4", RestaurantID: "r-1", CustomerID: "u-1"})
	h.move(t, "e-4", ordercast.StatusConfirmed)
	wantBounds(t, h, u1, 10, 8)
	wantPurged(t, h, u1, 1)
	wantLog(t, h, u1, 8, "e-4/1 e-4/2")
	sameIDs("u-1's orders after a new one", list(ordercast.OrderQuery{CustomerID: "u-1"}), "e-4")
	if _, err := h.s.EraseCustomer(h.ctx, "u-1"); ordercast.ErrorCode(err) != ordercast.ECustomerActive {
		t.Errorf("EraseCustomer(u-1) with e-4 in progress: %v, want %s", err, ordercast.ECustomerActive)
	}
}
