package demo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/demo"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/sqlite"
)

func TestSimulatorMovesOrdersThroughTheStoreToTheEnd(t *testing.T) {
	rec := &storetest.Recorder{}
	st := sqlite.New(filepath.Join(t.TempDir(), "demo.db"))
	st.Publisher = rec
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	sim := demo.New(st)
	sim.Every, sim.MinStep, sim.MaxStep = time.Millisecond, time.Millisecond, 2*time.Millisecond
	sim.CancelChance = 0.2
	sim.MaxActive = 4
	if err := sim.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			sim.Close()
		}
	})

	// Until both endings have happened at least once.
	testutil.WaitFor(t, "a delivered and a cancelled order", func() bool {
		ended := map[ordercast.Status]bool{}
		for _, ev := range rec.Events() {
			ended[ev.Status] = true
		}
		return ended[ordercast.StatusDelivered] && ended[ordercast.StatusCancelled]
	})
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true

	// Close waited for every goroutine: nothing is published after it returns.
	published := rec.Len()
	ctx := context.Background()
	byOrder := map[string][]ordercast.Event{}
	for _, ev := range rec.Events() {
		byOrder[ev.OrderID] = append(byOrder[ev.OrderID], ev)
	}
	for id, evs := range byOrder {
		stored, err := st.EventsAfter(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != len(evs) {
			t.Fatalf("order %s: published %d events, stored %d", id, len(evs), len(stored))
		}
		for i, ev := range evs {
			if ev.Seq != int64(i+1) || ev.Actor != demo.Actor {
				t.Fatalf("order %s event %d: seq %d actor %q, want seq %d actor %q", id, i, ev.Seq, ev.Actor, i+1, demo.Actor)
			}
			if ev.Kind == ordercast.KindCourier {
				// An assignment keeps the status and goes to the courier's log too.
				if ev.Status != evs[i-1].Status || ev.CourierID == "" || ev.Marks.Pos("courier:"+ev.CourierID) == 0 {
					t.Fatalf("order %s: assignment %+v", id, ev)
				}
				continue
			}
			if ev.Marks == "" {
				t.Fatalf("order %s event %d is in no party's log", id, i)
			}
			if i > 0 {
				if err := ordercast.CheckTransition(evs[i-1].Status, ev.Status); err != nil {
					t.Fatalf("order %s: %v", id, err)
				}
			}
		}
	}
	if got := rec.Len(); got != published {
		t.Fatalf("%d events published after Close returned", got-published)
	}
}

func TestOpenRejectsBadSettings(t *testing.T) {
	sim := demo.New(nil)
	if err := sim.Open(context.Background()); err == nil {
		t.Fatal("Open without a store succeeded")
	}
}

// poster records the positions the simulator posts.
type poster struct {
	mu  sync.Mutex
	got map[string][]ordercast.Position
}

func (p *poster) Post(_ context.Context, courierID string, pos ordercast.Position) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got[courierID] = append(p.got[courierID], pos)
	return 1, nil
}

// With a Positions poster, each courier drives its order from the restaurant to the door before
// it is delivered, reporting valid positions with a speed on the way.
func TestSimulatorDrivesCouriersToTheDoor(t *testing.T) {
	rec := &storetest.Recorder{}
	st := sqlite.New(filepath.Join(t.TempDir(), "demo.db"))
	st.Publisher = rec
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := &poster{got: map[string][]ordercast.Position{}}
	sim := demo.New(st)
	sim.Every, sim.MinStep, sim.MaxStep = time.Millisecond, time.Millisecond, 2*time.Millisecond
	sim.CancelChance, sim.MaxActive = 0, 1
	sim.Positions, sim.Drive, sim.Tick = p, 20*time.Millisecond, time.Millisecond
	if err := sim.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	var deliveredID string
	testutil.WaitFor(t, "an order delivered", func() bool {
		for _, ev := range rec.Events() {
			if ev.Status == ordercast.StatusDelivered {
				deliveredID = ev.OrderID
			}
		}
		return deliveredID != ""
	})
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	delivered, err := st.Order(context.Background(), deliveredID)
	if err != nil {
		t.Fatal(err)
	}
	route := p.got[delivered.CourierID]
	if len(route) < 3 {
		t.Fatalf("courier %s posted %d positions, want a drive", delivered.CourierID, len(route))
	}
	last := route[len(route)-1]
	if d := ordercast.DistanceM(last.Point, *delivered.Dropoff); d > 1 {
		t.Errorf("the drive ended %v m from the door", d)
	}
	for _, pos := range route {
		if err := pos.Validate(time.Now(), time.Minute); err != nil || pos.SpeedMPS == nil {
			t.Fatalf("position %+v: %v", pos, err)
		}
	}
}

