package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordercast/ordercast/internal/clock"
	"github.com/ordercast/ordercast/internal/migrations"
)

// migrationFS holds the schema, embedded so the binary carries it and applies it on Open.
//
//go:embed migrations/*.up.sql
var migrationFS embed.FS

// migrationLockKey is the pg_advisory_xact_lock key held while migrating, so that nodes starting
// at once apply each migration exactly once. Advisory locks are per database; the value only has
// to be unlikely to clash with another application's key in the same database.
const migrationLockKey int64 = 0x6f72646572636173 // "ordercas"

// Defaults of the migrations' wait for the tables' locks (Store.MigrationLockTimeout,
// Store.MigrationRetry).
const (
	// DefaultMigrationLockTimeout is the lock_timeout of a migration: how long it waits in a
	// table's lock queue before it gives up its place and tries again later. A migration that
	// alters a table asks for ACCESS EXCLUSIVE, which waits for every session holding the table
	// (a pg_dump, a report query), and every other node's reads and writes of the table queue
	// behind the request: unbounded, one long reader stalled the whole cluster, every /readyz
	// 503 together. The nodes' own statements hold a table for milliseconds, so a healthy,
	// busy cluster grants the lock well within this; and it is under the second a readiness
	// probe waits for the same tables (Store.Ping's lockWait), so the other nodes stay ready
	// while a migration waits, their writes and reads late by at most this much.
	DefaultMigrationLockTimeout = 500 * time.Millisecond
	// DefaultMigrationRetry is the pause after the first try that gave up on a lock; each pause
	// doubles, up to DefaultMigrationRetryMax. Each try delays the cluster's work on the table
	// by up to MigrationLockTimeout: past the first pauses, at most a few percent of the time.
	DefaultMigrationRetry = 2 * time.Second
	// DefaultMigrationRetryMax bounds the pause between two tries: a reader that ends is
	// followed by the migration within this much.
	DefaultMigrationRetryMax = 30 * time.Second
)

// errMigrationLock is a migration that waited MigrationLockTimeout for a lock and gave up.
var errMigrationLock = errors.New("waited lock_timeout for a lock another session holds")

// migrate applies every migration not yet recorded in schema_migrations, each in a transaction
// of its own under an advisory lock: PostgreSQL's DDL is transactional, so a failed migration
// leaves nothing of itself applied, and a second node starting at the same moment waits for the
// first and then finds it applied. Each commits before the next begins, so that what one locks
// (006's or 010's ALTER TABLE holds every lock of orders, reads included) is let go before the
// next runs: in one transaction, 010's lock stayed held while 012 built two indexes, and every
// node's reads of orders waited the whole time (12 – 14 s at 1,000,000 orders, the upgrade
// review). Every version in between is one an earlier release ran at, so a database left there
// by a failure is one the next start carries on from. A database that records a migration later
// than this binary's last one is refused: running an older release on it (a deploy rolled back,
// an old node restarting in a rolling upgrade) must be a decision, not a silent divergence.
//
// A try that waits longer than MigrationLockTimeout for a table's lock gives up, logs which
// sessions hold the tables, and tries again after a pause, for as long as ctx lasts: the node
// is not ready meanwhile (it has not opened), and a restart would only wait behind the same
// session again.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	pause := s.MigrationRetry
	var run migrationRun
	for try := 1; ; {
		done, err := s.migrateNext(ctx, ms, &run)
		switch {
		case err == nil && done:
			if run.applied > 0 {
				s.Logger.Info("migrated the schema", "from", run.from, "to", run.to, "took", time.Since(run.start).Round(time.Millisecond))
			}
			if run.applied > 0 && run.from == 0 {
				// Said aloud: a database name mistyped, or a restore into another database than
				// the nodes open, makes a cluster that is ready and has lost every order.
				s.Logger.Warn("postgres: made the schema in an empty database: no orders, every id and party log starts anew; if this cluster was meant to open an existing one, stop it and check --db")
			}
			return nil
		case err == nil: // one applied: on to the next, with a first try's patience
			try, pause = 1, s.MigrationRetry
			continue
		case !errors.Is(err, errMigrationLock):
			return err
		}
		holders, herr := s.lockHolders(ctx)
		attrs := []any{"err", err, "try", try, "lock_timeout", s.MigrationLockTimeout, "retry_in", pause, "holders", holders}
		if herr != nil {
			attrs = append(attrs, "holders_err", herr)
		}
		s.Logger.Warn("schema migration gave up waiting for a table's lock, so that other nodes' reads and writes do not queue behind it; it will retry once the holders (sessions holding the schema's tables) let go", attrs...)
		if serr := clock.Sleep(ctx, pause); serr != nil {
			return fmt.Errorf("postgres: migrate: waiting to retry: %w", errors.Join(serr, err))
		}
		try, pause = try+1, min(2*pause, max(s.MigrationRetry, DefaultMigrationRetryMax))
	}
}

