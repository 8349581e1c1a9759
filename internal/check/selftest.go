package check

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// A corruption damages a copy of a run's records in one way the judge must catch. The unit
// tests apply them to made-up records; --self-test applies them to a real run's records, so that
// a report of zero anomalies is known to come from a judge that can see them. There is one for
// every kind of anomaly (AnomalyKinds); the ones a real run cannot show otherwise (a node that
// exits by itself, a refused request, an order without a history) are records added or taken
// away, which the judge must read as the run would have left them.
type corruption struct {
	name string
	want string // the anomaly kind the judge must report
	// apply damages r, a clone (Records.clone) it may change by replacing any record, and
	// returns false when r has nothing this corruption can damage.
	apply func(r *Records) bool
}

var corruptions = []corruption{
	{"drop an event", AGap, func(r *Records) bool {
		// A status event after a status event. A fresh connect may leave out courier events after
		// the first (opensFresh), and it may open with the assignment and then the last status,
		// skipping the statuses between (a session opened so, its status dropped, is another
		// such opening, no gap): the short check met one, and its self-test missed.
		return withSessionWhere(r, 3, func(s Session) bool { return s.Received[0].Kind == "" && s.Received[1].Kind == "" },
			func(s *Session) { s.Received = slices.Delete(s.Received, 1, 2) })
	}},
	{"duplicate an event", ADuplicate, func(r *Records) bool {
		return withSession(r, 2, func(s *Session) { s.Received = slices.Insert(s.Received, 1, s.Received[1]) })
	}},
	{"reorder two events", AReorder, func(r *Records) bool {
		return withSession(r, 2, func(s *Session) { s.Received[0], s.Received[1] = s.Received[1], s.Received[0] })
	}},
	{"give a courier event another courier", AMismatch, func(r *Records) bool {
		i := 0
		return withSessionWhere(r, 1, func(s Session) bool {
			i = slices.IndexFunc(s.Received, func(e Received) bool { return e.Kind == KindCourier })
			return i >= 0
		}, func(s *Session) { s.Received[i].Courier += "-self-test" })
	}},
	{"give a courier event another courier's name", AMismatch, func(r *Records) bool {
		i := 0
		return withSessionWhere(r, 1, func(s Session) bool {
			i = slices.IndexFunc(s.Received, func(e Received) bool { return e.Kind == KindCourier && e.Courier != "" })
			return i >= 0
		}, func(s *Session) { s.Received[i].CourierName += "-self-test" })
	}},
	{"deliver an event late at a quiet moment", ALate, func(r *Records) bool {
		i := 0
		return withSessionWhere(r, 1, func(s Session) bool {
			i = slices.IndexFunc(s.Received, func(e Received) bool { return !e.Due.IsZero() })
			return i >= 0
		}, func(s *Session) {
			a := &s.Received[i].Arrival
			a.Wait, a.Excused = lateBound+time.Second, false
			if all := newShadows(r.Disturbed).of(a.Node); len(all) > 0 && overlaps(all, a.Due, a.Due.Add(a.Wait)) {
				a.Due = all[len(all)-1].To.Add(time.Second) // after the last fault's shadow
			}
		})
	}},
	{"give a position an id", ALocationID, func(r *Records) bool {
		return withSessionWhere(r, 1, hasPositions, func(s *Session) { s.Positions = positionsWith(s, func(p *Position) { p.SetsID = true }) })
	}},
	{"show a position before the order's first event", ALocationStage, func(r *Records) bool {
		return withSessionWhere(r, 1, hasPositions, func(s *Session) { s.Positions = positionsWith(s, func(p *Position) { p.After = 0 }) })
	}},
	{"show another courier's position", ALocationCourier, func(r *Records) bool {
		return withSessionWhere(r, 1, hasPositions, func(s *Session) {
			s.Positions = positionsWith(s, func(p *Position) { p.Courier += "-self-test" })
		})
	}},
	{"show a restaurant another courier's position", ALocationCourier, func(r *Records) bool {
		for i, s := range r.Parties {
			if len(s.Positions) > 0 {
				ps := slices.Clone(s.Positions)
				ps[0].Courier += "-self-test"
				r.Parties[i].Positions = ps
				return true
			}
		}
		// A small run whose restaurants got no position: one an order's watcher got, shown to
		// its restaurant's watcher as well, of another courier.
		party := map[string]string{}
		for _, a := range r.Attempts {
			if a.Party != "" {
				party[a.Order] = a.Party
			}
		}
		for _, s := range r.Sessions {
			for _, p := range s.Positions {
				for i, ps := range r.Parties {
					if ps.Party == party[p.Order] {
						p.Courier += "-self-test"
						r.Parties[i].Positions = append(slices.Clone(ps.Positions), p)
						return true
					}
				}
			}
		}
		return false
	}},
	{"give an event a note never committed", AMismatch, func(r *Records) bool {
		// An event published but never committed, with the status of the one committed at its seq.
		return withSession(r, 1, func(s *Session) { s.Received[len(s.Received)-1].Note = "self-test-phantom" })
	}},
	{"lose the last event", ATail, func(r *Records) bool {
		return withSession(r, 2, func(s *Session) { s.Received = s.Received[:len(s.Received)-1]; s.AfterFinal = nil })
	}},
	{"lose every event of a watcher", ANoEvents, func(r *Records) bool {
		return withSession(r, 1, func(s *Session) { s.Received, s.AfterFinal = nil, nil })
	}},
	{"answer 200 to a reconnect after the final event", ANot204, func(r *Records) bool {
		for i := range r.Sessions {
			s := &r.Sessions[i]
			if slices.Contains(s.AfterFinal, 204) {
				s.AfterFinal = append([]int{200}, s.AfterFinal...) // a stream reopened past the end
				return true
			}
		}
		return false
	}},
	{"remove the 204 after the final event", AMissing204, func(r *Records) bool {
		for i := range r.Sessions {
			s := &r.Sessions[i]
			if slices.Contains(s.AfterFinal, 204) {
				s.AfterFinal = slices.DeleteFunc(slices.Clone(s.AfterFinal), func(c int) bool { return c == 204 })
				return true
			}
		}
		return false
	}},
	{"answer 204 before the final event", AUnexpected204, func(r *Records) bool {
		return withSession(r, 1, func(s *Session) { s.Unexpected204 = true })
	}},
	{"invent an acknowledged write", ALostAck, func(r *Records) bool {
		for _, a := range r.Acks {
			r.Acks = append(r.Acks, Ack{Order: a.Order, Seq: int64(len(r.Histories[a.Order])) + 1, Status: "cancelled", Note: "self-test-invented"})
			return true
		}
		return false
	}},
	{"acknowledge a write at another's seq", ALostAck, func(r *Records) bool {
		for i, a := range r.Acks {
			if a.Seq >= 1 && a.Seq <= int64(len(r.Histories[a.Order])) {
				r.Acks[i].Note = "self-test-other"
				return true
			}
		}
		return false
	}},
	{"forget an attempt that committed", AUnintended, func(r *Records) bool {
		for i, a := range r.Attempts {
			if a.Status != "placed" && committed(r, a) {
				r.Attempts = slices.Delete(r.Attempts, i, i+1)
				return true
			}
		}
		return false
	}},
	{"commit an attempt twice", ADoubleCommit, func(r *Records) bool {
		return withHistory(r, 2, func(h []HistEvent) []HistEvent {
			again := h[len(h)-1]
			again.Seq++
			return append(h, again)
		})
	}},
	{"leave a hole in a history", ABadHistory, func(r *Records) bool {
		return withHistory(r, 3, func(h []HistEvent) []HistEvent { return slices.Delete(h, 1, 2) })
	}},
	{"lose a watched order's history", AMissingHistory, func(r *Records) bool {
		for _, s := range r.Sessions {
			if _, ok := r.Histories[s.Order]; ok {
				delete(r.Histories, s.Order)
				return true
			}
		}
		return false
	}},
	{"have a node exit by itself", AProcessExited, func(r *Records) bool {
		r.Exits = append(r.Exits, "self-test: node 0 (pid 1) exited unexpectedly: signal: killed")
		return true
	}},
	{"have a node answer 503 for ever after a fault", ANodeUnwell, func(r *Records) bool {
		r.Unwell = append(r.Unwell, "self-test: node 1: /readyz not 200 within 10s (last: 503 Service Unavailable)")
		return true
	}},
	{"refuse a watcher's resume", AWronglyRefused, func(r *Records) bool {
		for _, s := range r.Sessions {
			if len(s.Received) > 0 {
				r.Refusals = append(r.Refusals, Refusal{Request: RWatch, Order: s.Order, Last: s.Received[0].Seq, HTTP: 404, Code: "not_found"})
				return true
			}
		}
		return false
	}},
	{"refuse a status change nothing had preceded", AWronglyRefused, func(r *Records) bool {
		// The 409 names the version before the attempt's own event: nothing else moved the order.
		for _, a := range r.Acks {
			if a.Status != "placed" {
				r.Refusals = append(r.Refusals, Refusal{Request: RStatus, Order: a.Order, Note: a.Note, Expected: a.Seq - 1, HTTP: 409, Code: "version_conflict"})
				return true
			}
		}
		return false
	}},
	{"refuse every status change", ANothingAcked, func(r *Records) bool {
		n := len(r.Acks)
		r.Acks = slices.DeleteFunc(r.Acks, func(a Ack) bool { return a.Status != "placed" })
		if len(r.Acks) == n || len(r.Acks) == 0 {
			return false
		}
		// Refused changes commit nothing: as many as it takes for the rule to apply.
		for i := range minAttemptsForAnAck {
			r.Attempts = append(r.Attempts, Attempt{Order: r.Acks[0].Order, Note: fmt.Sprintf("self-test-refused-%d", i), Status: "cancelled", Expected: 1})
		}
		return true
	}},
	{"drop a party event", APartyGap, func(r *Records) bool {
		return withPartySession(r, minEvents(3), func(s *PartySession) { s.Events = slices.Delete(s.Events, 1, 2) })
	}},
	{"duplicate a party event", APartyDuplicate, func(r *Records) bool {
		return withPartySession(r, minEvents(2), func(s *PartySession) { s.Events = slices.Insert(s.Events, 1, s.Events[1]) })
	}},
	{"swap two party positions", APartyReorder, func(r *Records) bool {
		return withPartySession(r, minEvents(2), func(s *PartySession) { s.Events[0], s.Events[1] = s.Events[1], s.Events[0] })
	}},
	{"give a position another event", APartyConflict, func(r *Records) bool {
		// Position 2 of the session now names the event of position 1: to any other watcher
		// that got it, the position names two events; to the log, that event has two positions.
		return withPartySession(r, minEvents(2), func(s *PartySession) {
			s.Events[1].Order, s.Events[1].Seq, s.Events[1].Status = s.Events[0].Order, s.Events[0].Seq, s.Events[0].Status
		})
	}},
	{"repeat an order's event at the next party position", APartyOrderSeq, func(r *Records) bool {
		return withPartySession(r, minEvents(1), func(s *PartySession) {
			again := s.Events[len(s.Events)-1]
			again.Pos++
			s.Events = append(s.Events, again)
		})
	}},
	{"give a party event a note never committed", APartyMismatch, func(r *Records) bool {
		return withPartySession(r, minEvents(1), func(s *PartySession) { s.Events[0].Note = "self-test-phantom" })
	}},
	{"open a party stream without its snapshot", APartyOpening, func(r *Records) bool {
		return withPartySession(r, func(s PartySession) bool { return s.Snapshot != nil && s.Resumed == 0 && len(s.Events) > 0 },
			func(s *PartySession) { s.Snapshot = nil }) ||
			withPartySession(r, func(s PartySession) bool { return s.Snapshot == nil && s.Resumed > 0 },
				func(s *PartySession) { s.Snapshot = &PartySnap{Pos: s.Resumed} })
	}},
	{"show a courier whom its order went to", APartyMismatch, courierTakenWhole},
	{"put an order in a snapshot at its next seq", APartySnapshot, snapshotAhead},
	{"lose a party watcher's last event", APartyTail, func(r *Records) bool {
		// The last session of a watcher: what it lacks there, it lacks at the end.
		last := map[int]int{}
		for i, s := range r.Parties {
			last[s.Watcher] = i
		}
		for i, s := range r.Parties {
			if last[s.Watcher] == i && len(s.Events) > 0 {
				s.Events = slices.Clone(s.Events[:len(s.Events)-1])
				r.Parties[i] = s
				return true
			}
		}
		// Every watcher's last connection carried nothing: a watcher that never opened its stream.
		for _, s := range r.Parties {
			r.Parties = append(r.Parties, PartySession{Watcher: 1 << 30, Party: s.Party})
			return true
		}
		return false
	}},
}

