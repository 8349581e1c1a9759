package server

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// handleStream serves GET /v1/orders/{id}/stream: the order's status changes as Server-Sent
// Events. It follows the delivery rules of DESIGN.md: subscribe to the hub first, then read the
// store, then forward live events, skipping seqs already written and filling gaps from the store.
// A cleartext HTTP/1.1 stream is handed to the poller once it is set up (see held.go); others
// keep their goroutine.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	ws, ok := s.startWatch(w, r)
	if !ok {
		return
	}
	if ws.ended {
		ws.done()
		// The client already has the final event: 204 tells EventSource to stop reconnecting.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if s.holdable(r) {
		if err := s.hold(w, r, ws); err == nil {
			return // the poller owns the stream now, subscription included
		} else if !errors.Is(err, http.ErrNotSupported) {
			ws.done()
			s.Logger.Debug("stream hand-over failed", "request_id", RequestID(r.Context()), "err", err)
			return
		}
	}
	defer ws.done()
	st, sse := s.newSSEStream(w, ws.last)
	sse.retry(s.Retry)
	st.events(ws.backlog)
	s.serveSSE(w, r, st, ws.sub, func(msgs []*hub.Message, overflowed bool) error {
		return s.forward(r.Context(), ws.orderID, st, msgs, overflowed)
	})
}

// watchStart is where a new watcher of one order starts: subscribed, with what the store held
// when it was read.
type watchStart struct {
	orderID string
	sub     *hub.Subscription // closed by done
	release func()            // gives back the stream's place under the limits; called by done
	order   ordercast.Order
	last    int64             // the client has every event up to this seq
	backlog []ordercast.Event // the events after last, to send first
	ended   bool              // the client already has the terminal event
}

// done ends the watch: it unsubscribes and gives back its place under the stream limits.
func (ws *watchStart) done() {
	ws.sub.Close()
	ws.release()
}

// startWatch validates and authorizes a watch request on GET /v1/orders/{id}/…, admits it under the stream
// limits, and sets the watcher up by design
// rule 2: subscribe first, then read the store, so no change falls in between. On failure it has
// answered the request and returns false.
func (s *Server) startWatch(w http.ResponseWriter, r *http.Request) (*watchStart, bool) {
	id := r.PathValue("id")
	if err := ordercast.ValidateID(id); err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	if err := s.authorizeWatch(r, id); err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	lastID, err := LastEventID(r)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	if s.streamsClosing() {
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "shutting down"))
		return nil, false
	}
	release, err := s.admitStream(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	sub := s.Hub.Subscribe(id)
	ws, err := s.readWatchStart(r.Context(), id, lastID)
	if err != nil {
		sub.Close()
		release()
		if r.Pattern != patWebSocket && s.answerStreamStoreAway(w, r, err) {
			return nil, false
		}
		s.writeError(w, r, err)
		return nil, false
	}
	ws.sub, ws.release = sub, release
	if err := streamReadsNothing(w); err != nil {
		ws.done()
		s.Logger.Debug("stream set-up: clear read deadline", "request_id", RequestID(r.Context()), "err", err)
		return nil, false
	}
	return ws, true
}

func (s *Server) readWatchStart(ctx context.Context, id string, lastID int64) (*watchStart, error) {
	o, err := s.Store.Order(ctx, id)
	if err != nil {
		return nil, err
	}
	// A Last-Event-ID past the order's version cannot come from this order's history (a reset
	// database, a forged header): treat it as a fresh connect and send the current state.
	if lastID > o.Version {
		lastID = 0
	}
	ws := &watchStart{orderID: id, order: o, last: lastID}
	if lastID == o.Version {
		ws.ended = o.Status.Terminal()
		return ws, nil // up to date: only live events follow
	}
	after := lastID
	if lastID == 0 {
		after = o.Version - 1 // the current status is the first event
	}
	if ws.backlog, err = s.Store.EventsAfter(ctx, id, after, 0); err != nil {
		return nil, err
	}
	return ws, nil
}

// newSSEStream returns a stream whose client has every event up to seq last, written as SSE
// frames on w; the frames are returned too, for what only SSE has (retry, comments, named events).
func (s *Server) newSSEStream(w http.ResponseWriter, last int64) (*stream, *sseFrames) {
	rc := http.NewResponseController(w)
	f := &sseFrames{send: func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.StreamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}}
	return &stream{out: f, last: last, metrics: s.Metrics}, f
}

