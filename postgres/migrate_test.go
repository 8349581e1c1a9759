package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/migrations"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// TestOpen_RefusesANewerSchema: a database a later release migrated (schema_migrations records a
// version past this binary's last migration) is refused with both versions named, not written
// with a schema this binary does not know: rolling a deploy back, or an old node restarting in a
// rolling upgrade, must be a decision.
func TestOpen_RefusesANewerSchema(t *testing.T) {
	db := pgtest.NewDatabase(t)
	if err := storetest.MustOpen(t, postgres.New(db)).Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	known := schemaVersion(t, conn)
	later := known + 1
	if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, 'later')`, later); err != nil {
		t.Fatal(err)
	}
	s := postgres.New(db)
	err = s.Open(t.Context())
	if err == nil {
		_ = s.Close()
		t.Fatal("opened a database at a later schema version")
	}
	if want := fmt.Sprintf("schema version %d, newer than this binary's %d", later, known); !strings.Contains(err.Error(), want) || ordercast.ErrorCode(err) == ordercast.EUnavailable {
		t.Errorf("Open = %v (code %q), want an error saying %q, not %q", err, ordercast.ErrorCode(err), want, ordercast.EUnavailable)
	}
}

// TestANewEmptyDatabaseIsSaidAloud: a node that makes the schema in an empty database (a
// database name mistyped, a restore into another database than the nodes open) is ready and
// healthy, with every order lost: it says so, as a warning. One that finds the schema says
// nothing of it.
func TestANewEmptyDatabaseIsSaidAloud(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	for _, want := range []bool{true, false} {
		var logs testutil.Buffer
		s := postgres.New(db)
		s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		if err := storetest.MustOpen(t, s).Close(); err != nil {
			t.Fatal(err)
		}
		if said := strings.Contains(logs.String(), `level=WARN msg="postgres: made the schema in an empty database`); said != want {
			t.Errorf("opened for the first time %v: warned of an empty database %v:\n%s", want, said, logs.String())
		}
	}
}

// TestOpen_AMigrationTheDatabaseRefusesIsErrRefused: a database that already holds a table of a
// migration's name (another application's) refuses the migration; the error says which, and is
// migrations.ErrRefused, on which the node exits without its unit starting it again (no restart
// changes the answer), where a database away is not.
func TestOpen_AMigrationTheDatabaseRefusesIsErrRefused(t *testing.T) {
	db := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	if _, err := conn.Exec(t.Context(), `CREATE TABLE orders (sku text)`); err != nil {
		t.Fatal(err)
	}
	s := postgres.New(db)
	err = s.Open(t.Context())
	if err == nil {
		_ = s.Close()
		t.Fatal("migrated a database that holds another application's orders table")
	}
	if !errors.Is(err, migrations.ErrRefused) || !strings.Contains(err.Error(), "migration 001_orders") {
		t.Errorf("Open = %v; want migrations.ErrRefused naming migration 001_orders", err)
	}
}

// pendingBehindALock returns a database whose migrations 012 and 014 are pending again, and a session that
// holds orders (ROW EXCLUSIVE, which 012's CREATE INDEX waits for) until the test ends or it
// rolls back: a report, a forgotten psql transaction. blockerPID is the session's.
func pendingBehindALock(t *testing.T) (db string, admin *pgx.Conn, hold pgx.Tx, blockerPID int) {
	t.Helper()
	return pendingBehind(t, "ROW EXCLUSIVE")
}

// pendingBehind is pendingBehindALock with the session holding orders in mode.
func pendingBehind(t *testing.T, mode string) (db string, admin *pgx.Conn, hold pgx.Tx, blockerPID int) {
	t.Helper()
	db = pgtest.NewDatabase(t)
	if err := storetest.MustOpen(t, postgres.New(db)).Close(); err != nil {
		t.Fatal(err)
	}
	admin = pgtest.Connect(t, db)
	if _, err := admin.Exec(t.Context(), `DELETE FROM schema_migrations WHERE version IN (12, 14);
		DROP INDEX orders_restaurant_created; DROP INDEX orders_created; ALTER TABLE orders DROP COLUMN erased_at`); err != nil {
		t.Fatal(err)
	}
	blocker := pgtest.Connect(t, db)
	if err := blocker.QueryRow(t.Context(), `SELECT pg_backend_pid()`).Scan(&blockerPID); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(t.Context(), `SET application_name = 'h_mig_report'`); err != nil {
		t.Fatal(err)
	}
	hold, err := blocker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hold.Rollback(context.Background()) })
	if _, err := hold.Exec(t.Context(), `LOCK TABLE orders IN `+mode+` MODE`); err != nil {
		t.Fatal(err)
	}
	return db, admin, hold, blockerPID
}

