package server_test

// The tests of what the pages tell a screen reader, and of what they show a reader who enlarged
// the text, that the accessibility audit against WCAG 2.2 AA asked for.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// TestCourierPageSaysAProblemOnce: the courier's problem line is an alert, which a screen reader
// reads out whenever it is written. With the server out of reach every post of a position fails
// with the same words, once a second: the line says them once, and is not written again.
func TestCourierPageSaysAProblemOnce(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	courierOrder(t, ls, "d-1", "c-1", ordercast.StatusOutForDelivery)
	b := newBrowser(t)
	recordFetches(b)
	shortenTimings(b, `{locationIntervalMs: 50}`)
	restore, _ := b.failRequests(network.ErrorReasonInternetDisconnected, "*/v1/couriers/c-1/location")
	defer restore()
	shareOnCourierPage(t, b, ls.URL())
	b.poll("the page says the position did not go", `document.getElementById('share-error').textContent === 'The server cannot be reached.'`)
	eval[bool](b, `(window.written = 0, new MutationObserver(ms => { window.written += ms.length; })
		.observe(document.getElementById('share-error'), {childList: true, characterData: true, subtree: true}), true)`)
	posts := `fetches.filter(f => f.startsWith('POST ') && f.endsWith('/v1/couriers/c-1/location')).length`
	from := eval[int](b, posts)
	b.poll("three more posts refused", posts+` >= `+strconv.Itoa(from+3))
	if n := eval[int](b, `window.written`); n != 0 {
		t.Errorf("three more posts refused alike wrote the alert %d times, want none: it says the same", n)
	}
}

// TestTheBarShowsItsTitleWhole: a party's page and the console are named by the title in their
// bar, their h1. On a phone, at the usual text size and larger, it is shown whole, within the
// screen: it wraps (between words, and anywhere in an id with no space) rather than being cut
// with an ellipsis, "Restaurant Luigi's T…", its whole only in a title attribute no touch screen
// shows; and the console's "as admin:console" stays within it.
func TestTheBarShowsItsTitleWhole(t *testing.T) {
	long := strings.Repeat("r", 64)
	ts := newAuthServer(t, func(s *server.Server) {
		s.Auth.ConsoleToken = true // the demo's pages: tokens of their own, the console's as admin:console
		s.PartyLinks = []server.PartyLink{{Party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}, Name: "Luigi's Trattoria"}}
	})
	b := newBrowser(t)
	for _, page := range []struct{ path, title string }{
		{"/restaurants/r-1", "Restaurant Luigi's Trattoria"},
		{"/restaurants/" + long, "Restaurant " + long},
		{"/console", "Console as admin:console"},
	} {
		for _, size := range []string{"16px", "32px", "40px"} {
			b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
			b.do("open "+page.path, chromedp.Navigate(ts.URL()+page.path))
			b.waitFor(`#conn[data-state="live"]`)
			eval[string](b, `document.documentElement.style.fontSize = '`+size+`'`)
			if got := eval[string](b, `document.querySelector('h1.bar-title').textContent`); got != page.title {
				t.Fatalf("%s: the title says %q, want %q", page.path, got, page.title)
			}
			// Every line of the title's text within the h1's box and the screen, and nothing in it
			// scrolled away (cut).
			cut := eval[[]string](b, `(() => {
				const h = document.querySelector('h1.bar-title'), box = h.getBoundingClientRect(), edge = document.documentElement.clientWidth, out = [];
				if (h.scrollWidth > h.clientWidth + 1 || h.scrollHeight > h.clientHeight + 1) out.push('the h1 scrolls ' + h.scrollWidth + 'x' + h.scrollHeight + ' in ' + h.clientWidth + 'x' + h.clientHeight);
				const r = document.createRange();
				r.selectNodeContents(h);
				for (const c of r.getClientRects()) {
					if (c.width > 0 && (c.left < box.left - 0.5 || c.right > box.right + 0.5 || c.right > edge + 0.5)) out.push('text at ' + Math.round(c.left) + '..' + Math.round(c.right) + ' outside ' + Math.round(box.left) + '..' + Math.round(box.right));
				}
				for (const e of h.querySelectorAll('*')) {
					const c = e.getBoundingClientRect();
					if (c.right > box.right + 0.5) out.push(e.className + ' past the title by ' + Math.round(c.right - box.right) + ' px');
				}
				return out;
			})()`)
			if len(cut) > 0 {
				t.Errorf("%s at %s text on a phone: the title is not whole: %s", page.path, size, strings.Join(cut, "; "))
			}
			if title := eval[string](b, `document.querySelector('h1.bar-title').title`); title != "" {
				t.Errorf("%s: the h1 has a title attribute %q: it is shown whole, and read twice", page.path, title)
			}
			screenshots(b, "bar-title-"+size+strings.ReplaceAll(page.path, "/", "-"))
		}
	}
}

