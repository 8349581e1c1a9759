package location_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/location"
)

// Two doors 2.2 km apart on a meridian (0.001° of latitude is 111 m), and the places a courier
// carrying both orders passes.
var (
	aliceDoor = ordercast.Point{Lat: 52.500, Lng: 13.4}
	bobDoor   = ordercast.Point{Lat: 52.520, Lng: 13.4}
	between   = ordercast.Point{Lat: 52.510, Lng: 13.4} // 1.1 km from each
	atBob     = ordercast.Point{Lat: 52.5195, Lng: 13.4}
	atAlice   = ordercast.Point{Lat: 52.5005, Lng: 13.4}
	pastBob   = ordercast.Point{Lat: 52.5240, Lng: 13.4} // 440 m past Bob's door
)

// privacyCase is a tracker over a courier's orders, held in as, and a subscription to each.
type privacyCase struct {
	t     *testing.T
	h     *hub.Hub
	as    *switchable
	tr    *location.Tracker
	subs  map[string]*hub.Subscription
	clock time.Time
}

func newPrivacyCase(t *testing.T, orders ...ordercast.Order) *privacyCase {
	h := hub.New()
	as := &switchable{orders: orders}
	c := &privacyCase{t: t, h: h, as: as, tr: openKept(t, h, as), subs: map[string]*hub.Subscription{}, clock: time.Now().Add(-time.Minute)}
	for _, o := range orders {
		s := h.Subscribe(o.ID)
		t.Cleanup(s.Close)
		c.subs[o.ID] = s
	}
	return c
}

// post posts the courier's fix at p, a second after the last, and returns what became of it and
// which orders' watchers got it.
func (c *privacyCase) post(p ordercast.Point, accuracyM float64) (location.PostResult, map[string]bool) {
	c.t.Helper()
	c.clock = c.clock.Add(time.Second)
	r := c.tr.PostMany(context.Background(), []location.CourierPosition{{CourierID: "c-1", Position: ordercast.Position{Point: p, AccuracyM: &accuracyM, At: c.clock}}})[0]
	if r.Err != nil {
		c.t.Fatal(r.Err)
	}
	got := map[string]bool{}
	for id, s := range c.subs {
		if s.TakeLocation() != nil {
			got[id] = true
		}
	}
	return r, got
}

// expect posts a fine fix at p and checks which orders it reached.
func (c *privacyCase) expect(what string, p ordercast.Point, want ...string) location.PostResult {
	c.t.Helper()
	r, got := c.post(p, 5)
	if len(got) != len(want) || r.Orders != len(want) {
		c.t.Errorf("%s: reached %v (%d orders), want %v", what, got, r.Orders, want)
	}
	for _, id := range want {
		if !got[id] {
			c.t.Errorf("%s: order %s got nothing, want the position", what, id)
		}
	}
	return r
}

func order(id, customer string, dropoff *ordercast.Point) ordercast.Order {
	return ordercast.Order{ID: id, Status: ordercast.StatusOutForDelivery, CourierID: "c-1", CustomerID: customer,
		Dropoff: dropoff, UpdatedAt: time.Now().Add(-10 * time.Minute)}
}

