// Package storetest is the conformance suite every ordercast.Store must pass. Each store's own
// tests call Exercise with a function that opens a fresh, empty store, so both stores are held
// to one definition of correct behaviour.
package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// Exercise runs the conformance suite. open must return a fresh, empty store that publishes
// every committed event to pub, and must register the store's Close with t.Cleanup.
func Exercise(t *testing.T, open func(t *testing.T, pub ordercast.Publisher) ordercast.Store) {
	t.Helper()

	t.Run("CreateOrder", func(t *testing.T) { exerciseCreate(t, open) })
	t.Run("NotFound", func(t *testing.T) { exerciseNotFound(t, open) })
	t.Run("AppendStatus", func(t *testing.T) { exerciseAppendStatus(t, open) })
	t.Run("EventsAfter", func(t *testing.T) { exerciseEventsAfter(t, open) })
	t.Run("ActiveOrders", func(t *testing.T) { exerciseActiveOrders(t, open) })
	t.Run("ListOrders", func(t *testing.T) { exerciseListOrders(t, open) })
	t.Run("CustomerData", func(t *testing.T) { exerciseCustomerData(t, open) })
	t.Run("Publisher", func(t *testing.T) { exercisePublisher(t, open) })
	t.Run("Concurrency", func(t *testing.T) { exerciseConcurrency(t, open) })
	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		if err := h.s.Ping(h.ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
	t.Run("RejectedRequestsChangeNothing", func(t *testing.T) { exerciseRejected(t, open) })
	t.Run("Batches", func(t *testing.T) { exerciseBatches(t, open) })
	t.Run("Idempotency", func(t *testing.T) { exerciseIdempotency(t, open) })
	t.Run("PurgeExpiredKeys", func(t *testing.T) { exerciseExpiredKeysPurge(t, open) })
	t.Run("DetailsAsGiven", func(t *testing.T) { exerciseDetailsAsGiven(t, open) })
	t.Run("Places", func(t *testing.T) { exercisePlaces(t, open) })
	t.Run("Owners", func(t *testing.T) { exerciseOwners(t, open) })
	t.Run("CourierNames", func(t *testing.T) { exerciseCourierNames(t, open) })
	t.Run("CourierNamesInOneBatch", func(t *testing.T) { exerciseCourierNamesInOneBatch(t, open) })
	t.Run("HistoryBound", func(t *testing.T) { exerciseHistoryBound(t, open) })
	t.Run("Purge", func(t *testing.T) { exercisePurge(t, open) })
	t.Run("PurgeUnderLoad", func(t *testing.T) { exercisePurgeUnderLoad(t, open) })
	t.Run("ClosedIsUnavailable", func(t *testing.T) { exerciseClosed(t, open) })
}

// exerciseClosed: a request a shutdown stopped waiting for may still reach the store after Close;
// it is answered as a store that is going away (503), not with a panic or an internal error, and
// Close may be called again.
func exerciseClosed(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	h.create(t, ordercast.NewOrder{ID: "closed-1"})
	for range 2 {
		if err := h.s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	_, err := h.s.Order(h.ctx, "closed-1")
	wantUnavailable(t, "Order", err)
	_, err = h.s.EventsAfter(h.ctx, "closed-1", 0, 0)
	wantUnavailable(t, "EventsAfter", err)
	_, err = h.s.ActiveOrders(h.ctx, 10)
	wantUnavailable(t, "ActiveOrders", err)
	_, _, _, err = h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "closed-1", Status: ordercast.StatusConfirmed})
	wantUnavailable(t, "AppendStatus", err)
	_, _, err = h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "closed-2"})
	wantUnavailable(t, "CreateOrder", err)
	wantUnavailable(t, "Ping", h.s.Ping(h.ctx))
}

func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Errorf("%s after Close: %v; want %s", what, err, ordercast.EUnavailable)
	}
}

