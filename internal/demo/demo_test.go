package demo_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/demo"
	"github.com/ordercast/ordercast/internal/storetest"
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
	if err := sim.Open(); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			sim.Close()
		}
	})

	// Poll with a deadline until both endings have happened at least once.
	ended := map[ordercast.Status]bool{}
	for deadline := time.Now().Add(20 * time.Second); !ended[ordercast.StatusDelivered] || !ended[ordercast.StatusCancelled]; {
		if time.Now().After(deadline) {
			t.Fatalf("no delivered and cancelled orders within 20s; saw endings %v", ended)
		}
		for _, ev := range rec.Events() {
			if ev.Status.Terminal() {
				ended[ev.Status] = true
			}
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an outcome
	}
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
	if err := sim.Open(); err == nil {
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
	if err := sim.Open(); err != nil {
		t.Fatal(err)
	}
	var deliveredID string
	for deadline := time.Now().Add(20 * time.Second); deliveredID == ""; {
		if time.Now().After(deadline) {
			t.Fatal("no order delivered within 20s")
		}
		for _, ev := range rec.Events() {
			if ev.Status == ordercast.StatusDelivered {
				deliveredID = ev.OrderID
			}
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an outcome
	}
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
