package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// wsHandshake is the headers of a good WebSocket handshake, for call.
var wsHandshake = []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}

// TestEveryAPIErrorIsJSON: an error answer under /v1/ is the JSON error body with a code from
// the table, also where net/http or the WebSocket library would answer in plain text: a path
// or method with no route (405 with net/http's Allow), and a WebSocket endpoint asked without an
// upgrade (426 with Upgrade: websocket). A path with no page answers with a page.
func TestEveryAPIErrorIsJSON(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil) // without Locations: POST …/location has no route
	base := ts.URL()
	mustCreate(t, base, "o-1")
	for _, tc := range []struct {
		name, method, path string
		header             []string
		wantStatus         int
		wantCode           string
		wantHeader         []string // name, value, …
	}{
		{"not an upgrade", "GET", "/v1/orders/o-1/ws", nil, 426, ordercast.EUpgradeRequired, []string{"Upgrade", "websocket"}},
		{"upgrade to another protocol", "GET", "/v1/orders/o-1/ws", []string{"Connection", "Upgrade", "Upgrade", "h2c"}, 426, ordercast.EUpgradeRequired, []string{"Upgrade", "websocket"}},
		{"old WebSocket version", "GET", "/v1/orders/o-1/ws", []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "8", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, 400, ordercast.EMalformed, []string{"Sec-WebSocket-Version", "13"}},
		{"no WebSocket key", "GET", "/v1/orders/o-1/ws", []string{"Connection", "keep-alive, Upgrade", "Upgrade", "WebSocket", "Sec-WebSocket-Version", "13"}, 400, ordercast.EMalformed, nil},
		{"method of no route", "DELETE", "/v1/orders/o-1", nil, 405, ordercast.EMethodNotAllowed, []string{"Allow", "GET, HEAD, OPTIONS"}},
		{"GET of a POST route", "GET", "/v1/status-changes", nil, 405, ordercast.EMethodNotAllowed, []string{"Allow", "OPTIONS, POST"}},
		{"unknown API path", "GET", "/v1/nothing-here", nil, 404, ordercast.ENotFound, nil},
		{"unknown path under an order", "GET", "/v1/orders/o-1/nothing", nil, 404, ordercast.ENotFound, nil},
		{"the API's root", "GET", "/v1", nil, 404, ordercast.ENotFound, nil},
		{"positions without a tracker", "POST", "/v1/couriers/c-1/location", nil, 404, ordercast.ENotFound, nil},
		// Not the mux's redirect to the clean form, with a page of HTML.
		{"a doubled slash", "POST", "/v1//orders", nil, 404, ordercast.ENotFound, nil},
		{"a dot-dot segment", "GET", "/v1/orders/o-2/../o-1", nil, 404, ordercast.ENotFound, nil},
		// Nor before the API's root: a base URL with a trailing slash; a client that followed
		// the redirect would send its write again.
		{"a doubled slash before the API", "POST", "//v1/orders", nil, 404, ordercast.ENotFound, nil},
		{"a dot segment before the API", "GET", "/./v1/orders/o-1", nil, 404, ordercast.ENotFound, nil},
		{"a dot-dot segment into the API", "GET", "/x/../v1/orders/o-1", nil, 404, ordercast.ENotFound, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, tc.method, base+tc.path, "", "", tc.header...)
			var e api.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %q %q: not a JSON error body (%v)", resp.StatusCode, resp.Header.Get("Content-Type"), body, err)
			}
			if resp.StatusCode != tc.wantStatus || e.Error.Code != tc.wantCode || e.Error.Message == "" {
				t.Errorf("%d %s, want %d with code %s and a message", resp.StatusCode, body, tc.wantStatus, tc.wantCode)
			}
			if api.HTTPStatus(e.Error.Code) != resp.StatusCode || api.CodeForStatus(resp.StatusCode) == ordercast.EInternal {
				t.Errorf("code %s with status %d: not a pair of the api table", e.Error.Code, resp.StatusCode)
			}
			for i := 0; i+1 < len(tc.wantHeader); i += 2 {
				if got := resp.Header.Get(tc.wantHeader[i]); got != tc.wantHeader[i+1] {
					t.Errorf("%s: %q, want %q", tc.wantHeader[i], got, tc.wantHeader[i+1])
				}
			}
		})
	}

	// A method of no route is named as any value a client sent is, quoted and by its first bytes.
	long := strings.Repeat("Z", 3000)
	if resp, body := call(t, long, base+"/v1/orders", "", ""); resp.StatusCode != http.StatusMethodNotAllowed || len(body) > 300 || !strings.Contains(string(body), `\"ZZZZ`) {
		t.Errorf("a method of 3,000 bytes: %d %d bytes %.200s, want 405 naming it quoted and cut short", resp.StatusCode, len(body), body)
	}

	// OPTIONS that is not a CORS preflight asks what a path takes: 204 with the Allow a 405 would
	// send, OPTIONS included; a path with no route is still 404.
	for path, want := range map[string]string{"/v1/orders/o-1/status": "OPTIONS, POST", "/v1/orders/o-1": "GET, HEAD, OPTIONS"} {
		resp, body := call(t, "OPTIONS", base+path, "", "")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Allow") != want || len(body) != 0 {
			t.Errorf("OPTIONS %s: %d, Allow %q, body %q; want 204, Allow %q and no body", path, resp.StatusCode, resp.Header.Get("Allow"), body, want)
		}
	}
	if resp, _ := call(t, "OPTIONS", base+"/v1/nothing-here", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("OPTIONS of a path with no route: %d, want 404", resp.StatusCode)
	}

	// Pages are not the API: a path with no page is a page that says so, for a person reading
	// it in a browser; a method of no route keeps the mux's plain 405.
	for _, tc := range []struct {
		method, path string
		wantStatus   int
		wantType     string
		wantAllow    string
	}{
		{"GET", "/nothing-here", 404, "text/html", ""},
		{"GET", "/v1x", 404, "text/html", ""},
		{"POST", "/nothing-here", 404, "text/html", ""},
		{"DELETE", "/track/o-1", 405, "text/plain", "GET, HEAD"},
		{"GET", "/static/", 404, "text/html", ""},
		{"GET", "/static/nope.js", 404, "text/html", ""},
	} {
		resp, body := call(t, tc.method, base+tc.path, "", "")
		if resp.StatusCode != tc.wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.wantType) || resp.Header.Get("Allow") != tc.wantAllow {
			t.Errorf("%s %s: %d %q (Allow %q) %q, want %d %s (Allow %q)", tc.method, tc.path,
				resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), body, tc.wantStatus, tc.wantType, tc.wantAllow)
		}
		if tc.wantType == "text/html" && !strings.Contains(string(body), "There is no page at this address") {
			t.Errorf("%s %s: the page does not say there is none: %s", tc.method, tc.path, body)
		}
	}

	// The fallback is no route: the metrics count what it answers as unmatched, with the pages'.
	waitMetric(t, http.DefaultClient, base, 13, "ordercast_http_requests_total", "route", "unmatched", "code", "404")
	waitMetric(t, http.DefaultClient, base, 4, "ordercast_http_requests_total", "route", "unmatched", "code", "405")
	waitMetric(t, http.DefaultClient, base, 2, "ordercast_http_requests_total", "route", "unmatched", "code", "204")
}

// TestWebSocketHandshakeCheckedFirst: a request that is no WebSocket handshake is refused before
// any work for it is done: the token is not even looked at (that would be 401, as it is for the
// good handshake).
func TestWebSocketHandshakeCheckedFirst(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	createAs(t, base, actorToken(t, auth.RoleAdmin, "ops"), "o-1")
	if resp, body := call(t, "GET", base+"/v1/orders/o-1/ws", "", ""); resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("no token, no upgrade: %d %s, want 426 before authorization", resp.StatusCode, body)
	}
	if resp, body := call(t, "GET", base+"/v1/orders/o-1/ws", "", "", wsHandshake...); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token, a good handshake: %d %s, want 401", resp.StatusCode, body)
	}
}
