package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/poller"
)

// Holding streams without a goroutine each.
//
// An SSE watcher is idle nearly all of its life. Served the idiomatic way it still costs a
// goroutine (whose stack has grown through the handler) and net/http's read and write buffers:
// about 25 KB. Once a cleartext HTTP/1.1 stream is set up, the server takes the connection over
// (Hijack), writes the response head itself, and gives the socket to a poller: one epoll
// goroutine notices clients leaving, and writes are non-blocking. Live events wake the stream
// through the hub's OnReady callback onto a small pool of workers, which run the same delivery
// rules as the goroutine path (stream, forward: dedupe, gap fill, overflow catch-up). One
// sweeper sends heartbeats and enforces lifetimes and write deadlines. What a held stream keeps
// is its state, its subscription and the socket: a few hundred bytes.
//
// HTTP/2 streams and TLS connections cannot be taken over this way (frames and encryption live
// in user space), so they keep the goroutine path; so does every platform without epoll.

// sweepBuckets spreads the sweeper's work over the heartbeat interval: each tick visits one
// bucket of streams, so heartbeats leave in a steady trickle instead of one burst.
const sweepBuckets = 16

// pingChunk is a heartbeat comment as one HTTP/1.1 chunk.
var pingChunk = []byte("8\r\n: ping\n\n\r\n")

// lastChunk ends a chunked response.
var lastChunk = []byte("0\r\n\r\n")

// closeReason is the error a held stream's connection is closed with when the server chooses
// to close it; the poller's own errors (peer gone, backlog) are mapped in heldStream.closed.
type closeReason string

func (r closeReason) Error() string { return string(r) }

// heldSet is every stream the poller holds on this server, and the goroutines serving them.
type heldSet struct {
	s      *Server
	poller *poller.Poller

	buckets [sweepBuckets]struct {
		mu      sync.Mutex
		streams map[*heldStream]struct{}
	}
	next  atomic.Uint64 // spreads streams over buckets
	count atomic.Int64

	work   workQueue
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// heldStream is one stream held by the poller.
type heldStream struct {
	set     *heldSet
	conn    atomic.Pointer[poller.Conn] // set once held; the sweeper skips a stream without one
	sub     *hub.Subscription
	watch   *watchStart // done when the stream closes
	orderID string
	bucket  int
	expires time.Time // zero: no lifetime
	opened  time.Time
	reqID   string
	path    string
	logDone func(...slog.Attr) // writes the request's log line

	mu     sync.Mutex // one worker at a time delivers, in order
	st     *stream
	queued atomic.Bool // on the work queue, or about to be
}

// holdable reports whether a stream on r can be handed to the poller.
func (s *Server) holdable(r *http.Request) bool {
	return s.held != nil && r.ProtoMajor == 1 && r.ProtoMinor >= 1 && r.TLS == nil
}

func (s *Server) openHeld() error {
	p := poller.New()
	if err := p.Open(); err != nil {
		return fmt.Errorf("open poller: %w", err)
	}
	h := &heldSet{s: s, poller: p}
	for i := range h.buckets {
		h.buckets[i].streams = make(map[*heldStream]struct{})
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.work.wake = make(chan struct{}, 1)
	// Workers mostly wait on the store when they catch a stream up; a few per core keep a slow
	// query from holding up every other stream's delivery.
	for range 4 * runtime.GOMAXPROCS(0) {
		h.wg.Go(h.worker)
	}
	h.wg.Go(h.sweep)
	s.held = h
	return nil
}

// hold takes the connection of r over and gives the stream to the poller. It returns
// http.ErrNotSupported, having written nothing, when the connection cannot be taken over; the
// caller then serves the stream on its goroutine.
func (s *Server) hold(w http.ResponseWriter, r *http.Request, ws *watchStart) error {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return err // ErrNotSupported when the writer cannot hijack: nothing was written
	}
	// Nothing is buffered for writing yet; a pipelined request in brw.Reader is ignored, as the
	// poller ignores anything else the client sends.
	_ = brw
	// The head carries what the handler chain set (request id, CORS) and what a stream needs. The
	// connection is never reused after the stream, so say so to proxies.
	h := w.Header().Clone()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&head) // a bytes.Buffer takes every write; Write also strips CR and LF from values
	head.WriteString("\r\n")

	set := s.held
	hs := &heldStream{
		set: set, sub: ws.sub, watch: ws, orderID: ws.orderID,
		bucket: int(set.next.Add(1) % sweepBuckets),
		opened: time.Now(), reqID: RequestID(r.Context()), path: r.URL.Path,
		logDone: handOver(r.Context()),
	}
	if s.StreamLifetime > 0 {
		hs.expires = hs.opened.Add(s.StreamLifetime - rand.N(s.StreamLifetime/10+1))
	}
	f := &sseFrames{release: true}
	hs.st = &stream{out: f, last: ws.last, metrics: s.Metrics}
	f.retry(s.Retry)
	hs.st.events(ws.backlog)

	// Counted in before the poller has it: its close callback, which counts it out, may run as
	// soon as Hold registers the socket (a client that already left).
	set.add(hs)
	conn, err := set.poller.Hold(nc, hs.closed)
	if err != nil {
		_ = nc.Close() // taken over but not held: nobody else will close it
		set.remove(hs)
		s.streamClosed(ReasonWriteError)
		hs.logDone(slog.String("err", err.Error()))
		return fmt.Errorf("hold connection: %w", err)
	}
	hs.conn.Store(conn)
	f.send = func(b []byte) error { return conn.Write(appendChunk(nil, b)) }

	hs.mu.Lock()
	err = conn.Write(head.Bytes())
	if err == nil {
		err = hs.st.flush()
	}
	hs.st.live = true // from here on, events feed the delivery latency histogram
	ended := hs.st.ended
	hs.mu.Unlock()
	switch {
	case err != nil:
		hs.close(ReasonWriteError)
	case ended:
		hs.finish()
	default:
		ws.sub.OnReady(hs.schedule) // live events from now on; at once if some already queued
	}
	return nil
}

