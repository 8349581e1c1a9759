package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// postFixNow posts courier's fix at lat, lng, taken now at 7 m/s, which the server must take.
func postFixNow(t *testing.T, base, courier string, lat, lng float64) {
	t.Helper()
	body := fmt.Sprintf(`{"lat":%v,"lng":%v,"speed_mps":7,"at":%q}`, lat, lng, time.Now().Format(time.RFC3339Nano))
	if code, res := postLocation(t, base, courier, "", body); code != http.StatusOK {
		t.Fatalf("post: %d %s", code, res)
	}
}

// newMapServer starts a server, its streams held, for a tracking page's map: every position
// reaches the page (no location cap), and a page whose stream drops retries soon (testRetry).
func newMapServer(t *testing.T) *locationServer {
	t.Helper()
	return newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.Retry = testRetry
		s.LocationInterval = 0
		stampChangesBack(s) // fixes dated back stand for a drive
	})
}

// TestTrackingPageCourierAppearsWhereItIs: the courier's marker glides from one fix to the next,
// but where it first shows (the page opened, or the order's courier changed) it is at once: it
// does not glide in from the map's corner; nor does it glide when the map's frame changes.
func TestTrackingPageCourierAppearsWhereItIs(t *testing.T) {
	ls := newMapServer(t)
	base := ls.URL()
	ls.onTheRoad(t, "o-appear")
	postFixNow(t, base, "c-1", 52.5240, 13.4110)

	b := newBrowser(t)
	// Every transition of the courier's marker that runs, counted from the page's first script.
	b.do("count the marker's transitions", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.glides = 0;
			document.addEventListener('transitionrun', e => { if (e.target.id === 'map-courier' && e.propertyName === 'transform') glides++; }, true);`,
		})
		return chromedp.Void{}, err
	})
	// Two frames: a transition started by what was drawn before has run by then.
	frames := `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-appear"))
	b.waitFor(`#map-courier[data-lat="52.524"]`)
	eval[bool](b, frames)
	if n := eval[int](b, `glides`); n != 0 {
		t.Errorf("the courier's marker glided %d times to where it first showed, want it there at once", n)
	}
	postFixNow(t, base, "c-1", 52.5260, 13.4150) // a move glides
	b.poll("the move glides", `glides === 1`)
	// A move past the drop-off widens the map's frame: the pins and the path jump to their new
	// places, and the courier with them, rather than glide for a moment off its path.
	pin := `document.getElementById('map-pickup').style.transform`
	before := eval[string](b, pin)
	postFixNow(t, base, "c-1", 52.5400, 13.4400)
	b.waitFor(`#map-courier[data-lat="52.54"]`)
	eval[bool](b, frames)
	if after := eval[string](b, pin); after == before {
		t.Fatalf("the restaurant's pin stayed at %s: the move did not widen the map, so the test shows nothing", after)
	}
	if n := eval[int](b, `glides`); n != 1 {
		t.Errorf("the courier glided as the map's frame changed under it (%d glides in all, want the one move)", n)
	}

	// Another courier takes the order over: its marker shows where it is, at once too.
	ls.assign(t, "o-appear", "c-2")
	b.poll("the old courier's marker gone", `document.getElementById('map-courier').hasAttribute('hidden')`)
	postFixNow(t, base, "c-2", 52.5220, 13.4080)
	b.waitFor(`#map-courier[data-lat="52.522"]`)
	eval[bool](b, frames)
	if n := eval[int](b, `glides`); n != 1 {
		t.Errorf("the new courier's marker glided to where it first showed (%d glides in all, want the one move before)", n)
	}
}

// TestTrackingPageNamesTheCourier: a courier assigned under a name (courier_name) is called by it
// on the tracking page: in the timeline ("Courier Kofi assigned"), in the map's key, and in what
// the map tells a screen reader ("Kofi is nearby."), by the newest courier event's name even when
// the order was read before it. A courier assigned without one keeps its id in the timeline and
// "Courier" in the key.
func TestTrackingPageNamesTheCourier(t *testing.T) {
	ls := newMapServer(t)
	base := ls.URL()
	c := &client.Client{BaseURL: base}
	ctx := t.Context()
	if _, err := c.CreateOrder(ctx, client.CreateOrderRequest{
		ID: "o-named", Pickup: api.PlaceAt(52.5200, 13.4050), Dropoff: api.PlaceAt(52.5290, 13.4190),
	}); err != nil {
		t.Fatal(err)
	}
	if res, err := c.SetCourier(ctx, "o-named", client.SetCourierRequest{CourierID: api.AssignTo("c-1"), CourierName: "Kofi"}); err != nil || res.Order.CourierName != "Kofi" || res.Event.CourierName != "Kofi" {
		t.Fatalf("assign c-1 as Kofi = %+v, %v; want the name on the order and its event", res, err)
	}
	ls.mustCommit(t, "o-named", ordercast.StatusOutForDelivery)
	postFixNow(t, base, "c-1", 52.5288, 13.4186) // beside the door: nearby

	b := newBrowser(t)
	// The page reads the order and its history at once: a reassignment that commits between the
	// two reads leaves the order naming the courier before. Here the order's read says Omar; the
	// history, which is newer, says Kofi, and the map must take the history's word.
	b.do("make the order's read the one before a reassignment", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			const fetch0 = window.fetch;
			window.fetch = async function (u, o) {
				const res = await fetch0.apply(this, arguments);
				if (!String(u).endsWith('/v1/orders/o-named')) return res;
				const order = await res.json();
				order.courier_name = 'Omar';
				return new Response(JSON.stringify(order), { status: res.status, headers: res.headers });
			};`,
		})
		return chromedp.Void{}, err
	})
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-named"))
	b.waitFor(`#map-courier[data-lat="52.5288"]`)
	key := `Array.from(document.querySelectorAll('.map-legend li')).filter(li => li.offsetParent !== null).map(li => li.textContent).join(', ')`
	rows := `Array.from(document.querySelectorAll('#timeline li[data-kind="courier"] .row-status')).map(r => r.textContent).join(' | ')`
	// The name is set apart from the words around it (U+2068 … U+2069), as any name dispatch
	// gives: a right-to-left one would otherwise reorder them.
	if got := eval[string](b, rows); got != "Courier \u2068Kofi\u2069 assigned" {
		t.Errorf("the assignment's timeline row says %q, want %q", got, "Courier \u2068Kofi\u2069 assigned")
	}
	if got := eval[string](b, key); got != "Restaurant, You, Kofi" {
		t.Errorf("the map's key reads %q, want the courier by name", got)
	}
	b.poll("the map says Kofi is nearby", `document.getElementById('map-announce').textContent === '\u2068Kofi\u2069 is nearby.'`)
	screenshots(b, "track-named-courier")

	// Another courier, assigned without a name: its id in the timeline, "Courier" in the key.
	if _, err := c.SetCourier(ctx, "o-named", client.SetCourierRequest{CourierID: api.AssignTo("c-9")}); err != nil {
		t.Fatal(err)
	}
	b.waitFor(`#timeline li[data-seq="4"]`)
	postFixNow(t, base, "c-9", 52.5288, 13.4186)
	b.waitFor(`#map-courier:not([hidden])`)
	if got := eval[string](b, rows); got != "Courier c-9 assigned | Courier \u2068Kofi\u2069 assigned" {
		t.Errorf("the courier rows say %q, want the unnamed courier by its id", got)
	}
	if got := eval[string](b, key); got != "Restaurant, You, Courier" {
		t.Errorf("after the unnamed courier's first fix the map's key reads %q, want %q", got, "Restaurant, You, Courier")
	}
	b.poll("the map says the courier is nearby", `document.getElementById('map-announce').textContent === 'Your courier is nearby.'`)
}

// TestTrackingPageShowsTheCourierMoving: once the order is out for delivery the tracking page
// draws the restaurant and the drop-off, with a key to the marks; each position moves the
// courier's marker (gliding there, unless the reader asked for less motion), lengthens the path
// and changes the ETA, without a reload, which the tab's title carries too (a tab in the
// background counts down); after delivery neither the courier nor the map is shown.
func TestTrackingPageShowsTheCourierMoving(t *testing.T) {
	ls := newMapServer(t)
	base := ls.URL()
	b := newBrowser(t)
	ls.onTheRoad(t, "o-map")

	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-map"))
	b.waitFor(`#status-line[data-status="out_for_delivery"]`)
	b.waitFor(`#map`)
	b.waitFor(`#conn[data-state="live"]`)
	eval[bool](b, `window.noReload = true`)
	// The assignment is a row of its own that names the courier, not a second "Placed".
	if got := eval[string](b, `document.querySelector('#timeline li[data-kind="courier"] .row-status').textContent`); got != "Courier c-1 assigned" {
		t.Fatalf("the courier event's timeline row says %q, want %q", got, "Courier c-1 assigned")
	}

	// The marker glides from fix to fix; not for a reader who asked for less motion, as the rest
	// of this test does (so that it reads where the marker ends, not where it passes).
	glide := `(s => s.transitionProperty + ' ' + s.transitionDuration)(getComputedStyle(document.getElementById('map-courier')))`
	if got := eval[string](b, glide); got != "transform 0.8s" {
		t.Errorf("the courier's marker moves with the transition %q, want transform 0.8s", got)
	}
	emulateMedia(b, "prefers-reduced-motion", "reduce")
	// The key names what the map shows: the courier from its first position, the path from its
	// second.
	key := func(when, want string) {
		t.Helper()
		if got := eval[string](b, `Array.from(document.querySelectorAll('.map-legend li')).filter(li => li.offsetParent !== null).map(li => li.textContent).join(', ')`); got != want {
			t.Errorf("%s the map's key reads %q, want %q", when, got, want)
		}
	}
	key("before the first position", "Restaurant, You")
	title := func(when, want string) {
		t.Helper()
		b.poll(when+", the tab's title "+strconv.Quote(want), `document.title === `+strconv.Quote(want))
	}
	title("before the first position", "Out for delivery · Order o-map")
	if got := eval[string](b, glide); !strings.HasSuffix(got, " 0s") {
		t.Errorf("asked for less motion, the courier's marker moves with the transition %q, want none", got)
	}

	// Fixes a few seconds apart and a few seconds old: the page counts from a fix's time, and one
	// 20 s old is lost.
	at := time.Now().Add(-8 * time.Second)
	positions := []ordercast.Point{{Lat: 52.5210, Lng: 13.4060}, {Lat: 52.5240, Lng: 13.4110}, {Lat: 52.5285, Lng: 13.4185}}
	var lastETA, lastX string
	for i, p := range positions {
		body := fmt.Sprintf(`{"lat":%v,"lng":%v,"speed_mps":7,"at":%q}`, p.Lat, p.Lng, at.Add(time.Duration(i)*3*time.Second).Format(time.RFC3339Nano))
		if code, res := postLocation(t, base, "c-1", "", body); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, res)
		}
		b.waitFor(fmt.Sprintf(`#map-courier[data-lat="%v"]`, p.Lat))
		x := eval[string](b, `document.getElementById('map-courier').style.transform`)
		// The ETA is shown in whole minutes; its seconds, which it counts down, change with each fix.
		eta := eval[string](b, `document.getElementById('eta').dataset.seconds`)
		if x == lastX || eta == "" || eta == lastETA {
			t.Fatalf("position %d: marker at %q (was %q), ETA %q s (was %q): want both to change", i, x, lastX, eta, lastETA)
		}
		// Read together: a tick between two reads may change both.
		shown := eval[[]string](b, `[document.getElementById('eta').textContent, document.title]`)
		words := shown[0]
		if !regexp.MustCompile(`^Arriving in (about \d+ min|under a minute)$`).MatchString(words) {
			t.Fatalf("position %d: the ETA says %q, want whole minutes", i, words)
		}
		if shown[1] != words+" · Order o-map" {
			t.Errorf("position %d: the tab's title is %q, want the ETA %q", i, shown[1], words)
		}
		lastX, lastETA = x, eta
		if i == 0 {
			key("after the first position", "Restaurant, You, Courier")
			screenshots(b, "track-map")
		}
	}
	b.waitFor(`#nearby`)
	key("after three positions", "Restaurant, You, Courier, Path so far")
	if n := eval[int](b, `document.getElementById('map-path').getAttribute('points').split(' ').length`); n != len(positions) {
		t.Fatalf("path has %d points, want %d", n, len(positions))
	}
	// Where it is drawn, not only its attribute: the last position is beside the drop-off.
	if d := eval[float64](b, `(() => {
		const c = document.getElementById('map-courier').getBoundingClientRect(), d = document.getElementById('map-dropoff').getBoundingClientRect();
		return Math.hypot(c.x + c.width/2 - d.x - d.width/2, c.y + c.height/2 - d.y - d.height/2);
	})()`); d > 40 {
		t.Fatalf("the courier is drawn %.0f px from the drop-off it is beside", d)
	}
	screenshots(b, "track-map-nearby")

	// At desktop size the map is as high as it is wide, like its drawing, so its streets reach
	// its edges; and a courier just above the door leaves "You" readable: the label moves below.
	b.do("desktop size", chromedp.EmulateViewport(1280, 800))
	if box := eval[[]float64](b, `(() => {
		const v = document.getElementById('map-view').getBoundingClientRect(), g = document.getElementById('map-grid').getBoundingClientRect();
		return [v.width, v.height, g.width, g.height];
	})()`); box[0] != box[1] || box[1] > 0.6*800 || box[2] < box[0]-2 || box[3] < box[1]-2 {
		t.Errorf("the map is %.0fx%.0f with streets over %.0fx%.0f: want a square no higher than 60 %% of the window, streets to its edges", box[0], box[1], box[2], box[3])
	}
	above := fmt.Sprintf(`{"lat":52.5294,"lng":13.4190,"speed_mps":7,"at":%q}`, at.Add(7*time.Second).Format(time.RFC3339Nano))
	if code, res := postLocation(t, base, "c-1", "", above); code != http.StatusOK {
		t.Fatalf("post: %d %s", code, res)
	}
	b.waitFor(`#map-courier[data-lat="52.5294"]`)
	covered := `(() => {
		const l = document.querySelector('#map-dropoff-label text').getBoundingClientRect(), c = document.querySelector('#map-courier .map-halo').getBoundingClientRect();
		return l.right > c.left && c.right > l.left && l.bottom > c.top && c.bottom > l.top;
	})()`
	if eval[bool](b, covered) {
		t.Error("the courier above the door covers its label")
	}
	screenshots(b, "track-map-above")
	if !eval[bool](b, `window.noReload === true`) {
		t.Fatal("the page reloaded to move the courier")
	}
	// Another courier takes over: the timeline says so without a reload, and its first fix,
	// stamped by its own phone before c-1's last one, moves the marker and starts a new path.
	eval[bool](b, `window.ordercast.saidForMs = 2000; true`)
	ls.assign(t, "o-map", "c-2")
	b.waitFor(`#timeline li[data-seq="4"][data-kind="courier"]`)
	// A screen reader hears of it (the ETA it heard went with c-1), and what it heard does not
	// stay to be read again long after, beside the map's words as they are now.
	b.poll("the map says another courier has the order", `document.getElementById('map-announce').textContent === 'Another courier has your order now.'`)
	b.poll("the map's live region emptied", `document.getElementById('map-announce').textContent === ''`)
	if got := eval[string](b, `document.querySelector('#timeline li[data-seq="4"][data-kind="courier"] .row-status').textContent`); got != "Courier c-2 assigned" {
		t.Fatalf("the reassignment's timeline row says %q, want %q", got, "Courier c-2 assigned")
	}
	// The old courier leaves the map with the reassignment, before the new one's first fix, and
	// its ETA the title: the map says the (new) courier is on the way, as before a first fix.
	title("after the reassignment", "Out for delivery · Order o-map")
	if shown, path, eta := eval[bool](b, `!document.getElementById('map-courier').hasAttribute('hidden')`),
		eval[string](b, `document.getElementById('map-path').getAttribute('points')`),
		eval[string](b, `document.getElementById('eta').textContent`); shown || path != "" || eta != "Your courier is on the way" {
		t.Fatalf("after the reassignment the map shows the old courier: marker %v, path %q, ETA %q", shown, path, eta)
	}
	body := fmt.Sprintf(`{"lat":52.5230,"lng":13.4100,"at":%q}`, at.Format(time.RFC3339Nano))
	if code, res := postLocation(t, base, "c-2", "", body); code != http.StatusOK {
		t.Fatalf("post: %d %s", code, res)
	}
	b.waitFor(`#map-courier[data-lat="52.523"]`)
	if n := eval[int](b, `document.getElementById('map-path').getAttribute('points').split(' ').length`); n != 1 {
		t.Fatalf("the new courier's path has %d points, want 1", n)
	}
	// Half a minute on, with no fix since, the courier is lost: its ETA leaves the title too.
	b.poll("the new courier's ETA in the title", `document.title === document.getElementById('eta').textContent + ' · Order o-map'`)
	passTime(b, 30*time.Second)
	b.waitFor(`#lost`)
	title("the courier lost", "Out for delivery · Order o-map")
	ls.mustCommit(t, "o-map", ordercast.StatusDelivered)
	b.waitFor(`#status-line[data-status="delivered"]`)
	if shown := eval[bool](b, `!document.getElementById('map-courier').hasAttribute('hidden')`); shown {
		t.Fatal("the courier is still shown after delivery")
	}
	// The map goes with the delivery, as a page opened after it never shows one; the status line
	// says when it was delivered, not "since".
	if shown := eval[bool](b, `!document.getElementById('map').hidden`); shown {
		t.Error("the map, with no courier on it, is still shown after delivery")
	}
	if line := eval[string](b, `document.getElementById('status-line').textContent`); !strings.HasPrefix(line, "Delivered at ") {
		t.Errorf("the status line says %q, want when it was delivered", line)
	}
	title("after delivery", "Delivered · Order o-map")
}

