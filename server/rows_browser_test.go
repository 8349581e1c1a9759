package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
)

// shortenTimings makes the console's pages the browser opens wait as timings (a JavaScript
// object, window.ordercastTimings in console.js and courier.js) says, e.g.
// `{endedLingerMs: 100}`, instead of seconds of real time.
func shortenTimings(b *browser, timings string) {
	b.t.Helper()
	b.do("shorten the page's waits", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.ordercastTimings = ` + timings + `;`,
		})
		return chromedp.Void{}, err
	})
}

// fingerTap is the script of a finger's tap on a button: a click of detail 1, as a pointer's is.
// A button's own click() is a click of detail 0, as Enter's and Space's are, which the pages take
// for the keyboard's (console.js onTap).
const fingerTap = `(btn => btn.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window, detail: 1})))`

// tapWhenRowsMove has the page click the button sel the moment a row comes into or leaves the
// list, as a finger already on its way to it would land (fingerTap): window.tapped says it did,
// and window.tappedSettling whether the button was settling then.
func tapWhenRowsMove(b *browser, sel string) {
	b.t.Helper()
	eval[bool](b, `(() => {
		window.tapped = false;
		new MutationObserver((_, obs) => {
			obs.disconnect();
			const btn = document.querySelector('`+sel+`');
			window.tappedSettling = btn.hasAttribute('data-settling');
			`+fingerTap+`(btn);
			window.tapped = true;
		}).observe(document.getElementById('orders'), { childList: true });
		return true;
	})()`)
}

// rowIDs lists the orders' ids as the page shows them, top to bottom.
func rowIDs(b *browser) string {
	b.t.Helper()
	return eval[string](b, `Array.from(document.querySelectorAll('li.order')).map(li => li.dataset.orderId).join(' ')`)
}

// TestConsoleSettlesTheRowsANewOrderMoves: a new order goes on top of the console's list and
// moves every row below it (down, or across: the list is two columns wide here). A tap meant for
// a row's button that lands as it moves takes nothing, on either order, and the keyboard's focus
// stays on the button; once settled (a second), the button takes its step.
func TestConsoleSettlesTheRowsANewOrderMoves(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-1")
	row := `li.order[data-order-id="o-1"]`
	b := newBrowser(t)
	recordFetches(b)
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row + `[data-status="placed"] .advance:not([data-settling])`) // the first snapshot settles nothing
	b.do("focus o-1's Advance", chromedp.Focus(chromedp.CSS(row+` .advance`)))

	tapWhenRowsMove(b, row+` .advance`)
	srv.createOrder("o-2")
	b.poll("the tap as o-2 comes in", `window.tapped === true`)
	if got := rowIDs(b); got != "o-2 o-1" {
		t.Fatalf("the console lists %q, want the new order on top", got)
	}
	if !eval[bool](b, `window.tappedSettling`) {
		t.Error("o-1's Advance was not settling as o-2 pushed it")
	}
	if n := statusPosts(b, "o-1") + statusPosts(b, "o-2"); n != 0 {
		t.Errorf("a tap on a row as it moved sent %d changes", n)
	}
	for _, id := range []string{"o-1", "o-2"} {
		if o := srv.order(id); o.Status != ordercast.StatusPlaced || o.Version != 1 {
			t.Errorf("after a tap on a moving row %s is %s at version %d, want placed at 1", id, o.Status, o.Version)
		}
	}
	if got := eval[string](b, `(a => (a.closest('li.order') || {dataset: {}}).dataset.orderId + ' ' + a.className)(document.activeElement)`); got != "o-1 advance" {
		t.Errorf("after o-2 came in the focus is on %q, want o-1's Advance", got)
	}

	b.waitFor(row + ` .advance:not([data-settling])`)
	b.do("advance o-1", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + `[data-status="confirmed"]`)
	if o1, o2 := srv.order("o-1"), srv.order("o-2"); o1.Status != ordercast.StatusConfirmed || o1.Version != 2 || o2.Version != 1 {
		t.Errorf("after Advance o-1 is %s at version %d, o-2 at version %d; want confirmed at 2, and 1", o1.Status, o1.Version, o2.Version)
	}
}

// TestBoardKeepsItsRowsInPlace: a restaurant's board lists its orders oldest first, as a
// kitchen's display does: a new order goes at the bottom and moves no row, so a tap on an older
// order's button as it comes in takes that order's step. An order that ends and leaves the board
// pulls the rows below it up: a tap meant for one of them that lands as it moves takes nothing,
// on either order; once settled, the button takes its step.
func TestBoardKeepsItsRowsInPlace(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	create := func(id string) {
		t.Helper()
		if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
		}
	}
	order := func(id string) ordercast.Order {
		t.Helper()
		o, err := ts.store.Order(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	create("b-1")
	create("b-2")
	b := newBrowser(t)
	recordFetches(b)
	shortenTimings(b, `{endedLingerMs: 100}`) // an ended order leaves at once
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("b-2") + `[data-status="placed"] .advance:not([data-settling])`)
	if got := rowIDs(b); got != "b-1 b-2" {
		t.Fatalf("the board lists %q, want the oldest first", got)
	}

	// A new order: at the bottom, nothing moves, b-1's button takes the tap.
	tapWhenRowsMove(b, row("b-1")+` .advance`)
	create("b-3")
	b.poll("the tap as b-3 comes in", `window.tapped === true`)
	if got := rowIDs(b); got != "b-1 b-2 b-3" {
		t.Fatalf("the board lists %q, want the new order at the bottom", got)
	}
	if eval[bool](b, `window.tappedSettling`) {
		t.Error("b-1's Advance was settling as b-3 came in below it")
	}
	b.waitFor(row("b-1") + `[data-status="confirmed"]`)

	// b-1 ends and leaves: b-2 moves up, and a tap that lands on it then takes nothing.
	b.waitFor(row("b-2") + ` .advance:not([data-settling])`)
	tapWhenRowsMove(b, row("b-2")+` .advance`)
	// (Delivered: an order cancelled by another stays until seen, TestBoardKeepsAnOrderCancelledByAnotherUntilSeen.)
	if resp, body := call(t, "POST", base+"/v1/orders/b-1/status", admin, `{"status":"delivered"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("deliver b-1: %d %s", resp.StatusCode, body)
	}
	b.poll("the tap as b-1 leaves", `window.tapped === true`)
	if got := rowIDs(b); got != "b-2 b-3" {
		t.Fatalf("the board lists %q once b-1 left", got)
	}
	if !eval[bool](b, `window.tappedSettling`) {
		t.Error("b-2's Advance was not settling as b-1's leaving pulled it up")
	}
	if n := statusPosts(b, "b-2"); n != 0 {
		t.Errorf("a tap on b-2 as it moved sent %d changes", n)
	}
	if o1, o2 := order("b-1"), order("b-2"); o1.Status != ordercast.StatusDelivered || o1.Version != 3 || o2.Status != ordercast.StatusPlaced || o2.Version != 1 {
		t.Errorf("after a tap on a moving row b-1 is %s at %d, b-2 %s at %d; want delivered at 3, placed at 1", o1.Status, o1.Version, o2.Status, o2.Version)
	}

	b.waitFor(row("b-2") + ` .advance:not([data-settling])`)
	b.do("advance b-2", chromedp.Click(chromedp.CSS(row("b-2")+` .advance`)))
	b.waitFor(row("b-2") + `[data-status="confirmed"]`)
	if o2 := order("b-2"); o2.Status != ordercast.StatusConfirmed || o2.Version != 2 {
		t.Errorf("after Advance b-2 is %s at %d, want confirmed at 2", o2.Status, o2.Version)
	}
	if got := rowIDs(b); got != "b-2 b-3" {
		t.Errorf("the board lists %q at the end", got)
	}
}