// courierTakenWhole shows a courier's watcher the event that took an order from it as it was
// committed (whom the order went to, its note and actor), not as the unassignment it must read
// as. In a run whose courier watchers got no such event, one from the histories is added after
// the last position a courier's watcher got; in one where no watched courier lost an order, an
// assignment to another courier is.
func courierTakenWhole(r *Records) bool {
	for i, s := range r.Parties {
		c := courierOf(s.Party)
		for k, ev := range s.Events {
			if h := r.Histories[ev.Order]; c != "" && ev.Kind == KindCourier && ev.Seq >= 1 && ev.Seq <= int64(len(h)) && h[ev.Seq-1].Courier != c {
				evs := slices.Clone(s.Events)
				evs[k].HistEvent = h[ev.Seq-1]
				r.Parties[i].Events = evs
				return true
			}
		}
	}
	for i, s := range r.Parties {
		c := courierOf(s.Party)
		if c == "" || len(s.Events) == 0 {
			continue
		}
		for _, order := range slices.Sorted(maps.Keys(r.Histories)) {
			h := r.Histories[order]
			for k := 1; k < len(h); k++ {
				if h[k].Kind == KindCourier && h[k].Courier != c && courierAfter(h[:k]) == c {
					last := s.Events[len(s.Events)-1].Pos
					r.Parties[i].Events = append(slices.Clone(s.Events), PartyEvent{Pos: last + 1, Order: order, HistEvent: h[k]})
					return true
				}
			}
		}
	}
	// A short run in which no order was taken from a watched courier (a few seconds, two
	// courier watchers): the courier is shown an assignment of an order to another courier,
	// whom the order went to, which its log never holds either.
	for i, s := range r.Parties {
		c := courierOf(s.Party)
		if c == "" || (s.Snapshot == nil && len(s.Events) == 0) {
			continue
		}
		last := int64(0)
		if s.Snapshot != nil {
			last = s.Snapshot.Pos
		}
		if n := len(s.Events); n > 0 {
			last = s.Events[n-1].Pos
		}
		for _, order := range slices.Sorted(maps.Keys(r.Histories)) {
			for _, ev := range r.Histories[order] {
				if ev.Kind == KindCourier && ev.Courier != "" && ev.Courier != c {
					r.Parties[i].Events = append(slices.Clone(s.Events), PartyEvent{Pos: last + 1, Order: order, HistEvent: ev})
					return true
				}
			}
		}
	}
	return false
}

