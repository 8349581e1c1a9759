package ordercast

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Write is one request in a batch that a store commits in one transaction: a new order or a
// status change, exactly one of them set. Create must be normalized (NewOrder.Normalize) and
// Change validated (StatusChange.Validate) before it joins a batch, so that only the rules that
// depend on the stored state are judged in the batch.
type Write struct {
	Create *NewOrder
	Change *StatusChange
}

// OrderID is the order the write is about.
func (w Write) OrderID() string {
	if w.Create != nil {
		return w.Create.ID
	}
	return w.Change.OrderID
}

// WriteResult is what one write of a batch did. For a creation, Changed reports whether the
// order is new; for a status change, whether an event was appended (an idempotent repeat
// returns the order's latest event with Changed false). Err is the write's own refusal, or the
// batch's failure to commit.
type WriteResult struct {
	Order   Order
	Event   Event
	Changed bool
	Err     error
}

// Batch applies a batch of writes in order against the stored state of the orders they touch,
// in memory, each write seeing the ones before it. A write that breaks a rule fails alone and
// changes nothing; the store then writes what the others did (Created, Updated, Events) in one
// transaction. The rules live here, once, so both stores judge a batch the same way.
//
// A store reads the orders named by OrderIDs inside its transaction, hands each one found to
// Found, then calls Apply.
type Batch struct {
	writes []Write
	ids    []string
	orders map[string]*batchOrder

	// Results has one entry per write, in the order of the writes; set by Apply.
	Results []WriteResult
	// Created holds the final state of each order the batch creates, to insert.
	Created []Order
	// Updated holds the final state of each stored order the batch changes, to update.
	Updated []Order
	// Events holds every event the batch appends, in the order the writes came: the order of
	// commit, in which they must be published.
	Events []Event
}

// batchOrder is one order's state as the batch moves it.
type batchOrder struct {
	order  Order
	latest Event
	stored bool // in the store before the batch
	exists bool // stored, or created by an earlier write of the batch
	dirty  bool // changed by the batch
}

// NewBatch returns a batch of writes, in the order they are to be applied.
func NewBatch(writes []Write) *Batch {
	b := &Batch{writes: writes, orders: make(map[string]*batchOrder, len(writes)), Events: make([]Event, 0, len(writes))}
	states := make([]batchOrder, len(writes)) // one allocation for every order's state
	for i, w := range writes {
		id := w.OrderID()
		if _, ok := b.orders[id]; !ok {
			b.orders[id] = &states[i]
			b.ids = append(b.ids, id)
		}
	}
	return b
}

// OrderIDs returns the distinct orders the writes touch, each once, in first-seen order.
func (b *Batch) OrderIDs() []string { return b.ids }

// Found records an order as stored before the batch, with its latest event (seq = version).
func (b *Batch) Found(o Order, latest Event) {
	if bo, ok := b.orders[o.ID]; ok {
		*bo = batchOrder{order: o, latest: latest, stored: true, exists: true}
	}
}

// Apply judges each write in turn. now stamps the batch's changes; an order's time never goes
// back, should the clock step back past its last change.
func (b *Batch) Apply(now time.Time) {
	now = now.UTC()
	b.Results = make([]WriteResult, len(b.writes))
	b.Updated = make([]Order, 0, len(b.ids))
	for i, w := range b.writes {
		bo := b.orders[w.OrderID()]
		if w.Create != nil {
			b.Results[i] = b.create(bo, *w.Create, now)
		} else {
			b.Results[i] = b.change(bo, *w.Change, now)
		}
	}
	for _, id := range b.ids {
		bo := b.orders[id]
		switch {
		case bo.exists && !bo.stored:
			b.Created = append(b.Created, bo.order)
		case bo.dirty:
			b.Updated = append(b.Updated, bo.order)
		}
	}
}

func (b *Batch) create(bo *batchOrder, n NewOrder, now time.Time) WriteResult {
	if bo.exists {
		if !SameDetails(bo.order.Details, n.Details) {
			return WriteResult{Err: Errorf(EOrderExists, "order %s already exists with different details", n.ID)}
		}
		return WriteResult{Order: bo.order, Event: bo.latest}
	}
	o, ev := n.Place(now)
	*bo = batchOrder{order: o, latest: ev, exists: true, dirty: true}
	b.Events = append(b.Events, ev)
	return WriteResult{Order: o, Event: ev, Changed: true}
}

func (b *Batch) change(bo *batchOrder, c StatusChange, now time.Time) WriteResult {
	if !bo.exists {
		return WriteResult{Err: Errorf(ENotFound, "order %s not found", c.OrderID)}
	}
	changed, err := c.Apply(bo.order)
	if err != nil {
		return WriteResult{Err: err}
	}
	if !changed {
		return WriteResult{Order: bo.order, Event: bo.latest}
	}
	o := bo.order
	o.Status, o.Version, o.UpdatedAt = c.Status, o.Version+1, now
	if now.Before(bo.order.UpdatedAt) {
		o.UpdatedAt = bo.order.UpdatedAt
	}
	ev := Event{OrderID: o.ID, Seq: o.Version, Status: o.Status, At: o.UpdatedAt, Note: c.Note, Actor: c.Actor}
	bo.order, bo.latest, bo.dirty = o, ev, true
	b.Events = append(b.Events, ev)
	return WriteResult{Order: o, Event: ev, Changed: true}
}

// SameDetails reports whether two details documents hold the same value: object keys in any
// order, any spacing, numbers compared by decimal value (1, 1.0 and 10e-1 are one value), as
// PostgreSQL's jsonb compares them, so both stores judge a repeated creation alike.
func SameDetails(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, errA := decodeDetails(a)
	vb, errB := decodeDetails(b)
	return errA == nil && errB == nil && sameValue(va, vb)
}

func decodeDetails(raw json.RawMessage) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	err := dec.Decode(&v)
	return v, err
}

func sameValue(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		return ok && decimalKey(string(x)) == decimalKey(string(y))
	}
	return a == b // string, bool or nil
}

// decimalKey spells a JSON number's value one way: sign, significant digits without trailing
// zeros, and the power of ten of the last one. No arithmetic, so a huge exponent costs nothing.
func decimalKey(s string) string {
	sign := ""
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		sign, s = "-", rest
	}
	mant, exp := s, "0"
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i+1:]
	}
	e, err := strconv.ParseInt(exp, 10, 32)
	if err != nil {
		return "?" + s // an exponent beyond any store's range: compared as spelled
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return "0" // -0 is 0
	}
	sig := strings.TrimRight(digits, "0")
	e += int64(len(digits)-len(sig)) - int64(len(frac))
	return sign + sig + "e" + strconv.FormatInt(e, 10)
}
