package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"
)

// The checkpointer copies the WAL back into the database file on its own goroutine and
// connection, as litestream does, so that no commit pays for a checkpoint (SQLite's automatic
// one runs inside the commit that crosses its threshold, fsync included). It wakes after a
// commit, at most once per CheckpointInterval, and never when the store is idle.

// checkpointer owns its goroutine: Close cancels it and waits.
type checkpointer struct {
	conn              *sql.Conn
	passive, truncate *sql.Stmt
	walPath           string
	kick              chan struct{}
	cancel            context.CancelFunc
	done              chan struct{}
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
	c := &checkpointer{conn: conn, walPath: s.Path + "-wal", kick: make(chan struct{}, 1), done: make(chan struct{})}
	// PASSIVE copies what it can without waiting for anyone. TRUNCATE waits (busy_timeout) for
	// the writer and readers, copies everything and empties the file: the bound on the WAL.
	if c.passive, err = conn.PrepareContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err == nil {
		c.truncate, err = conn.PrepareContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
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
	}
}

// checkpoint runs a PASSIVE checkpoint once the WAL passes CheckpointSize, a TRUNCATE once it
// passes MaxWALSize. A PASSIVE one that copied every frame lets the next commit start the WAL
// over from its beginning, so under steady load the file stops growing; TRUNCATE is for when
// long readers kept it from restarting.
func (s *Store) checkpoint() error {
	c := s.ckpt
	fi, err := os.Stat(c.walPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("stat wal: %w", err)
	}
	stmt, mode := c.passive, "PASSIVE"
	switch {
	case fi.Size() >= s.MaxWALSize:
		stmt, mode = c.truncate, "TRUNCATE"
	case fi.Size() < s.CheckpointSize:
		return nil
	}
	var busy, logFrames, copied int
	if err := stmt.QueryRowContext(context.Background()).Scan(&busy, &logFrames, &copied); err != nil {
		return fmt.Errorf("%s checkpoint: %w", mode, err)
	}
	s.Logger.Debug("sqlite: checkpoint", "mode", mode, "wal_bytes", fi.Size(), "busy", busy, "frames", logFrames, "copied", copied)
	return nil
}

func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	var errs []error
	for _, st := range []*sql.Stmt{c.passive, c.truncate} {
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
