package location

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestAFullTableForgetsOnlyCouriersWithTheirBudgetBack: when the table of couriers is full, those
// idle for a second are forgotten early, but only once their budget has refilled: a courier
// forgotten with its budget spent would come back with a full one, some positions over its rate.
func TestAFullTableForgetsOnlyCouriersWithTheirBudgetBack(t *testing.T) {
	now := time.Now()
	tr := &Tracker{couriers: map[string]*courierState{}, carriedBy: map[string][]string{}}
	spent := rate.NewLimiter(1, 5)
	spent.AllowN(now.Add(-2*time.Second), 5) // emptied two seconds ago: 2 of 5 back
	tr.couriers["spent"] = &courierState{limiter: spent, seen: now.Add(-2 * time.Second)}
	tr.couriers["refilled"] = &courierState{limiter: rate.NewLimiter(1, 5), seen: now.Add(-2 * time.Second)}
	tr.couriers["busy"] = &courierState{limiter: rate.NewLimiter(1, 5), seen: now}
	tr.forgetCouriers(now, true)
	for id, want := range map[string]bool{"spent": true, "refilled": false, "busy": true} {
		if _, kept := tr.couriers[id]; kept != want {
			t.Errorf("courier %s kept %v, want %v", id, kept, want)
		}
	}
}

// TestTheSweepForgetsOnlyCouriersWithTheirBudgetBack: the sweep forgets couriers idle for a
// minute by the same rule: at a rate so low that a budget takes longer than that to refill, a
// courier forgotten with it spent would come back with a full one.
func TestTheSweepForgetsOnlyCouriersWithTheirBudgetBack(t *testing.T) {
	now := time.Now()
	tr := &Tracker{couriers: map[string]*courierState{}, carriedBy: map[string][]string{}}
	slow := rate.NewLimiter(rate.Every(time.Minute), 5)
	slow.AllowN(now.Add(-2*time.Minute), 5) // emptied two minutes ago: 2 of 5 back
	tr.couriers["spent"] = &courierState{limiter: slow, seen: now.Add(-2 * time.Minute)}
	tr.couriers["refilled"] = &courierState{limiter: rate.NewLimiter(rate.Every(time.Minute), 5), seen: now.Add(-2 * time.Minute)}
	tr.couriers["recent"] = &courierState{limiter: rate.NewLimiter(1, 5), seen: now.Add(-30 * time.Second)}
	tr.forgetCouriers(now, false)
	for id, want := range map[string]bool{"spent": true, "refilled": false, "recent": true} {
		if _, kept := tr.couriers[id]; kept != want {
			t.Errorf("courier %s kept %v, want %v", id, kept, want)
		}
	}
}
