package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/sqlitetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// TestLockedDatabaseIs503: while another process holds the SQLite file's write lock, writes are
// 503 unavailable with Retry-After (not 500 internal) and /readyz says why; then all is well again.
func TestLockedDatabaseIs503(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	h := hub.New()
	st := sqlite.New(path)
	st.Publisher = h
	st.BusyTimeout = 20 * time.Millisecond
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		_ = st.Close()
	})

	if resp, body := call(t, "POST", srv.URL()+"/v1/orders", "", `{"id":"l-0"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	release := sqlitetest.HoldElsewhere(t, path, sqlitetest.WriteLock)
	resp, body := call(t, "POST", srv.URL()+"/v1/orders", "", `{"id":"l-1"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("create on a locked file: %d %s (Retry-After %q), want 503 unavailable", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// Many changes of which none could be applied are refused whole, as one would be.
	resp, body = call(t, "POST", srv.URL()+"/v1/status-changes", "", `{"changes":[{"order_id":"l-0","status":"confirmed"}]}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("status changes on a locked file: %d %s (Retry-After %q), want 503 unavailable", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	resp, body = call(t, "GET", srv.URL()+"/readyz", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "locked") {
		t.Fatalf("readyz on a locked file: %d %s, want 503 saying locked", resp.StatusCode, body)
	}
	release()
	if resp, body := call(t, "POST", srv.URL()+"/v1/orders", "", `{"id":"l-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create once unlocked: %d %s", resp.StatusCode, body)
	}
	// The probe waits for the write lock no longer than the store's BusyTimeout, 20 ms here, which
	// a loaded machine can spend opening the writer pool's spare connection: ready within a while.
	testutil.WaitFor(t, "readyz once unlocked", func() bool {
		resp, _ := call(t, "GET", srv.URL()+"/readyz", "", "")
		return resp.StatusCode == http.StatusOK
	})
}

// awayStore answers the reads of an order with unavailable while away is set: a database that is
// briefly away under a running node.
type awayStore struct {
	ordercast.Store
	away *atomic.Bool
}

func (s awayStore) Order(ctx context.Context, id string) (ordercast.Order, error) {
	if s.away.Load() {
		return ordercast.Order{}, ordercast.Errorf(ordercast.EUnavailable, "the database is unreachable")
	}
	return s.Store.Order(ctx, id)
}

func (s awayStore) EventsAfter(ctx context.Context, id string, after int64, n int) ([]ordercast.Event, error) {
	if s.away.Load() {
		return nil, ordercast.Errorf(ordercast.EUnavailable, "the database is unreachable")
	}
	return s.Store.EventsAfter(ctx, id, after, n)
}

func (s awayStore) LastEvent(ctx context.Context, id string, kind ordercast.EventKind, before int64) (ordercast.Event, error) {
	if s.away.Load() {
		return ordercast.Event{}, ordercast.Errorf(ordercast.EUnavailable, "the database is unreachable")
	}
	return s.Store.LastEvent(ctx, id, kind, before)
}

// TestStreamWhileStoreAwayAnyToken: while the store is away, an order's stream (and its HEAD) is
// answered 200 text/event-stream with a retry: line whoever's token opens it. A party's token is
// authorized by reading the order, which meets the store away before the watch does; a 503 there
// would make the party's EventSource give up for good. A WebSocket, no EventSource, keeps the 503.
func TestStreamWhileStoreAwayAnyToken(t *testing.T) {
	t.Parallel()
	away := new(atomic.Bool)
	ts := newAuthServer(t, func(s *server.Server) { s.Store = awayStore{Store: s.Store, away: away} })
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"o-1","restaurant_id":"r-1","customer_id":"u-1"}`)
	var created struct {
		TrackingToken string `json:"tracking_token"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &created) != nil {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "PUT", base+"/v1/orders/o-1/courier", admin, `{"courier_id":"c-1"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("assign: %d %s", resp.StatusCode, body)
	}
	away.Store(true)

	for _, who := range []struct{ name, token string }{
		{"admin", admin},
		{"tracking", created.TrackingToken},
		{"restaurant", actorToken(t, auth.RoleRestaurant, "r-1")},
		{"courier", actorToken(t, auth.RoleCourier, "c-1")},
		{"customer", actorToken(t, auth.RoleCustomer, "u-1")},
	} {
		resp, body := call(t, "GET", base+"/v1/orders/o-1/stream", who.token, "")
		ctype := resp.Header.Get("Content-Type")
		if resp.StatusCode != http.StatusOK || ctype != "text/event-stream" || !strings.HasPrefix(string(body), "retry: ") {
			t.Errorf("%s: stream while the store is away: %d %q %q, want 200 text/event-stream with a retry: line", who.name, resp.StatusCode, ctype, body)
		}
		// HEAD opens no stream, but meets the store away where its GET does: the headers a GET
		// would get.
		resp, _ = call(t, "HEAD", base+"/v1/orders/o-1/stream", who.token, "")
		if ctype := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ctype != "text/event-stream" {
			t.Errorf("%s: HEAD stream while the store is away: %d %q, want 200 text/event-stream", who.name, resp.StatusCode, ctype)
		}
	}

	resp, body = call(t, "GET", base+"/v1/orders/o-1/ws", actorToken(t, auth.RoleRestaurant, "r-1"), "", wsHandshake...)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) {
		t.Errorf("restaurant: WebSocket while the store is away: %d %s, want 503 unavailable", resp.StatusCode, body)
	}
}
