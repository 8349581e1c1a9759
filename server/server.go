// Package server is ordercast's HTTP face: the JSON API, the SSE streams and the health endpoints.
// It speaks the domain's types and the hub's messages; it does not know which store it runs on.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/sidelisten"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/stream"
)

// Server serves the ordercast HTTP API on one listener, and GET /metrics on a second one when
// MetricsAddr is set.
type Server struct {
	Config

	// Store is the system of record; Hub delivers committed events on this node.
	Store ordercast.Store
	Hub   *hub.Hub
	// Logger receives request and error logs; nil discards them.
	Logger *slog.Logger

	// PartyLinks are the parties the home page links to (demo mode sets them).
	PartyLinks []PartyLink

	// Metrics are served at /metrics (on MetricsAddr when set); New creates them, on a registry
	// of their own.
	Metrics *Metrics
	// ReadyChecks are asked by /readyz besides the store's Ping (a bus adds "listening"); any
	// error makes the node not ready. Append before Open.
	ReadyChecks []func(context.Context) error

	// Locations takes couriers' positions in and finds an order's newest one for a new stream;
	// nil serves no positions (POST …/location is 404). Its owner opens and closes it.
	Locations *location.Tracker

	// Auth is who may watch and change orders; nil means open (see Auth).
	Auth *Auth

	clients clientTable // per-client write rates and stream counts

	ln        net.Listener
	starting  *startingServer // answers on ln between ServeStarting and Open
	http      *http.Server
	metrics   *sidelisten.Server              // nil when /metrics is served on Addr
	tlsConfig *tls.Config                     // nil without TLS
	cert      atomic.Pointer[tls.Certificate] // what tlsConfig presents: ReloadCertificate
	engine    *stream.Engine                  // runs every watch; made by Handler from the fields above
	draining  atomic.Bool                     // set when Close starts: the node is not ready
	// closed is closed when the first Close returns: a second Close waits for it, so that
	// neither caller goes on while requests still run.
	closed  chan struct{}
	unready unreadyLog // why /readyz last failed, logged once a spell
	// partyBacklog is the engine's stream.Config.PartyBacklog, 0 for its default: a test's
	// smaller bound reaches a fresh snapshot in a few events (SetPartyBacklog).
	partyBacklog int
	// untrustedProxySeen is set once a request carried X-Forwarded-For from a peer that
	// --trusted-proxies does not name (clientAddr), which is logged the first time.
	untrustedProxySeen atomic.Bool
	ctx                context.Context
	cancel             context.CancelFunc
	serveErr           chan error
}

// New returns a server with DefaultConfig.
func New(store ordercast.Store, h *hub.Hub) *Server {
	return &Server{Config: DefaultConfig(), Store: store, Hub: h, Metrics: NewMetrics()}
}

// Listen validates the configuration, loads the TLS pair and binds the listeners, without
// serving yet: a busy port or a bad certificate then stops start-up before the store is opened
// and migrated, and a database slow to come does not hide it for --db-wait. Open calls it when
// it has not been called; Unlisten releases what it bound when Open will not follow.
func (s *Server) Listen() error {
	if s.ln != nil {
		return errors.New("server: already listening")
	}
	if err := s.Config.Validate(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.applyDefaults()
	if s.TLSCertFile != "" {
		if _, err := s.ReloadCertificate(); err != nil {
			return err
		}
		s.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }}
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	if s.MetricsAddr != "" {
		m, err := s.listenMetrics()
		if err != nil {
			return errors.Join(err, ln.Close())
		}
		s.metrics = m
	}
	s.ln = ln
	return nil
}