// TestBoardPutsPickedUpOrdersBelow: on a restaurant's board an order its courier has picked up,
// which the restaurant acts on no more, goes below the orders the kitchen still works on, oldest
// first in each group: at once when it is picked up (the row it leaves pulls the ones below it
// up, which settle), and as the page lays out a snapshot; a new order goes at the bottom of the
// kitchen's group, above the picked-up ones. Delivered, an order stays where it was while it
// lingers on the board.
func TestBoardPutsPickedUpOrdersBelow(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	step := func(method, path, body string) {
		t.Helper()
		if resp, got := call(t, method, base+path, admin, body); resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, got)
		}
	}
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	for _, id := range []string{"p-1", "p-2", "p-3"} {
		step("POST", "/v1/orders", `{"id":"`+id+`","restaurant_id":"r-1"}`)
	}
	step("POST", "/v1/orders/p-1/status", `{"status":"ready"}`)
	step("PUT", "/v1/orders/p-1/courier", `{"courier_id":"c-1"}`)
	b := newBrowser(t)
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("p-3"))
	if got := rowIDs(b); got != "p-1 p-2 p-3" {
		t.Fatalf("the board lists %q, want the oldest first", got)
	}

	step("POST", "/v1/orders/p-1/status", `{"status":"out_for_delivery"}`)
	b.waitFor(row("p-1") + `[data-status="out_for_delivery"]`)
	if got := rowIDs(b); got != "p-2 p-3 p-1" {
		t.Fatalf("once p-1 was picked up the board lists %q, want it below the kitchen's orders", got)
	}
	if !eval[bool](b, `document.querySelector('`+row("p-2")+` .advance').hasAttribute('data-settling')`) {
		t.Error("p-2's Advance was not settling as p-1's move pulled it up")
	}
	step("POST", "/v1/orders", `{"id":"p-4","restaurant_id":"r-1"}`)
	b.waitFor(row("p-4"))
	if got := rowIDs(b); got != "p-2 p-3 p-4 p-1" {
		t.Fatalf("with a new order the board lists %q, want it below the kitchen's others, above p-1", got)
	}

	b.do("reload", chromedp.Reload())
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("p-4"))
	if got := rowIDs(b); got != "p-2 p-3 p-4 p-1" {
		t.Fatalf("reloaded, the board lists %q, want p-2 p-3 p-4 p-1", got)
	}
	step("POST", "/v1/orders/p-1/status", `{"status":"delivered"}`)
	b.waitFor(row("p-1") + `[data-status="delivered"]`)
	if got := rowIDs(b); got != "p-2 p-3 p-4 p-1" {
		t.Fatalf("once p-1 was delivered the board lists %q, want it where it was while it lingers", got)
	}
}

