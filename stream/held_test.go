package stream

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/poller"
)

// TestHeldStreamTakesTimeAsInput holds a stream on the poller and drives its clock by hand: a
// tick before the stream has been quiet for (about) the heartbeat interval sends nothing, a tick
// after sends a heartbeat; a tick past its lifetime (the hour its credential is accepted for,
// shorter than the configured two) ends it, reported once as held, with the bytes the client
// read, for that reason (ReasonExpired).
func TestHeldStreamTakesTimeAsInput(t *testing.T) {
	if !poller.Supported {
		t.Skip("streams are held by the poller only on Linux")
	}
	t.Parallel()
	cfg := testConfig
	cfg.Heartbeat, cfg.Lifetime, cfg.Hold = time.Hour, 2*time.Hour, true // the sweeper stays out of the way
	e := New(newMemStore(ordercast.StatusPlaced), hub.New(), cfg, nil)
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	ends := make(chan End, 1)
	until := time.Now().Add(time.Hour)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wt, err := e.Watch(r.Context(), Request{OrderID: "o-1", Until: until})
		if err != nil {
			t.Error(err)
			return
		}
		e.ServeSSE(w, r, wt, func(x End) { ends <- x })
	}))
	t.Cleanup(srv.Close)

	// The timeout bounds every read below: a frame that never comes fails the test, not hangs it.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	r := bufio.NewReader(io.TeeReader(resp.Body, &body))
	readFrame := func() string {
		t.Helper()
		var f strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v (so far %q)", err, f.String())
			}
			if line == "\n" {
				return f.String()
			}
			f.WriteString(line)
		}
	}
	if got := readFrame(); got != "retry: 2000\n" {
		t.Fatalf("first frame %q, want the retry advice", got)
	}
	if got := readFrame(); !strings.HasPrefix(got, "id: 1\nevent: status\n") {
		t.Fatalf("second frame %q, want event 1", got)
	}

	held := e.held.snapshot(-1)
	if len(held) != 1 {
		t.Fatalf("%d streams held, want 1", len(held))
	}
	hs := held[0]
	if d := hs.expires.Sub(until); d > time.Second || d < -time.Second {
		t.Fatalf("the held stream expires %v after its credential, want when it does", d)
	}
	// A heartbeat is owed once the stream has been quiet for the interval less two spacings of
	// the sweeper's visits to it: a tick a moment earlier sends nothing, a tick then sends one.
	// (The stream stamped its last write before making it, so the frame read above moved it.)
	owed := clockBase.Add(time.Duration(hs.w.sentAt.Load()) + cfg.Heartbeat - 2*e.held.sweepTick()*sweepBuckets)
	hs.tick(owed.Add(-time.Nanosecond))
	hs.tick(owed)
	if got := readFrame(); got != ": ping\n" {
		t.Fatalf("after an interval: %q, want a heartbeat", got)
	}
	hs.tick(hs.expires.Add(time.Nanosecond))
	if rest, err := io.ReadAll(r); err != nil || string(rest) != string(sseEnds[ReasonExpired]) {
		t.Fatalf("after the lifetime: %q, %v; want the end event saying the token expired, the end of the stream, and no second heartbeat", rest, err)
	}
	select {
	case x := <-ends:
		if x.Reason != ReasonExpired || !x.Held || !x.Hijacked || x.Events != 1 || x.Bytes != int64(body.Len()) {
			t.Errorf("end %+v, want credential_expired, held, 1 event, %d bytes", x, body.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the end was never reported")
	}
	if n := len(e.held.snapshot(-1)); n != 0 {
		t.Errorf("%d streams still held", n)
	}
}

// TestWorkQueueRunsStatusFirst: a stream with a status event waiting is delivered to before
// the streams that wait only with a position, whatever their order of arrival; each lane keeps
// its own order.
func TestWorkQueueRunsStatusFirst(t *testing.T) {
	t.Parallel()
	q := workQueue{wake: make(chan struct{}, 1)}
	pos1, pos2, st1, st2 := &heldStream{bucket: 1}, &heldStream{bucket: 2}, &heldStream{bucket: 3}, &heldStream{bucket: 4}
	q.push(pos1, false)
	q.push(pos2, false)
	q.push(st1, true)
	q.push(st2, true)
	var got []int
	for range 4 {
		got = append(got, q.pop(t.Context()).bucket)
	}
	if want := []int{3, 4, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("popped %v, want %v: status lane first, each lane in order", got, want)
	}
}

// TestScheduleLanes: a stream woken for a status event goes on the status lane even when it
// waits on the positions' lane already; a position for a stream already on the status lane
// queues nothing more (that run takes it); each lane holds a stream once.
func TestScheduleLanes(t *testing.T) {
	t.Parallel()
	h := &holder{work: workQueue{wake: make(chan struct{}, 1)}}
	hs := &heldStream{h: h}
	hs.schedule(false)
	hs.schedule(false)
	hs.schedule(true)
	hs.schedule(true)
	hs.schedule(false)
	if len(h.work.others) != 1 || len(h.work.status) != 1 {
		t.Fatalf("lanes hold %d (positions) and %d (status) entries, want 1 and 1", len(h.work.others), len(h.work.status))
	}
	other := &heldStream{h: h}
	other.schedule(true)
	other.schedule(false)
	if len(h.work.others) != 1 || len(h.work.status) != 2 {
		t.Fatalf("a position for a stream on the status lane was queued too: lanes %d and %d, want 1 and 2", len(h.work.others), len(h.work.status))
	}
}
