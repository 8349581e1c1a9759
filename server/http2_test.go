package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

// TestH2CStreamsShareOneConnection opens 100 streams over cleartext HTTP/2 and shows that they
// all ride on one TCP connection and each gets its events.
func TestH2CStreamsShareOneConnection(t *testing.T) {
	srv := newServer(t, func(s *server.Server) { s.H2C = true })
	base := srv.URL()
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true) // HTTP/2 with prior knowledge only: no HTTP/1.1 fallback
	tr := &http.Transport{Protocols: &protocols}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}

	// One request first, so that the streams find the connection up instead of racing to dial.
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}

	const orders, perOrder = 4, 25
	api := &client.Client{BaseURL: base, HTTPClient: c}
	for i := range orders {
		mustCreateWith(t, api, fmt.Sprintf("h2-%d", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]*client.SSEReader, 0, orders*perOrder)
	for i := range orders * perOrder {
		resp, st := openStream(t, ctx, c, base, fmt.Sprintf("h2-%d", i%orders), "")
		if resp.ProtoMajor != 2 {
			t.Fatalf("stream %d: protocol %s, want HTTP/2", i, resp.Proto)
		}
		if ev := next(t, st); ev.Seq != 1 {
			t.Fatalf("stream %d: first seq %d, want 1", i, ev.Seq)
		}
		streams = append(streams, st)
	}
	for i := range orders {
		mustSetStatusWith(t, api, fmt.Sprintf("h2-%d", i), ordercast.StatusConfirmed)
	}
	for i, st := range streams {
		if ev := next(t, st); ev.Seq != 2 || ev.Status != ordercast.StatusConfirmed {
			t.Fatalf("stream %d: got seq %d %s, want 2 confirmed", i, ev.Seq, ev.Status)
		}
	}
	mfs := scrape(t, c, base)
	if got := value(mfs, "ordercast_streams_open"); got != orders*perOrder {
		t.Errorf("streams open: %v, want %d", got, orders*perOrder)
	}
	if got := value(mfs, "ordercast_http_connections_accepted_total"); got != 1 {
		t.Errorf("TCP connections accepted: %v, want 1 for all %d streams", got, orders*perOrder)
	}
}