// TestSettlingButtonsLookIt: a row that a new one pushes down takes no tap for a second; its
// buttons show a progress cursor, and one tapped meanwhile turns grey (legible, the same size)
// to show it took nothing, while the ones not tapped keep their colours: a busy list does not
// flicker. Once settled they look as the new row's again.
func TestSettlingButtonsLookIt(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-1")
	row := `li.order[data-order-id="o-1"]`
	b := newBrowser(t)
	b.do("a phone's screen", chromedp.EmulateViewport(390, 844))
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row + ` .advance:not([data-settling])`)
	// How a row's buttons look, read at once when a row comes into the list (and so o-1 moves
	// down) and o-1's Advance is tapped, and again later: those that take a tap (Assign and
	// Unassign are off while no courier is typed, nor assigned), and are shown (not Copy, in the
	// Tracking link's panel, hidden until a link is made).
	look := `(id => Array.from(document.querySelectorAll('li.order[data-order-id="' + id + '"] button:not([hidden]):not(:disabled)')).filter(btn => btn.getClientRects().length).map(btn => {
		const s = getComputedStyle(btn), r = btn.getBoundingClientRect();
		return {name: btn.className, settling: btn.hasAttribute('data-settling'), color: s.color, background: s.backgroundColor,
			cursor: s.cursor, size: Math.round(r.width) + 'x' + Math.round(r.height)};
	}))`
	type button struct {
		Name, Color, Background, Cursor, Size string
		Settling                              bool
	}
	eval[bool](b, `(() => {
		new MutationObserver((_, obs) => {
			obs.disconnect();
			`+fingerTap+`(document.querySelector('`+row+` .advance'));
			window.looks = {moved: `+look+`('o-1'), added: `+look+`('o-2')};
		}).observe(document.getElementById('orders'), { childList: true });
		return true;
	})()`)
	eval[bool](b, `(window.look = `+look+`, true)`)
	srv.createOrder("o-2")
	b.poll("o-2 comes in", `window.looks !== undefined`)
	moved, added := eval[[]button](b, `looks.moved`), eval[[]button](b, `looks.added`)
	if len(moved) != 4 || len(added) != 4 {
		t.Fatalf("o-1 shows buttons %+v, o-2 %+v; want Advance, Cancel, Set and Tracking link", moved, added)
	}
	for i, btn := range moved {
		tapped := i == 0 // Advance
		sameColours := btn.Color == added[i].Color && btn.Background == added[i].Background
		if !btn.Settling || btn.Cursor != "progress" || tapped == sameColours {
			t.Errorf("o-1's %s (settling %v, tapped %v): %+v, o-2's %+v; want a progress cursor, grey only if tapped", btn.Name, btn.Settling, tapped, btn, added[i])
		}
		if c := contrast(t, btn.Color, btn.Background); c < 4.5 {
			t.Errorf("o-1's settling %s: %s on %s contrasts %.2f:1, want 4.5:1", btn.Name, btn.Color, btn.Background, c)
		}
		if btn.Size != added[i].Size {
			t.Errorf("o-1's settling %s is %s, o-2's %s", btn.Name, btn.Size, added[i].Size)
		}
		if added[i].Settling || added[i].Cursor == "progress" {
			t.Errorf("the new row's %s looks settling: %+v", added[i].Name, added[i])
		}
	}
	if moved[0].Background != "rgb(93, 104, 120)" {
		t.Errorf("o-1's tapped Advance is %s, want the muted grey", moved[0].Background)
	}
	// Once settled (and faded back), o-1's buttons look as o-2's, and the tap took nothing.
	b.poll("o-1 settled", `!document.querySelector('`+row+` [data-settling], `+row+` [data-ignored]')`)
	b.poll("o-1's buttons look as o-2's", `JSON.stringify(look('o-1')) === JSON.stringify(look('o-2'))`)
	if o := srv.order("o-1"); o.Version != 1 {
		t.Errorf("o-1 at version %d after an ignored tap, want 1", o.Version)
	}
}

