package server_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// fakePosition makes the browser's geolocation report a fix at lat, lng, 5 m accurate, heading
// east at 4.5 m/s, to every watch.
func fakePosition(b *browser, lat, lng float64) {
	b.t.Helper()
	acc, heading, speed := 5.0, 90.0, 4.5
	b.do("set the position", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, emulation.SetGeolocationOverride, emulation.SetGeolocationOverrideParams{
			Latitude: &lat, Longitude: &lng, Accuracy: &acc, Heading: &heading, Speed: &speed,
		})
		return chromedp.Void{}, err
	})
}

// permitGeolocation sets whether pages of origin may learn where the browser is.
func permitGeolocation(b *browser, origin string, setting cdpbrowser.PermissionSetting) {
	b.t.Helper()
	b.do("set the geolocation permission", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: "geolocation"}, Setting: setting, Origin: origin,
			BrowserContextID: chromedp.FromContext(ctx).BrowserContextID, // the test's own, not the shared browser's default
		})
		return chromedp.Void{}, err
	})
}

// courierOrder creates order id (as admin), gives it to courier and moves it to status.
func courierOrder(t *testing.T, ls *locationServer, id, courier string, status ordercast.Status) {
	t.Helper()
	createAs(t, ls.URL(), actorToken(t, auth.RoleAdmin, "ops"), id)
	ls.assign(t, id, courier)
	ls.mustCommit(t, id, status)
}

// TestCourierPageMovesAndSharesLocation: a courier's page lists the orders assigned to that
// courier, live over its one stream, each with its restaurant and customer, pick-up and
// drop-off, and one button for the courier's next step, only when there is one: "Pick up order"
// once the food is ready, confirmed, moves the order out for delivery, in the store too, and the
// button then says "Complete delivery". Sharing the location posts the browser's fixes (high accuracy, with accuracy,
// heading and speed) with the page's token, which reach the order's watchers; the page posts at
// most one a second, and after a 429 waits its Retry-After, then goes on; it says when it last
// sent and why one was refused.
func TestCourierPageMovesAndSharesLocation(t *testing.T) {
	ls := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
		s.LocationInterval = 0
		tr.Rate, tr.Burst = 0.25, 1 // one position every four seconds: the page's second meets a 429
	})
	base := ls.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	create := func(id, courier string, to ordercast.Status) {
		t.Helper()
		if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`","restaurant_id":"r-1","customer_id":"u-1",`+
			`"details":{"restaurant":"Luigi's Trattoria","customer":"Ana","items":2},`+
			`"pickup":{"lat":52.5202,"lng":13.407},"dropoff":{"lat":52.5247,"lng":13.4106}}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
		}
		ls.assign(t, id, courier)
		ls.mustCommit(t, id, to)
	}
	create("d-1", "c-1", ordercast.StatusReady)
	create("d-2", "c-2", ordercast.StatusReady)
	create("d-3", "c-1", ordercast.StatusPreparing)

	b := newBrowser(t)
	permitGeolocation(b, base, cdpbrowser.PermissionSettingGranted)
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	b.do("open the courier's page with its token", chromedp.Navigate(base+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("d-1") + `[data-status="ready"]`)
	b.waitFor(row("d-3") + `[data-status="preparing"]`)
	if n := eval[int](b, `document.querySelectorAll('`+row("d-2")+`').length`); n != 0 {
		t.Fatal("the page shows another courier's order")
	}
	stops := eval[string](b, `document.querySelector('`+row("d-1")+` .stops').innerText`)
	for _, want := range []string{"Pick up", "Luigi's Trattoria", "52.52020, 13.40700", "Drop off", "Ana", "52.52470, 13.41060"} {
		if !strings.Contains(stops, want) {
			t.Errorf("d-1's stops say %q, want %q in them", stops, want)
		}
	}
	if got := eval[string](b, `document.querySelector('`+row("d-1")+` .advance').textContent`); got != "Pick up order" {
		t.Errorf("a ready order's button says %q, want Pick up order", got)
	}
	// Before the food is ready there is no step to take: no button, a word on when.
	if shown, hint := eval[bool](b, `!!document.querySelector('`+row("d-3")+` .advance').offsetParent`),
		eval[string](b, `document.querySelector('`+row("d-3")+` .order-hint').textContent`); shown || hint == "" {
		t.Errorf("a preparing order: button shown %v, hint %q; want no button and a hint", shown, hint)
	}
	if n := eval[int](b, `document.querySelectorAll('.cancel, .pick, .set, .courier').length`); n != 0 {
		t.Errorf("the courier's page offers %d of the board's other controls", n)
	}

	confirmStep(b, row("d-1"), "picked up")
	b.waitFor(row("d-1") + `[data-status="out_for_delivery"]`)
	b.poll("the button says Complete delivery", `document.querySelector('`+row("d-1")+` .advance').textContent === 'Complete delivery'`)
	if o, err := ls.store.Order(t.Context(), "d-1"); err != nil || o.Status != ordercast.StatusOutForDelivery {
		t.Fatalf("after the pickup the store has %s, %v", o.Status, err)
	}
	if said := eval[string](b, `document.getElementById('announce').textContent`); said != "Order d-1 from Luigi's Trattoria is now Out for delivery." {
		t.Errorf("the live region says %q", said)
	}
	if evs, err := ls.store.EventsAfter(t.Context(), "d-1", 0, 0); err != nil || evs[len(evs)-1].Actor != "courier:c-1" || evs[len(evs)-1].Note != "set on the courier's page" {
		t.Errorf("the change is recorded as %+v (%v)", evs[len(evs)-1], err)
	}

	// An order assigned while the page is open appears with its stops, which the assignment's
	// event does not carry; one given to another courier says so, offers nothing and leaves the
	// count.
	create("d-4", "c-1", ordercast.StatusReady)
	b.waitFor(row("d-4") + `[data-status="ready"]`)
	b.poll("d-4's stops", `document.querySelector('`+row("d-4")+` .stops').innerText.includes('Luigi\'s Trattoria\n52.52020, 13.40700')`)
	ls.assign(t, "d-4", "c-2")
	b.waitFor(row("d-4") + `[data-courier=""]`) // the courier's stream does not say who has it now
	if meta, shown, count := eval[string](b, `document.querySelector('`+row("d-4")+` .order-meta').textContent`),
		eval[bool](b, `!!document.querySelector('`+row("d-4")+` .advance').offsetParent`),
		eval[string](b, `document.getElementById('order-count').textContent`); !strings.Contains(meta, "given to another courier") || shown || count != "(2)" {
		t.Errorf("an order given to another courier: %q, button shown %v, count %s", meta, shown, count)
	}
	// Said once what came before it (d-4's arrival) has stood its second, joined with whatever
	// else waited for it.
	b.poll("the live region to say d-4 is no longer the courier's", `document.getElementById('announce').textContent.endsWith("Order d-4 from Luigi's Trattoria is no longer yours.")`)
	screenshots(b, "courier")

	// Share the location: the first fix reaches the order's watchers.
	fakePosition(b, 52.5210, 13.4080)
	b.do("share my location", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	b.waitFor(`#share-last`)
	latest := func(lat float64) *ordercast.LocationUpdate {
		t.Helper()
		var u *ordercast.LocationUpdate
		testutil.WaitFor(t, "the position from the page", func() bool {
			if l := ls.tracker.Latest(t.Context(), "d-1"); l != nil && l.Update.Lat == lat {
				u = &l.Update
			}
			return u != nil
		})
		return u
	}
	u := latest(52.5210)
	if u.CourierID != "c-1" || u.Lng != 13.4080 || u.AccuracyM == nil || *u.AccuracyM != 5 || u.Heading == nil || *u.Heading != 90 ||
		u.SpeedMPS == nil || *u.SpeedMPS != 4.5 || time.Since(u.At).Abs() > 5*time.Second {
		t.Errorf("the order's watchers got %+v", u)
	}
	if got := eval[string](b, `document.getElementById('share-reach').textContent`); !strings.Contains(got, "seen on 1 order") {
		t.Errorf("the page says its position reached %q", got)
	}

	// The next fix goes a second after the first, and the server's budget refuses it (one in four
	// seconds): the page says so, waits Retry-After (3 s), and sends it again, the phone having
	// found no newer one meanwhile.
	fakePosition(b, 52.5220, 13.4090)
	b.poll("the page shows the 429", `document.getElementById('share-error').textContent.startsWith('Too many positions')`)
	latest(52.5220)
	b.poll("the refusal is cleared", `document.getElementById('share-error').hidden`)
	starts := eval[[]float64](b, `performance.getEntriesByType('resource').filter(e => e.name.endsWith('/v1/couriers/c-1/location')).map(e => e.startTime)`)
	if len(starts) != 3 {
		t.Fatalf("the page posted %d positions, want 3 (sent, refused, sent): %v", len(starts), starts)
	}
	if starts[1]-starts[0] < 900 || starts[2]-starts[1] < 2900 {
		t.Errorf("posts %v ms apart, want a second at least, and Retry-After (3 s) after the 429", []float64{starts[1] - starts[0], starts[2] - starts[1]})
	}
	screenshots(b, "courier-sharing")

	b.do("stop sharing", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	if pressed, state := eval[string](b, `document.getElementById('share-toggle').getAttribute('aria-pressed')`),
		eval[string](b, `document.getElementById('share-state').textContent`); pressed != "false" || !strings.HasPrefix(state, "Off") {
		t.Errorf("after stopping: pressed %s, state %q", pressed, state)
	}

	b.do("delivered", chromedp.Click(chromedp.CSS(row("d-1")+` .advance`)))
	b.waitFor(row("d-1") + ` .advance[data-confirming]:not([data-settling])`)
	b.do("confirm the delivery", chromedp.Click(chromedp.CSS(row("d-1")+` .advance`)))
	b.waitFor(row("d-1") + `[data-status="delivered"]`)
	if o, err := ls.store.Order(t.Context(), "d-1"); err != nil || o.Status != ordercast.StatusDelivered {
		t.Fatalf("after Complete delivery the store has %s, %v", o.Status, err)
	}
}

// TestCourierPageSaysWhatWentWrong: the courier's page shows why a step or a position did not
// go through: a change the API refuses (on the order's row, the order left as it was), a
// position the browser cannot find, a post the server cannot take now, and a browser that may
// not tell the page where it is, which turns the sharing off. (d-2, out for delivery, puts the
// courier on a map: the page shares nothing before.)
func TestCourierPageSaysWhatWentWrong(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusReady)
	courierOrder(t, ls, "d-2", "c-1", ordercast.StatusOutForDelivery)
	base := frontProxy(t, ls.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		switch {
		case r.Method == "POST" && r.URL.Path == "/v1/orders/d-1/status":
			answerError(w, http.StatusConflict, "version_conflict", "the order changed meanwhile; read it again")
		case r.Method == "POST" && r.URL.Path == "/v1/couriers/c-1/location":
			w.Header().Set("Retry-After", "1")
			answerError(w, http.StatusServiceUnavailable, "unavailable", "the store is away")
		default:
			return false
		}
		return true
	})
	b := newBrowser(t)
	permitGeolocation(b, base, cdpbrowser.PermissionSettingGranted)
	b.do("no position to be had", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, emulation.SetGeolocationOverride, emulation.SetGeolocationOverrideParams{})
		return chromedp.Void{}, err
	})
	row := `li.order[data-order-id="d-1"]`
	b.do("open the courier's page", chromedp.Navigate(base+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(row + `[data-status="ready"]`)

	confirmStep(b, row, "picked up")
	// A conflict: the page reads the order again and says what it is now.
	b.poll("the refused change said", `(p => !p.hidden && p.textContent.startsWith('Not done'))(document.querySelector('`+row+` .row-error'))`)
	if got, want := eval[string](b, `document.querySelector('`+row+` .row-error').textContent`), "Not done: this order changed meanwhile. It is now Ready; check it, then try again."; got != want {
		t.Errorf("the refused change shows %q, want %q", got, want)
	}
	b.poll("the button is back", `!document.querySelector('`+row+` .advance').disabled && document.querySelector('`+row+` .advance').getAttribute('aria-disabled') === null`)

	b.do("share my location", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	b.poll("the page says the position is unavailable", `document.getElementById('share-error').textContent.startsWith('Your position is unavailable')`)
	fakePosition(b, 52.52, 13.40)
	b.poll("the page says the server cannot take it", `document.getElementById('share-error').textContent === 'The server cannot take positions right now; trying again. The store is away.'`)
	screenshots(b, "courier-errors")

	// The browser's permission withdrawn while sharing ends the sharing; sharing again asks anew,
	// and is refused again.
	denied := `document.getElementById('share-error').textContent.startsWith('This browser may not tell the page where you are') && ` +
		`document.getElementById('share-toggle').getAttribute('aria-pressed') === 'false'`
	permitGeolocation(b, base, cdpbrowser.PermissionSettingDenied)
	b.poll("the page says the browser may not tell", denied)
	eval[bool](b, `(document.getElementById('share-error').textContent = '') === ''`)
	b.do("share again", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	b.poll("the page says the browser may not tell, again", denied)
	if pressed := eval[string](b, `document.getElementById('share-toggle').getAttribute('aria-pressed')`); pressed != "false" {
		t.Errorf("sharing refused by the browser: the toggle is pressed %s, want off", pressed)
	}
}

// TestCourierPageKeepsItsPositionsInOrder: the page stamps each position with the fix's time on
// the server's clock, which it learns from the answers, but never before the last position the
// server took, which keeps a courier's later fix. Here the phone's clock is four seconds fast (its
// fixes' times too): the first position goes before any answer, stamped by that clock, and the
// next, once the page has learned the server's, would otherwise be stamped before it and dropped.
func TestCourierPageKeepsItsPositionsInOrder(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	b.do("make the phone's clock four seconds fast", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			Date.now = (now => () => now() + 4000)(Date.now);
			navigator.geolocation.watchPosition = (watch => (ok, fail, opts) =>
				watch(fix => ok({ coords: fix.coords, timestamp: fix.timestamp + 4000 }), fail, opts))(navigator.geolocation.watchPosition.bind(navigator.geolocation));`,
		})
		return chromedp.Void{}, err
	})
	permitGeolocation(b, ls.URL(), cdpbrowser.PermissionSettingGranted)
	fakePosition(b, 52.5210, 13.4080)
	b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(`li.order[data-order-id="d-1"]`)
	b.do("share my location", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	latest := func(lat float64) {
		t.Helper()
		testutil.WaitFor(t, fmt.Sprintf("the position at %v", lat), func() bool {
			l := ls.tracker.Latest(t.Context(), "d-1")
			return l != nil && l.Update.Lat == lat
		})
	}
	latest(52.5210)
	fakePosition(b, 52.5220, 13.4090)
	latest(52.5220)
}

// confirmStep takes the courier's step on the row sel, as a courier does: a tap on its button,
// which asks again in its place, and a second once the question has settled.
func confirmStep(b *browser, sel, what string) {
	b.t.Helper()
	b.waitFor(sel + ` .advance:not([data-settling]):not([aria-disabled])`)
	b.do(what, chromedp.Click(chromedp.CSS(sel+` .advance`)))
	b.waitFor(sel + ` .advance[data-confirming]:not([data-settling])`)
	b.do("confirm: "+what, chromedp.Click(chromedp.CSS(sel+` .advance`)))
}

// recordFetches makes each page the browser opens count its fetches as it makes them, in
// window.fetches ("METHOD url"): a click's request is counted as soon as the click is handled,
// before it reaches the server.
func recordFetches(b *browser) {
	b.t.Helper()
	b.do("record the page's fetches", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.fetches = [];
			window.fetch = (f => function (u, init) {
				fetches.push(((init && init.method) || 'GET') + ' ' + u);
				return f.apply(this, arguments);
			})(window.fetch);`,
		})
		return chromedp.Void{}, err
	})
}

