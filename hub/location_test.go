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
		h.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", Lat: float64(i), At: at}))
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
