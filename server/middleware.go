package server

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast/api"
)

// RequestIDHeader carries the request id, accepted from the caller (a proxy) or generated, and
// always set on the response, so a client's report can be matched with the server's log line.
const RequestIDHeader = "X-Request-ID"

const maxRequestIDLength = 128

var (
	requestIDKey = http.CanonicalHeaderKey(RequestIDHeader)
	nosniff      = []string{"nosniff"}
	hsts         = []string{"max-age=31536000"}
	connClose    = []string{"close"}
)

// requestLog is what one request's log line says; handlers add to it through the context (a
// stream adds why it ended and how many events it sent). It also holds the request's response
// writer and the id header's value, so that a request costs one allocation here, not four.
type requestLog struct {
	s     *Server
	id    string
	idHdr [1]string // the X-Request-ID header's value
	rw    recordingWriter
	start time.Time

	mu        sync.Mutex
	attrs     []slog.Attr
	bypassed  int64 // response bytes written past the recording writer (a hijacked connection)
	remaining int   // parts still running: the handler, and a stream handed over by it
	handled   bool  // the handler has returned, and left line
	// held: a stream or a long poll, open as long as its client wants (handOver, holdOpen),
	// whose time says nothing of the server's speed and stays out of the request durations.
	held bool
	line requestLine
}

// requestLine is what the handler left for the log line when it returned: plain values only, as
// the response and the request must not outlive the handler (every held stream would keep
// net/http's buffers alive).
type requestLine struct {
	level                 slog.Level
	pattern, method, path string
	client                netip.Addr // as the limits count it: the peer, or the client a trusted proxy names
	status                int
	written               int64
}

// handOver tells the request log that the request may go on after its handler returns (a stream
// held by the poller): its line is written when both the handler has returned and the returned
// finish has been called, with attrs added and bypassed counted into its bytes.
func handOver(ctx context.Context) (finish func(bypassed int64, attrs ...slog.Attr)) {
	l, ok := ctx.Value(requestLogKey{}).(*requestLog)
	if !ok {
		return func(int64, ...slog.Attr) {}
	}
	l.mu.Lock()
	l.remaining++
	l.held = true
	l.mu.Unlock()
	return func(bypassed int64, attrs ...slog.Attr) {
		l.mu.Lock()
		l.attrs = append(l.attrs, attrs...)
		l.bypassed += bypassed
		l.partDone()
	}
}

// holdOpen tells the request log that the request ctx belongs to is held open on purpose (a long
// poll): its time is the client's wait, and stays out of the request durations.
func holdOpen(ctx context.Context) {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		l.mu.Lock()
		l.held = true
		l.mu.Unlock()
	}
}

// logAttrs adds attrs to the log line of the request ctx belongs to (a stream's end reason).
func logAttrs(ctx context.Context, attrs ...slog.Attr) {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		l.mu.Lock()
		l.attrs = append(l.attrs, attrs...)
		l.mu.Unlock()
	}
}

// partDone ends one part of the request, with l.mu held, which it releases; the last part to end
// writes the line.
func (l *requestLog) partDone() {
	l.remaining--
	if l.remaining > 0 || !l.handled {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.emit()
}

// emit counts the request and writes its line; it runs once, when its last part has ended.
func (l *requestLog) emit() {
	line := &l.line
	// The last part has ended: l.held is set for good (partDone took l.mu after every change).
	l.s.Metrics.request(line.pattern, line.status, time.Since(l.start), l.held)
	ctx := context.Background()
	if !l.s.Logger.Enabled(ctx, line.level) {
		return // a line nobody reads is not built
	}
	client := "" // a peer that is no IP address (a Unix socket's) is left blank
	if line.client.IsValid() {
		client = line.client.String()
	}
	l.mu.Lock()
	attrs := append([]slog.Attr{
		slog.String("request_id", l.id),
		slog.String("method", line.method),
		slog.String("route", line.pattern),
		slog.String("path", line.path),
		slog.String("client", client),
		slog.Int("status", line.status),
		slog.Int64("bytes", line.written+l.bypassed),
		slog.Duration("duration", time.Since(l.start)),
	}, l.attrs...)
	l.mu.Unlock()
	l.s.Logger.LogAttrs(ctx, line.level, "request", attrs...)
}

type requestLogKey struct{}

// RequestID returns the id of the request ctx belongs to, or "" outside a request.
func RequestID(ctx context.Context) string {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		return l.id
	}
	return ""
}

