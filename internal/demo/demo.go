// Package demo simulates a busy restaurant floor inside the process, so that `ordercast serve
// --demo` shows live movement at once. It goes through the Store like the API does (CreateOrder,
// AppendStatus), so every change it makes is committed, published and streamed the usual way.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/clock"
)

// Defaults for the simulator's tunables: a new order every few seconds, each taking under a
// minute from placed to delivered, so a person watching sees every stage without waiting long.
const (
	DefaultEvery        = 4 * time.Second
	DefaultMinStep      = 2 * time.Second
	DefaultMaxStep      = 8 * time.Second
	DefaultCancelChance = 0.08
	// DefaultMaxActive is as many orders as there are Couriers, so that no order waits for one.
	DefaultMaxActive = 12
	// DefaultDrive is how long a courier takes from the restaurant to the door, and DefaultTick
	// how often it reports its position on the way: a phone on a delivery app, sped up.
	DefaultDrive = time.Minute
	DefaultTick  = time.Second
	// DefaultPersonQuiet is how long a drive posts nothing for its courier after a position it did
	// not post itself: a person on the courier's page shares the phone's (about one a second),
	// and the map must not jump between the person and the simulation.
	DefaultPersonQuiet = 10 * time.Second
	// Actor is who the simulator's changes are recorded as.
	Actor = "demo"
	// RestartNote is the note of the cancellation that ends an order an earlier run left mid-way.
	RestartNote = "demo restarted"
)

// Simulator creates orders and moves each through its stages with random delays, sometimes
// cancelling one. Set the exported fields after New and before Open.
type Simulator struct {
	Store  ordercast.Store
	Logger *slog.Logger

	// Every is the pause between new orders.
	Every time.Duration
	// MinStep and MaxStep bound the random pause before each stage change.
	MinStep, MaxStep time.Duration
	// CancelChance is the probability, at each stage change, that the order is cancelled instead.
	CancelChance float64
	// MaxActive caps the orders in flight; no new order starts while that many are moving. With
	// more than there are Couriers, an order waits at preparing until a courier is free.
	MaxActive int
	// Positions, when set, takes the couriers' positions while they drive each order out,
	// every Tick for Drive; without it an order goes from out for delivery to delivered after
	// a step like any other.
	Positions   Poster
	Drive, Tick time.Duration
	// PersonQuiet is how long after a position of its courier's that it did not post a drive
	// posts none (see personPosting).
	PersonQuiet time.Duration

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	slots    chan struct{} // one token per order in flight
	couriers chan Party    // the couriers with no order: one carries one order at a time
}

// New returns a simulator with the default pace, writing to store.
func New(store ordercast.Store) *Simulator {
	return &Simulator{
		Store:        store,
		Every:        DefaultEvery,
		MinStep:      DefaultMinStep,
		MaxStep:      DefaultMaxStep,
		CancelChance: DefaultCancelChance,
		MaxActive:    DefaultMaxActive,
		Drive:        DefaultDrive,
		Tick:         DefaultTick,
		PersonQuiet:  DefaultPersonQuiet,
	}
}

// Poster takes a courier's position: the location tracker.
type Poster interface {
	Post(ctx context.Context, courierID string, p ordercast.Position) (int, error)
}

// LatestPositions is what a Poster may have besides (the location tracker has it): an order's
// newest position, by which a drive learns that someone else posts for its courier.
type LatestPositions interface {
	Latest(ctx context.Context, orderID string) *hub.Location
}

