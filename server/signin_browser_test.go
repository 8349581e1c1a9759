package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/server"
)

// TestPagesOutsideDemoOfferTheWayIn: with auth on, the home page says a credential is needed and
// offers the token entry; a tracking page says what is missing, or that its link was refused; the console without a token shows the entry instead of reconnecting
// forever; a token entered there is handed over through the cookie (the address bar ends clean)
// and the console goes live; a console whose token the server refuses for watching says so.
func TestPagesOutsideDemoOfferTheWayIn(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	createAs(t, base, admin, "o-inside")
	b := newBrowser(t)

	b.do("open the home page", chromedp.Navigate(base+"/"))
	b.waitFor(`.signin-form input[name="token"]`)
	if text := eval[string](b, `document.body.innerText`); strings.Contains(text, "No orders in progress") || !strings.Contains(text, "needs a credential") {
		t.Errorf("home page says %q", text)
	}
	screenshots(b, "home-signin")

	// A tracking page or a party's page opened without its link says so in sentences, and the
	// party's page opens no stream the server could only refuse.
	b.do("open a tracking page without its token", chromedp.Navigate(base+"/track/o-inside"))
	b.waitFor(`#problem`)
	if got, want := eval[string](b, `document.getElementById('problem').textContent`), "A tracking token is required. Open the tracking link you were given (it ends in ?\u2060token=…)."; got != want {
		t.Errorf("the tracking page without a token says %q, want %q", got, want)
	}
	screenshots(b, "track-no-token")
	// Opened from a link whose token the server refused (expired, another order's), it says so,
	// rather than to open the link just opened.
	b.do("open a tracking link with a refused token", chromedp.Navigate(base+"/track/o-inside?token=not-a-token"))
	b.poll("the page to say the link was refused", `document.getElementById('problem').textContent === "This tracking link was not accepted: it has expired, or it is not this order's. Ask whoever sent it for a new one."`)
	screenshots(b, "track-refused-link")
	streams := b.countRequests("/stream")
	b.do("open a board without its token", chromedp.Navigate(base+"/restaurants/r-1"))
	b.waitFor(`#problem`)
	b.waitFor(`#conn[data-state="denied"]`)
	if got := eval[string](b, `document.getElementById('problem').textContent`); !strings.HasPrefix(got, "This page opens from the link you were given") {
		t.Errorf("the board without a token says %q", got)
	}
	if n := b.countRequests("/stream") - streams; n != 0 {
		t.Errorf("the board without a token opened %d streams", n)
	}
	screenshots(b, "board-no-token")

	b.do("open the console", chromedp.Navigate(base+"/console"))
	b.waitFor(`#signin input[name="token"]`)
	b.waitFor(`#conn[data-state="denied"]`)
	if eval[bool](b, `!document.getElementById('orders-section').hidden`) {
		t.Error("the console shows an order list it cannot fill")
	}
	screenshots(b, "console-signin")

	b.do("enter the token",
		chromedp.SendKeys(chromedp.CSS(`#signin input[name="token"]`), admin),
		chromedp.Submit(chromedp.CSS(`#signin-form`)),
	)
	b.waitFor(`li.order[data-order-id="o-inside"]`)
	b.waitFor(`#conn[data-state="live"]`)
	if href := eval[string](b, `location.href`); href != base+"/console" {
		t.Errorf("address bar shows %q after the hand-over, want the clean URL", href)
	}
	if eval[bool](b, `!document.getElementById('signin').hidden`) {
		t.Error("the token entry is still shown with a good token")
	}
	b.tokenInStreamURLs()

	// A restaurant's token is a good token that may not watch every order: the stream's 403 ends
	// in the token entry with the server's reason, not in "reconnecting".
	before := countStreamOpens(b, base)
	b.do("hand over a restaurant's token", chromedp.Navigate(base+"/console?token="+actorToken(t, auth.RoleRestaurant, "luigi")))
	b.waitFor(`#handover button`)
	b.do("accept it", chromedp.Click(chromedp.CSS(`#handover button`)))
	b.waitFor(`#signin-why`)
	b.waitFor(`#conn[data-state="denied"]`)
	b.waitFor(`#signin-why`)
	if why := eval[string](b, `document.getElementById('signin-why').textContent`); !strings.Contains(why, "restaurant") {
		t.Errorf("refusal shown = %q, want the server's reason", why)
	}
	if got := eval[string](b, `document.querySelector('#conn .conn-state').textContent`); got != "token refused" {
		t.Errorf("the indicator says %q of a token the stream refused, want token refused", got)
	}
	if n := countStreamOpens(b, base) - before; n > 2 {
		t.Errorf("the console opened /v1/stream %d times after a refusal, want no retries", n)
	}
}

