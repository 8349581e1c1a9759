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
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

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
	passTime(b, 30*time.Second) // half a minute without a fix
	b.poll("the location lost", said+` === 'Location lost.'`)
	passTime(b, -30*time.Second)
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
	passTime(b, 15*time.Second) // 15 s on: 57 s left at most, the fix not lost
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
	ls := newMapServer(t)
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
	passTime(b, 30*time.Second) // half a minute without a fix
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

// holdKey presses the key r as a key held down repeats it: a keydown marked as a repeat
// (KeyboardEvent.repeat), then its keyup.
func holdKey(b *browser, r rune) {
	b.t.Helper()
	b.do("hold a key down", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		repeat := true
		for _, ev := range kb.Encode(r) {
			if ev.Type != input.DispatchKeyEventTypeKeyUp {
				ev.AutoRepeat = &repeat
			}
			if _, err := cdp.Call(ctx, tgt, input.DispatchKeyEvent, *ev); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	})
}

// TestAKeyboardPressOnAMovedRowIsTaken: a row that moved (a new order came in above it) takes no
// tap for a moment, since a finger aimed at it lands on another order's button; but the
// keyboard's focus stays on the button it was on, wherever the row goes, so Enter there is
// taken. A button whose own words changed still makes Enter wait, and so does a held key's
// repeat: each press ignored says so, as does a tap ignored on a row that moved.
func TestAKeyboardPressOnAMovedRowIsTaken(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-1")
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	prompt := `document.getElementById('prompt').textContent`
	b := newBrowser(t)
	recordFetches(b)
	shortenTimings(b, `{settleMs: 60000}`) // settled stays so until looked at
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("o-1") + `[data-status="placed"] .advance:not([data-settling])`)
	b.do("focus o-1's Advance", chromedp.Focus(chromedp.CSS(row("o-1")+` .advance`)))

	// o-2 comes in on top, and o-1 moves under the keyboard's focus: Enter takes o-1's step.
	srv.createOrder("o-2")
	b.waitFor(row("o-1") + ` .advance[data-settling="moved"]`)
	b.do("Enter on o-1's Advance as it moved", chromedp.KeyEvent("\r"))
	b.waitFor(row("o-1") + `[data-status="confirmed"]`)
	if o := srv.order("o-1"); o.Status != ordercast.StatusConfirmed || o.Version != 2 {
		t.Errorf("after Enter on a row that moved o-1 is %s at %d, want confirmed at 2", o.Status, o.Version)
	}

	// Its words changed ("Advance to Preparing"): the next Enter, meant for the step just taken,
	// takes nothing, and says so.
	b.waitFor(row("o-1") + ` .advance[data-settling="words"]:not([aria-disabled])`)
	b.do("Enter again at once", chromedp.KeyEvent("\r"))
	b.poll("the ignored Enter said", prompt+` === 'Nothing was done: the button just changed to Advance to Preparing. Press again to do that.'`)
	if n := statusPosts(b, "o-1"); n != 1 {
		t.Errorf("Enter on a button whose words just changed: %d changes sent in all, want the first", n)
	}

	// A key held down: its repeats press nothing, and say so.
	srv.createOrder("o-3")
	b.waitFor(row("o-3") + ` .advance:not([data-settling])`) // new to the list: not settling
	b.do("focus o-3's Advance", chromedp.Focus(chromedp.CSS(row("o-3")+` .advance`)))
	holdKey(b, '\r')
	b.poll("the held key said", prompt+` === 'The key is held down: nothing more was done.'`)
	if n := statusPosts(b, "o-3"); n != 0 {
		t.Errorf("a held key's repeat sent %d changes of o-3", n)
	}

	// A finger's tap on o-2, which o-3 moved: ignored, and said.
	eval[bool](b, `(`+fingerTap+`(document.querySelector('`+row("o-2")+` .advance')), true)`)
	if got := eval[string](b, prompt); got != "The list moved; nothing was done. Press again." {
		t.Errorf("a tap on a row that moved: the prompt says %q", got)
	}
	if n := statusPosts(b, "o-2"); n != 0 {
		t.Errorf("a tap on a row that moved sent %d changes", n)
	}
}