// Open validates the settings, cancels the orders an earlier run left mid-way (cancelLeftovers),
// and starts simulating in the background; Close stops it.
func (s *Simulator) Open(ctx context.Context) error {
	switch {
	case s.Store == nil:
		return errors.New("demo: Store is required")
	case s.Every <= 0 || s.MinStep <= 0 || s.MaxStep < s.MinStep:
		return errors.New("demo: Every and MinStep must be positive, MaxStep at least MinStep")
	case s.CancelChance < 0 || s.CancelChance > 1:
		return errors.New("demo: CancelChance must be between 0 and 1")
	case s.MaxActive < 1:
		return errors.New("demo: MaxActive must be at least 1")
	case s.Positions != nil && (s.Tick <= 0 || s.Drive < s.Tick):
		return errors.New("demo: Tick must be positive and Drive at least Tick")
	case s.PersonQuiet < 0:
		return errors.New("demo: PersonQuiet must not be negative")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if err := s.cancelLeftovers(ctx); err != nil {
		return err
	}
	s.couriers = make(chan Party, len(Couriers))
	for _, i := range rand.Perm(len(Couriers)) {
		s.couriers <- Couriers[i]
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.slots = make(chan struct{}, s.MaxActive)
	s.wg.Go(s.run)
	return nil
}

// cancelLeftovers cancels the demo's own orders that are still active: an earlier run's, which
// Close left mid-way. Nothing would ever move them again, and their maps would show this run's
// couriers, whose ids they share. The change goes through the store like any other, so their
// watchers see the cancellation and their streams end. Orders the demo did not create (the
// console's) are left alone.
func (s *Simulator) cancelLeftovers(ctx context.Context) error {
	orders, err := s.Store.ActiveOrders(ctx, 0)
	if err != nil {
		return fmt.Errorf("demo: list active orders: %w", err)
	}
	cancelled := 0
	for _, o := range orders {
		first, err := s.Store.EventsAfter(ctx, o.ID, 0, 1)
		if err != nil {
			return fmt.Errorf("demo: read order %s: %w", o.ID, err)
		}
		if len(first) == 0 || first[0].Actor != Actor {
			continue
		}
		_, _, _, err = s.Store.AppendStatus(ctx, ordercast.StatusChange{
			OrderID: o.ID, Status: ordercast.StatusCancelled, Note: RestartNote, Actor: Actor,
		})
		switch {
		case ordercast.ErrorCode(err) == ordercast.EInvalidTransition:
			// It ended meanwhile.
		case err != nil:
			return fmt.Errorf("demo: cancel order %s of an earlier run: %w", o.ID, err)
		default:
			cancelled++
		}
	}
	if cancelled > 0 {
		s.Logger.Info("demo: cancelled the orders an earlier run left mid-way", "orders", cancelled)
	}
	return nil
}

// Close stops creating and moving orders and waits for every goroutine to finish. Orders left
// mid-way stay where they are, as they would if the restaurant closed, until the next Open.
func (s *Simulator) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	return nil
}

// run starts an order at once, then one every Every while there is room.
func (s *Simulator) run() {
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		s.wg.Go(func() {
			defer func() { <-s.slots }()
			if err := s.simulateOrder(s.ctx); err != nil && s.ctx.Err() == nil {
				s.Logger.Error("demo order failed", "err", err)
			}
		})
		if !s.wait(s.ctx, s.Every) {
			return
		}
	}
}

