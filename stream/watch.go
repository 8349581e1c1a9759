package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// Scope is what a watch follows.
type Scope int

const (
	// OrderEvents is one order's events from a resume point: the SSE and WebSocket streams.
	OrderEvents Scope = iota
	// AllOrders is a snapshot of the active orders, then every change: the consoles' stream.
	AllOrders
	// OrderState is one order's current state, until its version passes a point: a long poll.
	OrderState
	// PartyEvents is every order in one party's scope (a restaurant, a courier, a customer):
	// its active orders, then each event of its log, resumable from a log position.
	PartyEvents
)

// Request asks for a watch.
type Request struct {
	Scope   Scope
	OrderID string          // OrderEvents, OrderState
	Party   ordercast.Party // PartyEvents
	// Last is the seq of the last event the client has (OrderEvents), or the position in the
	// party's log it has (PartyEvents): with Resume, the watch sends every event after it.
	Last int64
	// Resume says the client gave Last (Last-Event-ID), 0 included, which asks for every event
	// after 0 (up to orderBacklogLimit, or Config.PartyBacklog, behind). Without it the watch is a
	// fresh connect: an order's stream opens with its last status event (see fromLastStatus), a
	// party's with a snapshot of its scope.
	Resume bool
	// Courier, when set, is the courier whose token reads the order (OrderEvents, OrderState)
	// because the order is assigned to it: a right that ends when the order goes to another
	// courier. The watch is refused if the order is not its now; a stream ends (ReasonRevoked)
	// before the first event that gives the order to another, which the courier must not read,
	// and a long poll answered after one is refused.
	Courier string
	// VisibleHeartbeats asks an SSE stream to send its heartbeats as events (event: heartbeat,
	// no id, data {"every_s": N}), one of them as soon as it opens, instead of comments, which an
	// EventSource never hands its page: a page can then tell a connection that died silently (a
	// phone between cells, a NAT that dropped it) from a quiet order, and a stream that opened
	// from one refused with a retry advice (see Engine.ServeSSE). Other transports ignore it.
	VisibleHeartbeats bool
	// LocationInterval, when longer than the engine's (Config.LocationInterval), caps how often
	// this stream is sent a position of an order: a client saving data (a phone on a slow or
	// metered network, Save-Data) asks for fewer, each the newest. Shorter is the engine's.
	LocationInterval time.Duration
	// Admit counts the watch against the server's limits; release gives the place back. Nil
	// admits everything.
	Admit func() (release func(), err error)
	// Until is when the credential the watch was let in with stops being accepted (zero: none
	// that ends). A stream ends then (ReasonExpired) or at its lifetime (ReasonLifetime),
	// whichever comes first (a long poll, answered within a minute, is not cut): a token that
	// expired, or was replaced by a shorter-lived one, must not keep delivering for the rest of
	// an hour. Its client reconnects and is refused, or let in on a newer token.
	Until time.Time
}

// Watch is a watcher set up by Engine.Watch: subscribed to the hub, with what the store held
// when it was read after subscribing. A Serve call owns it; otherwise Close it.
type Watch struct {
	scope   Scope
	orderID string
	sub     *hub.Subscription
	release func()
	order   ordercast.Order
	last    int64             // the client has every event up to this seq
	backlog []ordercast.Event // the events after last, to send first
	ended   bool              // the client already has the terminal event
	behind  bool              // it resumed past the order's history: it ends at once (HistoryBehind)
	snap    snapshot          // AllOrders: the active orders
	party   ordercast.Party
	// scoped is what opens a party stream: a snapshot of its scope, or the log after Last.
	scoped partyOpening
	loc    *hub.Location // OrderEvents: the order's newest fresh position, sent after backlog
	// courier is Request.Courier.
	courier string
	// visibleHeartbeats is Request.VisibleHeartbeats.
	visibleHeartbeats bool
	// until is Request.Until.
	until time.Time
	// locInterval is Request.LocationInterval.
	locInterval time.Duration
}

