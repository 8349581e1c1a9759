package stream

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/hub"
)

// watcher is one open stream, whoever holds it: the delivery rules (dedupe, gap fill, overflow
// catch-up, snapshot) and what is queued for the next flush. It is not safe for concurrent use;
// its holder serialises calls, except for the counters.
type watcher struct {
	e       *Engine
	t       transport
	f       framing
	scope   Scope
	orderID string
	sub     *hub.Subscription
	release func()
	end     func(End) // called once, when the stream has ended

	last int64 // seq of the last event queued
	// lastAt is when the event at last was committed, in Unix microseconds; 0 when the stream
	// was not sent it (a snapshot's position, a client's resume). A catch-up checks the store
	// still holds that commit there (catchUp, partyLogAfter): a database that came back with
	// less than it had may hold another change under it.
	lastAt int64
	// rewound says the stream ended because its order's history went back under it.
	rewound bool
	ended   bool // a terminal event was queued, or revoked; the stream is complete
	// behind says events were taken from the subscription and left for a catch-up from the
	// store (a delivery on the publisher's goroutine, which never reads it: see needsStore).
	behind bool
	// owner is the courier whose right to read the order this watcher serves (Request.Courier),
	// from the order's version opened on; revoked says it ended (see queue).
	owner  string
	opened int64
	// until is when the stream's credential stops being accepted (Request.Until; zero: never):
	// a goroutine's stream ends then (Engine.lifetime), a held one's expiry says so.
	until      time.Time
	revoked    bool
	lastStatus ordercast.Status // status of the last event queued
	seen       map[string]int64 // AllOrders: the version of each active order the client has
	// AllOrders: complete says the last snapshot held every active order (it is bounded, see
	// SnapshotLimit); gone holds the orders the stream saw end lately. By both, an announcement
	// of an order that ended is not sent as if the order were active again (see deliverAll).
	complete bool
	gone     recentIDs
	party    ordercast.Party // PartyEvents: last is a position in this party's log
	partyKey string
	// loc is the newest position not yet sent (held back by the cap); locPace is the cap, one
	// position each locInterval: the engine's, or the one the client asked for (locEvery) when
	// longer. A position is one slot, never a queue.
	loc      *hub.Location
	locPace  pace
	locEvery time.Duration
	// shown is the last position sent (OrderEvents): one that does not replace it (an older fix
	// of the same courier, published late by a post that raced a newer one; hub.Location.Replaces)
	// is dropped.
	shown *hub.Location
	// courier is the order's courier as the stream last told it (OrderEvents): a position of
	// another courier is dropped (a post that read the orders just before a reassignment).
	courier string
	// PartyEvents: the newest position of each order not yet sent, and what the stream told of
	// the active orders that have a courier, by which their positions are judged.
	locs   map[string]*hub.Location
	orders map[string]partyOrder

	out     []byte  // frames queued for the next flush, back to back
	outBuf  *[]byte // a lean watcher's out, taken from scratch until the flush gives it back
	ends    []int   // where each queued frame ends in out
	ping    bool    // a pinger transport owes a ping
	pending int     // events queued since the last flush
	liveAt  []time.Time
	live    bool // past the backlog: events are fresh commits, their latency is measured
	// lean drops the buffers after each flush: a held stream is idle nearly always, and its memory
	// is what decides how many one node holds.
	lean bool

	// Counters read by whoever reports the end, which for a held stream may race a worker's flush.
	events atomic.Int64
	bytes  atomic.Int64
	// sentAt is when the stream last wrote, as time since clockBase: a heartbeat is owed only
	// after an interval without one (Config.Heartbeat). Read by the held streams' sweeper without
	// w's lock.
	sentAt atomic.Int64
}

// sayEnd writes the frame that tells the client why its stream ends, where its framing has one
// for reason (framing.end); a client that has gone misses nothing it could act on.
func (w *watcher) sayEnd(reason string) {
	if end := w.f.end(nil, reason); len(end) > 0 && w.t.Write(end) == nil {
		w.wrote(end)
	}
}

// wrote counts frame as written to the client.
func (w *watcher) wrote(frame []byte) { w.bytes.Add(int64(len(frame))) }

