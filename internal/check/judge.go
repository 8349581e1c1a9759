package check

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// The records a run keeps, and the judgement passed on them. Everything here is plain data and
// pure functions, so the judge can be tested by corrupting records on purpose.

// Received is one event a watcher got from a stream: its seq, and everything the wire says of
// it, all of which must be the history's event at that seq (an event published but never
// committed may share the committed one's seq and status, never its note).
type Received struct {
	HistEvent
	Arrival // when it came, judged for lateness
}

// Session is one watcher following one order, across every reconnect, from its first event.
type Session struct {
	Watcher  int        `json:"watcher"`
	Order    string     `json:"order"`
	Received []Received `json:"received"`
	// Reconnects is how many times the watcher connected again after an error.
	Reconnects int `json:"reconnects"`
	// AfterFinal is the HTTP status of every answered reconnect made with Last-Event-ID at the
	// order's final event (204 expected); transport errors are not answers and are retried.
	AfterFinal []int `json:"after_final,omitempty"`
	// RetriedAfterFinal counts reconnects after the final event answered 200 with no event (a
	// node whose store was away, advising a retry); the watcher retried them.
	RetriedAfterFinal int `json:"retried_after_final,omitempty"`
	// Unexpected204 is set when a reconnect got 204 before the watcher had the final event.
	Unexpected204 bool `json:"unexpected_204,omitempty"`
	// Opening is how many of the events came on a connection opened without Last-Event-ID: a
	// fresh connect opens with the order's last status event and its newest courier event, if
	// it has a courier or courier events came after it, in seq order (see opensFresh).
	Opening int `json:"opening,omitempty"`
	// Positions are the courier's positions the watcher got, in the order it got them.
	Positions []Position `json:"positions,omitempty"`
	// Rewinds are the reconnects made with an earlier Last-Event-ID than the last event the
	// watcher had, as a second tab or a page restored from an old save resumes: the events
	// from Received[At] on must follow To.
	Rewinds []Rewind `json:"rewinds,omitempty"`
}

// Rewind is a resume from seq To, made when the watcher had received At events.
type Rewind struct {
	At int   `json:"at"`
	To int64 `json:"to"`
}

// Position is one courier's position a watcher got on an order's stream.
type Position struct {
	// After is the seq of the last event the watcher had when it got the position (0: none):
	// the order's state the position was shown beside.
	After   int64  `json:"after"`
	Order   string `json:"order"`
	Courier string `json:"courier_id"`
	// SetsID says the position came with an id field, which would move an EventSource's
	// lastEventId (a position has no seq and must not).
	SetsID bool `json:"sets_id,omitempty"`
}

// locationFrom is the first status at which the nodes show an order's courier (their default
// --location-from); they show none after the order's end.
const locationFrom = "out_for_delivery"

// Attempt is one change the writers meant to make: a create (status placed), a status change or
// a courier assignment (Kind courier, to Courier; none is an unassignment). Notes are unique per
// attempt; retries of an ambiguous request repeat the same attempt.
type Attempt struct {
	Order    string `json:"order"`
	Note     string `json:"note"`
	Status   string `json:"status,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Courier  string `json:"courier_id,omitempty"`
	Expected int64  `json:"expected_version,omitempty"`
	// Party is the party key (restaurant:…) a create gave the order; the order's every event
	// takes a position in that party's log.
	Party string `json:"party,omitempty"`
}

// Ack is a change the server acknowledged (or that a read-back proved committed) at a seq.
type Ack struct {
	Order  string `json:"order"`
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind,omitempty"`
	Status string `json:"status"`
	Note   string `json:"note"`
}

// KindCourier is the Kind of a courier assignment's event and attempt; a status change has none.
const KindCourier = "courier"

