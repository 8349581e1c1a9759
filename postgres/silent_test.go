package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
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
	// Long enough for the first write to open its connection on a machine busy with the race
	// detector and every package's tests (at 300 ms one did not, in CI), short for a test.
	s.BatchTimeout = time.Second
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
	// answer was lost has an unknown outcome. Cancelling applies whichever did. The first write
	// may dial anew, longer than this short BatchTimeout on a machine busy with the race
	// detector and every package's tests (as the reads of TestSilentDatabaseReadsAreUnavailable
	// did): it must commit within a few tries, a repeat of a commit being a no-op.
	p.Thaw()
	testutil.WaitFor(t, "a write to commit once the database answers again", func() bool {
		_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusCancelled})
		if err != nil {
			t.Logf("a write once the database answers again: %v", err)
		}
		return err == nil
	})
}

// TestSilentDatabaseIsAnsweredInASecond: every read and write of a database that stopped
// answering waited its whole bound (10 s by default) for the same 503, the node knowing all
// along that the database was silent. Once one has waited out its bound and none has been
// answered since, the others wait NotAnsweringTimeout, but for one at a time, which waits its
// whole bound so that a database that is only slow is found answering; an answer takes the
// short wait off.
func TestSilentDatabaseIsAnsweredInASecond(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	relay := pgtest.NewRelay(t, db)
	s := postgres.New(relay.URL())
	// The whole bound long enough that the one given it is still out when the others, started
	// with it, have waited their short one, on a machine busy with every package's tests.
	s.ReadTimeout, s.BatchTimeout, s.NotAnsweringTimeout = 5*time.Second, 5*time.Second, 100*time.Millisecond
	s = storetest.MustOpen(t, s)
	create(t, s, "a")
	relay.Freeze()
	t.Cleanup(relay.Thaw) // before the store closes: it waits for what the relay holds
	if _, err := s.Order(t.Context(), "a"); ordercast.ErrorCode(err) != ordercast.EUnavailable || !strings.Contains(err.Error(), "no answer in 5s") {
		t.Fatalf("the first read of a silent database: %v, want unavailable after its whole bound", err)
	}
	if !postgres.Leashed(s) {
		t.Fatal("a read ran out of its bound, and the store does not know the database is silent")
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errs := make(chan error, 4)
	for range 3 {
		go func() {
			_, err := s.Order(ctx, "a")
			errs <- err
		}()
	}
	go func() {
		_, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed})
		errs <- err
	}()
	for range 3 {
		if err := <-errs; ordercast.ErrorCode(err) != ordercast.EUnavailable || !strings.Contains(err.Error(), "no answer in 100ms") {
			t.Errorf("a request while the database is silent: %v, want unavailable after NotAnsweringTimeout", err)
		}
	}
	// The one given the whole bound: a read gives up with its caller, a write waits for its
	// batch.
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) && !strings.Contains(fmt.Sprint(err), "no answer in 5s") {
		t.Errorf("the request given the whole bound: %v, want it cancelled or unavailable after 5s", err)
	}

	relay.Thaw()
	testutil.WaitFor(t, "a read once the database answers again", func() bool {
		_, err := s.Order(t.Context(), "a")
		return err == nil
	})
	if postgres.Leashed(s) {
		t.Error("the database answered, and the store still shortens its waits")
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
	n := newNode(t, p.URL(), db, func(_ *postgres.Store, l *postgres.Listener) { l.HealthInterval = 200 * time.Millisecond })
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

	postgres.FailAttempts(s, func(_ context.Context, n int) error {
		if n == 1 {
			return deadlock
		}
		return nil
	})
	if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed}); err != nil {
		t.Fatalf("a batch that lost its first race: %v, want it committed on the next attempt", err)
	}
	postgres.FailAttempts(s, func(context.Context, int) error { return deadlock })
	_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusPreparing})
	if ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Fatalf("a batch that lost every race: %v (code %q), want unavailable", err, ordercast.ErrorCode(err))
	}
	postgres.FailAttempts(s, nil)
	if o, err := s.Order(t.Context(), "a"); err != nil || o.Status != ordercast.StatusConfirmed {
		t.Fatalf("order a is %+v, %v; want it confirmed and no further", o, err)
	}
}