func exerciseCreate(t *testing.T, open opener) {
	t.Run("New", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		before := time.Now().UTC().Truncate(time.Microsecond)
		o, created, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{
			ID: "ord-1", Details: json.RawMessage(`{"items":["pho"],"addr":"1 Main St"}`),
			Note: "placed by app", Actor: "customer:42",
		})
		after := time.Now()
		if err != nil {
			t.Fatalf("CreateOrder: %v", err)
		}
		if !created {
			t.Errorf("created = false, want true")
		}
		if got, want := o.ID, "ord-1"; got != want {
			t.Errorf("ID = %q, want %q", got, want)
		}
		if got, want := o.Status, ordercast.StatusPlaced; got != want {
			t.Errorf("Status = %s, want %s", got, want)
		}
		if got, want := o.Version, int64(1); got != want {
			t.Errorf("Version = %d, want %d", got, want)
		}
		if !sameJSON(t, o.Details, []byte(`{"addr":"1 Main St","items":["pho"]}`)) {
			t.Errorf("Details = %s, want the details given", o.Details)
		}
		checkTime(t, "CreatedAt", o.CreatedAt)
		checkTime(t, "UpdatedAt", o.UpdatedAt)
		if !o.UpdatedAt.Equal(o.CreatedAt) {
			t.Errorf("UpdatedAt = %v, want CreatedAt %v", o.UpdatedAt, o.CreatedAt)
		}
		if o.CreatedAt.Before(before) || o.CreatedAt.After(after) {
			t.Errorf("CreatedAt = %v, want between %v and %v", o.CreatedAt, before, after)
		}

		equalOrder(t, "Order after create", h.order(t, "ord-1"), o)
		evs := h.events(t, "ord-1")
		want := []ordercast.Event{{
			OrderID: "ord-1", Seq: 1, Status: ordercast.StatusPlaced, At: o.CreatedAt,
			Note: "placed by app", Actor: "customer:42",
		}}
		equalEvents(t, "events after create", evs, want)
		for _, ev := range evs {
			checkTime(t, "event At", ev.At)
		}
		equalEvents(t, "published after create", h.pub.Events(), want)
	})

	t.Run("GeneratedID", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		a := h.create(t, ordercast.NewOrder{})
		b := h.create(t, ordercast.NewOrder{})
		if err := ordercast.ValidateID(a.ID); err != nil {
			t.Errorf("generated ID %q: %v", a.ID, err)
		}
		if a.ID == b.ID {
			t.Errorf("two generated IDs are both %q", a.ID)
		}
		if !sameJSON(t, a.Details, []byte(`{}`)) {
			t.Errorf("Details = %s, want {} for none given", a.Details)
		}
		equalOrder(t, "Order(generated id)", h.order(t, a.ID), a)
		checkSeqs(t, a.ID, h.events(t, a.ID))
	})

	t.Run("IdempotentRepeat", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		first := h.create(t, ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(`{"a":1,"b":{"c":[1,2]}}`)})
		before := h.snapshot(t, "ord-1")

		// Same details, keys in another order and other whitespace: the same order.
		got, created, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{
			ID: "ord-1", Details: json.RawMessage(` { "b": {"c": [1, 2]}, "a": 1 } `), Note: "retry",
		})
		if err != nil {
			t.Fatalf("repeat CreateOrder: %v", err)
		}
		if created {
			t.Errorf("repeat created = true, want false")
		}
		equalOrder(t, "repeat CreateOrder", got, first)
		h.unchanged(t, before, "ord-1")

		// A repeat after the order moved on returns the order as it is now.
		moved, _ := h.move(t, "ord-1", ordercast.StatusConfirmed)
		got, created, err = h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(`{"b":{"c":[1,2]},"a":1}`)})
		if err != nil || created {
			t.Fatalf("repeat CreateOrder after a change: created=%v err=%v, want false, nil", created, err)
		}
		equalOrder(t, "repeat CreateOrder after a change", got, moved)
	})

	t.Run("ConflictingRepeat", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(`{"a":1}`)})
		before := h.snapshot(t, "ord-1")
		for _, details := range []string{`{"a":2}`, `{"a":1,"b":1}`, `{}`, ``} {
			_, created, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(details)})
			wantCode(t, err, ordercast.EOrderExists)
			if created {
				t.Errorf("details %s: created = true", details)
			}
		}
		h.unchanged(t, before, "ord-1")

		// Other owners make another order, whatever the details: the repeat must not answer with
		// (and hand a tracking token for) someone else's order.
		h.create(t, ordercast.NewOrder{ID: "ord-2", RestaurantID: "r-1", CustomerID: "u-1"})
		before = h.snapshot(t, "ord-2")
		for _, owners := range [][2]string{{"r-2", "u-1"}, {"r-1", "u-2"}, {"", "u-1"}, {"r-1", ""}, {"", ""}} {
			_, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "ord-2", RestaurantID: owners[0], CustomerID: owners[1]})
			if ordercast.ErrorCode(err) != ordercast.EOrderExists {
				t.Errorf("repeat with restaurant %q, customer %q: %v, want %s", owners[0], owners[1], err, ordercast.EOrderExists)
			}
		}
		if _, created, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "ord-2", RestaurantID: "r-1", CustomerID: "u-1"}); err != nil || created {
			t.Errorf("repeat with the same owners = created %v, %v; want the existing order", created, err)
		}
		h.unchanged(t, before, "ord-2")
	})

	t.Run("InvalidInput", func(t *testing.T) {
		t.Parallel()
		tooLarge := `{"pad":"` + strings.Repeat("x", ordercast.MaxDetailsBytes) + `"}`
		tests := []struct {
			name string
			n    ordercast.NewOrder
			code string
		}{
			{"IDWithSpace", ordercast.NewOrder{ID: "ord 1"}, ordercast.EInvalidID},
			{"IDWithSlash", ordercast.NewOrder{ID: "ord/1"}, ordercast.EInvalidID},
			{"IDTooLong", ordercast.NewOrder{ID: strings.Repeat("a", ordercast.MaxIDLength+1)}, ordercast.EInvalidID},
			{"DetailsArray", ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(`[1,2]`)}, ordercast.EInvalidDetails},
			{"DetailsString", ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(`"pho"`)}, ordercast.EInvalidDetails},
			{"DetailsMalformed", ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(`{"a":`)}, ordercast.EInvalidDetails},
			{"DetailsTooLarge", ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(tooLarge)}, ordercast.EInvalidDetails},
			{"NoteTooLong", ordercast.NewOrder{ID: "ord-1", Note: strings.Repeat("n", ordercast.MaxNoteLength+1)}, ordercast.EInvalid},
			{"ActorTooLong", ordercast.NewOrder{ID: "ord-1", Actor: strings.Repeat("a", ordercast.MaxActorLength+1)}, ordercast.EInvalid},
			// Not UTF-8: PostgreSQL's text refuses it, which must be a 422 on both stores.
			{"DetailsNotUTF8", ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage("{\"a\":\"\xff\"}")}, ordercast.EInvalidDetails},
			{"NoteNotUTF8", ordercast.NewOrder{ID: "ord-1", Note: "\xff"}, ordercast.EInvalid},
			{"ActorNotUTF8", ordercast.NewOrder{ID: "ord-1", Actor: "a\xffb"}, ordercast.EInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, open)
				before := h.snapshot(t, "ord-1")
				o, created, err := h.s.CreateOrder(h.ctx, tt.n)
				wantCode(t, err, tt.code)
				if created || o.ID != "" {
					t.Errorf("got created=%v order %q, want nothing", created, o.ID)
				}
				h.unchanged(t, before, "ord-1")
				if got := h.active(t); len(got) != 0 {
					t.Errorf("ActiveOrders = %d orders, want none", len(got))
				}
			})
		}
	})
}