// statusPosts counts the changes of order id the page has sent (recordFetches).
func statusPosts(b *browser, id string) int {
	b.t.Helper()
	return eval[int](b, `fetches.filter(f => f.startsWith('POST ') && f.endsWith('/v1/orders/`+id+`/status')).length`)
}

// tapOnceItSays has the page click the button sel the moment it says label and takes clicks
// again (not busy): a finger's second tap, or a second Enter, landing just after the first
// one's change was answered. window.tapped says it did.
func tapOnceItSays(b *browser, sel, label string) {
	b.t.Helper()
	eval[bool](b, `(() => {
		const btn = document.querySelector('`+sel+`');
		const ready = () => btn.textContent === '`+label+`' && !btn.disabled && !btn.hasAttribute('aria-disabled');
		new MutationObserver((_, obs) => {
			if (!ready()) return;
			obs.disconnect();
			btn.click();
			window.tapped = true;
		}).observe(btn, { childList: true, characterData: true, subtree: true, attributes: true });
		return true;
	})()`)
}

// TestCourierStepTakesWhatItSays: the courier's button takes the step it says, for the version
// of the order it was shown for, and nothing else. A tap that lands as "Confirm pickup" has
// turned into "Complete delivery" (the change answered) is ignored: a button whose words changed
// takes no click for a second. A delivery cannot be undone: the first tap asks "Confirm delivery" in
// place, and only a second one, once settled, delivers. A click for a version the order has
// left is refused by the server, never turned into another step.
func TestCourierStepTakesWhatItSays(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusReady)
	b := newBrowser(t)
	recordFetches(b)
	row := `li.order[data-order-id="d-1"]`
	b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(row + `[data-status="ready"]`)
	status := func() ordercast.Status {
		t.Helper()
		o, err := ls.store.Order(t.Context(), "d-1")
		if err != nil {
			t.Fatal(err)
		}
		return o.Status
	}

	b.do("pick up", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + ` .advance[data-confirming]:not([data-settling])`)
	tapOnceItSays(b, row+` .advance`, "Complete delivery")
	b.do("confirm the pickup", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.poll("the third tap", `window.tapped === true`)
	b.poll("the button takes clicks again", `(b => !b.hasAttribute('data-settling') && !b.hasAttribute('aria-disabled'))(document.querySelector('`+row+` .advance'))`)
	if n, st := statusPosts(b, "d-1"), status(); n != 1 || st != ordercast.StatusOutForDelivery {
		t.Fatalf("a double tap on Confirm pickup sent %d changes and left the order %s, want 1 and out_for_delivery", n, st)
	}

	// The question changes the button's words, not its box (it fills its row, on a phone as on a
	// desktop), so the second tap lands where the first did.
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	box := `(r => [r.x, r.y, r.width, r.height].map(Math.round).join(','))(document.querySelector('` + row + ` .advance').getBoundingClientRect())`
	asked := eval[string](b, box)
	b.do("delivered", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + ` .advance[data-confirming]`)
	if label, n := eval[string](b, `document.querySelector('`+row+` .advance').textContent`), statusPosts(b, "d-1"); label != "Confirm delivery" || n != 1 {
		t.Fatalf("the first tap on Complete delivery: the button says %q, %d changes sent; want Confirm delivery and none more", label, n)
	}
	if got := eval[string](b, box); got != asked {
		t.Errorf("Confirm delivery's box is %s, Complete delivery's was %s: want the same", got, asked)
	}
	// A confirmation for a version the order no longer has is the server's to refuse.
	b.waitFor(row + ` .advance[data-confirming]:not([data-settling])`)
	eval[bool](b, `(document.querySelector('`+row+` .advance').dataset.version = '1') === '1'`)
	b.do("confirm a stale delivery", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + ` .row-error`)
	if st := status(); st != ordercast.StatusOutForDelivery {
		t.Fatalf("a confirmation for version 1 left the order %s", st)
	}
	b.waitFor(row + ` .advance:not([aria-disabled]):not([data-settling])`)
	b.do("delivered again", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + ` .advance[data-confirming]:not([data-settling])`)
	b.do("confirm the delivery", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + `[data-status="delivered"]`)
	if st := status(); st != ordercast.StatusDelivered {
		t.Fatalf("after the confirmation the store has %s", st)
	}
}

