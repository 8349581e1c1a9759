package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// BatchHolder is how the suite puts chosen writes into one batch of a group-committing store
// without sleeping: HoldWrites(n) makes its writer take nothing until n writes are queued, then
// all n together; WaitQueued(k) returns once k writes are queued, so the suite queues them one at
// a time and knows their order.
type BatchHolder interface {
	HoldWrites(n int)
	WaitQueued(n int)
}

// write is one request of a held batch and what it must do.
type write struct {
	create  *ordercast.NewOrder
	change  *ordercast.StatusChange
	assign  *ordercast.CourierChange
	code    string // the error code it must fail with, "" for success
	errIs   error  // or the error it must fail with, when it is not the domain's
	changed bool   // created, or changed, when it succeeds
	version int64  // the order's version in its answer, when it succeeds
}

// result is one write's answer.
type result struct {
	o       ordercast.Order
	ev      ordercast.Event
	changed bool
	err     error
}

// inOneBatch queues writes in order and lets the store commit them as one batch.
func (h *harness) inOneBatch(t *testing.T, writes []write) []result {
	t.Helper()
	hb, ok := h.s.(BatchHolder)
	if !ok {
		t.Fatalf("%T does not implement storetest.BatchHolder", h.s)
	}
	hb.HoldWrites(len(writes))
	out := make([]result, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() {
			r := &out[i]
			switch {
			case w.create != nil:
				r.o, r.changed, r.err = h.s.CreateOrder(h.ctx, *w.create)
			case w.assign != nil:
				r.o, r.ev, r.changed, r.err = h.s.AssignCourier(h.ctx, *w.assign)
			default:
				r.o, r.ev, r.changed, r.err = h.s.AppendStatus(h.ctx, *w.change)
			}
		})
		hb.WaitQueued(i + 1) // in place before the next one is sent
	}
	wg.Wait()
	for i, w := range writes {
		r := out[i]
		if w.errIs != nil {
			if !errors.Is(r.err, w.errIs) || r.changed {
				t.Errorf("write %d: err = %v, changed = %v, want %v", i, r.err, r.changed, w.errIs)
			}
			continue
		}
		if w.code != "" {
			wantCode(t, r.err, w.code)
			if r.changed {
				t.Errorf("write %d: changed = true for a refused write", i)
			}
			continue
		}
		if r.err != nil {
			t.Errorf("write %d (%s): %v", i, w.orderID(), r.err)
			continue
		}
		if r.changed != w.changed {
			t.Errorf("write %d (%s): changed = %v, want %v", i, w.orderID(), r.changed, w.changed)
		}
		if r.o.Version != w.version {
			t.Errorf("write %d (%s): version = %d, want %d", i, w.orderID(), r.o.Version, w.version)
		}
	}
	return out
}

func (w write) orderID() string {
	switch {
	case w.create != nil:
		return w.create.ID
	case w.assign != nil:
		return w.assign.OrderID
	}
	return w.change.OrderID
}

func change(id string, to ordercast.Status, expected int64) *ordercast.StatusChange {
	return &ordercast.StatusChange{OrderID: id, Status: to, ExpectedVersion: expected, Note: "to " + string(to)}
}

