package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// node is one store, hub and listener on a database, as `ordercast serve` wires them.
type node struct {
	store *postgres.Store
	hub   *hub.Hub
	l     *postgres.Listener
	all   *hub.Subscription
}

func newNode(t *testing.T, dbURL, listenURL string, configure func(*postgres.Store, *postgres.Listener)) *node {
	t.Helper()
	n := &node{store: postgres.New(dbURL), hub: hub.New()}
	n.l = postgres.NewListener(listenURL, n.store, hub.NewFeed(n.hub, n.store))
	// Short, so that a silence is noticed within the tests' waits; not so short that a read the
	// listener makes (an event too large to announce, a catch-up), bounded by it, gives up on a
	// machine busy with the race detector and every package's tests: at 200 ms one did, and the
	// listener's reconnect told the watchers to re-read (TestListener_LargeEventByID failed so
	// in CI). The tests of a silent database shorten it themselves.
	n.l.HealthInterval = 2 * time.Second
	n.l.MinBackoff, n.l.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	if configure != nil {
		configure(n.store, n.l)
	}
	storetest.MustOpen(t, n.store)
	n.all = n.hub.SubscribeAll()
	t.Cleanup(n.all.Close)
	if err := n.l.Open(t.Context()); err != nil {
		t.Fatalf("Listener.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := n.l.Close(); err != nil {
			t.Errorf("Listener.Close: %v", err)
		}
	})
	return n
}

// collect waits until sub has received an event for which done is true, and returns everything
// it received up to then.
func collect(t *testing.T, sub *hub.Subscription, done func(ordercast.Event) bool) []ordercast.Event {
	t.Helper()
	var got []ordercast.Event
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-sub.Ready():
		case <-deadline:
			t.Fatalf("timed out; received %+v", got)
		}
		msgs, overflowed := sub.Take()
		if overflowed {
			t.Fatalf("mailbox overflowed")
		}
		for _, m := range msgs {
			got = append(got, m.Event)
			if done(m.Event) {
				return got
			}
		}
	}
}

// resynced drains sub until it reports an overflow (true) or 10 s pass (false).
func resynced(t *testing.T, sub *hub.Subscription) bool {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-sub.Ready():
			if _, overflowed := sub.Take(); overflowed {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func is(id string, seq int64) func(ordercast.Event) bool {
	return func(ev ordercast.Event) bool { return ev.OrderID == id && ev.Seq == seq }
}

func move(t *testing.T, s ordercast.Store, id string, to ordercast.Status) ordercast.Event {
	t.Helper()
	return moveNoted(t, s, id, to, "")
}

// longNote makes an event too large to announce whole in a payload of postgres.MinNotifyPayload:
// it is announced by order id and seq only, and a listener reads it from the store.
var longNote = strings.Repeat("n", ordercast.MaxNoteLength)

// moveNoted is move with a note.
func moveNoted(t *testing.T, s ordercast.Store, id string, to ordercast.Status, note string) ordercast.Event {
	t.Helper()
	_, ev, changed, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: id, Status: to, Note: note})
	if err != nil || !changed {
		t.Fatalf("AppendStatus(%s -> %s): changed=%v err=%v", id, to, changed, err)
	}
	return ev
}

func create(t *testing.T, s ordercast.Store, id string) {
	t.Helper()
	if _, created, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: id}); err != nil || !created {
		t.Fatalf("CreateOrder(%s): created=%v err=%v", id, created, err)
	}
}

func stored(t *testing.T, s ordercast.Store, ids ...string) []ordercast.Event {
	t.Helper()
	var out []ordercast.Event
	for _, id := range ids {
		evs, err := s.EventsAfter(t.Context(), id, 0, 0)
		if err != nil {
			t.Fatalf("EventsAfter(%s): %v", id, err)
		}
		out = append(out, evs...)
	}
	return out
}

