package postgres

import (
	"sync"

	"github.com/ordercast/ordercast"
)

// What a node knows of the database without asking it: the orders it wrote, read or heard
// created lately (Store.recent: every batch announces the orders it created on OrdersChannel,
// and the Listener follows every node's events to them), the heads of the party logs it has
// seen events of, and how far the database's clock is from its own. A batch judged from them
// commits in one round trip, under guards that fail it if any of it was wrong (commitBatch).

// maxHeads bounds the party heads a node remembers; past it they are forgotten together.
const maxHeads = 100_000

// partyHeads is the last position this node has seen taken in each party's log: by its own
// commits and, through the Listener, every other node's.
type partyHeads struct {
	mu  sync.Mutex
	pos map[string]int64
}

// get returns party p's head as last seen, or 0 for a party not seen (a guess that it is new).
func (h *partyHeads) get(p string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pos[p]
}

// saw moves the heads of the parties an event is in up to its positions.
func (h *partyHeads) saw(m ordercast.Marks) {
	if m == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pos == nil || len(h.pos) >= maxHeads {
		h.pos = make(map[string]int64)
	}
	for p, pos := range m.All() {
		h.pos[p] = max(h.pos[p], pos)
	}
}

// forget forgets the heads of the parties b's events go in.
func (h *partyHeads) forget(b *ordercast.Batch) {
	parties, _ := b.PartyCounts()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range parties {
		delete(h.pos, p)
	}
}

// follow takes in an event any node committed, as the Listener hands it over.
func (s *Store) follow(ev ordercast.Event) {
	s.recent.Follow(ev)
	s.heads.saw(ev.Marks)
}

// learn takes in orders another node created, each with its latest event.
func (s *Store) learn(orders []ordercast.Order, latest []ordercast.Event) {
	for i, o := range orders {
		s.recent.Learn(o, latest[i])
	}
}

// forgetAll forgets every order and party head this node knows: it may have missed commits.
func (s *Store) forgetAll() {
	s.recent.Forget()
	s.heads.mu.Lock()
	clear(s.heads.pos)
	s.heads.mu.Unlock()
}
