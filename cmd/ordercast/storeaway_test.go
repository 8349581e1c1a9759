package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/sqlitetest"
	"github.com/ordercast/ordercast/internal/testutil"
)

// setConnections allows or refuses new connections to the database of dbURL, and with refuse
// also ends the ones open: to the nodes on it, the database is gone, while the shared server
// (and every other test's database) carries on.
func setConnections(t *testing.T, dbURL string, allow bool) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := pgtest.Connect(t, pgtest.ServerURL(t))
	verb := "false"
	if allow {
		verb = "true"
	}
	if _, err := admin.Exec(t.Context(), "ALTER DATABASE "+name+" ALLOW_CONNECTIONS "+verb); err != nil {
		t.Fatal(err)
	}
	if !allow {
		if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// Let the database's cleanup connect to drop it.
		_, _ = admin.Exec(context.Background(), "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	})
}

// errorCode returns the code of a JSON error body.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Code
}

// TestDatabaseAway_503 stops the database under a running node: writes are 503 unavailable with
// Retry-After, a stream opens with a retry and closes (so EventSource reconnects), /readyz says
// why, the outage is logged once, and once the database is back the node finds it by itself, with
// no request to tell it, and serves again.
func TestDatabaseAway_503(t *testing.T) {
	db := pgtest.NewDatabase(t)
	n := startNode(t, db)
	createOrder(t, n.url, "away-1")
	setConnections(t, db, false)

	c := http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		req, _ := http.NewRequest("POST", n.url+"/v1/orders", strings.NewReader(`{"id":"away-2"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminToken())
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || errorCode(t, body) != "unavailable" {
			t.Fatalf("create %d while the database is away: %d %s (Retry-After %q), want 503 unavailable with Retry-After",
				i, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}

	resp, err := c.Get(n.url + "/v1/orders/away-1/stream")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // it closes: the client reconnects after the retry
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
		!strings.Contains(string(body), "retry: ") || !strings.Contains(string(body), ": store unavailable") {
		t.Fatalf("stream while the database is away: %d %q %q, want 200 text/event-stream with retry and a comment",
			resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp, err = c.Get(n.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "the database is") {
		t.Fatalf("readyz while the database is away: %d %s, want 503 saying why", resp.StatusCode, body)
	}
	// An alert has a gauge to watch: the store is down, until it is back.
	if up := metric(t, n.url, "ordercast_store_up"); up != 0 {
		t.Errorf("ordercast_store_up while the database is away = %v, want 0", up)
	}
	waitLogged(t, n, "database unavailable;")
	if got := strings.Count(n.stderr.String(), "database unavailable;"); got != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", got, n.stderr.String())
	}
	if strings.Contains(n.stderr.String(), "level=ERROR") {
		t.Errorf("the outage was logged as an error:\n%s", n.stderr.String())
	}

	setConnections(t, db, true)
	// With no write and no readiness probe to find it back, the node finds it itself: a node
	// nobody uses reports no outage that has ended.
	testutil.WaitFor(t, "ordercast_store_up back to 1 with no request", func() bool { return metric(t, n.url, "ordercast_store_up") == 1 })
	waitLogged(t, n, "database available again")
	waitReady(t, n.url)
	createOrder(t, n.url, "away-2")
	for _, name := range []string{"ordercast_store_up", "ordercast_pg_listener_up"} {
		if up := metric(t, n.url, name); up != 1 {
			t.Errorf("%s once the database is back = %v, want 1", name, up)
		}
	}
}

// TestLockedSQLiteFoundBackIdle: a node whose SQLite file another process locked (a backup run
// with the sqlite3 shell, say) refuses the write that found it so, 503 with Retry-After, and
// once the lock is let go finds its database back by itself, with no write and no readiness
// probe to tell it: ordercast_store_up is 1 again and the log says the outage ended.
func TestLockedSQLiteFoundBackIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	n := startNode(t, path)
	createOrder(t, n.url, "idle-1")

	release := sqlitetest.HoldElsewhere(t, path, sqlitetest.WriteLock)
	c := &client.Client{BaseURL: n.url, Token: adminToken()} // a write with no key: sent once
	_, err := c.CreateOrder(t.Context(), client.CreateOrderRequest{ID: "idle-2"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusServiceUnavailable || ce.RetryAfter <= 0 {
		t.Fatalf("create while another process holds the write lock: %v, want 503 with Retry-After", err)
	}
	if up := metric(t, n.url, "ordercast_store_up"); up != 0 {
		t.Fatalf("ordercast_store_up while the file is locked = %v, want 0", up)
	}

	release()
	testutil.WaitFor(t, "ordercast_store_up back to 1 with no request", func() bool { return metric(t, n.url, "ordercast_store_up") == 1 })
	waitLogged(t, n, "database available again")
	createOrder(t, n.url, "idle-2")
}

// TestDatabaseAway_IdleNodeSaysSo: a node that nobody writes to, and whose /readyz nobody polls
// (nginx's passive checks), still reports an outage: its listener, which loses the database
// first, has it probed, so ordercast_store_up goes to 0 and the outage is logged once, as the
// docs promise an alert on that gauge may rely on, and back to 1 when the database returns.
func TestDatabaseAway_IdleNodeSaysSo(t *testing.T) {
	db := pgtest.NewDatabase(t)
	n := startNode(t, db)
	setConnections(t, db, false)
	// Only /metrics is read meanwhile, which asks nothing of the database.
	testutil.WaitFor(t, "ordercast_store_up 0 on an idle node whose database is away", func() bool {
		return metric(t, n.url, "ordercast_store_up") == 0
	})
	waitLogged(t, n, "database unavailable;")
	if got := strings.Count(n.stderr.String(), "database unavailable;"); got != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", got, n.stderr.String())
	}
	setConnections(t, db, true)
	testutil.WaitFor(t, "ordercast_store_up back to 1", func() bool { return metric(t, n.url, "ordercast_store_up") == 1 })
	waitLogged(t, n, "database available again")
}

// TestDatabaseAway_NodeStartsAndWaits: a node started while its database refuses connections
// waits for it, with backoff, instead of exiting, and serves once it is back. Meanwhile its
// /metrics say that it is starting, and which build.
func TestDatabaseAway_NodeStartsAndWaits(t *testing.T) {
	db := pgtest.NewDatabase(t)
	setConnections(t, db, false)
	// Its metrics on an address of their own, known before the node says where it serves.
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	n, urls := launchNode(t, db, "ORDERCAST_METRICS_ADDR="+strings.TrimPrefix(metricsURL, "http://"))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(n.stderr.String(), "database unavailable at start") {
		select {
		case <-n.done:
			t.Fatalf("the node exited instead of waiting:\n%s", n.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node never said it waits:\n%s", n.stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the log with a deadline
	}
	if v := metric(t, metricsURL, "ordercast_starting"); v != 1 {
		t.Errorf("ordercast_starting while the node waits for its database = %v, want 1", v)
	}
	if !strings.Contains(scrapeText(t, metricsURL), "ordercast_build_info{") {
		t.Error("no ordercast_build_info while the node waits for its database")
	}
	setConnections(t, db, true)
	n.awaitServing(t, urls)
	createOrder(t, n.url, "late-1")
	if v := metric(t, metricsURL, "ordercast_starting"); v != 0 {
		t.Errorf("ordercast_starting once the node serves = %v, want 0", v)
	}
}

// TestDatabaseAway_StoppedWhileWaiting: a node stopped (SIGTERM) while it waits for its database
// at start exits 0, as asked, not 1 ("context canceled"), which marks a systemd unit failed.
func TestDatabaseAway_StoppedWhileWaiting(t *testing.T) {
	db := pgtest.NewDatabase(t)
	setConnections(t, db, false)
	n, _ := launchNode(t, db, "ORDERCAST_DB_WAIT=1m")
	testutil.WaitFor(t, "the node to wait for its database", func() bool {
		return strings.Contains(n.stderr.String(), "database unavailable at start")
	})
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting 10 s after SIGTERM")
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM while waiting, want 0:\n%s", code, n.stderr.String())
	}
}

// waitLogged waits for node n's log to hold text. The outage's state changes before its line is
// written (storehealth.Tracker), and the line reaches the test through a pipe: a gauge read may
// see the change first.
func waitLogged(t *testing.T, n *node, text string) {
	t.Helper()
	testutil.WaitFor(t, "the log to say "+strconv.Quote(text), func() bool { return strings.Contains(n.stderr.String(), text) })
}
