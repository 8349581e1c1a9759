package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
)

// The console as a support agent holds it through a shift: orders named only by ids, couriers
// reassigned, orders ended by hand.

// openConsoleAs signs the console on base in with token, as an operator does with a link that
// hands a token over (and the page's question answered), and waits until its stream is live.
func openConsoleAs(t *testing.T, b *browser, base, token string) {
	t.Helper()
	b.do("open the console with a token",
		chromedp.Navigate(base+"/console?token="+token),
		chromedp.Click(chromedp.CSS(`#handover button[type="submit"]`)),
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

// TestConsoleAsksBeforeEndingAnOrderDelivered: a delivery ends an order for good, as a cancel
// does, and the console made it in one press, where Cancel asks again and so does a courier's
// own delivery. Advance to Delivered turns into "Confirm delivered", in place and at its width,
// and Set with Delivered chosen into "Confirm set"; only a second press, once the button has
// settled, delivers (a double click does not). The question lapses unanswered (its time passed;
// for Set also another status chosen, Escape), says so, and sends nothing.
func TestConsoleAsksBeforeEndingAnOrderDelivered(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-adv")
	srv.setStatus("o-adv", ordercast.StatusOutForDelivery, "")
	srv.createOrder("o-set")
	srv.setStatus("o-set", ordercast.StatusConfirmed, "")
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	prompt := `document.getElementById('prompt').textContent`
	b := newBrowser(t)
	recordFetches(b)
	// A question stands a second (taps focus nothing visibly: TestAQuestionStandsWhileTheKeyboardIsOnIt),
	// a button whose words changed settles in a tenth.
	shortenTimings(b, `{confirmMs: 1000, settleMs: 100}`)
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)

	// doubleClick presses btn twice at once (the page's own clicks, which the keyboard's are
	// too), and returns what it says then, and what the prompt said.
	doubleClick := func(btn string) (says, said string) {
		t.Helper()
		says = eval[string](b, `(b => (b.click(), b.click(), b.textContent + (b.hasAttribute('data-confirming') ? ' (confirming)' : '')))(document.querySelector('`+btn+`'))`)
		return says, eval[string](b, prompt)
	}
	width := func(btn string) int {
		t.Helper()
		return eval[int](b, `Math.round(document.querySelector('`+btn+`').getBoundingClientRect().width)`)
	}

	// Advance.
	advance := row("o-adv") + ` .advance`
	b.waitFor(advance + `:not([data-settling])`)
	if got := eval[string](b, `document.querySelector('`+advance+`').textContent`); got != "Advance to Delivered" {
		t.Fatalf("o-adv's Advance says %q, want Advance to Delivered", got)
	}
	before := width(advance)
	says, said := doubleClick(advance)
	if says != "Confirm delivered (confirming)" {
		t.Errorf("after a double click Advance says %q, want Confirm delivered, asking", says)
	}
	if want := "Nothing was done: the button just changed to Confirm delivered. Press again to do that."; said != want {
		t.Errorf("after a double click the prompt says %q, want %q", said, want)
	}
	if w := width(advance); w != before {
		t.Errorf("Confirm delivered is %d px wide, Advance to Delivered was %d: want the same", w, before)
	}
	b.poll("the question to lapse", `(b => !!b && b.textContent === 'Advance to Delivered' && !b.hasAttribute('data-confirming'))(document.querySelector('`+advance+`'))`)
	if got, want := eval[string](b, prompt), "Order o-adv from Luigi's not marked delivered."; got != want {
		t.Errorf("once the question lapsed the prompt says %q, want %q", got, want)
	}
	if n := statusPosts(b, "o-adv"); n != 0 {
		t.Fatalf("a double click and a lapsed question sent %d changes of o-adv", n)
	}
	b.tap("advance", advance)
	b.waitFor(advance + `[data-confirming]`)
	if got, want := eval[string](b, prompt), "Press again to mark order o-adv from Luigi's delivered."; got != want {
		t.Errorf("Advance asks %q, want %q", got, want)
	}
	b.tap("confirm delivered", advance+`[data-confirming]`)
	b.waitFor(row("o-adv") + `[data-status="delivered"]`)
	if got := srv.events("o-adv"); got[len(got)-1].Status != ordercast.StatusDelivered || got[len(got)-1].Note != "set in the console" {
		t.Errorf("o-adv's last event is %s, %q: want delivered, set in the console", got[len(got)-1].Status, got[len(got)-1].Note)
	}

	// Set, with Delivered chosen.
	set := row("o-set") + ` .actions > .set`
	choose := func(status string) {
		t.Helper()
		eval[bool](b, `(p => (p.value = '`+status+`', p.dispatchEvent(new Event('change')), true))(document.querySelector('`+row("o-set")+` .pick'))`)
	}
	asking := func() bool {
		t.Helper()
		return eval[bool](b, `document.querySelector('`+set+`').hasAttribute('data-confirming')`)
	}
	b.waitFor(set + `:not([data-settling])`)
	choose("delivered")
	says, said = doubleClick(set)
	if says != "Confirm set (confirming)" {
		t.Errorf("after a double click Set says %q, want Confirm set, asking", says)
	}
	if want := "Nothing was done: the button just changed to Confirm set. Press again to do that."; said != want {
		t.Errorf("after a double click the prompt says %q, want %q", said, want)
	}
	if got, want := eval[string](b, `document.querySelector('`+set+`').getAttribute('aria-label')`), "Confirm setting order o-set to Delivered"; got != want {
		t.Errorf("Set asking is named %q, want %q", got, want)
	}
	// Another status chosen: the question is over, and said to be.
	choose("ready")
	if asking() {
		t.Error("the question stands after another status was chosen")
	}
	if got, want := eval[string](b, prompt), "Order o-set from Luigi's not marked delivered."; got != want {
		t.Errorf("after another status was chosen the prompt says %q, want %q", got, want)
	}
	// Escape.
	choose("delivered")
	b.tap("set", set)
	b.waitFor(set + `[data-confirming]`)
	if got, want := eval[string](b, prompt), "Press again to mark order o-set from Luigi's delivered."; got != want {
		t.Errorf("Set asks %q, want %q", got, want)
	}
	b.do("Escape", chromedp.Focus(chromedp.CSS(set)), chromedp.KeyEvent(kb.Escape))
	b.waitFor(set + `:not([data-confirming])`)
	// Its time passed (the keyboard's focus, which holds a question, gone from it first).
	eval[bool](b, `(document.activeElement.blur(), true)`)
	b.tap("set", set)
	b.waitFor(set + `[data-confirming]`)
	b.poll("the question to lapse", `(b => !!b && b.textContent === 'Set' && !b.hasAttribute('data-confirming'))(document.querySelector('`+set+`'))`)
	if n := statusPosts(b, "o-set"); n != 0 {
		t.Fatalf("questions unanswered sent %d changes of o-set", n)
	}
	b.tap("set", set)
	b.tap("confirm set", set+`[data-confirming]`)
	b.waitFor(row("o-set") + `[data-status="delivered"]`)
	if n := statusPosts(b, "o-set"); n != 1 {
		t.Errorf("Confirm set sent %d changes of o-set, want 1", n)
	}
}

// TestConsoleTakesANetworkErrorAwayOnceLiveAgain: a change tapped while the server cannot be
// reached says so on its row ("The server cannot be reached."), which stayed there, untrue, after
// the connection was back. Once the page's stream is live again it says that the change was not
// done and may be tried again (taken away, it left whoever tapped believing it was); a refusal the server
// answered (422 here) keeps its rule: it stays until the order moves past the version it was
// refused at.
func TestConsoleTakesANetworkErrorAwayOnceLiveAgain(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-net")
	srv.createOrder("o-bad")
	srv.setStatus("o-bad", ordercast.StatusConfirmed, "")
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	rowError := func(id string) string {
		return `(p => p.hidden ? '' : p.textContent)(document.querySelector('` + row(id) + ` .row-error'))`
	}
	b := newBrowser(t)
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	eval[bool](b, `(ordercast.backoffMs = 50, true)`) // back as soon as the server is
	b.waitFor(row("o-bad") + `[data-status="confirmed"]`)

	// A backward change, which a stale page might send: refused.
	eval[bool](b, `(p => (p.add(new Option('Placed', 'placed')), p.value = 'placed', true))(document.querySelector('`+row("o-bad")+` .pick'))`)
	b.tap("set placed", row("o-bad")+` .actions > .set`)
	refused := "cannot move from confirmed back to placed"
	b.poll("the refusal on o-bad", rowError("o-bad")+` === '`+refused+`'`)

	srv.stop()
	b.waitFor(`#conn[data-state="reconnecting"]`)
	b.tap("advance o-net", row("o-net")+` .advance`)
	b.poll("o-net's change to find no server", rowError("o-net")+` === 'The server cannot be reached.'`)

	srv.start() // the same port
	b.waitFor(`#conn[data-state="live"]`)
	b.poll("o-net's error reworded", rowError("o-net")+` === 'Not done: the server could not be reached then. It can be now: try again.'`)
	if got := eval[string](b, rowError("o-bad")); got != refused {
		t.Errorf("once live again o-bad's row says %q, want the refusal %q: the order has not moved", got, refused)
	}
	if o := srv.order("o-net"); o.Status != ordercast.StatusPlaced {
		t.Errorf("o-net is %s, want placed: its change never reached the server", o.Status)
	}
}

// findBy looks orders up with the console's Find as an agent does from the keyboard: the kind of
// id chosen, the id typed, Enter.
func findBy(b *browser, by, id string) {
	b.t.Helper()
	eval[bool](b, `(f => (f.by.value = '`+by+`', f.id.value = '', f.id.focus(), true))(document.getElementById('find'))`)
	b.do("find "+by+" "+id, chromedp.SendKeys(chromedp.CSS(`#find input[name="id"]`), id+"\r"))
}

// found is what Find lists: each order's id, status and link (the rows of orders, not those that
// show a tracking link under one).
const found = `Array.from(document.querySelectorAll('#find-results:not([hidden]) #find-rows tr[data-order-id]')).map(tr =>
	tr.dataset.orderId + ' ' + tr.querySelector('.badge').textContent + ' ' + tr.querySelector('a').getAttribute('href')).join(', ')`

// waitFound waits until Find's status region says said, and returns what it lists.
func waitFound(b *browser, said string) string {
	b.t.Helper()
	b.poll("Find to say "+said, `document.getElementById('find-status').textContent === `+strconv.Quote(said))
	return eval[string](b, found)
}

// TestConsoleFindsOrders: the console had no way to find an order but its exact id in the address
// bar, and listed the active ones only. Find opens an order by its id (its tracking page, through
// the console's route, as a row's link does), and lists a customer's or a restaurant's orders,
// ended ones too, newest first, each linked; it says when it finds none, when the server cannot
// be reached, and when the server refuses the console's token such a list (403: a customer's
// orders are listed for support, admin and system tokens only, and the console watches with no
// other token, so a proxy stands in for the refusal here).
func TestConsoleFindsOrders(t *testing.T) {
	ts := newAuthServer(t, nil)
	var refuse atomic.Bool
	base := frontProxy(t, ts.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if !refuse.Load() || r.URL.Path != "/v1/orders" {
			return false
		}
		answerError(w, http.StatusForbidden, "forbidden", "only an admin, system or support token may list a customer's orders")
		return true
	})
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, o := range []string{`"id":"f-1","restaurant_id":"r-1","customer_id":"k-1"`, `"id":"f-2","restaurant_id":"r-1","customer_id":"k-1"`,
		`"id":"f-3","restaurant_id":"r-1","customer_id":"k-1"`, `"id":"f-4","restaurant_id":"r-2","customer_id":"k-2"`} {
		mustCall(t, "POST", base+"/v1/orders", admin, `{`+o+`}`, http.StatusCreated)
	}
	mustCall(t, "POST", base+"/v1/orders/f-1/status", admin, `{"status":"delivered"}`, http.StatusOK)
	mustCall(t, "POST", base+"/v1/orders/f-3/status", admin, `{"status":"confirmed"}`, http.StatusOK)
	b := newBrowser(t)
	openConsoleAs(t, b, base, admin)

	findBy(b, "customer", "k-1")
	if got, want := waitFound(b, "3 orders of customer k-1, newest first."),
		"f-3 Confirmed /console/track/f-3, f-2 Placed /console/track/f-2, f-1 Delivered /console/track/f-1"; got != want {
		t.Errorf("Find lists %q, want %q", got, want)
	}
	if got := eval[string](b, `document.getElementById('find-results-heading').textContent`); got != "Orders of customer k-1" {
		t.Errorf("the results are headed %q", got)
	}
	screenshots(b, "console-find")
	findBy(b, "restaurant", "r-2")
	if got, want := waitFound(b, "1 order of restaurant r-2, newest first."), "f-4 Placed /console/track/f-4"; got != want {
		t.Errorf("Find lists %q, want %q", got, want)
	}
	findBy(b, "customer", "nobody")
	if got := waitFound(b, "No orders of customer nobody."); got != "" {
		t.Errorf("finding none, Find lists %q", got)
	}
	findBy(b, "order", "f-9")
	waitFound(b, "No order f-9.")

	restore, _ := b.failRequests(network.ErrorReasonConnectionRefused, "*/v1/orders?limit=*")
	findBy(b, "customer", "k-1")
	if got := waitFound(b, "The server cannot be reached; try again."); got != "" {
		t.Errorf("finding no server, Find lists %q", got)
	}
	restore()
	refuse.Store(true)
	findBy(b, "customer", "k-1")
	if got := waitFound(b, "This console's token may not look that up: Only an admin, system or support token may list a customer's orders."); got != "" {
		t.Errorf("refused, Find lists %q", got)
	}
	refuse.Store(false)

	findBy(b, "order", "f-2")
	b.waitFor(`#status-line[data-status="placed"]`)
	if got := eval[string](b, `location.pathname`); got != "/track/f-2" {
		t.Errorf("finding order f-2 opened %s, want its tracking page", got)
	}
}

