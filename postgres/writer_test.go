package postgres_test

import (
	"context"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/postgres"
)

// TestLockedReadWaitsForAnotherNode: node b changes an order whose row node a holds locked, a's
// change written and not yet committed. b does not know the order, so its batch takes the
// locking path, whose read waits on a's lock; once a commits, b must judge its change against
// a's committed state. A read that locked and joined in one statement lost the order here: after
// the wait PostgreSQL re-checked the join against the new orders row but not the old event row,
// and b answered "not found" for an order that exists.
func TestLockedReadWaitsForAnotherNode(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	a := storetest.MustOpen(t, postgres.New(url))
	b := storetest.MustOpen(t, postgres.New(url))
	ctx := context.WithoutCancel(t.Context()) // the writers outlive a failed test's Fatal
	if _, _, err := a.CreateOrder(ctx, ordercast.NewOrder{ID: "x"}); err != nil {
		t.Fatal(err)
	}

	held, release := make(chan struct{}), make(chan struct{})
	postgres.HoldBeforeCommit(a, func(ordercast.Event) {
		close(held)
		<-release
	})
	aDone := make(chan error, 1)
	go func() {
		_, _, _, err := a.AppendStatus(ctx, ordercast.StatusChange{OrderID: "x", Status: ordercast.StatusConfirmed})
		aDone <- err
	}()
	<-held // a holds x's row lock, its change to version 2 written
	type result struct {
		o   ordercast.Order
		err error
	}
	bDone := make(chan result, 1)
	go func() {
		o, _, _, err := b.AppendStatus(ctx, ordercast.StatusChange{OrderID: "x", Status: ordercast.StatusPreparing})
		bDone <- result{o, err}
	}()
	waitForLockWait(t, url) // b's locking read waits on a's lock
	close(release)

	if err := <-aDone; err != nil {
		t.Fatalf("a's change: %v", err)
	}
	r := <-bDone
	if r.err != nil || r.o.Status != ordercast.StatusPreparing || r.o.Version != 3 {
		t.Fatalf("b's change after a committed: %s at version %d, err %v; want preparing at version 3",
			r.o.Status, r.o.Version, r.err)
	}
	wantPaths(t, "b", b, 0, 0, 1)
	if o, err := a.Order(ctx, "x"); err != nil || o.Status != ordercast.StatusPreparing || o.Version != 3 {
		t.Fatalf("x as stored: %s at version %d, err %v; want preparing at version 3", o.Status, o.Version, err)
	}
}
