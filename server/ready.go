package server

import "context"

// ReadinessCheck is one condition a node must meet to take new work, besides a reachable store
// and not draining: for example, that its cluster listener is connected. Check returns nil when
// the condition holds; its error is logged, not shown to clients.
type ReadinessCheck struct {
	Name  string
	Check func(ctx context.Context) error
}