// TestCourierPageListsWhatIsInHandFirst: a courier's page lists the orders out for delivery
// first, then those ready to pick up, then the rest; an order picked up moves up with its
// button keeping the keyboard's focus.
func TestCourierPageListsWhatIsInHandFirst(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "p-1", "c-1", ordercast.StatusPreparing)
	courierOrder(t, ls, "r-1", "c-1", ordercast.StatusReady)
	courierOrder(t, ls, "o-1", "c-1", ordercast.StatusOutForDelivery)
	courierOrder(t, ls, "p-2", "c-1", ordercast.StatusConfirmed)
	b := newBrowser(t)
	b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(`li.order[data-order-id="p-2"]`)
	statuses := func() string {
		return eval[string](b, `Array.from(document.querySelectorAll('li.order')).map(li => li.dataset.status).join(' ')`)
	}
	if got := statuses(); got != "out_for_delivery ready confirmed preparing" && got != "out_for_delivery ready preparing confirmed" {
		t.Errorf("the rows are %s, want out_for_delivery, then ready, then the rest", got)
	}
	row := `li.order[data-order-id="r-1"]`
	b.do("pick r-1 up from the keyboard", chromedp.Focus(chromedp.CSS(row+` .advance`)), chromedp.KeyEvent("\r"))
	b.waitFor(row + ` .advance[data-confirming]:not([data-settling])`)
	b.do("confirm from the keyboard", chromedp.KeyEvent("\r"))
	b.waitFor(row + `[data-status="out_for_delivery"] .advance:not([aria-disabled])`)
	if got := statuses(); !strings.HasPrefix(got, "out_for_delivery out_for_delivery ") {
		t.Errorf("after Confirm pickup the rows are %s, want both orders out for delivery first", got)
	}
	if got := eval[string](b, `document.activeElement.closest('li.order').dataset.orderId + ' ' + document.activeElement.className`); got != "r-1 advance" {
		t.Errorf("after Confirm pickup the focus is on %q, want r-1's button", got)
	}
}

// TestCourierPageSaysAnOrderWasCancelled: an order cancelled while the courier's page shows it
// stays as a card until the courier removes it (a delivered one leaves after its linger): the
// courier on the road is not looking at the phone for those seconds. The card says the order was
// cancelled and what to do: not to pick it up, or, picked up (the food is with the courier), to
// ask the dispatcher; and why, when the cancellation's note gives a reason (a page's own note
// says only where it was made). A screen reader hears the same.
func TestCourierPageSaysAnOrderWasCancelled(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	createCourierOrder(t, ls, "d-ready", "c-1", ordercast.StatusReady)
	createCourierOrder(t, ls, "d-road", "c-1", ordercast.StatusOutForDelivery)
	admin := actorToken(t, auth.RoleAdmin, "ops")
	cancel := func(id, note string) {
		t.Helper()
		if resp, body := call(t, "POST", ls.URL()+"/v1/orders/"+id+"/status", admin, `{"status":"cancelled","note":"`+note+`"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("cancel %s: %d %s", id, resp.StatusCode, body)
		}
	}
	createCourierOrder(t, ls, "d-done", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	shortenTimings(b, `{endedLingerMs: 100}`) // a delivered order leaves at once
	b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(`li.order[data-order-id="d-ready"][data-status="ready"]`)
	b.waitFor(`li.order[data-order-id="d-road"][data-status="out_for_delivery"]`)
	if n := eval[int](b, `Array.from(document.querySelectorAll('.order-cancelled')).filter(p => p.offsetParent).length`); n != 0 {
		t.Errorf("%d orders in progress say they were cancelled", n)
	}
	says := func(id string) string {
		t.Helper()
		row := `li.order[data-order-id="` + id + `"]`
		b.waitFor(row + `[data-status="cancelled"] .order-cancelled`)
		return eval[string](b, `document.querySelector('`+row+` .order-cancelled').textContent`)
	}

	cancel("d-ready", "restaurant is out of an ingredient")
	if got, want := says("d-ready"), "Order cancelled. Do not pick it up. Reason: Restaurant is out of an ingredient."; got != want {
		t.Errorf("the card of an order cancelled before its pickup says %q, want %q", got, want)
	}
	if got, want := eval[string](b, `document.getElementById('announce').textContent`), "Order d-ready from Luigi's Trattoria is cancelled. Do not pick it up. Reason: Restaurant is out of an ingredient."; got != want {
		t.Errorf("the live region says %q, want %q", got, want)
	}
	screenshots(b, "courier-cancelled")
	cancel("d-road", "set in the console")
	if got, want := says("d-road"), "Order cancelled. Ask your dispatcher what to do with the food."; got != want {
		t.Errorf("the card of an order cancelled on the road says %q, want %q", got, want)
	}

	// A delivered order leaves after its linger; the cancelled ones stay until the courier has
	// seen them, whenever that is.
	if resp, body := call(t, "POST", ls.URL()+"/v1/orders/d-done/status", admin, `{"status":"delivered"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("deliver: %d %s", resp.StatusCode, body)
	}
	b.poll("the delivered order to leave", `!document.querySelector('li.order[data-order-id="d-done"]')`)
	for _, id := range []string{"d-ready", "d-road"} {
		if !eval[bool](b, `!!document.querySelector('li.order[data-order-id="`+id+`"] .order-cancelled:not([hidden])')`) {
			t.Fatalf("the cancelled order %s left the list before the courier removed it", id)
		}
	}
	b.tap("remove the cancelled order", `li.order[data-order-id="d-ready"] .dismiss`)
	b.poll("the cancelled order the courier removed to leave", `!document.querySelector('li.order[data-order-id="d-ready"]')`)
	if !eval[bool](b, `document.activeElement.closest('li.order') === document.querySelector('li.order[data-order-id="d-road"]')`) {
		t.Errorf("the focus went to %s, want the next order", eval[string](b, `document.activeElement.outerHTML.slice(0, 80)`))
	}
	if !eval[bool](b, `!!document.querySelector('li.order[data-order-id="d-road"] .dismiss:not([hidden])')`) {
		t.Error("the other cancelled order left with it")
	}
}

// TestCourierPageLetsGoOfItsStreamWhenHidden: a page the browser keeps in its back/forward cache
// holds no stream (HTTP/1.1 allows six connections to a host: a few pages back the site would no
// longer load), and the page is live again, from where it was, once it is back.
func TestCourierPageLetsGoOfItsStreamWhenHidden(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusReady)
	b := newBrowser(t)
	restored := awayAndBack(t, b, ls.URL(), "/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1"), `li.order[data-order-id="d-1"]`, func() {
		ls.mustCommit(t, "d-1", ordercast.StatusOutForDelivery)
	})
	// Live from where it was: a change made meanwhile, and one made now, both show.
	restored("the change made meanwhile", `document.querySelector('li.order[data-order-id="d-1"]').dataset.status === 'out_for_delivery'`)
	courierOrder(t, ls, "d-2", "c-1", ordercast.StatusReady)
	restored("the change made now", `document.querySelector('li.order[data-order-id="d-2"]')?.dataset.status === 'ready'`)
}

