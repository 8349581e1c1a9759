package hub

import "sync"

// Subscription is one watcher's bounded mailbox. The hub puts messages in without blocking; the
// watcher waits on Ready and then Takes everything queued.
type Subscription struct {
	hub        *Hub
	orderID    string
	everyOrder bool
	size       int

	ready chan struct{} // capacity 1: "something is queued", coalesced

	mu       sync.Mutex
	queue    []*Message
	overflow bool
	closed   bool
}

func newSubscription(h *Hub, orderID string, size int) *Subscription {
	if size < 1 {
		size = 1
	}
	return &Subscription{hub: h, orderID: orderID, size: size, ready: make(chan struct{}, 1)}
}

// OrderID returns the watched order, or "" for a watcher of every order.
func (s *Subscription) OrderID() string { return s.orderID }

// Ready is signalled when messages are queued or the mailbox overflowed.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns the queued messages in publish order and whether any message was dropped because
// the mailbox was full since the last Take. A watcher that overflowed must catch up from the store.
func (s *Subscription) Take() (msgs []*Message, overflowed bool) {
	s.mu.Lock()
	msgs, overflowed = s.queue, s.overflow
	s.queue, s.overflow = nil, false
	s.mu.Unlock()
	return msgs, overflowed
}

// Close unsubscribes. It is safe to call more than once.
func (s *Subscription) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.queue = nil
	s.mu.Unlock()
	s.hub.unsubscribe(s)
}

// deliver queues m, or with m nil (or a full mailbox) flags the watcher as having missed events.
func (s *Subscription) deliver(m *Message) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if m != nil && len(s.queue) < s.size {
		if s.queue == nil {
			s.queue = make([]*Message, 0, min(s.size, 4))
		}
		s.queue = append(s.queue, m)
	} else {
		s.overflow = true
	}
	s.mu.Unlock()
	// Signal after unlocking: the flag and the queue are already visible, so a watcher woken by
	// this (or by an earlier signal it has not consumed yet) sees them. No update can be missed.
	select {
	case s.ready <- struct{}{}:
	default:
	}
}
