package stream

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/poller"
)

// Holding streams without a goroutine each.
//
// An SSE watcher is idle nearly all of its life. Served the idiomatic way it still costs a
// goroutine (whose stack has grown through the handler) and net/http's read and write buffers:
// about 25 KB. Once a cleartext HTTP/1.1 stream is set up, the engine takes the connection over
// (Hijack), writes the response head itself, and gives the socket to a poller: one epoll
// goroutine notices clients leaving, and writes are non-blocking. Live events wake the stream
// through the hub's OnReady callback, which runs the watcher's delivery rules, as the goroutine
// holder does: for an order's status event on the publisher's goroutine there and then (see
// wake), otherwise on a small pool of workers. One sweeper brings time: heartbeats, lifetimes
// and stalled writes; one ender reports each stream's end (endQueue). What a held stream keeps
// is its watcher, its subscription and the socket.
//
// HTTP/2 streams and TLS connections cannot be taken over this way (frames and encryption live
// in user space), so they keep the goroutine holder; so does every platform without epoll.

// closeCause is the error a held stream's connection is closed with when the engine closes it;
// the poller's own errors (peer gone, backlog) are mapped in heldStream.closed.
type closeCause struct {
	reason string
	err    error // what failed, if anything
}

func (c *closeCause) Error() string { return c.reason }
func (c *closeCause) Unwrap() error { return c.err }

