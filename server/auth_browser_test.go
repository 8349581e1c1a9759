package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast/auth"
)

// TestTrackingPageWithTokenCookie: with auth on, the link the customer gets (/track/{id}?token=…)
// sets the tracking cookie and lands on the clean URL, and the page then loads and follows the
// order live through that cookie; without the token the page shows the refusal. The id has a
// ':', which ids allow: the cookie's path must match the page's requests.
func TestTrackingPageWithTokenCookie(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "")
	tok := createAs(t, base, admin, "shop:o-tok")
	createAs(t, base, admin, "o-other")
	b := newBrowser(t)

	b.do("open the customer's link", chromedp.Navigate(base+"/track/shop:o-tok?token="+tok))
	b.waitFor(`#status-line[data-status="placed"]`)
	b.waitFor(`#conn[data-state="live"]`)
	if href := eval[string](b, `location.href`); href != base+"/track/shop:o-tok" {
		t.Errorf("address bar shows %q, want the clean URL", href)
	}
	if cookie := eval[string](b, `document.cookie`); strings.Contains(cookie, tok[:20]) {
		t.Error("the tracking cookie is readable from JavaScript")
	}
	if resp, body := call(t, "POST", base+"/v1/orders/shop:o-tok/status", admin, `{"status":"confirmed"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d %s", resp.StatusCode, body)
	}
	b.waitFor(`#status-line[data-status="confirmed"]`)

	// The cookie is scoped to shop:o-tok's API path: another order's page is refused.
	b.do("open another order's page", chromedp.Navigate(base+"/track/o-other"))
	b.waitFor(`#problem`)
	if eval[bool](b, `document.getElementById('status-line').dataset.status === 'placed'`) {
		t.Error("another order's page shows its status without a token")
	}
}

// TestConsoleOrderLinksOpenTheTrackingPage: with auth on, an operator signed in to the console
// follows an order's link to its tracking page, which loads and goes live: the link's route
// hands the tracking page a tracking cookie signed from the console's token, and no URL the
// browser asks for carries a token.
func TestConsoleOrderLinksOpenTheTrackingPage(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	createAs(t, base, admin, "shop:o-link")
	b := newBrowser(t)
	b.do("sign in to the console",
		chromedp.Navigate(base+"/console"),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name="token"]`), admin),
		chromedp.Submit(chromedp.CSS(`#signin-form`)),
	)
	b.do("follow the order's link", chromedp.Click(chromedp.CSS(`li.order[data-order-id="shop:o-link"] a.order-id`)))
	b.waitFor(`#status-line[data-status="placed"]`)
	b.waitFor(`#conn[data-state="live"]`)
	if href := eval[string](b, `location.href`); href != base+"/track/shop:o-link" {
		t.Errorf("the link ends at %q, want the tracking page", href)
	}
	if resp, body := call(t, "POST", base+"/v1/orders/shop:o-link/status", admin, `{"status":"confirmed"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d %s", resp.StatusCode, body)
	}
	b.waitFor(`#status-line[data-status="confirmed"]`)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range b.requests {
		if strings.Contains(u, "token=") {
			t.Errorf("the browser asked for %s, a URL with a token", u)
		}
	}
}