// TestTrackingPageTimesPositionsFromTheirFix: a stream that opens gets the newest position even
// when it is most of a minute old, and a phone may flush a backlog; the page times "location
// lost" and the ETA from the fix's own time, on the server's clock, not from when the position
// arrived nor by this browser's clock, here seven minutes fast. A lost courier's ETA is hidden,
// not counted down. The ETA ticks every second outside any live region; screen readers hear it
// through the map's own region, only when what it says changes.
func TestTrackingPageTimesPositionsFromTheirFix(t *testing.T) {
	ls := newMapServer(t)
	base := ls.URL()
	ls.onTheRoad(t, "o-old")
	post := func(lat float64, age time.Duration) {
		t.Helper()
		body := fmt.Sprintf(`{"lat":%v,"lng":13.4100,"speed_mps":5,"at":%q}`, lat, time.Now().Add(-age).Format(time.RFC3339Nano))
		if code, res := postLocation(t, base, "c-1", "", body); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, res)
		}
	}
	post(52.5210, 45*time.Second) // fresh enough for a new stream (a minute), lost for the page

	b := newBrowser(t)
	b.do("set the browser's clock seven minutes fast", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `Date.now = (now => () => now() + 7 * 60 * 1000)(Date.now);`,
		})
		return chromedp.Void{}, err
	})
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-old"))
	b.waitFor(`#map-courier[data-lat="52.521"]`)
	b.waitFor(`#lost`)
	// The fix is 45 s old by the server's clock (this browser's is seven minutes fast).
	if got := eval[string](b, `document.getElementById('lost').textContent`); got != "Location lost \u00b7 last seen under a minute ago" {
		t.Errorf("the lost badge says %q, want how long ago the courier was seen", got)
	}
	if eval[bool](b, `!document.getElementById('eta').hidden`) {
		t.Errorf("a lost courier's ETA is shown: %q", eval[string](b, `document.getElementById('eta').textContent`))
	}
	if said := eval[string](b, `document.getElementById('map-announce').textContent`); said != "Location lost." {
		t.Errorf("the map's live region says %q, want %q", said, "Location lost.")
	}
	if live := eval[bool](b, `document.getElementById('eta').hasAttribute('aria-live') || !!document.getElementById('eta').closest('[aria-live]')`); live {
		t.Error("the ETA, which ticks every second, is in a live region")
	}

	post(52.5240, 12*time.Second)
	b.waitFor(`#map-courier[data-lat="52.524"]`)
	code, body := do(t, "GET", base+"/v1/orders/o-old?wait=0", "", "")
	var lp struct{ Location *ordercast.LocationUpdate }
	if err := json.Unmarshal(body, &lp); code != http.StatusOK || err != nil || lp.Location == nil || lp.Location.ETAS == nil {
		t.Fatalf("long poll answer %d %s: want the newest position with its ETA", code, body)
	}
	eta := *lp.Location.ETAS
	// Read as it is shown, or as it stood when the fix was lost (20 s): either way counted from
	// the fix, 12 s before it arrived.
	left := eval[int](b, `Number(document.getElementById('eta').dataset.seconds || -1)`)
	if left > int(eta)-10 || left < int(eta)-25 {
		t.Errorf("the ETA shows %d s left of a fix 12 s old that said %d s: want it counted from the fix", left, eta)
	}
	// Found again after it was said to be lost: said at once, and so.
	b.poll("wait for the announcement", `document.getElementById('map-announce').textContent.startsWith('Location back. Arriving in about')`)
	// Two more seconds of ticking: the ETA's text changes, the live region does not.
	eval[bool](b, `window.said = 0;
		new MutationObserver(ms => { window.said += ms.length; })
			.observe(document.getElementById('map-announce'), {childList: true, subtree: true, characterData: true});
		true`)
	b.poll("wait for two ticks", `Number(document.getElementById('eta').dataset.seconds) <= `+fmt.Sprint(left-2))
	if n := eval[int](b, `window.said`); n != 0 {
		t.Errorf("the map's live region changed %d times in two seconds of ticking", n)
	}
	screenshots(b, "track-map-fix")
}