// awayAndBack opens the page at path of the server at base, live and showing the element shown,
// leaves it for another page
// (the browser keeps it in its back/forward cache, and the page lets go of its stream), runs
// meanwhile, and comes back to it, live again. It returns how to wait for the page back: the
// cached document's elements are not the ones the browser tool's own selectors follow, so each
// wait asks the page.
func awayAndBack(t *testing.T, b *browser, base, path, shown string, meanwhile func()) (restored func(what, expr string)) {
	t.Helper()
	b.do("note how the page is shown", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `addEventListener('pageshow', e => { if (e.persisted) window.restored = true; });`,
		})
		return chromedp.Void{}, err
	})
	// Should the browser not keep the page, the test fails waiting for it: this says why.
	if err := chromedp.Listen(b.ctx, func(ev any) {
		if e, ok := ev.(*page.EventBackForwardCacheNotUsed); ok {
			for _, r := range e.NotRestoredExplanations {
				t.Logf("the browser did not keep the page: %s (%s)", r.Reason, r.Type)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	b.do("open the page", chromedp.Navigate(base+path))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(shown)
	waitMetric(t, http.DefaultClient, base, 1, "ordercast_streams_open")

	b.do("go to another page", chromedp.Navigate(base+"/"))
	waitMetric(t, http.DefaultClient, base, 0, "ordercast_streams_open")
	meanwhile()
	eval[bool](b, `(history.back(), true)`)
	restored = func(what, expr string) {
		t.Helper()
		testutil.WaitFor(t, what, func() bool {
			ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
			return err == nil && ok // err: the page is still being swapped in
		})
	}
	restored("the page back from the cache, live", `window.restored === true && document.getElementById('conn').dataset.state === 'live'`)
	waitMetric(t, http.DefaultClient, base, 1, "ordercast_streams_open")
	return restored
}

// TestCourierPageLearnsWhatBecameOfItsOrdersAfterAFreshSnapshot: a courier's stream that comes
// back too far behind to be sent what it missed gets a fresh snapshot, the orders in progress
// only. An order cancelled meanwhile is not among them; the page reads what became of it and
// says it was cancelled, and why, until the courier has seen it, as it does live: taken away
// unseen, it would leave the courier carrying food nobody will take. An order given to another
// courier meanwhile leaves; one assigned meanwhile comes.
func TestCourierPageLearnsWhatBecameOfItsOrdersAfterAFreshSnapshot(t *testing.T) {
	a := authority(t)
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: a}
		server.SetPartyBacklog(s, 2)
	})
	createCourierOrder(t, ls, "d-road", "c-1", ordercast.StatusOutForDelivery)
	createCourierOrder(t, ls, "d-given", "c-1", ordercast.StatusReady)
	createCourierOrder(t, ls, "d-kept", "c-1", ordercast.StatusReady)
	b := newBrowser(t)
	restored := awayAndBack(t, b, ls.URL(), "/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1"), `li.order[data-order-id="d-kept"]`, func() {
		mustCall(t, "POST", ls.URL()+"/v1/orders/d-road/status", actorToken(t, auth.RoleAdmin, "ops"),
			`{"status":"cancelled","note":"customer asked to cancel"}`, http.StatusOK)
		ls.assign(t, "d-given", "c-2")
		createCourierOrder(t, ls, "d-new", "c-1", ordercast.StatusReady) // three events: more than the bound
	})
	row := func(id string) string { return `document.querySelector('li.order[data-order-id="` + id + `"]')` }
	restored("the order assigned meanwhile", row("d-new")+`?.dataset.status === 'ready'`)
	restored("the order given to another courier to leave", `!`+row("d-given"))
	restored("the cancelled order to say so", row("d-road")+`?.dataset.status === 'cancelled'`)
	if got, want := eval[string](b, row("d-road")+`.querySelector('.order-cancelled').textContent`),
		"Order cancelled. Ask your dispatcher what to do with the food. Reason: Customer asked to cancel."; got != want {
		t.Errorf("the cancelled order's card says %q, want %q", got, want)
	}
	if !eval[bool](b, `!!`+row("d-road")+`.querySelector('.dismiss:not([hidden])')`) {
		t.Error("the cancelled order offers no way to remove it: it would leave unseen")
	}
	if !eval[bool](b, row("d-kept")+`?.dataset.status === 'ready'`) {
		t.Error("the order still in progress left the list")
	}
}

// TestStreamBackFromTheCacheOpensOnce: a page hidden and shown again (the back/forward cache)
// while its stream asks the server why it was refused opens one stream on its return. The
// answer to the question, which comes after, is about the stream let go before, and must open
// nothing: it scheduled a second connection, which nothing on the page could close.
func TestStreamBackFromTheCacheOpensOnce(t *testing.T) {
	srv := startPageServer(t)
	var streams atomic.Int64
	base := frontProxy(t, srv.url, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if r.URL.Path == "/v1/stream" && streams.Add(1) == 1 {
			http.Error(w, "bad gateway", http.StatusBadGateway) // the stream's first connection fails
			return true
		}
		return false
	})
	b := newBrowser(t)
	b.do("hold the question why, and count the reconnections scheduled", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			const fetch0 = window.fetch;
			window.fetch = function (u, o) {
				if (!(o && o.headers && o.headers.Accept === 'text/event-stream')) return fetch0.apply(this, arguments);
				window.asked = true;
				return new Promise(resolve => { window.answer = () => resolve(new Response('', {status: 502})); });
			};
			const setTimeout0 = window.setTimeout;
			window.reopens = 0;
			window.setTimeout = function (fn) {
				if (fn && fn.name === 'open') window.reopens++;
				return setTimeout0.apply(this, arguments);
			};`})
		return chromedp.Void{}, err
	})
	b.do("open the console", chromedp.Navigate(base+"/console"))
	b.poll("the refused stream asking why", `window.asked === true`)
	eval[bool](b, `(dispatchEvent(new PageTransitionEvent('pagehide', {persisted: true})), dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true})), true)`)
	b.waitFor(`#conn[data-state="live"]`)
	// The answer comes; a macrotask later every step it started has run.
	if got := eval[int](b, `new Promise(done => { answer(); setTimeout(() => done(window.reopens), 0); })`); got != 0 {
		t.Errorf("the answer about the stream let go scheduled %d more connections, want none", got)
	}
}

// createCourierOrder creates order id for Ana from Luigi's, with its pick-up and drop-off, gives
// it to courier and moves it to status.
func createCourierOrder(t *testing.T, ls *locationServer, id, courier string, status ordercast.Status) {
	t.Helper()
	if resp, body := call(t, "POST", ls.URL()+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"), `{"id":"`+id+`","restaurant_id":"r-1","customer_id":"u-1",`+
		`"details":{"restaurant":"Luigi's Trattoria","customer":"Ana","items":2},`+
		`"pickup":{"lat":52.5202,"lng":13.407},"dropoff":{"lat":52.5247,"lng":13.4106}}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
	}
	ls.assign(t, id, courier)
	ls.mustCommit(t, id, status)
}

// TestCourierPageSaysWhenItsSignInExpired: a step refused for the page's token (401: it expired
// mid-shift) stops the page as a refused stream does: it says to ask for a new link (the link it
// was opened with holds the same expired token), offers no step that could only be refused,
// marks the connection refused rather than live, and stops sharing the location. The page opened
// again with that token says the same of what to do.
func TestCourierPageSaysWhenItsSignInExpired(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	base := frontProxy(t, ls.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if r.Method != "POST" || r.URL.Path != "/v1/orders/d-1/status" {
			return false
		}
		answerError(w, http.StatusUnauthorized, "unauthenticated", "token has expired")
		return true
	})
	b := newBrowser(t)
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	row := `li.order[data-order-id="d-1"]`
	shareOnCourierPage(t, b, base)
	b.waitFor(`#share-last`)

	b.do("delivered", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + ` .advance[data-confirming]:not([data-settling])`)
	b.do("confirm the delivery", chromedp.Click(chromedp.CSS(row+` .advance`)))
	checkSignedOut(t, b)
	if o, err := ls.store.Order(t.Context(), "d-1"); err != nil || o.Status != ordercast.StatusOutForDelivery {
		t.Errorf("the store has %s, %v", o.Status, err)
	}
	screenshots(b, "courier-expired")

	// A reload finds the page's cookie holding a token that has expired by now: the server's
	// page says the same of what to do.
	old := authority(t)
	old.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, err := old.SignActor(auth.Actor{Role: auth.RoleCourier, Sub: "c-1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	httpOnly := true
	b.do("the page's cookie holds an expired token", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
			Name: server.PartyCookie, Value: expired, URL: base + "/couriers/c-1", Path: "/couriers/c-1", HTTPOnly: &httpOnly,
			SameSite: network.CookieSameSiteStrict,
		})
		return chromedp.Void{}, err
	})
	b.do("reload the page", chromedp.Reload())
	b.waitFor(`#conn[data-state="denied"]`)
	if why := eval[string](b, `document.getElementById('problem').textContent`); !strings.HasSuffix(why, "); "+askNewLink) {
		t.Errorf("the page opened again with the expired token says %q, want it to end %q", why, askNewLink)
	}
}

// askNewLink is what a courier's page says to do once its token is no longer taken: the link it
// was opened with holds that token, so it asks for a new one.
const askNewLink = "ask dispatch, or the app that gave you this page, for a new link."

