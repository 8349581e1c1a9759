package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/coder/websocket"

	"github.com/ordercast/ordercast/hub"
)

// handleWebSocket serves GET /v1/orders/{id}/ws: the same events as the SSE stream, one JSON
// event per text message, with the same resume point (?lastEventId=N; the seq of the last event
// the client has). After the terminal event the server closes with 1000 (normal closure); a
// reconnect after the terminal event is accepted and closed with 1000 at once, which a browser's
// WebSocket reports as a clean close (an HTTP 204 would only show as a failed handshake). A
// draining node closes with 1001 (going away): the client resumes elsewhere.
func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	ws, ok := s.startWatch(w, r)
	if !ok {
		return
	}
	defer ws.done()
	ctx := r.Context()

	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept has answered the failed handshake
	}
	if ws.ended {
		// The client already has the final event: nothing more will come.
		c.Close(websocket.StatusNormalClosure, "order is "+string(ws.order.Status))
		return
	}
	// The client sends nothing; reading in the background answers pings and closes, and ends
	// ctx when the client goes (a hijacked connection's request context does not notice).
	ctx = c.CloseRead(ctx)
	f := &wsFrames{ctx: ctx, conn: c, timeout: s.StreamWriteTimeout}
	st := &stream{out: f, last: ws.last, metrics: s.Metrics}
	st.events(ws.backlog)
	reason := s.runStream(ctx, r, st, ws.sub, func(msgs []*hub.Message, overflowed bool) error {
		return s.forward(ctx, ws.orderID, st, msgs, overflowed)
	})
	switch reason {
	case ReasonTerminal:
		c.Close(websocket.StatusNormalClosure, "order is "+string(st.lastStatus))
	case ReasonShutdown, ReasonLifetime:
		c.Close(websocket.StatusGoingAway, "reconnect with lastEventId")
	case ReasonStoreError:
		c.Close(websocket.StatusInternalError, "internal error")
	default:
		c.CloseNow()
	}
}

// wsFrames writes a stream's events as WebSocket text messages, one event each, and heartbeats
// as pings.
type wsFrames struct {
	ctx     context.Context
	conn    *websocket.Conn
	timeout time.Duration
	queue   [][]byte
	ping    bool
}

var _ frames = (*wsFrames)(nil)

func (f *wsFrames) event(m *hub.Message) { f.queue = append(f.queue, m.JSON) }

func (f *wsFrames) heartbeat() { f.ping = true }

func (f *wsFrames) flush() error {
	if len(f.queue) == 0 && !f.ping {
		return nil
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.timeout)
	defer cancel()
	for i, msg := range f.queue {
		if err := f.conn.Write(ctx, websocket.MessageText, msg); err != nil {
			return wsWriteError(ctx, err)
		}
		f.queue[i] = nil
	}
	f.queue = f.queue[:0]
	if f.ping {
		f.ping = false
		// Ping waits for the pong: a client that cannot answer in time is stuck.
		if err := f.conn.Ping(ctx); err != nil {
			return wsWriteError(ctx, err)
		}
	}
	return nil
}

// wsWriteError makes a missed write deadline look like the SSE stream's, so both count it as
// a write timeout.
func wsWriteError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("websocket write: %w (%w)", os.ErrDeadlineExceeded, err)
	}
	return fmt.Errorf("websocket write: %w", err)
}
