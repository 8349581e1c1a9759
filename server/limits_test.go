package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// openStreamAs opens a stream as client addr (X-Forwarded-For, believed from loopback in these
// tests), with a bearer token if one is given, and returns the response; the stream stays open
// until the test ends.
func openStreamAs(t *testing.T, url, addr string, token ...string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("X-Forwarded-For", addr)
	for _, tok := range token {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp
}

var loopbackProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func wantRefusal(t *testing.T, what string, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: %d (Retry-After %q), want %d with Retry-After", what, resp.StatusCode, resp.Header.Get("Retry-After"), status)
	}
}

// wsAs opens order id's WebSocket on base from client address addr (under loopbackProxy).
func wsAs(t *testing.T, base, id, addr string) *http.Response {
	t.Helper()
	resp, _ := call(t, "GET", base+"/v1/orders/"+id+"/ws", "", "", append([]string{"X-Forwarded-For", addr}, wsHandshake...)...)
	return resp
}

// longPollAs sends a long poll of order id, past its first version, to base from client address
// addr (under loopbackProxy).
func longPollAs(t *testing.T, base, id, addr string) *http.Response {
	t.Helper()
	resp, _ := call(t, "GET", base+"/v1/orders/"+id+"?wait=10s&after_version=1", "", "", "X-Forwarded-For", addr)
	return resp
}

// wantStreamAdmitted fails the test unless resp is a stream that was let in: it brings the
// order's current status.
func wantStreamAdmitted(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	ev, err := client.NewSSEReader(resp.Body).Next()
	if resp.StatusCode != http.StatusOK || err != nil || ev.Type != "status" {
		t.Fatalf("%s: %d, first event %+v, %v; want a stream that opens with the status", what, resp.StatusCode, ev, err)
	}
}

// wantStreamRetry fails the test unless resp is an event stream's refusal for a while, in the
// form a browser's EventSource retries: 200 text/event-stream, Retry-After, a retry: of the
// milliseconds it rounds up to its whole seconds (jittered, from 5 s to 7.5) and a comment
// saying why, then the end of the stream, with no event.
func wantStreamRetry(t *testing.T, what string, resp *http.Response, why string) {
	t.Helper()
	wantStreamRetryIn(t, what, resp, why, 5*time.Second, 7500*time.Millisecond)
}

// wantStreamRetryIn is wantStreamRetry for a retry: from lo to hi.
func wantStreamRetryIn(t *testing.T, what string, resp *http.Response, why string, lo, hi time.Duration) {
	t.Helper()
	// A refusal's body ends at once (its Content-Length); a stream let in never does.
	bound := time.AfterFunc(10*time.Second, func() { resp.Body.Close() })
	defer bound.Stop()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read: %v (%d %q): want a refusal's body, which ends", what, err, resp.StatusCode, body)
	}
	ra := resp.Header.Get("Retry-After")
	m := regexp.MustCompile(`^retry: (\d+)\n: (.*)\n`).FindStringSubmatch(string(body))
	var ms, s int
	if m != nil {
		ms, _ = strconv.Atoi(m[1])
		s, _ = strconv.Atoi(ra)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || ra == "" ||
		m == nil || !strings.HasPrefix(m[2], why) || ms <= (s-1)*1000 || ms > s*1000 || ms < int(lo.Milliseconds()) || ms > int(hi.Milliseconds()) ||
		strings.Contains(string(body), "\nid:") {
		t.Errorf("%s: %d %q (Retry-After %q) %q; want 200 text/event-stream, retry: of %v to %v that Retry-After rounds up, %q, no event", what,
			resp.StatusCode, resp.Header.Get("Content-Type"), ra, body, lo, hi, why)
	}
}

