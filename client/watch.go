package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// Defaults for WatchOptions' zero values.
const (
	// DefaultMinRetry is the shortest wait before a reconnect, and the base wait when the server
	// has sent no retry field.
	DefaultMinRetry = time.Second
	// DefaultMaxRetry is the longest wait before a reconnect, however many attempts have failed.
	DefaultMaxRetry = 30 * time.Second
	// DefaultIdleTimeout is how long a watch waits for a byte before it takes the connection
	// for dead: three of the server's heartbeats at its default --heartbeat of 15 s.
	DefaultIdleTimeout = 45 * time.Second
	// DefaultPartyMaxEventSize bounds one event of a party watch when MaxEventSize is zero: a
	// party's snapshot is one event of up to api.MaxPartySnapshotOrders orders, each with up to
	// ordercast.MaxDetailsBytes of details and about 2 KiB more of its own (ids, times, a note,
	// the JSON's escapes), about 12 MiB at the most. An order watch's events are small, and
	// bounded by DefaultSSEMaxEventSize.
	DefaultPartyMaxEventSize = 16 << 20
)

// ErrWatchClosed is returned by Watch.Next after Close.
var ErrWatchClosed = errors.New("client: watch closed")

// ErrGaveUp is in the error that ends a watch after MaxFailures failed attempts, beside the last
// attempt's own error: errors.Is(err, ErrGaveUp) tells a watch that gave up from one that
// ended (io.EOF, never wrapped in it) or was refused (an *Error).
var ErrGaveUp = errors.New("client: watch gave up")

// ErrHistoryBehind ends a watch whose server's history of the order ends before the seq the watch
// resumed after: the server says so (api.HeaderHistoryBehind), or says the order ended at a seq
// before it. That history is not the one the watch followed (a database reset or restored from an
// older backup, a Last-Event-ID kept from another deployment): the watch cannot tell what it
// missed, and every event the order has yet to bring comes under a seq it has returned already,
// so it says so rather than skip them, or wait for events that will never come. A stream that
// was live when the history went back under it (a failover that lost the database's last
// commits) ends saying so (api.EndHistoryRewritten), and the watch with ErrHistoryBehind too.
var ErrHistoryBehind = errors.New("client: the server's history of the order ends before the watch's resume point")

// ErrOrderReassigned ends a courier's watch of an order given to another courier (the server's
// api.EndOrderReassigned): beside it the error holds the 403 forbidden a reconnect would get, but
// this says why, where the 403 alone reads as an order the courier never had.
var ErrOrderReassigned = errors.New("client: the order was given to another courier")

// streamEnded acts on an EventEnd, the server's word on why it ends the stream, and returns the
// error that ends the watch, or nil when the watch goes on: a token that expired is renewed at
// once from the client's TokenSource (without one, the watch ends with the 401 token_expired a
// reconnect would get), a reassigned order ends the watch with ErrOrderReassigned, a rewritten
// history with ErrHistoryBehind. An end of a kind this client does not know is left to the
// reconnect that follows, whose answer says the rest.
func (w *Watch) streamEnded(sev SSEEvent) error {
	var end api.StreamEnd
	if err := json.Unmarshal([]byte(sev.Data), &end); err != nil {
		return nil // a stream's end says no more than that: the reconnect's answer will
	}
	switch end.Reason {
	case api.EndHistoryRewritten:
		return fmt.Errorf("watch %s: %w (the server: %s)", w.orderID, ErrHistoryBehind, end.Message)
	case api.EndOrderReassigned:
		return fmt.Errorf("watch %s: %w: %w", w.orderID, ErrOrderReassigned,
			&Error{StatusCode: http.StatusForbidden, Code: ordercast.EForbidden, Message: end.Message})
	case api.EndTokenExpired:
		if w.c.TokenSource == nil {
			return fmt.Errorf("watch %s: %w", w.orderID,
				&Error{StatusCode: http.StatusUnauthorized, Code: ordercast.ETokenExpired, Message: end.Message})
		}
		// The stream's end, not the watch's: a new connection with a token the source gives now,
		// at once, not after a failure's backoff.
		w.dropConn()
		w.wait = 0
	}
	return nil
}

// errServerEnded is why a connection the server ended cleanly was left: not io.EOF, which
// Next returns only for an order that is over, so that a watch giving up after such ends never
// looks like one.
var errServerEnded = errors.New("the server ended the stream")

