package server_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// olderBrowser makes b's pages run as a browser of 2019-2020 does, still on many a customer's
// phone (an iPhone 6 stays on iOS 12, an Android WebView that is not updated opens the links
// of messaging apps): no Element.replaceChildren (Chrome 86, Safari 14, Firefox 78), and an
// Intl.DateTimeFormat that ignores timeStyle and dateStyle (Safari 14.1, Firefox 79), formatting
// a date where they ask for a time.
func olderBrowser(b *browser) {
	b.t.Helper()
	b.do("run as an older browser", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			delete Element.prototype.replaceChildren;
			(DTF => {
				Intl.DateTimeFormat = function (locales, options) {
					const o = Object.assign({}, options);
					delete o.timeStyle;
					delete o.dateStyle;
					return new DTF(locales, o);
				};
				Intl.DateTimeFormat.prototype = DTF.prototype;
				Intl.DateTimeFormat.supportedLocalesOf = DTF.supportedLocalesOf;
			})(Intl.DateTimeFormat);`,
		})
		return chromedp.Void{}, err
	})
}

// TestTrackingPageOnAnOlderBrowser: on a browser without replaceChildren the tracking page threw
// as it drew its heading and stayed at "Loading…" for good; on one that ignores timeStyle every
// time on it was a date ("Placed since 12/7/2026"). It shows the order's stage, live, with its
// times in hours and minutes.
func TestTrackingPageOnAnOlderBrowser(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-old") // its details name its restaurant: the heading names it
	b := newBrowser(t)
	olderBrowser(b)
	b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-old"))
	b.waitFor(`#status-line[data-status="placed"]`)
	if got := eval[string](b, `document.querySelector('main h1').textContent`); got != "Your order from Luigi's" {
		t.Errorf("the heading reads %q", got)
	}
	hm := regexp.MustCompile(`\d{1,2}:\d{2}`)
	for what, expr := range map[string]string{
		"the status line":     `document.getElementById('status-line').textContent`,
		"the step's time":     `document.querySelector('.step[data-state="current"] .step-time').textContent`,
		"the timeline's time": `document.querySelector('#timeline time').textContent`,
	} {
		if got := eval[string](b, expr); !hm.MatchString(got) || regexp.MustCompile(`\d/\d|\d{4}`).MatchString(got) {
			t.Errorf("%s reads %q, want a time of day in hours and minutes", what, got)
		}
	}
	b.waitFor(`#conn[data-state="live"]`)
	srv.setStatus("o-old", "confirmed", "")
	b.waitFor(`#status-line[data-status="confirmed"]`)
}

// TestTrackingPageLoadsWhenTheNetworkComesBack: a tracking link opened in a dead spot failed its
// first load and tried again only at the end of its backoff, up to 30 s, though the network came
// back long before (the stream itself comes back at once). The network's return starts the next
// try at once.
func TestTrackingPageLoadsWhenTheNetworkComesBack(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-dead-spot")
	var failing atomic.Bool
	failing.Store(true)
	failed := make(chan struct{}, 100)
	base := frontProxy(t, srv.url, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if !failing.Load() || r.URL.Path != "/v1/orders/o-dead-spot" {
			return false
		}
		answerError(w, http.StatusServiceUnavailable, "unavailable", "no network") // not final: the page tries again
		failed <- struct{}{}
		return true
	})
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-dead-spot"))
	waitFailure := func() {
		t.Helper()
		select {
		case <-failed:
		case <-time.After(10 * time.Second):
			t.Fatal("the page did not ask for the order again while the server failed")
		}
	}
	waitFailure()
	b.waitFor(`#conn[data-state="reconnecting"]`)
	// From the next failure on, the page waits its longest backoff (15 to 30 s), longer than
	// the wait below: only the network's return can make it try within it.
	eval[bool](b, `(ordercast.backoffMs = 60000, true)`)
	waitFailure()
	failing.Store(false)
	// The network's return, said again at each look: the first may come before the page has
	// taken the last failure in (its request answered, its handler yet to run).
	b.poll("the order shown once the network is back",
		`(window.dispatchEvent(new Event('online')), document.getElementById('status-line').dataset.status === 'placed')`)
}

// TestTrackingPageSaysItNeedsJavaScript: a browser that runs no script (one turned off, Opera
// Mini's extreme mode) showed "Loading…" and "connecting" for ever; it is told why.
func TestTrackingPageSaysItNeedsJavaScript(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	if code, got := do(t, "POST", base+"/v1/orders", "application/json", `{"id":"o-nojs"}`); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, got)
	}
	code, body := do(t, "GET", base+"/track/o-nojs", "", "")
	page := string(body)
	if code != http.StatusOK || !regexp.MustCompile(`<noscript><p class="problem">This page shows the order live with JavaScript[^<]*</p></noscript>`).MatchString(page) {
		t.Errorf("the tracking page (%d) says nothing to a browser that runs no script:\n%s", code, page)
	}
}

// TestTrackingPageAsksForFewerPositionsToSaveData: a reader whose browser saves data (Save-Data,
// a phone's data saver) gets the courier's position every 5 s, not every second: the page's
// stream asks for it (location_interval), and one that does not save data asks nothing.
func TestTrackingPageAsksForFewerPositionsToSaveData(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-saver")
	for _, tc := range []struct {
		saves bool
		want  string
	}{{true, "5s"}, {false, ""}} {
		b := newBrowser(t)
		b.do("record the page's streams", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
				Object.defineProperty(navigator, 'connection', { value: { saveData: ` + strconv.FormatBool(tc.saves) + ` }, configurable: true });
				window.streams = [];
				window.EventSource = (ES => function (u, init) { streams.push(u); return new ES(u, init); })(window.EventSource);`,
			})
			return chromedp.Void{}, err
		})
		b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-saver"))
		b.waitFor(`#conn[data-state="live"]`)
		if got := eval[string](b, `new URL(streams[0]).searchParams.get('location_interval') || ''`); got != tc.want {
			t.Errorf("saving data %v: the stream asks location_interval=%q, want %q", tc.saves, got, tc.want)
		}
	}
}
