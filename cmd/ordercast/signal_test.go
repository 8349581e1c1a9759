package main_test

import (
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalEndsAtOnce: the first SIGTERM starts a graceful shutdown (here a delay of 4 s
// serving not-ready); a second ends the process at once, as an operator pressing Ctrl-C twice
// expects, instead of being ignored until the shutdown is done.
func TestSecondSignalEndsAtOnce(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "ordercast.db"), "ORDERCAST_SHUTDOWN_DELAY=4s")
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for { // the first signal has been taken once /readyz says so
		resp, err := http.Get(n.url + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still ready 10 s after SIGTERM (last: %v)", err)
		}
		time.Sleep(10 * time.Millisecond) // polling readiness with a deadline
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.done:
	case <-time.After(2 * time.Second):
		t.Fatal("still running 2 s after a second SIGTERM")
	}
}
