package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/sqlite"
)

// TestBadConfigurationStopsStartUp: a bad value, from a flag or from its environment variable,
// stops start-up with a message that names the flag.
func TestBadConfigurationStopsStartUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in the error
	}{
		{"duration not a duration", []string{"--heartbeat", "soon"}, nil, "heartbeat"},
		{"zero heartbeat", []string{"--heartbeat", "0s"}, nil, "--heartbeat must be positive"},
		{"heartbeat of a nanosecond", []string{"--heartbeat", "1ns"}, nil, "--heartbeat must be at least 1s"},
		{"stream write timeout of a nanosecond", []string{"--stream-write-timeout", "1ns"}, nil, "--stream-write-timeout must be at least 1s"},
		{"retry of an hour", []string{"--retry", "1h"}, nil, "--retry must be at most 1m"},
		{"no read header timeout", []string{"--read-header-timeout", "0s"}, nil, "--read-header-timeout must be positive"},
		{"no idle timeout", []string{"--idle-timeout", "0s"}, nil, "--idle-timeout must be positive"},
		{"a header block too small", []string{"--max-header-bytes", "100"}, nil, "--max-header-bytes must be at least 1024"},
		{"anonymous budget without a budget", []string{"--write-rate", "0", "--anon-write-rate", "5"}, nil, "need --write-rate"},
		{"negative drain", []string{"--drain", "-1s"}, nil, "--drain must not be negative"},
		{"drain longer than the shutdown", []string{"--drain", "40s"}, nil, "--shutdown-timeout"},
		{"delay and drain longer than the shutdown", []string{"--shutdown-delay", "25s"}, nil, "--shutdown-delay"},
		{"negative stream lifetime", []string{"--stream-lifetime", "-5m"}, nil, "--stream-lifetime"},
		{"negative location interval", []string{"--location-interval", "-1s"}, nil, "--location-interval must not be negative"},
		{"positions shown from placed", []string{"--location-from", "placed"}, nil, "--location-from must be a stage from confirmed to out_for_delivery"},
		{"positions shown from delivered", []string{"--location-from", "delivered"}, nil, "--location-from"},
		{"write rate not a number", []string{"--write-rate", "NaN"}, nil, "--write-rate must be a finite number"},
		{"write rate infinite", []string{"--write-rate", "+Inf"}, nil, "--write-rate must be a finite number"},
		{"anonymous write rate not a number", []string{"--anon-write-rate", "NaN"}, nil, "--anon-write-rate must be a finite number"},
		{"location rate not a number", []string{"--location-rate", "NaN"}, nil, "--location-rate must be a finite number"},
		{"location rate infinite", []string{"--location-rate", "+Inf"}, nil, "--location-rate must be a finite number"},
		{"nearby radius not a number", []string{"--nearby-radius", "NaN"}, nil, "--nearby-radius must be a finite number"},
		{"nearby radius infinite", []string{"--nearby-radius", "Inf"}, nil, "--nearby-radius must be a finite number"},
		{"negative location burst", []string{"--location-burst", "-1"}, nil, "--location-burst must not be negative"},
		{"zero location fresh", []string{"--location-fresh", "0s"}, nil, "--location-fresh must be positive"},
		{"zero location batch", []string{"--location-batch", "0s"}, nil, "--location-batch must be positive"},
		{"nearby radius from env", nil, map[string]string{"ORDERCAST_NEARBY_RADIUS": "nan"}, "--nearby-radius must be a finite number"},
		{"coarse radius not a number", []string{"--location-coarse", "NaN"}, nil, "--location-coarse must be a finite number"},
		{"coarse radius zero", []string{"--location-coarse", "0"}, nil, "--location-coarse must be a finite number of metres above 0"},
		{"max body not a number", []string{"--max-body", "lots"}, nil, "max-body"},
		{"max body zero", []string{"--max-body", "0"}, nil, "--max-body"},
		{"address without port", []string{"--addr", "localhost"}, nil, "--addr"},
		{"pprof address without port", []string{"--pprof", "localhost"}, nil, "--pprof"},
		{"metrics address without port", []string{"--metrics-addr", "localhost"}, nil, "--metrics-addr"},
		{"metrics on the main address", []string{"--addr", "127.0.0.1:7070", "--metrics-addr", "127.0.0.1:7070"}, nil, "--metrics-addr must differ from --addr"},
		{"metrics address from env", nil, map[string]string{"ORDERCAST_METRICS_ADDR": "9090"}, "--metrics-addr"},
		{"log format", []string{"--log-format", "xml"}, nil, "--log-format"},
		{"sqlite sync", []string{"--sqlite-sync", "off"}, nil, "--sqlite-sync must be normal or full"},
		{"sqlite sync from env", nil, map[string]string{"ORDERCAST_SQLITE_SYNC": "FULL"}, "--sqlite-sync must be normal or full"},
		{"sqlite min free negative", []string{"--sqlite-min-free", "-1"}, nil, "--sqlite-min-free must not be negative"},
		{"retention shorter than a tracking token lives", []string{"--retention", "72h"}, nil, "--retention must be 0 (keep every order) or at least 192h0m0s"},
		{"negative retention", []string{"--retention", "-1h"}, nil, "--retention must be 0"},
		{"retention under a longer tracking ttl", []string{"--retention", "200h", "--tracking-ttl", "240h"}, nil, "at least 264h0m0s"},
		{"log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"accepted secret too short", []string{"--accept-secrets", "hunter2"}, map[string]string{"ORDERCAST_SECRET": testSecret}, "--accept-secrets: an accepted secret must be at least 32 bytes"},
		// Long enough, and no secret at all: one tracking token is all it takes to find it.
		{"secret not random", nil, map[string]string{"ORDERCAST_SECRET": strings.Repeat("a", 32)}, "--secret holds only 1 different bytes: it is not random"},
		{"accepted secret not random", []string{"--accept-secrets", strings.Repeat("deadbeef", 4)}, map[string]string{"ORDERCAST_SECRET": testSecret}, "--accept-secrets: an accepted secret holds only 5 different bytes"},
		{"token lifetime zero", []string{"--max-token-lifetime", "0s"}, nil, "--max-token-lifetime must be positive"},
		{"certificate without key", []string{"--tls-cert", "c.pem"}, nil, "--tls-key"},
		{"key without certificate", []string{"--tls-key", "k.pem"}, nil, "--tls-cert"},
		{"h2c with TLS", []string{"--h2c", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, nil, "--h2c"},
		{"h2c not a boolean", []string{"--h2c=maybe"}, nil, "h2c"},
		{"unknown flag", []string{"--colour", "blue"}, nil, "unknown flag --colour (ordercast serve --help lists the flags)"},
		{"a value the flag package refuses", []string{"--drain", "bogus"}, nil, `invalid value "bogus" for flag --drain`},
		{"stray argument", []string{"extra"}, nil, `"extra"`},
		{"env duration", nil, map[string]string{"ORDERCAST_HEARTBEAT": "often"}, "ORDERCAST_HEARTBEAT (flag --heartbeat)"},
		{"env number", nil, map[string]string{"ORDERCAST_MAX_BODY": "-"}, "ORDERCAST_MAX_BODY (flag --max-body)"},
		{"env boolean", nil, map[string]string{"ORDERCAST_H2C": "sometimes"}, "ORDERCAST_H2C (flag --h2c)"},
		{"env value checked like a flag", nil, map[string]string{"ORDERCAST_LOG_FORMAT": "yaml"}, "--log-format"},
		{"env drain", nil, map[string]string{"ORDERCAST_DRAIN": "1m"}, "--drain"},
		{"demo on the environment's database", []string{"--demo"}, map[string]string{"ORDERCAST_DB": "postgres://u:secret@db.internal/orders"}, "ORDERCAST_DB names one from the environment (postgres://u:xxxxx@db.internal/orders)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			err := NewMain(io.Discard, &stderr).ParseFlags(tc.args)
			if err == nil {
				t.Fatal("ParseFlags accepted the configuration")
			}
			if msg := err.Error() + stderr.String(); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q (stderr %q) does not mention %q", err, stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String(), "Flags (each") {
				t.Errorf("a page of usage came before the error: %q", stderr.String())
			}
		})
	}
}

