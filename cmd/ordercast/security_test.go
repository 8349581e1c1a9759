package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"github.com/ordercast/ordercast/internal/testutil"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/auth"
)

// testSecret is the HMAC secret the tests run the service with.
const testSecret = testutil.Secret

// adminToken is an admin actor token for testSecret.
func adminToken() string { return testutil.AdminToken(testSecret) }

// TestServeNeedsSecret: outside demo mode start-up fails without a secret, with a message that
// says how to set one; a short one is refused; demo mode makes its own.
func TestServeNeedsSecret(t *testing.T) {
	err := NewMain(io.Discard, io.Discard).ParseFlags(nil)
	if err == nil || !strings.Contains(err.Error(), "ORDERCAST_SECRET") || !strings.Contains(err.Error(), "--secret") {
		t.Errorf("no secret: %v, want an error naming --secret and ORDERCAST_SECRET", err)
	}
	if err := NewMain(io.Discard, io.Discard).ParseFlags([]string{"--secret", "short"}); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("short secret: %v, want an error asking for 32 bytes", err)
	}
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseFlags([]string{"--demo"}); err != nil || m.authority == nil {
		t.Errorf("demo without a secret: %v, want a generated secret", err)
	}
}

// TestSecurityFlagWarnings: settings that have their use but usually mean something else are
// taken, and named at start: a stream limit per client that the connection cap per peer reaches
// first over HTTP/1.1 (not over HTTP/2, where streams share connections), a trusted proxy
// range that trusts everyone, a demo or public tracking beyond loopback.
func TestSecurityFlagWarnings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--max-streams-per-client", "300", "--max-conns-per-peer", "256"}, []string{"--max-streams-per-client 300 is not below --max-conns-per-peer 256"}},
		{[]string{"--max-streams-per-client", "300", "--max-conns-per-peer", "256", "--h2c"}, nil},
		{[]string{"--max-streams-per-client", "100", "--max-conns-per-peer", "256"}, nil},
		{[]string{"--max-streams-per-client", "300", "--max-conns-per-peer", "0"}, nil},
		{[]string{"--trusted-proxies", "10.0.0.0/8,0.0.0.0/0"}, []string{"--trusted-proxies 0.0.0.0/0 trusts every address"}},
		{[]string{"--trusted-proxies", "::/0"}, []string{"--trusted-proxies ::/0 trusts every address"}},
		{[]string{"--demo", "--addr", ":8080"}, []string{"the demo listens on --addr :8080, beyond this machine"}},
		{[]string{"--demo", "--addr", "localhost:8080"}, nil},
		{[]string{"--demo"}, nil}, // its default, on loopback
		{[]string{"--public-tracking", "--addr", ":8080", "--metrics-addr", "127.0.0.1:9090"}, []string{"--public-tracking on --addr :8080, beyond this machine"}},
		{[]string{"--public-tracking", "--addr", "10.0.0.5:8080", "--metrics-addr", "127.0.0.1:9090"}, []string{"--public-tracking on --addr 10.0.0.5:8080, beyond this machine"}},
		{[]string{"--public-tracking"}, nil}, // on loopback, as the bench runs it
		{[]string{"--public-tracking", "--addr", "[::1]:8080"}, nil},
		{[]string{"--demo", "--public-tracking", "--addr", ":8080"}, []string{"the demo listens on --addr :8080"}}, // the demo's warning, alone
	} {
		m := NewMain(io.Discard, io.Discard)
		// On loopback, where /metrics beside the API is no warning (TestMetricsOnThePublicPortWarn),
		// unless the case names its own address.
		base := []string{"--secret", testSecret}
		if !slices.Contains(tc.args, "--addr") && !slices.Contains(tc.args, "--demo") {
			base = append(base, "--addr", "127.0.0.1:8080")
		}
		if err := m.ParseFlags(append(base, tc.args...)); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := m.warnings(m.HTTP, m.Demo)
		if len(got) != len(tc.want) {
			t.Errorf("%v: warnings %q, want %d", tc.args, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("%v: warning %q, want one starting %q", tc.args, got[i], w)
			}
		}
	}
}

