package bench

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSleepUntilNeverWakesEarly: a write is never sent before its due time, whichever part of the
// wait (the runtime's timer, the kernel's sleep) ends it. How late it wakes is the bench's own
// figure (its due→start), not a test's.
func TestSleepUntilNeverWakesEarly(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, 0, 50 * time.Microsecond, 900 * time.Microsecond, preciseSpan, 3 * time.Millisecond} {
		due := time.Now().Add(d)
		if err := sleepUntil(t.Context(), due); err != nil {
			t.Fatalf("sleepUntil(now%+v) = %v", d, err)
		}
		if early := time.Until(due); early > 0 {
			t.Errorf("sleepUntil(now%+v) returned %v before its due time", d, early)
		}
	}
}

// TestSleepUntilEndsWithItsContext: a bench stopped mid-schedule does not wait for the next due
// time, however far it is.
func TestSleepUntilEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sleepUntil(ctx, time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleepUntil with an ended context = %v, want context.Canceled", err)
	}
	if err := sleepUntil(ctx, time.Now().Add(preciseSpan/2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleepUntil within preciseSpan with an ended context = %v, want context.Canceled", err)
	}
}