// TestAKeyValueConnectionStringIsRefused: --db in libpq's key=value form is refused with a message
// that says to give a URL and does not repeat the value (it holds a password), where it was taken
// for an SQLite file's name: the node ran alone, on a file of that name, the password in its logs.
func TestAKeyValueConnectionStringIsRefused(t *testing.T) {
	const conninfo = "host=db.internal user=u password=hunter2 dbname=orders"
	t.Setenv("ORDERCAST_SECRET", testSecret) // only --db is wrong
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag", []string{"--db", conninfo}, nil},
		{"environment", nil, map[string]string{"ORDERCAST_DB": conninfo}},
		{"one key", []string{"--db", "dbname=orders"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			err := NewMain(io.Discard, &stderr).ParseFlags(tc.args)
			if err == nil {
				t.Fatal("ParseFlags accepted a key=value connection string as an SQLite file")
			}
			msg := err.Error() + stderr.String()
			if !strings.Contains(msg, "postgres://") || strings.Contains(msg, "hunter2") {
				t.Errorf("error %q: want one that asks for a postgres:// URL without repeating the password", msg)
			}
		})
	}
	// A password with an @ not percent-encoded: the driver would read part of it as the host,
	// and name that in its errors. Encoded, it is taken.
	for _, db := range []string{
		"postgres://u:hunt@er2@db.internal:5432/orders",
		"postgres://u:hu?nt@er2@db.internal:5432/orders", // the driver's user and password go past a ?
	} {
		if err := NewMain(io.Discard, io.Discard).ParseFlags([]string{"--db", db}); err == nil ||
			!strings.Contains(err.Error(), "%40") || strings.Contains(err.Error(), "er2") {
			t.Errorf("--db %s: %v; want a refusal that asks for %%40 without repeating the password", db, err)
		}
	}
	for _, db := range []string{
		"postgres://u:hunt%40er2@db.internal:5432/orders?sslmode=disable",
		"postgres://u:hunter2@db.internal?application_name=a@b", // an @ in the query is no password's
	} {
		if err := NewMain(io.Discard, io.Discard).ParseFlags([]string{"--db", db}); err != nil {
			t.Errorf("--db %s: %v, want it taken", db, err)
		}
	}
	// A URL that is no PostgreSQL one, or a near miss of one, is no SQLite file's name either:
	// taken for one, the node ran alone on a file named with the password, or failed naming it.
	for _, db := range []string{
		"postgress://u:hunter2@db.internal:5432/orders",
		"Postgres://u:hunter2@db.internal:5432/orders",
		"POSTGRESQL://u:hunter2@db.internal/orders",
		"postgres:u:hunter2@db.internal",
		"mysql://u:hunter2@db.internal/orders",
	} {
		err := NewMain(io.Discard, io.Discard).ParseFlags([]string{"--db", db})
		if err == nil || !strings.Contains(err.Error(), "postgres://") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--db %s: %v; want a refusal that shows a postgres:// URL without repeating the password", db, err)
		}
	}
	// A file whose name holds '=' is no connection string, nor one whose name holds a colon.
	for _, name := range []string{"orders=2026.db", "orders:2026.db", "postgres.db"} {
		for _, path := range []string{filepath.Join(t.TempDir(), name), name} {
			if err := NewMain(io.Discard, io.Discard).ParseFlags([]string{"--db", path}); err != nil {
				t.Errorf("--db %s: %v; want an SQLite file", path, err)
			}
		}
	}
	// Nor is an SQLite file: URI, in any of the forms the store reads.
	abs := filepath.Join(t.TempDir(), "ordercast.db")
	for _, uri := range []string{"file://" + abs, "file://localhost" + abs, "file:" + abs} {
		if err := NewMain(io.Discard, io.Discard).ParseFlags([]string{"--db", uri}); err != nil {
			t.Errorf("--db %s: %v; want an SQLite file", uri, err)
		}
	}
}

