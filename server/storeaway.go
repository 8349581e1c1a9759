package server

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/ordercast/ordercast"
)

// retryAfterSeconds is what a 503 for an unavailable store tells clients to wait: the SSE retry
// delay, in whole seconds, at least one.
func (s *Server) retryAfterSeconds() string {
	return strconv.Itoa(max(1, int(math.Ceil(s.Retry.Seconds()))))
}

// writeStreamError answers err, met while setting up a stream of r, wherever in the set-up it
// came from (authorization, the watch, admission). sse says the answer is an event stream, which
// a store that is away, or a node that is draining, answers so that a browser's EventSource
// retries (answerStreamStoreAway).
func (s *Server) writeStreamError(w http.ResponseWriter, r *http.Request, err error, sse bool) {
	if sse && s.answerStreamStoreAway(w, r, err) {
		return
	}
	s.writeError(w, r, err)
}

// answerStreamStoreAway answers an SSE stream request whose set-up found the store away, or the
// node draining, and reports whether it did. A browser's EventSource gives up for good on any
// status but 200 and 204, so a 503 would end a customer's tracking; instead the stream opens with
// a retry delay and a comment saying why, and closes at once: EventSource reconnects after the
// delay, with its Last-Event-ID, and resumes where it was, through the load balancer (on another
// node, once this one stops listening or its /readyz takes it out) or here once the store is back.
func (s *Server) answerStreamStoreAway(w http.ResponseWriter, r *http.Request, err error) bool {
	if ordercast.ErrorCode(err) != ordercast.EUnavailable {
		return false
	}
	why, reason := "store unavailable", "store_unavailable"
	if s.streamEngine().Draining() {
		why, reason = "node shutting down", "draining"
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Retry-After", s.retryAfterSeconds())
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		// The client goes on reconnecting whatever happens to this write.
		_, _ = fmt.Fprintf(w, "retry: %d\n: %s, retry shortly\n\n", max(1, s.Retry.Milliseconds()), why)
	}
	logAttrs(r.Context(), slog.String("reason", reason))
	return true
}