// simulateOrder creates one order of a restaurant for a customer, assigns it a free courier before
// it is ready (waiting for one if none is), and walks it to delivered, or to cancelled. The
// courier is free again once the order has ended.
func (s *Simulator) simulateOrder(ctx context.Context) error {
	r := Restaurants[rand.N(len(Restaurants))]
	cu := Customers[rand.N(len(Customers))]
	d := map[string]any{
		"restaurant": r.Name,
		"items":      1 + rand.N(5),
		"customer":   cu.Name,
	}
	// Now and then what a kitchen or a courier must be told, as real orders carry it: the pages
	// show such details on the order's row.
	if rand.N(4) == 0 {
		d["allergies"] = allergies[rand.N(len(allergies))]
	}
	if rand.N(3) == 0 {
		d["instructions"] = instructions[rand.N(len(instructions))]
	}
	details, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode details: %w", err)
	}
	pickup, dropoff := r.At, near(cu.At)
	o, _, err := s.Store.CreateOrder(ctx, ordercast.NewOrder{
		Details: details, Note: "order placed", Actor: Actor, RestaurantID: r.ID, CustomerID: cu.ID,
		Pickup: &pickup, Dropoff: &dropoff,
	})
	if err != nil {
		return fmt.Errorf("create order: %w", err)
	}
	var courier Party
	for i := 0; i < len(stages); i++ {
		stage := stages[i]
		if courier.ID == "" && i >= slices.Index(stages, ordercast.StatusReady) {
			// Dispatch sends a courier while the food is packed (an event of its own), waiting
			// for a free one if there is none.
			var ok bool
			if courier, ok = s.takeCourier(ctx); !ok {
				return nil
			}
			assigned, _, _, err := s.Store.AssignCourier(ctx, ordercast.CourierChange{
				OrderID: o.ID, CourierID: courier.ID, CourierName: courier.Name, Note: "On the way to " + r.Name, Actor: Actor,
			})
			if err != nil {
				s.freeCourier(courier)
				if ordercast.ErrorCode(err) == ordercast.EInvalidTransition {
					return nil // ended elsewhere
				}
				return fmt.Errorf("assign order %s to %s: %w", o.ID, courier.ID, err)
			}
			o = assigned
			defer s.releaseCourier(ctx, o.ID, courier)
		}
		if stage == ordercast.StatusDelivered && s.Positions != nil {
			if !s.drive(ctx, o.ID, courier.ID, route(pickup, dropoff)) {
				return nil
			}
		} else if !s.wait(ctx, s.step()) {
			return nil
		}
		c := ordercast.StatusChange{OrderID: o.ID, Status: stage, Note: note(stage, r.Name, courier.Name), Actor: Actor, ExpectedVersion: o.Version}
		if rand.Float64() < s.CancelChance {
			c.Status, c.Note = ordercast.StatusCancelled, cancelNote(o.Status)
		}
		moved, _, _, err := s.Store.AppendStatus(ctx, c)
		switch code := ordercast.ErrorCode(err); {
		case code == ordercast.EVersionConflict || code == ordercast.EInvalidTransition:
			// Changed elsewhere: the console may move the demo's orders too. Go on from where the
			// order is now, unless it ended or its courier is no longer the one given here.
			if o, err = s.Store.Order(ctx, o.ID); err != nil {
				return fmt.Errorf("read order %s: %w", c.OrderID, err)
			}
			if o.Status.Terminal() || o.CourierID != courier.ID {
				return nil
			}
			i = slices.Index(stages, o.Status) // the loop goes on with the stage after it
		case err != nil:
			return fmt.Errorf("move order %s to %s: %w", c.OrderID, c.Status, err)
		case moved.Status.Terminal():
			return nil
		default:
			o = moved
		}
	}
	return nil
}

// stages are the statuses the simulator moves an order through, in order.
var stages = []ordercast.Status{
	ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady,
	ordercast.StatusOutForDelivery, ordercast.StatusDelivered,
}

// releaseCourier gives courier c back once order orderID no longer holds it: the order ended, or
// went to another courier. A courier whose order is still active (a write failed) stays with it,
// as the store says it does, until the next run cancels the order: a courier that carried two
// orders at once would show its positions on both maps.
func (s *Simulator) releaseCourier(ctx context.Context, orderID string, c Party) {
	if ctx.Err() != nil {
		return // stopping: Open fills the couriers anew
	}
	o, err := s.Store.Order(ctx, orderID)
	if err != nil {
		s.Logger.Warn("demo courier kept: its order could not be read", "courier", c.ID, "order", orderID, "err", err)
		return
	}
	if o.Status.Terminal() || o.CourierID != c.ID {
		s.freeCourier(c)
	}
}

// takeCourier takes a courier with no order, waiting until one is free, so that a courier never
// carries two orders at once (its positions would show on both maps); it reports false when the
// simulator stops first.
func (s *Simulator) takeCourier(ctx context.Context) (Party, bool) {
	select {
	case c := <-s.couriers:
		return c, true
	case <-ctx.Done():
		return Party{}, false
	}
}

// freeCourier gives a courier back.
func (s *Simulator) freeCourier(c Party) {
	s.couriers <- c // never blocks: the channel holds every courier
}