// TestBatchTimeoutBoundsTheWholeBatch: a batch tried again after a lost race waits for the
// database only as long as its first attempt left of BatchTimeout, so its writes are answered
// within it (under the HTTP write timeout), not after a full BatchTimeout per attempt. Before,
// each attempt had its own.
func TestBatchTimeoutBoundsTheWholeBatch(t *testing.T) {
	t.Parallel()
	s := postgres.New(pgtest.NewDatabase(t))
	s.BatchTimeout = 2 * time.Second
	storetest.MustOpen(t, s)
	create(t, s, "a")
	deadlock := &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}

	var deadlines []time.Time
	postgres.FailAttempts(s, func(ctx context.Context, n int) error {
		d, _ := ctx.Deadline()
		deadlines = append(deadlines, d)
		if n == 1 {
			return deadlock
		}
		return nil
	})
	if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed}); err != nil {
		t.Fatalf("a batch that lost its first race: %v, want it committed on the next attempt", err)
	}
	if len(deadlines) != 2 || deadlines[1].After(deadlines[0]) {
		t.Fatalf("the attempts' deadlines: %v; want two, the second no later than the first", deadlines)
	}

	// An attempt that waits out the whole bound and then loses its race leaves nothing for
	// another: the batch is answered unavailable at once.
	attempts := 0
	postgres.FailAttempts(s, func(ctx context.Context, _ int) error {
		attempts++
		<-ctx.Done()
		return deadlock
	})
	_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusPreparing})
	if ordercast.ErrorCode(err) != ordercast.EUnavailable || attempts != 1 {
		t.Fatalf("a batch whose attempt used its whole bound: %v (code %q) after %d attempts; want unavailable after one",
			err, ordercast.ErrorCode(err), attempts)
	}
	postgres.FailAttempts(s, nil)
	if o, err := s.Order(t.Context(), "a"); err != nil || o.Status != ordercast.StatusConfirmed {
		t.Fatalf("order a is %+v, %v; want it confirmed and no further", o, err)
	}
}

// TestSilentDatabaseReadsAreUnavailable: every read of a database that stops answering without
// closing anything (a dead host, a dropped route: here a relay that stops forwarding) gives up
// after ReadTimeout with EUnavailable, as a write gives up after BatchTimeout, though its
// caller's context has no deadline (a request's has none). Before, each waited for as long as
// the outage lasted. Once the database answers, reads succeed.
func TestSilentDatabaseReadsAreUnavailable(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	relay := pgtest.NewRelay(t, db)
	s := postgres.New(relay.URL())
	// Long enough for the first write and reads to open their connections on a machine busy
	// with the race detector and every package's tests (at 300 ms the order's creation did not,
	// in CI), short for a test.
	s.ReadTimeout, s.BatchTimeout = time.Second, time.Second
	s = storetest.MustOpen(t, s)
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "a", RestaurantID: "r-1"}); err != nil {
		t.Fatal(err)
	}
	r1 := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}
	positions := postgres.NewLocationBus(s)
	reads := map[string]func(context.Context) error{
		"Order": func(ctx context.Context) error { _, err := s.Order(ctx, "a"); return err },
		"EventsAfter": func(ctx context.Context) error {
			_, err := s.EventsAfter(ctx, "a", 0, 0)
			return err
		},
		"LatestEvents": func(ctx context.Context) error {
			_, err := s.LatestEvents(ctx, []string{"a"})
			return err
		},
		"ActiveOrders": func(ctx context.Context) error { _, err := s.ActiveOrders(ctx, 10); return err },
		"ScopeSnapshot": func(ctx context.Context) error {
			_, err := s.ScopeSnapshot(ctx, r1, 10)
			return err
		},
		"ScopeEventsAfter": func(ctx context.Context) error {
			_, err := s.ScopeEventsAfter(ctx, r1, 0, 10)
			return err
		},
		"CouriersOrders": func(ctx context.Context) error {
			_, err := s.CouriersOrders(ctx, []string{"c-1"})
			return err
		},
		"IdempotentAnswer": func(ctx context.Context) error {
			_, err := s.IdempotentAnswer(ctx, "scope", "key", time.Now())
			if ordercast.ErrorCode(err) == ordercast.ENotFound {
				return nil
			}
			return err
		},
		"LocationBus.Latest": func(ctx context.Context) error {
			_, err := positions.Latest(ctx, []string{"a"})
			return err
		},
		"Ping": s.Ping,
	}
	for name, read := range reads {
		if err := read(t.Context()); err != nil {
			t.Fatalf("%s before the database went silent: %v", name, err)
		}
	}

	relay.Freeze()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(reads))
	for name, read := range reads {
		go func() { results <- result{name, read(context.Background())} }()
	}
	deadline := time.After(10 * time.Second)
	for range reads {
		select {
		case r := <-results:
			wantUnavailable(t, r.name+" of a silent database", r.err, "not answering")
		case <-deadline:
			relay.Thaw() // so that the store can close
			t.Fatal("reads of a silent database still wait after 10 s")
		}
	}
	relay.Thaw()
	// The reads that gave up left their connections to be closed: the first read after the thaw
	// may dial anew, which can take more than a ReadTimeout this short on a machine busy with
	// the race detector and every other package's tests. Each read must succeed within a few
	// tries.
	for name, read := range reads {
		var err error
		testutil.WaitFor(t, name+" to succeed once the database answers again", func() bool {
			if err = read(t.Context()); err != nil {
				t.Logf("%s once the database answers again: %v", name, err)
			}
			return err == nil
		})
	}
}

