package location

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// RateLimitError is a post refused for its courier's budget (Tracker.Rate, Tracker.Burst): its
// code is ordercast.ERateLimited, and Wait is how long until the courier may post again, what an
// HTTP answer puts in Retry-After.
type RateLimitError struct {
	Err  *ordercast.Error
	Wait time.Duration
}

func (e *RateLimitError) Error() string { return e.Err.Error() }

func (e *RateLimitError) Unwrap() error { return e.Err }

// Post accepts a courier's position and hands it to the watchers of every order the courier
// carries that shows its courier now. It returns how many orders it reached. Bad input is
// EInvalidLocation and a courier over its budget ERateLimited, with nothing changed. It is
// PostMany of one position.
func (t *Tracker) Post(ctx context.Context, courierID string, p ordercast.Position) (int, error) {
	r := t.PostMany(ctx, []CourierPosition{{CourierID: courierID, Position: p}})[0]
	return r.Orders, r.Err
}

// CourierPosition is one position of PostMany: whose, and where.
type CourierPosition struct {
	CourierID string
	ordercast.Position
}

// PostResult is what became of one position of PostMany: the orders it reached, or why it was
// refused (nothing changed for it). A position taken that reached no order says why in Missed.
type PostResult struct {
	Orders int
	Missed Missed
	Err    error
	// Budgeted says its courier's budget judged it: took it, or refused it (rate_limited). A
	// position refused before (its numbers, its time) cost its courier nothing, which a caller
	// that charges something else for it needs to know.
	Budgeted bool
}

// Missed is why a position taken reached no order: what a courier's app (or its developer) needs
// to tell "keep posting" from "my clock is off". Its values are the API's words for it.
type Missed string

const (
	// MissedNoOrderShown: none of the courier's orders is at the stage that shows its courier
	// (out for delivery, or --location-from), or it carries none.
	MissedNoOrderShown Missed = "no_order_shows_courier"
	// MissedNewerTaken: an order it would reach shows a newer fix of the courier already (a fix
	// sent out of order, or after one whose clock ran ahead).
	MissedNewerTaken Missed = "newer_fix_taken"
	// MissedCoarse: the fix is coarse (CoarseM) and waits behind an order's recent fine one.
	MissedCoarse Missed = "coarse_fix_held"
	// MissedStopped: an order that would show the courier has not changed for StopAfter (out for
	// delivery for hours: most often one its courier never marked delivered).
	MissedStopped Missed = "order_stopped_showing"
	// MissedBeforeChange: the fix was taken before the order's last change (its pickup, its
	// assignment to the courier), more than LocationClockSkew before it: where the courier was
	// before it had the order, or before it took the food, is not the order's to show. A fix
	// taken now goes through.
	MissedBeforeChange Missed = "fix_before_order_change"
	// MissedPrivate: the fix is near the drop-off of another customer's order the courier
	// carries, or carried until minutes ago, or that order has no drop-off to keep it away from
	// (Tracker.PrivacyM): it reaches that order alone, and the courier's other customers see it
	// again once it is away from that door.
	MissedPrivate Missed = "near_another_customer"
)

// shownAlready is what update says of a fix the order shows already (a retry of a post whose
// answer was lost): reached, not sent again. Never a PostResult's Missed.
const shownAlready Missed = "shown_already"

// misses are the reasons a position may miss, from the least particular to the fix to the most:
// of a courier's several orders, the most particular wins, a coarse one held, then a newer one
// taken, then one measured before an order's change, then one kept from an order for another
// customer's sake, then an order that stopped showing the courier, then no order shown at all.
var misses = []Missed{MissedNoOrderShown, MissedStopped, MissedPrivate, MissedBeforeChange, MissedNewerTaken, MissedCoarse}

// Misses returns the reasons a position may miss, from the least particular to the most (what
// the API's description lists).
func Misses() []Missed { return slices.Clone(misses) }

// particular is each of misses' rank.
var particular = func() map[Missed]int {
	m := make(map[Missed]int, len(misses))
	for i, why := range misses {
		m[why] = i
	}
	return m
}()

