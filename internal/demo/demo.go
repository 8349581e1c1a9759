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
	"sync"
	"time"

	"github.com/ordercast/ordercast"
)

// Defaults for the simulator's tunables: a new order every few seconds, each taking under a
// minute from placed to delivered, so a person watching sees every stage without waiting long.
const (
	DefaultEvery        = 4 * time.Second
	DefaultMinStep      = 2 * time.Second
	DefaultMaxStep      = 8 * time.Second
	DefaultCancelChance = 0.08
	DefaultMaxActive    = 12
	// Actor is who the simulator's changes are recorded as.
	Actor = "demo"
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
	// MaxActive caps the orders in flight; no new order starts while that many are moving.
	MaxActive int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{} // one token per order in flight
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
	}
}

// Open validates the settings and starts simulating in the background; Close stops it.
func (s *Simulator) Open() error {
	switch {
	case s.Store == nil:
		return errors.New("demo: Store is required")
	case s.Every <= 0 || s.MinStep <= 0 || s.MaxStep < s.MinStep:
		return errors.New("demo: Every and MinStep must be positive, MaxStep at least MinStep")
	case s.CancelChance < 0 || s.CancelChance > 1:
		return errors.New("demo: CancelChance must be between 0 and 1")
	case s.MaxActive < 1:
		return errors.New("demo: MaxActive must be at least 1")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.slots = make(chan struct{}, s.MaxActive)
	s.wg.Go(s.run)
	return nil
}

// Close stops creating and moving orders and waits for every goroutine to finish. Orders left
// mid-way stay where they are, as they would if the restaurant closed.
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

// simulateOrder creates one order of a restaurant for a customer, assigns it a courier once it
// is being prepared, and walks it to delivered, or to cancelled.
func (s *Simulator) simulateOrder(ctx context.Context) error {
	r := Restaurants[rand.N(len(Restaurants))]
	cu := Customers[rand.N(len(Customers))]
	details, err := json.Marshal(map[string]any{
		"restaurant": r.Name,
		"items":      1 + rand.N(5),
		"customer":   cu.Name,
	})
	if err != nil {
		return fmt.Errorf("encode details: %w", err)
	}
	o, _, err := s.Store.CreateOrder(ctx, ordercast.NewOrder{
		Details: details, Note: "order placed", Actor: Actor, RestaurantID: r.ID, CustomerID: cu.ID,
	})
	if err != nil {
		return fmt.Errorf("create order: %w", err)
	}
	courier := Couriers[rand.N(len(Couriers))]
	for _, stage := range []ordercast.Status{
		ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady,
		ordercast.StatusOutForDelivery, ordercast.StatusDelivered,
	} {
		if !s.wait(ctx, s.step()) {
			return nil
		}
		if stage == ordercast.StatusReady {
			// Dispatch assigns the courier while the kitchen works: an event of its own.
			o, _, _, err = s.Store.AssignCourier(ctx, ordercast.CourierChange{
				OrderID: o.ID, CourierID: courier.ID, Note: courier.Name + " is on the way to " + r.Name, Actor: Actor,
			})
			if err != nil {
				return fmt.Errorf("assign order %s to %s: %w", o.ID, courier.ID, err)
			}
		}
		c := ordercast.StatusChange{OrderID: o.ID, Status: stage, Note: note(stage, r.Name, courier.Name), Actor: Actor, ExpectedVersion: o.Version}
		if rand.Float64() < s.CancelChance {
			c.Status, c.Note = ordercast.StatusCancelled, cancelNotes[rand.N(len(cancelNotes))]
		}
		o, _, _, err = s.Store.AppendStatus(ctx, c)
		if err != nil {
			return fmt.Errorf("move order %s to %s: %w", c.OrderID, c.Status, err)
		}
		if o.Status.Terminal() {
			return nil
		}
	}
	return nil
}

func (s *Simulator) step() time.Duration {
	return s.MinStep + rand.N(s.MaxStep-s.MinStep+1)
}

// wait pauses for d and reports whether the simulator is still running.
func (s *Simulator) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Party is one of the demo's restaurants, customers or couriers: its id and how people call it.
type Party struct {
	ID, Name string
}

// The demo's parties; the home page links to each one's page in demo mode.
var (
	Restaurants = []Party{{"luigis", "Luigi's Trattoria"}, {"saffron", "Saffron House"}, {"tokyo-ramen", "Tokyo Ramen Bar"}}
	Customers   = []Party{{"ana", "Ana"}, {"ben", "Ben"}, {"chen", "Chen"}, {"dara", "Dara"}}
	Couriers    = []Party{{"ines", "Ines"}, {"jonas", "Jonas"}, {"kofi", "Kofi"}}
	cancelNotes = []string{"customer cancelled", "restaurant is out of an ingredient", "payment failed"}
)

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
