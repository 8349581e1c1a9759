package logpurge_test

import (
	"maps"
	"testing"

	"github.com/ordercast/ordercast/internal/logpurge"
)

// TestTargets: the last entry a purged order has in each log it was logged to: its
// restaurant's and customer's, and the courier's it had at the end, at its end; each courier's
// it had before, at the courier event that took the order from it, the last time it did.
func TestTargets(t *testing.T) {
	got := logpurge.Targets([]logpurge.Order{
		// c-1, then c-2, then c-1 again, then no one, then c-3 at the end.
		{ID: "a", RestaurantID: "r-1", CustomerID: "u-1", EndSeq: 12, Couriers: []logpurge.CourierSeq{
			{Seq: 2, CourierID: "c-1"}, {Seq: 4, CourierID: "c-2"}, {Seq: 6, CourierID: "c-1"}, {Seq: 8, CourierID: ""}, {Seq: 10, CourierID: "c-3"}}},
		// No customer, and its courier taken away before its end.
		{ID: "b", RestaurantID: "r-1", EndSeq: 5, Couriers: []logpurge.CourierSeq{{Seq: 2, CourierID: "c-2"}, {Seq: 3, CourierID: ""}}},
	})
	want := map[string]map[string]int64{
		"restaurant:r-1": {"a": 12, "b": 5},
		"customer:u-1":   {"a": 12},
		"courier:c-1":    {"a": 8},
		"courier:c-2":    {"a": 6, "b": 3},
		"courier:c-3":    {"a": 12},
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("Targets = %v, want %v", got, want)
	}
}

// TestJudge: an entry whose order is gone is dropped, one whose order is kept stays, and
// the read is done once the last entry of every purged order has been passed, however many
// entries of theirs or of kept orders come before.
func TestJudge(t *testing.T) {
	left := map[string]int64{"a": 3, "b": 1}
	for i, e := range []struct {
		order      string
		seq        int64
		exists     bool
		drop, done bool
	}{
		{"a", 1, false, true, false},
		{"k", 1, true, false, false}, // a kept order's
		{"b", 1, false, true, false}, // b's last
		{"a", 2, false, true, false},
		{"a", 3, false, true, true}, // a's last: nothing left to pass
	} {
		if drop, done := logpurge.Judge(left, e.order, e.seq, e.exists); drop != e.drop || done != e.done {
			t.Errorf("entry %d (%s/%d, exists %v): drop %v, done %v; want %v, %v", i, e.order, e.seq, e.exists, drop, done, e.drop, e.done)
		}
	}
}
