package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/bench"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// newServer runs a real server on 127.0.0.1:0 over SQLite for the bench to target by URL.
func newServer(t *testing.T) string {
	t.Helper()
	return newServerWith(t, nil)
}

// newServerWith is newServer; configure may adjust the server before it opens.
func newServerWith(t *testing.T, configure func(*server.Server, *sqlite.Store)) string {
	t.Helper()
	h := hub.New()
	st := sqlite.New(filepath.Join(t.TempDir(), "bench.db"))
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	if configure != nil {
		configure(srv, st)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return srv.URL()
}

// TestBenchDeliversEveryChangeOverEveryTransport runs the whole bench at small scale over all
// four transports and checks its accounting and its reports.
func TestBenchDeliversEveryChangeOverEveryTransport(t *testing.T) {
	base := newServer(t)
	var progress bytes.Buffer
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: base, Watchers: 200, PerOrder: 2, Rate: 100, Duration: time.Second,
		Transports: bench.Transports, PollInterval: 100 * time.Millisecond, Timeout: 2 * time.Minute,
		Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != len(bench.Transports) {
		t.Fatalf("%d runs, want %d", len(rep.Runs), len(bench.Transports))
	}
	for _, r := range rep.Runs {
		if r.Opened != 200 || r.Failed != 0 {
			t.Errorf("%s: opened %d, failed %d; want 200 and 0", r.Transport, r.Opened, r.Failed)
		}
		// 100 changes over 100 orders, each to its 2 watchers.
		if r.Committed != 100 || r.Expected != 200 {
			t.Errorf("%s: committed %d, expected %d; want 100 and 200", r.Transport, r.Committed, r.Expected)
		}
		if r.Delivered != r.Expected || r.Errors() != 0 || r.Coalesced != 0 {
			t.Errorf("%s: delivered %d of %d, errors %d, coalesced %d", r.Transport, r.Delivered, r.Expected, r.Errors(), r.Coalesced)
		}
		if len(r.LatencyCDF) != 101 || r.LatencyMaxMs < r.LatencyP50Ms {
			t.Errorf("%s: latency summary %v / %v", r.Transport, r.LatencyP50Ms, r.LatencyMaxMs)
		}
		checkLoadFigures(t, r)
		// Servers at a URL: the bench cannot see their database, and says so.
		if r.DBCPU == nil || !strings.Contains(r.DBCPU.Unmeasured, "with --url the bench cannot see the servers' database") {
			t.Errorf("%s: database CPU %+v, want it said to be unknown", r.Transport, r.DBCPU)
		}
		if r.BytesRead == 0 || r.RSSBefore == 0 || len(r.Memory) == 0 {
			t.Errorf("%s: bytes read %d, rss %d, memory samples %d", r.Transport, r.BytesRead, r.RSSBefore, len(r.Memory))
		}
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not parse: %v", err)
	}
	if len(back.Runs) != 4 || back.Runs[2].Transport != "sse" || back.Runs[2].Delivered != rep.Runs[2].Delivered {
		t.Fatalf("JSON round trip lost runs: %+v", back.Runs)
	}

	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	checkWellFormed(t, html.Bytes())
	for _, want := range []string{"<table>", "<svg", "<polyline", ">sse<", ">ws<"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	if strings.Contains(html.String(), "<script") {
		t.Error("HTML report has a script; it must stand alone")
	}

	for _, want := range []string{"offered/s", "achieved/s", "late ms max", "due→recv ms", "start→recv ms", "commit→recv ms", "from due", "from write", "from commit"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"offered/s", "achieved/s", "behind s", "late ms max", "due→recv ms p50/p90/p99/max", "start→recv ms p50/p90/p99/max", "commit→recv ms p50/p90/p99/max", "server CPU excludes the database"}, bench.Transports...) {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %s:\n%s", want, table.String())
		}
	}
	if back.Runs[2].StartLatencyP99Ms != rep.Runs[2].StartLatencyP99Ms || back.Runs[2].DueLatencyP99Ms != rep.Runs[2].DueLatencyP99Ms || back.Runs[2].OfferedRate != 100 {
		t.Errorf("JSON lost the load figures: %+v", back.Runs[2])
	}
}