// TestTrackingMapBlamesNoCourierWhileOffline: a position grows old while the page's own stream is
// down just as when the courier stops sending, but the page then cannot tell which: the map
// says that it is reconnecting and when the courier was last seen, not "Location lost", and
// tells no screen reader that the courier's location is lost.
func TestTrackingMapBlamesNoCourierWhileOffline(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.LocationInterval = 0
		stampChangesBack(s) // fixes dated back stand for a drive
	})
	base := ls.URL()
	ls.onTheRoad(t, "o-off")
	// 45 s old: fresh enough for a new stream (a minute), older than the page calls lost (20 s).
	body := fmt.Sprintf(`{"lat":52.5210,"lng":13.4100,"speed_mps":5,"at":%q}`, time.Now().Add(-45*time.Second).Format(time.RFC3339Nano))
	if code, res := postLocation(t, base, "c-1", "", body); code != http.StatusOK {
		t.Fatalf("post: %d %s", code, res)
	}

	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-off"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(`#lost`)
	if got := eval[string](b, `document.getElementById('lost').textContent`); got != "Location lost \u00b7 last seen under a minute ago" {
		t.Errorf("online, the lost badge says %q", got)
	}
	eval[bool](b, `document.getElementById('map-announce').textContent = ''; true`)

	ls.close(t)
	b.waitFor(`#conn[data-state="reconnecting"]`)
	b.poll("the badge to say the page reconnects", `document.getElementById('lost').textContent === 'Reconnecting \u00b7 last seen under a minute ago'`)
	if said := eval[string](b, `document.getElementById('map-announce').textContent`); said != "" {
		t.Errorf("offline, the map's live region says %q", said)
	}
	screenshots(b, "track-map-offline")
}

