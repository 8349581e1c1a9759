package location_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
)

// fixed gives every courier the same orders.
type fixed []ordercast.Order

func (f fixed) CouriersOrders(_ context.Context, ids []string) (map[string][]ordercast.Order, error) {
	return each(ids, f), nil
}

// each gives every courier of ids a copy of orders.
func each(ids []string, orders []ordercast.Order) map[string][]ordercast.Order {
	m := make(map[string][]ordercast.Order, len(ids))
	for _, id := range ids {
		m[id] = append([]ordercast.Order(nil), orders...)
	}
	return m
}

func open(t *testing.T, orders fixed, configure func(*location.Tracker)) (*location.Tracker, *hub.Hub) {
	t.Helper()
	h := hub.New()
	tr := location.New(h, orders)
	if configure != nil {
		configure(tr)
	}
	if err := tr.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, h
}

func at(lat float64, when time.Time) ordercast.Position {
	return ordercast.Position{Point: ordercast.Point{Lat: lat, Lng: 1}, At: when}
}

// TestOpenRefusesSettingsOutOfRange: every tunable is judged by Open, NaN and infinities
// included (a NaN rate never refuses a post), and the error names the setting as the flag that
// sets it, as server.Config.Validate does.
func TestOpenRefusesSettingsOutOfRange(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		setting string
		change  func(*location.Tracker)
	}{
		{"location-fresh", func(t *location.Tracker) { t.Fresh = 0 }},
		{"location-max-age", func(t *location.Tracker) { t.MaxAge = -time.Second }},
		{"location-from", func(t *location.Tracker) { t.From = ordercast.StatusPlaced }},
		{"location-rate", func(t *location.Tracker) { t.Rate = nan }},
		{"location-rate", func(t *location.Tracker) { t.Rate = inf }},
		{"location-rate", func(t *location.Tracker) { t.Rate = -1 }},
		{"location-burst", func(t *location.Tracker) { t.Burst = -1 }},
		{"location-assignments-ttl", func(t *location.Tracker) { t.AssignmentsTTL = -time.Second }},
		{"nearby-radius", func(t *location.Tracker) { t.ETA.NearbyM = inf }},
		{"nearby-radius", func(t *location.Tracker) { t.ETA.NearbyM = nan }},
		{"eta-route-factor", func(t *location.Tracker) { t.ETA.RouteFactor = 0 }},
		{"eta-min-speed", func(t *location.Tracker) { t.ETA.MinSpeedMPS = 0 }},
		{"eta-max-speed", func(t *location.Tracker) { t.ETA.MaxSpeedMPS = inf }},
		{"eta-typical-speed", func(t *location.Tracker) { t.ETA.TypicalSpeedMPS = nan }},
		{"eta-ceiling", func(t *location.Tracker) { t.ETA.CeilingS = t.ETA.FloorS - 1 }},
		{"eta-speed-window", func(t *location.Tracker) { t.ETA.SpeedWindow = 0 }},
		{"location-coarse", func(t *location.Tracker) { t.CoarseM = math.NaN() }},
		{"location-privacy-radius", func(t *location.Tracker) { t.PrivacyM = -1 }},
		{"location-privacy-radius", func(t *location.Tracker) { t.PrivacyM = nan }},
	} {
		tr := location.New(hub.New(), fixed{})
		tc.change(tr)
		err := tr.Open()
		if err == nil {
			_ = tr.Close()
		}
		var se *ordercast.SettingError
		if !errors.As(err, &se) || se.Setting != tc.setting {
			t.Errorf("%s: Open() = %v, want a SettingError for %s", tc.setting, err, tc.setting)
		}
	}
	tr := location.New(hub.New(), fixed{})
	if err := tr.Open(); err != nil {
		t.Fatalf("the defaults: Open() = %v", err)
	}
	_ = tr.Close()
}

// One post reaches every order the courier carries that shows its courier, and no other (here
// one customer's: of several customers', see TestACourierOfSeveralCustomersShowsNoOneAnothersDoor).
func TestPostReachesTheCouriersOrdersOutForDelivery(t *testing.T) {
	orders := fixed{
		{ID: "a", Status: ordercast.StatusOutForDelivery, CustomerID: "cu-1"},
		{ID: "b", Status: ordercast.StatusOutForDelivery, CustomerID: "cu-1"},
		{ID: "c", Status: ordercast.StatusReady, CustomerID: "cu-1"},
	}
	tr, h := open(t, orders, nil)
	subs := map[string]*hub.Subscription{}
	for _, id := range []string{"a", "b", "c"} {
		subs[id] = h.Subscribe(id)
		defer subs[id].Close()
	}
	n, err := tr.Post(context.Background(), "c-1", at(1, time.Now()))
	if err != nil || n != 2 {
		t.Fatalf("Post = %d, %v; want 2 orders", n, err)
	}
	for id, want := range map[string]bool{"a": true, "b": true, "c": false} {
		if got := subs[id].TakeLocation() != nil; got != want {
			t.Errorf("order %s got a position: %v, want %v", id, got, want)
		}
	}
}

// A courier over its budget is refused with rate_limited, and the refused post changes nothing.
func TestPostRateLimitedPerCourier(t *testing.T) {
	now := time.Now()
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery}}, func(tr *location.Tracker) {
		tr.Rate, tr.Burst = 1, 2
		tr.Now = func() time.Time { return now }
	})
	for i := range 2 {
		if _, err := tr.Post(context.Background(), "c-1", at(float64(i), now.Add(time.Duration(i-5)*time.Second))); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	_, err := tr.Post(context.Background(), "c-1", at(5, now.Add(-2*time.Second)))
	if ordercast.ErrorCode(err) != ordercast.ERateLimited {
		t.Fatalf("third post in a burst of 2: %v, want rate_limited", err)
	}
	// The clock stood still: the next token is a whole 1/Rate away.
	var rl *location.RateLimitError
	if !errors.As(err, &rl) || rl.Wait != time.Second {
		t.Errorf("refusal %#v, want a RateLimitError with Wait 1s", err)
	}
	if _, err := tr.Post(context.Background(), "c-2", at(7, now)); err != nil {
		t.Fatalf("another courier's post was charged to c-1: %v", err)
	}
	l := tr.Latest(context.Background(), "a")
	if l == nil || l.Update.Lat != 7 {
		t.Fatalf("latest = %v, want c-2's 7 (the refused 5 changed nothing)", l)
	}
}

// A post refused because the courier's orders could not be read (the store away) costs the
// courier nothing of its budget, alone or in a batch: it failed for the store, not the courier,
// and its retry must not be refused as rate_limited. The budget still holds once the store is
// back.
func TestFailedReadGivesTheBudgetBack(t *testing.T) {
	now := time.Now()
	as := &testutil.StoreAway{Orders: fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1"}}}
	as.Down.Store(true)
	tr := location.New(hub.New(), as)
	tr.Rate, tr.Burst = 0.001, 2
	tr.Now = func() time.Time { return now }
	if err := tr.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	ctx := context.Background()
	for i, r := range tr.PostMany(ctx, []location.CourierPosition{
		{CourierID: "c-1", Position: at(1, now)}, {CourierID: "c-1", Position: at(2, now)},
	}) {
		if ordercast.ErrorCode(r.Err) != ordercast.EUnavailable {
			t.Fatalf("position %d of a batch while the store is away: %v, want unavailable", i, r.Err)
		}
	}
	for i := range 3 {
		if _, err := tr.Post(ctx, "c-1", at(3, now)); ordercast.ErrorCode(err) != ordercast.EUnavailable {
			t.Fatalf("retry %d while the store is away: %v, want unavailable", i, err)
		}
	}
	as.Down.Store(false)
	for i := range 2 {
		if n, err := tr.Post(ctx, "c-1", at(float64(4+i), now.Add(time.Duration(i)*time.Millisecond))); err != nil || n != 1 {
			t.Fatalf("post %d once the store is back: %d, %v; want order a reached", i, n, err)
		}
	}
	if _, err := tr.Post(ctx, "c-1", at(6, now)); ordercast.ErrorCode(err) != ordercast.ERateLimited {
		t.Fatalf("third post in a burst of 2: %v, want rate_limited", err)
	}
}

// A fix older than the one already sent (a phone flushing a backlog out of order) is not sent,
// and a position from another node replaces this node's only when newer.
func TestOlderFixesDoNotReplaceNewer(t *testing.T) {
	tr, h := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery}}, nil)
	s := h.Subscribe("a")
	defer s.Close()
	now := time.Now()
	if _, err := tr.Post(context.Background(), "c-1", at(2, now)); err != nil {
		t.Fatal(err)
	}
	s.TakeLocation()
	if n, err := tr.Post(context.Background(), "c-1", at(1, now.Add(-time.Second))); err != nil || n != 0 {
		t.Fatalf("an older fix: %d, %v; want it dropped", n, err)
	}
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "a", Lat: 0, At: now.Add(-time.Second)}})
	if l := s.TakeLocation(); l != nil {
		t.Fatalf("an older position from another node reached the watcher: %v", l)
	}
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "a", Lat: 3, At: now.Add(time.Second)}})
	if l := tr.Latest(context.Background(), "a"); l == nil || l.Update.Lat != 3 {
		t.Fatalf("latest = %v, want the newer 3 from another node", l)
	}
	if l := s.TakeLocation(); l == nil || l.Update.Lat != 3 {
		t.Fatalf("watcher got %v, want 3", l)
	}
}