// TestAQuestionStandsWhileTheKeyboardIsOnIt: a button that asks for a second press ("Confirm
// cancel", a courier's "Confirm pickup") stood five seconds, most of which a screen reader took
// to read the question and the button's new name. While the keyboard's focus is on it, or on the
// cancel's reasons, it stands however long that takes (here many times its time, shortened); it
// ends, unanswered and said to be, when the focus leaves them, or on Escape. Its prompt names
// the order by whose it is, not by a long id.
func TestAQuestionStandsWhileTheKeyboardIsOnIt(t *testing.T) {
	srv := startPageServer(t)
	for _, id := range []string{"o-keep", "o-esc", "o-away"} {
		srv.createOrder(id)
	}
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	prompt := `document.getElementById('prompt').textContent`
	confirmMs := 200
	b := newBrowser(t)
	recordFetches(b)
	shortenTimings(b, `{confirmMs: `+strconv.Itoa(confirmMs)+`, settleMs: 50}`)
	// waitOut lets the question's time pass several times over.
	waitOut := func() {
		t.Helper()
		eval[bool](b, `new Promise(ok => setTimeout(() => ok(true), `+strconv.Itoa(5*confirmMs)+`))`)
	}
	confirming := func(id string) bool {
		t.Helper()
		return eval[bool](b, `document.querySelector('`+row(id)+` .cancel').hasAttribute('data-confirming')`)
	}
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("o-away") + ` .cancel:not([data-settling])`)

	// Asked from the keyboard, the question stands while the focus is on Cancel, then on its
	// reasons; a reason chosen from the keyboard, and Cancel pressed again, cancels.
	b.do("Cancel from the keyboard", chromedp.Focus(chromedp.CSS(row("o-keep")+` .cancel`)), chromedp.KeyEvent("\r"))
	b.waitFor(row("o-keep") + ` .cancel[data-confirming]`)
	if got, want := eval[string](b, prompt), "Press again to cancel order o-keep from Luigi's, or choose why first."; got != want {
		t.Errorf("the question says %q, want %q", got, want)
	}
	waitOut()
	if !confirming("o-keep") {
		t.Fatal("the question went while the keyboard's focus was on Cancel")
	}
	b.do("Tab to the reasons, choose the first", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.ArrowDown))
	if got := eval[string](b, `document.activeElement.className + ' ' + document.activeElement.value`); got != "cancel-why Out of stock" {
		t.Fatalf("after Tab and the down arrow the focus is on %q, want the reasons, Out of stock chosen", got)
	}
	waitOut()
	if !confirming("o-keep") {
		t.Fatal("the question went while the keyboard's focus was on its reasons")
	}
	b.do("back to Cancel, and press it", chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(kb.ModifierShift)), chromedp.KeyEvent("\r"))
	b.waitFor(row("o-keep") + `[data-status="cancelled"]`)
	if evs := srv.events("o-keep"); evs[len(evs)-1].Note != "Out of stock" {
		t.Errorf("the cancel's note is %q, want the reason chosen", evs[len(evs)-1].Note)
	}

	// Escape ends it, the focus staying on Cancel.
	b.do("Cancel from the keyboard", chromedp.Focus(chromedp.CSS(row("o-esc")+` .cancel`)), chromedp.KeyEvent("\r"))
	b.waitFor(row("o-esc") + ` .cancel[data-confirming]`)
	b.do("Escape", chromedp.KeyEvent(kb.Escape))
	b.waitFor(row("o-esc") + ` .cancel:not([data-confirming])`)
	if got, want := eval[string](b, prompt), "Order o-esc from Luigi's not cancelled."; got != want {
		t.Errorf("after Escape the prompt says %q, want %q", got, want)
	}
	if !eval[bool](b, `document.activeElement === document.querySelector('`+row("o-esc")+` .cancel')`) {
		t.Error("after Escape the focus left Cancel")
	}

	// The focus leaving it ends it.
	b.do("Cancel from the keyboard", chromedp.Focus(chromedp.CSS(row("o-away")+` .cancel`)), chromedp.KeyEvent("\r"))
	b.waitFor(row("o-away") + ` .cancel[data-confirming]`)
	b.do("focus elsewhere", chromedp.Focus(chromedp.CSS(row("o-away")+` .advance`)))
	b.waitFor(row("o-away") + ` .cancel:not([data-confirming])`)
	if got, want := eval[string](b, prompt), "Order o-away from Luigi's not cancelled."; got != want {
		t.Errorf("after the focus left the prompt says %q, want %q", got, want)
	}
	for _, id := range []string{"o-esc", "o-away"} {
		if n := statusPosts(b, id); n != 0 {
			t.Errorf("%s: a question unanswered sent %d changes", id, n)
		}
	}
}