// TestAcceptedSecretsVerifyButNeverSign: --accept-secrets (or its variable) makes the node take
// tokens signed with those secrets, for a rotation, while what it signs is --secret's. A secret
// is taken whole, a comma and spaces in it included, as --secret takes it.
func TestAcceptedSecretsVerifyButNeverSign(t *testing.T) {
	current, previous := testSecret, " an old secret, with a comma, and spaces "
	t.Setenv("ORDERCAST_ACCEPT_SECRETS", previous)
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseFlags([]string{"--secret", current}); err != nil {
		t.Fatal(err)
	}
	old, err := auth.New([]byte(previous))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := old.SignActor(auth.Actor{Role: auth.RoleSystem, Sub: "checkout"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.authority.ParseActor(tok); err != nil {
		t.Errorf("a token of the accepted secret: %v; want it taken", err)
	}
	signed, _, err := m.authority.SignTracking("o-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ParseTracking(signed); err == nil {
		t.Error("the node signed with the accepted secret, not with --secret")
	}
}

// TestEnvironmentFillsFlags: ORDERCAST_* variables set what the command line leaves out, and the
// command line wins over them.
func TestEnvironmentFillsFlags(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	t.Setenv("ORDERCAST_DRAIN", "3s")
	t.Setenv("ORDERCAST_H2C", "true")
	t.Setenv("ORDERCAST_PPROF", "127.0.0.1:6060")
	t.Setenv("ORDERCAST_ADDR", ":9999")
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseFlags([]string{"--addr", ":7070"}); err != nil {
		t.Fatal(err)
	}
	if m.HTTP.DrainWindow != 3*time.Second || !m.HTTP.H2C || m.Pprof != "127.0.0.1:6060" || m.HTTP.Addr != ":7070" {
		t.Errorf("got drain %s, h2c %v, pprof %q, addr %q; want 3s, true, 127.0.0.1:6060, :7070", m.HTTP.DrainWindow, m.HTTP.H2C, m.Pprof, m.HTTP.Addr)
	}
}

// TestSQLiteSync: --sqlite-sync reaches the SQLite store, which runs its commits with that
// setting (sqlite's TestOpen_Synchronous shows the pragma follows it).
func TestSQLiteSync(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	for _, tc := range []struct {
		args []string
		want string
	}{{nil, "FULL"}, {[]string{"--sqlite-sync", "normal"}, "NORMAL"}, {[]string{"--sqlite-sync", "full"}, "FULL"}} {
		m := NewMain(io.Discard, io.Discard)
		if err := m.ParseFlags(append([]string{"--db", filepath.Join(t.TempDir(), "o.db")}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if err := m.openStore(t.Context()); err != nil {
			t.Fatal(err)
		}
		st, ok := m.Store.(*sqlite.Store)
		if !ok {
			t.Fatalf("store is %T, want *sqlite.Store", m.Store)
		}
		if st.Synchronous != tc.want {
			t.Errorf("%v: store runs synchronous=%s, want %s", tc.args, st.Synchronous, tc.want)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestSQLiteMinFree: --sqlite-min-free reaches the SQLite store as its readiness floor: a floor
// above any disk's free space makes the store not ready, and 0 never judges it.
func TestSQLiteMinFree(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	for _, tc := range []struct {
		mib   string
		ready bool
	}{{"1099511627776", false}, {"0", true}} { // 2^40 MiB: more than any disk has free
		m := NewMain(io.Discard, io.Discard)
		if err := m.ParseFlags([]string{"--db", filepath.Join(t.TempDir(), "o.db"), "--sqlite-min-free", tc.mib}); err != nil {
			t.Fatal(err)
		}
		if err := m.openStore(t.Context()); err != nil {
			t.Fatal(err)
		}
		err := m.Store.Ping(t.Context())
		if ready := err == nil; ready != tc.ready {
			t.Errorf("--sqlite-min-free %s: ping %v, want ready %v", tc.mib, err, tc.ready)
		}
		if err := m.Store.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestServeHelp: `ordercast serve --help` lists every flag with its environment variable and its
// default, and is not an error for the shell.
func TestServeHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--help"}, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run serve --help: %v, want flag.ErrHelp (exit 0)", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("serve --help wrote to stderr: %q", stderr.String())
	}
	help := stdout.String()
	for _, want := range []string{
		"--addr", "ORDERCAST_ADDR", "default :8080",
		"--db", "--heartbeat", "--retry", "--stream-write-timeout", "--max-body",
		"--drain", "ORDERCAST_DRAIN", "default 10s",
		"--shutdown-delay", "--shutdown-timeout", "default 30s", "--stream-lifetime",
		"--tls-cert", "ORDERCAST_TLS_CERT", "--tls-key", "--h2c", "ORDERCAST_H2C",
		"--pprof", "ORDERCAST_PPROF", "--metrics-addr", "ORDERCAST_METRICS_ADDR", "--log-format", "default text", "--log-level",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, help)
		}
	}
	// Every flag is listed, new ones included.
	NewMain(io.Discard, io.Discard).flagSet().VisitAll(func(f *flag.Flag) {
		if !strings.Contains(help, "  --"+f.Name+"\n") && !strings.Contains(help, "  --"+f.Name+" ") || !strings.Contains(help, envName(f.Name)) {
			t.Errorf("serve --help lacks --%s or %s", f.Name, envName(f.Name))
		}
		if f.DefValue != "" && !strings.Contains(help, "default "+f.DefValue) {
			t.Errorf("serve --help lacks the default of --%s, %s", f.Name, f.DefValue)
		}
	})
}

// TestServeStopsOnSignal runs `ordercast serve` until its context ends, as on SIGTERM, and
// checks that it then returns without error (exit 0).
func TestServeStopsOnSignal(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--drain", "100ms",
			"--db", filepath.Join(t.TempDir(), "ordercast.db")}, w, io.Discard)
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the serving line: %v", err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "ordercast is serving on "))
	if got := getStatus(t, url+"/readyz"); got != http.StatusOK {
		t.Fatalf("readyz: %d, want 200", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after the signal: %v, want nil (exit 0)", err)
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	status, _ := get(t, url)
	return status
}

// get GETs url and returns the status and the body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read the body: %v", url, err)
	}
	return resp.StatusCode, body
}

// TestServeRunsAndStops runs the real service on 127.0.0.1:0 with profiling on its own port:
// /metrics is served, pprof is on the separate listener only, and the service stops cleanly
// when its context ends (a signal).
func TestServeRunsAndStops(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	m := NewMain(io.Discard, io.Discard)
	err := m.ParseFlags([]string{
		"--addr", "127.0.0.1:0", "--pprof", "127.0.0.1:0", "--drain", "0s",
		"--db", filepath.Join(t.TempDir(), "ordercast.db"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for _, tc := range []struct {
		url  string
		want int
	}{
		{m.Server.URL() + "/metrics", http.StatusOK},
		{m.Server.URL() + "/readyz", http.StatusOK},
		{m.Server.URL() + "/debug/pprof/", http.StatusNotFound},
		{pprofURL(m.pprof), http.StatusOK},
		{pprofURL(m.pprof) + "goroutine?debug=1", http.StatusOK},
		{pprofURL(m.pprof) + "cmdline", http.StatusNotFound}, // it would show --secret given as a flag
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.url, resp.StatusCode, tc.want)
		}
	}
	// A name a DNS rebinding points at 127.0.0.1 does not reach the profiles of a loopback port.
	req, err := http.NewRequest("GET", pprofURL(m.pprof)+"goroutine?debug=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "rebind.attacker.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("profiles asked for under another name: %d, want 421", resp.StatusCode)
	}
}

// TestServeMetricsOnTheirOwnAddress: with --metrics-addr, the node's metrics (the store's
// included) are on that listener, the public one answers /metrics as an unknown path, and both
// close when the service does.
func TestServeMetricsOnTheirOwnAddress(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	m := NewMain(io.Discard, io.Discard)
	err := m.ParseFlags([]string{
		"--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--drain", "0s",
		"--db", filepath.Join(t.TempDir(), "ordercast.db"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close()
		}
	})
	metricsURL := m.Server.MetricsURL()
	for _, tc := range []struct {
		url  string
		want int
	}{
		{m.Server.URL() + "/metrics", getStatus(t, m.Server.URL()+"/no-such-page")},
		{m.Server.URL() + "/readyz", http.StatusOK},
		{metricsURL, http.StatusOK},
	} {
		if got := getStatus(t, tc.url); got != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.url, got, tc.want)
		}
	}
	if _, body := get(t, metricsURL); !strings.Contains(string(body), "ordercast_write_batches_total") {
		t.Errorf("%s lacks the store's metrics:\n%s", metricsURL, body)
	}
	closed = true
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if resp, err := http.Get(metricsURL); err == nil {
		resp.Body.Close()
		t.Errorf("GET %s after Close: %s, want the connection refused", metricsURL, resp.Status)
	}
}

// TestBusyPortStopsStartUpBeforeTheStore: a port already taken, or a metrics port, fails
// start-up before the database is opened: nothing is created or migrated, and with a database
// that is away the operator does not wait --db-wait to learn of the clash. The ports are free
// again afterwards.
func TestBusyPortStopsStartUpBeforeTheStore(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct{ name, addr, metrics string }{
		{"addr", busy.Addr().String(), ""},
		{"metrics-addr", free, busy.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "ordercast.db")
			m := NewMain(io.Discard, io.Discard)
			if err := m.ParseFlags([]string{"--addr", tc.addr, "--metrics-addr", tc.metrics, "--db", db, "--db-wait", "1h"}); err != nil {
				t.Fatal(err)
			}
			err := m.Open(t.Context())
			if err == nil {
				m.Close()
				t.Fatal("Open succeeded on a busy port")
			}
			if !strings.Contains(err.Error(), "address already in use") {
				t.Errorf("Open: %v, want the busy port named", err)
			}
			if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the database was opened before the port was found busy (stat: %v)", err)
			}
			if ln, err := net.Listen("tcp", free); err != nil {
				t.Errorf("%s still bound after the failed start: %v", free, err)
			} else {
				ln.Close()
			}
		})
	}
}