// TestFormFieldsAreSeenAndLabelled: a field's border contrasts 3:1 with the field and with what
// is around it, so that an empty field is seen to be there (WCAG 1.4.11), and its placeholder
// 4.5:1 with the field, in the light scheme and the dark; and a board's courier field has a word
// of its own beside it, "Courier", which its name starts with (a placeholder is gone once typed
// over), as has the courier's name field, "Name", once it shows.
func TestFormFieldsAreSeenAndLabelled(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) { s.Auth.ConsoleToken = true })
	mustCall(t, "POST", ts.URL()+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"), `{"id":"o-field","restaurant_id":"r-1"}`, http.StatusCreated)
	b := newBrowser(t)
	// The field's colours: its border's, its own background's, its placeholder's, and the first
	// opaque background around it.
	look := `(f => {
		const s = getComputedStyle(f), around = e => {
			for (e = e.parentElement; e; e = e.parentElement) {
				const bg = getComputedStyle(e).backgroundColor;
				if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg;
			}
			return 'rgb(255, 255, 255)';
		};
		return [s.borderTopColor, s.backgroundColor, getComputedStyle(f, '::placeholder').color, around(f)];
	})`
	for _, scheme := range []string{"light", "dark"} {
		emulateMedia(b, "prefers-color-scheme", scheme)
		for _, page := range []struct{ path, ready, fields string }{
			{"/restaurants/r-1", `li.order[data-order-id="o-field"] .courier`, `li.order[data-order-id="o-field"] .courier, li.order[data-order-id="o-field"] .pick`},
			{"/console", `#create input[name="id"]`, `#create input[name="id"], #create input[name="customer_id"], #create input[name="items"]`},
		} {
			b.do("open "+page.path, chromedp.Navigate(ts.URL()+page.path))
			b.waitFor(page.ready)
			for _, c := range eval[[][4]string](b, `Array.from(document.querySelectorAll('`+page.fields+`')).map(`+look+`)`) {
				if got := contrast(t, c[0], c[1]); got < 3 {
					t.Errorf("%s, %s: a field's border %s on the field's %s is %.2f:1, want 3:1", page.path, scheme, c[0], c[1], got)
				}
				if got := contrast(t, c[0], c[3]); got < 3 {
					t.Errorf("%s, %s: a field's border %s on the %s around it is %.2f:1, want 3:1", page.path, scheme, c[0], c[3], got)
				}
				if got := contrast(t, c[2], c[1]); got < 4.5 {
					t.Errorf("%s, %s: a field's placeholder %s on the field's %s is %.2f:1, want 4.5:1", page.path, scheme, c[2], c[1], got)
				}
			}
		}
	}

	// The courier's fields say what they are, in words on the screen beside them.
	label := func(sel string) string {
		t.Helper()
		return eval[string](b, `(f => {
			const l = f.labels && f.labels[0];
			if (!l || !l.checkVisibility()) return 'no label shown';
			const r = l.getBoundingClientRect();
			if (r.width < 2 || r.height < 2) return 'a label hidden to the eye';
			return l.textContent.trim() + ' | ' + f.getAttribute('aria-label');
		})(document.querySelector('`+sel+`'))`)
	}
	b.do("open the board", chromedp.Navigate(ts.URL()+"/restaurants/r-1"))
	row := `li.order[data-order-id="o-field"]`
	b.waitFor(row + ` .courier`)
	if got, want := label(row+` .courier`), "Courier | Courier for order o-field"; got != want {
		t.Errorf("the courier field's label and name are %q, want %q", got, want)
	}
	b.do("type a courier", chromedp.SendKeys(chromedp.CSS(row+` .courier`), "c-7"))
	b.waitFor(row + ` .courier-name`)
	if got, want := label(row+` .courier-name`), "Name | Name of the courier for order o-field, as its customer will read it"; got != want {
		t.Errorf("the courier's name field's label and name are %q, want %q", got, want)
	}
	screenshots(b, "board-courier-labels")
}

