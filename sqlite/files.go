package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// lock names the file SQLite opened (s.file), which is Path only when Path is a plain file name:
// SQLite follows a symbolic link, and a file: URI names the file in its own way. Then it makes
// this process the only one serving that file (lockFile): a second ordercast on it would take
// writes, and push each only to its own watchers, so a watcher on one would never see a change
// made through the other. A database in memory has no file to share.
func (s *Store) lock(ctx context.Context) error {
	if err := s.writer.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&s.file); err != nil {
		return fmt.Errorf("sqlite: the database's file: %w", atStart(err)) // an outage is waited out, as the open's
	}
	if s.file == "" {
		return nil
	}
	f, err := lockFile(s.file)
	if err != nil {
		return err
	}
	s.held = f
	return nil
}

// errFileMoved is why the store stops taking writes when its database file, or its WAL, is no
// longer the file at its path: SQLite goes on writing to the files it has open, so a database
// deleted (rm ordercast.db*), replaced (a backup moved over it) or with its WAL removed would
// take every write, acknowledge it and push it to watchers, and lose all of it at the next
// restart. Only a restart opens the file now at the path.
var errFileMoved = errors.New("the database file is no longer the one this store opened (deleted, moved or replaced): restart ordercast to open the one at its path")

// openedFiles is what the database file and its WAL were when the store opened them.
type openedFiles struct {
	db, wal os.FileInfo // wal nil: none at open (it is created with the first write)
}

// noteFiles records the files the store has open at s.file; a store without a file (in memory)
// records nothing and checkFiles passes.
func (s *Store) noteFiles() {
	if s.file == "" {
		return
	}
	s.opened.db, _ = os.Stat(s.file)
	s.opened.wal, _ = os.Stat(s.file + "-wal")
}

// checkFiles returns errFileMoved, wrapped with the path, when the file at the database's path
// (or its WAL's) is not the one the store opened. Two stats: the writer runs it before every
// COMMIT, and Ping with every readiness check.
func (s *Store) checkFiles() error {
	for _, f := range []struct {
		path   string
		opened os.FileInfo
	}{{s.file, s.opened.db}, {s.file + "-wal", s.opened.wal}} {
		if f.opened == nil {
			continue
		}
		now, err := os.Stat(f.path)
		if err != nil || !os.SameFile(now, f.opened) {
			return fmt.Errorf("sqlite: %s: %w", f.path, errFileMoved)
		}
	}
	return nil
}
