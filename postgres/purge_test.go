package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
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

// TestPurgeWhileAnotherNodeBuildsTheIndex: while one node builds the index of ended orders, the
// others' purges skip their turn at once instead of waiting for its lock: a node waiting for it
// holds a snapshot, which the build's last phase waits for, and PostgreSQL broke that deadlock by
// aborting one of them, over and over. Both nodes then purge.
func TestPurgeWhileAnotherNodeBuildsTheIndex(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := storetest.MustOpen(t, postgres.New(url))
	b := storetest.MustOpen(t, postgres.New(url))
	ctx := t.Context()
	if _, _, err := a.CreateOrder(ctx, ordercast.NewOrder{ID: "gone"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.AppendStatus(ctx, ordercast.StatusChange{OrderID: "gone", Status: ordercast.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	// A transaction that writes order_events holds A's CREATE INDEX CONCURRENTLY in its first
	// phase until it ends, so that B comes while A builds (a big table's build takes minutes).
	blocker := pgtest.Connect(t, url)
	if _, err := blocker.Exec(ctx, `BEGIN; LOCK TABLE order_events IN ROW EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	watch := pgtest.Connect(t, url)
	type result struct {
		n   int
		err error
	}
	doneA := make(chan result, 1)
	go func() {
		n, err := a.PurgeEnded(ctx, time.Now().Add(time.Hour), 10)
		doneA <- result{n, err}
	}()
	testutil.WaitFor(t, "A's index build waiting", func() bool {
		var n int
		err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	})
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a B that waits for A waits for ever
	n, err := b.PurgeEnded(bctx, time.Now().Add(time.Hour), 10)
	cancel()
	if n != 0 || err != nil {
		t.Errorf("B's purge while A builds: %d, %v; want 0, nil at once (its turn skipped)", n, err)
	}
	if _, err := blocker.Exec(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if r := <-doneA; r.n != 1 || r.err != nil {
		t.Errorf("A's purge: %d, %v; want 1 (the index built, then the order purged)", r.n, r.err)
	}
	var valid bool
	if err := watch.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname = 'order_events_ended'`).Scan(&valid); err != nil || !valid {
		t.Errorf("the index of ended orders: valid %v, %v; want built and valid", valid, err)
	}
	if n, err := b.PurgeEnded(ctx, time.Now().Add(time.Hour), 10); n != 0 || err != nil {
		t.Errorf("B's purge after A's: %d, %v; want 0 (nothing left), nil", n, err)
	}
}
