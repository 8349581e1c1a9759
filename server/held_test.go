package server_test

import (
	"bufio"
	"github.com/ordercast/ordercast/internal/testutil"
	"net"
	"net/http"
	"runtime"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/poller"
	"github.com/ordercast/ordercast/server"
)

// dialStream opens an order's stream on a bare TCP connection, so that the client side costs no
// goroutine and the server's goroutines can be counted, and returns its event reader.
func dialStream(t *testing.T, base, id string) *client.SSEReader {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/orders/"+id+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return client.NewSSEReader(resp.Body)
}

// TestHeldStreamsCostNoGoroutineEach opens many streams and counts the server's goroutines: held
// by the poller they add none per stream; on the goroutine path they add at least one each,
// which shows the count measures what it claims to.
func TestHeldStreamsCostNoGoroutineEach(t *testing.T) {
	if !poller.Supported {
		t.Skip("streams are held by the poller only on Linux")
	}
	const n = 200
	for _, hold := range []bool{true, false} {
		t.Run(map[bool]string{true: "held", false: "goroutine"}[hold], func(t *testing.T) {
			ts := newServer(t, func(s *server.Server) { s.HoldStreams = hold })
			base := ts.URL()
			mustCreate(t, base, "o-1")
			before := runtime.NumGoroutine()
			readers := make([]*client.SSEReader, n)
			for i := range readers {
				readers[i] = dialStream(t, base, "o-1")
				wantSeqStatus(t, next(t, readers[i]), 1, "placed")
			}
			grew := runtime.NumGoroutine() - before
			switch {
			case hold && grew > 20:
				t.Fatalf("%d held streams added %d goroutines, want about none", n, grew)
			case !hold && grew < n:
				t.Fatalf("%d streams on goroutines added only %d goroutines", n, grew)
			}
			// Every stream is live.
			mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)
			for _, r := range readers {
				wantSeqStatus(t, next(t, r), 2, "confirmed")
			}
		})
	}
}

// TestHeldStreamsWhoseClientsVanishMidWrite resets many clients' connections and commits a change
// at once, so that delivery writes may race the poller noticing the resets: every stream must be
// counted out either way.
func TestHeldStreamsWhoseClientsVanishMidWrite(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	var conns []*net.TCPConn
	for range 50 {
		req, _ := http.NewRequest("GET", base+"/v1/orders/o-1/stream", nil)
		c, err := net.Dial("tcp", req.URL.Host)
		if err != nil {
			t.Fatal(err)
		}
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		r := client.NewSSEReader(mustResponse(t, c, req).Body)
		wantSeqStatus(t, next(t, r), 1, "placed")
		conns = append(conns, c.(*net.TCPConn))
	}
	for _, c := range conns {
		c.SetLinger(0) // close with a reset, as a vanished phone's network does
		c.Close()
	}
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)
	testutil.WaitFor(t, "every stream to be counted out", func() bool { return ts.hub.Watchers() == 0 })
}

func mustResponse(t *testing.T, c net.Conn, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