// TestConsoleAsksBeforeALinkFromAnotherSite: a link on another site's page that hands the
// console a token (its author's) opens the console asking whether to act as them, with the token
// unused and gone from the address bar; the operator's click on the console's own button takes
// it, and the bar then says whom the console acts for.
func TestConsoleAsksBeforeALinkFromAnotherSite(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	theirs := actorToken(t, auth.RoleRestaurant, "r-mallory")
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><a id="go" href="%s/console?token=%s">a link</a>`, base, theirs)
	}))
	t.Cleanup(elsewhere.Close)
	b := newBrowser(t)

	b.do("open the other site", chromedp.Navigate(strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)))
	b.do("follow its link", chromedp.Click(chromedp.CSS(`#go`)))
	b.waitFor(`#handover button`)
	if q := eval[bool](b, `document.querySelector('meta[name="ordercast-token"]') !== null`); q {
		t.Error("the console took the linked token without asking")
	}
	if text := eval[string](b, `document.getElementById('handover').innerText`); !strings.Contains(text, "restaurant:r-mallory") {
		t.Errorf("the question does not say whom the token acts for: %q", text)
	}
	// The question is in the page as served; the script that takes the token out of the
	// address runs after it appears, later on a loaded machine.
	b.poll("the token gone from the address bar while asking", `location.href === `+strconv.Quote(base+"/console"))
	screenshots(b, "console-linked-token")

	b.do("accept", chromedp.Click(chromedp.CSS(`#handover button`)))
	b.waitFor(`.bar-as`)
	if as := eval[string](b, `document.querySelector('.bar-as').textContent`); as != "as restaurant:r-mallory" {
		t.Errorf("bar says %q, want the token's actor", as)
	}
	if href := eval[string](b, `location.href`); href != base+"/console" {
		t.Errorf("address bar shows %q after accepting, want the clean URL", href)
	}
}

// TestConsoleTakesARefusedTokenOutOfTheAddress: a token a link put in the console's address leaves
// the address bar and the history even when the server refuses it (it stayed there, to be seen,
// and synced with the browser's history), as it does when the token is taken.
func TestConsoleTakesARefusedTokenOutOfTheAddress(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	b := newBrowser(t)
	b.do("open a link with a token the server refuses", chromedp.Navigate(base+"/console?token=not-a-token"))
	b.poll("the token gone from the address", `location.href === '`+base+`/console'`)
	if text := eval[string](b, `document.body.innerText`); !strings.Contains(text, "That token was not accepted") {
		t.Errorf("the page does not say the token was refused: %q", text)
	}
}

// countStreamOpens counts the page's requests of /v1/stream (the EventSource and the fetch that
// asks why it was refused).
func countStreamOpens(b *browser, base string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, u := range b.requests {
		if strings.HasPrefix(u, base+"/v1/stream") {
			n++
		}
	}
	return n
}

