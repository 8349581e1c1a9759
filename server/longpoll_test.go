package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

// longPoll sends GET /v1/orders/{id}?query and returns the status and the order answered.
func longPoll(t *testing.T, ctx context.Context, base, id, query string) (int, ordercast.Order, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/"+id+"?"+query, nil)
	if err != nil {
		return 0, ordercast.Order{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ordercast.Order{}, err
	}
	defer resp.Body.Close()
	var o ordercast.Order
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(&o)
	}
	return resp.StatusCode, o, err
}

func mustLongPoll(t *testing.T, base, id, query string) ordercast.Order {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	code, o, err := longPoll(t, ctx, base, id, query)
	if err != nil || code != http.StatusOK {
		t.Fatalf("long poll %s: %d %v", query, code, err)
	}
	return o
}

// TestLongPollAnswersAtOnceWhenPastVersion: a long poll whose after_version the order is past
// answers at once, as does one ahead of the order's version, which no commit would pass in time
// (a version kept from a database since reset or restored, or from another order): a stream
// treats a Last-Event-ID past the order's history as a fresh connect.
func TestLongPollAnswersAtOnceWhenPastVersion(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", "confirmed")
	// The wait is far beyond the test's deadline: only an immediate answer passes.
	for _, q := range []string{"wait=60s&after_version=1", "wait=60s", "wait=60s&after_version=50"} {
		if o := mustLongPoll(t, base, "o-1", q); o.Version != 2 || o.Status != "confirmed" {
			t.Fatalf("%s: got version %d %s, want 2 confirmed", q, o.Version, o.Status)
		}
	}
}

func TestLongPollHoldsUntilChange(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	got := make(chan ordercast.Order, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, o, _ := longPoll(t, ctx, base, "o-1", "wait=60s&after_version=1")
		got <- o
	}()
	testutil.WaitFor(t, "the long poll to subscribe", func() bool { return ts.hub.Watchers() == 1 })
	select {
	case o := <-got:
		t.Fatalf("answered before any change: %+v", o)
	default:
	}
	mustSetStatus(t, base, "o-1", "confirmed")
	o := <-got
	if o.Version != 2 || o.Status != "confirmed" {
		t.Fatalf("got version %d %s, want 2 confirmed", o.Version, o.Status)
	}
	testutil.WaitFor(t, "the watcher to be freed", func() bool { return ts.hub.Watchers() == 0 })
}

// TestLongPollTimesOutWithUnchangedOrder also outlasts the server's WriteTimeout several times:
// the handler moves its own write deadline past the wait.
func TestLongPollTimesOutWithUnchangedOrder(t *testing.T) {
	t.Parallel()
	ts := newServer(t, func(s *server.Server) { s.WriteTimeout = 20 * time.Millisecond })
	base := ts.URL()
	ts.mustCreateInStore(t, "o-1") // a 20 ms WriteTimeout is too short to trust a create to under load
	o := mustLongPoll(t, base, "o-1", "wait=150ms&after_version=1")
	if o.Version != 1 || o.Status != "placed" {
		t.Fatalf("got version %d %s, want the unchanged order", o.Version, o.Status)
	}
}

func TestLongPollAnswersAtOnceForEndedOrder(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", "cancelled")
	if o := mustLongPoll(t, base, "o-1", "wait=60s&after_version=2"); o.Status != "cancelled" {
		t.Fatalf("status %s, want cancelled", o.Status)
	}
}

func TestLongPollRejectsBadInput(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	for _, q := range []string{
		"wait=soon", "wait=-1s", "wait=", "wait=1e3", "wait=30s&after_version=x", "wait=30s&after_version=-1", "wait=30s&after_version=%2B1",
		"wait=-2562047h48m", "wait=1x", "wait=2562047h48", "wait=.", "wait=0.5.5", "wait=-0.5", "wait=NaN", "wait=inf",
		"after_version=x", "after_version=-1", // without wait too: a client that sent it believed it counted
		"wait=30s&after_version=", // an unset variable: read as none, every poll of a loop came back at once
	} {
		code, body := do(t, "GET", base+"/v1/orders/o-1?"+q, "", "")
		if code != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s, want 422", q, code, body)
		}
		// HEAD gets what GET gets (RFC 9110, 9.3.2), the refusal included.
		if resp, _ := call(t, "HEAD", base+"/v1/orders/o-1?"+q, "", ""); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("HEAD %s: %d, want 422", q, resp.StatusCode)
		}
	}
	// A good HEAD long poll is answered at once, as a poll whose wait ended, with a poll's headers:
	// no tag.
	if resp, _ := call(t, "HEAD", base+"/v1/orders/o-1?wait=60s&after_version=1", "", ""); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != "" {
		t.Errorf("HEAD long poll: %d, ETag %q; want 200 and no tag", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if code, _ := do(t, "GET", base+"/v1/orders/nope?wait=1s", "", ""); code != http.StatusNotFound {
		t.Errorf("unknown order: %d, want 404", code)
	}
}

func TestLongPollClientLeavingFreesWatcher(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		longPoll(t, ctx, base, "o-1", "wait=60s&after_version=1")
	}()
	testutil.WaitFor(t, "the long poll to subscribe", func() bool { return ts.hub.Watchers() == 1 })
	cancel()
	<-done
	testutil.WaitFor(t, "the watcher to be freed", func() bool { return ts.hub.Watchers() == 0 })
}

// TestLongPollTakesSecondsWithAFraction: wait is a duration or seconds, and seconds may have a
// fraction; a long poll that nothing answers ends with the order as it is.
func TestLongPollTakesSecondsWithAFraction(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	for _, wait := range []string{"0.2", ".2", "0.", "0"} {
		if o := mustLongPoll(t, base, "o-1", "wait="+wait+"&after_version=1"); o.Version != 1 {
			t.Fatalf("wait=%s: version %d, want 1", wait, o.Version)
		}
	}
}

// TestLongPollCapsAnOverflowingDuration: a wait too long for a time.Duration is capped, as a huge
// number of seconds is, not refused (it was 422 while 10^23 seconds was capped).
func TestLongPollCapsAnOverflowingDuration(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	for _, wait := range []string{"2562047h48m", "99999999999999999999h", "%2B3000000h", "1" + strings.Repeat("0", 400) + ".5"} {
		if o := mustLongPoll(t, base, "o-1", "wait="+wait+"&after_version=0"); o.Version != 1 {
			t.Fatalf("wait=%s: version %d, want 1", wait, o.Version)
		}
	}
	// It waits (capped), and a change answers it.
	answered := make(chan ordercast.Order, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, o, _ := longPoll(t, ctx, base, "o-1", "wait=2562047h48m&after_version=1")
		answered <- o
	}()
	testutil.WaitFor(t, "the long poll to subscribe", func() bool { return ts.hub.Watchers() == 1 })
	mustSetStatus(t, base, "o-1", "confirmed")
	if o := <-answered; o.Version != 2 {
		t.Fatalf("answered with version %d, want 2", o.Version)
	}
}
