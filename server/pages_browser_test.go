package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/headless"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// testRetry is the reconnection delay the pages' EventSource is told in these tests, short so
// that a resume happens quickly.
const testRetry = 250 * time.Millisecond

// pageServer is the real server on a real SQLite file, which a test can stop and start again
// on the same port, as an operator restarting the service would.
type pageServer struct {
	t    *testing.T
	db   string
	addr string
	url  string
	ts   *testServer
	api  *client.Client
	hold holding
}

func startPageServer(t *testing.T) *pageServer {
	t.Helper()
	return startPageServerHolding(t, true)
}

// startPageServerHolding starts a page server whose streams are held as hold says.
func startPageServerHolding(t *testing.T, hold holding) *pageServer {
	t.Helper()
	p := &pageServer{t: t, db: filepath.Join(t.TempDir(), "pages.db"), addr: "127.0.0.1:0", hold: hold}
	p.start()
	return p
}

func (p *pageServer) start() {
	p.t.Helper()
	p.ts = p.hold.openServer(p.t, p.db, func(s *server.Server) {
		s.Addr = p.addr
		s.Retry = testRetry
	})
	p.url = p.ts.URL()
	p.addr = strings.TrimPrefix(p.url, "http://") // a restart binds the same port
	p.api = &client.Client{BaseURL: p.url}
}

// stop closes the server and the store; it is safe to call twice.
func (p *pageServer) stop() {
	p.t.Helper()
	p.ts.close(p.t)
}

func (p *pageServer) createOrder(id string) {
	p.t.Helper()
	req := client.CreateOrderRequest{ID: id, Details: json.RawMessage(`{"restaurant":"Luigi's","items":2}`)}
	if res, err := p.api.CreateOrder(context.Background(), req); err != nil || !res.Created {
		p.t.Fatalf("create %s: created %v, %v", id, res.Created, err)
	}
}

func (p *pageServer) setStatus(id string, st ordercast.Status, note string) {
	p.t.Helper()
	if _, err := p.api.SetStatus(context.Background(), id, client.SetStatusRequest{Status: st, Note: note}); err != nil {
		p.t.Fatalf("set %s to %s: %v", id, st, err)
	}
}

func (p *pageServer) order(id string) ordercast.Order {
	p.t.Helper()
	o, err := p.api.Order(context.Background(), id)
	if err != nil {
		p.t.Fatalf("get %s: %v", id, err)
	}
	return o
}

// browser is one headless Chromium tab. It records the page's JavaScript errors (failing the
// test at the end if there were any) and the URLs it requested.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []string
	seen     chan string // every requested URL, for tests that wait for one
}

// chromium is the one Chromium the package's browser tests share, started by the first of them
// and ended by TestMain. Each test's tab opens in a browser context of its own (as an incognito
// window: cookies, storage, cache and permissions apart), which keeps the tests as apart as a
// Chromium each did, without starting one for each of a hundred tests (0.7 s each, a quarter of
// the package's run).
var chromium struct {
	mu   sync.Mutex
	ctx  context.Context // the browser's first tab: the tests' tabs are its children
	stop context.CancelFunc
}

// sharedChromium returns the shared browser's first tab, starting it on the first call, and
// again after it ended (a crash): one test's broken browser fails no test after it.
func sharedChromium() (context.Context, error) {
	chromium.mu.Lock()
	defer chromium.mu.Unlock()
	if chromium.ctx != nil && chromium.ctx.Err() == nil {
		return chromium.ctx, nil
	}
	if chromium.stop != nil {
		chromium.stop()
		chromium.ctx, chromium.stop = nil, nil
	}
	path, err := headless.Find()
	if err != nil {
		return nil, err
	}
	allocCtx, cancelAlloc := headless.Allocator(context.Background(), path)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() { cancel(); cancelAlloc() }
	if err := chromedp.Do(ctx); err != nil { // no steps: start the browser
		stop()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	chromium.ctx, chromium.stop = ctx, stop
	return ctx, nil
}

// TestMain ends the shared browser, if a test started it, once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	chromium.mu.Lock()
	if chromium.stop != nil {
		chromium.stop()
	}
	chromium.mu.Unlock()
	os.Exit(code)
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := headless.Find(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser tests need Chromium under CI: %v", err)
		}
		t.Skipf("browser tests skipped: %v; install Chromium (Debian: apt-get install chromium) or set ORDERCAST_CHROMIUM", err)
	}
	parent, err := sharedChromium()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
	b := &browser{t: t, ctx: ctx, seen: make(chan string, 1024)}

	var errMu sync.Mutex
	var jsErrors []string
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			errMu.Lock()
			jsErrors = append(jsErrors, "exception: "+text)
			errMu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				errMu.Lock()
				jsErrors = append(jsErrors, "console.error: "+strings.Join(parts, " "))
				errMu.Unlock()
			}
		case *network.EventRequestWillBeSent:
			b.mu.Lock()
			b.requests = append(b.requests, ev.Request.URL)
			b.mu.Unlock()
			select {
			case b.seen <- ev.Request.URL:
			default: // nobody is waiting for this many; the list above keeps them all
			}
		}
	}); err != nil {
		cancel()
		t.Fatalf("open a tab: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		errMu.Lock()
		defer errMu.Unlock()
		for _, e := range jsErrors {
			t.Errorf("JavaScript error in the page: %s", e)
		}
	})
	return b
}

// do runs browser actions with a bound of 10 s, failing the test with what was being done.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.doWithin(10*time.Second, what, actions...)
}

// doWithin runs browser actions as do does, with the bound d.
func (b *browser) doWithin(d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// setVisibility makes the page take itself as shown or hidden (document.visibilityState), as a
// tab switch does, and tells it so (visibilitychange).
func (b *browser) setVisibility(state string) {
	b.t.Helper()
	eval[bool](b, `(Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => '`+state+`'}),
		document.dispatchEvent(new Event('visibilitychange')), true)`)
}

// waitFor waits until the CSS selector matches a visible element.
func (b *browser) waitFor(sel string) {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// waitLong waits as waitFor does, with a bound of 30 s rather than 10, for what takes the page
// seconds: the first screen of a board of 2,000 rows takes 1.2 to 1.7 s in headless Chromium
// here alone (making its rows), more beside the rest of the tests.
func (b *browser) waitLong(sel string) {
	b.t.Helper()
	b.doWithin(30*time.Second, "wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// refuseStream takes the page's stream down and keeps it down: Chromium refuses every request to
// a URL matching pattern (as a phone in a tunnel finds) until restore is called. The stream goes
// down when it next ends (the server's StreamLifetime, which a test using this sets short), and
// refuseStream returns once the page has seen it go (#conn reconnecting) and an attempt to open
// it again was refused.
func (b *browser) refuseStream(pattern string) (restore func()) {
	b.t.Helper()
	restore, refused := b.failRequests(network.ErrorReasonConnectionRefused, pattern)
	b.waitFor(`#conn[data-state="reconnecting"]`)
	select { // an attempt refused: the page's stream is down, and stays down
	case <-refused:
	case <-time.After(10 * time.Second):
		b.t.Fatal("the page never tried to open its stream again")
	}
	return restore
}

// failRequests makes Chromium fail every request to a URL matching one of patterns, as a
// network would with reason, until restore is called; refused is told (without blocking) of
// each one failed.
func (b *browser) failRequests(reason network.ErrorReason, patterns ...string) (restore func(), refused <-chan struct{}) {
	b.t.Helper()
	failed := make(chan struct{}, 1)
	if err := chromedp.Listen(b.ctx, func(ev any) {
		if ev, ok := ev.(*fetch.EventRequestPaused); ok {
			select {
			case failed <- struct{}{}:
			default:
			}
			go func() { // a listener may not send commands itself
				_ = chromedp.Do(b.ctx, func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
					_, err := cdp.Call(ctx, tgt, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: reason})
					return chromedp.Void{}, err
				})
			}()
		}
	}); err != nil {
		b.t.Fatal(err)
	}
	var ps []*fetch.RequestPattern
	for _, p := range patterns {
		ps = append(ps, &fetch.RequestPattern{URLPattern: p})
	}
	b.do("fail the requests to "+strings.Join(patterns, ", "), func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, fetch.Enable, fetch.EnableParams{Patterns: ps})
		return chromedp.Void{}, err
	})
	return func() {
		b.t.Helper()
		b.do("let the requests through", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
			_, err := cdp.Call(ctx, tgt, fetch.Disable, cdp.Empty{})
			return chromedp.Void{}, err
		})
	}, failed
}

// tap clicks a row's control once it takes clicks: enabled, its row not waiting for an answer
// (aria-disabled: the stream's event can show a change before the API has answered it) and its
// words not just changed (data-settling). A click before then is ignored, as the page means it;
// so is one that a redraw between the wait and the click settled (the API's answer coming
// after the event, say). tap sees what became of its click (armTap) and taps again when the
// button did not take it, as a person would, at most twice more: when it was settling, or when
// the click reached something else, as a click does that lands while the browser has not yet
// drawn the row (content-visibility, app.css; a person cannot aim at a row not drawn).
func (b *browser) tap(what, sel string) {
	b.t.Helper()
	for try := 1; ; try++ {
		b.waitFor(sel + `:not([disabled]):not([aria-disabled]):not([data-settling])`)
		eval[bool](b, armTap(sel))
		b.do(what, chromedp.Click(chromedp.CSS(sel)))
		became, err := chromedp.Run(b.ctx, chromedp.Poll[string](`window.ocTapped || null`, chromedp.WithPollingTimeout(5*time.Second)))
		if err != nil {
			b.t.Fatalf("%s: the click made no click event: %v", what, err)
		}
		if became == "taken" {
			return
		}
		if try == 3 {
			b.t.Fatalf("%s: three clicks did not take: the last %s", what, became)
		}
		b.t.Logf("%s: the click %s; again", what, became)
	}
}