func exerciseNotFound(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	h.create(t, ordercast.NewOrder{ID: "known"})
	before := h.snapshot(t, "known", "unknown")

	_, err := h.s.Order(h.ctx, "unknown")
	wantCode(t, err, ordercast.ENotFound)
	evs, err := h.s.EventsAfter(h.ctx, "unknown", 0, 0)
	wantCode(t, err, ordercast.ENotFound)
	if len(evs) != 0 {
		t.Errorf("EventsAfter(unknown) = %d events, want none", len(evs))
	}
	_, _, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "unknown", Status: ordercast.StatusConfirmed})
	wantCode(t, err, ordercast.ENotFound)
	if changed {
		t.Errorf("AppendStatus(unknown): changed = true")
	}
	h.unchanged(t, before, "known", "unknown")
}

func exerciseAppendStatus(t *testing.T, open opener) {
	t.Run("ForwardWithSkips", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		prev := h.create(t, ordercast.NewOrder{ID: "ord-1", Details: json.RawMessage(`{"a":1}`)})
		// preparing is skipped: forward moves may jump stages.
		path := []ordercast.Status{
			ordercast.StatusConfirmed, ordercast.StatusReady,
			ordercast.StatusOutForDelivery, ordercast.StatusDelivered,
		}
		for i, to := range path {
			c := ordercast.StatusChange{
				OrderID: "ord-1", Status: to,
				Note: fmt.Sprintf("step %d", i), Actor: "courier:7",
			}
			o, ev, changed, err := h.s.AppendStatus(h.ctx, c)
			if err != nil {
				t.Fatalf("AppendStatus(%s): %v", to, err)
			}
			if !changed {
				t.Errorf("AppendStatus(%s): changed = false", to)
			}
			want := prev
			want.Status, want.Version, want.UpdatedAt = to, prev.Version+1, o.UpdatedAt
			equalOrder(t, "order after "+string(to), o, want)
			wantEv := ordercast.Event{OrderID: "ord-1", Seq: want.Version, Status: to, At: o.UpdatedAt, Note: c.Note, Actor: c.Actor}
			equalEvents(t, "event of "+string(to), []ordercast.Event{ev}, []ordercast.Event{wantEv})
			checkTime(t, "UpdatedAt", o.UpdatedAt)
			if o.UpdatedAt.Before(prev.UpdatedAt) {
				t.Errorf("UpdatedAt went back from %v to %v", prev.UpdatedAt, o.UpdatedAt)
			}
			equalOrder(t, "Order after "+string(to), h.order(t, "ord-1"), o)
			evs, err := h.s.EventsAfter(h.ctx, "ord-1", prev.Version, 0)
			if err != nil {
				t.Fatalf("EventsAfter: %v", err)
			}
			equalEvents(t, "stored event of "+string(to), evs, []ordercast.Event{wantEv})
			prev = o
		}
		evs := h.events(t, "ord-1")
		checkSeqs(t, "ord-1", evs)
		if got, want := prev.Version, evs[len(evs)-1].Seq; got != want {
			t.Errorf("Version = %d, want last seq %d", got, want)
		}
	})

	t.Run("CancelFromAnyNonTerminal", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		for i, from := range ordercast.Statuses {
			if from.Terminal() {
				continue
			}
			id := fmt.Sprintf("ord-%d", i)
			var path []ordercast.Status
			if from != ordercast.StatusPlaced {
				path = append(path, from)
			}
			prev := h.walk(t, id, path...)
			o, ev, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: id, Status: ordercast.StatusCancelled, Actor: "ops"})
			if err != nil || !changed {
				t.Fatalf("cancel from %s: changed=%v err=%v, want true, nil", from, changed, err)
			}
			if o.Status != ordercast.StatusCancelled || o.Version != prev.Version+1 || ev.Seq != o.Version || ev.Actor != "ops" {
				t.Errorf("cancel from %s: order %s, event %+v", from, fmtOrder(o), ev)
			}
		}
	})

	t.Run("Backward", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.walk(t, "ord-1", ordercast.StatusPreparing)
		before := h.snapshot(t, "ord-1")
		for _, to := range []ordercast.Status{ordercast.StatusPlaced, ordercast.StatusConfirmed} {
			_, _, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "ord-1", Status: to})
			wantCode(t, err, ordercast.EInvalidTransition)
			if changed {
				t.Errorf("preparing -> %s: changed = true", to)
			}
		}
		h.unchanged(t, before, "ord-1")
	})

	t.Run("FromTerminal", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.walk(t, "delivered", ordercast.StatusDelivered)
		h.walk(t, "cancelled", ordercast.StatusCancelled)
		before := h.snapshot(t, "delivered", "cancelled")
		for _, id := range []string{"delivered", "cancelled"} {
			for _, to := range ordercast.Statuses {
				if string(to) == id {
					continue
				}
				_, _, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: id, Status: to})
				wantCode(t, err, ordercast.EInvalidTransition)
				if changed {
					t.Errorf("%s -> %s: changed = true", id, to)
				}
			}
		}
		h.unchanged(t, before, "delivered", "cancelled")
	})

	t.Run("SameStatusIsNoOp", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "ord-1"})
		cur, latest := h.move(t, "ord-1", ordercast.StatusConfirmed)
		h.walk(t, "done", ordercast.StatusDelivered)
		doneOrder := h.order(t, "done")
		doneEvs := h.events(t, "done")
		before := h.snapshot(t, "ord-1", "done")

		tests := []struct {
			name   string
			c      ordercast.StatusChange
			want   ordercast.Order
			wantEv ordercast.Event
		}{
			{"Retry", ordercast.StatusChange{OrderID: "ord-1", Status: ordercast.StatusConfirmed, Note: "again"}, cur, latest},
			// The retry carries the version its first attempt moved past; it still succeeds quietly.
			{"RetryWithStaleVersion", ordercast.StatusChange{OrderID: "ord-1", Status: ordercast.StatusConfirmed, ExpectedVersion: 1}, cur, latest},
			{"RetryOfTerminal", ordercast.StatusChange{OrderID: "done", Status: ordercast.StatusDelivered}, doneOrder, doneEvs[len(doneEvs)-1]},
		}
		for _, tt := range tests {
			o, ev, changed, err := h.s.AppendStatus(h.ctx, tt.c)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if changed {
				t.Errorf("%s: changed = true, want false", tt.name)
			}
			equalOrder(t, tt.name+": order", o, tt.want)
			equalEvents(t, tt.name+": event (want the latest)", []ordercast.Event{ev}, []ordercast.Event{tt.wantEv})
		}
		h.unchanged(t, before, "ord-1", "done")
	})

	t.Run("ExpectedVersion", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.walk(t, "ord-1", ordercast.StatusConfirmed) // version 2
		before := h.snapshot(t, "ord-1")
		for _, v := range []int64{1, 3, 99} {
			_, _, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{
				OrderID: "ord-1", Status: ordercast.StatusPreparing, ExpectedVersion: v,
			})
			wantCode(t, err, ordercast.EVersionConflict)
			if changed {
				t.Errorf("ExpectedVersion %d: changed = true", v)
			}
		}
		h.unchanged(t, before, "ord-1")

		o, ev, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{
			OrderID: "ord-1", Status: ordercast.StatusPreparing, ExpectedVersion: 2,
		})
		if err != nil || !changed {
			t.Fatalf("ExpectedVersion 2: changed=%v err=%v, want true, nil", changed, err)
		}
		if o.Version != 3 || ev.Seq != 3 || o.Status != ordercast.StatusPreparing {
			t.Errorf("ExpectedVersion 2: order %s, event seq %d; want version 3 preparing, seq 3", fmtOrder(o), ev.Seq)
		}
	})

	t.Run("InvalidChange", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "ord-1"})
		before := h.snapshot(t, "ord-1")
		tests := []struct {
			name string
			c    ordercast.StatusChange
			code string
		}{
			{"UnknownStatus", ordercast.StatusChange{OrderID: "ord-1", Status: "teleported"}, ordercast.EInvalidStatus},
			{"EmptyStatus", ordercast.StatusChange{OrderID: "ord-1"}, ordercast.EInvalidStatus},
			{"BadID", ordercast.StatusChange{OrderID: "ord 1", Status: ordercast.StatusConfirmed}, ordercast.EInvalidID},
			{"NegativeVersion", ordercast.StatusChange{OrderID: "ord-1", Status: ordercast.StatusConfirmed, ExpectedVersion: -1}, ordercast.EInvalid},
			{"NoteTooLong", ordercast.StatusChange{OrderID: "ord-1", Status: ordercast.StatusConfirmed, Note: strings.Repeat("n", ordercast.MaxNoteLength+1)}, ordercast.EInvalid},
		}
		for _, tt := range tests {
			_, _, changed, err := h.s.AppendStatus(h.ctx, tt.c)
			if changed {
				t.Errorf("%s: changed = true", tt.name)
			}
			if ordercast.ErrorCode(err) != tt.code {
				t.Errorf("%s: err = %v, want code %s", tt.name, err, tt.code)
			}
		}
		h.unchanged(t, before, "ord-1")
	})
}

