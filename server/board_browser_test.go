package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/server"
)

// A restaurant's board as a kitchen's tablet holds it through a dinner service: new orders, a
// network that drops, orders cancelled by others, changes tapped on a board that fell behind.

// openBoard opens restaurant r-1's board on base with a restaurant token, and waits until it is
// live.
func openBoard(t *testing.T, b *browser, base string) {
	t.Helper()
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
}

// unassignOn takes a row's order from its courier as a cook does: Unassign, which asks first,
// then Confirm unassign.
func unassignOn(b *browser, row string) {
	b.t.Helper()
	b.tap("unassign", row+` .unassign`)
	b.waitFor(row + ` .unassign[data-confirming]:not([data-settling])`)
	b.tap("confirm unassign", row+` .unassign[data-confirming]`)
}

// TestBoardReadsANewOrderItCouldNotReadAtFirst: a new order's event carries no details; the
// board reads the order for them. When that read fails (the network, for a moment), the row says
// what it lacks, and the board reads it again on its own, with no later change of the order to
// prompt it, until the allergies are on the ticket.
func TestBoardReadsANewOrderItCouldNotReadAtFirst(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) { s.Retry = testRetry })
	base := ts.URL()
	b := newBrowser(t)
	openBoard(t, b, base)
	eval[bool](b, `(ordercast.backoffMs = 100, true)`)
	restore, refused := b.failRequests(network.ErrorReasonConnectionRefused, "*/v1/orders/n-1")
	mustCall(t, "POST", base+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"),
		`{"id":"n-1","restaurant_id":"r-1","details":{"customer":"Ana","allergies":["peanuts"]}}`, http.StatusCreated)
	select {
	case <-refused:
	case <-time.After(10 * time.Second):
		t.Fatal("the board never read the new order")
	}
	row := `li.order[data-order-id="n-1"]`
	b.poll("the row to say its details could not be read", `(p => !p.hidden && p.textContent.startsWith("This order's details (allergies, items) could not be loaded"))(document.querySelector('`+row+` .row-error'))`)
	restore()
	b.poll("the allergies on the ticket, the error gone", `document.querySelector('`+row+` .order-notes').textContent.includes('peanuts') && document.querySelector('`+row+` .row-error').hidden`)
}

// TestBoardKeepsAnOrderCancelledByAnotherUntilSeen: an order the customer, support or dispatch
// cancels while the kitchen has it stays on the board, saying so, what to do with the food and
// why, until a cook removes it: gone in seconds, unexplained, it left the kitchen cooking it. An
// order the board cancels itself leaves as a delivered one does.
func TestBoardKeepsAnOrderCancelledByAnotherUntilSeen(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) { s.Retry = testRetry })
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, id := range []string{"k-1", "k-2"} {
		mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`","restaurant_id":"r-1"}`, http.StatusCreated)
	}
	mustCall(t, "POST", base+"/v1/orders/k-1/status", admin, `{"status":"preparing"}`, http.StatusOK)
	b := newBrowser(t)
	shortenTimings(b, `{endedLingerMs: 100}`)
	openBoard(t, b, base)
	kept, own := `li.order[data-order-id="k-1"]`, `li.order[data-order-id="k-2"]`
	b.waitFor(kept + `[data-status="preparing"]`)

	mustCall(t, "POST", base+"/v1/orders/k-1/status", admin, `{"status":"cancelled","note":"Customer asked to cancel"}`, http.StatusOK)
	b.waitFor(kept + `[data-status="cancelled"]`)
	if got, want := eval[string](b, `document.querySelector('`+kept+` .order-cancelled').textContent`), "Order cancelled. Stop preparing it. Reason: Customer asked to cancel."; got != want {
		t.Errorf("the cancelled row says %q, want %q", got, want)
	}
	screenshots(b, "board-cancelled-by-another")
	// The board's own cancel, after it: that row lingers and goes, the other stays.
	b.tap("cancel k-2", own+` .cancel`)
	b.waitFor(own + ` .cancel[data-confirming]:not([data-settling])`)
	b.tap("confirm", own+` .cancel[data-confirming]`)
	b.poll("the board's own cancelled order gone", `!document.querySelector('`+own+`')`)
	if !eval[bool](b, `!!document.querySelector('`+kept+`') && !document.querySelector('`+kept+` .dismiss').hidden`) {
		t.Fatal("the order cancelled by another left the board before it was seen")
	}
	if got := eval[string](b, `document.getElementById('order-count').textContent`); got != "(1)" {
		t.Errorf("the heading counts %s, want (1): the order kept is on the list", got)
	}
	b.tap("got it", kept+` .dismiss`)
	b.poll("the cancelled order removed", `!document.querySelector('`+kept+`')`)
}