// onTheRoad creates order id with its pick-up and drop-off in Berlin, 1.4 km apart, gives it
// to courier c-1 and sends it out for delivery: a tracking page of it shows the map.
func (ls *locationServer) onTheRoad(t *testing.T, id string) {
	t.Helper()
	c := &client.Client{BaseURL: ls.URL()}
	if _, err := c.CreateOrder(context.Background(), client.CreateOrderRequest{
		ID: id, Pickup: api.PlaceAt(52.5200, 13.4050), Dropoff: api.PlaceAt(52.5290, 13.4190),
	}); err != nil {
		t.Fatal(err)
	}
	ls.assign(t, id, "c-1")
	ls.mustCommit(t, id, ordercast.StatusOutForDelivery)
}

// TestTrackingMapSaysTheCourierIsOnTheWayBeforeItsFirstPosition: an order out for delivery whose
// courier has sent no position yet shows the restaurant and the drop-off, and says in the ETA's
// place that the courier is on the way, not a map of two pins and no words; once the order has no
// courier, it says nothing of one.
func TestTrackingMapSaysTheCourierIsOnTheWayBeforeItsFirstPosition(t *testing.T) {
	ls := newLocationServer(t, true, nil)
	base := ls.URL()
	ls.onTheRoad(t, "o-nopos")
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-nopos"))
	b.waitFor(`#map:not([hidden])`)
	b.poll("the ETA's place to say the courier is on the way", `document.getElementById('eta').textContent === 'Your courier is on the way'`)
	// Unassigned on the way (dispatch takes the courier off): no courier is on the way.
	ls.assign(t, "o-nopos", "")
	b.waitFor(`#timeline li[data-seq="4"][data-kind="courier"]`)
	b.poll("the ETA's place to say nothing of a courier", `document.getElementById('eta').textContent === ''`)
}