// ErrIdleTimeout is why a watch dropped a connection on which nothing arrived for
// WatchOptions.IdleTimeout; the watch resumes on a new one, so Next returns it only wrapped in
// the error that ends a watch at MaxFailures.
var ErrIdleTimeout = errors.New("client: stream silent for longer than the idle timeout")

// WatchOptions tune a Watch. The zero value watches from the order's current state with the
// default backoff.
type WatchOptions struct {
	// LastEventID is the seq of the last event the caller already has; the stream resumes after
	// it. Zero starts from the order's current state, unless WholeHistory is set.
	LastEventID int64
	// WholeHistory, with LastEventID zero, starts from the order's first event rather than its
	// current state (it sends Last-Event-ID: 0): a watch opened just after the order was
	// created then returns every change, however soon after the create it came. For a party
	// watch it is the party's whole log, with no snapshot, while the log holds at most 10,000
	// events (the server's bound on a resume); a longer one opens with a snapshot, the party's
	// current state, as any cursor that far behind does.
	WholeHistory bool
	// LastEventIDInQuery sends the resume point as "?lastEventId=N" instead of the Last-Event-ID
	// header, the way a browser's EventSource must on its first connect.
	LastEventIDInQuery bool
	// MinRetry and MaxRetry bound the wait before a reconnect: the server's retry field (or
	// MinRetry when it sent none), doubled for each consecutive failed attempt, plus jitter, never
	// more than MaxRetry. Zero means DefaultMinRetry and DefaultMaxRetry.
	MinRetry, MaxRetry time.Duration
	// IdleTimeout is how long a connection may stay silent, not a byte arriving while Next
	// waits on it, before the watch takes it for dead (a peer gone without closing it, a middlebox that dropped it),
	// drops it and resumes after the last event, as after a drop by the server. Every event
	// and every heartbeat comment (the server sends ": ping" on an idle stream every --heartbeat,
	// 15 s by default) restarts it, and it bounds the wait for the answer to a connect too.
	// Zero means DefaultIdleTimeout, 45 s, three heartbeats at the default; against a server
	// with a longer --heartbeat, set about three of its heartbeats. A negative value turns it
	// off.
	IdleTimeout time.Duration
	// MaxFailures ends the watch with an error (ErrGaveUp) after this many consecutive attempts
	// that failed to connect or ended within 10 s without bringing news (a store that is away is
	// answered with a comment and an end; replays of events already returned are no news). A
	// connection that brought an event or a position, or stayed up longer, and was then dropped
	// (a drain, --stream-lifetime) is no failed attempt.
	// Zero means retry until the context ends.
	MaxFailures int
	// MaxEventSize bounds one line and one event's data in bytes; an event past it ends the
	// watch with ErrSSETooLarge (reconnecting would only fetch it again). Zero means
	// DefaultSSEMaxEventSize for an order watch and DefaultPartyMaxEventSize for a party watch.
	MaxEventSize int
	// OnComment, when set, is called with the text of every SSE comment (heartbeats arrive as
	// "ping"), on the goroutine calling Next.
	OnComment func(text string)
	// OnEvent, when set, is called with every event the server sent, a status change or a
	// courier assignment (what Next returns), and the time it was read off the connection, before
	// the watch skips the ones it has already returned: a replay or reorder by the server shows
	// here, while Next stays exactly-once. A party watch calls it too, with the events of every
	// order in scope (not its snapshots), as NextScoped reads them. It is for measuring and
	// monitoring (commit-to-receive latency is received minus ev.At) and runs on the goroutine
	// calling Next or NextScoped.
	OnEvent func(ev ordercast.Event, received time.Time)
	// OnLocation, when set, is called with every courier position the server sent (event:
	// location), of the order or, for a party watch, of any order in scope, and the time it was
	// read off the connection. A position is state, not history: it has no seq, neither Next nor
	// NextScoped returns it, and it does not move the resume point. It runs on the goroutine
	// calling Next or NextScoped. Of u, the fields that are not on the wire (Parties,
	// OrderVersion: the server's own bookkeeping) are always empty.
	OnLocation func(u ordercast.LocationUpdate, received time.Time)
	// OnConnect, when set, is called each time a connection attempt gets an answer from the
	// server, whatever its status; reconnect is false for the watch's first. It runs on the
	// goroutine calling Next.
	OnConnect func(reconnect bool)
	// FailoverURLs are the base URLs of other nodes serving the same orders. The watch first
	// connects to Client.BaseURL; after each connection that fails or is dropped by the server it
	// moves on to the next URL of Client.BaseURL, FailoverURLs[0], FailoverURLs[1], … in turn,
	// resuming there with Last-Event-ID, as a client behind a load balancer lands on another node.
	// A reconnect after the caller's own context ended stays on the same URL.
	FailoverURLs []string
}