// TestLongIDsFitAPhone: ids of 64 characters with no place to break them wrap on a phone-wide
// screen (390 px) instead of widening the page: an order's on its tracking page, and a courier's
// in its timeline; an order's and its courier's on the console; a restaurant's in its board's
// title; an order's on the home page.
func TestLongIDsFitAPhone(t *testing.T) {
	srv := startPageServer(t)
	long := func(c string) string { return strings.Repeat(c, 64) }
	id, restaurant, courier := long("o"), long("r"), long("c")
	if resp, body := call(t, "POST", srv.url+"/v1/orders", "",
		`{"id":"`+id+`","restaurant_id":"`+restaurant+`","details":{"restaurant":"Luigi's","items":2}}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "PUT", srv.url+"/v1/orders/"+id+"/courier", "", `{"courier_id":"`+courier+`"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("assign: %d %s", resp.StatusCode, body)
	}
	b := newBrowser(t)
	open := func(page, path string) {
		t.Helper()
		// Phone size each time: screenshots leave the desktop's.
		b.do("open "+page+" on a phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.url+path))
	}
	fits := func(page string) {
		t.Helper()
		// clientWidth, not innerWidth: a desktop browser's scrollbar takes its share of a tall page.
		if w := eval[[]int](b, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`); w[0] > w[1] {
			t.Errorf("%s with 64-character ids is %d px wide on a %d px phone", page, w[0], w[1])
		}
	}
	row := `li.order[data-order-id="` + id + `"]`

	open("the tracking page", "/track/"+id)
	b.waitFor(`#timeline li[data-kind="courier"]`)
	fits("the tracking page")
	screenshots(b, "track-long-ids")
	open("the console", "/console")
	b.waitFor(row + `[data-courier="` + courier + `"]`)
	fits("the console")
	open("the board", "/restaurants/"+restaurant)
	b.waitFor(row + `[data-courier="` + courier + `"]`)
	fits("the restaurant's board")
	screenshots(b, "board-long-ids")
	open("the home page", "/")
	b.waitFor(`a.order-id`)
	fits("the home page")
}

// TestAConsoleReachedFromAnotherSiteIsSignedIn: an operator signed in to the console follows
// links to it from another site (a chat, a mail). With its cookie SameSite=Strict the console
// looked signed out, reloading or not, and a link that handed it a token asked its question
// without naming the account it would replace, the one thing that warns of a link signing the
// console in as its author. The page's cookie is Lax: signed in, and the question names it.
func TestAConsoleReachedFromAnotherSiteIsSignedIn(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	theirs := actorToken(t, auth.RoleRestaurant, "r-mallory")
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><a id="plain" href="%s/console">the console</a> <a id="go" href="%s/console?token=%s">a link</a>`, base, base, theirs)
	}))
	t.Cleanup(elsewhere.Close)
	other := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1) // another site
	b := newBrowser(t)
	b.do("sign in to the console", chromedp.Navigate(base+"/console"),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name="token"]`), admin), chromedp.Submit(chromedp.CSS(`#signin-form`)))
	b.waitFor(`.bar-as`)

	b.do("follow the other site's link to the console", chromedp.Navigate(other), chromedp.Click(chromedp.CSS(`#plain`)))
	b.waitFor(`#conn[data-state="live"]`)
	if as := eval[string](b, `document.querySelector('.bar-as') ? document.querySelector('.bar-as').textContent : 'signed out'`); as != "as admin:ops" {
		t.Errorf("the console reached from another site says %q, want it signed in as admin:ops", as)
	}

	b.do("follow the other site's link with a token", chromedp.Navigate(other), chromedp.Click(chromedp.CSS(`#go`)))
	b.waitFor(`#handover button`)
	if text := eval[string](b, `document.getElementById('handover').innerText`); !strings.Contains(text, "admin:ops") || !strings.Contains(text, "restaurant:r-mallory") {
		t.Errorf("the question names %q; want the account signed in (admin:ops) and the link's (restaurant:r-mallory)", text)
	}
}

// TestTheIndicatorSaysWhetherATokenWasRefused: the header's connection indicator told "needs a
// token" of a page whose token the server refused (expired, signed with another secret, not the
// page's), and sent people looking for a token they had. It says "token refused" then, and
// "needs a token" only of a page that was given none: a tracking page whose cookie holds an
// expired token (the API's 401 says invalid_token), a board whose stream cookie holds a token
// of another server's (the stream's refusal), a board and the console handed a token they
// refuse (the server says so with the page); a tracking page, a board and the console without
// one.
func TestTheIndicatorSaysWhetherATokenWasRefused(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	createAs(t, base, actorToken(t, auth.RoleAdmin, "ops"), "o-ind")
	past := authority(t)
	past.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	expired, _, err := past.SignTracking("o-ind", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.New([]byte("another-secret-0123456789abcdefghij"))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.SignActor(auth.Actor{Role: auth.RoleRestaurant, Sub: "r-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	says := func(what, want string) {
		t.Helper()
		b.waitFor(`#conn[data-state="denied"]`)
		if got := eval[string](b, `document.querySelector('#conn .conn-state').textContent`); got != want {
			t.Errorf("%s: the indicator says %q, want %q", what, got, want)
		}
	}
	setCookie := func(name, path, value string) {
		t.Helper()
		httpOnly := true
		b.do("set the cookie "+name, func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
				Name: name, Value: value, URL: base + path, Path: path, HTTPOnly: &httpOnly,
				SameSite: network.CookieSameSiteStrict,
			})
			return chromedp.Void{}, err
		})
	}

	b.do("open a tracking page without its token", chromedp.Navigate(base+"/track/o-ind"))
	says("a tracking page without a token", "needs a token")
	b.do("open a board without its token", chromedp.Navigate(base+"/restaurants/r-1"))
	says("a board without a token", "needs a token")
	b.do("open the console without a token", chromedp.Navigate(base+"/console"))
	says("the console without a token", "needs a token")

	setCookie(server.TrackingCookie, "/v1/orders/o-ind", expired)
	b.do("open the tracking page with an expired token", chromedp.Navigate(base+"/track/o-ind"))
	says("a tracking page whose token expired", "token refused")
	// The customer opened the link once: the page says it expired, not to open it.
	if got := eval[string](b, `document.getElementById('problem').textContent`); !strings.Contains(got, "it has expired") {
		t.Errorf("a tracking page whose token expired says %q, want that its link has expired", got)
	}
	b.do("open a board with another server's token", chromedp.Navigate(base+"/restaurants/r-1?token="+foreign))
	says("a board handed another server's token", "token refused")
	b.do("open the console with another server's token", chromedp.Navigate(base+"/console?token="+foreign))
	says("the console handed another server's token", "token refused")

	// A board live on its token comes back from the browser's back/forward cache with another
	// server's token in its stream's cookie (the page sets it with each page it serves): the
	// stream opened again is refused a token it presented.
	b.do("open the board with its token", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
	eval[bool](b, `dispatchEvent(new PageTransitionEvent('pagehide', {persisted: true}))`)
	setCookie(server.StreamCookie, "/v1/restaurants/r-1/stream", foreign)
	eval[bool](b, `dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))`)
	says("a board whose stream's token is refused", "token refused")
	screenshots(b, "board-token-refused")
}
