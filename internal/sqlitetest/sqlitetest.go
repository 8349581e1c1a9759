// Package sqlitetest is what tests of a node on an SQLite file do to that file from outside, as
// another process would (a backup in the sqlite3 shell, a reader that keeps a transaction open).
package sqlitetest

import (
	"database/sql"
	"errors"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" driver, as the store's
)

// WriteLock is a statement that takes the file's write lock, for HoldElsewhere.
const WriteLock = `CREATE TABLE lock_holder (x INTEGER)`

// HoldElsewhere runs stmt in a transaction on a connection of its own to the file at path, as
// another process would, and holds the transaction (a write lock with WriteLock, a read
// snapshot with a SELECT) until release, or until the test ends.
func HoldElsewhere(t *testing.T, path, stmt string) (release func()) {
	t.Helper()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = other.Close() })
	other.SetMaxOpenConns(1)
	tx, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	rows, err := tx.Query(stmt)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}
