package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/testutil"
)

// wireServer is a real net/http server that counts the connections it accepted.
func wireServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// TestWireConnExchanges: every way net/http frames an answer (a length, chunks, no body, a
// connection it closes) comes back whole, the request arrives as sent, and the connection is
// kept while the server keeps it.
func TestWireConnExchanges(t *testing.T) {
	srv, conns := wireServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer tok" ||
			r.Header.Get("Content-Type") != "application/json" || r.Host == "" {
			http.Error(w, fmt.Sprintf("bad request: %s %q %q", r.Method, r.Header, r.Host), http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/length":
			_, _ = fmt.Fprintf(w, "got %s", body)
		case "/chunked":
			// Past net/http's buffer, so it must chunk.
			for i := range 3 {
				_, _ = fmt.Fprintf(w, "%d:%s;", i, strings.Repeat("x", 3000))
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/refused":
			http.Error(w, `{"error":"nope"}`, http.StatusUnprocessableEntity)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		}
	})
	c, err := newWireConn(t.Context(), srv.URL, "tok", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	chunks := fmt.Sprintf("0:%[1]s;1:%[1]s;2:%[1]s;", strings.Repeat("x", 3000))
	for i, tc := range []struct {
		path     string
		code     int
		body     string
		newConns int32 // connections opened by the end of this exchange
	}{
		{"/length", 200, `got {"n":0}`, 1},
		{"/chunked", 200, chunks, 1},
		{"/empty", 204, "", 1},
		{"/refused", 422, "{\"error\":\"nope\"}\n", 1},
		{"/length", 200, `got {"n":4}`, 1},
		{"/close", 200, "bye", 1},
		{"/length", 200, `got {"n":6}`, 2}, // dialled again after the close
		{"/chunked", 200, chunks, 2},
	} {
		code, body, err := c.post(tc.path, fmt.Appendf(nil, `{"n":%d}`, i))
		if err != nil {
			t.Fatalf("%d %s: %v", i, tc.path, err)
		}
		if code != tc.code || string(body) != tc.body {
			t.Errorf("%d %s: answered %d %.80q, want %d %.80q", i, tc.path, code, body, tc.code, tc.body)
		}
		if n := conns.Load(); n != tc.newConns {
			t.Errorf("%d %s: %d connections opened, want %d", i, tc.path, n, tc.newConns)
		}
	}
}

// TestWireConnRecovers: an answer cut off mid-way fails that post with an error, and the next
// post dials again and succeeds.
func TestWireConnRecovers(t *testing.T) {
	var cut atomic.Bool
	srv, conns := wireServer(t, func(w http.ResponseWriter, r *http.Request) {
		if cut.Swap(false) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort")
			_ = buf.Flush()
			_ = conn.Close()
			return
		}
		_, _ = w.Write([]byte("whole"))
	})
	c, err := newWireConn(t.Context(), srv.URL, "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if _, body, err := c.post("/", nil); err != nil || string(body) != "whole" {
		t.Fatalf("first post: %q, %v", body, err)
	}
	cut.Store(true)
	if code, body, err := c.post("/", nil); err == nil {
		t.Fatalf("a cut answer gave %d %q and no error", code, body)
	}
	if _, body, err := c.post("/", nil); err != nil || string(body) != "whole" {
		t.Fatalf("post after the cut: %q, %v", body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections opened, want 2 (one dialled again after the cut)", n)
	}
}

// TestWireConnOutlivesAnIdleClose: a connection the server closed while it idled (its idle
// timeout) is dialled again before the next post, which succeeds.
func TestWireConnOutlivesAnIdleClose(t *testing.T) {
	var closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Config.IdleTimeout = 10 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := newWireConn(t.Context(), srv.URL, "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.retryAfter = 0 // after any idling, rather than a second's
	for i := range 3 {
		if _, body, err := c.post("/", nil); err != nil || string(body) != "ok" {
			t.Fatalf("post %d: %q, %v", i, body, err)
		}
		testutil.WaitFor(t, "the server to close the idle connection", func() bool { return closed.Load() == int32(i+1) })
	}
}

// TestWireConnStops: ending the context ends a post whose answer never comes, with the
// context's error.
func TestWireConnStops(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv, _ := wireServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
	})
	defer close(release) // before srv.Close, which waits for the handler
	ctx, cancel := context.WithCancel(t.Context())
	c, err := newWireConn(ctx, srv.URL, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	done := make(chan error, 1)
	go func() {
		_, _, err := c.post("/", []byte("{}"))
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("post after cancel: %v, want context.Canceled", err)
	}
}

// TestWireConnRefusesOtherURLs: only http://host:port is spoken.
func TestWireConnRefusesOtherURLs(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1:1", "http://127.0.0.1:1/prefix", "127.0.0.1:1", "http://"} {
		if _, err := newWireConn(t.Context(), u, "", time.Second); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}
