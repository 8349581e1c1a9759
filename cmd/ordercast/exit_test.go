package main_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/sqlite"
)

// TestServeExitStatus: serve refused for its flags or environment exits 2 (main.ExitConfig), which
// the systemd unit does not restart, since no restart mends it, and so does a database a later
// release migrated (an old binary restarted after the upgrade), or one that refuses a migration's
// SQL (another application's table of the same name); a failure a restart may mend, a port
// another process holds, exits 1.
func TestServeExitStatus(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	db := filepath.Join(t.TempDir(), "ordercast.db")
	later := filepath.Join(t.TempDir(), "later.db")
	st := sqlite.New(later)
	if err := st.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", later)
	if err != nil {
		t.Fatal(err)
	}
	_, err = raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from_a_later_release', 0)`)
	if cerr := raw.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	// A file that holds another application's orders table refuses the first migration.
	foreign := filepath.Join(t.TempDir(), "foreign.db")
	raw, err = sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	_, err = raw.Exec(`CREATE TABLE orders (sku text)`)
	if cerr := raw.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"a bad flag value", []string{"--addr", "127.0.0.1:0", "--log-format", "xml"}, 2},
		{"an unknown flag", []string{"--addr", "127.0.0.1:0", "--colour"}, 2},
		{"the port is taken", []string{"--addr", taken.Addr().String()}, 1},
		{"a database a later release migrated", []string{"--addr", "127.0.0.1:0", "--db", later}, 2},
		{"a database that refuses a migration", []string{"--addr", "127.0.0.1:0", "--db", foreign}, 2},
	} {
		cmd := exec.Command(binary(t), append([]string{"serve", "--db", db}, tc.args...)...)
		cmd.Env = []string{"ORDERCAST_SECRET=" + testSecret, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tc.want {
			t.Errorf("%s: %v, want exit status %d\n%s", tc.name, err, tc.want, out)
		}
	}
	if got := effective(readUnit(t), "[Service]", "RestartPreventExitStatus"); !slices.Contains(got, "2") {
		t.Errorf("%s: RestartPreventExitStatus=%s, want 2: systemd would restart a node refused for its settings", unitFile, strings.Join(got, " "))
	}
}

// TestServeExitStatus_DatabaseRefusesTheNode: a database that refuses the node as it is
// configured exits 2 (main.ExitConfig), with the server's reason and what to do, since no
// restart changes the answer (systemd restarted it every 2 s, for ever): a database that does
// not exist (3D000), a role that does not exist (28000), a role without CONNECT on the database
// or without CREATE on schema public (42501, the default since PostgreSQL 15 for a role that
// does not own the database), an SQLite file in a directory that does not exist. A database away
// (the connection refused) still exits 1, once --db-wait is over, and is restarted.
func TestServeExitStatus_DatabaseRefusesTheNode(t *testing.T) {
	t.Parallel()
	server := pgtest.ServerURL(t)
	db := pgtest.NewDatabase(t)
	noConnect := pgtest.NewDatabase(t)
	admin := pgtest.Connect(t, server)
	var b [4]byte
	_, _ = rand.Read(b[:])
	role := "h_mig_" + hex.EncodeToString(b[:]) // a role with no privilege of its own
	if _, err := admin.Exec(t.Context(), "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		// Before the databases' cleanups (the last registered runs first): the role owns
		// nothing and was granted nothing in them, so it can go first.
		if _, err := conn.Exec(ctx, "DROP ROLE "+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	if _, err := admin.Exec(t.Context(), "REVOKE CONNECT ON DATABASE "+dbNameOf(t, noConnect)+" FROM PUBLIC"); err != nil {
		t.Fatal(err)
	}
	withUser := func(dbURL, user string) string {
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.User(user)
		return u.String()
	}
	withDB := func(dbURL, name string) string {
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}
	for _, tc := range []struct {
		name, db string
		want     int
		saying   string
	}{
		{"a database that does not exist", withDB(db, "h_mig_absent_"+hex.EncodeToString(b[:])), 2, "(SQLSTATE 3D000): there is no database of that name"},
		{"a role that does not exist", withUser(db, role+"_absent"), 2, "(SQLSTATE 28000): the server refuses the role"},
		{"a role without CONNECT", withUser(noConnect, role), 2, "(SQLSTATE 42501): the role may not connect"},
		{"a role without CREATE on schema public", withUser(db, role), 2, "permission denied for schema public (SQLSTATE 42501): the URL's role may not create"},
		{"an SQLite file in a directory that does not exist", filepath.Join(t.TempDir(), "absent", "ordercast.db"), 2, "does not exist: create it first"},
		{"a database away", "postgres://postgres@127.0.0.1:19977/ordercast?sslmode=disable&connect_timeout=5", 1, "stayed unavailable for --db-wait"},
	} {
		cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0", "--db-wait", "0s")
		cmd.Env = []string{"ORDERCAST_SECRET=" + testSecret, "ORDERCAST_DB=" + tc.db, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tc.want || !strings.Contains(string(out), tc.saying) {
			t.Errorf("%s: %v, want exit status %d saying %q\n%s", tc.name, err, tc.want, tc.saying, out)
		}
		if testing.Verbose() {
			t.Logf("%s: %s", tc.name, out)
		}
	}
}

// dbNameOf is the database name of a PostgreSQL URL.
func dbNameOf(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}
