package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/sqlite"
)

// TestAStoreWhoseFileIsGoneTakesNoWrite: SQLite goes on writing to the files it has open, so a
// database deleted under the running store (rm ordercast.db*), replaced (a backup moved over
// it) or left without its WAL acknowledged every later write, pushed it to watchers and lost
// it at the next restart. The store now refuses writes, unavailable ("moved"), and its Ping
// fails, so the node leaves the balancer until it is restarted.
func TestAStoreWhoseFileIsGoneTakesNoWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"database and WAL deleted", func(t *testing.T, path string) {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if err := os.Remove(path + suffix); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"WAL deleted", func(t *testing.T, path string) {
			if err := os.Remove(path + "-wal"); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by another file", func(t *testing.T, path string) {
			other := filepath.Join(filepath.Dir(path), "backup.db")
			if err := os.WriteFile(other, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ordercast.db")
			s := sqlite.New(path)
			if err := s.Open(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "before", RestaurantID: "r-1"}); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path)
			if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "after", RestaurantID: "r-1"}); ordercast.ErrorCode(err) != ordercast.EUnavailable {
				t.Errorf("a create after the file went: %v, want unavailable", err)
			}
			if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "before", Status: ordercast.StatusConfirmed}); ordercast.ErrorCode(err) != ordercast.EUnavailable {
				t.Errorf("a status change after the file went: %v, want unavailable", err)
			}
			if err := s.Ping(t.Context()); ordercast.ErrorCode(err) != ordercast.EUnavailable {
				t.Errorf("Ping after the file went: %v, want unavailable", err)
			}
			if got := s.Unavailable(); got != "moved" {
				t.Errorf("unavailable because %q, want moved", got)
			}
		})
	}
}

// TestACorruptDatabaseIsUnavailable: pages of the file damaged under it (a disk, a copy taken
// mid-write) made every read and write a 500 while /readyz stayed green; they are unavailable
// now, "corrupt", so the node leaves the balancer and the log says why.
func TestACorruptDatabaseIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	details := []byte(`{"items":"` + strings.Repeat("x", 1000) + `"}`)
	for i := range 300 {
		if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprint("o-", i), RestaurantID: "r-1", Details: details}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	schema := schemaPages(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for page := 4096; page+4096 < len(b); page += 4096 { // every page but the header's and the schema's
		if schema[page/4096+1] {
			continue
		}
		for i := page + 100; i < page+200; i++ {
			b[i] = 0xff
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = sqlite.New(path)
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Order(t.Context(), "o-150"); ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Errorf("a read of a damaged page: %v, want unavailable", err)
	}
	if got := s.Unavailable(); got != "corrupt" {
		t.Errorf("unavailable because %q, want corrupt", got)
	}
	// The readiness probe reads no data page and would pass, and a write to sound pages too:
	// the node stays unready until the file is repaired and it restarts.
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "new", RestaurantID: "r-1"}); err != nil && ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Fatalf("a create: %v", err)
	}
	if err := s.Ping(t.Context()); ordercast.ErrorCode(err) != ordercast.EUnavailable || s.Unavailable() != "corrupt" {
		t.Errorf("Ping after the damage was found: %v (unavailable because %q), want unavailable, corrupt", err, s.Unavailable())
	}
}

// schemaPages returns the numbers of the pages (from 1) that hold the file's schema, which a
// damage that leaves the file openable spares.
func schemaPages(t *testing.T, path string) map[int]bool {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'`)
	if err != nil {
		t.Fatal(err)
	}
	pages := map[int]bool{}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		pages[n] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return pages
}