// switchable is couriers' orders (every courier's the same) that a test changes, counting the
// reads.
type switchable struct {
	mu     sync.Mutex
	orders []ordercast.Order
	reads  int
}

func (s *switchable) CouriersOrders(_ context.Context, ids []string) (map[string][]ordercast.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return each(ids, s.orders), nil
}

func (s *switchable) set(orders ...ordercast.Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders = orders
}

func (s *switchable) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// openKept opens a tracker over h that reads couriers' orders from a, without a rate limit, and
// keeps them until an event drops them: here only the events may refresh a copy.
func openKept(t *testing.T, h *hub.Hub, a location.Assignments, configure ...func(*location.Tracker)) *location.Tracker {
	t.Helper()
	tr := location.New(h, a)
	tr.Rate = 0
	tr.AssignmentsTTL = time.Hour
	for _, c := range configure {
		c(tr)
	}
	if err := tr.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// A courier's orders are read once and then kept, not read on every post; an event of one of
// them (the order delivered) or a courier assigned to another order drops the copy, so the next
// post follows the store at once: no position after delivery, the new order reached.
func TestCourierOrdersFollowTheirEvents(t *testing.T) {
	as := &switchable{orders: []ordercast.Order{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1"}}}
	h := hub.New()
	tr := openKept(t, h, as)
	post := func(i int) int {
		t.Helper()
		n, err := tr.Post(context.Background(), "c-1", at(float64(i), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 5 {
		if n := post(i); n != 1 {
			t.Fatalf("post %d reached %d orders, want 1", i, n)
		}
	}
	if got := as.readCount(); got != 1 {
		t.Fatalf("five posts read the courier's orders %d times, want once", got)
	}

	// Order a is delivered: its event drops the copy, and the next post reads the store.
	as.set()
	h.Publish(ordercast.Event{OrderID: "a", Seq: 5, Status: ordercast.StatusDelivered, At: time.Now()})
	testutil.WaitFor(t, "the delivered order to leave the courier's orders", func() bool { return post(10) == 0 })

	// Order b is assigned to c-1: the courier event drops c-1's (empty) copy.
	reads := as.readCount()
	as.set(ordercast.Order{ID: "b", Status: ordercast.StatusOutForDelivery, CourierID: "c-1"})
	h.Publish(ordercast.Event{OrderID: "b", Seq: 4, Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery, CourierID: "c-1", At: time.Now()})
	testutil.WaitFor(t, "the assigned order to reach the courier's orders", func() bool { return post(20) == 1 })
	if got := as.readCount(); got < reads+1 {
		t.Fatalf("reads %d after the assignment, want more than %d", got, reads)
	}
}

// The tracker follows the orders' events only once a courier posts: a node no courier posts to
// pays nothing per event for it.
func TestFollowsEventsFromTheFirstPost(t *testing.T) {
	tr, h := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1"}}, nil)
	if h.WatchesAll() {
		t.Fatal("an open tracker with no post follows every order's events")
	}
	if _, err := tr.Post(context.Background(), "c-1", at(1, time.Now())); err != nil {
		t.Fatal(err)
	}
	if !h.WatchesAll() {
		t.Fatal("after the first post the tracker does not follow the orders' events")
	}
}

// racing is a courier's orders whose first read is overtaken by an event: the read returns the
// order out for delivery, and its delivery is published right after, before the read's copy is
// kept, as a commit landing between a read and a subscription would be.
type racing struct {
	switchable
	h    *hub.Hub
	once sync.Once
}

func (r *racing) CouriersOrders(ctx context.Context, ids []string) (map[string][]ordercast.Order, error) {
	orders, err := r.switchable.CouriersOrders(ctx, ids)
	r.once.Do(func() {
		r.set()
		r.h.Publish(ordercast.Event{OrderID: "a", Seq: 5, Status: ordercast.StatusDelivered, At: time.Now()})
	})
	return orders, err
}

// The first read of a courier's orders cannot miss an event that lands right after it: the
// tracker subscribes before it reads, so the event drops the read's copy and the next post
// no longer reaches the delivered order.
func TestFirstReadDoesNotMissAnEvent(t *testing.T) {
	h := hub.New()
	as := &racing{h: h}
	as.set(ordercast.Order{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1"})
	tr := openKept(t, h, as)
	post := func() int {
		t.Helper()
		n, err := tr.Post(context.Background(), "c-1", at(1, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	post() // reads the orders, which the delivery overtakes
	testutil.WaitFor(t, "a post to stop reaching the delivered order", func() bool { return post() == 0 })
}

// An order that changes couriers or ends is forgotten: no later stream is shown where the old
// courier was, and the new courier's ETA starts from its own fixes, not the old one's speed.
func TestForgetsOrdersThatChangeCourierOrEnd(t *testing.T) {
	dropoff := ordercast.Point{Lat: 0, Lng: 1}
	as := &switchable{orders: []ordercast.Order{
		{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", CustomerID: "cu-1", Dropoff: &dropoff},
		{ID: "b", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", CustomerID: "cu-1"},
	}}
	h := hub.New()
	tr := openKept(t, h, as)
	fast := 15.0
	now := time.Now()
	for i, lat := range []float64{0.02, 0.01} {
		p := at(lat, now.Add(time.Duration(i-10)*time.Second))
		p.SpeedMPS = &fast
		if _, err := tr.Post(context.Background(), "c-1", p); err != nil {
			t.Fatal(err)
		}
	}
	latest := func(id string) *hub.Location { return tr.Latest(context.Background(), id) }
	if latest("a") == nil || latest("b") == nil {
		t.Fatal("no position kept for a and b")
	}

	// a goes to c-2, b is delivered.
	as.set(ordercast.Order{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-2", Dropoff: &dropoff})
	h.Publish(ordercast.Event{OrderID: "a", Seq: 5, Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery, CourierID: "c-2", At: now})
	h.Publish(ordercast.Event{OrderID: "b", Seq: 5, Status: ordercast.StatusDelivered, At: now})
	testutil.WaitFor(t, "the reassigned and the delivered order to be forgotten", func() bool {
		return latest("a") == nil && latest("b") == nil
	})

	// c-2's first fix, without a speed: its ETA is at the typical speed, not c-1's 15 m/s.
	p := at(0.01, now)
	if _, err := tr.Post(context.Background(), "c-2", p); err != nil {
		t.Fatal(err)
	}
	l := latest("a")
	if l == nil || l.Update.CourierID != "c-2" || l.Update.ETAS == nil {
		t.Fatalf("latest of a = %+v, want c-2's position with an ETA", l)
	}
	want, _ := ordercast.DefaultETAModel.Estimate(ordercast.DistanceM(p.Point, dropoff), 0)
	if *l.Update.ETAS != want {
		t.Fatalf("c-2's first ETA %d s, want %d s (no speed of its own yet)", *l.Update.ETAS, want)
	}
}

// A position from another courier replaces the one kept even when its phone's clock is behind
// the old courier's: after a reassignment, the new courier shows at once on every node.
func TestAnotherCourierReplacesWhateverItsClock(t *testing.T) {
	tr, h := open(t, nil, nil)
	s := h.Subscribe("a")
	defer s.Close()
	now := time.Now()
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "a", CourierID: "c-1", Lat: 1, At: now}})
	s.TakeLocation()
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "a", CourierID: "c-2", Lat: 2, At: now.Add(-3 * time.Second)}})
	if l := tr.Latest(context.Background(), "a"); l == nil || l.Update.CourierID != "c-2" {
		t.Fatalf("latest = %s, want c-2's position", describe(l))
	}
	if l := s.TakeLocation(); l == nil || l.Update.CourierID != "c-2" {
		t.Fatalf("watcher got %s, want c-2's position", describe(l))
	}
}

// An old courier's position that comes after the new courier's does not replace it, whatever
// its time: not when the old courier posts before the event that moved the order reaches this
// node (its copy of its orders still holds the order), nor when another node's arrives late. A
// stream that opens afterwards finds the new courier's position, not one it must drop.
func TestOldCourierDoesNotReplaceTheNewCourier(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as)
	s := h.Subscribe("o")
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	post := func(courierID string, lat float64, when time.Time) int {
		t.Helper()
		n, err := tr.Post(ctx, courierID, at(lat, when))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	as.set("c-a", ordercast.Order{ID: "o", Version: 4, Status: ordercast.StatusOutForDelivery, CourierID: "c-a"})
	if n := post("c-a", 1, now.Add(-3*time.Second)); n != 1 {
		t.Fatalf("c-a's post reached %d orders, want 1", n)
	}
	// o moves to c-b (version 5), who posts before the event reaches this node.
	as.set("c-a")
	as.set("c-b", ordercast.Order{ID: "o", Version: 5, Status: ordercast.StatusOutForDelivery, CourierID: "c-b"})
	if n := post("c-b", 2, now.Add(-2*time.Second)); n != 1 {
		t.Fatalf("c-b's post reached %d orders, want 1", n)
	}
	latestIs := func(what, courierID string) {
		t.Helper()
		if l := tr.Latest(ctx, "o"); l == nil || l.Update.CourierID != courierID {
			t.Fatalf("%s: latest = %s, want %s's position", what, describe(l), courierID)
		}
	}
	if n := post("c-a", 3, now); n != 0 {
		t.Fatalf("c-a's post on its kept copy reached %d orders, want 0: o is c-b's", n)
	}
	latestIs("after c-a posted late", "c-b")
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "o", CourierID: "c-a", OrderVersion: 4, Lat: 4, At: now.Add(time.Second)}})
	latestIs("after c-a's position came from another node", "c-b")
	if l := s.TakeLocation(); l == nil || l.Update.CourierID != "c-b" {
		t.Fatalf("watcher's slot holds %s, want c-b's position", describe(l))
	}
}

// The event that gives an order to a new courier does not forget the new courier's position
// taken before it reached this node: only the old courier's is forgotten. Else a stream that
// opens then would find nothing until the new courier posts again.
func TestReassignmentKeepsTheNewCouriersPosition(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as)
	ctx := context.Background()
	as.set("c-b", ordercast.Order{ID: "o", Version: 5, Status: ordercast.StatusOutForDelivery, CourierID: "c-b"})
	if n, err := tr.Post(ctx, "c-b", at(2, time.Now())); err != nil || n != 1 {
		t.Fatalf("c-b's post = %d, %v; want o reached", n, err)
	}
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "p", CourierID: "c-a", OrderVersion: 4, Lat: 1, At: time.Now()}})
	h.Publish(ordercast.Event{OrderID: "o", Seq: 5, Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery, CourierID: "c-b", At: time.Now()})
	h.Publish(ordercast.Event{OrderID: "p", Seq: 5, Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery, CourierID: "c-b", At: time.Now()})
	waitHandled(t, tr, h)
	if l := tr.Latest(ctx, "o"); l == nil || l.Update.CourierID != "c-b" {
		t.Fatalf("after the event that gave o to c-b, latest = %s, want c-b's position", describe(l))
	}
	if l := tr.Latest(ctx, "p"); l != nil {
		t.Fatalf("after the event that gave p to c-b, latest = %s, want c-a's forgotten", describe(l))
	}
}

// describe is a position as a failure message shows it.
func describe(l *hub.Location) string {
	if l == nil {
		return "none"
	}
	return string(l.JSON)
}

// countingBus records what a tracker sends to the cluster.
type countingBus struct {
	mu    sync.Mutex
	sends [][]ordercast.LocationUpdate
}

func (b *countingBus) Send(us []ordercast.LocationUpdate) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sends = append(b.sends, us)
}

func (b *countingBus) Latest(context.Context, []string) ([]ordercast.LocationUpdate, error) {
	return nil, nil
}

// PostMany judges each position alone, in order, as Post would, and shares the work: a courier's
// orders are read once for all its positions, and the cluster gets one Send for the request.
func TestPostManySharesTheWork(t *testing.T) {
	as := &switchable{orders: []ordercast.Order{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1"}}}
	bus := &countingBus{}
	tr := location.New(hub.New(), as)
	tr.Rate, tr.Burst = 0.001, 3 // three posts per courier, then rate_limited
	tr.AssignmentsTTL = 0        // Post alone would read the orders on every position
	tr.Bus = bus
	if err := tr.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	now := time.Now()
	res := tr.PostMany(context.Background(), []location.CourierPosition{
		{CourierID: "c-1", Position: at(52.1, now.Add(-3*time.Second))},
		{CourierID: "c-1", Position: at(91, now.Add(-2*time.Second))}, // invalid: not charged
		{CourierID: "c-1", Position: at(52.2, now.Add(-2*time.Second))},
		{CourierID: "c-1", Position: at(52.0, now.Add(-4*time.Second))}, // older than the one sent
		{CourierID: "c-1", Position: at(52.3, now.Add(-time.Second))},   // over the budget
	})
	want := []string{"1", ordercast.EInvalidLocation, "1", "0", ordercast.ERateLimited}
	for i, r := range res {
		got := fmt.Sprint(r.Orders)
		if r.Err != nil {
			got = ordercast.ErrorCode(r.Err)
		}
		if got != want[i] {
			t.Errorf("position %d: %s, want %s", i, got, want[i])
		}
	}
	if n := as.readCount(); n != 1 {
		t.Errorf("the courier's orders were read %d times, want once", n)
	}
	if l := tr.Latest(context.Background(), "a"); l == nil || l.Update.Lat != 52.2 {
		t.Errorf("newest position %s, want lat 52.2", describe(l))
	}
	bus.mu.Lock()
	defer bus.mu.Unlock()
	if len(bus.sends) != 1 || len(bus.sends[0]) != 2 {
		t.Errorf("bus sends %v, want one of the two positions sent", bus.sends)
	}
}

// gated is couriers' orders whose reads wait until the test opens the gate: a read in flight that
// an event can overtake.
type gated struct {
	switchable
	started chan struct{} // signalled when a read begins, if the test has not yet taken a signal
	open    chan struct{} // closed to let the reads return
}

func newGated(orders ...ordercast.Order) *gated {
	return &gated{switchable: switchable{orders: orders}, started: make(chan struct{}, 1), open: make(chan struct{})}
}

func (g *gated) CouriersOrders(ctx context.Context, ids []string) (map[string][]ordercast.Order, error) {
	select {
	case g.started <- struct{}{}:
	default:
	}
	<-g.open
	return g.switchable.CouriersOrders(ctx, ids)
}

// postOvertaken posts a position of courier c-1 whose read of the courier's orders is overtaken
// by the delivery of order id: the tracker handles the event while the read is in flight, and
// the read returns after. The order is first given a position from another node, so that the
// tracker forgetting it shows the event was handled. It returns the orders the post reached.
func postOvertaken(t *testing.T, tr *location.Tracker, h *hub.Hub, as *gated, id string) int {
	t.Helper()
	ctx := context.Background()
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: id, CourierID: "c-9", Lat: 1, At: time.Now()}})
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := tr.Post(ctx, "c-1", at(1, time.Now()))
		done <- result{n, err}
	}()
	select {
	case <-as.started:
	case r := <-done:
		t.Fatalf("the post returned (%d, %v) without reading the courier's orders", r.n, r.err)
	}
	h.Publish(ordercast.Event{OrderID: id, Seq: 5, Status: ordercast.StatusDelivered, At: time.Now()})
	testutil.WaitFor(t, "the tracker to handle the delivery of "+id, func() bool {
		l := tr.Latest(ctx, id)
		return l == nil
	})
	close(as.open)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.n
}