// init sets w up from a watch and queues what opens the stream: the preamble, then the backlog or
// the snapshot. The watch's subscription and place under the limits move to w.
func (w *watcher) init(e *Engine, t transport, f framing, wt *Watch, end func(End)) {
	*w = watcher{
		e: e, t: t, f: f, scope: wt.scope, orderID: wt.orderID, sub: wt.sub, release: wt.release,
		end: end, last: wt.last, party: wt.party, partyKey: wt.party.Key(), lastStatus: wt.order.Status,
		courier: wt.order.CourierID, owner: wt.courier, opened: wt.order.Version, until: wt.until,
		locEvery: wt.locInterval,
	}
	w.sent(time.Now()) // its opening is on its way: the first heartbeat is an interval away
	w.frame(f.preamble(w.buf(), e.cfg.Retry))
	switch wt.scope {
	case AllOrders:
		w.snapshot(wt.snap)
		return
	case PartyEvents:
		w.openParty(wt.scoped)
		return
	}
	if wt.behind {
		w.ended, w.rewound = true, true // past the order's history: see Watch.HistoryBehind
		return
	}
	w.queueEvents(wt.backlog)
	// The newest position goes right after the status backlog, which it must never precede.
	w.loc = wt.loc
	w.location(time.Now())
}

// take takes what the hub holds for w: the newest position first, then the queued events,
// appended to buf (see hub.Subscription.TakeInto: a caller's buffer on its stack spares an
// allocation per event). In this order a status published before the position is always taken
// with it, so the position is judged against that status; and a terminal event published after
// it still drops it (see location).
func (w *watcher) take(buf []*hub.Message) (msgs []*hub.Message, overflowed bool) {
	// A position the cap holds back is replaced only by a newer one: an older fix of a racing
	// post that lands in the emptied slot afterwards must not take its place (hub.Location.Replaces).
	if l := w.sub.TakeLocation(); l != nil && l.Replaces(w.loc) {
		w.loc = l
	}
	if w.scope == PartyEvents {
		for id, l := range w.sub.TakeLocations() {
			if w.locs == nil {
				w.locs = make(map[string]*hub.Location, 1)
			}
			if l.Replaces(w.locs[id]) {
				w.locs[id] = l
			}
		}
	}
	return w.sub.TakeInto(buf)
}

// maxPartyOrders bounds how many orders a party stream remembers (as many as its snapshot
// holds); past it, one is forgotten for each new one, and the forgotten one's positions are no
// longer shown on this stream.
const maxPartyOrders = api.MaxPartySnapshotOrders

// partyOrder is what a party stream told of an active order that has a courier: its status and
// its courier, from the opening or the order's latest event, and the last position of that
// courier it sent (as a stream of one order keeps its shown).
type partyOrder struct {
	status  ordercast.Status
	courier string
	shown   *hub.Location
}

// partyLocations queues the newest position of each order of a party stream, under one cap for
// the whole stream (see pace), which caps every order's positions at that rate too; it returns
// when held-back positions become due. A position is judged as a stream of its one order judges
// it, by what this stream told of the order; an order it does not know (ended, taken from its
// courier, or never told of) shows none, whatever the tracker that sent it believed.
func (w *watcher) partyLocations(now time.Time) (due time.Time) {
	var ids []string // those shown now; the others wait for their order's next event (awaitsStage)
	for id, l := range w.locs {
		o, ok := w.orders[id]
		switch {
		case !ok || !l.Replaces(o.shown):
			delete(w.locs, id)
		case w.e.showsPosition(l, o.status, o.courier):
			ids = append(ids, id)
		case !w.e.awaitsStage(l, o.status, o.courier):
			delete(w.locs, id)
		}
	}
	if len(ids) == 0 {
		return time.Time{}
	}
	if ok, due := w.locPace.allow(now, w.locInterval()); !ok {
		return due
	}
	slices.Sort(ids)
	for _, id := range ids {
		l := w.locs[id]
		w.frame(w.f.named(w.buf(), api.EventLocation, l.JSON))
		o := w.orders[id]
		o.shown = l
		w.orders[id] = o
		delete(w.locs, id)
	}
	return time.Time{}
}

// locInterval is the stream's cap on positions: the engine's, or the client's when longer
// (Request.LocationInterval).
func (w *watcher) locInterval() time.Duration { return max(w.e.cfg.LocationInterval, w.locEvery) }

// rememberOrder remembers what a party stream told of an order: its new status and courier, or,
// once it ended or has no courier, nothing (its positions are dropped).
func (w *watcher) rememberOrder(orderID string, o partyOrder) {
	if o.courier == "" || o.status.Terminal() {
		delete(w.orders, orderID)
		return
	}
	if w.orders == nil {
		w.orders = make(map[string]partyOrder)
	}
	if _, ok := w.orders[orderID]; !ok && len(w.orders) >= maxPartyOrders {
		for id := range w.orders {
			delete(w.orders, id) // any one: the cost is its positions, never a wrong one shown
			break
		}
	}
	w.orders[orderID] = o
}

