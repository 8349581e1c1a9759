package demo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/demo"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/sqlite"
)

// courierPage is a store on which a person on each courier's page takes the order out of the
// simulator's hands, and the simulator's poster: the person presses "Picked up" just before the
// simulator would set out for delivery, then "Delivered" early, while the simulator drives its
// route (at the order's second position). The poster answers as the location tracker does: how
// many of the courier's orders are out for delivery, so none once the order is delivered.
type courierPage struct {
	ordercast.Store
	mu        sync.Mutex
	posted    map[string]int  // positions posted while each order was out for delivery
	delivered map[string]bool // the orders the person delivered
}

// person makes a change as the order's courier, as the courier's page does.
func (s *courierPage) person(ctx context.Context, orderID string, to ordercast.Status) error {
	o, err := s.Store.Order(ctx, orderID)
	if err != nil {
		return err
	}
	_, _, _, err = s.Store.AppendStatus(ctx, ordercast.StatusChange{
		OrderID: orderID, Status: to, Note: "set on the courier's page", Actor: "courier:" + o.CourierID, ExpectedVersion: o.Version,
	})
	return err
}

func (s *courierPage) AppendStatus(ctx context.Context, sc ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	if sc.Status == ordercast.StatusOutForDelivery && sc.Actor == demo.Actor {
		_ = s.person(ctx, sc.OrderID, ordercast.StatusOutForDelivery) // the simulator's change then conflicts
	}
	return s.Store.AppendStatus(ctx, sc)
}

func (s *courierPage) Post(ctx context.Context, courierID string, _ ordercast.Position) (int, error) {
	orders, err := s.Store.CouriersOrders(ctx, []string{courierID})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range orders[courierID] {
		if o.Status != ordercast.StatusOutForDelivery {
			continue
		}
		s.mu.Lock()
		s.posted[o.ID]++
		early := s.posted[o.ID] == 2
		s.mu.Unlock()
		if early {
			if err := s.person(ctx, o.ID, ordercast.StatusDelivered); err == nil {
				s.mu.Lock()
				s.delivered[o.ID] = true
				s.mu.Unlock()
				continue
			}
		}
		n++
	}
	return n, nil
}

// lastCourier is the courier an order's events evs last assigned.
func lastCourier(evs []ordercast.Event) string {
	courier := ""
	for _, ev := range evs {
		if ev.Kind == ordercast.KindCourier {
			courier = ev.CourierID
		}
	}
	return courier
}

func (s *courierPage) deliveredCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.delivered)
}

// TestCourierPageTakesOverTheSimulatedOrder: a person on a demo courier's page who presses
// "Picked up" before the simulator and "Delivered" while the simulator still drives the route
// ends that order's simulation at once: the simulator writes nothing more to the order and its
// courier is free for the next, so with drives an hour long every courier still delivers order
// after order.
func TestCourierPageTakesOverTheSimulatedOrder(t *testing.T) {
	rec := &storetest.Recorder{}
	st := &courierPage{Store: openStore(t, rec), posted: map[string]int{}, delivered: map[string]bool{}}
	sim := demo.New(st)
	sim.Every, sim.MinStep, sim.MaxStep = time.Millisecond, time.Millisecond, 2*time.Millisecond
	sim.CancelChance = 0
	sim.MaxActive = len(demo.Couriers)
	sim.Positions, sim.Drive, sim.Tick = st, time.Hour, time.Millisecond
	if err := sim.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	// More deliveries than couriers: a courier held to the end of its hour-long drive, or kept
	// by an order that ended elsewhere, would stop them.
	want := 2 * len(demo.Couriers)
	testutil.WaitFor(t, fmt.Sprintf("%d orders delivered on the courier's page", want), func() bool {
		return st.deliveredCount() >= want
	})
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	byOrder := map[string][]ordercast.Event{}
	for _, ev := range rec.Events() {
		byOrder[ev.OrderID] = append(byOrder[ev.OrderID], ev)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for id := range st.delivered {
		evs := byOrder[id]
		var got []string
		for _, ev := range evs[len(evs)-2:] {
			got = append(got, string(ev.Status)+" by "+ev.Actor)
		}
		courier := "courier:" + lastCourier(evs)
		if want := []string{"out_for_delivery by " + courier, "delivered by " + courier}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("order %s ended with %v, want %v: nothing of the simulator's after the person's changes", id, got, want)
		}
	}
}