// A read of a courier's orders is kept though another order's event came while it ran: status
// traffic of orders without a courier does not make every post read the store.
func TestUnrelatedEventKeepsTheRead(t *testing.T) {
	as := newGated(ordercast.Order{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1"})
	h := hub.New()
	tr := openKept(t, h, as)
	if n := postOvertaken(t, tr, h, as, "x"); n != 1 {
		t.Fatalf("the post an unrelated event overtook reached %d orders, want 1", n)
	}
	if n, err := tr.Post(context.Background(), "c-1", at(2, time.Now())); err != nil || n != 1 {
		t.Fatalf("second post = %d, %v; want order a reached", n, err)
	}
	if got := as.readCount(); got != 1 {
		t.Fatalf("two posts read the courier's orders %d times, want once: order x's event discarded the read", got)
	}
}

// A read of a courier's orders that an event of one of them overtook is not kept, and its post
// does not reach that order: what it read predates the event (here the order's delivery), the
// kept copy would never be dropped, and the position would bring the courier back to an order
// whose watchers must no longer see it.
func TestEventOfAnOrderReadDiscardsTheRead(t *testing.T) {
	as := newGated(ordercast.Order{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1"})
	h := hub.New()
	tr := openKept(t, h, as)
	if n := postOvertaken(t, tr, h, as, "a"); n != 0 {
		t.Fatalf("the post whose read the delivery of a overtook reached %d orders, want 0", n)
	}
	if l := tr.Latest(context.Background(), "a"); l != nil {
		t.Fatalf("after its delivery, order a has a position again: %s", describe(l))
	}
	as.set() // a was delivered
	if n, err := tr.Post(context.Background(), "c-1", at(2, time.Now())); err != nil || n != 0 {
		t.Fatalf("second post = %d, %v; want no order reached (a was delivered)", n, err)
	}
	if got := as.readCount(); got != 2 {
		t.Fatalf("two posts read the courier's orders %d times, want twice: the overtaken read was kept", got)
	}
}

// PostMany reads the orders of all its couriers that have no kept copy in one read of the store.
func TestPostManyReadsTheCouriersAtOnce(t *testing.T) {
	as := &switchable{orders: []ordercast.Order{{ID: "a", Status: ordercast.StatusOutForDelivery}}}
	tr := openKept(t, hub.New(), as)
	now := time.Now()
	var ps []location.CourierPosition
	for i := range 3 {
		// Each a second after the last: every courier's position reaches the order.
		ps = append(ps, location.CourierPosition{CourierID: fmt.Sprintf("c-%d", i), Position: at(1, now.Add(time.Duration(i-3)*time.Second))})
	}
	for i, r := range tr.PostMany(context.Background(), ps) {
		if r.Err != nil || r.Orders != 1 {
			t.Errorf("position %d = %d orders, %v; want its courier's order reached", i, r.Orders, r.Err)
		}
	}
	if got := as.readCount(); got != 1 {
		t.Errorf("three couriers' orders were read in %d reads, want one", got)
	}
}

// tableBus is a bus whose table holds given positions, and counts its reads.
type tableBus struct {
	mu    sync.Mutex
	table map[string]ordercast.LocationUpdate
	reads int
	// fail, when set, fails every read; hang makes every read wait for its context's end.
	fail error
	hang bool
}

func (b *tableBus) Send([]ordercast.LocationUpdate) {}

func (b *tableBus) Latest(ctx context.Context, ids []string) ([]ordercast.LocationUpdate, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	if b.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if b.fail != nil {
		return nil, b.fail
	}
	var us []ordercast.LocationUpdate
	for _, id := range ids {
		if u, ok := b.table[id]; ok {
			us = append(us, u)
		}
	}
	return us, nil
}

// A position is extra to the status a stream opens with: when the cluster's table cannot be read
// (an error, or a read that does not end), Latest answers all the same, with this node's own
// position, which may be older, or none.
func TestLatestWhenTheBusCannotBeRead(t *testing.T) {
	now := time.Now()
	bus := &tableBus{table: map[string]ordercast.LocationUpdate{
		"a": {OrderID: "a", CourierID: "k", Lat: 2, Lng: 1, At: now.Add(-time.Second)},
	}}
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "k"}}, func(tr *location.Tracker) { tr.Bus = bus })
	if _, err := tr.Post(t.Context(), "k", at(1, now.Add(-3*time.Second))); err != nil {
		t.Fatal(err)
	}
	tr.MissedLocations() // from here on, a stream opening asks the table
	for _, c := range []struct {
		name string
		set  func()
	}{
		{"failing", func() { bus.fail = errors.New("connection refused") }},
		{"hanging", func() { bus.fail, bus.hang = nil, true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			bus.mu.Lock()
			c.set()
			reads := bus.reads
			bus.mu.Unlock()
			if l := tr.Latest(t.Context(), "a"); l == nil || l.Update.Lat != 1 {
				t.Errorf("Latest(a) = %s, want this node's own position (lat 1)", describe(l))
			}
			ls := tr.LatestMany(t.Context(), []string{"a", "b"})
			if len(ls) != 1 || ls["a"] == nil || ls["a"].Update.Lat != 1 {
				t.Errorf("LatestMany(a, b) = %v, want a's own position only", ls)
			}
			bus.mu.Lock()
			defer bus.mu.Unlock()
			if bus.reads != reads+2 {
				t.Errorf("%d reads of the table, want 2: the own position stands in only when the read fails", bus.reads-reads)
			}
		})
	}
}

// After the bus was away (MissedLocations), the position a node holds may not be the cluster's
// newest: a stream that opens gets the table's, until a newer one reaches the node, which is then
// served from memory again.
func TestMissedLocationsReadTheTable(t *testing.T) {
	now := time.Now()
	bus := &tableBus{table: map[string]ordercast.LocationUpdate{}}
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "k"}}, func(tr *location.Tracker) { tr.Bus = bus })
	if _, err := tr.Post(t.Context(), "k", at(1, now.Add(-3*time.Second))); err != nil {
		t.Fatal(err)
	}
	lat := func() float64 {
		t.Helper()
		l := tr.Latest(t.Context(), "a")
		if l == nil {
			t.Fatal("Latest = nil")
		}
		return l.Update.Lat
	}
	if got := lat(); got != 1 || bus.reads != 0 {
		t.Fatalf("before the bus was away: lat %v after %d table reads, want 1 from memory", got, bus.reads)
	}

	// Another node took in a newer position while this one did not hear the bus.
	bus.table["a"] = ordercast.LocationUpdate{OrderID: "a", CourierID: "k", Lat: 2, Lng: 1, At: now.Add(-2 * time.Second)}
	tr.MissedLocations()
	if got := lat(); got != 2 || bus.reads != 1 {
		t.Errorf("after the bus was away: lat %v after %d table reads, want 2 from the table", got, bus.reads)
	}
	if ls := tr.LatestMany(t.Context(), []string{"a"}); ls["a"] == nil || ls["a"].Update.Lat != 2 {
		t.Errorf("LatestMany after the bus was away = %v; want the table's", ls)
	}

	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "a", CourierID: "k", Lat: 3, Lng: 1, At: now.Add(-time.Second)}})
	reads := bus.reads
	if got := lat(); got != 3 || bus.reads != reads {
		t.Errorf("after a newer position arrived: lat %v after %d more table reads, want 3 from memory", got, bus.reads-reads)
	}
}

