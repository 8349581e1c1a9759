package testutil

import (
	"context"
	"sync/atomic"

	"github.com/ordercast/ordercast"
)

// CouriersOrders is where a location tracker reads couriers' orders (location.Assignments).
type CouriersOrders interface {
	CouriersOrders(ctx context.Context, courierIDs []string) (map[string][]ordercast.Order, error)
}

// StoreAway reads couriers' orders from Orders, and fails as a store that is away
// (ordercast.EUnavailable) while Down is set.
type StoreAway struct {
	Orders CouriersOrders
	Down   atomic.Bool
}

// CouriersOrders reads the couriers' orders, unless the store is away.
func (a *StoreAway) CouriersOrders(ctx context.Context, courierIDs []string) (map[string][]ordercast.Order, error) {
	if a.Down.Load() {
		return nil, ordercast.Errorf(ordercast.EUnavailable, "the store is away")
	}
	return a.Orders.CouriersOrders(ctx, courierIDs)
}
