package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/bench"
	"github.com/ordercast/ordercast/internal/pgtest"
)

// TestBenchWithChildServerAndWorkers runs the real binary's bench end to end at small scale: it
// starts its own server child, spreads the watchers over two bench-worker processes, and prints
// JSON whose accounting adds up. It runs where a node's environment moves /metrics off the main
// port: the child keeps them on its own, where the bench reads the server's latency.
func TestBenchWithChildServerAndWorkers(t *testing.T) {
	t.Setenv("ORDERCAST_METRICS_ADDR", "127.0.0.1:0") // the bench's child inherits it
	rep, stderr := runBench(t, "--watchers", "300", "--per-order", "3", "--rate", "50", "--duration", "1s", "--workers", "2")
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(rep.Runs))
	}
	r := rep.Runs[0]
	if r.Transport != "sse" || r.Workers != 2 || r.Opened != 300 || r.Failed != 0 {
		t.Fatalf("run %s with %d workers: opened %d failed %d; want sse, 2, 300, 0", r.Transport, r.Workers, r.Opened, r.Failed)
	}
	if r.Committed != 50 || r.Expected != 150 || r.Delivered != 150 || r.Errors() != 0 {
		t.Fatalf("committed %d, expected %d, delivered %d, errors %d; want 50, 150, 150, 0", r.Committed, r.Expected, r.Delivered, r.Errors())
	}
	if r.Holding != bench.HoldingPoller && r.Holding != bench.HoldingGoroutine {
		t.Errorf("holding %q, want poller or goroutine", r.Holding)
	}
	// CPU in clock ticks, of which so small a load may take none: see the floor's test below.
	if r.RSSAfter <= 0 || r.CPUSeconds < 0 || r.CPUPerChangeMicros < 0 {
		t.Fatalf("server RSS %d, CPU %v (%v µs per change): not read from /proc", r.RSSAfter, r.CPUSeconds, r.CPUPerChangeMicros)
	}
	if r.ServerFlushP99Ms <= 0 {
		t.Errorf("server commit→flush p99 %v ms: the child's /metrics were not read", r.ServerFlushP99Ms)
	}
	// The machine's load counts the bench's own processes (this one and the two workers), and
	// never less than the processes it knows.
	if l := r.Load; l.BenchCores <= 0 || l.BusyCores < l.ServerCores+l.BenchCores-1e-9 {
		t.Errorf("machine load %+v: want the bench's cores, and busy at least the server's and the bench's", l)
	}
	// The watchers ran in two worker processes: their samples crossed to this one and each was
	// matched with the write that made it.
	checkLoadFigures(t, r, 50)
	if !strings.Contains(stderr, "sse") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}
}

