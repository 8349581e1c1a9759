package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/demo"
	"github.com/ordercast/ordercast/internal/sidelisten"
	"github.com/ordercast/ordercast/postgres"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// Main is the ordercast service: its configuration, and once opened, its parts.
type Main struct {
	// HTTP is the server's configuration: its flags are bound to these fields.
	HTTP   server.Config
	DB     string
	DBWait time.Duration
	// SQLiteSync is how an SQLite --db syncs its commits: normal or full (see the flag).
	SQLiteSync string
	// SQLiteMinFreeMiB is the free disk (MiB) below which an SQLite node is not ready; 0 never
	// judges it (see the flag).
	SQLiteMinFreeMiB int
	ShutdownTimeout  time.Duration
	Pprof            string
	// loopbackNamesGiven: --loopback-names-only was set, and wins over the demo's default.
	loopbackNamesGiven bool
	// strayVariables are the ORDERCAST_* variables that name no flag of serve, logged at start.
	strayVariables []string
	LogFormat      string
	LogLevel       string
	// Demo runs the order simulator in the process, so the pages show live movement at once.
	Demo bool
	// Retention is how long an ended order is kept (retention.go); 0 keeps every order.
	Retention     time.Duration
	retentionStop func()
	// securityConfig holds the tokens, roles and limits flags (security.go).
	securityConfig
	// locationConfig holds the couriers' positions flags and parts (location.go).
	locationConfig

	Store  ordercast.Store
	Hub    *hub.Hub
	Server *server.Server
	Logger *slog.Logger
	Sim    *demo.Simulator

	pprof *sidelisten.Server
	// Listener feeds the hub from PostgreSQL; nil with SQLite.
	Listener *postgres.Listener
	// settingsCheck compares this node's settings with the cluster's other nodes' (PostgreSQL
	// only; clustersettings.go).
	settingsCheck *settingsCheck
	// notifyQueue watches PostgreSQL's NOTIFY queue on the settings check's tick (PostgreSQL
	// only; notifyqueue.go).
	notifyQueue *postgres.NotifyQueueWatch
	// node is this node's id in the cluster (postgres.Store.NodeID), which its log lines carry;
	// empty with SQLite.
	node string
	// EndStalledListeners is how long another node's LISTEN session may be found not reading
	// before this node ends it; 0 never (see the flag).
	EndStalledListeners time.Duration

	stdout, stderr io.Writer
	// validated: validate has passed (and built the parts it builds, such as the token
	// authority), so Open does not run it again.
	validated bool
}

// defaultSQLiteSync is --sqlite-sync's default: full, so that a change anyone was told of
// survives a power loss, as PostgreSQL's commits do by default (sqlite.DefaultSynchronous).
const defaultSQLiteSync = "full"

// NewMain returns a Main with the defaults that `ordercast serve` uses.
func NewMain(stdout, stderr io.Writer) *Main {
	m := &Main{
		HTTP:             server.DefaultConfig(),
		DB:               DefaultDB,
		DBWait:           DefaultDBWait,
		SQLiteSync:       defaultSQLiteSync,
		SQLiteMinFreeMiB: sqlite.DefaultMinFreeDisk >> 20,
		ShutdownTimeout:  30 * time.Second,
		LogFormat:        "text",
		LogLevel:         "info",
		stdout:           stdout,
		stderr:           stderr,
		securityConfig:   defaultSecurity(),
		locationConfig:   defaultLocation(),
	}
	// Where a deployed node differs from the library's defaults (server.DefaultConfig).
	m.HTTP.Addr = ":8080"
	m.HTTP.DrainWindow = 10 * time.Second
	m.HTTP.StreamLifetime = server.DefaultStreamLifetime
	m.HTTP.Limits = server.DefaultLimits()
	return m
}

// DefaultDB is the database `serve` runs on, and `backup` copies, unless --db (or ORDERCAST_DB)
// names another.
const DefaultDB = "ordercast.db"

// DefaultDemoAddr is where `serve --demo` listens unless --addr (or ORDERCAST_ADDR) says
// otherwise: loopback only, since its console page hands every visitor an admin token.
const DefaultDemoAddr = "127.0.0.1:8080"

// DefaultDemoDB is where `serve --demo` keeps its orders unless --db says otherwise: a file of
// its own, so that the simulated orders a demo leaves mid-way when it stops are not found among
// the real ones of a server started next on the default database.
const DefaultDemoDB = "ordercast-demo.db"

