package stream

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/poller"
)

// BenchmarkHeldDelivery publishes one status event of an order watched by held streams, each
// delivered on the publisher's goroutine (hub.Wake.Inline), and reads the event off each client's
// socket: allocs/op beyond the hub's message (shared) is what a held stream costs per event.
func BenchmarkHeldDelivery(b *testing.B) {
	if !poller.Supported {
		b.Skip("streams are held by the poller only on Linux")
	}
	for _, n := range []int{1, hub.InlineWakes} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			cfg := testConfig
			cfg.Heartbeat, cfg.Hold = time.Hour, true // the sweeper stays out of the way
			h := hub.New()
			e := New(newMemStore(ordercast.StatusPlaced), h, cfg, nil)
			if err := e.Open(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				if err := e.Close(); err != nil {
					b.Error(err)
				}
			})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				wt, err := e.Watch(r.Context(), Request{OrderID: "o-1"})
				if err != nil {
					b.Error(err)
					return
				}
				e.ServeSSE(w, r, wt, func(End) {})
			}))
			b.Cleanup(srv.Close)
			clients := make([]*bufio.Reader, n)
			for i := range clients {
				c, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.Close() })
				if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
					b.Fatal(err)
				}
				clients[i] = bufio.NewReader(c)
				readUntil(b, clients[i], "id: 1\n") // the head, the retry advice, event 1
				readUntil(b, clients[i], "\r\n")
			}
			for deadline := time.Now().Add(10 * time.Second); len(e.held.snapshot(-1)) < n; {
				if time.Now().After(deadline) {
					b.Fatalf("%d streams held, want %d", len(e.held.snapshot(-1)), n)
				}
				time.Sleep(time.Millisecond)
			}
			seq := int64(1)
			b.ReportAllocs()
			for b.Loop() {
				seq++
				h.Publish(ordercast.Event{OrderID: "o-1", Seq: seq, Status: ordercast.StatusConfirmed, At: time.Unix(0, 0)})
				for _, r := range clients {
					readUntil(b, r, "\r\n") // one chunk: its size, the frame, the chunk's end
				}
			}
		})
	}
}

// readUntil reads r's lines up to one that is line, without allocating.
func readUntil(b *testing.B, r *bufio.Reader, line string) {
	b.Helper()
	for {
		got, err := r.ReadSlice('\n')
		if err != nil {
			b.Fatalf("read: %v", err)
		}
		if string(got) == line {
			return
		}
	}
}
