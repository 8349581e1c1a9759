package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
	"github.com/ordercast/ordercast/server"
)

// pgNodeOptions adjust pgNode. The zero value is a node whose store and listener both connect
// to the database, its streams on a goroutine each.
type pgNodeOptions struct {
	// storeURL is where the store connects when not to the database itself: a relay, to make the
	// database silent under it. The listener always connects to the database.
	storeURL string
	// configure, when set, adjusts the store before Open.
	configure func(*postgres.Store)
	// hold holds the streams on the poller, where it is supported.
	hold holding
	// logs, when set, receives the store's and the server's log lines.
	logs io.Writer
}

// pgNode starts an open server over a PostgreSQL store of database db, hearing its events
// through its Listener as a cluster node does (so the events' marks travel through NOTIFY), and
// returns its base URL and its store.
func pgNode(t *testing.T, db string, opt pgNodeOptions) (string, *postgres.Store) {
	t.Helper()
	h := hub.New()
	storeURL := db
	if opt.storeURL != "" {
		storeURL = opt.storeURL
	}
	st := postgres.New(storeURL)
	var logger *slog.Logger
	if opt.logs != nil {
		logger = slog.New(slog.NewTextHandler(opt.logs, nil))
		st.Logger = logger
	}
	if opt.configure != nil {
		opt.configure(st)
	}
	if err := st.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	l := postgres.NewListener(db, st, hub.NewFeed(h, st))
	if err := l.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr, srv.Logger = "127.0.0.1:0", logger
	srv.HoldStreams = srv.HoldStreams && bool(opt.hold)
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("close listener: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return srv.URL(), st
}

// alterTestDatabase sets a setting of the test database db for the sessions that start from now
// on (value "" resets it), and resets it when the test ends.
func alterTestDatabase(t *testing.T, admin *pgx.Conn, db, setting, value string) {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	sql := "ALTER DATABASE " + name + " RESET " + setting
	if value != "" {
		sql = "ALTER DATABASE " + name + " SET " + setting + " = '" + value + "'"
		t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "ALTER DATABASE "+name+" RESET "+setting) })
	}
	if _, err := admin.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