// location queues the newest position if the order shows one now and the cap allows it, and
// returns when a position the cap holds back becomes due (zero when none waits). A position for
// an order that ended, or of another courier, is dropped; one for an order not yet at the stage
// that shows it waits for the order's next event (awaitsStage).
func (w *watcher) location(now time.Time) (due time.Time) {
	if w.scope == PartyEvents {
		return w.partyLocations(now)
	}
	if w.loc == nil {
		return time.Time{}
	}
	if !w.ended && w.scope == OrderEvents && w.loc.Replaces(w.shown) && w.e.awaitsStage(w.loc, w.lastStatus, w.courier) {
		return time.Time{} // the order's next event judges it again
	}
	if w.ended || w.scope != OrderEvents || !w.e.showsPosition(w.loc, w.lastStatus, w.courier) ||
		!w.loc.Replaces(w.shown) {
		w.loc = nil
		return time.Time{}
	}
	if ok, due := w.locPace.allow(now, w.locInterval()); !ok {
		return due
	}
	w.frame(w.f.named(w.buf(), api.EventLocation, w.loc.JSON))
	w.shown, w.loc = w.loc, nil
	return time.Time{}
}

// buf is what the next frame is appended to: out, which a lean watcher takes from scratch
// between two flushes.
func (w *watcher) buf() []byte {
	if w.lean && w.outBuf == nil {
		w.outBuf = getScratch()
		w.out = *w.outBuf
	}
	return w.out
}

// frame records that out now ends a frame.
func (w *watcher) frame(out []byte) {
	if len(out) == len(w.out) {
		return // the framing had nothing to add
	}
	w.out = out
	w.ends = append(w.ends, len(out))
}

// queueEvents queues events read from the store; only the next seqs in order are taken.
func (w *watcher) queueEvents(evs []ordercast.Event) {
	for _, ev := range evs {
		if ev.Seq <= w.last {
			continue
		}
		w.queue(hub.NewMessage(ev))
		if w.ended {
			return
		}
	}
}

func (w *watcher) queue(m *hub.Message) {
	sent := m
	if w.owner != "" {
		if m.Event.Seq > w.opened && m.Event.TakesFrom(w.owner) {
			// The order went to another courier: the watching courier's right to read it ends
			// here, before this event, which tells whom it went to.
			w.ended, w.revoked = true, true
			return
		}
		// History from before the order was this courier's (again): the order is its to read,
		// but another courier's assignment is read as an unassignment, as its party stream
		// reads it.
		sent = seenBy(m, ordercast.Party{Kind: ordercast.PartyCourier, ID: w.owner})
	}
	w.frame(w.f.event(w.buf(), sent))
	w.pending++
	if w.live {
		w.liveAt = append(w.liveAt, m.Event.At)
	}
	w.last, w.lastAt = m.Event.Seq, m.Event.Committed()
	w.lastStatus = m.Event.Status
	w.ended = m.Event.Status.Terminal()
	if m.Event.Kind == ordercast.KindCourier {
		w.courier = m.Event.CourierID
	}
}

// endReason is why a stream whose watcher ended (w.ended) is over.
func (w *watcher) endReason() string {
	if w.revoked {
		return ReasonRevoked
	}
	if w.rewound {
		return ReasonRewound
	}
	return ReasonTerminal
}

// clockBase anchors sentAt on the monotonic clock: a step of the wall clock (NTP, a machine
// resumed) must neither silence streams past their heartbeat nor ping them all at once.
var clockBase = time.Now()

// sent records that the stream wrote at now.
func (w *watcher) sent(now time.Time) { w.sentAt.Store(int64(now.Sub(clockBase))) }

// quietFor reports how long the stream has written nothing, as of now.
func (w *watcher) quietFor(now time.Time) time.Duration {
	return now.Sub(clockBase) - time.Duration(w.sentAt.Load())
}

// heartbeat queues a keep-alive.
func (w *watcher) heartbeat() {
	if _, ok := w.t.(pinger); ok {
		w.ping = true
		return
	}
	w.frame(w.f.heartbeat(w.buf()))
}

