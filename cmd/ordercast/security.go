package main

import (
	"cmp"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/server"
)

// securityConfig is the part of Main's configuration that decides who may watch and change
// orders and how much one client may take.
type securityConfig struct {
	// Secret is the HMAC key of tracking tokens and of HS256 actor tokens; AcceptSecrets are
	// other secrets whose tokens are accepted too, for a rotation (auth.Authority.AcceptSecrets);
	// MaxTokenLifetime caps the lifetime of an HS256 actor token.
	Secret           string
	AcceptSecrets    secretsFlag
	MaxTokenLifetime time.Duration
	// JWTPublicKeys are PEM files of public keys that verify RS256/ES256 actor tokens.
	JWTPublicKeys listFlag
	// JWTAudience, required with JWTPublicKeys, must be an aud of every RS256/ES256 token;
	// JWTIssuer, when set, its iss; JWTMaxLifetime caps their lifetime.
	JWTAudience    string
	JWTIssuer      string
	JWTMaxLifetime time.Duration
	// PublicTracking lets anyone watch any order without a token (demos); --demo implies it.
	PublicTracking bool
	TrackingTTL    time.Duration

	// The limits and timeouts flags bind to Main.HTTP (server.Config); these two are parsed here.
	TrustedProxies listFlag
	CORSOrigins    listFlag

	// Parsed by validateSecurity. secrets are the HMAC secrets the authority holds: the one it
	// signs with first (the demo's own), then those it accepts too.
	authority *auth.Authority
	secrets   []string
	proxies   []netip.Prefix
}

func defaultSecurity() securityConfig {
	return securityConfig{
		TrackingTTL:      auth.DefaultTrackingTTL,
		JWTMaxLifetime:   auth.DefaultExternalMaxLifetime,
		MaxTokenLifetime: auth.DefaultActorMaxLifetime,
	}
}

// listFlag is a flag that may be repeated, each value a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// secretsFlag is a repeatable flag of secrets, each value taken whole, as --secret is: split on
// commas or trimmed, a secret that holds a comma or a space would be accepted changed, and every
// token it signed refused, which a rotation must never do. Its String never shows them.
type secretsFlag []string

func (l *secretsFlag) String() string { return "" }

