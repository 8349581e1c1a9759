package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/bench"
)

// TestBenchWithChildServerAndWorkers runs the real binary's bench end to end at small scale: it
// starts its own server child, spreads the watchers over two bench-worker processes, and prints
// JSON whose accounting adds up.
func TestBenchWithChildServerAndWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary(t), "bench", "--watchers", "300", "--per-order", "3",
		"--rate", "50", "--duration", "1s", "--workers", "2", "--json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
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
	if r.RSSAfter <= 0 || r.CPUSeconds <= 0 {
		t.Fatalf("server RSS %d, CPU %v: not read from /proc", r.RSSAfter, r.CPUSeconds)
	}
	if !strings.Contains(stderr.String(), "sse") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
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
	for _, want := range []string{"holding", "clients", "RSS MiB before→after", "sse"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
}
