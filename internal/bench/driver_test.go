package bench

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// statusServer answers the driver's single status writes as a server that commits each with the
// seq its expected_version names; commit, when set, runs first with the order's id and that seq,
// and stands for the server's work on it.
func statusServer(t *testing.T, commit func(id string, seq int64)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.SetStatusRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ExpectedVersion == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/orders/"), "/status")
		if commit != nil {
			commit(id, *req.ExpectedVersion+1)
		}
		_ = json.NewEncoder(w).Encode(api.SetStatusResponse{Changed: true,
			Event: ordercast.Event{OrderID: id, Seq: *req.ExpectedVersion + 1, Status: req.Status}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// newTestDriver makes a driver with writers over orders created at version 1, prefix "o-".
func newTestDriver(t *testing.T, urls []string, orders, writers int) *driver {
	t.Helper()
	base := make([]int64, orders)
	for i := range base {
		base[i] = 1
	}
	d, err := newDriver(t.Context(), urls, "token", "o-", base, statusCycle, writers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

// TestWritesByOrder: with --writes-by-order every change of order i goes to node i mod nodes,
// whichever writer sends it; without it, the changes of an order reach more than one node.
func TestWritesByOrder(t *testing.T) {
	for _, byOrder := range []bool{true, false} {
		var (
			mu   sync.Mutex
			seen = map[string]map[int]bool{} // order id → nodes its changes reached
		)
		var urls []string
		for node := range 2 {
			urls = append(urls, statusServer(t, func(id string, _ int64) {
				mu.Lock()
				defer mu.Unlock()
				if seen[id] == nil {
					seen[id] = map[int]bool{}
				}
				seen[id][node] = true
			}))
		}
		const orders = 5
		d := newTestDriver(t, urls, orders, 4)
		if byOrder {
			d.writeByOrder()
		}
		l := d.run(t.Context(), 2000, time.Duration(orders*len(statusCycle))*time.Second/2000)
		if l.committed != int64(orders*len(statusCycle)) || l.errors != 0 {
			t.Fatalf("byOrder %v: %d committed, %d errors; want %d, 0 (%v)", byOrder, l.committed, l.errors, orders*len(statusCycle), d.firstError())
		}
		spread := false
		for i := range orders {
			nodes := seen[OrderID("o-", i)]
			if byOrder && (len(nodes) != 1 || !nodes[i%2]) {
				t.Errorf("order %d's changes reached nodes %v, want only node %d", i, nodes, i%2)
			}
			spread = spread || len(nodes) > 1
		}
		if !byOrder && !spread {
			t.Error("without --writes-by-order every order's changes reached one node: the test cannot tell the two apart")
		}
	}
}

// TestDriverCountsTheWritesDueInAStall: a server that stalls once for 300 ms mid-run, then
// catches up. The writes due during the stall wait for a free writer; their wait is in the
// latency from their due time (not in the one from their start), the largest lateness shows it
// although the writer ended on schedule, and the report warns.
func TestDriverCountsTheWritesDueInAStall(t *testing.T) {
	const (
		rate  = 200.0
		dur   = 1500 * time.Millisecond
		stall = 300 * time.Millisecond
	)
	var (
		mu       sync.Mutex // one change at a time, as one store writer commits them
		stallAt  time.Time
		stalled  bool
		answered = map[[2]int64]time.Time{} // (order, seq) → commit
	)
	url := statusServer(t, func(id string, seq int64) {
		mu.Lock()
		defer mu.Unlock()
		if !stalled && time.Now().After(stallAt) {
			stalled = true
			time.Sleep(stall) // the stall itself: a checkpoint, a pause, a lock held
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(id, "o-"))
		answered[[2]int64{int64(i), seq}] = time.Now()
	})
	const orders = 400 // one change each: no write waits for its order's previous one
	d := newTestDriver(t, []string{url}, orders, 4)
	mu.Lock()
	stallAt = time.Now().Add(600 * time.Millisecond)
	mu.Unlock()
	l := d.run(t.Context(), rate, dur)
	if l.committed != int64(rate*dur.Seconds()) || !stalled {
		t.Fatalf("committed %d, stalled %v; want %v and a stall", l.committed, stalled, rate*dur.Seconds())
	}
	if l.maxLate < stall*2/3 {
		t.Errorf("largest lateness %v, want at least %v: the writes due in the stall waited for it", l.maxLate, stall*2/3)
	}
	// Each change as if a watcher read it the moment it committed.
	mu.Lock()
	var samples []Sample
	for k, at := range answered {
		samples = append(samples, Sample{Order: int(k[0]), Seq: k[1], At: at.UnixNano(), Received: at.UnixNano()})
	}
	mu.Unlock()
	lat := Correlate(d.starts, samples)
	if lat.Uncorrelated+lat.Inconsistent != 0 || len(lat.FromDue) != len(samples) {
		t.Fatalf("%d uncorrelated, %d inconsistent of %d", lat.Uncorrelated, lat.Inconsistent, len(samples))
	}
	slow := func(us []int64) int {
		return len(slices.DeleteFunc(slices.Clone(us), func(v int64) bool { return v < (100 * time.Millisecond).Microseconds() }))
	}
	// About 40 writes were due in the stall's first 200 ms; only those in flight when it began
	// (at most the 4 writers') took 100 ms from their start.
	fromDue, fromStart := slow(lat.FromDue), slow(lat.FromStart)
	if fromDue < 20 || fromStart > 8 {
		t.Errorf("%d changes took 100 ms or more from their due time and %d from their start; want at least 20 and at most 8", fromDue, fromStart)
	}
	slices.Sort(lat.FromDue)
	slices.Sort(lat.FromStart)
	slices.Sort(lat.CommitToReceive)
	var r Result
	r.setLoad(stepOutcome{load: l, latency: lat})
	if r.DueLatencyP99Ms < float64(stall/time.Millisecond)/2 || r.DueLatencyP99Ms < r.StartLatencyP99Ms || r.MaxLateMs < float64(stall/time.Millisecond)*2/3 {
		t.Errorf("due→recv p99 %v ms, start→recv p99 %v ms, late max %v ms", r.DueLatencyP99Ms, r.StartLatencyP99Ms, r.MaxLateMs)
	}
	if !r.ScheduleSlipped || !slices.ContainsFunc(r.notes(), func(n string) bool { return strings.HasPrefix(n, "WARNING: a write started") }) {
		t.Errorf("no warning of the slip: %q", r.notes())
	}
}

// TestDriverAchievedIsWhatTheServerCommitted: offered 500 changes/s with 100 writers, a server
// that commits at most 420 a second is reported at the rate it committed, and the report warns;
// the writes still in flight when the last one is sent do not make up the difference.
func TestDriverAchievedIsWhatTheServerCommitted(t *testing.T) {
	const capacity = 420
	var (
		mu          sync.Mutex
		next        time.Time
		first, last time.Time // the first write's arrival, the last commit
	)
	url := statusServer(t, func(string, int64) {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
		// One commit each 1/420 s on a fixed beat, so that oversleeping does not slow it.
		next = later(next, time.Now().Add(-50*time.Millisecond)).Add(time.Second / capacity)
		time.Sleep(time.Until(next)) // the server's work
		last = time.Now()
	})
	d := newTestDriver(t, []string{url}, 500, 100)
	mu.Lock()
	next = time.Now() // no burst at the start: the beat catches up only on oversleeping
	mu.Unlock()
	l := d.run(t.Context(), 500, time.Second)
	if l.committed != 500 || l.errors != 0 {
		t.Fatalf("committed %d, %d errors; want 500, 0", l.committed, l.errors)
	}
	mu.Lock()
	// What the server did, by its own clock: the bench's span starts no later and ends no
	// earlier, so its figure may be lower but never higher.
	committed := 500 / last.Sub(first).Seconds()
	mu.Unlock()
	if l.achieved > committed*1.01 || l.achieved < committed*0.95 || l.achieved > capacity*1.02 {
		t.Errorf("achieved %.0f/s; the server committed %.0f/s, at most %d/s", l.achieved, committed, capacity)
	}
	var r Result
	r.setLoad(stepOutcome{load: l})
	if !r.RateNotReached || !slices.ContainsFunc(r.notes(), func(n string) bool { return strings.HasPrefix(n, "WARNING: offered 500 changes/s, achieved") }) {
		t.Errorf("no warning that the rate was not reached: %q", r.notes())
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestStepJudgedOnItsOwnChanges: a find-max step is judged on the deliveries of its own
// changes. One of step 1's, late past its settle, arrives during step 2, in which one of step 2's
// own never arrives: the counter adds up to what step 2 owes, but step 2 did not hold, and the
// late one's latency is not among its latencies.
func TestStepJudgedOnItsOwnChanges(t *testing.T) {
	base := []int64{1, 1, 1, 1}
	d := &driver{orders: len(base), base: base, cycle: statusCycle, starts: NewWriteStarts(base, len(statusCycle))}
	t0 := time.Unix(3000, 0)
	// Step 1 made changes 0 to 3 (seq 2 of each order), due and started at 0 to 3 ms; step 2
	// changes 4 to 7 (seq 3), at 1,000 to 1,003 ms.
	for k := range 8 {
		at := t0.Add(time.Duration(k%4)*time.Millisecond + time.Duration(k/4)*time.Second)
		d.starts.Record(k%4, int64(k/4)+2, at, at)
	}
	received := func(order int, seq int64, after time.Duration) Sample {
		due, _, _ := d.starts.Start(order, seq)
		at := due + int64(time.Millisecond)
		return Sample{Order: order, Seq: seq, At: at, Received: at + int64(after)}
	}
	s := stepOutcome{expected: 4, counts: Counts{Delivered: 4, Samples: []Sample{
		received(3, 2, 1500*time.Millisecond), // step 1's, late
		received(0, 3, time.Millisecond), received(1, 3, time.Millisecond), received(2, 3, time.Millisecond),
		// order 3's seq 3 never arrives
	}}}
	s.load = load{first: 4, offered: 4, achieved: 4, committed: 4}
	s.correlate(d)
	st := s.summary(time.Hour)
	if st.Held || st.Delivered != 3 || st.LateFromEarlier != 1 || st.Samples != 3 || st.Why != "delivered 3 of 4" {
		t.Errorf("step: held %v (%s), delivered %d, late from earlier %d, samples %d; want not held, 3, 1, 3", st.Held, st.Why, st.Delivered, st.LateFromEarlier, st.Samples)
	}
	if st.DueP99Ms > 10 {
		t.Errorf("p99 from due %v ms: the earlier step's late delivery is among the step's latencies", st.DueP99Ms)
	}
}