// runBench runs the real binary's bench with args and --json, and returns its report and what
// it wrote on stderr.
func runBench(t *testing.T, args ...string) (bench.Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary(t), append([]string{"bench", "--json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	return rep, stderr.String()
}

// TestBenchOnPostgresReadsItsCPU: on a PostgreSQL of this machine the bench reads the CPU of
// PostgreSQL's processes beside the server's, in the JSON and in the table's notes.
func TestBenchOnPostgresReadsItsCPU(t *testing.T) {
	rep, _ := runBench(t, "--db", pgtest.NewDatabase(t), "--watchers", "20", "--rate", "20", "--duration", "1s", "--workers", "0")
	r := rep.Runs[0]
	if r.Committed != 20 || r.DBCPU == nil || r.DBCPU.Unmeasured != "" || r.DBCPU.Seconds < 0 {
		t.Fatalf("committed %d, database CPU %+v: want 20 and PostgreSQL's CPU read", r.Committed, r.DBCPU)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "database CPU µs/change: ") {
		t.Errorf("the table does not give the database's CPU:\n%s", table.String())
	}
}

// checkLoadFigures checks a run's account of its writes: the offered rate, an achieved rate not
// above it, every delivered change matched with its write, and latencies from the write's due
// time never below those from its start, nor those below the commit-to-receive part, at every
// percentile. Speed is not asserted.
func checkLoadFigures(t *testing.T, r bench.Result, offered float64) {
	t.Helper()
	if r.OfferedRate != offered || r.AchievedRate <= 0 || r.AchievedRate > offered*1.001 || r.BehindSeconds < 0 || r.Writers < 1 {
		t.Errorf("offered %v/s (want %v), achieved %v/s, %v s behind, %d writers", r.OfferedRate, offered, r.AchievedRate, r.BehindSeconds, r.Writers)
	}
	if r.Uncorrelated != 0 || r.Inconsistent != 0 {
		t.Errorf("%d delivered changes matched no write, %d committed before their write started", r.Uncorrelated, r.Inconsistent)
	}
	if len(r.DueLatencyCDF) != 101 || len(r.StartLatencyCDF) != 101 || len(r.LatencyCDF) != 101 {
		t.Fatalf("CDFs of %d, %d and %d points, want 101", len(r.DueLatencyCDF), len(r.StartLatencyCDF), len(r.LatencyCDF))
	}
	for p := range r.LatencyCDF {
		if r.DueLatencyCDF[p] < r.StartLatencyCDF[p] || r.StartLatencyCDF[p] < r.LatencyCDF[p] {
			t.Errorf("p%d from due %v ms, from write start %v ms, from commit %v ms", p, r.DueLatencyCDF[p], r.StartLatencyCDF[p], r.LatencyCDF[p])
		}
	}
}

// TestBenchFloorRunsTheSameWorkload runs --floor: after ordercast's row, the same workload on the
// same kind of watchers against the plain push server (bench-floor, a child of its own), whose
// row adds up as ordercast's does and whose CPU and memory are read from its process.
func TestBenchFloorRunsTheSameWorkload(t *testing.T) {
	rep, _ := runBench(t, "--watchers", "200", "--rate", "50", "--duration", "1s", "--workers", "0", "--floor")
	if len(rep.Runs) != 2 || rep.Runs[0].Transport != bench.TransportSSE || rep.Runs[1].Transport != bench.TransportFloor {
		t.Fatalf("%d runs %+v, want sse then floor", len(rep.Runs), rep.Runs)
	}
	for _, r := range rep.Runs {
		if r.Opened != 200 || r.Failed != 0 || r.Committed != 50 || r.Expected != 50 || r.Delivered != 50 || r.Errors() != 0 {
			t.Fatalf("%s: opened %d failed %d, committed %d, expected %d, delivered %d, errors %d; want 200, 0, 50, 50, 50, 0",
				r.Transport, r.Opened, r.Failed, r.Committed, r.Expected, r.Delivered, r.Errors())
		}
		// Its CPU is read from /proc in clock ticks (10 ms), of which so small a load may take
		// none on a busy machine: 0 is a reading, a negative figure is not (TestPostgresCPUIsRead
		// checks that the reading grows with the work).
		if r.RSSAfter <= 0 || r.CPUPerChangeMicros < 0 {
			t.Errorf("%s: server RSS %d, CPU %v µs per change: not read from /proc", r.Transport, r.RSSAfter, r.CPUPerChangeMicros)
		}
		checkLoadFigures(t, r, 50)
	}
	if f := rep.Runs[1]; f.ServerFlushP99Ms != 0 || f.Holding != bench.HoldingGoroutine {
		t.Errorf("floor: server flush p99 %v ms (it has no /metrics), holding %q (net/http's goroutines)", f.ServerFlushP99Ms, f.Holding)
	}
}

// TestBenchFloorCarriesPositionsToo runs --floor with the location workload, batched, beside
// status changes. ordercast conflates and caps positions, so a watcher may miss one; the floor
// writes every position to every watcher.
func TestBenchFloorCarriesPositionsToo(t *testing.T) {
	rep, _ := runBench(t, "--couriers", "100", "--watchers", "100", "--location-every", "1s", "--duration", "2s",
		"--post-batch", "50", "--rate", "20", "--workers", "0", "--floor")
	if len(rep.Runs) != 2 || rep.Runs[1].Transport != bench.TransportFloor {
		t.Fatalf("%d runs %+v, want ordercast then floor", len(rep.Runs), rep.Runs)
	}
	for _, r := range rep.Runs {
		l := r.Location
		if l == nil || l.AcceptedPosts == 0 || l.Owed != l.AcceptedPosts || l.Delivered == 0 || l.Delivered > l.Owed || l.OutOfOrder != 0 {
			t.Fatalf("%s: location %+v", r.Transport, l)
		}
		if r.Committed == 0 || r.Delivered != r.Expected || r.Errors() != 0 {
			t.Errorf("%s: status committed %d, delivered %d of %d, errors %d", r.Transport, r.Committed, r.Delivered, r.Expected, r.Errors())
		}
	}
	if l := rep.Runs[1].Location; l.Delivered != l.Owed {
		t.Errorf("floor delivered %d of %d positions, want every one", l.Delivered, l.Owed)
	}
}

// TestBenchFindMaxWithChildServer runs --find-max against a child server on a configuration so
// small that the orders run out after two steps (15 orders take 60 changes: 20 at 20/s, then 40
// at 40/s, or 10 at 10/s if the first did not hold), with a bound no step can pass: the search
// ends by itself, and its steps, JSON and table say what each rate did.
func TestBenchFindMaxWithChildServer(t *testing.T) {
	rep, _ := runBench(t, "--watchers", "15", "--rate", "20", "--workers", "0", "--find-max", "--p99-bound", "1h", "--step", "1s")
	if !rep.FindMax || rep.P99BoundMs != 3.6e6 || len(rep.Runs) != 1 || rep.Runs[0].FindMax == nil {
		t.Fatalf("report %+v, want one find-max run", rep)
	}
	r := rep.Runs[0]
	fm := r.FindMax
	// Two or three steps; only a machine that could not reach 20/s makes the search go down and
	// bisect in smaller steps, up to five.
	most := 3
	if len(fm.Steps) > 0 && !fm.Steps[0].Held {
		most = 5
	}
	if len(fm.Steps) < 2 || len(fm.Steps) > most || !strings.Contains(fm.Stopped, "ran out of orders") {
		t.Fatalf("%d steps, stopped %q; want 2 to %d, out of orders\n%+v", len(fm.Steps), fm.Stopped, most, fm.Steps)
	}
	best, committed, allHeld := 0.0, int64(0), true
	for i, s := range fm.Steps {
		if s.Committed == 0 || s.Delivered != s.Expected || s.DueP99Ms < s.P99Ms || s.P99Ms < s.CommitP99Ms || s.Achieved > s.Offered*1.001 {
			t.Errorf("step %d: %+v", i+1, s)
		}
		// Doubling while every step held; halving after a first step that did not.
		if prev := fm.Steps[max(0, i-1)]; i > 0 && (allHeld && s.Offered != 2*prev.Offered || i == 1 && !prev.Held && s.Offered != prev.Offered/2) {
			t.Errorf("step %d at %v/s after %v/s (held %v)", i+1, s.Offered, prev.Offered, prev.Held)
		}
		allHeld = allHeld && s.Held
		if s.Held {
			best = max(best, s.Offered)
		}
		committed += s.Committed
	}
	if fm.MaxRate != best || r.Committed != committed || r.Committed > 60 {
		t.Errorf("max rate %v, want %v; committed %d (steps %d, at most 60)", fm.MaxRate, best, r.Committed, committed)
	}
	if f := r.Failures(); len(f) > 0 {
		t.Errorf("failures: %v", f)
	}
}

// TestBenchFailsWhenWatchersCannotOpen runs the bench against a node whose orders need a token to
// watch: every watcher is refused, so the run measured nothing and the command must fail, saying
// why, after printing its table (issue 16 item 8).
func TestBenchFailsWhenWatchersCannotOpen(t *testing.T) {
	n := startNode(t, filepath.Join(t.TempDir(), "bench.db"), "ORDERCAST_PUBLIC_TRACKING=false")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary(t), "bench", "--url", n.url, "--token", adminToken(),
		"--watchers", "4", "--rate", "4", "--duration", "1s", "--workers", "0")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("bench = %v, want a non-zero exit\n%s", err, stderr.String())
	}
	if want := "bench run failed: sse: 4 of 4 watchers failed to open"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
	for _, want := range []string{"holding", "clients", "RSS MiB before→after", "offered/s", "achieved/s", "start→recv", "sse"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
}

// runLocationBench runs the real binary's location workload with args and returns its run.
func runLocationBench(t *testing.T, args ...string) bench.Result {
	t.Helper()
	return runLocationReport(t, args...).Runs[0]
}

// runLocationReport is runLocationBench's whole report.
func runLocationReport(t *testing.T, args ...string) bench.Report {
	t.Helper()
	rep, _ := runBench(t, args...)
	if len(rep.Runs) != 1 || rep.Runs[0].Location == nil {
		t.Fatalf("report %+v, want one location run", rep)
	}
	return rep
}

// TestBenchLocationWithWorkers runs the location workload end to end at small scale: the watchers
// and the couriers are spread over two bench-worker processes, and the positions those watchers
// read crossed back to this process and were each matched with the post that sent it.
func TestBenchLocationWithWorkers(t *testing.T) {
	r := runLocationBench(t, "--couriers", "200", "--watchers", "200", "--location-every", "1s", "--duration", "3s", "--workers", "2")
	l := r.Location
	if r.Workers != 2 || r.Opened != 200 || r.Failed != 0 || r.Committed != 0 {
		t.Fatalf("%d workers, opened %d, failed %d, committed %d; want 2, 200, 0 and no status change", r.Workers, r.Opened, r.Failed, r.Committed)
	}
	// 200 couriers for 3 s at one post a second each.
	if l.Couriers != 200 || l.Offered != 200 || l.Planned != 600 || l.AcceptedPosts == 0 || l.Refused+l.Failed+l.NoOrder != 0 {
		t.Errorf("couriers %d, offered %v/s, planned %d, accepted %d, refused %d, failed %d, no order %d",
			l.Couriers, l.Offered, l.Planned, l.AcceptedPosts, l.Refused, l.Failed, l.NoOrder)
	}
	if l.Owed != l.AcceptedPosts || l.Delivered == 0 || l.Delivered > l.Owed || len(l.PostToScreenCDF) != 101 {
		t.Errorf("owed %d, delivered %d, CDF of %d points", l.Owed, l.Delivered, len(l.PostToScreenCDF))
	}
	if l.Remote != 0 || l.OutOfOrder+l.Uncorrelated+l.Inconsistent != 0 || l.CPUPerAcceptedMicros <= 0 || l.RSSAfterLoad <= 0 {
		t.Errorf("remote %d on one node, out of order %d, uncorrelated %d, inconsistent %d, CPU %v µs, RSS %d",
			l.Remote, l.OutOfOrder, l.Uncorrelated, l.Inconsistent, l.CPUPerAcceptedMicros, l.RSSAfterLoad)
	}
}

// TestBenchLocationBatched runs the location workload with --post-batch: the posters send the
// positions due in each tick through POST /v1/locations, many a request, with the bench's system
// token, and the watchers in the workers read them, each matched with the request that carried
// it.
func TestBenchLocationBatched(t *testing.T) {
	rep := runLocationReport(t, "--couriers", "200", "--watchers", "200", "--location-every", "1s", "--duration", "3s", "--workers", "2", "--post-batch", "100")
	r := rep.Runs[0]
	l := r.Location
	if rep.PostBatch != 100 || r.Workers != 2 || r.Opened != 200 || r.Failed != 0 {
		t.Fatalf("post batch %d, %d workers, opened %d, failed %d; want 100, 2, 200, 0", rep.PostBatch, r.Workers, r.Opened, r.Failed)
	}
	if l.Planned != 600 || l.AcceptedPosts == 0 || l.Refused+l.Failed+l.NoOrder != 0 {
		t.Errorf("planned %d, accepted %d, refused %d, failed %d (%s), no order %d", l.Planned, l.AcceptedPosts, l.Refused, l.Failed, l.FirstError, l.NoOrder)
	}
	// Each worker posts for 100 couriers a second in ticks of 100 ms: about ten a request.
	if l.Requests == 0 || l.Requests*4 > l.AcceptedPosts {
		t.Errorf("%d requests carried %d positions; want several positions a request", l.Requests, l.AcceptedPosts)
	}
	if l.Owed != l.AcceptedPosts || l.Delivered == 0 || l.Delivered > l.Owed {
		t.Errorf("owed %d, delivered %d", l.Owed, l.Delivered)
	}
	if l.OutOfOrder+l.Uncorrelated+l.Inconsistent != 0 || l.CPUPerAcceptedMicros <= 0 {
		t.Errorf("out of order %d, uncorrelated %d, inconsistent %d, CPU %v µs", l.OutOfOrder, l.Uncorrelated, l.Inconsistent, l.CPUPerAcceptedMicros)
	}
}

// TestBenchLocationAcrossNodes runs the location workload on two nodes over PostgreSQL: each
// courier posts to the node its order's watcher is not on, so every position a watcher reads
// crossed the cluster's location bus. The environment names a pprof and a metrics address, as
// a node's may: the first node may take them, the second must not try (it would not start).
func TestBenchLocationAcrossNodes(t *testing.T) {
	db := pgtest.NewDatabase(t)
	t.Setenv("ORDERCAST_PPROF", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	t.Setenv("ORDERCAST_METRICS_ADDR", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	r := runLocationBench(t, "--couriers", "50", "--watchers", "50", "--location-every", "1s", "--duration", "2s",
		"--workers", "0", "--nodes", "2", "--db", db)
	l := r.Location
	if r.Nodes != 2 || r.Opened != 50 || l.AcceptedPosts == 0 || l.NoOrder != 0 {
		t.Fatalf("nodes %d, opened %d, accepted %d, no order %d", r.Nodes, r.Opened, l.AcceptedPosts, l.NoOrder)
	}
	if l.Delivered == 0 || l.Remote != l.Delivered || l.OutOfOrder+l.Uncorrelated+l.Inconsistent != 0 {
		t.Errorf("delivered %d, remote %d (want all), out of order %d, uncorrelated %d, inconsistent %d",
			l.Delivered, l.Remote, l.OutOfOrder, l.Uncorrelated, l.Inconsistent)
	}
}