func exerciseBatches(t *testing.T, open opener) {
	t.Run("OneOrderGoodAndBad", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "o"})
		before := h.pub.Len()

		// Each change is judged against the order as the changes before it in the batch left it.
		res := h.inOneBatch(t, []write{
			{change: change("o", ordercast.StatusConfirmed, 0), changed: true, version: 2},
			{change: change("o", ordercast.StatusPlaced, 0), code: ordercast.EInvalidTransition},
			{change: change("o", ordercast.StatusConfirmed, 0), changed: false, version: 2}, // repeat
			{change: change("o", ordercast.StatusReady, 2), changed: true, version: 3},
			{change: change("o", ordercast.StatusPreparing, 2), code: ordercast.EVersionConflict},
			{change: change("o", ordercast.StatusDelivered, 0), changed: true, version: 4},
			{change: change("o", ordercast.StatusCancelled, 0), code: ordercast.EInvalidTransition},
		})
		stored := h.events(t, "o")
		checkSeqs(t, "o", stored)
		var got []ordercast.Status
		for _, ev := range stored {
			got = append(got, ev.Status)
		}
		want := []ordercast.Status{ordercast.StatusPlaced, ordercast.StatusConfirmed, ordercast.StatusReady, ordercast.StatusDelivered}
		if !slices.Equal(got, want) {
			t.Fatalf("stored statuses = %v, want %v", got, want)
		}
		// Every answer carries the stored event; the repeat answers with the latest one.
		equalEvents(t, "answers vs stored",
			[]ordercast.Event{res[0].ev, res[2].ev, res[3].ev, res[5].ev},
			[]ordercast.Event{stored[1], stored[1], stored[2], stored[3]})
		equalOrder(t, "last answer vs stored order", res[5].o, h.order(t, "o"))
		equalEvents(t, "published, in commit order", h.pub.Events()[before:], stored[1:])
	})

	t.Run("Idempotency", func(t *testing.T) { exerciseBatchIdempotency(t, open) })

	t.Run("ManyOrdersGoodAndBad", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "a", Details: json.RawMessage(`{"n":1}`)})
		h.walk(t, "b", ordercast.StatusDelivered)
		h.create(t, ordercast.NewOrder{ID: "c"})
		before := h.pub.Len()
		untouched := h.snapshot(t, "b", "x")
		untouched.Active, untouched.Published = nil, nil // other orders do change

		res := h.inOneBatch(t, []write{
			{create: &ordercast.NewOrder{ID: "n", Details: json.RawMessage(`{"k":1.0}`)}, changed: true, version: 1},
			{change: change("a", ordercast.StatusConfirmed, 0), changed: true, version: 2},
			{change: change("b", ordercast.StatusCancelled, 0), code: ordercast.EInvalidTransition},
			{change: change("x", ordercast.StatusConfirmed, 0), code: ordercast.ENotFound},
			{change: change("n", ordercast.StatusConfirmed, 1), changed: true, version: 2}, // sees its creation
			{change: change("c", ordercast.StatusReady, 5), code: ordercast.EVersionConflict},
			{create: &ordercast.NewOrder{ID: "a", Details: json.RawMessage(`{"n":2}`)}, code: ordercast.EOrderExists},
			{create: &ordercast.NewOrder{ID: "n", Details: json.RawMessage(`{"k":1}`)}, changed: false, version: 2}, // same value
			{change: change("c", ordercast.StatusPreparing, 1), changed: true, version: 2},
		})
		after := h.snapshot(t, "b", "x")
		after.Active, after.Published = nil, nil
		if !reflect.DeepEqual(after, untouched) {
			t.Errorf("refused writes changed orders b or x")
		}
		wantStored := map[string][]ordercast.Status{
			"a": {ordercast.StatusPlaced, ordercast.StatusConfirmed},
			"n": {ordercast.StatusPlaced, ordercast.StatusConfirmed},
			"c": {ordercast.StatusPlaced, ordercast.StatusPreparing},
		}
		for id, want := range wantStored {
			evs := h.events(t, id)
			checkSeqs(t, id, evs)
			var got []ordercast.Status
			for _, ev := range evs {
				got = append(got, ev.Status)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: stored statuses = %v, want %v", id, got, want)
			}
		}
		equalOrder(t, "repeated create answers the order as the batch left it", res[7].o, h.order(t, "n"))
		// Published in the order the writes came, which is the order of commit.
		nEvs := h.events(t, "n")
		want := []ordercast.Event{nEvs[0], h.events(t, "a")[1], nEvs[1], h.events(t, "c")[1]}
		equalEvents(t, "published, in commit order", h.pub.Events()[before:], want)
	})

	t.Run("AppendStatuses", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, open)
		h.create(t, ordercast.NewOrder{ID: "a"})
		h.create(t, ordercast.NewOrder{ID: "b"})
		h.create(t, ordercast.NewOrder{ID: "c"})
		before := h.pub.Len()
		untouched := h.snapshot(t, "c", "x")
		untouched.Active, untouched.Published = nil, nil

		// Taken together, in their order: a later change of an order sees the earlier ones, and
		// each refusal is the change's own.
		cs := []ordercast.StatusChange{
			*change("a", ordercast.StatusConfirmed, 0),
			*change("a", ordercast.StatusPlaced, 0),
			*change("b", ordercast.StatusConfirmed, 1),
			*change("a", ordercast.StatusPreparing, 2),
			*change("x", ordercast.StatusConfirmed, 0),
			*change("c", ordercast.StatusReady, 5),
			{OrderID: "c", Status: "teleported"},
			*change("b", ordercast.StatusConfirmed, 0),
		}
		res := h.s.AppendStatuses(h.ctx, cs)
		if len(res) != len(cs) {
			t.Fatalf("%d results for %d changes", len(res), len(cs))
		}
		wantCodes := []string{"", ordercast.EInvalidTransition, "", "", ordercast.ENotFound, ordercast.EVersionConflict, ordercast.EInvalidStatus, ""}
		wantChanged := []bool{true, false, true, true, false, false, false, false}
		wantVersion := []int64{2, 0, 2, 3, 0, 0, 0, 2}
		for i, r := range res {
			if wantCodes[i] != "" {
				wantCode(t, r.Err, wantCodes[i])
			} else if r.Err != nil {
				t.Errorf("change %d: %v", i, r.Err)
			}
			if r.Changed != wantChanged[i] || r.Err == nil && r.Order.Version != wantVersion[i] {
				t.Errorf("change %d: changed %v, version %d; want %v, %d", i, r.Changed, r.Order.Version, wantChanged[i], wantVersion[i])
			}
		}
		after := h.snapshot(t, "c", "x")
		after.Active, after.Published = nil, nil
		if !reflect.DeepEqual(after, untouched) {
			t.Errorf("refused changes changed orders c or x")
		}
		aEvs, bEvs := h.events(t, "a"), h.events(t, "b")
		checkSeqs(t, "a", aEvs)
		checkSeqs(t, "b", bEvs)
		equalEvents(t, "answers vs stored", []ordercast.Event{res[0].Event, res[2].Event, res[3].Event, res[7].Event},
			[]ordercast.Event{aEvs[1], bEvs[1], aEvs[2], bEvs[1]})
		equalEvents(t, "published, in the changes' order", h.pub.Events()[before:], []ordercast.Event{aEvs[1], bEvs[1], aEvs[2]})
		if got := h.s.AppendStatuses(h.ctx, nil); len(got) != 0 {
			t.Errorf("no changes: %d results", len(got))
		}
	})
}

