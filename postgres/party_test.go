package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// TestPartyLogInterleavedCommits: two writers of one restaurant whose transactions overlap. The
// first takes its position in the restaurant's log and is held before it commits; the second,
// started after, would commit first with a later id if ids came from a sequence, and a reader
// between the two commits would then see the later id without the earlier one, so a cursor
// "after the later id" would skip the earlier event for good. Here the second writer waits on the
// party's lock until the first commits, a reader in between sees neither, and the log after the
// reader's position holds both, in commit order, at consecutive positions. A writer of another
// restaurant does not wait.
func TestPartyLogInterleavedCommits(t *testing.T) {
	url := pgtest.NewDatabase(t)
	// Three stores on one database, as three nodes of a cluster: each has its own writer, so
	// their batches are concurrent transactions.
	st := storetest.MustOpen(t, postgres.New(url))
	other := storetest.MustOpen(t, postgres.New(url))
	third := storetest.MustOpen(t, postgres.New(url))
	ctx := t.Context()
	for _, n := range []ordercast.NewOrder{
		{ID: "a", RestaurantID: "r-1", CustomerID: "u-1"},
		{ID: "b", RestaurantID: "r-1", CustomerID: "u-2"},
		{ID: "x", RestaurantID: "r-2"},
	} {
		if _, _, err := st.CreateOrder(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	r1 := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}

	held, release := make(chan ordercast.Event, 1), make(chan struct{})
	postgres.HoldBeforeCommit(st, func(ev ordercast.Event) {
		if ev.OrderID == "a" { // only the first writer is held
			held <- ev
			<-release
		}
	})
	type result struct {
		ev  ordercast.Event
		err error
		at  time.Time
	}
	write := func(st *postgres.Store, id string, to ordercast.Status) <-chan result {
		out := make(chan result, 1)
		go func() {
			_, ev, _, err := st.AppendStatus(context.WithoutCancel(ctx), ordercast.StatusChange{OrderID: id, Status: to})
			out <- result{ev, err, time.Now()}
		}()
		return out
	}

	first := write(st, "a", ordercast.StatusConfirmed)
	evA := <-held // a has its position and has not committed
	if got := evA.Marks.Pos(r1.Key()); got != 3 {
		t.Fatalf("a's position in r-1's log = %d, want 3", got)
	}
	second := write(other, "b", ordercast.StatusConfirmed)
	waitForLockWait(t, url)

	// Another restaurant's writer is not held up by r-1's lock.
	if r := <-write(third, "x", ordercast.StatusConfirmed); r.err != nil {
		t.Fatalf("writer of r-2: %v", r.err)
	}
	// A reader between the two commits sees neither: no position it could hand out as a cursor
	// lies past an uncommitted event.
	snap, err := st.ScopeSnapshot(ctx, r1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Pos != 2 {
		t.Fatalf("reader while a is uncommitted: position %d, want 2", snap.Pos)
	}
	if evs, err := st.ScopeEventsAfter(ctx, r1, snap.Pos, 0); err != nil || len(evs) != 0 {
		t.Fatalf("log after %d while a is uncommitted = %+v, %v; want nothing", snap.Pos, evs, err)
	}
	select {
	case r := <-second:
		t.Fatalf("b committed (%v) while a, which took its position first, had not", r.err)
	default:
	}

	releasedAt := time.Now()
	close(release)
	ra, rb := <-first, <-second
	if ra.err != nil || rb.err != nil {
		t.Fatalf("writers: %v, %v", ra.err, rb.err)
	}
	if rb.at.Before(releasedAt) {
		t.Fatal("b returned before a was let commit")
	}
	if got := rb.ev.Marks.Pos(r1.Key()); got != 4 {
		t.Errorf("b's position = %d, want 4 (after a's)", got)
	}
	evs, err := st.ScopeEventsAfter(ctx, r1, snap.Pos, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, ev := range evs {
		got += fmt.Sprintf("%s/%d@%d ", ev.OrderID, ev.Seq, ev.Pos)
	}
	if want := "a/2@3 b/2@4 "; got != want {
		t.Errorf("log of r-1 after the reader's position = %q, want %q: both events, in commit order, once", got, want)
	}
}

// waitForLockWait waits until a session of the database at url waits on a lock.
func waitForLockWait(t *testing.T, url string) {
	t.Helper()
	conn := pgtest.Connect(t, url)
	testutil.WaitFor(t, "a writer to wait on another's lock", func() bool {
		var n int
		if err := conn.QueryRow(t.Context(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
}
