package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
)

const orderID = "o-1"

// waitLimit bounds every wait in these tests so a bug fails the test instead of hanging it; it
// is a deadline, not a timing assertion.
const waitLimit = 10 * time.Second

// fastRetry keeps reconnects quick without depending on how quick.
var fastRetry = client.WatchOptions{MinRetry: time.Millisecond, MaxRetry: 5 * time.Millisecond}

// streamServer runs handlers[i] for the i-th request (the last handler for any later ones) and
// records every request.
type streamServer struct {
	c    *client.Client
	mu   sync.Mutex
	reqs []*http.Request
}

func newStreamServer(t *testing.T, handlers ...func(w http.ResponseWriter, r *http.Request)) *streamServer {
	t.Helper()
	s := &streamServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		if want := "/v1/orders/" + orderID + "/stream"; r.URL.Path != want {
			t.Errorf("path = %q, want %q", r.URL.Path, want)
		}
		handlers[min(n, len(handlers)-1)](w, r)
	}))
	t.Cleanup(srv.Close)
	s.c = &client.Client{BaseURL: srv.URL, HTTPClient: srv.Client()}
	return s
}

func (s *streamServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// lastEventIDs returns the Last-Event-ID header of every request so far.
func (s *streamServer) lastEventIDs() []string {
	var ids []string
	for _, r := range s.requests() {
		ids = append(ids, r.Header.Get("Last-Event-ID"))
	}
	return ids
}

func openStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func event(seq int64, st ordercast.Status) ordercast.Event {
	return ordercast.Event{OrderID: orderID, Seq: seq, Status: st, At: time.Date(2026, 11, 23, 19, 40, 0, 0, time.UTC)}
}

var statuses = []ordercast.Status{"", ordercast.StatusPlaced, ordercast.StatusConfirmed, ordercast.StatusPreparing,
	ordercast.StatusReady, ordercast.StatusOutForDelivery, ordercast.StatusDelivered}

// send writes events seq from..to (statuses by seq, so 6 is delivered) in the wire format.
func send(w http.ResponseWriter, from, to int64) {
	for seq := from; seq <= to; seq++ {
		writeEvent(w, event(seq, statuses[seq]))
	}
}

func writeEvent(w http.ResponseWriter, ev ordercast.Event) {
	b, _ := json.Marshal(ev)
	fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", ev.Seq, b)
	w.(http.Flusher).Flush()
}

// collect calls Next until it fails, returning the seqs it got and the error.
func collect(t *testing.T, w *client.Watch) ([]int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return collectUntil(ctx, w)
}

// collectUntil is collect bounded by ctx.
func collectUntil(ctx context.Context, w *client.Watch) ([]int64, error) {
	var seqs []int64
	for {
		ev, err := w.Next(ctx)
		if err != nil {
			return seqs, err
		}
		seqs = append(seqs, ev.Seq)
	}
}

func watch(t *testing.T, c *client.Client, opts client.WatchOptions) *client.Watch {
	t.Helper()
	w := c.Watch(context.Background(), orderID, opts)
	t.Cleanup(func() { w.Close() })
	return w
}

func TestWatchResumesAfterDrop(t *testing.T) {
	s := newStreamServer(t,
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			fmt.Fprint(w, "retry: 1\n\n")
			send(w, 1, 3)
			// Half an event, then the connection dies without a clean end.
			fmt.Fprint(w, "id: 4\nevent: status\ndata: {\"order_id\":")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		},
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 2, 5) // 2 and 3 again: the client must drop them
			// A clean end of a stream whose order is not over is also a drop.
		},
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 5, 6)
		},
	)
	w := watch(t, s.c, fastRetry)
	got, err := collect(t, w)
	if err != io.EOF {
		t.Fatalf("Next ended with %v, want io.EOF", err)
	}
	if want := []int64{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("seqs = %v, want %v", got, want)
	}
	if got, want := s.lastEventIDs(), []string{"", "3", "5"}; !slices.Equal(got, want) {
		t.Errorf("Last-Event-ID headers = %q, want %q", got, want)
	}
	if got := w.Reconnects(); got != 2 {
		t.Errorf("Reconnects = %d, want 2", got)
	}
	if got := w.LastEventID(); got != 6 {
		t.Errorf("LastEventID = %d, want 6", got)
	}
}

