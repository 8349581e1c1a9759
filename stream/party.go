package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/hub"
)

// DefaultPartyBacklog bounds the events a resumed party stream is sent from the log, and so
// what one resume reads and holds (about 3 MiB of frames). The log is kept for ever: a cursor
// from the start of a busy restaurant's day, or Last-Event-ID: 0 on a year of it, would read
// the whole of it. A client further behind is sent a fresh snapshot instead, as on a fresh
// connect: the current state of every order in scope, from which live events continue. Each
// order's own stream still has its whole history. Config.PartyBacklog sets another bound.
const DefaultPartyBacklog = 10_000

// partyOpening is what opens a party stream: a snapshot of the scope at log position pos, or,
// on a resume, the events of the log after the client's position; then the newest position of
// each order that shows one.
type partyOpening struct {
	snap    []byte // the encoded api.PartySnapshot; nil on a resume
	pos     int64  // the position the client has before the backlog: the snapshot's, or its own
	backlog []ordercast.ScopedEvent
	// locs are the newest fresh positions of the orders that show one, keyed by order id, sent
	// after the backlog; orders are the active orders that have a courier, by whose status and
	// courier their positions are judged until their events say otherwise.
	locs   map[string]*hub.Location
	orders map[string]partyOrder
}

// readParty reads what opens a party stream, after the watch subscribed: with resume, the
// party's log after last (resumeParty); on a fresh connect, or when the log cannot resume it,
// a snapshot of the scope and the log position it was read at (freshParty). Every event the
// opening does not hold has a higher position and reaches the stream live or from the log
// (rule 2).
func (e *Engine) readParty(ctx context.Context, p ordercast.Party, last int64, resume bool) (partyOpening, error) {
	if resume {
		o, ok, err := e.resumeParty(ctx, p, last)
		if err != nil || ok {
			return o, err
		}
	}
	return e.freshParty(ctx, p)
}

// freshParty reads a snapshot of the party's scope, and the positions that follow it.
func (e *Engine) freshParty(ctx context.Context, p ordercast.Party) (partyOpening, error) {
	snap, err := e.store.ScopeSnapshot(ctx, p, api.MaxPartySnapshotOrders)
	if err != nil {
		return partyOpening{}, fmt.Errorf("read the scope of %s: %w", p.Key(), err)
	}
	b, err := json.Marshal(api.PartySnapshot{Party: p.Key(), Pos: snap.Pos, Orders: snap.Orders})
	if err != nil {
		return partyOpening{}, fmt.Errorf("encode the snapshot of %s: %w", p.Key(), err)
	}
	o := partyOpening{snap: b, pos: snap.Pos}
	e.partyPositions(ctx, snap.Orders, &o)
	return o, nil
}

// resumeParty reads what resumes a party stream at last: the log after it (0 included: the
// whole log), then the positions that follow. These are judged by the statuses and couriers of
// the scope, read after the log, so the events committed between the two reads join the
// backlog, or a board would show a courier's marker before the event that hands it the order.
// A stream without positions reads the scope only when the log had nothing after last, to
// tell a stream up to date from one whose last the log never reached (a reset database, a
// forged header).
//
// ok is false when the stream must open with a snapshot instead: last is more than
// Config.PartyBacklog events behind, or behind a purge (partyLogAfter); more than that many
// events were committed between the reads (a log that ran on faster than a stream could
// follow: each read is bounded alone, so a backlog holds up to twice the bound); or the log
// never reached last.
func (e *Engine) resumeParty(ctx context.Context, p ordercast.Party, last int64) (o partyOpening, ok bool, err error) {
	sr := e.store
	evs, far, err := e.partyLogAfter(ctx, sr, p, last, 0)
	if err != nil || far {
		return partyOpening{}, false, err
	}
	o = partyOpening{pos: last, backlog: evs}
	if len(evs) > 0 && e.cfg.Locations == nil {
		return o, true, nil
	}
	snap, err := sr.ScopeSnapshot(ctx, p, api.MaxPartySnapshotOrders)
	if err != nil {
		return partyOpening{}, false, fmt.Errorf("read the scope of %s: %w", p.Key(), err)
	}
	end := last
	if len(evs) > 0 {
		end = evs[len(evs)-1].Pos
	}
	switch {
	case snap.Pos < end:
		return partyOpening{}, false, nil // a last the log never reached
	case snap.Pos > end && e.cfg.Locations != nil:
		more, far, err := e.partyLogAfter(ctx, sr, p, end, 0)
		if err != nil || far {
			return partyOpening{}, false, err
		}
		o.backlog = append(o.backlog, more...)
	}
	e.partyPositions(ctx, snap.Orders, &o)
	return o, true, nil
}

