// Package location takes couriers' positions in and hands them to the watchers of the orders each
// courier carries, conflated: only the newest position of an order is kept, none is queued, and
// none goes through the durable write path (DESIGN.md rule 9). It computes each order's distance
// to the drop-off and its ETA, remembers each order's newest position for streams that open later,
// and, in a cluster, sends positions to the other nodes through a Bus.
package location

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// Defaults for the tracker's tunables.
const (
	// DefaultFresh is how long a position stays worth showing: a stream that opens later gets it
	// only this long, and a page says "location lost" after about as long.
	DefaultFresh = time.Minute
	// DefaultRate and DefaultBurst bound the positions one courier may post: a phone reports every
	// few seconds; a burst lets it flush what it gathered while offline.
	DefaultRate  = 2
	DefaultBurst = 10
	// DefaultAssignmentsTTL is how long a courier's orders, once read, are reused at most. Every
	// event of a cached order (a status change, a courier assigned or taken away) drops the
	// courier's copy at once, through the tracker's all-orders subscription; the TTL only bounds
	// a copy whose events were lost to an overflow the tracker could not see. Reading the orders
	// on every post, or every second, was the bound on positions accepted a second (about 4,400
	// a second with 9,000 couriers on SQLite, against 17,000 with the copy kept).
	DefaultAssignmentsTTL = 30 * time.Second
	// maxCouriers bounds the per-courier table; past it, idle couriers are forgotten early.
	maxCouriers = 200_000
	// maxTouched bounds the orders remembered as touched while reads are in flight; past it, the
	// reads then in flight are not kept, as after an overflow.
	maxTouched = 10_000
)

// Assignments finds the orders couriers carry now: the active orders assigned to each. A store
// (ordercast.Store) is one.
type Assignments interface {
	// CouriersOrders returns each courier's active orders, keyed by courier id (one with none
	// may be left out), in one read: a batch of positions names up to a thousand couriers.
	CouriersOrders(ctx context.Context, courierIDs []string) (map[string][]ordercast.Order, error)
}

var _ Assignments = ordercast.Store(nil)

// Bus carries positions between the nodes of a cluster; nil for one node.
type Bus interface {
	// Send hands positions accepted on this node to the other nodes. It must not block on the
	// network: a bus batches and conflates.
	Send(us []ordercast.LocationUpdate)
	// Latest reads the newest position of each of the orders that has one from what outlives a
	// node, in one read however many orders are asked for (a party stream opening asks for all
	// of its orders at once).
	Latest(ctx context.Context, orderIDs []string) ([]ordercast.LocationUpdate, error)
}

var _ ordercast.LocationFeed = (*Tracker)(nil)