// migrationRun is what one start's migrating has done so far, for its log: the version it found,
// the last it announced, how many it applied, and when it first found one pending (zero: none
// yet, nothing announced).
type migrationRun struct {
	from, to int // the versions of the "migrating the schema" line (to: the last pending then)
	applied  int
	start    time.Time
}

// migrateNext is one try of migrate: it applies the first pending migration in one transaction,
// and reports whether none was left after it (true, nil: the schema is current). It logs the
// migrations pending when it first finds them (again if another node has applied some meanwhile
// and the range changed), and errMigrationLock when it gave up on a lock.
func (s *Store) migrateNext(ctx context.Context, ms []migrations.Migration, run *migrationRun) (done bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("postgres: migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit

	// First, so that it covers the wait for the advisory lock too: a statement_timeout set for
	// the node's role or database (meant for its requests) would fail a migration over many
	// rows, or the wait behind another node's, at every start, each try taking the tables'
	// locks again, and the node would exit to be restarted into the same failure. Where a
	// migration waits for a table, lock_timeout bounds it (below); for the rest, it takes as
	// long as it takes. LOCAL: the connection goes back to the pool with the operator's setting.
	if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return false, fmt.Errorf("postgres: migrate: set statement_timeout: %w", err)
	}

	var free bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, migrationLockKey).Scan(&free); err != nil {
		return false, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if !free {
		// Said, since the wait may be long: the other node may be applying migrations that hold
		// a large table for seconds, or itself retrying behind a reader (its log says). Or it
		// is only checking, with nothing pending, and the wait is a moment: which one is not
		// known here, so the line says no more than that the lock is held.
		s.Logger.Info("another node holds the migration lock (checking or migrating the schema); waiting for it")
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return false, fmt.Errorf("postgres: migrate: lock: %w", err)
		}
	}
	// After the advisory lock, whose wait is another node's migration and stalls nobody: from
	// here on every lock is a table's, and waiting in its queue holds up everyone behind.
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`,
		strconv.FormatInt(max(1, s.MigrationLockTimeout.Milliseconds()), 10)); err != nil {
		return false, fmt.Errorf("postgres: migrate: set lock_timeout: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
		)`); err != nil {
		return false, migrationError("create schema_migrations", err)
	}
	applied := map[int]bool{}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return false, migrationError("read schema_migrations", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return false, migrationError("read schema_migrations", err)
	}
	latest := 0
	for _, v := range versions {
		applied[int(v)] = true
		latest = max(latest, int(v))
	}
	if known := ms[len(ms)-1].Version; latest > known {
		return false, fmt.Errorf("postgres: %w", migrations.Newer("the database", latest, known))
	}
	var pending []migrations.Migration
	for _, m := range ms {
		if !applied[m.Version] {
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return true, nil // the transaction, which changed nothing, rolls back
	}
	if to := pending[len(pending)-1].Version; run.start.IsZero() || run.to != to {
		if run.start.IsZero() {
			run.from, run.start = latest, time.Now()
		}
		run.to = to
		// Before, not only after: a migration holds the tables it changes until it commits,
		// and an operator watching a start that takes long must know why.
		s.Logger.Info(fmt.Sprintf("migrating the schema from %d to %d: %s, each in a transaction of its own", latest, to, countMigrations(len(pending))),
			"from", latest, "to", to, "lock_timeout", s.MigrationLockTimeout)
	}
	m, began := pending[0], time.Now()
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, migrationError(fmt.Sprintf("migration %03d_%s", m.Version, m.Name), err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
		m.Version, m.Name); err != nil {
		return false, migrationError(fmt.Sprintf("record migration %03d_%s", m.Version, m.Name), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("postgres: migrate: commit migration %03d_%s: %w", m.Version, m.Name, err)
	}
	run.applied++
	s.Logger.Info("applied migration", "version", m.Version, "name", m.Name, "took", time.Since(began).Round(time.Millisecond))
	return len(pending) == 1, nil
}

// countMigrations is "1 migration", "7 migrations".
func countMigrations(n int) string {
	if n == 1 {
		return "1 migration"
	}
	return strconv.Itoa(n) + " migrations"
}

// migrationError is err, met by the migration's step what, as the caller acts on it: a lock
// waited for past lock_timeout is errMigrationLock (tried again), and SQL the database refuses
// for what it says is migrations.ErrRefused (no restart changes that).
func migrationError(what string, err error) error {
	switch {
	case isLockTimeout(err):
		err = fmt.Errorf("%w: %w", errMigrationLock, err)
	case refusedSQL(err):
		err = migrations.Refused(refusalHint(err))
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// isLockTimeout reports whether err is a statement given up on lock_timeout.
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// refusedSQL reports whether err is the database refusing a statement for what it says, which
// it would refuse again: a data exception (22), an integrity constraint (23), a syntax error or
// an access rule (42: an object that exists already, or does not; a privilege missing).
func refusedSQL(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "42":
		return true
	}
	return false
}

// refusalHint adds to err, a refusal, what the operator can do about it, where that is known.
func refusalHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		// PostgreSQL 15 no longer lets every role create tables in schema public.
		return fmt.Errorf("%w: the URL's role may not create or change the tables: make it the database's owner (ALTER DATABASE … OWNER TO …), or GRANT CREATE ON SCHEMA public TO it", err)
	}
	return err
}