// TestTrackingMapDrawsTheWayTheCourierCame: a tracking page opened when the courier is already on
// the road draws the way it came from the restaurant (the server's trail), not only the positions
// that arrive after it opens; and one whose stream was down while the courier moved draws the
// way it went meanwhile, once it is back, not a straight line across the gap.
func TestTrackingMapDrawsTheWayTheCourierCame(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.Retry = testRetry
		s.LocationInterval = 0
		// Streams end and are resumed every few seconds: how the page's stream goes down below.
		s.StreamLifetime = 2 * time.Second
		stampChangesBack(s) // fixes dated back stand for a drive
	})
	base := ls.URL()
	ls.onTheRoad(t, "o-trail")
	start := time.Now().Add(-20 * time.Second)
	posted := 0
	post := func(lat, lng float64) {
		t.Helper()
		body := fmt.Sprintf(`{"lat":%v,"lng":%v,"speed_mps":6,"at":%q}`, lat, lng, start.Add(time.Duration(posted)*time.Second).Format(time.RFC3339Nano))
		if code, res := postLocation(t, base, "c-1", "", body); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, res)
		}
		posted++
	}
	// Four fixes some 100 m apart, from the restaurant's door towards the drop-off.
	for i := range 4 {
		post(52.5200+0.0009*float64(i), 13.4050+0.0012*float64(i))
	}
	points := `document.getElementById('map-path').getAttribute('points').split(' ').filter(Boolean).length`

	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-trail"))
	b.waitFor(`#map-courier[data-lat="52.5227"]`)
	b.poll("the path from the restaurant, all four fixes", points+` === 4`)
	// It starts at the restaurant's pin.
	if d := eval[float64](b, `(() => {
		const p = document.getElementById('map-path').getAttribute('points').split(' ')[0].split(',').map(Number);
		const m = new DOMMatrix(getComputedStyle(document.getElementById('map-pickup')).transform);
		return Math.hypot(p[0] - m.e, p[1] - m.f);
	})()`); d > 1 {
		t.Errorf("the path starts %.1f units from the restaurant's pin, want at it", d)
	}
	screenshots(b, "track-map-trail")

	// The page's stream goes down (its lifetime ends, and every attempt to open it again is
	// refused, as a phone in a tunnel finds) while the courier rides on.
	restore := b.refuseStream("*/o-trail/stream*")
	post(52.5236, 13.4098)
	post(52.5245, 13.4110)
	restore()
	b.waitFor(`#map-courier[data-lat="52.5245"]`)
	b.poll("the way the courier went while the page was away", points+` === 6`)
}