// TestJSONLogsGiveSeconds: in JSON logs a duration is a number of seconds, not slog's bare
// nanoseconds.
func TestJSONLogsGiveSeconds(t *testing.T) {
	var stderr bytes.Buffer
	m := NewMain(io.Discard, &stderr)
	if err := m.ParseFlags([]string{"--secret", testSecret, "--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	m.Logger.Info("request", "duration", 1500*time.Millisecond)
	if !strings.Contains(stderr.String(), `"duration":1.5`) {
		t.Fatalf("JSON log line %q, want \"duration\":1.5", stderr.String())
	}
}

// A Main filled in by hand, its log given by the caller, is checked by Open as ParseFlags
// checks the flags: a setting a node refuses (here one the server as a library takes) is
// refused, naming its flag, before anything is opened.
func TestOpenChecksAMainFilledInByHand(t *testing.T) {
	m := NewMain(io.Discard, io.Discard)
	m.Logger = slog.New(slog.DiscardHandler)
	m.HTTP.Addr = "127.0.0.1:0"
	m.DB = filepath.Join(t.TempDir(), "o.db")
	m.HTTP.Heartbeat = 10 * time.Millisecond
	err := m.Open(t.Context())
	if err == nil {
		_ = m.Close()
		t.Fatal("Open took a heartbeat of 10ms")
	}
	if !strings.Contains(err.Error(), "--heartbeat") {
		t.Errorf("Open: %v; want it to name --heartbeat", err)
	}
	if _, err := os.Stat(m.DB); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open refused its settings but made %s (stat: %v)", m.DB, err)
	}
}
