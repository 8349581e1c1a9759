package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

func TestPurgeLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purge.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storetest.PurgeLeavesNothing(t, s, func(table string) int {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return n
	})
}
