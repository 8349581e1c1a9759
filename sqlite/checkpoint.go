package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// The checkpointer copies the WAL back into the database file on its own goroutine and
// connection, as litestream does, so that no commit pays for a checkpoint (SQLite's automatic
// one runs inside the commit that crosses its threshold, fsync included). It wakes after a
// commit, at most once per CheckpointInterval unless commits fill the WAL faster (waitToLook),
// and never when the store is idle. The bound on the WAL is the writer's own (boundWAL): a look
// once a second cannot keep up with a writer that fills 64 MiB in a second or two.

// checkpointBusyTimeout bounds how long a RESTART or TRUNCATE checkpoint waits for readers. It
// runs on the writer's connection and holds SQLite's write lock while it waits, so every batch
// waits with it: a reader in another process that keeps a transaction open (a backup, litestream,
// a sqlite3 shell) made every write wait the whole busy_timeout (5 s), and some fail. A
// checkpoint that cannot finish in this time reports itself busy and is tried again later.
const checkpointBusyTimeout = 50 * time.Millisecond

// walWarnEvery is how often a WAL that cannot start over is warned about while it lasts.
const walWarnEvery = time.Minute

// busyPragma is the statement that sets a connection's busy_timeout to d.
func busyPragma(d time.Duration) string {
	return "PRAGMA busy_timeout = " + strconv.FormatInt(d.Milliseconds(), 10)
}

// checkpointer owns its goroutine: Close cancels it and waits.
type checkpointer struct {
	conn    *sql.Conn
	passive *sql.Stmt
	walPath string
	kick    chan struct{}
	// committed is set by the first commit after the checkpointer starts a look, and only that
	// commit sends a kick: waitToLook needs to know that a commit came, not how many. A send for
	// every batch was 1.1 % of the server's CPU at 5,000 changes/s, on the writer's goroutine.
	committed atomic.Bool
	// copyNow asks for a PASSIVE at once, even within CheckpointInterval of the last (boundWAL).
	copyNow chan struct{}
	// pace is how long commits took to fill CheckpointSize of the WAL, over the writer's last
	// round (see boundWAL); 0 when unknown or slow.
	pace   atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
}

// walBound is the writer's state of its bound on the WAL (boundWAL); guarded by Store.bounding.
type walBound struct {
	// copying is set once the checkpointer has been asked to copy a WAL near its bound; cleared
	// when the WAL starts over.
	copying bool
	// retryAt is when a RESTART may run again after one that was busy or failed: each busy one
	// holds the writer up to checkpointBusyTimeout.
	retryAt time.Time
	// busy counts the RESTARTs in a row that were busy; stuckSince is when the first of them ran.
	busy       int
	stuckSince time.Time
	// warnedAt is the last warning of a WAL that cannot start over; zero when none is standing.
	warnedAt time.Time
	// started is when the writer's RESTART last started the WAL over.
	started time.Time
}

// kickCheckpointer tells the checkpointer a commit happened, once between two of its looks; it
// never blocks the writer.
func (s *Store) kickCheckpointer() {
	c := s.ckpt
	if c.committed.Swap(true) {
		return // told since its last look began
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (s *Store) startCheckpointer(ctx context.Context) error {
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: checkpointer connection: %w", err)
	}
	if _, err := conn.ExecContext(ctx, busyPragma(min(s.BusyTimeout, checkpointBusyTimeout))); err != nil {
		_ = conn.Close()
		return fmt.Errorf("sqlite: checkpointer's busy timeout: %w", err)
	}
	// The WAL is beside the file SQLite opened (s.file, which lock resolved).
	c := &checkpointer{conn: conn, walPath: s.file + "-wal", kick: make(chan struct{}, 1),
		copyNow: make(chan struct{}, 1), done: make(chan struct{})}
	// PASSIVE copies what it can without waiting for anyone. (RESTART, the bound, and TRUNCATE,
	// which also empties the file, run on the writer's connection: see boundWAL and trimWAL.)
	if c.passive, err = conn.PrepareContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		_ = conn.Close()
		return fmt.Errorf("sqlite: prepare checkpoint: %w", err)
	}
	var cctx context.Context
	cctx, c.cancel = context.WithCancel(context.Background())
	s.ckpt = c
	go func() {
		defer close(c.done)
		s.runCheckpointer(cctx)
	}()
	return nil
}

func (s *Store) runCheckpointer(ctx context.Context) {
	c := s.ckpt
	for lookNow := false; ; {
		if !lookNow {
			select {
			case <-ctx.Done():
				return
			case <-c.kick:
			case <-c.copyNow:
			}
		}
		c.committed.Store(false) // a commit from here on kicks again
		if err := s.checkpoint(); err != nil {
			s.Logger.Warn("sqlite: checkpoint failed", "err", err)
		}
		var ok bool
		if lookNow, ok = s.waitToLook(ctx); !ok {
			return
		}
	}
}

