package sqlite_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

func TestPurgeLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purge.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storetest.PurgeLeavesNothing(t, s, func(table string) int {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return n
	})
}

// TestPurgeAfterTheClockSteppedBack: the purge reads a party's log until it has passed the
// deleted orders' last entries there, not until some time after their ends, so a clock that
// stepped back between two orders (an NTP correction, a restored VM) cannot stop it short:
// every entry of a deleted order goes, the log has no hole where one was, and an entry of a
// deleted order's id, given again to another restaurant's order, never shows in the first
// restaurant's log.
func TestPurgeAfterTheClockSteppedBack(t *testing.T) {
	s := sqlite.New(filepath.Join(t.TempDir(), "o.db"))
	storetest.MustOpen(t, s)
	ctx := t.Context()
	r := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}
	t0 := time.Now().Add(-30 * 24 * time.Hour)
	at := func(tm time.Time) { s.Now = func() time.Time { return tm } }
	at(t0)
	mustCreate(t, s, ordercast.NewOrder{ID: "x", RestaurantID: r.ID}) // r:1, in progress
	at(t0.Add(-15 * time.Minute))                                     // the clock steps back
	mustCreate(t, s, ordercast.NewOrder{ID: "y", RestaurantID: r.ID}) // r:2
	at(t0.Add(-14 * time.Minute))
	if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "y", Status: ordercast.StatusCancelled}); err != nil { // r:3
		t.Fatal(err)
	}
	s.Now = time.Now
	mustCreate(t, s, ordercast.NewOrder{ID: "z", RestaurantID: r.ID}) // r:4
	if n, err := s.PurgeEnded(ctx, time.Now().Add(-24*time.Hour), 10); n != 1 || err != nil {
		t.Fatalf("PurgeEnded = %d, %v; want 1 (y)", n, err)
	}
	// A client that saw y created (cursor 2) and missed its end (3) is told the log was purged.
	if evs, err := s.ScopeEventsAfter(ctx, r, 2, 0); !errors.Is(err, ordercast.ErrLogPurged) {
		t.Errorf("ScopeEventsAfter(r-1, 2) = %d events, %v; want ErrLogPurged (y's end, at 3, was deleted)", len(evs), err)
	}
	mustCreate(t, s, ordercast.NewOrder{ID: "y", RestaurantID: "r-2", Note: "r-2's own"})
	evs, err := s.ScopeEventsAfter(ctx, r, 3, 0)
	if err != nil || len(evs) != 1 || evs[0].OrderID != "z" || evs[0].Pos != 4 {
		t.Errorf("ScopeEventsAfter(r-1, 3) = %+v, %v; want z's creation alone, at 4", evs, err)
	}
}

func mustCreate(t *testing.T, s *sqlite.Store, n ordercast.NewOrder) {
	t.Helper()
	if _, _, err := s.CreateOrder(t.Context(), n); err != nil {
		t.Fatal(err)
	}
}

// TestAPurgedOrderLeavesNoTraceInTheFile: the details of a purged order (a customer's address)
// are gone from the database file and its WAL, not left in the free space a delete leaves,
// where any copy of the file (a backup) would carry them on.
func TestAPurgedOrderLeavesNoTraceInTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	s := sqlite.New(path)
	storetest.MustOpen(t, s)
	ctx := t.Context()
	const address = "221B Baker Street, flat Quuxington"
	s.Now = func() time.Time { return time.Now().Add(-30 * 24 * time.Hour) }
	for i := range 50 { // pages of them, so that the purge frees whole pages as well as cells
		id := "o-" + strconv.Itoa(i)
		mustCreate(t, s, ordercast.NewOrder{ID: id, Details: json.RawMessage(`{"address":"` + address + `"}`)})
		if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: ordercast.StatusCancelled, Note: "not home: " + address}); err != nil {
			t.Fatal(err)
		}
	}
	s.Now = time.Now
	if n, err := s.PurgeEnded(ctx, time.Now().Add(-24*time.Hour), 100); n != 50 || err != nil {
		t.Fatalf("PurgeEnded = %d, %v; want 50", n, err)
	}
	if err := sqlite.Checkpoint(s); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("Quuxington")); n > 0 {
			t.Errorf("%s holds the purged orders' address %d times", filepath.Base(file), n)
		}
	}
}
