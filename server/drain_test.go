package server_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/server"
)

// TestDrainSpreadsStreamClosings opens 50 streams in a synctest bubble (fake clock), starts the
// drain with a 1 s window and records when each stream's handler returns: they close one by
// one, evenly spaced over the window, not all in one instant.
func TestDrainSpreadsStreamClosings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, window = 50, time.Second
		at := time.Now().UTC()
		store := &oneOrderStore{
			order: ordercast.Order{ID: "o-1", Status: ordercast.StatusPlaced, Version: 1, CreatedAt: at, UpdatedAt: at},
			event: ordercast.Event{OrderID: "o-1", Seq: 1, Status: ordercast.StatusPlaced, At: at},
		}
		srv := server.New(store, hub.New())
		srv.DrainWindow = window
		handler := srv.Handler()

		writers := make([]*flushRecorder, n)
		closedAt := make([]time.Time, n)
		var wg sync.WaitGroup
		for i := range n {
			writers[i] = &flushRecorder{header: http.Header{}}
			req := httptest.NewRequest(http.MethodGet, "/v1/orders/o-1/stream", nil)
			wg.Go(func() {
				handler.ServeHTTP(writers[i], req)
				closedAt[i] = time.Now()
			})
		}
		synctest.Wait() // every stream has sent its backlog and waits in its loop
		for i, w := range writers {
			if !bytes.Contains(w.body(), []byte("id: 1\n")) {
				t.Fatalf("stream %d did not open: %q", i, w.body())
			}
		}

		start := time.Now()
		server.BeginDrain(srv)
		wg.Wait()

		offsets := make([]time.Duration, n)
		for i, c := range closedAt {
			offsets[i] = c.Sub(start)
		}
		slices.Sort(offsets)
		for k, got := range offsets {
			if want := window / n * time.Duration(k); got != want {
				t.Errorf("closing %d at %v after the drain began, want %v (evenly spread over %v)", k, got, want, window)
			}
		}
		mfs, err := srv.Metrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if got := value(families(mfs), "ordercast_streams_closed_total", "reason", "shutdown"); got != n {
			t.Errorf("streams closed for shutdown: %v, want %d", got, n)
		}
	})
}

// TestStreamLifetime: with a lifetime set, a stream ends after at most that long (and no less
// than nine tenths of it), counted as closed for its lifetime.
func TestStreamLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lifetime = time.Minute
		at := time.Now().UTC()
		srv := server.New(&oneOrderStore{
			order: ordercast.Order{ID: "o-1", Status: ordercast.StatusPlaced, Version: 1, CreatedAt: at, UpdatedAt: at},
			event: ordercast.Event{OrderID: "o-1", Seq: 1, Status: ordercast.StatusPlaced, At: at},
		}, hub.New())
		srv.StreamLifetime = lifetime
		start := time.Now()
		srv.Handler().ServeHTTP(&flushRecorder{header: http.Header{}}, httptest.NewRequest(http.MethodGet, "/v1/orders/o-1/stream", nil))
		if d := time.Since(start); d > lifetime || d < lifetime*9/10 {
			t.Errorf("stream lasted %v, want between %v and %v", d, lifetime*9/10, lifetime)
		}
		mfs, err := srv.Metrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if got := value(families(mfs), "ordercast_streams_closed_total", "reason", "lifetime"); got != 1 {
			t.Errorf("streams closed for their lifetime: %v, want 1", got)
		}
	})
}

// TestStreamEndsWhenItsTokenDoes: a stream lives no longer than the token it was opened with is
// accepted (its exp, plus the leeway every token gets), however long the stream lifetime; it ends
// with an event that says so (event: end, token_expired, no id), is counted as closed for that
// (credential_expired), and its client, resuming with the same token, is refused.
func TestStreamEndsWhenItsTokenDoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at := time.Now().UTC()
		srv := server.New(&oneOrderStore{
			order: ordercast.Order{ID: "o-1", Status: ordercast.StatusPlaced, Version: 1, CreatedAt: at, UpdatedAt: at},
			event: ordercast.Event{OrderID: "o-1", Seq: 1, Status: ordercast.StatusPlaced, At: at},
		}, hub.New())
		tokens := authority(t)
		srv.Auth = &server.Auth{Tokens: tokens}
		srv.StreamLifetime = time.Hour
		const ttl = 2 * time.Minute
		tok, err := tokens.SignActor(auth.Actor{Role: auth.RoleAdmin, Sub: "ops"}, ttl)
		if err != nil {
			t.Fatal(err)
		}
		watch := func() *http.Request {
			req := httptest.NewRequest(http.MethodGet, "/v1/orders/o-1/stream", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			return req
		}
		start := time.Now()
		stream := &flushRecorder{header: http.Header{}}
		srv.Handler().ServeHTTP(stream, watch())
		// exp is kept to the second, so the token may end up to a second before start+ttl.
		end := ttl + tokens.Leeway
		if d := time.Since(start); d > end || d < end-time.Second {
			t.Errorf("stream lasted %v, want %v, when its token stops being accepted", d, end)
		}
		frames := strings.Split(strings.TrimSuffix(stream.buf.String(), "\n\n"), "\n\n")
		if last := frames[len(frames)-1]; !strings.HasPrefix(last, "event: end\ndata: {\"reason\":\"token_expired\",") {
			t.Errorf("the stream's last frame is %q, want event: end saying the token expired", last)
		}
		mfs, err := srv.Metrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if got := value(families(mfs), "ordercast_streams_closed_total", "reason", "credential_expired"); got != 1 {
			t.Errorf("streams closed for their token's end: %v, want 1", got)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, watch())
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("the stream resumed with the expired token: %d %s, want 401", rec.Code, rec.Body)
		}
	})
}

