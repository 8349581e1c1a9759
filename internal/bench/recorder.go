package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Counts is what a group of watchers observed. It is sent between processes as JSON and added
// up by the parent.
type Counts struct {
	// Opened and Failed count watchers that got their first answer, or gave up opening.
	Opened int64 `json:"opened"`
	Failed int64 `json:"failed"`
	// Delivered counts changes received after the mark (while the load runs), one per watcher.
	Delivered int64 `json:"delivered"`
	// Duplicates, OutOfOrder and Gaps are delivery errors; each must stay zero. A gap is a
	// skipped seq on a transport that promises every event (SSE, WebSocket).
	Duplicates int64 `json:"duplicates"`
	OutOfOrder int64 `json:"out_of_order"`
	Gaps       int64 `json:"gaps"`
	// Coalesced counts versions a polling watcher never saw because two changes fell between its
	// requests: the nature of polling, not an error.
	Coalesced int64 `json:"coalesced"`
	// Requests counts the watchers' completed HTTP requests (a stream counts once, when it opens).
	Requests int64 `json:"requests"`
	// Reconnects counts streams that broke and were resumed.
	Reconnects int64 `json:"reconnects"`
	// BytesRead is every byte the watchers' connections read, headers included.
	BytesRead int64 `json:"bytes_read"`
	// Samples holds one entry per delivered change: which event it was, when it was committed and
	// when it was read. Only Counts(true) carries them, and hands each over once.
	Samples []Sample `json:"samples,omitempty"`

	// Positions counts courier positions received after the mark, one per watcher (location
	// workload). PosDuplicates counts a position received again by the same watcher, and
	// PosOutOfOrder one older than a position the watcher already had: latest wins, so it must
	// stay 0.
	Positions     int64 `json:"positions,omitempty"`
	PosDuplicates int64 `json:"pos_duplicates,omitempty"`
	PosOutOfOrder int64 `json:"pos_out_of_order,omitempty"`
	// PosSamples holds one entry per received position, handed over like Samples.
	PosSamples []PosSample `json:"pos_samples,omitempty"`
	// Newest holds, for each order the group's watchers watch, the at of the oldest among their
	// newest positions (0: a watcher that has none), with the samples: after the settle, every
	// watcher must have its courier's last accepted position.
	Newest []OrderPos `json:"newest,omitempty"`
}

// OrderPos is a position's at (Unix nanoseconds) for an order.
type OrderPos struct {
	Order int
	At    int64
}

// MarshalJSON writes it as a 2-element array.
func (o OrderPos) MarshalJSON() ([]byte, error) { return json.Marshal([2]int64{int64(o.Order), o.At}) }

// UnmarshalJSON reads what MarshalJSON wrote.
func (o *OrderPos) UnmarshalJSON(b []byte) error {
	var a [2]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("order position: %w", err)
	}
	*o = OrderPos{Order: int(a[0]), At: a[1]}
	return nil
}

// PosSample is one courier position as a watcher read it. The parent joins it with the post that
// sent it (keyed by order and the position's at, which the bench chose), wherever that post was
// made: all clocks are the same host's wall clock.
type PosSample struct {
	Order    int   // index of the order, which is the index of its courier
	Node     int   // index of the node the watcher is connected to
	At       int64 // the position's at, Unix nanoseconds
	Received int64 // when the watcher read it, Unix nanoseconds
}

// MarshalJSON writes a position sample as a 4-element array, as Sample does.
func (s PosSample) MarshalJSON() ([]byte, error) {
	return json.Marshal([4]int64{int64(s.Order), int64(s.Node), s.At, s.Received})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *PosSample) UnmarshalJSON(b []byte) error {
	var a [4]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("position sample: %w", err)
	}
	*s = PosSample{Order: int(a[0]), Node: int(a[1]), At: a[2], Received: a[3]}
	return nil
}

// Sample is one delivered change as a watcher read it. The parent joins it with the moment the
// bench started the write that made it (keyed by order and seq), so the latency from the start of
// the write is measured across processes: all clocks are the same host's wall clock.
type Sample struct {
	Order    int   // index of the order (OrderID(prefix, Order))
	Seq      int64 // the event's seq (the order's version, for polling)
	At       int64 // the event's commit time, Unix nanoseconds (the server's "at")
	Received int64 // when the watcher read it, Unix nanoseconds
}