// TestTrackingMapLabelsFollowTheTextSize: the map's labels ("Restaurant", "You") grow with the
// reader's text size, as every other line of the pages does, and a label the courier's dot would
// cover still moves below its pin, clear of it, at double size.
func TestTrackingMapLabelsFollowTheTextSize(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.LocationInterval = 0
		stampChangesBack(s) // fixes dated back stand for a drive
	})
	base := ls.URL()
	ls.onTheRoad(t, "o-text")
	post := func(lat, lng float64, ago time.Duration) {
		t.Helper()
		body := fmt.Sprintf(`{"lat":%v,"lng":%v,"speed_mps":6,"at":%q}`, lat, lng, time.Now().Add(-ago).Format(time.RFC3339Nano))
		if code, res := postLocation(t, base, "c-1", "", body); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, res)
		}
	}
	post(52.5240, 13.4110, 3*time.Second)
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-text"))
	b.waitFor(`#map-courier[data-lat="52.524"]`)
	height := `document.querySelector('#map-pickup-label text').getBoundingClientRect().height`
	usual := eval[float64](b, height)
	eval[string](b, `document.documentElement.style.fontSize = '32px'`)
	if double := eval[float64](b, height); double < 1.8*usual {
		t.Errorf("at double text size the restaurant's label is %.1f px high, %.1f px at the usual size: want it to grow with the text", double, usual)
	}
	// The courier just above the drop-off: its label goes below the pin, clear of the dot.
	post(52.5297, 13.4190, 2*time.Second)
	b.waitFor(`#map-courier[data-lat="52.5297"]`)
	if eval[bool](b, `(() => {
		const l = document.querySelector('#map-dropoff-label text').getBoundingClientRect(), c = document.querySelector('#map-courier .map-halo').getBoundingClientRect(), p = document.querySelector('#map-dropoff rect').getBoundingClientRect();
		const meets = (a, b) => a.right > b.left && b.right > a.left && a.bottom > b.top && b.bottom > a.top;
		return meets(l, c) || meets(l, p);
	})()`) {
		t.Error("at double text size the drop-off's label is covered by the courier or its own pin")
	}
	screenshots(b, "track-map-large-text")

	// Larger still, and the courier just above the restaurant, whose pin is at the bottom of
	// the frame: there is no room below it, so its label goes beside it, inside the map.
	eval[string](b, `document.documentElement.style.fontSize = '40px'`)
	post(52.5203, 13.4050, time.Second)
	b.waitFor(`#map-courier[data-lat="52.5203"]`)
	if why := eval[string](b, `(() => {
		const box = s => document.querySelector(s).getBoundingClientRect();
		const l = box('#map-pickup-label text'), m = box('#map-view'), c = box('#map-courier .map-halo'), p = box('#map-pickup circle');
		const meets = (a, b) => a.right > b.left && b.right > a.left && a.bottom > b.top && b.bottom > a.top;
		if (l.left < m.left || l.right > m.right || l.top < m.top || l.bottom > m.bottom) return 'it runs past the map';
		if (meets(l, c)) return 'the courier covers it';
		if (meets(l, p)) return 'its own pin covers it';
		return '';
	})()`); why != "" {
		t.Errorf("at 2.5 times the text size, the courier above the restaurant at the frame's bottom: the restaurant's label is not readable: %s", why)
	}
	screenshots(b, "track-map-large-text-edge")
}