// HistEvent is one committed event as the API reports it after the run.
type HistEvent struct {
	Seq    int64  `json:"seq"`
	Status string `json:"status"`
	// Kind is KindCourier for a courier assignment (Status then the order's, unchanged), and
	// Courier the courier it gives the order to, none for an unassignment, by the name
	// CourierName.
	Kind        string `json:"kind,omitempty"`
	Courier     string `json:"courier_id,omitempty"`
	CourierName string `json:"courier_name,omitempty"`
	Note        string `json:"note,omitempty"`
	Actor       string `json:"actor,omitempty"`
	// At is the event's commit time, as the store stamped it: beside the run's log lines (which
	// give the time the writers stopped and the watchers were let go), it tells a late commit
	// from a lost event.
	At time.Time `json:"at,omitzero"`
}

// differs names the first field besides its seq in which e, an event a stream gave, is not the
// history's event h, or returns "": one rule for order and party streams alike.
func (e HistEvent) differs(h HistEvent) string {
	switch {
	case e.Kind != h.Kind:
		return fmt.Sprintf("kind %q, the history's %q", e.Kind, h.Kind)
	case e.Status != h.Status:
		return fmt.Sprintf("status %s, the history's %s", e.Status, h.Status)
	case e.Courier != h.Courier:
		return fmt.Sprintf("courier %q, the history's %q", e.Courier, h.Courier)
	case e.CourierName != h.CourierName:
		return fmt.Sprintf("courier name %q, the history's %q", e.CourierName, h.CourierName)
	case e.Note != h.Note:
		return fmt.Sprintf("note %q, the history's %q", e.Note, h.Note)
	case e.Actor != h.Actor:
		return fmt.Sprintf("actor %q, the history's %q", e.Actor, h.Actor)
	case !e.At.Equal(h.At):
		return fmt.Sprintf("at %s, the history's %s", e.At.Format(time.RFC3339Nano), h.At.Format(time.RFC3339Nano))
	}
	return ""
}

// what is the event in a word for the judge's reports: its status, or for a courier event the
// courier it gives the order to.
func (e HistEvent) what() string {
	if e.Kind == KindCourier {
		return "courier=" + cmp.Or(e.Courier, "none")
	}
	return e.Status
}

// The requests a Refusal can be of.
const (
	RWatch      = "watch"       // a stream of one order opened or resumed
	RPartyWatch = "party watch" // a restaurant's stream opened or resumed
	RCreate     = "create"      // an order created
	RStatus     = "status"      // a status change, naming the version it expects
	RCourier    = "courier"     // a courier assignment, naming the version it expects
	RLocation   = "location"    // a courier's position
)

// Refusal is an answer to a request of the run that was neither a success nor a server error
// (5xx, which the request's maker retries): a 3xx or a 4xx; or a 2xx to a status change that
// did not apply it (changed nothing, its event not the attempt's: Code unchanged).
type Refusal struct {
	Request string `json:"request"` // RWatch, RPartyWatch, RCreate, RStatus, RCourier or RLocation
	Order   string `json:"order,omitempty"`
	Party   string `json:"party,omitempty"`
	Last    int64  `json:"last_event_id,omitempty"` // a stream's Last-Event-ID
	Note    string `json:"note,omitempty"`          // a write's attempt
	// Expected is the version a status change or an assignment named (expected_version).
	Expected int64  `json:"expected_version,omitempty"`
	HTTP     int    `json:"http"`
	Code     string `json:"code,omitempty"` // the error body's code
}

// CodeUnchanged is the Code of a Refusal recording a 2xx that did not apply its status change.
const CodeUnchanged = "unchanged"

// wrong reports whether the refusal broke a promise, h being its order's history. The checker's
// nodes run with every limit off (no 429), every order it watches or changes exists, its tokens
// are good and its requests well formed, and a create repeated with the same body answers the
// order: the one refusal that can be right is the 409 (or the 200 that changed nothing) to a
// status change or a courier assignment whose expected version no longer held, and then the history says so: another
// attempt's event at the next seq, committed late after its writer had given up on it (each
// order is changed by one writer at a time, which names the version it knows). A 409 to an
// order nothing else had moved is a server refusing what it had to take. (A 503 with
// Retry-After while a store is away is a 5xx, retried, not a refusal.)
func (rf Refusal) wrong(h []HistEvent) bool {
	if rf.Request != RStatus && rf.Request != RCourier || rf.HTTP != http.StatusConflict && rf.Code != CodeUnchanged {
		return true
	}
	return rf.Expected < 1 || rf.Expected >= int64(len(h)) || h[rf.Expected].Note == rf.Note
}

