package check

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// ordersPerRestaurant is how many of the orders in progress share one restaurant, so that
// several writers change one restaurant's orders at once through different nodes and contend
// for its position in the party log.
const ordersPerRestaurant = 20

// partyState is one restaurant or courier of the run: its key in the party logs, and the token
// its watchers present (a restaurant's, or the courier's own).
type partyState struct {
	party ordercast.Party
	token string
	// A restaurant's orders, each created for it and its for good: its log holds every event of
	// each of them.
	mu     sync.Mutex
	orders []*orderState
	// A courier's log holds the events of its orders while they are its, and the event that
	// takes one away: logged counts those the writers know (logCourier).
	logged atomic.Int64
}

func (ps *partyState) add(o *orderState) {
	ps.mu.Lock()
	ps.orders = append(ps.orders, o)
	ps.mu.Unlock()
}

// known is how many events the writers know committed in the party's log: a lower bound of its
// length.
func (ps *partyState) known() int64 {
	if ps.party.Kind == ordercast.PartyCourier {
		return ps.logged.Load()
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var n int64
	for _, o := range ps.orders {
		n += o.known.Load()
	}
	return n
}

// partyWatcher follows one restaurant's or courier's stream for the whole run, as a
// restaurant's board or a courier's app would: it opens with the snapshot, then takes every
// event of the party's log, and after any error connects again to a random endpoint with
// Last-Event-ID = the last id it got, exactly as a browser's EventSource does.
type partyWatcher struct {
	watchFaults
	idx   int
	p     *phase
	r     *rand.Rand
	party *partyState

	mu       sync.Mutex
	sessions []PartySession
	lastID   int64 // the id of the last event (or snapshot) received: the cursor sent on resume
	opened   bool  // a snapshot has come
	// seqs is the seq of each order as the watcher has it, from its last snapshot and the events
	// since: what a position of the order is shown beside (Position.After).
	seqs map[string]int64
}

func (w *partyWatcher) run(ctx context.Context) {
	for try := 0; ctx.Err() == nil; try++ {
		if try > 0 && !w.pauseBeforeReconnect(ctx, w.r) {
			return
		}
		last := w.last()
		code, err := w.stream(ctx, last)
		if code != 0 && code != http.StatusOK && code < 500 {
			w.p.led.refused(err, Refusal{Request: RPartyWatch, Party: w.party.party.Key(), Last: last})
			w.p.led.countError(fmt.Sprintf("party watch: HTTP %d", code))
		}
		_ = err // the error of one connection is the reason to resume, not a result
	}
}

func (w *partyWatcher) last() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastID
}

// stream opens one connection, resuming after last, and records what it carries until it ends;
// it returns the HTTP status (0 when none came) and why the stream ended.
func (w *partyWatcher) stream(ctx context.Context, last int64) (int, error) {
	st, err := w.p.openStream(ctx, w.r, w.idx, &w.watchFaults, api.PartyStreamPath(w.party.party), w.party.token, last)
	if err != nil {
		return 0, err
	}
	defer st.done()
	if st.StatusCode != http.StatusOK {
		return st.StatusCode, answerError(st.Response)
	}
	// Every answered connection is a session, even one that carries nothing (a store away
	// answers with only a retry: line): what it resumed from is on record.
	w.mu.Lock()
	w.sessions = append(w.sessions, PartySession{Watcher: w.idx, Party: w.party.party.Key(), Resumed: last})
	s := &w.sessions[len(w.sessions)-1] // only this goroutine appends, and takes s anew when it does
	w.mu.Unlock()
	sr := newSSEReader(st.Body)
	for {
		ev, err := sr.Next()
		if err != nil {
			return http.StatusOK, err
		}
		if ev.Type == api.EventLocation {
			pos := parsePosition(ev)
			w.mu.Lock()
			pos.After = w.seqs[pos.Order]
			s.Positions = append(s.Positions, pos)
			w.mu.Unlock()
			w.p.positions.Add(1)
			continue
		}
		if ev.Type != api.EventSnapshot && ev.Type != api.EventStatus && ev.Type != api.EventCourier {
			continue
		}
		pos, perr := strconv.ParseInt(ev.ID, 10, 64)
		w.mu.Lock()
		switch {
		case ev.Type == api.EventSnapshot && s.Snapshot == nil && len(s.Events) == 0:
			s.Snapshot = parseSnapshot(ev.Data, pos, perr)
			w.opened = true
			w.knowSnapshot(s.Snapshot)
		case ev.Type == api.EventSnapshot:
			// A snapshot in the middle of the stream: the node found the stream more than its
			// backlog behind and sent the scope anew, as it would to a resume from the last
			// position this watcher had. It is judged as such a resume.
			w.sessions = append(w.sessions, PartySession{Watcher: w.idx, Party: w.party.party.Key(), Resumed: w.lastID,
				Snapshot: parseSnapshot(ev.Data, pos, perr)})
			s = &w.sessions[len(w.sessions)-1]
			w.knowSnapshot(s.Snapshot)
		default:
			e := parsePartyEvent(ev, pos, perr)
			e.Arrival = st.arrival(e.At, &w.watchFaults)
			s.Events = append(s.Events, e)
			if w.seqs == nil {
				w.seqs = map[string]int64{} // events before any snapshot: the judge says so
			}
			w.seqs[e.Order] = max(w.seqs[e.Order], e.Seq)
		}
		if perr == nil {
			w.lastID = pos
		}
		w.mu.Unlock()
		if ev.Type != api.EventSnapshot {
			w.p.received.Add(1)
		}
	}
}

