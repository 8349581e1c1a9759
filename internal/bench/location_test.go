package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/bench"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// newLocationServer runs a real server with a location tracker showing positions from stage from
// (empty: out_for_delivery).
func newLocationServer(t *testing.T, from ordercast.Status) string {
	t.Helper()
	return newServerWith(t, func(srv *server.Server, st *sqlite.Store) {
		tr := location.New(srv.Hub, st)
		tr.From = from
		if err := tr.Open(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		srv.Locations = tr
	})
}

// TestLocationWorkload runs the location workload small against a real server: every post is
// accepted, every watcher reads positions, each matched with the post that sent it, and the
// table says so.
func TestLocationWorkload(t *testing.T) {
	base := newLocationServer(t, "")
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: base, Couriers: 20, LocationEvery: 200 * time.Millisecond, Watchers: 40, PerOrder: 2,
		Duration: time.Second, Transports: []string{bench.TransportSSE}, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) > 0 {
		t.Fatalf("failures: %v", f)
	}
	r := rep.Runs[0]
	l := r.Location
	if l == nil || r.Opened != 40 || r.Committed != 0 || r.Writers != 0 {
		t.Fatalf("run %+v: want 40 watchers, positions and no status change", r)
	}
	if l.AcceptedPosts == 0 || l.AcceptedPosts != l.Planned-l.Unsent || l.Refused+l.Failed+l.NoOrder != 0 {
		t.Errorf("planned %d, unsent %d, accepted %d, refused %d, failed %d, no order %d: want every post accepted and shown",
			l.Planned, l.Unsent, l.AcceptedPosts, l.Refused, l.Failed, l.NoOrder)
	}
	// Each accepted position is owed to the 2 watchers of its order; the cap may conflate some.
	if l.Owed != 2*l.AcceptedPosts || l.Delivered == 0 || l.Delivered > l.Owed {
		t.Errorf("owed %d for %d accepted, delivered %d", l.Owed, l.AcceptedPosts, l.Delivered)
	}
	if l.Remote != 0 || l.OutOfOrder+l.Uncorrelated+l.Inconsistent != 0 {
		t.Errorf("remote %d on one node; out of order %d, uncorrelated %d, inconsistent %d", l.Remote, l.OutOfOrder, l.Uncorrelated, l.Inconsistent)
	}
	if len(l.PostToScreenCDF) != 101 || l.PostToScreenP50Ms <= 0 || l.PostToScreenMaxMs < l.PostToScreenP99Ms {
		t.Errorf("post→screen p50 %v, p99 %v, max %v, CDF of %d", l.PostToScreenP50Ms, l.PostToScreenP99Ms, l.PostToScreenMaxMs, len(l.PostToScreenCDF))
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"20 couriers posting every 200ms to 40 SSE watchers", "each position on its own POST /v1/couriers/{cid}/location", "requests", "post→screen ms p50/p90/p99/max", "accepted/s", "remote"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "status changes beside") {
		t.Errorf("a run without --rate shows a status table:\n%s", out.String())
	}
}

