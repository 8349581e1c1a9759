package server

import (
	"strings"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/poller"
)

// Defaults for the server's tunables.
const (
	DefaultHeartbeat          = 15 * time.Second
	DefaultRetry              = 2 * time.Second
	DefaultStreamWriteTimeout = 10 * time.Second
	DefaultMaxBodyBytes       = 64 << 10
	DefaultReadHeaderTimeout  = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included, so a client that sends
	// headers and never the body cannot hold a connection; streams clear it once set up.
	DefaultReadTimeout = 30 * time.Second
	// DefaultMaxHeaderBytes bounds request headers: tokens and cookies fit many times over, and
	// unfinished header lines cannot pin a MiB per connection (net/http's default).
	DefaultMaxHeaderBytes = 32 << 10
	DefaultIdleTimeout    = 120 * time.Second
	// DefaultWriteTimeout bounds ordinary responses; streams move their own deadline forward
	// before every write, so it never cuts them.
	DefaultWriteTimeout = 30 * time.Second
)

// Config is how a Server is tuned: every setting with its default in DefaultConfig, the one
// place those defaults live. `ordercast serve` binds its flags to a Config's fields; Open
// validates it.
type Config struct {
	// Addr is the listen address, e.g. ":8080" or "127.0.0.1:0".
	Addr string
	// LoopbackHostsOnly refuses (421 misdirected_request) every request whose Host is not a
	// loopback name or address (LoopbackHost). Set it on a server listening on loopback whose
	// pages hand secrets to whoever loads them (the demo's console, its admin token): a page of
	// another site whose name a DNS rebinding points at 127.0.0.1 would otherwise reach it
	// same-origin, under its own name, and read them.
	LoopbackHostsOnly bool
	// MetricsAddr, when set, is the address of a listener of its own that serves GET /metrics
	// (plain HTTP), and Addr no longer does: a node's internals are then readable only where
	// the operator says (a private interface, the scraper's network). Empty serves /metrics on
	// Addr, beside the API.
	MetricsAddr string

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
	// ShutdownDelay is how long Close reports not-ready while still serving everything normally,
	// before it stops accepting and starts the drain: time for a load balancer that polls
	// /readyz to stop sending new work here. Zero skips it.
	ShutdownDelay time.Duration
	// StreamLifetime, when positive, ends each stream after about this long (minus up to a tenth,
	// so they do not end together); the client resumes, possibly on another node, which spreads
	// long-lived streams over nodes added since they opened. Zero keeps streams open forever.
	StreamLifetime time.Duration

	// TLSCertFile and TLSKeyFile, both set, serve HTTPS with HTTP/2 (and HTTP/1.1) negotiated.
	TLSCertFile string
	TLSKeyFile  string
	// H2C serves cleartext HTTP/2 (prior knowledge) beside HTTP/1.1, for use behind a proxy that
	// speaks HTTP/2 to its upstreams. It cannot be combined with TLS.
	H2C bool
	// HoldStreams hands each cleartext HTTP/1.1 SSE stream, once set up, to a shared epoll poller
	// instead of keeping a goroutine and net/http's buffers for it: a few hundred bytes per idle
	// stream instead of about 25 KB. On by default where the platform supports it.
	HoldStreams bool

	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading each request, headers and body; a stream clears it once it is
	// set up, since it reads nothing more.
	ReadTimeout    time.Duration
	IdleTimeout    time.Duration
	WriteTimeout   time.Duration
	MaxHeaderBytes int

	// IdempotencyTTL is how long the answer to a write with an Idempotency-Key is kept for its
	// retries.
	IdempotencyTTL time.Duration

	// LocationInterval caps how often one stream is sent its order's position; zero sends every
	// one.
	LocationInterval time.Duration

	// RequestLog says which requests get their line in the log at info level (observe): every
	// one (RequestLogAll, or empty), RequestLogRefused (those answered 400 or above, a stream's
	// when it ends with one), or RequestLogOff. The others' lines go at debug level, so
	// --log-level debug shows every line whatever this says.
	RequestLog string

	// Limits keep one client from starving the rest; the zero value sets none.
	Limits Limits
}

