package stream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/poller"
	"github.com/ordercast/ordercast/internal/testutil"
)

// slowOrders holds orders at version 1; once hang is set, reading o-1's events waits until the
// read's context ends (a store slow for one query), telling entered when it starts waiting.
type slowOrders struct {
	noPartyLogs
	mu      sync.Mutex
	hang    bool
	entered chan struct{}
	// hangAllBut, when set, makes every order's events hang but its own (with hang set).
	hangAllBut string
}

func (s *slowOrders) Order(_ context.Context, id string) (ordercast.Order, error) {
	return ordercast.Order{ID: id, Status: ordercast.StatusPlaced, Version: 1}, nil
}

func (s *slowOrders) EventsAfter(ctx context.Context, id string, after int64, _ int) ([]ordercast.Event, error) {
	s.mu.Lock()
	hang := s.hang && (id == "o-1" || s.hangAllBut != "" && id != s.hangAllBut)
	s.mu.Unlock()
	if hang {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if after >= 1 {
		return nil, nil
	}
	return []ordercast.Event{{OrderID: id, Seq: 1, Status: ordercast.StatusPlaced, At: time.Now()}}, nil
}

func (s *slowOrders) LastEvent(_ context.Context, id string, kind ordercast.EventKind, before int64) (ordercast.Event, error) {
	return ordercast.Event{}, ordercast.Errorf(ordercast.ENotFound, "no %s event of %s before %d", kind.Name(), id, before)
}

func (s *slowOrders) ActiveOrders(context.Context, int) ([]ordercast.Order, error) { return nil, nil }

// holdingEngine opens an engine that holds its streams, over store, published to through h,
// and serves it; ends, if not nil, receives each stream's end. What the engine reports is
// counted: see counted.
func holdingEngine(t *testing.T, store Store, h *hub.Hub, ends chan<- End) (*Engine, string) {
	t.Helper()
	cfg := testConfig
	cfg.Hold, cfg.Heartbeat, cfg.WriteTimeout = true, time.Hour, time.Minute
	e := New(store, h, cfg, &counter{})
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, serveSSE(t, e, nil, ends)
}

// openHeld opens the stream of order id at url, reads its first event (seq 1) and hands back
// the reader.
func openHeld(t *testing.T, url, id string) *client.SSEReader {
	t.Helper()
	resp, err := http.Get(url + "?id=" + id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	r := client.NewSSEReader(resp.Body)
	if ev, err := r.Next(); err != nil || ev.ID != "1" {
		t.Fatalf("%s: first event %+v, %v", id, ev, err)
	}
	return r
}

// heldStreams serves held SSE streams of store's orders, published to through h, and returns
// how to open one (openHeld).
func heldStreams(t *testing.T, store Store, h *hub.Hub) (open func(id string) *client.SSEReader) {
	t.Helper()
	_, url := holdingEngine(t, store, h, nil)
	return func(id string) *client.SSEReader {
		t.Helper()
		return openHeld(t, url, id)
	}
}

// eventIDs reads r's events in the background and hands on their ids; it is closed when the
// stream ends.
func eventIDs(r *client.SSEReader) <-chan string {
	ids := make(chan string, 8)
	go func() {
		defer close(ids)
		for {
			ev, err := r.Next()
			if err != nil {
				return
			}
			ids <- ev.ID
		}
	}()
	return ids
}

// counted returns what a holdingEngine has reported.
func counted(e *Engine) *counter { return e.observer.(*counter) }

// openHeldRaw asks the engine serving url for order o-1's stream over a bare connection, which
// reads nothing until the test does, and returns it with the stream once e holds it.
func openHeldRaw(t *testing.T, e *Engine, url string) (net.Conn, *heldStream) {
	t.Helper()
	return askRaw(t, url), theHeldStream(t, e)
}

// askRaw asks the server at url for order o-1's stream over a bare connection, which reads
// nothing until the test does.
func askRaw(t *testing.T, url string) *net.TCPConn {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if _, err := io.WriteString(nc, "GET /?id=o-1 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return nc.(*net.TCPConn)
}

// theHeldStream waits for e to hold its one stream, with its connection.
func theHeldStream(t *testing.T, e *Engine) *heldStream {
	t.Helper()
	var held *heldStream
	testutil.WaitFor(t, "the stream to be held", func() bool {
		if s := e.held.snapshot(-1); len(s) == 1 && s[0].conn.Load() != nil {
			held = s[0]
		}
		return held != nil
	})
	return held
}

// TestSlowCatchUpTakesOneWorker: while one held stream catches up from a store that hangs, every
// change published to it meanwhile must not take another worker: the other streams' events go
// on arriving. Each round publishes to the slow stream, then to another and waits for that one
// to arrive; with a worker lost per round, the rounds would run out of workers.
func TestSlowCatchUpTakesOneWorker(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	store := &slowOrders{entered: make(chan struct{}, 1)}
	h := hub.New()
	open := heldStreams(t, store, h)
	open("o-1")
	other := open("o-2")
	events := eventIDs(other)

	store.mu.Lock()
	store.hang = true
	store.mu.Unlock()
	h.Publish(ordercast.Event{OrderID: "o-1", Seq: 3, Status: ordercast.StatusPreparing, At: time.Now()}) // a hole: catch up
	<-store.entered
	for i := range 4*runtime.GOMAXPROCS(0) + 4 {
		h.Publish(ordercast.Event{OrderID: "o-1", Seq: int64(4 + i), Status: ordercast.StatusPreparing, At: time.Now()})
		h.Publish(ordercast.Event{OrderID: "o-2", Seq: int64(2 + i), Status: ordercast.StatusConfirmed, At: time.Now()})
		select {
		case id := <-events:
			if want := fmt.Sprint(2 + i); id != want {
				t.Fatalf("round %d: o-2's event %s, want %s", i, id, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: o-2's event not delivered: the held streams' workers all wait behind o-1's catch-up", i)
		}
	}
}

// TestLiveEventsDoNotWaitForWorkers: an order's status event is written to its held streams on
// the publisher's goroutine, so with every worker stuck catching a stream up from a store that
// hangs, a live event of another order still arrives.
func TestLiveEventsDoNotWaitForWorkers(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	store := &slowOrders{entered: make(chan struct{}, workers)}
	h := hub.New()
	open := heldStreams(t, store, h)
	for i := range workers {
		open(fmt.Sprint("s-", i))
	}
	live := open("o-live")
	// One event delivered before the store hangs: the stream has taken its wakes since (a stream
	// whose first read raced its opening would have an event queued before then handed to a
	// worker, as OnReady does with what it finds waiting, and the workers are about to hang).
	h.Publish(ordercast.Event{OrderID: "o-live", Seq: 2, Status: ordercast.StatusConfirmed, At: time.Now()})
	if ev, err := live.Next(); err != nil || ev.ID != "2" {
		t.Fatalf("o-live's event before the store hangs: %+v, %v", ev, err)
	}

	store.mu.Lock()
	store.hang, store.hangAllBut = true, "o-live"
	store.mu.Unlock()
	for i := range workers { // a hole on each: every worker catches one up, and hangs
		h.Publish(ordercast.Event{OrderID: fmt.Sprint("s-", i), Seq: 3, Status: ordercast.StatusPreparing, At: time.Now()})
	}
	for i := range workers {
		select {
		case <-store.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d workers started a catch-up", i, workers)
		}
	}
	h.Publish(ordercast.Event{OrderID: "o-live", Seq: 3, Status: ordercast.StatusPreparing, At: time.Now()})
	got := make(chan string, 1)
	go func() {
		ev, err := live.Next()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- ev.ID
	}()
	select {
	case id := <-got:
		if id != "3" {
			t.Fatalf("o-live's next event %s, want 3", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("o-live's event not delivered while every worker waits on the store")
	}
}

// TestDrainEndsAStreamHeldAfterItBegan: a watch set up just before the drain began (it passed
// Watch's draining check, then read the store) is held after the drain's pass over the held
// streams; it is still ended within the drain, as the goroutine holder ends it.
func TestDrainEndsAStreamHeldAfterItBegan(t *testing.T) {
	for _, hold := range []bool{false, true} {
		t.Run(map[bool]string{true: "held", false: "goroutine"}[hold], func(t *testing.T) {
			if hold && !poller.Supported {
				t.Skip("held streams need the epoll poller (Linux)")
			}
			cfg := testConfig
			cfg.Hold, cfg.Heartbeat = hold, 400*time.Millisecond // the sweeper visits every 50 ms
			e := New(newMemStore(ordercast.StatusPlaced), hub.New(), cfg, nil)
			if err := e.Open(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			ends := make(chan End, 1)
			// The drain begins while the stream is set up.
			url := serveSSE(t, e, func() { e.BeginDrain(100 * time.Millisecond) }, ends)
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			go func() { _, _ = io.Copy(io.Discard, resp.Body) }()
			select {
			case x := <-ends:
				if x.Reason != ReasonShutdown {
					t.Fatalf("ended %q, want shutdown", x.Reason)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("stream still open 5 s after a 100 ms drain window")
			}
		})
	}
}

// TestClientGoneDuringCatchUp: a client that leaves while its stream catches up from the store
// ends the stream as gone, not as a store error (which is logged as one).
func TestClientGoneDuringCatchUp(t *testing.T) {
	store := &slowOrders{entered: make(chan struct{}, 1)}
	h := hub.New()
	cfg := testConfig
	cfg.Hold = false
	e := New(store, h, cfg, nil)
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	ends := make(chan End, 1)
	url := serveSSE(t, e, nil, ends)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ev, err := client.NewSSEReader(resp.Body).Next(); err != nil || ev.ID != "1" {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	store.mu.Lock()
	store.hang = true
	store.mu.Unlock()
	h.Publish(ordercast.Event{OrderID: "o-1", Seq: 3, Status: ordercast.StatusPreparing, At: time.Now()}) // a hole: catch up
	<-store.entered
	cancel()
	select {
	case x := <-ends:
		if x.Reason != ReasonClientGone || x.Err != nil {
			t.Fatalf("ended %q (%v), want client_gone", x.Reason, x.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end 5 s after its client left")
	}
}

// serveSSE serves e's SSE streams over HTTP until the test ends and returns the URL: the order
// is ?id=, o-1 without one. setUp, if not nil, runs between a watch and its serving; ends, if
// not nil, receives each stream's end.
func serveSSE(t *testing.T, e *Engine, setUp func(), ends chan<- End) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if id == "" {
			id = "o-1"
		}
		wt, err := e.Watch(r.Context(), Request{OrderID: id})
		if err != nil {
			t.Error(err)
			return
		}
		if setUp != nil {
			setUp()
		}
		e.ServeSSE(w, r, wt, func(x End) {
			if ends != nil {
				ends <- x
			}
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestInlineCatchUpIsHandedOn: a publisher's run that must leave a catch-up to a worker hands it
// on even when a worker already popped the stream and gave up on its lock (trusting the holder
// to run again). The interleaving, step by step:
//
//	P (publisher, inline): deliver(true): again=true, TryLock ok, again=false, clear queued flags
//	H (another status waker, e.g. OnReady's first call): schedule(true): queuedStatus set, pushed
//	W (a worker): pops it, deliver(false): again=true, TryLock fails, returns
//	P: deliverLocked(true): a hole, so behind=true and the catch-up goes to a worker
//
// P's first steps are copied from heldStream.deliver (the test cannot pause inside it); H, W and
// P's deliverLocked are the real code, W a real worker of the holder. Before the fix P's hand-off
// saw queuedStatus set and pushed nothing: the stream never got events 2 and 3.
func TestInlineCatchUpIsHandedOn(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	store := newMemStore(ordercast.StatusPlaced)
	h := hub.New()
	e, url := holdingEngine(t, store, h, nil)
	r := openHeld(t, url, "o-1")
	got := eventIDs(r)
	hs := theHeldStream(t, e)
	queueLen := func() int {
		q := &e.held.work
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.status) + len(q.others)
	}

	// Two events commit; the publisher announces only the second (a hole, as hub.Feed.CatchUp
	// does, or an overflowed mailbox). P holds the stream's lock from here (its TryLock).
	store.append(ordercast.StatusConfirmed)
	store.append(ordercast.StatusPreparing)
	hs.mu.Lock()
	h.Publish(ordercast.Event{OrderID: "o-1", Seq: 3, Status: ordercast.StatusPreparing, At: time.Now()})
	// (the real inline wake just found the lock taken and set again; P's prefix clears it)
	hs.again.Store(false)
	hs.queuedStatus.Store(false)
	hs.queued.Store(false)

	// H: a status wake from another goroutine, not inline.
	hs.wake(hub.Wake{Status: true})
	// W: a worker pops it and finds the lock held.
	testutil.WaitFor(t, "a worker to pop the stream", func() bool { return hs.again.Load() && queueLen() == 0 })
	// P: the rest of its run, the real code.
	if hs.deliverLocked(true) {
		t.Fatal("deliverLocked went on; expected the store path")
	}
	for _, want := range []string{"2", "3"} {
		select {
		case id := <-got:
			if id != want {
				t.Fatalf("event %s, want %s", id, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %s committed and published, never delivered: the stream is stuck (queuedStatus=%v, queue=%d)",
				want, hs.queuedStatus.Load(), queueLen())
		}
	}
}

// TestStreamEndDoesNotHoldUpThePublisher: a terminal event delivered on the publisher's
// goroutine ends the stream, and the end's bookkeeping (the server's end callback writes the
// request's log line) runs elsewhere: a callback that blocks (a log write to a full pipe) must
// not block Publish, which is the SQLite writer's next commit.
func TestStreamEndDoesNotHoldUpThePublisher(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	store := newMemStore(ordercast.StatusPlaced)
	h := hub.New()
	ends := make(chan End) // nobody reads until the end: the "log write" blocks
	_, url := holdingEngine(t, store, h, ends)
	openHeld(t, url, "o-1")
	ev := store.append(ordercast.StatusCancelled)
	done := make(chan struct{})
	go func() { h.Publish(ev); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("Publish blocked in the stream's end callback")
		<-ends
		<-done
		return
	}
	if end := <-ends; end.Reason != ReasonTerminal {
		t.Errorf("stream ended for %q, want %q", end.Reason, ReasonTerminal)
	}
}

// TestEventWriteDoesNotCutAnEndingStream: a stream ending for its lifetime with its last chunk
// queued behind a client that reads slowly still ends for its lifetime once the client has read
// it all, even if an event comes meanwhile: the event's write, refused by the closing connection,
// must not turn the end into a write error that drops the queued bytes. The client resumes after
// what it got and reads the event from the store.
func TestEventWriteDoesNotCutAnEndingStream(t *testing.T) {
	if !poller.Supported {
		t.Skip("held streams need the epoll poller (Linux)")
	}
	store := newMemStore(ordercast.StatusPlaced)
	h := hub.New()
	ends := make(chan End, 1)
	e, url := holdingEngine(t, store, h, ends)
	nc, hs := openHeldRaw(t, e, url)
	// The client reads nothing yet: 8 MiB (one write, taken whole) leaves most of it queued, and
	// the lifetime's end queues the last chunk behind it.
	if err := hs.conn.Load().Write(make([]byte, 8<<20)); err != nil {
		t.Fatal(err)
	}
	hs.end(ReasonLifetime, nil)
	h.Publish(store.append(ordercast.StatusConfirmed))

	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, nc)
		read <- err
	}()
	select {
	case end := <-ends:
		if end.Reason != ReasonLifetime {
			t.Errorf("stream ended for %q (%v), want %q", end.Reason, end.Err, ReasonLifetime)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end once the client read what was queued")
	}
	select {
	case err := <-read:
		if err != nil {
			t.Errorf("reading the stream to its end: %v (the connection was cut)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stayed open after the stream ended")
	}
}
