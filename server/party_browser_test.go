package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// TestRestaurantBoardAndCustomerPage: a restaurant's board opens with its token through the
// ?token= hand-over (clean URL, HttpOnly cookie), shows only that restaurant's active orders live
// over its one stream, assigns a courier and moves an order; a new order of the restaurant
// appears, another restaurant's does not. The customer's page lists that customer's live orders,
// read only, and follows changes made on the board. Neither puts a token in a stream's URL: the
// stream's cookie carries it, and the restaurant's id has a ':', which the cookie's path must
// match. A token the board refuses leaves it without the earlier token.
func TestRestaurantBoardAndCustomerPage(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	create := func(id, restaurant, customer string) {
		t.Helper()
		if resp, body := call(t, "POST", base+"/v1/orders", admin,
			`{"id":"`+id+`","restaurant_id":"`+restaurant+`","customer_id":"`+customer+`","details":{"restaurant":"Luigi's","items":2}}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
		}
	}
	create("b-1", "shop:r-1", "u-1")
	create("b-2", "shop:r-1", "u-2")
	create("b-other", "r-2", "u-1")
	rest := actorToken(t, auth.RoleRestaurant, "shop:r-1")
	b := newBrowser(t)

	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	b.do("open the board with its token", chromedp.Navigate(base+"/restaurants/shop:r-1?token="+rest))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("b-1") + `[data-status="placed"]`)
	b.waitFor(row("b-2"))
	if href := eval[string](b, `location.href`); href != base+"/restaurants/shop:r-1" {
		t.Errorf("address bar shows %q, want the clean URL", href)
	}
	if cookie := eval[string](b, `document.cookie`); strings.Contains(cookie, rest[:20]) {
		t.Error("the board's cookie is readable from JavaScript")
	}
	if n := eval[int](b, `document.querySelectorAll('li.order[data-order-id="b-other"]').length`); n != 0 {
		t.Fatal("the board shows another restaurant's order")
	}

	// Move an order and assign a courier from the board; both are in the store.
	b.do("advance b-1", chromedp.Click(chromedp.CSS(row("b-1")+` .advance`)))
	b.waitFor(row("b-1") + `[data-status="confirmed"]`)
	// The courier's name, which the customer reads, has a field that typing a courier brings out.
	nameShown := `document.querySelector('` + row("b-1") + ` .courier-name').checkVisibility()`
	if eval[bool](b, nameShown) {
		t.Error("the courier's name field shows before a courier is typed")
	}
	b.do("type c-7", chromedp.SendKeys(chromedp.CSS(row("b-1")+` .courier`), "c-7"))
	b.poll("the name field out", nameShown)
	b.do("name c-7", chromedp.SendKeys(chromedp.CSS(row("b-1")+` .courier-name`), "Omar"))
	b.tap("assign c-7", row("b-1")+` .assign`)
	b.waitFor(row("b-1") + `[data-courier="c-7"]`)
	if o, err := ts.store.Order(t.Context(), "b-1"); err != nil || o.CourierID != "c-7" || o.CourierName != "Omar" || o.Status != "confirmed" {
		t.Fatalf("after the board's changes the store has %+v, %v", o, err)
	}
	b.poll("the name field put away, the row naming the courier", `!(`+nameShown+`) && document.querySelector('`+row("b-1")+` .order-meta').textContent.includes('courier \u2068Omar\u2069 (c-7)')`)
	// The order's courier again names nobody new (the API changes nothing, its name included):
	// no name field then, and one for another courier.
	typeCourier := func(id string) {
		eval[bool](b, `(f => { f.value = '`+id+`'; f.dispatchEvent(new Event('input')); return true })(document.querySelector('`+row("b-1")+` .courier'))`)
	}
	typeCourier("c-7")
	if eval[bool](b, nameShown) {
		t.Error("typing the order's own courier brings out the name field")
	}
	typeCourier("c-9")
	b.poll("the name field out for another courier", nameShown)
	typeCourier("c-7") // as it was: the field shows the order's courier

	// Changes made elsewhere arrive over the board's one stream; a new order appears.
	if resp, body := call(t, "POST", base+"/v1/orders/b-2/status", admin, `{"status":"preparing"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("move b-2: %d %s", resp.StatusCode, body)
	}
	b.waitFor(row("b-2") + `[data-status="preparing"]`)
	create("b-3", "shop:r-1", "u-1")
	b.waitFor(row("b-3") + `[data-status="placed"]`)
	create("b-other-2", "r-2", "u-3")
	if n := b.countRequests("/stream"); n != 1 {
		t.Errorf("the board opened %d streams, want its one", n)
	}
	screenshots(b, "board")

	// The customer's page: only u-1's orders, read only, live.
	cust := actorToken(t, auth.RoleCustomer, "u-1")
	c := newBrowser(t)
	c.do("open the customer's page with its token", chromedp.Navigate(base+"/customers/u-1?token="+cust))
	c.waitFor(`#conn[data-state="live"]`)
	c.waitFor(row("b-1") + `[data-courier="c-7"]`)
	c.waitFor(row("b-3"))
	c.waitFor(row("b-other"))
	if n := eval[int](c, `document.querySelectorAll('li.order[data-order-id="b-2"], .actions').length`); n != 0 {
		t.Fatal("the customer's page shows another customer's order, or actions")
	}
	b.tap("advance b-1 again", row("b-1")+` .advance`) // its words changed: a second's pause
	c.waitFor(row("b-1") + `[data-status="preparing"]`)
	// A courier assigned under a name: the customer reads the name, not the id the boards
	// assign by.
	mustCall(t, "PUT", base+"/v1/orders/b-3/courier", admin, `{"courier_id":"c-8","courier_name":"Ama"}`, http.StatusOK)
	c.waitFor(row("b-3") + `[data-courier="c-8"]`)
	if got := eval[string](c, `document.querySelector('`+row("b-3")+` .order-meta').textContent`); !strings.Contains(got, " · courier \u2068Ama\u2069 · ") {
		t.Errorf("the customer's row of b-3 says %q, want the courier by name alone", got)
	}
	screenshots(c, "customer")

	// Each order's id links to its tracking page, through the page's own route, which signs a
	// tracking token from the page's token into the tracking cookie: no token in a URL.
	c.do("follow b-1's link", chromedp.Click(chromedp.CSS(row("b-1")+` a.order-id`)))
	c.waitFor(`#status-line[data-status="preparing"]`)
	c.waitFor(`#conn[data-state="live"]`)
	if href := eval[string](c, `location.href`); href != base+"/track/b-1" {
		t.Errorf("the customer's link ends at %q, want the tracking page", href)
	}
	b.do("follow b-2's link", chromedp.Click(chromedp.CSS(row("b-2")+` a.order-id`)))
	b.waitFor(`#status-line[data-status="preparing"]`)
	b.waitFor(`#conn[data-state="live"]`)
	// The route signs nothing for an order that is not the party's: the restaurant's view of the
	// tracking page shows the refusal, in words for the restaurant (no customer's tracking link
	// to open), and the way back to the board.
	b.do("open another restaurant's order through the board's route", chromedp.Navigate(base+"/restaurants/shop:r-1/track/b-other"))
	b.waitFor(`#problem`)
	if why, back := eval[string](b, `document.getElementById('problem').textContent`), eval[string](b, `document.querySelector('.back a').getAttribute('href')`); why != "This order is not your restaurant's, or the board's sign-in has expired." || back != "/restaurants/shop:r-1" {
		t.Errorf("another restaurant's order shows %q, the way back %q; want the restaurant's refusal, and the board", why, back)
	}
	for _, br := range []*browser{b, c} {
		br.mu.Lock()
		for _, u := range br.requests {
			if strings.Contains(u, "token=") && !strings.Contains(u, "?token="+rest) && !strings.Contains(u, "?token="+cust) {
				t.Errorf("the browser asked for %s, a URL with a token", u)
			}
		}
		br.mu.Unlock()
	}
	b.do("back to the board", chromedp.Navigate(base+"/restaurants/shop:r-1"))
	b.waitFor(`#conn[data-state="live"]`)

	b.tokenInStreamURLs()
	c.tokenInStreamURLs()

	// Another restaurant's token, handed over in the browser that holds shop:r-1's: the page says
	// it was refused and starts nothing. The earlier token's cookies stay (any site could send the
	// browser here with a bad token, and must not sign the board out), so the board opened again
	// is shop:r-1's.
	streams := b.countRequests("/stream")
	b.do("open shop:r-1's board with r-2's token", chromedp.Navigate(base+"/restaurants/shop:r-1?token="+actorToken(t, auth.RoleRestaurant, "r-2")))
	b.waitFor(`#problem`)
	b.waitFor(`#conn[data-state="denied"]`)
	if why := eval[string](b, `document.getElementById('problem').textContent`); !strings.Contains(why, "may not watch") {
		t.Errorf("the refused page says %q, want the server's reason", why)
	}
	if got := eval[string](b, `document.querySelector('#conn .conn-state').textContent`); got != "token refused" {
		t.Errorf("the refused page's indicator says %q, want token refused", got)
	}
	if href := eval[string](b, `location.href`); href != base+"/restaurants/shop:r-1" {
		t.Errorf("address bar shows %q after a refused token, want the clean URL", href)
	}
	if n := b.countRequests("/stream") - streams; n != 0 {
		t.Errorf("the page of a refused token opened %d streams", n)
	}
	screenshots(b, "board-refused")
	b.do("open the board again", chromedp.Navigate(base+"/restaurants/shop:r-1"))
	b.waitFor(`#conn[data-state="live"]`)
	if eval[bool](b, `document.getElementById('problem') !== null && document.getElementById('problem').textContent.trim() !== ""`) {
		t.Error("after a refused hand-over the board opened again is not the earlier session's")
	}
}

// TestRestaurantViewOfTheTrackingPage: an order's link on a restaurant's board opens the
// restaurant's view of the tracking page, which speaks to the restaurant: the order named by its
// customer, "Where the courier is", the drop-off named by its customer rather than "You", the
// minutes to the drop-off, and a link back to the board, which a tablet in kiosk mode (no back
// button) needs. A cancelled order tells the kitchen to stop, or that its courier had it, never
// to contact the restaurant about a refund.
func TestRestaurantViewOfTheTrackingPage(t *testing.T) {
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
		s.LocationInterval = 0
	})
	base := ls.URL()
	createCourierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	createCourierOrder(t, ls, "d-2", "c-2", ordercast.StatusPreparing)
	admin := actorToken(t, auth.RoleAdmin, "ops")
	b := newBrowser(t)
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`li.order[data-order-id="d-1"]`)
	b.do("follow d-1's link", chromedp.Click(chromedp.CSS(`li.order[data-order-id="d-1"] a.order-id`)))
	b.waitFor(`#status-line[data-status="out_for_delivery"]`)
	b.waitFor(`#conn[data-state="live"]`)
	if href := eval[string](b, `location.href`); href != base+"/track/d-1?restaurant=r-1&view=restaurant" {
		t.Errorf("the link ends at %q, want the restaurant's view of the tracking page", href)
	}
	for _, tc := range []struct{ what, expr, want string }{
		{"the heading", `document.querySelector('main h1').textContent`, "Order for Ana"},
		{"the map's heading", `document.getElementById('map-heading').textContent`, "Where the courier is"},
		{"the drop-off's pin", `document.querySelector('#map-dropoff-label text').textContent`, "Ana"},
		{"the way back", `document.querySelector('.back a').getAttribute('href')`, "/restaurants/r-1"},
		{"the way back's words", `document.querySelector('.back a').textContent`, "Back to the board"},
	} {
		if got := eval[string](b, tc.expr); got != tc.want {
			t.Errorf("%s says %q, want %q", tc.what, got, tc.want)
		}
	}
	if code, body := postLocation(t, base, "c-1", actorToken(t, auth.RoleCourier, "c-1"), `{"lat":52.5210,"lng":13.4080,"speed_mps":5}`); code != http.StatusOK {
		t.Fatalf("post: %d %s", code, body)
	}
	b.poll("the minutes to the drop-off", `/^About \d+ min to the drop-off$/.test(document.getElementById('eta').textContent)`)
	screenshots(b, "restaurant-track")

	cancel := func(id string) {
		t.Helper()
		mustCall(t, "POST", base+"/v1/orders/"+id+"/status", admin, `{"status":"cancelled","note":"customer asked to cancel"}`, http.StatusOK)
	}
	cancel("d-1")
	b.waitFor(`#cancelled`)
	if got, want := eval[string](b, `document.getElementById('cancel-next').textContent`), "Its courier had already picked it up."; got != want {
		t.Errorf("an order cancelled on the road tells the restaurant %q, want %q", got, want)
	}
	cancel("d-2")
	b.do("open d-2 through the board's route", chromedp.Navigate(base+"/restaurants/r-1/track/d-2"))
	b.waitFor(`#cancelled`)
	if got, want := eval[string](b, `document.getElementById('cancel-next').textContent`), "Stop preparing it."; got != want {
		t.Errorf("an order cancelled in the kitchen tells the restaurant %q, want %q", got, want)
	}
	if got := eval[string](b, `document.querySelector('main').textContent`); strings.Contains(got, "contact") || strings.Contains(got, "refund") {
		t.Errorf("the restaurant's view of a cancelled order speaks as to its customer: %q", got)
	}

	b.do("back to the board", chromedp.Click(chromedp.CSS(`.back a`)))
	b.waitFor(`#conn[data-state="live"]`)
	if href := eval[string](b, `location.href`); href != base+"/restaurants/r-1" {
		t.Errorf("the way back ends at %q, want the board", href)
	}
}