// TestBenchCPUWindowEndsWithTheLoad: the server's CPU and the cores busy are taken over the load,
// not over the wait after it for the last deliveries. Ten watchers polling every 2 s, each at its
// own phase, read the changes of a 100 ms load up to 2 s after it; the cores busy must not be
// averaged over that wait.
func TestBenchCPUWindowEndsWithTheLoad(t *testing.T) {
	base := newServer(t)
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: base, Watchers: 10, Rate: 100, Duration: 100 * time.Millisecond,
		Transports: []string{bench.TransportPoll}, PollInterval: 2 * time.Second, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Runs[0]
	if f := r.Failures(); len(f) > 0 {
		t.Fatalf("failures: %v", f)
	}
	if r.Load.Cores == 0 {
		t.Skip("the machine's CPU time cannot be read here")
	}
	// The chance that all ten read their change within 0.4 s of it is 0.2^10.
	if r.Load.Seconds <= 0 || r.Load.Seconds > 1 || r.WindowSeconds-r.Load.Seconds < 0.3 {
		t.Errorf("cores busy over %v s, the step over %v s: want the load's 0.1 s and a little, well short of the step", r.Load.Seconds, r.WindowSeconds)
	}
}

// checkLoadFigures checks what a run says about its writes: the offered rate, an achieved rate
// that does not exceed it, and latencies from the write's due time never shorter than those from
// its start, nor those shorter than the commit-to-receive part of the same events (every
// delivered event matched with its write). Speed is not asserted.
func checkLoadFigures(t *testing.T, r bench.Result) {
	t.Helper()
	if r.Writers < 1 || r.AchievedRate <= 0 || r.AchievedRate > r.OfferedRate*1.001 || r.BehindSeconds < 0 {
		t.Errorf("%s: %d writers, offered %v/s, achieved %v/s, %v s behind", r.Transport, r.Writers, r.OfferedRate, r.AchievedRate, r.BehindSeconds)
	}
	if r.Uncorrelated != 0 || r.Inconsistent != 0 {
		t.Errorf("%s: %d delivered changes matched no write, %d committed before their write started", r.Transport, r.Uncorrelated, r.Inconsistent)
	}
	if len(r.DueLatencyCDF) != 101 || len(r.StartLatencyCDF) != 101 || len(r.LatencyCDF) != 101 || r.MaxLateMs < 0 {
		t.Fatalf("%s: CDFs of %d, %d and %d points, want 101; late %v ms", r.Transport, len(r.DueLatencyCDF), len(r.StartLatencyCDF), len(r.LatencyCDF), r.MaxLateMs)
	}
	// Each event's latency from its write's due time is at least the one from its start, which is
	// at least its commit-to-receive part, so the distributions keep that order at every
	// percentile.
	for p := range r.LatencyCDF {
		if r.DueLatencyCDF[p] < r.StartLatencyCDF[p] || r.StartLatencyCDF[p] < r.LatencyCDF[p] {
			t.Errorf("%s: p%d from due %v ms, from write start %v ms, from commit %v ms", r.Transport, p, r.DueLatencyCDF[p], r.StartLatencyCDF[p], r.LatencyCDF[p])
		}
	}
}

