package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// visitWithCookie opens path on base with the party page's cookie holding tok (none when ""),
// without following a redirect.
func visitWithCookie(t *testing.T, base, path, tok string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if tok != "" {
		req.AddCookie(&http.Cookie{Name: server.PartyCookie, Value: tok})
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

// TestCourierPageOpensLikeTheOtherPartyPages: GET /couriers/{id} takes its token as the other
// party pages do (the hand-over itself: TestPagesSetTheirStreamCookie) and renders with it a
// courier's page: the statuses a courier may set and, where the server takes positions, the
// sharing of its location. A token of another courier, or of another kind of party whose sub is
// the courier's id, is refused on the page, which says why, carries no token and sets no cookie.
// Demo mode mints a token of the courier.
func TestCourierPageOpensLikeTheOtherPartyPages(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	base := ls.URL()
	tok := actorToken(t, auth.RoleCourier, "c-1")
	resp, page := visitWithCookie(t, base, "/couriers/c-1", tok)
	for _, want := range []string{
		`data-party-kind="courier"`, `data-party-id="c-1"`, `data-may-set="out_for_delivery delivered"`,
		`content="` + tok + `"`, `id="share-toggle"`, `src="/static/courier.js?v=`, "Your deliveries",
		`data-location-from="out_for_delivery"`, `<h1 class="bar-title">Courier c-1</h1>`,
	} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, want) {
			t.Fatalf("the courier's page: %d, lacks %s:\n%s", resp.StatusCode, want, page)
		}
	}
	if strings.Contains(page, "data-readonly") {
		t.Error("the courier's page is read only")
	}

	for _, tc := range []struct {
		name, tok string
		code      int
		says      string
	}{
		{"another courier's token", actorToken(t, auth.RoleCourier, "c-2"), http.StatusForbidden, "may not watch the stream of courier c-1"},
		{"a restaurant's token of the same id", actorToken(t, auth.RoleRestaurant, "c-1"), http.StatusForbidden, "may not watch the stream of courier c-1"},
		{"a customer's token of the same id", actorToken(t, auth.RoleCustomer, "c-1"), http.StatusForbidden, "may not watch the stream of courier c-1"},
		{"not a token", "not-a-token", http.StatusUnauthorized, "That token was not accepted"},
	} {
		resp, page := visitWithCookie(t, base, "/couriers/c-1?token="+tc.tok, "")
		if resp.StatusCode != tc.code || !strings.Contains(page, tc.says) || !strings.Contains(page, `data-refused="true"`) ||
			strings.Contains(page, "ordercast-token") || strings.Contains(page, "share-toggle") {
			t.Errorf("%s: %d, want %d saying %q with no token and no sharing:\n%s", tc.name, resp.StatusCode, tc.code, tc.says, page)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s: the refusal set cookies %v", tc.name, resp.Cookies())
		}
	}

	// The page names the stage from which the server shows a courier (--location-from), and how
	// old a position the server takes (--location-max-age), in seconds.
	early := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
		tr.From = ordercast.StatusReady
		tr.MaxAge = 90 * time.Second
	})
	if _, page := visitWithCookie(t, early.URL(), "/couriers/c-1", tok); !strings.Contains(page, `data-location-from="ready"`) ||
		!strings.Contains(page, `data-location-max-age="90"`) {
		t.Errorf("a server showing couriers from ready, taking positions up to 90 s old: the page does not say so:\n%s", page)
	}

	// Without a tracker, positions have nowhere to go: the page does not offer to share them.
	plain := newAuthServer(t, nil)
	if _, page := visitWithCookie(t, plain.URL(), "/couriers/c-1", tok); strings.Contains(page, "share-toggle") || strings.Contains(page, "courier.js") {
		t.Errorf("a server that takes no positions offers to share them:\n%s", page)
	}

	demo := newAuthServer(t, func(s *server.Server) { s.Auth.ConsoleToken = true })
	_, page = visitWithCookie(t, demo.URL(), "/couriers/c-9", "")
	const meta = `name="ordercast-token" content="`
	i := strings.Index(page, meta)
	if i < 0 {
		t.Fatalf("demo courier page carries no token:\n%s", page)
	}
	minted := page[i+len(meta):]
	minted = minted[:strings.IndexByte(minted, '"')]
	if a, err := authority(t).ParseActor(minted); err != nil || a != (auth.Actor{Role: auth.RoleCourier, Sub: "c-9"}) {
		t.Errorf("demo courier page's token acts for %+v (%v), want courier c-9", a, err)
	}
}