// TestTrackingPageAnnouncesWhyItWasCancelled: why an order was cancelled, and what to do, is said
// through a live region rendered from the start: one that comes out of display:none already
// filled, as the box under the status line does, is not reliably read.
func TestTrackingPageAnnouncesWhyItWasCancelled(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	if code, got := do(t, "POST", base+"/v1/orders", "application/json", `{"id":"o-why","details":{"restaurant":"Luigi's"}}`); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, got)
	}
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-why"))
	b.waitFor(`#status-line[data-status="placed"]`)
	// The region that will say the reason, and whether it and everything around it is rendered.
	region := `(r => !r ? 'no live region' : (e => { for (; e; e = e.parentElement) if (getComputedStyle(e).display === 'none') return 'not rendered: ' + (e.id || e.tagName); return 'rendered: ' + r.textContent.trim(); })(r))(document.getElementById('cancel-reason').closest('[aria-live]'))`
	if got := eval[string](b, region); got != "rendered: " {
		t.Errorf("before the cancellation the live region that will say why is %q, want rendered and empty", got)
	}
	if code, got := do(t, "POST", base+"/v1/orders/o-why/status", "application/json", `{"status":"cancelled","note":"Out of stock"}`); code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, got)
	}
	b.waitFor(`#cancelled`)
	if got, want := eval[string](b, region), "rendered: Reason: Out of stock."; !strings.HasPrefix(got, want) {
		t.Errorf("cancelled, the live region is %q, want it to start %q", got, want)
	}
}

// TestTrackingMapSaysAtOnceWhatCannotWait: the map tells a screen reader a new ETA at most once a
// minute, but not that the courier's location is back once it was said to be lost, nor that the
// courier is under a minute away: a minute's wait left "Location lost." standing while the screen
// said "Arriving in about 3 min", then "under a minute". Both are said at once.
func TestTrackingMapSaysAtOnceWhatCannotWait(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, tr *location.Tracker) {
		s.Retry = testRetry
		s.LocationInterval = 0
		// Heartbeats often: the stream is heard by the page's shifted clock soon after it moves
		// (the map judges a courier lost only while the page hears its stream).
		s.Heartbeat = 200 * time.Millisecond
		tr.ETA.NearbyM = 0 // nothing "nearby": it is said at once anyway, and would say nothing of the ETA
	})
	base := ls.URL()
	said := `document.getElementById('map-announce').textContent`
	// post sends courier's fix at lat, on the drop-off's meridian (the drop-off is at 52.5290,
	// 13.4190), taken now at 7 m/s.
	post := func(courier string, lat float64) {
		t.Helper()
		body := fmt.Sprintf(`{"lat":%v,"lng":13.4190,"speed_mps":7,"at":%q}`, lat, time.Now().Format(time.RFC3339Nano))
		if code, res := postLocation(t, base, courier, "", body); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, res)
		}
	}

	// Lost, then back within the minute.
	ls.onTheRoad(t, "o-back")
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-back"))
	b.waitFor(`#conn[data-state="live"]`)
	post("c-1", 52.5140) // 1.7 km away: minutes
	b.poll("the first ETA said", said+`.startsWith('Arriving in about ')`)
	eval[bool](b, `(window.realNow = Date.now, Date.now = () => realNow() + 30000, true)`) // half a minute without a fix
	b.poll("the location lost", said+` === 'Location lost.'`)
	eval[bool](b, `(Date.now = realNow, true)`)
	post("c-1", 52.5150)
	b.poll("the location said to be back, with the ETA, at once", said+`.startsWith('Location back. Arriving in about ')`)

	// Into the last minute.
	if _, err := (&client.Client{BaseURL: base}).CreateOrder(t.Context(), client.CreateOrderRequest{
		ID: "o-soon", Pickup: api.PlaceAt(52.5200, 13.4050), Dropoff: api.PlaceAt(52.5290, 13.4190),
	}); err != nil {
		t.Fatal(err)
	}
	ls.assign(t, "o-soon", "c-2")
	ls.mustCommit(t, "o-soon", ordercast.StatusOutForDelivery)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-soon"))
	b.waitFor(`#conn[data-state="live"]`)
	post("c-2", 52.52552) // 387 m at 7 m/s: 72 s with the route's detour
	b.poll("the first ETA said", said+` === 'Arriving in about 1 minute.'`)
	eval[bool](b, `(window.realNow = Date.now, Date.now = () => realNow() + 15000, true)`) // 15 s on: 57 s left at most, the fix not lost
	b.poll("under a minute said at once", said+` === 'Arriving in under a minute.'`)
}