// serveSSE sends the SSE headers, then runs the stream.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, st *stream, sub *hub.Subscription, deliver func(msgs []*hub.Message, overflowed bool) error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response
	w.WriteHeader(http.StatusOK)
	s.runStream(r.Context(), r, st, sub, deliver)
}

// runStream writes what st holds, then pumps the stream until it ends, and keeps the count,
// metrics and log line of open streams; it returns why the stream ended. deliver writes the live
// messages the subscription takes; it is where the per-order and the all-orders streams differ.
// It serves every transport (SSE, WebSocket): only st's frames differ.
func (s *Server) runStream(ctx context.Context, r *http.Request, st *stream, sub *hub.Subscription, deliver func(msgs []*hub.Message, overflowed bool) error) string {
	s.streamOpened()
	reason, err := s.pump(ctx, st, sub, deliver)
	s.streamClosed(reason)
	logAttrs(r.Context(), slog.String("reason", reason), slog.Int64("events", st.sent.Load()))
	if err != nil {
		logAttrs(r.Context(), slog.String("err", err.Error()))
		if reason == ReasonStoreError {
			s.Logger.Error("stream catch-up failed", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
		}
	}
	return reason
}

// streamOpened counts a stream in, for the drain schedule and the metrics.
func (s *Server) streamOpened() {
	s.streams.Add(1)
	s.Metrics.streamOpened()
}

// streamClosed counts a stream out, and tells a Close waiting for the last one.
func (s *Server) streamClosed(reason string) {
	s.streams.Add(-1)
	s.Metrics.streamClosed(reason)
	select {
	case s.streamGone <- struct{}{}:
	default:
	}
}

// waitStreams blocks until no stream is open or ctx ends. Shutdown does not wait for streams on
// hijacked connections (held by the poller, or WebSockets), so Close waits here.
func (s *Server) waitStreams(ctx context.Context) error {
	for s.streams.Load() > 0 {
		select {
		case <-s.streamGone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pump flushes what st holds, then writes live events, heartbeats and the drain, until the
// stream ends; it returns why it ended.
func (s *Server) pump(ctx context.Context, st *stream, sub *hub.Subscription, deliver func(msgs []*hub.Message, overflowed bool) error) (reason string, err error) {
	if err := st.flush(); err != nil {
		return s.writeFailure(ctx, err), err
	}
	st.live = true // from here on, events feed the delivery latency histogram

	heartbeat := time.NewTicker(s.Heartbeat)
	defer heartbeat.Stop()
	var lifetime <-chan time.Time
	if s.StreamLifetime > 0 {
		t := time.NewTimer(s.StreamLifetime - rand.N(s.StreamLifetime/10+1))
		defer t.Stop()
		lifetime = t.C
	}
	var drain <-chan time.Time // armed when the drain starts
	closing := s.closing
	for !st.ended {
		select {
		case <-ctx.Done():
			if s.ctx.Err() != nil {
				return ReasonShutdown, nil // the shutdown deadline passed and cut the stream
			}
			return ReasonClientGone, nil
		case <-closing:
			closing = nil
			t := time.NewTimer(s.drain.Load().delay())
			defer t.Stop()
			drain = t.C
		case <-drain:
			return ReasonShutdown, nil // the client resumes, with Last-Event-ID, on another node
		case <-lifetime:
			return ReasonLifetime, nil
		case <-heartbeat.C:
			st.out.heartbeat()
		case <-sub.Ready():
			msgs, overflowed := sub.Take()
			if err := deliver(msgs, overflowed); err != nil {
				return ReasonStoreError, err
			}
		}
		if err := st.flush(); err != nil {
			return s.writeFailure(ctx, err), err
		}
	}
	return ReasonTerminal, nil
}

// writeFailure names why a write failed: a missed deadline is a stuck client; a failed write
// after the client left is just the client leaving.
func (s *Server) writeFailure(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonWriteTimeout
	case ctx.Err() != nil:
		if s.ctx.Err() != nil {
			return ReasonShutdown
		}
		return ReasonClientGone
	}
	return ReasonWriteError
}

// forward writes live messages in seq order. A duplicate is skipped; a gap, or a mailbox that
// overflowed, is filled from the store, which is the truth.
func (s *Server) forward(ctx context.Context, orderID string, st *stream, msgs []*hub.Message, overflowed bool) error {
	for _, m := range msgs {
		switch seq := m.Event.Seq; {
		case seq <= st.last:
			continue
		case seq == st.last+1:
			st.message(m)
		default:
			overflowed = true // a hole: catch up below
		}
		if st.ended {
			return nil
		}
	}
	if !overflowed {
		return nil
	}
	s.Metrics.caughtUp.Inc()
	missed, err := s.Store.EventsAfter(ctx, orderID, st.last, 0)
	if err != nil {
		return err
	}
	st.events(missed)
	return nil
}

// LastEventID reads where a client resumes: the Last-Event-ID header, or the lastEventId query
// parameter for clients that cannot set headers. Absent means 0 (from the current state).
func LastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	return ParseLastEventID(v)
}

// ParseLastEventID parses an event id this server sent: a seq, a non-negative decimal integer.
func ParseLastEventID(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || v[0] == '+' {
		return 0, ordercast.Errorf(ordercast.EMalformed, "Last-Event-ID must be a non-negative integer")
	}
	return n, nil
}

// stream is the transport-neutral state of one open stream: the seq of the last event queued,
// whether the order ended, and what the metrics need. Its frames put events on the wire.
type stream struct {
	out   frames
	last  int64
	ended bool // a terminal event was queued; the stream is complete
	// lastStatus is the status of the last event queued.
	lastStatus ordercast.Status

	metrics *Metrics
	live    bool        // past the backlog: events are fresh commits, their latency is measured
	pending int         // events queued since the last flush
	liveAt  []time.Time // commit times of the live events queued
	// sent counts the events flushed over the stream's life. Atomic: a held stream's close
	// callback reads it while a worker may be inside a flush, holding the stream's lock.
	sent atomic.Int64
}

// frames is how a stream's events reach the wire: SSE text on a response, or WebSocket
// messages. Everything else (ordering, dedupe, catch-up, drain, metrics) is the stream's.
type frames interface {
	// event queues one event for the next flush.
	event(m *hub.Message)
	// heartbeat queues a keep-alive for an idle stream.
	heartbeat()
	// flush writes what is queued, under a fresh write deadline, and pushes it to the client.
	flush() error
}

// events queues events read from the store; only the next seqs in order are taken.
func (st *stream) events(evs []ordercast.Event) {
	for _, ev := range evs {
		if ev.Seq <= st.last {
			continue
		}
		st.message(hub.NewMessage(ev))
		if st.ended {
			return
		}
	}
}

func (st *stream) message(m *hub.Message) {
	st.out.event(m)
	st.pending++
	if st.live {
		st.liveAt = append(st.liveAt, m.Event.At)
	}
	st.last = m.Event.Seq
	st.lastStatus = m.Event.Status
	st.ended = m.Event.Status.Terminal()
}

// flush writes what is queued and counts the events it delivered.
func (st *stream) flush() error {
	if err := st.out.flush(); err != nil {
		return err
	}
	if st.pending > 0 {
		st.metrics.delivered(st.pending, st.liveAt, time.Now())
		st.sent.Add(int64(st.pending))
		st.pending, st.liveAt = 0, st.liveAt[:0]
	}
	return nil
}

// sseFrames builds the SSE wire format and hands each flush's frames, batched, to send: a write
// to the response under a deadline, or a chunk to a held connection.
type sseFrames struct {
	send func([]byte) error
	buf  []byte
	// release drops the buffer after each flush: a held stream is idle nearly always, and its
	// memory is what decides how many one node holds.
	release bool
}

var _ frames = (*sseFrames)(nil)

func (f *sseFrames) retry(d time.Duration) {
	f.buf = append(f.buf, "retry: "...)
	f.buf = strconv.AppendInt(f.buf, d.Milliseconds(), 10)
	f.buf = append(f.buf, "\n\n"...)
}

func (f *sseFrames) comment(text string) {
	f.buf = append(f.buf, ": "...)
	f.buf = append(f.buf, text...)
	f.buf = append(f.buf, "\n\n"...)
}

func (f *sseFrames) heartbeat() { f.comment("ping") }

func (f *sseFrames) event(m *hub.Message) { f.buf = AppendEvent(f.buf, m) }

// AppendEvent appends one event in the SSE wire format: id, event type and one JSON data line.
// The JSON never holds a raw newline, so one data line is always enough.
func AppendEvent(b []byte, m *hub.Message) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, m.Event.Seq, 10)
	b = append(b, "\nevent: status\ndata: "...)
	b = append(b, m.JSON...)
	return append(b, "\n\n"...)
}

func (f *sseFrames) flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	err := f.send(f.buf)
	if f.release {
		f.buf = nil
	} else {
		f.buf = f.buf[:0]
	}
	return err
}
