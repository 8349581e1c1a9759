package sqlite

import (
	"context"
	"errors"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ordercast/ordercast/internal/storehealth"
)

// errLockHeld is a readiness probe that did not get the write lock in probeWait: another
// process holds it (a batch of this store's takes milliseconds).
var errLockHeld = errors.New("sqlite: the write lock is held elsewhere")

// The reasons the database is away that the store itself acts on, as /readyz and an
// unavailable error name them ("the database is locked").
const (
	reasonLocked  = "locked"
	reasonMoved   = "moved"
	reasonIOError = "failing (I/O error)"
	reasonFull    = "full"
	reasonCorrupt = "corrupt"
)

// unavailableReason classifies a driver error as the database file being away ("" when it is
// not): locked by another process past the busy timeout, read-only, failing to read or write, or
// impossible to open.
func unavailableReason(err error) string {
	if errors.Is(err, errLockHeld) {
		return reasonLocked
	}
	if errors.Is(err, errFileMoved) {
		return reasonMoved
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ""
	}
	var e *sqlitedrv.Error
	if !errors.As(err, &e) {
		return ""
	}
	if e.Code() == sqlite3.SQLITE_IOERR_SHMSIZE {
		// The -shm file beside the WAL could not be grown: its disk has no room, which a node
		// starting on a full disk met first, and said as an I/O error.
		return reasonFull
	}
	switch e.Code() & 0xff { // the primary code, without the extended bits
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return reasonLocked
	case sqlite3.SQLITE_READONLY:
		return "read-only"
	case sqlite3.SQLITE_IOERR:
		return reasonIOError
	case sqlite3.SQLITE_FULL:
		return reasonFull
	case sqlite3.SQLITE_CANTOPEN:
		return "unreachable"
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		// Every write would fail alike; unready, the node leaves the balancer and the log says why.
		return reasonCorrupt
	}
	return ""
}

// atStart is err met opening the store, as start-up should take it: an outage it waits out
// (cmd/ordercast, --db-wait) when time may mend it (a lock another process holds, an I/O error,
// a full disk), or the error itself, which ends the start at once: a file that is not a
// database, or that SQLite cannot open or write (checkPath has ruled out the permissions it
// can see), stays so however long the node waits.
func atStart(err error) error {
	switch reason := unavailableReason(err); reason {
	case reasonLocked, reasonIOError, reasonFull:
		return storehealth.Unavailable(reason, err)
	}
	return err
}

// health translates err into the domain's unavailable error when the database is away, and
// keeps the store's outage state (storehealth.Tracker.Check).
func (s *Store) health(err error, proof storehealth.Proof) error {
	if err != nil && s.closed.Load() {
		return storehealth.Unavailable("closing", err)
	}
	if err != nil && unavailableReason(err) == reasonCorrupt {
		s.corrupt.Store(true) // for good: see Ping
	}
	return s.tracker.Check(err, proof)
}

// errDamaged is why a store that once found its file damaged stays unready: Ping reads no data
// page, and a write to pages that are sound passes, but the damage stays until the file is
// repaired and the node restarted.
var errDamaged = errors.New("sqlite: a read or a write found the database file damaged: repair it (sqlite3's .recover) and restart ordercast")

// Unavailable is why the database is away, or "" when it answered the last write or ping.
func (s *Store) Unavailable() string { return s.tracker.Reason() }

// refusedSQL reports whether err is SQLite refusing a statement for what it says (SQLITE_ERROR, a
// table that exists already, a column that does not; SQLITE_CONSTRAINT, rows the change does not
// fit), which it would refuse again, as against a database busy, full or failing.
func refusedSQL(err error) bool {
	var e *sqlitedrv.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_CONSTRAINT:
		return true
	}
	return false
}
