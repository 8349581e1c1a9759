package sqlite

import (
	"context"
	"github.com/ordercast/ordercast"
	"strconv"
)

// WALPath is the WAL file the checkpointer measures.
func WALPath(s *Store) string { return s.ckpt.walPath }

// WriterSynchronous is PRAGMA synchronous as the write pool's connections run it (1 NORMAL,
// 2 FULL, 3 EXTRA).
func WriterSynchronous(s *Store) (int, error) {
	var level int
	err := s.writer.QueryRow(`PRAGMA synchronous`).Scan(&level)
	return level, err
}

// LimitPages sets the writer connection's max_page_count: at the database's size (any n below
// it), the next commit that needs a new page fails with SQLITE_FULL, as on a full disk.
func LimitPages(s *Store, n int64) error {
	s.writing.Lock()
	defer s.writing.Unlock()
	_, err := s.conn.ExecContext(context.Background(), `PRAGMA max_page_count = `+strconv.FormatInt(n, 10))
	return err
}

// Checkpoint moves the WAL's pages into the database file and empties the WAL, as the
// checkpointer does when it trims it.
func Checkpoint(s *Store) error {
	s.writing.Lock()
	defer s.writing.Unlock()
	_, err := s.conn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

// ListOrdersQuery is ListOrders' read of q, for its query plan.
func ListOrdersQuery(q ordercast.OrderQuery) (string, []any) { return listOrdersQuery(q) }

// ActiveOrdersQuery is ActiveOrders' read, for its query plan.
const ActiveOrdersQuery = activeOrdersQuery

// Held is s with the hooks by which a test chooses a batch of its writer
// (storetest.BatchHolder), which only tests have: the conformance suite gets a Held.
type Held struct{ *Store }

// HoldWrites makes the writer commit nothing until n writes are queued, then commit them in one
// batch; WaitQueued(k) returns once k writes are queued.
func (h Held) HoldWrites(n int) { h.batches.Hold(n) }

// WaitQueued blocks until n writes have been queued since HoldWrites (or the writer closes);
// the writer may already have taken them.
func (h Held) WaitQueued(n int) { h.batches.WaitQueued(n) }
