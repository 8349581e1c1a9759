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
	if err := s.authorizeWatch(r, id); err != nil {
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
	release, err := s.admitStream(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()
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

	st := s.newSSEWriter(w, lastID)
	st.retry(s.Retry)
	st.events(backlog)
	s.runStream(w, r, st, sub, func(msgs []*hub.Message, overflowed bool) error {
		return s.forward(r, st, msgs, overflowed)
	})
}

// newSSEWriter returns the writer of one stream whose client has every event up to seq last.
func (s *Server) newSSEWriter(w http.ResponseWriter, last int64) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w), timeout: s.StreamWriteTimeout, last: last, metrics: s.Metrics}
}

// runStream sends the SSE headers and what st holds, then pumps the stream until it ends, and
// keeps the count, metrics and log line of open streams. deliver writes the live messages the
// subscription takes; it is where the per-order and the all-orders streams differ.
func (s *Server) runStream(w http.ResponseWriter, r *http.Request, st *sseWriter, sub *hub.Subscription, deliver func(msgs []*hub.Message, overflowed bool) error) {
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response
	w.WriteHeader(http.StatusOK)
	s.streams.Add(1)
	s.Metrics.streamOpened()
	reason, err := s.pump(ctx, st, sub, deliver)
	s.streams.Add(-1)
	s.Metrics.streamClosed(reason)
	logAttrs(ctx, slog.String("reason", reason), slog.Int64("events", st.sent))
	if err != nil {
		logAttrs(ctx, slog.String("err", err.Error()))
		if reason == ReasonStoreError {
			s.Logger.Error("stream catch-up failed", "request_id", RequestID(ctx), "path", r.URL.Path, "err", err)
		}
	}
}

// pump flushes what st holds, then writes live events, heartbeats and the drain, until the
// stream ends; it returns why it ended.
func (s *Server) pump(ctx context.Context, st *sseWriter, sub *hub.Subscription, deliver func(msgs []*hub.Message, overflowed bool) error) (reason string, err error) {
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
			st.comment("ping")
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
func (s *Server) forward(r *http.Request, st *sseWriter, msgs []*hub.Message, overflowed bool) error {
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

// sseWriter writes the SSE wire format to one response. It keeps the seq of the last event
// written, and remembers the first write error so callers check once per batch.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
	last    int64
	ended   bool // a terminal event was written; the stream is complete

	metrics *Metrics
	live    bool        // past the backlog: events are fresh commits, their latency is measured
	pending int         // events in buf
	liveAt  []time.Time // commit times of the live events in buf
	sent    int64       // events flushed over the stream's life
}

func (st *sseWriter) retry(d time.Duration) {
	st.buf = append(st.buf, "retry: "...)
	st.buf = strconv.AppendInt(st.buf, d.Milliseconds(), 10)
	st.buf = append(st.buf, "\n\n"...)
}

func (st *sseWriter) comment(text string) {
	st.buf = append(st.buf, ": "...)
	st.buf = append(st.buf, text...)
	st.buf = append(st.buf, "\n\n"...)
}

// events writes events read from the store; only the next seqs in order are taken.
func (st *sseWriter) events(evs []ordercast.Event) {
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

func (st *sseWriter) message(m *hub.Message) {
	st.buf = AppendEvent(st.buf, m)
	st.pending++
	if st.live {
		st.liveAt = append(st.liveAt, m.Event.At)
	}
	st.last = m.Event.Seq
	st.ended = m.Event.Status.Terminal()
}

// AppendEvent appends one event in the SSE wire format: id, event type and one JSON data line.
// The JSON never holds a raw newline, so one data line is always enough.
func AppendEvent(b []byte, m *hub.Message) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, m.Event.Seq, 10)
	b = append(b, "\nevent: status\ndata: "...)
	b = append(b, m.JSON...)
	return append(b, "\n\n"...)
}

// flush writes what is buffered under a fresh deadline and pushes it to the client.
func (st *sseWriter) flush() error {
	if len(st.buf) == 0 {
		return nil
	}
	if err := st.rc.SetWriteDeadline(time.Now().Add(st.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := st.w.Write(st.buf); err != nil {
		return err
	}
	st.buf = st.buf[:0]
	if err := st.rc.Flush(); err != nil {
		return err
	}
	if st.pending > 0 {
		st.metrics.delivered(st.pending, st.liveAt, time.Now())
		st.sent += int64(st.pending)
		st.pending, st.liveAt = 0, st.liveAt[:0]
	}
	return nil
}