func exerciseEventsAfter(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	path := []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady, ordercast.StatusOutForDelivery}
	h.walk(t, "ord-1", path...)
	h.walk(t, "other", ordercast.StatusConfirmed) // must not leak into ord-1's events

	all := h.events(t, "ord-1")
	if got, want := len(all), 5; got != want {
		t.Fatalf("EventsAfter(0, 0) = %d events, want %d", got, want)
	}
	checkSeqs(t, "ord-1", all)
	for i, want := range append([]ordercast.Status{ordercast.StatusPlaced}, path...) {
		if all[i].Status != want {
			t.Errorf("event %d status = %s, want %s", i+1, all[i].Status, want)
		}
		if i > 0 && all[i].At.Before(all[i-1].At) {
			t.Errorf("event %d At %v before event %d At %v", i+1, all[i].At, i, all[i-1].At)
		}
	}

	tests := []struct {
		after    int64
		limit    int
		wantSeqs []int64
	}{
		{0, 0, []int64{1, 2, 3, 4, 5}},
		{0, -1, []int64{1, 2, 3, 4, 5}},
		{0, 2, []int64{1, 2}},
		{2, 0, []int64{3, 4, 5}},
		{2, 2, []int64{3, 4}},
		{4, 10, []int64{5}},
		{5, 0, nil},
		{9, 3, nil},
	}
	for _, tt := range tests {
		evs, err := h.s.EventsAfter(h.ctx, "ord-1", tt.after, tt.limit)
		if err != nil {
			t.Errorf("EventsAfter(%d, %d): %v", tt.after, tt.limit, err)
			continue
		}
		var want []ordercast.Event
		for _, seq := range tt.wantSeqs {
			want = append(want, all[seq-1])
		}
		if len(evs) == 0 && len(want) == 0 {
			continue // nil and empty are both "none"
		}
		equalEvents(t, fmt.Sprintf("EventsAfter(%d, %d)", tt.after, tt.limit), evs, want)
	}
}