// TestTrackingMapKeepsThePathATrailDoesNotCover: a server keeps a trail in memory, so one
// restarted, or a cluster node that joined mid-ride, has only the part since; the map merges a
// trail with its own path by time, and keeps the points it drew before the trail begins. It
// drives a map of the page's own script (map.js) with answers it makes itself: the server's
// trail as such is TestTrackingMapDrawsTheWayTheCourierCame's.
func TestTrackingMapKeepsThePathATrailDoesNotCover(t *testing.T) {
	ls := newLocationServer(t, true, nil)
	base := ls.URL()
	ls.onTheRoad(t, "o-merge")
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-merge"))
	b.waitFor(`#status-line[data-status="out_for_delivery"]`)
	got := eval[string](b, `(async () => {
		const answers = [];
		const m = window.ordercastMap({}, () => new Promise(r => answers.push(r)));
		const t0 = Date.now() - 60000;
		const fix = i => ({ type: 'location', order_id: 'o-merge', courier_id: 'c-1', lat: 52.52 + i * 0.001, lng: 13.405, at: new Date(t0 + i * 1000).toISOString() });
		const trail = (...is) => ({ order_id: 'o-merge', courier_id: 'c-1', trail: is.map(i => ({ lat: fix(i).lat, lng: fix(i).lng, at: fix(i).at })) });
		const settled = () => new Promise(r => setTimeout(r, 0));
		m.update(fix(0)); // the first position: the map asks for the trail
		answers.shift()(trail(0));
		await settled();
		m.update(fix(1));
		m.update(fix(2));
		m.connection('reconnecting');
		m.connection('live'); // back: it asks again, and a position comes meanwhile
		m.update(fix(7));
		answers.shift()(trail(5, 6)); // a server restarted at the fifth
		await settled();
		return m.path.map(p => Math.round((p.lat - 52.52) / 0.001)).join(',');
	})()`)
	if got != "0,1,2,5,6,7" {
		t.Errorf("the map's path holds the fixes %s, want 0,1,2,5,6,7: its own before the trail, the trail, its own after", got)
	}
}

// postFixAged posts courier's fix at lat, lng, taken age ago at 7 m/s, which the server must take.
func postFixAged(t *testing.T, base, courier string, lat, lng float64, age time.Duration) {
	t.Helper()
	body := fmt.Sprintf(`{"lat":%v,"lng":%v,"speed_mps":7,"at":%q}`, lat, lng, time.Now().Add(-age).Format(time.RFC3339Nano))
	if code, res := postLocation(t, base, courier, "", body); code != http.StatusOK {
		t.Fatalf("post: %d %s", code, res)
	}
}

// noteMapAnnouncements has the page note in window.mapSaid everything the map's live region says
// from now on.
func noteMapAnnouncements(b *browser) {
	b.t.Helper()
	eval[bool](b, `(() => {
		window.mapSaid = [];
		const region = document.getElementById('map-announce');
		new MutationObserver(() => mapSaid.push(region.textContent)).observe(region, {childList: true, subtree: true, characterData: true});
		return true;
	})()`)
}