// shareOnCourierPage opens courier c-1's page at base, with a position to be had, once its
// order d-1 is out for delivery and its stream live, and turns sharing on.
func shareOnCourierPage(t *testing.T, b *browser, base string) {
	t.Helper()
	permitGeolocation(b, base, cdpbrowser.PermissionSettingGranted)
	fakePosition(b, 52.52, 13.40)
	b.do("open the courier's page", chromedp.Navigate(base+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(`li.order[data-order-id="d-1"][data-status="out_for_delivery"]`)
	b.waitFor(`#conn[data-state="live"]`)
	b.do("share my location", chromedp.Click(chromedp.CSS(`#share-toggle`)))
}

// checkSignedOut fails the test unless the courier's page has stopped as it does when the server
// refuses its token: it says to ask for a new link, offers no step nor sharing, marks the
// connection refused rather than live ("token refused": it had one), and shares the location no
// more.
func checkSignedOut(t *testing.T, b *browser) {
	t.Helper()
	b.waitFor(`#conn[data-state="denied"]`)
	if got := eval[string](b, `document.querySelector('#conn .conn-state').textContent`); got != "token refused" {
		t.Errorf("the indicator says %q, want token refused", got)
	}
	if why := eval[string](b, `document.getElementById('problem').textContent`); why != "Your sign-in has expired: "+askNewLink {
		t.Errorf("the page says %q", why)
	}
	if shown := eval[bool](b, `!!document.querySelector('#orders-section .advance, #share-toggle').offsetParent`); shown {
		t.Error("the page still offers its steps or its sharing")
	}
	if pressed, state := eval[string](b, `document.getElementById('share-toggle').getAttribute('aria-pressed')`),
		eval[string](b, `document.getElementById('share-state').textContent`); pressed != "false" || !strings.HasPrefix(state, "Off") {
		t.Errorf("the sharing goes on: pressed %s, %q", pressed, state)
	}
}

// TestADemoPageSaysToReloadAfterARestart: a demo server mints its pages' tokens with a secret of
// its own, which a restart replaces; the open pages' changes are then refused (401), and the
// pages say to reload, which mints new tokens, rather than to open a link the demo never gave or
// to enter a token: the console, and a restaurant's board. Each stops, as a page whose link's
// token expired does: its orders, and every control that would be refused the same way, go, and
// the focus goes to the reason, which on a phone may be screens above the row tapped.
func TestADemoPageSaysToReloadAfterARestart(t *testing.T) {
	const reload = "This demo page's sign-in is no longer accepted (the demo server restarted, or it expired): reload the page."
	ts := newAuthServer(t, func(s *server.Server) { s.Auth.ConsoleToken = true })
	if resp, body := call(t, "POST", ts.URL()+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"), `{"id":"o-demo","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	base := frontProxy(t, ts.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if r.Method != "POST" || r.URL.Path != "/v1/orders/o-demo/status" {
			return false
		}
		answerError(w, http.StatusUnauthorized, "unauthenticated", "token signature does not verify with this server's keys")
		return true
	})
	row := `li.order[data-order-id="o-demo"]`
	for _, path := range []string{"/restaurants/r-1", "/console"} {
		b := newBrowser(t)
		b.do("open "+path, chromedp.Navigate(base+path))
		b.waitFor(row + `[data-status="placed"]`)
		b.tap("advance", row+` .advance`)
		b.waitFor("#problem")
		if why := eval[string](b, `document.getElementById('problem').textContent`); why != reload {
			t.Errorf("%s says %q, want %q", path, why, reload)
		}
		if focused := eval[string](b, `document.activeElement.id`); focused != "problem" {
			t.Errorf("%s: the focus is on #%s, want it on the reason", path, focused)
		}
		if eval[bool](b, `!document.getElementById('orders-section').hidden || [...document.querySelectorAll('form, section')].some(s => s.id !== 'orders-section' && !s.hidden && s.offsetParent !== null)`) {
			t.Errorf("%s still shows its orders or a form", path)
		}
		b.waitFor(`#conn[data-state="denied"]`)
	}
}

// TestCourierPageStopsWhenAPositionIsRefusedItsToken: a position the server refuses for the
// page's token (401: it expired mid-shift, or was revoked) stops the page as a refused step does
// (checkSignedOut), rather than being tried again or shown as the sharing's own problem: neither
// the refused position nor a newer fix goes once the page's interval between posts has passed.
func TestCourierPageStopsWhenAPositionIsRefusedItsToken(t *testing.T) {
	const intervalMs = 200 // the page's least time between two posts, shortened
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	var posts atomic.Int32
	base := frontProxy(t, ls.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if r.Method != "POST" || r.URL.Path != "/v1/couriers/c-1/location" {
			return false
		}
		posts.Add(1)
		answerError(w, http.StatusUnauthorized, "unauthenticated", "token has been revoked")
		return true
	})
	b := newBrowser(t)
	recordFetches(b)
	shortenTimings(b, fmt.Sprintf(`{locationIntervalMs: %d}`, intervalMs))
	shareOnCourierPage(t, b, base)
	checkSignedOut(t, b)

	// A page that went on would post again within one interval: the refused position, or a
	// newer fix. The test's own watch learns when a newer fix reached the page (the browser
	// hands a fix to every watch of the page in one go); a timer of one interval started after
	// that fires after every timer of at most that long the page started before it (HTML's timer
	// ordering), so any further post has been made by then, and counted (recordFetches).
	eval[bool](b, `(() => {
		window.newerFix = new Promise(ok => navigator.geolocation.watchPosition(p => { if (p.coords.latitude === 52.53) ok(); }));
		return true;
	})()`)
	fakePosition(b, 52.53, 13.41)
	eval[bool](b, fmt.Sprintf(`newerFix.then(() => new Promise(ok => setTimeout(() => ok(true), %d)))`, intervalMs))
	if n := eval[int](b, `fetches.filter(f => f.startsWith('POST ') && f.endsWith('/v1/couriers/c-1/location')).length`); n != 1 {
		t.Errorf("the page posted %d positions, want the one refused", n)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("the server was sent %d positions, want the one refused", n)
	}
	if l := ls.tracker.Latest(t.Context(), "d-1"); l != nil {
		t.Errorf("the order's watchers got %+v", l.Update)
	}
}

// TestCourierPageAsksBeforeEachStep: neither of a courier's steps can be undone (after the
// pickup the restaurant may no longer cancel, and the customer sees the courier's position; a
// delivery ends the order), so the first tap on either asks again, in place: "Pick up order"
// turns into "Confirm pickup", "Complete delivery" into "Confirm delivery", at the width it had
// on a phone's screen, and a double tap is no confirmation (the button's words just changed).
// The question waits for its second tap only so long (twenty seconds, shortened here: the taps
// focus nothing, TestAQuestionStandsWhileTheKeyboardIsOnIt): then the
// button says what it said before, having sent nothing, and the next tap asks again. A screen
// reader hears both, in the page's live region: "Press again to confirm", then that the step
// was not confirmed.
func TestCourierPageAsksBeforeEachStep(t *testing.T) {
	for _, tc := range []struct {
		name         string
		status       ordercast.Status
		label, asked string // the button's words, and while it asks
		ask, lapsed  string // what the live region says
	}{
		{"pickup", ordercast.StatusReady, "Pick up order", "Confirm pickup",
			"Press again to confirm the pickup of order d-1.", "Pickup of order d-1 not confirmed."},
		{"delivery", ordercast.StatusOutForDelivery, "Complete delivery", "Confirm delivery",
			"Press again to confirm the delivery of order d-1.", "Delivery of order d-1 not confirmed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, _ := newAuthLocationServer(t)
			courierOrder(t, ls, "d-1", "c-1", tc.status)
			b := newBrowser(t)
			b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
			recordFetches(b)
			shortenTimings(b, `{confirmMs: 500}`)
			btn := `document.querySelector('li.order[data-order-id="d-1"] .advance')`
			b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
			b.waitFor(`li.order[data-order-id="d-1"][data-status="` + string(tc.status) + `"] .advance:not([data-settling])`)
			box := `(r => [r.x, r.y, r.width, r.height].map(Math.round).join(','))(` + btn + `.getBoundingClientRect())`
			before := eval[string](b, box)
			// Each tap is the page's own click (the first a double tap), which reads the button,
			// its box, and the live region (window.saidOnTap), as the clicks left them: the
			// window is short.
			tap := func(clicks int) (says, at string) {
				t.Helper()
				says = eval[string](b, `(b => {
					for (let i = 0; i < `+fmt.Sprint(clicks)+`; i++) b.click();
					window.saidOnTap = document.getElementById('prompt').textContent;
					window.boxOnTap = `+box+`;
					return b.textContent + (b.hasAttribute('data-confirming') ? ' (confirming)' : '');
				})(`+btn+`)`)
				return says, eval[string](b, `window.boxOnTap`)
			}
			for i, what := range []string{"a double tap", "the tap after the window passed"} {
				got, at := tap(2 - i)
				if want := tc.asked + " (confirming)"; got != want {
					t.Fatalf("%s: the button says %q, want %q; %d changes sent", what, got, want, statusPosts(b, "d-1"))
				}
				if at != before {
					t.Errorf("%s: %s's box is %s, %s's was %s: want the same", what, tc.asked, at, tc.label, before)
				}
				// A double tap's second, ignored, says so, and that the question stands.
				want := tc.ask
				if i == 0 {
					want = "Nothing was done: the button just changed to " + tc.asked + ". Press again to do that."
				}
				if said := eval[string](b, `window.saidOnTap`); said != want {
					t.Errorf("after %s the live region says %q, want %q", what, said, want)
				}
				b.poll("the button says "+tc.label+" again", `(b => b.textContent === '`+tc.label+`' && !b.hasAttribute('data-confirming') && b.getAttribute('aria-label') === '`+tc.label+`: order d-1')(`+btn+`)`)
				if said := eval[string](b, `document.getElementById('prompt').textContent`); said != tc.lapsed {
					t.Errorf("after %s, once the window passed, the live region says %q, want %q", what, said, tc.lapsed)
				}
				if n := statusPosts(b, "d-1"); n != 0 {
					t.Fatalf("after %s the page sent %d changes", what, n)
				}
				if i == 0 {
					b.poll("the button takes clicks again", `!`+btn+`.hasAttribute('data-settling')`)
				}
			}
			if o, err := ls.store.Order(t.Context(), "d-1"); err != nil || o.Status != tc.status || o.Version != 3 {
				t.Errorf("the store has d-1 %s at %d (%v), want %s as it was", o.Status, o.Version, err, tc.status)
			}
		})
	}
}

