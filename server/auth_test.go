package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

var authSecret = []byte("server-test-secret-0123456789abcdef")

func authority(t *testing.T) *auth.Authority {
	t.Helper()
	a, err := auth.New(authSecret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newAuthServer starts a server with auth on (tracking not public).
func newAuthServer(t *testing.T, configure func(*server.Server)) *testServer {
	t.Helper()
	a := authority(t)
	return newServer(t, func(s *server.Server) {
		s.Auth = &server.Auth{Tokens: a}
		if configure != nil {
			configure(s)
		}
	})
}

func actorToken(t *testing.T, role auth.Role, sub string) string {
	t.Helper()
	tok, err := authority(t).SignActor(auth.Actor{Role: role, Sub: sub}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mustCall sends a request as call does and fails the test unless it is answered with status
// want: a step of a test's setting up.
func mustCall(t *testing.T, method, url, token, body string, want int) []byte {
	t.Helper()
	resp, b := call(t, method, url, token, body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	return b
}

// call sends a request with an optional bearer token and extra headers.
func call(t *testing.T, method, url, token, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// A header named in header replaces the one set above; named again there, it is sent twice.
	named := map[string]bool{}
	for i := 0; i+1 < len(header); i += 2 {
		if k := http.CanonicalHeaderKey(header[i]); named[k] {
			req.Header.Add(k, header[i+1])
		} else {
			req.Header.Set(k, header[i+1])
			named[k] = true
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// createAs creates an order with an admin token and returns its tracking token.
func createAs(t *testing.T, base, token, id string) string {
	t.Helper()
	resp, body := call(t, "POST", base+"/v1/orders", token, `{"id":"`+id+`"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
	}
	var got struct {
		TrackingToken string `json:"tracking_token"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.TrackingToken == "" {
		t.Fatalf("create %s: no tracking_token in %s", id, body)
	}
	return got.TrackingToken
}

// TestWatchNeedsTheOrdersToken: every endpoint that reveals an order refuses a missing, wrong,
// expired or tampered token (401) and another order's token (403), with no order data in the body.
func TestWatchNeedsTheOrdersToken(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "")
	tokA := createAs(t, base, admin, "order-a")
	createAs(t, base, admin, "order-b")

	other, _ := auth.New([]byte("another-secret-0123456789abcdefghij"))
	foreign, _, _ := other.SignTracking("order-a", time.Time{}, time.Hour)
	past := authority(t)
	past.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	expired, _, _ := past.SignTracking("order-a", time.Time{}, time.Hour)
	tampered := tokA[:len(tokA)-4] + "AAAA"
	courier := actorToken(t, auth.RoleCourier, "c-1")

	for _, path := range []string{"/v1/orders/order-a", "/v1/orders/order-a/events", "/v1/orders/order-a/stream"} {
		for _, tc := range []struct {
			name  string
			token string
			want  int
		}{
			{"missing", "", 401}, {"garbage", "nope", 401}, {"other secret", foreign, 401},
			{"expired", expired, 401}, {"tampered", tampered, 401}, {"courier actor", courier, 403},
		} {
			resp, body := call(t, "GET", base+path, tc.token, "")
			if resp.StatusCode != tc.want || bytes.Contains(body, []byte("placed")) || bytes.Contains(body, []byte(`"version"`)) {
				t.Errorf("%s with %s token: %d %s, want %d and no order data", path, tc.name, resp.StatusCode, body, tc.want)
			}
		}
	}
	// Order A's token on order B.
	for _, path := range []string{"/v1/orders/order-b", "/v1/orders/order-b/events", "/v1/orders/order-b/stream"} {
		resp, body := call(t, "GET", base+path, tokA, "")
		if resp.StatusCode != http.StatusForbidden || bytes.Contains(body, []byte("placed")) || bytes.Contains(body, []byte("order-b")) {
			t.Errorf("%s with order A's token: %d %s, want 403 without data", path, resp.StatusCode, body)
		}
	}
	// The right token opens A; an admin token opens anything; GET has no tracking_token.
	for _, tok := range []string{tokA, admin} {
		resp, body := call(t, "GET", base+"/v1/orders/order-a", tok, "")
		if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte("tracking_token")) {
			t.Errorf("GET order-a: %d %s", resp.StatusCode, body)
		}
	}
	// The all-orders stream needs admin or system.
	if resp, _ := call(t, "GET", base+"/v1/stream", tokA, ""); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/v1/stream with a tracking token: %d", resp.StatusCode)
	}
	// The home page lists no orders to strangers.
	if _, body := call(t, "GET", base+"/", "", ""); bytes.Contains(body, []byte("order-a")) {
		t.Error("the home page lists orders without public tracking")
	}
}

// TestQueryTokenStreamsAndIsRedacted: the token query parameter opens the stream, as
// EventSource needs, and appears in no log line.
func TestQueryTokenStreamsAndIsRedacted(t *testing.T) {
	var logs testutil.Buffer
	ts := newAuthServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	base := ts.URL()
	tok := createAs(t, base, actorToken(t, auth.RoleSystem, "checkout"), "q-1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/q-1/stream?token="+url.QueryEscape(tok), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream with ?token=: %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	for err == nil && !strings.HasPrefix(line, "data:") {
		line, err = br.ReadString('\n')
	}
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	cancel()
	resp.Body.Close()
	// A refused stream with a bad query token is logged too.
	call(t, "GET", base+"/v1/orders/q-1/stream?token=bad"+tok[:20], "", "")
	// And the http.Server's own error log goes through the same redaction.
	server.ErrorLog(ts.Server).Printf("http: something about GET /v1/orders/q-1/stream?lastEventId=1&token=%s failed", tok)
	ts.close(t)

	out := logs.String()
	if !strings.Contains(out, "/v1/orders/q-1/stream") {
		t.Fatalf("the stream was not logged:\n%s", out)
	}
	if strings.Contains(out, tok) || strings.Contains(out, tok[:20]) {
		t.Errorf("the token appears in the log:\n%s", out)
	}
	if !strings.Contains(out, "token=REDACTED") {
		t.Errorf("the error log line was not redacted:\n%s", out)
	}
}

// TestAPlatformTokenIsNotTakenFromTheURL: an admin's or system token given as ?token= (the
// fallback for an EventSource on another origin) read and watched every order, and the URL,
// with the token, went into every proxy's and server's log on the way. It is refused, 401 saying
// where it goes, on every read that takes ?token=; in the header it is taken, and a party's or a
// tracking token in the URL still is.
func TestAPlatformTokenIsNotTakenFromTheURL(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	system := actorToken(t, auth.RoleSystem, "dispatch")
	tracking := createAs(t, base, system, "u-1")
	open := func(path, query, header string) *http.Response {
		t.Helper()
		if query != "" {
			path += "?token=" + url.QueryEscape(query)
		}
		var headers []string
		if header != "" {
			headers = append(headers, header)
		}
		return openStreamAs(t, base+path, "127.0.0.1", headers...)
	}
	for _, tok := range []string{system, actorToken(t, auth.RoleAdmin, "ops")} {
		for _, path := range []string{"/v1/orders/u-1", "/v1/orders/u-1/events", "/v1/orders/u-1/stream", "/v1/stream", "/v1/restaurants/r-1/stream", "/v1/orders"} {
			resp := open(path, tok, "")
			bound := time.AfterFunc(10*time.Second, func() { resp.Body.Close() }) // a stream let in never ends
			body, _ := io.ReadAll(resp.Body)
			bound.Stop()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "send it in the Authorization header") {
				t.Errorf("GET %s?token=<a platform token>: %d %s, want 401 saying where it goes", path, resp.StatusCode, body)
			}
		}
	}
	for what, resp := range map[string]*http.Response{
		"a platform token in the header":         open("/v1/orders/u-1", "", system),
		"a tracking token in the URL":            open("/v1/orders/u-1", tracking, ""),
		"a restaurant's token in the URL":        open("/v1/restaurants/r-1/stream", actorToken(t, auth.RoleRestaurant, "r-1"), ""),
		"a platform token in the header, stream": open("/v1/stream", "", system),
	} {
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			t.Errorf("%s: %d %s, want 200", what, resp.StatusCode, body)
		}
	}
}

// TestRolesAgainstTransitions: each role against each status, from an order in placed, or at the
// stage where the role's part of it begins (a courier's: TestCourierMovesOnlyWhatItsPartHasReached);
// the event records the actor, and a refusal changes nothing.
func TestRolesAgainstTransitions(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "")
	targets := []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady,
		ordercast.StatusOutForDelivery, ordercast.StatusDelivered, ordercast.StatusCancelled}
	allowed := map[auth.Role][]ordercast.Status{
		auth.RoleRestaurant: {ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady, ordercast.StatusCancelled},
		auth.RoleCourier:    {ordercast.StatusOutForDelivery, ordercast.StatusDelivered},
		auth.RoleAdmin:      targets,
		auth.RoleSystem:     targets,
		auth.RoleSupport:    targets,
	}
	n := 0
	for _, role := range auth.Roles {
		tok := actorToken(t, role, "x-"+string(role))
		for _, st := range targets {
			n++
			id := "rt-" + string(role) + "-" + string(st)
			// Each party role acts on an order it owns: the restaurant's, assigned to the courier.
			if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`","restaurant_id":"x-restaurant","customer_id":"x-customer"}`); resp.StatusCode != http.StatusCreated {
				t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
			}
			if resp, body := call(t, "PUT", base+"/v1/orders/"+id+"/courier", admin, `{"courier_id":"x-courier"}`); resp.StatusCode != http.StatusOK {
				t.Fatalf("assign %s: %d %s", id, resp.StatusCode, body)
			}
			if from := (auth.Actor{Role: role}).NotBefore(st); from != "" {
				if resp, body := call(t, "POST", base+"/v1/orders/"+id+"/status", admin, `{"status":"`+string(from)+`"}`); resp.StatusCode != http.StatusOK {
					t.Fatalf("move %s to %s: %d %s", id, from, resp.StatusCode, body)
				}
			}
			before := snapshot(t, ts.store, id)
			resp, body := call(t, "POST", base+"/v1/orders/"+id+"/status", tok, `{"status":"`+string(st)+`"}`)
			want := http.StatusForbidden
			for _, a := range allowed[role] {
				if a == st {
					want = http.StatusOK
				}
			}
			if resp.StatusCode != want {
				t.Errorf("%s sets %s: %d %s, want %d", role, st, resp.StatusCode, body, want)
				continue
			}
			if want != http.StatusOK {
				if after := snapshot(t, ts.store, id); after != before {
					t.Errorf("%s sets %s: refused, but the store changed", role, st)
				}
				continue
			}
			// The answer shows the event only to roles that may read the order: read the store.
			evs, err := ts.store.EventsAfter(context.Background(), id, 0, 0)
			if err != nil || len(evs) == 0 {
				t.Fatalf("events of %s: %v", id, err)
			}
			got := evs[len(evs)-1]
			if wantActor := string(role) + ":x-" + string(role); got.Actor != wantActor {
				t.Errorf("%s sets %s: actor %q, want %q", role, st, got.Actor, wantActor)
			}
		}
	}
	// Creation: admin and system only; restaurant and courier refused, nothing stored.
	for _, role := range []auth.Role{auth.RoleRestaurant, auth.RoleCourier} {
		id := "by-" + string(role)
		before := snapshot(t, ts.store, id)
		resp, _ := call(t, "POST", base+"/v1/orders", actorToken(t, role, ""), `{"id":"`+id+`"}`)
		if resp.StatusCode != http.StatusForbidden || snapshot(t, ts.store, id) != before {
			t.Errorf("%s creates: %d, want 403 and nothing stored", role, resp.StatusCode)
		}
	}
	// Changes need an actor token in the header: none, or one only in the query, is 401; a
	// tracking token, a good token for something else (watching its order), is 403.
	tok := createAs(t, base, admin, "hdr")
	before := snapshot(t, ts.store, "hdr")
	for _, tc := range []struct {
		name, query, tok string
		want             int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"tracking token", "", tok, http.StatusForbidden},
		{"query token", "?token=" + admin, "", http.StatusUnauthorized},
	} {
		resp, body := call(t, "POST", base+"/v1/orders/hdr/status"+tc.query, tc.tok, `{"status":"cancelled"}`)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	if snapshot(t, ts.store, "hdr") != before {
		t.Error("a refused change changed the store")
	}
}

// TestTrackingCookieFlow: /track/{id}?token= sets an HttpOnly, SameSite=Strict cookie scoped to
// the order's API path and redirects to the clean URL; the cookie then opens the order. Only a
// customer's tracking token for that order sets it.
func TestTrackingCookieFlow(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	tok := createAs(t, base, actorToken(t, auth.RoleAdmin, ""), "ck-1")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(base + "/track/ck-1?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/track/ck-1" {
		t.Fatalf("got %d to %q, want 303 to /track/ck-1", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies: %v", cookies)
	}
	c := cookies[0]
	if c.Name != server.TrackingCookie || c.Path != "/v1/orders/ck-1" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure {
		t.Errorf("cookie %+v", c)
	}
	req, _ := http.NewRequest("GET", base+"/v1/orders/ck-1", nil)
	req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	if got.StatusCode != http.StatusOK {
		t.Errorf("GET with the cookie: %d", got.StatusCode)
	}
	// Another order's token sets no cookie.
	resp, err = noRedirect.Get(base + "/track/ck-2?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) != 0 {
		t.Errorf("a token for ck-1 set a cookie for ck-2")
	}
	// Nor does a courier's tracking token for the order: a courier could send the customer such
	// a link and replace the customer's cookie with one that dies when the order changes hands.
	courierTok, _, err := authority(t).SignCourierTracking("ck-1", "c-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = noRedirect.Get(base + "/track/ck-1?token=" + courierTok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 0 {
		t.Errorf("a courier's tracking token in a link: %d, cookies %v; want the page, and no cookie", resp.StatusCode, resp.Cookies())
	}
}

// TestAPagesTrackingTokenIsNoHandOver: the tracking token a restaurant's board (or the console)
// keeps for the order's tracking page reads the order there, but a link that hands it over, as
// a customer's link hands over the token made with the order, sets no cookie: the restaurant
// could otherwise send the customer a link that replaces the customer's cookie with one that
// dies with the board's token. The customer's own link still replaces an older cookie.
func TestAPagesTrackingTokenIsNoHandOver(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	resp, body := call(t, "POST", base+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"), `{"id":"o-1","restaurant_id":"r-1"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created api.CreateOrderResponse
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.TrackingToken == "" {
		t.Fatalf("create's answer %s: %v", body, err)
	}
	for _, page := range []struct{ path, cookie, tok string }{
		{"/restaurants/r-1/track/o-1", server.PartyCookie, actorToken(t, auth.RoleRestaurant, "r-1")},
		{"/console/track/o-1", server.ConsoleCookie, actorToken(t, auth.RoleAdmin, "ops")},
	} {
		req, _ := http.NewRequest("GET", base+page.path, nil)
		req.AddCookie(&http.Cookie{Name: page.cookie, Value: page.tok})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var made string
		for _, c := range resp.Cookies() {
			if c.Name == server.TrackingCookie {
				made = c.Value
			}
		}
		if made == "" {
			t.Fatalf("%s set no tracking cookie: %v", page.path, resp.Cookies())
		}
		if got, _ := call(t, "GET", base+"/v1/orders/o-1", made, ""); got.StatusCode != http.StatusOK {
			t.Errorf("%s's tracking token reads the order: %d, want 200", page.path, got.StatusCode)
		}
		handOver, err := noRedirect.Get(base + "/track/o-1?token=" + url.QueryEscape(made))
		if err != nil {
			t.Fatal(err)
		}
		handOver.Body.Close()
		if handOver.StatusCode != http.StatusSeeOther || len(handOver.Cookies()) != 0 {
			t.Errorf("%s's tracking token in a link: %d, cookies %v; want the page, and no cookie", page.path, handOver.StatusCode, handOver.Cookies())
		}
	}
	handOver, err := noRedirect.Get(base + "/track/o-1?token=" + url.QueryEscape(created.TrackingToken))
	if err != nil {
		t.Fatal(err)
	}
	handOver.Body.Close()
	if len(handOver.Cookies()) != 1 || handOver.Cookies()[0].Value != created.TrackingToken {
		t.Errorf("the customer's link set cookies %v, want its token's", handOver.Cookies())
	}
}

// TestPublicTracking: with PublicTracking, watching needs no token but changing still does.
func TestPublicTracking(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) { s.Auth.PublicTracking = true })
	base := ts.URL()
	createAs(t, base, actorToken(t, auth.RoleAdmin, ""), "pub")
	if resp, _ := call(t, "GET", base+"/v1/orders/pub", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("public GET: %d", resp.StatusCode)
	}
	if resp, _ := call(t, "POST", base+"/v1/orders/pub/status", "", `{"status":"confirmed"}`); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("public change without a token: %d, want 401", resp.StatusCode)
	}
}

// TestClientWatchesWithTheTrackingToken is the flow of a checkout service and its customer's
// app through the Go client: create with an actor token, hand the returned tracking token on,
// watch with it; the same token on another order is refused for good.
func TestClientWatchesWithTheTrackingToken(t *testing.T) {
	ts := newAuthServer(t, nil)
	checkout := &client.Client{BaseURL: ts.URL(), Token: actorToken(t, auth.RoleSystem, "checkout")}
	created, err := checkout.CreateOrder(context.Background(), client.CreateOrderRequest{ID: "o-mine"})
	if err != nil || !created.Created || created.TrackingToken == "" {
		t.Fatalf("create: %+v, %v; want a new order with a tracking token", created, err)
	}
	if _, err := checkout.CreateOrder(context.Background(), client.CreateOrderRequest{ID: "o-other"}); err != nil {
		t.Fatal(err)
	}

	app := &client.Client{BaseURL: ts.URL(), Token: created.TrackingToken}
	w := app.Watch(context.Background(), "o-mine", client.WatchOptions{})
	t.Cleanup(func() { w.Close() })
	wantSeqStatus(t, watchNext(t, w), 1, "placed")
	if _, err := checkout.SetStatus(context.Background(), "o-mine", client.SetStatusRequest{Status: "confirmed"}); err != nil {
		t.Fatal(err)
	}
	wantSeqStatus(t, watchNext(t, w), 2, "confirmed")

	other := app.Watch(context.Background(), "o-other", client.WatchOptions{})
	t.Cleanup(func() { other.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := other.Next(ctx); ordercast.ErrorCode(err) != ordercast.EForbidden {
		t.Fatalf("watching another order with this token: %v, want %s", err, ordercast.EForbidden)
	}
}

// TestCourierLosesAReassignedOrder: a courier reads an order only while it is assigned to it,
// and that holds for what it already has open. Its stream ends before the event that gives the
// order to another courier (which it must not read), with the end counted as revoked; its long
// poll waiting on the order is refused when that change answers it; a new stream is refused;
// the new courier's is not.
func TestCourierLosesAReassignedOrder(t *testing.T) {
	bothHoldings(t, testCourierLosesAReassignedOrder)
}

func testCourierLosesAReassignedOrder(t *testing.T, hold holding) {
	ts := newAuthServer(t, func(s *server.Server) { s.HoldStreams = s.HoldStreams && bool(hold) })
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	c1, c2 := actorToken(t, auth.RoleCourier, "c-1"), actorToken(t, auth.RoleCourier, "c-2")
	must := func(method, path, body string, want int) {
		t.Helper()
		if resp, b := call(t, method, base+path, admin, body); resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
	}
	must("POST", "/v1/orders", `{"id":"o-1","restaurant_id":"r-1"}`, http.StatusCreated)
	must("PUT", "/v1/orders/o-1/courier", `{"courier_id":"c-1"}`, http.StatusOK)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/o-1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+c1)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("c-1 opens the stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	sse := client.NewSSEReader(resp.Body)
	// A fresh stream opens with the last status event, then what came after it.
	for _, want := range []string{"1", "2"} {
		if ev, err := sse.Next(); err != nil || ev.ID != want {
			t.Fatalf("c-1's opening event: %+v, %v; want seq %s (the status, then the assignment)", ev, err, want)
		}
	}
	must("POST", "/v1/orders/o-1/status", `{"status":"confirmed"}`, http.StatusOK)
	if ev, err := sse.Next(); err != nil || ev.ID != "3" {
		t.Fatalf("c-1's next event: %+v, %v; want seq 3", ev, err)
	}

	// A long poll of c-1's waits on the order past seq 3.
	polled := make(chan int, 1)
	go func() {
		preq, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/o-1?wait=10s&after_version=3", nil)
		preq.Header.Set("Authorization", "Bearer "+c1)
		presp, err := http.DefaultClient.Do(preq)
		if err != nil {
			polled <- 0
			return
		}
		body, _ := io.ReadAll(presp.Body)
		presp.Body.Close()
		if strings.Contains(string(body), "c-2") {
			t.Errorf("c-1's refused long poll tells who has the order now: %s", body)
		}
		polled <- presp.StatusCode
	}()
	testutil.WaitFor(t, "the long poll to wait", func() bool { return ts.hub.Watchers() == 2 })

	must("PUT", "/v1/orders/o-1/courier", `{"courier_id":"c-2"}`, http.StatusOK)
	must("POST", "/v1/orders/o-1/status", `{"status":"preparing","note":"for c-2 only"}`, http.StatusOK)
	// It ends saying why, with no id of its own (the last event's stands: a reconnect would be
	// refused anyway), and names no one.
	if ev, err := sse.Next(); err != nil || ev.Type != api.EventEnd || ev.ID != "3" ||
		!strings.Contains(ev.Data, `"reason":"`+api.EndOrderReassigned+`"`) || strings.Contains(ev.Data, "c-2") {
		t.Fatalf("after the order went to c-2, c-1's stream gave %+v, %v; want event: end, %s", ev, err, api.EndOrderReassigned)
	}
	if ev, err := sse.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after its end event, c-1's stream gave %+v, %v; want its end", ev, err)
	}
	if code := <-polled; code != http.StatusForbidden {
		t.Fatalf("c-1's long poll answered %d after the order went to c-2, want 403", code)
	}
	waitMetric(t, http.DefaultClient, base, 1, "ordercast_streams_closed_total", "reason", "revoked")
	for tok, want := range map[string]int{c1: http.StatusForbidden, c2: http.StatusOK} {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/o-1/stream", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("a new stream after the reassignment: %d, want %d", resp.StatusCode, want)
		}
	}
}

// TestUnauthorizedNamesTheScheme: every 401 carries WWW-Authenticate (RFC 9110 §11.6.1) naming
// Bearer, with error="invalid_token" when a token was presented and refused and no error code
// when none was (RFC 6750 §3.1), wherever the token travels; other refusals carry none. A token
// past its time is told apart, in the challenge (error_description) and in the body's code
// (token_expired), from one refused for good: only it is cured by a new token.
func TestUnauthorizedNamesTheScheme(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	createAs(t, base, actorToken(t, auth.RoleAdmin, ""), "o-1")
	const (
		none    = `Bearer realm="ordercast"`
		refused = `Bearer realm="ordercast", error="invalid_token"`
		ended   = `Bearer realm="ordercast", error="invalid_token", error_description="The access token expired"`
	)
	past := authority(t)
	past.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	expired, _ := past.SignActor(auth.Actor{Role: auth.RoleAdmin}, time.Hour)
	expiredLink, _, _ := past.SignTracking("o-1", time.Time{}, time.Hour)
	tracking, _, _ := authority(t).SignTracking("o-1", time.Time{}, time.Hour)
	for _, tc := range []struct {
		name, method, path, token, body string
		header                          []string
		status                          int
		want                            string
	}{
		{"a change without a token", "POST", "/v1/orders/o-1/status", "", `{"status":"confirmed"}`, nil, 401, none},
		{"a change with a garbage token", "POST", "/v1/orders/o-1/status", "nope", `{"status":"confirmed"}`, nil, 401, refused},
		{"a change with an expired token", "POST", "/v1/orders", expired, `{}`, nil, 401, ended},
		{"a change with a tracking token", "POST", "/v1/orders/o-1/status", tracking, `{"status":"confirmed"}`, nil, 403, ""}, // a good token for something else
		{"a change with only a cookie", "POST", "/v1/orders/o-1/status", "", `{"status":"confirmed"}`, []string{"Cookie", server.TrackingCookie + "=" + tracking}, 401, none},
		{"a read without a token", "GET", "/v1/orders/o-1", "", "", nil, 401, none},
		{"a read with a bad query token", "GET", "/v1/orders/o-1/events?token=nope", "", "", nil, 401, refused},
		{"a read with a bad cookie", "GET", "/v1/orders/o-1", "", "", []string{"Cookie", server.TrackingCookie + "=nope"}, 401, refused},
		{"all orders without a token", "GET", "/v1/stream", "", "", nil, 401, none},
		{"a party stream with an expired token", "GET", "/v1/restaurants/r-1/stream", expired, "", nil, 401, ended},
		{"a read with an expired tracking link", "GET", "/v1/orders/o-1?token=" + expiredLink, "", "", nil, 401, ended},
		{"a stream with an expired tracking cookie", "GET", "/v1/orders/o-1/stream", "", "", []string{"Cookie", server.TrackingCookie + "=" + expiredLink}, 401, ended},
		{"a read of another order", "GET", "/v1/orders/o-2", tracking, "", nil, 403, ""},
		{"a change the role may not make", "POST", "/v1/orders", actorToken(t, auth.RoleCustomer, "u-1"), `{}`, nil, 403, ""},
	} {
		resp, body := call(t, tc.method, base+tc.path, tc.token, tc.body, tc.header...)
		if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != tc.status || strings.Join(got, "\n") != tc.want {
			t.Errorf("%s: %d WWW-Authenticate %q (%s), want %d %q", tc.name, resp.StatusCode, got, body, tc.status, tc.want)
		}
		if wantExpired := tc.want == ended; strings.Contains(string(body), `"code":"token_expired"`) != wantExpired {
			t.Errorf("%s: %s, want the code token_expired: %v", tc.name, body, wantExpired)
		}
	}
}

// TestAuthorizationOfAnotherSchemeIsNamed: a token sent in Authorization without "Bearer ", or
// a header of another scheme, is refused saying how the header takes a token, without repeating
// what was sent; and a proxy's Basic credentials beside a page's cookie do not stop the cookie.
func TestAuthorizationOfAnotherSchemeIsNamed(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	createAs(t, base, admin, "o-1")
	tracking, _, _ := authority(t).SignTracking("o-1", time.Time{}, time.Hour)
	for _, tc := range []struct{ name, method, path, body, header string }{
		{"a change with a bare token", "POST", "/v1/orders/o-1/status", `{"status":"confirmed"}`, admin},
		{"a read with a bare token", "GET", "/v1/orders/o-1", "", tracking},
		{"a party stream with Basic", "GET", "/v1/restaurants/r-1/stream", "", "Basic dXNlcjpwYXNz"},
		{"all orders with an empty Bearer", "GET", "/v1/stream", "", "Bearer "},
	} {
		resp, body := call(t, tc.method, base+tc.path, "", tc.body, "Authorization", tc.header)
		sent := strings.TrimPrefix(strings.TrimPrefix(tc.header, "Basic "), "Bearer ")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `takes a token as \"Bearer \u003ctoken\u003e\"`) ||
			sent != "" && strings.Contains(string(body), sent[len(sent)-8:]) {
			t.Errorf("%s: %d %s, want 401 naming the Bearer scheme and not repeating the header", tc.name, resp.StatusCode, body)
		}
	}
	resp, body := call(t, "GET", base+"/v1/orders/o-1", "", "", "Authorization", "Basic dXNlcjpwYXNz", "Cookie", server.TrackingCookie+"="+tracking)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a read with Basic credentials and the tracking cookie: %d %s, want 200", resp.StatusCode, body)
	}
}

