package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/migrations"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/sqlite"
)

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T, pub ordercast.Publisher) ordercast.Store {
		t.Helper()
		s := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
		s.Publisher = pub
		return sqlite.Held{Store: storetest.MustOpen(t, s)}
	})
}

// rawDB opens the file directly, to look at what the Store wrote without going through it.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestOpen_MigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")

	first := sqlite.New(path)
	if err := first.Open(t.Context()); err != nil {
		t.Fatalf("first Open: %v", err)
	}
	if _, _, err := first.CreateOrder(t.Context(), ordercast.NewOrder{ID: "kept"}); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}

	// Reopening must neither fail on existing tables nor lose data.
	second := storetest.MustOpen(t, sqlite.New(path))
	o, err := second.Order(t.Context(), "kept")
	if err != nil {
		t.Fatalf("Order after reopen: %v", err)
	}
	if got, want := o.Version, int64(1); got != want {
		t.Errorf("Version after reopen = %d, want %d", got, want)
	}

	rows, err := rawDB(t, path).QueryContext(t.Context(), `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("query schema_migrations: %v", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			v    int
			name string
		)
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatalf("scan: %v", err)
		}
		got = append(got, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	if want := []string{"orders", "idempotency_keys", "owners", "order_places", "still_indexes", "active_by_creation", "party_purged", "courier_names", "orders_by_creation", "older_writers", "erased_at"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("schema_migrations = %v, want %v, each once", got, want)
	}
}

// TestOpen_RefusesANewerSchema: a file a later release migrated (schema_migrations records a
// version past this binary's last migration) is refused with both versions named, not written
// with a schema this binary does not know: rolling a deploy back onto it must be a decision.
func TestOpen_RefusesANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	if err := storetest.MustOpen(t, sqlite.New(path)).Close(); err != nil {
		t.Fatal(err)
	}
	var known int
	if err := rawDB(t, path).QueryRowContext(t.Context(), `SELECT max(version) FROM schema_migrations`).Scan(&known); err != nil {
		t.Fatal(err)
	}
	later := known + 1
	if _, err := rawDB(t, path).ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'later', 0)`, later); err != nil {
		t.Fatal(err)
	}
	s := sqlite.New(path)
	err := s.Open(t.Context())
	if err == nil {
		_ = s.Close()
		t.Fatal("opened a database at a later schema version")
	}
	if want := fmt.Sprintf("schema version %d, newer than this binary's %d", later, known); !strings.Contains(err.Error(), want) || ordercast.ErrorCode(err) == ordercast.EUnavailable {
		t.Errorf("Open = %v (code %q), want an error saying %q, not %q", err, ordercast.ErrorCode(err), want, ordercast.EUnavailable)
	}
}

func TestOpen_WALMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	storetest.MustOpen(t, sqlite.New(path))

	// journal_mode=WAL is stored in the file, so a fresh connection without pragmas sees it.
	var mode string
	if err := rawDB(t, path).QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatalf("PRAGMA journal_mode: %v", err)
	}
	if got, want := strings.ToLower(mode), "wal"; got != want {
		t.Errorf("journal_mode = %q, want %q", got, want)
	}
}

// TestOpen_Synchronous: the store's Synchronous setting is what its write connections run
// with, FULL by default; a bad value stops Open before it makes the database's file.
func TestOpen_Synchronous(t *testing.T) {
	for _, tc := range []struct {
		setting string
		want    int
	}{{"", 2}, {"NORMAL", 1}, {"FULL", 2}, {"EXTRA", 3}} {
		s := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
		s.Synchronous = tc.setting
		storetest.MustOpen(t, s)
		got, err := sqlite.WriterSynchronous(s)
		if err != nil {
			t.Fatalf("PRAGMA synchronous: %v", err)
		}
		if got != tc.want {
			t.Errorf("Synchronous %q: the writer runs synchronous=%d, want %d", tc.setting, got, tc.want)
		}
	}
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	s.Synchronous = "OFF"
	if err := s.Open(t.Context()); err == nil {
		_ = s.Close()
		t.Error("Open accepted Synchronous OFF")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open refused its settings but left %s behind (stat: %v)", path, err)
	}
}

