package stream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/poller"
	"github.com/ordercast/ordercast/internal/testutil"
)

// How a held stream ends: once, and the end it was given stands.

// hijackable is a ResponseWriter whose Hijack hands over nc, as net/http's does.
type hijackable struct {
	http.ResponseWriter
	hdr http.Header
	nc  net.Conn
}

func (h *hijackable) Header() http.Header { return h.hdr }

func (h *hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.nc, bufio.NewReadWriter(bufio.NewReader(h.nc), bufio.NewWriter(h.nc)), nil
}

// tcpPair returns the server end of a loopback TCP connection; the client end stays open until
// the test ends.
func tcpPair(t *testing.T) *net.TCPConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv.(*net.TCPConn)
}

// TestHoldRacingEngineCloseEndsOnce: the engine closes (the server shuts down) while a stream is
// being handed to the poller, between the poller registering its socket and watching it. The
// poller's close ends the stream (shutdown); the hand-over, failing on the closed socket, must
// not end it again. Before, it did: the end reported twice, the limits released twice, the open
// streams counted at -1.
func TestHoldRacingEngineCloseEndsOnce(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	cfg := testConfig
	cfg.Hold = true
	obs := &counter{}
	e := New(newMemStore(ordercast.StatusPlaced), hub.New(), cfg, obs)
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	gc := testutil.Gate(tcpPair(t), nil)
	var released atomic.Int32
	wt, err := e.Watch(t.Context(), Request{OrderID: "o-1", Admit: func() (func(), error) {
		return func() { released.Add(1) }, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ends := make(chan End, 2)
	held := make(chan error, 1)
	go func() {
		held <- e.held.hold(&hijackable{hdr: http.Header{}, nc: gc}, wt, func(x End) { ends <- x })
	}()
	<-gc.Entered // registered with the poller, not yet watched
	closed := make(chan error, 1)
	go func() { closed <- e.Close() }()
	select {
	case x := <-ends:
		if x.Reason != ReasonShutdown {
			t.Errorf("ended for %q (%v), want shutdown", x.Reason, x.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the engine's close did not end the stream being handed over")
	}
	close(gc.Release) // the hand-over goes on, on a closed socket
	for _, done := range []chan error{held, closed} {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the hand-over or the engine's close never returned")
		}
	}
	// Both have returned: any second end has been reported by now.
	select {
	case x := <-ends:
		t.Errorf("the stream ended a second time: %q (%v)", x.Reason, x.Err)
	default:
	}
	obs.mu.Lock()
	opened, closedReasons := obs.opened, obs.closed
	obs.mu.Unlock()
	if released.Load() != 1 || e.streams.Load() != 0 || opened != 1 || len(closedReasons) != 1 {
		t.Errorf("limits released %d times, %d streams counted open, observer saw %d opened and closed %v; want 1, 0, 1, [shutdown]",
			released.Load(), e.streams.Load(), opened, closedReasons)
	}
}

// TestSecondEndLeavesAnEndingStreamAlone: a stream ending for its lifetime, its last chunk
// queued behind a catch-up its client reads slowly, is ended again before the client has it
// all: by the sweeper's next visit, which finds it still past its lifetime, or by the drain. That
// end must leave the first alone: the client reads the whole body, and the stream ends for its
// lifetime. Before, the second end closed the connection, which dropped what was queued (the
// client read a cut body) and, for the drain, named the end shutdown.
func TestSecondEndLeavesAnEndingStreamAlone(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	tests := []struct {
		name  string
		again func(hs *heldStream, past time.Time)
	}{
		{"the sweeper visits again", func(hs *heldStream, past time.Time) { hs.tick(past) }},
		{"the drain reaches it", func(hs *heldStream, _ time.Time) { hs.end(ReasonShutdown, nil) }}, // as holder.drain
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig
			// The ticks are by hand: the sweeper stays out of the way, and a tick past the
			// lifetime does not find the queue stalled.
			cfg.Hold, cfg.Heartbeat, cfg.Lifetime, cfg.WriteTimeout = true, time.Hour, time.Hour, 3*time.Hour
			e := New(newMemStore(ordercast.StatusPlaced), hub.New(), cfg, nil)
			if err := e.Open(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			ends := make(chan End, 2)
			url := serveSSE(t, e, nil, ends)
			nc, hs := openHeldRaw(t, e, url)
			// A catch-up the client has not read yet: one write of 8 MiB, taken whole, most of it
			// queued; a chunk of comments, so the body stays well formed.
			if err := hs.conn.Load().Write(appendChunk(nil, bytes.Repeat([]byte(": x\n\n"), 8<<20/5))); err != nil {
				t.Fatal(err)
			}
			past := hs.expires.Add(time.Nanosecond)
			hs.tick(past) // past its lifetime: the end of the body is queued behind the catch-up
			tt.again(hs, past)

			if err := nc.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil {
				t.Errorf("read %d bytes of the body, then %v: the stream was cut", n, err)
			}
			select {
			case x := <-ends:
				if x.Reason != ReasonLifetime {
					t.Errorf("ended for %q (%v), want lifetime", x.Reason, x.Err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the end was never reported")
			}
		})
	}
}

// countingStore counts the reads of events, which a stream makes to catch up.
type countingStore struct {
	*memStore
	reads atomic.Int32
}

func (s *countingStore) EventsAfter(ctx context.Context, id string, after int64, limit int) ([]ordercast.Event, error) {
	s.reads.Add(1)
	return s.memStore.EventsAfter(ctx, id, after, limit)
}

// TestEndedStreamIsNotCaughtUp: a publisher's run that found a hole left the catch-up to a worker
// (behind); the client leaves before the worker runs. The worker's run then finds the stream
// ended and reads nothing from the store, as a closed subscription forgets an overflow.
func TestEndedStreamIsNotCaughtUp(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	store := &countingStore{memStore: newMemStore(ordercast.StatusPlaced)}
	ends := make(chan End, 1)
	e, url := holdingEngine(t, store, hub.New(), ends)
	resp, err := http.Get(url + "?id=o-1")
	if err != nil {
		t.Fatal(err)
	}
	hs := theHeldStream(t, e)

	// What the publisher's run (deliverLocked, inline) leaves, its hand-off to a worker queued:
	// the stream's lock is held until the worker may run.
	hs.mu.Lock()
	hs.w.behind = true
	_ = resp.Body.Close() // the client leaves
	select {
	case x := <-ends:
		if x.Reason != ReasonClientGone {
			t.Errorf("ended for %q (%v), want client_gone", x.Reason, x.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end when its client left")
	}
	before := store.reads.Load()
	hs.mu.Unlock()
	hs.deliver(false) // the worker's run
	if n := store.reads.Load() - before; n != 0 {
		t.Errorf("%d reads of the store to catch up a stream that has ended, want none", n)
	}
}

// TestStreamEndDoesNotStallThePoller: a client leaves and its stream's end callback blocks (the
// server's writes the request's log line, to a pipe that may be full). The poller's loop, which
// noticed the client leave, must go on serving the other held connections: here it notices
// another client hang up, and closes that connection. Before, the loop ran the callback and
// waited in it: no held connection saw any I/O until the log write returned.
func TestStreamEndDoesNotStallThePoller(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	ends := make(chan End) // nobody reads until the end: every end callback blocks
	h := hub.New()
	e, url := holdingEngine(t, newMemStore(ordercast.StatusPlaced), h, ends)
	leaving, _ := openHeldRaw(t, e, url)
	staying := askRaw(t, url)
	testutil.WaitFor(t, "the second stream held", func() bool { return len(e.held.snapshot(-1)) == 2 })

	_ = leaving.Close()
	// Its subscription closed just before the end callback (watcher.finish), where the end now
	// blocks.
	testutil.WaitFor(t, "the first stream's end begun", func() bool { return h.Watchers() == 1 })
	if err := staying.CloseWrite(); err != nil { // hangs up: the loop closes it
		t.Fatal(err)
	}
	if err := staying.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(staying); err != nil {
		t.Errorf("reading the second stream to its close: %v; the poller stalled in the first one's end", err)
	}
	for range 2 { // lets the ends return, stalled or not
		select {
		case x := <-ends:
			if x.Reason != ReasonClientGone {
				t.Errorf("ended for %q (%v), want client_gone", x.Reason, x.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("an end was never reported")
		}
	}
}

// TestStreamsAfterPollerFailureKeepTheirGoroutine: once the poller's loop has failed for good,
// the streams it held end, and the failure is reported once; a new HTTP/1.1 stream is then served
// on its goroutine, as with Hold off, and gets the events published after it opened. Before, it
// was taken over, refused by the failed poller and ended at once (write_error), and so was every
// reconnect after it.
func TestStreamsAfterPollerFailureKeepTheirGoroutine(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	store := newMemStore(ordercast.StatusPlaced)
	h := hub.New()
	ends := make(chan End, 2)
	e, url := holdingEngine(t, store, h, ends) // its Close ignores the poller's failure, reported already (HoldingFailed)
	obs := counted(e)
	nc, _ := openHeldRaw(t, e, url)
	if err := poller.BreakEpoll(e.held.poller); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(nc, "x"); err != nil { // wakes the loop; its next wait fails
		t.Fatal(err)
	}
	select {
	case x := <-ends:
		if x.Reason != ReasonWriteError || !x.Held {
			t.Errorf("the held stream ended for %q (held %v), want write_error, held", x.Reason, x.Held)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held stream did not end when the poller failed")
	}

	r := openHeld(t, url, "o-1")
	h.Publish(store.append(ordercast.StatusConfirmed))
	if ev, err := r.Next(); err != nil || ev.ID != "2" {
		t.Fatalf("the new stream's next event: %+v, %v; want id 2", ev, err)
	}
	if n := len(e.held.snapshot(-1)); n != 0 {
		t.Errorf("%d streams held by the failed poller, want 0", n)
	}
	h.Publish(store.append(ordercast.StatusCancelled)) // ends the stream: terminal
	select {
	case x := <-ends:
		if x.Reason != ReasonTerminal || x.Held {
			t.Errorf("the new stream ended for %q (held %v), want terminal, on its goroutine", x.Reason, x.Held)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new stream did not end on its terminal event")
	}
	obs.mu.Lock()
	failed := obs.holdingFailed
	obs.mu.Unlock()
	if len(failed) != 1 || failed[0] == nil {
		t.Errorf("HoldingFailed reported %v, want the failure once", failed)
	}
}