// TestRestaurantBoardOffersWhatTheRestaurantMay: the board offers only the statuses a restaurant
// may set (auth/permit.go), so no button earns a certain 403: Set lists confirmed, preparing,
// ready and cancelled, and Advance stops at ready (out for delivery is the courier's). Assign
// needs a courier id, rather than taking the courier away when the field is empty; the field
// shows the order's courier, and Unassign takes it away. Once the courier has picked the order
// up, neither Assign, Unassign nor Cancel is offered (auth/permit.go: the restaurant's part
// ended). Each change's note names the board. Where Advance is off, the row says whom the order
// waits for, or that the courier has it, by the courier's name when its assignment gave one.
func TestRestaurantBoardOffersWhatTheRestaurantMay(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"m-1","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	row := `li.order[data-order-id="m-1"]`
	b := newBrowser(t)
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(row + `[data-status="placed"]`)
	if got := eval[string](b, `Array.from(document.querySelectorAll('`+row+` .pick option')).map(o => o.value).join(' ')`); got != "confirmed preparing ready" {
		t.Errorf("the board offers to set %q, want the restaurant's later statuses", got)
	}

	if !eval[bool](b, `document.querySelector('`+row+` .assign').disabled`) {
		t.Error("Assign is offered with no courier id")
	}
	enabledLook := eval[[]string](b, `(s => [s.color, s.backgroundColor, s.borderStyle])(getComputedStyle(document.querySelector('`+row+` .courier')))`)
	b.do("type c-7", chromedp.SendKeys(chromedp.CSS(row+` .courier`), "c-7"))
	b.tap("assign c-7", row+` .assign`)
	b.waitFor(row + `[data-courier="c-7"]`)
	b.poll("the field shows the courier", `document.querySelector('`+row+` .courier').value === 'c-7' && !document.querySelector('`+row+` .unassign').disabled`)
	// The same courier again would change nothing: Assign is off.
	if !eval[bool](b, `document.querySelector('`+row+` .assign').disabled`) {
		t.Error("Assign is offered for the order's own courier")
	}
	// Unassign asks first: the courier may be on the way; the first tap changes nothing.
	b.tap("unassign", row+` .unassign`)
	b.waitFor(row + ` .unassign[data-confirming]`)
	if got := eval[string](b, `document.querySelector('`+row+` .unassign').textContent`); got != "Confirm unassign" {
		t.Errorf("after one tap Unassign says %q, want Confirm unassign", got)
	}
	var o ordercast.Order
	if err := json.Unmarshal(mustCall(t, "GET", base+"/v1/orders/m-1", admin, "", http.StatusOK), &o); err != nil || o.CourierID != "c-7" {
		t.Fatalf("one tap of Unassign: the order's courier %q (%v), want c-7 still", o.CourierID, err)
	}
	b.waitFor(row + ` .unassign[data-confirming]:not([data-settling])`)
	b.tap("confirm unassign", row+` .unassign[data-confirming]`)
	b.waitFor(row + `[data-courier=""]`)
	b.poll("the field is empty and Assign off", `document.querySelector('`+row+` .courier').value === '' && document.querySelector('`+row+` .assign').disabled`)

	b.tap("advance", row+` .advance`)
	b.waitFor(row + `[data-status="confirmed"]`)
	if !eval[bool](b, `document.querySelector('`+row+` .order-hint').hidden`) {
		t.Errorf("before ready, the row says %q", eval[string](b, `document.querySelector('`+row+` .order-hint').textContent`))
	}
	if resp, body := call(t, "POST", base+"/v1/orders/m-1/status", admin, `{"status":"ready"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("ready: %d %s", resp.StatusCode, body)
	}
	b.waitFor(row + `[data-status="ready"]`)
	if label, off := eval[string](b, `document.querySelector('`+row+` .advance').textContent`), eval[bool](b, `document.querySelector('`+row+` .advance').disabled`); !off || label != "Advance" {
		t.Errorf("at ready, Advance says %q (disabled %v), want it off: out for delivery is not the restaurant's", label, off)
	}
	// Nor is there a later status to set: the picker says so and Set is off, rather than offer
	// an earlier one the API would refuse.
	noneLater := `document.querySelector('` + row + ` .set').disabled && document.querySelector('` + row + ` .pick').disabled && ` +
		`document.querySelector('` + row + ` .pick').value === '' && document.querySelector('` + row + ` .pick').textContent === 'No later status'`
	if !eval[bool](b, noneLater) {
		t.Errorf("at ready the picker offers %q", eval[string](b, `document.querySelector('`+row+` .pick').textContent`))
	}
	// The row says why Advance is off: the next step is the courier's.
	hint := func(want string) {
		t.Helper()
		b.poll("the row to say "+strconv.Quote(want), `(h => `+strconv.Quote(want)+` === '' ? h.hidden : !h.hidden && h.textContent === `+strconv.Quote(want)+`)(document.querySelector('`+row+` .order-hint'))`)
	}
	hint("Waiting for a courier to pick it up.")
	screenshots(b, "board-ready")
	if resp, body := call(t, "PUT", base+"/v1/orders/m-1/courier", admin, `{"courier_id":"c-9","courier_name":"Ama"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("assign c-9: %d %s", resp.StatusCode, body)
	}
	b.poll("Unassign and Cancel on, at ready with a courier", `!document.querySelector('`+row+` .unassign').disabled && !document.querySelector('`+row+` .cancel').disabled`)
	// Dispatch assigned the courier under a name: the row calls the courier by it, with the id
	// the board assigns by.
	hint("Waiting for courier \u2068Ama\u2069 (c-9) to pick it up.")
	// Picked up while the restaurant was naming another courier: the fields go off, and the
	// focus to the row, not to the page's body.
	b.do("type c-4", chromedp.Focus(chromedp.CSS(row+` .courier`)), chromedp.SendKeys(chromedp.CSS(row+` .courier`), "\b\b\bc-4"))
	b.do("name c-4", chromedp.Focus(chromedp.CSS(row+` .courier-name`)), chromedp.SendKeys(chromedp.CSS(row+` .courier-name`), "Kwame"))
	if resp, body := call(t, "POST", base+"/v1/orders/m-1/status", admin, `{"status":"out_for_delivery"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("out for delivery: %d %s", resp.StatusCode, body)
	}
	b.waitFor(row + `[data-status="out_for_delivery"]`)
	b.poll("the focus on the row", `document.activeElement === document.querySelector('`+row+`')`)
	if !eval[bool](b, noneLater) {
		t.Errorf("out for delivery, the picker offers %q", eval[string](b, `document.querySelector('`+row+` .pick').textContent`))
	}
	// The courier's position shows from here, and the courier has the food: the courier is no
	// longer the restaurant's to choose or take away, nor the order its to cancel.
	b.poll("the courier field, Assign, Unassign and Cancel off", `['.courier', '.assign', '.unassign', '.cancel'].every(c => document.querySelector('`+row+` ' + c).disabled)`)
	// And they look it: the field and the picker no longer look as they did when they took
	// input, their words still readable.
	for _, field := range []string{".courier", ".pick"} {
		look := eval[[]string](b, `(s => [s.color, s.backgroundColor, s.borderStyle])(getComputedStyle(document.querySelector('`+row+` `+field+`')))`)
		if look[0] == enabledLook[0] && look[1] == enabledLook[1] && look[2] == enabledLook[2] {
			t.Errorf("the disabled %s looks as an enabled field does: %v", field, look)
		}
		if c := contrast(t, look[0], look[1]); c < 4.5 {
			t.Errorf("the disabled %s's words are %s on %s, %.2f:1", field, look[0], look[1], c)
		}
	}
	hint("Picked up by courier \u2068Ama\u2069 (c-9).")

	resp, body := call(t, "GET", base+"/v1/orders/m-1/events", admin, "")
	var got struct{ Events []ordercast.Event }
	if err := json.Unmarshal(body, &got); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("events: %d %s %v", resp.StatusCode, body, err)
	}
	var notes []string
	for _, ev := range got.Events {
		if ev.Actor == "restaurant:r-1" {
			notes = append(notes, ev.Note)
		}
	}
	if want := []string{"assigned on the restaurant's board", "unassigned on the restaurant's board", "set on the restaurant's board"}; strings.Join(notes, "|") != strings.Join(want, "|") {
		t.Errorf("the board's changes are noted %q, want %q", notes, want)
	}
}

// TestBoardShowsAnUnassignTheAPIAnswered: the API's answer to a change the board made shows on
// its row even when the stream's event of it has not come (the stream down, or merely behind):
// an answer that leaves the courier out (unassigned, courier_id omitted) empties the row's
// courier rather than keeping the one it had, one that leaves the courier's name out has none,
// and the events, when they come at the same versions, change nothing.
func TestBoardShowsAnUnassignTheAPIAnswered(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) {
		s.Retry = testRetry
		s.StreamLifetime = 2 * time.Second // how the board's stream goes down below
	})
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"u-1","restaurant_id":"r-1"}`, http.StatusCreated)
	mustCall(t, "PUT", base+"/v1/orders/u-1/courier", admin, `{"courier_id":"c-7","courier_name":"Ama"}`, http.StatusOK)
	row := `li.order[data-order-id="u-1"]`
	meta := `document.querySelector('` + row + ` .order-meta').textContent`
	b := newBrowser(t)
	b.do("note the courier events the page's stream brings", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.courierSeqs = [];
			const add = EventSource.prototype.addEventListener;
			EventSource.prototype.addEventListener = function (type, fn, opts) {
				if (type === 'courier') add.call(this, type, ev => window.courierSeqs.push(JSON.parse(ev.data).seq));
				return add.call(this, type, fn, opts);
			};`,
		})
		return chromedp.Void{}, err
	})
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(row + `[data-courier="c-7"]`)
	if got := eval[string](b, meta); !strings.HasPrefix(got, "courier \u2068Ama\u2069 (c-7) · ") {
		t.Errorf("the row's line says %q, want the courier by name and id", got)
	}
	restore := b.refuseStream("*/v1/restaurants/r-1/stream*")
	unassignOn(b, row)
	b.waitFor(row + `[data-courier=""]`)
	b.poll("the field is empty and Assign off", `document.querySelector('`+row+` .courier').value === '' && document.querySelector('`+row+` .assign').disabled`)
	// Nor does a courier the board then assigns, whom the answer names by no name, take the
	// name of the one before.
	b.do("type c-8", chromedp.SendKeys(chromedp.CSS(row+` .courier`), "c-8"))
	b.tap("assign c-8", row+` .assign`)
	b.waitFor(row + `[data-courier="c-8"]`)
	if got := eval[string](b, meta); !strings.HasPrefix(got, "courier c-8 · ") {
		t.Errorf("assigned c-8 (no name), the row's line says %q", got)
	}
	// The stream comes back with the events of both (seqs 3 and 4), which must change nothing.
	restore()
	b.poll("the unassignment's and the assignment's events", `window.courierSeqs.includes(3) && window.courierSeqs.includes(4)`)
	if got := eval[string](b, `document.querySelector('`+row+`').dataset.courier`); got != "c-8" {
		t.Errorf("with the stream back, the row's courier is %q, want c-8", got)
	}
}

// TestBoardSetsACouriersNameApart: a courier's name, from dispatch, may be written right to left;
// the board sets it apart from the words around it, so that the id after it ("(17)") stays after
// it, not drawn into the name's direction and shown before it.
func TestBoardSetsACouriersNameApart(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"h-1","restaurant_id":"r-1"}`, http.StatusCreated)
	mustCall(t, "PUT", base+"/v1/orders/h-1/courier", admin, `{"courier_id":"17","courier_name":"שרה"}`, http.StatusOK)
	b := newBrowser(t)
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`li.order[data-order-id="h-1"][data-courier="17"]`)
	// Where the name and the "(17)" after it are drawn, on the row's line.
	pos := eval[[]float64](b, `(function () {
		const text = document.querySelector('li.order[data-order-id="h-1"] .order-meta').firstChild;
		const at = s => { const i = text.data.indexOf(s), r = document.createRange(); r.setStart(text, i); r.setEnd(text, i + s.length); return r.getBoundingClientRect(); };
		return [at('שרה').left, at('(17)').left];
	})()`)
	if pos[1] < pos[0] {
		t.Errorf("the id is drawn at x=%.0f, left of the courier's name at x=%.0f: the name's direction took it", pos[1], pos[0])
	}
}

