package stream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// ServeSSE runs wt as a Server-Sent Events stream on w and owns it from here on; end is called
// once, when the stream has ended (for a held stream, after ServeSSE has returned). A client that
// already has the terminal event gets 204 No Content, which tells EventSource to stop
// reconnecting. A HEAD request gets the headers the stream would open with and no stream. A
// cleartext HTTP/1.1 stream is handed to the poller when the engine holds streams; others keep
// the calling goroutine.
func (e *Engine) ServeSSE(w http.ResponseWriter, r *http.Request, wt *Watch, end func(End)) {
	if wt.ended {
		wt.Close()
		// A 204 is cacheable by default (RFC 9111 §4.2.2); no-cache, not no-store, as the
		// streams (SetSSEHeaders).
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusNoContent)
		end(End{})
		return
	}
	if r.Method == http.MethodHead {
		// HEAD came through the GET's own set-up, so it got the GET's refusals (404, 400, the
		// limits, a store that is away) and its 204; past them it is answered here, before
		// anything is counted or held, and the watch is given back at once.
		wt.Close()
		SetSSEHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		end(End{})
		return
	}
	// Once hold has taken the connection over, the stream is the poller's (or, if holding failed,
	// over and reported); only a connection that cannot be taken over stays here.
	if e.holdable(r) && !errors.Is(e.held.hold(w, wt, end), http.ErrNotSupported) {
		return
	}
	SetSSEHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	st := &watcher{}
	st.init(e, &responseTransport{w: w, rc: http.NewResponseController(w), timeout: e.cfg.WriteTimeout}, e.sseFraming(wt), wt, end)
	e.run(r.Context(), st, false)
}

// SetSSEHeaders sets what every SSE response carries, a stream's or a refusal's that asks the
// client to come back (server: a store that is away, a node at its limits).
func SetSSEHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	// Never answered from a cache, nor changed on the way: a proxy that compresses or rewrites
	// a response holds it back to do so. Not no-store: a page whose script got a no-store
	// response is never kept in the browser's back/forward cache (Chromium's
	// JsNetworkRequestReceivedCacheControlNoStoreResource), and the pages are kept there so
	// that Back shows them at once, their streams resumed. Private: a party's stream is theirs,
	// no shared cache's to keep.
	h.Set("Cache-Control", "private, no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response
}

// holdable reports whether a stream on r can be handed to the poller: HTTP/2 frames and TLS
// records live in user space, so only cleartext HTTP/1.1 can, and only while the poller runs.
func (e *Engine) holdable(r *http.Request) bool {
	return e.held != nil && !e.held.failed.Load() && r.ProtoMajor == 1 && r.ProtoMinor >= 1 && r.TLS == nil
}

// CheckWebSocketHandshake reports why r is not a WebSocket handshake that ServeWebSocket can
// accept, as a domain error, and sets in h what the client should have sent: 426
// upgrade_required (with Upgrade: websocket) for a request that asks no upgrade, 400
// malformed_request for a bad version or key, 403 forbidden for a page of another origin that
// crossOrigin does not allow. It is Accept's own check, made before the watch is set up, so that
// such a request costs no authorization, store read or stream slot, and is answered with the
// API's JSON error instead of Accept's plain text. The route takes GET, and so HEAD, which is
// never a handshake (RFC 6455: a GET): it gets the 426 of a GET that asks no upgrade.
//
// A browser lets any page open a WebSocket anywhere and sends its Origin, and no CORS header
// protects the answer: the server must refuse the origins it does not trust. A request without
// Origin (a program, not a page) and a page of the server's own origin are let through.
func CheckWebSocketHandshake(h http.Header, r *http.Request, crossOrigin func(origin string) bool) error {
	if r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) || !headerHasToken(r.Header, "Connection", "upgrade") ||
		!headerHasToken(r.Header, "Upgrade", "websocket") {
		h.Set("Upgrade", "websocket")
		h.Set("Connection", "Upgrade")
		return ordercast.Errorf(ordercast.EUpgradeRequired, "this endpoint is a WebSocket: send an HTTP/1.1 GET with Connection: Upgrade and Upgrade: websocket")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		h.Set("Sec-WebSocket-Version", "13")
		return ordercast.Errorf(ordercast.EMalformed, "Sec-WebSocket-Version must be 13")
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return ordercast.Errorf(ordercast.EMalformed, "a WebSocket handshake has one Sec-WebSocket-Key")
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return ordercast.Errorf(ordercast.EMalformed, "Sec-WebSocket-Key must be 16 bytes in base64")
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) && !crossOrigin(origin) {
		return ordercast.Errorf(ordercast.EForbidden, "origin %s may not open this WebSocket (only the server's own pages and the origins it lets call the API)", ordercast.Quote(origin))
	}
	return nil
}