// openStore opens a fresh SQLite store that hands every event it commits to rec.
func openStore(t *testing.T, rec *storetest.Recorder) *sqlite.Store {
	t.Helper()
	st := sqlite.New(filepath.Join(t.TempDir(), "demo.db"))
	st.Publisher = rec
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// oneOrderPerCourier is a store that checks, as each courier is assigned, that the courier has
// no other active order, and a poster that checks each position's courier carries exactly one.
type oneOrderPerCourier struct {
	ordercast.Store
	mu         sync.Mutex
	violations []string
	positions  int
}

func (s *oneOrderPerCourier) AssignCourier(ctx context.Context, c ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	s.check(ctx, c.CourierID, 0, "assigned to "+c.OrderID)
	return s.Store.AssignCourier(ctx, c)
}

func (s *oneOrderPerCourier) Post(ctx context.Context, courierID string, _ ordercast.Position) (int, error) {
	s.check(ctx, courierID, 1, "posted a position")
	s.mu.Lock()
	s.positions++
	s.mu.Unlock()
	return 1, nil
}

// check notes a violation unless courier has exactly want active orders.
func (s *oneOrderPerCourier) check(ctx context.Context, courier string, want int, what string) {
	orders, err := s.Store.CouriersOrders(ctx, []string{courier})
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil:
		s.violations = append(s.violations, fmt.Sprintf("courier %s %s: %v", courier, what, err))
	case err == nil && len(orders[courier]) != want:
		var ids []string
		for _, o := range orders[courier] {
			ids = append(ids, o.ID+" ("+string(o.Status)+")")
		}
		s.violations = append(s.violations, fmt.Sprintf("courier %s %s with active orders %v, want %d", courier, what, ids, want))
	}
}

// TestCourierCarriesOneOrderAtATime: however many orders are in flight, no courier is ever
// assigned an order while another of its orders is active, nor drives with two: with more orders
// than couriers, an order waits for one.
func TestCourierCarriesOneOrderAtATime(t *testing.T) {
	if demo.DefaultMaxActive > len(demo.Couriers) {
		t.Errorf("DefaultMaxActive is %d with %d couriers: orders would wait for one", demo.DefaultMaxActive, len(demo.Couriers))
	}
	rec := &storetest.Recorder{}
	st := &oneOrderPerCourier{Store: openStore(t, rec)}
	sim := demo.New(st)
	sim.Every, sim.MinStep, sim.MaxStep = time.Millisecond, time.Millisecond, 3*time.Millisecond
	sim.CancelChance = 0.1
	sim.MaxActive = len(demo.Couriers) + 4 // more orders than couriers
	sim.Positions, sim.Drive, sim.Tick = st, 15*time.Millisecond, 2*time.Millisecond
	if err := sim.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	// Until every courier has delivered at least twice, so each was taken again after an order.
	want := 2 * len(demo.Couriers)
	testutil.WaitFor(t, fmt.Sprintf("%d orders delivered", want), func() bool {
		delivered := map[string]int{}
		for _, ev := range rec.Events() {
			if ev.Status == ordercast.StatusDelivered {
				delivered[ev.OrderID]++
			}
		}
		return len(delivered) >= want
	})
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, v := range st.violations {
		t.Error(v)
	}
	if st.positions == 0 {
		t.Error("no courier posted a position")
	}
}

