// Package hub fans committed events out to the watchers on this node. It is keyed by order id and
// sharded so that publishers for different orders rarely share a lock, and it never blocks a
// publisher on a slow watcher: each watcher has a small bounded mailbox and is told when it
// overflowed, so that it can catch up from the store instead of being left with a hole.
package hub

import (
	"encoding/json"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/ordercast/ordercast"
)

// Defaults for the hub's tunables.
const (
	// DefaultMailboxSize is how many undelivered messages one order's watcher may hold. Orders
	// change a handful of times in their life, so a watcher this far behind is stuck, not busy.
	DefaultMailboxSize = 16
	// DefaultAllMailboxSize is the mailbox of a watcher of every order (an operator's console),
	// which sees the whole node's traffic.
	DefaultAllMailboxSize = 1024
	// DefaultPartyMailboxSize is the mailbox of a watcher of one party (a restaurant's board):
	// tens of orders, each changing a handful of times.
	DefaultPartyMailboxSize = 256

	shardCount = 64
)

// Message is one committed event as delivered to watchers. JSON is the event encoded once per
// publish; its bytes are shared, read-only, by every watcher of the order.
type Message struct {
	Event ordercast.Event
	JSON  []byte
}

// NewMessage encodes ev once for delivery.
func NewMessage(ev ordercast.Event) *Message {
	b, err := json.Marshal(ev.Wire())
	if err != nil {
		// An Event is strings, integers and a time: encoding cannot fail.
		panic("hub: encode event: " + err.Error())
	}
	return &Message{Event: ev, JSON: b}
}

// Hub is the in-memory fan-out of one node. The zero value is not usable; call New.
type Hub struct {
	// MailboxSize (a watcher of one order), AllMailboxSize (of every order) and
	// PartyMailboxSize (of one party) bound each watcher's undelivered messages; set before use.
	MailboxSize      int
	AllMailboxSize   int
	PartyMailboxSize int

	seed   maphash.Seed
	shards [shardCount]shard

	allMu sync.RWMutex
	all   map[*Subscription]struct{}

	// parties are the watchers of each party's scope, keyed by ordercast.Party.Key. An event
	// reaches those of the parties its marks name: the scope is filtered here, by the store's
	// own account of whom the event concerns, never by reading the store.
	partyMu sync.RWMutex
	parties map[string]map[*Subscription]struct{}

	watchers atomic.Int64
}

type shard struct {
	mu     sync.RWMutex
	topics map[string]*topic
}

// topic is the set of watchers of one order and the highest seq published to them, with when
// that event was committed (Unix microseconds, as the stores keep it): a catch-up that finds
// another commit under that seq knows the history went back (Feed.CatchUp). Two publishes of
// one order racing may leave lastAt a step behind lastSeq: that costs a catch-up read, as the
// watchers judge by what they sent.
type topic struct {
	subs    map[*Subscription]struct{}
	lastSeq atomic.Int64
	lastAt  atomic.Int64
}

var _ ordercast.Publisher = (*Hub)(nil)

// New returns an empty hub with the default mailbox sizes.
func New() *Hub {
	h := &Hub{
		MailboxSize:      DefaultMailboxSize,
		AllMailboxSize:   DefaultAllMailboxSize,
		PartyMailboxSize: DefaultPartyMailboxSize,
		seed:             maphash.MakeSeed(),
		all:              make(map[*Subscription]struct{}),
		parties:          make(map[string]map[*Subscription]struct{}),
	}
	for i := range h.shards {
		h.shards[i].topics = make(map[string]*topic)
	}
	return h
}

func (h *Hub) shard(orderID string) *shard {
	return &h.shards[maphash.String(h.seed, orderID)%shardCount]
}

// Subscribe registers a watcher of one order. The caller must Close the subscription.
func (h *Hub) Subscribe(orderID string) *Subscription {
	return h.subscribe(newSubscription(h, orderID, h.MailboxSize))
}

// subscribe registers s, a watcher of its order, made and set up before any publisher sees it.
func (h *Hub) subscribe(s *Subscription) *Subscription {
	orderID := s.orderID
	sh := h.shard(orderID)
	sh.mu.Lock()
	t := sh.topics[orderID]
	if t == nil {
		t = &topic{subs: make(map[*Subscription]struct{}, 1)}
		sh.topics[orderID] = t
	}
	t.subs[s] = struct{}{}
	sh.mu.Unlock()
	h.watchers.Add(1)
	return s
}

// SubscribeStatus registers a watcher of one order's status alone: positions neither fill its
// slot nor wake it. A long poll is one: it answers on a change of version, with the newest
// position read then, and would otherwise be woken by every position for nothing. The caller
// must Close the subscription.
func (h *Hub) SubscribeStatus(orderID string) *Subscription {
	s := newSubscription(h, orderID, h.MailboxSize)
	s.statusOnly = true // before it is registered: no position can reach it first
	return h.subscribe(s)
}

// SubscribeAll registers a watcher of every order. The caller must Close the subscription.
func (h *Hub) SubscribeAll() *Subscription {
	s := newSubscription(h, "", h.AllMailboxSize)
	s.everyOrder = true
	h.allMu.Lock()
	h.all[s] = struct{}{}
	h.allMu.Unlock()
	h.watchers.Add(1)
	return s
}

