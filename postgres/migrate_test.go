package postgres_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/migrations"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
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
	var known int
	if err := conn.QueryRow(t.Context(), `SELECT max(version) FROM schema_migrations`).Scan(&known); err != nil {
		t.Fatal(err)
	}
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
