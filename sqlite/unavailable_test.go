package sqlite_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/sqlitetest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/sqlite"
)

// TestLockedFileIsUnavailable: while another process holds the file's write lock past the busy
// timeout, writes and pings fail with the domain's unavailable error (not an internal one), the
// outage is logged once, and it ends with the lock.
func TestLockedFileIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	var logs testutil.Buffer
	s := sqlite.New(path)
	s.BusyTimeout = 20 * time.Millisecond
	s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	storetest.MustOpen(t, s)

	// A write in the other connection's transaction holds the write lock until it ends.
	release := sqlitetest.HoldElsewhere(t, path, sqlitetest.WriteLock)
	for i := range 3 {
		_, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"})
		if got := ordercast.ErrorCode(err); got != ordercast.EUnavailable {
			t.Fatalf("create %d on a locked file: %v (code %q), want %q", i, err, got, ordercast.EUnavailable)
		}
	}
	// A batch of several writes fails each of them as unavailable, and is one more failure of
	// the same outage, not a new one to log.
	held := sqlite.Held{Store: s}
	held.HoldWrites(3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			_, _, _, errs[i] = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "o-1", Status: ordercast.StatusConfirmed})
		})
		held.WaitQueued(i + 1)
	}
	wg.Wait()
	for i, err := range errs {
		if got := ordercast.ErrorCode(err); got != ordercast.EUnavailable {
			t.Errorf("write %d of a batch on a locked file: %v (code %q), want %q", i, err, got, ordercast.EUnavailable)
		}
	}
	if err := s.Ping(t.Context()); ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Fatalf("ping on a locked file: %v, want unavailable", err)
	}
	if got := s.Unavailable(); got != "locked" {
		t.Errorf("Unavailable() = %q, want locked", got)
	}
	if got := strings.Count(logs.String(), "database unavailable"); got != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", got, logs.String())
	}
	release()
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"}); err != nil {
		t.Fatalf("create once the lock is gone: %v", err)
	}
	if got := s.Unavailable(); got != "" || !strings.Contains(logs.String(), "database available again") {
		t.Errorf("after the outage: Unavailable() = %q, log:\n%s", got, logs.String())
	}
}

// TestDiskBelowItsFloorIsNotReady: taking the write lock writes nothing, so a disk too full for
// the next commits passes that probe; Ping judges the free space on the database's file system
// against MinFreeDisk. Writes are not refused for it. The log says so once when the probe first
// finds it, and once when it finds room again, however often it probes.
func TestDiskBelowItsFloorIsNotReady(t *testing.T) {
	low := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	low.MinFreeDisk = 1 << 62 // more than any disk has free
	var log testutil.Buffer
	low.Logger = slog.New(slog.NewTextHandler(&log, nil))
	storetest.MustOpen(t, low)
	if free, err := low.FreeDisk(); err != nil || free <= 0 {
		t.Fatalf("FreeDisk = %d, %v", free, err)
	}
	for range 3 {
		err := low.Ping(t.Context())
		if ordercast.ErrorCode(err) != ordercast.EUnavailable || !strings.Contains(ordercast.ErrorMessage(err), "MiB free") {
			t.Fatalf("ping below the floor: %v, want unavailable saying how much is free", err)
		}
	}
	if n := log.Count("disk is low"); n != 1 {
		t.Errorf("a low disk logged %d times over three probes, want once:\n%s", n, log.String())
	}
	if _, _, err := low.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"}); err != nil {
		t.Fatalf("create below the floor: %v, want it committed (only readiness judges the floor)", err)
	}
	if got := low.Unavailable(); got != "" {
		t.Errorf("Unavailable() = %q below the floor, want \"\": writes are not refused for it", got)
	}
	low.MinFreeDisk = 1 // any disk has a byte free
	for range 2 {
		if err := low.Ping(t.Context()); err != nil {
			t.Fatalf("ping above the floor: %v", err)
		}
	}
	if n := log.Count("has room again"); n != 1 {
		t.Errorf("room again logged %d times over two probes, want once:\n%s", n, log.String())
	}

	// A file: URI names the file its own way: the free space is that of the file SQLite opened.
	uri := sqlite.New("file:" + filepath.Join(t.TempDir(), "ordercast.db"))
	storetest.MustOpen(t, uri)
	if err := uri.Ping(t.Context()); err != nil {
		t.Fatalf("ping of a store opened by a file: URI: %v", err)
	}

	off := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	off.MinFreeDisk = -1
	storetest.MustOpen(t, off)
	if err := off.Ping(t.Context()); err != nil {
		t.Fatalf("ping with the floor off: %v", err)
	}
}