// TestMetricsOnThePublicPortWarn: a node whose /metrics is on a non-loopback --addr (today's
// default, kept so that existing scrapers go on working) is warned at start, unless --metrics-addr
// moves them or the node is a demo; on loopback nobody else can read them anyway.
func TestMetricsOnThePublicPortWarn(t *testing.T) {
	const want = "/metrics is served on --addr"
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{nil, true}, // the default, :8080
		{[]string{"--addr", "0.0.0.0:8080"}, true},
		{[]string{"--addr", "10.0.0.5:8080"}, true},
		{[]string{"--addr", "[2001:db8::1]:8080"}, true},
		{[]string{"--addr", ":8080", "--metrics-addr", "127.0.0.1:9090"}, false},
		{[]string{"--addr", "127.0.0.1:8080"}, false},
		{[]string{"--addr", "localhost:8080"}, false},
		{[]string{"--addr", "[::1]:8080"}, false},
		{[]string{"--demo", "--addr", ":8080"}, false},
	} {
		m := NewMain(io.Discard, io.Discard)
		if err := m.ParseFlags(append([]string{"--secret", testSecret}, tc.args...)); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		warned := false
		for _, w := range m.warnings(m.HTTP, m.Demo) {
			warned = warned || strings.HasPrefix(w, want)
		}
		if warned != tc.warn {
			t.Errorf("%v: warned %v, want %v (%q)", tc.args, warned, tc.warn, m.warnings(m.HTTP, m.Demo))
		}
	}
}

func TestBadSecurityFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--trusted-proxies", "10.0.0.0/33"}, "--trusted-proxies"},
		{[]string{"--cors-origins", "https://app.example/path"}, "--cors-origins"},
		{[]string{"--cors-origins", "*"}, "--cors-origins"},
		{[]string{"--jwt-public-key", "/nonexistent.pem", "--jwt-audience", "ordercast"}, "--jwt-public-key"},
		{[]string{"--jwt-public-key", "/nonexistent.pem"}, "--jwt-audience"},
		// Checks of tokens only a key verifies, without the key: most often its setting was lost.
		{[]string{"--jwt-audience", "ordercast"}, "only a --jwt-public-key verifies"},
		{[]string{"--jwt-issuer", "https://idp.example"}, "only a --jwt-public-key verifies"},
		{[]string{"--jwt-max-lifetime", "0s"}, "--jwt-max-lifetime"},
		{[]string{"--read-timeout", "0s"}, "--read-timeout"},
		{[]string{"--max-conns-per-peer", "-1"}, "--max-conns-per-peer"},
		{[]string{"--ipv6-client-prefix", "40"}, "--ipv6-client-prefix"},
		{[]string{"--ipv6-client-prefix", "65"}, "--ipv6-client-prefix"},
		{[]string{"--write-rate", "-1"}, "--write-rate"},
		{[]string{"--max-streams", "-1"}, "--max-streams"},
		{[]string{"--tracking-ttl", "0s"}, "--tracking-ttl"},
		{[]string{"--idle-timeout", "0s"}, "--idle-timeout"},
	} {
		err := NewMain(io.Discard, io.Discard).ParseFlags(append([]string{"--secret", testSecret}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	m := NewMain(io.Discard, io.Discard)
	err := m.ParseFlags([]string{"--secret", testSecret, "--trusted-proxies", "10.0.0.0/8,192.168.1.1", "--trusted-proxies", "::1/128",
		"--cors-origins", "https://a.example,http://localhost:3000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.proxies) != 3 || len(m.CORSOrigins) != 2 {
		t.Errorf("proxies %v, origins %v", m.proxies, m.CORSOrigins)
	}
}

// TestTokenCommand: `ordercast token` prints on its last line a token the server accepts.
func TestTokenCommand(t *testing.T) {
	a, err := auth.New([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	lastLine := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"token"}, args...), &out, io.Discard); err != nil {
			t.Fatalf("token %v: %v", args, err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return lines[len(lines)-1]
	}
	actor, err := a.ParseActor(lastLine("--role", "courier", "--sub", "c-42", "--secret", testSecret, "--ttl", "5m"))
	if err != nil || actor.String() != "courier:c-42" {
		t.Errorf("actor token: %v %v", actor, err)
	}
	if actor, err := a.ParseActor(lastLine("--role", "support", "--sub", "ana", "--secret", testSecret, "--ttl", "9h")); err != nil || actor.String() != "support:ana" {
		t.Errorf("support token: %v %v", actor, err)
	}
	t.Setenv("ORDERCAST_SECRET", testSecret)
	tr, err := a.ParseTracking(lastLine("--order", "ord-1"))
	if err != nil || tr != (auth.Tracking{OrderID: "ord-1", Exp: tr.Exp}) {
		t.Errorf("tracking token: %+v %v", tr, err)
	}
	for _, args := range [][]string{{"--role", "chef"}, {}, {"--role", "admin", "--order", "x"}, {"--role", "admin", "--secret", "short"},
		{"--role", "restaurant"}, {"--role", "support"}, {"--role", "admin", "--ttl", "1ns"}} { // a party's token acts for a party, an agent's names the agent; a token must outlive its minting
		if err := run(context.Background(), append([]string{"token"}, args...), io.Discard, io.Discard); err == nil {
			t.Errorf("token %v succeeded", args)
		}
	}
	// A privileged token without a sub is made, with a note that it shares one actor and one
	// Idempotency-Key scope with every other such token; with one, no note.
	for _, tc := range []struct {
		args []string
		note bool
	}{{[]string{"--role", "system"}, true}, {[]string{"--role", "admin", "--sub", "ops"}, false}} {
		var stderr bytes.Buffer
		if err := run(context.Background(), append([]string{"token"}, tc.args...), io.Discard, &stderr); err != nil {
			t.Fatalf("token %v: %v", tc.args, err)
		}
		if got := strings.Contains(stderr.String(), "Idempotency-Keys"); got != tc.note {
			t.Errorf("token %v: stderr %q; want the note about its scope: %v", tc.args, stderr.String(), tc.note)
		}
	}
	// An id no server route takes makes no token, and the refusal names the flag once.
	for _, args := range [][]string{{"--role", "courier", "--sub", "bad id"}, {"--order", "bad id"}} {
		err := run(context.Background(), append([]string{"token"}, args...), io.Discard, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), args[len(args)-2]+": ") || strings.Contains(err.Error(), "ordercast:") {
			t.Errorf("token %v: %v, want a refusal naming %s", args, err, args[len(args)-2])
		}
	}
}

// TestServeAuthEndToEnd runs the real service with a secret: creating needs an admin token and
// returns a tracking token that opens that order (and not another); in demo mode the console page
// carries an admin token and watching needs none.
func TestServeAuthEndToEnd(t *testing.T) {
	open := func(args ...string) string {
		t.Helper()
		m := NewMain(io.Discard, io.Discard)
		if err := m.ParseFlags(append([]string{"--addr", "127.0.0.1:0", "--drain", "0s",
			"--db", filepath.Join(t.TempDir(), "ordercast.db")}, args...)); err != nil {
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
		return m.Server.URL()
	}
	call := func(method, url, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	base := open("--secret", testSecret)
	if code, _ := call("POST", base+"/v1/orders", "", `{"id":"a"}`); code != http.StatusUnauthorized {
		t.Errorf("create without a token: %d, want 401", code)
	}
	code, body := call("POST", base+"/v1/orders", adminToken(), `{"id":"a"}`)
	var created struct {
		ID            string `json:"id"`
		TrackingToken string `json:"tracking_token"`
	}
	if err := json.Unmarshal([]byte(body), &created); code != http.StatusCreated || err != nil || created.TrackingToken == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	call("POST", base+"/v1/orders", adminToken(), `{"id":"b"}`)
	if code, _ := call("GET", base+"/v1/orders/a", created.TrackingToken, ""); code != http.StatusOK {
		t.Errorf("GET own order: %d", code)
	}
	if code, body := call("GET", base+"/v1/orders/b", created.TrackingToken, ""); code != http.StatusForbidden || strings.Contains(body, `"b"`) {
		t.Errorf("GET other order: %d %s", code, body)
	}
	if code, _ := call("GET", base+"/v1/orders/a", "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET without token: %d, want 401", code)
	}
	if _, body := call("GET", base+"/console", "", ""); strings.Contains(body, "ordercast-token") {
		t.Error("the console page carries a token outside demo mode")
	}

	demo := open("--demo")
	resp, err := http.Get(demo + "/v1/stream") // a stream: read the status, then hang up
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("demo: watching all orders without a token: %d", resp.StatusCode)
	}
	if _, body := call("GET", demo+"/console", "", ""); !strings.Contains(body, `name="ordercast-token"`) {
		t.Error("demo: the console page carries no token")
	}
}

// TestRedactURL: a database password is hidden in logs wherever the URL carries it: user:pass,
// or libpq's password query parameter.
func TestRedactURL(t *testing.T) {
	for _, u := range []string{
		"postgres://app:hunter2@db:5432/ordercast?sslmode=disable",
		"postgres://app@db:5432/ordercast?password=hunter2&sslmode=disable",
		"postgresql://db/ordercast?sslpassword=hunter2",
	} {
		if got := redactURL(u); strings.Contains(got, "hunter2") || !strings.Contains(got, "db") {
			t.Errorf("redactURL(%s) = %s", u, got)
		}
	}
}

// TestARefusedPublicKeyIsNamedByItsFile: of several --jwt-public-key files, the one whose key is
// refused for its kind (ECDSA on P-384, where ES256 needs P-256) is named, as one that does not
// parse is, so that the operator knows which to replace.
func TestARefusedPublicKeyIsNamedByItsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, pub any) string {
		t.Helper()
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	goodFile, badFile := write("idp-2026.pem", &good.PublicKey), write("idp-2027.pem", &bad.PublicKey)
	err = NewMain(io.Discard, io.Discard).ParseFlags([]string{"--secret", testSecret, "--jwt-audience", "ordercast",
		"--jwt-public-key", goodFile + "," + badFile})
	if err == nil || !strings.Contains(err.Error(), badFile) || strings.Contains(err.Error(), goodFile) {
		t.Errorf("%v: want an error naming %s alone", err, badFile)
	}
}