func exerciseActiveOrders(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	if got := h.active(t); len(got) != 0 {
		t.Errorf("ActiveOrders on an empty store = %d orders, want none", len(got))
	}

	h.create(t, ordercast.NewOrder{ID: "a"})
	h.create(t, ordercast.NewOrder{ID: "b"})
	h.create(t, ordercast.NewOrder{ID: "c"})
	h.walk(t, "delivered", ordercast.StatusDelivered)
	h.walk(t, "cancelled", ordercast.StatusCancelled)
	// Touch b, then a: the newest come first, however recently the others changed.
	h.move(t, "b", ordercast.StatusConfirmed)
	h.move(t, "a", ordercast.StatusPreparing)

	got := h.active(t)
	var ids []string
	for i, o := range got {
		ids = append(ids, o.ID)
		if o.Status.Terminal() {
			t.Errorf("ActiveOrders includes %s in terminal status %s", o.ID, o.Status)
		}
		equalOrder(t, "ActiveOrders entry "+o.ID, o, h.order(t, o.ID))
		if i > 0 && o.CreatedAt.After(got[i-1].CreatedAt) {
			t.Errorf("ActiveOrders[%d] %s created %v after ActiveOrders[%d] %s %v: want newest first",
				i, o.ID, o.CreatedAt, i-1, got[i-1].ID, got[i-1].CreatedAt)
		}
	}
	want := []string{"c", "b", "a"}
	if !slices.Equal(ids, want) {
		// Orders created in the same microsecond tie; only a tie excuses a different order.
		sorted := slices.Sorted(slices.Values(ids))
		if !slices.Equal(sorted, []string{"a", "b", "c"}) || distinctCreations(got) {
			t.Errorf("ActiveOrders ids = %v, want %v", ids, want)
		}
	}

	for limit := 1; limit <= 3; limit++ {
		lim, err := h.s.ActiveOrders(h.ctx, limit)
		if err != nil {
			t.Fatalf("ActiveOrders(%d): %v", limit, err)
		}
		if len(lim) != limit {
			t.Errorf("ActiveOrders(%d) = %d orders, want %d", limit, len(lim), limit)
			continue
		}
		for i := range lim {
			if lim[i].ID != got[i].ID {
				t.Errorf("ActiveOrders(%d)[%d] = %s, want %s (a prefix of the full list)", limit, i, lim[i].ID, got[i].ID)
			}
		}
	}
}

