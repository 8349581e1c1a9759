package check

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAStuckWatcherBacksUpIntoTheServer: a stream whose watcher stopped reading fills the
// server's side soon (about 26 KB on Linux 6), so that a paused or vanished watcher tries the
// server's write deadline; with the kernel's own buffers it would take megabytes.
func TestAStuckWatcherBacksUpIntoTheServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pushed := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			pushed <- -1
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			pushed <- -1
			return
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
		ev := []byte("id: 7\nevent: status\ndata: " + strings.Repeat("x", 160) + "\n\n")
		n := 0
		for n < 8<<20 { // writes until one is stuck
			_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
			k, err := c.Write(ev)
			n += k
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				n = -1
				break
			}
		}
		pushed <- n
	}()

	p := &phase{world: world{nodes: []*node{{url: "http://" + ln.Addr().String()}}}}
	st, err := p.openStream(t.Context(), rand.New(rand.NewPCG(1, 2)), 0, &watchFaults{}, "/v1/orders/o/stream", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.done()
	if st.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", st.StatusCode)
	}
	// The watcher reads nothing more, as a paused or vanished one.
	if n := <-pushed; n < 0 || n > 256<<10 {
		t.Fatalf("the server pushed %d bytes into a watcher that stopped reading before a write stuck; want at most 256 KiB", n)
	}
}

// TestTallyAddsTheNodesSlowConsumerCounts: the write timeouts and catch-ups of every node read
// add up in the phase's counts.
func TestTallyAddsTheNodesSlowConsumerCounts(t *testing.T) {
	metrics := func(timeouts, caughtUp int) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "# HELP ordercast_streams_closed_total Streams closed, by reason.\n"+
				"ordercast_streams_closed_total{reason=\"client_gone\"} 40\n"+
				"ordercast_streams_closed_total{reason=\"write_timeout\"} %d\n"+
				"ordercast_watchers_caught_up_total %d\n", timeouts, caughtUp)
		}))
	}
	a, b := metrics(2, 5), metrics(1, 0)
	defer a.Close()
	defer b.Close()
	p := &phase{world: world{nodes: []*node{{url: a.URL}, {idx: 1, url: b.URL}}}, out: io.Discard}
	for _, n := range p.nodes {
		p.tally(t.Context(), n)
	}
	if want := (ServerCounts{WriteTimeouts: 3, CaughtUp: 5}); p.server != want {
		t.Fatalf("counts %+v, want %+v", p.server, want)
	}
}
