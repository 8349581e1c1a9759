package server

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// handleStream serves GET /v1/orders/{id}/stream: the order's status changes as Server-Sent
// Events. It follows the delivery rules of DESIGN.md: subscribe to the hub first, then read the
// store, then forward live events, skipping seqs already written and filling gaps from the store.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := ordercast.ValidateID(id); err != nil {
		s.writeError(w, r, err)
		return
	}
	lastID, err := LastEventID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.streamsClosing() {
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "shutting down"))
		return
	}
	// Subscribe before reading, so that a change committed in between is queued, not lost.
	sub := s.Hub.Subscribe(id)
	defer sub.Close()

	ctx := r.Context()
	o, err := s.Store.Order(ctx, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A Last-Event-ID past the order's version cannot come from this order's history (a reset
	// database, a forged header): treat it as a fresh connect and send the current state.
	if lastID > o.Version {
		lastID = 0
	}
	if lastID == o.Version && o.Status.Terminal() {
		// The client already has the final event: 204 tells EventSource to stop reconnecting.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	after := lastID
	if lastID == 0 {
		after = o.Version - 1 // the current status is the first event
	}
	backlog, err := s.Store.EventsAfter(ctx, id, after, 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	st, sse := s.newSSEStream(w, lastID)
	sse.retry(s.Retry)
	st.events(backlog)
	s.serveSSE(w, r, st, sub, func(msgs []*hub.Message, overflowed bool) error {
		return s.forward(r, st, msgs, overflowed)
	})
}

// newSSEStream returns a stream whose client has every event up to seq last, written as SSE
// frames on w; the frames are returned too, for what only SSE has (retry, comments, named events).
func (s *Server) newSSEStream(w http.ResponseWriter, last int64) (*stream, *sseFrames) {
	f := &sseFrames{w: w, rc: http.NewResponseController(w), timeout: s.StreamWriteTimeout}
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
	s.streams.Add(1)
	s.Metrics.streamOpened()
	reason, err := s.pump(ctx, st, sub, deliver)
	s.streams.Add(-1)
	s.Metrics.streamClosed(reason)
	logAttrs(r.Context(), slog.String("reason", reason), slog.Int64("events", st.sent))
	if err != nil {
		logAttrs(r.Context(), slog.String("err", err.Error()))
		if reason == ReasonStoreError {
			s.Logger.Error("stream catch-up failed", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
		}
	}
	return reason
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
func (s *Server) forward(r *http.Request, st *stream, msgs []*hub.Message, overflowed bool) error {
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
	missed, err := s.Store.EventsAfter(r.Context(), r.PathValue("id"), st.last, 0)
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
	sent    int64       // events flushed over the stream's life
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
		st.sent += int64(st.pending)
		st.pending, st.liveAt = 0, st.liveAt[:0]
	}
	return nil
}

// sseFrames writes the SSE wire format to one response, batching a flush's frames in one write.
type sseFrames struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
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
	if err := f.rc.SetWriteDeadline(time.Now().Add(f.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := f.w.Write(f.buf); err != nil {
		return err
	}
	f.buf = f.buf[:0]
	return f.rc.Flush()
}