// observe wraps the routes: it gives each request an id, and when the request ends (for a
// stream, when the stream ends) logs one line and counts it by route pattern and status.
// Health checks and scrapes log at debug level, so that they do not drown the log.
func (s *Server) observe(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := &requestLog{s: s, start: time.Now(), remaining: 1}
		if v := r.Header[requestIDKey]; len(v) > 0 {
			l.id = v[0] // as Get, without canonicalizing the name again
		}
		if !saneRequestID(l.id) {
			l.id = newRequestID()
		}
		// Set directly, in canonical form, and the constant values shared, never modified: Set
		// would canonicalize the id's name into a new string and allocate every value's slice.
		h := w.Header()
		l.idHdr[0] = l.id
		h[requestIDKey] = l.idHdr[:]
		// Every answer is what its Content-Type says; browsers must not guess otherwise.
		h["X-Content-Type-Options"] = nosniff
		if r.TLS != nil {
			h["Strict-Transport-Security"] = hsts
		}
		r = r.WithContext(context.WithValue(r.Context(), requestLogKey{}, l))
		l.rw.ResponseWriter, l.rw.closing = w, &s.draining

		mux.ServeHTTP(&l.rw, r) // the mux sets r.Pattern on this same request

		// The line is written when the last part of the request ends: now, or when a held stream
		// closes.
		line := requestLine{level: slog.LevelInfo, pattern: r.Pattern, method: r.Method, path: r.URL.Path,
			status: l.rw.status, written: l.rw.bytes}
		if line.status == 0 {
			line.status = http.StatusOK
		}
		switch {
		case line.pattern == patHealthz, line.pattern == patReadyz, line.pattern == patMetrics:
			line.level = slog.LevelDebug
		case line.pattern == api.RoutePostLocation && line.status < http.StatusBadRequest:
			// A courier's phone posts about once a second: thousands of couriers would fill the
			// log with them. A refused one is logged as any refusal.
			line.level = slog.LevelDebug
		case s.RequestLog == RequestLogOff, s.RequestLog == RequestLogRefused && line.status < http.StatusBadRequest:
			// A line a request, at a few hundred writes a second, is gigabytes a day; the
			// operator who turned it down keeps the info lines that say what the node did.
			line.level = slog.LevelDebug
		}
		if s.Logger.Enabled(r.Context(), line.level) {
			// Read while the request is still the handler's (X-Forwarded-For), and only for a
			// line that will be written: a scrape at debug level costs nothing here.
			line.client = s.clientAddr(r)
		}
		l.mu.Lock()
		l.rw.ResponseWriter = nil // the response must not outlive its handler (see requestLine)
		l.line, l.handled = line, true
		l.partDone() // the handler's part; a held stream may still be running
	})
}

// saneRequestID accepts an incoming id only if it is short and made of characters that are safe
// in logs and headers (UUIDs, hex, and the usual tracing formats).
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '=', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 16 random hex digits: unique enough to find one request in the logs.
func newRequestID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// recordingWriter remembers the status and counts the bytes of a response. Unwrap lets
// http.ResponseController reach the connection (deadlines, flushes) through it.
type recordingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	// closing is the server's draining: an answer begun once it is set closes its connection.
	closing *atomic.Bool
}

// closeIfClosing has an answer begun while the node closes end its connection (Connection:
// close; on HTTP/2, a GOAWAY), so that when the listener closes, a proxy holds few idle ones to
// send a request on just as it closes: such a POST is lost to a reset, and nginx passes no POST
// on (one 502 in 9,500 writes over rolling restarts). Judged as the answer's header goes, so a
// long poll begun before the drain closes too; a WebSocket's handshake keeps its own.
func (w *recordingWriter) closeIfClosing() {
	if w.status != 0 || w.closing == nil || !w.closing.Load() {
		return
	}
	if h := w.Header(); h["Connection"] == nil {
		h["Connection"] = connClose
	}
}

func (w *recordingWriter) WriteHeader(code int) {
	w.closeIfClosing()
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.closeIfClosing()
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush keeps the http.Flusher interface for code that asserts it rather than using a controller.
func (w *recordingWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush() // the write error surfaces on the next Write
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