// waitToLook waits after a look at the WAL: now reports that the next look is due at once, else
// it waits for the next commit. A look is due a CheckpointInterval after the last, if a commit
// came meanwhile, or as soon as one comes after the pace, where commits fill CheckpointSize of the
// WAL faster than an interval; and at once when the writer asks (copyNow). No commit for a whole
// interval is a store idle: emptying the WAL file then costs no writer anything (trimWAL); under
// load the WAL is only restarted, which keeps its size. ok is false once ctx ends.
func (s *Store) waitToLook(ctx context.Context) (now, ok bool) {
	c := s.ckpt
	interval := time.NewTimer(s.CheckpointInterval)
	defer interval.Stop()
	var paced <-chan time.Time
	if pace := time.Duration(c.pace.Load()); pace > 0 && pace < s.CheckpointInterval {
		t := time.NewTimer(pace)
		defer t.Stop()
		paced = t.C
	}
	committed, due := c.committed.Load(), false // a commit during the look counts
	for !(committed && due) {
		select {
		case <-ctx.Done():
			return false, false
		case <-c.copyNow:
			return true, true
		case <-c.kick:
			committed = true
		case <-paced:
			paced, due = nil, true
		case <-interval.C:
			if !committed {
				if err := s.trimWAL(); err != nil {
					s.Logger.Warn("sqlite: checkpoint failed", "err", err)
				}
				return false, true
			}
			due = true
		}
	}
	return true, true
}

// checkpoint runs a PASSIVE checkpoint once the WAL passes CheckpointSize. Under steady writes a
// PASSIVE one never lets the WAL start over (a commit always lands while it copies, so the next
// writer never finds it fully copied): the writer's RESTART does (boundWAL).
func (s *Store) checkpoint() error {
	size, err := s.walSize()
	if err != nil || size < s.CheckpointSize {
		return err
	}
	s.checkpointing.Lock()
	defer s.checkpointing.Unlock()
	_, err = s.runCheckpoint(s.ckpt.passive, "PASSIVE", size)
	return err
}

// boundWAL keeps the WAL within MaxWALSize plus a batch; the writer runs it after each batch's
// writes are answered (groupcommit's upkeep), so a RESTART delays the next batch, never an answer,
// and so does every other commit on the writer's connection (writeAside: a purge) after it
// commits: the bound is the WAL's, whoever wrote it. A RESTART runs once per MaxWALSize of WAL
// written, so a purge's commits add no checkpoint to a batch's path but those its pages need.
// Past MaxWALSize it runs a RESTART checkpoint on its own connection before its next batch, and
// the next commit starts the WAL over. Run from the checkpointer's connection, the RESTART waited
// for the write lock, which the writer takes again straight after each batch: under steady writes
// it never got it, and the WAL grew by hundreds of MiB.
//
// The RESTART holds off every write while it copies, as long as copying the whole WAL takes (60
// to 100 ms at 64 MiB here), so the checkpointer's PASSIVE ones, which copy beside the writes that
// go on, should leave it little: CheckpointSize before the bound the writer asks for one at once,
// and when commits fill the WAL faster than CheckpointSize an interval, the checkpointer looks as
// often as they fill CheckpointSize, reckoned over the last round (pace). The writer's
// journal_size_limit (MaxWALSize - CheckpointSize) cuts the file back to that size when the WAL
// starts over, so the file's size, one stat, says when the frames written since pass it.
//
// A RESTART is busy when a reader still reads frames it would overwrite: a reader of this
// process, for a moment, or one in another process that keeps a transaction open, for as long as
// it does, while the WAL grows without bound. It is tried again after CheckpointInterval, and a
// WAL still held then is warned about, once every walWarnEvery, and once when it starts over.
func (s *Store) boundWAL() {
	s.bounding.Lock()
	defer s.bounding.Unlock()
	size, err := s.walSize()
	if err != nil {
		return // the checkpointer's next look reports it
	}
	b := &s.bound
	if size <= s.MaxWALSize-s.CheckpointSize {
		if b.copying {
			s.walFreed(size) // emptied by trimWAL while the store was idle
			s.ckpt.pace.Store(0)
		}
		return
	}
	if !b.copying {
		b.copying = true
		select {
		case s.ckpt.copyNow <- struct{}{}:
		default:
		}
	}
	if size <= s.MaxWALSize {
		return
	}
	now := time.Now()
	if now.Before(b.retryAt) {
		return
	}
	ran, busy, err := s.checkpointOnWriter(func(st *statements) *sql.Stmt { return st.restart }, "RESTART", size)
	switch {
	case err != nil:
		b.retryAt = now.Add(s.CheckpointInterval)
		s.Logger.Warn("sqlite: checkpoint failed", "err", err)
	case !ran:
	case busy:
		b.retryAt = now.Add(s.CheckpointInterval)
		if b.busy++; b.busy == 1 {
			b.stuckSince = now
		}
		// One busy RESTART may be a read of this process's that took a moment; the next one,
		// an interval later, is a WAL held.
		if b.busy >= 2 && (b.warnedAt.IsZero() || now.Sub(b.warnedAt) >= walWarnEvery) {
			b.warnedAt = now
			s.Logger.Warn("sqlite: the WAL is past its bound and cannot start over: a reader probably keeps a transaction open in another process (a backup, litestream, a sqlite3 shell); it grows until that transaction ends",
				"wal_bytes", size, "max_wal_bytes", s.MaxWALSize, "stuck", now.Sub(b.stuckSince).Round(time.Millisecond), "wal", s.ckpt.walPath)
		}
	default:
		if !b.started.IsZero() {
			s.ckpt.pace.Store(int64(now.Sub(b.started) / time.Duration(s.MaxWALSize/s.CheckpointSize)))
		}
		s.walFreed(size)
		b.started = now
	}
}

