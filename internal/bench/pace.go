package bench

import (
	"fmt"
	"sync/atomic"
	"time"
)

// pace is what the senders of one load (the driver's writers, a group's posters) note of its
// timing as they go, in Unix nanoseconds.
type pace struct {
	lastStart atomic.Int64 // the start of the request that started last
	maxLate   atomic.Int64 // the longest a request started after its due time
	lastDone  atomic.Int64 // when the answer of the last request that took something came
}

// started notes a request due at due that started at start.
func (p *pace) started(due, start time.Time) {
	raise(&p.lastStart, start.UnixNano())
	raise(&p.maxLate, int64(start.Sub(due)))
}

// answered notes that a request's answer, which took at least one change or position, came at t.
func (p *pace) answered(t time.Time) { raise(&p.lastDone, t.UnixNano()) }

// raise sets v to n if n is greater.
func raise(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// Timing is what a load's pace comes to once its senders are done, in Unix nanoseconds: the
// schedule it kept and how late it fell. A bench worker's posts carry it to the parent, where the
// groups' timings, which ran at the same time, merge into one.
type Timing struct {
	// FirstDue is the first request's due time: the schedule's start.
	FirstDue int64 `json:"first_due_ns"`
	// End is the last request's due time plus one interval: the end of the schedule it kept.
	End int64 `json:"end_ns"`
	// LastDone is when the answer of the last request that took something came.
	LastDone int64 `json:"last_done_ns"`
	// Behind is how late the request that started last started against the last request's due
	// time; MaxLate the most any request started after its own, which a stall the senders caught
	// up with by the end shows and Behind does not.
	Behind  int64 `json:"behind_ns"`
	MaxLate int64 `json:"max_late_ns"`
}

// timing is the pace of a load whose schedule started at first and whose last request queued was
// due at lastDue, one interval after the one before it.
func (p *pace) timing(first, lastDue time.Time, interval time.Duration) Timing {
	return Timing{
		FirstDue: first.UnixNano(), End: lastDue.Add(interval).UnixNano(), LastDone: p.lastDone.Load(),
		Behind: max(0, p.lastStart.Load()-lastDue.UnixNano()), MaxLate: max(0, p.maxLate.Load()),
	}
}

// merge adds the timing of a load that ran at the same time: the schedules together run from the
// first one's start to the last one's end. A load that sent nothing (zero) changes nothing.
func (t *Timing) merge(o Timing) {
	if o.FirstDue == 0 {
		return
	}
	if t.FirstDue == 0 || o.FirstDue < t.FirstDue {
		t.FirstDue = o.FirstDue
	}
	t.End, t.LastDone = max(t.End, o.End), max(t.LastDone, o.LastDone)
	t.Behind, t.MaxLate = max(t.Behind, o.Behind), max(t.MaxLate, o.MaxLate)
}

// Rate is n things taken (changes committed, positions accepted) per second of the time from the
// first due time to the last answer, and at least the schedule's own length: on schedule this is
// the offered rate, and it can never exceed what the server took in that time, however many
// requests were still in flight when the last one was sent.
func (t Timing) Rate(n int64) float64 {
	if n <= 0 || t.FirstDue == 0 {
		return 0
	}
	return float64(n) / time.Duration(max(t.LastDone, t.End)-t.FirstDue).Seconds()
}

// slipped reports whether a request started so late against its due time that the report warns.
func slipped(maxLate time.Duration) bool { return maxLate > lateBound }

// lateWarning is the WARNING that a request started maxLateMs after its due time: senders fell
// behind the schedule, which the latency fromStart leaves out and fromDue counts.
func lateWarning(request, senders string, maxLateMs float64, fromStart, fromDue string) string {
	return fmt.Sprintf("WARNING: a %s started %s ms after its due time (more than %s ms): %s fell behind the schedule during the load; %s leaves that wait out, %s counts it",
		request, fmtMs(maxLateMs), fmtMs(float64(lateBound)/float64(time.Millisecond)), senders, fromStart, fromDue)
}

// fromDue is the time (µs) from a request's due time to received; a request never starts before
// its due time, and min keeps a wall clock's step from making it shorter than the time from its
// start.
func fromDue(received, due, start int64) int64 { return (received - min(due, start)) / 1e3 }