// appendChunk appends b as one chunk of a chunked HTTP/1.1 body.
func appendChunk(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, b...)
	return append(dst, "\r\n"...)
}

// schedule puts hs on the work queue; the hub calls it when events are queued for hs.
func (hs *heldStream) schedule() {
	if hs.queued.CompareAndSwap(false, true) {
		hs.set.work.push(hs)
	}
}

// deliver runs on a worker: it forwards what the hub queued, by the same rules as the goroutine
// path, and writes it.
func (hs *heldStream) deliver() {
	hs.queued.Store(false) // a publish from now on schedules another run
	hs.mu.Lock()
	if hs.st.ended {
		hs.mu.Unlock()
		return
	}
	msgs, overflowed := hs.sub.Take()
	set := hs.set
	ctx, cancel := context.WithTimeout(set.ctx, set.s.StreamWriteTimeout)
	err := set.s.forward(ctx, hs.orderID, hs.st, msgs, overflowed)
	cancel()
	if err != nil {
		hs.mu.Unlock()
		set.s.Logger.Error("stream catch-up failed", "request_id", hs.reqID, "path", hs.path, "err", err)
		hs.close(ReasonStoreError)
		return
	}
	err = hs.st.flush()
	ended := hs.st.ended
	hs.mu.Unlock()
	switch {
	case err != nil:
		hs.close(ReasonWriteError) // the poller closed it already; the reason it gave wins
	case ended:
		hs.finish()
	}
}

// finish ends the response after the terminal event and closes once the client has it all.
func (hs *heldStream) finish() {
	conn := hs.conn.Load()
	if err := conn.Write(lastChunk); err != nil {
		return // closed already
	}
	conn.CloseAfterFlush(closeReason(ReasonTerminal))
}

// close closes the stream's connection with reason.
func (hs *heldStream) close(reason string) {
	if conn := hs.conn.Load(); conn != nil {
		conn.Close(closeReason(reason))
	}
}

