package demo_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/demo"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
)

// courierPage is a store on which a person on each courier's page takes the order out of the
// simulator's hands, and the simulator's poster: the person presses "Picked up" just before the
// simulator would set out for delivery, then "Delivered" early, while the simulator drives its
// route (at the order's second position). The poster answers as the location tracker does: how
// many of the courier's orders are out for delivery, so none once the order is delivered.
type courierPage struct {
	ordercast.Store
	mu        sync.Mutex
	posted    map[string]int  // positions posted while each order was out for delivery
	delivered map[string]bool // the orders the person delivered
}

// person makes a change as the order's courier, as the courier's page does.
func (s *courierPage) person(ctx context.Context, orderID string, to ordercast.Status) error {
	o, err := s.Store.Order(ctx, orderID)
	if err != nil {
		return err
	}
	_, _, _, err = s.Store.AppendStatus(ctx, ordercast.StatusChange{
		OrderID: orderID, Status: to, Note: "set on the courier's page", Actor: "courier:" + o.CourierID, ExpectedVersion: o.Version,
	})
	return err
}

func (s *courierPage) AppendStatus(ctx context.Context, sc ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	if sc.Status == ordercast.StatusOutForDelivery && sc.Actor == demo.Actor {
		_ = s.person(ctx, sc.OrderID, ordercast.StatusOutForDelivery) // the simulator's change then conflicts
	}
	return s.Store.AppendStatus(ctx, sc)
}

func (s *courierPage) Post(ctx context.Context, courierID string, _ ordercast.Position) (int, error) {
	orders, err := s.Store.CouriersOrders(ctx, []string{courierID})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range orders[courierID] {
		if o.Status != ordercast.StatusOutForDelivery {
			continue
		}
		s.mu.Lock()
		s.posted[o.ID]++
		early := s.posted[o.ID] == 2
		s.mu.Unlock()
		if early {
			if err := s.person(ctx, o.ID, ordercast.StatusDelivered); err == nil {
				s.mu.Lock()
				s.delivered[o.ID] = true
				s.mu.Unlock()
				continue
			}
		}
		n++
	}
	return n, nil
}

// lastCourier is the courier an order's events evs last assigned.
func lastCourier(evs []ordercast.Event) string {
	courier := ""
	for _, ev := range evs {
		if ev.Kind == ordercast.KindCourier {
			courier = ev.CourierID
		}
	}
	return courier
}

func (s *courierPage) deliveredCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.delivered)
}

// TestCourierPageTakesOverTheSimulatedOrder: a person on a demo courier's page who presses
// "Picked up" before the simulator and "Delivered" while the simulator still drives the route
// ends that order's simulation at once: the simulator writes nothing more to the order and its
// courier is free for the next, so with drives an hour long every courier still delivers order
// after order.
func TestCourierPageTakesOverTheSimulatedOrder(t *testing.T) {
	rec := &storetest.Recorder{}
	st := &courierPage{Store: openStore(t, rec), posted: map[string]int{}, delivered: map[string]bool{}}
	sim := demo.New(st)
	sim.Every, sim.MinStep, sim.MaxStep = time.Millisecond, time.Millisecond, 2*time.Millisecond
	sim.CancelChance = 0
	sim.MaxActive = len(demo.Couriers)
	sim.Positions, sim.Drive, sim.Tick = st, time.Hour, time.Millisecond
	if err := sim.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	// More deliveries than couriers: a courier held to the end of its hour-long drive, or kept
	// by an order that ended elsewhere, would stop them.
	want := 2 * len(demo.Couriers)
	testutil.WaitFor(t, fmt.Sprintf("%d orders delivered on the courier's page", want), func() bool {
		return st.deliveredCount() >= want
	})
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	byOrder := map[string][]ordercast.Event{}
	for _, ev := range rec.Events() {
		byOrder[ev.OrderID] = append(byOrder[ev.OrderID], ev)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for id := range st.delivered {
		evs := byOrder[id]
		var got []string
		for _, ev := range evs[len(evs)-2:] {
			got = append(got, string(ev.Status)+" by "+ev.Actor)
		}
		courier := "courier:" + lastCourier(evs)
		if want := []string{"out_for_delivery by " + courier, "delivered by " + courier}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("order %s ended with %v, want %v: nothing of the simulator's after the person's changes", id, got, want)
		}
	}
}
