package stream

import (
	"testing"
	"time"
)

// TestPace: a courier reporting at about the cap's rate, a little early or late each time, is
// never held back; a flood gets two positions, then one per interval; no interval, no cap.
func TestPace(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	t.Run("jittered at the cap's rate", func(t *testing.T) {
		var p pace
		for _, ms := range []int{0, 950, 1900, 2950, 3900, 4850, 5950, 6900} {
			if ok, due := p.allow(at(ms), time.Second); !ok {
				t.Fatalf("position at %d ms held back until %v", ms, due.Sub(t0))
			}
		}
	})

	t.Run("flood", func(t *testing.T) {
		var p pace
		var sent []int
		for ms := 0; ms < 3000; ms += 10 {
			if ok, _ := p.allow(at(ms), time.Second); ok {
				sent = append(sent, ms)
			}
		}
		want := []int{0, 10, 1000, 2000}
		if len(sent) != len(want) {
			t.Fatalf("sent at %v ms, want %v", sent, want)
		}
		for i := range want {
			if sent[i] != want[i] {
				t.Fatalf("sent at %v ms, want %v", sent, want)
			}
		}
	})

	t.Run("held back says when", func(t *testing.T) {
		var p pace
		p.allow(at(0), time.Second)
		p.allow(at(10), time.Second)
		ok, due := p.allow(at(20), time.Second)
		if ok || !due.Equal(at(1000)) {
			t.Fatalf("got ok %v due %v, want held back until 1000 ms", ok, due.Sub(t0))
		}
	})

	t.Run("no cap", func(t *testing.T) {
		var p pace
		for ms := range 100 {
			if ok, _ := p.allow(at(ms), 0); !ok {
				t.Fatalf("position at %d ms held back with no cap", ms)
			}
		}
	})
}
