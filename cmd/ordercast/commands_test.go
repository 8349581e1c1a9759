package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/auth"
)

// TestHelpGoesToStdout: every subcommand's --help (and -h) prints its usage to stdout, in the one
// flag style (--name, with its ORDERCAST_* variable), writes nothing to stderr and is not an
// error for the shell, like `ordercast --help`.
func TestHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"serve", "--help"}, {"serve", "-h"}, {"token", "--help"}, {"bench", "--help"}, {"check", "--help"}, {"backup", "--help"}, {"version", "--help"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: %v, want exit 0", args, err)
		}
		if stderr.Len() != 0 {
			t.Errorf("%v wrote to stderr: %q", args, stderr.String())
		}
		out := stdout.String()
		if !strings.Contains(out, "Usage:") {
			t.Errorf("%v: no usage on stdout: %q", args, out)
		}
		if args[0] != "--help" && args[0] != "help" {
			if !strings.Contains(out, "ordercast "+args[0]) {
				t.Errorf("%v: usage does not name the subcommand: %q", args, out)
			}
			if regexp.MustCompile(`(?m)^  -[a-z]`).MatchString(out) {
				t.Errorf("%v: a flag is listed with one dash:\n%s", args, out)
			}
			if args[0] != "version" && !strings.Contains(out, "(env ORDERCAST_") {
				t.Errorf("%v: flags are listed without their variables:\n%s", args, out)
			}
			// A usage that says its default in its own words is not contradicted by the flag's
			// zero value (token's --ttl: 1h or 24h, never 0s).
			if regexp.MustCompile(`\(default [^)]*\) \([^)]*, default `).MatchString(out) {
				t.Errorf("%v: a flag's default is given twice:\n%s", args, out)
			}
		}
	}
}

// TestBadFlagGoesToStderr: a bad flag is an error, with the usage line on stderr (not the page of
// every flag, which buried the error) and nothing on stdout.
func TestBadFlagGoesToStderr(t *testing.T) {
	for _, sub := range []string{"serve", "token", "bench", "check"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{sub, "--colour", "blue"}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "--colour") {
			t.Errorf("%s --colour: %v, want an error naming --colour", sub, err)
		}
		if stdout.Len() != 0 || !strings.Contains(stderr.String(), "Usage: ordercast "+sub) || strings.Contains(stderr.String(), "Flags (each") {
			t.Errorf("%s --colour: stdout %q, stderr %q; want the usage line on stderr only", sub, stdout.String(), stderr.String())
		}
	}
}

