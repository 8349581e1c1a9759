package hub

import (
	"encoding/json"
	"time"

	"github.com/ordercast/ordercast"
)

// Location is a courier's newest position for one order, encoded once; its bytes are shared,
// read-only, by every watcher of the order. It is not a Message: it has no seq and is never put in
// a mailbox, so it can neither fill one nor wait behind another position.
type Location struct {
	Update ordercast.LocationUpdate
	JSON   []byte
}

// NewLocation encodes u once for delivery, typed (ordercast.LocationType) so that a client
// reading bare JSON messages tells it from a status event.
func NewLocation(u ordercast.LocationUpdate) *Location {
	u.Type = ordercast.LocationType
	b, err := json.Marshal(u)
	if err != nil {
		// Numbers were validated finite, the rest is strings and a time: encoding cannot fail.
		panic("hub: encode location: " + err.Error())
	}
	return &Location{Update: u, JSON: b}
}

// Fresh reports whether the position is at most maxAge old at now.
func (l *Location) Fresh(now time.Time, maxAge time.Duration) bool {
	return l != nil && now.Sub(l.Update.At) <= maxAge
}

// Replaces reports whether l takes the place of old (nil: none) in a watcher's slot or on its
// screen: as ordercast.LocationUpdate.Replaces says, a later fix, or another courier's. Two posts
// of one courier may publish in either order (each after the tracker let its lock go); this keeps
// the newer wherever it lands first.
func (l *Location) Replaces(old *Location) bool {
	return old == nil || l.Update.Replaces(old.Update)
}

// PublishLocation puts l in the location slot of every watcher of its order, and of every
// watcher of the parties it names, replacing any position of that order the watcher has not
// taken yet: latest wins. It never blocks on a watcher.
//
// Unlike Publish, it wakes each watcher under the hub's read lock, with nothing to collect: such
// a Wake is never Inline, so its callback only schedules work (OnReady) and cannot close its
// subscription, which would take the lock for writing.
func (h *Hub) PublishLocation(l *Location) {
	sh := h.shard(l.Update.OrderID)
	sh.mu.RLock()
	if t := sh.topics[l.Update.OrderID]; t != nil {
		for s := range t.subs {
			s.deliverLocation(l)
		}
	}
	sh.mu.RUnlock()
	if len(l.Update.Parties) == 0 {
		return
	}
	h.partyMu.RLock()
	for _, party := range l.Update.Parties {
		for s := range h.parties[party] {
			s.deliverLocation(l)
		}
	}
	h.partyMu.RUnlock()
}

// TakeLocations returns a party watcher's newest position of each order put in its slots since
// the last call, keyed by order id, or nil.
func (s *Subscription) TakeLocations() map[string]*Location {
	s.mu.Lock()
	locs := s.locs
	s.locs = nil
	s.mu.Unlock()
	return locs
}

// TakeLocation returns the newest position put in the slot since the last call, or nil.
func (s *Subscription) TakeLocation() *Location {
	s.mu.Lock()
	l := s.loc
	s.loc = nil
	s.mu.Unlock()
	return l
}

// deliverLocation puts l in the slot unless the slot holds a newer one of the same courier
// (Replaces), and wakes the watcher.
func (s *Subscription) deliverLocation(l *Location) {
	s.mu.Lock()
	if s.closed || s.statusOnly {
		s.mu.Unlock()
		return
	}
	if s.party != "" {
		if s.locs == nil {
			s.locs = make(map[string]*Location, 1)
		}
		if l.Replaces(s.locs[l.Update.OrderID]) {
			s.locs[l.Update.OrderID] = l
		}
	} else if l.Replaces(s.loc) {
		s.loc = l
	}
	s.wakeUnlock(false)
}