// PostMany is Post for many positions, each judged alone and in order, exactly as Post judges
// one; the result i is position i's. The positions share the work: one lock turn charges the
// couriers' budgets, finds their kept copies of their orders and folds every position in; when
// copies are missing, the lock is let go for one read of the store that fetches them all (every
// such courier's at once); and in a cluster one Bus.Send carries them all. A position without
// At is stamped with the time it arrived, in ps (see arrivalStep).
func (t *Tracker) PostMany(ctx context.Context, ps []CourierPosition) []PostResult {
	p := newPosting(ps, t.now(), t.MaxAge)
	t.mu.Lock()
	// The events published before this post came (on SQLite, a pickup or an assignment the
	// courier's app was just answered, a delivery; on PostgreSQL those the listener has passed
	// on) judge it, though the goroutine that follows them may not have run since: a copy of
	// the courier's orders they make stale is not used.
	t.handleEvents()
	t.charge(p)
	if p.reads != nil {
		for _, cp := range p.ps {
			t.posting[cp.CourierID]++
		}
		t.readMissing(ctx, p)
	}
	sent := t.fold(p)
	if p.reads != nil {
		t.keep(p) // after fold: it may end the record of events
	}
	t.remember(p)
	t.mu.Unlock()
	t.send(sent)
	return p.res
}

// send hands positions to this node's watchers and, in a cluster, to the other nodes.
func (t *Tracker) send(sent []*hub.Location) {
	for _, l := range sent {
		t.hub.PublishLocation(l)
	}
	if t.Bus != nil && len(sent) > 0 {
		us := make([]ordercast.LocationUpdate, len(sent))
		for i, l := range sent {
			us[i] = l.Update
		}
		t.Bus.Send(us)
	}
}

// remember keeps each courier's newest position PostMany accepted, for replayLast. A courier
// judged by the events handled, its lock held throughout, needs no replay of an earlier
// position; one whose post let the lock go for a read may have been judged by a copy from before
// an event noted meanwhile (one kept of it, taken before the read), and keeps the replay, which
// replayLast left to this post (posting) and which now judges its newest position. Called with
// t.mu held.
func (t *Tracker) remember(p *posting) {
	for i, cp := range p.ps {
		if p.reads != nil {
			if t.posting[cp.CourierID]--; t.posting[cp.CourierID] == 0 {
				delete(t.posting, cp.CourierID)
			}
		}
		if !p.ok[i] || p.res[i].Err != nil {
			continue
		}
		if p.reads == nil {
			delete(t.replays, cp.CourierID)
		}
		if c := t.couriers[cp.CourierID]; c != nil && (c.last == nil || cp.At.After(c.last.At)) {
			pos := cp.Position
			c.last, c.lastArrived, c.lastStamped = &pos, p.now, p.stamped[i]
		}
	}
	if p.reads != nil && len(t.replays) > 0 {
		t.wake()
	}
}

// replayLast judges again the last position of each courier noted by noteReplays, for the orders
// noted, as a post of it would be judged now (its courier's orders read afresh), but charged to
// no budget and answered to no one: it reaches those it missed, and none it reached already
// (LocationUpdate.Replaces). Called with t.mu held, which it lets go for the read.
func (t *Tracker) replayLast(ctx context.Context) []*hub.Location {
	if len(t.replays) == 0 {
		return nil
	}
	var ps []CourierPosition
	now := t.now()
	only := make(map[string]map[string]bool, len(t.replays))
	for id, orders := range t.replays {
		if t.posting[id] > 0 {
			continue // left to the post in flight (see remember)
		}
		delete(t.replays, id)
		only[id] = orders
		// A position older than a post may be is not sent as news (a listener that caught up
		// on minutes of events).
		if c := t.couriers[id]; c != nil && c.last != nil && now.Sub(c.last.At) <= t.MaxAge {
			ps = append(ps, CourierPosition{CourierID: id, Position: *c.last})
		}
	}
	if len(ps) == 0 {
		return nil
	}
	p := postingOf(ps, now)
	p.reads, p.only = make(map[string]*courierRead, len(ps)), only
	for i, cp := range ps {
		c := t.couriers[cp.CourierID]
		p.ok[i], p.reads[cp.CourierID], p.stamped[i] = true, &courierRead{c: c, gen: c.gen}, c.lastStamped
	}
	// Bounded: a store that hangs must not hold up the following of events behind it.
	ctx, cancel := context.WithTimeout(ctx, replayReadTimeout)
	defer cancel()
	t.readMissing(ctx, p)
	sent := t.fold(p)
	t.keep(p)
	if p.readErr != nil {
		// The couriers' next posts reach their orders; the store's outage is told elsewhere.
		t.Logger.Debug("judge again the last positions of couriers an event called for", "couriers", len(ps), "err", p.readErr)
	}
	return sent
}

