package hub

import (
	"context"
	"fmt"

	"github.com/ordercast/ordercast"
)

// DefaultCatchUpBatch bounds the orders asked about in one read of a catch-up, so a node watching
// many orders asks the store a few large questions, not one per order, as it comes back.
const DefaultCatchUpBatch = 1000

// Feed is the hub's end of a cluster bus (ordercast.Feed): it publishes what the bus hears, and
// after the bus lost its connection it catches the hub's watchers up from the store.
type Feed struct {
	hub   *Hub
	store ordercast.LatestEventsReader
	// BatchSize is the most orders read at once in CatchUp; zero means DefaultCatchUpBatch.
	BatchSize int
}

var _ ordercast.Feed = (*Feed)(nil)

// NewFeed returns the feed of h, catching up from store.
func NewFeed(h *Hub, store ordercast.LatestEventsReader) *Feed {
	return &Feed{hub: h, store: store}
}

// Publish hands an event the bus heard to the hub's watchers.
func (f *Feed) Publish(ev ordercast.Event) { f.hub.Publish(ev) }

// CatchUp publishes what the hub's watchers may have missed while the bus was down. For each
// watched order only its latest event is published, and only when newer than what the hub last
// published to it: a stream that sees the jump fills the gap from the store itself. Watchers of
// every order, and of a party, are told to re-read the current state (a party's from its log), as
// after an overflow: there is no window of time to guess which orders changed (ResyncAll).
//
// The bus is down when the database is, and a database may come back with less than it had: a
// failover to a standby that lacked the last commits, a copy restored. An order whose latest
// event is older than what the hub published, or another commit under the same seq, or that is
// gone, has its watchers told to catch up (ResyncOrder): each checks that the store still holds
// the event it sent last, and a stream whose history went back under it ends, saying so (a
// change made again takes a seq its client holds for the lost one, and would be skipped).
func (f *Feed) CatchUp(ctx context.Context) error {
	watched := f.hub.watchedOrders()
	last := make(map[string]watchedOrder, len(watched))
	ids := make([]string, 0, len(watched))
	for _, w := range watched {
		last[w.orderID] = w
		ids = append(ids, w.orderID)
	}
	size := f.BatchSize
	if size <= 0 {
		size = DefaultCatchUpBatch
	}
	for len(ids) > 0 {
		batch := ids[:min(size, len(ids))]
		ids = ids[len(batch):]
		evs, err := f.store.LatestEvents(ctx, batch)
		if err != nil {
			return fmt.Errorf("hub: catch up: %w", err)
		}
		for _, ev := range evs {
			switch w := last[ev.OrderID]; {
			case ev.Seq > w.lastSeq:
				f.hub.Publish(ev)
			case ev.Seq < w.lastSeq, w.lastAt != 0 && ev.Committed() != w.lastAt:
				f.hub.ResyncOrder(ev.OrderID)
			}
			delete(last, ev.OrderID)
		}
	}
	for id, w := range last {
		// An order with no event here does not exist: its watchers got a 404, not events,
		// unless it was published to, and is gone since.
		if w.lastSeq > 0 {
			f.hub.ResyncOrder(id)
		}
	}
	f.hub.ResyncAll()
	return nil
}