func distinctCreations(os []ordercast.Order) bool {
	seen := map[time.Time]bool{}
	for _, o := range os {
		k := o.CreatedAt.Round(0).UTC()
		if seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

func exercisePublisher(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)

	o := h.create(t, ordercast.NewOrder{ID: "ord-1", Actor: "app"})
	stored := h.events(t, "ord-1")
	equalEvents(t, "published after create", h.pub.Events(), stored)

	_, ev, _, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: "ord-1", Status: ordercast.StatusConfirmed, Note: "ok"})
	if err != nil {
		t.Fatalf("AppendStatus: %v", err)
	}
	equalEvents(t, "published after a change", h.pub.Events(), append(stored, ev))

	// None of these commits anything, so none may publish.
	n := h.pub.Len()
	rejected := []func() error{
		func() error { _, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "ord-1"}); return err }, // existing, other details
		func() error {
			_, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "ord-1", Details: o.Details})
			return err
		}, // idempotent repeat
		func() error { _, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "bad id"}); return err },
		func() error { return appendErr(h, "ord-1", ordercast.StatusConfirmed, 0) }, // no-op
		func() error { return appendErr(h, "ord-1", ordercast.StatusPlaced, 0) },    // backward
		func() error { return appendErr(h, "ord-1", ordercast.StatusReady, 1) },     // stale version
		func() error { return appendErr(h, "nope", ordercast.StatusReady, 0) },      // unknown
		func() error { return appendErr(h, "ord-1", "bogus", 0) },                   // invalid status
	}
	for i, f := range rejected {
		_ = f() // errors are checked elsewhere; here only publishing matters
		if got := h.pub.Len(); got != n {
			t.Errorf("rejected or no-op request %d published %d events", i, got-n)
			n = got
		}
	}
	equalEvents(t, "published vs stored", h.pub.Events(), h.events(t, "ord-1"))
}