// Records is everything a run leaves for the judge.
type Records struct {
	Sessions  []Session
	Parties   []PartySession // every party watcher's sessions, each watcher's in the order they ran
	Attempts  []Attempt
	Acks      []Ack
	Histories map[string][]HistEvent
	Refusals  []Refusal
	Exits     []string // the processes (a node, PostgreSQL) that exited without the checker ending them
	Unwell    []string // the nodes that, probed alone after the faults, were not ready or took no write (probeNodes)
	// PartyBacklog is the most events of its log the nodes send a party stream that resumes or
	// catches up (stream.Config.PartyBacklog); one further behind gets a fresh snapshot. 0 is
	// stream.DefaultPartyBacklog, which the checker's nodes run with.
	PartyBacklog int64
	// Disturbed is when the node and PostgreSQL faults were on, with their shadows (disturbed):
	// events due then on the nodes they acted on may come late.
	Disturbed []Span
}

// clone copies r deep enough for a corruption to change any record of the copy by replacing
// it: the lists and the map of histories are new, the records in them shared.
func (r Records) clone() Records {
	return Records{Sessions: slices.Clone(r.Sessions), Parties: slices.Clone(r.Parties), Attempts: slices.Clone(r.Attempts),
		Acks: slices.Clone(r.Acks), Histories: maps.Clone(r.Histories), Refusals: slices.Clone(r.Refusals), Exits: slices.Clone(r.Exits), Unwell: slices.Clone(r.Unwell),
		PartyBacklog: r.PartyBacklog, Disturbed: slices.Clone(r.Disturbed)}
}

// AnomalyKinds is every kind of anomaly the judge reports; --self-test proves it catches each.
var AnomalyKinds = []string{AGap, ADuplicate, AReorder, AMismatch, ATail, ANoEvents, ANot204, AMissing204,
	AUnexpected204, ALostAck, AUnintended, ADoubleCommit, ABadHistory, AMissingHistory, AProcessExited, AWronglyRefused,
	APartyGap, APartyDuplicate, APartyReorder, APartyConflict, APartyOrderSeq, APartyMismatch, APartyOpening,
	APartySnapshot, APartyTail, ANothingAcked, ANodeUnwell, ALocationID, ALocationStage, ALocationCourier, ALate}

// Anomaly kinds.
const (
	AGap            = "gap"                  // a watcher skipped a seq (lost event)
	ADuplicate      = "duplicate"            // a watcher got a seq twice
	AReorder        = "reorder"              // a watcher got a seq lower than one it had
	AMismatch       = "mismatch"             // a received seq is not in the history, or its status, note, actor or time differs
	ATail           = "incomplete"           // a watcher did not end on the order's last event
	ANoEvents       = "no_events"            // a watcher never got a first event
	ANot204         = "after_final_not_204"  // a reconnect after the final event got neither 204 nor a retryable 5xx
	AMissing204     = "missing_204"          // a watcher had the final event but no reconnect got 204
	AUnexpected204  = "unexpected_204"       // 204 before the watcher had the final event
	ALostAck        = "lost_ack"             // an acknowledged write is not in the history as acknowledged
	AUnintended     = "unintended_commit"    // a committed event no writer meant
	ADoubleCommit   = "double_commit"        // one attempt committed twice
	ABadHistory     = "bad_history"          // the history itself breaks the rules (holes, moves back, after the end)
	AMissingHistory = "missing_history"      // an order watched or written has no history
	AWronglyRefused = "wrongly_refused"      // a request that had to be taken was answered 3xx or 4xx (see Refusal.wrong)
	AProcessExited  = "process_exited"       // a node or PostgreSQL died without the checker ending it
	ANothingAcked   = "nothing_acknowledged" // many status changes attempted, none acknowledged
	ANodeUnwell     = "node_unwell"          // a node, probed alone after the faults, was not ready or took no write
	// The positions' kinds: a watcher got a position with an id field, one beside a stage that
	// shows no courier (before the pickup, after the end, or before any event), or another
	// courier's than the order's as the watcher had it.
	ALocationID      = "location_with_id"
	ALocationStage   = "location_out_of_stage"
	ALocationCourier = "location_of_another_courier"
	// ALate: a watcher got an event more than lateBound after it was due, with no fault on
	// that could explain it (late.go).
	ALate = "late_delivery"
)

