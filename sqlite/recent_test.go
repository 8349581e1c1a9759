package sqlite

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/testutil"
)

// The orders the writer remembers (s.recent, internal/ordercache) answer a batch's reads in
// place of the load statement; these tests hold them to what the database says.

func openRecent(t *testing.T, path string, set ...func(*Store)) *Store {
	t.Helper()
	s := New(path)
	for _, f := range set {
		f(s)
	}
	if err := s.Open(t.Context()); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustAppend(t *testing.T, s *Store, c ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool) {
	t.Helper()
	o, ev, changed, err := s.AppendStatus(t.Context(), c)
	if err != nil {
		t.Fatalf("%s -> %s: %v", c.OrderID, c.Status, err)
	}
	return o, ev, changed
}

// TestRecentOrdersAreTheStoredOnes: after creations (with details, places and owners), status
// and courier changes, every remembered order and latest event is exactly what the load
// statement reads from the database.
func TestRecentOrdersAreTheStoredOnes(t *testing.T) {
	s := openRecent(t, filepath.Join(t.TempDir(), "ordercast.db"))
	ctx := t.Context()
	for _, n := range []ordercast.NewOrder{
		{ID: "plain"},
		{ID: "full", Details: []byte(`{"items": [1, 2.50, "x"]}`), Note: "first", Actor: "admin:a",
			RestaurantID: "r-1", CustomerID: "u-1",
			Pickup: &ordercast.Point{Lat: 52.52, Lng: 13.405}, Dropoff: &ordercast.Point{Lat: 52.5, Lng: 13.4}},
	} {
		if _, _, err := s.CreateOrder(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, s, ordercast.StatusChange{OrderID: "full", Status: ordercast.StatusConfirmed, Note: "ok", Actor: "restaurant:r-1"})
	if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: "full", CourierID: "c-1", Note: "go"}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, ordercast.StatusChange{OrderID: "plain", Status: ordercast.StatusConfirmed})

	// The writer goroutine is idle: nothing is queued, and every write above has been answered.
	if got := s.recent.Len(); got != 2 {
		t.Fatalf("%d orders remembered, want 2", got)
	}
	for _, id := range []string{"plain", "full"} {
		rememberedOrder, rememberedLatest, ok := s.recent.Get(id)
		if !ok {
			t.Fatalf("%s not remembered", id)
		}
		o, latest, err := scanLoaded(s.readers.QueryRowContext(ctx, loadQuery, id))
		if err != nil {
			t.Fatalf("load %s: %v", id, err)
		}
		if !reflect.DeepEqual(rememberedOrder, o) {
			t.Errorf("%s remembered as\n%+v\nstored as\n%+v", id, rememberedOrder, o)
		}
		if !reflect.DeepEqual(rememberedLatest, latest) {
			t.Errorf("%s latest event remembered as\n%+v\nstored as\n%+v", id, rememberedLatest, latest)
		}
	}

	// An order that ends is forgotten; a change to it reads it from the database, which refuses
	// the change.
	mustAppend(t, s, ordercast.StatusChange{OrderID: "plain", Status: ordercast.StatusCancelled})
	if _, _, ok := s.recent.Get("plain"); ok {
		t.Error("the cancelled order is still remembered")
	}
	if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "plain", Status: ordercast.StatusPreparing}); ordercast.ErrorCode(err) != ordercast.EInvalidTransition {
		t.Errorf("a change to the cancelled order: %v, want %s", err, ordercast.EInvalidTransition)
	}
}

// TestRecentOrdersForgetAFailedBatch: a batch whose COMMIT fails leaves the writer remembering
// nothing it did, so the next change is judged against the stored order (version 1, placed),
// not the rolled-back one, and is applied rather than answered as a repeat.
func TestRecentOrdersForgetAFailedBatch(t *testing.T) {
	s := openRecent(t, filepath.Join(t.TempDir(), "ordercast.db"))
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o"}); err != nil {
		t.Fatal(err)
	}
	// A COMMIT that fails when run, on the writer's connection. The writer is idle: queueing the
	// next write (under the group-commit mutex) publishes the swap to it, and its answer the
	// swap back.
	failing, err := s.conn.PrepareContext(t.Context(), `SELECT json('{')`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = failing.Close() })
	commit := s.stmts.commit
	s.stmts.commit = failing
	_, _, _, err = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusConfirmed})
	s.stmts.commit = commit
	if err == nil {
		t.Fatal("the change committed through a failing COMMIT")
	}

	o, ev, changed := mustAppend(t, s, ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusConfirmed})
	if !changed || o.Version != 2 || ev.Seq != 2 {
		t.Errorf("after the failed batch: changed %v, version %d, event seq %d; want a new change at 2", changed, o.Version, ev.Seq)
	}
	evs, err := s.EventsAfter(t.Context(), "o", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[1].Status != ordercast.StatusConfirmed {
		t.Errorf("stored events %+v, want placed then confirmed", evs)
	}
}

// TestRecentOrdersSeeOtherWriters: an order changed by another connection on the same file (a
// second store here) is read again, not judged from memory: the same change is a repeat, and the
// next one follows the other's version.
func TestRecentOrdersSeeOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	a := openRecent(t, path)
	if _, _, err := a.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o"}); err != nil {
		t.Fatal(err)
	}
	// The lock file keeps a second ordercast away (TestSecondStoreOnOneFileIsRefused); the other
	// writers this guards against are those that take no lock, such as an operator's sqlite3,
	// which the second store plays once a has let its lock go.
	if err := a.held.Close(); err != nil {
		t.Fatal(err)
	}
	a.held = nil
	b := openRecent(t, path)
	mustAppend(t, b, ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusConfirmed})

	o, _, changed := mustAppend(t, a, ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusConfirmed})
	if changed || o.Version != 2 {
		t.Errorf("the other store's change again: changed %v at version %d, want a repeat at 2", changed, o.Version)
	}
	o, _, changed = mustAppend(t, a, ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusPreparing})
	if !changed || o.Version != 3 {
		t.Errorf("the next change: changed %v at version %d, want 3", changed, o.Version)
	}
}

// TestRecentOrdersSurviveTrimmingTheWAL: the checkpointer's TRUNCATE (run once the store is
// idle) rewrites the WAL's header, which another connection's data_version counts as a change;
// run on the writer's connection it is not one, and the writer keeps what it remembers.
func TestRecentOrdersSurviveTrimmingTheWAL(t *testing.T) {
	s := openRecent(t, filepath.Join(t.TempDir(), "ordercast.db"), func(s *Store) {
		s.CheckpointSize = 1 // trim whatever the WAL holds
	})
	for _, id := range []string{"a", "b"} {
		if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// The checkpointer's own PASSIVE runs may keep a TRUNCATE from finishing (busy): try again.
	testutil.WaitFor(t, "the WAL trimmed", func() bool {
		if err := s.trimWAL(); err != nil {
			t.Fatal(err)
		}
		size, err := s.walSize()
		if err != nil {
			t.Fatal(err)
		}
		return size == 0
	})
	mustAppend(t, s, ordercast.StatusChange{OrderID: "b", Status: ordercast.StatusCancelled})
	if _, _, ok := s.recent.Get("a"); !ok {
		t.Error("order a forgotten after the WAL was trimmed")
	}
}