// TestFindMaxStopsWhenNoRateHolds: with a p99 bound no write can meet, the search tries its start
// rate, halves it twice, and stops, saying so; each step is measured on the same watchers.
func TestFindMaxStopsWhenNoRateHolds(t *testing.T) {
	base := newServer(t)
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: base, Watchers: 40, Rate: 40, Duration: time.Second, Transports: []string{bench.TransportSSE},
		Timeout: 2 * time.Minute, FindMax: true, P99Bound: time.Nanosecond, StepDuration: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Runs[0]
	if f := r.Failures(); len(f) > 0 {
		t.Fatalf("failures: %v", f)
	}
	fm := r.FindMax
	if fm == nil || len(fm.Steps) != 3 || fm.Best != -1 || fm.MaxRate != 0 || !strings.Contains(fm.Stopped, "no rate held") {
		t.Fatalf("find-max %+v, want 3 steps none held", fm)
	}
	var committed int64
	for i, s := range fm.Steps {
		// Not held: for its p99, or, on a machine too busy to keep a schedule, for its rate.
		if want := []float64{40, 20, 10}[i]; s.Offered != want || s.Held || s.Why == "" {
			t.Errorf("step %d: offered %v held %v (%s); want %v, not held", i+1, s.Offered, s.Held, s.Why, want)
		}
		if s.DueP99Ms <= 0 {
			t.Errorf("step %d: p99 from due %v ms, above a 1 ns bound it must be", i+1, s.DueP99Ms)
		}
		if s.Committed == 0 || s.Delivered != s.Expected || s.Samples != s.Delivered || s.DueP99Ms < s.P99Ms || s.P99Ms < s.CommitP99Ms {
			t.Errorf("step %d: %+v", i+1, s)
		}
		committed += s.Committed
	}
	if r.Committed != committed || r.Opened != 40 {
		t.Errorf("run committed %d, steps %d; opened %d", r.Committed, committed, r.Opened)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"find-max", "no: ", "no rate held down to 10/s"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	checkWellFormed(t, html.Bytes())
	for _, want := range []string{"Find-max steps", "no rate held down to 10/s"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
}

// checkWellFormed parses the report as XML: every element closed and nested, every attribute
// quoted, the SVG included.
func checkWellFormed(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	depth, svgs := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("HTML report is not well-formed: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			if e.Name.Local == "svg" {
				svgs++
			}
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 || svgs != 2 {
		t.Fatalf("depth %d at the end, %d svg charts; want 0 and 2", depth, svgs)
	}
}

// TestWorkerProtocol drives a bench worker in this process over its JSON lines.
func TestWorkerProtocol(t *testing.T) {
	base := newServer(t)
	// Orders for the worker's watchers: the bench makes them before it starts workers.
	prefix := "w-"
	for i := range 5 {
		code, body := post(t, base+"/v1/orders", `{"id":"`+bench.OrderID(prefix, i)+`"}`)
		if code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- bench.RunWorker(context.Background(), inR, outW); outW.Close() }()
	spec, _ := json.Marshal(bench.GroupSpec{URLs: []string{base}, Transport: "sse", OrderPrefix: prefix, PerOrder: 1, Count: 5})
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(inW, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"op":"open","spec":` + string(spec) + `}`)
	sc := bufio.NewScanner(outR)
	read := func() map[string]any {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("worker output ended: %v", sc.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("worker line %q: %v", sc.Text(), err)
		}
		return m
	}
	for {
		m := read()
		if m["type"] == "progress" && m["counts"].(map[string]any)["opened"] == 5.0 {
			break
		}
	}
	send(`{"op":"mark"}`)
	for read()["type"] != "marked" {
		// progress lines may come first; the change must wait for the worker's confirmation
	}
	code, body := post(t, base+"/v1/orders/"+bench.OrderID(prefix, 3)+"/status", `{"status":"confirmed"}`)
	if code != 200 {
		t.Fatalf("set status: %d %s", code, body)
	}
	for {
		m := read()
		if m["type"] == "progress" && m["counts"].(map[string]any)["delivered"] == 1.0 {
			break
		}
	}
	send(`{"op":"finish"}`)
	for {
		m := read()
		if m["type"] != "result" {
			continue
		}
		var c bench.Counts
		b, _ := json.Marshal(m["counts"])
		json.Unmarshal(b, &c)
		if c.Delivered != 1 || len(c.Samples) != 1 || c.Opened != 5 {
			t.Fatalf("result %+v, want 5 opened, 1 delivered with its latency", c)
		}
		break
	}
	send(`{"op":"close"}`)
	go io.Copy(io.Discard, outR)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBenchRestaurantStreams runs the party-stream workload at small scale: 3 restaurants × 4
// orders, one restaurant stream each, and checks every change reaches its restaurant's stream
// exactly once and the result's figures agree.
func TestBenchRestaurantStreams(t *testing.T) {
	base := newServer(t)
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: base, Restaurants: 3, PerRestaurant: 4, Rate: 10, Duration: 2 * time.Second,
		Transports: []string{bench.TransportSSE}, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Restaurants != 3 || rep.PerRestaurant != 4 || len(rep.Runs) != 1 {
		t.Fatalf("report: %d restaurants × %d, %d runs", rep.Restaurants, rep.PerRestaurant, len(rep.Runs))
	}
	r := rep.Runs[0]
	if r.Orders != 12 || r.Watchers != 3 || r.Opened != 3 || r.Failed != 0 {
		t.Errorf("orders %d, streams %d, opened %d, failed %d; want 12, 3, 3, 0", r.Orders, r.Watchers, r.Opened, r.Failed)
	}
	// 20 changes, each owed once: to its restaurant's single stream.
	if r.Committed != 20 || r.Expected != 20 || r.Delivered != 20 {
		t.Errorf("committed %d, expected %d, delivered %d; want 20 each", r.Committed, r.Expected, r.Delivered)
	}
	if r.Errors() != 0 || r.Coalesced != 0 || len(rep.Failures()) != 0 {
		t.Errorf("errors %d, coalesced %d, failures %v", r.Errors(), r.Coalesced, rep.Failures())
	}
	checkLoadFigures(t, r)
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "3 restaurant streams × 4 orders (12 orders)") {
		t.Errorf("table does not name the workload:\n%s", table.String())
	}
}

// TestBenchBatchedWrites: with --write-batch the changes go through POST /v1/status-changes,
// many a request, and every one is committed with the seq its expected_version names and
// delivered once, in order, including when a tick holds several changes of one order (6 orders,
// 8 changes a tick: an order's next change goes in the next request, after its answer).
func TestBenchBatchedWrites(t *testing.T) {
	base := newServer(t)
	rep, err := bench.Run(context.Background(), bench.Config{
		URL: base, Watchers: 6, PerOrder: 1, Rate: 600, Duration: 40 * time.Millisecond, WriteBatch: 8,
		Transports: []string{"sse"}, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Runs[0]
	if r.Committed != 24 || r.Expected != 24 || r.Delivered != r.Expected || r.Errors() != 0 {
		t.Errorf("committed %d, expected %d, delivered %d, errors %d; want 24 each and none", r.Committed, r.Expected, r.Delivered, r.Errors())
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "through POST /v1/status-changes, up to 8 a request") {
		t.Errorf("the table does not say how the changes went:\n%s", table.String())
	}
}

// TestBenchReadsMetricsWhereTheServerServesThem: a server whose /metrics are on a listener of
// their own (--metrics-addr) is measured through --metrics-url; without it the bench says where
// to look rather than report figures it could not read.
func TestBenchReadsMetricsWhereTheServerServesThem(t *testing.T) {
	var srv *server.Server
	base := newServerWith(t, func(s *server.Server, _ *sqlite.Store) { s.MetricsAddr, srv = "127.0.0.1:0", s })
	cfg := bench.Config{
		URL: base, Watchers: 20, Rate: 20, Duration: time.Second, Transports: []string{bench.TransportSSE},
		PollInterval: 100 * time.Millisecond, Timeout: time.Minute,
	}
	if _, err := bench.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--metrics-url") {
		t.Errorf("bench of a server with its metrics elsewhere, without --metrics-url: %v, want an error naming --metrics-url", err)
	}
	metricsURL := srv.MetricsURL()
	cfg.MetricsURL = metricsURL
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Runs[0]
	if r.Delivered != r.Expected || r.RSSBefore <= 0 || r.CPUSeconds <= 0 || r.ServerFlushP99Ms <= 0 {
		t.Errorf("delivered %d of %d; from %s: RSS %d, CPU %v s, server commit→flush p99 %v ms", r.Delivered, r.Expected, metricsURL, r.RSSBefore, r.CPUSeconds, r.ServerFlushP99Ms)
	}
	// What the server allocated a change: a change is at least its request, its transaction
	// and its event, many objects and kilobytes; a figure below that was not read over the load.
	if r.AllocsPerChange < 10 || r.AllocBytesPerChange < 1024 {
		t.Errorf("allocated %.0f B in %.1f objects a change, want the server's own figures", r.AllocBytesPerChange, r.AllocsPerChange)
	}
	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "the server allocated") {
		t.Errorf("the table does not say what the server allocated:\n%s", table.String())
	}
}
