package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
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

// TestAWatchResumedPastTheServersHistory: a watch resumes after seq 50 of an order whose history
// (a database reset or restored) is at seq 2 and still active. The server answers as a fresh
// connect and says so (History-Behind); every event the order brings next would come under a
// seq the watch has seen, which it used to skip as replays, one by one, while the order moved
// on. The watch ends at once with ErrHistoryBehind naming both seqs. Resumed after seq 2 itself,
// it gets the next change.
func TestAWatchResumedPastTheServersHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := orderMovedTo(t, ctx, ordercast.StatusConfirmed)
	behind := c.Watch(ctx, "o-1", client.WatchOptions{LastEventID: 50, MinRetry: time.Millisecond})
	defer behind.Close()
	if ev, err := behind.Next(ctx); !errors.Is(err, client.ErrHistoryBehind) || !strings.Contains(err.Error(), "seq 2") || !strings.Contains(err.Error(), "after 50") {
		t.Fatalf("Next = %+v, %v; want ErrHistoryBehind naming seq 2 and 50", ev, err)
	}
	if n := behind.Reconnects(); n != 0 {
		t.Errorf("%d reconnects, want none: the answer is final", n)
	}

	w := c.Watch(ctx, "o-1", client.WatchOptions{LastEventID: 2})
	defer w.Close()
	if _, err := c.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: ordercast.StatusPreparing}); err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Next(ctx); err != nil || ev.Seq != 3 {
		t.Fatalf("Next after seq 2 = %+v, %v; want seq 3", ev, err)
	}
}

// TestAWatchOfTheWholeHistory: a watch with WholeHistory returns every event of the order from
// its first, in the header's form and the query's; without it, a watch starts at the order's
// current status.
func TestAWatchOfTheWholeHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := orderMovedTo(t, ctx, ordercast.StatusConfirmed, ordercast.StatusPreparing)
	for _, tt := range []struct {
		name string
		opts client.WatchOptions
		want []int64
	}{
		{"fresh", client.WatchOptions{}, []int64{3}},
		{"whole history", client.WatchOptions{WholeHistory: true}, []int64{1, 2, 3}},
		{"whole history in the query", client.WatchOptions{WholeHistory: true, LastEventIDInQuery: true}, []int64{1, 2, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := c.Watch(ctx, "o-1", tt.opts)
			defer w.Close()
			var got []int64
			for range tt.want {
				ev, err := w.Next(ctx)
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, ev.Seq)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got seqs %v, want %v", got, tt.want)
			}
		})
	}
}

// orderMovedTo starts a real server without auth, creates order o-1 there and moves it through
// statuses, and returns a client of the server.
func orderMovedTo(t *testing.T, ctx context.Context, statuses ...ordercast.Status) *client.Client {
	t.Helper()
	c := &client.Client{BaseURL: startServer(t, false, nil).url}
	if _, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	for _, st := range statuses {
		if _, err := c.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}