// serveUsage heads `ordercast serve --help`.
const serveUsage = `Usage: ordercast serve [flags]

Runs the service: the JSON API, the streams and the pages. Outside --demo a --secret is required.
`

// ParseFlags reads the serve flags, with ORDERCAST_* environment variables as fallbacks, and
// checks their values. --help prints the flags to stdout and returns flag.ErrHelp.
func (m *Main) ParseFlags(args []string) error {
	fs := m.flagSet()
	fromEnv, err := parseCommand(fs, args, serveUsage, m.stdout, m.stderr)
	if err != nil {
		return err
	}
	if m.Demo && !flagGiven(fs, "addr") {
		m.HTTP.Addr = DefaultDemoAddr
	}
	m.loopbackNamesGiven = flagGiven(fs, "loopback-names-only")
	m.strayVariables = strayVariables(fs, os.Environ())
	if m.Demo && fromEnv["db"] {
		// ORDERCAST_DB names the node's own database (the container image sets it): a demo
		// started beside the node would simulate orders in it.
		return fmt.Errorf("--demo simulates orders in its database, and %s names one from the environment (%s): give --db on the command line to run the demo there", envName("db"), redactURL(m.DB))
	}
	if m.Demo && !flagGiven(fs, "db") {
		m.DB = DefaultDemoDB
	}
	return m.validate()
}

// flagSet declares the serve flags, bound to m's fields.
func (m *Main) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("ordercast serve", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.HTTP.Addr, "addr", m.HTTP.Addr, "listen `address` (with --demo the default is "+DefaultDemoAddr+", loopback only)")
	fs.StringVar(&m.HTTP.MetricsAddr, "metrics-addr", m.HTTP.MetricsAddr, "serve GET /metrics on this separate `address` only (plain HTTP), not on --addr; empty serves it on --addr")
	fs.StringVar(&m.DB, "db", m.DB, "SQLite database file `path`, or a postgres:// URL for a cluster (with --demo the default is "+DefaultDemoDB+")")
	fs.StringVar(&m.SQLiteSync, "sqlite-sync", m.SQLiteSync, "with an SQLite --db, when a commit reaches the disk, by `mode`: full (each batch's commit is synced before it is answered or pushed: it survives power loss, at the disk's sync latency) or normal (every commit survives the process crashing, but an OS crash or power loss may roll back the last commits, which watchers may have seen)")
	fs.IntVar(&m.SQLiteMinFreeMiB, "sqlite-min-free", m.SQLiteMinFreeMiB, "with an SQLite --db, the free disk (`MiB`) on the database's file system below which /readyz answers 503 (twice what its log may hold, since a checkpoint may grow the file by as much); 0 never judges it")
	fs.DurationVar(&m.DBWait, "db-wait", m.DBWait, "at start, keep retrying an unavailable database this long, with backoff doubling from 100ms to 5s (0: fail at once)")
	fs.DurationVar(&m.HTTP.IdempotencyTTL, "idempotency-ttl", m.HTTP.IdempotencyTTL, "how long the answer to a write with an Idempotency-Key is kept for its retries")
	fs.DurationVar(&m.HTTP.Heartbeat, "heartbeat", m.HTTP.Heartbeat, "interval of keep-alive comments on idle streams")
	fs.DurationVar(&m.HTTP.Retry, "retry", m.HTTP.Retry, "reconnection delay advised to SSE clients")
	fs.DurationVar(&m.HTTP.StreamWriteTimeout, "stream-write-timeout", m.HTTP.StreamWriteTimeout, "deadline of each write to a stream; slower clients are dropped")
	fs.Int64Var(&m.HTTP.MaxBodyBytes, "max-body", m.HTTP.MaxBodyBytes, "largest request body accepted, in `bytes`")
	fs.DurationVar(&m.HTTP.DrainWindow, "drain", m.HTTP.DrainWindow, "on shutdown, close open streams spread over this window")
	fs.DurationVar(&m.HTTP.ShutdownDelay, "shutdown-delay", m.HTTP.ShutdownDelay, "on shutdown, report not-ready this long before closing the listener, so a load balancer polling /readyz stops sending first")
	fs.DurationVar(&m.ShutdownTimeout, "shutdown-timeout", m.ShutdownTimeout, "longest a shutdown may take before connections are cut")
	fs.DurationVar(&m.HTTP.StreamLifetime, "stream-lifetime", m.HTTP.StreamLifetime, "end each stream after about this long so clients rebalance over nodes (0: never)")
	fs.StringVar(&m.HTTP.TLSCertFile, "tls-cert", m.HTTP.TLSCertFile, "TLS certificate `file` (PEM); with --tls-key serves HTTPS and HTTP/2")
	fs.StringVar(&m.HTTP.TLSKeyFile, "tls-key", m.HTTP.TLSKeyFile, "TLS private key `file` (PEM)")
	fs.BoolVar(&m.HTTP.H2C, "h2c", m.HTTP.H2C, "also serve cleartext HTTP/2 (prior knowledge), for a proxy in front")
	fs.BoolVar(&m.HTTP.LoopbackHostsOnly, "loopback-names-only", m.HTTP.LoopbackHostsOnly, "answer only requests whose Host names this machine (localhost, 127.0.0.0/8, [::1]), others 421, against DNS rebinding; on by default with --demo or --public-tracking on a loopback --addr. Give it to a demo in a container, which listens on every interface of its own while published on the host's loopback")
	fs.BoolVar(&m.HTTP.HoldStreams, "hold-streams", m.HTTP.HoldStreams, "hold idle HTTP/1.1 streams on a shared epoll poller instead of a goroutine each (Linux)")
	fs.StringVar(&m.Pprof, "pprof", m.Pprof, "serve net/http/pprof on this separate `address` (off when empty)")
	fs.StringVar(&m.LogFormat, "log-format", m.LogFormat, "log `format`: text or json")
	fs.StringVar(&m.LogLevel, "log-level", m.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&m.HTTP.RequestLog, "request-log", server.RequestLogAll, "which requests get a line at info level: all, refused (answered 400 or above) or off; the others' lines go at debug")
	fs.BoolVar(&m.Demo, "demo", m.Demo, "simulate orders moving through their stages, to watch the pages live; implies --public-tracking, gives the console an admin token, signs with a random secret of its own (ignoring --secret) and listens on "+DefaultDemoAddr+" unless --addr is given")
	m.securityFlags(fs, &m.HTTP)
	m.locationFlags(fs, &m.HTTP)
	m.retentionFlags(fs)
	m.notifyQueueFlags(fs)
	return fs
}