// TestACourierStepStandsWhileTheKeyboardIsOnIt: so does a courier's "Confirm pickup", and its
// prompt names the order by its restaurant.
func TestACourierStepStandsWhileTheKeyboardIsOnIt(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	createCourierOrder(t, ls, "d-1", "c-1", ordercast.StatusReady)
	row := `li.order[data-order-id="d-1"]`
	b := newBrowser(t)
	shortenTimings(b, `{confirmMs: 200, settleMs: 50}`)
	b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(row + `[data-status="ready"] .advance:not([data-settling])`)
	b.do("Pick up from the keyboard", chromedp.Focus(chromedp.CSS(row+` .advance`)), chromedp.KeyEvent("\r"))
	b.waitFor(row + ` .advance[data-confirming]`)
	if got, want := eval[string](b, `document.getElementById('prompt').textContent`), "Press again to confirm the pickup of order d-1 from Luigi's Trattoria."; got != want {
		t.Errorf("the question says %q, want %q", got, want)
	}
	eval[bool](b, `new Promise(ok => setTimeout(() => ok(true), 1000))`) // five times its time
	if !eval[bool](b, `document.querySelector('`+row+` .advance').hasAttribute('data-confirming')`) {
		t.Fatal("the question went while the keyboard's focus was on it")
	}
	b.do("confirm from the keyboard", chromedp.KeyEvent("\r"))
	b.waitFor(row + `[data-status="out_for_delivery"]`)
}

// TestConsoleAnnouncesWhatItsReaderChose: a busy console said every change of every order through
// its live region, each order by its long id: fifty sentences a minute. Its reader chooses what
// is said ("Announce to screen readers", remembered in this browser): at first the results of
// their own changes and the new orders; or every change, a burst of them counted rather than read
// out; or nothing. Orders are named by whose they are and the end of their id.
func TestConsoleAnnouncesWhatItsReaderChose(t *testing.T) {
	srv := startPageServer(t)
	for _, id := range []string{"o-mine", "o-theirs", "o-gone", "o-b1", "o-b2", "o-b3", "o-b4"} {
		srv.createOrder(id)
	}
	b := newBrowser(t)
	b.do("note what the live region says", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.heard = [];
			addEventListener('DOMContentLoaded', () => {
				const region = document.getElementById('announce');
				new MutationObserver(() => { if (region.textContent) window.heard.push(region.textContent); })
					.observe(region, {childList: true, characterData: true, subtree: true});
			});`,
		})
		return chromedp.Void{}, err
	})
	row := func(id string) string { return `li.order[data-order-id="` + id + `"]` }
	heard := func() string { return eval[string](b, `heard.join(' | ')`) }
	choose := func(mode string) {
		t.Helper()
		b.do("announce "+mode, chromedp.Click(chromedp.CSS(`#announce-mode input[value="`+mode+`"]`)))
	}
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("o-b4"))
	if got := eval[string](b, `(f => f.querySelector('legend').textContent + ' ' + f.querySelector('input:checked').parentNode.textContent.trim())(document.getElementById('announce-mode'))`); got != "Announce to screen readers: my changes, new orders and cancellations" {
		t.Errorf("the announcements' choice reads %q, want the reader's own changes, new orders and cancellations at first", got)
	}

	// At first: another's change says nothing; a new order, and the reader's own change, do.
	srv.setStatus("o-theirs", ordercast.StatusConfirmed, "")
	b.waitFor(row("o-theirs") + `[data-status="confirmed"]`)
	res, err := srv.api.CreateOrder(t.Context(), client.CreateOrderRequest{Details: json.RawMessage(`{"restaurant":"Luigi's"}`)})
	if err != nil {
		t.Fatal(err)
	}
	gen := res.Order.ID // generated: "ord-" and 28 letters
	b.poll("the new order said", `heard.includes("New order `+gen[len(gen)-4:]+` from Luigi's.")`)
	b.tap("advance o-mine", row("o-mine")+` .advance`)
	b.poll("the reader's own change said", `heard.includes("Order o-mine from Luigi's is now Confirmed.")`)
	if got := heard(); strings.Contains(got, "o-theirs") || strings.Contains(got, gen) {
		t.Errorf("the live region said %q: another's change, or an order's whole generated id", got)
	}
	// But another's cancellation is said: a kitchen must hear that an order it cooks is off.
	srv.setStatus("o-gone", ordercast.StatusCancelled, "")
	b.poll("another's cancellation said", `heard.includes("Order o-gone from Luigi's is now Cancelled.")`)

	// Every change, remembered across a reload; a burst counted.
	choose("all")
	b.do("reload", chromedp.Reload())
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row("o-b4"))
	if got := eval[string](b, `document.querySelector('#announce-mode input:checked').value`); got != "all" {
		t.Errorf("reloaded, the choice is %q, want the reader's, all", got)
	}
	srv.setStatus("o-theirs", ordercast.StatusPreparing, "")
	b.poll("another's change said", `heard.includes("Order o-theirs from Luigi's is now Preparing.")`)
	// Four changes come together, as an integration's batch.
	eval[bool](b, `(heard.length = 0, true)`)
	var batch []client.OrderStatusChange
	for _, id := range []string{"o-b1", "o-b2", "o-b3", "o-b4"} {
		batch = append(batch, client.OrderStatusChange{OrderID: id, SetStatusRequest: client.SetStatusRequest{Status: ordercast.StatusConfirmed}})
	}
	if res, err := srv.api.SetStatuses(t.Context(), batch); err != nil || res.Accepted != 4 {
		t.Fatalf("the batch: %+v, %v", res, err)
	}
	b.waitFor(row("o-b4") + `[data-status="confirmed"]`)
	b.poll("the burst counted", `heard.some(s => /^\d orders changed\.$/.test(s))`)
	if n := eval[int](b, `heard.join(' ').split(' is now Confirmed.').length - 1`); n > MergeOver {
		t.Errorf("a burst of four changes: %d said one by one (%s), want at most %d, the rest counted", n, heard(), MergeOver)
	}

	// Nothing: not even the reader's own change.
	choose("off")
	eval[bool](b, `(heard.length = 0, true)`)
	b.tap("advance o-mine", row("o-mine")+` .advance`)
	b.waitFor(row("o-mine") + `[data-status="preparing"]`)
	b.waitFor(row("o-mine") + ` .advance:not([aria-disabled])`) // the answer came, and was not said
	if got := heard(); got != "" {
		t.Errorf("with nothing chosen, the live region said %q", got)
	}

	// A restaurant's board chooses too; a courier's and a customer's pages, whose orders are
	// all their own, say every change.
	for path, want := range map[string]bool{"/restaurants/r-1": true, "/couriers/c-1": false, "/customers/u-1": false} {
		b.do("open "+path, chromedp.Navigate(srv.url+path))
		b.waitFor(`#orders-heading`)
		if got := eval[bool](b, `!!document.getElementById('announce-mode')`); got != want {
			t.Errorf("%s offers the announcements' choices: %v, want %v", path, got, want)
		}
	}
}