func TestWatchQueryFormAndToken(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 3, 6)
	})
	s.c.Token = "secret"
	opts := fastRetry
	opts.LastEventID, opts.LastEventIDInQuery = 2, true
	got, err := collect(t, watch(t, s.c, opts))
	if err != io.EOF || !slices.Equal(got, []int64{3, 4, 5, 6}) {
		t.Fatalf("got %v, %v; want [3 4 5 6], io.EOF", got, err)
	}
	r := s.requests()[0]
	if q := r.URL.Query().Get("lastEventId"); q != "2" {
		t.Errorf("lastEventId query = %q, want 2", q)
	}
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		t.Errorf("Last-Event-ID header = %q, want none with the query form", h)
	}
	if h := r.Header.Get("Authorization"); h != "Bearer secret" {
		t.Errorf("Authorization = %q", h)
	}
	if h := r.Header.Get("Accept"); h != "text/event-stream" {
		t.Errorf("Accept = %q", h)
	}
}

func TestWatchStopsOn204(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	opts := fastRetry
	opts.LastEventID = 6
	w := watch(t, s.c, opts)
	for range 2 {
		if _, err := w.Next(context.Background()); err != io.EOF {
			t.Fatalf("Next = %v, want io.EOF", err)
		}
	}
	if got := s.lastEventIDs(); !slices.Equal(got, []string{"6"}) {
		t.Errorf("Last-Event-ID headers = %q, want one request with 6", got)
	}
}

