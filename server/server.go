// Package server is ordercast's HTTP face: the JSON API, the SSE streams and the health endpoints.
// It speaks the domain's types and the hub's messages; it does not know which store it runs on.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// Defaults for the server's tunables.
const (
	DefaultHeartbeat          = 15 * time.Second
	DefaultRetry              = 2 * time.Second
	DefaultStreamWriteTimeout = 10 * time.Second
	DefaultMaxBodyBytes       = 64 << 10
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout        = 120 * time.Second
	// DefaultWriteTimeout bounds ordinary responses; streams move their own deadline forward
	// before every write, so it never cuts them.
	DefaultWriteTimeout = 30 * time.Second
)

// Server serves the ordercast HTTP API on one listener.
type Server struct {
	// Addr is the listen address, e.g. ":8080" or "127.0.0.1:0".
	Addr string
	// Store is the system of record; Hub delivers committed events on this node.
	Store ordercast.Store
	Hub   *hub.Hub
	// Logger receives request and error logs; nil discards them.
	Logger *slog.Logger

	// Heartbeat is the interval of ": ping" comments on idle streams.
	Heartbeat time.Duration
	// Retry is the reconnection delay sent to SSE clients.
	Retry time.Duration
	// StreamWriteTimeout is the deadline of each write to a stream: a client that cannot take a
	// few hundred bytes in this time is dropped rather than allowed to pin memory.
	StreamWriteTimeout time.Duration
	// MaxBodyBytes caps request bodies (413 above it).
	MaxBodyBytes int64
	// DrainWindow spreads the closing of open streams on Close over this long, so that clients do
	// not all reconnect to the remaining nodes at once. Zero closes them at once.
	DrainWindow time.Duration

	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	WriteTimeout      time.Duration

	ln       net.Listener
	http     *http.Server
	closing  chan struct{} // closed when Close starts: streams begin to drain
	draining atomic.Bool
	ctx      context.Context
	cancel   context.CancelFunc
	serveErr chan error
}

// New returns a server with the default tunables.
func New(store ordercast.Store, h *hub.Hub) *Server {
	return &Server{
		Store:              store,
		Hub:                h,
		Heartbeat:          DefaultHeartbeat,
		Retry:              DefaultRetry,
		StreamWriteTimeout: DefaultStreamWriteTimeout,
		MaxBodyBytes:       DefaultMaxBodyBytes,
		ReadHeaderTimeout:  DefaultReadHeaderTimeout,
		IdleTimeout:        DefaultIdleTimeout,
		WriteTimeout:       DefaultWriteTimeout,
		closing:            make(chan struct{}),
	}
}

// Open validates the configuration, listens on Addr and serves in the background. Listening
// happens before Open returns, so a test can bind ":0" and read URL at once.
func (s *Server) Open() error {
	switch {
	case s.Store == nil || s.Hub == nil:
		return errors.New("server: Store and Hub are required")
	case s.Heartbeat <= 0:
		return errors.New("server: heartbeat must be positive")
	case s.StreamWriteTimeout <= 0:
		return errors.New("server: stream write timeout must be positive")
	case s.MaxBodyBytes <= 0:
		return errors.New("server: max body bytes must be positive")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		WriteTimeout:      s.WriteTimeout,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.http.Serve(ln) }()
	return nil
}

// URL returns the base URL of the listener, with a loopback host when bound to all interfaces.
func (s *Server) URL() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close stops accepting connections, ends open streams (spread over DrainWindow, so that clients
// resume elsewhere without a thundering herd) and waits for them until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	if !s.draining.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closing)
	// Shutdown closes the listener at once and waits for requests, streams included, to finish.
	err := s.http.Shutdown(ctx)
	s.cancel()
	if err != nil {
		// Past the deadline: cut what is left rather than hang the process.
		if cerr := s.http.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return fmt.Errorf("shut down http server: %w", err)
	}
	if err := <-s.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Draining reports whether Close has begun; the node is then not ready for new work.
func (s *Server) Draining() bool { return s.draining.Load() }

// Handler returns the routes of the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", s.handleCreateOrder)
	mux.HandleFunc("GET /v1/orders/{id}", s.handleGetOrder)
	mux.HandleFunc("POST /v1/orders/{id}/status", s.handleSetStatus)
	mux.HandleFunc("GET /v1/orders/{id}/events", s.handleEvents)
	mux.HandleFunc("GET /v1/orders/{id}/stream", s.handleStream)
	mux.HandleFunc("GET /v1/stream", s.handleStreamAll)
	mux.HandleFunc("GET /{$}", s.handleHome)
	mux.HandleFunc("GET /track/{id}", s.handleTrack)
	mux.HandleFunc("GET /console", s.handleConsole)
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	return mux
}

// handleHealthz serves GET /healthz: the process is up.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz serves GET /readyz: the node can take new work (store reachable, not draining).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.Draining() {
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		s.Logger.Warn("readiness: store unreachable", "err", err)
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "store unreachable"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
