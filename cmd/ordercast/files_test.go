package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/testutil"
)

// TestANodeShortOfFilesStillAnswers: a node whose open-file limit is below what --max-streams
// asks (here 256 files, 10,000 streams) holds the streams the limit leaves room for and refuses
// the rest (a refused stream's connection let go, connections past the node's cap closed at
// accept), so that /healthz and a write are still answered while 300 clients hold or retry
// streams. Out of descriptors, the node stalled every request, /healthz and writes too, for as
// long as the streams stayed (the resource-exhaustion review).
func TestANodeShortOfFilesStillAnswers(t *testing.T) {
	n, urls := launchNodeUnder(t, []string{"bash", "-c", `ulimit -n 256 && exec "$0" "$@"`},
		filepath.Join(t.TempDir(), "ordercast.db"), "ORDERCAST_STREAM_OPEN_RATE=0")
	n.awaitServing(t, urls)
	if !strings.Contains(n.stderr.String(), "streams capped at 144") {
		t.Errorf("no warning that the open-file limit caps the streams:\n%s", n.stderr)
	}
	if status, body := adminPost(n.url+"/v1/orders", `{"id":"o-1"}`); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	addr := strings.TrimPrefix(n.url, "http://")
	held := 0
	for range 300 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			continue // refused: the node's listen queue is full for a moment
		}
		t.Cleanup(func() { c.Close() })
		if _, err := fmt.Fprintf(c, "GET /v1/orders/o-1/stream HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", addr); err == nil {
			held++
		}
	}
	t.Logf("%d of 300 stream requests sent", held)
	client := &http.Client{Timeout: 2 * time.Second}
	testutil.WaitFor(t, "/healthz answered while the streams are held", func() bool {
		resp, err := client.Get(n.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	testutil.WaitFor(t, "a write answered while the streams are held", func() bool {
		status, _ := adminPost(n.url+"/v1/orders/o-1/status", `{"status":"confirmed"}`)
		return status == http.StatusOK
	})
	// The streams are held, as many as the limit leaves room for, and the rest refused (the node
	// takes the requests in its own time: waited for, not read at once, which failed once).
	testutil.WaitFor(t, "144 streams open and some refused for max_streams", func() bool {
		resp, err := client.Get(n.url + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics := string(b)
		return strings.Contains(metrics, "\nordercast_streams_open 144\n") && strings.Contains(metrics, `ordercast_streams_refused_total{reason="max_streams"}`) &&
			!strings.Contains(metrics, `ordercast_streams_refused_total{reason="max_streams"} 0`+"\n")
	})
}

// adminPost posts body to url as an admin, within a couple of seconds, and returns the status
// and body; 0 when no answer came.
func adminPost(url, body string) (int, string) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+adminToken())
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
