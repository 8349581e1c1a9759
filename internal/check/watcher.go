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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// watcher follows one order at a time over raw HTTP/1.1 connections it opens itself, reads them
// with its own SSE reader, resumes with Last-Event-ID on a random endpoint after any error, and
// after the final event reconnects once more to see the 204.
type watcher struct {
	watchFaults
	idx int
	p   *phase
	r   *rand.Rand

	mu       sync.Mutex
	sessions []Session
	curOrder *orderState
	lastSeq  int64
	waiting  bool // has the final event, awaiting the 204
}

var errVanished = errors.New("watcher vanished")

// idleTimeout is how long a stream may stay silent (the nodes send a heartbeat every second)
// before the watcher gives up on it and resumes elsewhere.
const idleTimeout = 5 * time.Second

// pacedConn is a stream connection as the watcher reads it: every read refreshes the idle
// deadline, and the faults act here (a pause, or vanishing without a close).
type pacedConn struct {
	net.Conn
	f *watchFaults
}

func (c *pacedConn) Read(b []byte) (int, error) {
	if until := c.f.pauseUntil.Load(); until > 0 {
		if d := time.Until(time.Unix(0, until)); d > 0 {
			time.Sleep(d) // the pause fault's own duration
		}
	}
	if c.f.vanish.Load() {
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
			if !w.pauseBeforeReconnect(ctx, w.r) {
				return
			}
		}
		if try > 0 && !haveFinal && w.r.IntN(8) == 0 {
			w.rewind(s)
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
			// that an EventSource retries (docs/api.md, "When the database is away"): not an
			// answer about the final event yet. Retry, as EventSource would.
			s.RetriedAfterFinal++
		case code == http.StatusOK && last > 0 && w.wasFinalAt(last, s):
			s.AfterFinal = append(s.AfterFinal, code) // a stream reopened after the final event
			return
		case code != 0 && code != http.StatusOK && code < 500:
			w.p.led.refused(err, Refusal{Request: RWatch, Order: o.id, Last: last})
			w.p.led.countError(fmt.Sprintf("watch: HTTP %d", code))
		}
		_ = err // the error of one connection is the reason to resume, not a result
	}
}