// armTap is the script that notes, in window.ocTapped, what becomes of the next click on the
// page: taken by the control sel, ignored by it (settling), or reaching something else (where).
// It listens before the page's own listeners do (capture), so it sees the control as they do.
func armTap(sel string) string {
	return `(sel => {
		const btn = document.querySelector(sel);
		window.ocTapped = '';
		document.addEventListener('click', e => {
			window.ocTapped = !btn.contains(e.target)
				? 'reached ' + e.target.tagName.toLowerCase() + '.' + e.target.className + ' (the control drawn: ' + btn.checkVisibility({ contentVisibilityAuto: true }) + ')'
				: btn.hasAttribute('data-settling') ? 'came while it was settling' : 'taken';
		}, { capture: true, once: true });
		return true;
	})(` + strconv.Quote(sel) + `)`
}

// poll waits until the JavaScript expression expr is true, failing the test with what was
// being waited for after 10 s.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// passTime makes the page take d as passed (or, negative, as not passed after all) at once:
// both of its clocks move, the wall clock (Date.now) and the monotonic one (performance.now)
// that the pages measure ages and silences by, as time passing moves both. (A step of the
// phone's clock moves Date.now alone: TestTrackingMapIgnoresAStepOfThePhonesClock.)
func passTime(b *browser, d time.Duration) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`((ms, date, mono) => {
		Date.now = () => date() + ms;
		performance.now = () => mono() + ms;
		return true;
	})(%d, Date.now, performance.now.bind(performance))`, d.Milliseconds()))
}

// countRequests returns how many requested URLs contain part.
func (b *browser) countRequests(part string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, u := range b.requests {
		if strings.Contains(u, part) {
			n++
		}
	}
	return n
}

// tokenInStreamURLs fails the test for every stream the page asked for (an EventSource, or the
// fetch that asks why one was refused) with a token in its URL: a page's stream credential is
// its cookie, and a URL ends up in proxies' access logs.
func (b *browser) tokenInStreamURLs() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	streams := 0
	for _, u := range b.requests {
		if !strings.Contains(u, "/stream") {
			continue
		}
		streams++
		if strings.Contains(u, "token=") {
			b.t.Errorf("the page opened a stream with a token in its URL: %s", u)
		}
	}
	if streams == 0 {
		b.t.Error("the page opened no stream")
	}
}

// timelineSeqs lists the seq of each timeline row, top to bottom.
func timelineSeqs(b *browser) []string {
	b.t.Helper()
	return eval[[]string](b, `Array.from(document.querySelectorAll('#timeline li')).map(li => li.dataset.seq)`)
}

func checkSeqs(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("timeline rows have seqs %v, want %v (newest first, each once)", got, want)
	}
}

// screenshots saves the page at phone and desktop size into $ORDERCAST_SCREENSHOTS, when set,
// so that a person can look at them; the tests assert nothing about pixels.
func screenshots(b *browser, name string) {
	b.t.Helper()
	dir := os.Getenv("ORDERCAST_SCREENSHOTS")
	if dir == "" {
		return
	}
	for _, size := range []struct {
		label string
		w, h  int64
	}{{"phone", 390, 844}, {"desktop", 1280, 860}} {
		b.do("resize to "+size.label, chromedp.EmulateViewport(size.w, size.h))
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			b.t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+size.label+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// TestTrackingPageShowsTheOrdersDetails: the tracking page lists an order's details: a plain
// value as it is, a list of plain values joined with commas (a customer must see the allergies
// the kitchen was told of), and nothing for null, an empty list or a value with structure in it.
func TestTrackingPageShowsTheOrdersDetails(t *testing.T) {
	srv := startPageServer(t)
	details := `{"restaurant":"Luigi's","items":2,"allergies":["nuts","gluten"],"paid":true,"none":null,"empty":[],"nested":{"a":1},"mixed":[1,{"b":2}]}`
	if _, err := srv.api.CreateOrder(context.Background(), client.CreateOrderRequest{ID: "o-details", Details: json.RawMessage(details)}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-details"))
	b.waitFor(`#details dt`)
	got := eval[string](b, `Array.from(document.querySelectorAll('#details dt')).map(function (dt) { return dt.textContent + '=' + dt.nextElementSibling.textContent; }).join('; ')`)
	if want := "restaurant=Luigi's; items=2; allergies=nuts, gluten; paid=true"; got != want {
		t.Errorf("the details read %q, want %q", got, want)
	}
}

func TestTrackingPageShowsStatusAndLiveChanges(t *testing.T) {
	srv := startPageServer(t)
	b := newBrowser(t)
	srv.createOrder("o-live")

	b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-live"))
	b.waitFor(`#status-line[data-status="placed"]`)
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(`#stepper li[data-status="placed"][aria-current="step"]`)
	if live := eval[string](b, `document.getElementById('status-line').getAttribute('aria-live')`); live != "polite" {
		t.Fatalf("status line aria-live = %q, want polite: changes must be announced", live)
	}

	// A marker on window survives only if the page is not reloaded.
	eval[bool](b, `window.noReload = true`)
	srv.setStatus("o-live", ordercast.StatusConfirmed, "Luigi accepted")
	b.waitFor(`#status-line[data-status="confirmed"]`)
	b.waitFor(`#stepper li[data-status="confirmed"][aria-current="step"]`)
	b.waitFor(`#stepper li[data-status="placed"][data-state="done"] time`)
	b.waitFor(`#timeline li[data-seq="2"] .row-note`)
	if !eval[bool](b, `window.noReload === true`) {
		t.Fatal("the page reloaded to show the change")
	}
	if note := eval[string](b, `document.querySelector('#timeline li[data-seq="2"] .row-note').textContent`); note != "Luigi accepted" {
		t.Fatalf("timeline note = %q, want %q", note, "Luigi accepted")
	}
	checkSeqs(t, timelineSeqs(b), "2", "1")
	if got := eval[string](b, `document.getElementById('status-line').textContent`); !strings.Contains(got, "Confirmed") {
		t.Fatalf("status line = %q, want it to name the new status", got)
	}
	srv.setStatus("o-live", ordercast.StatusPreparing, "")
	b.waitFor(`#status-line[data-status="preparing"]`)
	screenshots(b, "track")
}

func TestTrackingPageResumesAfterServerRestart(t *testing.T) {
	srv := startPageServer(t)
	b := newBrowser(t)
	srv.createOrder("o-restart")
	srv.setStatus("o-restart", ordercast.StatusConfirmed, "")

	b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-restart"))
	b.waitFor(`#status-line[data-status="confirmed"]`)
	b.waitFor(`#conn[data-state="live"]`)
	checkSeqs(t, timelineSeqs(b), "2", "1")

	srv.stop()
	b.waitFor(`#conn[data-state="reconnecting"]`)

	// A change made while the page is away, straight into the same database file.
	st := sqlite.New(srv.db)
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := st.AppendStatus(context.Background(), ordercast.StatusChange{
		OrderID: "o-restart", Status: ordercast.StatusPreparing, Note: "changed while away",
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	srv.start() // the same port: the page's EventSource reconnects by itself
	b.waitFor(`#status-line[data-status="preparing"]`)
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(`#timeline li[data-seq="3"] .row-note`)
	checkSeqs(t, timelineSeqs(b), "3", "2", "1")

	srv.setStatus("o-restart", ordercast.StatusReady, "")
	b.waitFor(`#status-line[data-status="ready"]`)
	checkSeqs(t, timelineSeqs(b), "4", "3", "2", "1")
}

func TestTrackingPageEndsAfterTerminalStatus(t *testing.T) {
	srv := startPageServer(t)
	b := newBrowser(t)
	srv.createOrder("o-end")
	streamPath := "/v1/orders/o-end/stream"

	b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-end"))
	b.waitFor(`#conn[data-state="live"]`)
	srv.setStatus("o-end", ordercast.StatusDelivered, "at the door")
	b.waitFor(`#conn[data-state="ended"]`)
	b.waitFor(`#stepper li[data-status="delivered"][aria-current="step"]`)
	streams := b.countRequests(streamPath)

	// Had the page left its EventSource open, the browser would reconnect after the retry delay.
	// The page waits several of those, then asks for a marker URL; once the marker request is
	// seen, any reconnect would have been seen before it.
	marker := srv.url + "/healthz?after-ended"
	eval[bool](b, `new Promise(done => setTimeout(() => fetch('/healthz?after-ended').then(() => done(true)), `+
		durationMS(4*testRetry)+`))`)
	waitForRequest(t, b, marker)
	if got := b.countRequests(streamPath); got != streams {
		t.Fatalf("the page asked for its stream %d more times after it ended", got-streams)
	}
	checkSeqs(t, timelineSeqs(b), "2", "1")

	// An order that has already ended is shown without opening a stream at all.
	before := b.countRequests(streamPath)
	b.do("reload", chromedp.Navigate(srv.url+"/track/o-end"))
	b.waitFor(`#conn[data-state="ended"]`)
	b.waitFor(`#status-line[data-status="delivered"]`)
	eval[bool](b, `fetch('/healthz?after-reload').then(() => true)`)
	waitForRequest(t, b, srv.url+"/healthz?after-reload")
	if got := b.countRequests(streamPath); got != before {
		t.Fatalf("the page opened a stream for an order that had ended")
	}
}

func waitForRequest(t *testing.T, b *browser, url string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u := <-b.seen:
			if u == url {
				return
			}
		case <-deadline:
			t.Fatalf("the page never requested %s", url)
		}
	}
}

func durationMS(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// emulateMedia makes b's pages see a reader's setting, a media feature such as
// prefers-color-scheme: dark.
func emulateMedia(b *browser, feature, value string) {
	b.t.Helper()
	b.do("prefer "+feature+": "+value, func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: feature, Value: value}},
		})
		return chromedp.Void{}, err
	})
}

