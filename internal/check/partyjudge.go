package check

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/stream"
)

// The records of the party watchers, and their judgement. A party's positions run 1, 2, 3… in
// commit order with no holes; every event of the party's log takes one. A restaurant's log
// holds every event of its orders; a courier's, the events after which an order is its, and the
// event that takes an order from it, which it reads as an unassignment. The judge holds each
// watcher to that, and all of them to one log: a position names one event.

// PartyEvent is one event a party watcher got: its id (the position in the party's log, -1
// when it was not a number) and the order event it carried, which must be the history's.
type PartyEvent struct {
	Pos       int64  `json:"pos"`
	Order     string `json:"order"`
	HistEvent        // the order's event, as the stream gave it
	Arrival          // when it came, judged for lateness
}

// SnapOrder is one order of a party snapshot: its version then, and its status.
type SnapOrder struct {
	Order  string `json:"order"`
	Seq    int64  `json:"seq"`
	Status string `json:"status"`
}

// PartySnap is the snapshot that opens a party stream: the active orders at log position Pos
// (-1 when its id was not its pos or it did not parse).
type PartySnap struct {
	Pos    int64       `json:"pos"`
	Orders []SnapOrder `json:"orders"`
}

// PartySession is one connection of a party watcher that carried anything.
type PartySession struct {
	Watcher int    `json:"watcher"`
	Party   string `json:"party"`
	// Resumed is the Last-Event-ID it was opened with; 0 for a fresh open.
	Resumed  int64        `json:"resumed,omitempty"`
	Snapshot *PartySnap   `json:"snapshot,omitempty"`
	Events   []PartyEvent `json:"events"`
	// Positions are the couriers' positions it got, each with the seq of its order as the
	// watcher had it then (from its snapshot and the events since).
	Positions []Position `json:"positions,omitempty"`
}

// PartyCounts is what the judge checked of the party streams.
type PartyCounts struct {
	Parties   int   `json:"parties"`
	Watchers  int   `json:"watchers"`
	Sessions  int   `json:"sessions"`
	Resumes   int   `json:"resumes"`
	Snapshots int   `json:"snapshots"`
	Events    int64 `json:"events_checked"`
	// Positions is how many distinct positions of all parties' logs some watcher received.
	Positions int `json:"positions"`
	// LogEvents is the length of the watched parties' logs: their orders' events committed.
	LogEvents int64 `json:"log_events"`
	// TakenAway is how many events that took an order from a courier its watchers got, each
	// judged as the unassignment it must read as.
	TakenAway int64 `json:"taken_away"`
}

// Party anomaly kinds.
const (
	APartyGap       = "party_gap"        // a party watcher's ids skipped a position
	APartyDuplicate = "party_duplicate"  // a party watcher got a position twice in a row
	APartyReorder   = "party_reorder"    // a party watcher got a position lower than one it had
	APartyConflict  = "party_conflict"   // one position named two events, or one event two positions
	APartyOrderSeq  = "party_order_seq"  // within a party stream, an order's seqs skipped, repeated or went back
	APartyMismatch  = "party_mismatch"   // an event or snapshot order not in the history or not the party's, or another status, note, actor or time
	APartyOpening   = "party_opening"    // a fresh open without a snapshot, or a resume within the backlog answered with one
	APartySnapshot  = "party_snapshot"   // a snapshot's versions disagree with the positions of the events
	APartyTail      = "party_incomplete" // a party watcher did not end on the last position of the log
)

type partyPos struct {
	party string
	pos   int64
}

type partyEv struct {
	party, order string
	seq          int64
}

// partyLog is what the records say of the party logs: each order's restaurant and couriers,
// each party's length (the events of its log in the histories) and, from every watcher, which
// event each position named.
type partyLog struct {
	hist   map[string][]HistEvent
	owner  map[string]string   // order -> restaurant party key
	trails map[string][]string // order -> the courier it has after each event (index seq-1)
	length map[string]int64    // party key -> events of its log in the histories
	at     map[partyPos]partyEv
	pos    map[partyEv]int64
}

func newPartyLog(r Records) partyLog {
	l := partyLog{hist: r.Histories, owner: map[string]string{}, trails: map[string][]string{}, length: map[string]int64{},
		at: map[partyPos]partyEv{}, pos: map[partyEv]int64{}}
	for _, a := range r.Attempts {
		if a.Party != "" && l.owner[a.Order] == "" {
			l.owner[a.Order] = a.Party
			l.length[a.Party] += int64(len(r.Histories[a.Order]))
		}
	}
	for order, h := range r.Histories {
		t := make([]string, len(h))
		before := ""
		for i, ev := range h {
			after := before
			if ev.Kind == KindCourier {
				after = ev.Courier
			}
			t[i] = after
			if after != "" {
				l.length[courierKey(after)]++
			}
			if before != "" && before != after {
				l.length[courierKey(before)]++ // the event that takes the order from it
			}
			before = after
		}
		l.trails[order] = t
	}
	return l
}

