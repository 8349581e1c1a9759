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
func (f *Feed) CatchUp(ctx context.Context) error {
	watched := f.hub.watchedOrders()
	last := make(map[string]int64, len(watched))
	ids := make([]string, 0, len(watched))
	for _, w := range watched {
		last[w.orderID] = w.lastSeq
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
			// An order with no event here does not exist: its watchers got a 404, not events.
			if ev.Seq > last[ev.OrderID] {
				f.hub.Publish(ev)
			}
		}
	}
	f.hub.ResyncAll()
	return nil
}
