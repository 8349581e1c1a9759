package server_test

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast/auth"
)

// The console as a support agent holds it through a shift: orders named only by ids, couriers
// reassigned, orders ended by hand.

// openConsoleAs signs the console on base in with token, as an operator does with the token
// entry, and waits until its stream is live.
func openConsoleAs(t *testing.T, b *browser, base, token string) {
	t.Helper()
	b.do("sign in to the console",
		chromedp.Navigate(base+"/console"),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name="token"]`), token),
		chromedp.Submit(chromedp.CSS(`#signin-form`)),
	)
	b.waitFor(`#conn[data-state="live"]`)
}

// TestRowsNameAnOrdersPartiesByTheirIds: an order created with a restaurant's and a customer's
// ids but no names in its details said nothing of whose it was ("p-6 · Placed"). A row names
// them by their ids where its details name none: the restaurant in its line ("restaurant r-9"),
// but not on that restaurant's own board, whose reader it is; the customer in its notes
// ("customer: k-9"), but not on the customer's own page, nor a courier's, whose drop-off names
// the customer. So do the words said of it ("Order p-6 from restaurant r-9 is now Confirmed.").
func TestRowsNameAnOrdersPartiesByTheirIds(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"p-6","restaurant_id":"r-9","customer_id":"k-9"}`, http.StatusCreated)
	mustCall(t, "PUT", base+"/v1/orders/p-6/courier", admin, `{"courier_id":"c-9"}`, http.StatusOK)
	row := `li.order[data-order-id="p-6"]`
	line := func(b *browser) string {
		t.Helper()
		return eval[string](b, `document.querySelector('`+row+` .order-meta').textContent.replace(/updated .*/, '')`)
	}
	notes := func(b *browser) string {
		t.Helper()
		return eval[string](b, `(p => p.hidden ? '' : p.textContent)(document.querySelector('`+row+` .order-notes'))`)
	}
	for _, tc := range []struct {
		page, token string
		line, notes string
		said        string // after the page's own Advance, "" where it has none
	}{
		{"/console", admin, "restaurant r-9 · courier c-9 · ", "customer: k-9", "Order p-6 from restaurant r-9 is now Confirmed."},
		{"/restaurants/r-9", actorToken(t, auth.RoleRestaurant, "r-9"), "courier c-9 · ", "customer: k-9", "Order p-6 for customer k-9 is now Preparing."},
		{"/customers/k-9", actorToken(t, auth.RoleCustomer, "k-9"), "restaurant r-9 · courier c-9 · ", "", ""},
		{"/couriers/c-9", actorToken(t, auth.RoleCourier, "c-9"), "", "", ""},
	} {
		b := newBrowser(t)
		if tc.page == "/console" {
			openConsoleAs(t, b, base, tc.token)
		} else {
			b.do("open "+tc.page, chromedp.Navigate(base+tc.page+"?token="+tc.token))
			b.waitFor(`#conn[data-state="live"]`)
		}
		b.waitFor(row)
		if got := line(b); got != tc.line {
			t.Errorf("%s: p-6's line reads %q, want %q", tc.page, got, tc.line)
		}
		if got := notes(b); got != tc.notes {
			t.Errorf("%s: p-6's notes read %q, want %q", tc.page, got, tc.notes)
		}
		if tc.said == "" {
			continue
		}
		b.tap("advance p-6", row+` .advance`)
		b.poll("the change said", `document.getElementById('announce').textContent !== ''`)
		if got := eval[string](b, `document.getElementById('announce').textContent`); got != tc.said {
			t.Errorf("%s: after Advance the page says %q, want %q", tc.page, got, tc.said)
		}
	}
}