// accessibleDescription is the accessible description Chromium computes for the element that
// the JavaScript expression expr gives, as a screen reader is told it.
func accessibleDescription(b *browser, expr string) string {
	b.t.Helper()
	var desc string
	b.do("read the accessible description of "+expr, func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		obj, err := cdp.Call(ctx, tgt, runtime.Evaluate, runtime.EvaluateParams{Expression: expr})
		if err != nil {
			return chromedp.Void{}, err
		}
		if obj.Result == nil || obj.Result.ObjectID == "" {
			return chromedp.Void{}, fmt.Errorf("%s is no element", expr)
		}
		alone := false
		tree, err := cdp.Call(ctx, tgt, accessibility.GetPartialAXTree, accessibility.GetPartialAXTreeParams{ObjectID: obj.Result.ObjectID, FetchRelatives: &alone})
		if err != nil {
			return chromedp.Void{}, err
		}
		if len(tree.Nodes) == 0 || tree.Nodes[0].Description == nil {
			return chromedp.Void{}, nil
		}
		return chromedp.Void{}, json.Unmarshal(tree.Nodes[0].Description.Value, &desc)
	})
	return desc
}

// TestTrackingMapDescribesWhereTheCourierIs: the map's label names what it draws and never
// changes; its description is what the map says beside it in words, as it shows now: the ETA,
// then, the courier lost, that (and no ETA, which is hidden).
func TestTrackingMapDescribesWhereTheCourierIs(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.Retry = testRetry
		s.LocationInterval = 0
	})
	base := ls.URL()
	ls.onTheRoad(t, "o-desc")
	postFixNow(t, base, "c-1", 52.5140, 13.4190) // 1.7 km from the drop-off: minutes
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-desc"))
	b.waitFor(`#map-courier[data-lat="52.514"]`)
	svg := `document.getElementById('map-view')`
	if got := accessibleDescription(b, svg); !regexp.MustCompile(`^Arriving in about \d+ min$`).MatchString(got) {
		t.Errorf("the map's description is %q, want its ETA", got)
	}
	eval[bool](b, `(now => { Date.now = () => now() + 30000; return true; })(Date.now)`) // half a minute without a fix
	b.waitFor(`#lost`)
	b.poll("the description follows", svg+`.getAttribute('aria-describedby') === 'lost'`)
	if got := accessibleDescription(b, svg); !strings.HasPrefix(got, "Location lost") && !strings.HasPrefix(got, "Reconnecting") {
		t.Errorf("the courier lost, the map's description is %q, want it to say so", got)
	}
}

// TestConnectionIndicatorSaysWhatItIs: the header's connection indicator is a status region, and
// tells a screen reader what it is about ("Connection: reconnecting", not a bare word), but not
// that the page connects and is live as it opens, which every page does: it speaks from then on.
func TestConnectionIndicatorSaysWhatItIs(t *testing.T) {
	srv := startPageServer(t)
	b := newBrowser(t)
	// Every change of the indicator's words, with whether the region spoke it then.
	b.do("note what the indicator says", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.said = [];
			addEventListener('DOMContentLoaded', () => {
				const conn = document.getElementById('conn');
				new MutationObserver(() => window.said.push(conn.textContent + (conn.getAttribute('role') === 'status' && conn.getAttribute('aria-live') !== 'off' ? ' (spoken)' : ' (quiet)')))
					.observe(conn, {childList: true, characterData: true, subtree: true});
			});`,
		})
		return chromedp.Void{}, err
	})
	srv.createOrder("o-conn")
	for _, path := range []string{"/console", "/track/o-conn", "/"} {
		b.do("open "+path, chromedp.Navigate(srv.url+path))
		b.waitFor(`#conn[data-state="live"]`)
		// The prefix is for the ear: on the screen it is one pixel, clipped.
		if got := eval[string](b, `(c => c.textContent + ' / ' + Array.from(c.children).filter(e => e.getBoundingClientRect().width > 1).map(e => e.textContent).join(''))(document.getElementById('conn'))`); got != "Connection: live / live" {
			t.Errorf("%s: the indicator reads %q, want \"Connection: live\" to a screen reader, \"live\" on the screen", path, got)
		}
		if got := eval[string](b, `said.join(', ')`); got != "Connection: live (quiet)" {
			t.Errorf("%s: opening, the indicator said %q, want the first live quiet", path, got)
		}
	}
	eval[bool](b, `(window.said = [], true)`)
	srv.stop()
	b.waitFor(`#conn[data-state="reconnecting"]`)
	srv.start()
	b.waitFor(`#conn[data-state="live"]`)
	if got := eval[string](b, `said.join(', ')`); got != "Connection: reconnecting (spoken), Connection: live (spoken)" {
		t.Errorf("a stream that dropped and came back: the indicator said %q, want both spoken", got)
	}
}