// Tracker accepts positions and delivers them. Create it with New, set the fields, then Open.
type Tracker struct {
	// Fresh is how old a position may be to be shown; MaxAge how old it may be when posted.
	Fresh  time.Duration
	MaxAge time.Duration
	// From is the first stage at which watchers see the courier (empty: out_for_delivery).
	From ordercast.Status
	// Rate and Burst bound each courier's posts; zero Rate turns the limit off.
	Rate  float64
	Burst int
	// AssignmentsTTL is how long a courier's orders are reused once read.
	AssignmentsTTL time.Duration
	// ETA is the model of distance and arrival.
	ETA ordercast.ETAModel
	// Bus, when set, carries positions to and from the other nodes.
	Bus    Bus
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	hub         *hub.Hub
	assignments Assignments

	mu       sync.Mutex
	orders   map[string]*orderState
	couriers map[string]*courierState
	// carriedBy is which couriers' cached orders hold an order, so that an event of the order
	// drops those copies. Usually one; two while an order changes couriers: the new courier's
	// read may be kept before the event that moved the order arrives, and the old courier's copy
	// must still go when it does.
	carriedBy map[string][]string
	// A read's copy is kept only if no event of an order it returned was handled while it ran:
	// a copy kept after its order's event was handled would never be dropped. turn counts the
	// batches of events handled; while reads are in flight (reading), touched holds the turns
	// of each order's latest event and latest leaving (see touch), and blindAt the last turn
	// when the tracker lost track of which orders events touched (an overflow, or touched
	// full). touched is emptied when no read is in flight, so only events during reads cost a
	// map entry.
	turn    uint64
	reading int
	touched map[string]touch
	blindAt uint64
	// following says the tracker follows every order's events (what makes a cached copy stale,
	// an order end or change couriers). It starts with the first post, not at Open: a node no
	// courier posts to (most of a cluster's, at times) pays nothing per event for it.
	following bool
	closed    bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// orderState is what the tracker keeps per order: the newest position as sent, and the running
// speed estimate and last fix the ETA is computed from. All of it is one courier's: the courier
// of latest (latest.Update.CourierID).
type orderState struct {
	latest *hub.Location
	// missed says latest predates a time the bus was away (MissedLocations): a newer position
	// may be in the cluster's table, so a stream that opens reads it there.
	missed bool
	speed  float64
	last   ordercast.Point
	lastAt time.Time
}

// after reports whether the kept position was judged against the order as ev left it or later:
// the new courier's, taken before the event that gave it the order reached this node. The
// tracker keeps that one when the event comes; any other predates the event (its version is
// older, or unknown), and an event of its courier moves the order away from it.
func (st *orderState) after(ev ordercast.Event) bool {
	return st.latest != nil && st.latest.Update.OrderVersion >= ev.Seq
}

// courierState is a courier's post budget and its orders as last read.
type courierState struct {
	limiter *rate.Limiter
	orders  []ordercast.Order
	readAt  time.Time
	seen    time.Time
	gen     uint64 // counts drops of orders, so a read that raced one is not kept
}

// RateLimitError is a post refused for its courier's budget (Tracker.Rate, Tracker.Burst): its
// code is ordercast.ERateLimited, and Wait is how long until the courier may post again, what an
// HTTP answer puts in Retry-After.
type RateLimitError struct {
	Err  *ordercast.Error
	Wait time.Duration
}

func (e *RateLimitError) Error() string { return e.Err.Error() }
func (e *RateLimitError) Unwrap() error { return e.Err }

// New returns a tracker that delivers through h to the orders a finds, with the defaults.
func New(h *hub.Hub, a Assignments) *Tracker {
	return &Tracker{
		Fresh: DefaultFresh, MaxAge: ordercast.DefaultLocationMaxAge,
		Rate: DefaultRate, Burst: DefaultBurst, AssignmentsTTL: DefaultAssignmentsTTL,
		ETA: ordercast.DefaultETAModel,
		hub: h, assignments: a,
	}
}

// Validate reports the first tunable out of range, as an *ordercast.SettingError named as
// `ordercast serve`'s flag for it (the ETA model's other numbers, which no flag sets, as
// "eta-…"). Open calls it; a command may call it before it has a hub to make the tracker with.
func (t *Tracker) Validate() error {
	bad := ordercast.BadSetting
	e := t.ETA
	switch {
	case t.Fresh <= 0:
		return bad("location-fresh", "must be positive, got %s", t.Fresh)
	case t.MaxAge <= 0:
		return bad("location-max-age", "must be positive, got %s", t.MaxAge)
	case t.From != "" && !ordercast.ShowsLocation(t.From, t.From):
		return bad("location-from", "must be a stage from confirmed to out_for_delivery, got %q", t.From)
	// A NaN rate would pass "< 0" and then never refuse; an infinite one is no limit.
	case !ordercast.Finite(t.Rate) || t.Rate < 0:
		return bad("location-rate", "must be a finite number, not negative (0: no limit), got %v", t.Rate)
	case t.Burst < 0:
		return bad("location-burst", "must not be negative, got %d", t.Burst)
	case t.AssignmentsTTL < 0:
		return bad("location-assignments-ttl", "must not be negative, got %s", t.AssignmentsTTL)
	case !ordercast.Finite(e.NearbyM) || e.NearbyM < 0:
		return bad("nearby-radius", "must be a finite number of metres, not negative, got %v", e.NearbyM)
	case !ordercast.Finite(e.RouteFactor) || e.RouteFactor <= 0:
		return bad("eta-route-factor", "must be a finite number above 0, got %v", e.RouteFactor)
	// The estimate divides by a speed held between these two: 0 would make it infinite.
	case !ordercast.Finite(e.MinSpeedMPS) || e.MinSpeedMPS <= 0:
		return bad("eta-min-speed", "must be a finite number above 0, got %v", e.MinSpeedMPS)
	case !ordercast.Finite(e.MaxSpeedMPS) || e.MaxSpeedMPS < e.MinSpeedMPS:
		return bad("eta-max-speed", "must be a finite number, at least eta-min-speed (%v), got %v", e.MinSpeedMPS, e.MaxSpeedMPS)
	case !ordercast.Finite(e.TypicalSpeedMPS) || e.TypicalSpeedMPS < 0:
		return bad("eta-typical-speed", "must be a finite number, not negative (0: eta-min-speed), got %v", e.TypicalSpeedMPS)
	case e.FloorS < 0 || e.CeilingS < e.FloorS:
		return bad("eta-ceiling", "must be at least the floor, and the floor not negative, got floor %d, ceiling %d", e.FloorS, e.CeilingS)
	case !ordercast.Finite(e.Smoothing) || e.Smoothing <= 0 || e.Smoothing > 1:
		return bad("eta-smoothing", "must be a number above 0, at most 1, got %v", e.Smoothing)
	}
	return nil
}

// Open validates the configuration (Validate) and starts the sweeper that forgets stale
// positions and idle couriers. The tracker follows the orders' events from the first post on
// (see follow).
func (t *Tracker) Open() error {
	if t.hub == nil || t.assignments == nil {
		return errors.New("location: a hub and assignments are required")
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("location: %w", err)
	}
	if t.Logger == nil {
		t.Logger = slog.New(slog.DiscardHandler)
	}
	t.orders = make(map[string]*orderState)
	t.couriers = make(map[string]*courierState)
	t.carriedBy = make(map[string][]string)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Go(t.sweep)
	return nil
}

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
	events := t.hub.SubscribeAll()
	t.wg.Go(func() { t.followEvents(events) })
}

