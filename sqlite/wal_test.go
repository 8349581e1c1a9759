package sqlite_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/sqlitetest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/sqlite"
)

// walSlack is what one write alone (a batch of one) adds to the WAL here, with margin: the bound
// is MaxWALSize plus the batch that takes the WAL past it. A create of an order with 3 KB of
// details writes about sixteen pages of 4 KiB: the order and its overflow, its event, its
// party's log and head, and an entry in each of the orders' indexes (two more since migration
// 012).
const walSlack = 80 << 10

func walSize(t *testing.T, s *sqlite.Store) int64 {
	t.Helper()
	size, err := s.WALSize()
	if err != nil {
		t.Fatal(err)
	}
	return size
}

// TestWriterBoundsTheWAL: under writes that never pause, the WAL stays within MaxWALSize plus a
// batch. The checkpointer looks once an interval, an hour here: the bound must be the writer's.
// A RESTART run from the checkpointer's own connection lost the write lock to the writer, which
// takes it again straight after each batch, and the WAL grew by hundreds of MiB under load.
func TestWriterBoundsTheWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	s.CheckpointInterval = time.Hour
	s.CheckpointSize = 64 << 10
	s.MaxWALSize = 256 << 10
	var logs testutil.Buffer
	s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	storetest.MustOpen(t, s)

	details := []byte(`{"pad":"` + strings.Repeat("x", 3000) + `"}`)
	var most int64
	for i := range 200 {
		id := fmt.Sprintf("o-%d", i)
		if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: id, RestaurantID: "r-1", Details: details}); err != nil {
			t.Fatal(err)
		}
		most = max(most, walSize(t, s))
		for _, st := range []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusReady} {
			if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: id, Status: st}); err != nil {
				t.Fatal(err)
			}
			most = max(most, walSize(t, s))
		}
	}
	if bound := s.MaxWALSize + walSlack; most > bound {
		t.Errorf("the WAL reached %d KiB, want at most %d KiB (MaxWALSize and a write)", most>>10, bound>>10)
	}
	if db, err := os.Stat(path); err != nil || db.Size() < 2*s.MaxWALSize {
		t.Errorf("database is %v bytes (%v): too little written to test the bound", db.Size(), err)
	}
	if w := otherWarnings(&logs); w != "" {
		t.Errorf("warnings: %s", w)
	}
}

// TestHeldWALIsWarnedAbout: a reader in another process that keeps a transaction open (a backup,
// litestream, a sqlite3 shell) keeps the WAL from starting over, and it grows without bound while
// readiness says nothing: the store warns, once however many RESTARTs are busy (rate-limited),
// and says once when the WAL starts over again.
func TestHeldWALIsWarnedAbout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	s.CheckpointInterval = time.Millisecond // a busy RESTART is tried again after it
	s.CheckpointSize = 16 << 10
	s.MaxWALSize = 64 << 10
	var logs testutil.Buffer
	s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	storetest.MustOpen(t, s)
	details := []byte(`{"pad":"` + strings.Repeat("x", 900) + `"}`)
	n := 0
	write := func() {
		t.Helper()
		n++
		if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d", n), Details: details}); err != nil {
			t.Fatalf("write %d: %v", n, err)
		}
	}
	write()
	release := sqlitetest.HoldElsewhere(t, path, `SELECT count(*) FROM orders`)
	busyRestarts := func() int {
		c := 0
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "mode=RESTART") && strings.Contains(line, "busy=1") {
				c++
			}
		}
		return c
	}
	// writeUntil writes until cond holds, within testutil.WaitTimeout.
	writeUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(testutil.WaitTimeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after %d writes in %s:\n%s", what, n, testutil.WaitTimeout, logs.String())
			}
			write()
		}
	}
	const warning = "a reader probably keeps a transaction open in another process"
	writeUntil("5 busy RESTARTs", func() bool { return busyRestarts() >= 5 })
	if got := strings.Count(logs.String(), warning); got != 1 {
		t.Fatalf("after %d busy RESTARTs, %d warnings of a held WAL, want 1:\n%s", busyRestarts(), got, logs.String())
	}
	if size := walSize(t, s); size <= s.MaxWALSize {
		t.Fatalf("the WAL is %d bytes, within its bound, while a reader holds it", size)
	}

	release()
	writeUntil("WAL starting over", func() bool { return strings.Contains(logs.String(), "the WAL starts over again") })
	write() // the first commit into the WAL started over cuts the file back to MaxWALSize
	if size := walSize(t, s); size > s.MaxWALSize {
		t.Errorf("the WAL is %d KiB once the reader is gone, want at most %d KiB", size>>10, (s.MaxWALSize+walSlack)>>10)
	}
	for _, line := range []string{warning, "the WAL starts over again"} {
		if got := strings.Count(logs.String(), line); got != 1 {
			t.Errorf("%q logged %d times, want once", line, got)
		}
	}
}