// migrationGaveUp is the start of the line a migration logs when it gave up on a lock.
const migrationGaveUp = "schema migration gave up waiting"

// openBehindALock starts s.Open on ctx, with tries that give up quickly and follow each other
// quickly, and returns once s logged that one gave up on a lock; Open's result comes on the
// channel.
func openBehindALock(t *testing.T, ctx context.Context, s *postgres.Store) (log *testutil.Buffer, opened chan error) {
	t.Helper()
	log = &testutil.Buffer{}
	s.Logger = slog.New(slog.NewTextHandler(log, nil))
	s.MigrationLockTimeout = 50 * time.Millisecond
	s.MigrationRetry = 10 * time.Millisecond
	opened = make(chan error, 1)
	go func() { opened <- s.Open(ctx) }()
	t.Cleanup(func() { _ = s.Close() })
	testutil.WaitFor(t, "the migration to give up on the lock", func() bool {
		select {
		case err := <-opened:
			t.Fatalf("Open returned %v while another session held orders; log:\n%s", err, log.String())
		default:
		}
		return strings.Contains(log.String(), migrationGaveUp)
	})
	return log, opened
}

// letGoAndOpen ends the session holding the table (hold) and waits for the Open that waited
// behind it (opened, from openBehindALock) to succeed.
func letGoAndOpen(t *testing.T, hold pgx.Tx, opened chan error, log *testutil.Buffer) {
	t.Helper()
	if err := hold.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("Open after the session let go: %v", err)
		}
	case <-time.After(testutil.WaitTimeout):
		t.Fatalf("Open still waiting after the session let go; log:\n%s", log)
	}
}

// schemaVersion is the latest migration the database behind admin records.
func schemaVersion(t *testing.T, admin *pgx.Conn) (v int) {
	t.Helper()
	if err := admin.QueryRow(t.Context(), `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMigrationWaitingForALockGivesWay: a migration that finds a table held by another session
// (a pg_dump, a report, a forgotten psql transaction) says first what it is about to do, then
// gives up its place in the table's lock queue after MigrationLockTimeout, so that the cluster's
// reads and writes do not queue behind it, logs which session holds the table, and tries again
// until it gets the lock: the node opens once the session lets go.
func TestMigrationWaitingForALockGivesWay(t *testing.T) {
	t.Parallel()
	db, admin, hold, blockerPID := pendingBehindALock(t)
	log, opened := openBehindALock(t, t.Context(), postgres.New(db))
	lines := log.String()
	announced := strings.Index(lines, `msg="migrating the schema from 11 to 14: 2 migrations, each in a transaction of its own"`)
	if announced < 0 || announced > strings.Index(lines, migrationGaveUp) {
		t.Errorf("no line saying what is migrated before the first retry:\n%s", lines)
	}
	retryLine := lines[strings.Index(lines, migrationGaveUp):]
	retryLine = retryLine[:strings.IndexByte(retryLine, '\n')]
	for _, want := range []string{
		fmt.Sprintf("pid %d ", blockerPID), `application_name \"h_mig_report\"`, `state \"idle in transaction\"`,
		`query \"LOCK TABLE orders IN ROW EXCLUSIVE MODE\"`, `locks \"orders RowExclusiveLock\"`, "query_start 20",
		"try=1", "retry_in=10ms", "SQLSTATE 55P03",
	} {
		if !strings.Contains(retryLine, want) {
			t.Errorf("the retry line does not say %s:\n%s", want, retryLine)
		}
	}
	if strings.Contains(lines, "applied migration") {
		t.Fatalf("a migration was applied while another session held orders:\n%s", lines)
	}
	if strings.Contains(lines, "empty database") {
		t.Errorf("a database at schema 11 was called empty:\n%s", lines)
	}

	letGoAndOpen(t, hold, opened, log)
	if version := schemaVersion(t, admin); version != 14 || !strings.Contains(log.String(), `msg="applied migration" version=12`) || !strings.Contains(log.String(), `msg="applied migration" version=14`) {
		t.Errorf("schema version %d after the retries, want 14 and the lines of 12 and 14 in the log:\n%s", version, log.String())
	}
}