// knowSnapshot makes snap what the watcher has of its orders: a snapshot replaces the state.
func (w *partyWatcher) knowSnapshot(snap *PartySnap) {
	w.seqs = make(map[string]int64, len(snap.Orders))
	for _, o := range snap.Orders {
		w.seqs[o.Order] = o.Seq
	}
}

// parsePosition reads a courier's position (event: location); one that does not parse is
// recorded under an order naming it, which no history has.
func parsePosition(ev sseEvent) Position {
	var u struct {
		Order   string `json:"order_id"`
		Courier string `json:"courier_id"`
	}
	if json.Unmarshal([]byte(ev.Data), &u) != nil {
		return Position{Order: "UNPARSEABLE: " + ev.Data, SetsID: ev.SetsID}
	}
	return Position{Order: u.Order, Courier: u.Courier, SetsID: ev.SetsID}
}

// parseSnapshot reads the snapshot that opens a party stream; one whose id is not its pos, or
// that does not parse, is recorded with a pos of -1, which the judge reports.
func parseSnapshot(data string, id int64, idErr error) *PartySnap {
	var snap api.PartySnapshot
	if err := json.Unmarshal([]byte(data), &snap); err != nil || idErr != nil || snap.Pos != id {
		return &PartySnap{Pos: -1}
	}
	out := &PartySnap{Pos: snap.Pos}
	for _, o := range snap.Orders {
		out.Orders = append(out.Orders, SnapOrder{Order: o.ID, Seq: o.Version, Status: string(o.Status)})
	}
	return out
}

// parsePartyEvent reads one order event of a party stream. What is not an order's event with a
// numeric id (bad JSON) is recorded under a status naming it, which matches no history.
func parsePartyEvent(ev sseEvent, pos int64, idErr error) PartyEvent {
	if idErr != nil {
		pos = -1
	}
	var e apiEvent
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		return PartyEvent{Pos: pos, HistEvent: HistEvent{Status: "UNPARSEABLE: " + ev.Data}}
	}
	return PartyEvent{Pos: pos, Order: e.OrderID, HistEvent: e.hist()}
}

// mark is the party the watcher follows (nil until its first snapshot), the last position
// it has, and how many events the writers know its orders to have.
func (w *partyWatcher) mark() (subject any, have, known int64) {
	w.mu.Lock()
	opened, last := w.opened, w.lastID
	w.mu.Unlock()
	if !opened {
		return nil, 0, 0
	}
	return w.party, last, w.party.known()
}

// behind reports whether the watcher's position is below what the writers know committed for
// its party, or it has not opened its stream yet.
func (w *partyWatcher) behind() (bool, string) {
	subject, have, known := w.mark()
	if subject == nil || have < known {
		return true, fmt.Sprintf("party watcher %d: %s at pos %d, the writers know %d events", w.idx, w.party.party.Key(), have, known)
	}
	return false, ""
}

func (w *partyWatcher) allSessions() []PartySession {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]PartySession(nil), w.sessions...)
}