// holder is every stream the poller holds for one engine, and the goroutines serving them.
type holder struct {
	e      *Engine
	poller *poller.Poller
	// The heartbeats and the end of a body are computed once, as chunks: comment is a stream's
	// heartbeat, event one that asked for visible heartbeats (Request.VisibleHeartbeats).
	comment, event heartbeatFrame
	lastChunk      []byte

	buckets [sweepBuckets]struct {
		mu      sync.Mutex
		streams map[*heldStream]struct{}
	}
	next atomic.Uint64 // spreads streams over buckets
	// failed is set once the poller has failed: new streams keep their goroutine (holdable).
	failed atomic.Bool

	work   workQueue
	ends   endQueue
	capped cappedSet
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// heldStream is one stream held by the poller. It is its own transport: its frames go to the
// poller's connection as HTTP/1.1 chunks.
type heldStream struct {
	h          *holder
	beat       *heartbeatFrame             // the holder's comment or event heartbeat
	conn       atomic.Pointer[poller.Conn] // set once held; the sweeper skips a stream without one
	bucket     int
	expires    time.Time // zero: no lifetime
	expiresFor string    // the reason it ends for then: ReasonLifetime or ReasonExpired

	mu sync.Mutex // one worker at a time delivers, in order
	w  watcher
	// On the work queue's lane for status events, or its lane for positions, or about to be. A
	// stream can be on both at once; the run that comes second finds nothing left and writes
	// nothing.
	queuedStatus, queued atomic.Bool
	// again asks the worker delivering the stream to run once more before it lets go: another
	// worker found it busy (deliver).
	again atomic.Bool
	// gone is set when the connection closes: a run queued before (a catch-up handed to a
	// worker with w.behind set, which closed cannot clear without hs.mu) then does nothing, as a
	// closed subscription forgets an overflow.
	gone atomic.Bool

	// drainClaimed: the drain has given the stream its place, either in the drain's own pass
	// over the streams held when it began, or, for a stream held later (or not yet held when
	// the pass came to it), on a sweeper visit, which then ends it at drainAt (the sweeper's
	// alone).
	drainClaimed atomic.Bool
	drainAt      time.Time
}

var _ transport = (*heldStream)(nil)

func openHolder(e *Engine) (*holder, error) {
	p := poller.New()
	h := &holder{e: e, poller: p}
	p.OnFail = h.pollerFailed
	if err := p.Open(); err != nil {
		return nil, fmt.Errorf("open poller: %w", err)
	}
	h.comment = newHeartbeatFrame(sseFraming{}.heartbeat(nil))
	h.event = newHeartbeatFrame(e.sseFraming(&Watch{visibleHeartbeats: true}).heartbeat(nil))
	h.lastChunk = appendChunk(nil, nil)
	for i := range h.buckets {
		h.buckets[i].streams = make(map[*heldStream]struct{})
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.work.wake = make(chan struct{}, 1)
	h.ends.wake = make(chan struct{}, 1)
	// Workers mostly wait on the store when they catch a stream up; a few per core keep a slow
	// query from holding up every other stream's delivery.
	for range 4 * runtime.GOMAXPROCS(0) {
		h.wg.Go(h.worker)
	}
	h.wg.Go(h.sweep)
	h.wg.Go(h.ends.run)
	// A stream may ask for a cap of its own (Request.LocationInterval) where the engine has none:
	// the releaser runs either way, at the engine's pace or, uncapped, every 50 ms.
	h.capped.due = make(map[*heldStream]time.Time)
	h.wg.Go(func() { h.releaseCapped(cmp.Or(e.cfg.LocationInterval, time.Second)) })
	return h, nil
}

// hold takes the connection of w over and gives the stream to the poller. It returns
// http.ErrNotSupported, having written nothing, when the connection cannot be taken over; the
// caller then serves the stream on its goroutine. Any other error has been handled: the
// connection is closed and end called.
func (h *holder) hold(w http.ResponseWriter, wt *Watch, end func(End)) error {
	nc, _, err := http.NewResponseController(w).Hijack()
	switch {
	case errors.Is(err, http.ErrNotSupported):
		return err // the writer cannot hijack: nothing was written
	case err != nil:
		err = fmt.Errorf("take the connection over: %w", err)
		wt.Close()
		end(End{Err: err})
		return err
	}
	// Nothing is buffered for writing yet; a pipelined request in the reader is ignored, as the
	// poller ignores anything else the client sends.
	//
	// The head carries what the handler chain set (request id, CORS) and what a stream needs. The
	// connection is never reused after the stream, so say so to proxies.
	hdr := w.Header().Clone()
	SetSSEHeaders(hdr)
	hdr.Set("Transfer-Encoding", "chunked")
	hdr.Set("Connection", "close")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = hdr.Write(&head) // a bytes.Buffer takes every write; Write also strips CR and LF from values
	head.WriteString("\r\n")

	hs := &heldStream{h: h, bucket: int(h.next.Add(1) % sweepBuckets)}
	if d, reason := h.e.lifetime(wt.until); d > 0 {
		hs.expires, hs.expiresFor = time.Now().Add(d), reason
	}
	hs.beat = &h.comment
	if wt.visibleHeartbeats {
		hs.beat = &h.event
	}
	hs.w.init(h.e, hs, h.e.sseFraming(wt), wt, end)
	hs.w.lean = true

	// Counted in before the poller has it: its close callback, which counts it out, may run as
	// soon as Hold registers the socket (a client that already left).
	h.add(hs)
	conn, err := h.poller.Hold(nc, hs.closed)
	if err != nil {
		// After the poller failed new streams are not brought here (holdable); one taken over
		// just as it failed ends here, as those it held then do, and its client resumes.
		err = fmt.Errorf("hold connection: %w", err)
		_ = nc.Close() // taken over but not held: nobody else will close it; err says why
		h.remove(hs)
		hs.w.finish(ReasonWriteError, err, true, true)
		h.e.closed(ReasonWriteError)
		return err
	}
	// The head goes out before the stream is seen as held: the sweeper and the drain end only
	// a stream with a connection, and an end written before the head would be no response.
	hs.mu.Lock()
	err = conn.Write(head.Bytes())
	hs.conn.Store(conn)
	if err == nil {
		err = hs.w.flush()
	}
	hs.w.live = true // from here on, events feed the delivery latency histogram
	if hs.flushed(err) {
		hs.w.sub.OnReady(hs.wake) // live events from now on; at once if some already queued
	}
	return nil
}

// Write sends one frame as a chunk; the poller never blocks on it.
func (hs *heldStream) Write(frame []byte) error { return hs.WriteMany(frame) }

// WriteMany sends frames as one chunk, built in a scratch buffer: the poller copies what the
// socket does not take at once.
func (hs *heldStream) WriteMany(frames ...[]byte) error {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	p := getScratch()
	chunk := appendChunkHeader(*p, n)
	for _, f := range frames {
		chunk = append(chunk, f...)
	}
	chunk = append(chunk, "\r\n"...)
	err := hs.conn.Load().Write(chunk)
	putScratch(p, chunk)
	return err
}

// Close ends the stream for reason; see end.
func (hs *heldStream) Close(reason string, _ ordercast.Status) error {
	hs.end(reason, nil)
	return nil
}

// end closes the stream's connection for reason, keeping err for the log line. A stream the
// engine chose to end (terminal, lifetime, drain, a failed catch-up) ends its body, as net/http
// does when a handler returns, and closes once the client has it all; a connection that failed
// or went closes at once.
func (hs *heldStream) end(reason string, err error) {
	conn := hs.conn.Load()
	if conn == nil {
		return
	}
	cause := &closeCause{reason: reason, err: err}
	switch reason {
	case ReasonWriteTimeout, ReasonWriteError, ReasonClientGone:
		conn.Close(cause)
		return
	}
	// The end of the body and the close go together, so a client that hangs up on reading the
	// end cannot make the stream look gone.
	//
	// ErrClosed means closed, or ending already with its last chunk queued behind a slow client
	// (met again by the sweeper's next visit, or the drain): that end and its reason stand, as in
	// flushed; closing would cut the queued bytes off, and a client that stops reading them is
	// found Stalled. Any other error closed the connection, and its close callback reports it.
	last, end := hs.h.lastChunk, hs.w.f.end(nil, reason) // the client is told why (watcher.sayEnd)
	if len(end) > 0 {
		last = append(appendChunk(nil, end), last...)
	}
	// Counted before the write: the close it queues may be reported (finish, on the holder's
	// ender) before WriteClose returns, and the end then left its own frame out of its bytes.
	// Taken back when refused: a later visit to a stream ending already is refused ErrClosed, and
	// its end frame counts once.
	hs.w.wrote(end)
	if conn.WriteClose(last, cause) != nil {
		hs.w.bytes.Add(-int64(len(end)))
	}
}

// wake is the hub's callback when something is queued for hs. A status event for an order's
// stream is delivered there and then when the hub allows it (Wake.Inline), on the publisher's
// goroutine, which is running already: a worker woken for it would wait its turn for a core
// behind every request being served, and on two busy cores that wait was most of an event's
// time in the server (p50 0.35 ms, p99 17 ms at 5,000 changes/s, from the push to the worker
// starting). What would read the store (a catch-up) or may fan out wide (a stream of every
// order, or of a party) still goes to the workers.
func (hs *heldStream) wake(wk hub.Wake) {
	if wk.Status && wk.Inline && hs.w.scope == OrderEvents {
		hs.deliver(true)
		return
	}
	hs.schedule(wk.Status)
}

// schedule puts hs on the work queue, in the lane for status events (status) or for positions.
func (hs *heldStream) schedule(status bool) {
	switch {
	case status:
		if hs.queuedStatus.CompareAndSwap(false, true) {
			hs.h.work.push(hs, true)
		}
	case hs.queuedStatus.Load():
		// The run it is queued for takes the position too: the slot was filled before this
		// call, and the run clears the flag before it takes.
	case hs.queued.CompareAndSwap(false, true):
		hs.h.work.push(hs, false)
	}
}

// deliver runs the watcher's rules on what the hub queued, and writes it, on a worker or, when
// inline, on a publisher's goroutine (wake), which must never wait on the store: a run there that
// would catch up leaves that to a worker. A stream that another goroutine is delivering (a
// catch-up from the store may take seconds) is left to it, and it runs once more before it
// lets go: otherwise every publish to the stream meanwhile would queue it again and tie up one
// more worker, until none were left for the other streams.
func (hs *heldStream) deliver(inline bool) {
	hs.again.Store(true) // before trying the lock, so the worker that holds it sees it
	for hs.again.Load() {
		if !hs.mu.TryLock() {
			return
		}
		hs.again.Store(false)
		hs.queuedStatus.Store(false) // a publish from now on schedules another run
		hs.queued.Store(false)
		goesOn := hs.deliverLocked(inline)
		if inline {
			if goesOn && hs.again.Load() {
				// Others found the stream busy meanwhile: a worker runs for them, so that the
				// publisher does one run, not as many as they were.
				hs.handOff()
				return
			}
		}
		if !goesOn {
			return
		}
	}
}

// handOff gives the stream's next run to a worker whatever its flags say: a run that found the
// stream locked left queuedStatus set and returned, trusting the holder to run again, so the
// flag no longer means a run is coming.
func (hs *heldStream) handOff() {
	hs.queuedStatus.Store(true)
	hs.h.work.push(hs, true)
}

// deliverLocked is one run of deliver, with hs.mu held; it releases it, and reports whether
// the stream goes on here.
func (hs *heldStream) deliverLocked(inline bool) bool {
	if hs.w.ended || hs.gone.Load() {
		hs.mu.Unlock()
		return false
	}
	var buf [4]*hub.Message // one wake-up takes an event or two: on the stack (more go to the heap)
	msgs, overflowed := hs.w.take(buf[:0])
	if inline && hs.w.needsStore(msgs, overflowed) {
		hs.w.behind = true // msgs are read again from the store, with whatever else was missed
		hs.mu.Unlock()
		hs.handOff()
		return false
	}
	if err := hs.w.deliver(hs.h.ctx, msgs, overflowed); err != nil {
		hs.mu.Unlock()
		hs.end(ReasonStoreError, fmt.Errorf("catch up from the store: %w", err))
		return false
	}
	if due := hs.w.location(time.Now()); !due.IsZero() {
		hs.h.capped.add(hs, due)
	}
	return hs.flushed(hs.w.flush())
}

// flushed ends the stream after a flush that failed (err) or sent the terminal event, and
// reports whether it goes on. It is called with hs.mu held, and releases it.
func (hs *heldStream) flushed(err error) bool {
	ended, reason := hs.w.ended, hs.w.endReason()
	hs.mu.Unlock()
	switch {
	case errors.Is(err, poller.ErrClosed):
		// Closed, or ending with its last chunk queued behind a slow client (a lifetime, the
		// drain): that end stands. Ending it again here would cut the queued bytes off.
	case err != nil:
		hs.end(ReasonWriteError, err) // the poller closed it already; the reason it gave wins
	case ended:
		hs.end(reason, nil)
	default:
		return true
	}
	return false
}

// heartbeat writes a keep-alive without taking the stream's lock (a worker may hold it while it
// catches up from the store): a chunk is written whole, so it never splits another.
func (hs *heldStream) heartbeat(conn *poller.Conn, now time.Time) {
	hs.w.sent(now) // before the write, as in flush
	// Counted before the write, as end's frame is, and taken back when a failure closes the
	// stream, reason and all: an end reported meanwhile counts it.
	hs.w.bytes.Add(int64(len(hs.beat.frame)))
	if conn.Write(hs.beat.chunk) != nil {
		hs.w.bytes.Add(-int64(len(hs.beat.frame)))
	}
}

// closed is the poller's close callback: it runs once, whoever closed the connection, and
// leaves the end's bookkeeping to the holder's ender (endQueue).
func (hs *heldStream) closed(err error) {
	hs.gone.Store(true)
	reason := heldReason(err)
	var cause *closeCause
	if errors.As(err, &cause) {
		err = cause.err
	} else if reason == ReasonClientGone || reason == ReasonShutdown {
		err = nil // the poller noticed the client leave or the engine close: nothing failed
	}
	// No hs.mu here: a write failing inside deliver, under hs.mu, closes the connection and so
	// calls this on the same goroutine.
	hs.h.remove(hs) // the sweeper and the drain stop visiting it at once
	hs.h.ends.push(func() {
		hs.w.finish(reason, err, true, true)
		hs.h.e.closed(reason) // last: a Wait outlasts the end (Engine.closed)
	})
}

// pollerFailed is the poller's OnFail. The streams it held are ending with err; a new stream would
// end at once, held by nothing, so new streams keep their goroutine from now on.
func (h *holder) pollerFailed(err error) {
	h.failed.Store(true)
	h.e.observer.HoldingFailed(err)
}

// heldReason names why the poller closed a connection, by the same rules as a stream on a
// goroutine: a client that stopped reading is stuck, as one that missed a write deadline.
func heldReason(err error) string {
	var cause *closeCause
	switch {
	case errors.As(err, &cause):
		return cause.reason
	case errors.Is(err, poller.ErrPeerClosed):
		return ReasonClientGone
	case errors.Is(err, poller.ErrBacklog), errors.Is(err, poller.ErrBudget):
		// ErrBudget: a client too slow to take its stream's opening while the node's queues
		// are full of other slow clients' (poller.DefaultMaxPendingTotal); it resumes later.
		return ReasonWriteTimeout
	case errors.Is(err, poller.ErrClosed):
		return ReasonShutdown
	}
	return ReasonWriteError
}

func (h *holder) add(hs *heldStream) {
	b := &h.buckets[hs.bucket]
	b.mu.Lock()
	b.streams[hs] = struct{}{}
	b.mu.Unlock()
	h.e.opened()
}

func (h *holder) remove(hs *heldStream) {
	b := &h.buckets[hs.bucket]
	b.mu.Lock()
	delete(b.streams, hs)
	b.mu.Unlock()
	h.capped.mu.Lock()
	delete(h.capped.due, hs)
	h.capped.mu.Unlock()
}

// snapshot returns the streams of one bucket, or of all when bucket is -1.
func (h *holder) snapshot(bucket int) []*heldStream {
	var out []*heldStream
	for i := range h.buckets {
		if bucket >= 0 && i != bucket {
			continue
		}
		b := &h.buckets[i]
		b.mu.Lock()
		for hs := range b.streams {
			out = append(out, hs)
		}
		b.mu.Unlock()
	}
	return out
}

// worker delivers to the streams the hub woke, until the holder closes.
func (h *holder) worker() {
	for {
		hs := h.work.pop(h.ctx)
		if hs == nil {
			return
		}
		hs.deliver(false)
	}
}

// close closes whatever is still held (their clients resume) and stops the goroutines, once
// every end queued is finished.
func (h *holder) close() error {
	err := h.poller.Close() // closes the remaining connections: reason shutdown
	h.cancel()
	h.ends.stop()
	h.wg.Wait()
	if err != nil {
		return fmt.Errorf("close poller: %w", err)
	}
	return nil
}

// heartbeatFrame is one kind of heartbeat, computed once for every stream held: the SSE frame,
// and the same as a chunk of an HTTP/1.1 body.
type heartbeatFrame struct {
	frame, chunk []byte
}

func newHeartbeatFrame(frame []byte) heartbeatFrame {
	return heartbeatFrame{frame: frame, chunk: appendChunk(nil, frame)}
}