// minAttemptsForAnAck is how many status changes a run must attempt before one acknowledged is
// required of it: a run that makes dozens and has none taken proves nothing about the others.
const minAttemptsForAnAck = 20

// Anomaly is one broken promise, with what is needed to reproduce the reasoning.
type Anomaly struct {
	Kind   string `json:"kind"`
	Order  string `json:"order"`
	Detail string `json:"detail"`
}

// Judgement is the verdict on a run's records.
type Judgement struct {
	EventsChecked int64          `json:"events_checked"`
	Sessions      int            `json:"sessions"`
	Acks          int            `json:"acknowledged_writes"`
	Attempts      int            `json:"attempts"`
	Committed     int            `json:"events_committed"`
	Positions     int            `json:"positions_checked"`
	Assignments   int            `json:"courier_events_committed"`
	Orders        int            `json:"orders"`
	Reconnects    int64          `json:"reconnects"`
	Rewinds       int            `json:"rewinds"`
	After204      int            `json:"final_204s"`
	Party         PartyCounts    `json:"party"`
	Delivery      Delivery       `json:"delivery"`
	Anomalies     map[string]int `json:"anomalies"`
	Examples      []Anomaly      `json:"examples"`
}

// maxExamples is how many anomalies of each kind are kept in full.
const maxExamples = 5

// Total is the number of anomalies of every kind.
func (j *Judgement) Total() int {
	n := 0
	for _, c := range j.Anomalies {
		n += c
	}
	return n
}

func (j *Judgement) add(kind, order, format string, args ...any) {
	if j.Anomalies == nil {
		j.Anomalies = map[string]int{}
	}
	j.Anomalies[kind]++
	if j.Anomalies[kind] <= maxExamples {
		j.Examples = append(j.Examples, Anomaly{Kind: kind, Order: order, Detail: fmt.Sprintf(format, args...)})
	}
}

var rank = map[string]int{"placed": 0, "confirmed": 1, "preparing": 2, "ready": 3, "out_for_delivery": 4, "delivered": 5, "cancelled": 5}

func terminal(s string) bool { return s == "delivered" || s == "cancelled" }

