package bench

import "time"

// WriteStarts records when each write of the bench was due on its schedule and when it started,
// keyed by order and the seq the write makes. The key is known before the write is sent, since
// every write carries expected_version: the event it makes has seq expected_version+1, so a
// watcher may read the event before the write's answer arrives and still be matched with it.
//
// Each slot is written once, by the one writer that owns that write, before the write is sent,
// and read only after the writers have finished, so it needs no lock.
type WriteStarts struct {
	base   []int64 // per order: its version when created, so its first change makes seq base+1
	starts []int64 // per order and change: Unix nanoseconds, 0 when not sent
	dues   []int64 // the same slots: when the schedule meant the write to be sent
}

// NewWriteStarts makes room for up to perOrder changes to each of orders orders, whose first
// change makes seq base[i]+1.
func NewWriteStarts(base []int64, perOrder int) *WriteStarts {
	return &WriteStarts{base: base, starts: make([]int64, len(base)*perOrder), dues: make([]int64, len(base)*perOrder)}
}

func (w *WriteStarts) slot(order int, seq int64) (int, bool) {
	if order < 0 || order >= len(w.base) {
		return 0, false
	}
	per := len(w.starts) / len(w.base)
	k := seq - w.base[order] - 1
	if k < 0 || k >= int64(per) {
		return 0, false
	}
	return order*per + int(k), true
}

// Record notes that the write making seq of order, due at due, started at start. It reports
// false for a key outside the table.
func (w *WriteStarts) Record(order int, seq int64, due, start time.Time) bool {
	i, ok := w.slot(order, seq)
	if ok {
		w.starts[i], w.dues[i] = start.UnixNano(), due.UnixNano()
	}
	return ok
}

// Start returns when the write making seq of order was due and when it started (Unix
// nanoseconds).
func (w *WriteStarts) Start(order int, seq int64) (due, start int64, ok bool) {
	i, ok := w.slot(order, seq)
	if !ok || w.starts[i] == 0 {
		return 0, 0, false
	}
	return w.dues[i], w.starts[i], true
}

// Latencies is what a set of delivered changes took, in microseconds, one entry per change that
// could be matched with its write, in the same order in every slice.
type Latencies struct {
	// FromDue runs from the moment the schedule meant the write to be sent to the watcher reading
	// the event: FromStart plus any time the write waited for a free writer, which a server that
	// stalls imposes on every write due meanwhile (coordinated omission, as wrk2 corrects it).
	FromDue []int64
	// FromStart runs from the start of the write request to the watcher reading the event.
	FromStart []int64
	// CommitToReceive runs from the event's commit time (its "at") to the same read.
	CommitToReceive []int64
	// Uncorrelated counts delivered changes that matched no write of the bench (must be 0).
	Uncorrelated int64
	// Inconsistent counts changes committed before their write started, which only a wrong match
	// or a broken clock can produce (must be 0). They are left out of the slices.
	Inconsistent int64
}

// Correlate matches each sample with its write's due time and start.
func Correlate(w *WriteStarts, samples []Sample) Latencies {
	l := Latencies{FromDue: make([]int64, 0, len(samples)), FromStart: make([]int64, 0, len(samples)), CommitToReceive: make([]int64, 0, len(samples))}
	for _, s := range samples {
		due, start, ok := w.Start(s.Order, s.Seq)
		if !ok {
			l.Uncorrelated++
			continue
		}
		// The server's "at" has microsecond precision and is taken after the request arrived, so
		// it is never before the start; when it is, the match is wrong.
		if s.At < start {
			l.Inconsistent++
			continue
		}
		l.FromDue = append(l.FromDue, fromDue(s.Received, due, start))
		l.FromStart = append(l.FromStart, (s.Received-start)/1e3)
		l.CommitToReceive = append(l.CommitToReceive, (s.Received-s.At)/1e3)
	}
	return l
}
