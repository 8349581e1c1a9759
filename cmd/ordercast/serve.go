package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/demo"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// Main is the ordercast service: its configuration, and once opened, its parts.
type Main struct {
	Addr               string
	DB                 string
	Heartbeat          time.Duration
	Retry              time.Duration
	StreamWriteTimeout time.Duration
	MaxBodyBytes       int64
	DrainWindow        time.Duration
	ShutdownTimeout    time.Duration
	LogFormat          string
	LogLevel           string
	// Demo runs the order simulator in the process, so the pages show live movement at once.
	Demo bool

	Store  ordercast.Store
	Hub    *hub.Hub
	Server *server.Server
	Logger *slog.Logger
	Sim    *demo.Simulator

	stdout, stderr io.Writer
}

// NewMain returns a Main with the defaults that `ordercast serve` uses.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{
		Addr:               ":8080",
		DB:                 "ordercast.db",
		Heartbeat:          server.DefaultHeartbeat,
		Retry:              server.DefaultRetry,
		StreamWriteTimeout: server.DefaultStreamWriteTimeout,
		MaxBodyBytes:       server.DefaultMaxBodyBytes,
		DrainWindow:        10 * time.Second,
		ShutdownTimeout:    30 * time.Second,
		LogFormat:          "text",
		LogLevel:           "info",
		stdout:             stdout,
		stderr:             stderr,
	}
}

// ParseFlags reads the serve flags, with ORDERCAST_* environment variables as fallbacks, and
// checks their values.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("ordercast serve", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.Addr, "addr", m.Addr, "listen `address`")
	fs.StringVar(&m.DB, "db", m.DB, "SQLite database file `path`")
	fs.DurationVar(&m.Heartbeat, "heartbeat", m.Heartbeat, "interval of keep-alive comments on idle streams")
	fs.DurationVar(&m.Retry, "retry", m.Retry, "reconnection delay advised to SSE clients")
	fs.DurationVar(&m.StreamWriteTimeout, "stream-write-timeout", m.StreamWriteTimeout, "deadline of each write to a stream; slower clients are dropped")
	fs.Int64Var(&m.MaxBodyBytes, "max-body", m.MaxBodyBytes, "largest request body accepted, in `bytes`")
	fs.DurationVar(&m.DrainWindow, "drain", m.DrainWindow, "on shutdown, close open streams spread over this window")
	fs.DurationVar(&m.ShutdownTimeout, "shutdown-timeout", m.ShutdownTimeout, "longest a shutdown may take before connections are cut")
	fs.StringVar(&m.LogFormat, "log-format", m.LogFormat, "log `format`: text or json")
	fs.StringVar(&m.LogLevel, "log-level", m.LogLevel, "log `level`: debug, info, warn or error")
	fs.BoolVar(&m.Demo, "demo", m.Demo, "simulate orders moving through their stages, to watch the pages live")
	fs.Usage = func() {
		fmt.Fprintf(m.stderr, "Usage: ordercast serve [flags]\n\nFlags:\n")
		printDefaults(m.stderr, fs)
	}
	if err := parseWithEnv(fs, args); err != nil {
		return err
	}
	return m.validate()
}

func (m *Main) validate() error {
	positive := []struct {
		flag string
		d    time.Duration
	}{
		{"heartbeat", m.Heartbeat}, {"retry", m.Retry},
		{"stream-write-timeout", m.StreamWriteTimeout}, {"shutdown-timeout", m.ShutdownTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("--%s must be positive, got %s", p.flag, p.d)
		}
	}
	switch {
	case m.DrainWindow < 0:
		return fmt.Errorf("--drain must not be negative, got %s", m.DrainWindow)
	case m.DrainWindow >= m.ShutdownTimeout:
		return fmt.Errorf("--drain (%s) must be shorter than --shutdown-timeout (%s)", m.DrainWindow, m.ShutdownTimeout)
	case m.MaxBodyBytes <= 0:
		return fmt.Errorf("--max-body must be positive, got %d", m.MaxBodyBytes)
	case m.DB == "":
		return errors.New("--db must not be empty")
	case m.LogFormat != "text" && m.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, got %q", m.LogFormat)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if m.LogFormat == "json" {
		m.Logger = slog.New(slog.NewJSONHandler(m.stderr, opts))
	} else {
		m.Logger = slog.New(slog.NewTextHandler(m.stderr, opts))
	}
	return nil
}

// Open opens the store and starts listening. After it returns, Server.URL is reachable.
func (m *Main) Open(ctx context.Context) error {
	if m.Logger == nil {
		if err := m.validate(); err != nil {
			return err
		}
	}
	m.Hub = hub.New()
	st := sqlite.New(m.DB)
	st.Publisher = m.Hub
	st.Logger = m.Logger
	if err := st.Open(ctx); err != nil {
		return fmt.Errorf("open database %s: %w", m.DB, err)
	}
	m.Store = st

	srv := server.New(m.Store, m.Hub)
	srv.Addr = m.Addr
	srv.Logger = m.Logger
	srv.Heartbeat = m.Heartbeat
	srv.Retry = m.Retry
	srv.StreamWriteTimeout = m.StreamWriteTimeout
	srv.MaxBodyBytes = m.MaxBodyBytes
	srv.DrainWindow = m.DrainWindow
	if err := srv.Open(); err != nil {
		return errors.Join(err, m.Store.Close())
	}
	m.Server = srv
	m.Logger.Info("ordercast listening", "url", srv.URL(), "db", m.DB)
	if m.Demo {
		m.Sim = demo.New(m.Store)
		m.Sim.Logger = m.Logger.With("component", "demo")
		if err := m.Sim.Open(); err != nil {
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
	if m.Server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
		defer cancel()
		if err := m.Server.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if m.Store != nil {
		if err := m.Store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Serve opens the service, runs it until ctx ends (a signal), then shuts it down gracefully.
func (m *Main) Serve(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		return err
	}
	fmt.Fprintf(m.stdout, "ordercast is serving on %s\n", m.Server.URL())
	if m.Demo {
		fmt.Fprintf(m.stdout, "demo mode: orders are being simulated; open %s/ to watch them\n", m.Server.URL())
	}
	<-ctx.Done()
	m.Logger.Info("shutting down", "drain", m.DrainWindow)
	if err := m.Close(); err != nil {
		return err
	}
	m.Logger.Info("stopped")
	return nil
}