// Watch is a resuming subscription to one order's events, status changes and courier
// assignments (GET /v1/orders/{id}/stream), or to a party's (WatchScope).
// Next is not safe for concurrent use; Close, Reconnects and LastEventID may be called from any
// goroutine.
type Watch struct {
	c       *Client
	orderID string           // what errors name: the order, or the party's key
	party   *ordercast.Party // a party watch (WatchScope); lastID is a position in its log
	opts    WatchOptions
	ctx     context.Context // the watch's lifetime; every connection's context derives from it
	cancel  context.CancelCauseFunc

	mu         sync.Mutex // guards body, connCancel, idle and inNext against Close and interrupt
	body       io.ReadCloser
	connCancel context.CancelFunc
	idle       *idleGuard // nil when WatchOptions.IdleTimeout is off
	inNext     bool
	nextCalls  uint64 // counts the calls to Next, so that a late interrupt ends only its own
	// interrupted says an interrupt cut the current connection: the next read or connect that
	// fails for it is the caller's doing, not the server's, and is no failure.
	interrupted bool

	// Owned by the goroutine in Next.
	sse       *SSEReader
	delivered bool      // the current connection proved healthy: news arrived (Next and NextScoped set it)
	connected time.Time // when the current connection was answered
	attempted bool
	// refused says the last attempt was refused 401 with a token from Client.TokenSource.
	refused bool
	// placed is whether lastID is a place the watch reached, to resume after even at 0: a party
	// watch's first snapshot is at position 0 for a party whose log is empty yet.
	placed   bool
	failures int // consecutive failed attempts
	wait     time.Duration
	// waitUntil is when the wait under way ends: the wait runs across Next calls whose contexts
	// end before it does (a UI polling with short timeouts), and is not begun again by each of
	// them, which starved a watch of its reconnect for good.
	waitUntil time.Time
	retry     time.Duration
	hasRetry  bool
	err       error // once set, the watch is over and Next returns it

	base       int // index of the URL in use: 0 is Client.BaseURL, i is FailoverURLs[i-1]
	lastID     atomic.Int64
	reconnects atomic.Int64
	duplicates atomic.Int64
}

// Watch returns a subscription to the events of one order: its status changes and courier
// assignments (Next), and its courier's positions (WatchOptions.OnLocation). It connects on the
// first call to Next. ctx bounds the whole watch; Close ends it early and frees the connection. A
// watch that ends by itself (io.EOF, or a final error) lets go of ctx then; Close is still
// harmless.
func (c *Client) Watch(ctx context.Context, orderID string, opts WatchOptions) *Watch {
	if opts.MinRetry <= 0 {
		opts.MinRetry = DefaultMinRetry
	}
	if opts.MaxRetry <= 0 {
		opts.MaxRetry = DefaultMaxRetry
	}
	opts.MaxRetry = max(opts.MaxRetry, opts.MinRetry)
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	wctx, cancel := context.WithCancelCause(ctx)
	w := &Watch{c: c, orderID: orderID, opts: opts, ctx: wctx, cancel: cancel}
	w.lastID.Store(opts.LastEventID)
	return w
}

// Reconnects returns how many connection attempts the watch has made after its first.
func (w *Watch) Reconnects() int { return int(w.reconnects.Load()) }

// Duplicates returns how many events the server sent that the watch skipped because it had
// already returned them (or a later seq). A correct server resumes exactly after Last-Event-ID,
// so this stays 0; tests use it to tell a server that replays from a client that hides it.
func (w *Watch) Duplicates() int { return int(w.duplicates.Load()) }

// LastEventID returns the seq of the last event Next returned (or WatchOptions.LastEventID before
// the first); it is what a reconnect resumes after.
func (w *Watch) LastEventID() int64 { return w.lastID.Load() }

