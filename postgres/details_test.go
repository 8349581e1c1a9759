package postgres_test

import (
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/postgres"
)

// TestMigration003_KeepsExistingOrders: orders written while details were jsonb still read after
// the column becomes text: their details as jsonb rendered them, and one whose rendering exceeds
// the size limit (a number spelled out in 131 KB) is served as {} instead of making every read huge.
func TestMigration003_KeepsExistingOrders(t *testing.T) {
	db := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(db))
	conn := pgtest.Connect(t, db)
	ctx := t.Context()
	// Back to the schema before 003, with two orders written by it.
	for _, q := range []string{
		`ALTER TABLE orders ALTER COLUMN details TYPE jsonb USING details::jsonb`,
		`DELETE FROM schema_migrations WHERE version = 3`,
		`INSERT INTO orders VALUES ('old-1', 'placed', 1, '{"b": 1, "a": 1e2}'::jsonb, now(), now())`,
		`INSERT INTO orders VALUES ('old-2', 'placed', 1, '{"n": 1e131000}'::jsonb, now(), now())`,
		`INSERT INTO order_events (order_id, seq, status, at) VALUES ('old-1', 1, 'placed', now()), ('old-2', 1, 'placed', now())`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = storetest.MustOpen(t, postgres.New(db))
	for id, want := range map[string]string{"old-1": `{"a": 100, "b": 1}`, "old-2": `{}`} {
		o, err := s.Order(ctx, id)
		if err != nil || string(o.Details) != want {
			t.Errorf("order %s after migration 003: details %s, %v; want %s", id, o.Details, err, want)
		}
	}
	if _, created, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: "old-1", Details: []byte(`{"a":100,"b":1}`)}); err != nil || created {
		t.Errorf("repeat create of an old order: created %v, %v", created, err)
	}
}