// TestPagesHaveADarkScheme: a browser set to dark (a phone at night) gets the pages dark, and
// every pair checked of text and what is behind it still reads at 4.5:1 at least: the page's
// text, a row's line and its buttons, a badge, the status line.
func TestPagesHaveADarkScheme(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-dark")
	b := newBrowser(t)
	emulateMedia(b, "prefers-color-scheme", "dark")
	colours := func(sel string) [2]string {
		t.Helper()
		// The colour of sel's text and the first opaque background at or behind it.
		return eval[[2]string](b, `(function (e) {
			var fg = getComputedStyle(e).color;
			for (; e; e = e.parentElement) {
				var bg = getComputedStyle(e).backgroundColor;
				if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return [fg, bg];
			}
			return [fg, 'rgb(255, 255, 255)'];
		})(document.querySelector('`+sel+`'))`)
	}
	for _, page := range []struct {
		path, ready string
		sels        []string
	}{
		{"/console", `li.order[data-order-id="o-dark"] .advance`, []string{"h1", `li.order[data-order-id="o-dark"] .order-meta`, `li.order[data-order-id="o-dark"] .advance`, `li.order[data-order-id="o-dark"] .cancel`, `li.order[data-order-id="o-dark"] .badge`, "#conn"}},
		{"/track/o-dark", `#status-line[data-status="placed"]`, []string{"#status-line", "#details dd", "#timeline .row-status"}},
	} {
		b.do("open "+page.path, chromedp.Navigate(srv.url+page.path))
		b.waitFor(page.ready)
		if bg := eval[string](b, `getComputedStyle(document.body).backgroundColor`); contrast(t, bg, "rgb(0, 0, 0)") > 2 {
			t.Errorf("%s: the page's background is %s in the dark scheme", page.path, bg)
		}
		for _, sel := range page.sels {
			if c := colours(sel); contrast(t, c[0], c[1]) < 4.5 {
				t.Errorf("%s: %s is %s on %s, %.2f:1", page.path, sel, c[0], c[1], contrast(t, c[0], c[1]))
			}
		}
		screenshots(b, "dark"+strings.ReplaceAll(page.path, "/", "-"))
	}
}