func TestWatchStopsAfterTerminalEvent(t *testing.T) {
	gone := make(chan struct{})
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		writeEvent(w, event(1, ordercast.StatusPlaced))
		writeEvent(w, event(2, ordercast.StatusCancelled))
		// Keep the stream open: the client must stop on the event, not on the end of stream.
		<-r.Context().Done()
		close(gone)
	})
	w := watch(t, s.c, fastRetry)
	got, err := collect(t, w)
	if err != io.EOF || !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("got %v, %v; want [1 2], io.EOF", got, err)
	}
	select {
	case <-gone:
	case <-time.After(waitLimit):
		t.Fatal("the watch kept its connection open after the terminal event")
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestWatchNotFoundIsFinal(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"order o-1 not found"}}`)
	})
	w := watch(t, s.c, fastRetry)
	for range 2 {
		_, err := w.Next(context.Background())
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != http.StatusNotFound {
			t.Fatalf("Next = %v, want a 404 *client.Error", err)
		}
		if code := ordercast.ErrorCode(err); code != ordercast.ENotFound {
			t.Errorf("ErrorCode = %q, want %q", code, ordercast.ENotFound)
		}
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1: a 4xx must not be retried", n)
	}
}

func TestWatchRetriesServerErrors(t *testing.T) {
	s := newStreamServer(t,
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"unavailable","message":"draining"}}`)
		},
		func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "oops", http.StatusInternalServerError)
		},
		func(w http.ResponseWriter, r *http.Request) {
			// Over the per-client stream limit: rate_limited, try again later.
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"code":"rate_limited","message":"too many streams"}}`)
		},
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 6, 6)
		},
	)
	w := watch(t, s.c, fastRetry)
	got, err := collect(t, w)
	if err != io.EOF || !slices.Equal(got, []int64{6}) {
		t.Fatalf("got %v, %v; want [6], io.EOF", got, err)
	}
	if got := w.Reconnects(); got != 3 {
		t.Errorf("Reconnects = %d, want 3", got)
	}
}

func TestWatchMaxFailures(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	opts := fastRetry
	opts.MaxFailures = 3
	_, err := watch(t, s.c, opts).Next(context.Background())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Next = %v, want the last 503", err)
	}
	if n := len(s.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestWatchSkipsDuplicatesAndOtherEvents(t *testing.T) {
	var comments []string
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 2)
		send(w, 1, 2)
		fmt.Fprint(w, ": ping\n\nevent: hello\ndata: not json\n\n")
		send(w, 3, 3)
		send(w, 6, 6)
	})
	opts := fastRetry
	opts.OnComment = func(s string) { comments = append(comments, s) }
	w := watch(t, s.c, opts)
	got, err := collect(t, w)
	if err != io.EOF || !slices.Equal(got, []int64{1, 2, 3, 6}) {
		t.Fatalf("got %v, %v; want [1 2 3 6], io.EOF", got, err)
	}
	if !slices.Equal(comments, []string{"ping"}) {
		t.Errorf("comments = %q, want [ping]", comments)
	}
	if got := w.Duplicates(); got != 2 {
		t.Errorf("Duplicates = %d, want 2 (seqs 1 and 2 sent twice)", got)
	}
}

// TestWatchFailsOver: after each failed or dropped connection the watch moves on to the next
// URL, round the ring of BaseURL and FailoverURLs, resuming after the last event it returned.
func TestWatchFailsOver(t *testing.T) {
	a := newStreamServer(t,
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 1, 2) // then a drop: the stream ends before the order does
		},
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 5, 6)
		},
	)
	b := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "draining", http.StatusServiceUnavailable)
	})
	c := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 3, 4)
	})
	opts := fastRetry
	opts.FailoverURLs = []string{b.c.BaseURL, c.c.BaseURL}
	w := watch(t, a.c, opts)
	got, err := collect(t, w)
	if err != io.EOF {
		t.Fatalf("Next ended with %v, want io.EOF", err)
	}
	if want := []int64{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("seqs = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name string
		s    *streamServer
		want []string
	}{{"BaseURL", a, []string{"", "4"}}, {"first failover", b, []string{"2"}}, {"second failover", c, []string{"2"}}} {
		if got := tc.s.lastEventIDs(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Last-Event-ID headers = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := w.Reconnects(); got != 3 {
		t.Errorf("Reconnects = %d, want 3", got)
	}
	if got := w.Duplicates(); got != 0 {
		t.Errorf("Duplicates = %d, want 0", got)
	}
}

// TestWatchRejectsIDThatIsNotTheSeq: the watch resumes after the seq, a browser after the id, so
// a server that lets them differ is an error, not something to resume from.
func TestWatchRejectsIDThatIsNotTheSeq(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		b, _ := json.Marshal(event(1, ordercast.StatusPlaced))
		fmt.Fprintf(w, "id: 7\nevent: status\ndata: %s\n\n", b)
	})
	_, err := watch(t, s.c, fastRetry).Next(context.Background())
	if err == nil || !strings.Contains(err.Error(), `id "7" with seq 1`) {
		t.Fatalf("Next = %v, want an error about id 7 and seq 1", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (the error is final)", n)
	}
}

func TestWatchRejectsNonStream(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html></html>")
	})
	if _, err := watch(t, s.c, fastRetry).Next(context.Background()); err == nil || err == io.EOF {
		t.Fatalf("Next = %v, want an error", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// blockingStream sends events from..to, then holds the stream open until the client leaves,
// reporting that on gone.
func blockingStream(from, to int64, gone chan<- struct{}) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, from, to)
		<-r.Context().Done()
		gone <- struct{}{}
	}
}

func waitGone(t *testing.T, gone <-chan struct{}) {
	t.Helper()
	select {
	case <-gone:
	case <-time.After(waitLimit):
		t.Fatal("the server never saw the client leave")
	}
}

// TestWatchNextContextCancel: a Next whose context ends, while it waits on a quiet stream or just
// as it begins, returns the context's error and leaves the stream (the server sees the client
// go); the watch stays usable and resumes after the last event on a new connection.
func TestWatchNextContextCancel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel func(context.CancelFunc)
	}{
		{"while it waits, or as it begins", func(cancel context.CancelFunc) { go cancel() }},
		{"before it begins", func(cancel context.CancelFunc) { cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone := make(chan struct{}, 2)
			s := newStreamServer(t, blockingStream(1, 1, gone), func(w http.ResponseWriter, r *http.Request) {
				openStream(w)
				send(w, 2, 6)
			})
			w := watch(t, s.c, fastRetry)
			ctx, cancel := context.WithCancel(context.Background())
			if ev, err := w.Next(ctx); err != nil || ev.Seq != 1 {
				t.Fatalf("Next = %+v, %v; want seq 1", ev, err)
			}
			tc.cancel(cancel)
			if _, err := w.Next(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("Next = %v, want context.Canceled", err)
			}
			waitGone(t, gone)
			// The watch is still usable and resumes where it stopped.
			got, err := collect(t, w)
			if err != io.EOF || !slices.Equal(got, []int64{2, 3, 4, 5, 6}) {
				t.Fatalf("got %v, %v; want [2 3 4 5 6], io.EOF", got, err)
			}
			if got, want := s.lastEventIDs(), []string{"", "1"}; !slices.Equal(got, want) {
				t.Errorf("Last-Event-ID headers = %q, want %q", got, want)
			}
		})
	}
}

func TestWatchContextCancelIsFinal(t *testing.T) {
	gone := make(chan struct{}, 1)
	s := newStreamServer(t, blockingStream(1, 2, gone))
	ctx, cancel := context.WithCancel(context.Background())
	w := s.c.Watch(ctx, orderID, fastRetry)
	t.Cleanup(func() { w.Close() })
	if ev, err := w.Next(context.Background()); err != nil || ev.Seq != 1 {
		t.Fatalf("Next = %+v, %v; want seq 1", ev, err)
	}
	cancel()
	for range 2 {
		if _, err := w.Next(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next = %v, want context.Canceled", err)
		}
	}
	waitGone(t, gone)
}

func TestWatchCloseDuringNext(t *testing.T) {
	gone := make(chan struct{}, 1)
	s := newStreamServer(t, blockingStream(1, 1, gone))
	w := watch(t, s.c, fastRetry)
	if ev, err := w.Next(context.Background()); err != nil || ev.Seq != 1 {
		t.Fatalf("Next = %+v, %v; want seq 1", ev, err)
	}
	go w.Close()
	if _, err := w.Next(context.Background()); !errors.Is(err, client.ErrWatchClosed) {
		t.Fatalf("Next = %v, want ErrWatchClosed", err)
	}
	waitGone(t, gone)
}

func TestWatchCloseBetweenNexts(t *testing.T) {
	gone := make(chan struct{}, 1)
	s := newStreamServer(t, blockingStream(1, 1, gone))
	w := watch(t, s.c, fastRetry)
	if ev, err := w.Next(context.Background()); err != nil || ev.Seq != 1 {
		t.Fatalf("Next = %+v, %v; want seq 1", ev, err)
	}
	w.Close()
	waitGone(t, gone) // Close alone frees the connection
	if _, err := w.Next(context.Background()); !errors.Is(err, client.ErrWatchClosed) {
		t.Fatalf("Next = %v, want ErrWatchClosed", err)
	}
}

// roundTripFunc lets a test answer requests without a network, so the watch can run inside a
// synctest bubble whose fake clock makes its waits exact.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWatchBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		streamOf := func(body string) *http.Response {
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}},
				Body: io.NopCloser(strings.NewReader(body))}
		}
		unavailable := func() *http.Response {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}
		}
		ev := func(seq int64, st ordercast.Status) string {
			b, _ := json.Marshal(event(seq, st))
			return fmt.Sprintf("id: %d\nevent: status\ndata: %s\n\n", seq, b)
		}
		var at []time.Time
		answers := []func() *http.Response{
			func() *http.Response { return streamOf("retry: 2000\n\n" + ev(1, ordercast.StatusPlaced)) }, // then EOF
			unavailable,
			unavailable,
			unavailable,
			func() *http.Response { return streamOf(ev(6, ordercast.StatusDelivered)) },
		}
		c := &client.Client{BaseURL: "http://ordercast.test", HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			at = append(at, time.Now())
			return answers[len(at)-1](), nil
		})}}
		w := c.Watch(t.Context(), orderID, client.WatchOptions{MinRetry: time.Second, MaxRetry: 10 * time.Second})
		defer w.Close()
		var got []int64
		var err error
		for err == nil {
			var ev ordercast.Event
			if ev, err = w.Next(t.Context()); err == nil {
				got = append(got, ev.Seq)
			}
		}
		if err != io.EOF || !slices.Equal(got, []int64{1, 6}) {
			t.Fatalf("got %v, %v; want [1 6], io.EOF", got, err)
		}
		// The server's retry after a healthy stream (no failed attempt) and after the first
		// failed attempt, then doubled per further failure, each plus up to half again of jitter,
		// and held under MaxRetry (still jittered there).
		bounds := [][2]time.Duration{{2 * time.Second, 3 * time.Second}, {2 * time.Second, 3 * time.Second}, {4 * time.Second, 6 * time.Second}, {7500 * time.Millisecond, 10 * time.Second}}
		for i, b := range bounds {
			if gap := at[i+1].Sub(at[i]); gap < b[0] || gap > b[1] {
				t.Errorf("wait before attempt %d = %v, want within %v", i+2, gap, b)
			}
		}
	})
}

// TestWatchOnEventSeesWhatTheServerSent: OnEvent observes every status event as sent, replays
// included, with a receive time, while Next stays exactly-once; OnConnect marks each answered
// attempt, reconnects included. This is what the bench measures a server with.
func TestWatchOnEventSeesWhatTheServerSent(t *testing.T) {
	s := newStreamServer(t,
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			fmt.Fprint(w, "retry: 1\n\n")
			send(w, 1, 2)
		},
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 2, 3) // 2 again: a replay the caller never sees from Next
			send(w, 6, 6)
		},
	)
	var observed []int64
	var connects []bool
	opts := fastRetry
	start := time.Now()
	opts.OnEvent = func(ev ordercast.Event, received time.Time) {
		observed = append(observed, ev.Seq)
		if received.Before(start) || received.After(time.Now()) {
			t.Errorf("seq %d received at %v, outside the test", ev.Seq, received)
		}
	}
	opts.OnConnect = func(reconnect bool) { connects = append(connects, reconnect) }
	w := watch(t, s.c, opts)
	got, err := collect(t, w)
	if err != io.EOF || !slices.Equal(got, []int64{1, 2, 3, 6}) {
		t.Fatalf("Next gave %v, %v; want [1 2 3 6], io.EOF", got, err)
	}
	if want := []int64{1, 2, 2, 3, 6}; !slices.Equal(observed, want) {
		t.Errorf("OnEvent saw %v, want %v", observed, want)
	}
	if want := []bool{false, true}; !slices.Equal(connects, want) {
		t.Errorf("OnConnect saw %v, want %v", connects, want)
	}
	if w.Duplicates() != 1 || w.Reconnects() != 1 {
		t.Errorf("Duplicates %d, Reconnects %d; want 1 and 1", w.Duplicates(), w.Reconnects())
	}
}

// TestWatchOnLocationSeesPositions: positions reach OnLocation as the server sent them, between
// status events; Next returns only the status events, and a position moves no resume point.
func TestWatchOnLocationSeesPositions(t *testing.T) {
	at := time.Date(2026, 11, 23, 19, 41, 0, 123456000, time.UTC)
	s := newStreamServer(t,
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			fmt.Fprint(w, "retry: 1\n\n")
			send(w, 1, 1)
			fmt.Fprintf(w, "event: location\ndata: {\"order_id\":%q,\"lat\":52.5,\"lng\":13.4,\"at\":%q}\n\n", orderID, at.Format(time.RFC3339Nano))
			send(w, 2, 2)
		},
		func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 6, 6)
		},
	)
	var got []ordercast.LocationUpdate
	opts := fastRetry
	opts.OnLocation = func(u ordercast.LocationUpdate, received time.Time) {
		if received.IsZero() {
			t.Error("position without its receive time")
		}
		got = append(got, u)
	}
	w := watch(t, s.c, opts)
	seqs, err := collect(t, w)
	if err != io.EOF || !slices.Equal(seqs, []int64{1, 2, 6}) {
		t.Fatalf("Next gave %v, %v; want [1 2 6], io.EOF", seqs, err)
	}
	if len(got) != 1 || got[0].OrderID != orderID || got[0].Lat != 52.5 || !got[0].At.Equal(at) {
		t.Fatalf("OnLocation saw %+v, want the one position at %v", got, at)
	}
	if ids := s.lastEventIDs(); !slices.Equal(ids, []string{"", "2"}) {
		t.Errorf("Last-Event-IDs %q, want the resume after seq 2, untouched by the position", ids)
	}
}

// lateCtx is a context that ends while Next runs (its Err runs what was registered with its
// AfterFunc, as a cancel would), so that Next's interrupt runs on its own goroutine around the
// moment Next returns: before or after, as it happens.
type lateCtx struct {
	context.Context
	done       chan struct{} // never closed: Err says the context ended
	registered func()
}

func (c *lateCtx) Done() <-chan struct{} { return c.done }
func (c *lateCtx) Err() error {
	if f := c.registered; f != nil {
		c.registered = nil
		f()
	}
	return context.Canceled
}
func (c *lateCtx) AfterFunc(f func()) func() bool {
	c.registered = f
	return func() bool { return false }
}

// TestWatchInterruptIsNoFailure: a call to Next whose context ends as it returns may have its
// interrupt cut the stream, during the call or after it; either way the next call resumes
// without counting a failure (here the one failure allowed, which would end the watch).
func TestWatchInterruptIsNoFailure(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 1)
		<-r.Context().Done() // then quiet, until the client goes
	})
	opts := fastRetry
	opts.MaxFailures = 1
	w := watch(t, s.c, opts)
	if ev, err := w.Next(context.Background()); err != nil || ev.Seq != 1 {
		t.Fatalf("first Next = %+v, %v; want seq 1", ev, err)
	}
	late := &lateCtx{Context: context.Background(), done: make(chan struct{})}
	if _, err := w.Next(late); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with an ended context = %v, want context.Canceled", err)
	}
	if late.registered != nil {
		t.Fatal("Next never looked at its context's end: the test cannot tell anything")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := w.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next after an interrupt = %v, want its own deadline, not a failure", err)
	}
}

// TestWatchStoreAwayIsAFailure: a server whose store is away answers the stream with a retry
// advice and a comment, then ends it; each such answer is a failed attempt, so MaxFailures ends
// the watch (it used to count the comment as a healthy connection and retry forever).
func TestWatchStoreAwayIsAFailure(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		fmt.Fprint(w, "retry: 1\n: store unavailable, retry shortly\n\n")
	})
	opts := fastRetry
	opts.MaxFailures = 3
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := watch(t, s.c, opts).Next(ctx)
	if !errors.Is(err, client.ErrGaveUp) || errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v, want the watch to give up after 3 attempts", err)
	}
	if n := len(s.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// parentCtx is the context a watch is given, counting the watches registered with it: a
// context derived from one that has an AfterFunc method registers through it, and lets go by
// calling the stop it got back.
type parentCtx struct {
	context.Context
	done chan struct{} // never closed
	live atomic.Int64
}

func (c *parentCtx) Done() <-chan struct{} { return c.done }
func (c *parentCtx) AfterFunc(func()) func() bool {
	c.live.Add(1)
	var once sync.Once
	return func() bool {
		stopped := false
		once.Do(func() { c.live.Add(-1); stopped = true })
		return stopped
	}
}

// TestWatchLetsGoOfItsContextWhenItEnds: a watch that ends by itself, after the final event or
// with a final error, and is never closed, leaves nothing registered in the context it was
// given (a caller's long-lived context would otherwise collect one per watch); a Close after
// that is harmless.
func TestWatchLetsGoOfItsContextWhenItEnds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(http.ResponseWriter, *http.Request)
		wantEOF bool // else a *client.Error
	}{
		{"after the final event", func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 1, 6)
		}, true},
		{"with a final error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"code":"not_found","message":"no order o-1"}}`, http.StatusNotFound)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStreamServer(t, tc.handler)
			parent := &parentCtx{Context: context.Background(), done: make(chan struct{})}
			w := s.c.Watch(parent, orderID, fastRetry)
			if parent.live.Load() != 1 {
				t.Fatalf("%d watches registered, want 1: the test cannot tell anything", parent.live.Load())
			}
			_, err := collect(t, w)
			if tc.wantEOF && err != io.EOF || !tc.wantEOF && !errors.As(err, new(*client.Error)) {
				t.Fatalf("the watch ended with %v", err)
			}
			if n := parent.live.Load(); n != 0 {
				t.Errorf("the ended watch is still registered with its context (%d)", n)
			}
			if err := w.Close(); err != nil {
				t.Errorf("Close after the end = %v", err)
			}
			if _, again := w.Next(context.Background()); again != err {
				t.Errorf("Next after Close = %v, want the watch's end %v again", again, err)
			}
		})
	}
}