// flagError words a component's *ordercast.SettingError as the flag that set it: "--heartbeat
// must be positive, got 0s".
func flagError(err error) error {
	var se *ordercast.SettingError
	if errors.As(err, &se) {
		return fmt.Errorf("--%s %s", se.Setting, se.Problem)
	}
	return err
}

// validate checks the settings (each error names its flag) and builds what they describe: the
// log, unless the caller gave one, the token authority and the trusted proxies.
func (m *Main) validate() error {
	// The server's own settings are checked where they are defined; an error names the flag.
	if err := m.HTTP.ValidateDeployed(); err != nil {
		return flagError(err)
	}
	switch {
	case m.ShutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout must be positive, got %s", m.ShutdownTimeout)
	case m.DBWait < 0:
		return fmt.Errorf("--db-wait must not be negative, got %s", m.DBWait)
	case m.SQLiteSync != "normal" && m.SQLiteSync != "full":
		return fmt.Errorf("--sqlite-sync must be normal or full, got %q", m.SQLiteSync)
	case m.SQLiteMinFreeMiB < 0:
		return fmt.Errorf("--sqlite-min-free must not be negative, got %d", m.SQLiteMinFreeMiB)
	}
	if err := m.validateRetention(); err != nil {
		return err
	}
	if err := m.validateNotifyQueue(); err != nil {
		return err
	}
	if err := checkAddr(m.HTTP.Addr); err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	// The demo's console hands an admin token to whoever loads it, and public tracking every
	// order to whoever asks: on loopback, only this machine's own names may ask, never a name
	// a DNS rebinding points at 127.0.0.1, under which another site's page reads it all as its
	// own origin. Given a public --addr, such a node was meant to be reached by other names,
	// unless --loopback-names-only says otherwise (a container's, published on the host's
	// loopback).
	if !m.loopbackNamesGiven {
		m.HTTP.LoopbackHostsOnly = (m.Demo || m.PublicTracking) && loopbackAddr(m.HTTP.Addr)
	}
	for _, a := range []struct{ flag, addr string }{{"metrics-addr", m.HTTP.MetricsAddr}, {"pprof", m.Pprof}} {
		if a.addr == "" {
			continue
		}
		if err := checkAddr(a.addr); err != nil {
			return fmt.Errorf("--%s: %w", a.flag, err)
		}
	}
	switch {
	case m.HTTP.ShutdownDelay+m.HTTP.DrainWindow >= m.ShutdownTimeout:
		return fmt.Errorf("--shutdown-delay (%s) plus --drain (%s) must be shorter than --shutdown-timeout (%s)", m.HTTP.ShutdownDelay, m.HTTP.DrainWindow, m.ShutdownTimeout)
	case m.DB == "":
		return errors.New("--db must not be empty")
	case looksLikeConnString(m.DB): // never echoed: it may hold a password
		return errors.New("--db is a PostgreSQL key=value connection string (host=… dbname=…); give it as a URL, postgres://user:password@host:5432/dbname?sslmode=require, or name an SQLite file")
	case looksLikeOtherURL(m.DB): // never echoed either
		return errors.New("--db looks like a database URL, but not a PostgreSQL one: write it postgres://user:password@host:5432/dbname?sslmode=require (the scheme in lower case, then ://), or name an SQLite file (a name without a scheme)")
	case rawAtInUserinfo(m.DB): // never echoed either
		return errors.New("--db: the URL's user or password holds an @ that is not percent-encoded; write it as %40 (postgres://user:p%40ss@host/dbname): as it is, the driver reads what follows it as the host, and names that host, a piece of the password, in its errors")
	case m.LogFormat != "text" && m.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, got %q", m.LogFormat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return fmt.Errorf("--log-level must be debug, info, warn or error, got %q", m.LogLevel)
	}
	if m.Logger == nil { // one a caller gave (a test's, an embedding program's) is kept
		m.Logger = newLogger(m.stderr, m.LogFormat, level)
	}
	if files := openFileLimit(); files > 0 {
		m.fitFileLimit(files)
	}
	if postgres.IsURL(m.DB) && m.node == "" {
		// A cluster's nodes log alike: every line of this one names it, as its row of
		// cluster_nodes and the settings check's warnings do, so that lines gathered from
		// several nodes (or several on one host) say whose they are.
		m.node = postgres.NewNodeID()
		m.Logger = m.Logger.With("node", m.node)
	}
	if err := m.validateLocation(); err != nil {
		return flagError(err)
	}
	if err := m.validateSecurity(m.Demo); err != nil {
		return err
	}
	m.validated = true
	return nil
}