// courierKey is courier c's key in the party logs.
func courierKey(c string) string { return ordercast.Party{Kind: ordercast.PartyCourier, ID: c}.Key() }

// courierOf is the courier a party key names, "" for a party of another kind.
func courierOf(party string) string {
	if p, ok := ordercast.ParsePartyKey(party); ok && p.Kind == ordercast.PartyCourier {
		return p.ID
	}
	return ""
}

// owns reports whether order is party's after its event seq (none after seq 0).
func (l partyLog) owns(party, order string, seq int64) bool {
	if c := courierOf(party); c != "" {
		t := l.trails[order]
		return seq >= 1 && seq <= int64(len(t)) && t[seq-1] == c
	}
	return l.owner[order] == party && seq >= 1 && seq <= int64(len(l.hist[order]))
}

// holds reports whether party's log holds the order's event seq: one after which the order is
// the party's, or one that takes it from a courier.
func (l partyLog) holds(party, order string, seq int64) bool {
	return l.owns(party, order, seq) || seq <= int64(len(l.hist[order])) && l.owns(party, order, seq-1)
}

// enters reports whether the order's event seq brings it into party's scope: its creation, or
// its assignment to a courier.
func (l partyLog) enters(party, order string, seq int64) bool {
	return l.owns(party, order, seq) && !l.owns(party, order, seq-1)
}

// ever reports whether order was ever party's.
func (l partyLog) ever(party, order string) bool { return l.last(party, order) > 0 }

// next is the seq of the order's first event in party's log after seq prev, 0 when none.
func (l partyLog) next(party, order string, prev int64) int64 {
	for seq := prev + 1; seq <= int64(len(l.hist[order])); seq++ {
		if l.holds(party, order, seq) {
			return seq
		}
	}
	return 0
}

// last is the seq of the order's last event in party's log, 0 when none.
func (l partyLog) last(party, order string) int64 {
	for seq := int64(len(l.hist[order])); seq >= 1; seq-- {
		if l.holds(party, order, seq) {
			return seq
		}
	}
	return 0
}

// seenBy is the history's event e as party's stream must show it: the courier an order is
// taken from reads that event as an unassignment, not whom the order went to (id or name), nor
// its note or actor (ordercast.Event.SeenBy, stated again here: the judge does not take the rule
// from the code it judges).
func seenBy(party string, e HistEvent) HistEvent {
	if c := courierOf(party); c != "" && e.Kind == KindCourier && e.Courier != c {
		e.Courier, e.CourierName, e.Note, e.Actor = "", "", "", ""
	}
	return e
}

// judgeParties judges every party watcher's sessions.
func judgeParties(j *Judgement, r Records, sh shadows) {
	if len(r.Parties) == 0 {
		return
	}
	backlog := r.PartyBacklog
	if backlog == 0 {
		backlog = stream.DefaultPartyBacklog
	}
	l := newPartyLog(r)
	// Couriers' positions, each of an order of the party, beside the order as the watcher had it;
	// a courier's stream shows its own.
	for _, s := range r.Parties {
		for _, p := range s.Positions {
			h := r.Histories[p.Order]
			if !l.ever(s.Party, p.Order) {
				j.Positions++
				j.add(APartyMismatch, p.Order, "party watcher %d of %s got a position of %q, an order not of the party", s.Watcher, s.Party, p.Order)
				continue
			}
			judgePosition(j, fmt.Sprintf("party watcher %d of %s", s.Watcher, s.Party), p, h)
			if c := courierOf(s.Party); c != "" && p.Courier != c {
				j.add(ALocationCourier, p.Order, "party watcher %d of %s got a position of %s (of %s, after seq %d)", s.Watcher, s.Party, p.Courier, p.Order, p.After)
			}
		}
	}
	// One log per party: every position any watcher got names one event, and back.
	watched := map[string]bool{}
	for _, s := range r.Parties {
		watched[s.Party] = true
		for _, ev := range s.Events {
			if ev.Pos < 1 || ev.Order == "" {
				continue
			}
			p, e := partyPos{s.Party, ev.Pos}, partyEv{s.Party, ev.Order, ev.Seq}
			if had, ok := l.at[p]; !ok {
				l.at[p] = e
			} else if had != e {
				j.add(APartyConflict, ev.Order, "%s position %d named %s seq %d and, to watcher %d, %s seq %d",
					s.Party, ev.Pos, had.order, had.seq, s.Watcher, ev.Order, ev.Seq)
			}
			if had, ok := l.pos[e]; !ok {
				l.pos[e] = ev.Pos
			} else if had != ev.Pos {
				j.add(APartyConflict, ev.Order, "%s seq %d came at %s positions %d and, to watcher %d, %d",
					ev.Order, ev.Seq, s.Party, had, s.Watcher, ev.Pos)
			}
		}
	}
	j.Party.Parties = len(watched)
	j.Party.Positions = len(l.at)
	for p := range watched {
		j.Party.LogEvents += l.length[p]
	}
	// Each watcher's sessions in the order they ran.
	byWatcher := map[int][]PartySession{}
	var ids []int
	for _, s := range r.Parties {
		if _, ok := byWatcher[s.Watcher]; !ok {
			ids = append(ids, s.Watcher)
		}
		byWatcher[s.Watcher] = append(byWatcher[s.Watcher], s)
	}
	slices.Sort(ids)
	j.Party.Watchers = len(ids)
	for _, id := range ids {
		judgePartyWatcher(j, byWatcher[id], l, r.Histories, backlog, sh)
	}
}