// TestSubcommandsTakeEnvironment: token and bench read ORDERCAST_* variables like serve, and the
// command line wins over them, for token also over the other kind's variable.
func TestSubcommandsTakeEnvironment(t *testing.T) {
	a, err := auth.New([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ORDERCAST_SECRET", testSecret)
	t.Setenv("ORDERCAST_ROLE", "courier")
	t.Setenv("ORDERCAST_SUB", "c-7")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--sub", "c-8"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	actor, err := a.ParseActor(strings.TrimSpace(out.String()))
	if err != nil || actor.String() != "courier:c-8" {
		t.Errorf("token from ORDERCAST_ROLE with --sub: %v %v, want courier:c-8", actor, err)
	}

	// The other kind of token asked for on the command line wins over the variable.
	out.Reset()
	if err := run(context.Background(), []string{"token", "--order", "o-1"}, &out, io.Discard); err != nil {
		t.Fatalf("token --order with ORDERCAST_ROLE set: %v, want a tracking token", err)
	}
	if tr, err := a.ParseTracking(strings.TrimSpace(out.String())); err != nil || tr.OrderID != "o-1" {
		t.Errorf("token --order with ORDERCAST_ROLE set: %+v %v, want a tracking token for o-1", tr, err)
	}
	t.Setenv("ORDERCAST_ORDER", "o-1")
	out.Reset()
	if err := run(context.Background(), []string{"token", "--role", "admin"}, &out, io.Discard); err != nil {
		t.Fatalf("token --role with ORDERCAST_ORDER set: %v, want an actor token", err)
	}
	if actor, err := a.ParseActor(strings.TrimSpace(out.String())); err != nil || actor.Role != auth.RoleAdmin {
		t.Errorf("token --role admin with ORDERCAST_ORDER set: %v %v, want an admin token", actor, err)
	}
	// Both from the environment: nothing says which is meant.
	out.Reset()
	if err := run(context.Background(), []string{"token"}, &out, io.Discard); err == nil || !strings.Contains(err.Error(), "give one of --order and --role") {
		t.Errorf("token with ORDERCAST_ROLE and ORDERCAST_ORDER: %v, want the refusal of both", err)
	}
	t.Setenv("ORDERCAST_ORDER", "")

	t.Setenv("ORDERCAST_WATCHERS", "0")
	err = run(context.Background(), []string{"bench"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--watchers") {
		t.Errorf("bench with ORDERCAST_WATCHERS=0: %v, want the bench to refuse --watchers 0", err)
	}
	t.Setenv("ORDERCAST_RATE", "fast")
	err = run(context.Background(), []string{"bench"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ORDERCAST_RATE (flag --rate)") {
		t.Errorf("bench with ORDERCAST_RATE=fast: %v, want an error naming the variable", err)
	}
}

// TestVersion: `ordercast version` prints the module version, the VCS revision and the Go version
// from the binary's build information.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "ordercast ") || !strings.Contains(got, runtime.Version()) {
		t.Errorf("version: %q, want ordercast <version> … %s", got, runtime.Version())
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-30T23:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got, want := versionLine(bi, "ffff0000"), "ordercast v1.2.3 revision 0123abcd (2026-11-30T23:00:00Z, dirty) go1.26.0"; got != want {
		t.Errorf("versionLine: %q, want %q (the toolchain's record wins)", got, want)
	}
	// A build without VCS information (the container image: no .git in its context) shows the
	// revision stamped in with -ldflags, and says when there is none.
	bare := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}
	for stamped, want := range map[string]string{
		"0123abcd": "ordercast (devel) revision 0123abcd (stamped at build) go1.26.0",
		"":         "ordercast (devel) revision unknown (built without VCS information) go1.26.0",
	} {
		if got := versionLine(bare, stamped); got != want {
			t.Errorf("versionLine stamped %q: %q, want %q", stamped, got, want)
		}
	}
}

// TestBuildID: a build is named in the cluster's view by its revision (dirty said), else its
// module version, else by a digest of its executable, which tells apart two builds without VCS
// information that would otherwise both be "(devel)".
func TestBuildID(t *testing.T) {
	dirty := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"},
	}}
	released := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}
	bare := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	for _, tc := range []struct {
		name string
		b    build
		want string
	}{
		{"a revision, dirty", readBuild(dirty, ""), "0123abcd+dirty"},
		{"a stamped revision", readBuild(bare, "ffff0000"), "ffff0000"},
		{"a module version", readBuild(released, ""), "v1.2.3"},
		{"neither", readBuild(bare, ""), executableDigest()},
	} {
		if got := tc.b.id(); got != tc.want {
			t.Errorf("%s: id %q, want %q", tc.name, got, tc.want)
		}
	}
	if d := executableDigest(); !regexp.MustCompile(`^sha256:[0-9a-f]{12}$`).MatchString(d) {
		t.Errorf("the executable's digest is %q, want sha256: and 12 hex digits", d)
	}
}

// TestDemoListensOnLoopback: --demo listens on 127.0.0.1:8080 unless --addr or ORDERCAST_ADDR
// says otherwise; without --demo the default stays :8080. A demo on loopback answers loopback
// names only (DNS rebinding); one given a public address was meant to be reached by others.
func TestDemoListensOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		name          string
		args          []string
		env           string
		want          string
		loopbackHosts bool
	}{
		{"demo default", []string{"--demo"}, "", "127.0.0.1:8080", true},
		{"demo with --addr", []string{"--demo", "--addr", ":9090"}, "", ":9090", false},
		{"demo with ORDERCAST_ADDR", []string{"--demo"}, ":9091", ":9091", false},
		{"demo on localhost", []string{"--demo", "--addr", "localhost:9092"}, "", "localhost:9092", true},
		{"demo on ::1", []string{"--demo", "--addr", "[::1]:9093"}, "", "[::1]:9093", true},
		{"serve default", []string{"--secret", testSecret}, "", ":8080", false},
		{"serve on loopback", []string{"--secret", testSecret, "--addr", "127.0.0.1:8080"}, "", "127.0.0.1:8080", false},
		// A container's demo: every interface of its own, published on the host's loopback.
		{"demo in a container", []string{"--demo", "--loopback-names-only"}, ":8080", ":8080", true},
		{"demo on loopback, any name", []string{"--demo", "--loopback-names-only=false"}, "", "127.0.0.1:8080", false},
		{"serve, this machine's names only", []string{"--secret", testSecret, "--loopback-names-only"}, "", ":8080", true},
		// Public tracking reads every order to whoever asks: a rebound name must not.
		{"public tracking on loopback", []string{"--secret", testSecret, "--public-tracking", "--addr", "127.0.0.1:8080"}, "", "127.0.0.1:8080", true},
		{"public tracking on loopback, any name", []string{"--secret", testSecret, "--public-tracking", "--addr", "127.0.0.1:8080", "--loopback-names-only=false"}, "", "127.0.0.1:8080", false},
		{"public tracking beyond", []string{"--secret", testSecret, "--public-tracking", "--addr", ":8080"}, "", ":8080", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("ORDERCAST_ADDR", tc.env)
			}
			m := NewMain(io.Discard, io.Discard)
			if err := m.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			if m.HTTP.Addr != tc.want || m.HTTP.LoopbackHostsOnly != tc.loopbackHosts {
				t.Errorf("addr %q, loopback hosts only %v; want %q, %v", m.HTTP.Addr, m.HTTP.LoopbackHostsOnly, tc.want, tc.loopbackHosts)
			}
		})
	}
}