// wantStoreAway checks that every request of a node whose database is away is answered as
// README says: the API 503 unavailable with Retry-After, a stream 200 text/event-stream with a
// retry: line (an EventSource reconnects; it gives up for good on a 503), /readyz 503 saying
// why. The client waits 8 s at most: an answer that long in coming is the fault itself.
func wantStoreAway(t *testing.T, base, why string) {
	t.Helper()
	c := http.Client{Timeout: 8 * time.Second}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s while the store is away: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	for _, path := range []string{"/v1/orders/a", "/v1/orders/a/events"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"unavailable"`) {
			t.Errorf("GET %s while the store is away: %d %s (Retry-After %q), want 503 unavailable with Retry-After",
				path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	for _, path := range []string{"/v1/orders/a/stream", "/v1/restaurants/r-1/stream", "/v1/stream"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
			!strings.Contains(body, "retry: ") || !strings.Contains(body, ": store unavailable") {
			t.Errorf("GET %s while the store is away: %d %q %q, want 200 text/event-stream with a retry: line",
				path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	resp, body := get("/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, why) {
		t.Errorf("GET /readyz while the store is away: %d %s, want 503 saying %q", resp.StatusCode, body, why)
	}
}

func wantServing(t *testing.T, base string) {
	t.Helper()
	testutil.WaitFor(t, "the node to serve again", func() bool {
		resp, _ := call(t, "GET", base+"/readyz", "", "")
		return resp.StatusCode == http.StatusOK
	})
	if resp, body := call(t, "GET", base+"/v1/orders/a", "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/orders/a once the store is back: %d %s", resp.StatusCode, body)
	}
}

// TestStoreAwayPostgresSilent: a PostgreSQL database that stops answering without closing
// anything (a dead host, a dropped route) makes reads give up after the store's ReadTimeout, so
// the API answers 503 and streams the retry frame, as for a database that is plainly down.
// Before, a read waited for as long as the silence lasted and ended as a 500 when the client gave
// up.
func TestStoreAwayPostgresSilent(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	relay := pgtest.NewRelay(t, db)
	base, _ := pgNode(t, db, pgNodeOptions{storeURL: relay.URL(), hold: true, configure: func(st *postgres.Store) {
		st.ReadTimeout, st.BatchTimeout = 300*time.Millisecond, 300*time.Millisecond
	}})
	t.Cleanup(relay.Thaw) // before the node closes: its store waits for what the relay holds
	if resp, body := call(t, "POST", base+"/v1/orders", "", `{"id":"a","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	relay.Freeze()
	wantStoreAway(t, base, "not answering")
	relay.Thaw()
	wantServing(t, base)
}

// TestReadyzPostgresSilentIsOneOutage: /readyz on a database that accepts connections but never
// answers gives its ping 2 s, less than the store's ReadTimeout; the ping's deadline running out
// is that silence, one outage: every poll is 503 saying so, and the log has one line when the
// outage starts and one when it ends. Before, each poll logged a warning of its own.
func TestReadyzPostgresSilentIsOneOutage(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	relay := pgtest.NewRelay(t, db)
	logs := &testutil.Buffer{}
	// The store's ReadTimeout is the default, 10 s.
	base, _ := pgNode(t, db, pgNodeOptions{storeURL: relay.URL(), logs: logs})
	t.Cleanup(relay.Thaw) // before the node closes: its store waits for what the relay holds
	if resp, body := call(t, "POST", base+"/v1/orders", "", `{"id":"a","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	started := len(logs.String()) // the start's own warnings (a new, empty database) aside
	relay.Freeze()
	for range 2 {
		resp, body := call(t, "GET", base+"/readyz", "", "")
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not answering") {
			t.Errorf("GET /readyz on a silent database: %d %s, want 503 saying not answering", resp.StatusCode, body)
		}
	}
	if n, m := strings.Count(logs.String(), "database unavailable"), strings.Count(logs.String()[started:], "level=WARN"); n != 1 || m != 1 {
		t.Errorf("two polls of a silent database logged its outage %d times and %d warnings, want one of each:\n%s", n, m, logs)
	}
	relay.Thaw()
	wantServing(t, base)
	if n := strings.Count(logs.String(), "database available again"); n != 1 {
		t.Errorf("the outage's end logged %d times, want once:\n%s", n, logs)
	}
}

// TestStoreAwayPostgresBusy: a statement PostgreSQL gives up on the operator's lock_timeout (here
// the orders' tables locked by another session, as a migration does) is answered 503 with
// Retry-After, and a stream set up meanwhile gets the retry frame: it was a 500, which ends a
// browser's EventSource for good.
func TestStoreAwayPostgresBusy(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, db)
	alterTestDatabase(t, admin, db, "lock_timeout", "200ms")
	base, _ := pgNode(t, db, pgNodeOptions{hold: true})
	if resp, body := call(t, "POST", base+"/v1/orders", "", `{"id":"a","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `LOCK TABLE orders, order_events IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: 8 * time.Second}
	for _, path := range []string{"/v1/orders/a", "/v1/orders/a/events"} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "lock_timeout") {
			t.Errorf("GET %s with the table locked past lock_timeout: %d %s, want 503 with Retry-After saying so", path, resp.StatusCode, body)
		}
	}
	resp, body := call(t, "POST", base+"/v1/orders/a/status", "", `{"status":"confirmed"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a status change with the table locked past lock_timeout: %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	for _, path := range []string{"/v1/orders/a/stream", "/v1/restaurants/r-1/stream"} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "retry: ") {
			t.Errorf("GET %s with the table locked past lock_timeout: %d %q, want 200 with a retry: line", path, resp.StatusCode, body)
		}
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantServing(t, base)
}

// TestReadyzPostgresReadOnly: a database that takes no writes (a standby, or
// default_transaction_read_only) answers reads, but every write is 503: /readyz says the node is
// not ready, and why, instead of ready, as README promises ("store reachable and writable").
func TestReadyzPostgresReadOnly(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, db)
	base, _ := pgNode(t, db, pgNodeOptions{hold: true})
	if resp, body := call(t, "POST", base+"/v1/orders", "", `{"id":"a","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	endSessions := func() {
		t.Helper()
		// The setting applies to sessions that start after it; the listener's is not ended.
		if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, postgres.DefaultApplicationName); err != nil {
			t.Fatal(err)
		}
	}
	alterTestDatabase(t, admin, db, "default_transaction_read_only", "on")
	endSessions()
	resp, body := call(t, "GET", base+"/readyz", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "read-only") {
		t.Errorf("/readyz on a read-only database: %d %s, want 503 saying read-only", resp.StatusCode, body)
	}
	resp, body = call(t, "POST", base+"/v1/orders/a/status", "", `{"status":"confirmed"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "read-only") {
		t.Errorf("a status change on a read-only database: %d %s, want 503 saying read-only", resp.StatusCode, body)
	}
	if resp, body := call(t, "GET", base+"/v1/orders/a", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("a read of a read-only database: %d %s, want 200", resp.StatusCode, body)
	}
	alterTestDatabase(t, admin, db, "default_transaction_read_only", "")
	endSessions()
	wantServing(t, base)
}