// replayReadTimeout bounds replayLast's read of the couriers' orders.
const replayReadTimeout = 2 * time.Second

// posting is one PostMany as it goes: its positions, each one's result so far, and what was kept
// or read of each one's courier's orders.
type posting struct {
	ps  []CourierPosition
	now time.Time
	res []PostResult
	ok  []bool // ok[i]: position i is still being judged
	// stamped[i]: position i came without its time and was stamped with its arrival: measured
	// now, on this node's clock (predates does not judge it).
	stamped []bool
	// held[i] is position i's courier's copy of its orders, when one was kept.
	held [][]ordercast.Order
	// reads are the couriers whose orders must be read, each once, with the generation of their
	// copy; made at the first miss (most posts find their courier's copy kept).
	reads map[string]*courierRead
	// tokens[i] is what position i took of its courier's budget when its courier's orders are
	// read: a read that fails gives it back.
	tokens []*rate.Reservation
	// only, for a replay (replayLast), are the orders each courier's position may reach.
	only map[string]map[string]bool
	// The read of reads: the orders of each courier, or why it failed, begun at t.turn readTurn.
	read     map[string][]ordercast.Order
	readErr  error
	readTurn uint64
}

// postingOf is a posting of ps at now, with each position's results to fill, none judged yet.
func postingOf(ps []CourierPosition, now time.Time) *posting {
	return &posting{ps: ps, now: now, res: make([]PostResult, len(ps)), ok: make([]bool, len(ps)),
		held: make([][]ordercast.Order, len(ps)), stamped: make([]bool, len(ps))}
}

// newPosting stamps the positions without a time (see arrivalStep), keeps every time to
// atPrecision, and judges each alone.
func newPosting(ps []CourierPosition, now time.Time, maxAge time.Duration) *posting {
	p := postingOf(ps, now)
	for i := range ps {
		if ps[i].At.IsZero() {
			ps[i].At, p.stamped[i] = now.Add(time.Duration(i)*arrivalStep), true
		}
		ps[i].At = ps[i].At.Truncate(atPrecision)
		if p.res[i].Err = ps[i].Validate(now, maxAge); p.res[i].Err == nil {
			p.ok[i] = true
		}
	}
	return p
}

// charge charges each position still judged to its courier's budget and finds its courier's kept
// orders, or notes the courier's for the read. Called with t.mu held.
func (t *Tracker) charge(p *posting) {
	for i, cp := range p.ps {
		if !p.ok[i] {
			continue
		}
		cached, token, err := t.chargeCourier(cp.CourierID, p.now)
		p.res[i].Err, p.res[i].Budgeted = err, true
		if token != nil {
			if p.tokens == nil {
				p.tokens = make([]*rate.Reservation, len(p.ps))
			}
			p.tokens[i] = token
		}
		switch {
		case err != nil:
			p.ok[i] = false
		case cached:
			p.held[i] = t.couriers[cp.CourierID].orders
		case p.reads[cp.CourierID] == nil:
			if p.reads == nil {
				p.reads = make(map[string]*courierRead)
			}
			c := t.couriers[cp.CourierID]
			p.reads[cp.CourierID] = &courierRead{c: c, gen: c.gen}
		}
	}
}