// TestWatchCallCutShortExcusesNoLaterFailure: a call to Next whose context ends while it reads
// cuts the connection, which is no failure; the mark that says so must go with that call. Left
// for later, it excused the server's next failure, here a 503, as if the client had cut it: the
// watch retried at once, its Retry-After and backoff ignored and the failure not counted (with
// one failure allowed, it asked a third time instead of giving up after the second request).
func TestWatchCallCutShortExcusesNoLaterFailure(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 1)
		<-r.Context().Done()
	}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":{"code":"unavailable","message":"draining"}}`, http.StatusServiceUnavailable)
	})
	opts := fastRetry
	opts.MaxFailures = 1
	w := watch(t, s.c, opts)
	if ev, err := w.Next(context.Background()); err != nil || ev.Seq != 1 {
		t.Fatalf("first Next = %+v, %v; want seq 1", ev, err)
	}
	// Long enough for Next to be reading the quiet stream when its deadline comes.
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := w.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with a short deadline = %v, want its deadline", err)
	}
	ctx, cancelAll := context.WithTimeout(context.Background(), waitLimit)
	defer cancelAll()
	if _, err := w.Next(ctx); !errors.Is(err, client.ErrGaveUp) {
		t.Fatalf("Next after the cut = %v, want the watch to give up on the 503", err)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("%d requests, want 2: the stream, then the one that failed", n)
	}
}