// snapshotAhead moves an order of a snapshot on to its next seq, an event that came at a later
// position than the snapshot's, so the snapshot is ahead of the log.
func snapshotAhead(r *Records) bool {
	seen := map[partyEv]int64{}
	for _, s := range r.Parties {
		for _, ev := range s.Events {
			seen[partyEv{s.Party, ev.Order, ev.Seq}] = ev.Pos
		}
	}
	return withPartySession(r, func(s PartySession) bool {
		return s.Snapshot != nil && slices.ContainsFunc(s.Snapshot.Orders, func(o SnapOrder) bool { return aheadOK(r, seen, s, o) })
	}, func(s *PartySession) {
		i := slices.IndexFunc(s.Snapshot.Orders, func(o SnapOrder) bool { return aheadOK(r, seen, *s, o) })
		o := &s.Snapshot.Orders[i]
		o.Seq, o.Status = o.Seq+1, r.Histories[o.Order][o.Seq].Status
	})
}

// aheadOK reports whether snapshot order o of s can be moved on to its next seq: one that came
// after the snapshot's position and leaves the order active.
func aheadOK(r *Records, seen map[partyEv]int64, s PartySession, o SnapOrder) bool {
	h := r.Histories[o.Order]
	pos, ok := seen[partyEv{s.Party, o.Order, o.Seq + 1}]
	return ok && pos > s.Snapshot.Pos && o.Seq < int64(len(h)) && !terminal(h[o.Seq].Status)
}