// TestTheWALIsEmptiedWhenIdleAfterEveryRound: each time the writes stop for a checkpoint interval,
// the checkpointer empties the WAL (trimWAL), round after round: the writer's kick after a round
// of commits is not lost (it kicks once between two of the checkpointer's looks), and the
// checkpointer does not go on looking as if commits still came.
func TestTheWALIsEmptiedWhenIdleAfterEveryRound(t *testing.T) {
	s := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	s.CheckpointInterval, s.CheckpointSize = 20*time.Millisecond, 4<<10
	storetest.MustOpen(t, s)
	for round := range 3 {
		for i := range 30 {
			if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d-%d", round, i)}); err != nil {
				t.Fatal(err)
			}
		}
		testutil.WaitFor(t, fmt.Sprintf("round %d's WAL emptied once the writes stopped", round), func() bool { return walSize(t, s) == 0 })
	}
}

// TestPurgeBoundsTheWAL: a purge (--retention) over a backlog, with no write meanwhile, keeps
// the WAL within MaxWALSize plus one purge transaction, as the writer's batches do. The
// checkpointer looks once an interval, an hour here: the purge must run the bound itself. It
// ran only after batches, and a purge of 489,000 orders on a quiet node grew the WAL to 2.2 GB,
// past what --sqlite-min-free is sized on.
func TestPurgeBoundsTheWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	s.CheckpointInterval = time.Hour
	s.CheckpointSize = 64 << 10
	s.MaxWALSize = 256 << 10
	var clock atomic.Int64
	clock.Store(time.Now().Add(-30 * 24 * time.Hour).UnixMicro())
	s.Now = func() time.Time { return time.UnixMicro(clock.Load()) }
	var logs testutil.Buffer
	s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	storetest.MustOpen(t, s)

	details := []byte(`{"pad":"` + strings.Repeat("x", 3000) + `"}`)
	const orders, perPurge = 300, 2
	for i := range orders {
		id := fmt.Sprintf("o-%d", i)
		if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: id, RestaurantID: "r-1", CustomerID: fmt.Sprintf("u-%d", i), Details: details}); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: id, Status: ordercast.StatusCancelled}); err != nil {
			t.Fatal(err)
		}
	}
	// One purge transaction of perPurge orders rewrites their pages, zeroed (secure_delete),
	// and the pages of the party logs and indexes they leave: within a write's slack each.
	slack := int64(perPurge+1) * walSlack
	var most, purged int64
	for {
		n, err := s.PurgeEnded(t.Context(), time.Now(), perPurge)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, walSize(t, s))
		if purged += int64(n); n < perPurge {
			break
		}
	}
	if purged != orders {
		t.Fatalf("purged %d orders, want %d", purged, orders)
	}
	if bound := s.MaxWALSize + slack; most > bound {
		t.Errorf("the WAL reached %d KiB during the purge, want at most %d KiB (MaxWALSize and a purge transaction)", most>>10, bound>>10)
	}
	if w := otherWarnings(&logs); w != "" {
		t.Errorf("warnings: %s", w)
	}
}

// otherWarnings is what logs holds but the warning of a new, empty database, which every test's new
// file gets.
func otherWarnings(logs *testutil.Buffer) string {
	var out strings.Builder
	for line := range strings.Lines(logs.String()) {
		if !strings.Contains(line, "started on a new, empty database") {
			out.WriteString(line)
		}
	}
	return out.String()
}

// TestAnErasureLeavesNothingInTheWAL: an erasure zeroes the customer's details and notes in the
// database file (secure_delete), but the WAL's earlier frames held the pages as they were, on a
// quiet node until the WAL grew past CheckpointSize, and in every copy of the directory taken
// meanwhile. After an erasure neither file holds them.
func TestAnErasureLeavesNothingInTheWAL(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: "e-1", CustomerID: "u-1", Details: json.RawMessage(`{"name":"Erin Secretname"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "e-1", Status: ordercast.StatusDelivered, Note: "left with Mr Neighbourname"}); err != nil {
		t.Fatal(err)
	}
	holds := func(what string) []string {
		t.Helper()
		var in []string
		for _, f := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(f)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(what)) {
				in = append(in, filepath.Base(f))
			}
		}
		return in
	}
	if in := holds("Secretname"); len(in) == 0 {
		t.Fatal("the details are in no file before the erasure: the test reads the wrong files")
	}
	if e, err := s.EraseCustomer(ctx, "u-1"); err != nil || e.Orders != 1 {
		t.Fatalf("erase: %+v, %v", e, err)
	}
	for _, what := range []string{"Secretname", "Neighbourname"} {
		if in := holds(what); len(in) != 0 {
			t.Errorf("after the erasure %s is still in %v", what, in)
		}
	}
}
