package postgres_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// A node judges a batch from the orders and party heads it knows and commits it in one round
// trip, under guards; these tests hold the guards to the database's truth.

func createFor(t *testing.T, s *postgres.Store, id, restaurant string) {
	t.Helper()
	if _, created, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: id, RestaurantID: restaurant, CustomerID: "u-" + id}); err != nil || !created {
		t.Fatalf("CreateOrder(%s): created=%v err=%v", id, created, err)
	}
}

// partyLog returns a party's log as "order/seq@pos " entries, in position order.
func partyLog(t *testing.T, s *postgres.Store, p ordercast.Party) string {
	t.Helper()
	evs, err := s.ScopeEventsAfter(t.Context(), p, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, ev := range evs {
		got += fmt.Sprintf("%s/%d@%d ", ev.OrderID, ev.Seq, ev.Pos)
	}
	return got
}

func wantPaths(t *testing.T, what string, s *postgres.Store, oneTrip, wrong, locking int64) {
	t.Helper()
	if p := s.Paths(); p.OneRoundTrip != oneTrip || p.WrongGuesses != wrong || p.Locking != locking {
		t.Errorf("%s: %d batches in one round trip, %d wrong guesses, %d on the locking path; want %d, %d, %d",
			what, p.OneRoundTrip, p.WrongGuesses, p.Locking, oneTrip, wrong, locking)
	}
}

// A node whose batches all take the one-round-trip path still follows the database's clock:
// each pipeline reads it. The node is made to believe the database an hour ahead; one batch
// brings it back (the database runs on this machine, so within a second of its clock).
func TestOneRoundTripReadsTheClock(t *testing.T) {
	s := storetest.MustOpen(t, postgres.New(pgtest.NewDatabase(t)))
	postgres.ResetClock(s, time.Hour)
	createFor(t, s, "a", "r-1")
	wantPaths(t, "create", s, 1, 0, 0)
	if skew := postgres.Skew(s); skew.Abs() > time.Second {
		t.Fatalf("after a batch in one round trip the node reckons the database %v ahead, want within 1s", skew)
	}
}

// TestOneRoundTrip: a node that wrote an order commits its next changes, and creations, in one
// round trip each, party logs included, and what it commits is what a read finds.
func TestOneRoundTrip(t *testing.T) {
	s := storetest.MustOpen(t, postgres.New(pgtest.NewDatabase(t)))
	ctx := t.Context()
	createFor(t, s, "a", "r-1")
	createFor(t, s, "b", "r-1")
	move(t, s, "a", ordercast.StatusConfirmed)
	if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: "a", CourierID: "k-1"}); err != nil {
		t.Fatal(err)
	}
	last := move(t, s, "a", ordercast.StatusCancelled)
	wantPaths(t, "one node", s, 5, 0, 0)

	r1 := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}
	if got, want := partyLog(t, s, r1), "a/1@1 b/1@2 a/2@3 a/3@4 a/4@5 "; got != want {
		t.Errorf("r-1's log = %q, want %q", got, want)
	}
	if pos := last.Marks.Pos(r1.Key()); pos != 5 {
		t.Errorf("the last event's position in r-1's log = %d, want 5", pos)
	}
	o, err := s.Order(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if o.Version != 4 || o.Status != ordercast.StatusCancelled || o.CourierID != "k-1" || !o.UpdatedAt.Equal(last.At) {
		t.Errorf("stored order %+v, want version 4, cancelled, courier k-1, updated at %v", o, last.At)
	}
}

// TestWrongGuessesTakeTheLockingPath: two nodes without listeners, so neither hears of the
// other's commits. A node that believes an order or a party head that has moved on fails its
// guard, and the batch is judged again on the locking path: a change the stale state allowed
// but the stored state refuses is refused, and party positions stay one per event, in order.
func TestWrongGuessesTakeTheLockingPath(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a := storetest.MustOpen(t, postgres.New(db))
	b := storetest.MustOpen(t, postgres.New(db))
	ctx := t.Context()
	r1 := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}

	createFor(t, a, "x", "r-1")                // a: one round trip; r-1's head 1
	move(t, b, "x", ordercast.StatusCancelled) // b does not know x: locking path; r-1's head 2
	wantPaths(t, "b", b, 0, 0, 1)

	// a believes r-1's head is 1: its guess of position 2 fails, the locking path takes 3.
	createFor(t, a, "y", "r-1")
	if got, want := partyLog(t, a, r1), "x/1@1 x/2@2 y/1@3 "; got != want {
		t.Errorf("r-1's log after creating y = %q, want %q", got, want)
	}
	wantPaths(t, "a after creating y", a, 1, 1, 1)

	// a believes x is placed, which may be confirmed; it is cancelled, which may not.
	_, _, _, err := a.AppendStatus(ctx, ordercast.StatusChange{OrderID: "x", Status: ordercast.StatusConfirmed})
	if ordercast.ErrorCode(err) != ordercast.EInvalidTransition {
		t.Fatalf("confirming x, cancelled by the other node: %v, want %s", err, ordercast.EInvalidTransition)
	}
	wantPaths(t, "a after the refused change", a, 1, 2, 2)

	// a believes y is at version 1; a change expecting version 2, made by a client that saw
	// the other node's change, is accepted, not refused as a version conflict.
	move(t, b, "y", ordercast.StatusConfirmed)
	_, ev, changed, err := a.AppendStatus(ctx, ordercast.StatusChange{OrderID: "y", Status: ordercast.StatusPreparing, ExpectedVersion: 2})
	if err != nil || !changed || ev.Seq != 3 {
		t.Fatalf("preparing y expecting version 2: seq %d, changed %v, %v; want seq 3", ev.Seq, changed, err)
	}
	wantPaths(t, "a after the change it could not judge", a, 1, 2, 3)
	if got, want := partyLog(t, a, r1), "x/1@1 x/2@2 y/1@3 y/2@4 y/3@5 "; got != want {
		t.Errorf("r-1's log = %q, want %q", got, want)
	}
	evs := stored(t, a, "x")
	if len(evs) != 2 || evs[1].Status != ordercast.StatusCancelled {
		t.Errorf("x's events %+v, want placed then cancelled", evs)
	}
}