// TestMissedLocationsKeepANewerOwn: the table stands in for positions this node may have missed,
// never for a newer one it holds. The database blinked: this node's batch with its newer fix
// failed, and its listener's connection went in the same blink. A stream that opens gets the
// node's own fix, and the table's where the node has none.
func TestMissedLocationsKeepANewerOwn(t *testing.T) {
	now := time.Now()
	bus := &tableBus{table: map[string]ordercast.LocationUpdate{
		"a": {OrderID: "a", CourierID: "k", Lat: 1, Lng: 1, At: now.Add(-10 * time.Second)},
		"b": {OrderID: "b", CourierID: "j", Lat: 5, Lng: 1, At: now.Add(-time.Second)},
	}}
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "k"}}, func(tr *location.Tracker) { tr.Bus = bus })
	if _, err := tr.Post(t.Context(), "k", at(2, now.Add(-time.Second))); err != nil {
		t.Fatal(err)
	}
	tr.MissedLocations()
	ls := tr.LatestMany(t.Context(), []string{"a", "b"})
	if l := ls["a"]; l == nil || l.Update.Lat != 2 {
		t.Errorf("order a = %+v; want this node's newer fix (lat 2), not the table's older one", l)
	}
	if l := ls["b"]; l == nil || l.Update.Lat != 5 {
		t.Errorf("order b = %+v; want the table's, this node having none", l)
	}
	if bus.reads != 1 {
		t.Errorf("%d reads of the table, want 1", bus.reads)
	}
}

// byCourier is each courier's orders, which a test sets. While gate is set, a read (of gateFor
// only, if set) takes what the couriers have, signals started and returns once the gate closes:
// a read that an event can overtake.
type byCourier struct {
	mu      sync.Mutex
	orders  map[string][]ordercast.Order
	gate    chan struct{}
	gateFor string
	started chan struct{}
	// hangFor is a courier whose reads hang until their context ends, as a store that does
	// not answer.
	hangFor string
}

func (b *byCourier) CouriersOrders(ctx context.Context, ids []string) (map[string][]ordercast.Order, error) {
	b.mu.Lock()
	m := make(map[string][]ordercast.Order, len(ids))
	for _, id := range ids {
		m[id] = append([]ordercast.Order(nil), b.orders[id]...)
	}
	gate := b.gate
	if b.gateFor != "" && !slices.Contains(ids, b.gateFor) {
		gate = nil
	}
	hang := b.hangFor != "" && slices.Contains(ids, b.hangFor)
	b.mu.Unlock()
	if hang {
		b.started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if gate != nil {
		b.started <- struct{}{}
		<-gate
	}
	return m, nil
}

// hang makes the next reads of courier hang until their context ends.
func (b *byCourier) hang(courier string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hangFor, b.started = courier, make(chan struct{}, 1)
}

// hold makes the next reads (of courier only, if not empty) wait at a gate; it returns the gate.
func (b *byCourier) hold(courier string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gate, b.gateFor, b.started = make(chan struct{}), courier, make(chan struct{}, 1)
	return b.gate
}

func (b *byCourier) set(courierID string, orders ...ordercast.Order) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.orders == nil {
		b.orders = make(map[string][]ordercast.Order)
	}
	b.orders[courierID] = orders
}

// An order that changes couriers leaves the old courier's copy too, even when the new courier's
// read, which sees the order already moved, is kept before the event that moved it arrives (a
// cluster's notice comes a little after the commit): once the order is delivered, the old
// courier's posts no longer reach it.
func TestReassignedOrderLeavesBothCopies(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	post := poster(t, openKept(t, h, as))
	as.set("c-a", ordercast.Order{ID: "o", Status: ordercast.StatusOutForDelivery, CourierID: "c-a"})
	if n := post("c-a"); n != 1 {
		t.Fatalf("c-a's post reached %d orders, want 1", n)
	}
	// o moves to c-b; c-b posts before the event that moved it reaches this node.
	as.set("c-a")
	as.set("c-b", ordercast.Order{ID: "o", Status: ordercast.StatusOutForDelivery, CourierID: "c-b"})
	if n := post("c-b"); n != 1 {
		t.Fatalf("c-b's post reached %d orders, want 1", n)
	}
	moveThenDeliver(t, h, as, post)
}

// A PostMany that waits for one courier's read does not use another courier's kept copy that an
// event dropped meanwhile: the order it held was delivered while the read ran, and the position
// must not reach it.
func TestPostManyDoesNotUseACopyDroppedWhileItRead(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as)
	ctx := context.Background()
	as.set("c-a", ordercast.Order{ID: "o", Status: ordercast.StatusOutForDelivery, CourierID: "c-a"})
	if n, err := tr.Post(ctx, "c-a", at(1, time.Now())); err != nil || n != 1 {
		t.Fatalf("c-a's first post = %d, %v; want order o reached", n, err)
	}
	gate := as.hold("")
	done := postBehindARead(tr, as)
	as.set("c-a")
	h.Publish(ordercast.Event{OrderID: "o", Seq: 5, Status: ordercast.StatusDelivered, At: time.Now()})
	testutil.WaitFor(t, "the tracker to handle the delivery of o", func() bool {
		l := tr.Latest(ctx, "o")
		return l == nil
	})
	close(gate)
	res := <-done
	if res[0].Err != nil || res[0].Orders != 0 {
		t.Fatalf("c-a's position = %d orders, %v; want none: o was delivered while the batch read", res[0].Orders, res[0].Err)
	}
	if l := tr.Latest(ctx, "o"); l != nil {
		t.Fatalf("after its delivery, order o has a position again: %s", describe(l))
	}
}

