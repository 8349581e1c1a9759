package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/sqlite"
)

// TestBackupCommand: `ordercast backup` copies the database --db names (or ORDERCAST_DB) to the
// new file --to and says what the copy holds; it refuses a PostgreSQL URL, pointing at pg_dump,
// and a run without --to.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "node.db")
	st := sqlite.New(db)
	if err := st.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"o-1", "o-2"} {
		if _, _, err := st.CreateOrder(t.Context(), ordercast.NewOrder{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = st.Close() }) // open: a node serving the file while it is copied

	t.Setenv("ORDERCAST_DB", db)
	to := filepath.Join(dir, "copy.db")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--to", to}, &out, io.Discard); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !strings.Contains(out.String(), "2 orders") {
		t.Errorf("backup said %q, want the copy's 2 orders", out.String())
	}
	if _, err := os.Stat(to); err != nil {
		t.Errorf("no copy: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "--db", "postgres://ordercast:secret@db/ordercast", "--to", filepath.Join(dir, "pg.db")}, "pg_dump"},
		{[]string{"backup"}, "--to is required"},
		{[]string{"backup", "--to", to}, "exists"},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: %v, want a refusal saying %q (and no password)", tc.args, err, tc.want)
		}
	}
}