// TestPagesFollowTheReadersTextSize: a reader who set larger text (here the root's size doubled,
// as a browser's default font size does, and more) gets every line larger, not only the
// headings, and every page still fits a phone's width with its words whole: nothing to scroll
// sideways to read, no word broken letter by letter beside a column it could have taken (WCAG
// 1.4.4, 1.4.10); and on a phone the console's title wraps between words, never inside "Console".
func TestPagesFollowTheReadersTextSize(t *testing.T) {
	// The home page links to the parties' pages, as the demo's does.
	ts := newServer(t, func(s *server.Server) {
		s.Retry = testRetry
		s.PartyLinks = []server.PartyLink{
			{Party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-big"}, Name: "Saffron House"},
			{Party: ordercast.Party{Kind: ordercast.PartyCustomer, ID: "u-big"}, Name: "Dara"},
			{Party: ordercast.Party{Kind: ordercast.PartyCourier, ID: "c-big"}, Name: "Kofi"},
		}
	})
	base, c := ts.URL(), &client.Client{BaseURL: ts.URL()}
	ctx := t.Context()
	req := client.CreateOrderRequest{ID: "o-big", RestaurantID: "r-big", CustomerID: "u-big",
		Details: json.RawMessage(`{"restaurant":"Saffron House","items":2,"instructions":"third floor, no lift"}`)}
	if _, err := c.CreateOrder(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetStatus(ctx, "o-big", client.SetStatusRequest{Status: ordercast.StatusConfirmed, Note: "accepted by the kitchen"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetCourier(ctx, "o-big", client.SetCourierRequest{CourierID: api.AssignTo("c-big"), CourierName: "Kofi Mensah-Boateng"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	for _, size := range []string{"32px", "40px"} {
		for _, page := range []string{"/", "/track/o-big", "/couriers/c-big", "/restaurants/r-big", "/customers/u-big", "/console"} {
			b.do("a phone's screen", chromedp.EmulateViewport(390, 844)) // again: screenshots leaves a desktop's
			b.do("open "+page, chromedp.Navigate(base+page))
			b.waitFor(`#conn[data-state="live"]`)
			b.waitFor(`li.order[data-order-id="o-big"], #status-line[data-status="confirmed"], a[href$="/o-big"]`)
			eval[string](b, `document.documentElement.style.fontSize = '`+size+`'`)
			if got := eval[string](b, `getComputedStyle(document.body).fontSize`); got != size {
				t.Errorf("%s: the body's text is %s at a root of %s, want %[3]s", page, got, size)
			}
			if wide := eval[[]string](b, wider); len(wide) > 0 {
				t.Errorf("%s: at %s text on a phone, wider than the screen: %s", page, size, strings.Join(wide, "; "))
			}
			if cut := eval[[]string](b, cutButtons); len(cut) > 0 {
				t.Errorf("%s: at %s text on a phone, buttons too narrow for their words: %s", page, size, strings.Join(cut, ", "))
			}
			if broken := eval[[]string](b, brokenWords); len(broken) > 0 {
				t.Errorf("%s: at %s text on a phone, words broken over lines: %s", page, size, strings.Join(broken, ", "))
			}
			if page == "/console" {
				consoleTitle(t, b)
			}
			screenshots(b, "large-text-"+size+strings.ReplaceAll(page, "/", "-"))
		}
	}
}

// consoleTitle checks the console's title at large text on a phone: it wraps between words,
// never inside "Console", and is not cut.
func consoleTitle(t *testing.T, b *browser) {
	t.Helper()
	if lines := eval[int](b, `(function () {
		var r = document.createRange(), word = document.querySelector('h1.bar-title').firstChild;
		r.setStart(word, 0); r.setEnd(word, 'Console'.length);
		return r.getClientRects().length;
	})()`); lines != 1 {
		t.Errorf("the console's title breaks \"Console\" over %d lines at large text on a phone", lines)
	}
	// Nor is it cut: with no room beside the brand and the badge, it takes a line of its own.
	if cut := eval[bool](b, `(h => h.scrollWidth > h.clientWidth)(document.querySelector('h1.bar-title'))`); cut {
		t.Error("the console's title is cut at large text on a phone")
	}
}

// wider is the script that lists the elements of the page that reach past the screen's right
// edge, each with how far, each once (not its children too): what a reader must scroll sideways
// to see. What a box within the screen cuts off (a title's ellipsis) is not among them.
const wider = `(() => {
	const edge = document.documentElement.clientWidth, out = [];
	const past = e => e.getBoundingClientRect().right > edge + 0.5;
	const cut = e => {
		for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
			if (getComputedStyle(a).overflowX !== 'visible' && !past(a)) return true;
		}
		return false;
	};
	for (const e of document.body.querySelectorAll('*')) {
		const r = e.getBoundingClientRect();
		if (r.width > 0 && past(e) && !out.some(o => o.el.contains(e)) && !cut(e)) out.push({ el: e, by: r.right - edge });
	}
	return out.map(o => o.el.tagName.toLowerCase() + (o.el.className ? '.' + o.el.className.split(' ').join('.') : '') + ' by ' + Math.round(o.by) + ' px');
})()`

// cutButtons is the script that lists the page's buttons too narrow for their words, which they
// cut off.
const cutButtons = `Array.from(document.querySelectorAll('button')).filter(b => b.checkVisibility() && b.scrollWidth > b.clientWidth + 1).map(b => b.textContent)`

// brokenWords is the script that lists the words of the page's text that are broken over two
// lines, but for ids and coordinates (which break anywhere by design, being one long word). A
// break after a word's hyphen is a line's end like a space, not a broken word.
const brokenWords = `(() => {
	const out = [], r = document.createRange();
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, n =>
		n.parentElement.closest('.order-id, code, .stop-map, [hidden], .visually-hidden, option, script') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT);
	for (let n = walk.nextNode(); n; n = walk.nextNode()) {
		for (const m of n.data.matchAll(/[^\s-]+-?/g)) {
			r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
			const tops = new Set(Array.from(r.getClientRects()).filter(c => c.width > 0).map(c => Math.round(c.top)));
			if (tops.size > 1) out.push(m[0]);
		}
	}
	return out;
})()`

func TestConsoleChangesStatusAndShowsRefusals(t *testing.T) {
	srv := startPageServer(t)
	b := newBrowser(t)
	srv.createOrder("o-console")
	row := `li.order[data-order-id="o-console"]`

	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row + `[data-status="placed"]`)

	// Each button shown names its order (a screen reader reads a button alone, as the keyboard
	// reaches it), and the connection's state is a live region.
	names := `Array.from(document.querySelectorAll('` + row + ` button')).filter(b => !b.closest('[hidden]')).map(b => b.getAttribute('aria-label')).join(' | ') + ' / ' + document.getElementById('conn').getAttribute('role')`
	if got, want := eval[string](b, names), "Advance to Confirmed: order o-console | Cancel order o-console | Set the chosen status of order o-console | "+
		"Assign the courier to order o-console | Unassign the courier of order o-console | Tracking link for order o-console / status"; got != want {
		t.Errorf("the row's buttons and the connection say %q to a screen reader, want %q", got, want)
	}

	b.do("advance", chromedp.Click(chromedp.CSS(row+` .advance`)))
	b.waitFor(row + `[data-status="confirmed"]`)
	if got := srv.order("o-console").Status; got != ordercast.StatusConfirmed {
		t.Fatalf("after Advance the API says %s, want confirmed", got)
	}

	// The picker offers the later statuses only, the next one first; cancelling is its button's.
	if got := eval[string](b, `Array.from(document.querySelectorAll('`+row+` .pick option')).map(o => o.value).join(' ') + ' / ' + document.querySelector('`+row+` .pick').value`); got != "preparing ready out_for_delivery delivered / preparing" {
		t.Errorf("at confirmed the picker offers %q, want the later statuses with the next chosen", got)
	}

	// A change the API refuses (a backward one, which a stale page might still send) shows the
	// API's message, and the order stays.
	eval[bool](b, `(() => { const p = document.querySelector('`+row+` .pick'); p.add(new Option('Placed', 'placed')); p.value = 'placed'; return true; })()`)
	// (Set is the actions' own: Unassign, among the courier's controls, looks like it, class set.)
	b.waitFor(row + ` .actions > .set:not([data-settling])`) // the Advance changed what the picker showed
	b.do("set", chromedp.Click(chromedp.CSS(row+` .actions > .set`)))
	b.waitFor(row + ` .row-error`)
	msg := eval[string](b, `document.querySelector('`+row+` .row-error').textContent`)
	if want := "cannot move from confirmed back to placed"; msg != want {
		t.Fatalf("error shown = %q, want the API's message %q", msg, want)
	}
	if got := srv.order("o-console").Status; got != ordercast.StatusConfirmed {
		t.Fatalf("after a refused change the API says %s, want confirmed", got)
	}

	// Changes made elsewhere arrive through the stream of all orders.
	srv.setStatus("o-console", ordercast.StatusReady, "")
	b.waitFor(row + `[data-status="ready"]`)

	// An order created in the form appears, belongs to the restaurant and customer given, and
	// can be cancelled.
	b.do("create",
		chromedp.SendKeys(chromedp.CSS(`#create input[name="id"]`), "o-form"),
		chromedp.SendKeys(chromedp.CSS(`#create input[name="restaurant_id"]`), "saffron"),
		chromedp.SendKeys(chromedp.CSS(`#create input[name="restaurant"]`), "Saffron House"),
		chromedp.SendKeys(chromedp.CSS(`#create input[name="customer_id"]`), "ana"),
		chromedp.Click(chromedp.CSS(`#create button[type="submit"]`)),
	)
	b.waitFor(`li.order[data-order-id="o-form"][data-status="placed"]`)
	if got := srv.order("o-form"); got.RestaurantID != "saffron" || got.CustomerID != "ana" {
		t.Errorf("the form's order belongs to restaurant %q and customer %q, want saffron and ana", got.RestaurantID, got.CustomerID)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](
		`document.querySelector('li.order[data-order-id="o-form"] .order-meta').textContent.includes('Saffron House')`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the new order's details never showed: %v", err)
	}
	screenshots(b, "console")
	b.tap("cancel", `li.order[data-order-id="o-form"] .cancel`)
	b.tap("confirm the cancel", `li.order[data-order-id="o-form"] .cancel[data-confirming]`)
	b.waitFor(`li.order[data-order-id="o-form"][data-status="cancelled"]`)
	if got := srv.order("o-form").Status; got != ordercast.StatusCancelled {
		t.Fatalf("after Cancel the API says %s, want cancelled", got)
	}

	// Creating an order that exists with other details shows the API's refusal.
	b.do("create a clash",
		chromedp.SendKeys(chromedp.CSS(`#create input[name="id"]`), "o-console"),
		chromedp.Click(chromedp.CSS(`#create button[type="submit"]`)),
	)
	b.waitFor(`#create-error`)
	if msg := eval[string](b, `document.getElementById('create-error').textContent`); !strings.Contains(msg, "already exists") {
		t.Fatalf("create error shown = %q, want the API's order_exists message", msg)
	}
}

// TestConsoleKeepsThePickersChoice: an order that moves while an operator has a later status
// chosen in its row's picker keeps that choice while it is still offered, and Set takes it; a
// choice the move made impossible gives way to the next status, and Set then pauses, so that a
// click aimed at the old choice applies nothing (it used to apply the next status, unseen).
func TestConsoleKeepsThePickersChoice(t *testing.T) {
	srv := startPageServer(t)
	b := newBrowser(t)
	srv.createOrder("o-pick")
	row := `li.order[data-order-id="o-pick"]`
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row + `[data-status="placed"]`)
	pick := func(status string) {
		t.Helper()
		eval[bool](b, `(p => (p.value = '`+status+`', p.dispatchEvent(new Event('change')), true))(document.querySelector('`+row+` .pick'))`)
	}
	shown := func() string {
		t.Helper()
		return eval[string](b, `document.querySelector('`+row+` .pick').value`)
	}

	pick("delivered")
	srv.setStatus("o-pick", ordercast.StatusConfirmed, "")
	b.waitFor(row + `[data-status="confirmed"]`)
	if got := shown(); got != "delivered" {
		t.Fatalf("after the order moved to confirmed the picker shows %q, want the operator's delivered", got)
	}
	if eval[bool](b, `document.querySelector('`+row+` .set').hasAttribute('data-settling')`) {
		t.Errorf("Set pauses though the picker shows what it showed")
	}

	pick("preparing")
	srv.setStatus("o-pick", ordercast.StatusReady, "")
	b.waitFor(row + `[data-status="ready"]`)
	if got := shown(); got != "out_for_delivery" {
		t.Fatalf("after the order moved past the choice the picker shows %q, want the next status", got)
	}
	if !eval[bool](b, `(set => set.hasAttribute('data-settling') && (set.click(), set.hasAttribute('data-ignored')))(document.querySelector('`+row+` .set'))`) {
		t.Fatalf("Set took a click right after the picker's choice gave way: want it to pause and ignore it")
	}
	if got := srv.order("o-pick").Status; got != ordercast.StatusReady {
		t.Fatalf("a click aimed at the old choice moved the order to %s", got)
	}

	b.waitFor(row + ` .actions > .set:not([data-settling])`)
	b.do("set", chromedp.Click(chromedp.CSS(row+` .actions > .set`)))
	b.waitFor(row + `[data-status="out_for_delivery"]`)
}

// TestConsoleShowsDetailsOnlyAsTheyRead: an order's details are its client's JSON, and a row
// shows the restaurant only when it is text and the items only when they are a count; others
// showed as "[object Object]" or "many items".
func TestConsoleShowsDetailsOnlyAsTheyRead(t *testing.T) {
	srv := startPageServer(t)
	for id, details := range map[string]string{
		"o-odd":  `{"restaurant":{"name":"Luigi's"},"items":"many"}`,
		"o-fine": `{"restaurant":"Luigi's","items":3}`,
	} {
		if _, err := srv.api.CreateOrder(context.Background(), client.CreateOrderRequest{ID: id, Details: json.RawMessage(details)}); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t)
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`li.order[data-order-id="o-fine"]`)
	b.waitFor(`li.order[data-order-id="o-odd"]`)
	meta := func(id string) string {
		return eval[string](b, `document.querySelector('li.order[data-order-id="`+id+`"] .order-meta').textContent`)
	}
	if got := meta("o-fine"); !strings.HasPrefix(got, "Luigi's · 3 items") {
		t.Errorf("o-fine's line reads %q, want its restaurant and items first", got)
	}
	if got := meta("o-odd"); strings.Contains(got, "object") || strings.Contains(got, "many") {
		t.Errorf("o-odd's line reads %q, want no details that are not text or a count", got)
	}
}

func TestHomePageLinksToConsoleAndActiveOrders(t *testing.T) {
	srv := startPageServer(t)
	b := newBrowser(t)
	srv.createOrder("o-home")
	b.do("open the home page", chromedp.Navigate(srv.url+"/"))
	b.waitFor(`a[href="/console"]`)
	b.do("follow the order link", chromedp.Click(chromedp.CSS(`a[href="/track/o-home"]`)))
	b.waitFor(`#status-line[data-status="placed"]`)
	b.waitFor(`#conn[data-state="live"]`)
	b.do("open an unknown order", chromedp.Navigate(srv.url+"/track/o-nope"))
	b.waitFor(`#problem`)
	if msg := eval[string](b, `document.getElementById('problem').textContent`); msg != "There is no order o-nope. Check the link you were given." {
		t.Fatalf("unknown order shows %q", msg)
	}
	if eval[bool](b, `!document.getElementById('timeline-section').hidden || !document.getElementById('stepper').hidden`) {
		t.Error("the missing order's page shows an empty timeline or stepper")
	}
	if title := eval[string](b, `document.title`); title != "No such order · Order o-nope" {
		t.Errorf("the missing order's tab is titled %q, want it to say there is none", title)
	}
	screenshots(b, "missing")
	if eval[bool](b, `!document.getElementById('conn').hidden`) {
		t.Errorf("the missing order's page shows a connection badge (%q): an order that never was did not end", eval[string](b, `document.getElementById('conn').textContent`))
	}
	b.do("back home", chromedp.Navigate(srv.url+"/"))
	b.waitFor(`a[href="/track/o-home"]`)
	screenshots(b, "home")
}

// TestPageStreamEndsOnNoContent: the pages' stream helper stops when the server answers 204 and
// the page holds the order's terminal event already (finished: nothing will ever follow),
// instead of asking again and again with backoff. (A 204 the page cannot account for is a
// middlebox's: TestTrackingPageIsNotEndedByAMiddlebox.)
func TestPageStreamEndsOnNoContent(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-end")
	end := mustSetStatus(t, base, "o-end", ordercast.StatusCancelled)
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-end"))
	b.waitFor(`#status-line[data-status="cancelled"]`)
	got := eval[string](b, fmt.Sprintf(`new Promise(resolve => {
		const states = [];
		const s = window.ordercast.stream('/v1/orders/o-end/stream', {lastEventId: %d, events: {}, finished: () => true,
			onState: st => { states.push(st); if (st === 'ended') resolve(states.join(',')); }});
		setTimeout(() => { resolve('still going after 8 s: ' + states.join(',')); s.close(); }, 8000);
	})`, end.Seq))
	if got != "connecting,reconnecting,ended" {
		t.Fatalf("the stream's states: %s; want it ended after the 204", got)
	}
}

// frontProxy starts a reverse proxy to target, as a load balancer in front of a node would be,
// and returns its URL. intercept sees each request first and may answer it itself (returning
// true): a test stands in for a draining node, a limit or a slow stream there. A request that
// intercept holds is let go when the test ends.
func frontProxy(t *testing.T, target string, intercept func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) bool) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.FlushInterval = -1 // streams pass as they are written
	done := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !intercept(w, r, done) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	t.Cleanup(func() { close(done) }) // first: a held request ends before Close waits for it
	return front.URL
}

// answerError answers as the API does when it refuses, with its JSON error body.
func answerError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, message)
}

