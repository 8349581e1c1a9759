package storetest

import (
	"slices"
	"testing"

	"github.com/ordercast/ordercast"
)

// PreActiveOrders are the orders a store's migration test plants, with raw SQL, in a database
// as a release before the active column left it (migration 006 of each store): each with
// restaurant r-1, customer u-1 and courier c-1, version 1 and one event of its status, and
// created, and last updated, at the microsecond Micros (the later, the newer).
var PreActiveOrders = []struct {
	ID     string
	Status ordercast.Status
	Micros int64
}{
	{"o-0", ordercast.StatusPlaced, 100},
	{"o-1", ordercast.StatusDelivered, 101},
	{"o-2", ordercast.StatusPreparing, 102},
	{"o-3", ordercast.StatusCancelled, 103},
	{"o-4", ordercast.StatusOutForDelivery, 104},
}

// MigratedActiveOrders checks a store opened on PreActiveOrders: every order that had not ended
// is found as active, newest first for all orders and most recently updated first for each of
// its parties (the same order here), and the ended ones are not; and a migrated order that ends
// leaves them.
func MigratedActiveOrders(t *testing.T, s ordercast.Store) {
	t.Helper()
	ctx := t.Context()
	want := []string{"o-4", "o-2", "o-0"}
	ids := func(orders []ordercast.Order) []string {
		ids := []string{}
		for _, o := range orders {
			ids = append(ids, o.ID)
		}
		return ids
	}
	check := func(want []string) {
		t.Helper()
		all, err := s.ActiveOrders(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(all); !slices.Equal(got, want) {
			t.Errorf("active orders: %v, want %v", got, want)
		}
		for _, p := range []ordercast.Party{restaurant1, customer1, courier1} {
			snap, err := s.ScopeSnapshot(ctx, p, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(snap.Orders); !slices.Equal(got, want) {
				t.Errorf("%s's active orders: %v, want %v", p.Key(), got, want)
			}
		}
	}
	check(want)
	if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "o-4", Status: ordercast.StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	check(want[1:])
}