// TestBoardPutsALateRowInItsPlace: a board's row first seen through an event (its order left out
// of the snapshot, which holds a restaurant's 2,000 most recently updated orders) takes the
// event's time for when the order was created, at the bottom; the order fetched then has its
// real created_at, which moves the row to its place, oldest first, as a change of the list: the
// rows it moves settle. From the order it learns too what no event it saw said: its items, and
// its courier, by name. The row first seen settles too once it was drawn where it came (a row
// moved before the browser drew it was never where anybody could aim: the page rightly leaves
// it be), so the page's read of its order is held until it is.
func TestBoardPutsALateRowInItsPlace(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, id := range []string{"b-1", "b-2", "b-3"} {
		if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`","restaurant_id":"r-1","details":{"items":2}}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
		}
	}
	// b-1 has a courier, whom no event the board sees names: the row learns it from the order.
	mustCall(t, "PUT", base+"/v1/orders/b-1/courier", admin, `{"courier_id":"c-7","courier_name":"Ama"}`, http.StatusOK)
	b := newBrowser(t)
	shortenTimings(b, `{settleMs: 60000}`) // settled rows stay so until looked at
	// The snapshot leaves b-1 out, as the server's does an order past its bound.
	rewriteSnapshots(b, "leave b-1 out of the snapshot", `d.orders = d.orders.filter(o => o.id !== 'b-1');`)
	b.do("hold the read of b-1's order until its row is drawn", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			const fetch0 = window.fetch;
			window.fetch = function (u, o) {
				if (!String(u).endsWith('/v1/orders/b-1')) return fetch0.apply(this, arguments);
				const drawn = () => document.querySelector('li.order[data-order-id="b-1"]')?.firstElementChild.checkVisibility({ contentVisibilityAuto: true });
				return new Promise(resolve => {
					const wait = () => drawn() ? resolve(fetch0.call(window, u, o)) : requestAnimationFrame(wait);
					wait();
				});
			};`,
		})
		return chromedp.Void{}, err
	})
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(`li.order[data-order-id="b-3"]`)
	if got := rowIDs(b); got != "b-2 b-3" {
		t.Fatalf("the board lists %q, want b-1 left out", got)
	}

	if resp, body := call(t, "POST", base+"/v1/orders/b-1/status", admin, `{"status":"confirmed"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm b-1: %d %s", resp.StatusCode, body)
	}
	// The row learns its items and its courier from the order, in the change that corrects its
	// created_at.
	b.poll("b-1's order fetched", `document.querySelector('li.order[data-order-id="b-1"][data-status="confirmed"][data-courier="c-7"] .order-meta')?.textContent.startsWith('2 items · courier \u2068Ama\u2069 (c-7) · ')`)
	if got := rowIDs(b); got != "b-1 b-2 b-3" {
		t.Fatalf("once b-1's order came the board lists %q, want the oldest first", got)
	}
	if got := eval[string](b, `Array.from(document.querySelectorAll('li.order .advance[data-settling]')).map(a => a.closest('li').dataset.orderId).join(' ')`); got != "b-1 b-2 b-3" {
		t.Errorf("the rows settling are %q, want every row moved: b-1 b-2 b-3", got)
	}
}

// TestBoardOrdersByCreationToTheMicrosecond: the store keeps created_at to the microsecond and
// orders are often created within one millisecond of each other; the board, oldest first, must
// not take them for the same time (Date.parse keeps milliseconds). Here the snapshot's three
// orders are stamped within one millisecond, b-3 first.
func TestBoardOrdersByCreationToTheMicrosecond(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, id := range []string{"b-1", "b-2", "b-3"} {
		if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
		}
	}
	b := newBrowser(t)
	rewriteSnapshots(b, "stamp the snapshot's orders within one millisecond", `
		const at = {'b-1': '2026-12-02T10:00:00.000300Z', 'b-2': '2026-12-02T10:00:00.0002Z', 'b-3': '2026-12-02T10:00:00.000100Z'};
		d.orders.forEach(o => { o.created_at = at[o.id]; });`)
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(`li.order[data-order-id="b-1"]`)
	if got := rowIDs(b); got != "b-3 b-2 b-1" {
		t.Fatalf("the board lists %q, want the oldest first to the microsecond: b-3 b-2 b-1", got)
	}
}

// TestConsoleSettlesTheRowsAnErrorLinePushes: a row that grows moves every row below it as
// much as a new order does. Here o-a's change is refused: its error line appears and o-b, below
// it on a phone's screen, moves down; a tap meant for o-b's button that lands as it moves takes
// nothing, and once settled the button takes its step. A row redrawn without moving anything (o-a
// busy while its change is on its way) settles nobody, and the first snapshot settles nothing.
func TestConsoleSettlesTheRowsAnErrorLinePushes(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-b")
	srv.createOrder("o-a") // the console shows the newest on top: o-a above o-b
	release := make(chan struct{})
	base := frontProxy(t, srv.url, func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) bool {
		if r.Method != "POST" || r.URL.Path != "/v1/orders/o-a/status" {
			return false
		}
		select { // held until the test has looked at the page meanwhile
		case <-release:
		case <-done:
			return true
		}
		// Not version_conflict, on which the page reads the order again and puts what it found
		// in the line: its words would race with the test's read of them.
		answerError(w, http.StatusConflict, "invalid_transition", "order o-a cannot go from placed to confirmed now")
		return true
	})
	rowA, rowB := `li.order[data-order-id="o-a"]`, `li.order[data-order-id="o-b"]`
	settling := `Array.from(document.querySelectorAll('li.order [data-settling]')).map(e => e.closest('li').dataset.orderId + ' ' + e.className).join(', ')`
	b := newBrowser(t)
	recordFetches(b)
	b.do("a phone's screen", chromedp.EmulateViewport(390, 844)) // one column: o-b is below o-a
	b.do("open the console", chromedp.Navigate(base+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(rowB + `[data-status="placed"] .advance`)
	if got := rowIDs(b); got != "o-a o-b" {
		t.Fatalf("the console lists %q, want o-a above o-b", got)
	}
	if got := eval[string](b, settling); got != "" {
		t.Errorf("after the first snapshot these settle: %s; want none", got)
	}

	b.do("advance o-a", chromedp.Click(chromedp.CSS(rowA+` .advance`)))
	b.poll("o-a's change on its way", `fetches.some(f => f.startsWith('POST ') && f.endsWith('/v1/orders/o-a/status')) && document.querySelector('`+rowA+` .advance').getAttribute('aria-disabled') === 'true'`)
	if got := eval[string](b, settling); got != "" {
		t.Errorf("o-a redrawn busy, nothing moved, yet these settle: %s", got)
	}

	// The moment o-a's error line shows, a finger lands on o-b's Advance.
	eval[bool](b, `(() => {
		const line = document.querySelector('`+rowA+` .row-error'), btn = document.querySelector('`+rowB+` .advance');
		window.tapped = false;
		window.topB = btn.closest('li').getBoundingClientRect().top;
		new MutationObserver((_, obs) => {
			if (line.hidden) return;
			obs.disconnect();
			window.movedB = btn.closest('li').getBoundingClientRect().top - topB;
			window.tappedSettling = btn.hasAttribute('data-settling');
			`+fingerTap+`(btn);
			window.tapped = true;
		}).observe(line, { childList: true, characterData: true, subtree: true, attributes: true });
		return true;
	})()`)
	close(release)
	b.poll("the tap as o-a's error line shows", `window.tapped === true`)
	if got := eval[string](b, `document.querySelector('`+rowA+` .row-error').textContent`); got != "order o-a cannot go from placed to confirmed now" {
		t.Errorf("o-a's error line says %q", got)
	}
	if moved := eval[float64](b, `window.movedB`); moved <= 0 {
		t.Errorf("o-b moved %v px as o-a's error line showed, want down", moved)
	}
	if !eval[bool](b, `window.tappedSettling`) {
		t.Error("o-b's Advance was not settling as o-a's error line pushed it down")
	}
	if n := statusPosts(b, "o-b"); n != 0 {
		t.Errorf("a tap on o-b as it moved sent %d changes", n)
	}
	for _, id := range []string{"o-a", "o-b"} {
		if o := srv.order(id); o.Status != ordercast.StatusPlaced || o.Version != 1 {
			t.Errorf("%s is %s at version %d, want placed at 1", id, o.Status, o.Version)
		}
	}

	b.waitFor(rowB + ` .advance:not([data-settling])`)
	b.do("advance o-b", chromedp.Click(chromedp.CSS(rowB+` .advance`)))
	b.waitFor(rowB + `[data-status="confirmed"]`)
	if o := srv.order("o-b"); o.Status != ordercast.StatusConfirmed || o.Version != 2 {
		t.Errorf("after Advance o-b is %s at version %d, want confirmed at 2", o.Status, o.Version)
	}
}

// TestBoardSettlesARowWhoseButtonsMoveWithinIt: a row whose line above its buttons wraps (a
// courier with a long id assigned, on a phone) moves its own buttons down, Cancel to where Set
// was: the row settles, though its step button's words did not change.
func TestBoardSettlesARowWhoseButtonsMoveWithinIt(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"b-1","restaurant_id":"r-1","details":{"restaurant":"Trattoria da Giovanni e Figli","items":3}}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	row := `li.order[data-order-id="b-1"]`
	b := newBrowser(t)
	shortenTimings(b, `{settleMs: 60000}`) // settled rows stay so until looked at
	b.do("a phone's screen", chromedp.EmulateViewport(390, 844))
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row + ` .advance:not([data-settling])`)
	cancelTop := `Math.round(document.querySelector('` + row + ` .danger').getBoundingClientRect().top)`
	before := eval[int](b, cancelTop)
	if resp, body := call(t, "PUT", base+"/v1/orders/b-1/courier", admin, `{"courier_id":"courier-north-depot-0017-late-shift"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("assign: %d %s", resp.StatusCode, body)
	}
	b.waitFor(row + `[data-courier="courier-north-depot-0017-late-shift"]`)
	if after := eval[int](b, cancelTop); after <= before {
		t.Fatalf("Cancel at %d px, then %d: the row's line did not wrap here, so the test shows nothing", before, after)
	}
	if got := eval[string](b, `Array.from(document.querySelectorAll('`+row+` button:not([hidden])')).filter(btn => !btn.hasAttribute('data-settling')).map(btn => btn.className).join(' ')`); got != "" {
		t.Errorf("buttons %q moved within their row and are not settling", got)
	}
}

