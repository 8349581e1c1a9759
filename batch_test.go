package ordercast_test

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

func TestSameDetails(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`{"a":1,"b":[1,2]}`, `{ "b" : [1, 2], "a" : 1 }`, true},
		{`{"a":1}`, `{"a":1.0}`, true},
		{`{"a":100}`, `{"a":1e2}`, true},
		{`{"a":0.5}`, `{"a":5E-1}`, true},
		{`{"a":-0}`, `{"a":0.0}`, true},
		{`{"a":1}`, `{"a":-1}`, false},
		{`{"a":1}`, `{"a":10}`, false},
		{`{"a":1}`, `{"a":"1"}`, false},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		{`{"a":1e99999999999}`, `{"a":1e99999999999}`, true},
		{`{"a":1e99999999999}`, `{"a":2e99999999999}`, false},
		{`{"a":1}`, `not json`, false},
		{`{"a":"<é"}`, `{"a":"\u003c\u00e9"}`, true},
		{`{"a":{"x":[1,{"q":2,"p":1}],"y":2}}`, `{"a":{"y":2.0,"x":[1,{"p":1,"q":2}]}}`, true},
		{`{"a":{"x":1}}`, `{"a":{"X":1}}`, false},
		{`{}`, `null`, true},
		{`{}`, ``, true},
	}
	for _, tt := range tests {
		if got := ordercast.SameDetails(json.RawMessage(tt.a), json.RawMessage(tt.b)); got != tt.want {
			t.Errorf("SameDetails(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestOrderFollow: every event a batch appends, followed from the order as it was before, gives
// the order as the batch left it — what a node that learns of a commit only from its event
// remembers of the order. An event that is not the next one is not followed.
func TestOrderFollow(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	placed := ordercast.NewOrder{ID: "o", Details: json.RawMessage(`{"items":2}`), RestaurantID: "r", CustomerID: "c",
		Dropoff: &ordercast.Point{Lat: 52.5, Lng: 13.4}}
	writes := []ordercast.Write{
		{Create: &placed},
		{Change: &ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusConfirmed, Note: "ok", Actor: "restaurant:r"}},
		{Courier: &ordercast.CourierChange{OrderID: "o", CourierID: "k1", Actor: "system"}},
		{Change: &ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusPreparing}},
		{Courier: &ordercast.CourierChange{OrderID: "o", CourierID: "k2"}},
		{Courier: &ordercast.CourierChange{OrderID: "o", CourierID: ""}},
		{Change: &ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusCancelled, Note: "closed"}},
	}
	b := ordercast.NewBatch(writes)
	b.Apply(at)
	if len(b.Events) != len(writes) {
		t.Fatalf("the batch appended %d events, want %d: %+v", len(b.Events), len(writes), b.Results)
	}
	before := b.Results[0].Order
	for i, res := range b.Results[1:] {
		got, ok := before.Follow(res.Event)
		if !ok || !reflect.DeepEqual(got, res.Order) {
			t.Fatalf("write %d: %+v followed by %+v = %+v (ok %v), want %+v", i+1, before, res.Event, got, ok, res.Order)
		}
		if _, ok := before.Follow(ordercast.Event{OrderID: "o", Seq: before.Version + 2, Status: res.Event.Status}); ok {
			t.Fatalf("write %d: an event two versions on was followed", i+1)
		}
		if _, ok := before.Follow(ordercast.Event{OrderID: "other", Seq: before.Version + 1}); ok {
			t.Fatalf("write %d: another order's event was followed", i+1)
		}
		before = res.Order
	}
}