func appendErr(h *harness, id string, to ordercast.Status, version int64) error {
	_, _, _, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: id, Status: to, ExpectedVersion: version})
	return err
}

// forward is the path an order takes when nothing goes wrong.
var forward = []ordercast.Status{
	ordercast.StatusPlaced, ordercast.StatusConfirmed, ordercast.StatusPreparing,
	ordercast.StatusReady, ordercast.StatusOutForDelivery, ordercast.StatusDelivered,
}

func exerciseConcurrency(t *testing.T, open opener) {
	const workers = 16

	t.Run("RacingAppendStatus", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		const rounds, attempts = 4, 8

		type win struct {
			read int64 // the version the winner read and sent as ExpectedVersion
			ev   ordercast.Event
		}
		for round := range rounds {
			id := fmt.Sprintf("race-%d", round)
			h.create(t, ordercast.NewOrder{ID: id})

			var (
				mu   sync.Mutex
				wins []win
				wg   sync.WaitGroup
			)
			start := make(chan struct{})
			for g := range workers {
				wg.Go(func() {
					<-start
					for range attempts {
						o, err := h.s.Order(h.ctx, id)
						if err != nil {
							t.Errorf("Order: %v", err)
							return
						}
						if o.Status.Terminal() {
							return
						}
						// Half the workers jump two stages, so two racers that read the same
						// version want different statuses: without the version check both of
						// their changes would be valid transitions and both would win.
						next := min(slices.Index(forward, o.Status)+1+g%2, len(forward)-1)
						_, ev, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{
							OrderID: id, Status: forward[next], ExpectedVersion: o.Version,
						})
						switch {
						case err == nil && changed:
							mu.Lock()
							wins = append(wins, win{o.Version, ev})
							mu.Unlock()
						case err == nil:
							// Lost to a racer that moved the order to this same status.
						case ordercast.ErrorCode(err) == ordercast.EVersionConflict:
							// Lost the race.
						default:
							t.Errorf("AppendStatus(%s, expected version %d): %v", forward[next], o.Version, err)
							return
						}
					}
				})
			}
			close(start)
			wg.Wait()

			final := h.order(t, id)
			stored := h.events(t, id)
			checkSeqs(t, id, stored)
			if got, want := final.Version, int64(len(stored)); got != want {
				t.Errorf("%s: Version = %d, want %d (its last seq)", id, got, want)
			}
			if got, want := len(wins), len(stored)-1; got != want {
				t.Errorf("%s: %d winning changes, want %d (one per stored change)", id, got, want)
			}
			byRead := map[int64]int{}
			for _, w := range wins {
				byRead[w.read]++
				if byRead[w.read] == 2 {
					t.Errorf("%s: more than one change won with expected version %d", id, w.read)
				}
				if w.ev.Seq != w.read+1 {
					t.Errorf("%s: winner with expected version %d got seq %d", id, w.read, w.ev.Seq)
				} else if int(w.ev.Seq) <= len(stored) {
					equalEvents(t, "winner's event vs stored", []ordercast.Event{w.ev}, []ordercast.Event{stored[w.ev.Seq-1]})
				}
			}
			// Stores need not publish the events of one order in seq order (the hub fills and
			// dedupes), but each exactly once.
			published := eventsOf(h.pub.Events(), id)
			sortEvents(published)
			equalEvents(t, id+": published vs stored", published, stored)
		}
	})

	t.Run("CreateDistinctOrders", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		const each = 8
		var wg sync.WaitGroup
		for g := range workers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("w%02d-%02d", g, i)
					if _, created, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: id}); err != nil || !created {
						t.Errorf("CreateOrder(%s): created=%v err=%v", id, created, err)
					}
				}
			})
		}
		wg.Wait()

		active := h.active(t)
		if got, want := len(active), workers*each; got != want {
			t.Errorf("ActiveOrders = %d orders, want %d", got, want)
		}
		var stored []ordercast.Event
		for _, o := range active {
			if o.Version != 1 {
				t.Errorf("%s: Version = %d, want 1", o.ID, o.Version)
			}
			evs := h.events(t, o.ID)
			checkSeqs(t, o.ID, evs)
			stored = append(stored, evs...)
		}
		published := h.pub.Events()
		sortEvents(stored)
		sortEvents(published)
		equalEvents(t, "published vs stored", published, stored)
	})

	t.Run("CreateSameOrder", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
			orders  []ordercast.Order
		)
		for g := range workers {
			wg.Go(func() {
				// Same details written differently by each worker: still one order.
				details := json.RawMessage(fmt.Sprintf(`{"b":2,%s"a":1}`, strings.Repeat(" ", g)))
				o, c, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "same", Details: details})
				if err != nil {
					t.Errorf("CreateOrder: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if c {
					created++
				}
				orders = append(orders, o)
			})
		}
		wg.Wait()
		if created != 1 {
			t.Errorf("%d workers created the order, want exactly 1", created)
		}
		stored := h.order(t, "same")
		for _, o := range orders {
			equalOrder(t, "order returned to a worker", o, stored)
		}
		evs := h.events(t, "same")
		checkSeqs(t, "same", evs)
		if len(evs) != 1 {
			t.Errorf("%d events, want 1", len(evs))
		}
		equalEvents(t, "published vs stored", h.pub.Events(), evs)
	})
}