// TestACreatesAnswerSaysWhenItsTrackingTokenExpires: an app handed a tracking token at the
// order's creation could learn when it stops being accepted only by reading the token itself.
// The answer says so (tracking_token_expires_at, the token's own exp), and so does a replay's,
// whose token is signed anew.
func TestACreatesAnswerSaysWhenItsTrackingTokenExpires(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, replay := range []bool{false, true} {
		before := time.Now()
		resp, body := call(t, "POST", ts.URL()+"/v1/orders", admin, `{"id":"o-exp"}`, "Idempotency-Key", "k-exp")
		if resp.StatusCode != http.StatusCreated || (resp.Header.Get("Idempotent-Replayed") == "true") != replay {
			t.Fatalf("create (a replay %v): %d %s, replayed %q", replay, resp.StatusCode, body, resp.Header.Get("Idempotent-Replayed"))
		}
		var got api.CreateOrderResponse
		if err := json.Unmarshal(body, &got); err != nil || got.TrackingTokenExpiresAt == nil {
			t.Fatalf("create's answer %s: %v; want tracking_token_expires_at", body, err)
		}
		var claims jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(got.TrackingToken, &claims); err != nil || claims.ExpiresAt == nil {
			t.Fatalf("the tracking token %q: %v", got.TrackingToken, err)
		}
		if at := *got.TrackingTokenExpiresAt; !at.Equal(claims.ExpiresAt.Time) || at.Before(before.Add(auth.DefaultTrackingTTL-time.Minute)) {
			t.Errorf("a replay %v: tracking_token_expires_at %v, the token's exp %v; want them equal, a day from now", replay, at, claims.ExpiresAt.Time)
		}
	}
}