func equalEvents(t *testing.T, what string, got, want []ordercast.Event) {
	t.Helper()
	eq := func(a, b ordercast.Event) bool {
		return a.OrderID == b.OrderID && a.Seq == b.Seq && a.Status == b.Status && a.At.Equal(b.At) &&
			a.Note == b.Note && a.Actor == b.Actor
	}
	if !slices.EqualFunc(got, want, eq) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// TestListener_AnnouncesCommittedOnly checks that every committed create and change reaches the
// hub of another node through NOTIFY, in commit order, and that rejected and no-op requests
// announce nothing.
func TestListener_AnnouncesCommittedOnly(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	writer := newNode(t, db, db, nil)
	reader := newNode(t, db, db, nil)
	s := writer.store

	create(t, s, "a")
	move(t, s, "a", ordercast.StatusConfirmed)
	create(t, s, "b")
	move(t, s, "a", ordercast.StatusPreparing)
	// None of these commits anything.
	_, _, _ = s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "a"})                                                 // idempotent repeat
	_, _, _ = s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "a", Note: "x", Details: []byte(`{"x":1}`)})          // conflict
	_, _, _, _ = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusPreparing}) // no-op
	_, _, _, _ = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusPlaced})    // backward
	_, _, _, _ = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "b", Status: ordercast.StatusReady, ExpectedVersion: 7})
	_, _, _, _ = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "nope", Status: ordercast.StatusReady})
	// A sentinel: notifications arrive in commit order, so anything announced by the requests
	// above would arrive before it.
	create(t, s, "sentinel")

	want := stored(t, s, "a", "b", "sentinel")
	slices.SortStableFunc(want, func(x, y ordercast.Event) int { return x.At.Compare(y.At) })
	for name, n := range map[string]*node{"writer": writer, "reader": reader} {
		got := collect(t, n.all, is("sentinel", 1))
		equalEvents(t, name+" received", got, want)
	}
}

// TestListener_LargeEventByID checks the fallback for events too large for NOTIFY: the payload
// carries only order id and seq, and the listener reads the event from the store.
func TestListener_LargeEventByID(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	n := newNode(t, db, db, func(s *postgres.Store, _ *postgres.Listener) {
		s.MaxNotifyPayload = postgres.MinNotifyPayload
	})
	create(t, n.store, "a")
	moveNoted(t, n.store, "a", ordercast.StatusConfirmed, longNote)
	got := collect(t, n.all, is("a", 2))
	equalEvents(t, "received", got, stored(t, n.store, "a"))
}

// TestListener_ReconnectCatchUp cuts the listener's connection and keeps it from reconnecting
// while changes commit, then lets it back: it must report not ready while down, and on return
// publish the latest event of every watched order and tell watchers of every order to re-read
// the state (the overflow signal).
func TestListener_ReconnectCatchUp(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	proxy := pgtest.NewRelay(t, db)
	n := newNode(t, db, proxy.URL(), nil)
	s := n.store
	create(t, s, "watched")
	create(t, s, "other")
	// Notices arrive in commit order: once other's creation is heard, watched's has been
	// published too, so a subscription made now cannot receive it. Subscribing before this wait
	// raced with that notice (issue 16: "got [seq1 seq3] want [seq3]").
	collect(t, n.all, is("other", 1))
	watched := n.hub.Subscribe("watched")
	t.Cleanup(watched.Close)
	if err := n.l.Ready(t.Context()); err != nil {
		t.Fatalf("Ready before the cut: %v", err)
	}

	proxy.Cut()
	testutil.WaitFor(t, "listener to notice the cut", func() bool { return n.l.Ready(t.Context()) != nil })
	move(t, s, "watched", ordercast.StatusConfirmed)
	latest := move(t, s, "watched", ordercast.StatusPreparing)
	other := move(t, s, "other", ordercast.StatusCancelled)
	if err := n.l.Ready(t.Context()); err == nil {
		t.Fatalf("Ready while the database is unreachable = nil, want an error")
	}

	proxy.Resume()
	got := collect(t, watched, is("watched", latest.Seq))
	equalEvents(t, "watched order after catch-up", got, []ordercast.Event{latest})
	testutil.WaitFor(t, "listener to be ready again", func() bool { return n.l.Ready(t.Context()) == nil })
	if got := n.l.Reconnects(); got != 1 {
		t.Errorf("Reconnects = %d, want 1", got)
	}
	if !resynced(t, n.all) {
		t.Errorf("watcher of every order was not told to re-read the state after the outage")
	}
	if o, err := s.Order(t.Context(), "other"); err != nil || o.Version != other.Seq {
		t.Fatalf("other = %+v, %v; want version %d for a resync to find", o, err, other.Seq)
	}

	// Live again: a new change arrives through NOTIFY.
	next := move(t, s, "watched", ordercast.StatusReady)
	equalEvents(t, "after reconnect", collect(t, watched, is("watched", next.Seq)), []ordercast.Event{next})
}