// TestDrainRefusesNewStreams: once the drain has begun a new stream is sent elsewhere: an SSE
// stream opens with a retry delay and closes at once (an EventSource gives up for good on a
// 503, and must come back through the load balancer instead), a WebSocket gets a 503.
func TestDrainRefusesNewStreams(t *testing.T) {
	at := time.Now().UTC()
	srv := server.New(&oneOrderStore{
		order: ordercast.Order{ID: "o-1", Status: ordercast.StatusPlaced, Version: 1, CreatedAt: at, UpdatedAt: at},
		event: ordercast.Event{OrderID: "o-1", Seq: 1, Status: ordercast.StatusPlaced, At: at},
	}, hub.New())
	handler := srv.Handler()
	server.BeginDrain(srv)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/orders/o-1/stream", nil))
	if body := rec.Body.String(); rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/event-stream" ||
		!strings.HasPrefix(body, "retry: ") || !strings.Contains(body, "shutting down") || strings.Contains(body, "data:") {
		t.Errorf("SSE stream during drain: %d %q %q, want 200 text/event-stream with a retry delay and no event", rec.Code, rec.Header().Get("Content-Type"), body)
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/orders/o-1/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("WebSocket during drain: status %d, want 503", rec.Code)
	}
}

// flushRecorder is a ResponseWriter that supports Flush, so the stream handler can run on it.
type flushRecorder struct {
	header http.Header
	mu     sync.Mutex
	buf    bytes.Buffer
	code   int
}

func (w *flushRecorder) Header() http.Header { return w.header }
func (w *flushRecorder) WriteHeader(code int) {
	w.mu.Lock()
	w.code = code
	w.mu.Unlock()
}
func (w *flushRecorder) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}
func (w *flushRecorder) Flush() {}
func (w *flushRecorder) body() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// oneOrderStore holds one order with one event, enough to open streams without I/O (which a
// synctest bubble cannot wait on).
type oneOrderStore struct {
	order ordercast.Order
	event ordercast.Event
}

var errReadOnly = errors.New("oneOrderStore is read-only")

func (s *oneOrderStore) CreateOrder(context.Context, ordercast.NewOrder) (ordercast.Order, bool, error) {
	return ordercast.Order{}, false, errReadOnly
}
func (s *oneOrderStore) Order(_ context.Context, id string) (ordercast.Order, error) {
	if id != s.order.ID {
		return ordercast.Order{}, ordercast.Errorf(ordercast.ENotFound, "no order %s", id)
	}
	return s.order, nil
}
func (s *oneOrderStore) AppendStatus(context.Context, ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	return ordercast.Order{}, ordercast.Event{}, false, errReadOnly
}
func (s *oneOrderStore) AppendStatuses(_ context.Context, cs []ordercast.StatusChange) []ordercast.WriteResult {
	results := make([]ordercast.WriteResult, len(cs))
	for i := range results {
		results[i].Err = errReadOnly
	}
	return results
}
func (s *oneOrderStore) AssignCourier(context.Context, ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	return ordercast.Order{}, ordercast.Event{}, false, errReadOnly
}
func (s *oneOrderStore) ScopeSnapshot(context.Context, ordercast.Party, int) (ordercast.ScopeSnapshot, error) {
	return ordercast.ScopeSnapshot{}, errReadOnly
}
func (s *oneOrderStore) ScopeEventsAfter(context.Context, ordercast.Party, int64, int) ([]ordercast.ScopedEvent, error) {
	return nil, errReadOnly
}
func (s *oneOrderStore) ScopeLogBounds(context.Context, ordercast.Party) (ordercast.LogBounds, error) {
	return ordercast.LogBounds{}, errReadOnly
}
func (s *oneOrderStore) EventsAfter(_ context.Context, id string, after int64, _ int) ([]ordercast.Event, error) {
	if id != s.order.ID {
		return nil, ordercast.Errorf(ordercast.ENotFound, "no order %s", id)
	}
	if after >= s.event.Seq {
		return nil, nil
	}
	return []ordercast.Event{s.event}, nil
}
func (s *oneOrderStore) LastEvent(_ context.Context, id string, kind ordercast.EventKind, before int64) (ordercast.Event, error) {
	if id != s.order.ID || s.event.Seq >= before || s.event.Kind != kind {
		return ordercast.Event{}, ordercast.Errorf(ordercast.ENotFound, "no %s event of %s before %d", kind.Name(), id, before)
	}
	return s.event, nil
}
func (s *oneOrderStore) ActiveOrders(context.Context, int) ([]ordercast.Order, error) {
	return []ordercast.Order{s.order}, nil
}
func (s *oneOrderStore) EraseCustomer(context.Context, string) (ordercast.Erasure, error) {
	return ordercast.Erasure{}, nil
}

func (s *oneOrderStore) ListOrders(context.Context, ordercast.OrderQuery) ([]ordercast.Order, error) {
	return []ordercast.Order{s.order}, nil
}
func (s *oneOrderStore) CouriersOrders(context.Context, []string) (map[string][]ordercast.Order, error) {
	return nil, errReadOnly
}
func (s *oneOrderStore) IdempotentAnswer(context.Context, string, string, time.Time) (ordercast.Answer, error) {
	return ordercast.Answer{}, ordercast.Errorf(ordercast.ENotFound, "no answers")
}
func (s *oneOrderStore) Ping(context.Context) error { return nil }
func (s *oneOrderStore) Close() error               { return nil }
