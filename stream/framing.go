package stream

import (
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/hub"
)

// framing is how a stream's content looks on one wire format. Each method appends one frame to b.
type framing interface {
	// preamble is what opens a stream (SSE: the retry advice).
	preamble(b []byte, retry time.Duration) []byte
	// event is one order event, with its seq as id where the format has ids.
	event(b []byte, m *hub.Message) []byte
	// named is an event without an id.
	named(b []byte, name string, data []byte) []byte
	// scoped is an event of a party stream, with its position in the party's log as id.
	scoped(b []byte, id int64, name string, data []byte) []byte
	// heartbeat keeps an idle stream alive; a format whose transport pings appends nothing.
	heartbeat(b []byte) []byte
	// end is the last frame of a stream that ends for reason, if the format tells the client
	// why in a frame (SSE: sseEnds); a format whose transport says it in its close appends
	// nothing.
	end(b []byte, reason string) []byte
}

// sseFraming is the text/event-stream format (WHATWG HTML, server-sent events). Its heartbeat is
// a comment, or, for a watch that asked for visible heartbeats, beat: an event, sent at the
// opening too (Engine.sseFraming).
type sseFraming struct {
	beat []byte
}

// commentHeartbeat is an SSE stream's keep-alive: a comment, which every client skips.
const commentHeartbeat = ": ping\n\n"

// appendHeartbeatEvent appends the visible heartbeat of a stream whose heartbeats come every
// d: an event without an id, so it never moves the client's Last-Event-ID, carrying the
// interval, so that a page knows how long a silence means a dead connection.
func appendHeartbeatEvent(b []byte, every time.Duration) []byte {
	b = append(b, "event: "+api.EventHeartbeat+"\ndata: {\"every_s\":"...)
	b = strconv.AppendFloat(b, every.Seconds(), 'f', -1, 64)
	return append(b, "}\n\n"...)
}

func (f sseFraming) preamble(b []byte, retry time.Duration) []byte {
	return append(appendRetry(b, retry, ""), f.beat...) // a visible heartbeat: the stream is open
}

// WriteRetry writes an SSE frame that sets the client's reconnection delay to d (in whole
// milliseconds, at least one: 0 would mean at once), followed, when comment is not empty, by
// that comment (one line) for whoever reads the stream. A stream opens with one (without a
// comment); a stream refused for a while is answered with one and closed, so that an
// EventSource reconnects after d rather than give up.
func WriteRetry(w io.Writer, d time.Duration, comment string) error {
	_, err := w.Write(appendRetry(nil, d, comment))
	return err
}

func appendRetry(b []byte, d time.Duration, comment string) []byte {
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, max(1, d.Milliseconds()), 10)
	b = append(b, '\n')
	if comment != "" {
		b = append(b, ": "...)
		b = append(b, comment...)
		b = append(b, '\n')
	}
	return append(b, '\n')
}

func (sseFraming) event(b []byte, m *hub.Message) []byte { return appendEvent(b, m) }

func (sseFraming) named(b []byte, name string, data []byte) []byte {
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

func (f sseFraming) scoped(b []byte, id int64, name string, data []byte) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, '\n')
	return f.named(b, name, data)
}

func (sseFraming) end(b []byte, reason string) []byte { return append(b, sseEnds[reason]...) }

func (f sseFraming) heartbeat(b []byte) []byte {
	if f.beat != nil {
		return append(b, f.beat...)
	}
	return append(b, commentHeartbeat...)
}

// sseEnds are the frames an SSE stream ends with, by the engine's reason, where its client must
// not simply reconnect as it was (api.EventEnd); a stream that ends for any other reason just
// ends, and its client resumes.
var sseEnds = map[string][]byte{
	ReasonExpired: sseEnd(api.EndTokenExpired, "the token this stream was opened with expired: reconnect with a new one"),
	ReasonRevoked: sseEnd(api.EndOrderReassigned, "the order went to another courier"),
	// With an empty id: an EventSource's last event ID becomes empty, and it reconnects without
	// Last-Event-ID, as the end asks, even one that knows no end event.
	ReasonRewound: append([]byte("id:\n"), sseEnd(api.EndHistoryRewritten, "the order's history went back under this stream (its database lost its last changes): open it afresh, without Last-Event-ID")...),
}

func sseEnd(reason, message string) []byte {
	data, err := json.Marshal(api.StreamEnd{Reason: reason, Message: message})
	if err != nil {
		panic(err) // two strings
	}
	return sseFraming{}.named(nil, api.EventEnd, data)
}

// appendEvent appends one event in the SSE wire format: id, event type and one JSON data line.
// The JSON never holds a raw newline, so one data line is always enough.
func appendEvent(b []byte, m *hub.Message) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, m.Event.Seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, api.EventName(m.Event)...)
	b = append(b, "\ndata: "...)
	b = append(b, m.JSON...)
	return append(b, "\n\n"...)
}

// messageFraming is one JSON text message per event (WebSocket); heartbeats are the transport's
// pings.
type messageFraming struct{}

func (messageFraming) preamble(b []byte, _ time.Duration) []byte    { return b }
func (messageFraming) event(b []byte, m *hub.Message) []byte        { return append(b, m.JSON...) }
func (messageFraming) named(b []byte, _ string, data []byte) []byte { return append(b, data...) }
func (messageFraming) heartbeat(b []byte) []byte                    { return b }
func (messageFraming) end(b []byte, _ string) []byte                { return b } // the close's reason says it
func (messageFraming) scoped(b []byte, _ int64, _ string, data []byte) []byte {
	return append(b, data...)
}

// appendChunk appends b as one chunk of a chunked HTTP/1.1 body; an empty b is the last chunk,
// which ends the body.
func appendChunk(dst, b []byte) []byte {
	dst = appendChunkHeader(dst, len(b))
	dst = append(dst, b...)
	return append(dst, "\r\n"...)
}

// appendChunkHeader appends the size line of a chunk of n bytes.
func appendChunkHeader(dst []byte, n int) []byte {
	dst = strconv.AppendInt(dst, int64(n), 16)
	return append(dst, "\r\n"...)
}

// scratch recycles the buffers a held stream frames and chunks its events in. A held stream keeps
// no buffer between two flushes (it is idle nearly always, and its memory decides how many one
// node holds), and the poller copies whatever a socket does not take at once, so a buffer is
// free again as soon as the write returns: two allocations of every event delivered saved.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// maxScratch is the largest buffer given back: a long catch-up's is left to the collector.
const maxScratch = 16 << 10

func getScratch() *[]byte { return scratch.Get().(*[]byte) }

// putScratch gives b, last taken as *p, back to scratch.
func putScratch(p *[]byte, b []byte) {
	if cap(b) <= maxScratch {
		*p = b[:0]
		scratch.Put(p)
	}
}

// keepSmall empties s for reuse, or drops it if a backlog grew it: a lean watcher keeps the room
// of a few frames, the usual flush, and no more.
func keepSmall[T any](s []T) []T { return keepUpTo(s, 4) }

// maxKeptFrames is the most frames' room a stream on its own goroutine keeps between flushes: a
// burst's, not a backlog's.
const maxKeptFrames = 64

// keepUpTo empties s for reuse while its room is at most most, and drops it past that.
func keepUpTo[T any](s []T, most int) []T {
	if cap(s) > most {
		return nil
	}
	return s[:0]
}

// sseFraming returns the SSE framing of watch wt: its heartbeats visible when it asked.
func (e *Engine) sseFraming(wt *Watch) sseFraming {
	if !wt.visibleHeartbeats {
		return sseFraming{}
	}
	return sseFraming{beat: e.heartbeatEvent}
}
