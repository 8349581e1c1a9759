package storetest

import (
	"testing"

	"github.com/ordercast/ordercast"
)

// exercisePlaces: an order's pickup and drop-off are kept and read back on every read, are
// optional, are part of what a repeated create must match, and bad coordinates change nothing.
func exercisePlaces(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	pickup := &ordercast.Point{Lat: 52.52, Lng: 13.405}
	dropoff := &ordercast.Point{Lat: 52.5301, Lng: 13.4102}
	o := h.create(t, ordercast.NewOrder{ID: "placed-1", Pickup: pickup, Dropoff: dropoff})
	for what, got := range map[string]ordercast.Order{"created": o, "read": h.order(t, "placed-1")} {
		if got.Pickup == nil || *got.Pickup != *pickup || got.Dropoff == nil || *got.Dropoff != *dropoff {
			t.Errorf("%s: pickup %v dropoff %v, want %v %v", what, got.Pickup, got.Dropoff, *pickup, *dropoff)
		}
	}
	active := h.active(t)
	if len(active) != 1 || active[0].Dropoff == nil || *active[0].Dropoff != *dropoff {
		t.Errorf("ActiveOrders = %v, want the order with its drop-off", active)
	}
	if got := h.create(t, ordercast.NewOrder{ID: "plain-1"}); got.Pickup != nil || got.Dropoff != nil {
		t.Errorf("an order without places has pickup %v, dropoff %v", got.Pickup, got.Dropoff)
	}
	if _, created, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "placed-1", Pickup: pickup, Dropoff: dropoff}); err != nil || created {
		t.Errorf("repeat = created %v, err %v; want the existing order", created, err)
	}
	_, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "placed-1", Pickup: pickup, Dropoff: pickup})
	wantCode(t, err, ordercast.EOrderExists)
	_, _, err = h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "bad-1", Dropoff: &ordercast.Point{Lat: 91}})
	wantCode(t, err, ordercast.EInvalidLocation)
	if _, err := h.s.Order(h.ctx, "bad-1"); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Errorf("an order with a bad drop-off was stored: %v", err)
	}
}