// exerciseBatchIdempotency: within one batch each write's idempotency key is judged by itself,
// in order. A key already answered, in the store or by an earlier write of the batch, refuses its
// write alone (the caller replays that answer); a render that fails refuses its write alone; a
// key whose write broke a rule stays free for a later write of the batch.
func exerciseBatchIdempotency(t *testing.T, open opener) {
	t.Parallel()
	h := newHarness(t, open)
	later := time.Now().Add(time.Hour)
	h.create(t, ordercast.NewOrder{ID: "o"})
	h.create(t, ordercast.NewOrder{ID: "s", Idem: idem("s", "k-stored", "f-0", later)})
	before := h.pub.Len()

	keyed := func(c *ordercast.StatusChange, key, fingerprint string) *ordercast.StatusChange {
		c.Idem = idem("s", key, fingerprint, later)
		return c
	}
	failing := change("o", ordercast.StatusPreparing, 0)
	failing.Idem = idem("s", "k-fail", "f-fail", later)
	boom := errors.New("render failed")
	failing.Idem.Render = func(ordercast.Result) (ordercast.Answer, error) { return ordercast.Answer{}, boom }
	h.inOneBatch(t, []write{
		{change: keyed(change("o", ordercast.StatusConfirmed, 0), "k-1", "f-1"), changed: true, version: 2},
		{change: keyed(change("o", ordercast.StatusConfirmed, 1), "k-1", "f-1"), code: ordercast.EIdempotencyKeyInUse}, // a twin
		{change: keyed(change("o", ordercast.StatusPreparing, 0), "k-1", "f-2"), code: ordercast.EIdempotencyKeyInUse},
		{change: keyed(change("o", ordercast.StatusPreparing, 0), "k-stored", "f-3"), code: ordercast.EIdempotencyKeyInUse},
		{change: failing, errIs: boom},
		{change: keyed(change("o", ordercast.StatusPreparing, 2), "k-2", "f-4"), changed: true, version: 3},
		{create: &ordercast.NewOrder{ID: "n", Idem: idem("s", "k-3", "f-5", later)}, changed: true, version: 1},
		{change: keyed(change("o", ordercast.StatusPlaced, 0), "k-4", "f-6"), code: ordercast.EInvalidTransition},
		{change: keyed(change("o", ordercast.StatusReady, 0), "k-4", "f-7"), changed: true, version: 4},
	})
	wantAnswer(t, h, "s", "k-1", "f-1", 200, `{"id":"o","version":2,"seq":2,"created":false,"changed":true}`)
	wantAnswer(t, h, "s", "k-stored", "f-0", 201, `{"id":"s","version":1,"seq":1,"created":true,"changed":false}`)
	wantAnswer(t, h, "s", "k-2", "f-4", 200, `{"id":"o","version":3,"seq":3,"created":false,"changed":true}`)
	wantAnswer(t, h, "s", "k-3", "f-5", 201, `{"id":"n","version":1,"seq":1,"created":true,"changed":false}`)
	wantAnswer(t, h, "s", "k-4", "f-7", 200, `{"id":"o","version":4,"seq":4,"created":false,"changed":true}`)
	if _, err := h.s.IdempotentAnswer(h.ctx, "s", "k-fail", time.Now()); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Errorf("key of a write whose render failed: %v, want not found", err)
	}
	o := h.events(t, "o")
	checkSeqs(t, "o", o)
	want := []ordercast.Event{o[1], o[2], h.events(t, "n")[0], o[3]}
	equalEvents(t, "published, in commit order", h.pub.Events()[before:], want)
}