// MarshalJSON writes a sample as a 4-element array: a result carries every sample of a run, so
// field names would be most of the bytes.
func (s Sample) MarshalJSON() ([]byte, error) {
	return json.Marshal([4]int64{int64(s.Order), s.Seq, s.At, s.Received})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Sample) UnmarshalJSON(b []byte) error {
	var a [4]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	*s = Sample{Order: int(a[0]), Seq: a[1], At: a[2], Received: a[3]}
	return nil
}

// Add adds o into c.
func (c *Counts) Add(o Counts) {
	c.Opened += o.Opened
	c.Failed += o.Failed
	c.Delivered += o.Delivered
	c.Duplicates += o.Duplicates
	c.OutOfOrder += o.OutOfOrder
	c.Gaps += o.Gaps
	c.Coalesced += o.Coalesced
	c.Requests += o.Requests
	c.Reconnects += o.Reconnects
	c.BytesRead += o.BytesRead
	c.Samples = append(c.Samples, o.Samples...)
	c.Positions += o.Positions
	c.PosDuplicates += o.PosDuplicates
	c.PosOutOfOrder += o.PosOutOfOrder
	c.PosSamples = append(c.PosSamples, o.PosSamples...)
	c.Newest = append(c.Newest, o.Newest...)
}

// Sub returns c minus o for the counters (samples are kept, not subtracted): the change over a window.
func (c Counts) Sub(o Counts) Counts {
	return Counts{
		Opened: c.Opened - o.Opened, Failed: c.Failed - o.Failed, Delivered: c.Delivered - o.Delivered,
		Duplicates: c.Duplicates - o.Duplicates, OutOfOrder: c.OutOfOrder - o.OutOfOrder,
		Gaps: c.Gaps - o.Gaps, Coalesced: c.Coalesced - o.Coalesced, Requests: c.Requests - o.Requests,
		Reconnects: c.Reconnects - o.Reconnects, BytesRead: c.BytesRead - o.BytesRead,
		Samples: c.Samples, Positions: c.Positions - o.Positions, PosDuplicates: c.PosDuplicates - o.PosDuplicates,
		PosOutOfOrder: c.PosOutOfOrder - o.PosOutOfOrder, PosSamples: c.PosSamples, Newest: c.Newest,
	}
}

// Recorder does the accounting of one process's watchers: it checks every event a watcher
// receives against the last one it had, and measures the latency of the live ones. It is safe
// for concurrent use by all watchers.
type Recorder struct {
	opened, failed, requests, reconnects, bytesRead    atomic.Int64
	delivered, duplicates, outOfOrder, gaps, coalesced atomic.Int64
	positions, posDuplicates, posOutOfOrder            atomic.Int64
	marked                                             atomic.Bool

	mu         sync.Mutex
	samples    []Sample
	posSamples []PosSample
	tracked    []*Watcher // whose newest positions Counts(true) reports
}

// Watcher is one watcher's place in its order's history.
type Watcher struct {
	// Order is the index of the order it watches, which its samples carry.
	Order int
	last  int64
	// Node is the index of the node it is connected to; lastPos the at of its newest position,
	// which Counts reads while the watcher runs.
	Node    int
	lastPos atomic.Int64
}

// Track has Counts(true) report w's newest position (Counts.Newest).
func (r *Recorder) Track(w *Watcher) {
	r.mu.Lock()
	r.tracked = append(r.tracked, w)
	r.mu.Unlock()
}

// Last returns the seq (or version) of the last event the watcher took.
func (w *Watcher) Last() int64 { return w.last }

// Mark starts counting: events received from now on are the load's, and are expected.
func (r *Recorder) Mark() { r.marked.Store(true) }

// Opened records a watcher that got its first answer; Failed one that could not open.
func (r *Recorder) Opened() { r.opened.Add(1) }

// Failed records a watcher that could not open.
func (r *Recorder) Failed() { r.failed.Add(1) }

