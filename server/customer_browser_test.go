package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/server"
)

// customerOrder creates order id of customer u-1 from Luigi's on the server at base.
func customerOrder(t *testing.T, base, id string) {
	t.Helper()
	mustCall(t, "POST", base+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"),
		`{"id":"`+id+`","restaurant_id":"r-1","customer_id":"u-1","details":{"restaurant":"Luigi's","items":2}}`, http.StatusCreated)
}

// setCustomerStatus moves order id on the server at base to status, with note.
func setCustomerStatus(t *testing.T, base, id, status, note string) {
	t.Helper()
	mustCall(t, "POST", base+"/v1/orders/"+id+"/status", actorToken(t, auth.RoleAdmin, "ops"),
		`{"status":"`+status+`","note":"`+note+`"}`, http.StatusOK)
}

// customerRow is the script expression of order id's row on a page.
func customerRow(id string) string {
	return `document.querySelector('li.order[data-order-id="` + id + `"]')`
}

// TestCustomerPageKeepsACancelledOrderUntilSeen: an order cancelled while its customer's page
// shows it stays until the customer removes it (a delivered one leaves after its linger, as on
// every page): a dinner that vanished from the list in seconds, unexplained, leaves its customer
// waiting for it. Its card says so in words, with the reason the cancellation's note gives and
// what to do, in the tracking page's words; a screen reader hears the same. The list's count
// counts the orders it holds, the cancelled one kept with them.
func TestCustomerPageKeepsACancelledOrderUntilSeen(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	for _, id := range []string{"k-kept", "k-done", "k-cancel"} {
		customerOrder(t, base, id)
	}
	b := newBrowser(t)
	shortenTimings(b, `{endedLingerMs: 100}`) // a delivered order leaves at once
	b.do("open the customer's page", chromedp.Navigate(base+"/customers/u-1?token="+actorToken(t, auth.RoleCustomer, "u-1")))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(`li.order[data-order-id="k-kept"]`)
	count := func() string { return eval[string](b, `document.getElementById('order-count').textContent`) }
	if got := count(); got != "(3)" {
		t.Errorf("the page counts %s of its three orders", got)
	}

	setCustomerStatus(t, base, "k-cancel", "cancelled", "kitchen too busy")
	b.waitFor(`li.order[data-order-id="k-cancel"][data-status="cancelled"] .order-cancelled`)
	const says = "Order cancelled. Reason: Kitchen too busy. For a refund or a new order, contact Luigi's and quote order k-cancel."
	if got := eval[string](b, customerRow("k-cancel")+`.querySelector('.order-cancelled').textContent`); got != says {
		t.Errorf("the cancelled order's card says %q, want %q", got, says)
	}
	if got, want := eval[string](b, `document.getElementById('announce').textContent`), "Order k-cancel from Luigi's is cancelled. Reason: Kitchen too busy. For a refund or a new order, contact Luigi's and quote order k-cancel."; got != want {
		t.Errorf("the live region says %q, want %q", got, want)
	}
	screenshots(b, "customer-cancelled")

	setCustomerStatus(t, base, "k-done", "delivered", "")
	b.poll("the delivered order to leave", `!`+customerRow("k-done"))
	if !eval[bool](b, `!!`+customerRow("k-cancel")+`?.querySelector('.order-cancelled:not([hidden])')`) {
		t.Fatal("the cancelled order left the list before the customer removed it")
	}
	if got := count(); got != "(2)" {
		t.Errorf("beside the cancelled order and the one in progress the page counts %s, want (2)", got)
	}
	b.tap("remove the cancelled order", `li.order[data-order-id="k-cancel"] .dismiss`)
	b.poll("the cancelled order the customer removed to leave", `!`+customerRow("k-cancel"))
	if !eval[bool](b, `document.activeElement.closest('li.order') === `+customerRow("k-kept")) {
		t.Errorf("the focus went to %s, want the next order", eval[string](b, `document.activeElement.outerHTML.slice(0, 80)`))
	}
	if got := count(); got != "(1)" {
		t.Errorf("with one order left the page counts %s", got)
	}
}

// TestCustomerPageLearnsWhatBecameOfItsOrdersAfterAFreshSnapshot: a customer's stream that
// comes back too far behind to be sent what it missed (a page in the back/forward cache) gets a
// fresh snapshot, the orders in progress only. The order cancelled meanwhile is not among them:
// the page reads what became of it and says it was cancelled, and why, as it does live, rather
// than drop it unexplained.
func TestCustomerPageLearnsWhatBecameOfItsOrdersAfterAFreshSnapshot(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) { server.SetPartyBacklog(s, 2) })
	base := ts.URL()
	customerOrder(t, base, "k-away")
	customerOrder(t, base, "k-kept")
	b := newBrowser(t)
	restored := awayAndBack(t, b, base, "/customers/u-1?token="+actorToken(t, auth.RoleCustomer, "u-1"), `li.order[data-order-id="k-kept"]`, func() {
		setCustomerStatus(t, base, "k-away", "cancelled", "restaurant closing")
		customerOrder(t, base, "k-new") // with its cancellation, more than the bound
		setCustomerStatus(t, base, "k-new", "confirmed", "")
	})
	restored("the order created meanwhile", customerRow("k-new")+`?.dataset.status === 'confirmed'`)
	restored("the cancelled order to say so", customerRow("k-away")+`?.dataset.status === 'cancelled'`)
	if got, want := eval[string](b, customerRow("k-away")+`.querySelector('.order-cancelled').textContent`),
		"Order cancelled. Reason: Restaurant closing. For a refund or a new order, contact Luigi's and quote order k-away."; got != want {
		t.Errorf("the cancelled order's card says %q, want %q", got, want)
	}
	if !eval[bool](b, `!!`+customerRow("k-away")+`.querySelector('.dismiss:not([hidden])')`) {
		t.Error("the cancelled order offers no way to remove it")
	}
	if !eval[bool](b, customerRow("k-kept")+`?.dataset.status === 'placed'`) {
		t.Error("the order still in progress left the list")
	}
}

// TestCustomerPageSaysEveryChangeThatComesTogether: changes that come together (a page back from
// the back/forward cache, its stream bringing what it missed at once) are each said through the
// live region: one order's delivery must not replace, before a screen reader had it, the news
// that another was cancelled. What a screen reader can hear is what the region says when the
// page is drawn, frame by frame.
func TestCustomerPageSaysEveryChangeThatComesTogether(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	customerOrder(t, base, "k-a")
	customerOrder(t, base, "k-b")
	b := newBrowser(t)
	b.do("note what the live region says at each frame", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.heard = [];
			let last = '';
			const frame = () => {
				const said = document.getElementById('announce')?.textContent || '';
				if (said !== last) window.heard.push(last = said);
				requestAnimationFrame(frame);
			};
			requestAnimationFrame(frame);`})
		return chromedp.Void{}, err
	})
	restored := awayAndBack(t, b, base, "/customers/u-1?token="+actorToken(t, auth.RoleCustomer, "u-1"), `li.order[data-order-id="k-b"]`, func() {
		setCustomerStatus(t, base, "k-a", "cancelled", "out of stock")
		setCustomerStatus(t, base, "k-b", "delivered", "")
	})
	restored("both changes said", `window.heard.join(' ').includes("Order k-b from Luigi's is now Delivered.")`)
	heard := eval[[]string](b, `window.heard`)
	if !strings.Contains(strings.Join(heard, " | "), "Order k-a from Luigi's is cancelled. Reason: Out of stock.") {
		t.Errorf("the live region said %q: never that k-a was cancelled", heard)
	}
}
