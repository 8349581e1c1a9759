package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/server"
)

// statusFrame is one status event of the test order in the wire format.
func statusFrame(seq int64) string {
	b, _ := json.Marshal(event(seq, statuses[seq]))
	return fmt.Sprintf("id: %d\nevent: status\ndata: %s\n\n", seq, b)
}

// fakeStreams answers the i-th stream request with answers[i] (the last for any later ones) and
// records when each came and its Last-Event-ID. An answer writes to the stream's body, which
// stays open until it returns and the request's context ends: a silent connection.
type fakeStreams struct {
	answers []func(w io.Writer)
	at      []time.Time
	ids     []string
}

func (f *fakeStreams) RoundTrip(r *http.Request) (*http.Response, error) {
	f.at = append(f.at, time.Now())
	f.ids = append(f.ids, r.Header.Get("Last-Event-ID"))
	answer := f.answers[min(len(f.at), len(f.answers))-1]
	pr, pw := io.Pipe()
	context.AfterFunc(r.Context(), func() { pw.CloseWithError(r.Context().Err()) })
	go answer(pw)
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr}, nil
}

// pingingThenEnd is an answer that sends seq 1, a heartbeat every interval, n times, then the
// order's final event (endStream), unless the watch left first.
func pingingThenEnd(n int, every time.Duration) func(io.Writer) {
	return func(w io.Writer) {
		io.WriteString(w, statusFrame(1))
		for range n {
			time.Sleep(every)
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return // the watch left
			}
		}
		endStream(w)
	}
}

// endStream is an answer that sends the order's final event and ends the stream.
func endStream(w io.Writer) {
	io.WriteString(w, statusFrame(6))
	w.(*io.PipeWriter).Close()
}

// TestWatchIdleTimeout: heartbeats keep a quiet connection; one that then stays silent for
// the idle timeout (45 s by default) is dropped and the watch resumes after its last event, as
// after a drop by the server. The fake clock makes the times exact.
func TestWatchIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeStreams{answers: []func(io.Writer){
			func(w io.Writer) {
				io.WriteString(w, statusFrame(1))
				for range 3 {
					time.Sleep(20 * time.Second)
					if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
						return // the watch left
					}
				}
			},
			endStream,
		}}
		c := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: f}}
		w := c.Watch(t.Context(), orderID, client.WatchOptions{MinRetry: time.Millisecond, MaxRetry: time.Millisecond})
		defer w.Close()
		got, err := collectUntil(t.Context(), w)
		if err != io.EOF || !slices.Equal(got, []int64{1, 6}) {
			t.Fatalf("got %v, %v; want [1 6], io.EOF", got, err)
		}
		// Three pings 20 s apart, then 45 s of silence, then the wait before a reconnect.
		if gap, want := f.at[1].Sub(f.at[0]), 60*time.Second+client.DefaultIdleTimeout; gap < want || gap > want+2*time.Millisecond {
			t.Errorf("reconnected after %v, want %v and the reconnect's wait", gap, want)
		}
		if !slices.Equal(f.ids, []string{"", "1"}) {
			t.Errorf("Last-Event-IDs %q, want a resume after 1", f.ids)
		}
	})
}

// TestWatchIdleTimeoutCoversTheConnect: a server that takes the connection and never answers
// is left after the idle timeout too; the drop is a failed attempt, ErrIdleTimeout its reason.
func TestWatchIdleTimeoutCoversTheConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})}}
		w := c.Watch(t.Context(), orderID, client.WatchOptions{IdleTimeout: 10 * time.Second, MaxFailures: 1})
		defer w.Close()
		_, err := w.Next(t.Context())
		if !errors.Is(err, client.ErrIdleTimeout) || errors.Is(err, context.Canceled) {
			t.Fatalf("Next = %v, want the watch to give up for ErrIdleTimeout", err)
		}
		if waited := time.Since(start); waited != 10*time.Second {
			t.Errorf("gave up after %v, want 10s", waited)
		}
	})
}

