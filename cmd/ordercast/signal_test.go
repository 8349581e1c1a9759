package main_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/testutil"
)

// TestSIGINTDuringTheShutdownEndsAtOnce: the first signal starts a graceful shutdown (here a
// delay of 4 s serving not-ready); a SIGINT then ends the process at once, as an operator
// pressing Ctrl-C twice expects, instead of being ignored until the shutdown is done.
func TestSIGINTDuringTheShutdownEndsAtOnce(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "ordercast.db"), "ORDERCAST_SHUTDOWN_DELAY=4s")
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The first signal has been taken once /readyz says so.
	waitNotReady(t, n)
	if err := n.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.done:
	case <-time.After(2 * time.Second):
		t.Fatal("still running 2 s after a SIGINT during the shutdown")
	}
	// By that signal, as with no handler, after a line that says why the drain stopped.
	if ws, ok := n.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("the process ended with %v, want by SIGINT", n.cmd.ProcessState)
	}
	if !strings.Contains(n.stderr.String(), "SIGINT during the shutdown: exiting at once") {
		t.Errorf("no line says why the process ended:\n%s", n.stderr.String())
	}
}

// TestARepeatedSIGTERMDrains: GNU timeout sends its SIGTERM to the process and to its group, so
// the node may get it twice; that ended the process by the second before it had drained. A
// SIGTERM during the shutdown is now noted and the shutdown goes on to its end: exit 0.
func TestARepeatedSIGTERMDrains(t *testing.T) {
	t.Parallel()
	n := startNode(t, filepath.Join(t.TempDir(), "ordercast.db"), "ORDERCAST_SHUTDOWN_DELAY=2s")
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitNotReady(t, n)
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30 s after SIGTERM")
	}
	if !n.cmd.ProcessState.Success() {
		t.Fatalf("the process ended with %v, want exit 0 after its drain:\n%s", n.cmd.ProcessState, n.stderr.String())
	}
	if !strings.Contains(n.stderr.String(), "SIGTERM again: the drain goes on") {
		t.Errorf("no line says the repeated SIGTERM was taken:\n%s", n.stderr.String())
	}
}

// waitNotReady waits for n's /readyz to turn 503: the node has taken its first signal.
func waitNotReady(t *testing.T, n *node) {
	t.Helper()
	testutil.WaitFor(t, "/readyz to turn 503 after SIGTERM", func() bool {
		resp, err := http.Get(n.url + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
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

// TestSIGHUPSaysWhetherTheCertificateChanged: systemd copies LoadCredential= files at start only,
// so a reload after a renewal on disk reads the same certificate again. The node says so, at
// WARN, naming the restart it takes; a certificate that did change is logged at INFO. Both name
// the serial and expiry of the certificate now presented, as ordercast_tls_cert_not_after_seconds
// does.
func TestSIGHUPSaysWhetherTheCertificateChanged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := testutil.WriteCertificate(t, certFile, keyFile, 0x0A1B)
	n, urls := launchNode(t, filepath.Join(dir, "ordercast.db"),
		"ORDERCAST_TLS_CERT="+certFile, "ORDERCAST_TLS_KEY="+keyFile, "ORDERCAST_LOG_FORMAT=json")
	// The serving line comes after SIGHUP is caught: a signal from here on is handled. (Not
	// awaitServing: its readiness probe speaks plain HTTP.)
	n.awaitURL(t, urls)

	hup := func() sighupLine {
		t.Helper()
		seen := len(sighupLines(t, n.stderr.String()))
		if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		var lines []sighupLine
		testutil.WaitFor(t, "the node to log the SIGHUP", func() bool {
			lines = sighupLines(t, n.stderr.String())
			return len(lines) > seen
		})
		return lines[seen]
	}
	check := func(got sighupLine, level string, want *x509.Certificate) {
		t.Helper()
		if got.Level != level || got.Serial != fmt.Sprintf("%X", want.SerialNumber) || !got.NotAfter.Equal(want.NotAfter) {
			t.Errorf("logged %s %q serial %s not_after %s; want %s, serial %X, not_after %s",
				got.Level, got.Msg, got.Serial, got.NotAfter, level, want.SerialNumber, want.NotAfter)
		}
	}

	// ordercast_tls_cert_not_after_seconds is the expiry of the certificate presented now.
	trusting := func(certs ...*x509.Certificate) *http.Client {
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	expiry := func(client *http.Client, want *x509.Certificate) {
		t.Helper()
		if got := metricFrom(t, client, n.url, "ordercast_tls_cert_not_after_seconds"); got != float64(want.NotAfter.Unix()) {
			t.Errorf("ordercast_tls_cert_not_after_seconds = %v, want %d (serial %X)", got, want.NotAfter.Unix(), want.SerialNumber)
		}
	}
	expiry(trusting(first), first)

	// The files as they were: what a unit with LoadCredential= sees after a renewal.
	same := hup()
	check(same, "WARN", first)
	if !strings.Contains(same.Msg, "LoadCredential") || !strings.Contains(same.Msg, "restart") {
		t.Errorf("the warning does not name LoadCredential and the restart: %q", same.Msg)
	}

	renewed := testutil.WriteCertificate(t, certFile, keyFile, 0x2C3D)
	check(hup(), "INFO", renewed)
	expiry(trusting(renewed), renewed)
}

// sighupLine is a line of the node's JSON log about a SIGHUP.
type sighupLine struct {
	Level    string    `json:"level"`
	Msg      string    `json:"msg"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
}

// sighupLines returns the lines of a JSON log that answer a SIGHUP, in order.
func sighupLines(t *testing.T, log string) []sighupLine {
	t.Helper()
	var lines []sighupLine
	for text := range strings.Lines(log) {
		if !strings.HasPrefix(text, "{") {
			continue // not the logger's: a line the process wrote to stderr itself
		}
		var l sighupLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			t.Fatalf("log line %q: %v", text, err)
		}
		if strings.HasPrefix(l.Msg, "SIGHUP") {
			lines = append(lines, l)
		}
	}
	return lines
}
