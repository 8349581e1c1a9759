package hub_test

import (
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// A watcher that takes nothing while a courier posts many positions then finds only the newest,
// and its mailbox, which holds the status events, neither filled nor overflowed.
func TestLocationSlotKeepsOnlyTheNewest(t *testing.T) {
	h := hub.New()
	s := h.Subscribe("o-1")
	defer s.Close()
	other := h.Subscribe("o-2")
	defer other.Close()
	at := time.Now()
	h.Publish(ordercast.Event{OrderID: "o-1", Seq: 5, Status: ordercast.StatusOutForDelivery})
	for i := range 10 * hub.DefaultMailboxSize {
		h.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", Lat: float64(i), At: at.Add(time.Duration(i) * time.Millisecond)}))
	}
	select {
	case <-s.Ready():
	default:
		t.Fatal("not woken")
	}
	l := s.TakeLocation()
	if l == nil || l.Update.Lat != float64(10*hub.DefaultMailboxSize-1) {
		t.Fatalf("took %v, want only the newest position", l)
	}
	if l := s.TakeLocation(); l != nil {
		t.Fatalf("a second take found %v, want nothing: positions are one slot, not a queue", l)
	}
	msgs, overflowed := s.Take()
	if len(msgs) != 1 || overflowed || msgs[0].Event.Seq != 5 {
		t.Fatalf("mailbox = %d messages, overflowed %v; want the one status event", len(msgs), overflowed)
	}
	if l := other.TakeLocation(); l != nil {
		t.Fatalf("another order's watcher got %v", l)
	}
}

// Two posts of one courier may publish in either order (each after the tracker let its lock
// go): a fix older than the one in a watcher's slot leaves it there, on a stream of the order
// and on a party's; the courier the order was given to later replaces it whatever its time (a
// reassignment), and the old courier's, late, does not replace the new one's.
func TestLocationSlotKeepsTheNewerOfACourier(t *testing.T) {
	h := hub.New()
	one := h.Subscribe("o-1")
	defer one.Close()
	party := h.SubscribeParty("restaurant:r")
	defer party.Close()
	at := time.Now()
	pos := func(courier string, lat float64, at time.Time) *hub.Location {
		version := map[string]int64{"c-1": 4, "c-2": 5}[courier] // c-2 was given the order after c-1
		return hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", CourierID: courier, OrderVersion: version, Lat: lat, At: at, Parties: []string{"restaurant:r"}})
	}
	taken := func() (float64, float64) {
		t.Helper()
		l, ls := one.TakeLocation(), party.TakeLocations()
		if l == nil || ls["o-1"] == nil {
			t.Fatalf("slots hold %v and %v, want a position in each", l, ls)
		}
		return l.Update.Lat, ls["o-1"].Update.Lat
	}
	h.PublishLocation(pos("c-1", 2, at))
	h.PublishLocation(pos("c-1", 1, at.Add(-time.Second)))
	if a, b := taken(); a != 2 || b != 2 {
		t.Fatalf("after the newer fix then an older one, the slots hold lat %v and %v; want the newer (2)", a, b)
	}
	h.PublishLocation(pos("c-1", 2, at))
	h.PublishLocation(pos("c-2", 3, at.Add(-time.Minute)))
	if a, b := taken(); a != 3 || b != 3 {
		t.Fatalf("after another courier's fix, the slots hold lat %v and %v; want the other courier's (3)", a, b)
	}
	h.PublishLocation(pos("c-2", 3, at.Add(-time.Minute)))
	h.PublishLocation(pos("c-1", 4, at.Add(time.Minute)))
	if a, b := taken(); a != 3 || b != 3 {
		t.Fatalf("after the old courier's late fix, the slots hold lat %v and %v; want the new courier's (3)", a, b)
	}
}

// A long poll's watcher (SubscribeStatus) is woken by the order's status events alone: a
// courier's positions, seconds apart for the whole ride, neither wake it nor wait in its slot.
func TestAStatusWatcherIsNotWokenByPositions(t *testing.T) {
	h := hub.New()
	s := h.SubscribeStatus("o-1")
	defer s.Close()
	ready := s.Ready()
	h.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", Lat: 1, At: time.Now()}))
	select {
	case <-ready:
		t.Fatal("woken by a position")
	default:
	}
	if l := s.TakeLocation(); l != nil {
		t.Fatalf("its slot holds %v, want nothing", l)
	}
	h.Publish(ordercast.Event{OrderID: "o-1", Seq: 6, Status: ordercast.StatusDelivered})
	select {
	case <-ready:
	default:
		t.Fatal("not woken by the status event")
	}
	if msgs, _ := s.Take(); len(msgs) != 1 || msgs[0].Event.Seq != 6 {
		t.Fatalf("took %d messages, want the status event", len(msgs))
	}
}