// FailedCommit checks that a batch whose commit fails fails every write in it, good ones
// included, stores and publishes nothing, and leaves the store working. plant must write an
// event with the given order id and seq behind the store's back, so that the batch's own insert
// of that event breaks the primary key: the only way to make a commit fail on demand.
func FailedCommit(t *testing.T, open func(t *testing.T, pub ordercast.Publisher) ordercast.Store, plant func(t *testing.T, orderID string, seq int64)) {
	h := newHarness(t, open)
	h.create(t, ordercast.NewOrder{ID: "p"})
	h.create(t, ordercast.NewOrder{ID: "q"})
	plant(t, "p", 2)
	before := h.pub.Len()

	hb, ok := h.s.(BatchHolder)
	if !ok {
		t.Fatalf("%T does not implement storetest.BatchHolder", h.s)
	}
	hb.HoldWrites(3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	writes := []func() error{
		func() error {
			_, _, _, err := h.s.AppendStatus(h.ctx, *change("q", ordercast.StatusConfirmed, 0))
			return err
		},
		func() error {
			_, _, _, err := h.s.AppendStatus(h.ctx, *change("p", ordercast.StatusConfirmed, 0))
			return err
		},
		func() error { _, _, err := h.s.CreateOrder(h.ctx, ordercast.NewOrder{ID: "r"}); return err },
	}
	for i, w := range writes {
		wg.Go(func() { errs[i] = w() })
		hb.WaitQueued(i + 1)
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || ordercast.ErrorCode(err) != ordercast.EInternal {
			t.Errorf("write %d of the failed batch: err = %v, want an internal error", i, err)
		}
	}
	if got := h.pub.Len(); got != before {
		t.Errorf("a failed batch published %d events", got-before)
	}
	if got := h.order(t, "q"); got.Version != 1 {
		t.Errorf("q: version %d after a failed batch, want 1", got.Version)
	}
	if _, err := h.s.Order(h.ctx, "r"); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Errorf("r after a failed batch: err = %v, want not found", err)
	}
	// The store goes on: a lone change commits.
	h.move(t, "q", ordercast.StatusConfirmed)
}
