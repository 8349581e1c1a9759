package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

// TestStreamIsObservedOnBothHoldings: a stream, held by the poller or on a goroutine, counts in
// ordercast_http_connections_open until its connection closes, and its request log line carries
// the bytes of its body and the events it sent.
func TestStreamIsObservedOnBothHoldings(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamIsObserved)
}

func testStreamIsObserved(t *testing.T, hold holding) {
	var logs testutil.Buffer
	ts := hold.newServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	base := ts.URL()
	// No keep-alive: the only connections open are a scrape's own and the stream's.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	api := &client.Client{BaseURL: base, HTTPClient: c}
	mustCreateWith(t, api, "obs-1")
	waitMetric(t, c, base, 1, "ordercast_http_connections_open") // the scrape itself

	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/v1/orders/obs-1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	streamID := resp.Header.Get(server.RequestIDHeader)
	waitMetric(t, c, base, 2, "ordercast_http_connections_open") // the scrape and the stream

	mustSetStatusWith(t, api, "obs-1", ordercast.StatusCancelled)
	body, err := io.ReadAll(resp.Body) // to the end: the stream closes after the terminal event
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	waitMetric(t, c, base, 1, "ordercast_http_connections_open")

	line := waitLogLine(t, &logs, streamID)
	for key, want := range map[string]any{
		"route": "GET /v1/orders/{id}/stream", "status": 200.0, "reason": "terminal",
		"events": 2.0, "bytes": float64(len(body)),
	} {
		if line[key] != want {
			t.Errorf("stream log %s = %v, want %v", key, line[key], want)
		}
	}
	if held, _ := line["held"].(bool); held != bool(hold) {
		t.Errorf("stream log held = %v, want %v", line["held"], hold)
	}
}

// waitLogLine returns the request log line of request id, waiting up to 10 s for it.
func waitLogLine(t *testing.T, logs *testutil.Buffer, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			if m["msg"] == "request" && m["request_id"] == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line for request %s in:\n%s", id, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