// TestStreamLimits: the node's total and each client's streams are bounded, on every transport;
// others (or the same client, once a stream ends) are still served. A refused event stream is
// answered as EventSource retries it (200, retry: as Retry-After, closed: a 503 or a 429 would
// stop a browser's EventSource for good); a WebSocket or a long poll, whose clients read
// statuses, gets 429 or 503 with Retry-After. Each refusal is counted by its reason.
func TestStreamLimits(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		s.Limits = server.Limits{MaxStreams: 3, MaxStreamsPerClient: 2, TrustedProxies: loopbackProxy}
	})
	base := ts.URL()
	mustCreate(t, base, "s-1")
	url := base + "/v1/orders/s-1/stream"
	ws := func(addr string) *http.Response { return wsAs(t, base, "s-1", addr) }
	longPoll := func(addr string) *http.Response { return longPollAs(t, base, "s-1", addr) }

	wantStreamAdmitted(t, "first stream", openStreamAs(t, url, "10.0.0.1"))
	second := openStreamAs(t, url, "10.0.0.1")
	wantStreamAdmitted(t, "second stream", second)
	third := openStreamAs(t, url, "10.0.0.1")
	if third.Close {
		t.Error("a stream refused for its client's streams closes its connection, want it kept alive: the node is not short of sockets")
	}
	wantStreamRetry(t, "third stream of one client", third, "too many open streams from your address")
	wantRefusal(t, "third stream of one client, a WebSocket", ws("10.0.0.1"), http.StatusTooManyRequests)
	wantRefusal(t, "third stream of one client, a long poll", longPoll("10.0.0.1"), http.StatusTooManyRequests)
	wantStreamAdmitted(t, "another client's stream", openStreamAs(t, url, "10.0.0.2"))
	// A node full of streams is short of sockets: the refused client's connection is let go.
	fourth := openStreamAs(t, url, "10.0.0.3")
	if !fourth.Close {
		t.Error("a stream refused on a full node keeps its connection alive, want Connection: close")
	}
	wantStreamRetry(t, "fourth stream on the node", fourth, "this node holds as many streams as it may")
	// The all-orders stream counts too.
	wantStreamRetry(t, "all-orders stream on a full node", openStreamAs(t, base+"/v1/stream", "10.0.0.3"), "this node holds as many streams as it may")
	wantRefusal(t, "WebSocket on a full node", ws("10.0.0.3"), http.StatusServiceUnavailable)
	wantRefusal(t, "long poll on a full node", longPoll("10.0.0.3"), http.StatusServiceUnavailable)
	mfs := scrape(t, http.DefaultClient, base)
	for reason, want := range map[string]float64{"max_streams_per_client": 3, "max_streams": 4, "store_unavailable": 0} {
		if got := value(mfs, "ordercast_streams_refused_total", "reason", reason); got != want {
			t.Errorf("ordercast_streams_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	// Ordinary requests are still served.
	if code, _ := do(t, "GET", base+"/v1/orders/s-1", "", ""); code != http.StatusOK {
		t.Errorf("GET on a full node: %d", code)
	}
	// When a stream ends its place is free again; poll with a deadline, as the server notices the
	// client leaving asynchronously.
	second.Body.Close()
	testutil.WaitFor(t, "a stream admitted after one closed", func() bool {
		resp := openStreamAs(t, url, "10.0.0.3")
		if ev, err := client.NewSSEReader(resp.Body).Next(); err == nil && ev.Type == "status" {
			return true
		}
		resp.Body.Close()
		return false
	})
}

// TestStreamOpenRate: a client address opens streams at a rate, each open a read of the store
// (an order's missed events, a party's snapshot): holding its share of streams, it could close
// and open them as fast as the node answered. Past its burst it is refused on every transport,
// told to come back when the next may be opened; another address is still let in.
func TestStreamOpenRate(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		// One open every 1,000 s past the burst: none comes back while the test runs.
		s.Limits = server.Limits{StreamOpenRate: 0.001, StreamOpenBurst: 2, TrustedProxies: loopbackProxy}
	})
	base := ts.URL()
	mustCreate(t, base, "o-1")
	url := base + "/v1/orders/o-1/stream"
	wantStreamAdmitted(t, "first stream", openStreamAs(t, url, "10.0.0.1"))
	first := openStreamAs(t, url, "10.0.0.1")
	wantStreamAdmitted(t, "second stream", first)
	first.Body.Close() // closing one gives back no open
	wantStreamRetryIn(t, "third stream opened at once", openStreamAs(t, url, "10.0.0.1"), "too many streams opened from your address",
		990*time.Second, 1500*time.Second)
	wantRefusal(t, "a WebSocket opened at once", wsAs(t, base, "o-1", "10.0.0.1"), http.StatusTooManyRequests)
	resp := longPollAs(t, base, "o-1", "10.0.0.1")
	wantRefusal(t, "a long poll opened at once", resp, http.StatusTooManyRequests)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 990 {
		t.Errorf("a long poll refused for its address's rate is told Retry-After %q, want when the next may be opened", resp.Header.Get("Retry-After"))
	}
	wantStreamAdmitted(t, "another address's stream", openStreamAs(t, url, "10.0.0.2"))
	if code, _ := do(t, "GET", base+"/v1/orders/o-1", "", ""); code != http.StatusOK {
		t.Errorf("a read (no stream) from the address: %d, want it served", code)
	}
	if got := value(scrape(t, http.DefaultClient, base), "ordercast_streams_refused_total", "reason", "stream_open_rate"); got != 3 {
		t.Errorf("ordercast_streams_refused_total{reason=\"stream_open_rate\"} = %v, want 3", got)
	}
}