// followEvents drops a courier's cached orders when one of them changes (its status, or its
// courier), and the new courier's too, so the next post reads them afresh; after an overflow,
// when it cannot know which changed, it drops every copy. An order that ends or changes
// couriers is also forgotten: its position, last fix and speed were the old courier's, and no
// later stream on this node may be shown them (nor may the new courier's ETA start from them);
// unless they are the new courier's already (orderState.after).
func (t *Tracker) followEvents(events *hub.Subscription) {
	defer events.Close()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-events.Ready():
		}
		msgs, overflowed := events.Take()
		t.mu.Lock()
		t.turn++
		if overflowed {
			for id, c := range t.couriers {
				t.dropOrders(id, c)
			}
			t.blindAt = t.turn
		}
		for _, m := range msgs {
			ev := m.Event
			if t.reading > 0 {
				t.touch(ev.OrderID, leaves(ev), ev.Seq)
			}
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
		t.mu.Unlock()
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

// Close stops the sweeper and the following of events.
func (t *Tracker) Close() error {
	if t.cancel != nil {
		t.mu.Lock()
		t.closed = true // no follow starts after the Wait below
		t.mu.Unlock()
		t.cancel()
		t.wg.Wait()
	}
	return nil
}

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

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
// refused (nothing changed for it).
type PostResult struct {
	Orders int
	Err    error
}

// PostMany is Post for many positions, each judged alone and in order, exactly as Post judges
// one; the result i is position i's. The positions share the work: one lock turn charges the
// couriers' budgets, finds their kept copies of their orders and folds every position in; when
// copies are missing, the lock is let go for one read of the store that fetches them all (every
// such courier's at once); and in a cluster one Bus.Send carries them all. A position without
// At is stamped with the time it arrived, in ps (see arrivalStep).
func (t *Tracker) PostMany(ctx context.Context, ps []CourierPosition) []PostResult {
	now := t.now()
	res := make([]PostResult, len(ps))
	// held[i] is position i's courier's copy of its orders, when one was kept.
	held := make([][]ordercast.Order, len(ps))
	ok := make([]bool, len(ps))
	for i := range ps {
		if ps[i].At.IsZero() {
			ps[i].At = now.Add(time.Duration(i) * arrivalStep)
		}
		if res[i].Err = ps[i].Validate(now, t.MaxAge); res[i].Err == nil {
			ok[i] = true
		}
	}
	// The couriers whose orders must be read, each once, with the generation of their copy;
	// made at the first miss (most posts find their courier's copy kept).
	var reads map[string]*courierRead
	var readTurn uint64 // t.turn when the reads began
	// tokens[i] is what position i took of its courier's budget when its courier's orders are
	// read: a read that fails gives it back.
	var tokens []*rate.Reservation
	t.mu.Lock()
	for i, p := range ps {
		if !ok[i] {
			continue
		}
		var cached bool
		var token *rate.Reservation
		cached, token, res[i].Err = t.charge(p.CourierID, now)
		if token != nil {
			if tokens == nil {
				tokens = make([]*rate.Reservation, len(ps))
			}
			tokens[i] = token
		}
		switch {
		case res[i].Err != nil:
			ok[i] = false
		case cached:
			held[i] = t.couriers[p.CourierID].orders
		case reads[p.CourierID] == nil:
			if reads == nil {
				reads = make(map[string]*courierRead)
			}
			c := t.couriers[p.CourierID]
			reads[p.CourierID] = &courierRead{c: c, gen: c.gen}
		}
	}
	var read map[string][]ordercast.Order
	var readErr error
	if reads != nil {
		// The lock is let go for the read: from here on the events handled are recorded (see
		// touch), and what was taken above, read or kept, is judged against them below.
		readTurn = t.turn
		t.reading++
		t.mu.Unlock()
		ids := make([]string, 0, len(reads))
		for cid := range reads {
			ids = append(ids, cid)
		}
		if read, readErr = t.assignments.CouriersOrders(ctx, ids); readErr != nil {
			readErr = fmt.Errorf("read the couriers' orders: %w", readErr)
		}
		t.mu.Lock()
	}
	var sent []*hub.Location
	for i, p := range ps {
		if !ok[i] {
			continue
		}
		carried := held[i]
		if reads[p.CourierID] != nil {
			if readErr != nil {
				// The store failed, not the courier: its retry must not be refused for the
				// budget this post spent. At now, the time it was taken, for CancelAt gives
				// back only a reservation whose time has not passed.
				if tokens != nil && tokens[i] != nil {
					tokens[i].CancelAt(now)
				}
				res[i].Err = readErr
				continue
			}
			carried = read[p.CourierID]
		}
		for _, o := range carried {
			if !ordercast.ShowsLocation(o.Status, t.From) {
				continue // never before the stage that shows the courier, never after the end
			}
			// None reaches an order that left the courier (ended, or went to another) while
			// the lock was let go: a kept copy may be older than that, and so may a read. A copy
			// that already shows the event (the read of a courier the order just went to) may.
			if reads != nil && t.leftSince(o, readTurn) {
				continue
			}
			if l := t.update(o, p.Position); l != nil {
				sent = append(sent, l)
				res[i].Orders++
			}
		}
	}
	if reads != nil {
		t.keep(reads, read, readErr, readTurn, now) // after overtaken: it may end the record of events
	}
	t.mu.Unlock()
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
	return res
}

// arrivalStep is how far apart PostMany stamps the positions of one request that come without
// their time, in request order: they arrived one after another, and of one courier's the later
// must win as it does posted alone. Stamping them apart keeps that rule where it is, in
// LocationUpdate.Replaces (of one courier's positions the later fix wins), everywhere a position
// goes (a node's memory, watchers' slots, the cluster's batches and table); the same time for all
// had the first win. A microsecond, not a nanosecond: PostgreSQL keeps microseconds, and a
// thousand positions still end a millisecond after now, far within LocationClockSkew.
const arrivalStep = time.Microsecond

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

// keep ends a PostMany's read, begun at turn, and keeps each courier's orders read unless an
// event may have overtaken them: one that dropped the courier's orders (an order assigned to
// it), one of an order read, or one the tracker lost track of. Its PostMany uses what of the
// read no event overtook either way. Called with t.mu held.
func (t *Tracker) keep(reads map[string]*courierRead, read map[string][]ordercast.Order, err error, turn uint64, now time.Time) {
	if err == nil {
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

// update folds p into the order's state and returns the position to send, or nil when it does
// not replace the one kept (ordercast.LocationUpdate.Replaces): a fix older than the one already
// sent (phones flush backlogs out of order), or one judged against a copy of the order from
// before it went to the courier of the kept position (the copy of the old courier, kept until
// the event that moved the order reaches this node). Called with t.mu held.
func (t *Tracker) update(o ordercast.Order, p ordercast.Position) *hub.Location {
	u := ordercast.LocationUpdate{
		OrderID: o.ID, CourierID: o.CourierID, OrderVersion: o.Version, Lat: p.Lat, Lng: p.Lng,
		AccuracyM: p.AccuracyM, Heading: p.Heading, SpeedMPS: p.SpeedMPS, At: p.At.UTC(),
	}
	st := t.orders[o.ID]
	if st != nil && st.latest != nil && !u.Replaces(st.latest.Update) {
		return nil
	}
	if st == nil || st.latest != nil && st.latest.Update.CourierID != o.CourierID {
		// A new courier starts afresh: the old one's last fix and speed say nothing of it.
		st = &orderState{}
		t.orders[o.ID] = st
	}
	sample := -1.0 // none
	since := p.At.Sub(st.lastAt)
	apart := st.lastAt.IsZero() || since >= minSpeedInterval
	switch {
	case p.SpeedMPS != nil:
		sample = *p.SpeedMPS
	case !st.lastAt.IsZero() && apart:
		sample = ordercast.DistanceM(st.last, p.Point) / since.Seconds()
	}
	st.speed = t.ETA.Speed(st.speed, sample)
	if apart { // a fix too close to the last is no place to measure the next speed from either
		st.last, st.lastAt = p.Point, p.At
	}
	for _, party := range o.Parties() {
		u.Parties = append(u.Parties, party.Key())
	}
	if o.Dropoff != nil {
		d := ordercast.DistanceM(p.Point, *o.Dropoff)
		eta, nearby := t.ETA.Estimate(d, st.speed)
		d = float64(int64(d + 0.5)) // a metre is as precise as a phone's fix
		u.DistanceM, u.ETAS, u.Nearby = &d, &eta, nearby
	}
	st.latest, st.missed = hub.NewLocation(u), false
	return st.latest
}

// charge charges a post to the courier's budget and reports whether a copy of the courier's
// orders younger than AssignmentsTTL is kept (cached); otherwise the caller reads them, and
// token is what the post took of the budget (nil without a limit), to give back if the read
// fails. Called with t.mu held.
func (t *Tracker) charge(courierID string, now time.Time) (cached bool, token *rate.Reservation, err error) {
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

// Latest returns an order's newest position, or nil: this node's, or, in a cluster, the newest
// any node sent. The stream engine asks it when a stream opens. It may be a courier's the order
// no longer has: whoever shows it checks it against the order (ordercast.ShowsPosition).
//
// It never fails: a position is extra to the status a stream or a long poll opens with, and
// must never refuse or hold that up (DESIGN.md rule 9). A read of the bus that fails or takes
// longer than busReadTimeout is logged, and this node's own position stands in, if it has one.
func (t *Tracker) Latest(ctx context.Context, orderID string) *hub.Location {
	return t.LatestMany(ctx, []string{orderID})[orderID]
}

// busReadTimeout bounds the read of the cluster's positions a stream opening waits for: well
// under a second, the least time between two positions the streams show by default.
const busReadTimeout = 250 * time.Millisecond

// LatestMany is Latest for many orders at once, keyed by order id (orders without a position are
// left out): this node's, and the rest in one read of the bus.
func (t *Tracker) LatestMany(ctx context.Context, orderIDs []string) map[string]*hub.Location {
	ls := make(map[string]*hub.Location)
	var missing []string
	// own are this node's positions of the missing orders that may be older than the cluster's
	// (missed): what stands in when the bus cannot be read.
	var own map[string]*hub.Location
	t.mu.Lock()
	for _, id := range orderIDs {
		st := t.orders[id]
		switch {
		case st == nil || st.latest == nil:
			missing = append(missing, id)
		case !st.missed || t.Bus == nil:
			ls[id] = st.latest
		default:
			missing = append(missing, id)
			if own == nil {
				own = make(map[string]*hub.Location)
			}
			own[id] = st.latest
		}
	}
	t.mu.Unlock()
	if len(missing) == 0 || t.Bus == nil {
		return ls
	}
	ctx, cancel := context.WithTimeout(ctx, busReadTimeout)
	defer cancel()
	us, err := t.Bus.Latest(ctx, missing)
	if err != nil {
		t.Logger.Warn("read the cluster's latest positions; streams open with this node's", "orders", len(missing), "err", err)
		maps.Copy(ls, own)
		return ls
	}
	for _, u := range us {
		ls[u.OrderID] = hub.NewLocation(u)
	}
	return ls
}

// ReceiveLocations takes positions the cluster's other nodes accepted (the bus hands them over):
// each becomes the order's newest if it replaces the one this node has
// (ordercast.LocationUpdate.Replaces), and goes to this node's watchers. A position it already
// holds, handed over again, changes nothing.
func (t *Tracker) ReceiveLocations(us []ordercast.LocationUpdate) {
	for _, u := range us {
		var l *hub.Location
		t.mu.Lock()
		st := t.orders[u.OrderID]
		if st == nil {
			st = &orderState{}
			t.orders[u.OrderID] = st
		}
		newer := st.latest == nil || u.Replaces(st.latest.Update)
		if newer {
			if st.latest != nil && st.latest.Update.CourierID != u.CourierID {
				*st = orderState{} // another courier: the old one's speed says nothing of it
			}
			l = hub.NewLocation(u)
			st.latest, st.missed = l, false
			st.last, st.lastAt = ordercast.Point{Lat: l.Update.Lat, Lng: l.Update.Lng}, l.Update.At
		}
		t.mu.Unlock()
		if newer {
			t.hub.PublishLocation(l)
		}
	}
}

// MissedLocations marks every position this node holds as possibly not the cluster's newest:
// until a newer one arrives, a stream that opens reads the order's position from the bus.
func (t *Tracker) MissedLocations() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.orders {
		st.missed = true
	}
}

// sweep forgets, once per Fresh interval, positions too old to show and couriers gone quiet.
func (t *Tracker) sweep() {
	tick := time.NewTicker(t.Fresh)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			now := t.now()
			t.mu.Lock()
			for id, st := range t.orders {
				if !st.latest.Fresh(now, t.Fresh) {
					delete(t.orders, id)
				}
			}
			t.forgetCouriers(now, false)
			t.mu.Unlock()
		}
	}
}

// forgetCouriers drops couriers idle for longer than a full budget takes to refill (so forgetting
// gives nothing away), or, when early, those idle for a second. Called with t.mu held.
func (t *Tracker) forgetCouriers(now time.Time, early bool) {
	idle := time.Minute
	if early {
		idle = time.Second
	}
	for id, c := range t.couriers {
		if now.Sub(c.seen) > idle {
			t.dropOrders(id, c)
			delete(t.couriers, id)
		}
	}
}
