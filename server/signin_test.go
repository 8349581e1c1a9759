package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/server"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestFavicon: /favicon.ico is an icon, not a 404 on every page view, and every page links it.
func TestFavicon(t *testing.T) {
	ts := newServer(t, nil)
	resp, body := call(t, "GET", ts.URL()+"/favicon.ico", "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(body), "<svg") {
		t.Errorf("favicon: %d %s %.40q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, page := range []string{"/", "/console", "/track/o-1"} {
		if _, body := call(t, "GET", ts.URL()+page, "", ""); !strings.Contains(string(body), `rel="icon" href="/static/favicon.svg"`) {
			t.Errorf("%s links no icon", page)
		}
	}
}

// TestHomeSaysACredentialIsNeeded: outside public tracking the home page says watching needs a
// credential and offers the console's token entry, instead of "No orders in progress" while
// orders are in progress.
func TestHomeSaysACredentialIsNeeded(t *testing.T) {
	ts := newAuthServer(t, nil)
	createAs(t, ts.URL(), actorToken(t, auth.RoleAdmin, ""), "o-busy")
	_, body := call(t, "GET", ts.URL()+"/", "", "")
	page := string(body)
	if strings.Contains(page, "No orders in progress") || !strings.Contains(page, "needs a credential") ||
		!strings.Contains(page, `action="/console"`) || !strings.Contains(page, `name="token"`) {
		t.Errorf("home page without a credential:\n%s", page)
	}
	if strings.Contains(page, "o-busy") {
		t.Error("the home page lists an order to a visitor without a credential")
	}

	open := newAuthServer(t, func(s *server.Server) { s.Auth.PublicTracking = true })
	mustCreateAs(t, open.URL(), "o-open")
	if _, body := call(t, "GET", open.URL()+"/", "", ""); strings.Contains(string(body), "needs a credential") || !strings.Contains(string(body), "/track/o-open") {
		t.Errorf("home page with public tracking:\n%s", body)
	}
}

func mustCreateAs(t *testing.T, base, id string) {
	t.Helper()
	createAs(t, base, actorToken(t, auth.RoleAdmin, ""), id)
}

// TestConsoleTokenHandOver: /console?token=… takes a good actor token into an HttpOnly cookie
// scoped to /console and redirects to the clean URL; the page then carries the token for its
// script. A bad token is refused with the reason and the entry form; no token shows the form.
func TestConsoleTokenHandOver(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")

	resp, body := call(t, "GET", base+"/console", "", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-needs-token="true"`) || strings.Contains(string(body), "ordercast-token") {
		t.Errorf("console without a token: %d\n%s", resp.StatusCode, body)
	}

	resp, err := noRedirect.Get(base + "/console?token=" + admin)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console" {
		t.Fatalf("hand-over: %d to %q, want 303 to /console", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == server.ConsoleCookie {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != admin || !cookie.HttpOnly || cookie.Path != "/console" || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("console cookie %+v, want the token, HttpOnly, path /console, SameSite=Strict", cookie)
	}

	req, _ := http.NewRequest("GET", base+"/console", nil)
	req.AddCookie(cookie)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, resp)
	if !strings.Contains(page, `name="ordercast-token" content="`+admin+`"`) || strings.Contains(page, `data-needs-token`) {
		t.Errorf("console with the cookie does not carry the token:\n%s", page)
	}

	resp, body = call(t, "GET", base+"/console?token=not-a-token", "", "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "That token was not accepted") || len(resp.Cookies()) != 0 {
		t.Errorf("bad token: %d cookies %v\n%s", resp.StatusCode, resp.Cookies(), body)
	}
	// A tracking token is not an actor token: it opens one order's page, not the console.
	tracking := createAs(t, base, admin, "o-1")
	if resp, _ := call(t, "GET", base+"/console?token="+tracking, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tracking token on the console: %d, want 401", resp.StatusCode)
	}
}

// TestConsoleAsksBeforeALinkedToken: a token handed to the console by a link from another site
// (login CSRF: the link's author signing the operator in as themselves) is not taken unasked.
// The console says whom it acts for and sets no cookie; its own form, submitted from this site,
// then takes it, as does a hand-over typed in or from this site. The console's bar names whom
// its token acts for.
func TestConsoleAsksBeforeALinkedToken(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	theirs := actorToken(t, auth.RoleRestaurant, "r-mallory")
	get := func(site string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/console?token="+theirs, nil)
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, site := range []string{"cross-site", "same-site"} {
		resp := get(site)
		page := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
			t.Errorf("Sec-Fetch-Site %s: %d with cookies %v, want 200 and none", site, resp.StatusCode, resp.Cookies())
		}
		for _, want := range []string{
			`Open the console as restaurant:r-mallory?`,
			`<input type="hidden" name="token" value="` + theirs + `">`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("Sec-Fetch-Site %s: the page lacks %q:\n%s", site, want, page)
			}
		}
		if strings.Contains(page, "ordercast-token") {
			t.Errorf("Sec-Fetch-Site %s: the page hands the linked token to its script unasked", site)
		}
	}
	for _, site := range []string{"same-origin", "none", ""} {
		resp := get(site)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].Value != theirs {
			t.Fatalf("Sec-Fetch-Site %q: %d with cookies %v, want 303 setting the token", site, resp.StatusCode, resp.Cookies())
		}
		req, _ := http.NewRequest("GET", base+"/console", nil)
		req.AddCookie(resp.Cookies()[0])
		got, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page := readAll(t, got)
		if !strings.Contains(page, `as restaurant:r-mallory</span>`) {
			t.Errorf("the console's bar does not say whom its token acts for:\n%s", page)
		}
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestHomePageSaysWhoseOrders: each order in progress on the home page says whose it is, its
// restaurant and customer, by the names the page knows them by (demo mode) or else by their ids.
func TestHomePageSaysWhoseOrders(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		s.PartyLinks = []server.PartyLink{{Party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}, Name: "Tokyo Ramen Bar"}}
	})
	ctx := context.Background()
	for _, n := range []ordercast.NewOrder{{ID: "o-both", RestaurantID: "r-1", CustomerID: "u-7"}, {ID: "o-none"}} {
		if _, _, err := ts.store.CreateOrder(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	_, body := call(t, "GET", ts.URL()+"/", "", "")
	page := string(body)
	if !strings.Contains(page, `/track/o-both">o-both</a><span class="order-who">Tokyo Ramen Bar → u-7</span>`) {
		t.Errorf("the order of a known restaurant and a customer does not say whose it is:\n%s", page)
	}
	if !strings.Contains(page, `/track/o-none">o-none</a></span>`) {
		t.Errorf("the order of no party says something of whose it is:\n%s", page)
	}
}