// Close ends the watch and frees its connection. A Next in progress returns ErrWatchClosed.
// Closing a watch again, or one that has ended by itself, does nothing.
func (w *Watch) Close() error {
	w.cancel(ErrWatchClosed)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.inNext {
		w.closeConnLocked()
	}
	return nil
}

// Next returns the order's next event: a status change (Kind ordercast.KindStatus) or a courier
// assigned or unassigned (ordercast.KindCourier, Status unchanged, CourierID "" to unassign). A
// courier's position is never returned: it has no seq and goes to WatchOptions.OnLocation. Events
// come in seq order, each at most once: after a dropped connection the watch reconnects by itself,
// resuming after the last event returned, and skips any seq it has already returned (counted in
// Duplicates). An event whose SSE id is not its seq ends the watch with an error. Next returns
// io.EOF after it has returned a terminal event (delivered or cancelled) or when the server answers
// 204 No Content, and an *Error when the server answers 4xx other than 429 (which is retried, as a
// 5xx is); both are final, as is an error wrapping ErrGaveUp after MaxFailures. When ctx ends, Next
// returns ctx.Err() and the watch stays usable: it lets the connection go, and the next call
// resumes after the last event returned on a new one (a blocked read can only be broken that way):
// so do not give each call a timeout, which would reconnect every time it expires on a quiet order;
// bound the watch with the context given to Watch instead. When the watch's own context ends or
// Close is called, Next returns its cause for good.
func (w *Watch) Next(ctx context.Context) (ordercast.Event, error) {
	if w.party != nil {
		return ordercast.Event{}, errors.New("client: a party watch is read with NextScoped")
	}
	for {
		sev, received, err := w.nextSSE(ctx)
		if err != nil {
			return ordercast.Event{}, err
		}
		if sev.Type == api.EventLocation {
			if err := w.location(sev, received); err != nil {
				return w.finish(err)
			}
			continue
		}
		if sev.Type == api.EventEnd {
			if err := w.streamEnded(sev); err != nil {
				return w.finish(err)
			}
			continue
		}
		if sev.Type != api.EventStatus && sev.Type != api.EventCourier {
			w.delivered = true
			continue // other kinds may be added by the server; this client knows status and courier
		}
		var ev ordercast.Event
		if err := json.Unmarshal([]byte(sev.Data), &ev); err != nil {
			return w.finish(fmt.Errorf("watch %s: decode event %q: %w", w.orderID, sev.ID, err))
		}
		if ev.OrderID != w.orderID {
			return w.finish(fmt.Errorf("watch %s: server sent an event of order %q", w.orderID, ev.OrderID))
		}
		// The watch resumes after the seq while a browser's EventSource resumes after the id; the
		// two must agree or the two kinds of client would resume at different places.
		if sev.ID != strconv.FormatInt(ev.Seq, 10) {
			return w.finish(fmt.Errorf("watch %s: server sent id %q with seq %d", w.orderID, sev.ID, ev.Seq))
		}
		if w.opts.OnEvent != nil {
			w.opts.OnEvent(ev, received)
		}
		if last := w.lastID.Load(); ev.Seq <= last {
			w.duplicates.Add(1)
			switch {
			case ev.Status.Terminal() && ev.Seq == last:
				// The end the watch has (WatchOptions.LastEventID), sent again rather than
				// answered 204: the order is over all the same.
				return w.finish(io.EOF)
			case ev.Status.Terminal():
				// Nothing follows an order's end, so an end before the resume point is not a
				// replay of this watch's history, and the stream that sent it ends for good.
				return w.finish(fmt.Errorf("watch %s: %w (it ended at seq %d, the watch resumed after %d)", w.orderID, ErrHistoryBehind, ev.Seq, last))
			}
			continue // already returned, typically replayed around a reconnect
		}
		w.lastID.Store(ev.Seq)
		w.failures = 0
		w.delivered = true
		if ev.Status.Terminal() {
			w.end(io.EOF)
		}
		return ev, nil
	}
}

// location hands a courier's position (event: location) to OnLocation, for order and party
// watches alike. A position has no seq: it moves no resume point.
func (w *Watch) location(sev SSEEvent, received time.Time) error {
	w.delivered = true // a position is news, as a new event is
	if w.opts.OnLocation == nil {
		return nil
	}
	var u ordercast.LocationUpdate
	if err := json.Unmarshal([]byte(sev.Data), &u); err != nil {
		return fmt.Errorf("watch %s: decode position: %w", w.orderID, err)
	}
	w.opts.OnLocation(u, received)
	return nil
}

