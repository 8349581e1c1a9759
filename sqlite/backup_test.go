package sqlite_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

// TestBackupWhileANodeWrites: a backup of a database a store is writing to is taken while the
// writes go on, none of them refused or waiting for it, and is a database a store opens with
// every order committed before it began; it is mode 0600, and the store goes on serving its
// file.
func TestBackupWhileANodeWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ordercast.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	ctx := t.Context()
	const before = 300
	for i := range before {
		mustCreate(t, s, ordercast.NewOrder{ID: "b-" + strconv.Itoa(i), Details: []byte(`{"items":2}`)})
	}
	// Writes while the copy is taken, bounded: the copy does not wait for them to stop.
	stop, writing := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		defer func() {
			select {
			case <-writing:
			default:
				close(writing) // ended before its first write
			}
		}()
		for i := 0; i < 2000; i++ {
			if i == 1 {
				close(writing)
			}
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: "w-" + strconv.Itoa(i)}); err != nil {
				writeErr = err
				return
			}
		}
	})
	<-writing
	to := filepath.Join(dir, "copy.db")
	c, err := sqlite.Backup(ctx, path, to)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if writeErr != nil {
		t.Fatalf("a write during the backup: %v", writeErr)
	}
	if c.Orders < before || c.Schema < 1 || c.Bytes <= 0 {
		t.Errorf("copy %+v: want at least the %d orders committed before it, a schema version and a size", c, before)
	}
	info, err := os.Stat(to)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 || info.Size() != c.Bytes {
		t.Errorf("copy: mode %v, %d bytes; want 0600 and the %d bytes Backup said", info.Mode().Perm(), info.Size(), c.Bytes)
	}
	// The store goes on writing to its own file.
	mustCreate(t, s, ordercast.NewOrder{ID: "after"})

	// A node started on the copy serves it as it was.
	restored := storetest.MustOpen(t, sqlite.New(to))
	if o, err := restored.Order(ctx, "b-0"); err != nil || o.ID != "b-0" {
		t.Errorf("the copy's order b-0: %+v, %v", o, err)
	}
	if _, err := restored.Order(ctx, "after"); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Errorf("the copy has an order made after it: %v", err)
	}
}

// TestBackupNeverOverwrites: a file at the copy's path is refused and left as it was; a
// database that is not there is an error, and leaves no copy (nor an empty database) behind.
func TestBackupNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ordercast.db")
	storetest.MustOpen(t, sqlite.New(path))
	to := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(to, []byte("yesterday's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Backup(t.Context(), path, to); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Backup over a file: %v, want it refused as existing", err)
	}
	if b, _ := os.ReadFile(to); string(b) != "yesterday's" {
		t.Errorf("the file at the copy's path is now %q", b)
	}
	missing, fresh := filepath.Join(dir, "nothing.db"), filepath.Join(dir, "fresh.db")
	if _, err := sqlite.Backup(t.Context(), missing, fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Backup of no database: %v, want not found", err)
	}
	for _, f := range []string{missing, fresh} {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is there after a backup of no database (%v)", filepath.Base(f), err)
		}
	}
}

// TestBackupOfAFileURI: a database named as serve takes it, by a file: URI, is copied; a URI that
// names no file is refused.
func TestBackupOfAFileURI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ordercast.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	mustCreate(t, s, ordercast.NewOrder{ID: "o-1"})
	c, err := sqlite.Backup(t.Context(), "file:"+path, filepath.Join(dir, "copy.db"))
	if err != nil || c.Orders != 1 {
		t.Fatalf("Backup of file:%s = %+v, %v; want its one order", path, c, err)
	}
	if _, err := sqlite.Backup(t.Context(), "file::memory:", filepath.Join(dir, "mem.db")); err == nil {
		t.Error("Backup of file::memory: succeeded")
	}
}