// TestAWatchReadWithShortCallsStillReconnects: a watch read with per-call deadlines shorter than
// its wait to reconnect (a UI polling Next every half second) waits across the calls: each call
// began the wait again, cut short by its own deadline, so the watch never reconnected after the
// server dropped it, while the order moved on (a client integrator's review: 57 empty polls over
// 27 s).
func TestAWatchReadWithShortCallsStillReconnects(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 2) // and the server goes
	}, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 3, 6)
	})
	w := watch(t, s.c, client.WatchOptions{MinRetry: 300 * time.Millisecond, MaxRetry: 300 * time.Millisecond})
	var got []int64
	deadline := time.Now().Add(waitLimit)
	for len(got) < 6 && time.Now().Before(deadline) {
		call, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		ev, err := w.Next(call)
		cancel()
		switch {
		case err == nil:
			got = append(got, ev.Seq)
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("Next = %v after %v, want events or its call's deadline", err, got)
		}
	}
	if !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("got %v over short calls, want 1 to 6: the watch reconnected once its wait was over", got)
	}
}

// TestAWatchThatGivesUpDoesNotLookLikeTheEnd: the loop the README shows ends on
// errors.Is(err, io.EOF), the order delivered or cancelled. A watch that gave up after streams
// the server ended cleanly (its store away) said "read stream: EOF" and matched it: a customer's
// tracking stopped as if the order had ended, and no error was shown.
func TestAWatchThatGivesUpDoesNotLookLikeTheEnd(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		fmt.Fprint(w, "retry: 1\n: store unavailable, retry shortly\n\n")
	})
	opts := fastRetry
	opts.MaxFailures = 2
	_, err := collect(t, watch(t, s.c, opts))
	if errors.Is(err, io.EOF) || !errors.Is(err, client.ErrGaveUp) {
		t.Fatalf("Next = %v: want ErrGaveUp, and not io.EOF", err)
	}
	// Nor after connections closed before any answer (a proxy without a backend), whose
	// error from the transport is io.EOF too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c := &client.Client{BaseURL: "http://" + ln.Addr().String()}
	_, err = collect(t, watch(t, c, opts))
	if errors.Is(err, io.EOF) || !errors.Is(err, client.ErrGaveUp) {
		t.Fatalf("Next against a proxy closing every connection = %v: want ErrGaveUp, and not io.EOF", err)
	}
}