// readMissing reads the orders of the couriers charge found no kept copy of, in one read of the
// store. Called with t.mu held, which it lets go for the read: from then on the events handled
// are recorded (see touch), and what was taken, read or kept, is judged against them in fold.
func (t *Tracker) readMissing(ctx context.Context, p *posting) {
	p.readTurn = t.turn
	t.reading++
	t.mu.Unlock()
	ids := make([]string, 0, len(p.reads))
	for cid := range p.reads {
		ids = append(ids, cid)
	}
	if p.read, p.readErr = t.assignments.CouriersOrders(ctx, ids); p.readErr != nil {
		p.readErr = fmt.Errorf("read the couriers' orders: %w", p.readErr)
	}
	t.mu.Lock()
	t.handleEvents() // those published during the read, recorded for fold and keep (touch)
}

// fold folds each position still judged into the orders its courier carries that show it now,
// and returns the positions to send. Called with t.mu held.
func (t *Tracker) fold(p *posting) []*hub.Location {
	var sent []*hub.Location
	for i, cp := range p.ps {
		if !p.ok[i] {
			continue
		}
		carried := p.held[i]
		if p.reads[cp.CourierID] != nil {
			if p.readErr != nil {
				// The store failed, not the courier: its retry must not be refused for the
				// budget this post spent. At now, the time it was taken, for CancelAt gives
				// back only a reservation whose time has not passed.
				if p.tokens != nil && p.tokens[i] != nil {
					p.tokens[i].CancelAt(p.now)
				}
				p.res[i].Err = p.readErr
				continue
			}
			carried = p.read[cp.CourierID]
		}
		missed := MissedNoOrderShown
		zones := t.zonesOf(cp.CourierID, cp.Position, p.now)
		for _, o := range carried {
			if p.only != nil && !p.only[cp.CourierID][o.ID] {
				continue
			}
			if !t.ShowsLocation(o.Status) {
				continue // never before the stage that shows the courier, never after the end
			}
			if t.stopped(o, p.now) {
				missed = mostParticular(missed, MissedStopped)
				continue
			}
			if t.private(cp.Point, o, carried, zones, p.now) {
				missed = mostParticular(missed, MissedPrivate)
				continue
			}
			if !p.stamped[i] && t.predates(cp.Position, o) {
				missed = mostParticular(missed, MissedBeforeChange)
				continue
			}
			// None reaches an order that left the courier (ended, or went to another) while
			// the lock was let go: a kept copy may be older than that, and so may a read. A copy
			// that already shows the event (the read of a courier the order just went to) may.
			if p.reads != nil && t.leftSince(o, p.readTurn) {
				continue
			}
			l, why := t.update(o, cp.Position)
			if why == shownAlready {
				p.res[i].Orders++
				continue
			}
			if l == nil {
				missed = mostParticular(missed, why)
				continue
			}
			sent = append(sent, l)
			p.res[i].Orders++
		}
		if p.res[i].Orders == 0 {
			p.res[i].Missed = missed
		}
	}
	return sent
}

// stopped reports whether order o, which shows its courier by its stage, has gone StopAfter
// without a change at now, and so no longer does. Every order a store reads has its time of last
// change; one without (made by hand, in a test) is not judged.
func (t *Tracker) stopped(o ordercast.Order, now time.Time) bool {
	return t.StopAfter > 0 && !o.UpdatedAt.IsZero() && now.Sub(o.UpdatedAt) > t.StopAfter
}

// predates reports whether fix p, dated by its sender, was measured before the change that made
// order o show its courier (the order reaching the stage that shows it, the pickup by default,
// or its assignment to this courier), give or take LocationClockSkew for the sender's clock and
// the change's stamp: where the courier was before it had the order, or before it took the food,
// is not shown to the order's customer: a backlog an app flushes after a tunnel, a new courier's
// fix from its last round, near another customer's door. The courier's fixes measured after it
// reach the order. That change is o's last while o is at the stage that shows it (only a
// reassignment may follow); an order past it (with an earlier --location-from) changed since, and
// is not judged, nor is one without its time of last change (made by hand, in a test). A
// position without its time, stamped on arrival (posting.stamped), is never judged: it was
// measured now, and the change's stamp is on the database's clock, which may differ from the
// node's (postgres' dbClock).
func (t *Tracker) predates(p ordercast.Position, o ordercast.Order) bool {
	return o.Status == ordercast.LocationFrom(t.From) && !o.UpdatedAt.IsZero() &&
		p.At.Before(o.UpdatedAt.Add(-ordercast.LocationClockSkew))
}