// Request records one completed HTTP request of a watcher.
func (r *Recorder) Request() { r.requests.Add(1) }

// Reconnect records a stream that broke and was resumed.
func (r *Recorder) Reconnect() { r.reconnects.Add(1) }

// Read records bytes read by a watcher's connection.
func (r *Recorder) Read(n int) { r.bytesRead.Add(int64(n)) }

// Observe records that watcher w received the event with seq (or the order at version seq)
// committed at at. every says the transport promises every event, so a skipped seq is a gap;
// otherwise it is coalesced. It reports whether the event was new to the watcher.
func (r *Recorder) Observe(w *Watcher, seq int64, at, now time.Time, every bool) bool {
	switch {
	case seq == w.last:
		r.duplicates.Add(1)
		return false
	case seq < w.last:
		r.outOfOrder.Add(1)
		return false
	case seq > w.last+1 && w.last > 0:
		if every {
			r.gaps.Add(seq - w.last - 1)
		} else {
			r.coalesced.Add(seq - w.last - 1)
		}
	}
	w.last = seq
	if !r.marked.Load() {
		return true // the state the watcher opened with, not a change of the load
	}
	r.delivered.Add(1)
	r.mu.Lock()
	r.samples = append(r.samples, Sample{Order: w.Order, Seq: seq, At: at.UnixNano(), Received: now.UnixNano()})
	r.mu.Unlock()
	return true
}

// ObservePosition records that watcher w received a position of its order whose at is at. A
// position no newer than the last one w had is a duplicate or out of order, and not sampled.
func (r *Recorder) ObservePosition(w *Watcher, at, now time.Time) {
	ns := at.UnixNano()
	switch {
	case ns == w.lastPos.Load():
		r.posDuplicates.Add(1)
		return
	case ns < w.lastPos.Load():
		r.posOutOfOrder.Add(1)
		return
	}
	w.lastPos.Store(ns)
	if !r.marked.Load() {
		return // the latest position the stream opened with, not one of the load
	}
	r.positions.Add(1)
	r.mu.Lock()
	r.posSamples = append(r.posSamples, PosSample{Order: w.Order, Node: w.Node, At: ns, Received: now.UnixNano()})
	r.mu.Unlock()
}

// Counts returns the counters so far; with samples, also the samples recorded since the last call
// that took them (each sample is handed over once, so the steps of a run can take theirs).
func (r *Recorder) Counts(samples bool) Counts {
	c := Counts{
		Opened: r.opened.Load(), Failed: r.failed.Load(), Delivered: r.delivered.Load(),
		Duplicates: r.duplicates.Load(), OutOfOrder: r.outOfOrder.Load(), Gaps: r.gaps.Load(),
		Coalesced: r.coalesced.Load(), Requests: r.requests.Load(), Reconnects: r.reconnects.Load(),
		BytesRead: r.bytesRead.Load(), Positions: r.positions.Load(), PosDuplicates: r.posDuplicates.Load(),
		PosOutOfOrder: r.posOutOfOrder.Load(),
	}
	if samples {
		r.mu.Lock()
		c.Samples, r.samples = r.samples, nil
		c.PosSamples, r.posSamples = r.posSamples, nil
		oldest := map[int]int64{}
		for _, w := range r.tracked {
			if at, ok := oldest[w.Order]; !ok || w.lastPos.Load() < at {
				oldest[w.Order] = w.lastPos.Load()
			}
		}
		r.mu.Unlock()
		for order, at := range oldest {
			c.Newest = append(c.Newest, OrderPos{order, at})
		}
	}
	return c
}

// Percentile returns the p-th percentile (0..100) of sorted values by nearest rank: the smallest
// value that at least p % of them do not exceed, the ceil(p/100·n)-th; 0 for none. Rounding the
// rank to the nearest instead would put p99 of 70 values on the 69th, which 2 of them exceed.
func Percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	// p·n is exact for whole p and any count a run makes; the margin keeps a fractional p whose
	// product lands a hair above a whole rank from taking the next one.
	rank := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9))
	return sorted[max(0, min(rank-1, len(sorted)-1))]
}