// deliver queues the live messages a subscription took. For one order: in seq order, a duplicate
// skipped, a gap or an overflowed mailbox filled from the store, which is the truth. For all
// orders: each change the client lacks, and after an overflow a fresh snapshot (status is state).
func (w *watcher) deliver(ctx context.Context, msgs []*hub.Message, overflowed bool) error {
	overflowed = overflowed || w.behind
	w.behind = false
	switch w.scope {
	case AllOrders:
		return w.deliverAll(ctx, msgs, overflowed)
	case PartyEvents:
		return w.deliverParty(ctx, msgs, overflowed)
	}
live:
	for _, m := range msgs {
		switch seq := m.Event.Seq; {
		case w.wentBack(seq, m.Event):
			// The history may have gone back under the stream: what follows would be of the
			// new one; catchUp checks, and ends the stream if so.
			overflowed = true
			break live
		case seq <= w.last:
			continue
		case seq == w.last+1:
			w.queue(m)
		default:
			overflowed = true // a hole: catch up below
		}
		if w.ended {
			return nil
		}
	}
	if !overflowed {
		return nil
	}
	w.e.observer.CaughtUp()
	ctx, cancel := w.e.catchUpContext(ctx)
	defer cancel()
	return w.catchUp(ctx)
}

// catchUp queues the order's events after the last the stream sent, read from the store. A
// stream that knows when that one was committed (lastAt) reads it too, and ends (rewound)
// when the store holds no such commit there: the history went back under it (Feed.CatchUp),
// and the events after it, taken as following on, would skip the changes made again under
// seqs its client holds.
func (w *watcher) catchUp(ctx context.Context) error {
	missed, err := w.e.store.EventsAfter(ctx, w.orderID, readFrom(w.last, w.lastAt), 0)
	if err != nil {
		return err
	}
	missed, held := stillHeld(missed, w.last, w.lastAt, func(ev ordercast.Event) (int64, ordercast.Event) { return ev.Seq, ev })
	if !held {
		w.ended, w.rewound = true, true
		return nil
	}
	w.queueEvents(missed)
	return nil
}

// recommitted reports whether ev, heard live at seq (or log position), is another commit than
// the one the stream sent there last: its history went back under it and was written again (a
// database restored in place under running nodes, the bus up all along). A catch-up from the
// store, which checks what the stream sent (stillHeld), ends the stream or sets it right.
func (w *watcher) recommitted(seq int64, ev ordercast.Event) bool {
	return seq == w.last && w.lastAt != 0 && ev.Committed() != w.lastAt
}

// wentBack reports whether an order's event heard live at seq may be of a history that went
// back under the stream: another commit at the seq it sent last, or one before it, which a
// history cut short and changed again (cancelled at a seq the stream had passed) sends and
// which never reaches the stream's seq. The store tells (catchUp): an event before it is most
// often a repeat of one the stream read from the store as it opened, and costs that one read.
func (w *watcher) wentBack(seq int64, ev ordercast.Event) bool {
	return w.recommitted(seq, ev) || seq < w.last && w.lastAt != 0
}

// readFrom is where a catch-up after last reads the store from: last itself too, when the stream
// knows when the event it sent there was committed (lastAt), for stillHeld to check it.
func readFrom(last, lastAt int64) int64 {
	if lastAt != 0 && last > 0 {
		return last - 1
	}
	return last
}

// stillHeld takes evs, read after readFrom(last, lastAt), and reports whether the store still
// holds the commit the stream sent at last (lastAt) there, returning the events after it; an
// event is placed and told apart by at, its seq or log position and the event. With lastAt
// unknown, evs are all after last, and held.
func stillHeld[E any](evs []E, last, lastAt int64, at func(E) (int64, ordercast.Event)) (after []E, held bool) {
	if readFrom(last, lastAt) == last {
		return evs, true
	}
	if len(evs) == 0 {
		return nil, false // the history ends before last
	}
	if pos, ev := at(evs[0]); pos != last || ev.Committed() != lastAt {
		return nil, false
	}
	return evs[1:], true
}

// needsStore reports whether delivering msgs to an order's watcher would read the store: its
// mailbox overflowed, or a hole comes before the next event. A caller that must not read it sets
// behind instead, and leaves the delivery (msgs, caught up again from the store) to one that may.
func (w *watcher) needsStore(msgs []*hub.Message, overflowed bool) bool {
	if overflowed || w.behind || w.scope != OrderEvents {
		return true
	}
	last := w.last
	for _, m := range msgs {
		switch seq := m.Event.Seq; {
		case w.wentBack(seq, m.Event):
			return true
		case seq <= last:
		case seq == last+1:
			last = seq
		default:
			return true
		}
	}
	return false
}

