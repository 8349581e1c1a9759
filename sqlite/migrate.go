package sqlite

import (
	"context"
	"embed"
	"fmt"

	"github.com/ordercast/ordercast/internal/migrations"
)

// migrationFS holds the schema, embedded so the binary carries it and applies it on Open.
//
//go:embed migrations/*.up.sql
var migrationFS embed.FS

// migrate applies every migration not yet recorded in schema_migrations, each in its own
// transaction together with its record, so a failed migration leaves no half-applied schema. A
// database that records a migration later than this binary's last one is refused: running an
// older release on it (a deploy rolled back) must be a decision, not a silent divergence.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if _, err := s.writer.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	var applied int
	if err := s.writer.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
		return fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	if known := ms[len(ms)-1].Version; applied > known {
		return fmt.Errorf("sqlite: %w", migrations.Newer(s.Path, applied, known))
	}
	for _, m := range ms {
		if err := s.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("sqlite: migration %03d_%s: %w", m.Version, m.Name, err)
		}
	}
	if applied == 0 {
		// Said aloud: a path mistyped in a restore, a volume not mounted, or a copy of a running
		// database's file without its -wal (which holds an empty file) makes a node that is
		// ready, healthy and has lost every order, its ids and party logs starting over.
		s.Logger.Warn(emptyDatabase, "path", s.Path)
	}
	return nil
}

// emptyDatabase is what a start that found no schema says, having made one.
const emptyDatabase = "sqlite: started on a new, empty database: no orders, every id and party log starts anew; if this node was meant to open an existing one, stop it and check the path"

func (s *Store) applyMigration(ctx context.Context, m migrations.Migration) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit

	// Checked inside the (immediate) transaction so two processes opening the same new file
	// cannot both apply it.
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return fmt.Errorf("check applied: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		if refusedSQL(err) {
			err = migrations.Refused(err)
		}
		return fmt.Errorf("apply: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, s.now().UnixMicro()); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.Logger.Info("applied migration", "version", m.Version, "name", m.Name, "path", s.Path)
	return nil
}
