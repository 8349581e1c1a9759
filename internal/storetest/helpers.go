package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// Recorder is a Publisher that keeps every event it is given, for comparing what a store
// announced with what it stored.
type Recorder struct {
	mu     sync.Mutex
	events []ordercast.Event
}

// Publish records ev.
func (r *Recorder) Publish(ev ordercast.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// Events returns a copy of the recorded events, in the order they were published.
func (r *Recorder) Events() []ordercast.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ordercast.Event(nil), r.events...)
}

// Len returns how many events have been published.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// opener is the signature Exercise takes; named so helpers can share it.
type opener = func(t *testing.T, pub ordercast.Publisher) ordercast.Store

// harness is one fresh store with its recorder, built for one subtest.
type harness struct {
	ctx context.Context
	s   ordercast.Store
	pub *Recorder
}

func newHarness(t *testing.T, open opener) *harness {
	t.Helper()
	pub := &Recorder{}
	s := open(t, pub)
	if s == nil {
		t.Fatal("open returned a nil Store")
	}
	return &harness{ctx: t.Context(), s: s, pub: pub}
}

// create creates an order and fails the test unless it is new.
func (h *harness) create(t *testing.T, n ordercast.NewOrder) ordercast.Order {
	t.Helper()
	o, created, err := h.s.CreateOrder(h.ctx, n)
	if err != nil {
		t.Fatalf("CreateOrder(%q): %v", n.ID, err)
	}
	if !created {
		t.Fatalf("CreateOrder(%q): created = false, want true", n.ID)
	}
	return o
}

// move applies a status change and fails the test unless it changed the order.
func (h *harness) move(t *testing.T, id string, to ordercast.Status) (ordercast.Order, ordercast.Event) {
	t.Helper()
	o, ev, changed, err := h.s.AppendStatus(h.ctx, ordercast.StatusChange{OrderID: id, Status: to})
	if err != nil {
		t.Fatalf("AppendStatus(%s -> %s): %v", id, to, err)
	}
	if !changed {
		t.Fatalf("AppendStatus(%s -> %s): changed = false, want true", id, to)
	}
	return o, ev
}

// walk creates an order and moves it through the given statuses in turn.
func (h *harness) walk(t *testing.T, id string, path ...ordercast.Status) ordercast.Order {
	t.Helper()
	o := h.create(t, ordercast.NewOrder{ID: id})
	for _, st := range path {
		o, _ = h.move(t, id, st)
	}
	return o
}

func (h *harness) order(t *testing.T, id string) ordercast.Order {
	t.Helper()
	o, err := h.s.Order(h.ctx, id)
	if err != nil {
		t.Fatalf("Order(%q): %v", id, err)
	}
	return o
}

func (h *harness) events(t *testing.T, id string) []ordercast.Event {
	t.Helper()
	evs, err := h.s.EventsAfter(h.ctx, id, 0, 0)
	if err != nil {
		t.Fatalf("EventsAfter(%q, 0, 0): %v", id, err)
	}
	return evs
}

// active lists the active orders; the suite never has more than this, so it means "all".
func (h *harness) active(t *testing.T) []ordercast.Order {
	t.Helper()
	os, err := h.s.ActiveOrders(h.ctx, 10000)
	if err != nil {
		t.Fatalf("ActiveOrders: %v", err)
	}
	return os
}

// state is everything observable about a set of orders, for before/after comparisons.
type state struct {
	Orders    map[string]ordercast.Order
	Events    map[string][]ordercast.Event
	Active    []ordercast.Order
	Published []ordercast.Event
}

// snapshot captures the state of the given orders (ids not in the store are recorded as absent).
func (h *harness) snapshot(t *testing.T, ids ...string) state {
	t.Helper()
	st := state{Orders: map[string]ordercast.Order{}, Events: map[string][]ordercast.Event{}}
	for _, id := range ids {
		o, err := h.s.Order(h.ctx, id)
		if ordercast.ErrorCode(err) == ordercast.ENotFound {
			continue
		} else if err != nil {
			t.Fatalf("Order(%q): %v", id, err)
		}
		st.Orders[id] = norm(o)
		st.Events[id] = normEvents(h.events(t, id))
	}
	st.Active = normOrders(h.active(t))
	st.Published = normEvents(h.pub.Events())
	return st
}