// TestStreamsPerHolder: the streams held on one credential's behalf are bounded whatever
// address they come from: every tracking token of one order together, a party by its role and
// id. Another order's token, another party, and admin (the platform's own) are still let in; a
// stream that ends frees its place.
func TestStreamsPerHolder(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) {
		s.Limits = server.Limits{MaxStreamsPerHolder: 2, TrustedProxies: loopbackProxy}
	})
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, body := range []string{`{"id":"h-1","restaurant_id":"r-1"}`, `{"id":"h-2","restaurant_id":"r-1"}`} {
		mustCall(t, "POST", base+"/v1/orders", admin, body, http.StatusCreated)
	}
	tracking := func(id string) string {
		tok, _, err := authority(t).SignTracking(id, time.Time{}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	open := func(path, token, addr string) *http.Response {
		t.Helper()
		return openStreamAs(t, base+path, addr, token)
	}
	// Two tokens of one order, from three addresses.
	first, second := tracking("h-1"), tracking("h-1")
	wantStreamAdmitted(t, "a tracking token's first stream", open("/v1/orders/h-1/stream", first, "10.0.0.1"))
	held := open("/v1/orders/h-1/stream", second, "10.0.0.2")
	wantStreamAdmitted(t, "another token of the order, from another address", held)
	wantStreamRetry(t, "a third stream of the order's tokens, from a third address", open("/v1/orders/h-1/stream", first, "10.0.0.3"), "too many open streams on this token's behalf")
	wsReq := append([]string{"X-Forwarded-For", "10.0.0.4"}, wsHandshake...)
	if resp, _ := call(t, "GET", base+"/v1/orders/h-1/ws", first, "", wsReq...); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a WebSocket past the order's share: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	wantStreamAdmitted(t, "another order's token", open("/v1/orders/h-2/stream", tracking("h-2"), "10.0.0.3"))

	// A restaurant by its id, whichever of its streams.
	r1 := actorToken(t, auth.RoleRestaurant, "r-1")
	if resp := open("/v1/restaurants/r-1/stream", r1, "10.0.1.1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the restaurant's first stream: %d", resp.StatusCode)
	}
	wantStreamAdmitted(t, "the restaurant's second stream, an order's", open("/v1/orders/h-1/stream", r1, "10.0.1.2"))
	wantStreamRetry(t, "the restaurant's third stream", open("/v1/orders/h-2/stream", actorToken(t, auth.RoleRestaurant, "r-1"), "10.0.1.3"), "too many open streams on this token's behalf")
	for i := range 3 {
		wantStreamAdmitted(t, "an admin's stream", open("/v1/orders/h-1/stream", admin, fmt.Sprintf("10.0.2.%d", i)))
	}
	mfs := scrape(t, http.DefaultClient, base)
	if got := value(mfs, "ordercast_streams_refused_total", "reason", "max_streams_per_holder"); got != 3 {
		t.Errorf("ordercast_streams_refused_total{reason=max_streams_per_holder} = %v, want 3", got)
	}

	// A tracking token a party's page made from its own spends the party's share, and a courier's
	// the courier's: neither the customer's, whose own stream the restaurant's fifty tracking
	// pages of an order refused.
	viaR1, _, err := authority(t).SignPageTracking("h-2", "", time.Time{}, auth.Actor{Role: auth.RoleRestaurant, Sub: "r-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantStreamRetry(t, "the restaurant's page's tracking token, its share full", open("/v1/orders/h-2/stream", viaR1, "10.0.3.1"), "too many open streams on this token's behalf")
	courierK1, _, err := authority(t).SignCourierTracking("h-2", "k-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, "PUT", base+"/v1/orders/h-2/courier", admin, `{"courier_id":"k-1"}`, http.StatusOK)
	for i := range 2 {
		wantStreamAdmitted(t, "the courier's tracking token", open("/v1/orders/h-2/stream", courierK1, fmt.Sprintf("10.0.4.%d", i)))
	}
	wantStreamRetry(t, "the courier's third stream", open("/v1/orders/h-2/stream", courierK1, "10.0.4.3"), "too many open streams on this token's behalf")
	wantStreamAdmitted(t, "the customer's second stream of h-2, beside the restaurant's and the courier's", open("/v1/orders/h-2/stream", tracking("h-2"), "10.0.5.1"))

	held.Body.Close()
	testutil.WaitFor(t, "a stream of the order admitted after one closed", func() bool {
		resp := open("/v1/orders/h-1/stream", first, "10.0.0.5")
		if ev, err := client.NewSSEReader(resp.Body).Next(); err == nil && ev.Type == "status" {
			return true
		}
		resp.Body.Close()
		return false
	})
}

// TestPlatformStreamsTakeNoAddressesShare: a dispatch backend following every restaurant's
// stream with its system token, from one address, was refused past that address's share of
// streams and its rate of opening them, and its refusal looked like a stream (200, retry:). The
// platform's own tokens (admin, system) count against the node's streams alone; a party's
// token from the same address still takes the address's share.
func TestPlatformStreamsTakeNoAddressesShare(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) {
		s.Limits = server.Limits{MaxStreams: 6, MaxStreamsPerClient: 1, StreamOpenRate: 0.001, StreamOpenBurst: 1, TrustedProxies: loopbackProxy}
	})
	base := ts.URL()
	admitted := func(what string, resp *http.Response) {
		t.Helper()
		if ev, err := client.NewSSEReader(resp.Body).Next(); resp.StatusCode != http.StatusOK || err != nil || ev.Type != "snapshot" {
			t.Fatalf("%s: %d, first event %+v, %v; want a party stream that opens with its snapshot", what, resp.StatusCode, ev, err)
		}
	}
	system := actorToken(t, auth.RoleSystem, "dispatch")
	for i := range 4 {
		admitted("the platform's stream", openStreamAs(t, base+fmt.Sprintf("/v1/restaurants/r-%d/stream", i), "10.0.0.1", system))
	}
	r1 := actorToken(t, auth.RoleRestaurant, "r-1")
	admitted("a restaurant's stream from the address beside the platform's", openStreamAs(t, base+"/v1/restaurants/r-1/stream", "10.0.0.1", r1))
	wantStreamRetry(t, "the restaurant's second stream from the address", openStreamAs(t, base+"/v1/restaurants/r-1/stream", "10.0.0.1", r1), "too many open streams from your address")
	admitted("the platform's sixth stream on the node", openStreamAs(t, base+"/v1/restaurants/r-8/stream", "10.0.0.1", system))
	wantStreamRetry(t, "the platform's stream past the node's", openStreamAs(t, base+"/v1/restaurants/r-9/stream", "10.0.0.1", system), "this node holds as many streams as it may")
}

// TestWriteRateLimit: write requests beyond a client's rate get 429 with Retry-After and change
// nothing; other clients are still served. Without a trusted proxy, X-Forwarded-For is ignored.
func TestWriteRateLimit(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		s.Limits = server.Limits{WriteRate: 0.001, WriteBurst: 2, TrustedProxies: loopbackProxy}
	})
	base := ts.URL()
	create := func(id, addr string) *http.Response {
		t.Helper()
		resp, _ := call(t, "POST", base+"/v1/orders", "", `{"id":"`+id+`"}`, "X-Forwarded-For", addr)
		return resp
	}
	for i, id := range []string{"w-1", "w-2"} {
		if resp := create(id, "10.1.0.1"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("write %d: %d", i, resp.StatusCode)
		}
	}
	before := snapshot(t, ts.store, "w-3")
	wantRefusal(t, "third write", create("w-3", "10.1.0.1"), http.StatusTooManyRequests)
	if snapshot(t, ts.store, "w-3") != before {
		t.Error("a refused write changed the store")
	}
	if resp := create("w-4", "10.1.0.2"); resp.StatusCode != http.StatusCreated {
		t.Errorf("another client's write: %d", resp.StatusCode)
	}
	// A hop with its port (some proxies send one) is its address: the same client, not garbled
	// (which counted it as the proxy), and another client with a port is still another.
	wantRefusal(t, "the same client's write, its hop with a port", create("w-5", "10.1.0.1:4711"), http.StatusTooManyRequests)
	if resp := create("w-6", "[2001:db8::7]:4711"); resp.StatusCode != http.StatusCreated {
		t.Errorf("another client's write, its hop an IPv6 address with a port: %d", resp.StatusCode)
	}
	// Reads are not writes.
	if code, _ := do(t, "GET", base+"/v1/orders/w-1", "", ""); code != http.StatusOK {
		t.Errorf("read after the limit: %d", code)
	}

	direct := newServer(t, func(s *server.Server) { s.Limits = server.Limits{WriteRate: 0.001, WriteBurst: 1} })
	call(t, "POST", direct.URL()+"/v1/orders", "", `{"id":"d-1"}`, "X-Forwarded-For", "10.2.0.1")
	resp, _ := call(t, "POST", direct.URL()+"/v1/orders", "", `{"id":"d-2"}`, "X-Forwarded-For", "10.2.0.2")
	wantRefusal(t, "spoofed X-Forwarded-For from an untrusted peer", resp, http.StatusTooManyRequests)
}