// TestADroppedHealthyStreamIsNoFailedAttempt: a stream that delivered and was then ended by the
// server (a drain, --stream-lifetime) is resumed without counting a failed attempt, so that
// MaxFailures 1 ("give up when unreachable") survives every drain.
func TestADroppedHealthyStreamIsNoFailedAttempt(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 1)
	}, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 2, 3)
	}, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 4, 6)
	})
	opts := fastRetry
	opts.MaxFailures = 1
	got, err := collect(t, watch(t, s.c, opts))
	if err != io.EOF || !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("got %v, %v; want 1…6 then io.EOF", got, err)
	}
}

// TestAWatchResumedAtOrPastTheOrdersEnd: a watch resumes after seq 9 of an order whose history
// (a database reset or restored) ends at seq 6, delivered. It got that end again and again as a
// replay it skipped, reconnecting every few seconds for good: it ends after one attempt with
// ErrHistoryBehind, which names both seqs, and not with io.EOF, as the end was never returned.
// Resumed after seq 6 itself and sent that end again (rather than a 204), it ends with io.EOF.
func TestAWatchResumedAtOrPastTheOrdersEnd(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		last       int64
		ok         func(error) bool
	}{
		{"past it", "ErrHistoryBehind naming seq 6 and 9", 9, func(err error) bool {
			return !errors.Is(err, io.EOF) && errors.Is(err, client.ErrHistoryBehind) &&
				strings.Contains(err.Error(), "seq 6") && strings.Contains(err.Error(), "after 9")
		}},
		{"at it", "io.EOF", 6, func(err error) bool { return err == io.EOF }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
				openStream(w)
				send(w, 6, 6)
			})
			opts := fastRetry
			opts.LastEventID = tt.last
			got, err := collect(t, watch(t, s.c, opts))
			if len(got) != 0 || !tt.ok(err) {
				t.Fatalf("got %v, %v; want nothing and %s", got, err, tt.want)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// TestReplaysAloneAreNoHealthyConnection: a connection that brings only events the watch has
// returned and ends is a failed attempt, as one that brings only a comment is, so MaxFailures
// applies and the backoff grows.
func TestReplaysAloneAreNoHealthyConnection(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 2)
	}, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 2) // nothing new, again and again
	})
	opts := fastRetry
	opts.MaxFailures = 3
	got, err := collect(t, watch(t, s.c, opts))
	if !slices.Equal(got, []int64{1, 2}) || !errors.Is(err, client.ErrGaveUp) {
		t.Fatalf("got %v, %v; want [1 2] and then ErrGaveUp", got, err)
	}
	if n := len(s.requests()); n != 4 {
		t.Errorf("%d requests, want 4: the first, then three that brought nothing new", n)
	}
}

