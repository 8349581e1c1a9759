package nginxconf

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestAStreamNoNodeTakesIsToldToRetry: with every node gone, the docs' configuration answers a
// stream as a node answers one it cannot serve (200, an event stream with a retry delay), since
// a browser's EventSource gives up for good on nginx's 502; any other request gets the 502.
func TestAStreamNoNodeTakesIsToldToRetry(t *testing.T) {
	bin, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n, err := Start(t.Context(), bin, []string{node.URL}, port, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	node.Close() // the only node goes

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(n.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/v1/orders/o-1/stream", "/v1/restaurants/r-1/stream", "/v1/stream"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(body, "retry: 5000\n") {
			t.Errorf("%s with no node: %d %q %q, want 200 text/event-stream with retry: 5000", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	if resp, body := get("/v1/orders/o-1"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("a read with no node: %d %q, want nginx's 502", resp.StatusCode, body)
	}
}