// TestBodyLimit: an oversized body is refused with 413 and changes nothing.
func TestBodyLimit(t *testing.T) {
	ts := newServer(t, func(s *server.Server) { s.MaxBodyBytes = 200 })
	base := ts.URL()
	before := snapshot(t, ts.store, "big")
	resp, body := call(t, "POST", base+"/v1/orders", "", `{"id":"big","details":{"x":"`+strings.Repeat("a", 500)+`"}}`)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "body_too_large") {
		t.Errorf("oversized body: %d %s", resp.StatusCode, body)
	}
	if snapshot(t, ts.store, "big") != before {
		t.Error("an oversized body changed the store")
	}
	mustCreate(t, base, "small")
}

// TestCORS: allowed origins get credentials and their preflight answered; others get a refused
// preflight and no CORS headers; every response to a request with an Origin varies on it.
func TestCORS(t *testing.T) {
	ts := newServer(t, func(s *server.Server) { s.Limits.CORSOrigins = []string{"https://app.example"} })
	base := ts.URL()
	mustCreate(t, base, "c-1")
	preflightTo := func(path, origin, method string) *http.Response {
		resp, _ := call(t, "OPTIONS", base+path, "", "",
			"Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", "authorization, content-type")
		return resp
	}
	preflight := func(origin string) *http.Response { return preflightTo("/v1/orders/c-1/status", origin, "POST") }
	ok := preflight("https://app.example")
	if ok.StatusCode != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		ok.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("allowed preflight: %d %v", ok.StatusCode, ok.Header)
	}
	// A preflight is told the methods of its path, as its Allow would be: a page on another
	// origin assigns couriers with PUT, and changes a status with POST only.
	for _, tt := range []struct {
		path, method string
		want         []string
	}{
		{"/v1/orders/c-1/status", "POST", []string{"POST"}},
		{"/v1/orders/c-1/courier", "PUT", []string{"PUT"}},
		{"/v1/orders/c-1", "GET", []string{"GET", "HEAD"}},
	} {
		resp := preflightTo(tt.path, "https://app.example", tt.method)
		got := strings.Split(resp.Header.Get("Access-Control-Allow-Methods"), ", ")
		if resp.StatusCode != http.StatusNoContent || !slices.Equal(got, tt.want) {
			t.Errorf("preflight of %s %s: %d with methods %q, want 204 with %q", tt.method, tt.path, resp.StatusCode, got, tt.want)
		}
	}
	if resp := preflightTo("/v1/nothing-here", "https://app.example", "POST"); resp.StatusCode != http.StatusNotFound ||
		resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("preflight of a path with no route: %d %v, want 404 with no CORS header", resp.StatusCode, resp.Header)
	}
	before := snapshot(t, ts.store, "c-1")
	bad := preflight("https://evil.example")
	if bad.StatusCode != http.StatusForbidden || bad.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(strings.Join(bad.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("disallowed preflight: %d %v", bad.StatusCode, bad.Header)
	}
	resp, _ := call(t, "GET", base+"/v1/orders/c-1", "", "", "Origin", "https://evil.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Vary") == "" {
		t.Errorf("disallowed origin's GET: %v", resp.Header)
	}
	resp, _ = call(t, "GET", base+"/v1/orders/c-1", "", "", "Origin", "https://app.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.StatusCode != http.StatusOK {
		t.Errorf("allowed origin's GET: %d %v", resp.StatusCode, resp.Header)
	}
	// A page of the origin reads the server's clock (a position's at) and the version (ETag)
	// from the answer; neither is a header a browser shows another origin unless exposed.
	exposed := strings.Split(resp.Header.Get("Access-Control-Expose-Headers"), ", ")
	for _, h := range []string{"Date", "ETag", "History-Behind", "Retry-After"} {
		if !slices.Contains(exposed, h) {
			t.Errorf("the allowed origin's GET exposes %q, not %s", exposed, h)
		}
	}
	if snapshot(t, ts.store, "c-1") != before {
		t.Error("a preflight changed the store")
	}
	// The pages carry the signed-in party's token in their HTML: never shared with an origin,
	// not even an allowed one.
	for _, page := range []string{"/console", "/restaurants/r-1", "/track/c-1", "/"} {
		resp, _ := call(t, "GET", base+page, "", "", "Origin", "https://app.example")
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("page %s shared with an allowed origin: Access-Control-Allow-Origin %q", page, got)
		}
	}
}