// TestOpenCancelsWhatAnEarlierRunLeft: a demo stopped mid-way leaves orders active; the next
// Open cancels the demo's own (as the demo, noting the restart, so their watchers see them end),
// and leaves orders the demo did not create alone.
func TestOpenCancelsWhatAnEarlierRunLeft(t *testing.T) {
	rec := &storetest.Recorder{}
	st := openStore(t, rec)
	ctx := context.Background()

	// A first run whose couriers never arrive: its orders stop mid-way, some out for delivery.
	first := demo.New(st)
	first.Every, first.MinStep, first.MaxStep = time.Millisecond, time.Millisecond, 2*time.Millisecond
	first.CancelChance, first.MaxActive = 0, 4
	first.Positions, first.Drive, first.Tick = &poster{got: map[string][]ordercast.Position{}}, time.Hour, time.Second
	if err := first.Open(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, fmt.Sprintf("%d orders out for delivery", first.MaxActive), func() bool {
		out := 0
		for _, ev := range rec.Events() {
			if ev.Status == ordercast.StatusOutForDelivery {
				out++
			}
		}
		return out == first.MaxActive
	})
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	left, err := st.ActiveOrders(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != first.MaxActive {
		t.Fatalf("the first run left %d orders active, want %d", len(left), first.MaxActive)
	}
	// An order of the console's, which the demo must not touch.
	if _, _, err := st.CreateOrder(ctx, ordercast.NewOrder{ID: "o-console", Actor: "admin:console", RestaurantID: demo.Restaurants[0].ID}); err != nil {
		t.Fatal(err)
	}
	published := rec.Len()

	second := demo.New(st)
	second.Every = time.Hour // one new order, at once
	second.MinStep, second.MaxStep = time.Hour, time.Hour
	if err := second.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })

	// When Open returns, every leftover has ended, and its watchers were told.
	cancelled := map[string]bool{}
	for _, ev := range rec.Events()[published:] {
		if ev.Status == ordercast.StatusCancelled {
			cancelled[ev.OrderID] = true
		}
	}
	for _, o := range left {
		got, err := st.Order(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.EventsAfter(ctx, o.ID, got.Version-1, 0)
		if err != nil {
			t.Fatal(err)
		}
		last := evs[len(evs)-1]
		if got.Status != ordercast.StatusCancelled || last.Actor != demo.Actor || last.Note != demo.RestartNote {
			t.Errorf("order %s after the restart: %s by %q, note %q; want cancelled by %q, note %q",
				o.ID, got.Status, last.Actor, last.Note, demo.Actor, demo.RestartNote)
		}
		if !cancelled[o.ID] {
			t.Errorf("order %s: its cancellation was not published", o.ID)
		}
	}
	if o, err := st.Order(ctx, "o-console"); err != nil || o.Status != ordercast.StatusPlaced {
		t.Errorf("the console's order after the restart: %s, %v; want it placed still", o.Status, err)
	}
}

// console moves each order the simulator is about to move to preparing on to ready first, as an
// operator might in the console: the simulator's own change then meets a version conflict.
type console struct {
	ordercast.Store
	mu    sync.Mutex
	moved map[string]bool
}

func (c *console) AppendStatus(ctx context.Context, sc ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	if sc.Status == ordercast.StatusPreparing {
		if _, _, _, err := c.Store.AppendStatus(ctx, ordercast.StatusChange{OrderID: sc.OrderID, Status: ordercast.StatusReady, Actor: "admin:console"}); err == nil {
			c.mu.Lock()
			c.moved[sc.OrderID] = true
			c.mu.Unlock()
		}
	}
	return c.Store.AppendStatus(ctx, sc)
}

// TestSimulatorGoesOnWithOrdersMovedElsewhere: an order of the demo's that someone else moved on
// (the console) is not left stuck: the simulator goes on from where it is, gives it a courier and
// delivers it, and every courier is free again afterwards, so orders keep being delivered.
func TestSimulatorGoesOnWithOrdersMovedElsewhere(t *testing.T) {
	rec := &storetest.Recorder{}
	st := &console{Store: openStore(t, rec), moved: map[string]bool{}}
	sim := demo.New(st)
	sim.Every, sim.MinStep, sim.MaxStep = time.Millisecond, time.Millisecond, 2*time.Millisecond
	sim.CancelChance = 0
	sim.MaxActive = len(demo.Couriers)
	if err := sim.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	// More deliveries than couriers: a courier kept by an order moved elsewhere would stop them.
	want := 2 * len(demo.Couriers)
	testutil.WaitFor(t, fmt.Sprintf("%d orders moved elsewhere delivered", want), func() bool {
		delivered := 0
		for _, ev := range rec.Events() {
			if ev.Status == ordercast.StatusDelivered {
				st.mu.Lock()
				if st.moved[ev.OrderID] {
					delivered++
				}
				st.mu.Unlock()
			}
		}
		return delivered >= want
	})
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	// Each order moved elsewhere skipped preparing, and still got its courier before delivery.
	byOrder := map[string][]ordercast.Event{}
	for _, ev := range rec.Events() {
		byOrder[ev.OrderID] = append(byOrder[ev.OrderID], ev)
	}
	for id, evs := range byOrder {
		if last := evs[len(evs)-1]; last.Status != ordercast.StatusDelivered {
			continue
		}
		var statuses []string
		courier := false
		for _, ev := range evs {
			if ev.Kind == ordercast.KindCourier {
				courier = true
				continue
			}
			statuses = append(statuses, string(ev.Status))
		}
		if got, want := fmt.Sprint(statuses), "[placed confirmed ready out_for_delivery delivered]"; got != want || !courier {
			t.Errorf("order %s went %s (a courier: %v), want %s with a courier", id, got, courier, want)
		}
	}
}