// TestListener_LetsGoOfASilentConnection: a LISTEN connection that goes silent without a reset
// (a NAT that dropped it, a host gone) is found out by the health query, which has a bound of
// its own: the node says it is not ready while it cannot listen, reconnects, and its watchers
// get what was committed meanwhile.
func TestListener_LetsGoOfASilentConnection(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	proxy := pgtest.NewRelay(t, db)
	n := newNode(t, db, proxy.URL(), func(_ *postgres.Store, l *postgres.Listener) {
		l.PingTimeout = 100 * time.Millisecond
	})
	s := n.store
	create(t, s, "quiet")
	collect(t, n.all, is("quiet", 1))
	watched := n.hub.Subscribe("quiet")
	t.Cleanup(watched.Close)

	proxy.Freeze()
	testutil.WaitFor(t, "listener to notice the silence", func() bool { return n.l.Ready(t.Context()) != nil })
	latest := move(t, s, "quiet", ordercast.StatusConfirmed)
	proxy.Thaw()
	equalEvents(t, "after the silence", collect(t, watched, is("quiet", latest.Seq)), []ordercast.Event{latest})
	testutil.WaitFor(t, "listener to be ready again", func() bool { return n.l.Ready(t.Context()) == nil })
	if got := n.l.Reconnects(); got < 1 {
		t.Errorf("Reconnects = %d, want the silent connection replaced", got)
	}
}

// TestListener_WarnsOfAnOutageOnce: while the database stays away, the listener's reconnects
// keep failing; the log says so once, not once a try (720 lines an hour at the 5 s backoff).
func TestListener_WarnsOfAnOutageOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	proxy := pgtest.NewRelay(t, db)
	var logs testutil.Buffer
	n := newNode(t, db, proxy.URL(), func(_ *postgres.Store, l *postgres.Listener) {
		l.MinBackoff, l.MaxBackoff = time.Millisecond, 4*time.Millisecond
		l.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	proxy.Cut()
	testutil.WaitFor(t, "ten reconnects refused", func() bool { return proxy.Refused() >= 10 })
	if got := strings.Count(logs.String(), "listener reconnect failed"); got != 1 {
		t.Errorf("%d warnings of failed reconnects in %d tries, want 1:\n%s", got, proxy.Refused(), logs.String())
	}
	proxy.Resume()
	testutil.WaitFor(t, "listener to be ready again", func() bool { return n.l.Ready(t.Context()) == nil })
}

// TestListener_OpenFailsFast checks that a listener that cannot connect at start says so.
func TestListener_OpenFailsFast(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(db))
	u, _ := url.Parse(db)
	u.Path = "/no_such_database_here"
	l := postgres.NewListener(u.String(), s, hub.NewFeed(hub.New(), s))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := l.Open(ctx); err == nil {
		_ = l.Close()
		t.Fatalf("Open on a missing database succeeded, want an error")
	}
}