// TestDemoKeepsItsOwnDatabase: --demo keeps its orders in a file of its own unless --db says
// otherwise, so that a server started next on the default database finds none of them.
func TestDemoKeepsItsOwnDatabase(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--demo"}, "ordercast-demo.db"},
		{[]string{"--demo", "--db", "mine.db"}, "mine.db"},
		{[]string{"--demo", "--db", "ordercast.db"}, "ordercast.db"},
		{[]string{"--secret", testSecret}, "ordercast.db"},
	} {
		m := NewMain(io.Discard, io.Discard)
		if err := m.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		if m.DB != tc.want {
			t.Errorf("serve %q: the database is %q, want %q", tc.args, m.DB, tc.want)
		}
	}
}

// TestServePrintsWhereItListens: the printed URL is the listener's, and a listener on every
// interface says so on a line of its own.
func TestServePrintsWhereItListens(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		wantHost string
		wantAll  bool
	}{{"127.0.0.1:0", "127.0.0.1", false}, {":0", "127.0.0.1", true}} {
		t.Run(tc.addr, func(t *testing.T) {
			lines := serveLines(t, 2, "--demo", "--addr", tc.addr)
			if !strings.HasPrefix(lines[0], "ordercast is serving on http://"+tc.wantHost+":") {
				t.Errorf("first line %q", lines[0])
			}
			if got := strings.Contains(strings.Join(lines, "\n"), "every interface"); got != tc.wantAll {
				t.Errorf("lines %q: mention every interface = %v, want %v", lines, got, tc.wantAll)
			}
		})
	}
}

// serveLines runs `ordercast serve` with args until it has printed n lines, then stops it.
func serveLines(t *testing.T, n int, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve", "--drain", "0s", "--db", filepath.Join(t.TempDir(), "o.db")}, args...), w, io.Discard)
		w.CloseWithError(io.EOF)
		done <- err
	}()
	var lines []string
	sc := bufio.NewScanner(out)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	return lines
}

// TestDemoSignsWithItsOwnSecret: with ORDERCAST_SECRET (or --secret) set, demo mode still signs
// with a random secret of its own, says so in its log, and refuses tokens of the real secret;
// the console's admin token is not valid under the real secret, and is not handed to a page
// that reached the demo under another site's name (DNS rebinding).
func TestDemoSignsWithItsOwnSecret(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	var logs bytes.Buffer
	m := NewMain(io.Discard, &logs)
	if err := m.ParseFlags([]string{"--demo", "--addr", "127.0.0.1:0", "--drain", "0s", "--db", filepath.Join(t.TempDir(), "o.db")}); err != nil {
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
	if !strings.Contains(logs.String(), "random secret") || !strings.Contains(logs.String(), "secret_ignored=true") {
		t.Errorf("the log does not say the secret is ignored:\n%s", logs.String())
	}
	_, body := get(t, m.Server.URL()+"/console")
	match := regexp.MustCompile(`name="ordercast-token" content="([^"]+)"`).FindSubmatch(body)
	if match == nil {
		t.Fatal("the demo console carries no token")
	}
	real, err := auth.New([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := real.ParseActor(string(match[1])); err == nil {
		t.Error("the demo console's admin token is valid under ORDERCAST_SECRET")
	}
	rebound, err := http.NewRequest(http.MethodGet, m.Server.URL()+"/console", nil)
	if err != nil {
		t.Fatal(err)
	}
	rebound.Host = "evil.example:8080"
	resp, err := http.DefaultClient.Do(rebound)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("demo: GET /console with Host evil.example:8080: %d, want 421", resp.StatusCode)
	}
	req, err := http.NewRequest(http.MethodPost, m.Server.URL()+"/v1/orders", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("demo: create with a token of ORDERCAST_SECRET: %d, want 401", resp.StatusCode)
	}
}
