package server

import (
	"testing"
	"time"
)

// TestJitterRetry: the delay a refused stream is told is the configured one lengthened by up to
// half of it, and not the same for every client refused together.
func TestJitterRetry(t *testing.T) {
	for _, d := range []time.Duration{250 * time.Millisecond, 2 * time.Second, streamRetryAfter} {
		seen := map[time.Duration]bool{}
		for range 200 {
			got := jitterRetry(d)
			if got < d || got > d+d/2 || got%time.Millisecond != 0 {
				t.Fatalf("jitterRetry(%v) = %v, want whole milliseconds within [%v, %v]", d, got, d, d+d/2)
			}
			seen[got] = true
		}
		if len(seen) < 2 {
			t.Errorf("jitterRetry(%v) gave %d values in 200 draws, want them spread", d, len(seen))
		}
	}
}
