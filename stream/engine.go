// Package stream is ordercast's stream engine: it owns a watcher's whole life, for every
// transport (SSE, WebSocket, a long poll's answer) and every way of holding a stream (a goroutine
// each, or the shared epoll poller).
//
// A watch is set up one way (Engine.Watch: admit, subscribe to the hub, then read the store, so no
// change falls in between), then run by the same delivery rules whoever holds it: dedupe by seq,
// gap and overflow catch-up from the store, heartbeats, lifetime, drain, write deadlines, end
// reasons, counting. A transport only moves frames; a holder only moves bytes and time.
package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// SnapshotLimit bounds the active orders sent in one snapshot of the all-orders stream: an
// operator's console shows a screenful, and a snapshot is re-sent on every reconnect. The console
// says when a snapshot came full, so that the oldest orders left out are not taken for none.
const SnapshotLimit = 500

// Why a stream ended: the values of End.Reason, for metrics labels and the request log.
const (
	ReasonClientGone   = "client_gone"        // the client disconnected (or its context ended)
	ReasonLifetime     = "lifetime"           // the stream reached its lifetime; the client resumes
	ReasonExpired      = "credential_expired" // the token it was let in with stopped being accepted (Request.Until)
	ReasonShutdown     = "shutdown"           // the node is draining; the client resumes elsewhere
	ReasonWriteTimeout = "write_timeout"      // a write missed the write timeout: a stuck client
	ReasonWriteError   = "write_error"        // any other write failure
	ReasonTerminal     = "terminal"           // the order reached delivered or cancelled
	ReasonStoreError   = "store_error"        // catching up from the store failed
	ReasonRevoked      = "revoked"            // the order went to another courier than the one watching
	ReasonClientData   = "client_data"        // a WebSocket client sent a data message: the socket only sends
	ReasonRewound      = "history_rewound"    // the order's history went back under the stream (its database lost commits)
)

// Reasons lists every end reason, so that metrics can export each from the start.
func Reasons() []string {
	return []string{
		ReasonClientGone, ReasonLifetime, ReasonExpired, ReasonShutdown, ReasonWriteTimeout,
		ReasonWriteError, ReasonTerminal, ReasonStoreError, ReasonRevoked, ReasonClientData,
		ReasonRewound,
	}
}

// Store is what the engine reads: an order, its events, the active orders, the party logs.
// ordercast.Store has it.
type Store interface {
	ordercast.ScopeReader
	Order(ctx context.Context, id string) (ordercast.Order, error)
	EventsAfter(ctx context.Context, id string, after int64, limit int) ([]ordercast.Event, error)
	LastEvent(ctx context.Context, id string, kind ordercast.EventKind, before int64) (ordercast.Event, error)
	ActiveOrders(ctx context.Context, limit int) ([]ordercast.Order, error)
}

// Observer is told about every stream's life; the server supplies it (its metrics), so the
// engine need not know Prometheus. Its methods are called from many goroutines.
type Observer interface {
	StreamOpened()
	StreamClosed(reason string)
	// EventsDelivered reports n events just flushed; liveAt holds the commit times of those that
	// were live (not backlog), for the delivery latency.
	EventsDelivered(n int, liveAt []time.Time, flushed time.Time) // flushed on Config.StampNow's clock
	// CaughtUp reports a stream caught up from the store after a gap or an overflow.
	CaughtUp()
	// HoldingFailed reports, once, that the poller holding streams failed for good (err says
	// why): the streams it held end (write_error, their clients resume), and new streams run on
	// a goroutine each, as with Hold off.
	HoldingFailed(err error)
}

// End is how a stream ended, handed once to the function its Serve call was given (the request's
// log line).
type End struct {
	Reason string // one of the Reason constants; empty when no stream ran (a failed handshake)
	Events int64  // events delivered
	Bytes  int64  // payload bytes written: frames and heartbeats, without HTTP or WebSocket framing
	Held   bool   // the poller held the stream
	// Hijacked says the connection was taken from net/http (held, or a WebSocket) and is closed
	// now: its bytes bypassed the response writer, and net/http no longer tracks it.
	Hijacked bool
	Err      error // why a write or catch-up failed, if one did
}

// Config is the engine's tunables.
type Config struct {
	// Heartbeat is the longest a stream stays silent: a keep-alive goes to a stream that has
	// written nothing for about that long, never more, and never to one that has events to send.
	Heartbeat    time.Duration
	Retry        time.Duration // reconnection delay advised to SSE clients
	WriteTimeout time.Duration // longest a write may wait on a client before it counts as stuck
	Lifetime     time.Duration // end each stream after about this long (minus up to a tenth); 0 never
	// Hold hands cleartext HTTP/1.1 SSE streams, once set up, to the shared poller (Open starts it).
	Hold bool

	// LocationInterval caps how often one stream is sent a position of its order: a newer
	// position replaces one held back, so a capped stream gets the newest. 0 sends every one.
	LocationInterval time.Duration
	// Locations finds an order's newest position for a new stream, and says which positions a
	// stream shows; nil finds none, and no stream shows one.
	Locations Locations

	// PartyBacklog bounds the events of its log a party stream is sent on a resume or a gap
	// catch-up; one further behind gets a fresh snapshot. 0 is DefaultPartyBacklog.
	PartyBacklog int

	// StampNow is the clock the events are stamped on (Event.At), which the delivery latency
	// (Observer.EventsDelivered) is measured on: the store's (ordercast.StampClock). Nil is this
	// process's, time.Now.
	StampNow func() time.Time
}

