package stream

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/poller"
)

// TestHeldStreamTakesTimeAsInput holds a stream on the poller and drives its clock by hand: a
// tick sends a heartbeat; a tick past its lifetime ends it, reported once as held, with the bytes
// the client read.
func TestHeldStreamTakesTimeAsInput(t *testing.T) {
	if !poller.Supported {
		t.Skip("streams are held by the poller only on Linux")
	}
	t.Parallel()
	cfg := testConfig
	cfg.Heartbeat, cfg.Lifetime, cfg.Hold = time.Hour, time.Hour, true // the sweeper stays out of the way
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wt, err := e.Watch(r.Context(), Request{OrderID: "o-1"})
		if err != nil {
			t.Error(err)
			return
		}
		e.ServeSSE(w, r, wt, func(x End) { ends <- x })
	}))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL)
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
	hs.tick(time.Now())
	if got := readFrame(); got != ": ping\n" {
		t.Fatalf("after a tick: %q, want a heartbeat", got)
	}
	hs.tick(hs.expires.Add(time.Nanosecond))
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the lifetime: %q, %v; want the end of the stream", rest, err)
	}
	select {
	case x := <-ends:
		if x.Reason != ReasonLifetime || !x.Held || !x.Hijacked || x.Events != 1 || x.Bytes != int64(body.Len()) {
			t.Errorf("end %+v, want lifetime, held, 1 event, %d bytes", x, body.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the end was never reported")
	}
	if n := len(e.held.snapshot(-1)); n != 0 {
		t.Errorf("%d streams still held", n)
	}
}
