package bench

import (
	"slices"
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
	// LatencyMicros holds commit-to-receive latencies of delivered changes, in microseconds; only
	// final results carry them.
	LatencyMicros []int64 `json:"latency_us,omitempty"`
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
	c.LatencyMicros = append(c.LatencyMicros, o.LatencyMicros...)
}

// Sub returns c minus o for the counters (latencies are not subtracted): the change over a window.
func (c Counts) Sub(o Counts) Counts {
	return Counts{
		Opened: c.Opened - o.Opened, Failed: c.Failed - o.Failed, Delivered: c.Delivered - o.Delivered,
		Duplicates: c.Duplicates - o.Duplicates, OutOfOrder: c.OutOfOrder - o.OutOfOrder,
		Gaps: c.Gaps - o.Gaps, Coalesced: c.Coalesced - o.Coalesced, Requests: c.Requests - o.Requests,
		Reconnects: c.Reconnects - o.Reconnects, BytesRead: c.BytesRead - o.BytesRead,
		LatencyMicros: c.LatencyMicros,
	}
}

// Recorder does the accounting of one process's watchers: it checks every event a watcher
// receives against the last one it had, and measures the latency of the live ones. It is safe
// for concurrent use by all watchers.
type Recorder struct {
	opened, failed, requests, reconnects, bytesRead    atomic.Int64
	delivered, duplicates, outOfOrder, gaps, coalesced atomic.Int64
	marked                                             atomic.Bool

	mu        sync.Mutex
	latencies []int64
}

// Watcher is one watcher's place in its order's history.
type Watcher struct {
	last int64
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
	us := now.Sub(at).Microseconds()
	r.mu.Lock()
	r.latencies = append(r.latencies, us)
	r.mu.Unlock()
	return true
}

// Counts returns the counters so far; with latencies, a copy of the latencies too.
func (r *Recorder) Counts(latencies bool) Counts {
	c := Counts{
		Opened: r.opened.Load(), Failed: r.failed.Load(), Delivered: r.delivered.Load(),
		Duplicates: r.duplicates.Load(), OutOfOrder: r.outOfOrder.Load(), Gaps: r.gaps.Load(),
		Coalesced: r.coalesced.Load(), Requests: r.requests.Load(), Reconnects: r.reconnects.Load(),
		BytesRead: r.bytesRead.Load(),
	}
	if latencies {
		r.mu.Lock()
		c.LatencyMicros = slices.Clone(r.latencies)
		r.mu.Unlock()
	}
	return c
}

// Percentile returns the p-th percentile (0..100) of sorted values, nearest rank; 0 for none.
func Percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