// TestTheDemosCouriersPageSaysTheSimulatorDrivesThem: in demo mode the simulator posts the
// positions of its couriers, so their pages say so instead of offering to share the phone's
// and saying "Off" while customers watch the courier move. A courier of no simulator's (an id
// typed in the console) is offered the sharing as anywhere else.
func TestTheDemosCouriersPageSaysTheSimulatorDrivesThem(t *testing.T) {
	demo := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t), ConsoleToken: true}
		s.PartyLinks = []server.PartyLink{{Party: ordercast.Party{Kind: ordercast.PartyCourier, ID: "ines"}, Name: "Ines"}}
	})
	_, page := visitWithCookie(t, demo.URL(), "/couriers/ines", "")
	if !strings.Contains(page, "the simulator drives Ines along each route") || strings.Contains(page, "share-toggle") {
		t.Errorf("the demo's courier Ines: the page offers to share the phone's position, or does not say the simulator drives her:\n%s", page)
	}
	_, page = visitWithCookie(t, demo.URL(), "/couriers/c-9", "")
	if strings.Contains(page, "simulator") || !strings.Contains(page, `id="share-toggle"`) {
		t.Errorf("a courier the simulator does not drive: the page does not offer to share its position:\n%s", page)
	}
}

// TestCourierTrackOpensOnlyItsOrders: a courier's page links each order to
// /couriers/{id}/track/{order}, which hands the tracking page a credential for the order only
// when the page's token may watch it: the order is the courier's now. It sends the browser to
// the courier's view of the tracking page (words only, no credential). The credential is a
// courier's tracking token for the order and the courier, never the courier's own token, which
// changes orders and posts positions and would sit in a cookie for as long as it lives: it reads
// the order while it is the courier's, and once the order goes to another courier it reads and
// watches nothing more, as the courier's own token does. It changes nothing, as a cookie nor as a
// bearer token. It lives no longer than the courier's token. Another courier's order, or another
// courier's token, sets nothing, and the tracking page shows the refusal.
func TestCourierTrackOpensOnlyItsOrders(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	base := ls.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	createAs(t, base, admin, "shop:o-1")
	createAs(t, base, admin, "o-2")
	ls.assign(t, "shop:o-1", "c-1")
	ls.assign(t, "o-2", "c-2")
	c1 := actorToken(t, auth.RoleCourier, "c-1")

	for _, tc := range []struct {
		name, path, tok string
	}{
		{"another courier's order", "/couriers/c-1/track/o-2", c1},
		{"another courier's token", "/couriers/c-1/track/shop:o-1", actorToken(t, auth.RoleCourier, "c-2")},
		{"no token", "/couriers/c-1/track/shop:o-1", ""},
	} {
		resp, _ := visitWithCookie(t, base, tc.path, tc.tok)
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 0 {
			t.Errorf("%s: %d setting %v, want 303 setting nothing", tc.name, resp.StatusCode, resp.Cookies())
		}
	}

	resp, _ := visitWithCookie(t, base, "/couriers/c-1/track/shop:o-1", c1)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/track/shop:o-1?courier=c-1&view=courier" {
		t.Fatalf("the courier's order: %d to %q, want 303 to the courier's view of /track/shop:o-1", resp.StatusCode, loc)
	}
	c := cookieNamed(resp, server.TrackingCookie, "/v1/orders/shop:o-1")
	// The cookie outlives its token by a day (so that a page can say the link expired); the
	// token it holds ends with the courier's (below).
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge <= 0 || c.MaxAge > 3600+24*3600 {
		t.Fatalf("tracking cookie %+v among %v, want an HttpOnly, SameSite=Strict one living no longer than the courier's token and a day", c, resp.Cookies())
	}
	if _, err := authority(t).ParseActor(c.Value); err == nil {
		t.Error("the courier's link put an actor token in the tracking cookie")
	}
	if tr, err := authority(t).ParseTracking(c.Value); err != nil || tr.OrderID != "shop:o-1" || tr.Courier != "c-1" || time.Until(tr.Exp) > time.Hour {
		t.Errorf("the cookie holds %+v (%v), want a courier's tracking token for shop:o-1 and c-1, living no longer than c-1's token", tr, err)
	}
	withCookie := func(method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := withCookie("GET", "/v1/orders/shop:o-1", ""); code != http.StatusOK {
		t.Fatalf("reading the order with the cookie: %d, want 200", code)
	}
	if code := withCookie("POST", "/v1/orders/shop:o-1/status", `{"status":"out_for_delivery"}`); code != http.StatusUnauthorized {
		t.Errorf("a change with the cookie: %d, want 401", code)
	}
	// Nor as a bearer token: it is no actor token.
	for _, w := range []struct{ path, body string }{
		{"/v1/orders/shop:o-1/status", `{"status":"out_for_delivery"}`},
		{"/v1/couriers/c-1/location", `{"lat":52.52,"lng":13.40}`},
	} {
		if resp, body := call(t, "POST", base+w.path, c.Value, w.body); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s with the cookie's token as a bearer: %d %s, want 403", w.path, resp.StatusCode, body)
		}
	}
	ls.assign(t, "shop:o-1", "c-2")
	if code := withCookie("GET", "/v1/orders/shop:o-1", ""); code != http.StatusForbidden {
		t.Errorf("reading the order given to another courier with the cookie: %d, want 403", code)
	}
	if code := withCookie("GET", "/v1/orders/shop:o-1/stream", ""); code != http.StatusForbidden {
		t.Errorf("watching the order given to another courier with the cookie: %d, want 403", code)
	}
}

