package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
)

// A node listens before its store is open, so that a busy port or a bad certificate fails
// start-up at once rather than after the database has been waited for (--db-wait) or migrated.
// Until Open, the listener is served by ServeStarting: without it the kernel completes every
// connection to the port while nothing answers them, and a load balancer that sends a node its
// share from its first accepted connection (nginx's least_conn prefers an idle node) left those
// requests hanging for as long as the wait lasted. A starting node says it is alive (/healthz),
// not ready (/readyz 503), and asks every request to come back: 503 unavailable with
// Retry-After, or, to an event stream, the 200 and retry: that a browser's EventSource
// reconnects from, as a node whose store is away does.

// ServeStarting answers on the listener Listen bound until Open takes it over. It is for the
// time a node opens its store; Open stops it, letting its connections go once idle.
func (s *Server) ServeStarting() error {
	if s.ln == nil || s.http != nil || s.starting != nil {
		return errors.New("server: ServeStarting needs Listen first, and only once before Open")
	}
	tl, ok := s.ln.(*net.TCPListener)
	if !ok {
		return errors.New("server: ServeStarting needs a TCP listener")
	}
	gate := &startingServer{ln: &handoffListener{TCPListener: tl}}
	gate.http = &http.Server{
		Handler:           http.HandlerFunc(s.handleStarting),
		Protocols:         s.protocols(),
		TLSConfig:         s.tlsConfig,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		IdleTimeout:       time.Second, // its connections are let go at Open
		ErrorLog:          s.httpErrorLog(),
	}
	gate.done = make(chan struct{})
	go func() {
		defer close(gate.done)
		var err error
		if s.tlsConfig != nil {
			err = gate.http.ServeTLS(gate.ln, "", "")
		} else {
			err = gate.http.Serve(gate.ln)
		}
		if !errors.Is(err, errHandedOver) { // how it ends when Open takes the listener over
			s.Logger.Error("the starting server stopped answering before the store opened", "err", err)
		}
	}()
	s.starting = gate
	// The metrics need no store: a scrape of a node waiting for its database is answered (the
	// store's own metrics come once it opens) rather than left hanging on a bound port.
	s.metrics.Serve()
	return nil
}

// stopStarting hands the listener over from the starting server, if one serves it.
func (s *Server) stopStarting() {
	if s.starting != nil {
		s.starting.handOver()
		s.starting.ln.release()
		s.starting = nil
	}
}

// startingServer is the server of a starting node, on the listener it hands over at Open.
type startingServer struct {
	http *http.Server
	ln   *handoffListener
	done chan struct{}
}

// handOver stops the starting server without closing the listener, and waits (a few seconds at
// most) for the requests it is answering, which are never long: every answer is at once.
func (g *startingServer) handOver() {
	g.ln.handOver()
	<-g.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.http.Shutdown(ctx) // closes its idle connections; its clients reconnect to the node
}

// handoffListener is a TCP listener that a server can stop accepting on without closing it, so
// that another server accepts on it next: a deadline in the past wakes the Accept that waits.
type handoffListener struct {
	*net.TCPListener
	over atomic.Bool
}

// errHandedOver ends the starting server's Serve: not a temporary error, which Serve would retry.
var errHandedOver = errors.New("listener handed over")

func (l *handoffListener) Accept() (net.Conn, error) {
	for {
		c, err := l.TCPListener.Accept()
		if l.over.Load() {
			if c != nil {
				// Accepted as the hand-over began: given back to the kernel's queue it cannot
				// be, so it is closed, and its client connects again.
				c.Close()
			}
			return nil, errHandedOver
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			continue // a deadline left from a hand-over race; the flag says it is not ours
		}
		return c, err
	}
}

// Close is the starting server's Shutdown: the listener stays open for the next server.
func (l *handoffListener) Close() error { return nil }

func (l *handoffListener) handOver() {
	l.over.Store(true)
	_ = l.SetDeadline(time.Now()) // wakes the Accept that waits
}

// release clears the deadline the hand-over set, for the server that accepts next.
func (l *handoffListener) release() { _ = l.SetDeadline(time.Time{}) }

// handleStarting answers a request to a node whose store is not open yet.
func (s *Server) handleStarting(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		s.handleHealthz(w, r)
	case r.URL.Path == "/readyz":
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "starting: the store is not open yet"))
	case strings.HasSuffix(r.URL.Path, "/stream") && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		w.Header().Set("Retry-After", s.retryAfterSeconds())
		answerStreamRetry(w, r, streamRefusal{refusedStoreUnavailable, "node starting", s.Retry})
	default:
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "the node is starting: its store is not open yet")) // with Retry-After
	}
}