// rewind makes the watcher's next resume start from a random earlier seq than the last it has,
// as a second tab of the page or one restored from an old save does: every event after that seq
// must come again, once and in order, however far back it is.
func (w *watcher) rewind(s *Session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastSeq < 2 {
		return
	}
	w.lastSeq = 1 + w.r.Int64N(w.lastSeq-1)
	s.Rewinds = append(s.Rewinds, Rewind{At: len(s.Received), To: w.lastSeq})
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
	st, err := w.p.openStream(ctx, w.r, w.idx, &w.watchFaults, "/v1/orders/"+url.PathEscape(id)+"/stream", "", last)
	if err != nil {
		return 0, 0, err
	}
	defer st.done()
	if st.StatusCode != http.StatusOK {
		return st.StatusCode, 0, answerError(st.Response)
	}
	sr := newSSEReader(st.Body)
	for {
		ev, err := sr.Next()
		if err != nil {
			return http.StatusOK, events, err
		}
		if ev.Type == api.EventLocation {
			pos := parsePosition(ev)
			w.mu.Lock()
			pos.After = w.lastSeq
			s.Positions = append(s.Positions, pos)
			w.mu.Unlock()
			w.p.positions.Add(1)
			continue
		}
		if ev.Type == api.EventEnd && strings.Contains(ev.Data, api.EndHistoryRewritten) {
			// The check's faults lose no commit, so a stream that ends saying its history went
			// back under it was told wrong: kept as a received event no history holds (a
			// mismatch), with the server's words.
			w.mu.Lock()
			s.Received = append(s.Received, Received{HistEvent: HistEvent{Status: "END: " + ev.Data}})
			w.mu.Unlock()
			continue
		}
		if ev.Type != api.EventStatus && ev.Type != api.EventCourier {
			continue
		}
		var d apiEvent
		rec := Received{}
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			rec.Status = "UNPARSEABLE: " + ev.Data
		} else {
			rec = Received{HistEvent: d.hist(), Arrival: st.arrival(d.At, &w.watchFaults)}
			if ev.ID != strconv.FormatInt(d.Seq, 10) || d.OrderID != id || api.EventName(ordercast.Event{Kind: ordercast.EventKind(d.Kind)}) != ev.Type {
				rec.Status = fmt.Sprintf("BAD-ID id=%q order=%q event=%s kind=%q status=%s", ev.ID, d.OrderID, ev.Type, d.Kind, d.Status)
			}
		}
		w.mu.Lock()
		s.Received = append(s.Received, rec)
		if last == 0 {
			s.Opening++
		}
		if rec.Seq > w.lastSeq {
			w.lastSeq = rec.Seq
		}
		if terminal(rec.Status) && rec.Kind == "" {
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

// mark is the order the watcher follows (nil between sessions), the last seq it has of it and
// the version the writers know.
func (w *watcher) mark() (subject any, have, known int64) {
	o, last, _ := w.position()
	if o == nil {
		return nil, last, 0
	}
	return o, last, o.known.Load()
}

// behind reports whether the watcher has yet to see the last event the writers know of the
// order it follows, has none yet, or is in the middle of ending a session.
func (w *watcher) behind() (bool, string) {
	o, last, waiting := w.position()
	if o == nil || waiting || last == 0 || last < o.known.Load() {
		return true, fmt.Sprintf("watcher %d: order %v at seq %d, waiting for 204 %v", w.idx, orderID(o), last, waiting)
	}
	return false, ""
}

func (w *watcher) allSessions() []Session {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Session(nil), w.sessions...)
}

// A watcher that stops reading (a pause, a vanish) must back up into the server soon, so that
// the server's write deadline and slow-consumer paths are tried. On loopback the kernel tunes a
// connection's buffers to megabytes, which a stream of a few events a second never fills; a
// small receive buffer and a small segment size, set before connect (the handshake agrees on
// the window's scale and the segment size), bound what the server can push into a watcher that
// stopped reading to about 26 KB on Linux 6 (measured), instead of about 3.5 MB.
const (
	streamRcvBuf = 1024 // the kernel doubles it, and keeps at least 2304
	streamMSS    = 256
)

// smallReceiver is the Control of every stream connection's dialer: see streamRcvBuf.
func smallReceiver(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = errors.Join(
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, streamRcvBuf),
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, streamMSS))
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("small receive buffer: %w", serr)
	}
	return nil
}

// answerError is a stream's answer other than 200 as an error, with its body's error code.
func answerError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // what did come is enough for the code
	return &apiError{status: resp.StatusCode, code: errorCode(b)}
}

// streamConn is one answered stream connection: the response, with its head read; the node that
// answers it (numbered from 1; 0 when through nginx, which may pick any); and when its answer
// came, which is when the events it carries from before were due (Arrival).
type streamConn struct {
	*http.Response
	node   int
	opened time.Time
	done   func() // closes the connection, or leaves it open, unread, when the watcher vanished
}

// openStream connects to a random endpoint from the local address of watcher idx over a raw
// HTTP/1.1 connection, asks for the SSE stream at path (with the bearer token when one is given,
// and Last-Event-ID when last > 0) and reads the response head. The body is read through f, so
// the watcher faults act on it, with an idle deadline refreshed by every read.
func (p *phase) openStream(ctx context.Context, r *rand.Rand, idx int, f *watchFaults, path, token string, last int64) (*streamConn, error) {
	ep, node := p.pickEndpoint(r)
	u, err := url.Parse(ep)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 2 * time.Second, Control: smallReceiver,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+idx%50))}}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	release := func() {
		stop()
		if f.vanish.Load() {
			p.leak(conn) // vanished: the connection stays open, unread, until the phase ends
			return
		}
		conn.Close()
	}
	// A quarter of the resumes give the id as ?lastEventId=, the way a browser's EventSource
	// must on its first connect (and the pages do), the rest as the header it sends after.
	inQuery := last > 0 && r.IntN(4) == 0
	if inQuery {
		path += "?lastEventId=" + strconv.FormatInt(last, 10)
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if last > 0 && !inQuery {
		req += "Last-Event-ID: " + strconv.FormatInt(last, 10) + "\r\n"
	}
	req += "\r\n"
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		release()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(&pacedConn{Conn: conn, f: f}, 4096), nil)
	if err != nil {
		release()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return &streamConn{Response: resp, node: node, opened: time.Now(), done: func() { resp.Body.Close(); release() }}, nil
}
