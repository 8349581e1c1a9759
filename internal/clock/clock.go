// Package clock holds the one way this module waits: for a while, or until its context ends,
// whichever comes first.
package clock

import (
	"context"
	"time"
)

// Sleep waits d, or returns ctx's error as soon as ctx ends. A d of zero or less returns at
// once, nil unless ctx has already ended. Unlike time.Sleep it never outlives a request or a
// shutdown; unlike time.After it lets its timer go when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
