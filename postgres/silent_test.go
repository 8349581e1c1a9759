package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// TestSilentDatabaseIsUnavailable: a database that stops answering without closing anything
// fails the batch in progress with EUnavailable after BatchTimeout, whatever its callers'
// contexts (a write that joined a batch waits for its outcome), and the writes queued behind
// it are not held either; once the database answers again, writes commit.
func TestSilentDatabaseIsUnavailable(t *testing.T) {
	db := pgtest.NewDatabase(t)
	p := pgtest.NewRelay(t, db)
	s := postgres.New(p.URL())
	s.BatchTimeout = 300 * time.Millisecond
	s = storetest.MustOpen(t, s)
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.Freeze()
	errs := make(chan error, 2)
	for _, to := range []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusPreparing} {
		go func() {
			_, _, _, err := s.AppendStatus(context.Background(), ordercast.StatusChange{OrderID: "a", Status: to})
			errs <- err
		}()
	}
	for range 2 {
		select {
		case err := <-errs:
			if ordercast.ErrorCode(err) != ordercast.EUnavailable {
				t.Errorf("a write to a silent database: %v (code %q), want unavailable", err, ordercast.ErrorCode(err))
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a write to a silent database still waits after 20 s")
		}
	}
	if got := s.Unavailable(); got != "not answering" {
		t.Errorf("Unavailable() = %q, want not answering", got)
	}
	// What the frozen connections held reaches the database now, and may commit: a write whose
	// answer was lost has an unknown outcome. Cancelling applies whichever did.
	p.Thaw()
	if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusCancelled}); err != nil {
		t.Fatalf("a write once the database answers again: %v", err)
	}
}

// TestListenerReadOfASilentDatabaseIsBounded: an event too large to announce is read from the
// store; a store gone silent makes that read give up after the health interval, so the
// listener reports itself not ready and reconnects, instead of waiting for as long as TCP takes
// (minutes) looking ready. Once the database answers, the event arrives.
func TestListenerReadOfASilentDatabaseIsBounded(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	p := pgtest.NewRelay(t, db)
	// The node's store reads through the proxy; its LISTEN connection and the writer do not.
	n := newNode(t, p.URL(), db, nil)
	writer := postgres.New(db)
	writer.MaxNotifyPayload = postgres.MinNotifyPayload // a long note: announced by order id and seq only
	writer = storetest.MustOpen(t, writer)
	create(t, writer, "a")
	collect(t, n.all, is("a", 1))
	watched := n.hub.Subscribe("a")
	t.Cleanup(watched.Close)

	p.Freeze()
	ev := moveNoted(t, writer, "a", ordercast.StatusConfirmed, longNote)
	testutil.WaitFor(t, "the listener to give up its read and reconnect", func() bool { return n.l.Ready(t.Context()) != nil })
	p.Thaw()
	equalEvents(t, "the event once the database answers", collect(t, watched, is("a", ev.Seq)), []ordercast.Event{ev})
}

// TestBatchThatKeepsLosingRacesIsUnavailable: a batch that loses a race with other nodes (a
// deadlock, an order or key created at the same moment) is tried again; one that loses on every
// attempt is 503 unavailable (retry shortly), not a 500, and commits nothing.
func TestBatchThatKeepsLosingRacesIsUnavailable(t *testing.T) {
	t.Parallel()
	s := storetest.MustOpen(t, postgres.New(pgtest.NewDatabase(t)))
	create(t, s, "a")
	deadlock := &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}

	postgres.FailAttempts(s, func(n int) error {
		if n == 1 {
			return deadlock
		}
		return nil
	})
	if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed}); err != nil {
		t.Fatalf("a batch that lost its first race: %v, want it committed on the next attempt", err)
	}
	postgres.FailAttempts(s, func(int) error { return deadlock })
	_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusPreparing})
	if ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Fatalf("a batch that lost every race: %v (code %q), want unavailable", err, ordercast.ErrorCode(err))
	}
	postgres.FailAttempts(s, nil)
	if o, err := s.Order(t.Context(), "a"); err != nil || o.Status != ordercast.StatusConfirmed {
		t.Fatalf("order a is %+v, %v; want it confirmed and no further", o, err)
	}
}
