package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// TestTrackingPageShowsTheCourierMoving: once the order is out for delivery the tracking page
// draws the restaurant and the drop-off; each position moves the courier's marker, lengthens
// the path and changes the ETA, without a reload; after delivery the courier is no longer shown.
func TestTrackingPageShowsTheCourierMoving(t *testing.T) {
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.Retry = testRetry
		s.LocationInterval = 0
	})
	base := ls.URL()
	b := newBrowser(t)
	c := &client.Client{BaseURL: base}
	if _, err := c.CreateOrder(context.Background(), client.CreateOrderRequest{
		ID: "o-map", Pickup: &ordercast.Point{Lat: 52.5200, Lng: 13.4050}, Dropoff: &ordercast.Point{Lat: 52.5290, Lng: 13.4190},
	}); err != nil {
		t.Fatal(err)
	}
	ls.assign(t, "o-map", "c-1")
	ls.mustCommit(t, "o-map", ordercast.StatusOutForDelivery)

	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-map"))
	b.waitFor(`#status-line[data-status="out_for_delivery"]`)
	b.waitFor(`#map`)
	b.waitFor(`#conn[data-state="live"]`)
	eval[bool](b, `window.noReload = true`)
	// The assignment is a row of its own that names the courier, not a second "Placed".
	if got := eval[string](b, `document.querySelector('#timeline li[data-kind="courier"] .row-status').textContent`); got != "Courier c-1 assigned" {
		t.Fatalf("the courier event's timeline row says %q, want %q", got, "Courier c-1 assigned")
	}

	at := time.Now().Add(-20 * time.Second)
	positions := []ordercast.Point{{Lat: 52.5210, Lng: 13.4060}, {Lat: 52.5240, Lng: 13.4110}, {Lat: 52.5285, Lng: 13.4185}}
	var lastETA, lastX string
	for i, p := range positions {
		body := fmt.Sprintf(`{"lat":%v,"lng":%v,"speed_mps":7,"at":%q}`, p.Lat, p.Lng, at.Add(time.Duration(i)*5*time.Second).Format(time.RFC3339Nano))
		if code, res := postLocation(t, base, "c-1", "", body); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, res)
		}
		b.waitFor(fmt.Sprintf(`#map-courier[data-lat="%v"]`, p.Lat))
		x := eval[string](b, `document.getElementById('map-courier').getAttribute('transform')`)
		eta := eval[string](b, `document.getElementById('eta').textContent`)
		if x == lastX || eta == "" || eta == lastETA {
			t.Fatalf("position %d: marker at %q (was %q), ETA %q (was %q): want both to change", i, x, lastX, eta, lastETA)
		}
		lastX, lastETA = x, eta
		if i == 0 {
			screenshots(b, "track-map")
		}
	}
	b.waitFor(`#nearby`)
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
	if !eval[bool](b, `window.noReload === true`) {
		t.Fatal("the page reloaded to move the courier")
	}
	// Another courier takes over: the timeline says so without a reload, and its first fix,
	// stamped by its own phone before c-1's last one, moves the marker and starts a new path.
	ls.assign(t, "o-map", "c-2")
	b.waitFor(`#timeline li[data-seq="4"][data-kind="courier"]`)
	if got := eval[string](b, `document.querySelector('#timeline li[data-seq="4"][data-kind="courier"] .row-status').textContent`); got != "Courier c-2 assigned" {
		t.Fatalf("the reassignment's timeline row says %q, want %q", got, "Courier c-2 assigned")
	}
	// The old courier leaves the map with the reassignment, before the new one's first fix.
	if shown, path, eta := eval[bool](b, `!document.getElementById('map-courier').hasAttribute('hidden')`),
		eval[string](b, `document.getElementById('map-path').getAttribute('points')`),
		eval[string](b, `document.getElementById('eta').textContent`); shown || path != "" || eta != "" {
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
	ls.mustCommit(t, "o-map", ordercast.StatusDelivered)
	b.waitFor(`#status-line[data-status="delivered"]`)
	if shown := eval[bool](b, `!document.getElementById('map-courier').hasAttribute('hidden')`); shown {
		t.Fatal("the courier is still shown after delivery")
	}
}
