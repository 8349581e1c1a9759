// Package location takes couriers' positions in and hands them to the watchers of the orders each
// courier carries, conflated: only the newest position of an order is kept, none is queued, and
// none goes through the durable write path. It computes each order's distance
// to the drop-off and its ETA, remembers each order's newest position for streams that open later,
// and, in a cluster, sends positions to the other nodes through a Bus.
package location

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/failurelog"
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
	// DefaultCoarseM is the accuracy radius past which a fix is coarse (see Tracker.CoarseM): a
	// phone's GPS outdoors reports 3 – 20 m, one placed by Wi-Fi 20 – 50 m; past 100 m it is
	// placed by cell towers, which moved a courier 530 m and back between two true fixes.
	DefaultCoarseM = 100
	// DefaultStopAfter is how long after an order's last change it still shows its courier (see
	// Tracker.StopAfter): a food delivery takes under an hour, a long one two.
	DefaultStopAfter = 3 * time.Hour
	// coarseHold is how long a coarse fix stays behind the fine one it would replace: a phone
	// that has a fine fix again within it showed the customer no jump; one indoors, with coarse
	// fixes only, shows them after it, before the pages' "location lost" (20 s).
	coarseHold = 10 * time.Second
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
	// CoarseM is the accuracy radius (accuracy_m), in metres, past which a fix is coarse: it is
	// no speed sample and no point of the trail, and it replaces an order's fine position only
	// once that one is coarseHold older than it. Only bad fixes are held back: a courier
	// indoors, with coarse ones only, is still shown where the phone believes it is.
	CoarseM float64
	// StopAfter is how long after its last change (its pickup, its reassignment) an order still
	// shows its courier; zero is no bound. A courier who never marked an order delivered would
	// otherwise share its whereabouts with that order's customer and restaurant for good, on its
	// later rounds and on its way home, for as long as its app shares them.
	StopAfter time.Duration
	// PrivacyM is the radius, in metres, around a drop-off within which a courier who carries
	// orders of several customers is shown to that drop-off's order alone, and for a while after
	// it ends (see private); zero shows every order every position.
	PrivacyM float64
	// ETA is the model of distance and arrival.
	ETA ordercast.ETAModel
	// Bus, when set, carries positions to and from the other nodes.
	Bus    Bus
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	hub         *hub.Hub
	assignments Assignments
	// busReads are the failed reads of the bus's positions, warned about once an interval.
	busReads failurelog.Failures

	mu       sync.Mutex
	orders   map[string]*orderState
	couriers map[string]*courierState
	// carriedBy is which couriers' cached orders hold an order, so that an event of the order
	// drops those copies. Usually one; two while an order changes couriers: the new courier's
	// read may be kept before the event that moved the order arrives, and the old courier's copy
	// must still go when it does.
	carriedBy map[string][]string
	// zones are each courier's drop-offs kept private after their orders ended (noteZone).
	zones map[string][]zone
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
	// events is the subscription to every order's events, once following; taken from under mu
	// only (handleEvents).
	events *hub.Subscription
	// replays are the couriers whose last position events call to be judged again, each for
	// the orders the events made show it (noteReplays); kick wakes followEvents to do it, when a
	// post handled the events. posting counts, of each courier, the positions of posts that let
	// the lock go for a read: replayLast leaves such a courier's replay to the post's end
	// (remember), since the post may bring a newer position, judged by a copy from before.
	replays map[string]map[string]bool
	posting map[string]int
	kick    chan struct{}

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
	// speed is the running speed (ordercast.ETAModel.Speed), begun at the fix moving; last and
	// lastAt the fine fix the next speed sample is measured from.
	speed  float64
	moving time.Time
	last   ordercast.Point
	lastAt time.Time
	// trail is the way the courier came, for a page that opens mid-ride (Trail).
	trail trail
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
	// last is the courier's newest position accepted on this node, by its fix's time, and
	// lastArrived when it was posted: an event that makes one of its orders show the courier
	// judges it again if it came after the change (see replayLast).
	last        *ordercast.Position
	lastArrived time.Time
	lastStamped bool // last came without its time, stamped on arrival (posting.stamped)
}

// New returns a tracker that delivers through h to the orders a finds, with the defaults.
func New(h *hub.Hub, a Assignments) *Tracker {
	return &Tracker{
		Fresh: DefaultFresh, MaxAge: ordercast.DefaultLocationMaxAge,
		Rate: DefaultRate, Burst: DefaultBurst, AssignmentsTTL: DefaultAssignmentsTTL, CoarseM: DefaultCoarseM,
		StopAfter: DefaultStopAfter, PrivacyM: DefaultPrivacyM,
		ETA: ordercast.DefaultETAModel,
		hub: h, assignments: a,
		busReads: failurelog.Failures{Every: busWarnEvery},
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
	case !ordercast.LocationFromValid(t.From):
		return bad("location-from", "must be a stage from confirmed to out_for_delivery, got %q", t.From)
	// A NaN rate would pass "< 0" and then never refuse; an infinite one is no limit.
	case !ordercast.Finite(t.Rate) || t.Rate < 0:
		return bad("location-rate", "must be a finite number, not negative (0: no limit), got %v", t.Rate)
	case t.Burst < 0:
		return bad("location-burst", "must not be negative, got %d", t.Burst)
	case t.StopAfter < 0:
		return bad("location-stop-after", "must not be negative (0: no bound), got %s", t.StopAfter)
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
	case e.SpeedWindow <= 0:
		return bad("eta-speed-window", "must be positive, got %s", e.SpeedWindow)
	case !ordercast.Finite(t.PrivacyM) || t.PrivacyM < 0:
		return bad("location-privacy-radius", "must be a finite number of metres, not negative (0: off), got %v", t.PrivacyM)
	case !ordercast.Finite(t.CoarseM) || t.CoarseM <= 0:
		return bad("location-coarse", "must be a finite number of metres above 0, got %v", t.CoarseM)
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
	t.replays = make(map[string]map[string]bool)
	t.posting = make(map[string]int)
	t.kick = make(chan struct{}, 1)
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Go(t.sweep)
	return nil
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
			t.sweepZones(now)
			t.mu.Unlock()
		}
	}
}

// forgetCouriers drops couriers idle for a minute, or, when early, for a second, whose budget
// is full again: one forgotten with its budget spent would start afresh with a full one (at a low
// --location-rate a budget takes longer than a minute to refill). Called with t.mu held.
func (t *Tracker) forgetCouriers(now time.Time, early bool) {
	idle := time.Minute
	if early {
		idle = time.Second
	}
	for id, c := range t.couriers {
		if now.Sub(c.seen) > idle && (c.limiter == nil || c.limiter.TokensAt(now) >= float64(c.limiter.Burst())) {
			t.dropOrders(id, c)
			delete(t.couriers, id)
		}
	}
}