// Locations is where a new stream finds its orders' newest known positions. What it returns may
// be a courier's an order no longer has: the stream judges it (ordercast.ShowsPosition).
type Locations interface {
	// Latest returns the order's newest position still fresh enough to show, or nil. It never
	// fails: a position is extra to the statuses a stream opens with, so what cannot be read is
	// simply not there.
	Latest(ctx context.Context, orderID string) *hub.Location
	// LatestMany is Latest for each of the orders that has one, keyed by order id, in one read
	// however many there are (a party stream opening).
	LatestMany(ctx context.Context, orderIDs []string) map[string]*hub.Location
	// ShowsLocation reports whether an order in status s shows its courier's position.
	ShowsLocation(s ordercast.Status) bool
	// ShowsPosition reports whether an order in status s, carried by courierID, is shown u:
	// it shows its courier, and u is that courier's.
	ShowsPosition(u ordercast.LocationUpdate, s ordercast.Status, courierID string) bool
}

// Engine runs the streams of one server.
type Engine struct {
	store    Store
	hub      *hub.Hub
	cfg      Config
	observer Observer

	held       *holder       // nil unless Open started the poller
	closing    chan struct{} // closed when the drain starts
	drainOnce  sync.Once     // a second BeginDrain, even at once with the first, does nothing
	drain      atomic.Pointer[drainSchedule]
	streams    atomic.Int64  // open streams, for the drain schedule and Wait
	streamGone chan struct{} // signalled (capacity 1) when a stream closes
	// heartbeatEvent is the visible heartbeat frame (Request.VisibleHeartbeats), computed once.
	heartbeatEvent []byte
	ctx            context.Context
	cancel         context.CancelFunc
}

// Validate reports the first setting out of range, as an *ordercast.SettingError named as
// `ordercast serve`'s flag for it (PartyBacklog, which no flag sets, as "party-backlog").
func (c Config) Validate() error {
	bad := ordercast.BadSetting
	switch {
	case c.Heartbeat <= 0:
		return bad("heartbeat", "must be positive, got %s", c.Heartbeat)
	case c.WriteTimeout <= 0:
		return bad("stream-write-timeout", "must be positive, got %s", c.WriteTimeout)
	case c.Lifetime < 0:
		return bad("stream-lifetime", "must not be negative, got %s", c.Lifetime)
	case c.LocationInterval < 0:
		return bad("location-interval", "must not be negative, got %s", c.LocationInterval)
	case c.PartyBacklog < 0:
		return bad("party-backlog", "must not be negative, got %d", c.PartyBacklog)
	}
	return nil
}