// TestCourierPageSharesOnceAnOrderIsOnTheMap: a courier's page sends no position while none of
// its orders is at the stage from which the server shows the courier (--location-from,
// out_for_delivery by default: every post would reach no map); it says when sharing starts,
// and the position waiting goes as soon as an order is picked up.
func TestCourierPageSharesOnceAnOrderIsOnTheMap(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	createCourierOrder(t, ls, "d-1", "c-1", ordercast.StatusReady)
	b := newBrowser(t)
	permitGeolocation(b, ls.URL(), cdpbrowser.PermissionSettingGranted)
	fakePosition(b, 52.5210, 13.4080)
	row := `li.order[data-order-id="d-1"]`
	b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(row + `[data-status="ready"]`)
	if from := eval[string](b, `document.getElementById('share').dataset.locationFrom`); from != "out_for_delivery" {
		t.Errorf("the page has the server's stage as %q", from)
	}
	b.do("share my location", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	b.poll("the page says when sharing starts", `document.getElementById('share-state').textContent === 'Sharing starts when you pick up an order.'`)
	if n := b.countRequests("/location"); n != 0 {
		t.Fatalf("the page posted %d positions with no order on a map", n)
	}
	confirmStep(b, row, "picked up")
	testutil.WaitFor(t, "the waiting position on the order's map", func() bool {
		l := ls.tracker.Latest(t.Context(), "d-1")
		return l != nil && l.Update.Lat == 52.5210
	})
	b.poll("the page says it shares", `document.getElementById('share-state').textContent === 'Sharing your location.'`)
}

// TestCourierViewOfTheTrackingPage: an order's link on the courier's page opens the courier's
// view of the tracking page, which speaks to the courier: "Your route", the drop-off named by its
// customer, the minutes to the drop-off, "You are near the drop-off", a link back to the
// courier's deliveries, and, once the order goes to another courier, "This order is no longer
// yours" rather than the server's refusal.
func TestCourierViewOfTheTrackingPage(t *testing.T) {
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
		s.LocationInterval = 0
	})
	base := ls.URL()
	createCourierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	courier := actorToken(t, auth.RoleCourier, "c-1")
	b := newBrowser(t)
	b.do("open the courier's page", chromedp.Navigate(base+"/couriers/c-1?token="+courier))
	b.waitFor(`li.order[data-order-id="d-1"]`)
	b.do("follow d-1's link", chromedp.Click(chromedp.CSS(`li.order[data-order-id="d-1"] a.order-id`)))
	b.waitFor(`#status-line[data-status="out_for_delivery"]`)
	b.waitFor(`#conn[data-state="live"]`)
	if href := eval[string](b, `location.href`); href != base+"/track/d-1?courier=c-1&view=courier" {
		t.Errorf("the link ends at %q, want the courier's view of the tracking page", href)
	}
	for _, tc := range []struct{ what, expr, want string }{
		{"the map's heading", `document.getElementById('map-heading').textContent`, "Your route"},
		{"the drop-off's pin", `document.querySelector('#map-dropoff-label text').textContent`, "Ana"},
		{"the way back", `document.querySelector('.back a').getAttribute('href')`, "/couriers/c-1"},
		{"the way back's words", `document.querySelector('.back a').textContent`, "Back to your deliveries"},
	} {
		if got := eval[string](b, tc.expr); got != tc.want {
			t.Errorf("%s says %q, want %q", tc.what, got, tc.want)
		}
	}
	post := func(lat, lng float64) {
		t.Helper()
		if code, body := postLocation(t, base, "c-1", courier, fmt.Sprintf(`{"lat":%v,"lng":%v,"speed_mps":5}`, lat, lng)); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, body)
		}
	}
	post(52.5210, 13.4080)
	b.poll("the minutes to the drop-off", `/^About \d+ min to the drop-off$/.test(document.getElementById('eta').textContent)`)
	screenshots(b, "courier-track")
	post(52.5247, 13.4106)
	b.poll("near the drop-off", `!document.getElementById('nearby').hidden && document.getElementById('eta').textContent === 'Under a minute to the drop-off'`)

	ls.assign(t, "d-1", "c-2")
	b.poll("the order is no longer the courier's", `document.getElementById('problem').textContent === 'This order is no longer yours.'`)
	if conn, mapShown := eval[string](b, `document.getElementById('conn').dataset.state`), eval[bool](b, `!document.getElementById('map').hidden`); conn != "ended" || mapShown {
		t.Errorf("the order no longer the courier's: connection %s, map shown %v; want ended, no map", conn, mapShown)
	}
	screenshots(b, "courier-track-reassigned")
	b.do("back to the deliveries", chromedp.Click(chromedp.CSS(`.back a`)))
	b.waitFor(`#conn[data-state="live"]`)
	if href := eval[string](b, `location.href`); href != base+"/couriers/c-1" {
		t.Errorf("the way back ends at %q", href)
	}

	// A link first followed after the order went to another courier (the row lingers on the
	// page) gets no credential for it (401, where a page that had it open before gets 403): the
	// page says so, in words a courier can act on, and not that a customer's tracking link is
	// needed.
	fresh := newBrowser(t)
	fresh.do("open the courier's page", chromedp.Navigate(base+"/couriers/c-1?token="+courier))
	fresh.waitFor(`#conn[data-state="live"]`)
	fresh.do("follow d-1's link", chromedp.Navigate(base+"/couriers/c-1/track/d-1"))
	fresh.poll("the order is not the courier's", `document.getElementById('problem').textContent.startsWith('This order is no longer yours')`)
	if conn, back := eval[string](fresh, `document.getElementById('conn').dataset.state`), eval[string](fresh, `document.querySelector('.back a').getAttribute('href')`); conn != "ended" || back != "/couriers/c-1" {
		t.Errorf("a link to an order gone to another courier: connection %s, way back %q; want ended, /couriers/c-1", conn, back)
	}
}