// fitFileLimit fits the node's connections and streams to the process's open-file limit
// (server.FileBudget): connections past it are refused at accept, and --max-streams is lowered to
// what it leaves streams, said at start. Run out of descriptors, the node stalled every request,
// /healthz and writes too, and its log said the database was unreachable when SQLite could not
// open a file (the resource-exhaustion review). A --max-streams of 0 (no limit) is left as it is:
// the connections' cap still holds.
func (m *Main) fitFileLimit(files int) {
	conns, streams := server.FileBudget(files)
	l := &m.HTTP.Limits
	l.MaxConns = conns
	if l.MaxStreams > streams {
		m.Logger.Warn(fmt.Sprintf("--max-streams %d is more than this process's open-file limit leaves room for: streams capped at %d; raise the limit (LimitNOFILE= in the systemd unit, --ulimit nofile= in Docker)", l.MaxStreams, streams),
			"open_file_limit", files, "max_streams", streams, "max_conns", conns)
		l.MaxStreams = streams
	}
}

// newLogger returns the log of --log-format and --log-level, written to w.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		// A duration in seconds, as Prometheus and most log pipelines count time, not slog's
		// bare nanoseconds, which read as a count of nothing in particular.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.Float64Value(a.Value.Duration().Seconds())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Open opens the store and starts listening. After it returns, Server.URL is reachable.