// New returns an engine over store and h; obs may be nil. Streams run on goroutines until Open
// starts the poller (when cfg.Hold).
func New(store Store, h *hub.Hub, cfg Config, obs Observer) *Engine {
	if obs == nil {
		obs = nopObserver{}
	}
	if cfg.PartyBacklog == 0 {
		cfg.PartyBacklog = DefaultPartyBacklog
	}
	if cfg.StampNow == nil {
		cfg.StampNow = time.Now
	}
	e := &Engine{
		store: store, hub: h, cfg: cfg, observer: obs,
		closing:        make(chan struct{}),
		streamGone:     make(chan struct{}, 1),
		heartbeatEvent: appendHeartbeatEvent(nil, cfg.Heartbeat),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Open validates the configuration (Validate) and, when Hold is set, starts the poller that
// holds streams.
func (e *Engine) Open() error {
	if e.store == nil || e.hub == nil {
		return errors.New("stream: Store and Hub are required")
	}
	if err := e.cfg.Validate(); err != nil {
		return err
	}
	if !e.cfg.Hold {
		return nil
	}
	h, err := openHolder(e)
	if err != nil {
		return fmt.Errorf("open stream holder: %w", err)
	}
	e.held = h
	return nil
}

// Close closes what the poller still holds (the clients resume) and stops the engine's
// goroutines; a stream still on its goroutine that ends after it counts as cut by shutdown.
func (e *Engine) Close() error {
	var err error
	if e.held != nil {
		err = e.held.close()
	}
	e.cancel()
	return err
}

// BeginDrain refuses new streams and closes the open ones spread evenly over window. Only the
// first call does anything; it is safe to call from several goroutines at once.
func (e *Engine) BeginDrain(window time.Duration) {
	e.drainOnce.Do(func() {
		schedule := newDrainSchedule(window, e.streams.Load())
		e.drain.Store(schedule)
		close(e.closing)
		if e.held != nil {
			e.held.drain(schedule)
		}
	})
}

// Draining reports whether the drain has begun: new streams go elsewhere.
func (e *Engine) Draining() bool {
	select {
	case <-e.closing:
		return true
	default:
		return false
	}
}

// Wait blocks until no stream is open or ctx ends. An http.Server's Shutdown does not wait for
// streams on hijacked connections (held, or WebSockets), so a server's Close waits here.
func (e *Engine) Wait(ctx context.Context) error {
	for e.streams.Load() > 0 {
		select {
		case <-e.streamGone:
		case <-ctx.Done():
			return fmt.Errorf("wait for streams: %w", ctx.Err())
		}
	}
	return nil
}

// opened counts a stream in.
func (e *Engine) opened() {
	e.streams.Add(1)
	e.observer.StreamOpened()
}

// closed counts a stream out, and tells a Wait: the last of a stream's end, after its report,
// so that a Wait (a server's Close, which then shuts its metrics down) outlasts every end.
func (e *Engine) closed(reason string) {
	e.observer.StreamClosed(reason)
	e.streams.Add(-1)
	select {
	case e.streamGone <- struct{}{}:
	default:
	}
}

// showsLocation reports whether an order in status s shows its courier's position.
func (e *Engine) showsLocation(s ordercast.Status) bool {
	return e.cfg.Locations != nil && e.cfg.Locations.ShowsLocation(s)
}

// showsPosition reports whether a stream that knows an order in status s, carried by courierID,
// is shown position l.
func (e *Engine) showsPosition(l *hub.Location, s ordercast.Status, courierID string) bool {
	return e.cfg.Locations != nil && e.cfg.Locations.ShowsPosition(l.Update, s, courierID)
}

// awaitsStage reports whether a stream that knows an order in status s, carried by courierID,
// keeps position l, not shown, until the order's next event: the order has not reached the
// stage that shows its courier as far as the stream knows, and l is that courier's. A tracker
// sends a position only to an order it judged to show it, by the store's state, which the
// stream's events may not have reached yet: in a cluster a node hears of a change through its
// listener, after another node, or its own tracker, read it, and a courier's app posts the moment
// its pickup is answered. Dropped, the customer would see the courier only at its next post.
// The event that makes the order show it comes next; one that ends the order drops it.
func (e *Engine) awaitsStage(l *hub.Location, s ordercast.Status, courierID string) bool {
	return !s.Terminal() && !e.showsLocation(s) && (courierID == "" || courierID == l.Update.CourierID)
}

// lifetime returns how long a stream opening now lives, and the reason it then ends for:
// Config.Lifetime (ReasonLifetime), jittered down by up to a tenth so that streams opened
// together do not end together, and no longer than its credential is accepted, until
// (Request.Until; zero: for ever), when that comes first (ReasonExpired); 0 means forever.
func (e *Engine) lifetime(until time.Time) (time.Duration, string) {
	l := e.cfg.Lifetime
	if l > 0 {
		l -= rand.N(l/10 + 1)
	}
	if !until.IsZero() {
		// At least a moment: 0 would be forever, for a credential that ran out while the watch
		// was set up.
		if left := max(time.Until(until), time.Millisecond); l <= 0 || left < l {
			return left, ReasonExpired
		}
	}
	return l, ReasonLifetime
}

// writeFailure names why a write failed, on every transport and holding: a missed deadline (or
// a stalled queue) is a stuck client; a failed write after the stream's context ended is that
// end (contextEnd).
func (e *Engine) writeFailure(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonWriteTimeout
	case ctx.Err() != nil:
		return e.contextEnd(ctx)
	}
	return ReasonWriteError
}

// contextEnd names why a stream's ended context ended: after Close, the shutdown (its deadline)
// cut it; a WebSocket's reader ended it for a data message; otherwise the client left.
func (e *Engine) contextEnd(ctx context.Context) string {
	switch {
	case e.ctx.Err() != nil:
		return ReasonShutdown
	case errors.Is(context.Cause(ctx), errClientData):
		return ReasonClientData
	}
	return ReasonClientGone
}

type nopObserver struct{}

func (nopObserver) StreamOpened()                               {}
func (nopObserver) StreamClosed(string)                         {}
func (nopObserver) EventsDelivered(int, []time.Time, time.Time) {}
func (nopObserver) CaughtUp()                                   {}
func (nopObserver) HoldingFailed(error)                         {}

// drainSchedule spreads the closing of a draining node's streams evenly over the drain window:
// with n streams open when the drain starts, the k-th stream to ask closes at window*k/n. Even
// spacing, rather than each stream picking a random moment, gives the nodes that take the
// clients over a steady trickle of reconnects instead of clumps. Streams opened after the count
// was taken wrap around the window.
type drainSchedule struct {
	began  time.Time
	window time.Duration
	n      int64
	next   atomic.Int64
}

func newDrainSchedule(window time.Duration, streams int64) *drainSchedule {
	return &drainSchedule{began: time.Now(), window: window, n: max(streams, 1)}
}

// delay returns how long after the drain began the calling stream closes.
func (d *drainSchedule) delay() time.Duration {
	if d.window <= 0 {
		return 0
	}
	k := d.next.Add(1) - 1
	return time.Duration(int64(d.window) / d.n * (k % d.n))
}
