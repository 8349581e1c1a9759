package check

import (
	"cmp"
	"slices"
	"time"
)

// Lateness. "Customers see each change the moment it happens": an event must reach a watcher
// soon after it could first have, not only in the end. The rules of exactness (no gap, no
// duplicate, the tail) cannot see an event held back until the next event of its order pushed
// it out, or until a reconnect: both end with every event delivered. So every event a watcher
// gets is stamped with when it was due on the connection that carried it (its commit, or the
// connection's opening when it came in a resume's backlog) and how long after that it came, and
// the judge holds those waits to lateBound wherever no fault can explain them.

// lateBound is the longest wait the judge accepts for an event no fault delayed. Healthy nodes
// deliver in milliseconds; the bound leaves room for a loaded 2-core machine running every part
// of the run (the nodes, PostgreSQL, nginx and the checker's thousands of connections), while an
// event held until its order's next change (seconds apart in a run) or until a reconnect (the
// watchers' idle timeout, 5 s) is still caught in most cases.
const lateBound = 3 * time.Second

// shadow is how long after a fault is over (recovered, or lifted when later) events may still
// come late because of it. After PostgreSQL restarts, each node's LISTEN connection comes back
// with a backoff of up to 5 s (postgres.DefaultMaxBackoff), and events committed meanwhile
// through other nodes wait for its catch-up; after the other faults, a second covers a listener's
// first retry (100 ms) and a restarted node's first connections.
func shadow(kind string) time.Duration {
	if kind == FPGRestart {
		return 6 * time.Second
	}
	return time.Second
}

// Arrival is when an event reached a watcher.
type Arrival struct {
	// Due is when the event could first reach the watcher on its connection: its commit time, or
	// the moment the connection's answer came when it was committed before.
	Due time.Time `json:"due,omitzero"`
	// Wait is how long after Due it came.
	Wait time.Duration `json:"wait_ns,omitempty"`
	// Node is the node that sent it, numbered from 1; 0 when it came through nginx (any node).
	Node int `json:"node,omitempty"`
	// Excused is set when a watcher fault (a pause, a vanish) acted on the watcher between Due
	// and the arrival: the wait is that fault's.
	Excused bool `json:"excused,omitempty"`
}

// arrival stamps an event committed at committed that comes now on c, to a watcher with faults f.
func (c *streamConn) arrival(committed time.Time, f *watchFaults) Arrival {
	return c.arrivalAt(committed, time.Now(), f)
}

func (c *streamConn) arrivalAt(committed, now time.Time, f *watchFaults) Arrival {
	if committed.IsZero() {
		return Arrival{} // no commit time: not judged for lateness
	}
	due := committed
	if c.opened.After(due) {
		due = c.opened
	}
	h := f.lastHit.Load()
	return Arrival{Due: due, Wait: now.Sub(due), Node: c.node, Excused: h != nil && h.until >= due.UnixNano()}
}

// Span is a stretch of the run during which events may come late for a reason outside the
// nodes' delivery: a fault, from its start until its shadow after it is over, on one node
// (numbered from 1: a node killed) or on all of them (0: PostgreSQL, every node's listener, or
// a node stopped, whose locks the other nodes' writes wait on; see fault.Node).
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Node int       `json:"node,omitempty"`
}

// disturbed is the spans of the node and PostgreSQL faults of log; watcher faults excuse only
// the watchers they hit, through Arrival.Excused.
func disturbed(log []*fault) []Span {
	var spans []Span
	for _, f := range log {
		if f.Skipped || f.Kind == FWatchPause || f.Kind == FWatchVanish {
			continue
		}
		end := f.Lifted
		switch {
		case end.IsZero(): // never lifted: the run ended in it
			end = f.Start.Add(maxRecovery)
		case f.Recovered < 0:
			end = end.Add(maxRecovery)
		case f.Start.Add(f.Recovered).After(end):
			end = f.Start.Add(f.Recovered)
		}
		spans = append(spans, Span{f.Start, end.Add(shadow(f.Kind)), f.Node})
	}
	return spans
}

// shadows are the spans that may delay an event, by the node that sent it: those of every
// node's faults for one that came through nginx (key 0), and the ones of all nodes beside that
// node's own for one that came from it. Each list is merged and in order; key -1 holds the
// spans of all nodes alone, for a node that had no fault of its own.
type shadows map[int][]Span

func newShadows(spans []Span) shadows {
	sh := shadows{0: mergeSpans(slices.Clone(spans))}
	for _, s := range append(spans, Span{Node: -1}) {
		if _, ok := sh[s.Node]; s.Node == 0 || ok {
			continue
		}
		var of []Span
		for _, t := range spans {
			if t.Node == 0 || t.Node == s.Node {
				of = append(of, t)
			}
		}
		sh[s.Node] = mergeSpans(of)
	}
	return sh
}

// of is the spans that may delay an event sent by node (0: through nginx).
func (sh shadows) of(node int) []Span {
	if spans, ok := sh[node]; ok {
		return spans
	}
	return sh[-1]
}

// mergeSpans sorts spans and joins those that overlap.
func mergeSpans(spans []Span) []Span {
	slices.SortFunc(spans, func(a, b Span) int { return a.From.Compare(b.From) })
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && !s.From.After(out[n-1].To) {
			if s.To.After(out[n-1].To) {
				out[n-1].To = s.To
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// overlaps reports whether [from, to] meets one of spans (merged and in order).
func overlaps(spans []Span, from, to time.Time) bool {
	// The first span that ends at or after from; it overlaps when it starts by to.
	i, _ := slices.BinarySearchFunc(spans, from, func(s Span, t time.Time) int { return cmp.Compare(s.To.UnixNano(), t.UnixNano()) })
	return i < len(spans) && !spans[i].From.After(to)
}

// Delivery is what the judge found of the waits: how many arrivals it held to lateBound, how
// many a fault explained, and the waits of the ones held.
type Delivery struct {
	Judged  int64   `json:"judged"`
	Excused int64   `json:"excused_by_faults"`
	P50MS   float64 `json:"p50_ms"`
	P99MS   float64 `json:"p99_ms"`
	MaxMS   float64 `json:"max_ms"`
	waits   []time.Duration
}

// late holds one arrival to lateBound, unless a fault explains its wait (a shadow on the node that
// sent it, or a watcher fault on its watcher), and counts it; it reports whether the arrival was late.
func (d *Delivery) late(a Arrival, sh shadows) bool {
	if a.Due.IsZero() {
		return false
	}
	if a.Excused || overlaps(sh.of(a.Node), a.Due, a.Due.Add(a.Wait)) {
		d.Excused++
		return false
	}
	d.Judged++
	d.waits = append(d.waits, a.Wait)
	return a.Wait > lateBound
}

// addLate reports a late arrival of what (an event) to who (a watcher).
func (j *Judgement) addLate(a Arrival, order, who, what string) {
	j.add(ALate, order, "%s got %s %s after it was due at %s, with no fault on", who, what,
		a.Wait.Round(time.Millisecond), a.Due.UTC().Format(logTime))
}

// summarize turns the waits held into their percentiles.
func (d *Delivery) summarize() {
	if len(d.waits) == 0 {
		return
	}
	slices.Sort(d.waits)
	ms := func(q float64) float64 {
		return float64(d.waits[int(q*float64(len(d.waits)-1))].Microseconds()) / 1000
	}
	d.P50MS, d.P99MS, d.MaxMS = ms(0.5), ms(0.99), ms(1)
	d.waits = nil
}