// ReloadCertificate reads TLSCertFile and TLSKeyFile again, so that a renewed certificate is
// presented from the next handshake on, without a restart (cmd/ordercast does it on SIGHUP);
// connections open keep theirs. It reports false, doing nothing, without TLS; a pair that does
// not load leaves the certificate in use as it was.
func (s *Server) ReloadCertificate() (bool, error) {
	if s.TLSCertFile == "" {
		return false, nil
	}
	cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
	if err != nil {
		return false, fmt.Errorf("load TLS certificate: %w", err)
	}
	if cert.Leaf == nil {
		// LoadX509KeyPair leaves Leaf unset under GODEBUG=x509keypairleaf=0; Certificate needs it.
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return false, fmt.Errorf("parse TLS certificate: %w", err)
		}
	}
	s.cert.Store(&cert)
	return true, nil
}

// Certificate returns the leaf certificate new connections are presented, or nil without TLS,
// so that a caller of ReloadCertificate can tell a renewed certificate from the same one again.
func (s *Server) Certificate() *x509.Certificate {
	if c := s.cert.Load(); c != nil {
		return c.Leaf
	}
	return nil
}

// Unlisten closes the listeners Listen bound, for a start-up that fails before Open.
func (s *Server) Unlisten() error {
	if s.ln == nil || s.http != nil {
		return nil
	}
	s.stopStarting()
	err := errors.Join(s.ln.Close(), s.metrics.Close())
	s.ln, s.metrics = nil, nil
	return err
}

// Open listens (unless Listen did) and serves in the background. Listening happens before Open
// returns, so a test can bind ":0" and read URL at once.
func (s *Server) Open() error {
	switch {
	case s.Store == nil || s.Hub == nil:
		return errors.New("server: Store and Hub are required")
	case s.Auth != nil && s.Auth.Tokens == nil:
		return errors.New("server: Auth needs Tokens")
	}
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	protocols := s.protocols()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ln := s.ln
	if s.Limits.MaxConnsPerPeer > 0 || s.Limits.MaxConns > 0 {
		ln = newConnCapListener(ln, s.Limits.MaxConns, s.Limits.MaxConnsPerPeer, s.Limits.TrustedProxies, s.Limits.IPv6ClientPrefix, s.Logger)
	}
	s.http = &http.Server{
		Handler:           s.Handler(),
		Protocols:         protocols,
		TLSConfig:         s.tlsConfig,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		IdleTimeout:       s.IdleTimeout,
		WriteTimeout:      s.WriteTimeout,
		// Go's default of 250 streams a connection would let one address hold 250 times the
		// connection cap in requests; a proxy in front opens more connections.
		HTTP2:       &http.HTTP2Config{MaxConcurrentStreams: maxHTTP2Streams},
		ConnState:   s.Metrics.connState,
		ErrorLog:    s.httpErrorLog(),
		BaseContext: func(net.Listener) context.Context { return s.ctx },
	}
	if err := s.engine.Open(); err != nil {
		s.cancel()
		s.stopStarting()
		err = errors.Join(err, ln.Close(), s.metrics.Close())
		s.http, s.ln, s.metrics = nil, nil, nil
		return err
	}
	s.stopStarting()
	s.metrics.Serve() // unless ServeStarting did
	s.serveErr = make(chan error, 1)
	s.closed = make(chan struct{})
	go func() {
		if s.tlsConfig != nil {
			s.serveErr <- s.http.ServeTLS(ln, "", "")
			return
		}
		s.serveErr <- s.http.Serve(ln)
	}()
	return nil
}

// protocols is what the node speaks on its port: HTTP/1.1, HTTP/2 over TLS, and cleartext
// HTTP/2 with H2C; the starting server (ServeStarting) speaks the same.
func (s *Server) protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(s.H2C)
	p.SetHTTP2(s.tlsConfig != nil)
	return &p
}

// URL returns the base URL of the listener, with a loopback host when bound to all interfaces.
func (s *Server) URL() string {
	scheme := "http://"
	if s.tlsConfig != nil {
		scheme = "https://"
	}
	return scheme + reachableAddr(s.ln.Addr())
}

// MetricsURL returns where GET /metrics is served: on the MetricsAddr listener when there is
// one, else on the main one.
func (s *Server) MetricsURL() string {
	if s.metrics != nil {
		return "http://" + reachableAddr(s.metrics.Addr()) + "/metrics"
	}
	return s.URL() + "/metrics"
}