func (w *watcher) deliverAll(ctx context.Context, msgs []*hub.Message, overflowed bool) error {
	if overflowed {
		// Some changes were dropped; status is state, so the current state replaces them.
		w.e.observer.CaughtUp()
		ctx, cancel := w.e.catchUpContext(ctx)
		defer cancel()
		snap, err := w.e.activeSnapshot(ctx)
		if err != nil {
			return err
		}
		w.snapshot(snap)
		return nil
	}
	for _, m := range msgs {
		id := m.Event.OrderID
		seen, active := w.seen[id]
		switch {
		case m.Event.Seq <= seen:
			continue // the client has it
		case !active && (w.gone.has(id) || w.complete && m.Event.Seq > 1):
			// Announced late (committed before the snapshot was read, or announced again by a
			// cluster listener catching up): an order that ended, which the client must not be
			// shown as active again. One the snapshot had no room for is sent as before.
			continue
		}
		w.frame(w.f.named(w.buf(), api.EventName(m.Event), m.JSON))
		// seen forgets an order once it ends, so it holds only orders that are still active.
		if m.Event.Status.Terminal() {
			delete(w.seen, id)
			w.gone.add(id)
		} else {
			w.seen[id] = m.Event.Seq
		}
	}
	return nil
}

// goneMemory bounds the ended orders an all-orders stream remembers (recentIDs): late or
// repeated announcements come within moments of the end, and a console's stream is one of few.
const goneMemory = 256

// recentIDs is a set of the goneMemory ids added last; its zero value is empty.
type recentIDs struct {
	set  map[string]struct{}
	ring []string // the ids in the order added; next is where the following one goes
	next int
}

func (r *recentIDs) add(id string) {
	if r.set == nil {
		r.set, r.ring = make(map[string]struct{}, goneMemory), make([]string, goneMemory)
	}
	if _, ok := r.set[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % goneMemory
}

func (r *recentIDs) has(id string) bool {
	_, ok := r.set[id]
	return ok
}

// snapshot queues the snapshot and remembers the version of each order in it, so that changes
// queued before it was read, and already part of it, are not sent again.
func (w *watcher) snapshot(snap snapshot) {
	w.seen = make(map[string]int64, len(snap.orders))
	for _, o := range snap.orders {
		w.seen[o.ID] = o.Version
	}
	// An order created after the read opens at seq 1; one with a later seq that the snapshot
	// lacks, when it lacks none for room, had ended by then.
	w.complete = len(snap.orders) < SnapshotLimit
	w.frame(w.f.named(w.buf(), api.EventSnapshot, snap.json))
}

// flush writes what is queued and counts the events it delivered.
func (w *watcher) flush() error {
	if len(w.ends) > 0 {
		// Stamped before the write: whoever reads these bytes finds the stream's time of writing
		// already moved (a write that fails ends the stream, whose time then matters no more).
		w.sent(time.Now())
		var err error
		if len(w.ends) == 1 {
			err = w.t.Write(w.out) // the usual flush of a live stream: one event, or a heartbeat
		} else {
			frames := make([][]byte, len(w.ends))
			start := 0
			for i, end := range w.ends {
				frames[i] = w.out[start:end]
				start = end
			}
			err = w.t.WriteMany(frames...)
		}
		if err == nil {
			w.bytes.Add(int64(len(w.out)))
		}
		if w.lean {
			if w.outBuf != nil {
				putScratch(w.outBuf, w.out) // the transport copied what it did not write
				w.outBuf = nil
			}
			w.out, w.ends = nil, keepSmall(w.ends)
		} else {
			// A stream on its own goroutine keeps its buffers between flushes, but not the room
			// a long backlog or snapshot grew them to, which an idle stream would hold for life.
			w.out, w.ends = keepUpTo(w.out, maxScratch), keepUpTo(w.ends, maxKeptFrames)
		}
		if err != nil {
			return err
		}
	}
	if w.ping {
		w.ping = false
		w.sent(time.Now())
		if err := w.t.(pinger).Ping(); err != nil {
			return err
		}
	}
	if w.pending > 0 {
		w.e.observer.EventsDelivered(w.pending, w.liveAt, w.e.cfg.StampNow())
		w.events.Add(int64(w.pending))
		w.pending = 0
		if w.lean {
			w.liveAt = keepSmall(w.liveAt)
		} else {
			w.liveAt = keepUpTo(w.liveAt, maxKeptFrames)
		}
	}
	return nil
}

// finish unsubscribes, gives the place under the limits back, and reports the end.
func (w *watcher) finish(reason string, err error, held, hijacked bool) {
	w.sub.Close()
	w.release()
	w.end(End{
		Reason: reason, Events: w.events.Load(), Bytes: w.bytes.Load(),
		Held: held, Hijacked: hijacked, Err: err,
	})
}