// unchanged fails the test if the store differs from before.
func (h *harness) unchanged(t *testing.T, before state, ids ...string) {
	t.Helper()
	if after := h.snapshot(t, ids...); !reflect.DeepEqual(after, before) {
		t.Errorf("store changed by a rejected or no-op request:\n got  %+v\n want %+v", after, before)
	}
}

// wantCode fails the test unless err is an *ordercast.Error with the given code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *ordercast.Error
	switch {
	case err == nil:
		t.Errorf("err = nil, want code %s", code)
	case !errors.As(err, &e):
		t.Errorf("err = %v (%T), want an *ordercast.Error with code %s", err, err, code)
	case e.Code != code:
		t.Errorf("err code = %s (%v), want %s", e.Code, err, code)
	}
}

// checkTime fails the test unless tm is set, in UTC and at microsecond precision, the
// precision both stores keep (so a value read back equals the value returned on write).
func checkTime(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.IsZero() {
		t.Errorf("%s is zero", what)
	}
	if tm.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, tm.Location())
	}
	if !tm.Equal(tm.Truncate(time.Microsecond)) {
		t.Errorf("%s = %v, want it truncated to microseconds", what, tm)
	}
}

// norm puts an order in a form reflect.DeepEqual can compare across reads: no monotonic clock
// reading, one representation of UTC, details re-encoded canonically (a store may keep them in
// a format of its own, such as jsonb).
func norm(o ordercast.Order) ordercast.Order {
	o.CreatedAt = o.CreatedAt.Round(0).UTC()
	o.UpdatedAt = o.UpdatedAt.Round(0).UTC()
	if d, err := ordercast.NormalizeDetails(o.Details); err == nil {
		o.Details = d
	}
	return o
}

func normOrders(os []ordercast.Order) []ordercast.Order {
	out := make([]ordercast.Order, len(os))
	for i, o := range os {
		out[i] = norm(o)
	}
	return out
}

func normEvent(ev ordercast.Event) ordercast.Event {
	ev.At = ev.At.Round(0).UTC()
	return ev
}

func normEvents(evs []ordercast.Event) []ordercast.Event {
	out := make([]ordercast.Event, len(evs))
	for i, ev := range evs {
		out[i] = normEvent(ev)
	}
	return out
}

func equalOrder(t *testing.T, what string, got, want ordercast.Order) {
	t.Helper()
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", what, fmtOrder(g), fmtOrder(w))
	}
}

func equalEvents(t *testing.T, what string, got, want []ordercast.Event) {
	t.Helper()
	if g, w := normEvents(got), normEvents(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

// fmtOrder prints an order with its details as text, which %+v prints as bytes.
func fmtOrder(o ordercast.Order) string {
	details := string(o.Details)
	o.Details = nil
	return fmt.Sprintf("%+v Details:%s", o, details)
}

// sameJSON reports whether two JSON documents hold the same value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// checkSeqs fails the test unless evs are the events 1..len(evs) of order id, in order.
func checkSeqs(t *testing.T, id string, evs []ordercast.Event) {
	t.Helper()
	for i, ev := range evs {
		if ev.OrderID != id || ev.Seq != int64(i+1) {
			t.Errorf("event %d = %s/%d, want %s/%d (seqs must run 1..n with no holes)",
				i, ev.OrderID, ev.Seq, id, i+1)
		}
	}
}

// sortEvents orders events by order id, then seq, for comparisons where publication order
// across goroutines is not defined.
func sortEvents(evs []ordercast.Event) {
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].OrderID != evs[j].OrderID {
			return evs[i].OrderID < evs[j].OrderID
		}
		return evs[i].Seq < evs[j].Seq
	})
}

// eventsOf returns the events of one order among evs, in their original order.
func eventsOf(evs []ordercast.Event, id string) []ordercast.Event {
	var out []ordercast.Event
	for _, ev := range evs {
		if ev.OrderID == id {
			out = append(out, ev)
		}
	}
	return out
}

// Opener is a store before it is opened: what MustOpen needs of it.
type Opener interface {
	Open(ctx context.Context) error
	Close() error
}

// MustOpen opens s for a test, failing it on error, and closes s when the test ends.
func MustOpen[S Opener](t *testing.T, s S) S {
	t.Helper()
	if err := s.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