// judgePartyWatcher follows one watcher through its sessions: the ids after a snapshot or a
// resume run on by one, each order's seqs run on by one from the snapshot's (or from 1 for an
// order the snapshot did not hold), and the watcher ends on the last position of the log.
func judgePartyWatcher(j *Judgement, ss []PartySession, l partyLog, hist map[string][]HistEvent, backlog int64, sh shadows) {
	w, party := ss[0].Watcher, ss[0].Party
	var last int64
	opened, bad := false, false
	seqs := map[string]int64{} // the last seq of each order the watcher has
	for _, s := range ss {
		j.Party.Sessions++
		if s.Resumed > 0 {
			j.Party.Resumes++
		}
		switch {
		case s.Snapshot != nil:
			j.Party.Snapshots++
			if s.Resumed > 0 && s.Snapshot.Pos-s.Resumed <= backlog {
				// A cursor the watcher received is in the log, so the log must resume after it,
				// unless the stream was more than the backlog behind: then the node sends a fresh
				// snapshot instead, on a resume or in the middle of a stream (a new session).
				j.add(APartyOpening, party, "watcher %d resumed after position %d and got a fresh snapshot at %d, within the nodes' backlog of %d",
					w, s.Resumed, s.Snapshot.Pos, backlog)
				bad = true
			}
			last, opened = s.Snapshot.Pos, true
			seqs = map[string]int64{} // a board rebuilds itself from a snapshot
			if !judgeSnapshot(j, w, party, *s.Snapshot, l, hist) {
				bad = true
			}
			for _, o := range s.Snapshot.Orders {
				seqs[o.Order] = o.Seq
			}
		case s.Resumed == 0 && len(s.Events) > 0:
			j.add(APartyOpening, party, "watcher %d opened the stream and got position %d before any snapshot", w, s.Events[0].Pos)
			bad, opened, last = true, true, s.Events[0].Pos-1
		}
		for _, ev := range s.Events {
			j.Party.Events++
			if j.Delivery.late(ev.Arrival, sh) {
				j.addLate(ev.Arrival, ev.Order, fmt.Sprintf("party watcher %d of %s", w, party), fmt.Sprintf("%s position %d (seq %d)", party, ev.Pos, ev.Seq))
			}
			switch {
			case ev.Pos == last+1:
			case ev.Pos == last:
				j.add(APartyDuplicate, ev.Order, "watcher %d got %s position %d twice (%s seq %d)", w, party, ev.Pos, ev.Order, ev.Seq)
				bad = true
			case ev.Pos < last:
				j.add(APartyReorder, ev.Order, "watcher %d got %s position %d after %d (%s seq %d)", w, party, ev.Pos, last, ev.Order, ev.Seq)
				bad = true
			default:
				j.add(APartyGap, ev.Order, "watcher %d got %s position %d after %d (lost %d; %s seq %d)", w, party, ev.Pos, last, ev.Pos-last-1, ev.Order, ev.Seq)
				bad = true
			}
			last = ev.Pos
			h := hist[ev.Order]
			diff := ""
			if !l.holds(party, ev.Order, ev.Seq) {
				diff = "not an event of its log"
			} else {
				want := seenBy(party, h[ev.Seq-1])
				if want != h[ev.Seq-1] {
					j.Party.TakenAway++
				}
				diff = ev.HistEvent.differs(want)
			}
			if diff != "" {
				j.add(APartyMismatch, ev.Order, "watcher %d got %s position %d: %s seq %d %s (%s); its history: %s",
					w, party, ev.Pos, ev.Order, ev.Seq, ev.Status, diff, histString(h))
				bad = true
				continue
			}
			// The order's next event in the log, or one that brings it (back) into the party's
			// scope when the watcher has none of it since its snapshot.
			if prev := seqs[ev.Order]; prev > 0 && ev.Seq != l.next(party, ev.Order, prev) || prev == 0 && !l.enters(party, ev.Order, ev.Seq) {
				j.add(APartyOrderSeq, ev.Order, "watcher %d got seq %d of %s after seq %d (0: none yet) at %s position %d",
					w, ev.Seq, ev.Order, prev, party, ev.Pos)
				bad = true
			}
			seqs[ev.Order] = max(seqs[ev.Order], ev.Seq)
		}
	}
	switch {
	case !opened:
		j.add(APartyTail, party, "watcher %d never opened the stream of %s; its log has %d events", w, party, l.length[party])
	case last != l.length[party]:
		j.add(APartyTail, party, "watcher %d ended at %s position %d; its orders have %d events", w, party, last, l.length[party])
	case !bad:
		// Every position received once and in order up to the log's end: each order the
		// watcher knows is then at its last event.
		orders := make([]string, 0, len(seqs))
		for o := range seqs {
			orders = append(orders, o)
		}
		slices.Sort(orders)
		for _, o := range orders {
			if n := l.last(party, o); seqs[o] != n {
				j.add(APartyTail, o, "watcher %d ended with %s at seq %d; its last event in the log of %s is seq %d", w, o, seqs[o], party, n)
			}
		}
	}
}