// walFreed starts the bound's next round, saying so if the last one was warned about.
func (s *Store) walFreed(size int64) {
	b := &s.bound
	if !b.warnedAt.IsZero() {
		s.Logger.Info("sqlite: the WAL starts over again", "wal_bytes", size, "stuck", time.Since(b.stuckSince).Round(time.Millisecond))
	}
	*b = walBound{}
}

// trimWAL empties a WAL grown past CheckpointSize, once the store is idle (truncateWAL).
func (s *Store) trimWAL() error {
	_, err := s.truncateWAL(s.CheckpointSize)
	return err
}

// truncateWAL empties the WAL with a TRUNCATE checkpoint on the writer's connection
// (checkpointOnWriter) when it holds least bytes or more, and reports whether readers kept the
// checkpoint from finishing (busy).
func (s *Store) truncateWAL(least int64) (busy bool, err error) {
	size, err := s.walSize()
	if err != nil || size < least {
		return false, err
	}
	_, busy, err = s.checkpointOnWriter(func(st *statements) *sql.Stmt { return st.truncate }, "TRUNCATE", size)
	return busy, err
}

// checkpointOnWriter runs a RESTART or TRUNCATE checkpoint on the writer's connection, between two
// batches: run on another connection, a TRUNCATE would change the writer's data_version (it
// rewrites the WAL's header) and make it forget the orders it remembers, and a RESTART would wait
// for the write lock (see boundWAL). It waits for readers no longer than checkpointBusyTimeout.
// SQLite runs one checkpoint at a time, and answers a second one busy at once, without its busy
// handler: so it waits for a PASSIVE of the checkpointer's to end. It does not run (ran false)
// when the writer has no connection.
func (s *Store) checkpointOnWriter(stmt func(*statements) *sql.Stmt, mode string, walBytes int64) (ran, busy bool, err error) {
	s.writing.Lock()
	defer s.writing.Unlock()
	if s.conn == nil {
		return false, false, nil // the writer lost its connection (replaceWriterConn): the next batch opens one
	}
	s.checkpointing.Lock()
	defer s.checkpointing.Unlock()
	ctx := context.Background()
	if _, err := s.conn.ExecContext(ctx, busyPragma(min(s.BusyTimeout, checkpointBusyTimeout))); err != nil {
		return false, false, fmt.Errorf("%s checkpoint: busy timeout: %w", mode, err)
	}
	defer func() {
		if _, rerr := s.conn.ExecContext(ctx, busyPragma(s.BusyTimeout)); rerr != nil {
			err = errors.Join(err, fmt.Errorf("%s checkpoint: restore the writer's busy timeout: %w", mode, rerr))
		}
	}()
	busy, err = s.runCheckpoint(stmt(s.stmts), mode, walBytes)
	return true, busy, err
}

// walSize is the WAL file's size, 0 when there is none.
func (s *Store) walSize() (int64, error) {
	fi, err := os.Stat(s.ckpt.walPath)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("stat wal: %w", err)
	}
	return fi.Size(), nil
}

// WALSize is the size in bytes of the database's WAL file: within MaxWALSize plus a batch (or a
// purge's transaction), unless a reader in another process holds the WAL (see boundWAL). Call it
// between Open and Close.
func (s *Store) WALSize() (int64, error) { return s.walSize() }

// runCheckpoint runs a checkpoint statement; busy reports that it could not copy, or start the
// WAL over, for a reader or another checkpoint.
func (s *Store) runCheckpoint(stmt *sql.Stmt, mode string, walBytes int64) (busy bool, err error) {
	var b, logFrames, copied int
	start := time.Now()
	if err := stmt.QueryRowContext(context.Background()).Scan(&b, &logFrames, &copied); err != nil {
		return false, fmt.Errorf("%s checkpoint: %w", mode, err)
	}
	s.Logger.Debug("sqlite: checkpoint", "mode", mode, "wal_bytes", walBytes, "busy", b, "frames", logFrames, "copied", copied,
		"took", time.Since(start).Round(time.Microsecond))
	return b != 0, nil
}

func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	var errs []error
	if err := c.passive.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := c.conn.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close checkpointer: %w", err)
	}
	return nil
}