// sameOrigin reports whether origin is the page's origin of a request to host: the same host and
// port (the scheme may differ behind a proxy that ends TLS), as Accept's own check has it.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// headerHasToken reports whether the comma-separated values of header key hold token, in any
// case.
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// ServeWebSocket runs wt as a WebSocket (one JSON event per text message) on the calling
// goroutine and owns it from here on; end is called once, when it has ended. A client that already
// has the terminal event is accepted and closed with 1000 at once, which a browser reports as a
// clean close (an HTTP 204 would only show as a failed handshake). The caller has checked the
// handshake, its Origin included (CheckWebSocketHandshake), before setting wt up.
func (e *Engine) ServeWebSocket(w http.ResponseWriter, r *http.Request, wt *Watch, end func(End)) {
	// The server-wide write deadline runs from the request's arrival, and reading and authorizing
	// the order may have spent it: the handshake's answer gets a stream write's time of its own.
	// Without it the 101 fails in net/http's buffer, unseen, while the hijacked connection goes
	// on to send frames the client cannot take for an answer.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(e.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		wt.Close()
		end(End{Err: fmt.Errorf("websocket handshake deadline: %w", err)})
		return
	}
	// InsecureSkipVerify: the Origin was judged by CheckWebSocketHandshake, under the server's
	// CORS rule, which Accept's own patterns cannot spell (an IPv6 origin's brackets are a
	// pattern's character class).
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled, InsecureSkipVerify: true})
	if err != nil {
		wt.Close()
		end(End{Err: err}) // Accept has answered the failed handshake
		return
	}
	if wt.ended {
		wt.Close()
		// A failed close handshake means the client left first: it has everything anyway.
		_ = c.Close(websocket.StatusNormalClosure, "order is "+string(wt.order.Status))
		end(End{Hijacked: true})
		return
	}
	// The socket is receive-only. Reading in the background answers pings and the close
	// handshake, and ends ctx when the client goes (a hijacked connection's request context does
	// not notice) or sends a data message. Not Conn.CloseRead: on a data message it closes with
	// 1008, our revocation's code, and then waits 15 s for its own goroutine
	// (coder/websocket#429), the stream open and counted all the while.
	ctx, cancel := context.WithCancelCause(r.Context())
	// The writes have a context of their own, which a data message does not end: coder/websocket
	// closes the connection under a write whose context ends, and a message that came during a
	// write then dropped the socket before the 1003 that answers it could be sent. A client gone
	// ends the writes too.
	writeCtx, stopWrites := context.WithCancel(r.Context())
	defer stopWrites()
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		err := readControlFrames(ctx, c)
		if !errors.Is(err, errClientData) {
			stopWrites()
		}
		cancel(err)
	}()
	st := &watcher{}
	st.init(e, &wsTransport{ctx: writeCtx, conn: c, timeout: e.cfg.WriteTimeout}, messageFraming{}, wt, end)
	e.run(ctx, st, true)
	<-reading // run closed the connection, which ends the read
}

// errClientData ends a WebSocket stream whose client sent a data message: the socket only
// sends, and a client that talks to it expects something this server does not do.
var errClientData = errors.New("the client sent a data message on a receive-only WebSocket")

// readControlFrames reads c until the client goes or sends a data message, which it returns as
// errClientData, unread: the close handshake skips what is left of it. Conn.Reader answers
// pings and a close on its way, as Conn.CloseRead's loop does.
func readControlFrames(ctx context.Context, c *websocket.Conn) error {
	if _, _, err := c.Reader(ctx); err != nil {
		return fmt.Errorf("websocket read: %w", err)
	}
	return errClientData
}

// takeWaiting delivers what waits in st's subscription; it returns why the stream ends when
// catching up from the store failed, "" otherwise.
func (e *Engine) takeWaiting(ctx context.Context, st *watcher) (reason string, err error) {
	var buf [4]*hub.Message // as deliverLocked's
	msgs, overflowed := st.take(buf[:0])
	if err := st.deliver(ctx, msgs, overflowed); err != nil {
		if ctx.Err() != nil { // the stream's end came while it caught up
			return e.contextEnd(ctx), nil
		}
		return ReasonStoreError, fmt.Errorf("catch up from the store: %w", err)
	}
	return "", nil
}

// run is the goroutine holder: it counts the stream in, pumps it until it ends, closes the
// transport, reports the end and counts the stream out, last, so that a Wait returns only once
// its end is reported.
func (e *Engine) run(ctx context.Context, st *watcher, hijacked bool) {
	e.opened()
	reason, err := e.pump(ctx, st)
	// The stream has ended either way and reason says why; a failed close handshake only means
	// the client went first.
	st.sayEnd(reason)
	_ = st.t.Close(reason, st.lastStatus)
	st.finish(reason, err, false, hijacked)
	e.closed(reason)
}