// TestTLSServesHTTP2 serves HTTPS from a certificate file pair and negotiates HTTP/2 for a stream.
func TestTLSServesHTTP2(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	srv := newServer(t, func(s *server.Server) { s.TLSCertFile, s.TLSKeyFile = certFile, keyFile })
	base := srv.URL()
	if base[:8] != "https://" {
		t.Fatalf("URL %s, want https", base)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}

	api := &client.Client{BaseURL: base, HTTPClient: c}
	mustCreateWith(t, api, "tls-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, st := openStream(t, ctx, c, base, "tls-1", "")
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	if ev := next(t, st); ev.Seq != 1 {
		t.Fatalf("first seq %d, want 1", ev.Seq)
	}
	mustSetStatusWith(t, api, "tls-1", ordercast.StatusPreparing)
	if ev := next(t, st); ev.Status != ordercast.StatusPreparing {
		t.Fatalf("got %s, want preparing", ev.Status)
	}
}

// TestTLSNeedsAValidPair checks that a bad certificate stops Open instead of every handshake.
func TestTLSNeedsAValidPair(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "bogus.pem")
	if err := os.WriteFile(bogus, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, _, _ := selfSignedCert(t)
	for _, tc := range []struct {
		name, cert, key string
		h2c             bool
	}{
		{"cert without key", certFile, "", false},
		{"key without cert", "", bogus, false},
		{"unreadable pair", bogus, bogus, false},
		{"h2c with TLS", certFile, bogus, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := prepareServer(t, filepath.Join(t.TempDir(), "ordercast.db"))
			srv.TLSCertFile, srv.TLSKeyFile, srv.H2C = tc.cert, tc.key, tc.h2c
			if err := srv.Open(); err == nil {
				_ = srv.Close(context.Background())
				t.Fatal("Open succeeded")
			}
		})
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key, and returns the files and a pool
// that trusts the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool = x509.NewCertPool()
	pool.AddCert(testutil.WriteCertificate(t, certFile, keyFile, 1))
	return certFile, keyFile, pool
}

// TestASlowSignInIsChargedAsAnAnonymousWrite: a console sign-in carries no credential until its
// body is read, which a client may send as slowly as --read-timeout allows. Over HTTP/2 one
// connection carries many such requests at once; each is charged to the address's anonymous
// write budget before its body is read, so that all but the budget's burst are answered 429 at
// once and the address holds no more than that.
func TestASlowSignInIsChargedAsAnAnonymousWrite(t *testing.T) {
	srv := newAuthServer(t, func(s *server.Server) {
		s.H2C = true
		s.Limits = server.Limits{WriteRate: 0.001, WriteBurst: 8} // anonymous: a burst of 2
	})
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protocols}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	const tries = 20
	var limited atomic.Int32
	var wg sync.WaitGroup
	var bodies []*io.PipeWriter
	for range tries {
		pr, pw := io.Pipe()
		bodies = append(bodies, pw)
		req, err := http.NewRequestWithContext(ctx, "POST", srv.URL()+"/console", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		wg.Go(func() {
			resp, err := c.Do(req)
			if err != nil {
				return // the test ending cancels the sign-ins still held
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				limited.Add(1)
			}
		})
		go func() { _, _ = pw.Write([]byte("token=")) }() // the body's start, and then nothing
	}
	testutil.WaitFor(t, "all but the anonymous burst refused", func() bool { return limited.Load() >= tries-2 })
	cancel()
	for _, pw := range bodies {
		pw.Close()
	}
	wg.Wait()
	if got := limited.Load(); got != tries-2 {
		t.Errorf("%d of %d slow sign-ins refused, want all but the anonymous burst of 2", got, tries)
	}
}

// TestTLSCertificateReloads: a renewed certificate written over the files is presented from the
// next handshake on, after ReloadCertificate (SIGHUP in cmd/ordercast), without a restart; a
// pair that does not load leaves the one in use.
func TestTLSCertificateReloads(t *testing.T) {
	t.Parallel()
	certFile, keyFile, poolA := selfSignedCert(t)
	renewedCert, renewedKey, _ := selfSignedCert(t)
	srv := prepareServer(t, filepath.Join(t.TempDir(), "ordercast.db"))
	srv.TLSCertFile, srv.TLSKeyFile = certFile, keyFile
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	presented := func() []byte {
		t.Helper()
		pool := poolA.Clone()
		pool.AppendCertsFromPEM(mustRead(t, renewedCert))
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}} // a new connection each time
		resp, err := c.Get(srv.URL() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Raw
	}
	der := func(file string) []byte {
		b, _ := pem.Decode(mustRead(t, file))
		return b.Bytes
	}
	if got := presented(); !bytes.Equal(got, der(certFile)) {
		t.Fatal("the server does not present its certificate")
	}
	if got := srv.Certificate(); got == nil || !bytes.Equal(got.Raw, der(certFile)) {
		t.Fatal("Certificate does not return the certificate presented")
	}
	// The renewal, as certbot writes it: new files in place, then the signal.
	for _, f := range [][2]string{{renewedCert, certFile}, {renewedKey, keyFile}} {
		if err := os.WriteFile(f[1], mustRead(t, f[0]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := presented(); bytes.Equal(got, der(renewedCert)) {
		t.Fatal("the renewed certificate was presented before the reload: the test proves nothing")
	}
	if ok, err := srv.ReloadCertificate(); !ok || err != nil {
		t.Fatalf("reload: %v %v", ok, err)
	}
	if got := presented(); !bytes.Equal(got, der(renewedCert)) {
		t.Fatal("after the reload the server still presents the old certificate")
	}
	if got := srv.Certificate(); got == nil || !bytes.Equal(got.Raw, der(renewedCert)) {
		t.Fatal("after the reload Certificate does not return the renewed certificate")
	}
	if err := os.WriteFile(keyFile, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := srv.ReloadCertificate(); ok || err == nil {
		t.Fatalf("a broken pair reloaded: %v %v", ok, err)
	}
	if got := presented(); !bytes.Equal(got, der(renewedCert)) {
		t.Fatal("a failed reload changed the certificate in use")
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
