package server_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

// The ways a path between a phone and the server fails, as pathProxy plays them for streams.
const (
	pathPass      int32 = iota // streams pass as they are written
	pathStall                  // the path died silently: nothing passes, nothing is answered
	pathBuffer                 // a proxy that holds each response until it is complete
	pathReset                  // connections are reset as they come (no network, a server down)
	pathPortal403              // a captive portal's (or a WAF's) page of HTML, 403
	pathPortal204              // a middlebox's 204
)

// pathProxy stands between the browser and a server, as a phone's network does, and plays on
// the streams' requests the failure its mode names; every other request passes (a long poll too,
// which a buffering proxy passes whole once it is answered). A stream that was passing when
// the mode changed passes nothing more and is held open, as a connection on a path that died
// (pathStall then pathPass: the network back for new connections, the old ones dead for good).
type pathProxy struct {
	URL  string
	mode atomic.Int32

	mu       sync.Mutex
	attempts []time.Time             // when each stream request came, whatever became of it
	came     chan struct{}           // told (without blocking) of each stream request
	answered map[int32]*atomic.Int32 // stream requests answered in each mode
}

// trackThroughPath serves order id, created, on a server of 200 ms heartbeats, and opens its
// tracking page through a pathProxy in a browser, live.
func trackThroughPath(t *testing.T, id string) (*testServer, *pathProxy, *browser) {
	t.Helper()
	ts := newServer(t, func(s *server.Server) { s.Heartbeat = 200 * time.Millisecond; s.Retry = testRetry })
	mustCreate(t, ts.URL(), id)
	path := newPathProxy(t, ts.URL())
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(path.URL+"/track/"+id))
	b.waitFor(`#conn[data-state="live"]`)
	return ts, path, b
}

// shortenWaits has the page in b try again after a tenth of a second, doubling (a second by
// default), and give up on a connection that brings no first frame a second after its
// heartbeat interval (3 s): a test of what the page does on a failing network waits on its
// attempts, not on its timers. (A test of the backoff itself keeps the page's own.)
func shortenWaits(b *browser) {
	eval[bool](b, `(ordercast.backoffMs = 100, ordercast.lateMarginMs = 1000, true)`)
}

func newPathProxy(t *testing.T, target string) *pathProxy {
	t.Helper()
	p := &pathProxy{came: make(chan struct{}, 1), answered: map[int32]*atomic.Int32{}}
	for m := pathPass; m <= pathPortal204; m++ {
		p.answered[m] = new(atomic.Int32)
	}
	p.URL = frontProxy(t, target, func(w http.ResponseWriter, r *http.Request, done <-chan struct{}) bool {
		// Each answer on a connection of its own: Chromium sends a request again, once, when a
		// connection it reused closes without an answer, and a reset would count twice.
		w.Header().Set("Connection", "close")
		if !strings.HasSuffix(r.URL.Path, "/stream") {
			return false
		}
		mode := p.mode.Load()
		p.mu.Lock()
		p.attempts = append(p.attempts, time.Now())
		p.mu.Unlock()
		p.answered[mode].Add(1)
		select {
		case p.came <- struct{}{}:
		default:
		}
		hold := func() {
			select {
			case <-done:
			case <-r.Context().Done():
			}
		}
		switch mode {
		case pathStall:
			hold()
		case pathReset:
			panic(http.ErrAbortHandler) // the connection closed with no answer
		case pathPortal403:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<!doctype html><title>Wi-Fi</title><p>Accept the terms to go online.</p>")
		case pathPortal204:
			w.WriteHeader(http.StatusNoContent)
		case pathBuffer:
			req, _ := http.NewRequestWithContext(r.Context(), "GET", target+r.URL.RequestURI(), nil)
			maps.Copy(req.Header, r.Header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return true
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body) // a stream ends when the server ends it, or the page gives up
			if err != nil {
				return true
			}
			maps.Copy(w.Header(), resp.Header)
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(body)
		default:
			p.pass(w, r, target, hold)
		}
		return true
	})
	return p
}