// lockHolder is a session holding a lock on one of the schema's tables, as a migration that gave
// up on a lock logs it.
type lockHolder struct {
	PID             int32      `json:"pid"`
	ApplicationName string     `json:"application_name"`
	State           string     `json:"state"`
	QueryStart      *time.Time `json:"query_start"`
	Query           string     `json:"query"` // its first maxHolderQuery characters
	Locks           string     `json:"locks"` // "orders AccessShareLock, order_events AccessShareLock"
}

// maxHolderQuery is how much of a lock holder's query is logged: enough to recognise it.
const maxHolderQuery = 80

func (h lockHolder) String() string {
	since := "-"
	if h.QueryStart != nil {
		since = h.QueryStart.Format(time.RFC3339)
	}
	return fmt.Sprintf("pid %d application_name %q state %q query_start %s query %q locks %q",
		h.PID, h.ApplicationName, h.State, since, h.Query, h.Locks)
}

// lockHolders lists the sessions (at most five, the longest in their transactions first) that
// hold a lock on a table of the schema, after a migration gave up on one. The migration no longer
// waits then, so no view names its blockers (pg_blocking_pids); but it asks for locks only on the
// schema's tables, and every session holding one is a blocker of an ACCESS EXCLUSIVE request.
// Another role's query reads "<insufficient privilege>" unless the node's role may read all
// statistics (pg_read_all_stats).
func (s *Store) lockHolders(ctx context.Context) ([]lockHolder, error) {
	ctx, cancel := context.WithTimeout(ctx, s.ReadTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), a.query_start,
		       left(coalesce(a.query, ''), 4 * $1::int),
		       string_agg(DISTINCT c.relname || ' ' || l.mode, ', ')
		FROM pg_locks l
		JOIN pg_class c ON c.oid = l.relation
		JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		GROUP BY a.pid, a.application_name, a.state, a.query_start, a.query, a.xact_start
		ORDER BY a.xact_start NULLS LAST
		LIMIT 5`, maxHolderQuery)
	if err != nil {
		return nil, fmt.Errorf("postgres: read the lock holders: %w", err)
	}
	holders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (lockHolder, error) {
		var h lockHolder
		err := row.Scan(&h.PID, &h.ApplicationName, &h.State, &h.QueryStart, &h.Query, &h.Locks)
		h.Query = shortQuery(h.Query)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read the lock holders: %w", err)
	}
	return holders, nil
}

// shortQuery is q on one line, its runs of white space one space, cut to maxHolderQuery
// characters.
func shortQuery(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if r := []rune(q); len(r) > maxHolderQuery {
		q = string(r[:maxHolderQuery]) + "…"
	}
	return q
}
