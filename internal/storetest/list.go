package storetest

import (
	"cmp"
	"slices"
	"sync"
	"testing"

	"github.com/ordercast/ordercast"
)

// exerciseListOrders: ListOrders lists every order, ended ones too, oldest created first, orders
// of one time by id byte by byte (as SQLite compares them, whatever PostgreSQL's collation), or
// newest first, in just the order backwards; it keeps a restaurant's, a status's, a range of
// creation times; and pages of any size, each after the last order of the one before, hold every
// order once, in that order, either way.
func exerciseListOrders(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	list := func(q ordercast.OrderQuery) []ordercast.Order {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 100
		}
		got, err := h.s.ListOrders(h.ctx, q)
		if err != nil {
			t.Fatalf("ListOrders(%+v): %v", q, err)
		}
		return got
	}
	if got := list(ordercast.OrderQuery{}); len(got) != 0 {
		t.Fatalf("ListOrders on an empty store = %d orders, want none", len(got))
	}

	// Created at once, so that some share a batch and its time. Under a locale's collation
	// "a-2" comes before "B-1"; byte by byte it comes after.
	ids := []string{"B-1", "a-2", "c-3", "A-4", "b-5", "_6", "7", "C-8"}
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			restaurant := []string{"r-1", "r-2", ""}[i%3]
			_, _, errs[i] = h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: id, RestaurantID: restaurant})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %s: %v", ids[i], err)
		}
	}
	h.move(t, "a-2", ordercast.StatusDelivered)
	h.move(t, "c-3", ordercast.StatusCancelled)
	h.move(t, "B-1", ordercast.StatusConfirmed)

	var all []ordercast.Order
	for _, id := range ids {
		all = append(all, h.order(t, id))
	}
	slices.SortFunc(all, func(a, b ordercast.Order) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	keep := func(f func(ordercast.Order) bool) []ordercast.Order {
		var kept []ordercast.Order
		for _, o := range all {
			if f(o) {
				kept = append(kept, o)
			}
		}
		return kept
	}
	same := func(what string, got, want []ordercast.Order) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", what, listed(got), listed(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Fatalf("%s: %v, want %v", what, listed(got), listed(want))
			}
			equalOrder(t, what+" "+got[i].ID, got[i], want[i])
		}
	}

	same("every order", list(ordercast.OrderQuery{}), all)
	same("restaurant r-1's", list(ordercast.OrderQuery{RestaurantID: "r-1"}), keep(func(o ordercast.Order) bool { return o.RestaurantID == "r-1" }))
	same("the delivered", list(ordercast.OrderQuery{Status: ordercast.StatusDelivered}), keep(func(o ordercast.Order) bool { return o.Status == ordercast.StatusDelivered }))
	same("r-2's placed", list(ordercast.OrderQuery{RestaurantID: "r-2", Status: ordercast.StatusPlaced}),
		keep(func(o ordercast.Order) bool { return o.RestaurantID == "r-2" && o.Status == ordercast.StatusPlaced }))
	mid := all[len(all)/2].CreatedAt
	same("created since the middle one", list(ordercast.OrderQuery{Since: mid}), keep(func(o ordercast.Order) bool { return !o.CreatedAt.Before(mid) }))
	same("created before the middle one", list(ordercast.OrderQuery{Until: mid}), keep(func(o ordercast.Order) bool { return o.CreatedAt.Before(mid) }))

	backwards := func(orders []ordercast.Order) []ordercast.Order {
		r := slices.Clone(orders)
		slices.Reverse(r)
		return r
	}
	same("every order, newest first", list(ordercast.OrderQuery{Newest: true}), backwards(all))
	same("r-1's, newest first", list(ordercast.OrderQuery{Newest: true, RestaurantID: "r-1"}), backwards(keep(func(o ordercast.Order) bool { return o.RestaurantID == "r-1" })))
	same("the placed, newest first", list(ordercast.OrderQuery{Newest: true, Status: ordercast.StatusPlaced}), backwards(keep(func(o ordercast.Order) bool { return o.Status == ordercast.StatusPlaced })))
	same("created since the middle one, newest first", list(ordercast.OrderQuery{Newest: true, Since: mid}), backwards(keep(func(o ordercast.Order) bool { return !o.CreatedAt.Before(mid) })))
	same("the newest two", list(ordercast.OrderQuery{Newest: true, Limit: 2}), backwards(all)[:2])

	for _, q := range []ordercast.OrderQuery{{}, {RestaurantID: "r-1"}, {Since: mid}, {Newest: true}, {Newest: true, RestaurantID: "r-1"}, {Newest: true, Until: mid}} {
		want := list(q)
		for size := 1; size <= 3; size++ {
			var paged []ordercast.Order
			page := q
			page.Limit = size
			for range len(all) + 1 {
				got := list(page)
				paged = append(paged, got...)
				if len(got) < size {
					break
				}
				c := q.Next(got[len(got)-1])
				page.After = &c
			}
			same("pages", paged, want)
		}
	}
}

// listed is the ids of orders, for a message.
func listed(orders []ordercast.Order) []string {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	return ids
}