// TestTrackingMapSaysNoNearbyOfALostCourier: a courier whose last position was beside the door
// and who has sent none since is lost: where the courier is nobody knows, and "Nearby" beside
// "Location lost" would say otherwise.
func TestTrackingMapSaysNoNearbyOfALostCourier(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.LocationInterval = 0
		stampChangesBack(s) // fixes dated back stand for a drive
	})
	base := ls.URL()
	ls.onTheRoad(t, "o-near")
	postFixAged(t, base, "c-1", 52.5288, 13.4186, 45*time.Second) // beside the door, 45 s ago
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-near"))
	b.waitFor(`#lost`)
	if eval[bool](b, `!document.getElementById('nearby').hidden`) {
		t.Errorf("the map says %q beside %q", eval[string](b, `document.getElementById('nearby').textContent`),
			eval[string](b, `document.getElementById('lost').textContent`))
	}
}

// TestTrackingMapJudgesNoCourierWhileItsTabIsAway: a tab in the background lets go of its stream
// (over HTTP/1.1), so positions no longer reach it: a position growing old meanwhile says
// nothing of the courier, and the map says it is reconnecting, not "Location lost", and tells
// no screen reader so. Back, its stream opens with the courier's newest position, after what it
// missed: until it had the time to bring it, the map tells nobody the courier's location is
// lost. (The test stands in for the tab switch by setting what the page reads.)
func TestTrackingMapJudgesNoCourierWhileItsTabIsAway(t *testing.T) {
	ls := newMapServer(t)
	base := ls.URL()
	ls.onTheRoad(t, "o-away")
	// Lost in 10 s: after the 5 s the hidden tab keeps its stream, while the page cannot hear.
	postFixAged(t, base, "c-1", 52.5240, 13.4110, 10*time.Second)
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-away"))
	b.waitFor(`#map-courier[data-lat="52.524"]`)
	if eval[bool](b, `!document.getElementById('lost').hidden`) {
		t.Fatal("a position 10 s old is lost already")
	}
	noteMapAnnouncements(b)
	b.setVisibility("hidden")
	waitMetric(t, http.DefaultClient, base, 0, "ordercast_streams_open")
	b.poll("the badge to say the page reconnects", `!document.getElementById('lost').hidden &&
		document.getElementById('lost').textContent === 'Reconnecting \u00b7 last seen under a minute ago'`)

	postFixNow(t, base, "c-1", 52.5250, 13.4120)
	b.setVisibility("visible")
	b.waitFor(`#map-courier[data-lat="52.525"]`)
	b.poll("the courier found again", `document.getElementById('lost').hidden`)
	if said := eval[[]string](b, `mapSaid`); slices.Contains(said, "Location lost.") {
		t.Errorf("the map's live region said %q: the courier's location lost, while the page could not hear it", said)
	}
}

// TestTrackingMapJudgesNoCourierOverASilentConnection: a connection that died without telling
// (a phone between cells) brings nothing, the server's heartbeats included, and the page learns
// it only after two and a half of them. A position growing old once a heartbeat is overdue says
// nothing of the courier: the map says it is reconnecting, not "Location lost", and so does the
// header (it said "live" beside the map's "Reconnecting"), while the connection is still given
// the rest of its time.
func TestTrackingMapJudgesNoCourierOverASilentConnection(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.Heartbeat = 6 * time.Second // a heartbeat overdue at 9 s, the connection let go of at 15
		s.Retry = testRetry
		s.LocationInterval = 0
		stampChangesBack(s) // fixes dated back stand for a drive
	})
	ls.onTheRoad(t, "o-silent")
	base, streams, stall := stallingProxy(t, ls.URL())
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-silent"))
	b.waitFor(`#conn[data-state="live"]`)
	// Posted once the page is live (a browser may take seconds to start on a busy machine): lost
	// 12 s after it is posted, its frame the stream's last, overdue 9 s after it.
	postFixAged(t, ls.URL(), "c-1", 52.5240, 13.4110, 8*time.Second)
	b.waitFor(`#map-courier[data-lat="52.524"]`)
	stall()
	noteMapAnnouncements(b)
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`!document.getElementById('lost').hidden`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the position never grew old: %v", err)
	}
	if n := streams.Load(); n != 1 {
		t.Fatalf("the page let go of the silent connection (%d streams opened) before the position grew old: the test shows nothing", n)
	}
	if state := eval[string](b, `document.getElementById('conn').dataset.state`); state != "reconnecting" {
		t.Errorf("the map says it reconnects, the header says %q", state)
	}
	if got := eval[string](b, `document.getElementById('lost').textContent`); got != "Reconnecting \u00b7 last seen under a minute ago" {
		t.Errorf("over a connection silent past its heartbeat the badge says %q", got)
	}
	if said := eval[[]string](b, `mapSaid`); slices.Contains(said, "Location lost.") {
		t.Errorf("the map's live region said %q over a silent connection", said)
	}
}