// TestEachMigrationCommitsOnItsOwn: pending migrations commit one by one, each letting go of
// what it locked before the next runs. Applied in one transaction, 010's ALTER TABLE (every lock
// of orders, reads included) stayed held while 012 built two indexes: every node's reads of
// orders waited 12 – 14 s at 1,000,000 orders (the upgrade review). Here a session reads orders
// (ACCESS SHARE, which 012's CREATE INDEX lets be and 014's ALTER TABLE waits for): 012 is
// applied and recorded while 014 waits, and 014 follows once the session lets go.
func TestEachMigrationCommitsOnItsOwn(t *testing.T) {
	t.Parallel()
	db, admin, hold, _ := pendingBehind(t, "ACCESS SHARE")
	log, opened := openBehindALock(t, t.Context(), postgres.New(db))
	if v := schemaVersion(t, admin); v != 12 || !strings.Contains(log.String(), `msg="applied migration" version=12`) {
		t.Fatalf("schema version %d while 014 waits for the table, want 12, applied and committed before it:\n%s", v, log)
	}
	letGoAndOpen(t, hold, opened, log)
	if v := schemaVersion(t, admin); v != 14 || !strings.Contains(log.String(), `msg="migrated the schema" from=11 to=14`) {
		t.Errorf("schema version %d once the session let go, want 14, and the log to say it migrated from 11:\n%s", v, log)
	}
}

// TestMigrationWaitingForALockStopsWhenAsked: the retries go on for as long as Open's context
// lasts, not past it: a node stopped (SIGTERM) while its migration waits for a table exits,
// having applied nothing.
func TestMigrationWaitingForALockStopsWhenAsked(t *testing.T) {
	t.Parallel()
	db, admin, _, _ := pendingBehindALock(t)
	ctx, stop := context.WithCancel(t.Context())
	_, opened := openBehindALock(t, ctx, postgres.New(db))
	stop()
	select {
	case err := <-opened:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Open stopped while its migration waited = %v, want context.Canceled", err)
		}
	case <-time.After(testutil.WaitTimeout):
		t.Fatal("Open still waiting after its context ended")
	}
	if version := schemaVersion(t, admin); version != 11 {
		t.Errorf("schema version %d after a stopped migration, want 11", version)
	}
}

// TestMigrationRunsPastAStatementTimeoutOfTheDatabase: a statement_timeout the operator set for
// the node's role or database (ALTER ROLE … IN DATABASE … SET, ALTER DATABASE … SET), meant for
// its requests, does not bound the migrations: a migration statement that ran longer (an index
// built over many rows) failed on it (57014) at every start, each try taking the tables' locks
// again, and the node exited 1 with no hint, to be restarted into the same failure; so did a
// node waiting for the migration lock while another migrated. Here each waits, past the
// database's statement_timeout, for what another session holds (the migration lock, or the
// orders table within lock_timeout), and Open succeeds once it lets go.
func TestMigrationRunsPastAStatementTimeoutOfTheDatabase(t *testing.T) {
	t.Parallel()
	const statementTimeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		// held returns a database that a migration finds held by another session, and the
		// call that lets go.
		held func(t *testing.T) (db string, release func() error)
	}{
		{"a migration statement", func(t *testing.T) (string, func() error) {
			db, _, hold, _ := pendingBehindALock(t)
			return db, func() error { return hold.Rollback(t.Context()) }
		}},
		{"the wait behind another node's migration", func(t *testing.T) (string, func() error) {
			db := pgtest.NewDatabase(t)
			other := pgtest.Connect(t, db)
			if _, err := other.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, postgres.MigrationLockKey); err != nil {
				t.Fatal(err)
			}
			return db, func() error {
				_, err := other.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, postgres.MigrationLockKey)
				return err
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, release := tc.held(t)
			admin := pgtest.Connect(t, pgtest.ServerURL(t))
			// On the database, as an operator's ALTER DATABASE or ALTER ROLE sets it: every new
			// session of the store has it. It goes with the database when the test ends.
			alterDatabase(t, admin, db, "statement_timeout", fmt.Sprint(statementTimeout.Milliseconds()))
			s := postgres.New(db)
			s.MigrationLockTimeout = time.Hour // only statement_timeout could end the wait
			opened := make(chan error, 1)
			go func() { opened <- s.Open(t.Context()) }()
			t.Cleanup(func() { _ = s.Close() })
			// Polled, with a deadline: PostgreSQL says how long the migration's statement has
			// waited for the lock, and no signal does.
			testutil.WaitFor(t, "the migration to wait past statement_timeout", func() bool {
				select {
				case err := <-opened:
					t.Fatalf("Open returned while another session held what the migration takes: %v", err)
				default:
				}
				var waiting bool
				if err := admin.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_stat_activity
					WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'
					  AND clock_timestamp() - query_start > $3 * interval '1 millisecond')`,
					dbName(t, db), postgres.DefaultApplicationName, 2*statementTimeout.Milliseconds()).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				return waiting
			})
			if err := release(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-opened:
				if err != nil {
					t.Fatalf("Open of a database whose statement_timeout is %v, after a migration waited longer: %v", statementTimeout, err)
				}
			case <-time.After(testutil.WaitTimeout):
				t.Fatal("Open still waiting after the other session let go")
			}
		})
	}
}
