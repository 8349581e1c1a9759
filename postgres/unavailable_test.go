package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// dbName is the name of the database of url.
func dbName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// terminateStore ends the backends of the test database's store connections (application_name
// ordercast), as a restart or pg_terminate_backend does, and waits until they are gone: each
// has sent its FATAL, which the connection idle in the pool holds unread.
func terminateStore(t *testing.T, admin *pgx.Conn, db string) {
	t.Helper()
	name := dbName(t, db)
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND application_name = $2`, name, postgres.DefaultApplicationName); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the store's backends to end", func() bool {
		return storeBackends(t, admin, name) == 0
	})
}

func storeBackends(t *testing.T, admin *pgx.Conn, name string) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
		name, postgres.DefaultApplicationName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantUnavailable(t *testing.T, what string, err error, saying string) {
	t.Helper()
	if ordercast.ErrorCode(err) != ordercast.EUnavailable || !strings.Contains(ordercast.ErrorMessage(err), saying) {
		t.Errorf("%s: %v (code %q), want unavailable saying %q", what, err, ordercast.ErrorCode(err), saying)
	}
}

// TestLostConnectionsCostNoRequest: after a restart, or pg_terminate_backend, every connection
// idle in the pool is gone, and pgxpool checks only those idle for over a second: each failed
// the next read or batch with 503. The first to find its connection lost runs again on another,
// and the pool checks the rest before their next use, so no request fails.
func TestLostConnectionsCostNoRequest(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, db)
	s := storetest.MustOpen(t, postgres.New(db))
	other := storetest.MustOpen(t, postgres.New(db))
	create(t, s, "a")
	r1 := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}
	for i := range 16 {
		create(t, other, "other-"+string(rune('a'+i))) // orders s has not seen
	}
	n := 0
	for _, tc := range []struct {
		what string
		do   func() error
	}{
		{"read", func() error { _, err := s.Order(t.Context(), "a"); return err }},
		{"read in a transaction", func() error { _, err := s.ScopeSnapshot(t.Context(), r1, 10); return err }},
		{"ping", func() error { return s.Ping(t.Context()) }},
		{"batch judged from what the node knows", func() error {
			n++
			_, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "new-" + string(rune('a'+n))})
			return err
		}},
		{"batch judged under lock", func() error {
			n++ // an order s has not seen: its batch locks and reads it first
			_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "other-" + string(rune('a'+n)), Status: ordercast.StatusConfirmed})
			return err
		}},
	} {
		// Several connections, each used within the last second; the last one used, which the
		// pool hands out next, last did what the test does, so its statements are prepared and
		// sent without a round trip of their own.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 20 {
					_, _ = s.ScopeSnapshot(t.Context(), r1, 10)
				}
			})
		}
		wg.Wait()
		if err := tc.do(); err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if got := storeBackends(t, admin, dbName(t, db)); got < 2 {
			t.Logf("the store had %d connection(s) open, not several", got)
		}
		terminateStore(t, admin, db)
		for i := range 4 {
			if err := tc.do(); err != nil {
				t.Errorf("%s %d after the store's backends were terminated: %v", tc.what, i, err)
			}
		}
	}
}

// TestConnectionLostAfterCommitIsNotRetried: a connection lost once the batch's COMMIT may have
// run leaves its outcome unknown, and the batch is not tried again: here it committed, and an
// attempt on another connection would judge the change again against its own commit, and answer
// an applied change as one that changed nothing (or as a version conflict, or a created order as
// one that existed). It is 503, as for any write whose answer was lost.
func TestConnectionLostAfterCommitIsNotRetried(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, db)
	relay := pgtest.NewRelay(t, db)
	s := storetest.MustOpen(t, postgres.New(relay.URL()))
	create(t, s, "a") // s knows a: its batches are one round trip each, COMMIT included
	// The same batch once, so that its statements are prepared on the connection: the next one
	// sends them, COMMIT included, without waiting for an answer first.
	move(t, s, "a", ordercast.StatusConfirmed)

	relay.HoldAnswers()
	done := make(chan error, 1)
	go func() {
		_, _, _, err := s.AppendStatus(context.Background(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusPreparing, ExpectedVersion: 2})
		done <- err
	}()
	testutil.WaitFor(t, "the batch to commit", func() bool {
		var v int64
		if err := admin.QueryRow(t.Context(), `SELECT version FROM orders WHERE id = 'a'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v == 3
	})
	relay.Cut()
	relay.Thaw()
	relay.Resume()
	wantUnavailable(t, "a write whose connection was lost after its commit", <-done, "unreachable")
	if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusReady, ExpectedVersion: 3}); err != nil {
		t.Fatalf("the next write, at the committed version: %v", err)
	}
}
