package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// The checkpointer copies the WAL back into the database file on its own goroutine and
// connection, as litestream does, so that no commit pays for a checkpoint (SQLite's automatic
// one runs inside the commit that crosses its threshold, fsync included). It wakes after a
// commit, at most once per CheckpointInterval, and never when the store is idle.

// checkpointBusyTimeout bounds how long a RESTART or TRUNCATE checkpoint waits for readers and
// the writer. It holds SQLite's write lock while it waits, so every batch waits with it: a reader
// in another process that keeps a transaction open (a backup, litestream, a sqlite3 shell) made
// every write wait the whole busy_timeout (5 s), and some fail. A checkpoint that cannot finish
// in this time reports itself busy and is tried again on a later turn.
const checkpointBusyTimeout = 50 * time.Millisecond

// busyPragma is the statement that sets a connection's busy_timeout to d.
func busyPragma(d time.Duration) string {
	return "PRAGMA busy_timeout = " + strconv.FormatInt(d.Milliseconds(), 10)
}

// checkpointer owns its goroutine: Close cancels it and waits.
type checkpointer struct {
	conn             *sql.Conn
	passive, restart *sql.Stmt
	walPath          string
	kick             chan struct{}
	cancel           context.CancelFunc
	done             chan struct{}
}

// kickCheckpointer tells the checkpointer a commit happened; it never blocks the writer.
func (s *Store) kickCheckpointer() {
	select {
	case s.ckpt.kick <- struct{}{}:
	default:
	}
}

func (s *Store) startCheckpointer(ctx context.Context) error {
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: checkpointer connection: %w", err)
	}
	// The WAL is beside the file SQLite opened, which is Path only when Path is a plain file
	// name: SQLite follows a symbolic link, and a file: URI names the file in its own way.
	var file string
	if err := conn.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		_ = conn.Close()
		return fmt.Errorf("sqlite: the database's file: %w", err)
	}
	if _, err := conn.ExecContext(ctx, busyPragma(min(s.BusyTimeout, checkpointBusyTimeout))); err != nil {
		_ = conn.Close()
		return fmt.Errorf("sqlite: checkpointer's busy timeout: %w", err)
	}
	s.file = file
	c := &checkpointer{conn: conn, walPath: file + "-wal", kick: make(chan struct{}, 1), done: make(chan struct{})}
	// PASSIVE copies what it can without waiting for anyone. RESTART waits (busy_timeout) for
	// the writer and readers and copies everything, so that the next commit starts the WAL over:
	// the bound on the WAL. (TRUNCATE, which also empties the file, runs on the writer's
	// connection: see trimWAL.)
	if c.passive, err = conn.PrepareContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err == nil {
		c.restart, err = conn.PrepareContext(ctx, `PRAGMA wal_checkpoint(RESTART)`)
	}
	if err != nil {
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		if err := s.checkpoint(); err != nil {
			s.Logger.Warn("sqlite: checkpoint failed", "err", err)
		}
		t := time.NewTimer(s.CheckpointInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		select {
		case <-c.kick:
			s.kickCheckpointer() // busy: look again at once
		default:
			// No commit for a whole interval: the store is idle, so emptying the file costs
			// no writer anything. Under load the WAL is only restarted, which keeps its size.
			if err := s.trimWAL(); err != nil {
				s.Logger.Warn("sqlite: checkpoint failed", "err", err)
			}
		}
	}
}

// checkpoint runs a PASSIVE checkpoint once the WAL passes CheckpointSize, and a RESTART once it
// passes MaxWALSize. Under steady writes a PASSIVE one never lets the WAL start over (a commit
// always lands while it copies, so the next writer never finds it fully copied): RESTART is the
// bound. It holds off every writer while it copies, so it runs right after a PASSIVE one and has
// only the frames committed in between left to copy: a stall of a millisecond or two instead of
// one as long as copying the whole WAL (60 ms at 64 MiB here). RESTART keeps the file's size
// (truncating it is slow too); trimWAL empties it once the store is idle.
func (s *Store) checkpoint() error {
	size, err := s.walSize()
	if err != nil || size < s.CheckpointSize {
		return err
	}
	if err := s.runCheckpoint(s.ckpt.passive, "PASSIVE", size); err != nil {
		return err
	}
	if size < s.MaxWALSize {
		return nil
	}
	return s.runCheckpoint(s.ckpt.restart, "RESTART", size)
}

// trimWAL empties a WAL grown past CheckpointSize with a TRUNCATE checkpoint. It runs on the
// writer's connection, between two batches: run on another connection, it would change the
// writer's data_version (it rewrites the WAL's header) and make it forget the orders it remembers.
// It waits for readers no longer than checkpointBusyTimeout, as the checkpointer's own do.
func (s *Store) trimWAL() (err error) {
	size, err := s.walSize()
	if err != nil || size < s.CheckpointSize {
		return err
	}
	s.writing.Lock()
	defer s.writing.Unlock()
	if s.conn == nil {
		return nil // the writer lost its connection (replaceWriterConn): the next batch opens one
	}
	ctx := context.Background()
	if _, err := s.conn.ExecContext(ctx, busyPragma(min(s.BusyTimeout, checkpointBusyTimeout))); err != nil {
		return fmt.Errorf("TRUNCATE checkpoint: busy timeout: %w", err)
	}
	defer func() {
		if _, rerr := s.conn.ExecContext(ctx, busyPragma(s.BusyTimeout)); rerr != nil {
			err = errors.Join(err, fmt.Errorf("TRUNCATE checkpoint: restore the writer's busy timeout: %w", rerr))
		}
	}()
	return s.runCheckpoint(s.stmts.truncate, "TRUNCATE", size)
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

func (s *Store) runCheckpoint(stmt *sql.Stmt, mode string, walBytes int64) error {
	var busy, logFrames, copied int
	if err := stmt.QueryRowContext(context.Background()).Scan(&busy, &logFrames, &copied); err != nil {
		return fmt.Errorf("%s checkpoint: %w", mode, err)
	}
	s.Logger.Debug("sqlite: checkpoint", "mode", mode, "wal_bytes", walBytes, "busy", busy, "frames", logFrames, "copied", copied)
	return nil
}

func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	var errs []error
	for _, st := range []*sql.Stmt{c.passive, c.restart} {
		if err := st.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.conn.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close checkpointer: %w", err)
	}
	return nil
}