// partyLogAfter reads the party's log after last for a stream that has last: every event after
// it, or, when there are more than Config.PartyBacklog, none and far. A stream that far behind is
// sent a fresh snapshot instead (freshParty), whether it resumes or catches up a
// gap: no read of the log holds more than the bound. So is one whose events after last were
// purged with their ended orders (ordercast.ErrLogPurged, or a hole in the positions read): the
// log no longer holds what it missed, such as the end of an order it still shows. Where the log
// stands is read first: a stream days behind learns it from two lookups by key, not from a read
// of the bound's worth of entries and their events, all then thrown away (a kitchen's screen
// back after a weekend, on every reconnect). The read of the entries checks both again, for what
// was committed or purged in between.
//
// So is a stream whose log went back under it: a database restored from a copy, or a failover
// to a standby that had not yet received the last commits. The log then ends before last
// (Head < last), or, once changes were made again, holds other events at the positions the
// stream was sent. A stream that knows when the event at last was committed (lastAt, in Unix
// microseconds as the stores keep it; 0 for one that does not, such as a client's resume) has
// that entry read too, and compared: the same position holding another commit means the
// stream's account of the scope is not the log's, and its next events, if taken as following
// on, would skip the changes made again at positions it took for ones it had.
func (e *Engine) partyLogAfter(ctx context.Context, sr ordercast.ScopeReader, p ordercast.Party, last, lastAt int64) (evs []ordercast.ScopedEvent, far bool, err error) {
	bounds, err := sr.ScopeLogBounds(ctx, p)
	if err != nil {
		return nil, false, fmt.Errorf("read where the log of %s stands: %w", p.Key(), err)
	}
	if last < bounds.Purged || bounds.Head-last > int64(e.cfg.PartyBacklog) || bounds.Head < last {
		return nil, true, nil
	}
	from := readFrom(last, lastAt)
	evs, err = sr.ScopeEventsAfter(ctx, p, from, e.cfg.PartyBacklog+1+int(last-from))
	if errors.Is(err, ordercast.ErrLogPurged) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the log of %s: %w", p.Key(), err)
	}
	evs, held := stillHeld(evs, last, lastAt, func(ev ordercast.ScopedEvent) (int64, ordercast.Event) { return ev.Pos, ev.Event })
	if !held {
		return nil, true, nil // another commit at last, or none: the log went back
	}
	for i, ev := range evs {
		if ev.Pos != last+int64(i)+1 {
			// Positions are commit-ordered: a hole in what a read returns is an entry deleted
			// under it, whatever the store recorded of its purges. As purged.
			return nil, true, nil
		}
	}
	if len(evs) > e.cfg.PartyBacklog {
		return nil, true, nil
	}
	return evs, false, nil
}