// TestLocationWorkloadWithStatus runs both workloads on the same orders: the status changes
// (preparing, ready, out_for_delivery, on a server showing positions from confirmed) are each
// delivered once with their latency, and the positions keep reaching the same watchers.
func TestLocationWorkloadWithStatus(t *testing.T) {
	base := newLocationServer(t, ordercast.StatusConfirmed)
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: base, Couriers: 20, LocationEvery: 200 * time.Millisecond, Watchers: 20, WithStatus: true, Rate: 20,
		Duration: time.Second, Transports: []string{bench.TransportSSE}, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) > 0 {
		t.Fatalf("failures: %v", f)
	}
	r := rep.Runs[0]
	if r.Committed != 20 || r.Delivered != 20 || r.Errors() != 0 || r.StepsPerOrder != 3 {
		t.Errorf("committed %d, delivered %d, errors %d, steps per order %d; want 20, 20, 0, 3", r.Committed, r.Delivered, r.Errors(), r.StepsPerOrder)
	}
	checkLoadFigures(t, r)
	if l := r.Location; l == nil || l.Delivered == 0 || l.NoOrder != 0 || l.ShownFrom != ordercast.StatusConfirmed {
		t.Fatalf("location %+v: want positions delivered beside the changes, shown from confirmed", l)
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"with 20 status changes/s on the same orders", "post→screen", "status changes beside the positions", "start→recv ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCorrelatePositions joins positions with their posts by courier and at: the latency runs from
// the post's start, a watcher on another node than the post counts as remote, and a position no
// post made, or read before its post started, is counted apart.
func TestCorrelatePositions(t *testing.T) {
	t0 := time.Unix(2000, 0).UnixNano()
	ms := int64(time.Millisecond)
	posts := []bench.Post{
		{Courier: 1, At: t0, Start: t0 + 3000, Node: 0},
		{Courier: 1, At: t0 + 1000*ms, Start: t0 + 1000*ms, Node: 0},
		{Courier: 2, At: t0, Start: t0, Node: 1},
	}
	samples := []bench.PosSample{
		{Order: 1, Node: 0, At: t0, Received: t0 + 3000 + 4*ms},               // local, 4 ms after its start
		{Order: 1, Node: 2, At: t0 + 1000*ms, Received: t0 + 1000*ms + 60*ms}, // remote, 60 ms
		{Order: 2, Node: 0, At: t0, Received: t0 + 7*ms},                      // remote, 7 ms
		{Order: 2, Node: 1, At: t0 + 1, Received: t0 + 7*ms},                  // an at no post had
		{Order: 3, Node: 0, At: t0, Received: t0 + 7*ms},                      // a courier that did not post
		{Order: 1, Node: 0, At: t0 + 1000*ms, Received: t0 + 1000*ms - 1*ms},  // before its post started
	}
	l := bench.CorrelatePositions(posts, samples)
	if want := []int64{4000, 60000, 7000}; !slices.Equal(l.FromStart, want) {
		t.Errorf("from start %v µs, want %v", l.FromStart, want)
	}
	if l.Remote != 2 || l.Uncorrelated != 2 || l.Inconsistent != 1 {
		t.Errorf("remote %d, uncorrelated %d, inconsistent %d; want 2, 2, 1", l.Remote, l.Uncorrelated, l.Inconsistent)
	}
}

// TestPostNodeSpreadsPostsAwayFromWatchers: with one watcher per order every courier posts to a
// node its order's watcher is not on, and the posts spread evenly over the nodes.
func TestPostNodeSpreadsPostsAwayFromWatchers(t *testing.T) {
	perNode := make([]int, 3)
	for i := range 30 {
		n := bench.PostNode(i, 1, 3)
		if n == i%3 {
			t.Errorf("courier %d posts to node %d, where its order's watcher is", i, n)
		}
		perNode[n]++
	}
	if !slices.Equal(perNode, []int{10, 10, 10}) {
		t.Errorf("posts per node %v, want 10 each", perNode)
	}
	if n := bench.PostNode(5, 1, 1); n != 0 {
		t.Errorf("one node: courier posts to node %d", n)
	}
}

// TestPositionsCrossProcesses: what a worker sends (its posts, its watchers' position samples)
// reads back unchanged, and groups' post counts add up, their timings merging into one schedule:
// the accepted rate runs from the first group's first due time to the last answer of any.
func TestPositionsCrossProcesses(t *testing.T) {
	a := bench.PostCounts{Planned: 10, Accepted: 8, Refused: 1, Failed: 1, FirstError: "first", Offered: 100,
		Timing: bench.Timing{FirstDue: 1e9, End: 11e9, LastDone: 11.5e9, Behind: 5, MaxLate: 7},
		Posts:  []bench.Post{{Courier: 3, At: 1_000_000, Due: 999_000, Start: 1_000_123, Node: 2}}}
	c := bench.Counts{Positions: 1, PosDuplicates: 2, PosOutOfOrder: 3, PosSamples: []bench.PosSample{{Order: 3, Node: 1, At: 1_000_000, Received: 2_000_000}}}
	var back struct {
		P bench.PostCounts
		C bench.Counts
	}
	b, err := json.Marshal(struct {
		P bench.PostCounts
		C bench.Counts
	}{a, c})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.P.Posts, a.Posts) || back.P.Accepted != 8 || !slices.Equal(back.C.PosSamples, c.PosSamples) || back.C.PosOutOfOrder != 3 || back.P.Timing != a.Timing {
		t.Fatalf("round trip: %+v / %+v", back.P, back.C)
	}
	sum := a
	sum.Posts = slices.Clone(a.Posts)
	sum.Add(bench.PostCounts{Planned: 10, Accepted: 10, Offered: 100, FirstError: "second", Posts: a.Posts,
		Timing: bench.Timing{FirstDue: 1.5e9, End: 11.5e9, LastDone: 12e9, Behind: 2, MaxLate: 20}})
	sum.Add(bench.PostCounts{Offered: 0}) // a group with no courier sent nothing
	want := bench.Timing{FirstDue: 1e9, End: 11.5e9, LastDone: 12e9, Behind: 5, MaxLate: 20}
	if sum.Planned != 20 || sum.Accepted != 18 || sum.Sent() != 20 || sum.Offered != 200 || sum.Timing != want || sum.FirstError != "first" || len(sum.Posts) != 2 {
		t.Errorf("sum %+v", sum)
	}
	if r := sum.Timing.Rate(sum.Accepted); r != 18/11.0 {
		t.Errorf("accepted %v/s, want 18 over the 11 s from the first due time to the last answer", r)
	}
}

