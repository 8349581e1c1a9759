package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/server"
)

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "localhost.": true, "app.localhost": true,
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true, "::ffff:127.0.0.1": true,
		"": false, "evil.example": false, "localhost.evil.example": false, "evillocalhost": false,
		"0.0.0.0": false, "::": false, "10.0.0.1": false, "[2001:db8::1]": false, "128.0.0.1": false,
	} {
		if got := server.LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// getAs GETs url with host in Host, as a browser does for a name it resolved to the server's
// address, and returns the status, Content-Type and body.
func getAs(t *testing.T, url, host string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ctype := resp.Header.Get("Content-Type")
	if ctype == "text/event-stream" {
		return resp.StatusCode, ctype, nil // a stream it opened, which would never end
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, ctype, body
}

// TestLoopbackHostsOnlyRefusesRebinding: a demo-like server (its console hands out an admin
// token) with LoopbackHostsOnly answers a request that names another site in Host, as a page of
// evil.example whose name was rebound to 127.0.0.1 does, with 421 and nothing of its own: JSON
// misdirected_request on the API, a line of text on the pages. Every loopback name still works,
// and without the setting the same request gets the console and its token.
func TestLoopbackHostsOnlyRefusesRebinding(t *testing.T) {
	t.Parallel()
	demo := func(s *server.Server) { s.Auth.ConsoleToken, s.Auth.PublicTracking = true, true }
	ts := newAuthServer(t, func(s *server.Server) { demo(s); s.LoopbackHostsOnly = true })
	base := ts.URL()
	port := base[strings.LastIndex(base, ":"):]
	const token = `name="ordercast-token" content="ey`

	for _, path := range []string{"/console", "/", "/healthz", "/metrics", "/v1/orders/o-1", "/v1/stream", "/v1/orders/o-1/ws"} {
		status, ctype, body := getAs(t, base+path, "evil.example"+port)
		if status != http.StatusMisdirectedRequest || strings.Contains(string(body), token) {
			t.Errorf("GET %s as evil.example: %d %.80q, want 421 without the page", path, status, body)
			continue
		}
		if !strings.HasPrefix(path, "/v1/") {
			if !strings.HasPrefix(ctype, "text/plain") || !strings.Contains(string(body), "localhost") {
				t.Errorf("GET %s as evil.example: %s %q, want a line of text naming the hosts to use", path, ctype, body)
			}
			continue
		}
		var e api.ErrorBody
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != ordercast.EMisdirected {
			t.Errorf("GET %s as evil.example: %s %q, want the JSON error %s", path, ctype, body, ordercast.EMisdirected)
		}
	}
	for _, host := range []string{"evil.example", "127.0.0.1.evil.example" + port, "localhost.evil.example" + port, "[2001:db8::1]" + port} {
		if status, _, _ := getAs(t, base+"/healthz", host); status != http.StatusMisdirectedRequest {
			t.Errorf("GET /healthz as %s: %d, want 421", host, status)
		}
	}
	for _, host := range []string{"127.0.0.1" + port, "localhost" + port, "LOCALHOST" + port, "localhost", "app.localhost" + port, "127.0.0.2" + port, "[::1]" + port, "[::1]"} {
		if status, _, body := getAs(t, base+"/console", host); status != http.StatusOK || !strings.Contains(string(body), token) {
			t.Errorf("GET /console as %s: %d, want 200 with the console's token", host, status)
		}
	}

	open := newAuthServer(t, demo)
	if status, _, body := getAs(t, open.URL()+"/console", "evil.example"+port); status != http.StatusOK || !strings.Contains(string(body), token) {
		t.Errorf("GET /console as evil.example without LoopbackHostsOnly: %d, want the console and its token (the attack this refuses)", status)
	}
}
