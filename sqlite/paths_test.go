package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/sqlitetest"
	"github.com/ordercast/ordercast/internal/storehealth"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

// TestCheckpointerFindsTheWAL: the checkpointer bounds the WAL by its size, so it must measure
// the file SQLite writes, which is beside the database file SQLite opened: not beside a symbolic
// link to it (a data volume linked into place), nor a file: URI taken as a name. Measuring a
// file that is not there, it never checkpointed, and the WAL grew without bound.
func TestCheckpointerFindsTheWAL(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "volume", "ordercast.db")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "linked.db")
	if err := os.WriteFile(real, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	uriFile := filepath.Join(dir, "uri.db")
	for _, tt := range []struct{ name, path, wal string }{
		{"plain", filepath.Join(dir, "plain.db"), filepath.Join(dir, "plain.db-wal")},
		{"symbolic link", link, real + "-wal"},
		{"file: URI", "file:" + uriFile, uriFile + "-wal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := storetest.MustOpen(t, sqlite.New(tt.path))
			if got := sqlite.WALPath(s); got != tt.wal {
				t.Fatalf("the checkpointer measures %s, want %s", got, tt.wal)
			}
			if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"}); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(tt.wal); err != nil || fi.Size() == 0 {
				t.Fatalf("no WAL written at %s: %v", tt.wal, err)
			}
		})
	}
}

// TestOpenOnALockedFileIsUnavailable: a file whose write lock another process holds past
// busy_timeout at start is an outage (cmd/ordercast waits out EUnavailable at start), not a
// configuration error that ends the process.
func TestOpenOnALockedFileIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	if err := storetest.MustOpen(t, sqlite.New(path)).Close(); err != nil { // schema in place, as on any restart
		t.Fatal(err)
	}
	sqlitetest.HoldElsewhere(t, path, sqlitetest.WriteLock)
	s := sqlite.New(path)
	s.BusyTimeout = 50 * time.Millisecond
	err := s.Open(t.Context())
	if err == nil {
		_ = s.Close()
		t.Fatal("opened a locked file")
	}
	if got := ordercast.ErrorCode(err); got != ordercast.EUnavailable {
		t.Errorf("Open on a locked file: %v (code %q), want %q", err, got, ordercast.EUnavailable)
	}
}

// TestOpenRefusesAPathThatCannotBeADatabase: a directory, or a file in a directory that does not
// exist, is a mistyped --db. SQLite calls both "unable to open", as it does a file system that is
// briefly away; Open must say what is wrong, and not as an outage that start-up waits out
// (--db-wait, a minute by default); and as storehealth.ErrMisconfigured, on which serve exits 2,
// not restarted by its unit: a restart finds the same path.
func TestOpenRefusesAPathThatCannotBeADatabase(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{dir, "is a directory"},
		{filepath.Join(dir, "missing", "x.db"), "does not exist"},
		{filepath.Join(file, "x.db"), "is not a directory"},
		// A file: URI is judged by the file it names.
		{"file:" + dir, "is a directory"},
		{"file://localhost" + filepath.Join(dir, "missing", "x.db"), "does not exist"},
		{"file://db.example" + filepath.Join(dir, "x.db"), `names the host "db.example"`},
	} {
		err := sqlite.New(tt.path).Open(t.Context())
		if err == nil || !strings.Contains(err.Error(), tt.want) || ordercast.ErrorCode(err) == ordercast.EUnavailable || !errors.Is(err, storehealth.ErrMisconfigured) {
			t.Errorf("Open(%s) = %v (code %q), want storehealth.ErrMisconfigured saying %q, not %q", tt.path, err, ordercast.ErrorCode(err), tt.want, ordercast.EUnavailable)
		}
	}
}

// TestReaderElsewhereDoesNotFailWrites: another process keeps a read transaction open on the
// file (a backup, litestream, a sqlite3 shell), so the WAL cannot start over and the writer tries
// to restart it every CheckpointInterval. In WAL mode a reader never blocks a writer; the
// checkpoint, which holds the write lock while it waits for readers, must give up before the
// writes behind it run out of their busy_timeout.
func TestReaderElsewhereDoesNotFailWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	s.BusyTimeout = 200 * time.Millisecond
	s.CheckpointInterval = 100 * time.Millisecond // each try holds the writes for up to 50 ms
	s.CheckpointSize = 16 << 10
	s.MaxWALSize = 32 << 10 // the pinned reader makes the WAL pass it at once
	storetest.MustOpen(t, s)
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "first"}); err != nil {
		t.Fatal(err)
	}
	sqlitetest.HoldElsewhere(t, path, `SELECT count(*) FROM orders`) // a read transaction
	details := []byte(`{"pad":"` + strings.Repeat("x", 900) + `"}`)
	for i := range 300 {
		if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d", i), Details: details}); err != nil {
			t.Fatalf("write %d beside a reader in another process: %v", i, err)
		}
	}
}

// TestPingOnALockedFileSaysLocked: with the default busy_timeout (longer than a readiness
// check waits), a write lock another process holds makes Ping report the store unavailable
// because the file is locked, not fail with its caller's deadline.
func TestPingOnALockedFileSaysLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	sqlitetest.HoldElsewhere(t, path, sqlitetest.WriteLock)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // as /readyz asks
	defer cancel()
	err := s.Ping(ctx)
	if ordercast.ErrorCode(err) != ordercast.EUnavailable || s.Unavailable() != "locked" {
		t.Fatalf("Ping on a locked file: %v (code %q, reason %q), want unavailable, locked", err, ordercast.ErrorCode(err), s.Unavailable())
	}
}

