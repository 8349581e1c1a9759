package ordercast

import "context"

// Feed is a node's receiving end of a cluster bus: the bus hands it every committed event it
// hears, from any node, and tells it when it may have missed some. The hub implements it.
type Feed interface {
	Publisher
	// CatchUp is called after the bus regained a lost connection, once it is listening again:
	// events committed while it was down were never heard and must be re-read from the store.
	// Listening first means a commit after the re-read is heard, so nothing falls in between.
	// An error makes the bus drop the connection and try again.
	CatchUp(ctx context.Context) error
}

// LatestEventsReader reads the latest event of each of many orders in one call: what a node that
// lost its bus connection re-reads for the orders it has watchers for. Orders that do not exist
// have no event in the answer.
type LatestEventsReader interface {
	LatestEvents(ctx context.Context, orderIDs []string) ([]Event, error)
}
