package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// migrate applies every migration not yet recorded in schema_migrations. All of it runs in one
// transaction under an advisory lock: PostgreSQL's DDL is transactional, so a failed migration
// leaves nothing half-applied, and a second node starting at the same moment waits for the first
// and then finds everything applied. A database that records a migration later than this
// binary's last one is refused: running an older release on it (a deploy rolled back, an old node
// restarting in a rolling upgrade) must be a decision, not a silent divergence.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
		)`); err != nil {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	latest := 0
	for _, v := range versions {
		applied[int(v)] = true
		latest = max(latest, int(v))
	}
	if known := ms[len(ms)-1].Version; latest > known {
		return fmt.Errorf("postgres: %w", migrations.Newer("the database", latest, known))
	}
	var done []migrations.Migration
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			if refusedSQL(err) {
				err = migrations.Refused(err)
			}
			return fmt.Errorf("postgres: migration %03d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
			m.Version, m.Name); err != nil {
			return fmt.Errorf("postgres: record migration %03d_%s: %w", m.Version, m.Name, err)
		}
		done = append(done, m)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	for _, m := range done {
		s.Logger.Info("applied migration", "version", m.Version, "name", m.Name)
	}
	return nil
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
