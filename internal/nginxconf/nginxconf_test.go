package nginxconf

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

// startFor starts the docs' configuration in front of node, on a free loopback port.
func startFor(t *testing.T, node *httptest.Server) *Nginx {
	t.Helper()
	bin, err := Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
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
	return n
}

// get sends a GET through n with the given headers (Host among them: the request's) and returns
// the answer and its body.
func get(t *testing.T, n *Nginx, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", n.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header, req.Host = header, header.Get("Host")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestAStreamNoNodeTakesIsToldToRetry: with every node gone, the docs' configuration answers a
// stream as a node answers one it cannot serve (200, an event stream with a retry delay), since
// a browser's EventSource gives up for good on nginx's 502, and with CORS headers for the page's
// origin, without which a page of another origin gives up on it just the same; any other request
// gets the 502.
func TestAStreamNoNodeTakesIsToldToRetry(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	n := startFor(t, node)
	node.Close() // the only node goes

	const origin = "https://shop.example"
	for _, path := range []string{"/v1/orders/o-1/stream", "/v1/restaurants/r-1/stream", "/v1/stream"} {
		resp, body := get(t, n, path, http.Header{"Origin": {origin}})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(body, "retry: 5000\n") {
			t.Errorf("%s with no node: %d %q %q, want 200 text/event-stream with retry: 5000", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if o, c := resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials"); o != origin || c != "true" {
			t.Errorf("%s with no node, from a page of %s: Access-Control-Allow-Origin %q, -Credentials %q; want the page's origin and true", path, origin, o, c)
		}
	}
	if resp, body := get(t, n, "/v1/orders/o-1", nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("a read with no node: %d %q, want nginx's 502", resp.StatusCode, body)
	}
}

// TestTheProxyPassesWhatANodeSeesAndSays: the docs' configuration passes the node the Host the
// client named, port included (a page's WebSocket is let in by comparing its Origin with it), a
// request header as large as the node takes, and an answer whose headers pass nginx's default
// 4 KiB (a sign-in's two cookies, each with an identity provider's token), where nginx answered
// 502 and counted the node failed.
func TestTheProxyPassesWhatANodeSeesAndSays(t *testing.T) {
	cookie := strings.Repeat("t", 5000)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" { // Start's check of nginx goes through to the node
			w.Header().Add("Set-Cookie", "ordercast_party="+cookie)
			w.Header().Add("Set-Cookie", "ordercast_stream="+cookie)
		}
		io.WriteString(w, r.Host+" "+strconv.Itoa(len(r.Header.Get("Authorization"))))
	}))
	defer node.Close()
	n := startFor(t, node)
	const host = "track.example:8443"
	token := strings.Repeat("a", 20<<10)
	resp, b := get(t, n, "/restaurants/r-1", http.Header{"Host": {host}, "Authorization": {"Bearer " + token}})
	if want := host + " " + strconv.Itoa(len("Bearer ")+len(token)); resp.StatusCode != http.StatusOK || string(b) != want || len(resp.Header.Values("Set-Cookie")) != 2 {
		t.Errorf("through nginx: %d %q with %d cookies; want 200 %q (the Host with its port, the whole header) and both cookies", resp.StatusCode, b, len(resp.Header.Values("Set-Cookie")), want)
	}
}