// nextSSE returns the next SSE event of the watch's stream, connecting and reconnecting as
// needed (resuming after LastEventID), and when it was read; an error is final unless ctx ended.
func (w *Watch) nextSSE(ctx context.Context) (SSEEvent, time.Time, error) {
	fail := func(err error) (SSEEvent, time.Time, error) {
		_, err = w.finish(err)
		return SSEEvent{}, time.Time{}, err
	}
	if w.err != nil {
		return SSEEvent{}, time.Time{}, w.err
	}
	call := w.setInNext(true)
	defer w.setInNext(false)
	// The idle clock runs only while a call waits on the connection: what arrived while the
	// caller was busy elsewhere is not read yet, which is no silence.
	w.idle.restart()
	defer func() { w.idle.stop() }()
	// A blocked read can only be broken by ending its connection; the next call reconnects. The
	// interrupt may run after this call has returned (ctx ending just then): it then ends
	// nothing, rather than the next call's connection, which that call would count as failed.
	stop := context.AfterFunc(ctx, func() { w.interrupt(call) })
	defer stop()
	for {
		if w.ctx.Err() != nil {
			return fail(context.Cause(w.ctx))
		}
		if err := ctx.Err(); err != nil {
			// Whether the interrupt has cut the connection yet or not (ctx may end just as the
			// call begins), a Next ended by its context leaves the stream the one way: the next
			// call resumes after the last event returned, on a new connection.
			if w.sse != nil {
				w.dropConn()
			}
			// An interrupt that ran already cut this call's connection: its mark goes with the
			// call (see ourDoing). One that runs later finds no connection and marks nothing.
			w.takeInterrupted()
			return SSEEvent{}, time.Time{}, err
		}
		if w.sse == nil {
			if err := w.sleep(ctx); err != nil {
				continue // the checks above say which context ended
			}
			final, err := w.connect(ctx)
			if final {
				return fail(err)
			}
			if err != nil {
				if w.ourDoing(ctx) {
					w.wait = 0
					continue
				}
				if ferr := w.failed(err); ferr != nil {
					return fail(ferr)
				}
				continue
			}
		}
		sev, err := w.sse.Next()
		received := time.Now() // before decoding: when the bytes were read
		if err != nil {
			if r, ok := w.sse.Retry(); ok {
				w.retry, w.hasRetry = r, true
			}
			// Healthy: it brought news (an event not returned before, a position), or it stayed
			// up. Comments alone do not count: a server whose store is away answers with a
			// comment and ends at once; nor do replays alone: a server whose history is behind
			// the watch's resume point sends only what the watch has, and ends.
			healthy := w.delivered || time.Since(w.connected) >= healthyAfter
			w.dropConn()
			if w.ourDoing(ctx) {
				w.wait = 0 // our own interruption, not the server's doing: resume at once
				continue
			}
			if errors.Is(err, ErrSSETooLarge) {
				// The same event would come again on every reconnect.
				return fail(fmt.Errorf("watch %s: read stream: %w (its bound is %d bytes, WatchOptions.MaxEventSize)", w.orderID, err, w.maxEventSize()))
			}
			if errors.Is(err, io.EOF) {
				err = errServerEnded
			}
			if healthy {
				// A drain or a lifetime's end: reconnect, after the server's retry time, but it
				// is no failed attempt.
				w.failures = 0
				w.moveOn()
				continue
			}
			if ferr := w.failed(fmt.Errorf("read stream: %w", err)); ferr != nil {
				return fail(ferr)
			}
			continue
		}
		return sev, received, nil
	}
}

