package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// What one node leaves behind must not hold the others: a transaction stranded by a node that
// went silent, a purge of expired keys another node is running.

// TestANodeSilentMidTransactionLetsItsLocksGo: node a goes silent (its host dead, its route
// dropped: nothing closes) between writing a change and committing it, holding the order's row
// lock and its restaurant's log head. PostgreSQL ends a's session after the pool's
// idle_in_transaction_session_timeout, so node b's change to the same order commits, rather
// than every b batch touching the order or the restaurant waiting out its BatchTimeout and
// failing, for as long as TCP takes to give up on a (hours).
func TestANodeSilentMidTransactionLetsItsLocksGo(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	relay := pgtest.NewRelay(t, url)
	a := postgres.New(relay.URL())
	a.IdleInTransactionTimeout, a.BatchTimeout = 300*time.Millisecond, time.Second
	a = storetest.MustOpen(t, a)
	b := postgres.New(url)
	b.BatchTimeout = 5 * time.Second
	b = storetest.MustOpen(t, b)
	ctx := context.WithoutCancel(t.Context())
	if _, _, err := b.CreateOrder(ctx, ordercast.NewOrder{ID: "x", RestaurantID: "luigis"}); err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	postgres.HoldBeforeCommit(a, func(ordercast.Event) {
		relay.Freeze() // a's COMMIT never reaches the database
		close(held)
	})
	t.Cleanup(relay.Thaw)
	aDone := make(chan error, 1)
	go func() {
		_, _, _, err := a.AppendStatus(ctx, ordercast.StatusChange{OrderID: "x", Status: ordercast.StatusConfirmed})
		aDone <- err
	}()
	<-held
	o, _, _, err := b.AppendStatus(ctx, ordercast.StatusChange{OrderID: "x", Status: ordercast.StatusCancelled})
	if err != nil || o.Version != 2 {
		t.Fatalf("b's change while a is silent mid-transaction: version %d, err %v; want version 2, committed once PostgreSQL ends a's session", o.Version, err)
	}
	if err := <-aDone; ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Errorf("a's change, its session ended before it committed: %v; want %s", err, ordercast.EUnavailable)
	}
}

// TestTheKeyPurgeReadsItsIndex: the purge of expired idempotency records that runs with every
// batch that records answers searches the expiry index, as the table holds a day of keys
// (millions of rows) and the purge runs under the batch's locks. Sequential scans are priced out
// of the planner's reach, so a table this small shows whether the index can serve it at all.
func TestTheKeyPurgeReadsItsIndex(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	storetest.MustOpen(t, postgres.New(url))
	conn := pgtest.Connect(t, url)
	ctx := t.Context()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	if text := planOf(t, conn, postgres.PurgeExpiredKeys, 16); !strings.Contains(text, "idempotency_keys_expiry") || strings.Contains(text, "Seq Scan") {
		t.Errorf("the purge's plan:\n%s\nwant the idempotency_keys_expiry index searched, no table scanned", text)
	}
}

// TestKeyPurgesOfTwoNodesDoNotWaitOnEachOther: two nodes' batches that both purge expired keys
// take different ones, or none: a batch that waited on the records another's purge holds would
// wait for that batch's commit, with its own orders' locks held.
func TestKeyPurgesOfTwoNodesDoNotWaitOnEachOther(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	storetest.MustOpen(t, postgres.New(url))
	ctx := t.Context()
	first, second := pgtest.Connect(t, url), pgtest.Connect(t, url)
	if _, err := first.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, expires_at)
		VALUES ('s', 'k', 'f', 201, '{}', now() - interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	tx, err := first.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if tag, err := tx.Exec(ctx, postgres.PurgeExpiredKeys, 16); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("the first purge: %v, %v; want the expired record deleted", tag, err)
	}
	// The first purge's batch has not committed: the second must not wait for it.
	if _, err := second.Exec(ctx, `SET lock_timeout = '5s'`); err != nil {
		t.Fatal(err)
	}
	if tag, err := second.Exec(ctx, postgres.PurgeExpiredKeys, 16); err != nil || tag.RowsAffected() != 0 {
		t.Errorf("a second purge beside it: %v, %v; want none deleted, at once", tag, err)
	}
}

// TestAListenerStartingWhileTheDatabaseIsAwayIsUnavailable: a node whose store opened but whose
// listener cannot connect (the database restarting, its connections all taken, in between) waits
// for the database as it would at the store's Open, rather than exiting at once.
func TestAListenerStartingWhileTheDatabaseIsAwayIsUnavailable(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	relay := pgtest.NewRelay(t, url)
	s := storetest.MustOpen(t, postgres.New(url))
	relay.Cut()
	l := postgres.NewListener(relay.URL(), s, hub.NewFeed(hub.New(), s))
	err := l.Open(t.Context())
	if err == nil {
		_ = l.Close()
	}
	if ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Errorf("the listener's Open with the database away: %v; want %s", err, ordercast.EUnavailable)
	}
}

// TestABatchThatWritesNothingDoesNotCommit: a batch of refusals alone rolls its transaction
// back: a COMMIT of nothing, lost with its connection, would leave its outcome unknown and turn
// definite refusals into 503s.
func TestABatchThatWritesNothingDoesNotCommit(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	a := storetest.MustOpen(t, postgres.New(url))
	ctx := t.Context()
	if _, _, err := a.CreateOrder(ctx, ordercast.NewOrder{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, url)
	rollbacks := func() (n int64) {
		if err := conn.QueryRow(ctx, `SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, _, _, err := a.AppendStatus(ctx, ordercast.StatusChange{OrderID: "x", Status: ordercast.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	before := rollbacks()
	b := storetest.MustOpen(t, postgres.New(url)) // knows no order: its batch reads x under lock
	if _, _, _, err := b.AppendStatus(ctx, ordercast.StatusChange{OrderID: "x", Status: ordercast.StatusConfirmed}); ordercast.ErrorCode(err) != ordercast.EInvalidTransition {
		t.Fatalf("cancelled to confirmed: %v; want %s", err, ordercast.EInvalidTransition)
	}
	// Backends report their counts within PostgreSQL's stats interval.
	testutil.WaitForWithin(t, 30*time.Second, "the refused batch's transaction counted as rolled back", func() bool {
		if _, err := conn.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		return rollbacks() > before
	})
}