// Judge checks the records against the delivery rules: every watcher's seqs are exactly the
// order's history from its first received seq, contiguous, without duplicate or reorder, ending on
// the last event (the final one when the order ended, followed by a 204 on reconnect); every
// acknowledged write is in the history; every committed event was meant by exactly one attempt.
func Judge(r Records) Judgement {
	j := Judgement{Anomalies: map[string]int{}, Acks: len(r.Acks), Attempts: len(r.Attempts), Orders: len(r.Histories)}

	orders := make([]string, 0, len(r.Histories))
	for id := range r.Histories {
		orders = append(orders, id)
	}
	sort.Strings(orders)
	for _, id := range orders {
		h := r.Histories[id]
		j.Committed += len(h)
		for i, ev := range h {
			if ev.Kind == KindCourier {
				j.Assignments++
			}
			switch {
			case ev.Seq != int64(i+1):
				j.add(ABadHistory, id, "event %d of the history has seq %d", i+1, ev.Seq)
			case i == 0 && (ev.Status != "placed" || ev.Kind != ""):
				j.add(ABadHistory, id, "seq 1 is %s %s, not placed", ev.Kind, ev.Status)
			case i > 0 && terminal(h[i-1].Status):
				j.add(ABadHistory, id, "seq %d (%s) follows the final %s", ev.Seq, ev.Status, h[i-1].Status)
			case i > 0 && ev.Kind == KindCourier && ev.Status != h[i-1].Status:
				j.add(ABadHistory, id, "courier event %d moves the status from %s to %s", ev.Seq, h[i-1].Status, ev.Status)
			case i > 0 && ev.Kind == KindCourier:
			case i > 0 && rank[ev.Status] <= rank[h[i-1].Status]:
				j.add(ABadHistory, id, "seq %d moves from %s to %s", ev.Seq, h[i-1].Status, ev.Status)
			}
		}
	}

	// Intent: every committed event was meant by one attempt of that order with that status.
	type key struct{ order, note string }
	meant := make(map[key]Attempt, len(r.Attempts))
	for _, a := range r.Attempts {
		meant[key{a.Order, a.Note}] = a
	}
	seen := map[key]int64{}
	for _, id := range orders {
		for _, ev := range r.Histories[id] {
			k := key{id, ev.Note}
			a, ok := meant[k]
			switch {
			case !ok:
				j.add(AUnintended, id, "seq %d %s with note %q matches no attempt", ev.Seq, ev.Status, ev.Note)
			case a.Kind != ev.Kind:
				j.add(AUnintended, id, "seq %d is of kind %q but attempt %q meant kind %q", ev.Seq, ev.Kind, ev.Note, a.Kind)
			case a.Kind == KindCourier && a.Courier != ev.Courier:
				j.add(AUnintended, id, "seq %d gives the order to %q but attempt %q meant %q", ev.Seq, ev.Courier, ev.Note, a.Courier)
			case a.Kind == KindCourier && courierName(a.Courier) != ev.CourierName:
				j.add(AUnintended, id, "seq %d names its courier %q but attempt %q named %q", ev.Seq, ev.CourierName, ev.Note, courierName(a.Courier))
			case a.Kind != KindCourier && a.Status != ev.Status:
				j.add(AUnintended, id, "seq %d is %s but attempt %q meant %s", ev.Seq, ev.Status, ev.Note, a.Status)
			case a.Expected != 0 && ev.Seq != a.Expected+1:
				j.add(AUnintended, id, "attempt %q expected version %d but committed as seq %d", ev.Note, a.Expected, ev.Seq)
			}
			if prev, dup := seen[k]; dup && ok {
				j.add(ADoubleCommit, id, "attempt %q committed as seq %d and seq %d", ev.Note, prev, ev.Seq)
			}
			seen[k] = ev.Seq
		}
	}

	for _, a := range r.Acks {
		h, ok := r.Histories[a.Order]
		if !ok {
			j.add(AMissingHistory, a.Order, "acknowledged seq %d (%s) of an order with no history", a.Seq, a.Status)
			continue
		}
		if a.Seq < 1 || a.Seq > int64(len(h)) {
			j.add(ALostAck, a.Order, "acknowledged seq %d %s %q; the history has %d events", a.Seq, a.Status, a.Note, len(h))
			continue
		}
		if ev := h[a.Seq-1]; ev.Kind != a.Kind || ev.Status != a.Status || ev.Note != a.Note {
			j.add(ALostAck, a.Order, "acknowledged seq %d %s %q; the history has %s %q there", a.Seq, a.Status, a.Note, ev.Status, ev.Note)
		}
	}

	sh := newShadows(r.Disturbed)
	for _, s := range r.Sessions {
		j.Sessions++
		j.Reconnects += int64(s.Reconnects)
		h, ok := r.Histories[s.Order]
		if !ok {
			j.add(AMissingHistory, s.Order, "watcher %d followed an order with no history", s.Watcher)
			continue
		}
		judgeSession(&j, s, h, sh)
	}
	for _, rf := range r.Refusals {
		if rf.wrong(r.Histories[rf.Order]) {
			j.add(AWronglyRefused, cmp.Or(rf.Order, rf.Party), "%s answered HTTP %d %s (Last-Event-ID %d, attempt %q, expected version %d, history of %d events)",
				rf.Request, rf.HTTP, rf.Code, rf.Last, rf.Note, rf.Expected, len(r.Histories[rf.Order]))
		}
	}
	changes, acked := 0, 0
	for _, a := range r.Attempts {
		if a.Kind == "" && a.Status != "placed" {
			changes++
		}
	}
	for _, a := range r.Acks {
		if a.Kind == "" && a.Status != "placed" {
			acked++
		}
	}
	if changes >= minAttemptsForAnAck && acked == 0 {
		j.add(ANothingAcked, "", "%d status changes attempted, none acknowledged", changes)
	}
	judgeParties(&j, r, sh)
	j.Delivery.summarize()
	for _, e := range r.Exits {
		j.add(AProcessExited, "", "%s", e)
	}
	for _, u := range r.Unwell {
		j.add(ANodeUnwell, "", "%s", u)
	}
	return j
}