// TestListener_AcceptsPoolParameters: the one URL a node is given carries the store's pool
// settings, which are not server parameters; the listener must not send them to the server.
func TestListener_AcceptsPoolParameters(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "3")
	u.RawQuery = q.Encode()
	s := storetest.MustOpen(t, postgres.New(u.String()))
	l := postgres.NewListener(u.String(), s, hub.NewFeed(hub.New(), s))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := l.Open(ctx); err != nil {
		t.Fatalf("Open with pool_max_conns in the URL: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestListener_BatchInCommitOrder commits one batch of changes to two orders whose notices do
// not fit in one payload: every node must receive every event once, in commit order.
func TestListener_BatchInCommitOrder(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	writer := newNode(t, db, db, func(s *postgres.Store, _ *postgres.Listener) {
		s.MaxNotifyPayload = postgres.MinNotifyPayload // with the notes below, two notices a payload
	})
	reader := newNode(t, db, db, nil)
	create(t, writer.store, "a")
	create(t, writer.store, "b")
	for _, n := range []*node{writer, reader} {
		collect(t, n.all, is("b", 1))
	}

	note := strings.Repeat("n", 180)
	changes := []ordercast.StatusChange{
		{OrderID: "a", Status: ordercast.StatusConfirmed, Note: note},
		{OrderID: "b", Status: ordercast.StatusConfirmed, Note: strings.Repeat("n", 440)}, // a payload of its own
		{OrderID: "a", Status: ordercast.StatusPreparing, Note: note},
		{OrderID: "b", Status: ordercast.StatusReady, Note: note},
		{OrderID: "a", Status: ordercast.StatusDelivered, Note: note},
		{OrderID: "b", Status: ordercast.StatusCancelled, Note: note},
	}
	want := make([]ordercast.Event, len(changes))
	held := postgres.Held{Store: writer.store}
	held.HoldWrites(len(changes))
	var wg sync.WaitGroup
	for i, c := range changes {
		wg.Go(func() {
			_, ev, _, err := writer.store.AppendStatus(t.Context(), c)
			if err != nil {
				t.Errorf("AppendStatus(%+v): %v", c, err)
			}
			want[i] = ev
		})
		held.WaitQueued(i + 1)
	}
	wg.Wait()
	for name, n := range map[string]*node{"writer": writer, "reader": reader} {
		equalEvents(t, name+" received", collect(t, n.all, is("b", 4)), want)
	}
}

// failingFeed fails its first catch-ups, as a store that is still unreachable would.
type failingFeed struct {
	ordercast.Feed
	fails, calls atomic.Int32
}

func (f *failingFeed) CatchUp(ctx context.Context) error {
	f.calls.Add(1)
	if f.fails.Add(-1) >= 0 {
		return errors.New("store unreachable")
	}
	return f.Feed.CatchUp(ctx)
}

// TestListener_RetriesFailedCatchUp: a catch-up that fails makes the listener drop the new
// connection and try again, staying not ready until one succeeds; only then is it reconnected.
func TestListener_RetriesFailedCatchUp(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	proxy := pgtest.NewRelay(t, db)
	feed := &failingFeed{}
	n := newNode(t, db, proxy.URL(), func(_ *postgres.Store, l *postgres.Listener) {
		feed.Feed = l.Feed
		l.Feed = feed
	})
	create(t, n.store, "a")
	collect(t, n.all, is("a", 1))
	watched := n.hub.Subscribe("a")
	t.Cleanup(watched.Close)

	feed.fails.Store(2)
	proxy.Cut()
	testutil.WaitFor(t, "listener to notice the cut", func() bool { return n.l.Ready(t.Context()) != nil })
	latest := move(t, n.store, "a", ordercast.StatusConfirmed)
	proxy.Resume()
	equalEvents(t, "after the third catch-up", collect(t, watched, is("a", latest.Seq)), []ordercast.Event{latest})
	testutil.WaitFor(t, "listener to be ready again", func() bool { return n.l.Ready(t.Context()) == nil })
	if got := feed.calls.Load(); got != 3 {
		t.Errorf("CatchUp called %d times, want 3 (two failures, then success)", got)
	}
	if got := n.l.Reconnects(); got != 1 {
		t.Errorf("Reconnects = %d, want 1 (a reconnect counts once it has caught up)", got)
	}
}

// TestListener_MalformedNoticeCatchesUp: a notice the listener cannot read announced events it
// cannot tell, perhaps an order's last (a broken payload, a node of another version). Skipped,
// its watchers never got them and their streams never ended; taken as a lost connection, it
// brings a catch-up from the store, which delivers them, and one warning.
func TestListener_MalformedNoticeCatchesUp(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	var logs testutil.Buffer
	n := newNode(t, db, db, func(_ *postgres.Store, l *postgres.Listener) {
		l.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	create(t, n.store, "a")
	collect(t, n.all, is("a", 1))
	watched := n.hub.Subscribe("a")
	t.Cleanup(watched.Close)

	// The order's final event commits with a notice no listener can read.
	admin := pgtest.Connect(t, db)
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE orders SET status = 'delivered', version = 2, updated_at = clock_timestamp() WHERE id = 'a'`,
		`INSERT INTO order_events (order_id, seq, status, at) VALUES ('a', 2, 'delivered', clock_timestamp())`,
		`SELECT pg_notify('` + postgres.Channel + `', 'not a notice')`,
	} {
		if _, err := tx.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := collect(t, watched, is("a", 2))
	if last := got[len(got)-1]; last.Status != ordercast.StatusDelivered {
		t.Errorf("the watcher's last event is %+v, want delivered", last)
	}
	testutil.WaitFor(t, "the listener to be ready again", func() bool { return n.l.Ready(t.Context()) == nil })
	if got := logs.Count("malformed notification"); got != 1 {
		t.Errorf("the malformed notice was logged %d times, want once:\n%s", got, logs.String())
	}
}