// TestTrackingPageRetriesAFailedFirstLoad: the tracking page's first load of the order and its
// history may fail for a moment (a draining node's 503, a limit's 429, the network): the page
// says "reconnecting" and tries again with the stream's backoff until it loads and goes live,
// rather than ending for good. Only a refusal or an unknown order is final (see
// TestHomePageLinksToConsoleAndActiveOrders, TestTrackingPageWithTokenCookie).
func TestTrackingPageRetriesAFailedFirstLoad(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-retry")
	var failing atomic.Bool
	failing.Store(true)
	var tries atomic.Int32
	failed := make(chan struct{}, 100)
	base := frontProxy(t, srv.url, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if !failing.Load() || r.URL.Path != "/v1/orders/o-retry" {
			return false
		}
		if tries.Add(1)%2 == 1 {
			answerError(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down")
		} else {
			answerError(w, http.StatusTooManyRequests, "rate_limited", "too many requests")
		}
		failed <- struct{}{}
		return true
	})
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-retry"))
	for i := range 2 { // a 503, then a 429
		select {
		case <-failed:
		case <-time.After(10 * time.Second):
			t.Fatalf("the page asked for the order %d times while the server failed, want it to try again", i)
		}
	}
	b.waitFor(`#conn[data-state="reconnecting"]`)
	if eval[bool](b, `!document.getElementById('problem').hidden`) {
		t.Errorf("the page shows a problem while it retries: %q", eval[string](b, `document.getElementById('problem').textContent`))
	}
	failing.Store(false)
	b.waitFor(`#status-line[data-status="placed"]`)
	b.waitFor(`#conn[data-state="live"]`)
	srv.setStatus("o-retry", ordercast.StatusConfirmed, "")
	b.waitFor(`#status-line[data-status="confirmed"]`)
}

// TestTrackingPageStatusLineFollowsTheStatusOnly: the status line says since when the order has
// been in its status (the time the stepper shows for it), and, being a live region that screen
// readers announce, changes only when the status does: a courier event, which keeps the status,
// changes neither. The page's times read in hours and minutes, the whole time in their titles.
func TestTrackingPageStatusLineFollowsTheStatusOnly(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-since")
	srv.setStatus("o-since", ordercast.StatusPreparing, "")
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-since"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(`#status-line[data-status="preparing"]`)
	eval[bool](b, `window.statusChanges = 0;
		new MutationObserver(ms => { window.statusChanges += ms.length; })
			.observe(document.getElementById('status-line'), {childList: true, subtree: true, characterData: true, attributes: true});
		true`)
	if resp, body := call(t, "PUT", srv.url+"/v1/orders/o-since/courier", "", `{"courier_id":"c-9"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("assign: %d %s", resp.StatusCode, body)
	}
	b.waitFor(`#timeline li[data-kind="courier"]`)
	if n := eval[int](b, `window.statusChanges`); n != 0 {
		t.Errorf("a courier event changed the status line's live region %d times, want none", n)
	}
	since := eval[string](b, `(document.querySelector('#status-line time') || {}).dateTime || ''`)
	reached := eval[string](b, `document.querySelector('#stepper li[data-status="preparing"] time').dateTime`)
	var events []ordercast.Event
	for _, ev := range srv.events("o-since") {
		if ev.Status == ordercast.StatusPreparing && ev.Kind == ordercast.KindStatus {
			events = append(events, ev)
		}
	}
	if len(events) != 1 || since != reached || !sameTime(since, events[0].At) {
		t.Errorf("status line since %s, stepper %s; want when the order reached preparing, %v", since, reached, events)
	}
	// Every time on the page reads in hours and minutes (an order's times are read so), the
	// seconds in its title with the date, for whoever asks.
	times := eval[[]string](b, `Array.from(document.querySelectorAll('#status-line time, #stepper time, #timeline time')).map(t => t.textContent + ' | ' + t.title)`)
	hm, full := regexp.MustCompile(`^\D*\d{1,2}:\d{2}\D*$`), regexp.MustCompile(`\d{1,2}:\d{2}:\d{2}`)
	for _, tt := range times {
		text, title, _ := strings.Cut(tt, " | ")
		if !hm.MatchString(text) || !full.MatchString(title) {
			t.Errorf("a time reads %q, titled %q; want hours and minutes, and the seconds in its title", text, title)
		}
	}
	if len(times) < 4 {
		t.Errorf("the page shows %d times, want the status line's, the stepper's and the timeline's", len(times))
	}
	srv.setStatus("o-since", ordercast.StatusReady, "")
	b.waitFor(`#status-line[data-status="ready"]`)
	if n := eval[int](b, `window.statusChanges`); n == 0 {
		t.Error("a new status left the status line as it was")
	}
}

// TestRowTimesReadAsTheReadersLocaleWritesThem: a row's time (the console's, a board's, a
// courier's or a customer's page: one console.js) reads as every time on the pages does, hours
// and minutes in the pages' language on the reader's clock (6:02 AM in the US, 06:02 in Britain
// and Germany; in Arabic or Japanese, English words and digits on their clock, not "٦:٠٢ ص" in an
// English sentence), the whole date and time, seconds included, in its title.
func TestRowTimesReadAsTheReadersLocaleWritesThem(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-time")
	row := `li.order[data-order-id="o-time"]`
	// A fixed instant, 06:02:49 UTC, read in UTC: the hour the page's own times have is now's.
	const sixAM = `'2026-03-01T06:02:49Z'`
	for _, tc := range []struct{ locale, hm, hms string }{
		{"en-US", "6:02 AM", "6:02:49 AM"},
		{"en-GB", "06:02", "06:02:49"},
		{"de-DE", "06:02", "06:02:49"},
		{"ar-EG", "6:02 AM", "6:02:49 AM"},
		{"ja-JP", "06:02", "06:02:49"},
	} {
		b := newBrowser(t)
		b.do("read as "+tc.locale+" in UTC", func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			if _, err := chromedp.Call(ctx, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: tc.locale}); err != nil {
				return chromedp.Void{}, err
			}
			_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"})
			return chromedp.Void{}, err
		})
		b.do("open the console", chromedp.Navigate(srv.url+"/console"))
		b.waitFor(row + `[data-status="placed"]`)
		// \s: a locale may put a narrow no-break space before AM.
		if got := eval[string](b, `[ordercast.formatTime(`+sixAM+`), ordercast.formatTime(`+sixAM+`, true)].join(' | ').replace(/\s/g, ' ')`); got != tc.hm+" | "+tc.hms {
			t.Errorf("%s: 06:02:49 reads %q, want %q", tc.locale, got, tc.hm+" | "+tc.hms)
		}
		got := eval[[]string](b, `(t => t ? [t.dateTime, t.textContent, t.title] : [])(document.querySelector('`+row+` .order-meta time'))`)
		if len(got) != 3 {
			t.Fatalf("%s: the row's time is no <time>: its line reads %q", tc.locale, eval[string](b, `document.querySelector('`+row+` .order-meta').textContent`))
		}
		updated := srv.order("o-time").UpdatedAt
		hm, whole := regexp.MustCompile(`^\d{1,2}:\d{2}(\sAM|\sPM)?$`), regexp.MustCompile(`\d:\d{2}:\d{2}`)
		if !sameTime(got[0], updated) || !hm.MatchString(got[1]) || !whole.MatchString(got[2]) || !strings.Contains(got[2], strconv.Itoa(updated.Year())) {
			t.Errorf("%s: the row's time is %q, reading %q, titled %q; want the order's updated_at, in hours and minutes, whole in its title", tc.locale, got[0], got[1], got[2])
		}
	}
}

// sameTime reports whether the page's ISO time iso is at.
func sameTime(iso string, at time.Time) bool {
	got, err := time.Parse(time.RFC3339Nano, iso)
	return err == nil && got.Equal(at)
}

func (p *pageServer) events(id string) []ordercast.Event {
	p.t.Helper()
	evs, err := p.api.Events(context.Background(), id, 0)
	if err != nil {
		p.t.Fatalf("events of %s: %v", id, err)
	}
	return evs
}

// TestConsoleKeepsTheKeyboardFocus: a row's action taken from the keyboard leaves the focus on
// its button while the change is on its way and after, so the next Tab or Enter goes on from
// there, once the button's new words have settled (an Enter meant for the old ones takes
// nothing); a button that has no more use (the order ended) hands the focus to its row, not to
// the page's start.
func TestConsoleKeepsTheKeyboardFocus(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-focus")
	row := `li.order[data-order-id="o-focus"]`
	b := newBrowser(t)
	recordFetches(b)
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(row + `[data-status="placed"]`)
	focused := func() string {
		return eval[string](b, `(() => { const a = document.activeElement; const r = a.closest('li.order');
			return (r ? r.dataset.orderId + ' ' : '') + a.tagName.toLowerCase() + '.' + a.className; })()`)
	}

	tapOnceItSays(b, row+` .advance`, "Advance to Preparing")
	b.do("advance from the keyboard", chromedp.Focus(chromedp.CSS(row+` .advance`)), chromedp.KeyEvent("\r"))
	// While the change is on its way the button is busy, not disabled, so it keeps the focus.
	b.waitFor(row + `[data-status="confirmed"] .advance:not([aria-disabled])`)
	if got := focused(); got != "o-focus button.advance" {
		t.Errorf("after Advance the focus is on %q, want the Advance button", got)
	}
	// The second Enter, right after the first was answered and meant for "Advance to Confirmed",
	// took nothing: the button's words changed; once they have settled, it advances.
	b.poll("the second Enter", `window.tapped === true`)
	b.waitFor(row + ` .advance:not([data-settling])`)
	if n, st := statusPosts(b, "o-focus"), srv.order("o-focus").Status; n != 1 || st != ordercast.StatusConfirmed {
		t.Fatalf("a second Enter as the button changed: %d changes sent, the order %s; want 1, confirmed", n, st)
	}
	b.do("advance again", chromedp.KeyEvent("\r"))
	b.waitFor(row + `[data-status="preparing"] .advance:not([aria-disabled])`)
	if got := focused(); got != "o-focus button.advance" {
		t.Errorf("after a second Advance the focus is on %q, want the Advance button", got)
	}

	b.do("cancel from the keyboard", chromedp.Focus(chromedp.CSS(row+` .cancel`)), chromedp.KeyEvent("\r"))
	b.waitFor(row + ` .cancel[data-confirming]:not([data-settling])`)
	if got := focused(); got != "o-focus button.cancel danger" {
		t.Errorf("while Cancel asks, the focus is on %q, want the Cancel button", got)
	}
	b.do("confirm from the keyboard", chromedp.KeyEvent("\r"))
	b.waitFor(row + `[data-status="cancelled"]`)
	b.poll("the row is no longer busy", `!document.querySelector('`+row+` [aria-disabled]')`)
	if got := focused(); got != "o-focus li.order" {
		t.Errorf("after Cancel the focus is on %q, want the order's row", got)
	}
}

