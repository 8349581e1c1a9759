package bench

import (
	"context"
	"time"

	"github.com/ordercast/ordercast/internal/clock"
)

// preciseSpan is how much of a wait for a due time is slept by the kernel rather than by the Go
// runtime's timers (preciseSleep). A runtime timer can wake a goroutine up to a millisecond late:
// a process with nothing else to run waits for its timers in its network poller, which counts in
// whole milliseconds (epoll_wait's timeout). A writer woken 0 to 1 ms late against a schedule of
// one write a millisecond starts every write late by that much, and the report, which counts from
// the due time, would charge the server with the bench's own clock.
const preciseSpan = 2 * time.Millisecond

// sleepUntil waits until due, or until ctx ends (its error, then). It never returns before due
// when it returns nil. The last preciseSpan is slept by preciseSleep, which wakes within the
// kernel's timer slack (50 µs by default) instead of the runtime's millisecond; ctx is looked at
// before it, so a cancellation waits at most that span.
func sleepUntil(ctx context.Context, due time.Time) error {
	if d := time.Until(due) - preciseSpan; d > 0 {
		if err := clock.Sleep(ctx, d); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for d := time.Until(due); d > 0; d = time.Until(due) {
		preciseSleep(d)
	}
	return nil
}