// TestWatchIdleTimeoutOff: a negative IdleTimeout waits on a silent connection for as long as
// the caller does.
func TestWatchIdleTimeoutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeStreams{answers: []func(io.Writer){func(w io.Writer) { io.WriteString(w, statusFrame(1)) }}}
		c := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: f}}
		w := c.Watch(t.Context(), orderID, client.WatchOptions{IdleTimeout: -1})
		defer w.Close()
		if ev, err := w.Next(t.Context()); err != nil || ev.Seq != 1 {
			t.Fatalf("Next = %+v, %v; want seq 1", ev, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		if _, err := w.Next(ctx); !errors.Is(err, context.DeadlineExceeded) || len(f.at) != 1 {
			t.Fatalf("Next = %v after %d connects, want the caller's deadline on the first", err, len(f.at))
		}
	})
}

// TestWatchResumesAfterSilentConnection: a real server behind a proxy that silences the
// watch's connection without closing it; the watch notices by the missing heartbeats and
// resumes on a new connection with the event it missed.
func TestWatchResumesAfterSilentConnection(t *testing.T) {
	srv := startServer(t, false, func(s *server.Server) { s.Heartbeat = 50 * time.Millisecond })
	p := newProxy(t, srv.url)
	ctx := context.Background()
	c := clientOf(t, p.url())
	if _, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: orderID}); err != nil {
		t.Fatal(err)
	}
	opts := fastRetry
	opts.IdleTimeout = 500 * time.Millisecond
	w := watch(t, c, opts)
	nctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	if ev, err := w.Next(nctx); err != nil || ev.Seq != 1 {
		t.Fatalf("Next = %+v, %v; want seq 1", ev, err)
	}
	p.stall()
	if _, err := (&client.Client{BaseURL: srv.url}).SetStatus(ctx, orderID, client.SetStatusRequest{Status: ordercast.StatusConfirmed}); err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Next(nctx); err != nil || ev.Seq != 2 {
		t.Fatalf("Next = %+v, %v; want seq 2 from a new connection", ev, err)
	}
	if w.Reconnects() == 0 {
		t.Error("seq 2 came without a reconnect: the proxy did not silence the connection")
	}
}

// TestWatchIdleTimeoutCountsOnlyWhileNextWaits: a caller busy for longer than the idle timeout
// between two calls to Next finds its connection as it left it; what the server sent meanwhile
// is read then, without a reconnect.
func TestWatchIdleTimeoutCountsOnlyWhileNextWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeStreams{answers: []func(io.Writer){pingingThenEnd(6, 15*time.Second)}}
		c := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: f}}
		w := c.Watch(t.Context(), orderID, client.WatchOptions{MinRetry: time.Millisecond, MaxRetry: time.Millisecond})
		defer w.Close()
		if ev, err := w.Next(t.Context()); err != nil || ev.Seq != 1 {
			t.Fatalf("Next = %+v, %v; want seq 1", ev, err)
		}
		time.Sleep(2 * client.DefaultIdleTimeout) // busy with seq 1
		got, err := collectUntil(t.Context(), w)
		if err != io.EOF || !slices.Equal(got, []int64{6}) || len(f.at) != 1 {
			t.Fatalf("got %v, %v after %d connects; want [6], io.EOF on the first", got, err, len(f.at))
		}
	})
}

// TestWatchStreamsOutliveTheHTTPClientsTimeout: a Timeout on Client.HTTPClient bounds a call's
// attempt, not a watch's stream, which a live server keeps open with heartbeats for as long as
// the order lasts: the watch stays on its one connection.
func TestWatchStreamsOutliveTheHTTPClientsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeStreams{answers: []func(io.Writer){pingingThenEnd(10, 10*time.Second), endStream}}
		c := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: f, Timeout: 5 * time.Second}}
		w := c.Watch(t.Context(), orderID, client.WatchOptions{})
		defer w.Close()
		got, err := collectUntil(t.Context(), w)
		if err != io.EOF || !slices.Equal(got, []int64{1, 6}) {
			t.Fatalf("got %v, %v; want [1 6], io.EOF", got, err)
		}
		if len(f.at) != 1 {
			t.Errorf("connected %d times, want once: the client's 5 s Timeout cut the stream", len(f.at))
		}
	})
}
