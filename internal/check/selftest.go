package check

import (
	"fmt"
	"slices"
)

// A corruption damages a copy of a run's records in one way the judge must catch. The unit
// tests apply them to made-up records; --self-test applies them to a real run's records, so that
// a report of zero anomalies is known to come from a judge that can see them.
type corruption struct {
	name string
	want string // the anomaly kind the judge must report
	// apply damages r in place; false when r has nothing this corruption can damage.
	apply func(r *Records) bool
}

var corruptions = []corruption{
	{"drop an event", AGap, func(r *Records) bool {
		return withSession(r, 3, func(s *Session) { s.Received = slices.Delete(s.Received, 1, 2) })
	}},
	{"duplicate an event", ADuplicate, func(r *Records) bool {
		return withSession(r, 2, func(s *Session) { s.Received = slices.Insert(s.Received, 1, s.Received[1]) })
	}},
	{"reorder two events", AReorder, func(r *Records) bool {
		return withSession(r, 2, func(s *Session) { s.Received[0], s.Received[1] = s.Received[1], s.Received[0] })
	}},
	{"lose the last event", ATail, func(r *Records) bool {
		return withSession(r, 2, func(s *Session) { s.Received = s.Received[:len(s.Received)-1]; s.AfterFinal = nil })
	}},
	{"invent an acknowledged write", ALostAck, func(r *Records) bool {
		for _, a := range r.Acks {
			r.Acks = append(r.Acks, Ack{Order: a.Order, Seq: int64(len(r.Histories[a.Order])) + 1, Status: "cancelled", Note: "self-test-invented"})
			return true
		}
		return false
	}},
	{"forget an attempt that committed", AUnintended, func(r *Records) bool {
		for i, a := range r.Attempts {
			if a.Status != "placed" && committed(r, a) {
				r.Attempts = slices.Delete(slices.Clone(r.Attempts), i, i+1)
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
	{"drop a party event", APartyGap, func(r *Records) bool {
		return withPartySession(r, 3, func(s *PartySession) { s.Events = slices.Delete(s.Events, 1, 2) })
	}},
	{"duplicate a party event", APartyDuplicate, func(r *Records) bool {
		return withPartySession(r, 2, func(s *PartySession) { s.Events = slices.Insert(s.Events, 1, s.Events[1]) })
	}},
	{"swap two party positions", APartyReorder, func(r *Records) bool {
		return withPartySession(r, 2, func(s *PartySession) { s.Events[0], s.Events[1] = s.Events[1], s.Events[0] })
	}},
	{"give a position another event", APartyConflict, func(r *Records) bool {
		// Position 2 of the session now names the event of position 1: to any other watcher
		// that got it, the position names two events; to the log, that event has two positions.
		return withPartySession(r, 2, func(s *PartySession) {
			s.Events[1].Order, s.Events[1].Seq, s.Events[1].Status = s.Events[0].Order, s.Events[0].Seq, s.Events[0].Status
		})
	}},
}

// withPartySession applies f to a copy of the first party session with at least n events.
func withPartySession(r *Records, n int, f func(*PartySession)) bool {
	for i, s := range r.Parties {
		if len(s.Events) < n {
			continue
		}
		s.Events = slices.Clone(s.Events)
		f(&s)
		r.Parties = slices.Clone(r.Parties)
		r.Parties[i] = s
		return true
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
	for i, s := range r.Sessions {
		h := r.Histories[s.Order]
		if len(s.Received) < n || len(h) == 0 || s.Received[len(s.Received)-1].Seq != int64(len(h)) {
			continue
		}
		s.Received = slices.Clone(s.Received)
		s.AfterFinal = slices.Clone(s.AfterFinal)
		f(&s)
		r.Sessions = slices.Clone(r.Sessions)
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
		cp := Records{Sessions: slices.Clone(r.Sessions), Parties: slices.Clone(r.Parties), Attempts: slices.Clone(r.Attempts), Acks: slices.Clone(r.Acks), Histories: r.Histories}
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