// pass passes a stream on while the mode is pathPass; after that, nothing more, and holds it.
func (p *pathProxy) pass(w http.ResponseWriter, r *http.Request, target string, hold func()) {
	req, _ := http.NewRequestWithContext(r.Context(), "GET", target+r.URL.RequestURI(), nil)
	maps.Copy(req.Header, r.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	maps.Copy(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	w.(http.Flusher).Flush()
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		if p.mode.Load() != pathPass {
			break // what was read after the path failed never arrives
		}
		if n > 0 {
			_, _ = w.Write(buf[:n])
			w.(http.Flusher).Flush()
		}
		if err != nil {
			return
		}
	}
	if p.mode.Load() == pathReset {
		panic(http.ErrAbortHandler)
	}
	hold()
}

func (p *pathProxy) set(mode int32) { p.mode.Store(mode) }

// streams is how many stream requests came.
func (p *pathProxy) streams() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.attempts)
}

// waitStreams waits until n stream requests in all have come, failing after within.
func (p *pathProxy) waitStreams(t *testing.T, n int, within time.Duration, what string) {
	t.Helper()
	deadline := time.After(within)
	for p.streams() < n {
		select {
		case <-p.came:
		case <-deadline:
			t.Fatalf("%s: %d stream requests came in %s, want %d", what, p.streams(), within, n)
		}
	}
}

// TestTrackingPageGivesUpOnAReconnectWithoutAnAnswer: a reconnect sent on a keep-alive socket
// that died silently, or into a path that died, gets no answer and no error: EventSource waits
// on it until the phone's TCP gives up, a quarter of an hour, and the page said "reconnecting"
// over a stale status all that while, the network back or not. A connection that has brought no
// first frame in a heartbeat and a margin is let go of and another opened, which comes through
// once the network is back.
func TestTrackingPageGivesUpOnAReconnectWithoutAnAnswer(t *testing.T) {
	ts, path, b := trackThroughPath(t, "dead-1")
	shortenWaits(b)
	path.set(pathStall)
	ts.mustCommit(t, "dead-1", ordercast.StatusConfirmed) // reaches the server's side only
	// The silent stream let go of (its watchdog), and its reconnect unanswered.
	path.waitStreams(t, 2, 20*time.Second, "the silent stream let go of")
	path.set(pathPass)
	b.doWithin(30*time.Second, "wait for the change, once the network is back",
		chromedp.WaitVisible(chromedp.CSS(`#status-line[data-status="confirmed"]`)))
	b.waitFor(`#conn[data-state="live"]`)
	if n := path.answered[pathStall].Load(); n < 1 {
		t.Errorf("%d stream requests went unanswered: the test shows nothing", n)
	}
}

// TestTrackingPagePollsWhereNoStreamComesThrough: behind a proxy that holds each response until
// it is complete (an antivirus's web shield, a company's scanner), a stream never brings a frame,
// and the page stayed "connecting" over the status it loaded until the order ended. After a few
// streams that brought nothing it follows the order by the API's long poll, saying so
// ("checking for updates"), and the stream takes over again once one comes through (here the
// browser saying it is online again tries one at once).
func TestTrackingPagePollsWhereNoStreamComesThrough(t *testing.T) {
	ts, path, b := trackThroughPath(t, "buf-1") // live: the page learned the heartbeat's interval
	shortenWaits(b)
	path.set(pathBuffer)
	b.doWithin(60*time.Second, "wait for the page to poll",
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="polling"]`)))
	if got := eval[string](b, `document.querySelector('#conn .conn-state').textContent`); got != "checking for updates" {
		t.Errorf("polling, the indicator says %q", got)
	}
	ts.mustCommit(t, "buf-1", ordercast.StatusConfirmed)
	b.waitFor(`#status-line[data-status="confirmed"]`)
	if state := eval[string](b, `document.getElementById('conn').dataset.state`); state != "polling" {
		t.Errorf("the change came while the page says %q, want it polling", state)
	}

	path.set(pathPass)
	eval[bool](b, `dispatchEvent(new Event('online'))`)
	b.waitFor(`#conn[data-state="live"]`)
	ts.mustCommit(t, "buf-1", ordercast.StatusPreparing)
	b.waitFor(`#status-line[data-status="preparing"]`)
	checkSeqs(t, timelineSeqs(b), "3", "2", "1")
}