// SubscribeParty registers a watcher of one party's scope (party is ordercast.Party.Key): it
// receives every event whose marks name the party. The caller must Close the subscription.
func (h *Hub) SubscribeParty(party string) *Subscription {
	s := newSubscription(h, "", h.PartyMailboxSize)
	s.party = party
	h.partyMu.Lock()
	subs := h.parties[party]
	if subs == nil {
		subs = make(map[*Subscription]struct{}, 1)
		h.parties[party] = subs
	}
	subs[s] = struct{}{}
	h.partyMu.Unlock()
	h.watchers.Add(1)
	return s
}

func (h *Hub) unsubscribe(s *Subscription) {
	if s.party != "" {
		h.partyMu.Lock()
		if subs := h.parties[s.party]; subs != nil {
			delete(subs, s)
			if len(subs) == 0 {
				delete(h.parties, s.party)
			}
		}
		h.partyMu.Unlock()
	} else if s.everyOrder {
		h.allMu.Lock()
		delete(h.all, s)
		h.allMu.Unlock()
	} else {
		sh := h.shard(s.orderID)
		sh.mu.Lock()
		if t := sh.topics[s.orderID]; t != nil {
			delete(t.subs, s)
			if len(t.subs) == 0 {
				delete(sh.topics, s.orderID) // no memory stays behind the last watcher
			}
		}
		sh.mu.Unlock()
	}
	h.watchers.Add(-1)
}

// Publish delivers ev to every watcher of its order, to every watcher of all orders, and to the
// watchers of each party whose log it is in (its Marks). It never blocks on a watcher, and
// encodes the event only if someone is watching.
func (h *Hub) Publish(ev ordercast.Event) {
	var m *Message
	msg := func() *Message {
		if m == nil {
			m = NewMessage(ev)
		}
		return m
	}

	// The watchers are woken once the hub's locks are let go, so that a callback that delivers
	// at once (Wake.Inline) may close its subscription, which takes them.
	var buf [InlineWakes]waker
	wakes := buf[:0]
	sh := h.shard(ev.OrderID)
	sh.mu.RLock()
	if t := sh.topics[ev.OrderID]; t != nil {
		for {
			// Remember the highest seq seen, so that a bus that lost its feed knows where to resume.
			last := t.lastSeq.Load()
			if ev.Seq <= last {
				break
			}
			if t.lastSeq.CompareAndSwap(last, ev.Seq) {
				t.lastAt.Store(ev.Committed())
				break
			}
		}
		for s := range t.subs {
			wakes = append(wakes, s.put(msg()))
		}
	}
	sh.mu.RUnlock()

	h.allMu.RLock()
	for s := range h.all {
		wakes = append(wakes, s.put(msg()))
	}
	h.allMu.RUnlock()

	if ev.Marks != "" {
		h.partyMu.RLock()
		if len(h.parties) > 0 {
			for party := range ev.Marks.All() {
				for s := range h.parties[party] {
					wakes = append(wakes, s.put(msg()))
				}
			}
		}
		h.partyMu.RUnlock()
	}
	for i, w := range wakes {
		w.wake(Wake{Status: true, Inline: i < InlineWakes})
	}
}

// ResyncAll tells every watcher of all orders, and every watcher of a party, that it may have
// missed events, exactly as if its mailbox had overflowed, so that it re-reads the current state
// from the store. A bus that lost its feed does it (Feed.CatchUp): those watchers see every
// order, and the store knows best what changed. It wakes them under the hub's read locks, as
// PublishLocation does, for the same reason.
func (h *Hub) ResyncAll() {
	h.allMu.RLock()
	for s := range h.all {
		s.markMissed()
	}
	h.allMu.RUnlock()
	// Party watchers too: each catches up from its party's log, after the position it has.
	h.partyMu.RLock()
	for _, subs := range h.parties {
		for s := range subs {
			s.markMissed()
		}
	}
	h.partyMu.RUnlock()
}

// ResyncOrder tells every watcher of one order that it may have missed events, as an overflow
// would, so that each catches up from the store and checks the history it was sent is still
// the store's (Feed.CatchUp, after the history went back under them).
func (h *Hub) ResyncOrder(orderID string) {
	sh := h.shard(orderID)
	sh.mu.RLock()
	if t := sh.topics[orderID]; t != nil {
		for s := range t.subs {
			s.markMissed()
		}
	}
	sh.mu.RUnlock()
}

// watchedOrder is one order that has watchers on this node.
type watchedOrder struct {
	orderID string
	// lastSeq is the highest seq published to the order's watchers since the first of them
	// subscribed; 0 if none yet. lastAt is when it was committed.
	lastSeq, lastAt int64
}

// watchedOrders lists the orders that have watchers now, for a catch-up.
func (h *Hub) watchedOrders() []watchedOrder {
	var out []watchedOrder
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for id, t := range sh.topics {
			out = append(out, watchedOrder{orderID: id, lastSeq: t.lastSeq.Load(), lastAt: t.lastAt.Load()})
		}
		sh.mu.RUnlock()
	}
	return out
}

// Orders returns how many orders have watchers on this node.
func (h *Hub) Orders() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.topics)
		sh.mu.RUnlock()
	}
	return n
}

// WatchesAll reports whether any watcher of every order is subscribed.
func (h *Hub) WatchesAll() bool {
	h.allMu.RLock()
	defer h.allMu.RUnlock()
	return len(h.all) > 0
}

// Watchers returns the number of open subscriptions.
func (h *Hub) Watchers() int {
	return int(h.watchers.Load())
}
