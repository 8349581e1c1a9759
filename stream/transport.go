package stream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/coder/websocket"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// transport moves a stream's frames to its client. It knows no delivery rule: what to send, when,
// and why a stream ends are the engine's. A new transport implements these three and nothing else
// (after centrifugal/centrifuge's Transport).
type transport interface {
	// Write sends one frame and pushes it to the client.
	Write(frame []byte) error
	// WriteMany sends frames in order and pushes them to the client, under a write deadline
	// renewed for every span of them (writeSpans).
	WriteMany(frames ...[]byte) error
	// Close ends the connection for reason; last is the status of the last event sent, for a
	// transport that tells the client why it closes.
	Close(reason string, last ordercast.Status) error
}

// pinger is a transport with keep-alives of its own (WebSocket pings), sent instead of the
// framing's heartbeat frame. Ping waits for the answer: a client that cannot answer in time is stuck.
type pinger interface {
	Ping() error
}

// responseTransport writes SSE frames to an http.ResponseWriter, on the request's goroutine, with a
// fresh write deadline for every write, and every span of a long one (writeSpans): the
// server-wide WriteTimeout must not cut a stream, and a stuck client must not pin it.
type responseTransport struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

var _ transport = (*responseTransport)(nil)

func (t *responseTransport) Write(frame []byte) error {
	if len(frame) > deadlineSpan {
		return t.WriteMany(frame) // a snapshot: its deadline renewed every span of it
	}
	if err := t.deadline(); err != nil {
		return err
	}
	if _, err := t.w.Write(frame); err != nil {
		return fmt.Errorf("write stream: %w", err)
	}
	return t.flush()
}

func (t *responseTransport) WriteMany(frames ...[]byte) error {
	err := writeSpans(splitFrames(frames), t.deadline, func(f []byte) error {
		if _, err := t.w.Write(f); err != nil {
			return fmt.Errorf("write stream: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return t.flush()
}

// deadlineSpan is how many bytes of a batch one write deadline covers. A batch of a long backlog
// (a board resumed from the start of its day: megabytes) is sent under a deadline renewed every
// span, so a client that takes it slowly but steadily, a phone on a slow network, is not cut
// mid-backlog to start again: as the poller ends only a stream that takes nothing for WriteTimeout,
// this ends one that takes less than a span in it.
const deadlineSpan = 64 << 10

// writeSpans writes frames in order with write, calling renew (which sets a fresh write deadline)
// before the first and again before each frame that starts a new span of deadlineSpan bytes.
func writeSpans(frames [][]byte, renew func() error, write func([]byte) error) error {
	span := 0
	for i, f := range frames {
		if i == 0 || span >= deadlineSpan {
			if err := renew(); err != nil {
				return err
			}
			span = 0
		}
		if err := write(f); err != nil {
			return err
		}
		span += len(f)
	}
	return nil
}

// splitFrames returns frames with each frame longer than deadlineSpan cut into pieces of at most
// that many bytes, or frames itself when none is. An SSE body is a stream of bytes, so one large
// frame (a snapshot of hundreds of orders: megabytes) is written under a deadline renewed every
// span of it, as a batch of small frames is; whole, it had one deadline, and a client taking it
// slowly but steadily was cut when it outlasted WriteTimeout, which the poller never does.
func splitFrames(frames [][]byte) [][]byte {
	if !slices.ContainsFunc(frames, func(f []byte) bool { return len(f) > deadlineSpan }) {
		return frames
	}
	var out [][]byte
	for _, f := range frames {
		for len(f) > deadlineSpan {
			out = append(out, f[:deadlineSpan])
			f = f[deadlineSpan:]
		}
		out = append(out, f)
	}
	return out
}

// deadline moves the connection's write deadline to the write timeout from now.
func (t *responseTransport) deadline() error {
	if err := t.rc.SetWriteDeadline(time.Now().Add(t.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("set write deadline: %w", err)
	}
	return nil
}

func (t *responseTransport) flush() error {
	if err := t.rc.Flush(); err != nil {
		return fmt.Errorf("flush stream: %w", err)
	}
	return nil
}

// Close does nothing: the response ends when the handler returns (its last frame, if any, the
// engine wrote: framing.end).
func (t *responseTransport) Close(string, ordercast.Status) error { return nil }

// wsTransport writes one WebSocket text message per frame.
type wsTransport struct {
	ctx     context.Context
	conn    *websocket.Conn
	timeout time.Duration
}

var (
	_ transport = (*wsTransport)(nil)
	_ pinger    = (*wsTransport)(nil)
)

func (t *wsTransport) Write(frame []byte) error { return t.WriteMany(frame) }

func (t *wsTransport) WriteMany(frames ...[]byte) error {
	ctx, cancel := t.ctx, context.CancelFunc(func() {})
	defer func() { cancel() }()
	return writeSpans(frames, func() error {
		cancel()
		ctx, cancel = context.WithTimeout(t.ctx, t.timeout)
		return nil
	}, func(f []byte) error {
		if err := t.conn.Write(ctx, websocket.MessageText, f); err != nil {
			return wsWriteError(ctx, err)
		}
		return nil
	})
}

func (t *wsTransport) Ping() error {
	ctx, cancel := context.WithTimeout(t.ctx, t.timeout)
	defer cancel()
	if err := t.conn.Ping(ctx); err != nil {
		return wsWriteError(ctx, err)
	}
	return nil
}

// Close tells the client why: 1000 after the terminal event, 1001 (going away: resume elsewhere)
// on drain or lifetime, 1008 when the order went to another courier, 4002 when the token it was
// let in with stopped being accepted (api.CloseTokenExpired: a reconnect with it is refused, so
// fetch a new one first), 1003 (unsupported data) when the client sent a message to a socket that
// only sends, 1011 when the store failed, 4001 when the order's history went back under it
// (api.CloseHistoryRewritten); otherwise the connection just closes.
func (t *wsTransport) Close(reason string, last ordercast.Status) error {
	switch reason {
	case ReasonTerminal:
		return t.conn.Close(websocket.StatusNormalClosure, "order is "+string(last))
	case ReasonShutdown, ReasonLifetime:
		return t.conn.Close(websocket.StatusGoingAway, "reconnect with lastEventId")
	case ReasonRevoked:
		return t.conn.Close(websocket.StatusPolicyViolation, "order assigned to another courier")
	case ReasonExpired:
		return t.conn.Close(websocket.StatusCode(api.CloseTokenExpired), "token expired: reconnect with a new one")
	case ReasonClientData:
		return t.conn.Close(websocket.StatusUnsupportedData, "this WebSocket only sends: send it nothing")
	case ReasonStoreError:
		return t.conn.Close(websocket.StatusInternalError, "internal error")
	case ReasonRewound:
		return t.conn.Close(websocket.StatusCode(api.CloseHistoryRewritten), "history rewritten: reconnect without lastEventId")
	}
	return t.conn.CloseNow()
}

// wsWriteError makes a missed write deadline look like the SSE stream's, so both count it as
// a write timeout.
func wsWriteError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("websocket write: %w (%w)", os.ErrDeadlineExceeded, err)
	}
	return fmt.Errorf("websocket write: %w", err)
}