// TestTrackingPageBacksOffWhileTheNetworkIsDown: with no network (connections reset, refused),
// EventSource tried again every few seconds for as long as the outage lasted, every phone on the
// same beat: the page now waits longer after each failure (jittered), and tries at once when the
// browser says it is online again or the page is looked at again.
func TestTrackingPageBacksOffWhileTheNetworkIsDown(t *testing.T) {
	ts, path, b := trackThroughPath(t, "storm-1")
	first := path.streams()
	path.set(pathReset)
	// The live stream cut, then four attempts reset.
	path.waitStreams(t, first+4, 40*time.Second, "attempts while the network is down")
	path.mu.Lock()
	at := path.attempts[first:]
	gaps := []time.Duration{at[1].Sub(at[0]), at[2].Sub(at[1]), at[3].Sub(at[2])}
	path.mu.Unlock()
	// Backed off from one second doubling (1 to 2 s before the second attempt, 4 to 8 s before
	// the fourth): EventSource's own retry waited the same each time (the server's retry:, 250 ms
	// here).
	if gaps[2] < gaps[0]+time.Second {
		t.Errorf("the page waited %v between its attempts: want it to wait longer after each failure", gaps)
	}

	// The next attempt is 8 to 16 s away: the browser online, or the page looked at, tries at once.
	n := path.streams()
	eval[bool](b, `dispatchEvent(new Event('online'))`)
	path.waitStreams(t, n+1, 5*time.Second, "an attempt once the browser is online")
	// Looked at while an attempt is out, the page waits for it: told again until the attempt
	// failed and the page waits for its backoff (16 s and more by now).
	n = path.streams()
	testutil.WaitForWithin(t, 5*time.Second, "an attempt once the page is looked at", func() bool {
		b.setVisibility("visible")
		return path.streams() > n
	})

	path.set(pathPass)
	eval[bool](b, `dispatchEvent(new Event('online'))`)
	b.waitFor(`#conn[data-state="live"]`)
	ts.mustCommit(t, "storm-1", ordercast.StatusConfirmed)
	b.waitFor(`#status-line[data-status="confirmed"]`)
}

// TestTrackingPageIsNotEndedByAMiddlebox: a captive portal's or a WAF's page of HTML answered
// 403, or a middlebox's 204, in the stream's place ended tracking for good ("token refused", or
// "ended" under an order in progress). Only the API's own refusal (its JSON error) is final, and
// a 204 only once the page holds the order's end: otherwise the page tries again, and follows
// the order once the network lets it.
func TestTrackingPageIsNotEndedByAMiddlebox(t *testing.T) {
	ts, path, b := trackThroughPath(t, "portal-1")
	// The test waits on the page's attempts, not on its backoff's draws (a second, doubling, had
	// the second mode's third answer come up to 12 s in).
	shortenWaits(b)
	for _, mode := range []struct {
		mode int32
		name string
	}{{pathPortal204, "a middlebox's 204"}, {pathPortal403, "a portal's 403"}} {
		path.set(mode.mode)
		// Answered, asked why (the refusal's fetch), and tried again.
		testutil.WaitFor(t, "the page tries again after "+mode.name, func() bool { return path.answered[mode.mode].Load() >= 3 })
		if state := eval[string](b, `document.getElementById('conn').dataset.state`); state != "reconnecting" {
			t.Errorf("after %s the page says %q, want it reconnecting", mode.name, state)
		}
		if eval[bool](b, `!document.getElementById('problem').hidden`) {
			t.Errorf("after %s the page shows %q", mode.name, eval[string](b, `document.getElementById('problem').textContent`))
		}
	}
	path.set(pathPass)
	ts.mustCommit(t, "portal-1", ordercast.StatusConfirmed)
	eval[bool](b, `dispatchEvent(new Event('online'))`)
	b.waitFor(`#status-line[data-status="confirmed"]`)
	b.waitFor(`#conn[data-state="live"]`)
}

// TestTrackingPageSaysItsAddressHoldsTooManyStreams: a stream refused because the address it
// comes from holds its share (an office's lunch, a carrier's NAT) said only "reconnecting", and
// sent people looking for a fault in their own connection: the page says why, in words, until
// its stream opens.
func TestTrackingPageSaysItsAddressHoldsTooManyStreams(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		s.Heartbeat = 200 * time.Millisecond
		s.Retry = testRetry
		s.Limits.MaxStreamsPerClient = 1
	})
	base := ts.URL()
	mustCreate(t, base, "busy-1")
	ctx, release := context.WithCancel(t.Context())
	defer release()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/busy-1/stream", nil)
	held, err := http.DefaultClient.Do(req) // the address's one stream, someone else's
	if err != nil {
		t.Fatal(err)
	}
	defer held.Body.Close()
	waitMetric(t, http.DefaultClient, base, 1, "ordercast_streams_open")

	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/busy-1"))
	b.waitFor(`#problem`)
	if got := eval[string](b, `document.getElementById('problem').textContent`); !strings.HasPrefix(got, "Too many live pages are open from your network") {
		t.Errorf("refused for its address's share, the page says %q", got)
	}
	if state := eval[string](b, `document.getElementById('conn').dataset.state`); state != "reconnecting" {
		t.Errorf("refused for its address's share, the page says %q, want reconnecting", state)
	}
	release()
	b.doWithin(30*time.Second, "wait for the stream", chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)))
	b.poll("the reason gone", `document.getElementById('problem').hidden`)
}