func TestOpen_BadPath(t *testing.T) {
	for _, path := range []string{"", filepath.Join(t.TempDir(), "what?.db"), filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		s := sqlite.New(path)
		if err := s.Open(t.Context()); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

// TestStore_Clock checks that the store takes its times from Now, at microsecond precision in
// UTC whatever the clock's zone, and that UpdatedAt follows each change while CreatedAt stays.
func TestStore_Clock(t *testing.T) {
	zone := time.FixedZone("UTC+9", 9*3600)
	clock := time.Date(2026, 11, 23, 19, 40, 0, 123456789, zone)
	s := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	s.Now = func() time.Time { return clock }
	storetest.MustOpen(t, s)
	ctx := t.Context()

	created := clock.UTC().Truncate(time.Microsecond)
	o, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: "ord-1"})
	if err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if !o.CreatedAt.Equal(created) || o.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v", o.CreatedAt, created)
	}

	clock = clock.Add(90 * time.Second)
	updated := clock.UTC().Truncate(time.Microsecond)
	o, ev, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "ord-1", Status: ordercast.StatusConfirmed})
	if err != nil {
		t.Fatalf("AppendStatus: %v", err)
	}
	if !o.UpdatedAt.Equal(updated) || !ev.At.Equal(updated) {
		t.Errorf("UpdatedAt = %v, event At = %v, want %v", o.UpdatedAt, ev.At, updated)
	}
	if !o.CreatedAt.Equal(created) {
		t.Errorf("CreatedAt = %v after a change, want %v", o.CreatedAt, created)
	}

	got, err := s.Order(ctx, "ord-1")
	if err != nil {
		t.Fatalf("Order: %v", err)
	}
	if got.UpdatedAt != o.UpdatedAt || got.CreatedAt != o.CreatedAt {
		t.Errorf("read back %v / %v, want %v / %v", got.CreatedAt, got.UpdatedAt, o.CreatedAt, o.UpdatedAt)
	}
}

func TestStore_FailedCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	storetest.FailedCommit(t, func(t *testing.T, pub ordercast.Publisher) ordercast.Store {
		s := sqlite.New(path)
		s.Publisher = pub
		return sqlite.Held{Store: storetest.MustOpen(t, s)}
	}, func(t *testing.T, id string, seq int64) {
		if _, err := rawDB(t, path).ExecContext(t.Context(),
			`INSERT INTO order_events (order_id, seq, status, at) VALUES (?, ?, 'confirmed', 0)`, id, seq); err != nil {
			t.Fatalf("plant event: %v", err)
		}
	})
}

// TestCheckpointer_BoundsWAL writes well past MaxWALSize with small checkpoint settings: the
// store's checkpoints, not SQLite's automatic one (off), must bring the WAL back under the bound
// once the writes stop (TestWriterBoundsTheWAL holds it there while they go on).
func TestCheckpointer_BoundsWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	s.Synchronous = "NORMAL" // only the checkpoints are under test
	s.CheckpointInterval = time.Millisecond
	s.CheckpointSize = 32 << 10
	s.MaxWALSize = 128 << 10
	warnings := &testutil.Buffer{}
	s.Logger = slog.New(slog.NewTextHandler(warnings, &slog.HandlerOptions{Level: slog.LevelWarn}))
	storetest.MustOpen(t, s)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 60 {
				id := fmt.Sprintf("g%d-%d", g, i)
				if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: id, Details: []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)}); err != nil {
					t.Error(err)
					return
				}
				for _, st := range []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusReady, ordercast.StatusDelivered} {
					if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: id, Status: st}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()

	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < s.MaxWALSize {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAL is %d bytes, want under %d", fi.Size(), s.MaxWALSize)
		}
		runtime.Gosched()
	}
	db, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if db.Size() < 2*s.MaxWALSize {
		t.Errorf("database is %d bytes: too little written to test the bound", db.Size())
	}
	if w := otherWarnings(warnings); w != "" {
		t.Errorf("warnings: %s", w)
	}
}

// TestOpen_AMigrationTheDatabaseRefusesIsErrRefused: a file that already holds a table of a
// migration's name (another application's) refuses the migration; the error says which, and is
// migrations.ErrRefused, on which the node exits without its unit starting it again.
func TestOpen_AMigrationTheDatabaseRefusesIsErrRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	if _, err := rawDB(t, path).ExecContext(t.Context(), `CREATE TABLE orders (sku text)`); err != nil {
		t.Fatal(err)
	}
	s := sqlite.New(path)
	err := s.Open(t.Context())
	if err == nil {
		_ = s.Close()
		t.Fatal("migrated a file that holds another application's orders table")
	}
	if !errors.Is(err, migrations.ErrRefused) || !strings.Contains(err.Error(), "migration 001_orders") {
		t.Errorf("Open = %v; want migrations.ErrRefused naming migration 001_orders", err)
	}
}

// TestANewEmptyDatabaseIsSaidAloud: a node that starts on a file with no schema (a path mistyped
// in a restore, a volume not mounted) makes a new database and is ready and healthy, with every
// order lost: it says so, as a warning naming the file. A database it made before is opened
// without a word.
func TestANewEmptyDatabaseIsSaidAloud(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	for _, want := range []bool{true, false} {
		var logs testutil.Buffer
		s := sqlite.New(path)
		s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		storetest.MustOpen(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		said := strings.Contains(logs.String(), `level=WARN msg="sqlite: started on a new, empty database`) && strings.Contains(logs.String(), "path="+path)
		if said != want {
			t.Errorf("opened for the first time %v: warned of an empty database %v:\n%s", want, said, logs.String())
		}
	}
}
