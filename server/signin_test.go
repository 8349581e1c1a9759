package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// TestHomeSaysWhenItListsOnlyTheNewest: the home page links to the 20 newest orders in progress
// and, when there are more, says so and points to the console, rather than pass the newest for
// all of them.
func TestHomeSaysWhenItListsOnlyTheNewest(t *testing.T) {
	ts := newServer(t, nil)
	const more = "more are in progress"
	for i := range 21 {
		mustCreate(t, ts.URL(), fmt.Sprintf("o-%02d", i))
		_, body := call(t, "GET", ts.URL()+"/", "", "")
		page := string(body)
		listed := strings.Count(page, `class="order-id" href="/track/`)
		// The words are on the page for its script, which keeps the list live; shown or not.
		says := strings.Contains(page, `<p id="home-more" class="muted">These are the 20 newest; `+more)
		if i < 20 && (listed != i+1 || says) {
			t.Fatalf("%d orders in progress: %d listed, says there are more: %v", i+1, listed, says)
		}
		if i == 20 && (listed != 20 || !says || strings.Contains(page, `href="/track/o-00"`)) {
			t.Fatalf("21 orders in progress: %d listed, the oldest listed %v, and the page says:\n%s", listed, strings.Contains(page, `href="/track/o-00"`), page)
		}
	}
}

// TestHomeSaysACredentialIsNeeded: outside public tracking the home page says watching needs a
// credential and offers the console's token entry, instead of "No orders in progress" while
// orders are in progress; a token in its address changes nothing.
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
	// Nor for a token in its address, which it would leave in the browser's history: the
	// console takes one (and takes it out of the address bar).
	resp, body := call(t, "GET", ts.URL()+"/?token="+actorToken(t, auth.RoleAdmin, "ops"), "", "")
	if page := string(body); strings.Contains(page, "o-busy") || !strings.Contains(page, "needs a credential") ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("home page with a token in its address (Referrer-Policy %q):\n%s", resp.Header.Get("Referrer-Policy"), page)
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

// TestConsoleTokenHandOver: the console's form (POST /console) takes a good actor token into an
// HttpOnly cookie scoped to /console and redirects to the clean URL; the page then carries the
// token for its script and names whom it acts for. A bad token is refused with the reason and
// the entry form; no token shows the form.
func TestConsoleTokenHandOver(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")

	resp, body := call(t, "GET", base+"/console", "", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-needs-token="true"`) || strings.Contains(string(body), "ordercast-token") {
		t.Errorf("console without a token: %d\n%s", resp.StatusCode, body)
	}

	resp = signIn(t, base, admin, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console" {
		t.Fatalf("sign-in: %d to %q, want 303 to /console", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie := cookieNamed(resp, server.ConsoleCookie, "/console")
	if cookie == nil || cookie.Value != admin || !cookie.HttpOnly || cookie.Path != "/console" || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("console cookie %+v, want the token, HttpOnly, path /console, SameSite=Lax (setPageCookies)", cookie)
	}

	req, _ := http.NewRequest("GET", base+"/console", nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, resp)
	if !strings.Contains(page, `name="ordercast-token" content="`+admin+`"`) || strings.Contains(page, `data-needs-token`) || !strings.Contains(page, `as admin:ops</span>`) {
		t.Errorf("console with the cookie does not carry the token, or does not say whose it is:\n%s", page)
	}
	if !strings.Contains(page, `<section id="create-section" class="card" aria-labelledby="create-heading">`) {
		t.Errorf("an admin's console hides its new-order form:\n%s", page)
	}
	// A support agent's console is the same, without the new-order form: support creates no
	// order (auth.RoleSupport).
	support := actorToken(t, auth.RoleSupport, "ana")
	resp = signIn(t, base, support, nil)
	resp.Body.Close()
	req, _ = http.NewRequest("GET", base+"/console", nil)
	req.AddCookie(cookieNamed(resp, server.ConsoleCookie, "/console"))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	page = readAll(t, resp)
	if !strings.Contains(page, `as support:ana</span>`) || !strings.Contains(page, `data-may-set="placed confirmed`) ||
		!strings.Contains(page, `<section id="create-section" class="card" aria-labelledby="create-heading" hidden>`) {
		t.Errorf("a support agent's console does not say whose it is, offer every status, or hide the new-order form:\n%s", page)
	}

	resp = signIn(t, base, "not-a-token", nil)
	// The reason is the operator's words, not the error's text for the log ("ordercast: …").
	if page := readAll(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "That token was not accepted (token is malformed") ||
		strings.Contains(page, "ordercast:") || len(resp.Cookies()) != 0 {
		t.Errorf("bad token: %d cookies %v\n%s", resp.StatusCode, resp.Cookies(), page)
	}
	// A tracking token is not an actor token: it opens one order's page, not the console.
	tracking := createAs(t, base, admin, "o-1")
	if resp := signIn(t, base, tracking, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tracking token on the console: %d, want 401", resp.StatusCode)
	}
	// The form is one token, sent as the page's form sends it: a body of megabytes, or of
	// another kind, is refused before it is read, and signs nobody in.
	for _, tc := range []struct {
		name, contentType, body string
		code                    int
	}{
		{"4 MiB form", "application/x-www-form-urlencoded", "token=" + admin + "&pad=" + strings.Repeat("x", 4<<20), http.StatusRequestEntityTooLarge},
		{"multipart", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n" + admin + "\r\n--b--\r\n", http.StatusUnsupportedMediaType},
		{"no content type", "", "token=" + admin, http.StatusUnsupportedMediaType},
	} {
		resp, _ := call(t, "POST", base+"/console", "", tc.body, "Content-Type", tc.contentType)
		if resp.StatusCode != tc.code || len(resp.Cookies()) != 0 {
			t.Errorf("%s: %d with cookies %v, want %d and none", tc.name, resp.StatusCode, resp.Cookies(), tc.code)
		}
	}
}

// TestPagesPolicy: every page runs only its own scripts, in no frame, and its forms post only to
// its own origin; only its own origin may ask for the position, nothing for the camera or the
// microphone, and no window another site opened can script it.
func TestPagesPolicy(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	for _, page := range []string{"/", "/console", "/track/o-1", "/restaurants/r-1", "/customers/c-1"} {
		resp, _ := call(t, "GET", base+page, "", "")
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %s", page, csp, want)
			}
		}
		if pp := resp.Header.Get("Permissions-Policy"); pp != "geolocation=(self), camera=(), microphone=()" {
			t.Errorf("%s: Permissions-Policy %q", page, pp)
		}
		if coop := resp.Header.Get("Cross-Origin-Opener-Policy"); coop != "same-origin" {
			t.Errorf("%s: Cross-Origin-Opener-Policy %q, want same-origin", page, coop)
		}
	}
}