// TestConsoleOrdersBelongToARestaurant: in demo mode the console's form offers the demo's
// restaurants by name, so an order created there belongs to one and shows on its board, with
// the restaurant's name in its details, and to the customer chosen, whose page shows it. The
// home page sets only ids in monospace, not names.
func TestConsoleOrdersBelongToARestaurant(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		s.PartyLinks = []server.PartyLink{
			{Party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}, Name: "Luigi's Trattoria"},
			{Party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "saffron"}, Name: "Saffron House"},
			{Party: ordercast.Party{Kind: ordercast.PartyCustomer, ID: "ana"}, Name: "Ana"},
		}
	})
	base := ts.URL()
	b := newBrowser(t)
	b.do("open the console", chromedp.Navigate(base+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.do("create an order of Saffron House",
		chromedp.SendKeys(chromedp.CSS(`#create input[name="id"]`), "o-saffron"),
		chromedp.SetValue(chromedp.CSS(`#create select[name="restaurant_id"]`), "saffron"),
		chromedp.SetValue(chromedp.CSS(`#create select[name="customer_id"]`), "ana"),
		chromedp.Click(chromedp.CSS(`#create button[type="submit"]`)),
	)
	b.waitFor(`li.order[data-order-id="o-saffron"]`)
	screenshots(b, "console-demo")
	o, err := ts.store.Order(t.Context(), "o-saffron")
	if err != nil {
		t.Fatal(err)
	}
	var details struct{ Restaurant, Customer string }
	if err := json.Unmarshal(o.Details, &details); err != nil || o.RestaurantID != "saffron" || details.Restaurant != "Saffron House" ||
		o.CustomerID != "ana" || details.Customer != "Ana" {
		t.Fatalf("the console's order: restaurant %q, customer %q, details %s (%v); want saffron and ana, Saffron House and Ana",
			o.RestaurantID, o.CustomerID, o.Details, err)
	}
	b.do("open Saffron House's board", chromedp.Navigate(base+"/restaurants/saffron"))
	b.waitFor(`li.order[data-order-id="o-saffron"]`)
	b.do("open Ana's page", chromedp.Navigate(base+"/customers/ana"))
	b.waitFor(`li.order[data-order-id="o-saffron"]`)

	b.do("open the home page", chromedp.Navigate(base+"/"))
	b.waitFor(`a.order-id[href="/track/o-saffron"]`)
	mono := `(sel) => getComputedStyle(document.querySelector(sel)).fontFamily.includes('monospace')`
	if name, id := eval[bool](b, `(`+mono+`)('.party-links a')`), eval[bool](b, `(`+mono+`)('a.order-id')`); name || !id {
		t.Errorf("home page: a party's name in monospace %v, an order's id %v; want only the id", name, id)
	}
	// On a wide screen the orders in progress and the demo's parties are side by side, so that
	// the live list is on the first screen however many parties there are; on a phone the
	// orders come first, the parties below them.
	tops := `[document.getElementById('active-heading').getBoundingClientRect(), document.getElementById('parties-heading').getBoundingClientRect()]
		.map(r => [Math.round(r.top), Math.round(r.left)])`
	b.do("desktop size", chromedp.EmulateViewport(1280, 800))
	if got := eval[[][]float64](b, tops); got[0][0] != got[1][0] || got[1][1] <= got[0][1] {
		t.Errorf("at 1280 px the orders' heading is at (top, left) %v and the parties' at %v: want them side by side", got[0], got[1])
	}
	b.do("phone size", chromedp.EmulateViewport(390, 844))
	if got := eval[[][]float64](b, tops); got[1][0] <= got[0][0] || got[1][1] != got[0][1] {
		t.Errorf("at 390 px the orders' heading is at (top, left) %v and the parties' at %v: want the parties below", got[0], got[1])
	}
	screenshots(b, "home-demo")
}

// TestTheFocusStopsBelowABarOfAnyHeight: with large text on a phone the bar's title takes a line
// of its own (a long party id's did too, once): the bar was 67 to 90 px high while the scroll
// padding stopped what scrolls into view 64 px down, under the bar. The padding follows the
// bar's height. On a short screen the bar is not pinned at all (it took half of a page zoomed to
// 400 %), and nothing is padded.
func TestTheFocusStopsBelowABarOfAnyHeight(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	id := "pizzeria-da-luigi-kreuzberg-" + strings.Repeat("x", 30)
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for i := range 60 { // enough rows that the page scrolls well past the middle one
		if resp, body := call(t, "POST", base+"/v1/orders", admin, fmt.Sprintf(`{"id":"f-%d","restaurant_id":%q}`, i, id)); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
	}
	b := newBrowser(t)
	b.do("a phone's screen", chromedp.EmulateViewport(390, 844))
	b.do("open the board", chromedp.Navigate(base+"/restaurants/"+id+"?token="+actorToken(t, auth.RoleRestaurant, id)))
	b.waitFor(`li.order[data-order-id="f-0"]`)
	eval[string](b, `document.documentElement.style.fontSize = '24px'`)
	if h := eval[float64](b, `document.querySelector('.bar').offsetHeight`); h <= 64 {
		t.Fatalf("the bar is %.0f px high: the test needs one higher than the stylesheet's 4rem", h)
	}
	// The page follows the bar's height when it is told of it (a ResizeObserver), after the
	// text grew: a busy machine tells it late.
	b.poll("the scroll padding to follow the bar", `document.documentElement.style.scrollPaddingTop === (document.querySelector('.bar').offsetHeight + 8) + 'px'`)
	// A row in the middle scrolled into view, as a link's target or the keyboard's focus is: it
	// must stop below the bar.
	gap := eval[float64](b, `(() => { const row = document.querySelector('li.order[data-order-id="f-30"]');
		row.scrollIntoView({block: 'start'});
		return row.getBoundingClientRect().top - document.querySelector('.bar').getBoundingClientRect().bottom; })()`)
	if gap < 0 {
		t.Errorf("the row scrolled into view is %.0f px under the bar", -gap)
	}

	// On a short screen (the page zoomed to 400 %: 320 by 200 px) the bar scrolls away with the
	// page rather than stay over a third of it, and nothing is padded for it.
	b.do("a page zoomed to 400 %", chromedp.EmulateViewport(320, 200))
	eval[string](b, `document.documentElement.style.fontSize = ''`)
	b.poll("the scroll padding to go with the pinned bar", `document.documentElement.style.scrollPaddingTop === '0px'`)
	if top := eval[float64](b, `(() => { window.scrollTo(0, 600); return document.querySelector('.bar').getBoundingClientRect().bottom; })()`); top > 0 {
		t.Errorf("on a 200 px high screen the bar stays in view (its bottom at %.0f px) after scrolling down", top)
	}
}

// TestRowsShowTheOrdersNotes: a row on a board or a courier's page shows, under its summary, the
// order's details it shows nowhere else, named, each plain value or list of plain values (the
// tracking page's rule): a customer's name for the bag and the allergies on the board; on the
// courier's page, where the drop-off names the customer, and on the customer's own, the
// allergies and the instructions only. The allergies come first, in bold, wherever the client put them: the line shows three
// lines at most, and a long instruction must not push them out of it. The restaurant, a count
// of items, and a value with structure inside are not repeated there; a row without such
// details has no note line, but for its customer's id on a board, where the details name no
// customer (TestRowsNameAnOrdersPartiesByTheirIds).
func TestRowsShowTheOrdersNotes(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, step := range []struct{ method, path, body string }{
		{"POST", "/v1/orders", `{"id":"n-1","restaurant_id":"r-1","customer_id":"u-1","details":{"restaurant":"Luigi's","customer":"Ana","items":2,` +
			`"delivery_instructions":"ring twice","allergies":["peanuts","sesame"],"box":{"x":1}}}`},
		{"POST", "/v1/orders", `{"id":"n-2","restaurant_id":"r-1","customer_id":"u-1","details":{"restaurant":"Luigi's","items":1}}`},
		{"PUT", "/v1/orders/n-1/courier", `{"courier_id":"c-1"}`},
		{"PUT", "/v1/orders/n-2/courier", `{"courier_id":"c-1"}`},
	} {
		if resp, body := call(t, step.method, base+step.path, admin, step.body); resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", step.method, step.path, resp.StatusCode, body)
		}
	}
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	notes := func(b *browser, id string) (string, bool) {
		t.Helper()
		return eval[string](b, `document.querySelector('`+row(id)+` .order-notes').textContent`),
			eval[bool](b, `document.querySelector('`+row(id)+` .order-notes').offsetParent !== null`)
	}
	for _, tc := range []struct{ page, token, want, wantTwo string }{
		{"/restaurants/r-1", actorToken(t, auth.RoleRestaurant, "r-1"), "allergies: peanuts, sesame · customer: Ana · delivery instructions: ring twice", "customer: u-1"},
		{"/couriers/c-1", actorToken(t, auth.RoleCourier, "c-1"), "allergies: peanuts, sesame · delivery instructions: ring twice", ""},
		{"/customers/u-1", actorToken(t, auth.RoleCustomer, "u-1"), "allergies: peanuts, sesame · delivery instructions: ring twice", ""},
	} {
		b := newBrowser(t)
		b.do("open "+tc.page, chromedp.Navigate(base+tc.page+"?token="+tc.token))
		b.waitFor(`#conn[data-state="live"]`)
		b.waitFor(row("n-1") + `[data-status="placed"]`)
		b.waitFor(row("n-2"))
		if got, shown := notes(b, "n-1"); got != tc.want || !shown {
			t.Errorf("%s: n-1's notes read %q (shown %v), want %q", tc.page, got, shown, tc.want)
		}
		if got := eval[string](b, `Array.from(document.querySelectorAll('`+row("n-1")+` .order-notes strong.allergy')).map(s => s.textContent).join('|')`); got != "allergies: peanuts, sesame" {
			t.Errorf("%s: n-1's notes stress %q, want its allergies", tc.page, got)
		}
		if got, shown := notes(b, "n-2"); got != tc.wantTwo || shown != (tc.wantTwo != "") {
			t.Errorf("%s: n-2, with no details but its restaurant and items, has notes %q (shown %v), want %q", tc.page, got, shown, tc.wantTwo)
		}
		screenshots(b, "notes-"+strings.Split(tc.page, "/")[1])
	}
}

