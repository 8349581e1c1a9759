package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// clockWindow is how long a reading of the database's clock stays a candidate. Readings are
// kept as the tightest of the last one or two windows, so the node follows a clock that is
// stepped or drifts within about that long.
const clockWindow = 10 * time.Second

// dbClock is the database's clock as a node reckons it from readings taken inside its
// transactions, without asking the database at every batch.
//
// A reading taken by a request sent at sent and answered at got was made somewhere in between,
// so the database's clock minus this node's was at most db-sent when it was taken. The clock
// keeps that bound from the tightest reading of the last window or two: a reply that waited (for
// a lock, a busy CPU, a collector) widens its own bound and is passed over, and the time it
// gives is never earlier than the database's own. It is later by at most the tightest reading's
// time on the way there, which is less than the round trip that commits the batch it stamps, so
// a stamp still falls between a write's request and its commit, as a stamp read inside the
// transaction does.
//
// The bound is the clock to stamp by, but no measure of the clocks' offset: on a node far from
// the database it is the offset plus the whole way there (40 ms on a node 80 ms away), which a
// dashboard comparing regions would blame on their clocks. The offset is the tightest reading's
// midpoint instead (Offset): its error is half the difference between the ways there and back.
type dbClock struct {
	skew   atomic.Int64 // nanoseconds to add to this node's clock
	offset atomic.Int64 // nanoseconds the database's clock is ahead of this node's, at the midpoint

	mu        sync.Mutex
	since     time.Time    // when the current window began; zero before the first reading
	cur, prev clockReading // the tightest reading of the current and the previous window
}

// clockReading is a reading's bound on the database's clock minus the node's, and the round
// trip it took, in nanoseconds.
type clockReading struct{ bound, trip int64 }

// tighter is the reading of a and b with the tighter bound.
func tighter(a, b clockReading) clockReading {
	if b.bound < a.bound {
		return b
	}
	return a
}

// now is the database's clock as reckoned, in whole microseconds as PostgreSQL keeps time, so
// what a batch answers and announces is what the database holds.
func (c *dbClock) now() time.Time {
	return time.Now().Add(time.Duration(c.skew.Load())).Truncate(time.Microsecond)
}

// StampNow is the database's clock now, as this node reckons it: the clock its events are
// stamped on (ordercast.StampClock).
func (s *Store) StampNow() time.Time { return s.clock.now() }

// Offset is the database's clock minus this node's, as the node reckons it: the midpoint of its
// tightest recent reading, for the ordercast_pg_clock_offset_seconds gauge.
func (s *Store) Offset() time.Duration { return time.Duration(s.clock.offset.Load()) }

// read records the database's clock db, read by a request sent at sent and answered at got.
func (c *dbClock) read(db, sent, got time.Time) {
	r := clockReading{bound: int64(db.Sub(sent)), trip: int64(got.Sub(sent))}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.since.IsZero(), got.Sub(c.since) >= 2*clockWindow: // the first reading, or none for a while
		c.since, c.cur, c.prev = got, r, r
	case got.Sub(c.since) >= clockWindow:
		c.since, c.prev, c.cur = got, c.cur, r
	default:
		c.cur = tighter(c.cur, r)
	}
	best := tighter(c.cur, c.prev)
	c.skew.Store(best.bound)
	c.offset.Store(best.bound - best.trip/2)
}

// readClock reads the database's clock for the batches judged before any batch reads it: a few
// times, since the first reading on a pool may wait for its connection.
func (s *Store) readClock(ctx context.Context) error {
	for range 3 {
		var db time.Time
		sent := time.Now()
		if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&db); err != nil {
			return fmt.Errorf("postgres: read the clock: %w", err)
		}
		s.clock.read(db, sent, time.Now())
	}
	return nil
}