// connect opens one stream. final reports that the watch is over with err (204, 4xx, a response
// that is not an event stream); a non-final err is worth retrying. ctx is the calling Next's,
// checked here so that an interrupt arriving just before the connection exists is not lost.
func (w *Watch) connect(ctx context.Context) (final bool, err error) {
	reconnect := w.attempted
	if reconnect {
		w.reconnects.Add(1)
	}
	w.attempted = true
	refusedBefore := w.refused // only two 401s in a row end a watch with a TokenSource
	w.refused = false
	lastID := w.lastID.Load()
	path := api.StreamPath(w.orderID)
	if w.party != nil {
		path = api.PartyStreamPath(*w.party)
	}
	// Resuming after 0 is not starting fresh: it asks for every event (WholeHistory), or, for a
	// party watch whose snapshot was at 0, every event since.
	resume := lastID > 0 || w.opts.WholeHistory || w.placed
	if resume && w.opts.LastEventIDInQuery {
		path += api.ResumeAfterQuery(lastID)
	}
	base := w.c.BaseURL
	if w.base > 0 {
		base = w.opts.FailoverURLs[w.base-1]
	}
	connCtx, cancel := context.WithCancel(w.ctx)
	req, err := w.c.newRequestTo(connCtx, base, http.MethodGet, path, nil)
	if err != nil {
		cancel()
		// A token source that failed (an identity provider away) may answer the next time.
		_, source := errors.AsType[*tokenSourceError](err)
		return !source, fmt.Errorf("watch %s: %w", w.orderID, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if resume && !w.opts.LastEventIDInQuery {
		req.Header.Set(api.HeaderLastEventID, strconv.FormatInt(lastID, 10))
	}
	idle := newIdleGuard(w.opts.IdleTimeout, cancel)
	w.mu.Lock()
	w.connCancel, w.idle = cancel, idle
	w.mu.Unlock()
	if ctx.Err() != nil {
		// interrupt may have run before connCancel was set; it cannot have run after this check.
		cancel()
	}
	resp, err := w.c.streamClient().Do(req)
	if err != nil {
		w.dropConn()
		return false, fmt.Errorf("watch %s: %w", w.orderID, idle.explain(err))
	}
	if w.opts.OnConnect != nil {
		w.opts.OnConnect(reconnect)
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if mt != "text/event-stream" {
			w.dropConn() // cancel first: the body may be endless
			_ = resp.Body.Close()
			return true, fmt.Errorf("watch %s: response is %q, not text/event-stream", w.orderID, mt)
		}
		if end := resp.Header.Get(api.HeaderHistoryBehind); end != "" && lastID > 0 {
			w.dropConn()
			_ = resp.Body.Close()
			return true, fmt.Errorf("watch %s: %w (it ends at seq %s, the watch resumed after %d)", w.orderID, ErrHistoryBehind, end, lastID)
		}
	case code == http.StatusNoContent:
		// The server's way of saying the order is over and there is nothing after Last-Event-ID.
		closeBody(resp.Body)
		w.dropConn()
		return true, io.EOF
	case code >= 500 || code == http.StatusTooManyRequests:
		// Try again: a node that is away or draining, or a limit on streams or requests that
		// says when (429 rate_limited, Retry-After).
		e := readError(resp)
		closeBody(resp.Body)
		w.dropConn()
		w.wait = max(w.wait, min(e.RetryAfter, w.opts.MaxRetry))
		return false, fmt.Errorf("watch %s: %w", w.orderID, e)
	case code == http.StatusUnauthorized && w.c.TokenSource != nil && !refusedBefore:
		// The token expired, or was renewed since the source gave it: the next connection
		// asks the source again, once, before the watch ends.
		e := readError(resp)
		closeBody(resp.Body)
		w.dropConn()
		w.refused = true
		return false, fmt.Errorf("watch %s: %w", w.orderID, e)
	default:
		e := readError(resp)
		closeBody(resp.Body)
		w.dropConn()
		return true, fmt.Errorf("watch %s: %w", w.orderID, e)
	}
	body := idle.watch(resp.Body)
	w.mu.Lock()
	w.body = body
	w.mu.Unlock()
	w.sse = NewSSEReader(body)
	w.sse.OnComment = w.opts.OnComment
	w.sse.MaxEventSize = w.maxEventSize()
	w.delivered, w.connected = false, time.Now()
	return false, nil
}

// maxEventSize is the bound of one event on the watch's streams (WatchOptions.MaxEventSize).
func (w *Watch) maxEventSize() int {
	switch {
	case w.opts.MaxEventSize > 0:
		return w.opts.MaxEventSize
	case w.party != nil:
		return DefaultPartyMaxEventSize
	}
	return DefaultSSEMaxEventSize
}

// healthyAfter is how long a connection that brought no event must stay up to count as healthy:
// an idle order's stream (heartbeats only) stays up for its lifetime, a failing one ends at once.
const healthyAfter = 10 * time.Second

// failed counts a failed attempt and returns an error once MaxFailures is reached; otherwise it
// moves on as after any dropped connection.
func (w *Watch) failed(err error) error {
	if errors.Is(err, io.EOF) {
		// A connection the server or a proxy closed before answering: io.EOF under it would make
		// the watch's end look like the order's (see errServerEnded).
		err = fmt.Errorf("%w (%v)", errServerEnded, err)
	}
	w.failures++
	if w.opts.MaxFailures > 0 && w.failures >= w.opts.MaxFailures {
		return fmt.Errorf("watch %s: %w after %d failed attempts: %w", w.orderID, ErrGaveUp, w.failures, err)
	}
	w.moveOn()
	return nil
}

// moveOn readies the next attempt after a connection ended or failed: the next failover URL,
// and the wait before it (backoff).
func (w *Watch) moveOn() {
	w.base = (w.base + 1) % (len(w.opts.FailoverURLs) + 1)
	w.wait = max(w.wait, w.backoff())
}

// backoff returns the wait before the next attempt: the server's reconnection time (which the
// WHATWG rules say a client waits at least), doubled per consecutive failure, plus up to half
// again of jitter so that many clients dropped at once do not return at once.
func (w *Watch) backoff() time.Duration {
	lo, hi := w.opts.MinRetry, w.opts.MaxRetry
	d := lo
	if w.hasRetry {
		d = min(max(w.retry, lo), hi)
	}
	for i := 1; i < w.failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	d += rand.N(d/2 + 1)
	if d > hi {
		d = hi*3/4 + rand.N(hi/4+1) // still jittered at the cap
	}
	return d
}

// sleep waits out w.wait, returning early with an error when either context ends; a wait cut
// short that way goes on, to the same end, in the next call.
func (w *Watch) sleep(ctx context.Context) error {
	if w.wait <= 0 {
		w.waitUntil = time.Time{}
		return nil
	}
	if w.waitUntil.IsZero() {
		w.waitUntil = time.Now().Add(w.wait)
	}
	t := time.NewTimer(time.Until(w.waitUntil))
	defer t.Stop()
	select {
	case <-t.C:
		w.wait, w.waitUntil = 0, time.Time{}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// finish ends the watch with err (end) and returns it as Next does.
func (w *Watch) finish(err error) (ordercast.Event, error) {
	w.end(err)
	return ordercast.Event{}, err
}

// end makes err the watch's final answer, frees its connection and lets go of the context it
// was given, as Close would: a watch that ended by itself and was never closed leaves nothing
// registered in its caller's context.
func (w *Watch) end(err error) {
	w.err = err
	w.dropConn()
	w.cancel(err)
}

// interrupt ends the current connection so that a read blocked in Next call returns; once that
// call has returned it does nothing.
func (w *Watch) interrupt(call uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inNext && w.nextCalls == call && w.connCancel != nil {
		w.connCancel()
		w.interrupted = true
	}
}

// ourDoing reports whether the connection that just ended, or failed to open, was ended on our
// side: the watch closed, the call's context ended, or an interrupt cut it. It always takes the
// interrupt's mark, so that a mark left by a call whose context ended cannot excuse a later
// failure of the server's making (which would then be retried at once, its Retry-After and
// backoff ignored, and not counted).
func (w *Watch) ourDoing(ctx context.Context) bool {
	interrupted := w.takeInterrupted()
	return w.ctx.Err() != nil || ctx.Err() != nil || interrupted
}

// takeInterrupted reports whether an interrupt cut the connection since the last report.
func (w *Watch) takeInterrupted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	was := w.interrupted
	w.interrupted = false
	return was
}

// setInNext marks a call to Next begun or ended, and returns the call's number.
func (w *Watch) setInNext(in bool) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inNext = in
	if in {
		w.nextCalls++
	}
	if !in && w.ctx.Err() != nil {
		w.closeConnLocked() // Close ran while Next was reading
	}
	return w.nextCalls
}

// dropConn ends the current connection; only the goroutine in Next calls it.
func (w *Watch) dropConn() {
	w.mu.Lock()
	w.closeConnLocked()
	w.mu.Unlock()
	w.sse = nil
}

func (w *Watch) closeConnLocked() {
	w.idle.stop()
	w.idle = nil
	if w.connCancel != nil {
		// Cancel before Close: the transport then drops the connection instead of trying to
		// drain an endless stream for reuse.
		w.connCancel()
		w.connCancel = nil
	}
	if w.body != nil {
		_ = w.body.Close()
		w.body = nil
	}
}