// TestATrackingTokenReadsItsOrderNotOneGivenItsIdLater: once an ended order is purged, its id
// may be given to a new order. A tracking token of the first (its creation's, one made for it
// after it ended) read the new one, another customer's details and, out for delivery, where its
// courier is. A token names its order's creation, and reads that order only (403, no data); the
// new order's own token reads it, and so does one that names no creation (ordercast token).
func TestATrackingTokenReadsItsOrderNotOneGivenItsIdLater(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	first := createAs(t, base, admin, "reused")
	var again api.TrackingTokenResponse
	if err := json.Unmarshal(mustCall(t, "POST", base+"/v1/orders/reused/tracking-token", actorToken(t, auth.RoleSupport, "ana"), "", http.StatusOK), &again); err != nil {
		t.Fatal(err)
	}
	mustCall(t, "POST", base+"/v1/orders/reused/status", admin, `{"status":"delivered"}`, http.StatusOK)
	if n, err := ts.store.PurgeEnded(t.Context(), time.Now().Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v; want the order purged", n, err)
	}
	var second api.CreateOrderResponse
	if err := json.Unmarshal(mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"reused","details":{"customer":"Someone Else"}}`, http.StatusCreated), &second); err != nil {
		t.Fatal(err)
	}
	anyOfTheID, _, err := authority(t).SignTracking("reused", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/orders/reused", "/v1/orders/reused/events", "/v1/orders/reused/stream"} {
		for name, tok := range map[string]string{"the first order's": first, "one made for the first order after it ended": again.TrackingToken} {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if resp.StatusCode == http.StatusForbidden { // a stream let in would never end
				body, _ = io.ReadAll(resp.Body)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || bytes.Contains(body, []byte("Someone Else")) || bytes.Contains(body, []byte(`"version"`)) {
				t.Errorf("%s with %s token: %d %s, want 403 and no order data", path, name, resp.StatusCode, body)
			}
		}
	}
	for name, tok := range map[string]string{"the new order's own": second.TrackingToken, "a token that names no creation": anyOfTheID} {
		if _, body := call(t, "GET", base+"/v1/orders/reused", tok, ""); !bytes.Contains(body, []byte("Someone Else")) {
			t.Errorf("%s: %s, want the order of its id", name, body)
		}
	}
}
