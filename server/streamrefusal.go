package server

import (
	"cmp"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/stream"
)

// retryAfterSeconds is what a 503 for an unavailable store tells clients to wait: the SSE retry
// delay, in whole seconds, at least one.
func (s *Server) retryAfterSeconds() string { return retryAfter(s.Retry) }

// retryAfter is d as a Retry-After value: whole seconds, rounded up, at least one.
func retryAfter(d time.Duration) string { return strconv.Itoa(retrySeconds(d)) }

// retrySeconds is d in whole seconds, rounded up, at least one.
func retrySeconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }

// The reasons a stream is refused for a while, as the request's log line and
// ordercast_streams_refused_total name them.
const (
	refusedMaxStreams          = "max_streams"            // the node holds --max-streams
	refusedMaxStreamsPerClient = "max_streams_per_client" // the client's address holds its share
	refusedMaxStreamsPerHolder = "max_streams_per_holder" // the token's holder holds its share
	refusedStreamOpenRate      = "stream_open_rate"       // the client's address opens streams too fast
	refusedStoreUnavailable    = "store_unavailable"
	refusedDraining            = "draining"
)

// streamRefusalReasons are every reason, for the metric to show each from the start.
var streamRefusalReasons = []string{refusedMaxStreams, refusedMaxStreamsPerClient, refusedMaxStreamsPerHolder, refusedStreamOpenRate, refusedStoreUnavailable, refusedDraining}

// streamRefusal is why a stream's set-up was refused for a while, and when to come back.
type streamRefusal struct {
	reason string        // one of streamRefusalReasons
	why    string        // what an event stream's answer says in its comment
	retry  time.Duration // when to come back: Retry-After, and an event stream's retry:
}

// streamRefusalOf reports whether err, met while setting up a stream, refuses it only for a
// while, and why: the stream limits (admitStream's refusals, the only rate limit a stream's
// set-up meets), a store that is away, a node that is draining.
func (s *Server) streamRefusalOf(err error) (streamRefusal, bool) {
	if l, ok := errors.AsType[*limitRefusal](err); ok {
		return streamRefusal{l.reason, l.why, jitterRetry(cmp.Or(l.after, streamRetryAfter))}, true
	}
	switch ordercast.ErrorCode(err) {
	case ordercast.ETooManyStreams:
		return streamRefusal{refusedMaxStreams, "this node holds as many streams as it may", jitterRetry(streamRetryAfter)}, true
	case ordercast.EUnavailable:
		if s.streamEngine().Draining() {
			return streamRefusal{refusedDraining, "node shutting down", jitterRetry(s.Retry)}, true
		}
		return streamRefusal{refusedStoreUnavailable, "store unavailable", jitterRetry(s.Retry)}, true
	}
	return streamRefusal{}, false
}

// jitterRetry is d, the delay a refused stream is told to wait, lengthened by a random part of
// up to half of it, in whole milliseconds (retry: holds milliseconds; Retry-After, whole seconds,
// rounds it up): every client refused together (a node's streams when its store went away, a
// node draining, an office behind one address) would otherwise come back in the same instant,
// and be refused together again.
func jitterRetry(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return (d + rand.N(d/2+1)).Truncate(time.Millisecond)
}

// writeStreamError answers err, met while setting up a stream of r, wherever in the set-up it
// came from (authorization, the watch, admission). sse says the answer is an event stream. A
// refusal for a while is counted by its reason and says when to come back (Retry-After); an
// event stream gets it in the form a browser's EventSource retries (answerStreamRetry), a
// WebSocket or a long poll, whose clients read statuses, its 503 or 429.
func (s *Server) writeStreamError(w http.ResponseWriter, r *http.Request, err error, sse bool) {
	ref, ok := s.streamRefusalOf(err)
	if !ok {
		s.writeError(w, r, err)
		return
	}
	s.Metrics.streamRefused(ref.reason)
	logAttrs(r.Context(), slog.String("reason", ref.reason))
	w.Header().Set("Retry-After", retryAfter(ref.retry))
	if ref.reason == refusedMaxStreams && r.ProtoMajor == 1 {
		// A node full of streams is short of sockets: the refused client's connection is let
		// go with its answer, not kept alive idle, holding a descriptor, until it comes back.
		// (Over HTTP/2 the connection is a proxy's, or carries the client's other requests.)
		w.Header().Set("Connection", "close")
	}
	if sse {
		answerStreamRetry(w, r, ref)
		return
	}
	s.writeError(w, r, err)
}

// answerStreamRetry answers an event stream refused for a while with 200, a retry delay and a
// comment saying why, and closes. A browser's EventSource gives up for good on any status but 200
// and 204 (WHATWG HTML), so a 503 or a 429 would end a customer's tracking; this makes it
// reconnect after the delay, with its Last-Event-ID, and resume where it was: through the load
// balancer on another node (once this one stops listening or its /readyz takes it out), or here
// once the store is back or a place is free.
func answerStreamRetry(w http.ResponseWriter, r *http.Request, ref streamRefusal) {
	stream.SetSSEHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		// The client goes on reconnecting whatever happens to this write.
		_ = stream.WriteRetry(w, ref.retry, ref.why+", retry shortly")
	}
}