// TestACourierOfSeveralCustomersShowsNoOneAnothersDoor: a courier carrying two customers' orders
// drives to one door, then the other. Each customer sees the courier on the way, but not near
// the other's door (--location-privacy-radius), where the position reaches that door's order
// alone; nor, after that order is delivered, while the courier is still there, until a fine fix
// says it has left. Without it, Alice watched the courier stop at Bob's door, and her trail kept
// the way there after Bob's order ended.
func TestACourierOfSeveralCustomersShowsNoOneAnothersDoor(t *testing.T) {
	c := newPrivacyCase(t, order("a", "alice", &aliceDoor), order("b", "bob", &bobDoor))
	c.expect("between the doors", between, "a", "b")
	c.expect("at Bob's door", atBob, "b")
	c.expect("at Alice's door", atAlice, "a")
	c.expect("at Bob's door again", atBob, "b")

	// Bob's order is delivered while the courier stands at his door.
	c.as.set(order("a", "alice", &aliceDoor))
	c.h.Publish(ordercast.Event{OrderID: "b", Seq: 6, Status: ordercast.StatusDelivered, At: time.Now()})
	if r := c.expect("at Bob's door after his delivery", atBob); r.Missed != location.MissedPrivate {
		t.Errorf("a fix kept from every order for another customer's sake says %q, want %q", r.Missed, location.MissedPrivate)
	}
	if r, got := c.post(pastBob, 500); len(got) != 0 {
		t.Errorf("a coarse fix outside Bob's door reached %v (%+v): it does not say the courier left", got, r)
	}
	c.expect("past Bob's door, a fine fix", pastBob, "a")
	c.expect("back at Bob's door, once it left", atBob, "a")

	// Alice's trail holds none of it, but for its newest position, after the courier left.
	_, trail := c.tr.Trail("a")
	for _, f := range trail[:len(trail)-1] {
		if ordercast.DistanceM(f.Point, bobDoor) <= location.DefaultPrivacyM {
			t.Errorf("Alice's trail holds %v, %.0f m from Bob's door, from before the courier left it", f.Point, ordercast.DistanceM(f.Point, bobDoor))
		}
	}
}

// TestAnOrderWithoutADropOffKeepsItsCourierFromTheOthers: where the other customer's door is,
// the server cannot tell without its drop-off; while the courier carries that order, its
// positions reach that order alone. After it is delivered, where the courier was then (its last
// position, at the door) stays private as a drop-off would.
func TestAnOrderWithoutADropOffKeepsItsCourierFromTheOthers(t *testing.T) {
	c := newPrivacyCase(t, order("a", "alice", &aliceDoor), order("b", "bob", nil))
	c.expect("between the doors", between, "b")
	c.expect("at Bob's door", atBob, "b")
	c.as.set(order("a", "alice", &aliceDoor))
	c.h.Publish(ordercast.Event{OrderID: "b", Seq: 6, Status: ordercast.StatusDelivered, At: time.Now()})
	c.expect("at Bob's door after his delivery", atBob)
	c.expect("past Bob's door", pastBob, "a")

	// Neither has a drop-off: the courier is on no one's map until one order is delivered, and
	// then not near where it was delivered (the courier's last fix: no order showed one).
	c = newPrivacyCase(t, order("a", "alice", nil), order("b", "bob", nil))
	if r := c.expect("anywhere", atBob); r.Missed != location.MissedPrivate {
		t.Errorf("a fix kept from both orders says %q, want %q", r.Missed, location.MissedPrivate)
	}
	c.as.set(order("a", "alice", nil))
	c.h.Publish(ordercast.Event{OrderID: "b", Seq: 6, Status: ordercast.StatusDelivered, At: time.Now()})
	c.expect("where Bob's order was delivered", atBob)
	c.expect("away from there", pastBob, "a")
}