// TestBoardSaysNoOrdersOnlyOnceItKnows: until the first snapshot arrives the board says it is
// loading, never "No active orders."; an empty snapshot then says so. A stream the server
// refuses shows the reason and not the empty list.
func TestBoardSaysNoOrdersOnlyOnceItKnows(t *testing.T) {
	srv := startPageServer(t)
	release := make(chan struct{})
	base := frontProxy(t, srv.url, func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) bool {
		switch r.URL.Path {
		case "/v1/restaurants/r-slow/stream":
			select {
			case <-release:
				return false
			case <-done:
			case <-r.Context().Done():
			}
			return true
		case "/v1/restaurants/r-refused/stream":
			answerError(w, http.StatusForbidden, "forbidden", "role restaurant may not watch the stream of restaurant r-refused")
			return true
		}
		return false
	})
	b := newBrowser(t)
	b.do("open the board", chromedp.Navigate(base+"/restaurants/r-slow"))
	b.waitFor(`#empty`)
	if got := eval[string](b, `document.getElementById('empty').textContent + '|' + document.getElementById('order-count').textContent`); got != "Loading orders…|" {
		t.Errorf("before its snapshot the board says %q, want that it is loading", got)
	}
	close(release)
	b.waitFor(`#conn[data-state="live"]`)
	b.poll("the empty snapshot", `document.getElementById('empty').textContent === 'No active orders.'`)
	b.waitFor(`#empty`)

	b.do("open a board whose stream is refused", chromedp.Navigate(base+"/restaurants/r-refused"))
	b.waitFor(`#conn[data-state="denied"]`)
	b.waitFor(`#problem`)
	if why := eval[string](b, `document.getElementById('problem').textContent`); !strings.Contains(why, "may not watch") {
		t.Errorf("the refused board says %q, want the server's reason", why)
	}
	if eval[bool](b, `document.getElementById('empty').offsetParent !== null`) {
		t.Errorf("the refused board shows %q", eval[string](b, `document.getElementById('empty').textContent`))
	}
}

// TestATabInTheBackgroundLetsGoOfItsStream: over HTTP/1.1 a browser opens six connections to a
// host, and each open page's stream holds one: five tracking tabs beside the console left its
// clicks none to go by, and they hung. A tab in the background lets go of its stream after a
// grace, and opens it again from the last id when it is looked at, showing what came meanwhile.
// (The test stands in for the browser's tab switch by setting what the page reads.)
func TestATabInTheBackgroundLetsGoOfItsStream(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "bg-1")
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/bg-1"))
	b.waitFor(`#conn[data-state="live"]`)
	waitMetric(t, http.DefaultClient, base, 1, "ordercast_streams_open")
	b.setVisibility("hidden")
	waitMetric(t, http.DefaultClient, base, 0, "ordercast_streams_open")
	ts.mustCommit(t, "bg-1", ordercast.StatusConfirmed)
	b.setVisibility("visible")
	b.waitFor(`#status-line[data-status="confirmed"]`)
	b.waitFor(`#conn[data-state="live"]`)
	waitMetric(t, http.DefaultClient, base, 1, "ordercast_streams_open")
	ts.mustCommit(t, "bg-1", ordercast.StatusPreparing)
	b.waitFor(`#status-line[data-status="preparing"]`)
	if n := eval[int](b, `document.querySelectorAll('#timeline li').length`); n != 3 {
		t.Errorf("the timeline has %d rows after the tab came back, want 3 (placed, confirmed, preparing), none twice", n)
	}

	// A tab opened in the background (a middle click) is hidden from the start, with no change
	// of visibility to tell it: it lets go of its stream all the same.
	hidden := newBrowser(t)
	hidden.do("open it hidden", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});`,
		})
		return chromedp.Void{}, err
	})
	hidden.do("open the tracking page in the background", chromedp.Navigate(base+"/track/bg-1"))
	hidden.waitFor(`#status-line[data-status="preparing"]`)
	waitMetric(t, http.DefaultClient, base, 2, "ordercast_streams_open") // its stream opens,
	waitMetric(t, http.DefaultClient, base, 1, "ordercast_streams_open") // then goes: the first tab's alone
}

// TestAChangeWithoutAnAnswerFreesItsRow: a request on a connection that died silently, or
// queued behind the browser's six connections, never settled: the row that sent it stayed busy
// for good. After the page's bound (shortened here) the row says the server did not answer,
// that the change may have been made, and takes clicks again.
func TestAChangeWithoutAnAnswerFreesItsRow(t *testing.T) {
	ts := newServer(t, nil)
	mustCreate(t, ts.URL(), "slow-1")
	base := frontProxy(t, ts.URL(), func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) bool {
		if r.Method != "POST" {
			return false
		}
		select { // an answer that never comes, until the test ends
		case <-done:
		case <-r.Context().Done():
		}
		return true
	})
	row := `li.order[data-order-id="slow-1"]`
	b := newBrowser(t)
	b.do("open the console", chromedp.Navigate(base+"/console"))
	b.waitFor(row + `[data-status="placed"]`)
	eval[bool](b, `(ordercast.requestTimeoutMs = 1000, true)`)
	b.tap("advance", row+` .advance`)
	b.waitFor(row + ` .row-error`)
	if got := eval[string](b, `document.querySelector('`+row+` .row-error').textContent`); !strings.Contains(got, "did not answer in time") {
		t.Errorf("the row says %q, want that the server did not answer in time", got)
	}
	b.waitFor(row + ` .advance:not([aria-disabled])`)
}

// TestAPageNoticesAConnectionThatWentSilent: a connection that dies without telling (a phone
// between cells, a NAT that dropped it) left the page "live" over a stale status for good: an
// EventSource never sees the server's heartbeats, which were comments. The pages ask for
// visible heartbeats; a connection silent for two and a half of them is let go of and opened
// again from the last id, and what came meanwhile shows.
func TestAPageNoticesAConnectionThatWentSilent(t *testing.T) {
	ts := newServer(t, func(s *server.Server) { s.Heartbeat = 200 * time.Millisecond; s.Retry = testRetry })
	mustCreate(t, ts.URL(), "quiet-1")
	base, streams, stall := stallingProxy(t, ts.URL())
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/quiet-1"))
	b.waitFor(`#conn[data-state="live"]`)
	stall()
	ts.mustCommit(t, "quiet-1", ordercast.StatusConfirmed) // reaches the server's side only
	b.waitFor(`#status-line[data-status="confirmed"]`)
	b.waitFor(`#conn[data-state="live"]`)
	if n := streams.Load(); n < 2 {
		t.Errorf("%d streams opened, want the silent one let go of and another", n)
	}
}

// stallingProxy starts a proxy in front of the server at target whose first stream is passed on
// until stall is called, then held open with nothing more on it, as a connection that died on
// the way (the streams after it pass as they are); streams counts the streams opened. stall
// returns once the first stream passes nothing more on: closing the upstream body is not enough
// by itself, as an event read just before could still be passed on.
func stallingProxy(t *testing.T, target string) (base string, streams *atomic.Int32, stall func()) {
	t.Helper()
	streams = new(atomic.Int32)
	stalling := make(chan struct{})
	stalled := make(chan struct{}) // closed once the first stream passes nothing more on
	base = frontProxy(t, target, func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) bool {
		if !strings.HasSuffix(r.URL.Path, "/stream") || streams.Add(1) > 1 {
			return false
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", target+r.URL.RequestURI(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		defer resp.Body.Close()
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		w.(http.Flusher).Flush()
		go func() { <-stalling; resp.Body.Close() }()
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				break
			}
		}
		close(stalled)
		select {
		case <-done:
		case <-r.Context().Done():
		}
		return true
	})
	return base, streams, func() {
		t.Helper()
		close(stalling)
		select {
		case <-stalled:
		case <-time.After(10 * time.Second):
			t.Fatal("the first stream was not stalled")
		}
	}
}