// A status change that keeps the order with its courier (here ready, with positions shown from
// confirmed) does not cost the position a PostMany was about to send, though it drops the copy
// the PostMany took: only an order that left its courier is held back.
func TestPostManyKeepsAnOrderAStatusChangeOvertook(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as, func(tr *location.Tracker) { tr.From = ordercast.StatusConfirmed })
	ctx := context.Background()
	as.set("c-a", ordercast.Order{ID: "o", Status: ordercast.StatusPreparing, CourierID: "c-a"})
	if n, err := tr.Post(ctx, "c-a", at(1, time.Now())); err != nil || n != 1 {
		t.Fatalf("c-a's first post = %d, %v; want order o reached", n, err)
	}
	gate := as.hold("")
	done := postBehindARead(tr, as)
	as.set("c-a", ordercast.Order{ID: "o", Status: ordercast.StatusReady, CourierID: "c-a"})
	h.Publish(ordercast.Event{OrderID: "o", Seq: 4, Status: ordercast.StatusReady, At: time.Now()})
	waitHandled(t, tr, h) // o's change, which drops c-a's copy
	close(gate)
	if res := <-done; res[0].Err != nil || res[0].Orders != 1 {
		t.Fatalf("c-a's position = %d orders, %v; want o reached: it is still c-a's", res[0].Orders, res[0].Err)
	}
}

// An order in two couriers' copies (the new courier's read kept first, then the old courier's,
// begun before the order moved) leaves both when its event comes, whatever their order.
func TestReassignedOrderLeavesBothCopiesWhicheverWasKeptFirst(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	post := poster(t, openKept(t, h, as))
	as.set("c-a", ordercast.Order{ID: "o", Status: ordercast.StatusOutForDelivery, CourierID: "c-a"})
	gate := as.hold("c-a")
	aDone := make(chan int, 1)
	go func() { aDone <- post("c-a") }() // reads o as c-a's, and waits at the gate
	<-as.started
	// o moves to c-b, whose read is kept first.
	as.set("c-a")
	as.set("c-b", ordercast.Order{ID: "o", Status: ordercast.StatusOutForDelivery, CourierID: "c-b"})
	if n := post("c-b"); n != 1 {
		t.Fatalf("c-b's post reached %d orders, want 1", n)
	}
	close(gate) // then c-a's, older, before the event that moved o arrives
	if n := <-aDone; n != 1 {
		t.Fatalf("c-a's post reached %d orders, want 1 (o was its when read)", n)
	}
	moveThenDeliver(t, h, as, post)
}

// A PostMany that waits for one courier's read holds back another courier's position from an
// order that ended meanwhile, though an earlier event (a status change of another of its orders)
// had already dropped the copy the position was to use; the other order still gets it.
func TestPostManyHoldsBackAnOrderThatEndedAfterTheCopyWasDropped(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as, func(tr *location.Tracker) { tr.From = ordercast.StatusConfirmed })
	ctx := context.Background()
	as.set("c-a",
		ordercast.Order{ID: "o1", Status: ordercast.StatusOutForDelivery, CourierID: "c-a", CustomerID: "cu-1"},
		ordercast.Order{ID: "o2", Status: ordercast.StatusPreparing, CourierID: "c-a", CustomerID: "cu-1"})
	if n, err := tr.Post(ctx, "c-a", at(1, time.Now())); err != nil || n != 2 {
		t.Fatalf("c-a's first post = %d, %v; want o1 and o2 reached", n, err)
	}
	gate := as.hold("c-b")
	done := postBehindARead(tr, as)
	h.Publish(ordercast.Event{OrderID: "o2", Seq: 4, Status: ordercast.StatusReady, At: time.Now()}) // drops c-a's copy
	h.Publish(ordercast.Event{OrderID: "o1", Seq: 6, Status: ordercast.StatusDelivered, At: time.Now()})
	waitHandled(t, tr, h)
	close(gate)
	if res := <-done; res[0].Err != nil || res[0].Orders != 1 {
		t.Fatalf("c-a's position = %d orders, %v; want only o2 (o1 was delivered while the batch read)", res[0].Orders, res[0].Err)
	}
	if l := tr.Latest(ctx, "o1"); l != nil {
		t.Fatalf("after its delivery, o1 has a position again: %s", describe(l))
	}
}

// postBehindARead posts a position of c-a (whose copy of its orders is kept) and one of c-b
// (whose orders are read, at as's gate) in one PostMany, and returns its results when it ends,
// once the read has begun.
func postBehindARead(tr *location.Tracker, as *byCourier) <-chan []location.PostResult {
	done := make(chan []location.PostResult, 1)
	go func() {
		done <- tr.PostMany(context.Background(), []location.CourierPosition{
			{CourierID: "c-a", Position: at(2, time.Now())},
			{CourierID: "c-b", Position: at(2, time.Now())},
		})
	}()
	<-as.started
	return done
}

// waitHandled waits until the tracker has handled the events published on h so far: it gives
// order z a position, publishes z's end after them, and waits for the tracker to forget z, which
// it does when it handles that end, after the events before it.
func waitHandled(t *testing.T, tr *location.Tracker, h *hub.Hub) {
	t.Helper()
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "z", CourierID: "c-9", Lat: 1, At: time.Now()}})
	h.Publish(ordercast.Event{OrderID: "z", Seq: 9, Status: ordercast.StatusDelivered, At: time.Now()})
	testutil.WaitFor(t, "the tracker to handle the events", func() bool {
		l := tr.Latest(context.Background(), "z")
		return l == nil
	})
}

// moveThenDeliver publishes the events of order o going to c-b (which the store, as, shows
// already) and then being delivered, and checks that neither courier's posts reach o after.
func moveThenDeliver(t *testing.T, h *hub.Hub, as *byCourier, post func(courierID string) int) {
	t.Helper()
	h.Publish(ordercast.Event{OrderID: "o", Seq: 5, Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery, CourierID: "c-b", At: time.Now()})
	as.set("c-b")
	h.Publish(ordercast.Event{OrderID: "o", Seq: 6, Status: ordercast.StatusDelivered, At: time.Now()})
	testutil.WaitFor(t, "c-b's posts to stop reaching the delivered order", func() bool { return post("c-b") == 0 })
	if n := post("c-a"); n != 0 {
		t.Fatalf("after o was moved to c-b and delivered, c-a's post reached %d orders, want 0", n)
	}
}