func (l *secretsFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// securityFlags declares the flags of securityConfig.
func (c *securityConfig) securityFlags(fs *flag.FlagSet, h *server.Config) {
	fs.StringVar(&c.Secret, "secret", c.Secret, "HMAC `secret` (at least 32 bytes) that signs tracking tokens and HS256 actor tokens; required unless --demo, which ignores it")
	fs.Var(&c.AcceptSecrets, "accept-secrets", "another HMAC `secret` whose tokens are accepted too, never used to sign: to rotate --secret with no token refused (repeatable, each taken whole; the variable holds one; see docs/security.md, Rotating the secret)")
	fs.DurationVar(&c.MaxTokenLifetime, "max-token-lifetime", c.MaxTokenLifetime, "longest lifetime, a `duration` (exp minus iat), accepted of an HS256 actor token (as ordercast token makes)")
	fs.Var(&c.JWTPublicKeys, "jwt-public-key", "PEM `file` of public keys that verify RS256/ES256 actor tokens (repeatable or comma-separated)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", c.JWTAudience, "`audience` every RS256/ES256 token must name in aud (required with --jwt-public-key)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", c.JWTIssuer, "`issuer` every RS256/ES256 token must name in iss (optional)")
	fs.DurationVar(&c.JWTMaxLifetime, "jwt-max-lifetime", c.JWTMaxLifetime, "longest lifetime (exp minus iat) accepted of an RS256/ES256 token")
	fs.BoolVar(&c.PublicTracking, "public-tracking", c.PublicTracking, "anyone who reaches --addr may read and watch without a token (changes still need one): every order with its history, details and courier's positions, "+
		"the all-orders stream, every restaurant's, courier's and customer's stream and the home page's list of orders; for demos and the bench on loopback (--demo implies it), never on a node others reach")
	fs.DurationVar(&c.TrackingTTL, "tracking-ttl", c.TrackingTTL, "lifetime of the tracking token returned with a created order")
	fs.IntVar(&h.Limits.MaxStreams, "max-streams", h.Limits.MaxStreams, "most open streams on this node; above it an SSE stream is told to retry, others get 503 (0: no limit)")
	fs.IntVar(&h.Limits.MaxStreamsPerClient, "max-streams-per-client", h.Limits.MaxStreamsPerClient, "most open streams per client address; above it an SSE stream is told to retry, others get 429 (0: no limit)")
	fs.IntVar(&h.Limits.MaxStreamsPerHolder, "max-streams-per-holder", h.Limits.MaxStreamsPerHolder, "most open streams on one token holder's behalf, from any address: every tracking token of one order together, or one restaurant, courier or customer (admin and system are not counted); above it an SSE stream is told to retry, others get 429 (0: no limit)")
	fs.Float64Var(&h.Limits.WriteRate, "write-rate", h.Limits.WriteRate, "write requests per second allowed per client address, 429 above (0: no limit)")
	fs.IntVar(&h.Limits.WriteBurst, "write-burst", h.Limits.WriteBurst, "write requests a client address may send at once before --write-rate applies")
	fs.Float64Var(&h.Limits.AnonWriteRate, "anon-write-rate", h.Limits.AnonWriteRate, "write requests per second per client address that fail authentication (401) or come from a role that may never send them (403), a budget apart from --write-rate (0: a quarter of --write-rate)")
	fs.IntVar(&h.Limits.AnonWriteBurst, "anon-write-burst", h.Limits.AnonWriteBurst, "unauthenticated (or refused to their role) write requests a client address may send at once (0: a quarter of --write-burst)")
	fs.Float64Var(&h.Limits.StreamOpenRate, "stream-open-rate", h.Limits.StreamOpenRate, "streams (SSE, WebSocket, long poll) a client address may open per second, each of which reads the store; above it an SSE stream is told to retry, others get 429 (0: no limit)")
	fs.IntVar(&h.Limits.StreamOpenBurst, "stream-open-burst", h.Limits.StreamOpenBurst, "streams a client address may open at once before --stream-open-rate applies")
	fs.DurationVar(&h.ReadHeaderTimeout, "read-header-timeout", h.ReadHeaderTimeout, "longest time to read a request's headers")
	fs.DurationVar(&h.ReadTimeout, "read-timeout", h.ReadTimeout, "longest time to read a whole request, body included (streams clear it once open)")
	fs.IntVar(&h.MaxHeaderBytes, "max-header-bytes", h.MaxHeaderBytes, "largest request header block accepted, in `bytes` (431 above)")
	fs.IntVar(&h.Limits.IPv6ClientPrefix, "ipv6-client-prefix", server.DefaultIPv6ClientPrefix, "the block an IPv6 client is counted by in the per-client limits, in prefix bits, 48 to 64: 64 is what a phone or a home network gets; 56 or 48 where an ISP delegates a household that much and its users are not phones of one carrier")
	fs.IntVar(&h.Limits.MaxConnsPerPeer, "max-conns-per-peer", h.Limits.MaxConnsPerPeer, "most open connections per peer address, refused at accept above; counts the TCP peer, and peers in --trusted-proxies are not capped (0: no limit)")
	fs.DurationVar(&h.IdleTimeout, "idle-timeout", h.IdleTimeout, "how long an idle keep-alive connection is kept")
	fs.Var(&c.TrustedProxies, "trusted-proxies", "`CIDR`s of proxies whose X-Forwarded-For names the client (comma-separated)")
	fs.Var(&c.CORSOrigins, "cors-origins", "`origins` (https://app.example) whose pages may call the API with credentials (comma-separated)")
}

// validateSecurity checks the security flags and builds the token authority. In demo mode it
// ignores --secret and makes a random one, which lasts as long as the process.
func (c *securityConfig) validateSecurity(demo bool) error {
	switch {
	case c.TrackingTTL <= 0:
		return fmt.Errorf("--tracking-ttl must be positive, got %s", c.TrackingTTL)
	case len(c.JWTPublicKeys) > 0 && c.JWTAudience == "":
		return errors.New("--jwt-public-key needs --jwt-audience: without it a token your identity provider minted for another service would act here")
	case len(c.JWTPublicKeys) == 0 && (c.JWTAudience != "" || c.JWTIssuer != ""):
		// Most often the key's setting was lost (an environment file, a volume not mounted):
		// the node would start refusing every RS256/ES256 token, its operator none the wiser.
		return errors.New("--jwt-audience and --jwt-issuer check RS256/ES256 tokens, which only a --jwt-public-key verifies: give the key too, or leave them out")
	case c.JWTMaxLifetime <= 0:
		return fmt.Errorf("--jwt-max-lifetime must be positive, got %s", c.JWTMaxLifetime)
	case c.MaxTokenLifetime <= 0:
		return fmt.Errorf("--max-token-lifetime must be positive, got %s", c.MaxTokenLifetime)
	}
	c.proxies = nil
	for _, p := range c.TrustedProxies {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return fmt.Errorf("--trusted-proxies: %q is not a CIDR or an address", p)
			}
			prefix = netip.PrefixFrom(a, a.BitLen())
		}
		c.proxies = append(c.proxies, prefix.Masked())
	}
	for _, o := range c.CORSOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || o != u.Scheme+"://"+u.Host {
			return fmt.Errorf("--cors-origins: %q is not an origin like https://app.example.com", o)
		}
	}
	secret := c.Secret
	switch {
	case demo:
		// Always a secret of its own: the demo console hands out admin tokens, which must never
		// be good on a real node that shares ORDERCAST_SECRET with this shell.
		var b [32]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		secret = hex.EncodeToString(b[:])
	case secret == "":
		return fmt.Errorf("--secret is required: set --secret or ORDERCAST_SECRET to at least %d bytes of random text (e.g. the output of `openssl rand -hex 32`), or run with --demo", auth.MinSecretBytes)
	}
	if err := auth.CheckSecret([]byte(secret)); err != nil {
		return fmt.Errorf("--secret %w", err)
	}
	var keys []crypto.PublicKey
	for _, file := range c.JWTPublicKeys {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--jwt-public-key: %w", err)
		}
		k, err := auth.ParsePublicKeys(data)
		if err != nil {
			// A file that does not parse, or holds a key of a kind or size refused (P-384, a
			// 1024-bit RSA key), is named: with several files, the operator needs to know which.
			return fmt.Errorf("--jwt-public-key %s: %w", file, err)
		}
		keys = append(keys, k...)
	}
	a, err := auth.New([]byte(secret), keys...)
	if err != nil {
		return fmt.Errorf("--jwt-public-key: %w", err)
	}
	a.ExternalAudience, a.ExternalIssuer, a.ExternalMaxLifetime = c.JWTAudience, c.JWTIssuer, c.JWTMaxLifetime
	a.ActorMaxLifetime = c.MaxTokenLifetime
	// The server's own tracking tokens live --tracking-ttl, which may be set past the default cap.
	a.TrackingMaxLifetime = max(auth.DefaultTrackingMaxLifetime, c.TrackingTTL)
	c.secrets = []string{secret}
	if !demo {
		for _, s := range c.AcceptSecrets {
			if err := a.AcceptSecrets([]byte(s)); err != nil {
				return fmt.Errorf("--accept-secrets: %w", err) // never the value: it is a secret
			}
			c.secrets = append(c.secrets, s)
		}
	}
	c.authority = a
	return nil
}