// The values of Config.RequestLog.
const (
	RequestLogAll     = "all"
	RequestLogRefused = "refused"
	RequestLogOff     = "off"
)

// DefaultConfig returns the default tuning. Limits and StreamLifetime are zero (nothing limited,
// streams never end), which keeps a library user's tests and embedding simple; `ordercast serve`
// sets DefaultLimits and DefaultStreamLifetime.
func DefaultConfig() Config {
	return Config{
		Heartbeat:          DefaultHeartbeat,
		Retry:              DefaultRetry,
		StreamWriteTimeout: DefaultStreamWriteTimeout,
		MaxBodyBytes:       DefaultMaxBodyBytes,
		ReadHeaderTimeout:  DefaultReadHeaderTimeout,
		ReadTimeout:        DefaultReadTimeout,
		MaxHeaderBytes:     DefaultMaxHeaderBytes,
		IdempotencyTTL:     DefaultIdempotencyTTL,
		IdleTimeout:        DefaultIdleTimeout,
		WriteTimeout:       DefaultWriteTimeout,
		HoldStreams:        poller.Supported,
		LocationInterval:   DefaultLocationInterval,
	}
}

// DefaultStreamLifetime is the stream lifetime `ordercast serve` runs with: streams rebalance
// over nodes hourly, and a leaked token keeps an already open stream at most this long (an expired
// one ends it when it stops being accepted: stream.Request.Until).
const DefaultStreamLifetime = time.Hour

// Validate reports the first setting out of range, as an *ordercast.SettingError.
func (c Config) Validate() error {
	bad := func(setting, format string, args ...any) error { return ordercast.BadSetting(setting, format, args...) }
	for _, d := range []struct {
		setting string
		v       time.Duration
	}{{"heartbeat", c.Heartbeat}, {"retry", c.Retry}, {"stream-write-timeout", c.StreamWriteTimeout}, {"idempotency-ttl", c.IdempotencyTTL}} {
		if d.v <= 0 {
			return bad(d.setting, "must be positive, got %s", d.v)
		}
	}
	for _, d := range []struct {
		setting string
		v       time.Duration
	}{{"drain", c.DrainWindow}, {"shutdown-delay", c.ShutdownDelay}, {"stream-lifetime", c.StreamLifetime}, {"read-timeout", c.ReadTimeout}, {"location-interval", c.LocationInterval}} {
		if d.v < 0 {
			return bad(d.setting, "must not be negative, got %s", d.v)
		}
	}
	switch {
	case c.MaxBodyBytes <= 0:
		return bad("max-body", "must be positive, got %d", c.MaxBodyBytes)
	case c.MaxHeaderBytes < 0:
		return bad("max-header-bytes", "must not be negative, got %d", c.MaxHeaderBytes)
	case c.TLSCertFile != "" && c.TLSKeyFile == "":
		return bad("tls-cert", "needs --tls-key")
	case c.TLSKeyFile != "" && c.TLSCertFile == "":
		return bad("tls-key", "needs --tls-cert")
	case c.H2C && c.TLSCertFile != "":
		return bad("h2c", "is cleartext HTTP/2 and cannot be combined with --tls-cert (TLS already negotiates HTTP/2)")
	case c.MetricsAddr != "" && c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0"): // :0 picks a port of its own each
		return bad("metrics-addr", "must differ from --addr (%s): leave it empty to serve /metrics there", c.Addr)
	case c.RequestLog != "" && c.RequestLog != RequestLogAll && c.RequestLog != RequestLogRefused && c.RequestLog != RequestLogOff:
		return bad("request-log", "must be %s, %s or %s, got %s", RequestLogAll, RequestLogRefused, RequestLogOff, ordercast.Quote(c.RequestLog))
	case c.Limits.MaxConnsPerPeer < 0:
		return bad("max-conns-per-peer", "must not be negative")
	case c.Limits.IPv6ClientPrefix != 0 && (c.Limits.IPv6ClientPrefix < 48 || c.Limits.IPv6ClientPrefix > 64):
		return bad("ipv6-client-prefix", "must be 48 to 64 (the bits of an IPv6 client's block), got %d", c.Limits.IPv6ClientPrefix)
	case c.Limits.MaxStreams < 0:
		return bad("max-streams", "must not be negative")
	case c.Limits.MaxStreamsPerClient < 0:
		return bad("max-streams-per-client", "must not be negative")
	case c.Limits.MaxStreamsPerHolder < 0:
		return bad("max-streams-per-holder", "must not be negative")
	case !validRate(c.Limits.WriteRate) || c.Limits.WriteBurst < 0:
		return bad("write-rate", "must be a finite number, not negative, and --write-burst not negative")
	case c.Limits.WriteRate > 0 && c.Limits.WriteBurst < 1:
		return bad("write-burst", "must be at least 1 when --write-rate is set")
	case !validRate(c.Limits.AnonWriteRate) || c.Limits.AnonWriteBurst < 0:
		return bad("anon-write-rate", "must be a finite number, not negative, and --anon-write-burst not negative")
	case c.Limits.WriteRate == 0 && (c.Limits.AnonWriteRate > 0 || c.Limits.AnonWriteBurst > 0):
		return bad("anon-write-rate", "and --anon-write-burst need --write-rate: with --write-rate 0 no write is limited")
	case !validRate(c.Limits.StreamOpenRate) || c.Limits.StreamOpenBurst < 0:
		return bad("stream-open-rate", "must be a finite number, not negative, and --stream-open-burst not negative")
	case c.Limits.StreamOpenRate > 0 && c.Limits.StreamOpenBurst < 1:
		return bad("stream-open-burst", "must be at least 1 when --stream-open-rate is set")
	}
	return nil
}