// TestAPageIsNotLiveWhileItsStreamIsRefused: a node at its limits, draining or without its
// store answers a stream 200 with a retry advice and closes it; EventSource reports it opened,
// and the page said "live", then "reconnecting", every few seconds, a screen reader hearing
// each. Live is the stream's first frame now, which a refusal never sends.
func TestAPageIsNotLiveWhileItsStreamIsRefused(t *testing.T) {
	ts := newServer(t, nil)
	mustCreate(t, ts.URL(), "refused-1")
	var refusals atomic.Int32
	base := frontProxy(t, ts.URL(), func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		if !strings.HasSuffix(r.URL.Path, "/stream") {
			return false
		}
		refusals.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = fmt.Fprint(w, "retry: 100\n: at its limits, retry shortly\n\n")
		return true
	})
	b := newBrowser(t)
	b.do("note every state the page shows", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.states = []; addEventListener('DOMContentLoaded', () => {
				const conn = document.getElementById('conn');
				new MutationObserver(() => window.states.push(conn.dataset.state)).observe(conn, {attributes: true, attributeFilter: ['data-state']});
			});`,
		})
		return chromedp.Void{}, err
	})
	b.do("open the tracking page", chromedp.Navigate(base+"/track/refused-1"))
	testutil.WaitFor(t, "three refusals", func() bool { return refusals.Load() >= 3 })
	if states := eval[[]string](b, `window.states`); slices.Contains(states, "live") {
		t.Errorf("the page showed %q while every stream was refused", states)
	}
}

// TestCancelAsksFirst: Cancel sits beside Advance, the button a kitchen taps all day, and a
// cancelled order is final: one slipped tap cancelled it. The first tap asks ("Confirm cancel",
// announced), a second one right away is taken for a double tap and ignored (and says so), a
// second one after that cancels, and unanswered the question goes away on its own, the order
// untouched. (While the keyboard is on it, it stands: TestAQuestionStandsWhileTheKeyboardIsOnIt.)
func TestCancelAsksFirst(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-slip")
	srv.createOrder("o-busy")
	row := `li.order[data-order-id="o-slip"]`
	b := newBrowser(t)
	shortenTimings(b, `{confirmMs: 1500}`)
	recordFetches(b)
	b.do("open the console", chromedp.Navigate(srv.url+"/console"))
	b.waitFor(row + `[data-status="placed"]`)
	// Every change said, other people's too.
	b.do("announce every change", chromedp.Click(chromedp.CSS(`#announce-mode input[value="all"]`)))

	// A double tap: the first asks, the second, right after, lands on words just changed.
	b.waitFor(row + ` .cancel:not([disabled]):not([aria-disabled]):not([data-settling])`)
	// Where the row's controls are: the question changes Cancel's words, not its place or size,
	// nor anything beside it (Advance, the picker, Set), at a phone's width and at a desktop's;
	// the reasons to choose from take the picker's place, at its size.
	boxes := `Array.from(document.querySelectorAll('` + row + ` button, ` + row + ` select')).filter(e => e.offsetParent !== null).map(e => {
		const r = e.getBoundingClientRect(); return e.tagName + ' ' + [r.x, r.y, r.width, r.height].map(Math.round).join(',');
	}).join(' | ')`
	b.do("a phone's screen", chromedp.EmulateViewport(360, 740))
	asked := eval[string](b, boxes)
	eval[bool](b, `(btn => (btn.click(), btn.click(), true))(document.querySelector('`+row+` .cancel'))`)
	b.waitFor(row + ` .cancel[data-confirming]`)
	if got := eval[string](b, `document.querySelector('`+row+` .cancel').textContent`); got != "Confirm cancel" {
		t.Errorf("after one tap Cancel says %q, want Confirm cancel", got)
	}
	if !eval[bool](b, `document.querySelector('`+row+` .pick').hidden && !document.querySelector('`+row+` .cancel-why').hidden`) {
		t.Error("while Cancel asks, the reasons are not offered in the picker's place")
	}
	if got := eval[string](b, boxes); got != asked {
		t.Errorf("asking moved the row's controls:\n before %s\n after  %s", asked, got)
	}
	// The second press, ignored, says so, and that the question stands.
	if got, want := eval[string](b, `document.getElementById('prompt').textContent`), "Nothing was done: the button just changed to Confirm cancel. Press again to do that."; got != want {
		t.Errorf("after a double tap the prompt region says %q, want %q", got, want)
	}
	// Another order changes meanwhile, as on a busy console: its announcement does not take the
	// question's place.
	srv.setStatus("o-busy", ordercast.StatusConfirmed, "")
	b.poll("the other order's change announced", `document.getElementById('announce').textContent === "Order o-busy from Luigi's is now Confirmed."`)
	if got := eval[string](b, `document.getElementById('prompt').textContent`); !strings.HasPrefix(got, "Nothing was done") {
		t.Errorf("while the question stands, a screen reader's prompt region says %q", got)
	}
	b.waitFor(row + ` .cancel:not([data-confirming])`) // unanswered, the question goes
	if got, want := eval[string](b, `document.getElementById('prompt').textContent`), "Order o-slip from Luigi's not cancelled."; got != want {
		t.Errorf("the question gone, the prompt region says %q, want %q", got, want)
	}
	if n, st := statusPosts(b, "o-slip"), srv.order("o-slip").Status; n != 0 || st != ordercast.StatusPlaced {
		t.Fatalf("after a double tap and no answer: %d changes sent, the order %s; want none, placed", n, st)
	}

	// Asked again on a desktop's screen, two orders to a line: nothing moves there either.
	b.do("a desktop's screen", chromedp.EmulateViewport(1280, 860))
	b.waitFor(row + ` .cancel:not([disabled]):not([aria-disabled]):not([data-settling])`)
	asked = eval[string](b, boxes)
	b.tap("cancel", row+` .cancel`)
	b.waitFor(row + ` .cancel[data-confirming]:not([data-settling])`)
	if got := eval[string](b, boxes); got != asked {
		t.Errorf("on a desktop's screen asking moved the row's controls:\n before %s\n after  %s", asked, got)
	}
	// Why, chosen before the confirmation, is the cancel's note: the customer's page and the
	// courier's card show it as the reason.
	eval[bool](b, `(s => (s.value = 'Out of stock', s.dispatchEvent(new Event('change')), true))(document.querySelector('`+row+` .cancel-why'))`)
	screenshots(b, "console-confirm-cancel")
	b.tap("confirm", row+` .cancel[data-confirming]`)
	b.waitFor(row + `[data-status="cancelled"]`)
	evs, err := srv.api.Events(context.Background(), "o-slip", 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Status != ordercast.StatusCancelled || last.Note != "Out of stock" {
		t.Errorf("the cancel's event is %s with the note %q, want cancelled with the reason chosen, Out of stock", last.Status, last.Note)
	}
	// Asked and confirmed without a reason, the note says where, as every page's change does.
	busy := `li.order[data-order-id="o-busy"]`
	b.waitFor(busy + ` .cancel:not([disabled]):not([aria-disabled]):not([data-settling])`)
	b.tap("cancel the other", busy+` .cancel`)
	b.waitFor(busy + ` .cancel[data-confirming]:not([data-settling])`)
	b.tap("confirm the other", busy+` .cancel[data-confirming]`)
	b.waitFor(busy + `[data-status="cancelled"]`)
	if evs, err := srv.api.Events(context.Background(), "o-busy", 0); err != nil || evs[len(evs)-1].Note != "set in the console" {
		t.Errorf("a cancel with no reason chosen: events %v (%v), want its note to say where it was made", evs, err)
	}
}

// TestTrackingPageNamesTheRestaurant: a customer knows an order by its restaurant, not its id:
// the tracking page of an order whose details name one ("restaurant", the boards' convention)
// says "Your order from …", its courier's view "Delivery from …", with the id beneath for
// support; an order whose details name none is "Order <id>".
func TestTrackingPageNamesTheRestaurant(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	for _, body := range []string{`{"id":"named","details":{"restaurant":"Luigi's Trattoria"}}`, `{"id":"plain","details":{"items":2}}`} {
		if code, got := do(t, "POST", base+"/v1/orders", "application/json", body); code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, got)
		}
	}
	b := newBrowser(t)
	heading := func() string {
		return eval[string](b, `document.querySelector('main h1').textContent + '|' + (document.querySelector('.order-ref') ? document.querySelector('.order-ref').textContent : '')`)
	}
	for _, tc := range []struct{ path, want string }{
		{"/track/named", "Your order from Luigi's Trattoria|Order named"},
		{"/track/named?view=courier&courier=c-1", "Delivery from Luigi's Trattoria|Order named"},
		{"/track/plain", "Order plain|"},
	} {
		b.do("open "+tc.path, chromedp.Navigate(base+tc.path))
		b.waitFor(`#status-line[data-status="placed"]`)
		if got := heading(); got != tc.want {
			t.Errorf("%s: the heading and the line under it read %q, want %q", tc.path, got, tc.want)
		}
	}
	screenshots(b, "track-plain")
	b.do("open the named order", chromedp.Navigate(base+"/track/named"))
	b.waitFor(`.order-ref`)
	screenshots(b, "track-named")
}

// TestTrackingPageWrapsALongRestaurantName: the tracking page's heading names the restaurant as
// its details spell it, which may be one long word (a name run together, a URL-like brand): at
// 200 % text on a phone it wraps within the screen rather than make the page scroll sideways
// (WCAG 1.4.10), on the customer's page and the courier's view.
func TestTrackingPageWrapsALongRestaurantName(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	if code, got := do(t, "POST", base+"/v1/orders", "application/json",
		`{"id":"long-name","details":{"restaurant":"TheVeryLongTrattoriaDelVecchioPonteSullArnoDiFirenze"}}`); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, got)
	}
	b := newBrowser(t)
	for _, path := range []string{"/track/long-name", "/track/long-name?view=courier&courier=c-1"} {
		b.do("a phone's screen", chromedp.EmulateViewport(390, 844))
		b.do("open "+path, chromedp.Navigate(base+path))
		b.waitFor(`#status-line[data-status="placed"]`)
		b.waitFor(`.order-ref`) // the heading names the restaurant
		eval[string](b, `document.documentElement.style.fontSize = '32px'`)
		if got := eval[string](b, `document.scrollingElement.scrollWidth + ' > ' + innerWidth`); eval[bool](b, `document.scrollingElement.scrollWidth > innerWidth`) {
			t.Errorf("%s: at 200 %% text on a phone the page is %s px wide: it scrolls sideways", path, got)
		}
		screenshots(b, "long-restaurant"+strings.ReplaceAll(strings.ReplaceAll(path, "/", "-"), "?", "-"))
	}
}