// contrast is the WCAG contrast ratio of two colours as getComputedStyle gives them
// ("rgb(r, g, b)"), each over the other's background: opaque.
func contrast(t *testing.T, a, b string) float64 {
	t.Helper()
	lum := func(c string) float64 {
		var r, g, bl float64
		if _, err := fmt.Sscanf(c, "rgb(%g, %g, %g)", &r, &g, &bl); err != nil {
			t.Fatalf("colour %q: %v", c, err)
		}
		ch := func(v float64) float64 {
			v /= 255
			if v <= 0.03928 {
				return v / 12.92
			}
			return math.Pow((v+0.055)/1.055, 2.4)
		}
		return 0.2126*ch(r) + 0.7152*ch(g) + 0.0722*ch(bl)
	}
	la, lb := lum(a), lum(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// TestCourierViewCutsALongNameOnTheMap: the courier's view names the drop-off by its customer;
// a long name is cut with an ellipsis so that the label stays on the map, and is whole in the
// label's title.
func TestCourierViewCutsALongNameOnTheMap(t *testing.T) {
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
	})
	base := ls.URL()
	const name = "Maximiliane Alexandra von Hohenzollern-Sigmaringen"
	// The drop-off at the east edge of what the map shows, where a label centred on it has the
	// least room.
	if resp, body := call(t, "POST", base+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"), `{"id":"d-long","restaurant_id":"r-1","customer_id":"u-1",`+
		`"details":{"customer":"`+name+`"},"pickup":{"lat":52.5202,"lng":13.400},"dropoff":{"lat":52.5202,"lng":13.420}}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	ls.assign(t, "d-long", "c-1")
	ls.mustCommit(t, "d-long", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	b.do("open the courier's page", chromedp.Navigate(base+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(`li.order[data-order-id="d-long"]`)
	b.do("follow the order's link", chromedp.Click(chromedp.CSS(`li.order[data-order-id="d-long"] a.order-id`)))
	b.waitFor(`#map-dropoff-label`)
	label, title := eval[string](b, `document.querySelector('#map-dropoff-label text').textContent`), eval[string](b, `document.querySelector('#map-dropoff-label title').textContent`)
	if title != name || !strings.HasSuffix(label, "\u2026") || !strings.HasPrefix(name, strings.TrimSuffix(label, "\u2026")) || len([]rune(label)) > 14 {
		t.Errorf("the drop-off's label %q, title %q: want the name cut to 14 letters with an ellipsis, whole in the title", label, title)
	}
	if inside := eval[bool](b, `(function () {
		var m = document.getElementById('map-view').getBoundingClientRect(), l = document.querySelector('#map-dropoff-label text').getBoundingClientRect();
		return l.left >= m.left && l.right <= m.right;
	})()`); !inside {
		t.Error("the drop-off's label runs off the map")
	}
	screenshots(b, "courier-track-long-name")
}

// TestCourierPageIsEasyToReadAndTap: the courier's page has its one h1; the keyboard's focus
// ring contrasts 3:1 with the white behind it; what a courier taps on the move (the share
// toggle, the links to a stop's map and to an order's tracking page) is 44 px high; and a
// delivered order, while it lingers, keeps its muted text at 4.5:1 (a faded row would not).
func TestCourierPageIsEasyToReadAndTap(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	createCourierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(`li.order[data-order-id="d-1"]`)
	if h1 := eval[string](b, `Array.from(document.querySelectorAll('h1')).map(h => h.textContent).join('|')`); h1 != "Courier c-1" {
		t.Errorf("the page's h1s: %q, want one naming the courier", h1)
	}
	b.do("tab to the first link", chromedp.KeyEvent("\t"))
	ring := eval[string](b, `getComputedStyle(document.activeElement).outlineColor`)
	if c := contrast(t, ring, "rgb(255, 255, 255)"); c < 3 {
		t.Errorf("the focus ring %s contrasts %.2f:1 with white, want 3:1", ring, c)
	}
	for _, sel := range []string{`#share-toggle`, `li.order .stop-map`, `li.order a.order-id`} {
		if h := eval[float64](b, `Math.min(...Array.from(document.querySelectorAll('`+sel+`')).map(e => e.getBoundingClientRect().height))`); h < 44 {
			t.Errorf("%s is %.0f px high, want 44", sel, h)
		}
	}
	ls.mustCommit(t, "d-1", ordercast.StatusDelivered)
	b.waitFor(`li.order[data-order-id="d-1"][data-status="delivered"]`)
	// The muted text and its row's background, each through the row's opacity over the page.
	colours := eval[[]string](b, `(() => {
		const li = document.querySelector('li.order[data-order-id="d-1"]');
		const o = Number(getComputedStyle(li).opacity);
		const page = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
		const mix = c => 'rgb(' + c.match(/\d+/g).slice(0, 3).map((v, i) => Math.round(v * o + page[i] * (1 - o))).join(', ') + ')';
		return [mix(getComputedStyle(li.querySelector('.order-meta')).color), mix(getComputedStyle(li).backgroundColor)];
	})()`)
	if c := contrast(t, colours[0], colours[1]); c < 4.5 {
		t.Errorf("a delivered order's muted text (%s on %s) contrasts %.2f:1, want 4.5:1", colours[0], colours[1], c)
	}
}

// TestABoardStaysLiveWhilePositionsFlow: any frame puts a stream's heartbeat off, so a board
// whose order is out for delivery gets its courier's positions and no heartbeat. The board
// reads no position, and its watchdog, counting only what it read, took the stream for silent
// and reconnected every two and a half heartbeats, a fresh snapshot each time. Every frame
// counts now.
func TestABoardStaysLiveWhilePositionsFlow(t *testing.T) {
	ls := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
		s.LocationInterval = 0
		s.Heartbeat = 300 * time.Millisecond
		tr.Rate = 0
	})
	base := ls.URL()
	createCourierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	b.do("note the states and count the positions", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.states = []; window.positions = 0;
			const ES = window.EventSource;
			window.EventSource = function (u, o) {
				const es = new ES(u, o);
				es.addEventListener('location', () => window.positions++);
				return es;
			};
			Object.assign(window.EventSource, {CONNECTING: 0, OPEN: 1, CLOSED: 2});
			addEventListener('DOMContentLoaded', () => {
				const conn = document.getElementById('conn');
				new MutationObserver(() => window.states.push(conn.dataset.state)).observe(conn, {attributes: true, attributeFilter: ['data-state']});
			});`,
		})
		return chromedp.Void{}, err
	})
	b.do("open the restaurant's board", chromedp.Navigate(base+"/restaurants/r-1?token="+actorToken(t, auth.RoleRestaurant, "r-1")))
	b.waitFor(`#conn[data-state="live"]`)
	courier := actorToken(t, auth.RoleCourier, "c-1")
	tick := time.NewTicker(100 * time.Millisecond) // a courier posting ten times a second
	defer tick.Stop()
	for i := 0; i < 200 && eval[int](b, `window.positions`) < 15; i++ { // 15: five heartbeats' worth
		<-tick.C
		if code, body := postLocation(t, base, "c-1", courier, fmt.Sprintf(`{"lat":52.52%02d,"lng":13.40}`, i%100)); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, body)
		}
	}
	if n := eval[int](b, `window.positions`); n < 15 {
		t.Fatalf("the board's stream carried %d positions, want 15 or more", n)
	}
	if states := eval[[]string](b, `window.states`); slices.Contains(states, "reconnecting") {
		t.Errorf("the board went %q while positions flowed", states)
	}
}

// holdFixes makes the browser's geolocation, on each page it opens, act as a phone standing
// still: each watch is handed its first fix, as measured heldFor ago (0: as it is), and no other
// (a watch reports changes). A fix the page asks for (getCurrentPosition) is noted in
// window.asked (its options) and is measured now, where the watch's was; with hold, only once
// the test calls window.answer(). (Chromium's emulated position cannot stand for it: a one-shot
// request beside a watch gets nothing until the position is set again, which fails it.)
func holdFixes(b *browser, heldFor time.Duration, hold bool) {
	b.t.Helper()
	b.do("hold the phone's fixes", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			const geo = navigator.geolocation;
			const watch0 = geo.watchPosition.bind(geo);
			let coords = null;
			geo.watchPosition = (ok, fail, opts) => {
				let first = true;
				return watch0(fix => {
					if (!first) return;
					first = false;
					coords = fix.coords;
					ok({ coords: fix.coords, timestamp: fix.timestamp - ` + fmt.Sprint(heldFor.Milliseconds()) + ` });
				}, fail, opts);
			};
			window.asked = [];
			geo.getCurrentPosition = (ok, fail, opts) => {
				window.asked.push(opts);
				window.answer = () => ok({ coords: coords, timestamp: Date.now() });
				if (!` + fmt.Sprint(hold) + `) window.answer();
			};`,
		})
		return chromedp.Void{}, err
	})
}

// TestCourierPageAsksForAFreshFixAtPickup: a phone standing still at the counter reports no new
// fix (the watch reports changes), so by the time the courier picks the order up, the fix the
// page holds may be older than the server takes (--location-max-age, which the page carries as
// data-location-max-age), or than the pickup, which the server shows no customer
// (fix_before_order_change). The page does not restamp it (at is when it was measured) but asks
// the browser for a fresh one (maximumAge 0, with a timeout), saying so meanwhile, and sends
// that: before it sends the held one when it knows it too old, after the server's answer when
// it is older than the pickup. The state line then says it shares. A server that shows the
// held fix (the pickup, as its store stamped it, came before it) gets it as it is, measured
// when it was.
func TestCourierPageAsksForAFreshFixAtPickup(t *testing.T) {
	for _, tc := range []struct {
		name        string
		held        time.Duration // the phone's last fix, as old as this at the pickup
		maxAge      time.Duration
		changesBack bool // the store stamps the pickup two minutes back (stampChangesBack)
		sentBefore  int  // the held fix is posted before the fresh one is asked for (or, with -1, none is)
	}{
		{"older than the server takes", 3 * time.Minute, 2 * time.Minute, false, 0},
		{"measured before the pickup", 3 * time.Minute, 10 * time.Minute, false, 1},
		{"measured after the pickup", time.Minute, 10 * time.Minute, true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
				s.Auth = &server.Auth{Tokens: authority(t)}
				tr.MaxAge = tc.maxAge
				if tc.changesBack {
					stampChangesBack(s)
				}
			})
			createCourierOrder(t, ls, "d-1", "c-1", ordercast.StatusReady)
			b := newBrowser(t)
			b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
			permitGeolocation(b, ls.URL(), cdpbrowser.PermissionSettingGranted)
			fakePosition(b, 52.5210, 13.4080)
			holdFixes(b, tc.held, true)
			row := `li.order[data-order-id="d-1"]`
			b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
			b.waitFor(row + `[data-status="ready"]`)
			if got, want := eval[string](b, `document.getElementById('share').dataset.locationMaxAge`), fmt.Sprint(tc.maxAge.Seconds()); got != want {
				t.Errorf("the page has the server's max age as %q s, want %q", got, want)
			}
			b.do("share my location", chromedp.Click(chromedp.CSS(`#share-toggle`)))
			b.poll("the page says when sharing starts", `document.getElementById('share-state').textContent === 'Sharing starts when you pick up an order.'`)

			confirmStep(b, row, "picked up")
			position := func(measured time.Time) {
				t.Helper()
				testutil.WaitFor(t, "the position on the order's map", func() bool {
					l, _ := ls.tracker.Trail("d-1") // the order's newest position, however old
					return l != nil && l.Update.Lat == 52.5210 && l.Update.At.Sub(measured).Abs() < 30*time.Second
				})
			}
			if tc.sentBefore < 0 {
				position(time.Now().Add(-tc.held)) // as it was measured, not restamped
				if n := eval[int](b, `window.asked.length`); n != 0 {
					t.Errorf("the page asked for %d fresh fixes, want none: the server shows the one it held", n)
				}
			} else {
				b.poll("the page says it gets a fresh position", `document.getElementById('share-state').textContent === 'Sharing: getting your current position…'`)
				if opts := eval[map[string]any](b, `window.asked[0]`); opts["maximumAge"] != 0.0 || opts["timeout"] == nil {
					t.Errorf("the page asked for a fix with %v, want maximumAge 0 and a timeout", opts)
				}
				if n := b.countRequests("/location"); n != tc.sentBefore {
					t.Fatalf("the page posted %d positions before the fresh fix came, want %d", n, tc.sentBefore)
				}
				if l, _ := ls.tracker.Trail("d-1"); l != nil {
					t.Fatalf("the order shows a position measured %v before the pickup", time.Since(l.Update.At).Round(time.Second))
				}
				eval[bool](b, `(window.answer(), true)`)
				position(time.Now())
			}
			b.poll("the page says it shares", `document.getElementById('share-state').textContent === 'Sharing your location.'`)
			if shown := eval[bool](b, `!document.getElementById('share-error').hidden`); shown {
				t.Errorf("the page shows a problem: %q", eval[string](b, `document.getElementById('share-error').textContent`))
			}
		})
	}
}