// reachableAddr is a listener's host:port, with a loopback host when it is bound to all
// interfaces.
func reachableAddr(a net.Addr) string {
	addr := a.(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close shuts the server down gracefully, in this order:
//
//  1. /readyz turns 503 at once, while everything else is still served for ShutdownDelay, so a
//     load balancer that polls readiness stops sending new work before connections are refused;
//  2. new streams are refused and the open ones close spread evenly over DrainWindow, so their
//     clients resume (Last-Event-ID) on other nodes without a thundering herd;
//  3. the listener closes and Close waits for the remaining requests until ctx ends, then cuts
//     what is left.
//
// A second Close waits for the first to return, or for its own ctx to end (its error then); the
// first's caller has the shutdown's error.
func (s *Server) Close(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	if !s.draining.CompareAndSwap(false, true) {
		select {
		case <-s.closed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("wait for the server's first Close: %w", ctx.Err())
		}
	}
	defer close(s.closed)
	return s.shutdown(ctx)
}

// shutdown is Close's work, done once.
func (s *Server) shutdown(ctx context.Context) error {
	if s.ShutdownDelay > 0 {
		t := time.NewTimer(s.ShutdownDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	s.beginDrain()
	// Shutdown closes the listener at once and waits for requests, streams included, to finish.
	err := s.http.Shutdown(ctx)
	err = errors.Join(err, s.engine.Wait(ctx))
	err = errors.Join(err, s.engine.Close())
	s.cancel()
	if err != nil {
		// Past the deadline: cut what is left rather than hang the process.
		if cerr := s.http.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return errors.Join(fmt.Errorf("shut down http server: %w", err), s.metrics.Close())
	}
	if err := <-s.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(fmt.Errorf("serve: %w", err), s.metrics.Shutdown(ctx))
	}
	// Last: the metrics show the drain to the end.
	return s.metrics.Shutdown(ctx)
}

// Draining reports whether Close has begun; the node is then not ready for new work.
func (s *Server) Draining() bool { return s.draining.Load() }

// beginDrain refuses new streams and schedules the open ones to close over DrainWindow.
func (s *Server) beginDrain() { s.streamEngine().BeginDrain(s.DrainWindow) }

// maxHTTP2Streams bounds the requests in flight on one HTTP/2 connection: the streams one client
// may hold (DefaultMaxStreamsPerClient), and room beside them for its other requests.
const maxHTTP2Streams = DefaultMaxStreamsPerClient + 28

// Route patterns the request log and metrics single out.
const (
	patHealthz = "GET /healthz"
	patReadyz  = "GET /readyz"
	patMetrics = "GET /metrics"
	// patWebSocket is singled out by the stream set-up: a WebSocket client is not an EventSource.
	patWebSocket = api.RouteWebSocket
)

// route is one route of the API and the handler that answers it.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// apiRoutes are the API's routes under /v1/: what api/openapi.json describes, operation for
// operation (TestOpenAPIDescribesEveryRoute). Positions' routes are there only where the
// server takes positions.
func (s *Server) apiRoutes() []route {
	routes := []route{
		{api.RouteCreateOrder, s.handleCreateOrder},
		{api.RouteListOrders, s.handleListOrders},
		{api.RouteOrder, s.handleGetOrder},
		{api.RouteSetStatus, s.handleSetStatus},
		{api.RouteEvents, s.handleEvents},
		{api.RouteStream, s.handleStream},
		{patWebSocket, s.handleWebSocket},
		{api.RouteStreamAll, s.handleStreamAll},
		{api.RouteSetCourier, s.handleSetCourier},
		{api.RouteSetStatuses, s.handleSetStatuses},
		{api.RouteRestaurantStream, s.handlePartyStream(ordercast.PartyRestaurant)},
		{api.RouteCourierStream, s.handlePartyStream(ordercast.PartyCourier)},
		{api.RouteCustomerStream, s.handlePartyStream(ordercast.PartyCustomer)},
		{api.RouteEraseCustomer, s.handleEraseCustomer},
		{api.RouteTrackingToken, s.handleTrackingToken},
		{api.RouteOpenAPI, handleOpenAPI},
	}
	if s.Locations != nil {
		routes = append(routes,
			route{api.RoutePostLocation, s.handlePostLocation},
			route{api.RoutePostLocations, s.handlePostLocations},
			route{api.RouteTrail, s.handleTrail})
	}
	return routes
}

// knownQuery refuses a request to route whose query holds a parameter the route does not take
// (api.QueryParams, or api.ParamToken): 422 invalid_argument naming it and what the route takes,
// before anything is read. A parameter misspelt was taken for none: a long poll's afterVersion
// answered at once, again and again; a resume's last_event_id started afresh; a list's
// restaurant= listed every order.
func (s *Server) knownQuery(route string, next http.HandlerFunc) http.HandlerFunc {
	takes := api.QueryParams[route]
	said := "none"
	if len(takes) > 0 {
		said = strings.Join(takes[:len(takes)-1], ", ")
		if said != "" {
			said += " and "
		}
		said += takes[len(takes)-1]
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			next(w, r)
			return
		}
		for name := range r.URL.Query() {
			if name != api.ParamToken && !slices.Contains(takes, name) {
				s.writeError(w, r, ordercast.Errorf(ordercast.EInvalid, "unknown query parameter %s: %s takes %s", ordercast.Quote(name), route, said))
				return
			}
		}
		next(w, r)
	}
}

// handleOpenAPI serves the API's OpenAPI description (api.OpenAPI), to anyone: it says no more
// than the documentation, and an integrator's tools read it from the node they will call.
func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(api.OpenAPI) // in memory: a write error can only mean the client went away
}

// Handler returns the routes of the API, wrapped so that every request gets an id, a log line
// and a count in the metrics. It makes the stream engine from the stream tunables (Heartbeat,
// Retry, StreamWriteTimeout, StreamLifetime, HoldStreams, LocationInterval, Locations): set
// them before, since later changes reach no stream.
func (s *Server) Handler() http.Handler {
	s.applyDefaults()
	s.streamEngine()
	mux := http.NewServeMux()
	for _, rt := range s.apiRoutes() {
		mux.HandleFunc(rt.pattern, s.knownQuery(rt.pattern, rt.handler))
	}
	unrouted := s.handleUnrouted(mux)
	mux.HandleFunc(patAPIRoot, unrouted)
	mux.HandleFunc(patAPISubtree, unrouted)
	mux.HandleFunc("GET /{$}", s.handleHome)
	mux.HandleFunc("GET /track/{id}", s.handleTrack)
	mux.HandleFunc("GET /console", s.handleConsole)
	mux.HandleFunc("POST /console", s.handleConsoleSignIn)
	mux.HandleFunc("GET /console/track/{id}", s.handleConsoleTrack)
	mux.HandleFunc("GET /restaurants/{pid}", s.handleRestaurantBoard)
	mux.HandleFunc("GET /couriers/{pid}", s.handleCourierPage)
	mux.HandleFunc("GET /customers/{pid}", s.handleCustomerPage)
	mux.HandleFunc("GET /restaurants/{pid}/track/{id}", s.handlePartyTrack(ordercast.PartyRestaurant))
	mux.HandleFunc("GET /couriers/{pid}/track/{id}", s.handlePartyTrack(ordercast.PartyCourier))
	mux.HandleFunc("GET /customers/{pid}/track/{id}", s.handlePartyTrack(ordercast.PartyCustomer))
	mux.HandleFunc(patPages, s.handlePageNotFound(mux))
	mux.Handle("GET /static/", s.staticHandler())
	mux.HandleFunc("GET /favicon.ico", handleFavicon)
	mux.HandleFunc(patHealthz, s.handleHealthz)
	mux.HandleFunc(patReadyz, s.handleReadyz)
	if s.MetricsAddr == "" {
		mux.Handle(patMetrics, s.Metrics.Handler())
	}
	return s.observe(s.loopbackHostsOnly(s.cors(mux, s.cleanAPIPaths(mux))))
}

// applyDefaults gives the server's parts left nil theirs: a log that discards, wrapped so that
// tokens in query strings never reach a log line (also a log the caller gave), and metrics.
// Listen, Handler and the stream engine each call it, whichever comes first.
func (s *Server) applyDefaults() {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.Logger = redacting(s.Logger)
	if s.Metrics == nil {
		s.Metrics = NewMetrics()
	}
}

// streamEngine returns the engine that runs the watches, made on first use from the server's
// tunables (set them before Handler or Open).
func (s *Server) streamEngine() *stream.Engine {
	if s.engine == nil {
		s.applyDefaults()
		cfg := stream.Config{
			Heartbeat:        s.Heartbeat,
			Retry:            s.Retry,
			WriteTimeout:     s.StreamWriteTimeout,
			Lifetime:         s.StreamLifetime,
			Hold:             s.HoldStreams,
			LocationInterval: s.LocationInterval,
			PartyBacklog:     s.partyBacklog,
		}
		if s.Locations != nil {
			cfg.Locations = s.Locations
		}
		if c, ok := s.Store.(ordercast.StampClock); ok {
			cfg.StampNow = c.StampNow // the events' At is the database's time
		}
		s.engine = stream.New(s.Store, s.Hub, cfg, s.engineObserver())
	}
	return s.engine
}

// engineObserver is how the engine reports to s: its metrics, and its log for the poller's
// failure. Handler and Open set the logger before they make the engine.
func (s *Server) engineObserver() stream.Observer {
	return streamObserver{m: s.Metrics, log: s.Logger}
}

// handleHealthz serves GET /healthz: the process is up.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz serves GET /readyz: the node can take new work (not shutting down, store
// reachable, and every ReadyCheck passes).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.Draining() {
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		// The store logs an outage once when it starts; say why here, in the store's own words
		// for an outage it recognised ("the database is read-only; …"), never the driver's text.
		msg := "store unreachable"
		if ordercast.ErrorCode(err) == ordercast.EUnavailable {
			msg = "store unavailable: " + ordercast.ErrorMessage(err)
		} else {
			s.unready.fail(s.Logger, "readiness: store unreachable", err)
		}
		s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "%s", msg))
		return
	}
	for _, check := range s.ReadyChecks {
		if err := check(ctx); err != nil {
			// The reason goes to the log, not to whoever can reach /readyz.
			s.unready.fail(s.Logger, "readiness check failed", err)
			s.writeError(w, r, ordercast.Errorf(ordercast.EUnavailable, "not ready (see the log)"))
			return
		}
	}
	s.unready.ok(s.Logger)
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

// unreadyLog logs why /readyz fails once a spell, not once a probe: every load balancer probes
// every few seconds, and a listener away for a minute would write a line each time.
type unreadyLog struct {
	mu     sync.Mutex
	reason string // the failure logged last; "" while ready
	since  time.Time
}

// fail logs msg with err when it is not the failure logged last.
func (u *unreadyLog) fail(l *slog.Logger, msg string, err error) {
	reason := msg + ": " + err.Error()
	u.mu.Lock()
	if u.reason == reason {
		u.mu.Unlock()
		return
	}
	if u.reason == "" {
		u.since = time.Now()
	}
	u.reason = reason
	u.mu.Unlock()
	l.Warn(msg+" (logged once until it changes or the node is ready again)", "err", err)
}

// ok logs the end of a spell of failures, with its length.
func (u *unreadyLog) ok(l *slog.Logger) {
	u.mu.Lock()
	if u.reason == "" {
		u.mu.Unlock()
		return
	}
	since := u.since
	u.reason = ""
	u.mu.Unlock()
	l.Info("ready again", "after", time.Since(since).Round(time.Millisecond))
}