// warnings names settings that are accepted, each having its use, but that usually do something
// else than the operator meant; serve logs each at start.
func (c *securityConfig) warnings(h server.Config, demo bool) []string {
	var ws []string
	if h.MetricsAddr == "" && !demo && !loopbackAddr(h.Addr) {
		// Kept for the deployments that scrape the main port, but rarely what a node on the
		// network should do.
		ws = append(ws, fmt.Sprintf("/metrics is served on --addr %s, to whoever can reach the API: its counts, latencies and Go runtime figures describe this node's load and internals; "+
			"serve them on a private address with --metrics-addr (e.g. 127.0.0.1:9469, or the scrapers' network) and point the scrapers there", h.Addr))
	}
	if demo && !loopbackAddr(h.Addr) {
		ws = append(ws, fmt.Sprintf("the demo listens on --addr %s, beyond this machine: its console hands an admin token to whoever opens it there, and its Host check (a defence against DNS rebinding) is off; "+
			"leave --addr to its loopback default, or in a container publish the port on the host's loopback only (docker run -p 127.0.0.1:8080:8080)", h.Addr))
	}
	if c.PublicTracking && !demo && !loopbackAddr(h.Addr) {
		// A demo's own warning above covers it; its orders are simulated.
		ws = append(ws, fmt.Sprintf("--public-tracking on --addr %s, beyond this machine: whoever reaches it reads and watches every order without a token, "+
			"with its history, details and courier's positions, and the all-orders and every party's stream; "+
			"it is meant for demos and the bench on loopback: drop it and hand each customer the tracking token their order's creation returns", h.Addr))
	}
	streams, conns := h.Limits.MaxStreamsPerClient, h.Limits.MaxConnsPerPeer
	multiplexed := h.H2C || h.TLSCertFile != "" // HTTP/2: many streams on one connection
	if streams > 0 && conns > 0 && streams >= conns && !multiplexed {
		ws = append(ws, fmt.Sprintf("--max-streams-per-client %d is not below --max-conns-per-peer %d: over HTTP/1.1 each stream holds a connection, "+
			"so an address is refused at accept (no 429 with Retry-After, and its other requests refused too) before it reaches its stream limit; "+
			"leave its connections room above its streams, or serve HTTP/2 (--tls-cert or --h2c)", streams, conns))
	}
	for _, p := range c.proxies {
		if p.Bits() == 0 {
			ws = append(ws, fmt.Sprintf("--trusted-proxies %s trusts every address: any client may name itself in X-Forwarded-For and so step around the per-client limits, "+
				"and no peer's connections are capped; name the proxies' own addresses", p))
		}
	}
	return ws
}