// mostParticular is the more particular of two reasons a position missed (particular).
func mostParticular(a, b Missed) Missed {
	if particular[b] > particular[a] {
		return b
	}
	return a
}

// arrivalStep is how far apart PostMany stamps the positions of one request that come without
// their time, in request order: they arrived one after another, and of one courier's the later
// must win as it does posted alone. Stamping them apart keeps that rule where it is, in
// LocationUpdate.Replaces (of one courier's positions the later fix wins), everywhere a position
// goes (a node's memory, watchers' slots, the cluster's batches and table); the same time for all
// had the first win. A microsecond, not a nanosecond: PostgreSQL keeps microseconds, and a
// thousand positions still end a millisecond after now, far within LocationClockSkew.
const arrivalStep = time.Microsecond

// atPrecision is what a position's at is kept to: a microsecond, as every status event's at is
// (the stores stamp events in PostgreSQL's microseconds), so that a client reads both kinds of
// time in one form, and a position carries the time PostgreSQL's table of positions compares.
// Stamps arrivalStep apart stay apart at it.
const atPrecision = time.Microsecond

// minSpeedInterval is the least time between two fixes whose distance makes a speed sample.
// Closer fixes measure the phone's error (a few metres over a fraction of a second reads as a
// sprint) or no time at all: positions of one request without at are stamped arrivalStep apart.
const minSpeedInterval = 500 * time.Millisecond

// courierRead is a courier whose orders a PostMany reads, and the generation of its copy when
// the read began.
type courierRead struct {
	c   *courierState
	gen uint64
}

// keep ends p's read, begun at p.readTurn, and keeps each courier's orders read unless an
// event may have overtaken them: one that dropped the courier's orders (an order assigned to
// it), one of an order read, or one the tracker lost track of. p uses what of the
// read no event overtook either way. Called with t.mu held.
func (t *Tracker) keep(p *posting) {
	reads, read, turn, now := p.reads, p.read, p.readTurn, p.now
	if p.readErr == nil {
		for cid, rd := range reads {
			// Any event overtaking it makes a copy stale (a status it holds moved on).
			if rd.c.gen == rd.gen && !slices.ContainsFunc(read[cid], func(o ordercast.Order) bool { return t.overtaken(o.ID, turn) }) {
				rd.c.orders, rd.c.readAt = read[cid], now
				for _, o := range read[cid] {
					if !slices.Contains(t.carriedBy[o.ID], cid) {
						t.carriedBy[o.ID] = append(t.carriedBy[o.ID], cid)
					}
				}
			}
		}
	}
	if t.reading--; t.reading == 0 {
		t.touched = nil
	}
}

