package postgres_test

import (
	"testing"

	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/postgres"
)

// TestPurgeLeavesNothing also checks that the first purge built the index it reads, valid.
func TestPurgeLeavesNothing(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(url))
	conn := pgtest.Connect(t, url)
	storetest.PurgeLeavesNothing(t, s, func(table string) int {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return n
	})
	var valid bool
	if err := conn.QueryRow(t.Context(), `
		SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname = 'order_events_ended'`).Scan(&valid); err != nil || !valid {
		t.Errorf("the index of ended orders: valid %v, %v; want built and valid", valid, err)
	}
}
