package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Copy is what Backup wrote.
type Copy struct {
	Bytes  int64 // the copy's size
	Orders int64 // the orders in it, ended ones included
	Schema int64 // its schema version (schema_migrations)
}

// Backup writes a consistent copy of the database at path to the new file to, while a node may
// be writing to it, and checks it. The copy is SQLite's VACUUM INTO, read in one read transaction
// on a read-only connection: writes go on meanwhile (the WAL grows past its bound until the copy
// is done), and none of them makes it start over, as sqlite3's .backup does after every commit
// of another process, which on a large, busy database never ends. The copy is compacted (the
// free pages a purge leaves are not in it), needs no -wal beside it, and is mode 0600 (it holds
// every order's details), synced to disk before Backup returns. It takes no lock a node holds:
// a node serving path goes on serving it. A file already at to is refused, never overwritten.
func Backup(ctx context.Context, path, to string) (Copy, error) {
	if strings.HasPrefix(path, "file:") { // as serve takes it (uriFile)
		file, err := uriFile(path)
		if err != nil {
			return Copy{}, fmt.Errorf("sqlite: backup: %w", err)
		}
		if file == "" || file == ":memory:" {
			return Copy{}, fmt.Errorf("sqlite: backup: %s names no file to copy", path)
		}
		path = file
	}
	if _, err := os.Stat(path); err != nil {
		return Copy{}, fmt.Errorf("sqlite: backup: %w", err) // SQLite would make an empty one
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Copy{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	absTo, err := filepath.Abs(to) // readOnly opens the copy by it, to check it
	if err != nil {
		return Copy{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	// Made here, empty, so that it is new and its mode is 0600 whatever the umask: VACUUM INTO
	// writes into an empty file as into none.
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Copy{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return Copy{}, errors.Join(fmt.Errorf("sqlite: backup: %w", err), os.Remove(to))
	}
	c, err := backup(ctx, abs, absTo)
	if err == nil {
		err = check(ctx, absTo, &c)
	}
	if err != nil {
		return Copy{}, errors.Join(err, os.Remove(to)) // a copy half-written is no backup
	}
	return c, nil
}

// readOnly opens the database at the absolute path read-only, by SQLite's own mode=ro (a file:
// URI): the connection cannot write to it whatever it runs.
func readOnly(abs string) (*sql.DB, error) {
	return sql.Open("sqlite", (&url.URL{Scheme: "file", OmitHost: true, Path: abs}).String()+"?mode=ro&_pragma=busy_timeout(5000)")
}

// backup copies the database at abs into the empty file to and syncs the copy and its directory.
func backup(ctx context.Context, abs, to string) (Copy, error) {
	db, err := readOnly(abs)
	if err != nil {
		return Copy{}, fmt.Errorf("sqlite: backup: open %s: %w", abs, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, to); err != nil {
		return Copy{}, fmt.Errorf("sqlite: backup %s: %w", abs, err)
	}
	f, err := os.OpenFile(to, os.O_RDWR, 0)
	if err != nil {
		return Copy{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	info, serr := f.Stat()
	err = errors.Join(serr, f.Sync(), f.Close(), syncDir(filepath.Dir(to)))
	if err != nil {
		return Copy{}, fmt.Errorf("sqlite: backup: sync %s: %w", to, err)
	}
	return Copy{Bytes: info.Size()}, nil
}

// syncDir makes a file just created in dir survive a crash: its name is in the directory.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// check reads the copy at the absolute path to as a node would start on it: its pages whole
// (quick_check), its schema version and its orders.
func check(ctx context.Context, to string, c *Copy) error {
	db, err := readOnly(to)
	if err != nil {
		return fmt.Errorf("sqlite: backup: check %s: %w", to, err)
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&verdict); err != nil {
		return fmt.Errorf("sqlite: backup: check %s: %w", to, err)
	}
	if verdict != "ok" {
		return fmt.Errorf("sqlite: backup: the copy %s is damaged: %s", to, verdict)
	}
	err = db.QueryRowContext(ctx, `SELECT (SELECT coalesce(max(version), 0) FROM schema_migrations), (SELECT count(*) FROM orders)`).Scan(&c.Schema, &c.Orders)
	if err != nil {
		return fmt.Errorf("sqlite: backup: check %s: %w", to, err)
	}
	return nil
}