// TestBoardMeasuresOnlyTheRowItRedraws: a redraw of one row on a board as long as a restaurant's
// can be (2,000 orders, the snapshot's bound) reads a handful of boxes, not every row's. A row
// redrawn the same size moves nobody: only its own step button, whose words changed, settles. A
// row whose error line appears (the API refuses its change: here the order is not the server's)
// grows its line of the grid (two columns here): the row beside it stays, and every row on a later
// line settles.
func TestBoardMeasuresOnlyTheRowItRedraws(t *testing.T) {
	const n = 2000
	ts := newAuthServer(t, nil)
	b := newBrowser(t)
	shortenTimings(b, `{settleMs: 60000}`) // settled rows stay so until looked at
	rewriteSnapshots(b, "a board of 2,000 orders", `
		const t0 = Date.parse('2026-01-01T12:00:00Z');
		for (let i = 0; i < `+strconv.Itoa(n)+`; i++) {
			const at = new Date(t0 + i * 1000).toISOString();
			d.orders.push({id: 's-' + i, restaurant_id: 'r-1', status: 'placed', version: 1, created_at: at, updated_at: at, details: {items: 2}});
		}`)
	b.do("a screen wide enough for two columns", chromedp.EmulateViewport(1024, 768))
	b.do("open the board", chromedp.Navigate(ts.URL()+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitLong(`#conn[data-state="live"]`)
	b.waitLong(`li.order[data-order-id="s-` + strconv.Itoa(n-1) + `"]`)
	settling := `Array.from(document.querySelectorAll('li.order')).filter(li => li.querySelector('[data-settling]')).map(li => li.dataset.orderId)`
	if got := eval[int](b, settling+`.length`); got != 0 {
		t.Errorf("after the first snapshot %d rows settle, want none", got)
	}
	if got := eval[string](b, `(r => [0, 1, 2, 3].map(i => Math.round(r('s-' + i).top) + ',' + Math.round(r('s-' + i).left)).join(' '))(id => document.querySelector('li.order[data-order-id="' + id + '"]').getBoundingClientRect())`); !sameLine(got) {
		t.Fatalf("rows s-0 to s-3 are at %s (top,left): want two to a line", got)
	}
	// Every box the page reads from now on is counted.
	eval[bool](b, `(() => {
		window.boxReads = 0;
		Element.prototype.getBoundingClientRect = (read => function () { boxReads++; return read.call(this); })(Element.prototype.getBoundingClientRect);
		return true;
	})()`)

	reads := eval[int](b, `(() => {
		boxReads = 0;
		statusEvent(new MessageEvent('status', {lastEventId: '', data: JSON.stringify({order_id: 's-0', seq: 2, status: 'confirmed', at: new Date().toISOString()})}));
		return boxReads;
	})()`)
	if got := eval[string](b, `document.querySelector('li.order[data-order-id="s-0"]').dataset.status`); got != "confirmed" {
		t.Fatalf("s-0 is %s after its event, want confirmed", got)
	}
	if reads > 8 {
		t.Errorf("redrawing s-0 read %d boxes, want a handful", reads)
	}
	if got := eval[string](b, settling+`.join(' ')`); got != "s-0" {
		t.Errorf("after s-0's redraw the rows settling are %q, want s-0 alone (its step's words)", got)
	}

	eval[bool](b, `(boxReads = 0, document.querySelector('li.order[data-order-id="s-2"] .advance').click(), true)`)
	b.poll("s-2's refusal shown", `(li => !li.querySelector('.row-error').hidden && li.querySelector('.advance').getAttribute('aria-disabled') === null)(document.querySelector('li.order[data-order-id="s-2"]'))`)
	if reads := eval[int](b, `boxReads`); reads > 30 {
		t.Errorf("s-2's change, refused, read %d boxes, want a handful per redraw", reads)
	}
	want := `['s-0'].concat(Array.from({length: ` + strconv.Itoa(n-4) + `}, (_, i) => 's-' + (i + 4))).join(' ')`
	if !eval[bool](b, settling+`.join(' ') === `+want) {
		t.Errorf("after s-2's error line showed the rows settling are %s; want s-0 (its own words) and every row from s-4 on (the lines after s-2's)",
			eval[string](b, `(s => s.length + ' rows: ' + s.slice(0, 6).join(' ') + ' … ' + s.slice(-2).join(' '))(`+settling+`)`))
	}

	// A new order changes the list: the rows near the screen are measured, before and after, and
	// the rest, which the browser does not draw, are not (reading a box inside one makes the
	// browser lay it out: seconds for 2,000).
	reads = eval[int](b, `(() => {
		boxReads = 0;
		statusEvent(new MessageEvent('status', {lastEventId: '', data: JSON.stringify({order_id: 'new-1', seq: 1, status: 'placed', at: new Date().toISOString()})}));
		return boxReads;
	})()`)
	b.waitFor(`li.order[data-order-id="new-1"]`)
	if reads == 0 || reads > 200 {
		t.Errorf("an order added to a board of %d read %d boxes, want those of the rows near the screen (a few dozen)", n, reads)
	}
}

// TestBoardOfTwoThousandEventsTouchTheirOwnRow: a board as long as a restaurant's can be (2,000
// orders, the snapshot's bound), sent most recently updated first, lays out every row in its
// place, oldest first and the orders picked up below the rest, each with its status, and counts
// them. An event then changes the page's list where it must and nowhere else (the list's every
// change is watched): a status change writes to its own row alone, and a new order adds its row
// and learns its details from the order, touching no other row of the 2,000.
func TestBoardOfTwoThousandEventsTouchTheirOwnRow(t *testing.T) {
	const n = 2000
	ts := newAuthServer(t, nil)
	base := ts.URL()
	b := newBrowser(t)
	shortenTimings(b, `{settleMs: 60000}`) // settled rows stay so until looked at
	// s-i is created i seconds after the first, every tenth picked up, the rest in the kitchen's
	// four stages; the snapshot sends them in a shuffled order.
	rewriteSnapshots(b, "a board of 2,000 orders, shuffled", `
		const t0 = Date.parse('2020-01-01T12:00:00Z'), stages = ['placed', 'confirmed', 'preparing', 'ready'];
		for (let k = 0; k < `+strconv.Itoa(n)+`; k++) {
			const i = (k * 7919) % `+strconv.Itoa(n)+`, at = new Date(t0 + i * 1000).toISOString();
			const status = i % 10 === 9 ? 'out_for_delivery' : stages[i % 4];
			d.orders.push({id: 's-' + i, restaurant_id: 'r-1', status: status, version: 1, created_at: at, updated_at: at, details: {items: 2}});
		}`)
	b.do("a screen wide enough for two columns", chromedp.EmulateViewport(1024, 768))
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitLong(`#conn[data-state="live"]`)
	b.waitLong(`li.order[data-order-id="s-` + strconv.Itoa(n-1) + `"]`)

	var kitchen, pickedUp, statuses []string
	for i := range n {
		id := "s-" + strconv.Itoa(i)
		if i%10 == 9 {
			pickedUp = append(pickedUp, id)
			continue
		}
		kitchen = append(kitchen, id)
	}
	stages := []string{"placed", "confirmed", "preparing", "ready"}
	for _, id := range append(slices.Clone(kitchen), pickedUp...) {
		i, _ := strconv.Atoi(strings.TrimPrefix(id, "s-"))
		st := stages[i%4]
		if i%10 == 9 {
			st = "out_for_delivery"
		}
		statuses = append(statuses, id+"="+st)
	}
	if got, want := rowIDs(b), strings.Join(append(slices.Clone(kitchen), pickedUp...), " "); got != want {
		t.Fatalf("the board lists %d rows out of their order (first: %.60s…), want the kitchen's oldest first, then those picked up", len(strings.Fields(got)), got)
	}
	if got, want := eval[string](b, `Array.from(document.querySelectorAll('li.order')).map(li => li.dataset.orderId + '=' + li.querySelector('.badge').dataset.status).join(' ')`), strings.Join(statuses, " "); got != want {
		t.Error("some rows' badges do not show their order's status")
	}
	if got := eval[string](b, `document.getElementById('order-count').textContent`); got != "(2000)" {
		t.Errorf("the board counts %q, want (2000)", got)
	}

	// touched names the rows the page wrote to since the last call: any change within a row, and
	// a row added to or taken from the list.
	eval[bool](b, `(() => {
		window.touchedRows = new Set();
		const list = document.getElementById('orders');
		window.touched = () => {
			for (const m of listWatch.takeRecords().concat(window.seenRecords.splice(0))) {
				if (m.target === list) [...m.addedNodes, ...m.removedNodes].forEach(li => touchedRows.add(li.dataset.orderId));
				else touchedRows.add((m.target.nodeType === 1 ? m.target : m.target.parentElement).closest('li.order').dataset.orderId);
			}
			const got = [...touchedRows].sort().join(' ');
			touchedRows.clear();
			return got;
		};
		window.seenRecords = [];
		window.listWatch = new MutationObserver(ms => seenRecords.push(...ms));
		listWatch.observe(list, {childList: true, subtree: true, attributes: true, characterData: true});
		return true;
	})()`)

	eval[bool](b, `(statusEvent(new MessageEvent('status', {lastEventId: '', data: JSON.stringify({order_id: 's-0', seq: 2, status: 'confirmed', at: new Date().toISOString()})})), true)`)
	if got := eval[string](b, `document.querySelector('li.order[data-order-id="s-0"]').dataset.status`); got != "confirmed" {
		t.Fatalf("s-0 is %s after its event, want confirmed", got)
	}
	if got := eval[string](b, `touched()`); got != "s-0" {
		t.Errorf("s-0's status change wrote to rows %.80q, want s-0's alone", got)
	}

	admin := actorToken(t, auth.RoleAdmin, "ops")
	if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"n-1","restaurant_id":"r-1","details":{"items":3}}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create n-1: %d %s", resp.StatusCode, body)
	}
	b.poll("n-1's order learned", `document.querySelector('li.order[data-order-id="n-1"] .order-meta')?.textContent.startsWith('3 items · ')`)
	if got, want := rowIDs(b), strings.Join(append(append(slices.Clone(kitchen), "n-1"), pickedUp...), " "); got != want {
		t.Error("n-1 is not at the bottom of the kitchen's rows, above those picked up")
	}
	if got := eval[string](b, `touched()`); got != "n-1" {
		t.Errorf("the new order n-1 wrote to rows %.80q, want n-1's alone", got)
	}
	if got := eval[string](b, `document.getElementById('order-count').textContent`); got != "(2001)" {
		t.Errorf("the board counts %q, want (2001)", got)
	}
}

