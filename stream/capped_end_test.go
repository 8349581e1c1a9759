package stream

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/testutil"
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
// position first in about half the runs. Each run is one coin toss of that select.
//
// A run counts only when the cap did hold the position back: on a slow machine (-race, CI) the
// stream may see the position only after the cap's interval has passed since the last one, and
// then sends it at once, before the end is published, as it should: in the stalled write, or
// in one before it (which the test once took for a release past the end, under a loaded -race run).
func TestACappedPositionIsNotReleasedPastTheEnd(t *testing.T) {
	const interval = 50 * time.Millisecond
	held := 0
	for run := range 20 {
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
		go e.run(ctx, w, false)

		at := time.Now()
		pos := func(lat float64) {
			at = at.Add(time.Millisecond) // each newer than the last: the later fix wins
			h.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", CourierID: "c-1", Lat: lat, Lng: 1, At: at}))
		}
		frames := func(n int) func() bool { return func() bool { return len(rec.got()) >= n } }
		testutil.WaitFor(t, "the opening (retry, seq 2, seq 3)", frames(3))
		pos(1)
		testutil.WaitFor(t, "the first position", frames(4))
		pos(2)
		testutil.WaitFor(t, "the second position, the cap's burst", frames(5))
		// The third is held back by the cap; the event after it makes the stream write, and the
		// client stalls on that write, with the timer of the held position armed before it.
		pos(3)
		gate, blocked := rec.stall()
		h.Publish(store.assign("c-1")) // seq 4
		<-blocked
		h.Publish(store.append(ordercast.StatusDelivered))
		// The held position's due time passing is itself the condition: nothing signals it.
		time.Sleep(3 * interval)
		close(gate)
		<-done
		cancel()

		third := func(f string) bool { return strings.Contains(f, "event: location") && strings.Contains(f, `"lat":3`) }
		got := rec.got()
		if slices.ContainsFunc(rec.stalled, third) || slices.ContainsFunc(rec.before, third) {
			continue // sent before the end was published: the cap did not hold it
		}
		held++
		if slices.ContainsFunc(got, third) {
			t.Fatalf("run %d: the held-back position went out after the order's end waited: %q", run, got)
		}
	}
	if held < 5 {
		t.Fatalf("the cap held the position back in %d runs of 20, want at least 5 to judge", held)
	}
}
