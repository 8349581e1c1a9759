package bench_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/bench"
)

// TestCorrelateMatchesEventsWithTheirWrites: each delivered change is matched, by order and seq,
// with the due time and start of the write that made it, even when the event was read before the
// write's answer came back; the latency from the start includes the wait for the store, the one
// from the due time also the write's wait for a writer, and the part from the commit is reported
// beside them.
func TestCorrelateMatchesEventsWithTheirWrites(t *testing.T) {
	t0 := time.Unix(2000, 0)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	// Two orders created at version 1 and 3 (an order that existed already), four changes each.
	starts := bench.NewWriteStarts([]int64{1, 3}, 4)
	for _, w := range []struct {
		order      int
		seq        int64
		due, start time.Duration
		ok         bool
	}{
		{0, 2, 0, 0, true},
		{0, 3, 2 * time.Millisecond, 10 * time.Millisecond, true}, // sent 8 ms late
		{1, 4, 1 * time.Millisecond, 1 * time.Millisecond, true},
		{1, 3, 0, 0, false}, // its created version, not a change
		{0, 6, 0, 0, false}, // a fifth change does not fit
		{2, 2, 0, 0, false}, // no such order
	} {
		if got := starts.Record(w.order, w.seq, t0.Add(w.due), t0.Add(w.start)); got != w.ok {
			t.Errorf("Record(%d, %d) = %v, want %v", w.order, w.seq, got, w.ok)
		}
	}
	samples := []bench.Sample{
		// Committed 2 ms after its write started, read 1 ms later.
		{Order: 0, Seq: 2, At: at(2 * time.Millisecond), Received: at(3 * time.Millisecond)},
		// Read before the write's answer could have arrived: only the key matters.
		{Order: 0, Seq: 3, At: at(15 * time.Millisecond), Received: at(15*time.Millisecond + 300*time.Microsecond)},
		{Order: 1, Seq: 4, At: at(9 * time.Millisecond), Received: at(10 * time.Millisecond)},
		// A seq no write made, and an order no write went to.
		{Order: 0, Seq: 4, At: at(20 * time.Millisecond), Received: at(21 * time.Millisecond)},
		{Order: 5, Seq: 2, At: at(20 * time.Millisecond), Received: at(21 * time.Millisecond)},
		// Committed before its write started: a wrong match, never a latency.
		{Order: 1, Seq: 4, At: at(0), Received: at(10 * time.Millisecond)},
	}
	l := bench.Correlate(starts, samples)
	wantDue := []int64{3000, 13300, 9000}
	wantStart := []int64{3000, 5300, 9000}
	wantCommit := []int64{1000, 300, 1000}
	if len(l.FromDue) != 3 || len(l.FromStart) != 3 || len(l.CommitToReceive) != 3 {
		t.Fatalf("latencies %v / %v / %v, want %v / %v / %v", l.FromDue, l.FromStart, l.CommitToReceive, wantDue, wantStart, wantCommit)
	}
	for i := range wantStart {
		if l.FromDue[i] != wantDue[i] || l.FromStart[i] != wantStart[i] || l.CommitToReceive[i] != wantCommit[i] {
			t.Fatalf("latencies %v / %v / %v, want %v / %v / %v", l.FromDue, l.FromStart, l.CommitToReceive, wantDue, wantStart, wantCommit)
		}
		if l.FromStart[i] < l.CommitToReceive[i] {
			t.Errorf("change %d: %d µs from its start, less than %d µs from its commit", i, l.FromStart[i], l.CommitToReceive[i])
		}
	}
	if l.Uncorrelated != 2 || l.Inconsistent != 1 {
		t.Fatalf("uncorrelated %d, inconsistent %d; want 2 and 1", l.Uncorrelated, l.Inconsistent)
	}
}

// TestSampleTravelsAsAnArray: a worker sends every sample to the parent, so each is four numbers.
func TestSampleTravelsAsAnArray(t *testing.T) {
	s := bench.Sample{Order: 12, Seq: 3, At: 1764547200123456000, Received: 1764547200124456789}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[12,3,1764547200123456000,1764547200124456789]`; string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	var back bench.Sample
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Fatalf("decoded %+v, %v; want %+v", back, err, s)
	}
}
