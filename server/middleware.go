package server

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// RequestIDHeader carries the request id, accepted from the caller (a proxy) or generated, and
// always set on the response, so a client's report can be matched with the server's log line.
const RequestIDHeader = "X-Request-ID"

const maxRequestIDLength = 128

// requestLog is what one request's log line says; handlers add to it through the context (a
// stream adds why it ended and how many events it sent).
type requestLog struct {
	id    string
	attrs []slog.Attr
}

type requestLogKey struct{}

// RequestID returns the id of the request ctx belongs to, or "" outside a request.
func RequestID(ctx context.Context) string {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		return l.id
	}
	return ""
}

// logAttrs adds attributes to the request's log line.
func logAttrs(ctx context.Context, attrs ...slog.Attr) {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		l.attrs = append(l.attrs, attrs...)
	}
}

// observe wraps the routes: it gives each request an id, and when the request ends (for a
// stream, when the stream ends) logs one line and counts it by route pattern and status.
// Health checks and scrapes log at debug level, so that they do not drown the log.
func (s *Server) observe(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		l := &requestLog{id: id}
		r = r.WithContext(context.WithValue(r.Context(), requestLogKey{}, l))
		rw := &recordingWriter{ResponseWriter: w}

		mux.ServeHTTP(rw, r) // the mux sets r.Pattern on this same request

		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.Metrics.request(r.Pattern, status)
		level := slog.LevelInfo
		switch r.Pattern {
		case patHealthz, patReadyz, patMetrics:
			level = slog.LevelDebug
		}
		attrs := append([]slog.Attr{
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("route", r.Pattern),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", rw.bytes),
			slog.Duration("duration", time.Since(start)),
		}, l.attrs...)
		s.Logger.LogAttrs(r.Context(), level, "request", attrs...)
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
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
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