func judgeSession(j *Judgement, s Session, h []HistEvent, sh shadows) {
	judgePositions(j, s, h)
	j.EventsChecked += int64(len(s.Received))
	if len(s.Received) == 0 {
		j.add(ANoEvents, s.Order, "watcher %d never received an event; the history has %d", s.Watcher, len(h))
		return
	}
	bad := false
	rewound := make(map[int]int64, len(s.Rewinds))
	for _, rw := range s.Rewinds {
		rewound[rw.At] = rw.To // of two at one point (the first connection carried nothing), the later
	}
	j.Rewinds += len(s.Rewinds)
	for i, ev := range s.Received {
		if ev.Seq < 1 || ev.Seq > int64(len(h)) {
			j.add(AMismatch, s.Order, "watcher %d received seq %d %s; history: %s", s.Watcher, ev.Seq, ev.Status, histString(h))
			bad = true
		} else if d := ev.HistEvent.differs(h[ev.Seq-1]); d != "" {
			j.add(AMismatch, s.Order, "watcher %d received seq %d with %s; history: %s", s.Watcher, ev.Seq, d, histString(h))
			bad = true
		}
		if j.Delivery.late(ev.Arrival, sh) {
			j.addLate(ev.Arrival, s.Order, fmt.Sprintf("watcher %d", s.Watcher), fmt.Sprintf("seq %d", ev.Seq))
		}
		if i == 0 {
			continue
		}
		prev := s.Received[i-1].Seq
		if to, ok := rewound[i]; ok {
			prev = to
		}
		switch {
		case ev.Seq == prev+1:
		case i == 1 && ev.Seq > prev && opensFresh(s, h):
		case ev.Seq == prev:
			j.add(ADuplicate, s.Order, "watcher %d received seq %d twice: %s", s.Watcher, ev.Seq, recvString(s.Received))
			bad = true
		case ev.Seq < prev:
			j.add(AReorder, s.Order, "watcher %d received seq %d after %d: %s", s.Watcher, ev.Seq, prev, recvString(s.Received))
			bad = true
		default:
			j.add(AGap, s.Order, "watcher %d received seq %d after %d (lost %d): %s; history: %s",
				s.Watcher, ev.Seq, prev, ev.Seq-prev-1, recvString(s.Received), histString(h))
			bad = true
		}
	}
	last := s.Received[len(s.Received)-1]
	if !bad && last.Seq != int64(len(h)) {
		j.add(ATail, s.Order, "watcher %d ended on seq %d; the history has %d (committed at %s): %s; history: %s",
			s.Watcher, last.Seq, len(h), h[len(h)-1].At.Format(logTime), recvString(s.Received), histString(h))
	}
	hasFinal := last.Seq == int64(len(h)) && terminal(h[len(h)-1].Status)
	if s.Unexpected204 {
		j.add(AUnexpected204, s.Order, "watcher %d got 204 before it had the final event: %s; history: %s",
			s.Watcher, recvString(s.Received), histString(h))
	}
	got204 := false
	for _, code := range s.AfterFinal {
		if code == 204 {
			got204 = true
			j.After204++
			continue
		}
		if code >= 500 && code != 501 {
			continue // a node or the proxy in trouble; the watcher retried
		}
		j.add(ANot204, s.Order, "watcher %d reconnected after the final seq %d and got HTTP %d", s.Watcher, last.Seq, code)
	}
	if hasFinal && !got204 {
		j.add(AMissing204, s.Order, "watcher %d has the final seq %d but no reconnect got 204 (answers: %v)", s.Watcher, last.Seq, s.AfterFinal)
	}
}