// TestConsoleSaysItsListIsCut: the console's stream's snapshot holds the newest 500 active orders
// (stream.SnapshotLimit), and the oldest, the ones customers call about, were simply not listed.
// The console says so when a snapshot comes full, and Find lists a party's newest orders, newest
// first, however many it has, in one page listed newest first (a party's newest page was once
// read back a window of time at a time, as the API listed oldest first only).
func TestConsoleSaysItsListIsCut(t *testing.T) {
	ts := newServer(t, nil)
	const n = 501
	for i := range n {
		if _, _, err := ts.store.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("m-%03d", i), RestaurantID: "r-many", CustomerID: "k-many"}); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t)
	b.do("open the console", chromedp.Navigate(ts.URL()+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitLong(`li.order[data-order-id="m-500"]`)
	if got := eval[int](b, `document.querySelectorAll('li.order').length`); got != 500 {
		t.Fatalf("the console lists %d orders, want the snapshot's 500", got)
	}
	if want := "The list holds the 500 newest active orders: older ones, still in progress, are not listed. Find one by its id, its customer or its restaurant."; eval[string](b, `(p => p.hidden ? '' : p.textContent)(document.getElementById('list-limit'))`) != want {
		t.Errorf("the console says %q of its list, want %q", eval[string](b, `document.getElementById('list-limit').textContent`), want)
	}

	findBy(b, "customer", "k-many")
	got := strings.Split(waitFound(b, "The 100 newest orders of customer k-many, newest first; it has older ones."), ", ")
	if len(got) != 100 || !strings.HasPrefix(got[0], "m-500 ") || !strings.HasPrefix(got[99], "m-401 ") {
		t.Errorf("Find lists %d orders, from %q to %q; want m-500 to m-401", len(got), got[0], got[len(got)-1])
	}
}

// TestConsoleGivesACustomerTheirTrackingLinkAgain: a customer who lost their tracking link, or
// whose link expired, calls support, and the console had no way to give it again, though the
// API makes one (POST /v1/orders/{id}/tracking-token). Each row offers "Tracking link", and so
// does each order Find lists (where a caller's order is often found): it shows the link, which
// opens the order's tracking page in a browser with no other credential, in a read-only field
// with Copy (the clipboard, or the link selected for the agent's own Ctrl+C), and when it
// expires; it says why when the server cannot be reached or refuses. A restaurant's board, or a
// token that may not have one made, is offered none. On a phone the row stays the phone's width.
func TestConsoleGivesACustomerTheirTrackingLinkAgain(t *testing.T) {
	ts := newAuthServer(t, nil)
	var refuse atomic.Bool
	var made atomic.Int32 // the tracking tokens the server was asked for
	base := frontProxy(t, ts.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if !strings.HasSuffix(r.URL.Path, "/tracking-token") {
			return false
		}
		if !refuse.Load() {
			made.Add(1)
			return false
		}
		answerError(w, http.StatusForbidden, "forbidden", "only an admin, system or support token may have a tracking token made")
		return true
	})
	admin := actorToken(t, auth.RoleAdmin, "ops")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"l-1","restaurant_id":"r-1","customer_id":"k-1","details":{"restaurant":"Luigi's"}}`, http.StatusCreated)
	b := newBrowser(t)
	openConsoleAs(t, b, base, actorToken(t, auth.RoleSupport, "agent-1"))
	row := `li.order[data-order-id="l-1"]`
	ask := row + ` .link-ask`
	b.waitFor(ask)
	if got := eval[string](b, `document.body.dataset.trackingLinks`); got != "true" {
		t.Errorf("a support agent's console says data-tracking-links=%q, want true", got)
	}
	if got, want := eval[string](b, `document.querySelector('`+ask+`').getAttribute('aria-label')`), "Tracking link for order l-1"; got != want {
		t.Errorf("the row's Tracking link is named %q, want %q", got, want)
	}

	b.tap("ask for l-1's tracking link", ask)
	b.waitFor(row + ` .link-panel .link-url`)
	link := eval[string](b, `document.querySelector('`+row+` .link-url').value`)
	if !strings.HasPrefix(link, base+"/track/l-1?token=") || len(link) < len(base+"/track/l-1?token=")+20 {
		t.Fatalf("the row shows the link %q, want %s/track/l-1?token=<a tracking token>", link, base)
	}
	if !eval[bool](b, `document.querySelector('`+row+` .link-url').readOnly`) {
		t.Error("the link's field can be typed in")
	}
	if got, want := eval[string](b, `(f => f.labels[0].textContent + ' | ' + f.getAttribute('aria-label'))(document.querySelector('`+row+` .link-url'))`),
		"Link | Link to the tracking page of order l-1"; got != want {
		t.Errorf("the link's field is labelled and named %q, want %q", got, want)
	}
	expiry := eval[string](b, `document.querySelector('`+row+` .link-expiry').textContent`)
	if !strings.HasPrefix(expiry, "Expires in 24 hours (tomorrow at ") {
		t.Errorf("the row says of the link %q, want it to expire in 24 hours, tomorrow", expiry)
	}
	if got := eval[string](b, `(f => document.getElementById(f.getAttribute('aria-describedby')).textContent)(document.querySelector('`+row+` .link-url'))`); got != expiry {
		t.Errorf("the link's field is described as %q, want its expiry %q", got, expiry)
	}
	b.poll("the link to be said", `document.getElementById('announce').textContent !== ''`)
	if got, want := eval[string](b, `document.getElementById('announce').textContent`),
		"Tracking link of order l-1 from Luigi's shown below, with Copy; it expires in 24 hours."; got != want {
		t.Errorf("the page says %q, want %q", got, want)
	}
	screenshots(b, "console-tracking-link")

	// On a phone's screen the row, its link's field and Copy stay within the page's width.
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	if got := eval[string](b, `(li => {
		const out = [li, li.querySelector('.link-url'), li.querySelector('.link-copy')].filter(e => e.getBoundingClientRect().right > li.getBoundingClientRect().right + 0.5 || e.getBoundingClientRect().left < 0);
		return out.map(e => e.className).join(', ') + (document.documentElement.scrollWidth > innerWidth ? ' page scrolls sideways' : '');
	})(document.querySelector('`+row+`'))`); got != "" {
		t.Errorf("at 360 px wide these stick out of the row: %s", got)
	}
	b.do("a desktop's screen", chromedp.EmulateViewport(1280, 860))

	// Copy puts the link on the clipboard (the browser's permission granted, as a page in front
	// has it).
	b.do("let the page use the clipboard", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
			return chromedp.Void{}, err
		}
		for _, name := range []string{"clipboard-read", "clipboard-write"} {
			if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
				Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted, Origin: base,
				BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
			}); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	})
	b.tap("copy l-1's link", row+` .link-copy`)
	b.poll("Copy to say it copied", `document.querySelector('`+row+` .link-copied').textContent === 'Copied.'`)
	if got := eval[string](b, `navigator.clipboard.readText()`); got != link {
		t.Errorf("Copy put %q on the clipboard, want the link %q", got, link)
	}

	// Copy where the page has no clipboard (an http address that is not localhost): the link is
	// selected, whole, for the agent's Ctrl+C.
	eval[bool](b, `(Object.defineProperty(navigator, 'clipboard', {configurable: true, value: undefined}), true)`)
	b.tap("copy l-1's link", row+` .link-copy`)
	b.poll("Copy to say what to do", `document.querySelector('`+row+` .link-copied').textContent !== ''`)
	if got, want := eval[string](b, `document.querySelector('`+row+` .link-copied').textContent`), "Selected: press Ctrl+C (⌘C on a Mac) to copy it."; got != want {
		t.Errorf("without a clipboard Copy says %q, want %q", got, want)
	}
	if !eval[bool](b, `(f => document.activeElement === f && f.selectionStart === 0 && f.selectionEnd === f.value.length)(document.querySelector('`+row+` .link-url'))`) {
		t.Error("without a clipboard Copy did not select the whole link")
	}

	// The link opens the order's tracking page in a browser that holds no other credential.
	customer := newBrowser(t)
	customer.do("open the link", chromedp.Navigate(link))
	customer.waitFor(`#status-line[data-status="placed"]`)
	customer.waitFor(`#conn[data-state="live"]`)
	if got := eval[string](customer, `location.href`); got != base+"/track/l-1" {
		t.Errorf("the link ends at %q, want the clean tracking page", got)
	}

	// No network, then a refusal: each said under the button; the link shown before stays.
	restore, _ := b.failRequests(network.ErrorReasonInternetDisconnected, "*/tracking-token")
	b.tap("ask again, with no network", ask)
	linkError := `(p => p.hidden ? '' : p.textContent)(document.querySelector('` + row + ` .link-error'))`
	b.poll("the network failure said", linkError+` === 'No tracking link made. The server cannot be reached; try again.'`)
	restore()
	refuse.Store(true)
	b.tap("ask again, refused", ask)
	b.poll("the refusal said", linkError+` === "No tracking link made. This console's token may not have one made: Only an admin, system or support token may have a tracking token made."`)
	refuse.Store(false)
	if got := eval[string](b, `document.querySelector('`+row+` .link-url').value`); got != link {
		t.Errorf("after the failures the row shows %q, want the link made before", got)
	}
	// A fresh token may be the very one shown, made within the same second: told by the request
	// that made it.
	before := made.Load()
	b.tap("ask again", ask)
	for deadline := time.Now().Add(10 * time.Second); made.Load() == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("asked again: no tracking token asked for within 10s")
		}
	}
	b.poll("the error gone", linkError+` === ''`)
	if got := eval[string](b, `document.querySelector('`+row+` .link-url').value`); made.Load() != before+1 || !strings.HasPrefix(got, base+"/track/l-1?token=") {
		t.Errorf("asked again: %d tokens made, the row shows %q; want one more made, and its link", made.Load()-before, got)
	}

	// Find: the orders of the caller, each with its Tracking link, pressed from the keyboard.
	findBy(b, "customer", "k-1")
	waitFound(b, "1 order of customer k-1, newest first.")
	foundAsk := `#find-rows tr[data-order-id="l-1"] .link-ask`
	b.do("press Tracking link from the keyboard", chromedp.Focus(chromedp.CSS(foundAsk)), chromedp.KeyEvent(kb.Enter))
	b.waitFor(`#find-rows tr.found-link .link-url`)
	if got := eval[string](b, `document.querySelector('#find-rows tr.found-link .link-url').value`); !strings.HasPrefix(got, base+"/track/l-1?token=") {
		t.Errorf("Find shows the link %q, want %s/track/l-1?token=…", got, base)
	}
	if got := eval[string](b, `document.querySelector('#find-results thead th:last-child').textContent`); got != "Tracking link" {
		t.Errorf("Find's column of links is headed %q", got)
	}
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	if eval[bool](b, `document.documentElement.scrollWidth > innerWidth`) {
		t.Error("at 360 px wide Find's table with a link shown makes the page scroll sideways")
	}
	screenshots(b, "console-find-tracking-link")

	// A restaurant's board, whose token may not have a link made, offers none; nor does a
	// console given a token that may not (it watches nothing either: its stream is refused).
	restaurant := actorToken(t, auth.RoleRestaurant, "r-1")
	board := newBrowser(t)
	board.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+restaurant))
	board.waitFor(row)
	if n := eval[int](board, `document.querySelectorAll('.link-ask, .link-panel').length`); n != 0 {
		t.Errorf("a restaurant's board offers %d tracking link controls, want none", n)
	}
	console := newBrowser(t)
	console.do("open the console with a restaurant's token",
		chromedp.Navigate(base+"/console?token="+restaurant),
		chromedp.Click(chromedp.CSS(`#handover button[type="submit"]`)),
	)
	console.waitFor(`#signin`)
	if got := eval[string](console, `document.body.dataset.trackingLinks`); got != "false" {
		t.Errorf("the console given a restaurant's token says data-tracking-links=%q, want false", got)
	}
}

// TestConsoleGivesThePlainTrackingLinkOnAnOpenServer: an open server (no auth) signs no token,
// and its tracking page asks none: the link the console gives is the page's address alone, which
// anyone may open there, and it says so rather than when the link expires.
func TestConsoleGivesThePlainTrackingLinkOnAnOpenServer(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-open")
	b := newBrowser(t)
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	row := `li.order[data-order-id="o-open"]`
	b.tap("ask for o-open's tracking link", row+` .link-ask`)
	b.waitFor(row + ` .link-url`)
	if got, want := eval[string](b, `document.querySelector('`+row+` .link-url').value`), srv.url+"/track/o-open"; got != want {
		t.Errorf("on an open server the link is %q, want %q", got, want)
	}
	if got, want := eval[string](b, `document.querySelector('`+row+` .link-expiry').textContent`),
		"This server asks no token: anyone with the link can follow the order, and it does not expire."; got != want {
		t.Errorf("on an open server the row says %q, want %q", got, want)
	}
}