// Watch sets a watcher up, the one way for every transport: refuse when draining (a long poll
// is answered at once instead, see LongPoll), admit under the limits, subscribe to the hub, then
// read the store. Subscribing before reading is what guarantees that no change
// falls between the snapshot and the live feed. Errors are the domain's (ordercast.Error).
func (e *Engine) Watch(ctx context.Context, req Request) (*Watch, error) {
	if req.Scope != OrderState && e.Draining() {
		return nil, ordercast.Errorf(ordercast.EUnavailable, "shutting down")
	}
	release := func() {}
	if req.Admit != nil {
		r, err := req.Admit()
		if err != nil {
			return nil, err
		}
		release = r
	}
	w := &Watch{scope: req.Scope, orderID: req.OrderID, party: req.Party, release: release, courier: req.Courier,
		visibleHeartbeats: req.VisibleHeartbeats, until: req.Until, locInterval: req.LocationInterval}
	switch req.Scope {
	case AllOrders:
		w.sub = e.hub.SubscribeAll()
	case PartyEvents:
		w.sub = e.hub.SubscribeParty(req.Party.Key())
	case OrderState:
		w.sub = e.hub.SubscribeStatus(req.OrderID)
	default:
		w.sub = e.hub.Subscribe(req.OrderID)
	}
	if err := e.read(ctx, w, req.Last, req.Resume); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// read fills w from the store, after w subscribed: what follows last when resume is set, else
// what a fresh connect opens with.
func (e *Engine) read(ctx context.Context, w *Watch, last int64, resume bool) error {
	switch w.scope {
	case AllOrders:
		snap, err := e.activeSnapshot(ctx)
		w.snap = snap
		return err
	case OrderState:
		o, err := e.store.Order(ctx, w.orderID)
		if err == nil {
			err = o.ReadableByCourier(w.courier)
		}
		w.order = o
		return err
	case PartyEvents:
		opening, err := e.readParty(ctx, w.party, last, resume)
		w.scoped = opening
		return err
	}
	o, err := e.store.Order(ctx, w.orderID)
	if err != nil {
		return err
	}
	if err := o.ReadableByCourier(w.courier); err != nil {
		return err // it moved on since the request was authorized
	}
	w.order = o
	switch {
	case resume && last > o.Version:
		// A Last-Event-ID past the order's version cannot come from this order's history (a
		// database restored from an older copy, a forged header): the stream ends at once,
		// saying so (history_rewritten), for the client to open it afresh. Answered as a fresh
		// connect, it sent the current status under a seq the client held for another change,
		// and a client that skips seqs it holds (a page, most of all) showed the lost history.
		w.behind = true
	case !resume || o.Version-last > orderBacklogLimit:
		// One further behind than a whole history may run (one kept from before the cap) is not
		// read and held whole: answered as a fresh connect. w.last stays 0, so every event of
		// the backlog is sent, under its own seq.
		w.backlog, err = e.fromLastStatus(ctx, o)
	case last == o.Version:
		w.last = last
		w.ended = o.Status.Terminal()
		if w.ended {
			return nil
		}
		// Up to date: only live events follow.
	default:
		w.last = last
		// At most o.Version-last events are the client's backlog; any committed since o was
		// read that the limit leaves out arrive live, or fill the gap they leave (rule 2).
		if w.backlog, err = e.store.EventsAfter(ctx, w.orderID, last, orderBacklogLimit); err != nil {
			err = fmt.Errorf("read the events of %s after %d: %w", w.orderID, last, err)
		}
	}
	if err != nil {
		return err
	}
	e.readLocation(ctx, w)
	return nil
}

// orderBacklogLimit bounds the events a resumed stream of one order is sent from its history,
// and so what one resume reads. It is the whole history of any order since histories were
// capped (ordercast.MaxOrderVersion), so Last-Event-ID: 0 still brings all of it; a client
// further behind, on a longer history kept from before the cap, is sent a fresh opening instead
// (fromLastStatus), as party streams send a snapshot past Config.PartyBacklog.
const orderBacklogLimit = ordercast.MaxOrderVersion

// fromLastStatus reads what a fresh connect to order o opens with: its last status event and, if
// o has a courier, the newest courier event, at most two events in seq order. A client that
// listens for status events (as the README tells integrators to) learns the current status at
// once, even when courier events came after it, and one that opens after the assignment still
// learns whom the order went to (the status events since say nothing of it); an earlier
// assignment is replaced by a later one, so only the newest is state (the history and a resume
// have them all). An unassignment after the last status event is sent too: the client may hold
// the courier from an earlier connection. The latest event is nearly always a status event,
// and then it is the one read, with the assignment one more read of one row when the order has
// a courier; after a courier event, the last status event before it is one more read, however
// many courier events came between. Events committed since o was read come live, after these,
// or fill the gap they leave (rule 2).
func (e *Engine) fromLastStatus(ctx context.Context, o ordercast.Order) ([]ordercast.Event, error) {
	evs, err := e.store.EventsAfter(ctx, o.ID, o.Version-1, 1)
	if err != nil {
		return nil, fmt.Errorf("read the latest event of %s: %w", o.ID, err)
	}
	if len(evs) == 0 {
		return evs, nil
	}
	latest := evs[0]
	other := ordercast.KindStatus
	if latest.Kind == ordercast.KindStatus {
		if o.CourierID == "" {
			return evs, nil
		}
		other = ordercast.KindCourier
	}
	ev, err := e.store.LastEvent(ctx, o.ID, other, latest.Seq)
	if other == ordercast.KindCourier && ordercast.ErrorCode(err) == ordercast.ENotFound {
		return evs, nil // a courier set by no event of the history kept (none is, today)
	}
	if err != nil {
		return nil, fmt.Errorf("read the last %s event of %s: %w", other.Name(), o.ID, err)
	}
	return []ordercast.Event{ev, latest}, nil
}

// readLocation finds the newest fresh position of an order that shows one (Locations.Latest),
// for a new or resumed stream. It is read after subscribing, like the events: a newer position
// published meanwhile is in the subscription's slot and replaces it.
func (e *Engine) readLocation(ctx context.Context, w *Watch) {
	if !e.showsLocation(w.order.Status) { // false without Locations
		return
	}
	// The watcher judges it by the order's courier (showsPosition), as it judges every
	// position: it may be one kept from before the order was reassigned.
	w.loc = e.cfg.Locations.Latest(ctx, w.orderID)
}

// HistoryBehind reports whether the watch resumed after a seq past the order's history, and
// where that history ends: the client's resume point came from another history (a database
// reset or restored from an older backup), and every event the order has yet to bring comes
// under a seq at or before it. The stream ends at once, as one whose history went back under it
// does (ReasonRewound: event end, history_rewritten, on SSE with an empty id, so that an
// EventSource that knows no end event reconnects without Last-Event-ID); the header the server
// sets from this tells a client that reads headers before the body.
func (w *Watch) HistoryBehind() (version int64, behind bool) {
	return w.order.Version, w.behind
}

// Close unsubscribes and gives the watch's place under the limits back. Serve calls do it.
func (w *Watch) Close() {
	w.sub.Close()
	w.release()
}

// snapshot is the active orders as read from the store, encoded once.
type snapshot struct {
	orders []ordercast.Order
	json   []byte
}

// catchUpContext bounds a read that catches a stream up after missed events: a store that hangs
// must hold a stream (and, for a held stream, the worker running it) no longer than a stuck
// client's write may. Only a catch-up pays for the timer, not every delivery.
func (e *Engine) catchUpContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.cfg.WriteTimeout)
}

func (e *Engine) activeSnapshot(ctx context.Context) (snapshot, error) {
	orders, err := e.store.ActiveOrders(ctx, SnapshotLimit)
	if err != nil {
		return snapshot{}, fmt.Errorf("read active orders: %w", err)
	}
	if orders == nil {
		orders = []ordercast.Order{}
	}
	b, err := json.Marshal(orders)
	if err != nil {
		return snapshot{}, fmt.Errorf("encode snapshot: %w", err)
	}
	return snapshot{orders: orders, json: b}, nil
}