func (m *Main) Open(ctx context.Context) error {
	if !m.validated { // ParseFlags validates; a Main filled in by hand is validated here
		if err := m.validate(); err != nil {
			return err
		}
	}
	if m.Pprof != "" {
		// First, so that a busy profiling port fails start-up before anything else is open.
		p, err := openPprof(m.Pprof, m.Logger)
		if err != nil {
			return err
		}
		m.pprof = p
		m.Logger.Info("pprof listening", "url", pprofURL(p))
	}
	m.Hub = hub.New()
	// Before the store, so that a cluster's listener hands it positions from its first notice.
	m.Tracker = m.newTracker()
	if err := m.Tracker.Open(); err != nil {
		return errors.Join(fmt.Errorf("open location tracker: %w", err), m.Close())
	}
	srv := server.New(nil, m.Hub)
	srv.Config = m.HTTP
	srv.Logger = m.Logger
	m.configure(srv, m.Demo)
	// Before the store: a busy port or a bad certificate fails start-up at once, not after the
	// database has been opened, migrated or waited for.
	if err := srv.Listen(); err != nil {
		return errors.Join(err, m.Close())
	}
	// The port answers while the store opens (server.ServeStarting): alive, not ready, every
	// request asked to come back, instead of connections that nothing answers. Its /metrics say
	// which build is starting, and that it is: a node that waits for its database, or for
	// another node's migration, showed no metric any alert reads, however long it waited.
	starting := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ordercast_starting",
		Help: "1 while the node waits for its database at start (--db-wait) or applies the schema's migrations (waiting for another node's, or a table's lock), 0 once it serves; alert on 1 for longer than a start takes.",
	})
	starting.Set(1)
	srv.Metrics.Registry.MustRegister(buildInfoMetric(thisBuild()), starting)
	if err := srv.ServeStarting(); err != nil {
		return errors.Join(err, srv.Unlisten(), m.Close())
	}
	if err := m.openStore(ctx); err != nil {
		return errors.Join(err, srv.Unlisten(), m.Close())
	}
	starting.Set(0)
	if m.Listener != nil {
		m.notifyQueue = m.newNotifyQueueWatch(m.Listener.Store)
		m.settingsCheck = newSettingsCheck(m.Listener.Store, m.clusterSettings(m.secrets), m.Logger.With("component", "cluster-settings"))
		m.settingsCheck.Queue = m.notifyQueue
		m.settingsCheck.start()
	}
	srv.Store = m.Store
	srv.Locations = m.Tracker
	srv.ReadyChecks = append(srv.ReadyChecks, m.readiness()...)
	srv.Metrics.Registry.MustRegister(m.storeMetrics()...)
	if m.HTTP.TLSCertFile != "" {
		srv.Metrics.Registry.MustRegister(certExpiryMetric(srv))
	}
	m.startRetention(srv.Metrics.Registry)
	if m.Demo {
		// The home page links to the simulated parties' pages.
		for _, g := range []struct {
			kind    ordercast.PartyKind
			parties []demo.Party
		}{{ordercast.PartyRestaurant, demo.Restaurants}, {ordercast.PartyCustomer, demo.Customers}, {ordercast.PartyCourier, demo.Couriers}} {
			for _, p := range g.parties {
				srv.PartyLinks = append(srv.PartyLinks, server.PartyLink{Party: ordercast.Party{Kind: g.kind, ID: p.ID}, Name: p.Name})
			}
		}
	}
	if err := srv.Open(); err != nil {
		return errors.Join(err, srv.Unlisten(), m.Close())
	}
	m.Server = srv
	m.Logger.Info("ordercast listening", "url", srv.URL(), "metrics", srv.MetricsURL(), "db", redactURL(m.DB), "h2c", m.HTTP.H2C, "tls", m.HTTP.TLSCertFile != "")
	for _, w := range m.warnings(m.HTTP, m.Demo) {
		m.Logger.Warn(w)
	}
	if len(m.strayVariables) > 0 {
		m.Logger.Warn("ORDERCAST_* variables that name no flag of serve are ignored by it: misspelt, of a flag this release does not have, or meant for another command (ordercast serve --help lists its flags)",
			"variables", m.strayVariables)
	}
	if m.Demo {
		m.Logger.Info("demo mode: tokens are signed with a random secret of this process only, so the console's admin token is good nowhere else",
			"secret_ignored", m.Secret != "", "public_tracking", true)
		m.Sim = demo.New(m.Store)
		m.Sim.Logger = m.Logger.With("component", "demo")
		m.Sim.Positions = m.Tracker // the couriers drive their orders out on the map
		if err := m.Sim.Open(ctx); err != nil {
			return errors.Join(fmt.Errorf("start demo: %w", err), m.Close())
		}
	}
	return nil
}

