package check

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// watcher follows one order at a time over raw HTTP/1.1 connections it opens itself, reads them
// with its own SSE reader, resumes with Last-Event-ID on a random endpoint after any error, and
// after the final event reconnects once more to see the 204.
type watcher struct {
	idx int
	p   *phase
	r   *rand.Rand

	mu       sync.Mutex
	sessions []Session
	curOrder *orderState
	lastSeq  int64
	waiting  bool // has the final event, awaiting the 204

	pauseUntil atomic.Int64 // unix nanos: stop reading until then (fault)
	vanish     atomic.Bool  // abandon the connection without closing it (fault)
	hitAt      atomic.Int64 // unix nanos of the last watcher fault that hit it
}

var errVanished = errors.New("watcher vanished")

// idleTimeout is how long a stream may stay silent (the nodes send a heartbeat every second)
// before the watcher gives up on it and resumes elsewhere.
const idleTimeout = 5 * time.Second

// pacedConn is a stream connection as the watcher reads it: every read refreshes the idle
// deadline, and the faults act here (a pause, or vanishing without a close).
type pacedConn struct {
	net.Conn
	w *watcher
}

func (c *pacedConn) Read(b []byte) (int, error) {
	if until := c.w.pauseUntil.Load(); until > 0 {
		if d := time.Until(time.Unix(0, until)); d > 0 {
			time.Sleep(d) // the pause fault's own duration
		}
	}
	if c.w.vanish.Load() {
		return 0, errVanished
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(idleTimeout))
	return c.Conn.Read(b)
}

func (w *watcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		o := w.p.led.pickForWatcher(w.r)
		if o == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond): // waiting for the first orders
			}
			continue
		}
		o.watchers.Add(1)
		w.follow(ctx, o)
		o.watchers.Add(-1)
	}
}

// follow is one session: the watcher follows order o until the stream has ended with the final
// event and a reconnect got 204, or ctx ends.
func (w *watcher) follow(ctx context.Context, o *orderState) {
	s := &Session{Watcher: w.idx, Order: o.id}
	w.mu.Lock()
	w.curOrder, w.lastSeq, w.waiting = o, 0, false
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.sessions = append(w.sessions, *s)
		w.curOrder = nil
		w.mu.Unlock()
	}()
	haveFinal := false
	for try := 0; ctx.Err() == nil; try++ {
		if try > 0 {
			if !haveFinal {
				s.Reconnects++
			}
			d := time.Duration(20+w.r.IntN(200)) * time.Millisecond
			vanished := w.vanish.Load()
			if vanished {
				// A vanished watcher comes back a while later, like a phone back in coverage.
				d = time.Duration(500+w.r.IntN(2000)) * time.Millisecond
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(d): // reconnect delay
			}
			if vanished {
				w.vanish.Store(false) // back: the fault is lifted for this watcher
			}
		}
		last := w.last()
		code, events, err := w.stream(ctx, o.id, last, s, &haveFinal)
		switch {
		case code == http.StatusNoContent:
			if haveFinal {
				s.AfterFinal = append(s.AfterFinal, code)
			} else {
				s.Unexpected204 = true
			}
			return
		case haveFinal && code != 0 && code != http.StatusOK:
			s.AfterFinal = append(s.AfterFinal, code) // 5xx: retried; anything else is judged
			if code < 500 {
				return
			}
		case code == http.StatusOK && last > 0 && w.wasFinalAt(last, s) && events == 0:
			// A node whose store is away answers 200 with only a retry: line and closes, so
			// that an EventSource retries (README, "When the database is away"): not an
			// answer about the final event yet. Retry, as EventSource would.
			s.RetriedAfterFinal++
		case code == http.StatusOK && last > 0 && w.wasFinalAt(last, s):
			s.AfterFinal = append(s.AfterFinal, code) // a stream reopened after the final event
			return
		case code != 0 && code != http.StatusOK && code < 500:
			w.p.led.countError(fmt.Sprintf("watch: HTTP %d", code))
		}
		_ = err // the error of one connection is the reason to resume, not a result
	}
}

func (w *watcher) last() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastSeq
}

func (w *watcher) wasFinalAt(seq int64, s *Session) bool {
	n := len(s.Received)
	return n > 0 && s.Received[n-1].Seq == seq && terminal(s.Received[n-1].Status)
}

// stream opens one connection and reads it until it ends; it returns the HTTP status (0 when
// none came), how many status events it carried, and why the stream ended.
func (w *watcher) stream(ctx context.Context, id string, last int64, s *Session, haveFinal *bool) (code, events int, err error) {
	base := w.p.endpoint(w.r)
	u, err := url.Parse(base)
	if err != nil {
		return 0, 0, err
	}
	d := net.Dialer{Timeout: 2 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+w.idx%50))}}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if w.vanish.Load() {
			w.p.leak(conn) // vanished: the connection stays open, unread, until the phase ends
			return
		}
		conn.Close()
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req := "GET /v1/orders/" + url.PathEscape(id) + "/stream HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
	if last > 0 {
		req += "Last-Event-ID: " + strconv.FormatInt(last, 10) + "\r\n"
	}
	req += "\r\n"
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return 0, 0, err
	}
	pc := &pacedConn{Conn: conn, w: w}
	br := bufio.NewReaderSize(pc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0, nil
	}
	_ = conn.SetWriteDeadline(time.Time{})
	sr := newSSEReader(resp.Body)
	for {
		ev, err := sr.Next()
		if err != nil {
			return http.StatusOK, events, err
		}
		if ev.Type != "status" {
			continue
		}
		var d struct {
			Seq    int64  `json:"seq"`
			Status string `json:"status"`
			Order  string `json:"order_id"`
		}
		rec := Received{}
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			rec.Status = "UNPARSEABLE: " + ev.Data
		} else {
			rec.Seq, rec.Status = d.Seq, d.Status
			if ev.ID != strconv.FormatInt(d.Seq, 10) || d.Order != id {
				rec.Status = fmt.Sprintf("BAD-ID id=%q order=%q status=%s", ev.ID, d.Order, d.Status)
			}
		}
		w.mu.Lock()
		s.Received = append(s.Received, rec)
		if rec.Seq > w.lastSeq {
			w.lastSeq = rec.Seq
		}
		if terminal(rec.Status) {
			*haveFinal = true
			w.waiting = true
		}
		w.mu.Unlock()
		w.p.received.Add(1)
		events++
	}
}

// position is where the watcher is: the order it follows (nil between sessions), the last seq
// it has of it, and whether it has the final event and awaits the 204 that ends the session.
func (w *watcher) position() (o *orderState, last int64, waiting bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.curOrder, w.lastSeq, w.waiting
}

func (w *watcher) allSessions() []Session {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Session(nil), w.sessions...)
}