// judgePositions holds every position s got to the rules of a position: no id, so no
// move of the client's resume point; only beside a stage that shows the courier, never before
// the order's first event nor after its end; and of the courier the order had then, as its
// history says at the last event the watcher had.
func judgePositions(j *Judgement, s Session, h []HistEvent) {
	if len(h) == 0 {
		return // missing_history says so; each position would only repeat it
	}
	for _, p := range s.Positions {
		if p.Order != s.Order {
			j.Positions++
			j.add(AMismatch, s.Order, "watcher %d got a position of order %q on the stream of %q", s.Watcher, p.Order, s.Order)
			continue
		}
		judgePosition(j, fmt.Sprintf("watcher %d", s.Watcher), p, h)
	}
}

// judgePosition holds p, a position of the order whose history is h, to rule 9; who names the
// watcher that got it, for the reports.
func judgePosition(j *Judgement, who string, p Position, h []HistEvent) {
	j.Positions++
	if p.SetsID {
		j.add(ALocationID, p.Order, "%s got a position of %s with an id, after seq %d", who, p.Courier, p.After)
	}
	if p.After < 1 || p.After > int64(len(h)) {
		j.add(ALocationStage, p.Order, "%s got a position of %s after seq %d; the history has %d events", who, p.Courier, p.After, len(h))
		return
	}
	status, courier := h[p.After-1].Status, courierAfter(h[:p.After])
	if rank[status] < rank[locationFrom] || terminal(status) {
		j.add(ALocationStage, p.Order, "%s got a position of %s while the order was %s (seq %d)", who, p.Courier, status, p.After)
	}
	if p.Courier != courier {
		j.add(ALocationCourier, p.Order, "%s got a position of %s while the order was %q's (seq %d)", who, p.Courier, courier, p.After)
	}
}

// courierAfter is the courier an order has after the events h, its history from seq 1: the
// newest assignment's, none before any (or after an unassignment).
func courierAfter(h []HistEvent) string {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Kind == KindCourier {
			return h[i].Courier
		}
	}
	return ""
}

// opensFresh reports whether the first two events s received skip only what a fresh connect
// leaves out (stream.Engine.fromLastStatus): it opens with the order's last status event and
// its newest courier event, in seq order, the events between them all of the later one's kind.
// After a status event, the courier events between it and the newest one, which replaces them;
// after an assignment, the status events since, which the last one replaces. Both came on the
// fresh connection.
func opensFresh(s Session, h []HistEvent) bool {
	if s.Opening < 2 || len(s.Received) < 2 || s.Received[0].Kind == s.Received[1].Kind {
		return false
	}
	from, to := s.Received[0].Seq, s.Received[1].Seq
	if from < 1 || to > int64(len(h)) {
		return false
	}
	for _, ev := range h[from : to-1] { // the seqs from+1 … to-1
		if ev.Kind != s.Received[1].Kind {
			return false
		}
	}
	return true
}

func recvString(r []Received) string {
	var b strings.Builder
	b.WriteString("received [")
	for i, e := range r {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i >= 40 {
			b.WriteString("…")
			break
		}
		fmt.Fprintf(&b, "%d:%s", e.Seq, e.what())
	}
	b.WriteByte(']')
	return b.String()
}

func histString(h []HistEvent) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range h {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%s", e.Seq, e.what())
	}
	b.WriteByte(']')
	return b.String()
}