// ValidateDeployed is Validate for a node on the network (`ordercast serve`): it also refuses
// values a library user or a test may mean (a heartbeat every few milliseconds, no timeout on
// reading a request) but no deployment does, since each would quietly break streams or leave
// connections to whoever holds them.
func (c Config) ValidateDeployed() error {
	if err := c.Validate(); err != nil {
		return err
	}
	bad := func(setting, format string, args ...any) error { return ordercast.BadSetting(setting, format, args...) }
	for _, d := range []struct {
		setting string
		v       time.Duration
	}{{"read-header-timeout", c.ReadHeaderTimeout}, {"read-timeout", c.ReadTimeout}, {"idle-timeout", c.IdleTimeout}} {
		if d.v <= 0 { // zero is no timeout at all: net/http's default, not a node's
			return bad(d.setting, "must be positive, got %s", d.v)
		}
	}
	switch {
	case c.Heartbeat < time.Second:
		return bad("heartbeat", "must be at least 1s (a keep-alive more often only costs writes), got %s", c.Heartbeat)
	case c.StreamWriteTimeout < time.Second:
		return bad("stream-write-timeout", "must be at least 1s (shorter cuts clients on a slow network), got %s", c.StreamWriteTimeout)
	case c.Retry > time.Minute:
		return bad("retry", "must be at most 1m (a client waits this long after every drop), got %s", c.Retry)
	case c.MaxHeaderBytes < 1024:
		return bad("max-header-bytes", "must be at least 1024, got %d", c.MaxHeaderBytes)
	}
	return nil
}

// validRate reports whether r is a rate a limiter can take: finite and not negative (0 is none).
// NaN compares false with everything, so "r < 0" lets it through, and a limiter then never
// refuses.
func validRate(r float64) bool { return ordercast.Finite(r) && r >= 0 }
