package location

import (
	"slices"
	"time"

	"github.com/ordercast/ordercast"
)

// follow subscribes to every order's events, once, the first time a courier's orders are about
// to be read. Subscribing before that read is what keeps the read's copy honest: an event that
// lands after the read is on the subscription and drops the copy. The subscription is kept until
// Close: once couriers post to a node they tend to keep posting, and unsubscribing when idle would
// have to re-check this race on every resubscription. Called with t.mu held.
func (t *Tracker) follow() {
	if t.following || t.closed {
		return
	}
	t.following = true
	t.events = t.hub.SubscribeAll()
	t.wg.Go(t.followEvents)
}

// followEvents handles the orders' events as they come (handleEvents), and judges again the
// positions they call for (replayLast). A post handles the ones already published before it is
// judged too (PostMany), so that a post sent after a change was answered is judged by it
// whether or not this goroutine has run since, where the hub has an event before its change is
// answered: on SQLite (the store publishes before it answers), not on PostgreSQL (every change
// reaches the hub through the listener, after its answer; there replayLast mends it).
func (t *Tracker) followEvents() {
	defer t.events.Close()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.events.Ready():
		case <-t.kick:
		}
		t.mu.Lock()
		t.handleEvents()
		sent := t.replayLast(t.ctx)
		t.mu.Unlock()
		t.send(sent)
	}
}

// handleEvents takes the events published since the last turn and drops a courier's cached
// orders when one of them changes (its status, or its courier), and the new courier's too, so
// the next post reads them afresh; after an overflow, when it cannot know which changed, it
// drops every copy. An order that ends or changes couriers is also forgotten: its position, last
// fix and speed were the old courier's, and no later stream on this node may be shown them (nor
// may the new courier's ETA start from them); unless they are the new courier's already
// (orderState.after). Taking and handling under t.mu, by whoever comes first, keeps the events
// in publish order. Called with t.mu held.
func (t *Tracker) handleEvents() {
	if t.events == nil {
		return // not following yet: no copy is kept either
	}
	msgs, overflowed := t.events.Take()
	if len(msgs) == 0 && !overflowed {
		return
	}
	t.turn++
	if overflowed {
		for id, c := range t.couriers {
			t.dropOrders(id, c)
		}
		t.blindAt = t.turn
	}
	for _, m := range msgs {
		ev := m.Event
		t.noteReplays(ev)
		if t.reading > 0 {
			t.touch(ev.OrderID, leaves(ev), ev.Seq)
		}
		t.noteZone(ev)
		// A clone: dropOrders edits the list in place.
		for _, id := range slices.Clone(t.carriedBy[ev.OrderID]) {
			t.dropOrders(id, t.couriers[id])
		}
		delete(t.carriedBy, ev.OrderID)
		if ev.Kind == ordercast.KindCourier && ev.CourierID != "" {
			t.dropOrders(ev.CourierID, t.couriers[ev.CourierID])
		}
		if st := t.orders[ev.OrderID]; st != nil && (ev.Status.Terminal() || ev.Kind == ordercast.KindCourier && !st.after(ev)) {
			delete(t.orders, ev.OrderID)
		}
	}
}

// noteReplays notes for replayLast the couriers whose order a status event makes show them (and
// the order), and whose last position on this node was posted after the change was made. Such a
// post was judged by a copy of the courier's orders from before the change (on PostgreSQL a node
// hears of a change after it is answered, and a courier's app posts the moment its pickup is) and
// missed the order; judged again, it reaches the customer now, not at the courier's next post,
// seconds later. The couriers are those whose copies hold the order (carriedBy): the order was
// theirs before they posted, so a replay never shows a position from before its courier had the
// order; nor one posted before the stage that shows it (but for the clocks, below).
//
// The change's time is the database's clock as its writer reckons it, stamped before the commit
// (postgres' dbClock), the post's arrival this node's clock, after the commit was answered: on
// one machine the post always comes later. Between machines the clocks differ by what NTP
// leaves, milliseconds: a node whose clock runs behind may take a post for earlier than the
// change (it is not judged again, and the courier's next post reaches the order, as before there
// were replays); one whose clock runs ahead by d may take a post made up to d before the change
// for later, and show a position from that moment before the pickup, at the restaurant (one its
// sender dated more than LocationClockSkew before the change is not shown: predates).
// Called with t.mu held.
func (t *Tracker) noteReplays(ev ordercast.Event) {
	if ev.Kind != ordercast.KindStatus || !t.ShowsLocation(ev.Status) {
		return
	}
	for _, id := range t.carriedBy[ev.OrderID] {
		if c := t.couriers[id]; c != nil && c.last != nil && c.lastArrived.After(ev.At) {
			if t.replays[id] == nil {
				t.replays[id] = make(map[string]bool)
			}
			t.replays[id][ev.OrderID] = true
			t.wake()
		}
	}
}

// wake wakes followEvents to judge the replays noted (replayLast).
func (t *Tracker) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// touch is what the tracker recorded of an order's events while reads were in flight: the turn
// of the latest, and of the latest that made the order leave its courier (leaves), with that
// event's seq, which a copy of the order read at that version or later has already seen.
type touch struct {
	any, left uint64
	leftSeq   int64
}

// leaves reports whether an event takes its order away from the courier it had: the order ended,
// or changed couriers. A position of that courier must never reach it after the event.
func leaves(ev ordercast.Event) bool {
	return ev.Kind == ordercast.KindCourier || ev.Status.Terminal()
}

// touch records an event of the order for the reads in flight. Called with t.mu held.
func (t *Tracker) touch(orderID string, left bool, seq int64) {
	if len(t.touched) >= maxTouched {
		t.touched, t.blindAt = nil, t.turn
		return
	}
	if t.touched == nil {
		t.touched = make(map[string]touch)
	}
	tc := t.touched[orderID]
	tc.any = t.turn
	if left {
		tc.left, tc.leftSeq = t.turn, max(tc.leftSeq, seq)
	}
	t.touched[orderID] = tc
}

// dropOrders forgets courier id's cached orders. Called with t.mu held; c may be nil.
func (t *Tracker) dropOrders(id string, c *courierState) {
	if c == nil {
		return
	}
	for _, o := range c.orders {
		if ids := slices.DeleteFunc(t.carriedBy[o.ID], func(cid string) bool { return cid == id }); len(ids) > 0 {
			t.carriedBy[o.ID] = ids
		} else {
			delete(t.carriedBy, o.ID)
		}
	}
	c.orders, c.readAt = nil, time.Time{}
	c.gen++
}

// overtaken reports whether an event of the order was handled after turn, or may have been (the
// tracker lost track of which orders events touched since). Called with t.mu held, while a read
// begun at turn is in flight (counted in t.reading), so that the events are being recorded.
func (t *Tracker) overtaken(orderID string, turn uint64) bool {
	return t.blindAt > turn || t.touched[orderID].any > turn
}

// leftSince reports whether the copy o of an order may predate an event, handled after turn,
// that took the order away from its courier (leaves): one with a seq past the copy's version, or
// one the tracker lost track of. Called as overtaken is.
func (t *Tracker) leftSince(o ordercast.Order, turn uint64) bool {
	tc := t.touched[o.ID]
	return t.blindAt > turn || tc.left > turn && tc.leftSeq > o.Version
}
