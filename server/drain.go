package server

import (
	"sync/atomic"
	"time"
)

// drainSchedule spreads the closing of a draining node's streams evenly over the drain window:
// with n streams open when the drain starts, the k-th stream to ask closes at window*k/n. Even
// spacing, rather than each stream picking a random moment, gives the nodes that take the
// clients over a steady trickle of reconnects instead of clumps. Streams opened after the count
// was taken wrap around the window.
type drainSchedule struct {
	window time.Duration
	n      int64
	next   atomic.Int64
}

func newDrainSchedule(window time.Duration, streams int64) *drainSchedule {
	return &drainSchedule{window: window, n: max(streams, 1)}
}

// delay returns how long after the drain began the calling stream closes.
func (d *drainSchedule) delay() time.Duration {
	if d.window <= 0 {
		return 0
	}
	k := d.next.Add(1) - 1
	return time.Duration(int64(d.window) / d.n * (k % d.n))
}