// TestHomePageIsLive: the home page's list of orders in progress follows every order as the
// console does, without a reload: a new order comes in on top, named as the server names its
// restaurant and customer; a status changes its badge; an order that ends leaves; past the
// newest 20, the page says more are in progress, and the oldest leaves the list.
func TestHomePageIsLive(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		s.PartyLinks = []server.PartyLink{
			{Party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}, Name: "Luigi's Trattoria"},
			{Party: ordercast.Party{Kind: ordercast.PartyCustomer, ID: "ana"}, Name: "Ana"},
		}
	})
	base := ts.URL()
	step := func(method, path, body string) {
		t.Helper()
		if resp, got := call(t, method, base+path, "", body); resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, got)
		}
	}
	for i := 1; i <= 19; i++ {
		step("POST", "/v1/orders", fmt.Sprintf(`{"id":"h-%02d","restaurant_id":"luigis"}`, i))
	}
	b := newBrowser(t)
	b.do("open the home page", chromedp.Navigate(base+"/"))
	b.waitFor(`#conn[data-state="live"]`)
	eval[bool](b, `window.notReloaded = true`)
	ids := `Array.from(document.querySelectorAll('#home-orders li')).map(li => li.dataset.orderId)`

	step("POST", "/v1/orders", `{"id":"h-new","restaurant_id":"luigis","customer_id":"ana"}`)
	b.poll("the new order on top, named", `(li => li && li.dataset.orderId === 'h-new' && li.querySelector('.order-who').textContent === "Luigi's Trattoria \u2192 Ana")(document.querySelector('#home-orders li'))`)
	step("POST", "/v1/orders/h-new/status", `{"status":"preparing"}`)
	b.poll("its badge follows", `document.querySelector('#home-orders li[data-order-id="h-new"] .badge').textContent === 'Preparing'`)
	if n := eval[int](b, ids+`.length`); n != 20 || !eval[bool](b, `document.getElementById('home-more').hidden`) {
		t.Errorf("with 20 orders in progress the page lists %d and says more are in progress: %v", n, !eval[bool](b, `document.getElementById('home-more').hidden`))
	}

	step("POST", "/v1/orders", `{"id":"h-21","restaurant_id":"luigis"}`)
	b.poll("the 21st on top, more said, the oldest gone", ids+`.join(' ').startsWith('h-21 h-new h-19') && `+ids+`.length === 20 && !`+ids+`.includes('h-01') && !document.getElementById('home-more').hidden`)

	step("POST", "/v1/orders/h-new/status", `{"status":"delivered"}`)
	b.poll("the delivered order gone, the oldest back", `!`+ids+`.includes('h-new') && `+ids+`.includes('h-01') && document.getElementById('home-more').hidden`)
	if !eval[bool](b, `window.notReloaded === true`) {
		t.Fatal("the page reloaded")
	}
	b.do("a phone's screen", chromedp.EmulateViewport(375, 800))
	if w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("on a phone the home page is %d px wide in a window of %d: it scrolls sideways", w[0], w[1])
	}
	screenshots(b, "home-live")
}