func minEvents(n int) func(PartySession) bool {
	return func(s PartySession) bool { return len(s.Events) >= n }
}

// withPartySession applies f to a copy of the first party session for which ok holds.
func withPartySession(r *Records, ok func(PartySession) bool, f func(*PartySession)) bool {
	for i, s := range r.Parties {
		if !ok(s) {
			continue
		}
		s.Events = slices.Clone(s.Events)
		if s.Snapshot != nil {
			snap := *s.Snapshot
			snap.Orders = slices.Clone(snap.Orders)
			s.Snapshot = &snap
		}
		f(&s)
		r.Parties[i] = s
		return true
	}
	return false
}

// withHistory replaces the history of the first watched order with at least n events by what f
// makes of a copy of it.
func withHistory(r *Records, n int, f func([]HistEvent) []HistEvent) bool {
	for _, s := range r.Sessions {
		if h := r.Histories[s.Order]; len(h) >= n {
			r.Histories[s.Order] = f(slices.Clone(h))
			return true
		}
	}
	return false
}

func committed(r *Records, a Attempt) bool {
	for _, ev := range r.Histories[a.Order] {
		if ev.Note == a.Note {
			return true
		}
	}
	return false
}

// withSession applies f to a copy of the first session that received at least n events, is
// complete, and ended on the final event (so a lost tail is a lost final event).
func withSession(r *Records, n int, f func(*Session)) bool {
	return withSessionWhere(r, n, func(Session) bool { return true }, f)
}