// pump flushes what st holds, then writes live events, heartbeats and the drain, until the
// stream ends; it returns why it ended. It is the one select loop of a stream on a goroutine:
// shutdown, the client leaving, lifetime, heartbeat and the subscription.
func (e *Engine) pump(ctx context.Context, st *watcher) (reason string, err error) {
	if err := st.flush(); err != nil {
		return e.writeFailure(ctx, err), err
	}
	st.live = true // from here on, events feed the delivery latency histogram

	// The heartbeat is due an interval after the stream last wrote anything: flushes that write
	// push it back.
	heartbeat := time.NewTimer(e.cfg.Heartbeat)
	defer heartbeat.Stop()
	sentAt := st.sentAt.Load()
	var lifetime <-chan time.Time
	d, lifetimeEnd := e.lifetime(st.until)
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		lifetime = t.C
	}
	var drain <-chan time.Time // armed when the drain starts
	closing := e.closing
	// capped is armed while the location cap holds a position back: it releases it when due.
	capped := time.NewTimer(time.Hour)
	capped.Stop()
	defer capped.Stop()
	var cappedC <-chan time.Time
	var due time.Time
	for !st.ended {
		select {
		case <-ctx.Done():
			return e.contextEnd(ctx), nil
		case <-closing:
			closing = nil
			t := time.NewTimer(e.drain.Load().delay())
			defer t.Stop()
			drain = t.C
		case <-drain:
			return ReasonShutdown, nil // the client resumes, with Last-Event-ID, on another node
		case <-lifetime:
			return lifetimeEnd, nil
		case <-heartbeat.C:
			st.heartbeat()
			heartbeat.Reset(e.cfg.Heartbeat)
		case <-st.sub.Ready():
			if reason, err := e.takeWaiting(ctx, st); reason != "" {
				return reason, err
			}
			due = st.location(time.Now())
		case <-cappedC:
			// The held-back position is due; what waits in the subscription goes first, as the
			// poller's worker takes the mailbox first: an end or another courier taken in the
			// same turn drops the position (select picks this case or Ready at random).
			cappedC = nil
			if reason, err := e.takeWaiting(ctx, st); reason != "" {
				return reason, err
			}
			due = st.location(time.Now())
		}
		if !due.IsZero() && cappedC == nil {
			capped.Reset(time.Until(due))
			cappedC = capped.C
		}
		due = time.Time{}
		if err := st.flush(); err != nil {
			return e.writeFailure(ctx, err), err
		}
		if s := st.sentAt.Load(); s != sentAt {
			sentAt = s
			heartbeat.Reset(e.cfg.Heartbeat)
		}
	}
	return st.endReason(), nil
}

// LongPoll waits, on the calling goroutine, until the watched order's version is past after, the
// order has ended, wait passes, or the node drains, and returns the order to answer with; it owns
// wt and closes it. It never polls the store on a timer: a change wakes it through the hub. An
// error is for the caller to answer; when the client left, it returns ctx's error. A version
// after ahead of the order's is answered at once: it is not from this order's history (a
// database since reset, another order's), and no commit would ever pass it in time.
func (e *Engine) LongPoll(ctx context.Context, w http.ResponseWriter, wt *Watch, after int64, wait time.Duration) (ordercast.Order, error) {
	defer wt.Close()
	o := wt.order
	if o.Version != after || o.Status.Terminal() || wait == 0 || e.Draining() {
		return o, nil
	}
	// The server-wide WriteTimeout is shorter than the longest wait: move this response's
	// deadline past the wait, as the streams do before each write.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + e.cfg.WriteTimeout)); err != nil {
		return ordercast.Order{}, fmt.Errorf("set write deadline: %w", err)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ordercast.Order{}, ctx.Err() // the client left, or the shutdown deadline cut the request
		case <-timer.C:
			return o, nil // unchanged
		case <-e.closing:
			return o, nil // draining: answer now, the client polls elsewhere
		case <-wt.sub.Ready():
			msgs, overflowed := wt.sub.Take()
			changed := overflowed
			for _, m := range msgs {
				changed = changed || m.Event.Seq > after
			}
			if !changed {
				continue
			}
			var err error
			if o, err = e.store.Order(ctx, wt.orderID); err != nil {
				return ordercast.Order{}, err
			}
			if err := o.ReadableByCourier(wt.courier); err != nil {
				return ordercast.Order{}, err
			}
			if o.Version > after {
				return o, nil
			}
		}
	}
}