// poster returns a function that posts a position of a courier to tr and returns how many
// orders it reached.
func poster(t *testing.T, tr *location.Tracker) func(courierID string) int {
	return func(courierID string) int {
		t.Helper()
		n, err := tr.Post(context.Background(), courierID, at(1, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// A courier's first post after an order came to it reaches the order though the event that gave
// it the order arrives while the post reads the courier's orders: the read already shows the
// order at that event's version, with this courier, so the event cannot have taken it away.
func TestNewCouriersReadThatShowsTheEventReachesTheOrder(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as)
	ctx := context.Background()
	as.set("c-a", ordercast.Order{ID: "o", Status: ordercast.StatusOutForDelivery, CourierID: "c-a", Version: 4})
	if n, err := tr.Post(ctx, "c-a", at(1, time.Now())); err != nil || n != 1 {
		t.Fatalf("c-a's post = %d, %v; want order o reached", n, err)
	}
	// o goes to c-b at version 5; c-b's read sees it, and the event arrives while it reads.
	as.set("c-a")
	as.set("c-b", ordercast.Order{ID: "o", Status: ordercast.StatusOutForDelivery, CourierID: "c-b", Version: 5})
	gate := as.hold("c-b")
	done := make(chan int, 1)
	go func() {
		n, err := tr.Post(ctx, "c-b", at(2, time.Now()))
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	<-as.started
	h.Publish(ordercast.Event{OrderID: "o", Seq: 5, Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery, CourierID: "c-b", At: time.Now()})
	waitHandled(t, tr, h)
	close(gate)
	if n := <-done; n != 1 {
		t.Fatalf("c-b's first post reached %d orders, want 1: its read showed o as c-b's at the event's version", n)
	}
	if l := tr.Latest(ctx, "o"); l == nil || l.Update.CourierID != "c-b" {
		t.Fatalf("o's latest position: %v, want c-b's", l)
	}
}

// TestPostManyLaterPositionWithoutAtWins: a request's positions without at are stamped in
// request order, so of one courier's the last wins, as posted one after another; stamped alike,
// the first won. They are stamped microseconds apart, which must not read as a speed: the ETA
// is the one of a courier not yet seen moving.
func TestPostManyLaterPositionWithoutAtWins(t *testing.T) {
	dropoff := ordercast.Point{Lat: 0.05, Lng: 1}
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", Dropoff: &dropoff}}, nil)
	var ps []location.CourierPosition
	for _, lat := range []float64{0.01, 0.02, 0.03} {
		ps = append(ps, location.CourierPosition{CourierID: "c-1", Position: at(lat, time.Time{})})
	}
	for i, r := range tr.PostMany(context.Background(), ps) {
		if r.Err != nil || r.Orders != 1 {
			t.Errorf("position %d: %d orders, %v; want 1", i, r.Orders, r.Err)
		}
	}
	l := tr.Latest(context.Background(), "a")
	if l == nil || l.Update.Lat != 0.03 {
		t.Fatalf("newest of a = %s, want the third position, lat 0.03", describe(l))
	}
	want, _ := ordercast.DefaultETAModel.Estimate(ordercast.DistanceM(ps[2].Point, dropoff), 0)
	if l.Update.ETAS == nil || *l.Update.ETAS != want {
		t.Errorf("ETA of %s, want %d s (no speed yet: the stamps are no time apart)", describe(l), want)
	}
}

// TestFirstETAsOfARunAreSteady: a courier 5 km out, reporting no speed, is estimated from the
// first fix at a typical speed, not the floor: the first estimates of the run stay within a
// sane ratio of the steady one. At the floor the first was 3.4 times the second (3,252 s, then
// 954).
func TestFirstETAsOfARunAreSteady(t *testing.T) {
	const speed = 6.8                              // m/s, the courier's actual speed
	const degree = 111_195.0                       // metres in a degree of latitude
	dropoff := ordercast.Point{Lat: 0.045, Lng: 1} // about 5 km north of the start
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", Dropoff: &dropoff}},
		func(tr *location.Tracker) { tr.Rate = 0 })
	start := time.Now().Add(-30 * time.Second) // in the past, and fresh (Latest) to the end
	for i := range 20 {
		p := at(float64(i)*speed/degree, start.Add(time.Duration(i)*time.Second))
		if _, err := tr.Post(context.Background(), "c-1", p); err != nil {
			t.Fatal(err)
		}
		l := tr.Latest(context.Background(), "a")
		steady, _ := ordercast.DefaultETAModel.Estimate(ordercast.DistanceM(p.Point, dropoff), speed)
		if l == nil || l.Update.ETAS == nil {
			t.Fatalf("fix %d: no ETA (%s)", i, describe(l))
		}
		if ratio := float64(*l.Update.ETAS) / float64(steady); ratio > 1.5 || ratio < 1/1.5 {
			t.Errorf("fix %d: ETA %d s, %.2f times the steady %d s", i, *l.Update.ETAS, ratio, steady)
		}
	}
}

// TestETABeforeThePickup: with positions shown before the pickup (From), a courier on the way to
// the restaurant is estimated through it: the distance is to the pickup and on to the drop-off,
// and standing at the drop-off without the food is not "nearby". Out for delivery, the way is
// the straight line to the drop-off, and there it is nearby. Without a pickup, before it there
// is no estimate at all.
func TestETABeforeThePickup(t *testing.T) {
	pickup, dropoff := ordercast.Point{Lat: 0.02, Lng: 1}, ordercast.Point{Lat: 0, Lng: 1} // 2.2 km apart
	orders := fixed{
		{ID: "ready", Status: ordercast.StatusReady, CourierID: "c-1", Pickup: &pickup, Dropoff: &dropoff},
		{ID: "no-pickup", Status: ordercast.StatusReady, CourierID: "c-1", Dropoff: &dropoff},
		{ID: "out", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", Pickup: &pickup, Dropoff: &dropoff},
	}
	tr, _ := open(t, orders, func(tr *location.Tracker) { tr.Rate, tr.From = 0, ordercast.StatusConfirmed })
	if _, err := tr.Post(context.Background(), "c-1", at(0, time.Now())); err != nil { // at the drop-off
		t.Fatal(err)
	}
	there := ordercast.DistanceM(pickup, dropoff)
	for _, tc := range []struct {
		id       string
		distance float64 // -1: none
		nearby   bool
	}{{"ready", 2 * there, false}, {"no-pickup", -1, false}, {"out", 0, true}} {
		l := tr.Latest(context.Background(), tc.id)
		if l == nil {
			t.Fatalf("%s: no position", tc.id)
		}
		u := l.Update
		switch {
		case tc.distance < 0 && (u.DistanceM != nil || u.ETAS != nil):
			t.Errorf("%s: distance %v, ETA %v; want none without a pickup to go through", tc.id, *u.DistanceM, *u.ETAS)
		case tc.distance >= 0 && (u.DistanceM == nil || math.Abs(*u.DistanceM-tc.distance) > 1 || u.ETAS == nil):
			t.Errorf("%s: %s; want %.0f m to go, with an ETA", tc.id, describe(l), tc.distance)
		case u.Nearby != tc.nearby:
			t.Errorf("%s: nearby %v, want %v", tc.id, u.Nearby, tc.nearby)
		}
	}
}

// TestAParkedPhoneIsStandingStill: speeds under the floor before the courier was seen moving
// are a phone at rest (GPS reports 0.3 m/s as readily as 0): the estimate stays at the typical
// speed, as for 0, and does not jump to the floor's 2.5 times as long.
func TestAParkedPhoneIsStandingStill(t *testing.T) {
	dropoff := ordercast.Point{Lat: 0.05, Lng: 1}
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", Dropoff: &dropoff}},
		func(tr *location.Tracker) { tr.Rate = 0 })
	start := time.Now().Add(-30 * time.Second) // in the past, and fresh (Latest) to the end
	var etas []int64
	for i, speed := range []float64{0, 0.3, 0.5} {
		p := at(0, start.Add(time.Duration(i)*time.Second))
		p.SpeedMPS = &speed
		if _, err := tr.Post(context.Background(), "c-1", p); err != nil {
			t.Fatal(err)
		}
		etas = append(etas, *tr.Latest(context.Background(), "a").Update.ETAS)
	}
	if etas[1] != etas[0] || etas[2] != etas[0] {
		t.Errorf("ETAs of a phone at rest reporting 0, 0.3 and 0.5 m/s: %v; want the same, at the typical speed", etas)
	}
}

// A post that follows a change's commit is judged by that change: the hub has the event before
// the change is answered, so a courier whose app posts the moment its pickup is confirmed, or
// the moment dispatch hands it an order, reaches the order with that very post, and one whose
// order was just delivered reaches it no more. The tracker follows the events on a goroutine of
// its own; a post must not be judged by a copy of the courier's orders that an event already
// published has made stale, only because that goroutine has not run yet. Each round publishes
// one event and posts at once, with no wait between.
func TestPostRightAfterAnEventIsJudgedByIt(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as)
	post := poster(t, tr)
	post("c-0") // the tracker follows the events from its first post on
	for i := range 50 {
		id := fmt.Sprintf("o-%d", i)
		seq := int64(1)
		publish := func(status ordercast.Status, kind ordercast.EventKind, courier string) {
			seq++
			h.Publish(ordercast.Event{OrderID: id, Seq: seq, Kind: kind, Status: status, CourierID: courier, At: time.Now()})
		}
		// Ready and the courier's: its copy is read and kept (the order does not show it yet).
		as.set("c-1", ordercast.Order{ID: id, Status: ordercast.StatusReady, CourierID: "c-1", Version: 2})
		publish(ordercast.StatusReady, ordercast.KindCourier, "c-1")
		waitHandled(t, tr, h)
		if n := post("c-1"); n != 0 {
			t.Fatalf("round %d: a post before the pickup reached %d orders, want 0", i, n)
		}
		// The pickup commits, then the courier posts.
		as.set("c-1", ordercast.Order{ID: id, Status: ordercast.StatusOutForDelivery, CourierID: "c-1", Version: 3})
		publish(ordercast.StatusOutForDelivery, "", "")
		if n := post("c-1"); n != 1 {
			t.Fatalf("round %d: the first post after the pickup's event reached %d orders, want 1", i, n)
		}
		// The delivery commits, then the courier posts.
		as.set("c-1")
		publish(ordercast.StatusDelivered, "", "")
		if n := post("c-1"); n != 0 {
			t.Fatalf("round %d: the first post after the delivery's event reached %d orders, want 0", i, n)
		}
	}
}

// TestPostBeforeTheNodeHearsOfThePickupReachesTheOrderWhenItDoes: on PostgreSQL a node hears of
// a change through its listener, after the change was answered, and a courier's app posts the
// moment its pickup is: the post is judged by the courier's kept orders, which still show the
// order ready, and reaches none. When the pickup's event arrives the post is judged again and
// reaches the order then, not at the courier's next post. A post made before the pickup is not:
// the order did not show its courier then, and never shows that position.
func TestPostBeforeTheNodeHearsOfThePickupReachesTheOrderWhenItDoes(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as)
	ready := ordercast.Order{ID: "o-1", Status: ordercast.StatusReady, CourierID: "c-1", Version: 3}
	as.set("c-1", ready)
	before := time.Now()
	if n := poster(t, tr)("c-1"); n != 0 {
		t.Fatalf("a post while the order is ready reached %d orders, want 0", n)
	}
	// The pickup commits after that post; the node hears of it later.
	picked := ready
	picked.Status, picked.Version = ordercast.StatusOutForDelivery, 4
	as.set("c-1", picked)
	pickedAt := time.Now()
	h.Publish(ordercast.Event{OrderID: "o-1", Seq: 4, Status: ordercast.StatusOutForDelivery, At: pickedAt})
	waitHandled(t, tr, h)
	if l := tr.Latest(context.Background(), "o-1"); l != nil {
		t.Fatalf("the order shows %s, posted before its pickup (at %s), want nothing", describe(l), before.Format(time.StampMicro))
	}

	// Ready again (o-2), the courier's copy kept; the courier posts after the pickup is
	// answered, before the node hears of it.
	ready.ID = "o-2"
	as.set("c-1", ready)
	h.Publish(ordercast.Event{OrderID: "o-2", Seq: 3, Kind: ordercast.KindCourier, Status: ordercast.StatusReady, CourierID: "c-1", At: time.Now()})
	waitHandled(t, tr, h)
	if n := poster(t, tr)("c-1"); n != 0 {
		t.Fatalf("a post while o-2 is ready reached %d orders, want 0", n)
	}
	picked.ID = "o-2"
	as.set("c-1", picked)
	pickedAt = time.Now()
	p := at(7, time.Now())
	if n, err := tr.Post(context.Background(), "c-1", p); err != nil || n != 0 {
		t.Fatalf("the post judged by the copy from before the pickup reached %d orders (%v), want 0: the test needs the stale copy", n, err)
	}
	h.Publish(ordercast.Event{OrderID: "o-2", Seq: 4, Status: ordercast.StatusOutForDelivery, At: pickedAt})
	testutil.WaitFor(t, "the post to reach o-2 once the node hears of its pickup", func() bool {
		l := tr.Latest(context.Background(), "o-2")
		return l != nil && l.Update.Lat == p.Lat && l.Update.At.Equal(p.At.Truncate(time.Microsecond))
	})
}

// TestAReplaySendsNoPositionTooOldToPost: a node that hears of a pickup long after it was made
// (a listener catching up on minutes of events) does not send the courier's last position, posted
// after the pickup but older now than a post may be (MaxAge), as news.
func TestAReplaySendsNoPositionTooOldToPost(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	tr := openKept(t, h, as, func(tr *location.Tracker) { tr.Now = clock })
	ready := ordercast.Order{ID: "o-1", Status: ordercast.StatusReady, CourierID: "c-1", Version: 3}
	as.set("c-1", ready)
	posted := clock()
	// The pickup committed a moment before this post, which the kept copy judges.
	if n, err := tr.Post(context.Background(), "c-1", at(1, posted)); err != nil || n != 0 {
		t.Fatalf("the post = %d orders, %v; want 0: the test needs the copy from before the pickup", n, err)
	}
	picked := ready
	picked.Status, picked.Version = ordercast.StatusOutForDelivery, 4
	as.set("c-1", picked)
	mu.Lock()
	now = now.Add(tr.MaxAge + time.Second)
	mu.Unlock()
	h.Publish(ordercast.Event{OrderID: "o-1", Seq: 4, Status: ordercast.StatusOutForDelivery, At: posted.Add(-time.Millisecond)})
	// Twice: a replay in flight when the first is handled has ended by the second.
	waitHandled(t, tr, h)
	waitHandled(t, tr, h)
	if l := tr.Latest(context.Background(), "o-1"); l != nil {
		t.Fatalf("the order shows %s, a position older than %v, as news", describe(l), tr.MaxAge)
	}
}

// stalePost sets up a courier whose kept copy of its order is from before the pickup (the node
// has not heard of it), and makes its post after the pickup, which that copy judges: it reaches
// nothing until the pickup's event is handled. It returns the pickup's event, not yet published.
func stalePost(t *testing.T, tr *location.Tracker, as *byCourier, courierID, orderID string) ordercast.Event {
	t.Helper()
	ready := ordercast.Order{ID: orderID, Status: ordercast.StatusReady, CourierID: courierID, Version: 3}
	as.set(courierID, ready)
	if n := poster(t, tr)(courierID); n != 0 {
		t.Fatalf("a post while %s is ready reached %d orders, want 0", orderID, n)
	}
	picked := ready
	picked.Status, picked.Version = ordercast.StatusOutForDelivery, 4
	as.set(courierID, picked)
	pickup := ordercast.Event{OrderID: orderID, Seq: 4, Status: ordercast.StatusOutForDelivery, At: time.Now()}
	if n := poster(t, tr)(courierID); n != 0 {
		t.Fatalf("the post judged by the copy from before the pickup reached %d orders, want 0: the test needs the stale copy", n)
	}
	return pickup
}

// TestAReplayWaitsForTheCouriersPostInFlight: a post of many couriers whose read of one is in
// flight when a pickup's event calls for another's last position to be judged again brings that
// courier a newer position, judged by its copy from before the pickup. The replay waits for the
// post and judges the newer position: the customer sees where the courier is, not where it was
// a post ago (nor nothing, until the courier's next post).
func TestAReplayWaitsForTheCouriersPostInFlight(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as)
	pickup := stalePost(t, tr, as, "c-a", "o-1")
	gate := as.hold("c-b")
	newer := at(7, time.Now())
	res := make(chan []location.PostResult, 1)
	go func() {
		res <- tr.PostMany(context.Background(), []location.CourierPosition{{CourierID: "c-a", Position: newer}, {CourierID: "c-b", Position: at(1, time.Now())}})
	}()
	<-as.started // c-b's read is in flight; c-a's position waits with its copy from before the pickup
	h.Publish(pickup)
	waitHandled(t, tr, h) // the pickup is handled while the post reads
	close(gate)
	if r := <-res; r[0].Err != nil || r[0].Orders != 0 {
		t.Fatalf("c-a's position in the post = %d orders, %v; want 0: the test needs the copy from before the pickup", r[0].Orders, r[0].Err)
	}
	testutil.WaitFor(t, "o-1 to show c-a's newest position", func() bool {
		l := tr.Latest(context.Background(), "o-1")
		return l != nil && l.Update.Lat == newer.Lat
	})
}

