package stream

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/hub"
)

// partySnapshotLimit bounds the orders of one party's opening snapshot. A restaurant's board
// holds tens of active orders; a party past this has its oldest active orders left out of the
// snapshot (their later events still arrive).
const partySnapshotLimit = 2000

// partyOpening is what opens a party stream: a snapshot of the scope at log position pos, or,
// on a resume, the events of the log after the client's position.
type partyOpening struct {
	snap    []byte // the encoded api.PartySnapshot; nil on a resume
	pos     int64  // the position the client has before the backlog: the snapshot's, or its own
	backlog []ordercast.ScopedEvent
}

// scopeReader is the store's reader of party logs.
func (e *Engine) scopeReader() (ordercast.ScopeReader, error) {
	sr, ok := e.store.(ordercast.ScopeReader)
	if !ok {
		return nil, fmt.Errorf("stream: the store %T cannot read party logs", e.store)
	}
	return sr, nil
}

// readParty reads what opens a party stream, after the watch subscribed: the party's log after
// last, or with last 0 (or a last the log never reached: a reset database, a forged header) a
// snapshot of the scope and the log position it was read at. Every event the snapshot does not
// hold has a higher position and reaches the stream live or from the log (rule 2).
func (e *Engine) readParty(ctx context.Context, p ordercast.Party, last int64) (partyOpening, error) {
	sr, err := e.scopeReader()
	if err != nil {
		return partyOpening{}, err
	}
	if last > 0 {
		evs, err := sr.ScopeEventsAfter(ctx, p, last, 0)
		if err != nil {
			return partyOpening{}, fmt.Errorf("read the log of %s: %w", p.Key(), err)
		}
		if len(evs) > 0 {
			return partyOpening{pos: last, backlog: evs}, nil
		}
	}
	snap, err := sr.ScopeSnapshot(ctx, p, partySnapshotLimit)
	if err != nil {
		return partyOpening{}, fmt.Errorf("read the scope of %s: %w", p.Key(), err)
	}
	if last > 0 && last <= snap.Pos {
		return partyOpening{pos: last}, nil // up to date: only live events follow
	}
	b, err := json.Marshal(api.PartySnapshot{Party: p.Key(), Pos: snap.Pos, Orders: snap.Orders})
	if err != nil {
		return partyOpening{}, fmt.Errorf("encode the snapshot of %s: %w", p.Key(), err)
	}
	return partyOpening{snap: b, pos: snap.Pos}, nil
}

// openParty queues what opens a party stream.
func (w *watcher) openParty(o partyOpening) {
	w.last = o.pos
	if o.snap != nil {
		w.frame(w.f.scoped(w.out, o.pos, api.EventSnapshot, o.snap))
	}
	w.queueScoped(o.backlog)
}

// queueScoped queues events read from the party's log; only the next positions are taken.
func (w *watcher) queueScoped(evs []ordercast.ScopedEvent) {
	for _, ev := range evs {
		if ev.Pos == w.last+1 {
			w.queueParty(hub.NewMessage(ev.Event), ev.Pos)
		}
	}
}

// queueParty queues one event of the party's log at position pos.
func (w *watcher) queueParty(m *hub.Message, pos int64) {
	w.frame(w.f.scoped(w.out, pos, api.EventName(m.Event), m.JSON))
	if m.Event.Status.Terminal() {
		w.partyEnded(m.Event.OrderID)
	}
	w.pending++
	if w.live {
		w.liveAt = append(w.liveAt, m.Event.At)
	}
	w.last = pos
}

// deliverParty queues the live events of a party's scope by their position in its log: a
// duplicate skipped, a hole or an overflowed mailbox filled from the log, which is the truth.
// Positions are contiguous and commit-ordered per party, so this is rule 2 with the party's log
// in place of the order's history.
func (w *watcher) deliverParty(ctx context.Context, msgs []*hub.Message, overflowed bool) error {
	for _, m := range msgs {
		switch pos := m.Event.Marks.Pos(w.partyKey); {
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
	sr, err := w.e.scopeReader()
	if err != nil {
		return err
	}
	missed, err := sr.ScopeEventsAfter(ctx, w.party, w.last, 0)
	if err != nil {
		return fmt.Errorf("catch up the log of %s: %w", w.partyKey, err)
	}
	w.queueScoped(missed)
	return nil
}