// sameLine says whether four boxes' "top,left", space-separated, lay out two to a line: the
// first two side by side, the next two side by side below them.
func sameLine(places string) bool {
	var t [4][2]int
	if _, err := fmt.Sscanf(places, "%d,%d %d,%d %d,%d %d,%d", &t[0][0], &t[0][1], &t[1][0], &t[1][1], &t[2][0], &t[2][1], &t[3][0], &t[3][1]); err != nil {
		return false
	}
	return t[0][0] == t[1][0] && t[2][0] == t[3][0] && t[2][0] > t[0][0] && t[1][1] > t[0][1] && t[3][1] > t[2][1]
}

// rewriteSnapshots has the page run body on each snapshot its stream receives before the page
// sees it: body changes d, the snapshot's data parsed (as a server past a bound, or a clock,
// would have made it). The stream's status handler is kept in window.statusEvent, for a test
// to hand the page an event of its own.
func rewriteSnapshots(b *browser, what, body string) {
	b.do(what, func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			const add = EventSource.prototype.addEventListener;
			EventSource.prototype.addEventListener = function (type, fn, opts) {
				if (type === 'status') window.statusEvent = fn.bind(this);
				if (type !== 'snapshot') return add.call(this, type, fn, opts);
				return add.call(this, type, function (ev) {
					const d = JSON.parse(ev.data);
					` + body + `
					fn.call(this, new MessageEvent('snapshot', { data: JSON.stringify(d), lastEventId: ev.lastEventId }));
				}, opts);
			};`,
		})
		return chromedp.Void{}, err
	})
}

// TestOwnChangeIsAnnouncedWhenTheAnswerComesFirst: a change made on the page is announced to
// screen readers once, whichever reaches the page first, the API's answer or the change's event
// on the stream. Here the page's stream holds its status events back until the answer is in (as a
// busy network may), and the answer announces the change; the event, let through after it, says
// nothing more. The other order is the usual one, which the courier page's test meets.
func TestOwnChangeIsAnnouncedWhenTheAnswerComesFirst(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	if resp, body := call(t, "POST", base+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"), `{"id":"a-1","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a-1: %d %s", resp.StatusCode, body)
	}
	b := newBrowser(t)
	b.do("hold the stream's status events while window.holdStatus", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.heldStatus = []; // each listener's call held back, with its event
			window.releaseStatus = () => { window.holdStatus = false; window.heldStatus.splice(0).forEach(h => h.run()); };
			window.heldEvents = () => new Set(window.heldStatus.map(h => h.ev)).size;
			const add = EventSource.prototype.addEventListener;
			EventSource.prototype.addEventListener = function (type, fn, opts) {
				if (type !== 'status') return add.call(this, type, fn, opts);
				const es = this;
				return add.call(this, type, function (ev) {
					if (window.holdStatus) window.heldStatus.push({ev: ev, run: () => fn.call(es, ev)}); else fn.call(this, ev);
				}, opts);
			};`,
		})
		return chromedp.Void{}, err
	})
	row := `li.order[data-order-id="a-1"]`
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row + `[data-status="placed"] .advance:not([data-settling])`)
	eval[bool](b, `window.holdStatus = true`)

	b.do("confirm a-1", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + `[data-status="confirmed"]`)
	b.poll("the confirmation's event held back", `window.heldEvents() === 1`)
	if said := eval[string](b, `document.getElementById('announce').textContent`); said != "Order a-1 is now Confirmed." {
		t.Errorf("with the answer first the live region says %q", said)
	}

	eval[bool](b, `(document.getElementById('announce').textContent = '', window.releaseStatus(), true)`)
	if said := eval[string](b, `document.getElementById('announce').textContent`); said != "" {
		t.Errorf("the change's event, after the answer, announced %q again", said)
	}
}