// drivePoster is the location tracker as the simulator's poster, counting the drive's posts and
// its reads of an order's newest position (a tick of the drive does one or the other, or both),
// and the reads that found a position the drive did not post: the person's.
type drivePoster struct {
	*location.Tracker
	mu      sync.Mutex
	courier string    // the courier the drive last posted for
	own     time.Time // the time of the drive's last position
	posts   int
	reads   int
	others  int // reads that found a position of someone else's
}

func (p *drivePoster) Post(ctx context.Context, courierID string, pos ordercast.Position) (int, error) {
	p.mu.Lock()
	p.courier, p.own, p.posts = courierID, pos.At, p.posts+1
	p.mu.Unlock()
	return p.Tracker.Post(ctx, courierID, pos)
}

func (p *drivePoster) Latest(ctx context.Context, orderID string) *hub.Location {
	l := p.Tracker.Latest(ctx, orderID)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads++
	if l != nil && !l.Update.At.Truncate(time.Microsecond).Equal(p.own.Truncate(time.Microsecond)) {
		p.others++
	}
	return l
}

func (p *drivePoster) count() (courier string, posts, ticks int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.courier, p.posts, max(p.posts, p.reads)
}

func (p *drivePoster) sawSomeoneElse() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.others > 0
}

// TestDriveYieldsToAPersonSharing: while a person shares the phone's position on a demo
// courier's page, the simulated drive posts none for that courier, so the order's map shows the
// person alone; once the person has been quiet for PersonQuiet, the drive goes on.
func TestDriveYieldsToAPersonSharing(t *testing.T) {
	h := hub.New()
	st := sqlite.New(filepath.Join(t.TempDir(), "demo.db"))
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tr := location.New(h, st)
	tr.Rate, tr.AssignmentsTTL = 0, 0
	if err := tr.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	p := &drivePoster{Tracker: tr}
	sim := demo.New(st)
	sim.Every, sim.MinStep, sim.MaxStep = time.Millisecond, time.Millisecond, 2*time.Millisecond
	sim.CancelChance, sim.MaxActive = 0, 1
	sim.Positions, sim.Drive, sim.Tick, sim.PersonQuiet = p, time.Hour, 2*time.Millisecond, time.Second
	if err := sim.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	testutil.WaitFor(t, "a drive", func() bool {
		_, posts, _ := p.count()
		return posts > 0
	})
	courier, _, _ := p.count()

	// The person shares a position a millisecond, as a phone would every second.
	ctx, stop := context.WithCancel(context.Background())
	person := make(chan struct{})
	go func() {
		defer close(person)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := tr.Post(ctx, courier, ordercast.Position{Point: ordercast.Point{Lat: 52.5, Lng: 13.4}, At: time.Now()}); err != nil && ctx.Err() == nil {
				t.Errorf("the person's position: %v", err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { // before the store closes
		stop()
		<-person
	})
	ticks := func(more int) {
		t.Helper()
		_, _, from := p.count()
		testutil.WaitFor(t, fmt.Sprintf("%d more ticks of the drive", more), func() bool {
			_, _, n := p.count()
			return n >= from+more
		})
	}
	// Once the drive has read the person's position as the order's newest, it posts none while
	// the person goes on (a position a millisecond, PersonQuiet a second). Counting ticks here
	// instead raced: a drive's position stamped after the person's could still win a few ticks.
	testutil.WaitFor(t, "the drive reading the person's position", p.sawSomeoneElse)
	_, before, _ := p.count()
	ticks(20)
	if _, after, _ := p.count(); after != before {
		t.Errorf("the drive posted %d positions while the person shared, want none", after-before)
	}
	stop()
	<-person
	testutil.WaitFor(t, "the drive posting again once the person is quiet", func() bool {
		_, after, _ := p.count()
		return after > before
	})
}
