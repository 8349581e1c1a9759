package client_test

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// realServer is a real ordercast server in-process: SQLite in a temporary directory, the hub,
// couriers' positions without a rate limit, and auth with a random secret when asked for.
type realServer struct {
	url    string
	store  *sqlite.Store
	tokens *auth.Authority // nil without auth
}

// startServer starts a real server, configure (when not nil) adjusting it before it opens;
// the test's cleanup stops it.
func startServer(t *testing.T, withAuth bool, configure func(*server.Server)) *realServer {
	t.Helper()
	ctx := context.Background()
	h := hub.New()
	st := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	st.Publisher = h
	if err := st.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tr := location.New(h, st)
	tr.Rate = 0
	if err := tr.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	srv.Locations = tr
	s := &realServer{store: st}
	if withAuth {
		tokens, err := auth.New([]byte(rand.Text() + rand.Text()))
		if err != nil {
			t.Fatal(err)
		}
		srv.Auth = &server.Auth{Tokens: tokens}
		s.tokens = tokens
	}
	if configure != nil {
		configure(srv)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	s.url = srv.URL()
	return s
}

// sign returns an actor token of the server's (which must run with auth).
func (s *realServer) sign(t *testing.T, role auth.Role, sub string) string {
	t.Helper()
	tok, err := s.tokens.SignActor(auth.Actor{Role: role, Sub: sub}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// clientOf returns a client of base that makes a new connection for every request: net/http
// itself sends a request with an Idempotency-Key again when a reused connection turns out
// closed, which would hide the client's own retries.
func clientOf(t *testing.T, base string) *client.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return &client.Client{BaseURL: base, HTTPClient: &http.Client{Transport: tr}}
}

// proxy forwards TCP connections to a server and breaks them as networks do.
type proxy struct {
	ln         net.Listener
	target     string
	accepts    atomic.Int64
	loseAnswer atomic.Bool // the next answer from the server is dropped, with its connection

	mu    sync.Mutex
	links []*link
}

// link is one connection through the proxy.
type link struct {
	client, server net.Conn
	stalled        atomic.Bool // what the server sends is dropped
}

func newProxy(t *testing.T, targetURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: targetURL[len("http://"):]}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, l := range p.links {
			l.client.Close()
			l.server.Close()
		}
	})
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepts.Add(1)
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		p.links = append(p.links, l)
		p.mu.Unlock()
		go func() {
			_, _ = io.Copy(s, c)
			s.Close()
		}()
		go p.forwardAnswers(l)
	}
}

// forwardAnswers copies what the server sends to the client, unless the link is stalled or the
// proxy is to lose the next answer.
func (p *proxy) forwardAnswers(l *link) {
	defer l.client.Close()
	defer l.server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := l.server.Read(buf)
		if n > 0 && p.loseAnswer.CompareAndSwap(true, false) {
			return // the request went through, its answer never comes back
		}
		if n > 0 && !l.stalled.Load() {
			if _, err := l.client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stall silences every connection open now, which stays open: a peer that died without closing,
// or a middlebox that dropped the connection. New connections flow.
func (p *proxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.stalled.Store(true)
	}
}
