package hub

import "sync"

// Subscription is one watcher's bounded mailbox. The hub puts messages in without blocking; the
// watcher waits on Ready (or is called back, see OnReady) and then Takes everything queued.
type Subscription struct {
	hub        *Hub
	orderID    string
	everyOrder bool
	party      string // a watcher of one party's scope (SubscribeParty)
	statusOnly bool   // positions are not for it (SubscribeStatus); set before it is registered
	size       int

	mu     sync.Mutex
	ready  chan struct{} // capacity 1: "something is queued", coalesced; made on first Ready
	notify func(Wake)    // set by OnReady, or by Ready to signal ready
	queue  []*Message
	loc    *Location // the newest position not yet taken: one slot, latest wins
	// locs is a party watcher's slots: the newest position of each order not yet taken.
	locs     map[string]*Location
	overflow bool
	closed   bool
}

func newSubscription(h *Hub, orderID string, size int) *Subscription {
	if size < 1 {
		size = 1
	}
	return &Subscription{hub: h, orderID: orderID, size: size}
}

// OrderID returns the watched order, or "" for a watcher of every order.
func (s *Subscription) OrderID() string { return s.orderID }

// Ready is OnReady for a watcher with a goroutine of its own: a channel signalled whenever the
// callback would run, the signals coalesced (capacity 1). It is made on the first call, which
// sets the callback; do not mix it with OnReady.
func (s *Subscription) Ready() <-chan struct{} {
	s.mu.Lock()
	if ch := s.ready; ch != nil {
		s.mu.Unlock()
		return ch
	}
	ch := make(chan struct{}, 1)
	s.ready = ch
	s.mu.Unlock()
	s.OnReady(func(Wake) {
		select {
		case ch <- struct{}{}:
		default: // a signal not yet taken says it already
		}
	})
	return ch
}

// Wake is what the hub tells an OnReady callback.
type Wake struct {
	// Status says whether status events wait (messages, or an overflow to catch up from) rather
	// than only a position, so that the watcher's holder can run those first and a flood of
	// positions never delays a status event.
	Status bool
	// Inline says the callback runs on the goroutine that published a status event, outside the
	// hub's locks, among the first InlineWakes it wakes: the callback may deliver there and then,
	// as long as that never blocks (a write that does not wait for the client) and never reads
	// the store. Handing the delivery to another goroutine instead costs a wake-up, and on busy
	// cores the woken goroutine waits its turn behind every request being served.
	Inline bool
}

// InlineWakes bounds the watchers one published event may deliver to on its publisher's goroutine
// (Wake.Inline): an order watched from a thousand screens must not hold up the publisher's next
// commit while it writes to each.
const InlineWakes = 16

// OnReady makes the hub call fn whenever messages are queued, the mailbox overflowed or a
// position was put in a slot; at once if that happened already. fn runs on the publisher's
// goroutine, so unless the Wake says Inline it must only schedule work, never do it: this is how
// a watcher without a goroutine of its own (a connection held by a poller) is woken.
func (s *Subscription) OnReady(fn func(Wake)) {
	s.mu.Lock()
	s.notify = fn
	status := len(s.queue) > 0 || s.overflow
	pending := status || s.loc != nil || len(s.locs) > 0
	s.mu.Unlock()
	if pending {
		fn(Wake{Status: status})
	}
}

// Take returns the queued messages in publish order and whether any message was dropped because
// the mailbox was full since the last Take. A watcher that overflowed must catch up from the store.
// It hands over the mailbox's array, so the next message queued allocates another: a watcher
// taking on every event uses TakeInto.
func (s *Subscription) Take() (msgs []*Message, overflowed bool) {
	s.mu.Lock()
	msgs, overflowed = s.queue, s.overflow
	s.queue, s.overflow = nil, false
	s.mu.Unlock()
	return msgs, overflowed
}

// keptQueue is the most room a mailbox keeps once taken (TakeInto), and the room it starts with:
// one order's events come one or two at a time, and the room a burst grew is let go, as an idle
// watcher must not hold it.
const keptQueue = 4

// TakeInto is Take appending the messages to buf, which it returns, instead of handing over the
// mailbox's array: the mailbox keeps its small array (keptQueue), emptied, so that a watcher that
// takes into a buffer of its own (one on its stack) allocates nothing per event.
func (s *Subscription) TakeInto(buf []*Message) (msgs []*Message, overflowed bool) {
	s.mu.Lock()
	msgs, overflowed = append(buf, s.queue...), s.overflow
	if cap(s.queue) <= keptQueue {
		clear(s.queue) // the taken messages must not stay reachable from the kept array
		s.queue = s.queue[:0]
	} else {
		s.queue = nil
	}
	s.overflow = false
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
	s.queue, s.loc, s.locs, s.overflow = nil, nil, nil, false // a late wake finds nothing to do
	s.mu.Unlock()
	s.hub.unsubscribe(s)
}

// put queues m; a full mailbox drops it and flags the watcher as having missed events. It
// returns the wake-up, for the publisher to run once it has let go of the hub's locks.
func (s *Subscription) put(m *Message) waker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if len(s.queue) < s.size {
		if s.queue == nil {
			s.queue = make([]*Message, 0, min(s.size, keptQueue))
		}
		s.queue = append(s.queue, m)
	} else {
		s.overflow = true
	}
	return s.notify
}

// markMissed flags the watcher as having missed events, so that it catches up from the store.
func (s *Subscription) markMissed() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.overflow = true
	s.wakeUnlock(true)
}

// wakeUnlock unlocks s.mu, then wakes the watcher, for a status event (status) or a position.
// Signalling after unlocking is safe: the flag and the queue are already visible, so a watcher
// woken by this (or by an earlier signal it has not consumed yet) sees them. No update can be
// missed.
func (s *Subscription) wakeUnlock(status bool) {
	w := waker(s.notify)
	s.mu.Unlock()
	w.wake(Wake{Status: status})
}

// waker is how one subscription is woken: its OnReady callback, nil before it has one.
type waker func(Wake)

func (w waker) wake(wk Wake) {
	if w != nil {
		w(wk)
	}
}