// signIn posts the console's sign-in form with tok and the given headers, without following
// the redirect.
func signIn(t *testing.T, base, tok string, headers map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/console", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// TestConsoleAsksBeforeALinkedToken: a token handed to the console by a link (login CSRF: the
// link's author signing the operator in as themselves, from a page elsewhere or a mail) is never
// taken by the link itself. The console asks, naming whom the token acts for, sets no cookie,
// keeps the token out of Referers, and runs nothing with it; the answer is its own form, and a
// form posted from another site's page is refused.
func TestConsoleAsksBeforeALinkedToken(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	theirs := actorToken(t, auth.RoleRestaurant, "r-mallory")
	for _, site := range []string{"cross-site", "same-site", "same-origin", "none", ""} {
		req, _ := http.NewRequest("GET", base+"/console?token="+theirs, nil)
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("Sec-Fetch-Site %q: %d, cookies %v, Referrer-Policy %q; want 200, none, no-referrer", site, resp.StatusCode, resp.Cookies(), resp.Header.Get("Referrer-Policy"))
		}
		for _, want := range []string{
			`Open the console as restaurant:r-mallory?`,
			`<form class="signin-form" method="post" action="/console"`,
			`<input type="hidden" name="token" value="` + theirs + `">`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("Sec-Fetch-Site %q: the page lacks %q:\n%s", site, want, page)
			}
		}
		if strings.Contains(page, "ordercast-token") {
			t.Errorf("Sec-Fetch-Site %q: the page hands the linked token to its script unasked", site)
		}
	}
	for name, headers := range map[string]map[string]string{
		"Sec-Fetch-Site cross-site":  {"Sec-Fetch-Site": "cross-site"},
		"Sec-Fetch-Site same-site":   {"Sec-Fetch-Site": "same-site"},
		"another origin, plain HTTP": {"Origin": "http://elsewhere.example"},
	} {
		resp := signIn(t, base, theirs, headers)
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("%s: form posted from another site: %d, cookies %v; want 403 and none", name, resp.StatusCode, resp.Cookies())
		}
	}
	resp := signIn(t, base, theirs, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": base})
	if c := cookieNamed(resp, server.ConsoleCookie, "/console"); resp.StatusCode != http.StatusSeeOther || c == nil || c.Value != theirs {
		t.Fatalf("the console's own form: %d, cookies %v; want 303 setting the token", resp.StatusCode, resp.Cookies())
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