// partyPositions finds the newest fresh position of each of the orders that shows one, in one
// read of the positions (after subscribing, so a newer one published meanwhile
// is in the subscription's slots and replaces it).
func (e *Engine) partyPositions(ctx context.Context, orders []ordercast.Order, o *partyOpening) {
	if e.cfg.Locations == nil {
		return
	}
	var ids []string
	for _, ord := range orders {
		if ord.CourierID == "" {
			continue
		}
		if o.orders == nil {
			o.orders = make(map[string]partyOrder)
		}
		o.orders[ord.ID] = partyOrder{status: ord.Status, courier: ord.CourierID} // also for an order that shows its courier later
		if e.showsLocation(ord.Status) {
			ids = append(ids, ord.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	// The watcher judges each by the order's status and courier (orders), as it judges every
	// position.
	if ls := e.cfg.Locations.LatestMany(ctx, ids); len(ls) > 0 {
		o.locs = ls
	}
}

// openParty queues what opens a party stream: the snapshot or the backlog, then the positions,
// which never precede the statuses they are judged by.
func (w *watcher) openParty(o partyOpening) {
	w.last, w.lastAt = o.pos, 0 // when the entry at a snapshot's position was committed is not read
	for id, ord := range o.orders {
		w.rememberOrder(id, ord)
	}
	if o.snap != nil {
		w.frame(w.f.scoped(w.buf(), o.pos, api.EventSnapshot, o.snap))
	}
	w.queueScoped(o.backlog)
	w.locs = o.locs
	w.partyLocations(time.Now())
}

// queueScoped queues events read from the party's log; only the next positions are taken.
func (w *watcher) queueScoped(evs []ordercast.ScopedEvent) {
	for _, ev := range evs {
		if ev.Pos == w.last+1 {
			w.queueParty(hub.NewMessage(ev.Event), ev.Pos)
		}
	}
}

// seenBy is m as party p may read it (ordercast.Event.SeenBy): m itself, or, rarely (an order
// leaving a courier, a change another courier made), a message of its own, the shared encoding
// staying whole.
func seenBy(m *hub.Message, p ordercast.Party) *hub.Message {
	if seen := m.Event.SeenBy(p); seen != m.Event {
		return hub.NewMessage(seen)
	}
	return m
}

// queueParty queues one event of the party's log at position pos, as the party may read it.
func (w *watcher) queueParty(m *hub.Message, pos int64) {
	m = seenBy(m, w.party)
	w.frame(w.f.scoped(w.buf(), pos, api.EventName(m.Event), m.JSON))
	// Every event carries its order's status, and a courier event its courier (none, to a
	// courier it was taken from: see SeenBy).
	switch ev := m.Event; {
	case ev.Kind == ordercast.KindCourier:
		w.rememberOrder(ev.OrderID, partyOrder{status: ev.Status, courier: ev.CourierID})
	default:
		if o, ok := w.orders[ev.OrderID]; ok {
			o.status = ev.Status
			w.rememberOrder(ev.OrderID, o)
		}
	}
	w.pending++
	if w.live {
		w.liveAt = append(w.liveAt, m.Event.At)
	}
	w.last, w.lastAt = pos, m.Event.Committed()
}

// deliverParty queues the live events of a party's scope by their position in its log: a
// duplicate skipped, a hole or an overflowed mailbox filled from the log, which is the truth (or,
// more than Config.PartyBacklog behind, replaced by a fresh snapshot, as on a resume).
// Positions are contiguous and commit-ordered per party, so this is rule 2 with the party's log
// in place of the order's history.
func (w *watcher) deliverParty(ctx context.Context, msgs []*hub.Message, overflowed bool) error {
live:
	for _, m := range msgs {
		switch pos := m.Event.Marks.Pos(w.partyKey); {
		case w.recommitted(pos, m.Event):
			// The log went back under the stream: what follows is of the new one, and
			// partyLogAfter finds it so.
			overflowed = true
			break live
		case pos <= w.last:
			continue
		case pos == w.last+1:
			w.queueParty(m, pos)
		default:
			overflowed = true // a hole: catch up below
		}
	}
	if !overflowed {
		return nil
	}
	w.e.observer.CaughtUp()
	sr := w.e.store
	ctx, cancel := w.e.catchUpContext(ctx)
	defer cancel()
	missed, far, err := w.e.partyLogAfter(ctx, sr, w.party, w.last, w.lastAt)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if far {
		// As a resume that far behind: the scope as it is now replaces what the stream missed.
		o, err := w.e.freshParty(ctx, w.party)
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		w.orders = nil // the snapshot tells every active order anew
		w.openParty(o)
		return nil
	}
	w.queueScoped(missed)
	return nil
}