// TestCourierTrackingCookieStreamEndsOnReassignment: a stream the courier's tracking cookie
// opened ends when the order goes to another courier, as one the courier's own token opened does
// (the one rule, watchAs).
func TestCourierTrackingCookieStreamEndsOnReassignment(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	base := ls.URL()
	createAs(t, base, actorToken(t, auth.RoleAdmin, "ops"), "o-1")
	ls.assign(t, "o-1", "c-1")
	resp, _ := visitWithCookie(t, base, "/couriers/c-1/track/o-1", actorToken(t, auth.RoleCourier, "c-1"))
	c := cookieNamed(resp, server.TrackingCookie, "/v1/orders/o-1")
	if c == nil {
		t.Fatalf("no tracking cookie among %v", resp.Cookies())
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/orders/o-1/stream", nil)
	req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("the stream with the cookie: %v %v", stream, err)
	}
	defer stream.Body.Close()
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream.Body)
		ended <- err
	}()
	ls.assign(t, "o-1", "c-2")
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the stream ended with %v, want its clean end", err)
		}
	case <-time.After(testutil.WaitTimeout):
		t.Fatal("the stream goes on after the order went to another courier")
	}
}

// TestCourierViewOfTrackingPageIsWordsOnly: /track/{id}?view=courier&courier={id} renders the
// courier's view (its words, a link back to the courier's page with the id as it is in that
// page's path), and nothing else changes: a courier id that cannot be one leaves the customer's
// view.
func TestCourierViewOfTrackingPageIsWordsOnly(t *testing.T) {
	ts := newAuthServer(t, nil)
	for _, tc := range []struct {
		query string
		want  []string
		not   []string
	}{
		{"?view=courier&courier=shop:c-1", []string{`data-view="courier"`, `href="/couriers/shop:c-1"`, "Your route", ">Customer<"}, []string{"Where your courier is"}},
		{"?view=courier&courier=a%20b", []string{"Where your courier is", ">You<"}, []string{`data-view`, "Back to your deliveries"}},
		{"", []string{"Where your courier is"}, []string{`data-view`, "Back to your deliveries"}},
	} {
		checkTrackingView(t, ts.URL(), tc.query, tc.want, tc.not)
	}
}

// checkTrackingView renders order o-1's tracking page on base with query (a view's marker) and
// checks that it is served, holds each of want and none of not, and sets no cookie: a view is
// words, never a credential.
func checkTrackingView(t *testing.T, base, query string, want, not []string) {
	t.Helper()
	resp, page := visitWithCookie(t, base, "/track/o-1"+query, "")
	for _, w := range want {
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, w) {
			t.Errorf("%q: %d, lacks %s", query, resp.StatusCode, w)
		}
	}
	for _, n := range not {
		if strings.Contains(page, n) {
			t.Errorf("%q: has %s", query, n)
		}
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("%q: sets %v", query, resp.Cookies())
	}
}
