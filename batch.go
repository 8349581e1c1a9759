package ordercast

import (
	"fmt"
	"slices"
	"time"
)

// Write is one request in a batch that a store commits in one transaction: a new order, a
// status change or a courier change, exactly one of them set. Create must be normalized (NewOrder.Normalize) and
// Change validated (StatusChange.Validate) before it joins a batch, so that only the rules that
// depend on the stored state are judged in the batch.
type Write struct {
	Create  *NewOrder
	Change  *StatusChange
	Courier *CourierChange
}

// OrderID is the order the write is about.
func (w Write) OrderID() string {
	switch {
	case w.Create != nil:
		return w.Create.ID
	case w.Courier != nil:
		return w.Courier.OrderID
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

// Idem is the write's idempotency step, or nil.
func (w Write) Idem() *Idempotency {
	switch {
	case w.Create != nil:
		return w.Create.Idem
	case w.Courier != nil:
		return nil // PUT is idempotent by itself: the same courier again is a no-op
	}
	return w.Change.Idem
}

// Batch applies a batch of writes in order against the stored state of the orders they touch,
// in memory, each write seeing the ones before it. A write that breaks a rule fails alone and
// changes nothing; the store then writes what the others did (Created, Updated, Events,
// Answers) in one transaction. The rules live here, once, so both stores judge a batch the
// same way.
//
// A store reads, inside its transaction, the orders named by OrderIDs, handing each one found to
// Found, and the unexpired idempotency keys named by Keys, handing each one recorded to
// Answered; then it calls Apply.
type Batch struct {
	writes []Write
	ids    []string
	orders map[string]*batchOrder
	keys   []IdempotencyKey
	taken  map[IdempotencyKey]bool // recorded in the store, or by an earlier write of the batch

	// Results has one entry per write, in the order of the writes; set by Apply.
	Results []WriteResult
	// Created holds the final state of each order the batch creates, to insert.
	Created []Order
	// Updated holds the final state of each stored order the batch changes, to update.
	Updated []Order
	// Events holds every event the batch appends, in the order the writes came: the order of
	// commit, in which they must be published.
	Events []Event
	// Answers holds the answer of each accepted write that carries an idempotency key, to record
	// in the same transaction.
	Answers []RecordedAnswer
	// parties[i] are the keys of the party logs Events[i] goes in (LogParties).
	parties [][]string
	// eventResult[i] is the index in Results of the write that appended Events[i].
	eventResult []int
}

// Wrote reports whether committing b writes anything: an order, an event or a recorded answer.
// A batch of refusals and no-ops commits nothing, which a database with no room to write allows.
func (b *Batch) Wrote() bool {
	return len(b.Created)+len(b.Updated)+len(b.Events)+len(b.Answers) > 0
}

// LogEntry is one row of a party's log: the Pos-th event of the party is order OrderID's Seq.
type LogEntry struct {
	Party   string
	Pos     int64
	OrderID string
	Seq     int64
}

// PartyCounts returns each party whose log the batch's events go in, sorted (a store locks them
// in this order, so two batches never wait on each other in a cycle), and how many events each
// gets.
func (b *Batch) PartyCounts() (parties []string, counts []int64) {
	n := map[string]int64{}
	for _, ps := range b.parties {
		for _, p := range ps {
			if n[p] == 0 {
				parties = append(parties, p)
			}
			n[p]++
		}
	}
	slices.Sort(parties)
	counts = make([]int64, len(parties))
	for i, p := range parties {
		counts[i] = n[p]
	}
	return parties, counts
}

// Mark numbers the batch's events in each party's log, given each party's last position once
// the batch's events are counted in (the store takes it from the party's head, under the
// party's lock, adding PartyCounts' count): the events get the positions up to it, in commit
// order. It sets each event's Marks and returns the log's new rows.
func (b *Batch) Mark(heads map[string]int64) []LogEntry {
	parties, counts := b.PartyCounts()
	next := make(map[string]int64, len(parties))
	for i, p := range parties {
		next[p] = heads[p] - counts[i] + 1
	}
	var log []LogEntry
	for i, ps := range b.parties {
		ev := &b.Events[i]
		for _, p := range ps {
			pos := next[p]
			next[p]++
			ev.Marks = ev.Marks.With(p, pos)
			log = append(log, LogEntry{Party: p, Pos: pos, OrderID: ev.OrderID, Seq: ev.Seq})
		}
		b.Results[b.eventResult[i]].Event.Marks = ev.Marks
	}
	return log
}

// IdempotencyKey names a recorded answer: a client's key within its scope.
type IdempotencyKey struct{ Scope, Key string }

// RecordedAnswer is an answer a batch records under a write's idempotency key.
type RecordedAnswer struct {
	IdempotencyKey
	Answer
}

// batchOrder is one order's state as the batch moves it.
type batchOrder struct {
	order  Order
	latest Event
	found  Order // as Found handed it, before the batch's writes (Stored)
	stored bool  // in the store before the batch
	exists bool  // stored, or created by an earlier write of the batch
	dirty  bool  // changed by the batch
	// creates says the batch's first write to the order creates it (Creates).
	creates bool
}

// NewBatch returns a batch of writes, in the order they are to be applied.
func NewBatch(writes []Write) *Batch {
	b := &Batch{writes: writes, orders: make(map[string]*batchOrder, len(writes)), Events: make([]Event, 0, len(writes))}
	states := make([]batchOrder, len(writes)) // one allocation for every order's state
	for i, w := range writes {
		id := w.OrderID()
		if _, ok := b.orders[id]; !ok {
			states[i].creates = w.Create != nil
			b.orders[id] = &states[i]
			b.ids = append(b.ids, id)
		}
		if idem := w.Idem(); idem != nil {
			if b.taken == nil {
				b.taken = make(map[IdempotencyKey]bool)
			}
			k := IdempotencyKey{idem.Scope, idem.Key}
			if _, ok := b.taken[k]; !ok {
				b.taken[k] = false
				b.keys = append(b.keys, k)
			}
		}
	}
	return b
}

// OrderIDs returns the distinct orders the writes touch, each once, in first-seen order.
func (b *Batch) OrderIDs() []string { return b.ids }

// Creates reports whether the batch's first write to order id creates it: a store that does not
// know the order may judge the batch taking it to be new, if its insert is refused should the
// order exist after all.
func (b *Batch) Creates(id string) bool {
	bo, ok := b.orders[id]
	return ok && bo.creates
}

// Keys returns the distinct idempotency keys the writes carry, each once, in first-seen order.
func (b *Batch) Keys() []IdempotencyKey { return b.keys }

// Found records an order as stored before the batch, with its latest event (seq = version).
func (b *Batch) Found(o Order, latest Event) {
	if bo, ok := b.orders[o.ID]; ok {
		*bo = batchOrder{order: o, latest: latest, found: o, stored: true, exists: true, creates: bo.creates}
	}
}

// Stored returns order id as it was in the store before the batch (as Found handed it), and
// false for an order the store did not hold: a store that writes only the columns a batch
// changed compares it with the order's final state in Updated.
func (b *Batch) Stored(id string) (Order, bool) {
	bo, ok := b.orders[id]
	if !ok || !bo.stored {
		return Order{}, false
	}
	return bo.found, true
}

// States calls f with each order the batch found or created, as the batch leaves it, and its
// latest event as Found would be handed it: a store that remembers the orders it wrote can
// answer its next batch's reads from them once this batch has committed.
func (b *Batch) States(f func(o Order, latest Event)) {
	for _, id := range b.ids {
		if bo := b.orders[id]; bo.exists {
			f(bo.order, bo.latest)
		}
	}
}

// Answered records that key already has an unexpired answer in the store.
func (b *Batch) Answered(k IdempotencyKey) {
	if _, ok := b.taken[k]; ok {
		b.taken[k] = true
	}
}

// Apply judges each write in turn. now stamps the batch's changes; an order's time never goes
// back, should the clock step back past its last change.
//
// A write whose idempotency key is already answered (in the store, or by an earlier write of
// the batch) fails alone with EIdempotencyKeyInUse before any rule is judged, so its caller
// replays that answer. An accepted write's answer is rendered here; a render that fails fails
// its write alone, which then changes nothing.
func (b *Batch) Apply(now time.Time) {
	now = now.UTC()
	b.Results = make([]WriteResult, len(b.writes))
	b.Updated = make([]Order, 0, len(b.ids))
	for i, w := range b.writes {
		n := len(b.Events)
		b.Results[i] = b.apply(w, now)
		if len(b.Events) > n {
			b.eventResult = append(b.eventResult, i)
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

func (b *Batch) apply(w Write, now time.Time) WriteResult {
	idem := w.Idem()
	if idem != nil && b.taken[IdempotencyKey{idem.Scope, idem.Key}] {
		return WriteResult{Err: Errorf(EIdempotencyKeyInUse, "a request with this Idempotency-Key was answered meanwhile")}
	}
	bo := b.orders[w.OrderID()]
	var (
		next batchOrder
		res  WriteResult
	)
	switch {
	case w.Create != nil:
		next, res = b.create(*bo, *w.Create, now)
	case w.Courier != nil:
		next, res = b.change(*bo, w.Courier.OrderID, *w.Courier, now)
	default:
		next, res = b.change(*bo, w.Change.OrderID, *w.Change, now)
	}
	if res.Err != nil {
		return res
	}
	if idem != nil {
		a, err := idem.Render(Result{Order: res.Order, Event: res.Event, Created: w.Create != nil && res.Changed,
			Changed: w.Change != nil && res.Changed})
		if err != nil {
			return WriteResult{Err: fmt.Errorf("render idempotent answer: %w", err)}
		}
		a.Fingerprint, a.Expires = idem.Fingerprint, idem.Expires
		if soon := now.Add(UnchangedAnswerTTL); !res.Changed && a.Expires.After(soon) {
			a.Expires = soon
		}
		k := IdempotencyKey{idem.Scope, idem.Key}
		b.taken[k] = true
		b.Answers = append(b.Answers, RecordedAnswer{IdempotencyKey: k, Answer: a})
	}
	if res.Changed {
		before := Order{}
		if bo.exists {
			before = bo.order
		}
		*bo = next
		b.Events = append(b.Events, res.Event)
		b.parties = append(b.parties, LogParties(before, next.order))
	}
	return res
}

// create judges a creation against the order's state bo, returning the state it leads to.
func (b *Batch) create(bo batchOrder, n NewOrder, now time.Time) (batchOrder, WriteResult) {
	if bo.exists {
		if !n.Matches(bo.order) {
			return bo, WriteResult{Err: Errorf(EOrderExists, "order %s already exists with different details, owners, pickup or drop-off", n.ID)}
		}
		return bo, WriteResult{Order: bo.order, Event: bo.latest}
	}
	o, ev := n.Place(now)
	return batchOrder{order: o, latest: ev, exists: true, dirty: true, creates: bo.creates}, WriteResult{Order: o, Event: ev, Changed: true}
}

// orderChange is a change to an existing order: a StatusChange or a CourierChange.
type orderChange interface {
	// Apply decides whether the change moves order o (see StatusChange.Apply).
	Apply(o Order) (changed bool, err error)
	// moved returns o as the change leaves it, before its version and time move on.
	moved(o Order) Order
	// Event returns the event that records the change on o, at its new version and time.
	Event(o Order) Event
}

func (c StatusChange) moved(o Order) Order {
	o.Status = c.Status
	return o
}

// Event returns the event that records the status change on order o, at its new version.
func (c StatusChange) Event(o Order) Event {
	return Event{OrderID: o.ID, Seq: o.Version, Status: o.Status, At: o.UpdatedAt, Note: c.Note, Actor: c.Actor}
}

func (c CourierChange) moved(o Order) Order {
	o.CourierID, o.CourierName = c.CourierID, c.CourierName
	return o
}

// change judges a change of order id against the order's state bo, returning the state it leads
// to.
func (b *Batch) change(bo batchOrder, id string, c orderChange, now time.Time) (batchOrder, WriteResult) {
	if !bo.exists {
		return bo, WriteResult{Err: Errorf(ENotFound, "order %s not found", id)}
	}
	changed, err := c.Apply(bo.order)
	if err != nil {
		return bo, WriteResult{Err: err}
	}
	if !changed {
		return bo, WriteResult{Order: bo.order, Event: bo.latest}
	}
	return bo.next(c.moved(bo.order), now, c.Event)
}

// next moves bo to o, one version on and stamped now (never back in time), with the event event
// makes of it.
func (bo batchOrder) next(o Order, now time.Time, event func(Order) Event) (batchOrder, WriteResult) {
	o.Version, o.UpdatedAt = o.Version+1, now
	if now.Before(bo.order.UpdatedAt) {
		o.UpdatedAt = bo.order.UpdatedAt
	}
	ev := event(o)
	bo.order, bo.latest, bo.dirty = o, ev, true
	return bo, WriteResult{Order: o, Event: ev, Changed: true}
}

// Follow returns order o as ev leaves it, when ev is the order's next event (Seq one past its
// Version), and whether it is: what a node that did not commit ev knows of the order from the
// event alone. It undoes nothing a batch does beyond what the event records: status, version,
// time, and for a courier event the courier; the rest of an order never changes after it is
// placed.
func (o Order) Follow(ev Event) (Order, bool) {
	if ev.OrderID != o.ID || ev.Seq != o.Version+1 {
		return o, false
	}
	o.Version, o.Status, o.UpdatedAt = ev.Seq, ev.Status, ev.At
	if ev.Kind == KindCourier {
		o.CourierID, o.CourierName = ev.CourierID, ev.CourierName
	}
	return o, true
}