// TestRecorderPositions: a watcher's positions count once each after the mark; one it already had
// is a duplicate and an older one out of order, neither sampled.
func TestRecorderPositions(t *testing.T) {
	var r bench.Recorder
	w := &bench.Watcher{Order: 4, Node: 1}
	t0 := time.Unix(3000, 0)
	r.ObservePosition(w, t0, t0) // the latest the stream opened with: not the load's
	r.Mark()
	r.ObservePosition(w, t0.Add(time.Second), t0.Add(time.Second+time.Millisecond))
	r.ObservePosition(w, t0.Add(time.Second), t0.Add(2*time.Second))
	r.ObservePosition(w, t0, t0.Add(2*time.Second))
	c := r.Counts(true)
	if c.Positions != 1 || c.PosDuplicates != 1 || c.PosOutOfOrder != 1 {
		t.Fatalf("counts %+v, want 1 position, 1 duplicate, 1 out of order", c)
	}
	want := bench.PosSample{Order: 4, Node: 1, At: t0.Add(time.Second).UnixNano(), Received: t0.Add(time.Second + time.Millisecond).UnixNano()}
	if !slices.Equal(c.PosSamples, []bench.PosSample{want}) {
		t.Errorf("samples %+v, want %+v", c.PosSamples, want)
	}
	if again := r.Counts(true); len(again.PosSamples) != 0 {
		t.Errorf("samples handed over twice: %+v", again.PosSamples)
	}
}

// TestLocationReportWarnsAndFails: a location run that accepted under 98 % of what it offered says
// so under its table; positions no post made, or older than one the watcher had, fail the run.
func TestLocationReportWarnsAndFails(t *testing.T) {
	l := &bench.LocationResult{Couriers: 100, Offered: 1000, Accepted: 900, AcceptedPosts: 9000, Owed: 9000, Delivered: 9000,
		Refused: 50, FirstError: "bench-courier-7: answered 429", BehindSeconds: 1.5, PostToScreenCDF: make([]float64, 101)}
	rep := &bench.Report{Couriers: 100, LocationEvery: "100ms", Watchers: 100, PerOrder: 1, Nodes: 1, Duration: "10s",
		Runs: []bench.Result{{Transport: "sse", Watchers: 100, Opened: 100, Holding: bench.HoldingPoller, Location: l}}}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WARNING: offered 1000 positions/s, accepted 900/s (90 %)", "50 positions refused (429)", "answered 429"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if f := rep.Failures(); len(f) != 0 {
		t.Errorf("failures %v: a shortfall is a warning, not a failure", f)
	}
	l.Accepted, l.Uncorrelated, l.OutOfOrder = 1000, 1, 2
	out.Reset()
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "WARNING") {
		t.Errorf("warning without a shortfall:\n%s", out.String())
	}
	if f := rep.Failures(); len(f) != 1 || !strings.Contains(f[0], "2 positions older than one the watcher had, 1 matching no accepted post") {
		t.Errorf("failures %v", f)
	}
	l.Accepted = 900
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	checkWellFormed(t, html.Bytes())
	for _, want := range []string{"Couriers' positions", "post→screen ms p50/p90/p99/max", "WARNING: offered 1000 positions/s"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	if strings.Contains(html.String(), "start→recv ms p50/p90/p99/max</th>") {
		t.Error("HTML report of a run without --rate has a status table")
	}
}

// TestPositionLatenciesSayWhatTheyLeaveOut: when watchers read fewer positions than were owed (the
// cap held some back and newer ones replaced them), the notes say the latencies are over those
// read only, whose tails therefore read short; when every owed position was read, no such note.
func TestPositionLatenciesSayWhatTheyLeaveOut(t *testing.T) {
	covers := func(l *bench.LocationResult) bool {
		return slices.ContainsFunc(l.Notes(), func(n string) bool { return strings.Contains(n, "positions watchers read of the") })
	}
	if l := (&bench.LocationResult{Owed: 100, Delivered: 80, Offered: 10, Accepted: 10}); !covers(l) {
		t.Errorf("80 of 100 owed read: notes %q, want one saying the latencies cover the 80", l.Notes())
	}
	if l := (&bench.LocationResult{Owed: 100, Delivered: 100, Offered: 10, Accepted: 10}); covers(l) {
		t.Errorf("every owed position read: notes %q, want none about what is left out", l.Notes())
	}
}