// TestCourierPageAsksAgainAfterAPositionRefusedForAge: a position the server refuses for its
// age (422: the page misjudged it, say the phone's clock was set meanwhile) leaves the page
// neither stuck nor saying that sharing starts at the pickup: a phone standing still reports no
// newer fix, so the page asks the browser for a fresh one and sends that, and says it shares.
func TestCourierPageAsksAgainAfterAPositionRefusedForAge(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	var posts atomic.Int32
	base := frontProxy(t, ls.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if r.Method != "POST" || r.URL.Path != "/v1/couriers/c-1/location" || posts.Add(1) > 1 {
			return false
		}
		answerError(w, http.StatusUnprocessableEntity, "invalid_location", "at must not be older than 2m0s")
		return true
	})
	b := newBrowser(t)
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	holdFixes(b, 0, false)
	shareOnCourierPage(t, b, base)
	testutil.WaitFor(t, "the fresh position on the order's map", func() bool {
		l := ls.tracker.Latest(t.Context(), "d-1")
		return l != nil && l.Update.Lat == 52.52
	})
	b.poll("the page says it shares", `document.getElementById('share-state').textContent === 'Sharing your location.'`)
	if n, asked := posts.Load(), eval[int](b, `window.asked.length`); n != 2 || asked != 1 {
		t.Errorf("the page posted %d positions and asked for %d fresh fixes, want 2 (refused, fresh) and 1", n, asked)
	}
}

// noteConnectionStates makes each page the browser opens note every state its connection
// indicator takes, in window.states.
func noteConnectionStates(b *browser) {
	b.t.Helper()
	b.do("note the connection's states", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.states = [];
			addEventListener('DOMContentLoaded', () => {
				const conn = document.getElementById('conn');
				new MutationObserver(() => window.states.push(conn.dataset.state)).observe(conn, {attributes: true, attributeFilter: ['data-state']});
			});`,
		})
		return chromedp.Void{}, err
	})
}

// TestCourierPageIsNotLiveOnceACallFindsNoNetwork: a position post or a change that fails for
// want of a network marks the page's connection not live (reconnecting) at once, rather than
// leaving "live" in the header for the two and a half heartbeats its stream's watchdog gives a
// connection that died without a word; it is live again when the stream is heard. (The stream
// here stays up, heartbeating often: without the call's failure it would never be anything but
// live.)
func TestCourierPageIsNotLiveOnceACallFindsNoNetwork(t *testing.T) {
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: authority(t)}
		s.Heartbeat = 300 * time.Millisecond
	})
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	noteConnectionStates(b)
	restore, _ := b.failRequests(network.ErrorReasonInternetDisconnected, "*/v1/couriers/c-1/location", "*/v1/orders/d-1/status")
	shareOnCourierPage(t, b, ls.URL())
	reconnecting := func(what string) {
		t.Helper()
		b.poll(what+": the connection not live", `window.states.includes('reconnecting')`)
		b.poll(what+": the connection live again once the stream is heard", `window.states[window.states.length - 1] === 'live'`)
		eval[bool](b, `(window.states = [], true)`)
	}

	b.poll("the page says the position did not go", `document.getElementById('share-error').textContent === 'The server cannot be reached.'`)
	reconnecting("a position post without a network")

	b.do("stop sharing", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	row := `li.order[data-order-id="d-1"]`
	confirmStep(b, row, "delivered")
	b.waitFor(row + ` .row-error`)
	reconnecting("a change without a network")

	restore()
	confirmStep(b, row, "delivered")
	b.waitFor(row + `[data-status="delivered"]`)
}

// TestCourierPageResumesSharingAfterAReload: the courier's page remembers, in the browser, that
// the courier had sharing on: opened again (a reload, a phone that restarted) with the browser's
// permission granted, it turns sharing back on by itself and says so, and the customer's map
// goes on; with the permission yet to be asked for, it shows the toggle off and says that a tap
// resumes it, and asks the browser nothing without that tap. Turned off by hand, it is
// forgotten.
func TestCourierPageResumesSharingAfterAReload(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	b.do("count the page's asks for a position", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.geoAsks = 0;
			for (const name of ['watchPosition', 'getCurrentPosition']) {
				const f = navigator.geolocation[name].bind(navigator.geolocation);
				navigator.geolocation[name] = (...args) => (window.geoAsks++, f(...args));
			}`,
		})
		return chromedp.Void{}, err
	})
	shareOnCourierPage(t, b, ls.URL())
	b.waitFor(`#share-last`)
	pressed := func() string {
		t.Helper()
		return eval[string](b, `document.getElementById('share-toggle').getAttribute('aria-pressed')`)
	}
	// settled waits until the page has read the browser's permission as it opened, and has done
	// what it does with it: a query made after the page's is answered after it.
	settled := func() {
		t.Helper()
		b.waitFor(`li.order[data-order-id="d-1"]`)
		eval[bool](b, `navigator.permissions.query({name: 'geolocation'}).then(() => new Promise(ok => setTimeout(() => ok(true), 0)))`)
	}
	reload := func(what string) {
		t.Helper()
		b.do(what, chromedp.Reload())
		settled()
	}

	reload("reload the page, the permission granted")
	if got := pressed(); got != "true" {
		t.Fatalf("after a reload the toggle is pressed %s, want sharing on again by itself", got)
	}
	if got, want := eval[string](b, `document.getElementById('share-note').textContent`), "Sharing turned back on by itself: you had it on before this page was closed."; got != want {
		t.Errorf("the page says %q, want %q", got, want)
	}
	b.waitFor(`#share-last`) // a position went since the reload

	permitGeolocation(b, ls.URL(), cdpbrowser.PermissionSettingPrompt)
	reload("reload the page, the permission to be asked for")
	if got := pressed(); got != "false" {
		t.Errorf("with the permission to be asked for the toggle is pressed %s, want off until a tap", got)
	}
	if got, want := eval[string](b, `document.getElementById('share-note').textContent`), "You were sharing your location before this page was closed: tap Share my location to share it again."; got != want {
		t.Errorf("the page says %q, want %q", got, want)
	}
	if n := eval[int](b, `window.geoAsks`); n != 0 {
		t.Errorf("the page asked the browser for a position %d times without a tap", n)
	}

	permitGeolocation(b, ls.URL(), cdpbrowser.PermissionSettingGranted)
	b.do("share again", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	b.waitFor(`#share-last`)
	if shown := eval[bool](b, `!document.getElementById('share-note').hidden`); shown {
		t.Error("the note stays once the courier tapped")
	}
	b.do("stop sharing", chromedp.Click(chromedp.CSS(`#share-toggle`)))
	reload("reload the page after sharing was turned off")
	if got, note := pressed(), eval[bool](b, `!document.getElementById('share-note').hidden`); got != "false" || note {
		t.Errorf("after turning sharing off and a reload: pressed %s, a note shown %v; want off, no note", got, note)
	}
	if n := eval[int](b, `window.geoAsks`); n != 0 {
		t.Errorf("the page asked the browser for a position %d times once sharing was turned off", n)
	}
}

// TestCourierPageKeepsAStillPhoneOnTheMap: a phone standing still (a red light, a lobby) reports
// no fix, and a customer's map that hears nothing for 20 s says the courier is lost. So while a
// map shows the courier, the page asks the browser for a fix measured now once the newest is a
// while old (10 s; shortened here), and sends it with the time it was measured: the map keeps a
// fresh position of a courier who has not moved.
func TestCourierPageKeepsAStillPhoneOnTheMap(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	shortenTimings(b, `{stillMs: 300}`)
	holdFixes(b, 0, false)
	shareOnCourierPage(t, b, ls.URL())
	var first time.Time
	testutil.WaitFor(t, "the first position on the order's map", func() bool {
		if l := ls.tracker.Latest(t.Context(), "d-1"); l != nil {
			first = l.Update.At
		}
		return !first.IsZero()
	})
	testutil.WaitFor(t, "a position measured later, the phone not having moved", func() bool {
		l := ls.tracker.Latest(t.Context(), "d-1")
		return l != nil && l.Update.At.After(first) && l.Update.Lat == 52.52
	})
	if asked := eval[int](b, `window.asked.length`); asked == 0 {
		t.Error("the page sent a later position without asking the browser for one")
	}
	b.poll("the page says it shares", `document.getElementById('share-state').textContent === 'Sharing your location.'`)
}

// TestCourierPageSaysWhyAPositionIsOnNoMap: a position the server took but showed on no map says
// why in the server's words (missed), so that a courier whose phone's clock runs ahead, or whose
// fix is imprecise, is not told to pick an order up that it carries already.
func TestCourierPageSaysWhyAPositionIsOnNoMap(t *testing.T) {
	for missed, saying := range map[location.Missed]string{
		location.MissedNewerTaken: "the map has a newer position of yours",
		location.MissedStopped:    "an order has been out for hours; complete its delivery",
	} {
		t.Run(string(missed), func(t *testing.T) {
			ls, _ := newAuthLocationServer(t)
			courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
			base := frontProxy(t, ls.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
				if r.Method != "POST" || r.URL.Path != "/v1/couriers/c-1/location" {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"orders":0,"missed":"`+string(missed)+`"}`)
				return true
			})
			b := newBrowser(t)
			b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
			shareOnCourierPage(t, b, base)
			b.poll("the page says why the position is on no map", `document.getElementById('share-reach').textContent.includes('`+saying+`')`)
		})
	}
}