// MergeOver is how many changes of a burst the console says one by one (console.js MERGE_OVER).
const MergeOver = 2

// TestStopLinksAreNamedAsTheyRead: a courier's links to a stop's map show the stop's coordinates;
// their name, which says where the link goes, starts with them, as a voice command says them.
func TestStopLinksAreNamedAsTheyRead(t *testing.T) {
	ls, _ := newAuthLocationServer(t)
	createCourierOrder(t, ls, "d-1", "c-1", ordercast.StatusReady)
	b := newBrowser(t)
	b.do("open the courier's page", chromedp.Navigate(ls.URL()+"/couriers/c-1?token="+actorToken(t, auth.RoleCourier, "c-1")))
	b.waitFor(`li.order[data-order-id="d-1"] .stop-map`)
	got := eval[[]string](b, `Array.from(document.querySelectorAll('li.order[data-order-id="d-1"] .stop-map')).map(a => a.textContent + ' | ' + a.getAttribute('aria-label'))`)
	want := []string{
		"52.52020, 13.40700 | 52.52020, 13.40700: map of Luigi's Trattoria, in a new tab",
		"52.52470, 13.41060 | 52.52470, 13.41060: map of Ana, in a new tab",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the stops' links read and are named %q, want %q", got, want)
	}
}

// TestTrackingMapSaysTheMinutesItShows: the ETA a screen reader hears is the one shown beside the
// map, in the same whole minutes ("Arriving in about 13 minutes" where it said 15, its fives),
// while it is said again only when its fives change (TestTrackingMapSaysAtOnceWhatCannotWait).
func TestTrackingMapSaysTheMinutesItShows(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, tr *location.Tracker) {
		s.LocationInterval = 0
		tr.ETA.NearbyM = 0
	})
	base := ls.URL()
	ls.onTheRoad(t, "o-far")
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-far"))
	b.waitFor(`#conn[data-state="live"]`)
	// 4.2 km south of the drop-off (52.5290, 13.4190) at 7 m/s: 13 minutes with the streets' detour.
	body := fmt.Sprintf(`{"lat":52.4912,"lng":13.4190,"speed_mps":7,"at":%q}`, time.Now().Format(time.RFC3339Nano))
	if code, res := postLocation(t, base, "c-1", "", body); code != http.StatusOK {
		t.Fatalf("post: %d %s", code, res)
	}
	b.poll("the ETA said", `document.getElementById('map-announce').textContent.startsWith('Arriving in about ')`)
	said, shown := eval[string](b, `document.getElementById('map-announce').textContent`), eval[string](b, `document.getElementById('eta').textContent`)
	m := regexp.MustCompile(`^Arriving in about (\d+) min$`).FindStringSubmatch(shown)
	if m == nil || m[1] == "5" || m[1] == "10" || m[1] == "15" {
		t.Fatalf("the map shows %q: want an ETA of minutes between its fives (the test's premise)", shown)
	}
	if want := "Arriving in about " + m[1] + " minutes."; said != want {
		t.Errorf("a screen reader hears %q where the map shows %q: want %q", said, shown, want)
	}
}