// update folds p into the order's state and returns the position to send, or nil, and why, when
// it does not replace the one kept (ordercast.LocationUpdate.Replaces): a fix older than the one
// already sent (phones flush backlogs out of order), or one judged against a copy of the order
// from before it went to the courier of the kept position (the copy of the old courier, kept
// until the event that moved the order reaches this node); or when it is a coarse fix held
// behind a fine one; or shownAlready for the very fix kept. Called with t.mu held.
func (t *Tracker) update(o ordercast.Order, p ordercast.Position) (*hub.Location, Missed) {
	u := ordercast.LocationUpdate{
		OrderID: o.ID, CourierID: o.CourierID, OrderVersion: o.Version, Lat: p.Lat, Lng: p.Lng,
		AccuracyM: p.AccuracyM, Heading: p.Heading, SpeedMPS: p.SpeedMPS, At: p.At.UTC(),
	}
	st := t.orders[o.ID]
	if st != nil && st.latest != nil && !u.Replaces(st.latest.Update) {
		if sameFix(u, st.latest.Update) {
			return nil, shownAlready
		}
		return nil, MissedNewerTaken
	}
	if st == nil || st.latest != nil && st.latest.Update.CourierID != o.CourierID {
		// A new courier starts afresh: the old one's last fix and speed say nothing of it.
		st = &orderState{}
		t.orders[o.ID] = st
	}
	coarse := t.coarse(u)
	if coarse && st.latest != nil && !t.coarse(st.latest.Update) && u.At.Sub(st.latest.Update.At) < coarseHold {
		return nil, MissedCoarse // most often the phone has a fine fix again in a moment: no jump and back
	}
	if !coarse { // a coarse fix measures no speed, nor is a place to measure the next from
		sample := -1.0 // none
		since := p.At.Sub(st.lastAt)
		apart := st.lastAt.IsZero() || since >= minSpeedInterval
		switch {
		case p.SpeedMPS != nil:
			sample = *p.SpeedMPS
		case !st.lastAt.IsZero() && apart:
			sample = ordercast.DistanceM(st.last, p.Point) / since.Seconds()
		}
		speed := t.ETA.Speed(st.speed, sample, since, p.At.Sub(st.moving))
		if st.speed <= 0 && speed > 0 {
			st.moving = p.At // the estimate begins
		}
		st.speed = speed
		if apart { // a fix too close to the last is no place to measure the next speed from either
			st.last, st.lastAt = p.Point, p.At
		}
	}
	for _, party := range o.Parties() {
		u.Parties = append(u.Parties, party.Key())
	}
	if d, carrying, ok := ordercast.Remaining(o, p.Point); ok {
		eta, nearby := t.ETA.Estimate(d, st.speed)
		d = float64(int64(d + 0.5)) // a metre is as precise as a phone's fix
		// Near the drop-off is news only with the food: before the pickup the courier may pass it.
		u.DistanceM, u.ETAS, u.Nearby = &d, &eta, nearby && carrying
	}
	st.latest, st.missed = hub.NewLocation(u), false
	if !coarse {
		st.trail.add(u)
	}
	return st.latest, ""
}

// sameFix reports whether u is the fix old is: one courier's, measured at the same moment at the
// same place. A courier's app that posts a fix again, its first post's answer lost, is answered
// as the first was (it reached the order), not told that a newer fix was taken.
func sameFix(u, old ordercast.LocationUpdate) bool {
	return u.CourierID == old.CourierID && u.At.Equal(old.At) && u.Lat == old.Lat && u.Lng == old.Lng
}

// coarse reports whether u's fix is coarse (CoarseM).
func (t *Tracker) coarse(u ordercast.LocationUpdate) bool {
	return u.AccuracyM != nil && *u.AccuracyM > t.CoarseM
}

// chargeCourier charges a post to the courier's budget and reports whether a copy of the courier's
// orders younger than AssignmentsTTL is kept (cached); otherwise the caller reads them, and
// token is what the post took of the budget (nil without a limit), to give back if the read
// fails. Called with t.mu held.
func (t *Tracker) chargeCourier(courierID string, now time.Time) (cached bool, token *rate.Reservation, err error) {
	c := t.couriers[courierID]
	if c == nil {
		if len(t.couriers) >= maxCouriers {
			t.forgetCouriers(now, true)
		}
		c = &courierState{}
		if t.Rate > 0 {
			c.limiter = rate.NewLimiter(rate.Limit(t.Rate), max(t.Burst, 1))
		}
		t.couriers[courierID] = c
	}
	c.seen = now
	t.follow()
	if c.limiter != nil {
		if tokens := c.limiter.TokensAt(now); tokens < 1 {
			// The budget refills at Rate a second: the next whole token is this far away.
			wait := time.Duration((1 - tokens) / t.Rate * float64(time.Second))
			return false, nil, &RateLimitError{
				Err:  ordercast.Errorf(ordercast.ERateLimited, "courier %s posts positions faster than %g a second", courierID, t.Rate),
				Wait: wait,
			}
		}
	}
	cached = !c.readAt.IsZero() && now.Sub(c.readAt) < t.AssignmentsTTL
	switch {
	case c.limiter == nil:
	case cached:
		c.limiter.AllowN(now, 1)
	default:
		// A token is there (the limiter is used only under t.mu): the reservation takes it
		// now, and can give it back.
		token = c.limiter.ReserveN(now, 1)
	}
	return cached, token, nil
}
