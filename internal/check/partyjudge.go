package check

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/ordercast/ordercast/stream"
)

// The records of the party watchers, and their judgement. A party's positions run 1, 2, 3… in
// commit order with no holes; every event of every order of the party takes one. The judge
// holds each watcher to that, and all of them to one log: a position names one event.

// PartyEvent is one event a party watcher got: its id (the position in the party's log, -1
// when it was not a number) and the order event it carried, which must be the history's.
type PartyEvent struct {
	Pos       int64  `json:"pos"`
	Order     string `json:"order"`
	HistEvent        // the order's event, as the stream gave it
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

// partyLog is what the records say of the party logs: each order's party, each party's
// length (its orders' events committed) and, from every watcher, which event each position
// named.
type partyLog struct {
	owner  map[string]string // order -> party key
	length map[string]int64  // party key -> events of its orders in the histories
	at     map[partyPos]partyEv
	pos    map[partyEv]int64
}

// judgeParties judges every party watcher's sessions.
func judgeParties(j *Judgement, r Records) {
	if len(r.Parties) == 0 {
		return
	}
	backlog := r.PartyBacklog
	if backlog == 0 {
		backlog = stream.DefaultPartyBacklog
	}
	l := partyLog{owner: map[string]string{}, length: map[string]int64{}, at: map[partyPos]partyEv{}, pos: map[partyEv]int64{}}
	for _, a := range r.Attempts {
		if a.Party != "" && l.owner[a.Order] == "" {
			l.owner[a.Order] = a.Party
			l.length[a.Party] += int64(len(r.Histories[a.Order]))
		}
	}
	// Couriers' positions, each of an order of the party, beside the order as the watcher had it.
	for _, s := range r.Parties {
		for _, p := range s.Positions {
			if h := r.Histories[p.Order]; l.owner[p.Order] != s.Party || len(h) == 0 {
				j.Positions++
				j.add(APartyMismatch, p.Order, "party watcher %d of %s got a position of %q, an order not of the party", s.Watcher, s.Party, p.Order)
			} else {
				judgePosition(j, fmt.Sprintf("party watcher %d of %s", s.Watcher, s.Party), p, h)
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
		judgePartyWatcher(j, byWatcher[id], l, r.Histories, backlog)
	}
}

// judgePartyWatcher follows one watcher through its sessions: the ids after a snapshot or a
// resume run on by one, each order's seqs run on by one from the snapshot's (or from 1 for an
// order the snapshot did not hold), and the watcher ends on the last position of the log.
func judgePartyWatcher(j *Judgement, ss []PartySession, l partyLog, hist map[string][]HistEvent, backlog int64) {
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
			if l.owner[ev.Order] != party || ev.Seq < 1 || ev.Seq > int64(len(h)) {
				diff = "not one of its orders' events"
			} else {
				diff = ev.HistEvent.differs(h[ev.Seq-1])
			}
			if diff != "" {
				j.add(APartyMismatch, ev.Order, "watcher %d got %s position %d: %s seq %d %s (%s); its history: %s",
					w, party, ev.Pos, ev.Order, ev.Seq, ev.Status, diff, histString(h))
				bad = true
				continue
			}
			if prev := seqs[ev.Order]; ev.Seq != prev+1 {
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
			if n := int64(len(hist[o])); seqs[o] != n {
				j.add(APartyTail, o, "watcher %d ended with %s at seq %d; its history has %d", w, o, seqs[o], n)
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
		if l.owner[o.Order] != party || o.Seq < 1 || o.Seq > int64(len(h)) || h[o.Seq-1].Status != o.Status || terminal(o.Status) {
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
		if e.seq < 1 || e.seq > int64(len(h)) || terminal(h[e.seq-1].Status) {
			continue
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
