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
	h := hub.New()
	st := sqlite.New(filepath.Join(t.TempDir(), "bench.db"))
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
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

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, tr := range bench.Transports {
		if !strings.Contains(table.String(), tr) {
			t.Errorf("table lacks %s:\n%s", tr, table.String())
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
		if c.Delivered != 1 || len(c.LatencyMicros) != 1 || c.Opened != 5 {
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