// TestWhatIsNoOtherCustomersDoorIsShown: one customer's two orders share the courier, a
// neighbour's door within the radius of one's own hides nothing its customer does not see from
// home, an order picked up after another's delivery never saw the way to that door, and a radius
// of 0 shows every order every position.
func TestWhatIsNoOtherCustomersDoorIsShown(t *testing.T) {
	t.Run("one customer's orders", func(t *testing.T) {
		c := newPrivacyCase(t, order("a", "alice", &aliceDoor), order("b", "alice", nil))
		c.expect("anywhere", atBob, "a", "b")
	})
	t.Run("neighbours", func(t *testing.T) {
		next := ordercast.Point{Lat: aliceDoor.Lat + 0.001, Lng: aliceDoor.Lng} // 111 m
		c := newPrivacyCase(t, order("a", "alice", &aliceDoor), order("b", "bob", &next))
		c.expect("at the neighbour's door", next, "a", "b")
	})
	t.Run("picked up after the other's delivery", func(t *testing.T) {
		c := newPrivacyCase(t, order("b", "bob", &bobDoor))
		c.expect("at Bob's door", atBob, "b")
		delivered := c.clock // the courier's fixes come after it
		c.as.set()
		c.h.Publish(ordercast.Event{OrderID: "b", Seq: 6, Status: ordercast.StatusDelivered, At: delivered})
		next := order("a", "alice", &aliceDoor)
		next.UpdatedAt = delivered.Add(time.Second) // its pickup, at a restaurant near Bob's
		c.as.set(next)
		c.subs["a"] = c.h.Subscribe("a")
		t.Cleanup(c.subs["a"].Close)
		c.expect("near Bob's door, Alice's order picked up after", atBob, "a")
	})
	t.Run("radius 0", func(t *testing.T) {
		h := hub.New()
		as := &switchable{orders: []ordercast.Order{order("a", "alice", &aliceDoor), order("b", "bob", nil)}}
		c := &privacyCase{t: t, h: h, as: as, subs: map[string]*hub.Subscription{}, clock: time.Now().Add(-time.Minute),
			tr: openKept(t, h, as, func(tr *location.Tracker) { tr.PrivacyM = 0 })}
		for _, id := range []string{"a", "b"} {
			c.subs[id] = h.Subscribe(id)
			t.Cleanup(c.subs[id].Close)
		}
		c.expect("at Bob's door", atBob, "a", "b")
	})
}

// TestANodeThatOnlyHeardOfTheCourierKeepsTheDoorPrivate: in a cluster, a node that took no post
// of the courier while it carried Bob's order, only its positions from another node, still
// hears of the order's end and keeps the door where the courier then was private: the
// courier's next post may land on it, at Bob's door, and must not reach Alice.
func TestANodeThatOnlyHeardOfTheCourierKeepsTheDoorPrivate(t *testing.T) {
	c := newPrivacyCase(t, order("a", "alice", &aliceDoor))
	c.clock = c.clock.Add(time.Second)
	c.tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "b", CourierID: "c-1", Lat: atBob.Lat, Lng: atBob.Lng, At: c.clock}})
	c.h.Publish(ordercast.Event{OrderID: "b", Seq: 6, Status: ordercast.StatusDelivered, At: time.Now()})
	c.expect("its first post here, at Bob's door", atBob)
	c.expect("away from it", pastBob, "a")
}

// TestAPrivateDoorIsLetGoAfterItsHold: a courier whose phone posts nothing from outside a door
// it delivered to (switched off there, say) does not keep that door's neighbourhood off its
// other customers' maps for good: the zone holds 15 minutes.
func TestAPrivateDoorIsLetGoAfterItsHold(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	h := hub.New()
	as := &switchable{orders: []ordercast.Order{order("a", "alice", &aliceDoor), order("b", "bob", &bobDoor)}}
	tr := openKept(t, h, as, func(tr *location.Tracker) { tr.Now = now })
	post := func(p ordercast.Point) int {
		t.Helper()
		accuracy := 5.0
		r := tr.PostMany(context.Background(), []location.CourierPosition{{CourierID: "c-1", Position: ordercast.Position{Point: p, AccuracyM: &accuracy, At: now()}}})[0]
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Orders
	}
	if n := post(atBob); n != 1 {
		t.Fatalf("at Bob's door: %d orders, want Bob's", n)
	}
	as.set(order("a", "alice", &aliceDoor))
	h.Publish(ordercast.Event{OrderID: "b", Seq: 6, Status: ordercast.StatusDelivered, At: now()})
	clock.Add(int64(14 * time.Minute))
	if n := post(atBob); n != 0 {
		t.Fatalf("14 minutes after Bob's delivery, still at his door: %d orders, want none", n)
	}
	clock.Add(int64(2 * time.Minute))
	if n := post(atBob); n != 1 {
		t.Errorf("16 minutes after Bob's delivery, still at his door: %d orders, want Alice's: the zone outlived its hold", n)
	}
}