func exerciseRejected(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	h.walk(t, "live", ordercast.StatusConfirmed)
	h.walk(t, "done", ordercast.StatusDelivered)
	h.walk(t, "gone", ordercast.StatusCancelled)
	ids := []string{"live", "done", "gone", "new", "unknown"}
	before := h.snapshot(t, ids...)

	creates := []ordercast.NewOrder{
		{ID: "live", Details: json.RawMessage(`{"x":1}`)},
		{ID: "bad id"},
		{ID: "new", Details: json.RawMessage(`[]`)},
		{ID: "new", Note: strings.Repeat("n", ordercast.MaxNoteLength+1)},
	}
	for _, n := range creates {
		if _, _, err := h.s.CreateOrder(h.ctx, n); err == nil {
			t.Errorf("CreateOrder(%+v) succeeded, want an error", n)
		}
	}
	changes := []ordercast.StatusChange{
		{OrderID: "live", Status: ordercast.StatusPlaced},
		{OrderID: "live", Status: ordercast.StatusReady, ExpectedVersion: 1},
		{OrderID: "live", Status: "bogus"},
		{OrderID: "done", Status: ordercast.StatusCancelled},
		{OrderID: "gone", Status: ordercast.StatusConfirmed},
		{OrderID: "unknown", Status: ordercast.StatusConfirmed},
	}
	for _, c := range changes {
		if _, _, _, err := h.s.AppendStatus(h.ctx, c); err == nil {
			t.Errorf("AppendStatus(%+v) succeeded, want an error", c)
		}
	}
	h.unchanged(t, before, ids...)
}