// TestAnonymousWritesHaveTheirOwnBudget: requests that fail authentication are charged to a
// separate, smaller budget, so anonymous POSTs from behind the same address cannot exhaust the
// budget of a system token's holder (issue 13, finding 6).
func TestAnonymousWritesHaveTheirOwnBudget(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) {
		s.Limits = server.Limits{WriteRate: 0.001, WriteBurst: 3}
	})
	base := ts.URL()
	var codes []int
	for range 5 {
		resp, _ := call(t, "POST", base+"/v1/orders", "", `{"id":"anon"}`)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != http.StatusUnauthorized || codes[4] != http.StatusTooManyRequests {
		t.Errorf("anonymous writes: %v, want 401 first and 429 once their own budget is spent", codes)
	}
	system := actorToken(t, auth.RoleSystem, "checkout")
	for i := range 3 {
		resp, body := call(t, "POST", base+"/v1/orders", system, `{"id":"sys-`+string(rune('a'+i))+`"}`)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("system create %d after anonymous writes: %d %s, want 201", i, resp.StatusCode, body)
		}
	}
}

// TestWritesARoleMayNeverSendHaveTheAnonymousBudget: a token whose role may never send a write
// (a customer's, which its page carries for anyone to read, moving an order or assigning a
// courier; a restaurant's posting a position) is charged to the anonymous budget, as an
// unauthenticated request is: it cannot lock the restaurants and couriers behind its address
// out of theirs.
func TestWritesARoleMayNeverSendHaveTheAnonymousBudget(t *testing.T) {
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
		s.Limits = server.Limits{WriteRate: 0.001, WriteBurst: 4, AnonWriteBurst: 2}
	})
	base := ls.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"o-1","restaurant_id":"r-1","customer_id":"u-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	customer, restaurant := actorToken(t, auth.RoleCustomer, "u-1"), actorToken(t, auth.RoleRestaurant, "r-1")
	refused := []struct{ method, path, token, body string }{
		{"POST", "/v1/orders/o-1/status", customer, `{"status":"cancelled"}`},
		{"PUT", "/v1/orders/o-1/courier", customer, `{"courier_id":"c-1"}`},
		{"POST", "/v1/couriers/c-1/location", restaurant, `{"lat":52.5,"lng":13.4}`},
	}
	var codes []int
	for _, q := range append(refused, refused...) {
		resp, _ := call(t, q.method, base+q.path, q.token, q.body)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != http.StatusForbidden || codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Errorf("writes refused to their role: %v, want 403 first and 429 once the anonymous budget is spent", codes)
	}
	for i, st := range []string{"confirmed", "preparing", "ready"} {
		if resp, body := call(t, "POST", base+"/v1/orders/o-1/status", restaurant, `{"status":"`+st+`"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("restaurant's change %d after the refused writes: %d %s, want 200", i, resp.StatusCode, body)
		}
	}
}

// TestCouriersBehindOneAddressPostTheirOwnPositions: a courier's own positions are charged to its
// courier's budget, not its address's: couriers behind one carrier's NAT, each within its own
// budget, are not refused for their address, which still bounds their other writes, positions
// sent with any other token, a courier's own refused before its budget saw them, and every
// position on a server without tokens or without a courier's budget.
func TestCouriersBehindOneAddressPostTheirOwnPositions(t *testing.T) {
	const couriers = 6                      // each posts once: six writes from an address whose budget is three
	const courierRate, courierBurst = 2, 10 // the default courier's budget
	limits := server.Limits{WriteRate: 0.001, WriteBurst: 3}
	t.Run("tokens", func(t *testing.T) {
		ls := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
			s.Auth = &server.Auth{Tokens: authority(t)}
			s.Limits = limits
			tr.Rate, tr.Burst = courierRate, courierBurst
		})
		base := ls.URL()
		for i := range couriers {
			cid := fmt.Sprintf("c-%d", i)
			if code, body := postLocation(t, base, cid, actorToken(t, auth.RoleCourier, cid), `{"lat":52.5,"lng":13.4}`); code != http.StatusOK {
				t.Fatalf("courier %s's position, after %d others from its address: %d %s, want 200", cid, i, code, body)
			}
		}
		admin := actorToken(t, auth.RoleAdmin, "ops")
		var codes []int
		for range 4 {
			code, _ := postLocation(t, base, "c-0", admin, `{"lat":52.5,"lng":13.4}`)
			codes = append(codes, code)
		}
		if codes[0] != http.StatusOK || codes[3] != http.StatusTooManyRequests {
			t.Errorf("positions posted with an admin token: %v, want 200 first and 429 past the address's budget", codes)
		}
	})
	t.Run("refused", func(t *testing.T) {
		// A courier's own post that its courier's budget never sees (malformed, invalid, with an
		// Idempotency-Key) costs its address, as any refused write does.
		ls := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
			s.Auth = &server.Auth{Tokens: authority(t)}
			s.Limits = limits
			tr.Rate, tr.Burst = courierRate, courierBurst
		})
		base, tok := ls.URL(), actorToken(t, auth.RoleCourier, "c-1")
		var codes []int
		for _, body := range []string{`{"lat":`, `{"lat":95,"lng":13.4}`, `{"lat":52.5,"lng":13.4}`, `{"lat":95,"lng":13.4}`} {
			code, _ := postLocation(t, base, "c-1", tok, body)
			codes = append(codes, code)
		}
		if want := []int{http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusOK, http.StatusUnprocessableEntity}; !slices.Equal(codes, want) {
			t.Fatalf("a courier's refused and taken posts: %v, want %v", codes, want)
		}
		resp, body := call(t, "POST", base+"/v1/couriers/c-1/location", tok, `{"lat":52.5,"lng":13.4}`, "Idempotency-Key", "k-1")
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("a fourth refused post from the address (its budget three): %d %s, want 429", resp.StatusCode, body)
		}
	})
	t.Run("no courier budget", func(t *testing.T) {
		ls := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
			s.Auth = &server.Auth{Tokens: authority(t)}
			s.Limits = limits
			tr.Rate = 0
		})
		var codes []int
		for range 4 {
			code, _ := postLocation(t, ls.URL(), "c-1", actorToken(t, auth.RoleCourier, "c-1"), `{"lat":52.5,"lng":13.4}`)
			codes = append(codes, code)
		}
		if codes[0] != http.StatusOK || codes[3] != http.StatusTooManyRequests {
			t.Errorf("a courier's posts on a server without a courier's budget (--location-rate 0): %v, want 200 first and 429 past the address's", codes)
		}
	})
	t.Run("open", func(t *testing.T) {
		ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) { s.Limits = limits })
		var codes []int
		for i := range 4 {
			code, _ := postLocation(t, ls.URL(), fmt.Sprintf("c-%d", i), "", `{"lat":52.5,"lng":13.4}`)
			codes = append(codes, code)
		}
		if codes[0] != http.StatusOK || codes[3] != http.StatusTooManyRequests {
			t.Errorf("positions on a server without tokens: %v, want 200 first and 429 past the address's budget", codes)
		}
	})
}

// TestFullClientTableMakesRoom: a table of DefaultMaxClients addresses, every one seen just now
// (many addresses at once), makes room for a tenth more when one more comes, so that each new
// address after it does not sweep the whole table again under the lock every request takes.
func TestFullClientTableMakesRoom(t *testing.T) {
	if got, most := server.ClientsAfterOverflow(), server.DefaultMaxClients*9/10+1; got > most {
		t.Fatalf("after one address past the bound the table holds %d clients, want at most %d", got, most)
	}
}

// TestAnUnnamedProxyIsToldOfOnce: requests that carry X-Forwarded-For from a peer --trusted-proxies
// does not name are logged once, naming the flag: the per-client limits then count every client
// behind that proxy as one, and refuse them with no other sign why. A named proxy, or a request
// without the header, is not logged.
func TestAnUnnamedProxyIsToldOfOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
		header  bool
		want    int
	}{
		{"unnamed proxy", nil, true, 1},
		{"no proxy", nil, false, 0},
		{"named proxy", loopbackProxy, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &testutil.Buffer{}
			ts := newServer(t, func(s *server.Server) {
				s.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
				s.Limits.TrustedProxies, s.Limits.WriteRate, s.Limits.WriteBurst = tc.proxies, 1000, 1000 // limits counted per client
			})
			for i := range 3 {
				var hdr []string
				if tc.header {
					hdr = []string{"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1)}
				}
				call(t, "POST", ts.URL()+"/v1/orders", "", fmt.Sprintf(`{"id":"p-%d"}`, i), hdr...)
			}
			if n := strings.Count(logs.String(), "--trusted-proxies does not name"); n != tc.want {
				t.Errorf("%d warnings over 3 requests, want %d:\n%s", n, tc.want, logs.String())
			}
		})
	}
}

// TestSpentAnonymousBudgetSaysWhyTheWriteWasRefused: once the anonymous budget of an address is
// spent, a write whose token was refused is answered 429, and the answer still says why the token
// was refused. A courier's app whose token expired mid-shift, behind an address whose refused
// writes others spend too (a carrier's NAT), would otherwise be told to retry later for ever and
// never that it must sign in again.
func TestSpentAnonymousBudgetSaysWhyTheWriteWasRefused(t *testing.T) {
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
		s.Limits = server.Limits{WriteRate: 0.001, WriteBurst: 4, AnonWriteBurst: 2}
	})
	past := authority(t)
	past.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	expired, err := past.SignActor(auth.Actor{Role: auth.RoleCourier, Sub: "c-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	var codes []int
	var challenge string
	for range 3 {
		resp, body := call(t, "POST", ls.URL()+"/v1/couriers/c-1/location", expired, `{"lat":52.5,"lng":13.4}`)
		codes, last, challenge = append(codes, resp.StatusCode), body, resp.Header.Get("WWW-Authenticate")
	}
	if codes[0] != http.StatusUnauthorized || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("posts with an expired token: %v, want 401 first and 429 once the anonymous budget is spent", codes)
	}
	if !strings.Contains(string(last), `"code":"rate_limited"`) || !strings.Contains(string(last), "token_expired: token has expired") {
		t.Errorf("the 429 of a post with an expired token says %s; want rate_limited, naming the expired token", last)
	}
	if want := `Bearer realm="ordercast", error="invalid_token", error_description="The access token expired"`; challenge != want {
		t.Errorf("the 429 of a post with an expired token has WWW-Authenticate %q, want %q, as its 401 has", challenge, want)
	}
}
