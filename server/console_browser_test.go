package server_test

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
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

// lastEvent is order id's latest event in ts's store.
func lastEvent(t *testing.T, ts *testServer, id string) ordercast.Event {
	t.Helper()
	evs, err := ts.store.EventsAfter(t.Context(), id, 0, 0)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events of %s: %d, %v", id, len(evs), err)
	}
	return evs[len(evs)-1]
}

// TestConsoleReassignsACourier: support (a support, admin or system token) may reassign an
// order's courier at any stage before it ends (docs/security.md), a courier who fell ill with the
// food included, where a restaurant's board may not once the courier has picked it up. The
// console offered no courier controls: it offers the board's (the field, a name for a new
// courier, Assign, and Unassign, which asks first), and each change's note says it was made in
// the console. Here a support agent's.
func TestConsoleReassignsACourier(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"a-1","restaurant_id":"r-1"}`, http.StatusCreated)
	mustCall(t, "PUT", base+"/v1/orders/a-1/courier", admin, `{"courier_id":"c-1"}`, http.StatusOK)
	mustCall(t, "POST", base+"/v1/orders/a-1/status", admin, `{"status":"out_for_delivery"}`, http.StatusOK)
	b := newBrowser(t)
	openConsoleAs(t, b, base, actorToken(t, auth.RoleSupport, "agent-1"))
	row := `li.order[data-order-id="a-1"]`
	b.waitFor(row + `[data-status="out_for_delivery"][data-courier="c-1"]`)
	if got := eval[string](b, `document.querySelector('`+row+` .courier').value`); got != "c-1" {
		t.Errorf("the courier's field shows %q, want the order's c-1", got)
	}

	// Out for delivery, past a restaurant's bound: the console assigns all the same.
	eval[bool](b, `(f => (f.value = '', f.dispatchEvent(new Event('input')), true))(document.querySelector('`+row+` .courier'))`)
	b.do("type c-2", chromedp.SendKeys(chromedp.CSS(row+` .courier`), "c-2"))
	b.waitFor(row + ` .courier-name`)
	b.do("name it", chromedp.SendKeys(chromedp.CSS(row+` .courier-name`), "Omar"))
	b.tap("assign", row+` .assign`)
	b.waitFor(row + `[data-courier="c-2"]`)
	if o, err := ts.store.Order(t.Context(), "a-1"); err != nil || o.CourierID != "c-2" || o.CourierName != "Omar" {
		t.Errorf("after Assign a-1's courier is %q named %q (%v), want c-2 named Omar", o.CourierID, o.CourierName, err)
	}
	if got := lastEvent(t, ts, "a-1").Note; got != "assigned in the console" {
		t.Errorf("the assignment's note is %q, want it made in the console", got)
	}

	unassignOn(b, row)
	b.waitFor(row + `[data-courier=""]`)
	if o, err := ts.store.Order(t.Context(), "a-1"); err != nil || o.CourierID != "" {
		t.Errorf("after Unassign a-1's courier is %q (%v), want none", o.CourierID, err)
	}
	if got := lastEvent(t, ts, "a-1").Note; got != "unassigned in the console" {
		t.Errorf("the unassignment's note is %q, want it made in the console", got)
	}
}