// TestTrackingPageSaysItsLinkExpired: the tracking link's token expiring while the page follows
// the order showed the API's "Token has expired." (a token nobody was shown, and nothing to do)
// over a status that went on changing without it. The page says it as it says of a link refused
// at load, and that the status shown is as of when it last heard.
func TestTrackingPageSaysItsLinkExpired(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	link := createAs(t, base, actorToken(t, auth.RoleAdmin, "ops"), "exp-1")
	past := authority(t)
	past.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	expired, _, err := past.SignTracking("exp-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.do("open the tracking link", chromedp.Navigate(base+"/track/exp-1?token="+link))
	b.waitFor(`#conn[data-state="live"]`)
	// The cookie's token expires; the stream, opened again (the page back from the back/forward
	// cache), is refused it.
	eval[bool](b, `dispatchEvent(new PageTransitionEvent('pagehide', {persisted: true}))`)
	httpOnly := true
	b.do("expire the cookie's token", func(ctx context.Context, tgt *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
			Name: server.TrackingCookie, Value: expired, URL: base + "/v1/orders/exp-1", Path: "/v1/orders/exp-1",
			HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteStrict,
		})
		return chromedp.Void{}, err
	})
	eval[bool](b, `dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))`)
	b.waitFor(`#conn[data-state="denied"]`)
	want := "This tracking link was not accepted: it has expired, or it is not this order's. Ask whoever sent it for a new one."
	if got := eval[string](b, `document.getElementById('problem').textContent`); got != want {
		t.Errorf("the link expired mid-order, the page says %q, want %q", got, want)
	}
	if got := eval[string](b, `document.getElementById('status-line').textContent`); !strings.Contains(got, "as of") || !strings.Contains(got, "may have changed since") {
		t.Errorf("the status line says %q, want it marked as of when the page last heard", got)
	}
	b.waitFor(`#status-line[data-stale]`)
	screenshots(b, "track-link-expired")
}

// TestTrackingMapIgnoresAStepOfThePhonesClock: a phone's clock set while the page is open (its
// automatic time, a network's correction) moved the page's idea of the server's clock with it:
// a minute forward, and a courier sending every second showed as "Location lost" until the
// next reconnect. The page measures the time since it learned the server's clock on a clock no
// one sets (performance.now()).
func TestTrackingMapIgnoresAStepOfThePhonesClock(t *testing.T) {
	ls := newMapServer(t)
	base := ls.URL()
	ls.onTheRoad(t, "o-step")
	postFixNow(t, base, "c-1", 52.5240, 13.4110)
	b := newBrowser(t)
	b.do("open the tracking page", chromedp.Navigate(base+"/track/o-step"))
	b.waitFor(`#map-courier[data-lat="52.524"]`)
	b.poll("the ETA shown", `!document.getElementById('eta').hidden && document.getElementById('lost').hidden`)
	for _, step := range []struct {
		by  time.Duration
		lat float64
	}{{time.Minute, 52.525}, {-2 * time.Minute, 52.526}} {
		eval[bool](b, fmt.Sprintf(`((ms, now) => { Date.now = () => now() + ms; return true; })(%d, Date.now)`, step.by.Milliseconds()))
		lat := step.lat
		postFixNow(t, base, "c-1", lat, 13.4120)
		b.waitFor(fmt.Sprintf(`#map-courier[data-lat="%v"]`, lat))
		// A fix just taken, judged (reckon) as it arrived.
		if eval[bool](b, `!document.getElementById('lost').hidden`) {
			t.Errorf("the phone's clock set %v: a fix just sent shows %q", step.by, eval[string](b, `document.getElementById('lost').textContent`))
		}
		if eval[bool](b, `document.getElementById('eta').hidden`) {
			t.Errorf("the phone's clock set %v: the ETA is hidden", step.by)
		}
	}
}