// TestOpenRefusesAFileThatIsNotADatabaseAtOnce: a file that is not SQLite's (a mistyped --db
// naming some other file) stays so however long start-up waits: it is refused as what it is,
// not as an outage (--db-wait, a minute by default, of "the database is corrupt; retry shortly").
func TestOpenRefusesAFileThatIsNotADatabaseAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 400)), 0o644); err != nil {
		t.Fatal(err)
	}
	err := sqlite.New(path).Open(t.Context())
	if err == nil || ordercast.ErrorCode(err) == ordercast.EUnavailable || !strings.Contains(err.Error(), "not a database") {
		t.Fatalf("Open(a text file) = %v (code %q), want SQLite's \"not a database\", not %q", err, ordercast.ErrorCode(err), ordercast.EUnavailable)
	}
}

// TestOpenRefusesADirectoryItMayNotWrite: a database whose directory this process may not write
// (a service user that does not own it) is refused at once, saying so; SQLite's own words are
// "unable to open database file", which start-up waited out as an outage. Root may write any
// directory, so as root the test runs itself again as nobody (setpriv), where it can.
func TestOpenRefusesADirectoryItMayNotWrite(t *testing.T) {
	if os.Geteuid() == 0 {
		asNobody(t, "TestOpenRefusesADirectoryItMayNotWrite")
		return
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	err := sqlite.New(filepath.Join(dir, "x.db")).Open(t.Context())
	if err == nil || ordercast.ErrorCode(err) == ordercast.EUnavailable || !strings.Contains(err.Error(), "not writable") || !errors.Is(err, storehealth.ErrMisconfigured) {
		t.Fatalf("Open in a read-only directory = %v (code %q), want storehealth.ErrMisconfigured saying \"not writable\", not %q", err, ordercast.ErrorCode(err), ordercast.EUnavailable)
	}
}

// asNobody runs the test named test again in a copy of this test binary as user nobody, and
// fails when it does not pass there.
func asNobody(t *testing.T, test string) {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("setpriv (util-linux) is needed to run this test as another user than root")
		}
		t.Skip("setpriv (util-linux) not found: cannot run this test as another user than root")
	}
	// The build's own directory is root's alone: the copy goes where nobody may run it.
	dir, err := os.MkdirTemp("", "ordercast-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sqlite.test")
	if err := errors.Join(os.WriteFile(bin, self, 0o755), os.Chmod(dir, 0o755)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+os.TempDir(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

// TestSecondStoreOnOneFileIsRefused: two ordercast processes on one database would each push
// only their own changes to their own watchers, so a watcher on one never saw a change made
// through the other. The second is refused at open, by any name of the file, with the first's
// process id; once the first closes, it opens.
func TestSecondStoreOnOneFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ordercast.db")
	link := filepath.Join(dir, "linked.db")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	first := sqlite.New(file)
	if err := first.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Close() })
	if _, _, err := first.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, link, "file:" + file} {
		second := sqlite.New(path)
		err := second.Open(t.Context())
		if err == nil {
			_ = second.Close()
			t.Fatalf("a second store opened %s while the first had it open", path)
		}
		if want := fmt.Sprintf("in use by another ordercast (process %d)", os.Getpid()); !strings.Contains(err.Error(), want) {
			t.Fatalf("second store on %s: %v, want it to say %q", path, err, want)
		}
		if ordercast.ErrorCode(err) == ordercast.EUnavailable {
			t.Fatalf("second store on %s: %v is an outage to wait out, want a refusal", path, err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := storetest.MustOpen(t, sqlite.New(link))
	if _, err := second.Order(t.Context(), "o-1"); err != nil {
		t.Fatalf("the second store, once the first closed: %v", err)
	}
}

// TestANewDatabaseIsPrivate: a database file the store creates, its -wal and -shm and its lock
// file are readable and writable by the process's user alone (orders hold customers' details
// and drop-offs), whatever the umask, named by a path or by a file: URI; an existing file keeps
// the mode its owner gave it.
func TestANewDatabaseIsPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ordercast.db")
	st := sqlite.New(path)
	if err := st.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"}); err != nil {
		t.Fatal(err) // a write, so that the -wal is there
	}
	for _, name := range []string{"ordercast.db", "ordercast.db-wal", "ordercast.db-shm", "ordercast.db-lock"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, perm)
		}
	}

	// A symbolic link put in place before the first start: the file at its end is private too.
	data := filepath.Join(dir, "volume")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(dir, "linked.db")
	if err := os.Symlink(filepath.Join(data, "real.db"), linked); err != nil {
		t.Fatal(err)
	}
	viaLink := sqlite.New(linked)
	if err := viaLink.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer viaLink.Close()
	if fi, err := os.Stat(filepath.Join(data, "real.db")); err != nil {
		t.Error(err)
	} else if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("the file at a link's end has mode %o, want 600", perm)
	}

	// A file: URI, percent-encoded as SQLite reads it: "my%20orders.db" names "my orders.db".
	viaURI := sqlite.New("file://" + filepath.Join(dir, "my%20orders.db"))
	if err := viaURI.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer viaURI.Close()
	if _, _, err := viaURI.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"my orders.db", "my orders.db-wal", "my orders.db-shm"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		} else if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s, named by a file: URI, has mode %o, want 600", name, perm)
		}
	}

	shared := filepath.Join(dir, "shared.db")
	if err := os.WriteFile(shared, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o640); err != nil { // past the umask
		t.Fatal(err)
	}
	other := sqlite.New(shared)
	if err := other.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("an existing file's mode: %v, %v; want 640 as its owner left it", fi.Mode(), err)
	}
}