// TestFullDiskOutageIsLoggedOnce: taking the write lock, all the readiness probe does, passes on
// a full disk, where every commit fails. Were that probe to end the outage, each readiness check
// would log the database available again and the next commit unavailable again. A "full" outage
// ends with a commit, or with a probe that finds the disk above its floor. SQLite's
// max_page_count fails commits with SQLITE_FULL, as a full disk does; MinFreeDisk puts the disk
// below or above its floor.
func TestFullDiskOutageIsLoggedOnce(t *testing.T) {
	var logs testutil.Buffer
	s := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s.MinFreeDisk = 1 << 62 // more than any disk has free: the disk is below its floor
	storetest.MustOpen(t, s)
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-0"}); err != nil {
		t.Fatal(err)
	}
	details := []byte(`{"pad":"` + strings.Repeat("x", 3000) + `"}`)
	outages := func() (started, ended int) {
		return strings.Count(logs.String(), "database unavailable"), strings.Count(logs.String(), "database available again")
	}
	// No page beyond those the file has: they take a few orders more before one needs a new
	// page. SQLITE_FULL rolls the transaction back, whereupon the store replaces the writer's
	// connection (see replaceWriterConn), so the limit is set before every write.
	n, full := 0, true
	create := func() error {
		if full {
			if err := sqlite.LimitPages(s, 1); err != nil {
				t.Fatal(err)
			}
		}
		n++
		_, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d", n), Details: details})
		return err
	}
	for create() == nil {
		if n > 20 {
			t.Fatal("the database never filled")
		}
	}
	for range 3 {
		err := create()
		if ordercast.ErrorCode(err) != ordercast.EUnavailable || s.Unavailable() != "full" {
			t.Fatalf("create on a full database: %v (reason %q), want unavailable, full", err, s.Unavailable())
		}
		// SQLite rolled the failed COMMIT back itself: the ROLLBACK after it finds nothing to
		// roll back, which is no second failure to report beside the full disk.
		if strings.Contains(err.Error(), "rollback") {
			t.Errorf("create on a full database: %q, want the full disk alone", err)
		}
		if err := s.Ping(t.Context()); ordercast.ErrorCode(err) != ordercast.EUnavailable || !strings.Contains(ordercast.ErrorMessage(err), "MiB free") {
			t.Fatalf("ping on a full disk: %v, want unavailable saying how much is free", err)
		}
	}
	if started, ended := outages(); started != 1 || ended != 0 {
		t.Fatalf("outage logged %d times and its end %d times, want 1 and 0:\n%s", started, ended, logs.String())
	}

	// With no floor to judge, a ping says nothing of the space: ready, and still full.
	s.MinFreeDisk = -1
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("ping with the floor off: %v", err)
	}
	if got := s.Unavailable(); got != "full" {
		t.Errorf("Unavailable() = %q after a ping that did not judge the disk, want full", got)
	}
	// Nor does a commit that wrote nothing, which a full disk lets pass: a change the order's
	// rules refuse, a repeat of its status, a purge with nothing to purge. Each ended the
	// outage, and the next write began it again (the resource-exhaustion review).
	if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "o-0", Status: ordercast.StatusPlaced}); err != nil {
		t.Fatalf("a repeat of the order's status on a full disk: %v", err)
	}
	if _, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "o-0", Status: "nonsense"}); ordercast.ErrorCode(err) == ordercast.EUnavailable || err == nil {
		t.Fatalf("a refused change on a full disk: %v, want its refusal", err)
	}
	if _, err := s.PurgeExpiredKeys(t.Context(), time.Now(), 100); err != nil {
		t.Fatalf("a purge with nothing to purge on a full disk: %v", err)
	}
	if got := s.Unavailable(); got != "full" {
		t.Errorf("Unavailable() = %q after commits that wrote nothing, want full", got)
	}

	// Space again: a probe that finds the disk above its floor ends the outage, once.
	full = false
	if err := sqlite.LimitPages(s, 1<<30); err != nil {
		t.Fatal(err)
	}
	s.MinFreeDisk = 1 // any disk has a byte free
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("ping with space again: %v", err)
	}
	if err := create(); err != nil {
		t.Fatalf("create with space again: %v", err)
	}
	if started, ended := outages(); started != 1 || ended != 1 || s.Unavailable() != "" {
		t.Errorf("outage logged %d times and its end %d times (reason now %q), want 1, 1 and none:\n%s", started, ended, s.Unavailable(), logs.String())
	}
}
