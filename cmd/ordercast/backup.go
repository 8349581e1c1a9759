package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ordercast/ordercast/postgres"
	"github.com/ordercast/ordercast/sqlite"
)

const backupUsage = `Usage: ordercast backup [--db PATH] --to FILE

Writes a consistent copy of the SQLite database at --db to the new file FILE (mode 0600; an
existing file is refused), while the node serving it goes on taking writes, checks the copy, and
prints what it holds. The copy is compacted and needs no -wal beside it: restore it by putting it
in place of the database of a stopped node (docs/deploy.md, Backups). --db falls back to
ORDERCAST_DB, so run in a node's container or beside its unit it copies that node's database.
A PostgreSQL cluster is backed up with pg_dump.
`

// runBackup serves `ordercast backup`.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordercast backup", flag.ContinueOnError)
	db := fs.String("db", DefaultDB, "the SQLite database file `path` to copy")
	to := fs.String("to", "", "the new `file` to write the copy to")
	if _, err := parseCommand(fs, args, backupUsage, stdout, stderr); err != nil {
		return err
	}
	switch {
	case *to == "":
		return errors.New("--to is required: the new file to write the copy to")
	case postgres.IsURL(*db):
		return fmt.Errorf("--db names a PostgreSQL database (%s): back it up with pg_dump (docs/deploy.md, Backups)", redactURL(*db))
	}
	c, err := sqlite.Backup(ctx, *db, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %s to %s: %d orders, schema version %d, %d bytes\n", *db, *to, c.Orders, c.Schema, c.Bytes)
	return nil
}
