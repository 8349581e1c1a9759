package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storehealth"
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

// alterDatabase sets (or with value "", resets) a setting of the test database for the sessions
// that start from now on.
func alterDatabase(t *testing.T, admin *pgx.Conn, db, setting, value string) {
	t.Helper()
	sql := "ALTER DATABASE " + pgx.Identifier{dbName(t, db)}.Sanitize() + " RESET " + setting
	if value != "" {
		sql = "ALTER DATABASE " + pgx.Identifier{dbName(t, db)}.Sanitize() + " SET " + setting + " = '" + value + "'"
	}
	// Not t.Context(): a cleanup resets settings after it has ended.
	if _, err := admin.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
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

// TestOperatorTimeoutsAreUnavailable: a statement PostgreSQL gives up on a time limit the
// operator set (lock_timeout while another session holds an order's row, statement_timeout while
// one holds the table) is unavailable, "busy", so 503 with Retry-After, not 500: worth sending
// again shortly. It is no outage of the database, which answers the rest: nothing logs one.
func TestOperatorTimeoutsAreUnavailable(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, db)
	create(t, storetest.MustOpen(t, postgres.New(db)), "a")

	for _, tc := range []struct{ setting, saying string }{
		{"lock_timeout", "lock_timeout"},
		{"statement_timeout", "statement_timeout"},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			// Long enough for the statements that take no lock (opening the store, the other
			// orders' writes) on a machine busy with the whole suite, where 200 ms once timed
			// out reading schema_migrations: only the waits on the locks below reach it.
			alterDatabase(t, admin, db, tc.setting, "1s")
			t.Cleanup(func() { alterDatabase(t, admin, db, tc.setting, "") })
			var logs testutil.Buffer
			s := postgres.New(db) // its sessions start with the setting
			s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			s = storetest.MustOpen(t, s)
			create(t, s, "b-"+tc.setting)

			locker := pgtest.Connect(t, db)
			tx, err := locker.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(t.Context(), `SELECT 1 FROM orders WHERE id = 'a' FOR UPDATE`); err != nil {
				t.Fatal(err)
			}
			_, _, _, err = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed})
			wantUnavailable(t, "a write to an order locked elsewhere", err, tc.saying)
			move(t, s, "b-"+tc.setting, ordercast.StatusConfirmed) // the other orders are written

			// A read waits for no row lock; a lock on the whole table stops it.
			if _, err := tx.Exec(t.Context(), `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
			_, err = s.Order(t.Context(), "a")
			wantUnavailable(t, "a read of a table locked elsewhere", err, tc.saying)
			if err := tx.Rollback(t.Context()); err != nil {
				t.Fatal(err)
			}

			if got := s.Unavailable(); got != "" {
				t.Errorf("Unavailable() = %q, want \"\": the database answered", got)
			}
			if n := logs.Count("database unavailable"); n != 0 {
				t.Errorf("an outage was logged %d times for a timed-out statement, want none", n)
			}
		})
	}
	s := storetest.MustOpen(t, postgres.New(db))
	move(t, s, "a", ordercast.StatusConfirmed) // the refused writes left nothing behind
}

// TestResourceErrorsAreUnavailable: a server out of disk space, memory or another resource is
// away until an operator acts, as one shutting down is: 503 with Retry-After, and an outage
// logged, not 500. A statement given up on an operator's time limit is busy: 503, no outage.
func TestResourceErrorsAreUnavailable(t *testing.T) {
	t.Parallel()
	s := storetest.MustOpen(t, postgres.New(pgtest.NewDatabase(t)))
	create(t, s, "a")
	for _, tc := range []struct{ code, saying, outage string }{
		{"53100", "out of disk space", "out of disk space"},
		{"53200", "out of memory", "out of memory"},
		{"53400", "out of resources", "out of resources"},
		{"57014", "busy", ""},
		{"55P03", "busy", ""},
	} {
		postgres.FailAttempts(s, func(context.Context, int) error { return &pgconn.PgError{Severity: "ERROR", Code: tc.code} })
		_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed})
		wantUnavailable(t, "a batch that met "+tc.code, err, tc.saying)
		if got := s.Unavailable(); got != tc.outage {
			t.Errorf("after %s: Unavailable() = %q, want %q", tc.code, got, tc.outage)
		}
		postgres.FailAttempts(s, nil)
		if err := s.Ping(t.Context()); err != nil { // ends the outage
			t.Fatal(err)
		}
	}
}

// TestAFullDiskIsNotReadyUntilItHasRoom: a database out of disk space answers a ping's probe,
// which writes nothing, and commits a batch that writes nothing: each of them ended the outage,
// and the next write began it again, so /readyz said 200 and ordercast_store_up 1 while every
// write was 503 (the resource-exhaustion review). Now the outage stands, one line in the log,
// until a ping finds room to write: its probe grows a table of its own by a page, which a disk
// still full refuses (here an event trigger refuses it as PostgreSQL does, 53100), and leaves
// nothing behind.
func TestAFullDiskIsNotReadyUntilItHasRoom(t *testing.T) {
	t.Parallel()
	_, admin, s, logs := loggedStore(t)
	if _, err := admin.Exec(t.Context(), `
		CREATE FUNCTION disk_full() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100'; END $$;
		CREATE EVENT TRIGGER disk_full ON ddl_command_start WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION disk_full()`); err != nil {
		t.Fatal(err)
	}
	postgres.FailAttempts(s, func(context.Context, int) error {
		return &pgconn.PgError{Severity: "ERROR", Code: "53100", Message: "could not extend file: No space left on device"}
	})
	_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed})
	wantUnavailable(t, "a write to a full disk", err, "out of disk space")
	postgres.FailAttempts(s, nil)
	for range 2 {
		// A repeat of the order's status commits nothing, which a full disk lets pass.
		if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusPlaced}); err != nil {
			t.Fatalf("a repeat of the order's status: %v", err)
		}
		wantUnavailable(t, "a ping of a full disk", s.Ping(t.Context()), "out of disk space")
	}
	if got, n, m := s.Unavailable(), logs.Count("database unavailable"), logs.Count("database available again"); got != "out of disk space" || n != 1 || m != 0 {
		t.Fatalf("Unavailable() = %q, the outage logged as starting %d times and ending %d times; want out of disk space, once and never:\n%s", got, n, m, logs)
	}

	if _, err := admin.Exec(t.Context(), `DROP EVENT TRIGGER disk_full`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("a ping once the disk has room: %v", err)
	}
	if got, n := s.Unavailable(), logs.Count("database available again"); got != "" || n != 1 {
		t.Errorf("with room again: Unavailable() = %q, the outage's end logged %d times; want \"\" and once", got, n)
	}
	var left int
	if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_class WHERE relname LIKE 'ordercast_disk_probe%'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("the disk probe left %d tables (%v), want none", left, err)
	}
	move(t, s, "a", ordercast.StatusConfirmed)
}

// TestReadOnlyDatabaseIsNotReady: a database that takes no writes (a standby, or
// default_transaction_read_only) answers reads, and a ping that only asks for an answer; yet
// every write is 503 read-only. Ping, which /readyz asks, says so too, and the outage is
// logged once: a ping that succeeded on it ended the outage every time, and the next write began
// it again. Once writable, the outage ends with one line, at the next ping: the connections
// opened while the database was read-only, which stay so, are let go of (they kept every write
// refused for up to an hour).
func TestReadOnlyDatabaseIsNotReady(t *testing.T) {
	t.Parallel()
	db, admin, s, logs := loggedStore(t)
	// Every ping may reset the pool: the outage's end is seen at the first ping after it (with
	// the default, within DefaultResetEvery of it; TestAReadOnlyDatabaseDoesNotChurnThePool).
	postgres.SetResetEvery(s, 0)

	alterDatabase(t, admin, db, "default_transaction_read_only", "on")
	t.Cleanup(func() { alterDatabase(t, admin, db, "default_transaction_read_only", "") })
	terminateStore(t, admin, db) // the setting applies to new sessions
	for i := range 2 {
		wantUnavailable(t, "a ping of a read-only database", s.Ping(t.Context()), "read-only")
		_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed})
		wantUnavailable(t, "a write to a read-only database", err, "read-only")
		if _, err := s.Order(t.Context(), "a"); err != nil {
			t.Errorf("read %d of a read-only database: %v", i, err)
		}
	}
	if got := s.Unavailable(); got != "read-only" {
		t.Errorf("Unavailable() = %q, want read-only", got)
	}
	if n, m := logs.Count("database unavailable"), logs.Count("database available again"); n != 1 || m != 0 {
		t.Errorf("outage logged as starting %d times and ending %d times, want once and never:\n%s", n, m, logs.String())
	}

	alterDatabase(t, admin, db, "default_transaction_read_only", "")
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("a ping once the database is writable: %v", err)
	}
	if got, n := s.Unavailable(), logs.Count("database available again"); got != "" || n != 1 {
		t.Errorf("after the outage: Unavailable() = %q, its end logged %d times, want \"\" and once", got, n)
	}
	move(t, s, "a", ordercast.StatusConfirmed)
}

// TestAReadOnlyDatabaseDoesNotChurnThePool: while the database stays read-only (a standby), the
// pings that /readyz and the outage probe make every few seconds do not each let go of the pool's
// connections and open new ones: at most one reset every DefaultResetEvery.
func TestAReadOnlyDatabaseDoesNotChurnThePool(t *testing.T) {
	t.Parallel()
	db, admin, s, _ := loggedStore(t)
	alterDatabase(t, admin, db, "default_transaction_read_only", "on")
	t.Cleanup(func() { alterDatabase(t, admin, db, "default_transaction_read_only", "") })
	terminateStore(t, admin, db)
	wantUnavailable(t, "a ping of a read-only database", s.Ping(t.Context()), "read-only")
	before := s.PoolStat().NewConnsCount()
	for range 5 {
		wantUnavailable(t, "a ping of a read-only database", s.Ping(t.Context()), "read-only")
	}
	if opened := s.PoolStat().NewConnsCount() - before; opened > 1 {
		t.Errorf("five pings of a read-only database within %v opened %d connections, want at most 1", postgres.DefaultResetEvery, opened)
	}
}

// loggedStore opens a store on a new database, its log kept, with an order "a"; admin is a
// connection of the test's own to that database.
func loggedStore(t *testing.T) (db string, admin *pgx.Conn, s *postgres.Store, logs *testutil.Buffer) {
	t.Helper()
	db = pgtest.NewDatabase(t)
	admin = pgtest.Connect(t, db)
	logs = &testutil.Buffer{}
	s = postgres.New(db)
	s.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s = storetest.MustOpen(t, s)
	create(t, s, "a")
	return db, admin, s, logs
}

// TestALockedTableIsNotReady: a lock on a table the writes take (VACUUM FULL, ALTER TABLE, LOCK
// TABLE), held by another session, stops every write until it goes, while a plain query answers:
// Ping says the database is locked (so /readyz is 503 and ordercast_store_up 0, one outage
// logged), and once the lock goes the next ping ends the outage.
func TestALockedTableIsNotReady(t *testing.T) {
	t.Parallel()
	_, admin, s, logs := loggedStore(t)

	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE order_events IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		wantUnavailable(t, "a ping while a table is locked", s.Ping(ctx), "locked")
		cancel()
	}
	if got := s.Unavailable(); got != "locked" {
		t.Errorf("Unavailable() = %q, want locked", got)
	}
	// The once-a-minute purges take neither table, and succeed: they say nothing of the lock.
	// (They ended the outage: ordercast_store_up went back to 1 each minute, and an alert on 0
	// for a minute never fired.)
	if _, err := s.PurgeExpiredKeys(t.Context(), time.Now(), 100); err != nil {
		t.Fatalf("a purge of expired keys beside the lock: %v", err)
	}
	if got := s.Unavailable(); got != "locked" {
		t.Errorf("after a purge of expired keys beside the lock, Unavailable() = %q, want locked", got)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("a ping once the lock is gone: %v", err)
	}
	if got, n, m := s.Unavailable(), logs.Count("database unavailable"), logs.Count("database available again"); got != "" || n != 1 || m != 1 {
		t.Errorf("after the lock: Unavailable() = %q, the outage logged starting %d times and ending %d; want \"\", once, once:\n%s", got, n, m, logs.String())
	}
	move(t, s, "a", ordercast.StatusConfirmed)

	// The party logs, which every write of an order with a party takes (nearly all: an order has
	// its restaurant), are such tables too.
	for _, table := range []string{"party_log", "party_heads"} {
		tx, err := admin.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(t.Context(), "LOCK TABLE "+table+" IN SHARE MODE"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		wantUnavailable(t, "a ping while "+table+" is locked", s.Ping(ctx), "locked")
		cancel()
		if err := tx.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("a ping once %s's lock is gone: %v", table, err)
		}
	}

	// A lock on a table only some writes take (keyed ones) is no outage of the node: the others
	// go on, and a successful one would end an outage each ping began.
	tx, err = admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	if _, err := tx.Exec(t.Context(), "LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("a ping while only the idempotency keys are locked: %v", err)
	}
}

// TestAWriteWaitingOnALockSaysSo: a write that waited out its bound behind a lock on the tables
// every write takes was answered "the database is not answering", after a probe had found them
// locked, and the log said so too: on-call looked for a dead database. Once a probe finds the
// lock, a write that times out is answered "locked", and the outage's change of reason is
// logged, once.
func TestAWriteWaitingOnALockSaysSo(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, db)
	logs := &testutil.Buffer{}
	s := postgres.New(db)
	s.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s.BatchTimeout = time.Second
	s = storetest.MustOpen(t, s)
	create(t, s, "a")
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	if _, err := tx.Exec(t.Context(), "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	write := func() error {
		_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed})
		return err
	}
	wantUnavailable(t, "a write behind the lock, before any probe", write(), "not answering")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	wantUnavailable(t, "a probe", s.Ping(ctx), "locked")
	cancel()
	wantUnavailable(t, "a write behind the lock, after the probe", write(), "locked")
	if n, m := logs.Count("database unavailable;"), logs.Count("for another reason"); n != 1 || m != 1 {
		t.Errorf("the outage logged %d starts and %d changes of reason, want one of each:\n%s", n, m, logs)
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

// TestConnectRefusalsOfTheSettingsAreNotOutages: a connection refused for the node's settings
// (a password or role the server does not accept, a database that does not exist, a role
// without CONNECT) is storehealth.ErrMisconfigured, on which a starting node exits without its
// unit restarting it, not an outage to wait out; the outages (a server starting up, out of
// connections, the connection refused or timed out) stay unavailable, waited for and retried.
// The server's own refusals are met in cmd/ordercast's TestServeExitStatus_DatabaseRefusesTheNode;
// this covers those a trust-auth test server cannot give (a wrong password).
func TestConnectRefusalsOfTheSettingsAreNotOutages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		err           error
		misconfigured bool
	}{
		{"wrong password", &pgconn.PgError{Severity: "FATAL", Code: "28P01"}, true},
		{"unknown role", &pgconn.PgError{Severity: "FATAL", Code: "28000"}, true},
		{"no such database", &pgconn.PgError{Severity: "FATAL", Code: "3D000"}, true},
		{"no CONNECT privilege", &pgconn.PgError{Severity: "FATAL", Code: "42501"}, true},
		{"too many connections", &pgconn.PgError{Severity: "FATAL", Code: "53300"}, false},
		{"starting up", &pgconn.PgError{Severity: "FATAL", Code: "57P03"}, false},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false},
		{"timed out", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
	} {
		err := postgres.ConnectError(tc.err)
		gotMisconfigured, gotUnavailable := errors.Is(err, storehealth.ErrMisconfigured), ordercast.ErrorCode(err) == ordercast.EUnavailable
		if gotMisconfigured != tc.misconfigured || gotUnavailable == tc.misconfigured {
			t.Errorf("%s: misconfigured %v, unavailable %v; want misconfigured %v, unavailable %v (%v)",
				tc.name, gotMisconfigured, gotUnavailable, tc.misconfigured, !tc.misconfigured, err)
		}
	}
}

// TestADatabaseDroppedUnderANodeIsUnavailable: a running node whose database is dropped (or
// renamed, or whose role's password changed) finds its new connections refused for its
// settings: a starting node exits on that (TestConnectRefusalsOfTheSettingsAreNotOutages), but to
// a running node's requests it is the database away, 503 with the reason, and an outage in its
// log and in Ping. It was a 500 (a client integrator's review).
func TestADatabaseDroppedUnderANodeIsUnavailable(t *testing.T) {
	t.Parallel()
	db, _, s, logs := loggedStore(t)
	admin := pgtest.Connect(t, strings.Replace(db, "/"+dbName(t, db), "/postgres", 1))
	if _, err := admin.Exec(t.Context(), "DROP DATABASE "+pgx.Identifier{dbName(t, db)}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Order(t.Context(), "a")
	wantUnavailable(t, "a read of a dropped database", err, "refusing this node's connections")
	_, _, _, err = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed})
	wantUnavailable(t, "a write to a dropped database", err, "refusing this node's connections")
	wantUnavailable(t, "a ping of a dropped database", s.Ping(t.Context()), "refusing this node's connections")
	if !strings.Contains(logs.String(), "database unavailable") || !strings.Contains(logs.String(), "does not exist") {
		t.Errorf("no outage logged with the server's words:\n%s", logs)
	}
}

// TestAFullPoolIsBusyNotAnOutage: a node whose every pool connection is in use (a burst larger
// than pool_max_conns) makes the next read, write and ping wait for one, in vain: they are
// answered "busy" (503 with Retry-After, worth sending again shortly), and the database, which
// answers every query, is not marked away: no outage logged, ordercast_store_up stays 1. They
// were "the database is not answering", and on-call went looking at PostgreSQL.
func TestAFullPoolIsBusyNotAnOutage(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	logs := &testutil.Buffer{}
	s := postgres.New(db + "&pool_max_conns=1")
	s.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s.ReadTimeout, s.BatchTimeout = 300*time.Millisecond, 300*time.Millisecond
	s = storetest.MustOpen(t, s)
	create(t, s, "a")
	release := postgres.HoldConnection(t, s)

	const busy = "every connection of the node's pool in use"
	_, err := s.Order(t.Context(), "a")
	wantUnavailable(t, "a read while the pool is full", err, busy)
	_, _, _, err = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed})
	wantUnavailable(t, "a write while the pool is full", err, busy)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	wantUnavailable(t, "a ping while the pool is full", s.Ping(ctx), busy)
	cancel()
	if got, n := s.Unavailable(), logs.Count("database unavailable"); got != "" || n != 0 {
		t.Errorf("while the pool was full: Unavailable() = %q, %d outages logged; want none:\n%s", got, n, logs.String())
	}
	release()
	move(t, s, "a", ordercast.StatusConfirmed)
}