// drive moves the courier along the route over Drive, reporting its position every Tick, and
// reports whether the simulator is still running. A refused position (the courier's budget) is
// skipped: the next one replaces it. A position that reached no order hints that order orderID
// is no longer the courier's to carry: someone else delivered or cancelled it (a person on the
// courier's page), or gave it to another courier. The drive then ends as soon as the store
// confirms it, rather than hold the courier to the end of the route; the write that follows
// meets the change and ends the order's simulation, which frees the courier. While a person
// shares a position for the courier (personPosting), the drive posts none of its own.
func (s *Simulator) drive(ctx context.Context, orderID, courierID string, r []ordercast.Point) bool {
	length := routeLength(r)
	// A scooter's speed through town; a drive sped up past it reports no more.
	speed := min(length/s.Drive.Seconds(), 14)
	var own time.Time // the time of the last position of this drive's that an order showed
	for start := time.Now(); ; {
		f := min(float64(time.Since(start))/float64(s.Drive), 1)
		if !s.personPosting(ctx, orderID, courierID, own) {
			p := ordercast.Position{Point: along(r, f*length), SpeedMPS: &speed, At: time.Now()}
			n, err := s.Positions.Post(ctx, courierID, p)
			switch {
			case err == nil && n == 0 && !s.carries(ctx, orderID, courierID):
				return true
			case err == nil:
				own = p.At
			case ordercast.ErrorCode(err) != ordercast.ERateLimited && ctx.Err() == nil:
				s.Logger.Warn("demo position refused", "courier", courierID, "err", err)
			}
		}
		if f >= 1 {
			return true
		}
		if !s.wait(ctx, s.Tick) {
			return false
		}
	}
}

// personPosting reports whether someone other than the drive, a person sharing the phone's
// position on the courier's page, posted for courier courierID within PersonQuiet: the order's
// newest position is the courier's, recent, and not the drive's own last one (own). It asks the
// Poster (LatestPositions); one that cannot tell says no. A person's position older than the
// drive's own last is not kept as the order's newest (a courier's later fix wins), so it is not
// seen here, and shows on no map either. In a cluster, a person's position taken by another
// node is seen once the node has it.
func (s *Simulator) personPosting(ctx context.Context, orderID, courierID string, own time.Time) bool {
	latest, ok := s.Positions.(LatestPositions)
	if !ok {
		return false
	}
	l := latest.Latest(ctx, orderID)
	if l == nil || l.Update.CourierID != courierID {
		return false
	}
	// Compared to the microsecond, which is what a cluster's table keeps of a position's time.
	at := l.Update.At
	return !at.Truncate(time.Microsecond).Equal(own.Truncate(time.Microsecond)) && time.Since(at) < s.PersonQuiet
}

// carries reports whether order orderID is still active and courier courierID's, as the store
// says; an order that cannot be read is taken to be, so that a passing failure ends no drive.
// It is read only when a position reached no order: a tracker that has not yet heard of the
// order's latest change counts none while the order is still the courier's.
func (s *Simulator) carries(ctx context.Context, orderID, courierID string) bool {
	o, err := s.Store.Order(ctx, orderID)
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.Warn("demo order could not be read during its drive", "order", orderID, "err", err)
		}
		return true
	}
	return !o.Status.Terminal() && o.CourierID == courierID
}

func (s *Simulator) step() time.Duration {
	return s.MinStep + rand.N(s.MaxStep-s.MinStep+1)
}

// wait pauses for d and reports whether the simulator is still running.
func (s *Simulator) wait(ctx context.Context, d time.Duration) bool {
	return clock.Sleep(ctx, d) == nil
}

// Party is one of the demo's restaurants, customers or couriers: its id and how people call it.
type Party struct {
	ID, Name string
	// At is where a restaurant or a customer is (a small made-up neighbourhood).
	At ordercast.Point
}

