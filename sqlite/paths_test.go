package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

// TestCheckpointerFindsTheWAL: the checkpointer bounds the WAL by its size, so it must measure
// the file SQLite writes, which is beside the database file SQLite opened: not beside a symbolic
// link to it (a data volume linked into place), nor a file: URI taken as a name. Measuring a
// file that is not there, it never checkpointed, and the WAL grew without bound.
func TestCheckpointerFindsTheWAL(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "volume", "ordercast.db")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "linked.db")
	if err := os.WriteFile(real, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	uriFile := filepath.Join(dir, "uri.db")
	for _, tt := range []struct{ name, path, wal string }{
		{"plain", filepath.Join(dir, "plain.db"), filepath.Join(dir, "plain.db-wal")},
		{"symbolic link", link, real + "-wal"},
		{"file: URI", "file:" + uriFile, uriFile + "-wal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := storetest.MustOpen(t, sqlite.New(tt.path))
			if got := sqlite.WALPath(s); got != tt.wal {
				t.Fatalf("the checkpointer measures %s, want %s", got, tt.wal)
			}
			if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"}); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(tt.wal); err != nil || fi.Size() == 0 {
				t.Fatalf("no WAL written at %s: %v", tt.wal, err)
			}
		})
	}
}

// TestOpenOnALockedFileIsUnavailable: a file whose write lock another process holds past
// busy_timeout at start is an outage (cmd/ordercast waits out EUnavailable at start), not a
// configuration error that ends the process.
func TestOpenOnALockedFileIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	if err := storetest.MustOpen(t, sqlite.New(path)).Close(); err != nil { // schema in place, as on any restart
		t.Fatal(err)
	}
	holdElsewhere(t, path, `CREATE TABLE lock_holder (x INTEGER)`) // the write lock
	s := sqlite.New(path)
	s.BusyTimeout = 50 * time.Millisecond
	err := s.Open(t.Context())
	if err == nil {
		_ = s.Close()
		t.Fatal("opened a locked file")
	}
	if got := ordercast.ErrorCode(err); got != ordercast.EUnavailable {
		t.Errorf("Open on a locked file: %v (code %q), want %q", err, got, ordercast.EUnavailable)
	}
}

// TestOpenRefusesAPathThatCannotBeADatabase: a directory, or a file in a directory that does not
// exist, is a mistyped --db. SQLite calls both "unable to open", as it does a file system that is
// briefly away; Open must say what is wrong, and not as an outage that start-up waits out
// (--db-wait, a minute by default).
func TestOpenRefusesAPathThatCannotBeADatabase(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{dir, "is a directory"},
		{filepath.Join(dir, "missing", "x.db"), "does not exist"},
		{filepath.Join(file, "x.db"), "is not a directory"},
	} {
		err := sqlite.New(tt.path).Open(t.Context())
		if err == nil || !strings.Contains(err.Error(), tt.want) || ordercast.ErrorCode(err) == ordercast.EUnavailable {
			t.Errorf("Open(%s) = %v (code %q), want an error saying %q, not %q", tt.path, err, ordercast.ErrorCode(err), tt.want, ordercast.EUnavailable)
		}
	}
}

// TestReaderElsewhereDoesNotFailWrites: another process keeps a read transaction open on the
// file (a backup, litestream, a sqlite3 shell), so the WAL cannot start over and the writer tries
// to restart it every CheckpointInterval. In WAL mode a reader never blocks a writer; the
// checkpoint, which holds the write lock while it waits for readers, must give up before the
// writes behind it run out of their busy_timeout.
func TestReaderElsewhereDoesNotFailWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	s.BusyTimeout = 200 * time.Millisecond
	s.CheckpointInterval = 100 * time.Millisecond // each try holds the writes for up to 50 ms
	s.CheckpointSize = 16 << 10
	s.MaxWALSize = 32 << 10 // the pinned reader makes the WAL pass it at once
	storetest.MustOpen(t, s)
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "first"}); err != nil {
		t.Fatal(err)
	}
	holdElsewhere(t, path, `SELECT count(*) FROM orders`) // a read transaction
	details := []byte(`{"pad":"` + strings.Repeat("x", 900) + `"}`)
	for i := range 300 {
		if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d", i), Details: details}); err != nil {
			t.Fatalf("write %d beside a reader in another process: %v", i, err)
		}
	}
}

// TestPingOnALockedFileSaysLocked: with the default busy_timeout (longer than a readiness
// check waits), a write lock another process holds makes Ping report the store unavailable
// because the file is locked, not fail with its caller's deadline.
func TestPingOnALockedFileSaysLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	holdElsewhere(t, path, `CREATE TABLE lock_holder (x INTEGER)`) // the write lock
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // as /readyz asks
	defer cancel()
	err := s.Ping(ctx)
	if ordercast.ErrorCode(err) != ordercast.EUnavailable || s.Unavailable() != "locked" {
		t.Fatalf("Ping on a locked file: %v (code %q, reason %q), want unavailable, locked", err, ordercast.ErrorCode(err), s.Unavailable())
	}
}

// holdElsewhere runs stmt in a transaction on a connection of its own, as another process
// would, and keeps the transaction open until release is called or the test ends: a read keeps a
// read transaction, a write the write lock.
func holdElsewhere(t *testing.T, path, stmt string) (release func()) {
	t.Helper()
	other := rawDB(t, path)
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
