package bench

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
)

// TestFloorOutlivesAWatcherThatStopsReading: a watcher that keeps its connection open and reads
// nothing fills its socket; the floor's write to it gives up after floorWriteTimeout and drops
// it, so the order's changes go on being answered instead of waiting on it for good.
func TestFloorOutlivesAWatcherThatStopsReading(t *testing.T) {
	defer func(d time.Duration) { floorWriteTimeout = d }(floorWriteTimeout)
	floorWriteTimeout = 200 * time.Millisecond
	ctx := t.Context()
	srv := httptest.NewServer(FloorHandler(ctx))
	t.Cleanup(srv.Close)
	c := &client.Client{BaseURL: srv.URL}
	if _, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: "o1"}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /v1/orders/o1/stream HTTP/1.1\r\nHost: floor\r\n\r\n") // and never reads
	// 8 MB of changes: far more than the socket's buffers on both sides hold.
	note := strings.Repeat("x", 4000)
	for i := range 2000 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.SetStatus(cctx, "o1", client.SetStatusRequest{Status: ordercast.StatusPreparing, Note: note})
		cancel()
		if err != nil {
			t.Fatalf("change %d: %v: the watcher that stopped reading holds the order", i, err)
		}
	}
}

// TestFloorAnswersACreationWithItsOwnCopy: the answer to a creation is what was created, read
// without racing a change that arrives as soon as the order is in the map (go test -race).
func TestFloorAnswersACreationWithItsOwnCopy(t *testing.T) {
	ctx := t.Context()
	srv := httptest.NewServer(FloorHandler(ctx))
	t.Cleanup(srv.Close)
	c := &client.Client{BaseURL: srv.URL}
	for i := range 50 {
		id := fmt.Sprint("o", i)
		var wg sync.WaitGroup
		wg.Go(func() {
			if o, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: id}); err != nil || o.Order.Version != 1 {
				t.Errorf("create %s: version %d, %v; want 1", id, o.Order.Version, err)
			}
		})
		wg.Go(func() {
			for range 10 {
				c.SetStatus(ctx, id, client.SetStatusRequest{Status: ordercast.StatusConfirmed}) // 404 until created
			}
		})
		wg.Wait()
	}
}
