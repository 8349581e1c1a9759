package stream

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// gatedRecorder is a recorder whose next write, once gated, waits until the gate opens: a client
// that stalls.
type gatedRecorder struct {
	recorder
	mu      sync.Mutex
	gate    chan struct{} // not nil: the next write waits for it to close
	blocked chan struct{} // closed when that write starts waiting
	before  []string      // the frames written before the gate was set
	stalled []string      // the frames of the write that waited
}

// stall makes the next write wait until the returned gate is closed; blocked closes when it does.
// Every frame is then either in before (written whole before the gate was set) or written after
// the gate, the stalled write first.
func (g *gatedRecorder) stall() (gate, blocked chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.blocked = make(chan struct{}), make(chan struct{})
	g.before = g.recorder.got()
	return g.gate, g.blocked
}

func (g *gatedRecorder) WriteMany(frames ...[]byte) error {
	g.mu.Lock()
	gate, blocked := g.gate, g.blocked
	g.gate = nil
	if gate == nil {
		defer g.mu.Unlock() // written whole under the lock: stall sees it in before, or gates it
		return g.recorder.WriteMany(frames...)
	}
	for _, f := range frames {
		g.stalled = append(g.stalled, string(f))
	}
	g.mu.Unlock()
	close(blocked)
	<-gate
	return g.recorder.WriteMany(frames...)
}

func (g *gatedRecorder) Write(f []byte) error { return g.WriteMany(f) }

// TestACappedPositionIsNotReleasedPastTheEnd: on a stream held by its own goroutine, a position
// the cap holds back is due while the order's end already waits in the subscription (the client
// was slow to take a write meanwhile). The end goes first and drops the position, whichever of
// the two the stream's select picks, as the poller's worker does; the timer's case released the
// position first in about half the runs. Each run is one coin toss of that select, in a bubble
// of its own (testing/synctest), whose clock moves only when every goroutine waits: the cap
// holds the position back in every run, however slow the machine.
func TestACappedPositionIsNotReleasedPastTheEnd(t *testing.T) {
	const interval = 50 * time.Millisecond
	for run := range 20 {
		synctest.Test(t, func(t *testing.T) {
			store := newMemStore(ordercast.StatusPlaced, ordercast.StatusOutForDelivery)
			store.assign("c-1") // seq 3
			h := hub.New()
			cfg := testConfig
			cfg.LocationInterval = interval
			e := New(store, h, cfg, &counter{})
			wt, err := e.Watch(t.Context(), Request{OrderID: "o-1"})
			if err != nil {
				t.Fatal(err)
			}
			rec := &gatedRecorder{}
			w := &watcher{}
			done := make(chan struct{})
			w.init(e, rec, sseFraming{}, wt, func(End) { close(done) })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go e.run(ctx, w, false)

			at := time.Now()
			pos := func(lat float64) {
				at = at.Add(time.Millisecond) // each newer than the last: the later fix wins
				h.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", CourierID: "c-1", Lat: lat, Lng: 1, At: at}))
			}
			written := func(what string, n int) {
				t.Helper()
				synctest.Wait() // the stream has done all it can
				if got := rec.got(); len(got) != n {
					t.Fatalf("run %d: %d frames after %s, want %d: %q", run, len(got), what, n, got)
				}
			}
			written("the opening (retry, seq 2, seq 3)", 3)
			pos(1)
			written("the first position", 4)
			pos(2)
			written("the second position, the cap's burst", 5)
			// The third is held back by the cap, its timer armed; the event after it makes the
			// stream write, and the client stalls on that write.
			pos(3)
			written("the third position, held back", 5)
			gate, blocked := rec.stall()
			h.Publish(store.assign("c-1")) // seq 4
			<-blocked
			h.Publish(store.append(ordercast.StatusDelivered))
			time.Sleep(3 * interval) // the bubble's clock: the held position falls due
			close(gate)
			<-done

			third := func(f string) bool { return strings.Contains(f, "event: location") && strings.Contains(f, `"lat":3`) }
			if got := rec.got(); slices.ContainsFunc(got, third) {
				t.Fatalf("run %d: the held-back position went out after the order's end waited: %q", run, got)
			}
		})
	}
}