// TestAnEventPastTheWatchsBoundEndsIt: an event larger than MaxEventSize would come again on
// every reconnect, so the watch ends with ErrSSETooLarge after one attempt instead of fetching
// it for ever.
func TestAnEventPastTheWatchsBoundEndsIt(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		b, _ := json.Marshal(event(1, ordercast.StatusPlaced))
		fmt.Fprintf(w, "id: 1\nevent: status\ndata: %s\n\n", b)
	})
	opts := fastRetry
	opts.MaxEventSize = 64
	_, err := collect(t, watch(t, s.c, opts))
	if !errors.Is(err, client.ErrSSETooLarge) {
		t.Fatalf("Next = %v, want ErrSSETooLarge", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1: the same event would come again", n)
	}
}

// TestAWatchWhoseHistoryWasRewrittenEnds: a stream that ends with an end event saying the
// order's history was rewritten (a failover that lost the database's last commits) ends the
// watch with ErrHistoryBehind, after the events it brought, and the watch does not resume: a
// resume after seq 2 would skip a change made again under seq 3. An end for a reason this
// client does not know is resumed from, as before.
func TestAWatchWhoseHistoryWasRewrittenEnds(t *testing.T) {
	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 2)
		sendEnd(w, "a_reason_of_a_later_server", "reconnect")
	}, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 3, 3)
		_, _ = io.WriteString(w, "event: end\ndata: {\"reason\":\"history_rewritten\",\"message\":\"the order's history went back under this stream\"}\n\n")
	})
	got, err := collect(t, watch(t, s.c, fastRetry))
	if !slices.Equal(got, []int64{1, 2, 3}) || !errors.Is(err, client.ErrHistoryBehind) || !strings.Contains(err.Error(), "went back under this stream") {
		t.Fatalf("got %v, %v; want 1…3 then ErrHistoryBehind with the server's words", got, err)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("%d requests, want 2: none after the history was rewritten", n)
	}
}