// TestListenerKeepsTheNodeInStep: with listeners, a node learns the orders another node creates
// and follows its commits to them and to the party logs: every change, wherever it lands, goes
// in one round trip without a wrong guess, and answers with the order as a read finds it.
func TestListenerKeepsTheNodeInStep(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a, b := newNode(t, db, db, nil), newNode(t, db, db, nil)
	r1 := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}
	details := `{"items": [1,  2.50], "note": "<b> & é"}`

	if _, _, err := a.store.CreateOrder(t.Context(), ordercast.NewOrder{ID: "x", RestaurantID: "r-1", Details: []byte(details)}); err != nil {
		t.Fatal(err)
	}
	collect(t, b.all, is("x", 1)) // the created order's notice comes before its event's
	o, ev, _, err := b.store.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "x", Status: ordercast.StatusConfirmed})
	if err != nil || ev.Seq != 2 || ev.Marks.Pos(r1.Key()) != 2 {
		t.Fatalf("b's change: seq %d at position %d in r-1's log, %v; want 2 and 2", ev.Seq, ev.Marks.Pos(r1.Key()), err)
	}
	if stored, err := a.store.Order(t.Context(), "x"); err != nil || !reflect.DeepEqual(o, stored) {
		t.Errorf("b answered the order\n%+v\nstored as\n%+v (%v)", o, stored, err)
	}
	wantPaths(t, "b", b.store, 1, 0, 0)

	collect(t, a.all, is("x", 2)) // a's listener followed it before handing it on
	if ev := move(t, a.store, "x", ordercast.StatusPreparing); ev.Seq != 3 || ev.Marks.Pos(r1.Key()) != 3 {
		t.Errorf("a's change: seq %d at position %d in r-1's log, want 3 and 3", ev.Seq, ev.Marks.Pos(r1.Key()))
	}
	wantPaths(t, "a", a.store, 2, 0, 0)

	collect(t, b.all, is("x", 3))
	move(t, b.store, "x", ordercast.StatusReady)
	wantPaths(t, "b", b.store, 2, 0, 0)
	if got, want := partyLog(t, a.store, r1), "x/1@1 x/2@2 x/3@3 x/4@4 "; got != want {
		t.Errorf("r-1's log = %q, want %q", got, want)
	}
}

// TestAListenerBackFromAnOutageForgetsWhatTheNodeLearnedMeanwhile: what a node learns of its own
// writes while its listener is cut off is as blind to the other nodes' commits of that time as
// what it knew before: once it listens again it reads the orders anew, and its next change is no
// wrong guess.
func TestAListenerBackFromAnOutageForgetsWhatTheNodeLearnedMeanwhile(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	proxy := pgtest.NewRelay(t, db)
	a, b := newNode(t, db, proxy.URL(), nil), newNode(t, db, db, nil)
	create(t, a.store, "x")
	collect(t, a.all, is("x", 1))
	proxy.Cut()
	testutil.WaitFor(t, "a's listener to notice the cut", func() bool { return a.l.Ready(t.Context()) != nil })
	move(t, a.store, "x", ordercast.StatusConfirmed) // a learns x at version 2
	move(t, b.store, "x", ordercast.StatusPreparing) // which a does not hear
	proxy.Resume()
	testutil.WaitFor(t, "a's listener to be back", func() bool { return a.l.Ready(t.Context()) == nil })
	before := a.store.Paths()
	move(t, a.store, "x", ordercast.StatusReady)
	if after := a.store.Paths(); after.WrongGuesses != before.WrongGuesses {
		t.Errorf("a's change after the outage was a wrong guess (%+v, then %+v): it judged x by what it learned while deaf", before, after)
	}
}
