package storetest

import (
	"slices"
	"testing"

	"github.com/ordercast/ordercast"
)

// PreActiveOrders are the orders a store's migration test plants, with raw SQL, in a database
// as a release before the active column left it (migration 006 of each store): each with
// restaurant r-1, customer u-1 and courier c-1, version 1 and one event of its status (at its
// update), created at the microsecond CreatedMicros and last updated at UpdatedMicros. The oldest
// was updated last, so that the newest first and the most recently updated first differ.
var PreActiveOrders = []struct {
	ID                           string
	Status                       ordercast.Status
	CreatedMicros, UpdatedMicros int64
}{
	{"o-0", ordercast.StatusPlaced, 100, 110},
	{"o-1", ordercast.StatusDelivered, 101, 101},
	{"o-2", ordercast.StatusPreparing, 102, 102},
	{"o-3", ordercast.StatusCancelled, 103, 103},
	{"o-4", ordercast.StatusOutForDelivery, 104, 104},
}

// MigratedActiveOrders checks a store opened on PreActiveOrders: every order that had not ended
// is found as active, newest first for all orders (migration 007) and most recently updated
// first for each of its parties, and the ended ones are not; and a migrated order that ends
// leaves them.
func MigratedActiveOrders(t *testing.T, s ordercast.Store) {
	t.Helper()
	ctx := t.Context()
	ids := func(orders []ordercast.Order) []string {
		ids := []string{}
		for _, o := range orders {
			ids = append(ids, o.ID)
		}
		return ids
	}
	check := func(wantAll, wantParty []string) {
		t.Helper()
		all, err := s.ActiveOrders(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(all); !slices.Equal(got, wantAll) {
			t.Errorf("active orders: %v, want %v (newest first)", got, wantAll)
		}
		for _, p := range []ordercast.Party{restaurant1, customer1, courier1} {
			snap, err := s.ScopeSnapshot(ctx, p, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(snap.Orders); !slices.Equal(got, wantParty) {
				t.Errorf("%s's active orders: %v, want %v (most recently updated first)", p.Key(), got, wantParty)
			}
		}
	}
	check([]string{"o-4", "o-2", "o-0"}, []string{"o-0", "o-4", "o-2"})
	if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "o-4", Status: ordercast.StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	check([]string{"o-2", "o-0"}, []string{"o-0", "o-2"})
}