// TestBatchCreates: an order whose first write in the batch creates it is one a store may take
// to be new; one first changed, or not in the batch, is not.
func TestBatchCreates(t *testing.T) {
	b := ordercast.NewBatch([]ordercast.Write{
		{Create: &ordercast.NewOrder{ID: "new"}},
		{Change: &ordercast.StatusChange{OrderID: "old", Status: ordercast.StatusConfirmed}},
		{Create: &ordercast.NewOrder{ID: "old"}},
		{Change: &ordercast.StatusChange{OrderID: "new", Status: ordercast.StatusConfirmed}},
	})
	b.Found(ordercast.Order{ID: "old", Status: ordercast.StatusPlaced, Version: 1}, ordercast.Event{OrderID: "old", Seq: 1})
	for id, want := range map[string]bool{"new": true, "old": false, "absent": false} {
		if got := b.Creates(id); got != want {
			t.Errorf("Creates(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestBatchStored: Stored is an order as the store held it, after the batch has moved it on
// (its final state is in Updated); an order the batch creates, or does not touch, was not stored.
func TestBatchStored(t *testing.T) {
	b := ordercast.NewBatch([]ordercast.Write{
		{Create: &ordercast.NewOrder{ID: "new"}},
		{Courier: &ordercast.CourierChange{OrderID: "old", CourierID: "c-2"}},
		{Change: &ordercast.StatusChange{OrderID: "old", Status: ordercast.StatusCancelled}},
	})
	was := ordercast.Order{ID: "old", Status: ordercast.StatusPlaced, Version: 1, CourierID: "c-1"}
	b.Found(was, ordercast.Event{OrderID: "old", Seq: 1, Status: ordercast.StatusPlaced})
	b.Apply(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	if len(b.Updated) != 1 || b.Updated[0].Status != ordercast.StatusCancelled || b.Updated[0].CourierID != "c-2" {
		t.Fatalf("Updated = %+v, want old cancelled with courier c-2", b.Updated)
	}
	if got, ok := b.Stored("old"); !ok || got.Status != was.Status || got.CourierID != was.CourierID || got.Version != was.Version {
		t.Errorf("Stored(old) = %+v, %v, want %+v, true", got, ok, was)
	}
	for _, id := range []string{"new", "absent"} {
		if _, ok := b.Stored(id); ok {
			t.Errorf("Stored(%q) reports an order stored before the batch", id)
		}
	}
}

// TestMarks: positions read back as written, in order; a malformed mark is no mark.
func TestMarks(t *testing.T) {
	m := ordercast.Marks("").With("restaurant:r-1", 12).With("customer:u", 3) + " courier:k=x"
	if got := m.Pos("restaurant:r-1"); got != 12 {
		t.Errorf("Pos(restaurant:r-1) = %d, want 12", got)
	}
	if got := m.Pos("courier:k"); got != 0 {
		t.Errorf("Pos of a malformed mark = %d, want 0", got)
	}
	if got := m.Pos("absent"); got != 0 {
		t.Errorf("Pos(absent) = %d, want 0", got)
	}
	if got, want := m.Parties(), []string{"restaurant:r-1", "customer:u", "courier:k"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Parties = %v, want %v", got, want)
	}
	var got []string
	for k, n := range m.All() {
		got = append(got, k+"@"+strconv.FormatInt(n, 10))
	}
	if want := []string{"restaurant:r-1@12", "customer:u@3", "courier:k@0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("All = %v, want %v", got, want)
	}
}

// BenchmarkMarks reads an event's position in one party's log, as every watcher of that party
// does for every event (Pos), and the parties it is in (Parties; All, as the hub reads them once
// per event).
func BenchmarkMarks(b *testing.B) {
	m := ordercast.Marks("").With("courier:c-7", 3).With("customer:u-1", 40).With("restaurant:r-1", 1200)
	b.Run("Pos", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m.Pos("restaurant:r-1") != 1200 {
				b.Fatal("wrong position")
			}
		}
	})
	b.Run("Parties", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(m.Parties()) != 3 {
				b.Fatal("wrong parties")
			}
		}
	})
	b.Run("All", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for range m.All() {
				n++
			}
			if n != 3 {
				b.Fatal("wrong parties")
			}
		}
	})
}