func hasPositions(s Session) bool { return len(s.Positions) > 0 }

// positionsWith returns a copy of s's positions with the first damaged by f.
func positionsWith(s *Session, f func(*Position)) []Position {
	ps := slices.Clone(s.Positions)
	f(&ps[0])
	return ps
}

// withSessionWhere is withSession on the first such session that ok accepts.
func withSessionWhere(r *Records, n int, ok func(Session) bool, f func(*Session)) bool {
	for i, s := range r.Sessions {
		h := r.Histories[s.Order]
		if len(s.Received) < n || len(h) == 0 || s.Received[len(s.Received)-1].Seq != int64(len(h)) || !ok(s) {
			continue
		}
		s.Received = slices.Clone(s.Received)
		s.AfterFinal = slices.Clone(s.AfterFinal)
		f(&s)
		r.Sessions[i] = s
		return true
	}
	return false
}

// SelfTestResult is how the judge fared against one corruption.
type SelfTestResult struct {
	Corruption string `json:"corruption"`
	Want       string `json:"want"`
	Caught     bool   `json:"caught"`
	Skipped    bool   `json:"skipped,omitempty"` // the records had nothing to corrupt this way
}

// SelfTest corrupts copies of r in every way the judge must catch and reports whether it did.
// r itself is left as it was.
func SelfTest(r Records) []SelfTestResult {
	var out []SelfTestResult
	for _, c := range corruptions {
		cp := r.clone()
		res := SelfTestResult{Corruption: c.name, Want: c.want}
		if !c.apply(&cp) {
			res.Skipped = true
		} else {
			j := Judge(cp)
			res.Caught = j.Anomalies[c.want] > 0
		}
		out = append(out, res)
	}
	return out
}

// selfTestError says which corruptions went unseen.
func selfTestError(res []SelfTestResult) error {
	for _, r := range res {
		if !r.Caught {
			what := "was not caught"
			if r.Skipped {
				what = "found nothing to corrupt"
			}
			return fmt.Errorf("self-test: %q %s (want %s)", r.Corruption, what, r.Want)
		}
	}
	return nil
}
