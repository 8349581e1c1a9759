package main_test

import (
	"database/sql"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