// TestTrackingStepperSaysWhichStepsAreDone: the stepper shows which steps are done by its dots'
// colour, which a screen reader cannot see: it says so in words, "done" and "not yet" (the
// current step is aria-current; a skipped one says "skipped" on the screen).
func TestTrackingStepperSaysWhichStepsAreDone(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-steps")
	srv.setStatus("o-steps", ordercast.StatusPreparing, "")
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-steps"))
	b.waitFor(`#stepper li[data-status="preparing"][aria-current="step"]`)
	got := eval[string](b, `Array.from(document.querySelectorAll('#stepper .step-name')).map(s => s.textContent).join(' | ')`)
	if want := "Placed: done | Confirmed | Preparing | Ready: not yet | Out for delivery: not yet | Delivered: not yet"; got != want {
		t.Errorf("the stepper's steps read %q, want %q", got, want)
	}
	if shown := eval[string](b, `Array.from(document.querySelectorAll('#stepper .step-name')).map(s => s.innerText.split(':')[0].trim()).join(' | ')`); shown != "Placed | Confirmed | Preparing | Ready | Out for delivery | Delivered" {
		t.Errorf("on the screen the steps read %q", shown)
	}
}

// TestBoardAssignsOnEnter: Enter in a board's courier field assigns the courier, as it submits a
// form, and so does Enter in the courier's name field.
func TestBoardAssignsOnEnter(t *testing.T) {
	ts := newAuthServer(t, func(s *server.Server) { s.Auth.ConsoleToken = true })
	mustCall(t, "POST", ts.URL()+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"), `{"id":"o-enter","restaurant_id":"r-1"}`, http.StatusCreated)
	b := newBrowser(t)
	row := `li.order[data-order-id="o-enter"]`
	b.do("open the board", chromedp.Navigate(ts.URL()+"/restaurants/r-1"))
	b.waitFor(row + ` .courier:not([disabled])`)
	b.do("type a courier and Enter", chromedp.SendKeys(chromedp.CSS(row+` .courier`), "c-7"), chromedp.KeyEvent("\r"))
	b.waitFor(row + `[data-courier="c-7"]`)
	b.do("type another, name it, and Enter", chromedp.SendKeys(chromedp.CSS(row+` .courier`), "\b\b\bc-9"))
	b.waitFor(row + ` .courier-name`)
	b.do("name it and Enter", chromedp.SendKeys(chromedp.CSS(row+` .courier-name`), "Ama"), chromedp.KeyEvent("\r"))
	b.waitFor(row + `[data-courier="c-9"]`)
	if o, err := ts.store.Order(t.Context(), "o-enter"); err != nil || o.CourierID != "c-9" || o.CourierName != "Ama" {
		t.Errorf("the store has the courier %q named %q (%v), want c-9, Ama", o.CourierID, o.CourierName, err)
	}
}

// TestHomePageIsTitled: the home page's title names it, as its heading does, not the product alone.
func TestHomePageIsTitled(t *testing.T) {
	ts := newServer(t, nil)
	if code, body := do(t, "GET", ts.URL()+"/", "", ""); code != http.StatusOK || !strings.Contains(string(body), "<title>Live order tracking · ordercast</title>") {
		t.Errorf("GET /: %d, want the title to name the page: %.300s", code, body)
	}
}