// judgeSnapshot checks one snapshot against the histories and the positions every watcher
// received: each order in it is the party's, active, at a version of its history, and the
// positions say the same (its version's event at or before the snapshot's position, the next
// after); an order the positions show active at that point is in it. It reports whether all
// was well.
func judgeSnapshot(j *Judgement, w int, party string, snap PartySnap, l partyLog, hist map[string][]HistEvent) bool {
	ok := true
	if snap.Pos < 0 {
		j.add(APartyMismatch, party, "watcher %d got a snapshot of %s whose id is not its pos, or that does not parse", w, party)
		return false
	}
	in := map[string]bool{}
	for _, o := range snap.Orders {
		in[o.Order] = true
		h := hist[o.Order]
		if !l.owns(party, o.Order, o.Seq) || h[o.Seq-1].Status != o.Status || terminal(o.Status) {
			j.add(APartyMismatch, o.Order, "watcher %d got a snapshot of %s at %d with %s at seq %d %s; its history: %s",
				w, party, snap.Pos, o.Order, o.Seq, o.Status, histString(h))
			ok = false
			continue
		}
		if p, seen := l.pos[partyEv{party, o.Order, o.Seq}]; seen && p > snap.Pos {
			j.add(APartySnapshot, o.Order, "watcher %d got a snapshot of %s at %d with %s at seq %d, which came at position %d",
				w, party, snap.Pos, o.Order, o.Seq, p)
			ok = false
		}
		if p, seen := l.pos[partyEv{party, o.Order, o.Seq + 1}]; seen && p <= snap.Pos {
			j.add(APartySnapshot, o.Order, "watcher %d got a snapshot of %s at %d with %s at seq %d, but seq %d came at position %d",
				w, party, snap.Pos, o.Order, o.Seq, o.Seq+1, p)
			ok = false
		}
	}
	// An order whose event k is at or before the snapshot and k+1 after it was active then; so was
	// one whose last event is k, when k is not its end.
	type hit struct {
		order string
		seq   int64
	}
	var missing []hit
	for e, p := range l.pos {
		if e.party != party || in[e.order] || p > snap.Pos {
			continue
		}
		h := hist[e.order]
		if !l.owns(party, e.order, e.seq) || terminal(h[e.seq-1].Status) {
			continue // not the party's after it (taken from a courier), or ended
		}
		if next, seen := l.pos[partyEv{party, e.order, e.seq + 1}]; seen && next > snap.Pos || !seen && e.seq == int64(len(h)) {
			missing = append(missing, hit{e.order, e.seq})
		}
	}
	slices.SortFunc(missing, func(a, b hit) int { return cmp.Compare(a.order, b.order) })
	for _, m := range missing {
		j.add(APartySnapshot, m.order, "watcher %d got a snapshot of %s at %d without %s, active there at seq %d", w, party, snap.Pos, m.order, m.seq)
		ok = false
	}
	return ok
}
