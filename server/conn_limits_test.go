package server_test

import (
	"bufio"
	"errors"
	"github.com/ordercast/ordercast/internal/testutil"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/server"
)

// dial opens a raw TCP connection to the server of base, closed at cleanup.
func dial(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads c until the server closes it, failing if that takes longer than within.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(within)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", within)
	}
}

// TestBodyThatNeverArrivesIsCut: headers promise a body that never comes; the read deadline
// closes the connection instead of holding it forever (issue 13, finding 1).
func TestBodyThatNeverArrivesIsCut(t *testing.T) {
	ts := newServer(t, func(s *server.Server) { s.ReadTimeout = 200 * time.Millisecond })
	for _, req := range []string{
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
		"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
	} {
		c := dial(t, ts.URL())
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, c, 5*time.Second)
	}
}

// TestReadTimeoutDoesNotCutStreams holds a stream open for many times the ReadTimeout (counted in
// heartbeats, not slept) and then still receives an event on it: streams clear the deadline.
func TestReadTimeoutDoesNotCutStreams(t *testing.T) {
	bothHoldings(t, testReadTimeoutDoesNotCutStreams)
}

func testReadTimeoutDoesNotCutStreams(t *testing.T, hold holding) {
	ts := hold.newServer(t, func(s *server.Server) {
		s.ReadTimeout = 50 * time.Millisecond
		s.Heartbeat = 20 * time.Millisecond
	})
	mustCreate(t, ts.URL(), "o-1")
	resp := rawStream(t, ts.URL(), "o-1", "")
	start := time.Now()
	r := client.NewSSEReader(resp.Body)
	wantSeqStatus(t, next(t, r), 1, "placed")
	changed := false
	r.OnComment = func(string) {
		if !changed && time.Since(start) > 4*50*time.Millisecond {
			changed = true
			mustSetStatus(t, ts.URL(), "o-1", "confirmed")
		}
	}
	wantSeqStatus(t, next(t, r), 2, "confirmed")

	// A long poll outlasts the ReadTimeout too, and answers with the change that ends it.
	done := make(chan int, 1)
	lpStart := time.Now()
	go func() {
		resp, err := http.Get(ts.URL() + "/v1/orders/o-1?wait=5s&after_version=2")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	testutil.WaitFor(t, "the long poll to be held past the read timeout", func() bool {
		return ts.hub.Watchers() >= 2 && time.Since(lpStart) > 4*50*time.Millisecond
	})
	mustSetStatus(t, ts.URL(), "o-1", "preparing")
	if code := <-done; code != http.StatusOK {
		t.Fatalf("long poll: %d", code)
	}
}

// TestConnectionsPerPeerCapped: past MaxConnsPerPeer, a peer's next connection is closed at
// accept; once one of its connections closes, it may connect again.
func TestConnectionsPerPeerCapped(t *testing.T) {
	ts := newServer(t, func(s *server.Server) { s.Limits.MaxConnsPerPeer = 2 })
	a, b := dial(t, ts.URL()), dial(t, ts.URL())
	// Both are accepted before the third: the kernel's accept queue is first in, first out.
	over := dial(t, ts.URL())
	waitClosed(t, over, 5*time.Second)
	a.Close()
	testutil.WaitFor(t, "a place to free up", func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL(), "http://"))
		if err != nil {
			return false
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	_ = b
}

// TestConnectionsOfTheNodeCapped: past MaxConns, the node's next connection is closed at accept,
// whoever's it is (a trusted proxy's too, which the per-peer cap spares), so that connections
// never take the descriptors the node needs for itself; once one closes, another is taken.
func TestConnectionsOfTheNodeCapped(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		s.Limits.MaxConns, s.Limits.MaxConnsPerPeer, s.Limits.TrustedProxies = 2, 1, loopbackProxy
	})
	a, _ := dial(t, ts.URL()), dial(t, ts.URL()) // two from one trusted peer: over its cap of 1, under the node's
	over := dial(t, ts.URL())
	waitClosed(t, over, 5*time.Second)
	a.Close()
	testutil.WaitFor(t, "a place to free up", func() bool {
		resp, err := http.Get(ts.URL() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestFileBudget: the open-file limit is shared out as FileBudget's comment says: a reserve for
// the node's own files, the rest connections, and of those all but room for ordinary requests
// streams; at every size, streams below connections below files.
func TestFileBudget(t *testing.T) {
	for _, tc := range []struct{ files, conns, streams int }{
		{256, 192, 144}, {1024, 768, 576}, {20000, 19744, 19488}, {65536, 65280, 65024},
	} {
		if conns, streams := server.FileBudget(tc.files); conns != tc.conns || streams != tc.streams {
			t.Errorf("FileBudget(%d) = %d, %d; want %d, %d", tc.files, conns, streams, tc.conns, tc.streams)
		}
	}
	for files := 16; files < 1<<20; files *= 2 {
		if conns, streams := server.FileBudget(files); !(0 < streams && streams < conns && conns < files) {
			t.Errorf("FileBudget(%d) = %d, %d: want 0 < streams < conns < files", files, conns, streams)
		}
	}
}

// TestHeaderBytesBounded: a header block of 100 KiB is refused with 431, not buffered.
func TestHeaderBytesBounded(t *testing.T) {
	ts := newServer(t, nil)
	req, _ := http.NewRequest("GET", ts.URL()+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 100<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}