// TestAReplaysReadThatHangsLetsTheEventsGoOn: the read of a courier's orders that a replay makes
// is bounded, so a store that does not answer holds up the tracker's following of events (what
// keeps its copies honest) for a moment, not for good.
func TestAReplaysReadThatHangsLetsTheEventsGoOn(t *testing.T) {
	as := &byCourier{}
	h := hub.New()
	tr := openKept(t, h, as)
	pickup := stalePost(t, tr, as, "c-1", "o-1")
	as.hang("c-1")
	h.Publish(pickup)
	<-as.started // the replay's read hangs
	waitHandled(t, tr, h)
}

// TestACoarseFixDoesNotMoveTheCourierAwayFromAFineOne: a fix placed by cell towers (accuracy_m
// past CoarseM) among fine ones, most often 500 m off and back, is not shown while the order's
// fine position is recent, measures no speed, and joins no trail; a courier with coarse fixes
// only (indoors) is shown by them once its last fine fix is coarseHold old.
func TestACoarseFixDoesNotMoveTheCourierAwayFromAFineOne(t *testing.T) {
	dropoff := ordercast.Point{Lat: 0.02, Lng: 1}
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", Dropoff: &dropoff}},
		func(tr *location.Tracker) { tr.Rate = 0 })
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	post := func(lat float64, after time.Duration, accuracy float64) int {
		t.Helper()
		p := at(lat, start.Add(after))
		p.AccuracyM = &accuracy
		n, err := tr.Post(ctx, "c-1", p)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const step = 5.0 / 111_195 // 5 m of latitude: a courier at 5 m/s, a fix a second
	for i := range 10 {
		post(float64(i)*step, time.Duration(i)*time.Second, 8)
	}
	fine := tr.Latest(ctx, "a")
	if n := post(10*step+0.005, 10*time.Second, 500); n != 0 { // 550 m ahead
		t.Fatalf("a coarse fix a second after a fine one reached %d orders, want 0", n)
	}
	if l := tr.Latest(ctx, "a"); l != fine {
		t.Fatalf("the order shows %s, want the fine fix %s", describe(l), describe(fine))
	}
	post(11*step, 11*time.Second, 8)
	if _, fixes := tr.Trail("a"); slices.ContainsFunc(fixes, func(f ordercast.TrailFix) bool { return f.Lat > 11*step }) {
		t.Errorf("the trail holds the coarse fix: %v", fixes)
	}
	// Indoors: coarse fixes only. The first ones wait; those past coarseHold show.
	shown := 0
	for i := 12; i < 30; i++ {
		shown += post(11*step+0.0001, time.Duration(i)*time.Second, 300)
	}
	if l := tr.Latest(ctx, "a"); shown == 0 || *l.Update.AccuracyM != 300 {
		t.Errorf("a courier with coarse fixes only for 18 s: %d shown, the order shows %s; want them shown after a while", shown, describe(l))
	}
	// Out again, a fine fix. The same ride without any coarse fix has the same ETA then: the
	// coarse ones measured no speed (shown or held back), nor were a place to measure from.
	post(12*step, 30*time.Second, 8)
	control, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", Dropoff: &dropoff}},
		func(tr *location.Tracker) { tr.Rate = 0 })
	for _, f := range [][2]int{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}, {8, 8}, {9, 9}, {11, 11}, {12, 30}} {
		p := at(float64(f[0])*step, start.Add(time.Duration(f[1])*time.Second)) // {steps, seconds}
		p.AccuracyM = new(8.0)
		if _, err := control.Post(ctx, "c-1", p); err != nil {
			t.Fatal(err)
		}
	}
	if l, want := tr.Latest(ctx, "a"), control.Latest(ctx, "a"); *l.Update.ETAS != *want.Update.ETAS {
		t.Errorf("after coarse fixes, a fine one has the ETA %d s, want %d s as without them", *l.Update.ETAS, *want.Update.ETAS)
	}
	// Another node that hears of the positions judges them alike: the coarse fix it is handed
	// joins no trail there either.
	other, _ := open(t, fixed{}, nil)
	coarseAt, fineAt := 500.0, 8.0
	other.ReceiveLocations([]ordercast.LocationUpdate{
		{OrderID: "a", CourierID: "c-1", Lat: 0, Lng: 1, AccuracyM: &fineAt, At: start},
		{OrderID: "a", CourierID: "c-1", Lat: 0.005, Lng: 1, AccuracyM: &coarseAt, At: start.Add(15 * time.Second)},
		{OrderID: "a", CourierID: "c-1", Lat: 0.0001, Lng: 1, AccuracyM: &fineAt, At: start.Add(16 * time.Second)},
	})
	if _, fixes := other.Trail("a"); slices.ContainsFunc(fixes, func(f ordercast.TrailFix) bool { return f.Lat == 0.005 }) {
		t.Errorf("the trail of a node handed the coarse fix holds it: %v", fixes)
	}
}