// configure applies the security configuration to srv. Demo mode makes tracking public and gives
// the console page an admin token; otherwise both stay off.
func (c *securityConfig) configure(srv *server.Server, demo bool) {
	srv.Auth = &server.Auth{
		Tokens:         c.authority,
		PublicTracking: c.PublicTracking || demo,
		TrackingTTL:    c.TrackingTTL,
		ConsoleToken:   demo,
	}
	srv.Limits.TrustedProxies = c.proxies
	srv.Limits.CORSOrigins = c.CORSOrigins
}

const tokenUsage = `Usage: ordercast token --role ROLE [--sub ID] [--ttl D] [--secret S]
       ordercast token --order ID [--ttl D] [--secret S]

Prints a token signed with the server's secret on its last line: an actor token for a role
(restaurant, courier, customer, support, admin, system), or with --order a tracking token for that one order.
`

// flagValue names the flag a value of which err (a domain error, or nil) refuses, by its
// message alone: the command's own prefix says the rest.
func flagValue(flag string, err error) error {
	if e, ok := errors.AsType[*ordercast.Error](err); ok {
		return fmt.Errorf("%s: %s", flag, e.Message)
	}
	return err
}

// tokenRequest is what `ordercast token` was asked for.
type tokenRequest struct {
	role, sub, secret, order string
	ttl                      time.Duration
}

