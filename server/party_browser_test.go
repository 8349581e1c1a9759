package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast/auth"
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
	b.do("assign c-7",
		chromedp.SendKeys(chromedp.CSS(row("b-1")+` .courier`), "c-7"),
		chromedp.Click(chromedp.CSS(row("b-1")+` .assign`)))
	b.waitFor(row("b-1") + `[data-courier="c-7"]`)
	if o, err := ts.store.Order(t.Context(), "b-1"); err != nil || o.CourierID != "c-7" || o.Status != "confirmed" {
		t.Fatalf("after the board's changes the store has %+v, %v", o, err)
	}

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
	b.do("advance b-1 again", chromedp.Click(chromedp.CSS(row("b-1")+` .advance`)))
	c.waitFor(row("b-1") + `[data-status="preparing"]`)
	screenshots(c, "customer")

	b.tokenInStreamURLs()
	c.tokenInStreamURLs()

	// Another restaurant's token, handed over in the browser that holds shop:r-1's: the page says
	// it was refused and starts nothing, and the earlier token's cookies are gone, so the clean
	// page does not go on as shop:r-1 either.
	streams := b.countRequests("/stream")
	b.do("open shop:r-1's board with r-2's token", chromedp.Navigate(base+"/restaurants/shop:r-1?token="+actorToken(t, auth.RoleRestaurant, "r-2")))
	b.waitFor(`#problem`)
	b.waitFor(`#conn[data-state="denied"]`)
	if why := eval[string](b, `document.getElementById('problem').textContent`); !strings.Contains(why, "may not watch") {
		t.Errorf("the refused page says %q, want the server's reason", why)
	}
	if href := eval[string](b, `location.href`); href != base+"/restaurants/shop:r-1" {
		t.Errorf("address bar shows %q after a refused token, want the clean URL", href)
	}
	if n := b.countRequests("/stream") - streams; n != 0 {
		t.Errorf("the page of a refused token opened %d streams", n)
	}
	screenshots(b, "board-refused")
	b.do("open the board again", chromedp.Navigate(base+"/restaurants/shop:r-1"))
	b.waitFor(`#conn[data-state="denied"]`)
	b.waitFor(`#problem`)
	if eval[bool](b, `document.querySelector('meta[name="ordercast-token"]') !== null`) || eval[int](b, `document.querySelectorAll('li.order').length`) != 0 {
		t.Fatal("after a refused token the board goes on as the earlier one")
	}
}