// Close drains the server's streams and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.Sim != nil {
		// First, so that no simulated change lands while the streams drain.
		if err := m.Sim.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop demo: %w", err))
		}
	}
	if err := m.pprof.Close(); err != nil {
		errs = append(errs, err)
	}
	m.pprof = nil
	if m.Server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
		defer cancel()
		if err := m.Server.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if m.Tracker != nil {
		if err := m.Tracker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close location tracker: %w", err))
		}
	}
	m.stopRetention()
	if m.settingsCheck != nil {
		m.settingsCheck.stop() // while the store is open: it deletes the node's row
		m.settingsCheck = nil
	}
	if err := m.closeStore(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Serve opens the service, runs it until ctx ends (a signal), then shuts it down gracefully.
func (m *Main) Serve(ctx context.Context) error {
	// SIGHUP, which ended the process at once (no drain), is what a certificate's renewal hook
	// (certbot's deploy hook, a reload of the systemd unit) sends: it reloads --tls-cert.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := m.Open(ctx); err != nil {
		if ctx.Err() != nil && m.Logger != nil {
			// Stopped while it waited for its database (--db-wait): what was asked, not a
			// failure (systemd would mark the unit failed).
			m.Logger.Info("stopped while starting", "err", err)
			return nil
		}
		return err
	}
	fmt.Fprintf(m.stdout, "ordercast is serving on %s\n", m.Server.URL())
	if host, _, err := net.SplitHostPort(m.HTTP.Addr); err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) {
		// The URL names loopback, but the listener takes every interface: say so on its own line.
		fmt.Fprintf(m.stdout, "listening on every interface of this machine (--addr %s)\n", m.HTTP.Addr)
	}
	if m.Demo {
		fmt.Fprintf(m.stdout, "demo mode: orders are being simulated; open %s/ to watch them\n", m.Server.URL())
	}
	probe := time.NewTicker(outageProbe)
	defer probe.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			m.reloadCertificate()
		case <-probe.C:
			m.probeOutage(ctx)
		}
	}
	m.Logger.Info("shutting down", "shutdown_delay", m.HTTP.ShutdownDelay, "drain", m.HTTP.DrainWindow)
	if err := m.Close(); err != nil {
		return err
	}
	m.Logger.Info("stopped")
	return nil
}

// reloadCertificate reads --tls-cert and --tls-key again (SIGHUP) and says what came of it; a
// pair that does not load leaves the one in use.
func (m *Main) reloadCertificate() {
	before := m.Server.Certificate()
	switch reloaded, err := m.Server.ReloadCertificate(); {
	case err != nil:
		m.Logger.Error("SIGHUP: the TLS certificate did not reload; the one in use stays", "err", err)
		return
	case !reloaded:
		m.Logger.Info("SIGHUP: nothing to reload (no --tls-cert); ignored")
		return
	}
	after := m.Server.Certificate()
	attrs := []any{"cert", m.HTTP.TLSCertFile, "serial", fmt.Sprintf("%X", after.SerialNumber), "not_after", after.NotAfter}
	if before != nil && bytes.Equal(before.Raw, after.Raw) {
		// systemd copies LoadCredential= files at start only: a renewal on disk never reaches
		// them, and a reload that finds the same certificate is how that shows.
		m.Logger.Warn("SIGHUP: the TLS certificate reloaded is the one already in use; "+
			"with systemd's LoadCredential=, which copies it at start only, a renewal needs systemctl restart, not reload", attrs...)
		return
	}
	m.Logger.Info("SIGHUP: TLS certificate reloaded; new connections get it", attrs...)
}

// certExpiryMetric is ordercast_tls_cert_not_after_seconds: when the certificate that new
// connections get expires, so that an alert fires days before it does, whatever kept a renewal
// from reaching the node (a reload where LoadCredential= needs a restart, a renewal that failed).
func certExpiryMetric(srv *server.Server) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ordercast_tls_cert_not_after_seconds",
		Help: "When the TLS certificate presented to new connections expires, in seconds since the Unix epoch (with --tls-cert only); alert when it is under a few days away: (ordercast_tls_cert_not_after_seconds - time()) < 7*86400.",
	}, func() float64 {
		if c := srv.Certificate(); c != nil {
			return float64(c.NotAfter.Unix())
		}
		return 0
	})
}

// checkAddr accepts a listen address: host:port, where the host may be empty and the port is a
// number (0 picks a free one) or a service name.
func checkAddr(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	} else if port == "" {
		return fmt.Errorf("%q has no port", addr)
	}
	return nil
}

// loopbackAddr reports whether the listen address addr takes connections from this machine only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && server.LoopbackHost(host)
}