// TestWordsOfAnotherDirectionKeepTheirPlace: a name or a note given in a right-to-left script
// is set apart from the page's own words (bdi, dir=auto), as it reads in its own direction:
// a board's line "مطعم الشام 24 · 2 items" drew its "2" in front of the name ("2 · 24 مطعم الشام
// items"), and an Arabic instruction on the tracking page ended at its right, as English does.
func TestWordsOfAnotherDirectionKeepTheirPlace(t *testing.T) {
	const restaurant, instructions, note = "مطعم الشام 24", "اترك الطلب عند الباب، شكراً!", "تأخير بسيط"
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, step := range []struct{ path, body string }{
		{"/v1/orders", `{"id":"ar-1","restaurant_id":"r-1","customer_id":"u-1","details":{"restaurant":"` + restaurant + `","items":2,"delivery_instructions":"` + instructions + `"}}`},
		{"/v1/orders/ar-1/status", `{"status":"confirmed","note":"` + note + `"}`},
	} {
		if resp, body := call(t, "POST", base+step.path, admin, step.body); resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d %s", step.path, resp.StatusCode, body)
		}
	}

	b := newBrowser(t)
	row := `li.order[data-order-id="ar-1"]`
	b.do("open the restaurant's board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(row + `[data-status="confirmed"]`)
	// The name is drawn whole to the left of the items, as the line is written.
	if got := eval[string](b, `(() => {
		const meta = document.querySelector('`+row+` .order-meta'), name = meta.querySelector('bdi');
		if (!name || name.textContent !== '`+restaurant+`') return 'the name is not set apart: ' + meta.innerHTML;
		const text = Array.from(meta.childNodes).find(n => n.nodeType === Node.TEXT_NODE && n.textContent.includes('2 items'));
		const at = text.textContent.indexOf('2 items'), items = document.createRange();
		items.setStart(text, at);
		items.setEnd(text, at + 7);
		return name.getBoundingClientRect().right <= items.getBoundingClientRect().left + 0.5 ? 'ok' : 'the items are drawn inside the name';
	})()`); got != "ok" {
		t.Errorf("the board's line: %s", got)
	}
	if got := eval[string](b, `Array.from(document.querySelectorAll('`+row+` .order-notes bdi')).map(e => e.textContent).join('|')`); got != instructions {
		t.Errorf("the notes set apart %q, want the instructions %q", got, instructions)
	}

	tracking, _, err := authority(t).SignTracking("ar-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b.do("open the tracking page", chromedp.Navigate(base+"/track/ar-1?token="+tracking))
	b.waitFor(`#timeline li[data-seq="2"]`)
	for what, js := range map[string]string{
		"the instructions": `Array.from(document.querySelectorAll('#details dd')).find(dd => dd.textContent === '` + instructions + `')`,
		"the note":         `document.querySelector('#timeline li[data-seq="2"] .row-note')`,
	} {
		if dir := eval[string](b, `(() => { const e = `+js+`; return e ? getComputedStyle(e).direction : 'missing'; })()`); dir != "rtl" {
			t.Errorf("%s read %s, want rtl", what, dir)
		}
	}
	if got := eval[string](b, `(document.querySelector('main h1 bdi') || {}).textContent || ''`); got != restaurant {
		t.Errorf("the heading sets apart %q, want the restaurant's name", got)
	}
	screenshots(b, "track-rtl")
}