// TestBoardSaysANewOrderCameIn: a new order goes at the bottom of the board, out of sight on a
// busy one; the page's title counts the orders nobody has confirmed ("(2 new) …", which a tab
// and a tablet's app switcher show), and, once a cook has turned the sound on, a new order
// chimes. The choice is remembered in the browser.
func TestBoardSaysANewOrderCameIn(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) { s.Retry = testRetry })
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	create := func(id string) {
		t.Helper()
		mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`","restaurant_id":"r-1"}`, http.StatusCreated)
	}
	create("a-1")
	b := newBrowser(t)
	b.do("count the tones the page plays", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.tones = 0;
			const make = AudioContext.prototype.createOscillator;
			AudioContext.prototype.createOscillator = function () { window.tones++; return make.call(this); };`,
		})
		return chromedp.Void{}, err
	})
	openBoard(t, b, base)
	title := func(want string) {
		t.Helper()
		b.poll("the title to start "+want, `document.title.startsWith('`+want+`')`)
	}
	title("(1 new) Restaurant")
	if eval[bool](b, `document.getElementById('sound').checked`) {
		t.Fatal("the sound is on before anyone turned it on")
	}
	create("a-2")
	title("(2 new) Restaurant")
	if n := eval[int](b, `window.tones`); n != 0 {
		t.Errorf("with the sound off a new order played %d tones", n)
	}
	b.do("turn the sound on", chromedp.Click(chromedp.CSS(`#sound`)))
	create("a-3")
	title("(3 new) Restaurant")
	b.poll("a chime", `window.tones > 0`)
	row := `li.order[data-order-id="a-1"]`
	b.tap("advance a-1", row+` .advance`)
	b.waitFor(row + `[data-status="confirmed"]`)
	title("(2 new) Restaurant")

	b.do("open the board again", chromedp.Reload())
	b.waitFor(`#conn[data-state="live"]`)
	if !eval[bool](b, `document.getElementById('sound').checked`) {
		t.Error("the sound turned on was not remembered")
	}
}

// TestBoardSaysWhatBecameOfAChangeItWasTooLateFor: a board whose stream is away shows an order as
// it was; a change tapped there is refused (the order moved on: version_conflict). The row then
// shows the order as it is, and says that nothing was done and why, in place of the refusal's
// versions; the words go once the order moves on again, as they no longer say anything true.
func TestBoardSaysWhatBecameOfAChangeItWasTooLateFor(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) {
		s.Retry = testRetry
		s.StreamLifetime = 2 * time.Second // how the board's stream goes down below
	})
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"v-1","restaurant_id":"r-1"}`, http.StatusCreated)
	b := newBrowser(t)
	openBoard(t, b, base)
	row := `li.order[data-order-id="v-1"]`
	b.waitFor(row + `[data-status="placed"]`)
	restore := b.refuseStream("*/v1/restaurants/r-1/stream*")
	mustCall(t, "POST", base+"/v1/orders/v-1/status", admin, `{"status":"cancelled"}`, http.StatusOK)
	b.tap("advance v-1, as it was", row+` .advance`)
	b.waitFor(row + `[data-status="cancelled"]`)
	b.poll("the row to say what happened", `(p => !p.hidden && p.textContent === 'Not done: this order changed meanwhile. It is now Cancelled; check it, then try again.')(document.querySelector('`+row+` .row-error'))`)
	restore()

	// A refusal of a change the order then moved past goes with the move.
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"v-2","restaurant_id":"r-1"}`, http.StatusCreated)
	two := `li.order[data-order-id="v-2"]`
	b.waitFor(two + `[data-status="placed"]`)
	b.do("type c-1", chromedp.SendKeys(chromedp.CSS(two+` .courier`), "c-1"))
	// A name over the API's 64 bytes, past the field's own bound: refused, 422.
	eval[bool](b, `(f => (f.maxLength = 100, f.value = '`+strings.Repeat("é", 40)+`', true))(document.querySelector('`+two+` .courier-name'))`)
	b.tap("assign", two+` .assign`)
	b.poll("the refusal on the row", `!document.querySelector('`+two+` .row-error').hidden`)
	mustCall(t, "POST", base+"/v1/orders/v-2/status", admin, `{"status":"confirmed"}`, http.StatusOK)
	b.waitFor(two + `[data-status="confirmed"]`)
	b.poll("the refusal gone with the move", `document.querySelector('`+two+` .row-error').hidden`)
}