// TestTrackingTimelineShowsOnlyReasonsPeopleWrote: the timeline shows a change's note when it
// is a reason a person wrote ("Luigi accepted"), as they wrote it, and not the pages' own notes,
// which say where a change was made ("set on the restaurant's board"): words of the operators'
// pages, of no use to the order's customer, as the cancelled box leaves them out too.
func TestTrackingTimelineShowsOnlyReasonsPeopleWrote(t *testing.T) {
	srv := startPageServer(t)
	if _, err := srv.api.CreateOrder(context.Background(), client.CreateOrderRequest{ID: "o-notes", Note: "created in the console"}); err != nil {
		t.Fatal(err)
	}
	srv.setStatus("o-notes", ordercast.StatusConfirmed, "set on the restaurant's board")
	srv.setStatus("o-notes", ordercast.StatusPreparing, "Luigi accepted")
	srv.setStatus("o-notes", ordercast.StatusReady, "set in the console")
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(srv.url+"/track/o-notes"))
	b.waitFor(`#status-line[data-status="ready"]`)
	got := eval[string](b, `Array.from(document.querySelectorAll('#timeline li')).map(li => li.dataset.status + ':' + (li.querySelector('.row-note')?.textContent || '')).join(' | ')`)
	if want := "ready: | preparing:Luigi accepted | confirmed: | placed:"; got != want {
		t.Errorf("the timeline reads %q, want %q: the reason a person wrote, none of the pages' own notes", got, want)
	}
}

// TestACancelledOrdersStepperEndsWhereItStopped: the stepper of an order cancelled while it was
// prepared lists the stages it went through, then Cancelled, the current step; not the stages it
// never reached, which listed above "Cancelled" read as if it came after the delivery.
func TestACancelledOrdersStepperEndsWhereItStopped(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	ts.mustCreateInStore(t, "o-stop")
	ts.mustCommit(t, "o-stop", ordercast.StatusPreparing)
	ts.mustCommit(t, "o-stop", ordercast.StatusCancelled)
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-stop"))
	b.waitFor(`#stepper li[data-status="cancelled"][aria-current="step"]`)
	got := eval[string](b, `Array.from(document.querySelectorAll('#stepper li')).map(li => li.dataset.status + ':' + li.dataset.state).join(' ')`)
	if want := "placed:done confirmed:skipped preparing:done cancelled:current"; got != want {
		t.Errorf("the stepper reads %q, want %q", got, want)
	}
	screenshots(b, "track-cancelled")
}

// TestACancelledOrderSaysWhyAndWhatNext: the tracking page of a cancelled order gave no reason
// and no next step. It shows the cancellation's note as the reason, as text (a note is anyone's
// words, never markup), but not a page's own note, which says only where the change was made;
// and tells the customer whom to contact about a refund or a new order, the restaurant its
// details name, quoting the order; the courier's view, not to pick it up, or, picked up, to ask
// the dispatcher. An order that goes on says none of it.
func TestACancelledOrderSaysWhyAndWhatNext(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	for _, body := range []string{
		`{"id":"o-why","details":{"restaurant":"Luigi's Trattoria","items":2}}`,
		`{"id":"o-where","details":{"items":1}}`,
		`{"id":"o-road","details":{"restaurant":"Luigi's Trattoria"}}`,
	} {
		if code, got := do(t, "POST", base+"/v1/orders", "application/json", body); code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, got)
		}
	}
	set := func(id, body string) {
		t.Helper()
		if code, got := do(t, "POST", base+"/v1/orders/"+id+"/status", "application/json", body); code != http.StatusOK {
			t.Fatalf("%s: %d %s", id, code, got)
		}
	}
	b := newBrowser(t)
	says := func() string {
		return eval[string](b, `(box => !box || box.hidden ? 'nothing' : box.innerText.replace(/\s*\n\s*/g, ' | '))(document.getElementById('cancelled'))`)
	}

	b.do("open o-why's tracking page", chromedp.Navigate(base+"/track/o-why"))
	b.waitFor(`#status-line[data-status="placed"]`)
	if got := says(); got != "nothing" {
		t.Errorf("an order in progress says %q", got)
	}
	set("o-why", `{"status":"cancelled","note":"Out of <b>stock</b>"}`)
	b.waitFor(`#cancelled`)
	if got, want := says(), "Reason: Out of <b>stock</b>. | For a refund or a new order, contact Luigi's Trattoria and quote order o-why."; got != want {
		t.Errorf("the cancelled order says %q, want %q", got, want)
	}
	if n := eval[int](b, `document.querySelectorAll('#cancelled b').length`); n != 0 {
		t.Error("the note was read as HTML")
	}
	screenshots(b, "track-cancelled-reason")
	b.do("open the courier's view of it", chromedp.Navigate(base+"/track/o-why?view=courier&courier=c-1"))
	b.waitFor(`#cancelled`)
	if got, want := says(), "Reason: Out of <b>stock</b>. | Do not pick it up."; got != want {
		t.Errorf("the courier's view says %q, want %q", got, want)
	}

	// Cancelled in the console, whose note says where and not why; its details name no restaurant.
	set("o-where", `{"status":"cancelled","note":"set in the console"}`)
	b.do("open o-where's tracking page", chromedp.Navigate(base+"/track/o-where"))
	b.waitFor(`#cancelled`)
	if got, want := says(), "For a refund or a new order, contact the restaurant and quote order o-where."; got != want {
		t.Errorf("an order cancelled in the console says %q, want %q", got, want)
	}

	// Cancelled on the road: the courier has the food.
	set("o-road", `{"status":"out_for_delivery"}`)
	set("o-road", `{"status":"cancelled","note":"the courier could not reach the customer"}`)
	b.do("open the courier's view of o-road", chromedp.Navigate(base+"/track/o-road?view=courier&courier=c-1"))
	b.waitFor(`#cancelled`)
	if got, want := says(), "Reason: The courier could not reach the customer. | Ask your dispatcher what to do with the food."; got != want {
		t.Errorf("the courier's view of an order cancelled on the road says %q, want %q", got, want)
	}
}

// TestTrackingPageLoadsAgainWhenItsHistoryWasRewritten: a stream whose order's history went
// back under it (a failover that lost the database's last commits) ends with an end event,
// history_rewritten: seqs the page holds may be other changes now, which a resume with
// Last-Event-ID would skip, and the page keeps what it was sent by seq. The page loads again,
// and shows the order as it is. (The end is sent here by a proxy in front of the real server,
// as the stream engine sends it: TestOrderStreamWhoseHistoryWentBackEnds.)
func TestTrackingPageLoadsAgainWhenItsHistoryWasRewritten(t *testing.T) {
	srv := startPageServer(t)
	srv.createOrder("o-rw")
	srv.setStatus("o-rw", ordercast.StatusPreparing, "")
	var loads, streams atomic.Int32
	base := frontProxy(t, srv.url, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
		switch r.URL.Path {
		case "/track/o-rw":
			loads.Add(1)
		case "/v1/orders/o-rw/stream":
			if streams.Add(1) == 1 { // the first stream ends so; the next are the server's
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "event: end\ndata: {\"reason\":\"history_rewritten\",\"message\":\"the order's history went back under this stream\"}\n\n")
				return true
			}
		}
		return false
	})
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-rw"))
	b.waitFor(`#conn[data-state="live"]`)
	b.waitFor(`#status-line[data-status="preparing"]`)
	if n, m := loads.Load(), streams.Load(); n != 2 || m != 2 {
		t.Errorf("live after %d loads of the page and %d streams; want 2 of each: the page loaded again when its stream said its history was rewritten, and did not resume", n, m)
	}
}

// TestTrackingPageLoadsAgainOnA204ItCannotAccountFor: a stream answered 204 says the order
// ended at the seq the page resumed from; a page that holds no final event there holds another
// history than the server's (a database restored from an older copy, then the order cancelled
// at a seq the page had passed), and retried for ever, "reconnecting", never showing the
// cancellation. The server's 204 (it carries its X-Request-ID) has the page load again; a 204
// without it is a middlebox's, and the stream is tried again. (The 204 comes from a proxy in
// front of the real server, as the server answers a resume at an ended order's last seq.)
func TestTrackingPageLoadsAgainOnA204ItCannotAccountFor(t *testing.T) {
	srv := startPageServer(t)
	for _, tc := range []struct {
		name        string
		fromServer  bool
		wantLoads   int32
		wantStreams int32
	}{{"the server's", true, 2, 3}, {"a middlebox's", false, 1, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			id := "o-204-" + strconv.FormatBool(tc.fromServer)
			srv.createOrder(id)
			srv.setStatus(id, ordercast.StatusPreparing, "")
			var loads, streams atomic.Int32
			base := frontProxy(t, srv.url, func(w http.ResponseWriter, r *http.Request, _ <-chan struct{}) bool {
				switch r.URL.Path {
				case "/track/" + id:
					loads.Add(1)
				case "/v1/orders/" + id + "/stream":
					// The first stream, and the page's question why it failed, are answered 204.
					if streams.Add(1) <= 2 {
						if tc.fromServer {
							w.Header().Set(server.RequestIDHeader, "from-the-server")
						}
						w.WriteHeader(http.StatusNoContent)
						return true
					}
				}
				return false
			})
			b := newBrowser(t)
			b.do("open the tracking page", chromedp.Navigate(base+"/track/"+id))
			b.waitFor(`#conn[data-state="live"]`)
			b.waitFor(`#status-line[data-status="preparing"]`)
			if n, m := loads.Load(), streams.Load(); n != tc.wantLoads || m != tc.wantStreams {
				t.Errorf("live after %d loads of the page and %d streams; want %d and %d", n, m, tc.wantLoads, tc.wantStreams)
			}
		})
	}
}
