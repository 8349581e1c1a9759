package sqlite_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLockedFileIsUnavailable: while another process holds the file's write lock past the busy
// timeout, writes and pings fail with the domain's unavailable error (not an internal one), the
// outage is logged once, and it ends with the lock.
func TestLockedFileIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	var logs syncBuffer
	s := sqlite.New(path)
	s.BusyTimeout = 20 * time.Millisecond
	s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	storetest.MustOpen(t, s)

	// A write in the other connection's transaction holds the write lock until it ends.
	release := holdElsewhere(t, path, `CREATE TABLE lock_holder (x INTEGER)`)
	for i := range 3 {
		_, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"})
		if got := ordercast.ErrorCode(err); got != ordercast.EUnavailable {
			t.Fatalf("create %d on a locked file: %v (code %q), want %q", i, err, got, ordercast.EUnavailable)
		}
	}
	// A batch of several writes fails each of them as unavailable, and is one more failure of
	// the same outage, not a new one to log.
	s.HoldWrites(3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			_, _, _, errs[i] = s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "o-1", Status: ordercast.StatusConfirmed})
		})
		s.WaitQueued(i + 1)
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
// against MinFreeDisk. Writes are not refused for it.
func TestDiskBelowItsFloorIsNotReady(t *testing.T) {
	low := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	low.MinFreeDisk = 1 << 62 // more than any disk has free
	storetest.MustOpen(t, low)
	err := low.Ping(t.Context())
	if ordercast.ErrorCode(err) != ordercast.EUnavailable || !strings.Contains(ordercast.ErrorMessage(err), "MiB free") {
		t.Fatalf("ping below the floor: %v, want unavailable saying how much is free", err)
	}
	if _, _, err := low.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"}); err != nil {
		t.Fatalf("create below the floor: %v, want it committed (only readiness judges the floor)", err)
	}
	if got := low.Unavailable(); got != "" {
		t.Errorf("Unavailable() = %q below the floor, want \"\": writes are not refused for it", got)
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
