package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteBatchMetrics: /metrics counts the writes the store committed and the transactions
// they went in, on the embedded SQLite (TestCluster_ListenerTerminated checks PostgreSQL's
// against its paths). Writes one after another each commit alone: a lone write never waits
// for company.
func TestWriteBatchMetrics(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "ordercast.db"))
	for i := range 3 {
		createOrder(t, n.url, fmt.Sprintf("o-%d", i))
	}
	if b, w := metric(t, n.url, "ordercast_write_batches_total"), metric(t, n.url, "ordercast_batched_writes_total"); b != 3 || w != 3 {
		t.Fatalf("after 3 writes one after another: %v batches, %v writes; want 3 and 3", b, w)
	}
}

// TestSQLiteWALMetric: /metrics shows the size of an SQLite node's WAL file, which a reader in
// another process can make grow without bound (a backup, a sqlite3 shell): a gauge to alert on;
// and the free space of the disk it is on.
func TestSQLiteWALMetric(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "ordercast.db")
	n := startNode(t, db)
	createOrder(t, n.url, "o-1")
	fi, err := os.Stat(db + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if got := metric(t, n.url, "ordercast_sqlite_wal_bytes"); got != float64(fi.Size()) || got == 0 {
		t.Fatalf("ordercast_sqlite_wal_bytes = %v, want the WAL file's %d bytes", got, fi.Size())
	}
	// And the free disk, which /readyz holds to --sqlite-min-free: no outage, but a gauge to alert on.
	if got := metric(t, n.url, "ordercast_sqlite_free_disk_bytes"); !(got > 0) {
		t.Fatalf("ordercast_sqlite_free_disk_bytes = %v, want the file system's free bytes", got)
	}
}

// TestBuildInfoMetric: /metrics names the build a node runs, as `ordercast version` does, so a
// dashboard can tell which nodes a rolling upgrade has reached.
func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	// "ordercast <version> revision <revision> (<time>[, dirty]) <go version>"
	words := strings.Fields(string(out))
	if len(words) < 4 || words[2] != "revision" {
		t.Fatalf("ordercast version: %q", out)
	}
	revision := words[3]
	if revision == "unknown" {
		revision = ""
	} else if strings.Contains(string(out), ", dirty)") {
		revision += "+dirty"
	}
	n := startNode(t, filepath.Join(t.TempDir(), "ordercast.db"))
	sample := fmt.Sprintf(`ordercast_build_info{goversion=%q,revision=%q,version=%q}`, words[len(words)-1], revision, words[1])
	if got := metric(t, n.url, sample); got != 1 {
		t.Errorf("%s = %v, want 1", sample, got)
	}
}