// closed is the poller's close callback: it runs once, whoever closed the connection.
func (hs *heldStream) closed(err error) {
	var reason string
	var cr closeReason
	switch {
	case errors.As(err, &cr):
		reason = string(cr)
	case errors.Is(err, poller.ErrPeerClosed):
		reason = ReasonClientGone
	case errors.Is(err, poller.ErrBacklog):
		reason = ReasonWriteTimeout // not reading: a stuck client, as a missed deadline
	case errors.Is(err, poller.ErrClosed):
		reason = ReasonShutdown
	default:
		reason = ReasonWriteError
	}
	hs.watch.done()
	set := hs.set
	set.remove(hs)
	s := set.s
	s.streamClosed(reason)
	// No hs.mu here: a write failing inside deliver, under hs.mu, closes the connection and so
	// calls this on the same goroutine.
	hs.logDone(slog.String("reason", reason), slog.Int64("events", hs.st.sent.Load()), slog.Bool("held", true))
}

func (h *heldSet) add(hs *heldStream) {
	b := &h.buckets[hs.bucket]
	b.mu.Lock()
	b.streams[hs] = struct{}{}
	b.mu.Unlock()
	h.count.Add(1)
	h.s.streamOpened()
}

func (h *heldSet) remove(hs *heldStream) {
	b := &h.buckets[hs.bucket]
	b.mu.Lock()
	delete(b.streams, hs)
	b.mu.Unlock()
	h.count.Add(-1)
}

// snapshot returns the streams of one bucket, or of all when bucket is -1.
func (h *heldSet) snapshot(bucket int) []*heldStream {
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

// worker delivers to the streams the hub woke, until the set closes.
func (h *heldSet) worker() {
	for {
		hs := h.work.pop(h.ctx)
		if hs == nil {
			return
		}
		hs.deliver()
	}
}

// sweep visits one bucket per tick: a heartbeat for each stream, and the end of streams whose
// lifetime is over or whose client stopped reading.
func (h *heldSet) sweep() {
	s := h.s
	t := time.NewTicker(max(s.Heartbeat/sweepBuckets, time.Millisecond))
	defer t.Stop()
	bucket := 0
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-t.C:
			for _, hs := range h.snapshot(bucket) {
				conn := hs.conn.Load()
				switch {
				case conn == nil:
					// Being handed over right now; its first bytes are on their way.
				case !hs.expires.IsZero() && now.After(hs.expires):
					hs.close(ReasonLifetime)
				case conn.Stalled(now, s.StreamWriteTimeout):
					hs.close(ReasonWriteTimeout)
				default:
					_ = conn.Write(pingChunk) // a failure closes the stream, reason and all
				}
			}
			bucket = (bucket + 1) % sweepBuckets
		}
	}
}

// drain closes every held stream at its place in the server's drain schedule.
func (h *heldSet) drain(schedule *drainSchedule) {
	streams := h.snapshot(-1)
	if len(streams) == 0 {
		return
	}
	delays := make([]time.Duration, len(streams))
	for i := range streams {
		delays[i] = schedule.delay()
	}
	h.wg.Go(func() {
		start := time.Now()
		for i, hs := range streams {
			if wait := time.Until(start.Add(delays[i])); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-h.ctx.Done():
					t.Stop()
					return
				}
			}
			hs.close(ReasonShutdown) // the client resumes, with Last-Event-ID, on another node
		}
	})
}

// close closes whatever is still held (their clients resume) and stops the goroutines.
func (h *heldSet) close() error {
	err := h.poller.Close() // closes the remaining connections: reason shutdown
	h.cancel()
	h.wg.Wait()
	return err
}

// workQueue is an unbounded FIFO of streams to deliver to: the hub's publishers push without
// ever blocking, workers pop.
type workQueue struct {
	mu    sync.Mutex
	items []*heldStream
	wake  chan struct{} // capacity 1: "items may be waiting"
}

func (q *workQueue) push(hs *heldStream) {
	q.mu.Lock()
	q.items = append(q.items, hs)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next stream, waiting for one; nil when ctx ends.
func (q *workQueue) pop(ctx context.Context) *heldStream {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			hs := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			more := len(q.items) > 0
			q.mu.Unlock()
			if more {
				select { // pass the baton: another worker takes the next one
				case q.wake <- struct{}{}:
				default:
				}
			}
			return hs
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil
		}
	}
}