// sendEnd writes the server's end of a stream: why it ends.
func sendEnd(w http.ResponseWriter, reason, message string) {
	b, _ := json.Marshal(api.StreamEnd{Reason: reason, Message: message})
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", api.EventEnd, b)
	w.(http.Flusher).Flush()
}

// TestAWatchSaysWhyTheServerEndedIt: the server's end of a stream reaches the caller. A courier's
// watch of an order given to another courier ends with ErrOrderReassigned (beside the 403 a
// reconnect would get, which alone read as an order it never had); a watch whose token expired
// ends with token_expired, or, with a TokenSource, goes on at once on a new connection with a
// token asked for anew, not after a failure's backoff. The watch ignored both, waited, and
// reconnected into a bare 403 or 401 (a client integrator's review).
func TestAWatchSaysWhyTheServerEndedIt(t *testing.T) {
	slow := client.WatchOptions{MinRetry: time.Hour, MaxRetry: time.Hour} // a backoff would outlast the test
	for _, tc := range []struct {
		reason   string
		code     string
		sentinel error
	}{
		{api.EndOrderReassigned, ordercast.EForbidden, client.ErrOrderReassigned},
		{api.EndTokenExpired, ordercast.ETokenExpired, nil},
	} {
		s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
			openStream(w)
			send(w, 1, 1)
			sendEnd(w, tc.reason, "why, in words")
		})
		w := watch(t, s.c, slow)
		seqs, err := collect(t, w)
		if !slices.Equal(seqs, []int64{1}) || ordercast.ErrorCode(err) != tc.code || tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
			t.Errorf("%s: got %v, then %v; want seq 1, then the code %s", tc.reason, seqs, err, tc.code)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("%s: %d requests, want 1: the end says why, no reconnect need ask", tc.reason, n)
		}
	}

	s := newStreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 1, 2)
		sendEnd(w, api.EndTokenExpired, "the token this stream was opened with expired")
	}, func(w http.ResponseWriter, r *http.Request) {
		openStream(w)
		send(w, 3, 6)
	})
	var tokens atomic.Int32
	s.c.TokenSource = func(context.Context) (string, error) { return fmt.Sprintf("token-%d", tokens.Add(1)), nil }
	w := watch(t, s.c, slow)
	seqs, err := collect(t, w)
	if !slices.Equal(seqs, []int64{1, 2, 3, 4, 5, 6}) || !errors.Is(err, io.EOF) {
		t.Fatalf("with a token source: got %v, then %v; want 1 to 6, then io.EOF", seqs, err)
	}
	reqs := s.requests()
	if len(reqs) != 2 || reqs[0].Header.Get("Authorization") == reqs[1].Header.Get("Authorization") || reqs[1].Header.Get("Last-Event-ID") != "2" {
		t.Errorf("requests %d, the second with %q after %q and Last-Event-ID %q; want 2, a new token, resuming after 2",
			len(reqs), reqs[len(reqs)-1].Header.Get("Authorization"), reqs[0].Header.Get("Authorization"), reqs[len(reqs)-1].Header.Get("Last-Event-ID"))
	}
}
