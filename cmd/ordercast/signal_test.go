package main_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/testutil"
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
	// The first signal has been taken once /readyz says so.
	testutil.WaitFor(t, "/readyz to turn 503 after SIGTERM", func() bool {
		resp, err := http.Get(n.url + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.done:
	case <-time.After(2 * time.Second):
		t.Fatal("still running 2 s after a second SIGTERM")
	}
	// By that signal, as with no handler, after a line that says why the drain stopped.
	if ws, ok := n.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("the process ended with %v, want by SIGTERM", n.cmd.ProcessState)
	}
	if !strings.Contains(n.stderr.String(), "a second SIGTERM: exiting at once") {
		t.Errorf("no line says why the process ended:\n%s", n.stderr.String())
	}
}

// TestSIGHUPDoesNotEndTheNode: SIGHUP, which a certificate's renewal hook or a closed terminal
// sends, ended the process at once with no drain; now it reloads --tls-cert (none here, which
// the log says) and the node serves on.
func TestSIGHUPDoesNotEndTheNode(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "ordercast.db"))
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the node to log the SIGHUP", func() bool {
		select {
		case <-n.done:
			t.Fatalf("the node exited on SIGHUP:\n%s", n.stderr.String())
		default:
		}
		return strings.Contains(n.stderr.String(), "SIGHUP: nothing to reload")
	})
	createOrder(t, n.url, "after-hup")
}
