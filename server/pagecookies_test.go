package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// cookieNamed returns the cookie of resp named name whose path is path, or nil.
func cookieNamed(resp *http.Response, name, path string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.Path == path {
			return c
		}
	}
	return nil
}

// wantStreamCookie checks that resp sets the stream cookie to tok at path, HttpOnly and
// SameSite=Strict (plain HTTP here, so not Secure), and that this cookie alone opens the stream
// at path.
func wantStreamCookie(t *testing.T, resp *http.Response, base, path, tok string) {
	t.Helper()
	c := cookieNamed(resp, server.StreamCookie, path)
	if c == nil || c.Value != tok || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.MaxAge < 0 {
		t.Fatalf("stream cookie at %s: %+v among %v; want the token, HttpOnly, SameSite=Strict", path, c, resp.Cookies())
	}
	if code := streamStatus(t, base+path, c); code != http.StatusOK {
		t.Errorf("%s with only the stream cookie: %d, want 200", path, code)
	}
}

// streamStatus opens the stream at url with cookie c (none when nil) and returns the status of
// its answer, closing the stream at once.
func streamStatus(t *testing.T, url string, c *http.Cookie) int {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if c != nil {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	cancel() // a stream that opened would never end by itself
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestPagesSetTheirStreamCookie: the console and a party's page hand their stream the page's
// token in an HttpOnly, SameSite=Strict cookie whose path is exactly the stream the page opens,
// so that its EventSource needs no token in its URL; that cookie alone opens the stream, which
// without it is refused. So for every way a page gets its token: the party page's ?token=
// hand-over, the console's sign-in form, a page rendered from its own cookie, and the tokens
// demo mode mints for the console and a party's page.
func TestPagesSetTheirStreamCookie(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()

	for _, tc := range []struct {
		page, stream string
		tok          string
	}{
		{"/restaurants/shop:r-1", "/v1/restaurants/shop:r-1/stream", actorToken(t, auth.RoleRestaurant, "shop:r-1")},
		{"/customers/u-1", "/v1/customers/u-1/stream", actorToken(t, auth.RoleCustomer, "u-1")},
		{"/couriers/c:1", "/v1/couriers/c:1/stream", actorToken(t, auth.RoleCourier, "c:1")},
	} {
		if code := streamStatus(t, base+tc.stream, nil); code != http.StatusUnauthorized {
			t.Errorf("%s without a credential: %d, want 401", tc.stream, code)
		}
		resp, err := noRedirect.Get(base + tc.page + "?token=" + tc.tok)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.page {
			t.Errorf("hand-over of %s: %d to %q, want 303 to the clean URL", tc.page, resp.StatusCode, resp.Header.Get("Location"))
		}
		if c := cookieNamed(resp, server.PartyCookie, tc.page); c == nil || c.Value != tc.tok {
			t.Errorf("hand-over of %s: page cookie %+v among %v", tc.page, c, resp.Cookies())
		}
		wantStreamCookie(t, resp, base, tc.stream, tc.tok)
	}

	admin := actorToken(t, auth.RoleAdmin, "ops")
	resp := signIn(t, base, admin, nil)
	_ = resp.Body.Close()
	if c := cookieNamed(resp, server.ConsoleCookie, "/console"); c == nil || c.Value != admin {
		t.Errorf("console sign-in: page cookie %+v among %v", c, resp.Cookies())
	}
	wantStreamCookie(t, resp, base, "/v1/stream", admin)

	// A console rendered from its own cookie sets the stream's too, so a page cookie from
	// before the stream cookie existed still streams.
	req, _ := http.NewRequest("GET", base+"/console", nil)
	req.AddCookie(&http.Cookie{Name: server.ConsoleCookie, Value: admin})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	wantStreamCookie(t, resp, base, "/v1/stream", admin)

	// Demo mode mints the pages' tokens; their streams take them from the cookie too (public
	// tracking is off here, so that the cookie is what opens them).
	demo := newAuthServer(t, func(s *server.Server) { s.Auth.ConsoleToken = true })
	for _, tc := range []struct{ page, stream string }{
		{"/console", "/v1/stream"},
		{"/restaurants/r-9", "/v1/restaurants/r-9/stream"},
		{"/customers/u-9", "/v1/customers/u-9/stream"},
		{"/couriers/c-9", "/v1/couriers/c-9/stream"},
	} {
		resp, body := call(t, "GET", demo.URL()+tc.page, "", "")
		c := cookieNamed(resp, server.StreamCookie, tc.stream)
		if c == nil || !strings.Contains(string(body), `name="ordercast-token" content="`+c.Value+`"`) {
			t.Fatalf("demo %s: stream cookie %+v, want the token the page carries", tc.page, c)
		}
		wantStreamCookie(t, resp, demo.URL(), tc.stream, c.Value)
	}
}

// TestPageCookiesLastAsLongAsTheirToken: the cookies that carry the token handed to a party's
// page end a day after that token expires (Expires and Max-Age), not with the browser's session:
// a board kept open on a kitchen's tablet through a dinner service opens again from its cookie
// after the browser restarts, for as long as its token is good, and says it expired after. The
// console's, which may hold an admin token of months, end with the session. Every other
// attribute stays: HttpOnly, Secure (here behind a trusted proxy that ended TLS), the page's
// SameSite=Lax and its stream's Strict, and each one's path.
func TestPageCookiesLastAsLongAsTheirToken(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) { s.Limits.TrustedProxies = loopbackProxy })
	base := ts.URL()
	sign := func(a auth.Actor) (string, time.Time) {
		t.Helper()
		tokens := authority(t)
		tok, err := tokens.SignActor(a, 12*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, exp, err := tokens.ActorExpiry(tok)
		if err != nil {
			t.Fatal(err)
		}
		return tok, exp
	}
	board, boardExp := sign(auth.Actor{Role: auth.RoleRestaurant, Sub: "r-7"})
	boardExp = boardExp.Add(24 * time.Hour)
	admin, _ := sign(auth.Actor{Role: auth.RoleAdmin, Sub: "ops"})
	// send makes a request as the proxy that ended the browser's TLS would, with cookie when not nil.
	send := func(req *http.Request, cookie *http.Cookie) *http.Response {
		t.Helper()
		req.Header.Set("X-Forwarded-Proto", "https")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	// endsWithToken checks that resp sets cookie name at path to tok, ending at exp (a day after
	// the token's; zero: with the session).
	endsWithToken := func(what string, resp *http.Response, name, path string, sameSite http.SameSite, tok string, exp time.Time) {
		t.Helper()
		c := cookieNamed(resp, name, path)
		if c == nil || c.Value != tok || !c.HttpOnly || !c.Secure || c.SameSite != sameSite {
			t.Errorf("%s: cookie %s at %s is %+v among %v; want the token, HttpOnly, Secure, SameSite %v", what, name, path, c, resp.Cookies(), sameSite)
			return
		}
		if exp.IsZero() {
			if !c.Expires.IsZero() || c.MaxAge != 0 {
				t.Errorf("%s: cookie %s at %s expires %v (Max-Age %d), want a session cookie", what, name, path, c.Expires, c.MaxAge)
			}
			return
		}
		if d := c.Expires.Sub(exp); d < -time.Second || d > time.Second {
			t.Errorf("%s: cookie %s at %s expires %v, want the token's exp, %v", what, name, path, c.Expires, exp)
		}
		if d := time.Duration(c.MaxAge)*time.Second - time.Until(exp); d < -2*time.Second || d > time.Second {
			t.Errorf("%s: cookie %s at %s has Max-Age %d s, want the %v its token has left", what, name, path, c.MaxAge, time.Until(exp).Round(time.Second))
		}
	}

	req, _ := http.NewRequest("GET", base+"/restaurants/r-7?token="+board, nil)
	resp := send(req, nil)
	endsWithToken("the board's hand-over", resp, server.PartyCookie, "/restaurants/r-7", http.SameSiteLaxMode, board, boardExp)
	endsWithToken("the board's hand-over", resp, server.StreamCookie, "/v1/restaurants/r-7/stream", http.SameSiteStrictMode, board, boardExp)

	// The board opened from its cookie alone, as a shortcut to its clean URL opens it after a
	// restart: its stream's cookie is set again, ending with the token too.
	req, _ = http.NewRequest("GET", base+"/restaurants/r-7", nil)
	resp = send(req, &http.Cookie{Name: server.PartyCookie, Value: board})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the board opened from its cookie: %d, want 200", resp.StatusCode)
	}
	endsWithToken("the board opened from its cookie", resp, server.StreamCookie, "/v1/restaurants/r-7/stream", http.SameSiteStrictMode, board, boardExp)

	req, _ = http.NewRequest("POST", base+"/console", strings.NewReader("token="+admin))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp = send(req, nil)
	endsWithToken("the console's sign-in", resp, server.ConsoleCookie, "/console", http.SameSiteLaxMode, admin, time.Time{})
	endsWithToken("the console's sign-in", resp, server.StreamCookie, "/v1/stream", http.SameSiteStrictMode, admin, time.Time{})
}

// TestPageCookiesNeverAuthorizeAChange: no cookie the pages set, holding even an admin token,
// changes anything, at any path that changes something or at the streams' own paths: a change
// takes its token from the Authorization header only, so a request another site makes the
// browser send, or a cookie leaked with a stream, cannot act. The same requests with the token as
// a bearer header are accepted, so it is the credential that is refused.
func TestPageCookiesNeverAuthorizeAChange(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
	})
	base := ls.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	createAs(t, base, admin, "o-1")
	ls.assign(t, "o-1", "c-1")
	before, err := ls.store.Order(t.Context(), "o-1")
	if err != nil {
		t.Fatal(err)
	}
	cookies := []string{server.StreamCookie, server.ConsoleCookie, server.PartyCookie, server.TrackingCookie}
	withCookies := func(method, path, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for _, name := range cookies {
			req.AddCookie(&http.Cookie{Name: name, Value: admin})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}

	changes := []struct{ method, path, body string }{
		{"POST", "/v1/orders", `{"id":"o-new"}`},
		{"POST", "/v1/orders/o-1/status", `{"status":"confirmed"}`},
		{"PUT", "/v1/orders/o-1/courier", `{"courier_id":"c-2"}`},
		{"POST", "/v1/status-changes", `{"changes":[{"order_id":"o-1","status":"confirmed"}]}`},
		{"POST", "/v1/couriers/c-1/location", `{"lat":52.5,"lng":13.4}`},
		{"POST", "/v1/locations", `{"positions":[{"courier_id":"c-1","lat":52.5,"lng":13.4}]}`},
	}
	for _, c := range changes {
		if resp := withCookies(c.method, c.path, c.body); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s with the pages' cookies: %d, want 401", c.method, c.path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/v1/stream", "/v1/restaurants/r-1/stream", "/v1/customers/u-1/stream", "/v1/orders/o-1/stream"} {
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			if resp := withCookies(method, path, `{"status":"confirmed"}`); resp.StatusCode < 400 {
				t.Errorf("%s %s with the pages' cookies: %d, want a refusal", method, path, resp.StatusCode)
			}
		}
	}
	if _, err := ls.store.Order(t.Context(), "o-new"); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Errorf("an order was created with cookies only: %v", err)
	}
	if o, err := ls.store.Order(t.Context(), "o-1"); err != nil || o.Version != before.Version || o.Status != before.Status || o.CourierID != before.CourierID {
		t.Errorf("after requests with cookies only the order is %+v, %v; want it unchanged from %+v", o, err, before)
	}

	// The very requests, with the token as a bearer header, are accepted.
	for _, c := range changes {
		if resp, body := call(t, c.method, base+c.path, admin, c.body); resp.StatusCode >= 300 {
			t.Errorf("%s %s with the bearer token: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
}

// TestRefusedPartyHandOverKeepsTheSession: a token handed to a party's page that may not watch
// the party (another party's, or no token at all) is refused on a page that says so and starts
// nothing: it does not go on as the earlier hand-over's token. The page's cookies are left as they
// are, since any site can send a browser there with a bad token: clearing them would let a link
// in a mail sign a restaurant's board out mid-shift. The next visit is the earlier session's.
func TestRefusedPartyHandOverKeepsTheSession(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	earlier := actorToken(t, auth.RoleRestaurant, "r-1")
	visit := func(query string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/restaurants/r-1"+query, nil)
		req.AddCookie(&http.Cookie{Name: server.PartyCookie, Value: earlier})
		req.AddCookie(&http.Cookie{Name: server.StreamCookie, Value: earlier})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	for _, tc := range []struct {
		name, tok string
		code      int
		says      string
	}{
		{"another restaurant's token", actorToken(t, auth.RoleRestaurant, "r-2"), http.StatusForbidden, "may not watch the stream of restaurant r-1"},
		{"not a token", "not-a-token", http.StatusUnauthorized, "That token was not accepted"},
	} {
		resp, page := visit("?token=" + tc.tok)
		if resp.StatusCode != tc.code || !strings.Contains(page, tc.says) || !strings.Contains(page, `data-refused="true"`) ||
			strings.Contains(page, "ordercast-token") || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: %d, Referrer-Policy %q, want %d saying %q with no token:\n%s", tc.name, resp.StatusCode, resp.Header.Get("Referrer-Policy"), tc.code, tc.says, page)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s: the refusal set cookies %v, want the session's left alone", tc.name, resp.Cookies())
		}
	}
	if resp, page := visit(""); resp.StatusCode != http.StatusOK || !strings.Contains(page, earlier) {
		t.Errorf("the visit after the refusals: %d, want the earlier session's board:\n%s", resp.StatusCode, page)
	}
}

// TestRefusedConsoleCookieClearsItsStreamCookie: a console whose cookie the server no longer
// accepts deletes its stream's cookie with its own, so that its stream does not go on as the
// token the console has given up.
func TestRefusedConsoleCookieClearsItsStreamCookie(t *testing.T) {
	ts := newAuthServer(t, nil)
	req, _ := http.NewRequest("GET", ts.URL()+"/console", nil)
	req.AddCookie(&http.Cookie{Name: server.ConsoleCookie, Value: "expired"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if page := readAll(t, resp); !strings.Contains(page, "no longer accepted") {
		t.Errorf("console with a refused cookie:\n%s", page)
	}
	for name, path := range map[string]string{server.ConsoleCookie: "/console", server.StreamCookie: "/v1/stream"} {
		if c := cookieNamed(resp, name, path); c == nil || c.MaxAge >= 0 {
			t.Errorf("console with a refused cookie: cookie %s at %s is %+v among %v, want it deleted", name, path, c, resp.Cookies())
		}
	}
}

// TestConsoleTrackHandsOverATrackingCookie: the console links each order to
// /console/track/{id}, which the console's cookie reaches: with a token that may watch the order
// it signs a tracking token into the tracking cookie, as the customer's link would, and sends
// the browser to the tracking page, whose requests that cookie then opens; no token is in any
// URL. Without the console's cookie, or with a token that may not watch the order, it sets
// nothing and sends the browser on all the same: the tracking page shows the refusal.
func TestConsoleTrackHandsOverATrackingCookie(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	createAs(t, base, admin, "shop:o-1")
	for _, tc := range []struct {
		name, cookie string
		sets         bool
	}{
		{"admin", admin, true},
		{"no cookie", "", false},
		{"restaurant", actorToken(t, auth.RoleRestaurant, "r-1"), false},
		{"not a token", "not-a-token", false},
	} {
		req, _ := http.NewRequest("GET", base+"/console/track/shop:o-1", nil)
		if tc.cookie != "" {
			req.AddCookie(&http.Cookie{Name: server.ConsoleCookie, Value: tc.cookie})
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/track/shop:o-1" {
			t.Errorf("%s: %d to %q, want 303 to /track/shop:o-1", tc.name, resp.StatusCode, loc)
		}
		c := cookieNamed(resp, server.TrackingCookie, "/v1/orders/shop:o-1")
		if !tc.sets {
			if len(resp.Cookies()) != 0 {
				t.Errorf("%s: sets %v, want no cookie", tc.name, resp.Cookies())
			}
			continue
		}
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge <= 0 {
			t.Fatalf("%s: tracking cookie %+v among %v, want an HttpOnly, SameSite=Strict one", tc.name, c, resp.Cookies())
		}
		if tr, err := authority(t).ParseTracking(c.Value); err != nil || tr.OrderID != "shop:o-1" || tr.Courier != "" {
			t.Errorf("%s: the cookie holds a token for %+v, %v; want a tracking token for shop:o-1", tc.name, tr, err)
		}
		read, _ := http.NewRequest("GET", base+"/v1/orders/shop:o-1", nil)
		read.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		if resp, err := http.DefaultClient.Do(read); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: reading the order with the cookie: %v, %v", tc.name, resp, err)
		} else {
			_ = resp.Body.Close()
		}
	}

	// The tracking token lives no longer than the operator's token it was minted on.
	short, err := authority(t).SignActor(auth.Actor{Role: auth.RoleAdmin, Sub: "ops"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/console/track/shop:o-1", nil)
	req.AddCookie(&http.Cookie{Name: server.ConsoleCookie, Value: short})
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	c := cookieNamed(resp, server.TrackingCookie, "/v1/orders/shop:o-1")
	if c == nil {
		t.Fatalf("no tracking cookie for an operator whose token has ten minutes left: %v", resp.Cookies())
	}
	tr, err := authority(t).ParseTracking(c.Value)
	// The cookie outlives its token by a day, so that the page can say the link expired; the
	// token it holds ends with the operator's.
	if limit := time.Now().Add(10*time.Minute + time.Second); err != nil || tr.Exp.After(limit) || c.MaxAge > int((10*time.Minute+24*time.Hour+time.Second)/time.Second) {
		t.Errorf("tracking token expires %v (cookie max-age %d s), %v; want no later than the operator's, %v", tr.Exp, c.MaxAge, err, limit)
	}
	if c.MaxAge < int((24*time.Hour+9*time.Minute)/time.Second) {
		t.Errorf("the tracking cookie's max-age is %d s: want it to outlive its token, which ends with the operator's in 10 minutes, by a day", c.MaxAge)
	}
}

// TestPartyPageChecksItsCookie: a party's page whose own cookie holds a token the server no
// longer accepts (expired, here) does not render with it: both of its cookies are deleted and the
// page says why, opening nothing; in demo mode, where a page without a cookie gets a token of its
// party, it gets a fresh one instead.
func TestPartyPageChecksItsCookie(t *testing.T) {
	old := authority(t)
	old.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, err := old.SignActor(auth.Actor{Role: auth.RoleRestaurant, Sub: "r-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, ts *testServer) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL()+"/restaurants/r-1", nil)
		req.AddCookie(&http.Cookie{Name: server.PartyCookie, Value: expired})
		req.AddCookie(&http.Cookie{Name: server.StreamCookie, Value: expired})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	deleted := func(t *testing.T, resp *http.Response, name, path string) {
		t.Helper()
		if c := cookieNamed(resp, name, path); c == nil || c.MaxAge >= 0 || c.Value != "" {
			t.Errorf("cookie %s at %s is %+v among %v, want it deleted", name, path, c, resp.Cookies())
		}
	}

	t.Run("signed in", func(t *testing.T) {
		resp, page := open(t, newAuthServer(t, nil))
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "no longer accepted (token has expired)") ||
			!strings.Contains(page, `data-refused="true"`) || strings.Contains(page, "ordercast-token") {
			t.Errorf("%d, want the page saying the token expired, with no token:\n%s", resp.StatusCode, page)
		}
		deleted(t, resp, server.PartyCookie, "/restaurants/r-1")
		deleted(t, resp, server.StreamCookie, "/v1/restaurants/r-1/stream")
	})
	t.Run("demo", func(t *testing.T) {
		ts := newAuthServer(t, func(s *server.Server) { s.Auth.ConsoleToken = true })
		resp, page := open(t, ts)
		if strings.Contains(page, "no longer accepted") || strings.Contains(page, expired) {
			t.Errorf("the demo page goes on with the expired token, or says so:\n%s", page)
		}
		i := strings.Index(page, `<meta name="ordercast-token" content="`)
		if i < 0 {
			t.Fatalf("the demo page has no token:\n%s", page)
		}
		fresh, _, _ := strings.Cut(page[i+len(`<meta name="ordercast-token" content="`):], `"`)
		if a, err := authority(t).ParseActor(fresh); err != nil || a != (auth.Actor{Role: auth.RoleRestaurant, Sub: "r-1"}) {
			t.Errorf("the demo page's token acts for %+v, %v; want restaurant r-1", a, err)
		}
		deleted(t, resp, server.PartyCookie, "/restaurants/r-1")
		wantStreamCookie(t, resp, ts.URL(), "/v1/restaurants/r-1/stream", fresh)
	})
}
