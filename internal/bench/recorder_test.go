package bench_test

import (
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/bench"
)

func TestRecorderCountsLiveEventsAndLatency(t *testing.T) {
	var r bench.Recorder
	w := &bench.Watcher{Order: 7}
	t0 := time.Unix(1000, 0)
	r.Observe(w, 1, t0, t0.Add(time.Second), true) // the state it opened with: not counted
	r.Mark()
	for seq := int64(2); seq <= 5; seq++ {
		r.Observe(w, seq, t0, t0.Add(time.Duration(seq)*time.Millisecond), true)
	}
	c := r.Counts(true)
	if c.Delivered != 4 || c.Duplicates+c.OutOfOrder+c.Gaps+c.Coalesced != 0 {
		t.Fatalf("counts %+v, want 4 delivered and no errors", c)
	}
	if len(c.Samples) != 4 {
		t.Fatalf("samples %v, want 4", c.Samples)
	}
	for i, s := range c.Samples {
		seq := int64(i + 2)
		want := bench.Sample{Order: 7, Seq: seq, At: t0.UnixNano(), Received: t0.Add(time.Duration(seq) * time.Millisecond).UnixNano()}
		if s != want {
			t.Fatalf("sample %d = %+v, want %+v", i, s, want)
		}
	}
	if w.Last() != 5 {
		t.Fatalf("last = %d, want 5", w.Last())
	}
	// Samples are handed over once, so the steps of a find-max run each take their own.
	if again := r.Counts(true); len(again.Samples) != 0 || again.Delivered != 4 {
		t.Fatalf("second take: %d samples, %d delivered; want 0 and 4", len(again.Samples), again.Delivered)
	}
}

func TestRecorderDetectsDuplicateOutOfOrderAndGap(t *testing.T) {
	at := time.Now()
	for _, tc := range []struct {
		name  string
		seqs  []int64
		every bool
		want  bench.Counts
	}{
		{"in order", []int64{1, 2, 3}, true, bench.Counts{Delivered: 3}},
		{"duplicate", []int64{1, 2, 2, 3}, true, bench.Counts{Delivered: 3, Duplicates: 1}},
		{"out of order", []int64{1, 3, 2}, true, bench.Counts{Delivered: 2, OutOfOrder: 1, Gaps: 1}},
		{"gap", []int64{1, 2, 5}, true, bench.Counts{Delivered: 3, Gaps: 2}},
		{"polling skips versions", []int64{1, 2, 5}, false, bench.Counts{Delivered: 3, Coalesced: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r bench.Recorder
			r.Mark()
			w := &bench.Watcher{}
			for _, s := range tc.seqs {
				r.Observe(w, s, at, at, tc.every)
			}
			got := r.Counts(false)
			if got.Delivered != tc.want.Delivered || got.Duplicates != tc.want.Duplicates ||
				got.OutOfOrder != tc.want.OutOfOrder || got.Gaps != tc.want.Gaps || got.Coalesced != tc.want.Coalesced {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	v := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]int64{50: 5, 90: 9, 99: 10, 100: 10, 0: 1} {
		if got := bench.Percentile(v, p); got != want {
			t.Errorf("p%v = %d, want %d", p, got, want)
		}
	}
	if bench.Percentile(nil, 50) != 0 {
		t.Error("empty: want 0")
	}
}

// TestPercentileIsNearestRank: the p-th percentile of n values is the ceil(p/100·n)-th smallest,
// so no more than (100-p) % of them exceed it.
func TestPercentileIsNearestRank(t *testing.T) {
	for _, tc := range []struct {
		n    int
		p    float64
		want int64 // the rank, 1-based; the values are 1..n
	}{
		{70, 99, 70}, // 69.3 → 70: the 69th would leave 2 of 70 (2.9 %) above it
		{70, 50, 35},
		{70, 100, 70},
		{1060, 99, 1050}, // 1049.4 → 1050
		{1060, 50, 530},
		{1060, 100, 1060},
		{1060, 99.9, 1059}, // 1058.94 → 1059
		{100, 99, 99},      // exactly 99: not 100
		{1, 99, 1},
		{1, 50, 1},
		{1, 100, 1},
		{10, 0, 1},
	} {
		v := make([]int64, tc.n)
		for i := range v {
			v[i] = int64(i + 1)
		}
		if got := bench.Percentile(v, tc.p); got != tc.want {
			t.Errorf("n=%d p%v = %d, want %d", tc.n, tc.p, got, tc.want)
		}
	}
}

// TestResultFailures: every way a run can fail to measure what it promised is named, and a clean
// run has none.
func TestResultFailures(t *testing.T) {
	ok := bench.Result{Transport: "sse", Watchers: 10, Opened: 10, Committed: 5, Expected: 10, Delivered: 10}
	if f := ok.Failures(); len(f) != 0 {
		t.Fatalf("clean run: %v", f)
	}
	for _, tc := range []struct {
		name   string
		change func(*bench.Result)
		want   string
	}{
		{"watchers failed", func(r *bench.Result) { r.Opened, r.Failed = 7, 3 }, "3 of 10 watchers failed to open"},
		{"changes failed", func(r *bench.Result) { r.CommitErrors = 2 }, "2 status changes failed"},
		{"nothing committed", func(r *bench.Result) { r.Committed, r.Expected, r.Delivered = 0, 0, 0 }, "no status change was committed"},
		{"fewer delivered", func(r *bench.Result) { r.Delivered = 7 }, "delivered 7 of 10 expected"},
		{"delivery errors", func(r *bench.Result) { r.Duplicates, r.Gaps = 1, 2 }, "1 duplicate, 0 out-of-order and 2 missing events"},
	} {
		r := ok
		tc.change(&r)
		if f := r.Failures(); len(f) != 1 || f[0] != tc.want {
			t.Errorf("%s: %v, want [%s]", tc.name, f, tc.want)
		}
	}
	rep := bench.Report{Runs: []bench.Result{ok, {Transport: "ws", Watchers: 1}}}
	if f := rep.Failures(); len(f) != 2 || f[0] != "ws: 1 of 1 watchers failed to open" {
		t.Errorf("report failures %v", f)
	}
}