// The demo's parties; the home page links to each one's page in demo mode.
var (
	Restaurants = []Party{
		{"luigis", "Luigi's Trattoria", ordercast.Point{Lat: 52.5202, Lng: 13.4070}},
		{"saffron", "Saffron House", ordercast.Point{Lat: 52.5177, Lng: 13.4023}},
		{"tokyo-ramen", "Tokyo Ramen Bar", ordercast.Point{Lat: 52.5228, Lng: 13.4021}},
	}
	Customers = []Party{
		{"ana", "Ana", ordercast.Point{Lat: 52.5247, Lng: 13.4106}},
		{"ben", "Ben", ordercast.Point{Lat: 52.5164, Lng: 13.4122}},
		{"chen", "Chen", ordercast.Point{Lat: 52.5217, Lng: 13.3969}},
		{"dara", "Dara", ordercast.Point{Lat: 52.5150, Lng: 13.4046}},
	}
	// Couriers carry one order each at a time: as many as DefaultMaxActive orders.
	Couriers = []Party{
		{ID: "ines", Name: "Ines"}, {ID: "jonas", Name: "Jonas"}, {ID: "kofi", Name: "Kofi"},
		{ID: "lena", Name: "Lena"}, {ID: "mateo", Name: "Mateo"}, {ID: "noor", Name: "Noor"},
		{ID: "omar", Name: "Omar"}, {ID: "priya", Name: "Priya"}, {ID: "quinn", Name: "Quinn"},
		{ID: "rosa", Name: "Rosa"}, {ID: "sven", Name: "Sven"}, {ID: "tariq", Name: "Tariq"},
	}
)

// allergies and instructions are what a demo order may carry in its details besides its
// restaurant, customer and number of items.
var (
	allergies    = [][]string{{"peanuts"}, {"gluten"}, {"shellfish"}, {"peanuts", "sesame"}, {"milk"}}
	instructions = []string{"ring the bell twice", "leave it at the door", "no cutlery, please", "call on arrival", "third floor, no lift"}
)

// cancelNotes are the reasons an order may be cancelled at each status it can be cancelled from:
// only what can still happen then (no missing ingredient once the food has left the kitchen).
var cancelNotes = map[ordercast.Status][]string{
	ordercast.StatusPlaced:         {"customer cancelled", "payment failed", "restaurant is out of an ingredient"},
	ordercast.StatusConfirmed:      {"customer cancelled", "restaurant is out of an ingredient"},
	ordercast.StatusPreparing:      {"restaurant is out of an ingredient", "the kitchen had to close"},
	ordercast.StatusReady:          {"no courier could take it in time"},
	ordercast.StatusOutForDelivery: {"the courier could not reach the customer"},
}

// cancelNote is a plausible reason to cancel an order that is at status current.
func cancelNote(current ordercast.Status) string {
	notes := cancelNotes[current]
	if len(notes) == 0 {
		return "cancelled"
	}
	return notes[rand.N(len(notes))]
}

func note(stage ordercast.Status, restaurant, courier string) string {
	switch stage {
	case ordercast.StatusConfirmed:
		return restaurant + " accepted the order"
	case ordercast.StatusPreparing:
		return "the kitchen is on it"
	case ordercast.StatusReady:
		return "packed and waiting for " + courier
	case ordercast.StatusOutForDelivery:
		return courier + " picked it up"
	case ordercast.StatusDelivered:
		return "handed over at the door"
	}
	return ""
}

// near returns a door a few dozen metres from p: the same customer orders to nearby addresses.
func near(p ordercast.Point) ordercast.Point {
	return ordercast.Point{Lat: p.Lat + (rand.Float64()-0.5)*0.0004, Lng: p.Lng + (rand.Float64()-0.5)*0.0006}
}

// route is a plausible way through a street grid from a to b: along the street the restaurant
// is on, round two corners, then along the customer's street, with the corners placed at random.
func route(a, b ordercast.Point) []ordercast.Point {
	f := 0.3 + 0.4*rand.Float64()
	mid := a.Lat + (b.Lat-a.Lat)*f
	return []ordercast.Point{a, {Lat: mid, Lng: a.Lng}, {Lat: mid, Lng: b.Lng}, b}
}

func routeLength(r []ordercast.Point) float64 {
	var d float64
	for i := 1; i < len(r); i++ {
		d += ordercast.DistanceM(r[i-1], r[i])
	}
	return d
}

// along returns the point at distance d along the route.
func along(r []ordercast.Point, d float64) ordercast.Point {
	for i := 1; i < len(r); i++ {
		leg := ordercast.DistanceM(r[i-1], r[i])
		if d <= leg && leg > 0 {
			f := d / leg
			return ordercast.Point{Lat: r[i-1].Lat + (r[i].Lat-r[i-1].Lat)*f, Lng: r[i-1].Lng + (r[i].Lng-r[i-1].Lng)*f}
		}
		d -= leg
	}
	return r[len(r)-1]
}
