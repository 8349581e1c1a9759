package ordercache

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// TestBounded: the remembered orders stay within the bound, the newest kept.
func TestBounded(t *testing.T) {
	c := New(3 * 600)
	for i := range 100 {
		o := ordercast.Order{ID: string(rune('a'+i%26)) + string(rune('a'+i/26)), Details: make([]byte, 50)}
		c.Remember(o, ordercast.Event{OrderID: o.ID})
		if c.size > c.max {
			t.Fatalf("after %d orders: %d bytes remembered, bound %d", i+1, c.size, c.max)
		}
		if _, _, ok := c.Get(o.ID); !ok {
			t.Fatalf("order %s not remembered just after its commit", o.ID)
		}
	}
	var sum int64
	for _, e := range c.orders {
		sum += e.cost
	}
	if sum != c.size {
		t.Errorf("size %d, entries add up to %d", c.size, sum)
	}
	off := New(-1)
	off.Remember(ordercast.Order{ID: "x"}, ordercast.Event{})
	if _, _, ok := off.Get("x"); ok {
		t.Error("a negative bound remembered an order")
	}
}

// TestFollow: another writer's next event moves a remembered order on; its own event coming back
// changes nothing; an event that skips ahead makes the order forgotten, as does ForgetOrders.
func TestFollow(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := New(1 << 20)
	placed := ordercast.Order{ID: "o", Status: ordercast.StatusPlaced, Version: 1, CreatedAt: at, UpdatedAt: at}
	c.Remember(placed, ordercast.Event{OrderID: "o", Seq: 1, Status: ordercast.StatusPlaced, At: at})

	c.Follow(ordercast.Event{OrderID: "o", Seq: 1, Status: ordercast.StatusPlaced, At: at})
	if o, _, ok := c.Get("o"); !ok || !reflect.DeepEqual(o, placed) {
		t.Fatalf("its own event again: %+v (remembered %v), want %+v", o, ok, placed)
	}

	next := ordercast.Event{OrderID: "o", Seq: 2, Status: ordercast.StatusConfirmed, At: at.Add(time.Second), Note: "ok", Marks: "restaurant:r=7"}
	c.Follow(next)
	o, latest, ok := c.Get("o")
	if !ok || o.Version != 2 || o.Status != ordercast.StatusConfirmed || !o.UpdatedAt.Equal(next.At) {
		t.Fatalf("after the next event: %+v (remembered %v), want version 2 confirmed at %v", o, ok, next.At)
	}
	if latest != next.Wire() {
		t.Errorf("latest event %+v, want %+v without its marks", latest, next.Wire())
	}

	c.Follow(ordercast.Event{OrderID: "unknown", Seq: 5, Status: ordercast.StatusReady})
	if _, _, ok := c.Get("unknown"); ok {
		t.Error("an event of an order not remembered made one up")
	}

	c.Follow(ordercast.Event{OrderID: "o", Seq: 4, Status: ordercast.StatusReady})
	if _, _, ok := c.Get("o"); ok {
		t.Error("an event two versions on left the order remembered")
	}
	if c.size != 0 {
		t.Errorf("size %d after forgetting the only order", c.size)
	}

	c.Remember(placed, ordercast.Event{OrderID: "o", Seq: 1})
	c.ForgetOrders([]string{"o", "never"})
	if c.Len() != 0 || c.size != 0 {
		t.Errorf("ForgetOrders left %d orders, %d bytes", c.Len(), c.size)
	}
}

// TestLearn: an order committed elsewhere is kept, unless a later version of it is.
func TestLearn(t *testing.T) {
	c := New(1 << 20)
	v1 := ordercast.Order{ID: "o", Status: ordercast.StatusPlaced, Version: 1}
	v2 := ordercast.Order{ID: "o", Status: ordercast.StatusConfirmed, Version: 2}
	c.Learn(v1, ordercast.Event{OrderID: "o", Seq: 1})
	if o, _, ok := c.Get("o"); !ok || o.Version != 1 {
		t.Fatalf("after learning version 1: %+v (remembered %v)", o, ok)
	}
	c.Remember(v2, ordercast.Event{OrderID: "o", Seq: 2})
	c.Learn(v1, ordercast.Event{OrderID: "o", Seq: 1})
	if o, _, _ := c.Get("o"); o.Version != 2 {
		t.Errorf("learning version 1 over a remembered version 2 left version %d", o.Version)
	}
}

// TestRememberKeepsLater: a writer remembers the state it committed after its listener already
// followed another writer's next commit (its own event came back first): the later version stays.
func TestRememberKeepsLater(t *testing.T) {
	c := New(1 << 20)
	v1 := ordercast.Order{ID: "o", Status: ordercast.StatusPlaced, Version: 1}
	v2 := ordercast.Order{ID: "o", Status: ordercast.StatusConfirmed, Version: 2}
	c.Remember(v1, ordercast.Event{OrderID: "o", Seq: 1, Status: ordercast.StatusPlaced})
	c.Follow(ordercast.Event{OrderID: "o", Seq: 2, Status: ordercast.StatusConfirmed})
	c.Follow(ordercast.Event{OrderID: "o", Seq: 3, Status: ordercast.StatusPreparing})
	c.Remember(v2, ordercast.Event{OrderID: "o", Seq: 2, Status: ordercast.StatusConfirmed})
	if o, _, ok := c.Get("o"); !ok || o.Version != 3 || o.Status != ordercast.StatusPreparing {
		t.Fatalf("remembering version 2 over a followed version 3 left %+v (remembered %v), want version 3, preparing", o, ok)
	}
	again := ordercast.Order{ID: "o", Status: ordercast.StatusPreparing, Version: 3, Details: []byte(`{"a":1}`)}
	c.Remember(again, ordercast.Event{OrderID: "o", Seq: 3, Status: ordercast.StatusPreparing})
	if o, _, _ := c.Get("o"); string(o.Details) != string(again.Details) {
		t.Errorf("remembering the version remembered kept %+v, want the writer's own %+v", o, again)
	}
}

// TestEndedOrdersMakeRoom: a node runs for long, its orders ending as new ones come. The cache
// keeps room for every order in progress: an order that ends is forgotten, so no order in progress
// is ever dropped for an ended one (kept, the ended ones filled the bound and random eviction
// dropped orders in progress in proportion, each then read again).
func TestEndedOrdersMakeRoom(t *testing.T) {
	const inProgress, orders = 60, 5000
	c := New(3 * inProgress * entryCost(ordercast.Order{ID: "o-0000"}, ordercast.Event{}))
	path := []ordercast.Status{ordercast.StatusPlaced, ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusDelivered}
	// Order i is placed at turn i and takes its next step every inProgress/3 turns, so it is
	// delivered at turn i+inProgress, and inProgress orders are under way at any time.
	misses := 0
	for turn := range orders + inProgress {
		for step := range path {
			i := turn - step*inProgress/(len(path)-1)
			if i < 0 || i >= orders {
				continue
			}
			id := fmt.Sprintf("o-%04d", i)
			if _, _, ok := c.Get(id); step > 0 && !ok {
				misses++
			}
			o := ordercast.Order{ID: id, Status: path[step], Version: int64(step) + 1}
			c.Remember(o, ordercast.Event{OrderID: id, Seq: o.Version, Status: o.Status})
		}
	}
	if misses != 0 {
		t.Errorf("%d changes of orders in progress found them forgotten, want 0", misses)
	}
	if n := c.Len(); n != 0 {
		t.Errorf("%d orders remembered once every order ended, want 0", n)
	}
}
