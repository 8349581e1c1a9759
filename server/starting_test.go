package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/testutil"
)

// TestAStartingNodeAnswersAtOnce: between Listen and Open (the store being opened, migrated or
// waited for) the node answers on its port: alive, not ready, every request asked to come back
// (503 with Retry-After; to an event stream, the 200 and retry: an EventSource reconnects
// from). Before, connections were taken by the kernel and never answered. Open then serves the
// same port, the starting server's connections let go.
func TestAStartingNodeAnswersAtOnce(t *testing.T) {
	t.Parallel()
	ts := prepareServer(t, filepath.Join(t.TempDir(), "ordercast.db"))
	var logs testutil.Buffer
	ts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if err := ts.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := ts.ServeStarting(); err != nil {
		t.Fatal(err)
	}
	base := ts.URL()
	if code, body := do(t, "GET", base+"/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("starting /healthz: %d %s, want 200", code, body)
	}
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"POST", "/v1/orders", `{"id":"o-1"}`},
		{"GET", "/v1/orders/o-1", ""},
		{"GET", "/track/o-1", ""},
	} {
		resp, body := call(t, tt.method, base+tt.path, "", tt.body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || errorCodeOf(t, body) != ordercast.EUnavailable {
			t.Errorf("starting %s %s: %d %s (Retry-After %q), want 503 unavailable with Retry-After", tt.method, tt.path,
				resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	resp, body := call(t, "GET", base+"/v1/orders/o-1/stream", "", "", "Accept", "text/event-stream")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(string(body), "retry:") {
		t.Fatalf("starting stream: %d %q %q, want 200 with a retry:", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	if err := ts.Open(); err != nil {
		t.Fatal(err)
	}
	if ts.URL() != base {
		t.Fatalf("opened on %s, started on %s", ts.URL(), base)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("the hand-over was logged as an error:\n%s", logs.String())
	}
	// The client's idle connection to the starting server was let go; it connects again.
	if code, body := do(t, "GET", base+"/readyz", "", ""); code != http.StatusOK {
		t.Fatalf("open /readyz: %d %s, want 200", code, body)
	}
	mustCreate(t, base, "o-1")
	resp, err := http.Get(base + "/v1/orders/o-1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"placed"`) {
		t.Fatalf("open GET: %d %s", resp.StatusCode, b)
	}
}

// TestAStartingNodeAnswersScrapes: the metrics listener (--metrics-addr) answers while the node
// waits for its store, as the main port does, rather than take scrapes it leaves hanging until
// the store opens; it goes on answering once the node is open.
func TestAStartingNodeAnswersScrapes(t *testing.T) {
	t.Parallel()
	ts := prepareServer(t, filepath.Join(t.TempDir(), "ordercast.db"))
	ts.MetricsAddr = "127.0.0.1:0"
	if err := ts.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := ts.ServeStarting(); err != nil {
		t.Fatal(err)
	}
	scrape := func(when string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", ts.MetricsURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("scrape %s: %v", when, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "go_goroutines") {
			t.Fatalf("scrape %s: %d %.200s, want 200 with the metrics", when, resp.StatusCode, b)
		}
	}
	scrape("while starting")
	if err := ts.Open(); err != nil {
		t.Fatal(err)
	}
	scrape("once open")
}
