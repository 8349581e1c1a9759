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