// TestAPositionOnNoOrderSaysTheMostParticularReason: of a courier's several orders, one holding
// a coarse fix back behind its fine one and another showing a newer fix, the post says the
// coarse fix was held, whichever order comes first; newer_fix_taken only when no order held it
// back so.
func TestAPositionOnNoOrderSaysTheMostParticularReason(t *testing.T) {
	a := ordercast.Order{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", CustomerID: "cu-1"}
	b := ordercast.Order{ID: "b", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", CustomerID: "cu-1"}
	for _, orders := range []fixed{{a, b}, {b, a}} {
		tr, _ := open(t, orders, func(tr *location.Tracker) { tr.Rate = 0 })
		start := time.Now().Add(-time.Minute)
		fine, coarse := 8.0, 500.0
		post := func(after time.Duration, accuracy float64) location.PostResult {
			p := at(1, start.Add(after))
			p.AccuracyM = &accuracy
			return tr.PostMany(context.Background(), []location.CourierPosition{{CourierID: "c-1", Position: p}})[0]
		}
		if r := post(0, fine); r.Orders != 2 {
			t.Fatalf("orders %s, %s: the first fix reached %d orders, want 2", orders[0].ID, orders[1].ID, r.Orders)
		}
		tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "b", CourierID: "c-1", Lat: 1, Lng: 1, AccuracyM: &fine, At: start.Add(5 * time.Second)}})
		if r := post(time.Second, coarse); r.Orders != 0 || r.Missed != location.MissedCoarse {
			t.Errorf("orders %s, %s: a coarse fix = %d orders, missed %q; want 0, %q", orders[0].ID, orders[1].ID, r.Orders, r.Missed, location.MissedCoarse)
		}
		if r := post(2*time.Second, fine); r.Orders != 1 || r.Missed != "" {
			t.Errorf("orders %s, %s: a fine fix = %d orders, missed %q; want a reached, nothing missed", orders[0].ID, orders[1].ID, r.Orders, r.Missed)
		}
	}
}

// TestAnOrderLongUnchangedStopsShowingItsCourier: an order out for delivery that has not changed
// for StopAfter (one its courier never marked delivered) no longer takes the courier's
// positions, and the answer says why; the courier's other order, picked up since, still does,
// and with StopAfter off the old one does too.
func TestAnOrderLongUnchangedStopsShowingItsCourier(t *testing.T) {
	now := time.Now()
	old := ordercast.Order{ID: "old", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", UpdatedAt: now.Add(-location.DefaultStopAfter - time.Minute)}
	fresh := ordercast.Order{ID: "fresh", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", UpdatedAt: now.Add(-time.Minute)}
	post := func(tr *location.Tracker, after time.Duration) location.PostResult {
		return tr.PostMany(context.Background(), []location.CourierPosition{{CourierID: "c-1", Position: at(1, now.Add(after))}})[0]
	}

	tr, _ := open(t, fixed{old}, func(tr *location.Tracker) { tr.Rate = 0 })
	if r := post(tr, 0); r.Orders != 0 || r.Missed != location.MissedStopped {
		t.Errorf("an order unchanged for %s: %d orders, missed %q; want 0, %q", location.DefaultStopAfter, r.Orders, r.Missed, location.MissedStopped)
	}
	tr, _ = open(t, fixed{old, fresh}, func(tr *location.Tracker) { tr.Rate = 0 })
	if r := post(tr, 0); r.Orders != 1 || r.Missed != "" {
		t.Errorf("with an order picked up since: %d orders, missed %q; want 1 (the fresh one)", r.Orders, r.Missed)
	}
	if latest, _ := tr.Trail("old"); latest != nil {
		t.Errorf("the order unchanged for %s shows the courier at %+v", location.DefaultStopAfter, latest.Update)
	}
	tr, _ = open(t, fixed{old}, func(tr *location.Tracker) { tr.Rate, tr.StopAfter = 0, 0 })
	if r := post(tr, 0); r.Orders != 1 {
		t.Errorf("with no bound: %d orders, missed %q; want 1", r.Orders, r.Missed)
	}
}

// TestAFixBeforeTheOrdersChangeIsJudgedOnlyWhereItCan: a fix dated by its sender more than
// LocationClockSkew before the change that made its order show the courier reaches no order
// (fix_before_order_change); one dated within it does. Not judged: a fix that came without its
// time (stamped on arrival, measured now, whatever the database's clock said of the change); an
// order past the stage that shows its courier (its last change is another: with an earlier
// --location-from the restaurant moved it on since); an order without its time of change. The
// very fix an order shows, posted again, is answered as the first time, and goes to no watcher
// again.
func TestAFixBeforeTheOrdersChangeIsJudgedOnlyWhereItCan(t *testing.T) {
	ctx := context.Background()
	changed := time.Now().Add(-20 * time.Second) // the pickup, by the store's stamp
	out := ordercast.Order{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", UpdatedAt: changed}
	post := func(tr *location.Tracker, p ordercast.Position) location.PostResult {
		return tr.PostMany(ctx, []location.CourierPosition{{CourierID: "c-1", Position: p}})[0]
	}
	tr, h := open(t, fixed{out}, func(tr *location.Tracker) { tr.Rate = 0 })
	s := h.Subscribe("a")
	defer s.Close()
	if r := post(tr, at(1, changed.Add(-10*time.Second))); r.Orders != 0 || r.Missed != location.MissedBeforeChange {
		t.Errorf("a fix 10 s before the pickup: %+v, want no order, %s", r, location.MissedBeforeChange)
	}
	if l := s.TakeLocation(); l != nil {
		t.Errorf("the fix from before the pickup went to the order's watchers: %+v", l.Update)
	}
	within := at(2, changed.Add(-3*time.Second))
	if r := post(tr, within); r.Orders != 1 {
		t.Errorf("a fix 3 s before the pickup (within the clocks' tolerance): %+v, want it to reach the order", r)
	}
	if l := s.TakeLocation(); l == nil || l.Update.Lat != 2 {
		t.Fatalf("the order's watchers got %v, want the fix", l)
	}
	if r := post(tr, within); r.Orders != 1 || r.Missed != "" {
		t.Errorf("the same fix posted again: %+v, want it answered as the first time", r)
	}
	if l := s.TakeLocation(); l != nil {
		t.Errorf("the same fix posted again went to the order's watchers again: %+v", l.Update)
	}

	// The database's clock runs a minute ahead of this node's: the change is stamped in this
	// node's future, and a fix stamped on arrival is still taken.
	ahead := out
	ahead.UpdatedAt = time.Now().Add(time.Minute)
	tr, _ = open(t, fixed{ahead}, func(tr *location.Tracker) { tr.Rate = 0 })
	if r := post(tr, ordercast.Position{Point: ordercast.Point{Lat: 1, Lng: 1}}); r.Orders != 1 {
		t.Errorf("a fix without its time, the change stamped a minute ahead: %+v, want it to reach the order", r)
	}

	// Positions shown from confirmed on: an order the restaurant moved on to preparing since is
	// not judged by that change; one just confirmed is.
	for _, tc := range []struct {
		status ordercast.Status
		orders int
	}{{ordercast.StatusPreparing, 1}, {ordercast.StatusConfirmed, 0}} {
		o := ordercast.Order{ID: "b", Status: tc.status, CourierID: "c-1", UpdatedAt: changed}
		tr, _ = open(t, fixed{o}, func(tr *location.Tracker) { tr.Rate, tr.From = 0, ordercast.StatusConfirmed })
		if r := post(tr, at(1, changed.Add(-10*time.Second))); r.Orders != tc.orders {
			t.Errorf("from confirmed, an order at %s: a fix 10 s before its last change reached %d orders, want %d", tc.status, r.Orders, tc.orders)
		}
	}

	unstamped := out
	unstamped.UpdatedAt = time.Time{}
	tr, _ = open(t, fixed{unstamped}, func(tr *location.Tracker) { tr.Rate = 0 })
	if r := post(tr, at(1, changed.Add(-10*time.Second))); r.Orders != 1 {
		t.Errorf("an order without its time of change: %+v, want the fix to reach it", r)
	}
}