// TestSilentDatabaseFailsPingsAsOneOutage: a ping that gets no answer before its caller's deadline
// (readiness gives it 2 s, less than ReadTimeout) found the database silent, the same outage
// a read past ReadTimeout finds: each such ping is unavailable, "not answering", and the outage
// is logged once when it starts and once when it ends. Before, each ping failed with the bare
// deadline, which /readyz logged as a warning on every poll of the outage.
func TestSilentDatabaseFailsPingsAsOneOutage(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	relay := pgtest.NewRelay(t, db)
	var logs testutil.Buffer
	s := postgres.New(relay.URL())
	s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s = storetest.MustOpen(t, s) // ReadTimeout is the default, 10 s
	t.Cleanup(relay.Thaw)        // before the store closes: it waits for what the relay holds
	ping := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		return s.Ping(ctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("a ping before the database went silent: %v", err)
	}
	relay.Freeze()
	for i := range 3 {
		wantUnavailable(t, fmt.Sprintf("ping %d of a silent database", i), ping(), "not answering")
	}
	if n := logs.Count("database unavailable"); n != 1 {
		t.Errorf("the outage was logged as starting %d times, want once:\n%s", n, logs.String())
	}
	relay.Thaw()
	testutil.WaitFor(t, "a ping once the database answers", func() bool { return ping() == nil })
	if got, n := s.Unavailable(), logs.Count("database available again"); got != "" || n != 1 {
		t.Errorf("after the outage: Unavailable() = %q, its end logged %d times, want \"\" and once:\n%s", got, n, logs.String())
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Ping(cancelled); ordercast.ErrorCode(err) == ordercast.EUnavailable {
		t.Errorf("a ping whose caller gave up: %v, want no word on the database", err)
	}
}

// TestASilentServerFailsTheConnectionsWithinTheirBound: a server that takes a connection and
// never answers on it (hung, or stuck on its disk before it authenticates) fails the store's
// first connection, and the listener's, after ConnectTimeout with EUnavailable, "not answering",
// which a starting node waits out and tries again. Without a bound, each sat until the server's
// authentication_timeout (a minute), or here for ever.
func TestASilentServerFailsTheConnectionsWithinTheirBound(t *testing.T) {
	t.Parallel()
	silent := pgtest.NewSilentServer(t)
	s := postgres.New(silent)
	s.ConnectTimeout = 200 * time.Millisecond
	for _, tc := range []struct {
		what string
		open func(context.Context) error
	}{
		{"the store's Open", s.Open},
		{"the listener's Open", func(ctx context.Context) error {
			l := postgres.NewListener(silent, s, hub.NewFeed(hub.New(), s))
			err := l.Open(ctx)
			return errors.Join(err, l.Close())
		}},
	} {
		// Far past the bound: without it, the open fails on this deadline, not with the
		// outage, rather than hang the test.
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := tc.open(ctx)
		if ctx.Err() != nil {
			t.Errorf("%s on a silent server still waiting after 20 s: %v", tc.what, err)
		}
		cancel()
		wantUnavailable(t, tc.what+" on a silent server", err, "not answering")
	}
}
