package stream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/testutil"
)

// TestWebSocketHandshakeOutlivesTheServerWriteDeadline: the server-wide WriteTimeout of ordinary
// responses runs from the request's arrival, and a WebSocket's handshake answer (101) is written
// after the order is read and authorized. When that took longer than the deadline, the 101 was
// lost in net/http's buffer while the hijacked connection went on sending frames, and the client
// read a frame where it expected the answer ("malformed HTTP response").
func TestWebSocketHandshakeOutlivesTheServerWriteDeadline(t *testing.T) {
	const serverWriteTimeout = 20 * time.Millisecond
	e := New(newMemStore(ordercast.StatusPlaced), hub.New(), testConfig, nil)
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		wt, err := e.Watch(r.Context(), Request{OrderID: "o-1"})
		if err != nil {
			t.Error(err)
			return
		}
		// A slow read or authorization: the server's deadline passes before the handshake.
		testutil.WaitFor(t, "the server's write deadline to pass", func() bool {
			return time.Since(arrived) > 2*serverWriteTimeout
		})
		e.ServeWebSocket(w, r, wt, func(End) {})
	}))
	srv.Config.WriteTimeout = serverWriteTimeout
	srv.Start()
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var ev ordercast.Event
	if err := json.Unmarshal(b, &ev); err != nil || ev.Seq != 1 {
		t.Fatalf("first message %s: %+v, %v", b, ev, err)
	}
}