// runToken is `ordercast token`: it mints a token for local use and scripts.
func runToken(args []string, stdout, stderr io.Writer) error {
	req, err := parseTokenRequest(args, stdout, stderr)
	if err != nil {
		return err
	}
	if req.secret == "" {
		return errors.New("--secret (or ORDERCAST_SECRET) is required: the server's secret signs the token")
	}
	a, err := auth.New([]byte(req.secret))
	if err != nil {
		return fmt.Errorf("--secret: %w", err)
	}
	if err := req.check(); err != nil {
		return err
	}
	var tok string
	if req.order != "" {
		tok, err = mintTracking(a, req, stderr)
	} else {
		tok, err = mintActor(a, req, stderr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// parseTokenRequest reads the token flags, with ORDERCAST_* environment variables as fallbacks.
func parseTokenRequest(args []string, stdout, stderr io.Writer) (tokenRequest, error) {
	var req tokenRequest
	fs := flag.NewFlagSet("ordercast token", flag.ContinueOnError)
	fs.StringVar(&req.role, "role", "", "the actor's `role`: restaurant, courier, customer, support, admin or system")
	fs.StringVar(&req.sub, "sub", "", "the restaurant, courier or customer `id` the actor acts for")
	fs.StringVar(&req.secret, "secret", "", "the server's HMAC `secret`")
	fs.DurationVar(&req.ttl, "ttl", 0, "lifetime (default 1h for actor tokens, 24h for tracking tokens); a server takes a token for "+auth.DefaultLeeway.String()+" past it, the clock difference it tolerates (so a --ttl 3s token is refused about "+(3*time.Second+auth.DefaultLeeway).String()+" after it is made)")
	fs.StringVar(&req.order, "order", "", "make a tracking token for this order `id` instead of an actor token (it reads any order of the id: POST /v1/orders/{id}/tracking-token makes one bound to the order, which a later order given the same id does not take)")
	fromEnv, err := parseCommand(fs, args, tokenUsage, stdout, stderr)
	if err != nil {
		return req, err
	}
	// The kind of token asked for on the command line wins over the other kind's variable: a
	// shell that exports ORDERCAST_ROLE for its actor tokens can still make a tracking token.
	switch {
	case req.order != "" && !fromEnv["order"] && fromEnv["role"]:
		req.role = ""
	case req.role != "" && !fromEnv["role"] && fromEnv["order"]:
		req.order = ""
	}
	return req, nil
}

// check refuses a request for no token, for both kinds at once, or for one no server would take.
func (req tokenRequest) check() error {
	if req.ttl < 0 || req.ttl > 0 && req.ttl < time.Second {
		return fmt.Errorf("--ttl must be at least 1s, got %s", req.ttl)
	}
	// The ids a server would refuse, refused here by the same rules: a token for one of them
	// could act on no order.
	if req.order != "" {
		if err := flagValue("--order", ordercast.ValidateID(req.order)); err != nil {
			return err
		}
	}
	if req.sub != "" {
		if err := flagValue("--sub", ordercast.ValidatePartyID(req.sub)); err != nil {
			return err
		}
	}
	switch {
	case req.order != "" && req.role != "":
		return errors.New("--order makes a tracking token, which has no role: give one of --order and --role")
	case req.order == "" && req.role == "":
		return errors.New("give --role for an actor token or --order for a tracking token")
	}
	return nil
}

// mintTracking signs a tracking token for req.order, warning on stderr of a lifetime servers
// refuse.
func mintTracking(a *auth.Authority, req tokenRequest, stderr io.Writer) (string, error) {
	ttl := cmp.Or(req.ttl, auth.DefaultTrackingTTL)
	if ttl > auth.DefaultTrackingMaxLifetime {
		fmt.Fprintf(stderr, "warning: servers refuse a tracking token that lives longer than %s, or their --tracking-ttl if longer; this one lives %s\n", auth.DefaultTrackingMaxLifetime, ttl)
	}
	// It names no creation (the order is not at hand here): it reads any order of the id, a
	// later one too once the first is purged. POST …/tracking-token makes one bound to the order.
	tok, _, err := a.SignTracking(req.order, time.Time{}, ttl)
	return tok, err
}

// mintActor signs an actor token for req.role and req.sub, warning on stderr of a lifetime
// servers refuse.
func mintActor(a *auth.Authority, req tokenRequest, stderr io.Writer) (string, error) {
	ttl := cmp.Or(req.ttl, auth.DefaultActorTTL)
	if ttl > auth.DefaultActorMaxLifetime {
		fmt.Fprintf(stderr, "warning: servers refuse an actor token that lives longer than their --max-token-lifetime (%s by default); this one lives %s\n", auth.DefaultActorMaxLifetime, ttl)
	}
	actor := auth.Actor{Role: auth.Role(req.role), Sub: req.sub}
	if req.sub == "" && actor.Role == auth.RoleSupport {
		return "", errors.New("a support token needs --sub, the agent it is for (--sub ana): it names them in the orders' history")
	}
	if req.sub == "" && actor.Role.Valid() && !actor.Privileged() {
		return "", fmt.Errorf("a %s token needs --sub, the %s it acts for: without one it acts on no order", req.role, req.role)
	}
	if req.sub == "" && actor.Privileged() {
		// Idempotency-Keys are scoped to the token's role and sub: for two integrations
		// holding such tokens, one key sent by both would be one request.
		fmt.Fprintf(stderr, "note: give each person or service its own --sub (--sub dispatch): it names them in the orders' history, and scopes their Idempotency-Keys; every %s token without one shares one scope\n", req.role)
	}
	return a.SignActor(actor, ttl)
}
