package server

import (
	"cmp"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
)

// Defaults for the limits that `ordercast serve` applies. The library's Server leaves every limit
// off (zero) so that tests and embedders opt in.
const (
	// DefaultMaxStreams bounds open streams on the node, under the process's open-file limit
	// (each stream holds a socket) with room for ordinary requests.
	DefaultMaxStreams = 10000
	// DefaultMaxStreamsPerClient bounds the streams of one client address: a person has a few tabs,
	// a NAT a few hundred people; one client cannot take the whole node.
	DefaultMaxStreamsPerClient = 100
	// DefaultMaxStreamsPerHolder bounds the streams open on one credential's behalf, from any
	// number of addresses: a family watching an order, a restaurant's screens. A tracking token,
	// which anyone gets by placing one order, could otherwise hold the node's streams from a
	// hundred addresses.
	DefaultMaxStreamsPerHolder = 50
	// DefaultWriteRate and DefaultWriteBurst bound write requests (create, status change) per
	// client address: steady per second, and how many may come at once.
	DefaultWriteRate  = 20
	DefaultWriteBurst = 40
	// DefaultStreamOpenRate and DefaultStreamOpenBurst bound how fast one client address may
	// open streams (an SSE stream, a WebSocket, a long poll), each of which reads the store: an
	// order's missed events, a party's snapshot of up to 2,000 orders. Without it a client
	// holding its share of streams could close and open them as fast as the node answers. The
	// burst is the client's whole share of streams (all of them opened again at once, after a
	// node restarts), and 10 a second is far above what people open: pages that come back to
	// the foreground, reconnects after a stream's lifetime.
	DefaultStreamOpenRate  = 10
	DefaultStreamOpenBurst = DefaultMaxStreamsPerClient
	// DefaultMaxClients bounds the per-client table; past it, idle clients are forgotten early.
	DefaultMaxClients = 100000
	// clientIdle is how long a client with no open stream is remembered after its last request;
	// it is at least the time its bucket takes to refill, so forgetting gives nothing away.
	clientIdle = time.Minute
	// streamRetryAfter is what streams refused under the stream limits are told to wait.
	streamRetryAfter = 5 * time.Second
)

// Limits keep one client from starving the rest. A zero value turns each limit off.
type Limits struct {
	// MaxConnsPerPeer bounds the open connections of one peer address, refused at accept above
	// it. It counts the TCP peer, not the X-Forwarded-For client: peers in TrustedProxies are
	// not capped. Zero turns it off.
	MaxConnsPerPeer int
	// MaxConns bounds the node's open connections, all peers', trusted proxies' too, refused at
	// accept above it: under the process's open-file limit, so that connections cannot take the
	// descriptors the node opens itself (the database's connections, SQLite's files): out of
	// them, accept failed with EMFILE once a second and every request waited, /healthz and
	// writes too (the resource-exhaustion review). Zero turns it off; `ordercast serve` sets it
	// from the open-file limit (FileBudget).
	MaxConns int
	// MaxStreams bounds open streams on this node (above it: 503, or for an event stream 200 with
	// retry:, see writeStreamError).
	MaxStreams int
	// MaxStreamsPerClient bounds open streams per client address (above it: 429, or for an event
	// stream 200 with retry:).
	MaxStreamsPerClient int
	// MaxStreamsPerHolder bounds open streams per holder (streamHolder: a tracking token's order,
	// a party's role and id), whatever address they come from (above it: 429, or for an event
	// stream 200 with retry:). Admin and system streams are not counted: they are the platform's.
	MaxStreamsPerHolder int
	// WriteRate is the steady number of write requests per second allowed per client address, and
	// WriteBurst how many may come at once (429 above it). Zero WriteRate turns the limit off.
	WriteRate  float64
	WriteBurst int
	// AnonWriteRate and AnonWriteBurst are a separate, smaller budget per client address for
	// write requests that fail authentication (401) or come from a role that may never send them
	// (403), so such requests cannot use up the budget of a token's holder behind the same
	// address. Zero means a quarter of WriteRate and
	// WriteBurst (at least one).
	AnonWriteRate  float64
	AnonWriteBurst int
	// StreamOpenRate is the steady number of streams (SSE, WebSocket, long poll) a client address
	// may open per second, and StreamOpenBurst how many at once (above it: 429, or for an event
	// stream 200 with retry:). Zero StreamOpenRate turns the limit off.
	StreamOpenRate  float64
	StreamOpenBurst int
	// IPv6ClientPrefix is the prefix length by which the limits count an IPv6 client, 48 to 64;
	// zero means DefaultIPv6ClientPrefix (see limitKey).
	IPv6ClientPrefix int
	// TrustedProxies are the addresses whose X-Forwarded-For is believed; the client address is
	// then the rightmost forwarded address that is not itself a trusted proxy. Empty means the
	// peer's address is the client's.
	TrustedProxies []netip.Prefix
	// CORSOrigins are the origins (scheme://host[:port]) whose pages may call the API with
	// credentials. Empty means no cross-origin access.
	CORSOrigins []string
}

// FileBudget divides a process's open-file limit (RLIMIT_NOFILE) between connections and
// streams. A reserve is kept for what the node opens itself (the database's connections, SQLite's
// files, the log): min(256, files/4). The rest may be connections (Limits.MaxConns), and of
// those all but min(256, conns/4) streams (the most Limits.MaxStreams should be), so that a
// write or a health check finds a socket while streams hold the rest. At 1,024 files: 768
// connections, 576 streams; at 65,536: 65,280 and 65,024.
func FileBudget(files int) (conns, streams int) {
	conns = files - min(256, files/4)
	return conns, conns - min(256, conns/4)
}

// DefaultLimits are the limits a node on the network runs with (`ordercast serve`'s defaults); a
// Server's zero Limits, for tests and embedding, limit nothing.
func DefaultLimits() Limits {
	return Limits{
		MaxConnsPerPeer:     DefaultMaxConnsPerPeer,
		MaxStreams:          DefaultMaxStreams,
		MaxStreamsPerClient: DefaultMaxStreamsPerClient,
		MaxStreamsPerHolder: DefaultMaxStreamsPerHolder,
		WriteRate:           DefaultWriteRate,
		WriteBurst:          DefaultWriteBurst,
		StreamOpenRate:      DefaultStreamOpenRate,
		StreamOpenBurst:     DefaultStreamOpenBurst,
	}
}

// client is what the server remembers about one client address.
type client struct {
	writes  *rate.Limiter
	anon    *rate.Limiter // writes that fail authentication
	opens   *rate.Limiter // streams opened
	streams int
	seen    time.Time
}

// clientTable holds the per-client state, with idle clients evicted so memory stays bounded.
type clientTable struct {
	mu        sync.Mutex
	m         map[netip.Addr]*client
	lastSweep time.Time
	total     int            // streams admitted on the node
	holders   map[string]int // streams admitted per holder (streamHolder), none at zero
}

// get returns the state of addr, creating it; callers hold mu.
func (t *clientTable) get(addr netip.Addr, l Limits, now time.Time) *client {
	if t.m == nil {
		t.m = make(map[netip.Addr]*client)
	}
	if now.Sub(t.lastSweep) > clientIdle || len(t.m) >= DefaultMaxClients {
		t.sweep(now)
	}
	c := t.m[addr]
	if c == nil {
		c = &client{}
		if l.WriteRate > 0 {
			c.writes = rate.NewLimiter(rate.Limit(l.WriteRate), max(l.WriteBurst, 1))
			anonRate, anonBurst := l.AnonWriteRate, l.AnonWriteBurst
			if anonRate <= 0 {
				anonRate = l.WriteRate / 4
			}
			if anonBurst <= 0 {
				anonBurst = l.WriteBurst / 4
			}
			c.anon = rate.NewLimiter(rate.Limit(anonRate), max(anonBurst, 1))
		}
		if l.StreamOpenRate > 0 {
			c.opens = rate.NewLimiter(rate.Limit(l.StreamOpenRate), max(l.StreamOpenBurst, 1))
		}
		t.m[addr] = c
	}
	c.seen = now
	return c
}

// sweep forgets clients with no open stream that have been idle for clientIdle; when the table is
// still full (many addresses at once), it forgets idle ones regardless of age, down to nine
// tenths of the bound: stopping just under it made every new address after it sweep the whole
// table again, under the lock every request takes.
func (t *clientTable) sweep(now time.Time) {
	t.lastSweep = now
	for a, c := range t.m {
		if c.streams == 0 && now.Sub(c.seen) > clientIdle {
			delete(t.m, a)
		}
	}
	if len(t.m) < DefaultMaxClients {
		return
	}
	for a, c := range t.m {
		if len(t.m) < DefaultMaxClients*9/10 {
			break
		}
		if c.streams == 0 {
			delete(t.m, a)
		}
	}
}

// clientAddr is the address limits are counted against: the peer, or when the peer is a trusted
// proxy, the rightmost address in X-Forwarded-For that is not a trusted proxy.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if len(s.Limits.TrustedProxies) == 0 || !trusted(s.Limits.TrustedProxies, peer) {
		if _, proxied := r.Header["X-Forwarded-For"]; proxied && !s.untrustedProxySeen.Swap(true) {
			// Said once: behind a proxy the node was not told of, every client behind it is one
			// client to the limits, and they refuse streams and writes with no other sign why.
			s.Logger.Warn("a request came through a proxy that --trusted-proxies does not name: the per-client limits (--max-streams-per-client, --write-rate, --max-conns-per-peer) count every client behind it as this one address; name the proxy in --trusted-proxies (logged once)",
				"proxy", peer.String())
		}
		return peer
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a := peerAddr(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			break // a garbled hop: stop believing what is left of it
		}
		if !trusted(s.Limits.TrustedProxies, a) {
			return a
		}
		peer = a
	}
	return peer
}

// DefaultIPv6ClientPrefix is the block an IPv6 client is counted by unless set: a /64, what a
// phone or a home's network gets, from which a client can take as many addresses as it likes.
// An ISP may delegate a household a /56 or a /48, over which one client could spread; counting
// by a wider prefix puts unrelated phones of one mobile carrier, each with a /64 of one pool,
// under one budget. A deployment that knows its users sets IPv6ClientPrefix.
const DefaultIPv6ClientPrefix = 64

// limitKey is what the per-client limits count an address as: an IPv4 address alone, and an
// IPv6 address by its block of prefix bits (0: DefaultIPv6ClientPrefix): counted one by one,
// each address of a client's block got a budget and a stream allowance of its own.
func limitKey(a netip.Addr, prefix int) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		return netip.PrefixFrom(a, cmp.Or(prefix, DefaultIPv6ClientPrefix)).Masked().Addr()
	}
	return a
}

// peerAddr is the address of remote, with its port or without (an X-Forwarded-For hop may carry
// one: some proxies, though not nginx, send "203.0.113.9:4711"; read as garbled, it counted every
// client behind such a proxy as the proxy itself); the zero Addr when it is none.
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowWrite counts a write request against its client's rate, refusing it with 429 and
// Retry-After when the client is over. It is charged after authentication: a request that fails
// it, or is refused to its role (anonymous), is charged to the client's separate, smaller
// anonymous budget, so that such requests cannot use up the budget of a token's holder behind
// the same address (changeRequestUpTo).
func (s *Server) allowWrite(w http.ResponseWriter, r *http.Request, anonymous bool) error {
	if s.Limits.WriteRate <= 0 {
		return nil
	}
	addr := limitKey(s.clientAddr(r), s.Limits.IPv6ClientPrefix)
	now := time.Now()
	s.clients.mu.Lock()
	c := s.clients.get(addr, s.Limits, now)
	lim := c.writes
	if anonymous {
		lim = c.anon
	}
	delay := take(lim, now)
	s.clients.mu.Unlock()
	if delay <= 0 {
		return nil
	}
	w.Header().Set("Retry-After", retryAfter(delay))
	return ordercast.Errorf(ordercast.ERateLimited, "too many write requests from your address; retry later")
}

// take takes a token from lim at now, and returns 0, or how long until one is free, taking
// none: a refused request does not use up the client's future allowance.
func take(lim *rate.Limiter, now time.Time) time.Duration {
	res := lim.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay > 0 {
		res.CancelAt(now)
	}
	return delay
}

// admitStream counts a new stream against the node's, its client's and its holder's limits, and
// against its client's rate of opening streams. It refuses with too_many_streams (node full) or
// rate_limited (client or holder full, or the client opening streams too fast: a
// *limitRefusal), which writeStreamError answers; on success release must be called when the
// stream ends. A stream of an admin or system token (the platform's own: a dispatch backend
// following every restaurant's stream from one address) counts against the node's limit alone.
func (s *Server) admitStream(r *http.Request) (release func(), err error) {
	l := s.Limits
	if l.MaxStreams <= 0 && l.MaxStreamsPerClient <= 0 && l.MaxStreamsPerHolder <= 0 && l.StreamOpenRate <= 0 {
		return func() {}, nil
	}
	holder, platform := s.streamHolder(r)
	if l.MaxStreamsPerHolder <= 0 {
		holder = ""
	}
	addr := limitKey(s.clientAddr(r), s.Limits.IPv6ClientPrefix)
	s.clients.mu.Lock()
	defer s.clients.mu.Unlock()
	if l.MaxStreams > 0 && s.clients.total >= l.MaxStreams {
		return nil, ordercast.Errorf(ordercast.ETooManyStreams, "this node holds as many streams as it may; retry later")
	}
	if platform {
		s.clients.total++
		return func() {
			s.clients.mu.Lock()
			s.clients.total--
			s.clients.mu.Unlock()
		}, nil
	}
	now := time.Now()
	c := s.clients.get(addr, l, now)
	switch {
	case l.MaxStreamsPerClient > 0 && c.streams >= l.MaxStreamsPerClient:
		return nil, &limitRefusal{refusedMaxStreamsPerClient, "too many open streams from your address",
			ordercast.Errorf(ordercast.ERateLimited, "too many open streams from your address (at most %d)", l.MaxStreamsPerClient), 0}
	case holder != "" && s.clients.holders[holder] >= l.MaxStreamsPerHolder:
		return nil, &limitRefusal{refusedMaxStreamsPerHolder, "too many open streams on this token's behalf",
			ordercast.Errorf(ordercast.ERateLimited, "too many open streams on behalf of %s, from any address (at most %d)", holder, l.MaxStreamsPerHolder), 0}
	}
	// Charged last: a stream refused above opened nothing.
	if c.opens != nil {
		if delay := take(c.opens, now); delay > 0 {
			// Told to come back when the next may be opened, and no sooner than a second (what
			// Retry-After can say): a NAT's clients told a tenth of a second would come back
			// together and be refused again.
			return nil, &limitRefusal{refusedStreamOpenRate, "too many streams opened from your address",
				ordercast.Errorf(ordercast.ERateLimited, "too many streams opened from your address (at most %g a second)", l.StreamOpenRate),
				max(delay, time.Second)}
		}
	}
	c.streams++
	s.clients.total++
	if holder != "" {
		if s.clients.holders == nil {
			s.clients.holders = make(map[string]int)
		}
		s.clients.holders[holder]++
	}
	return func() {
		s.clients.mu.Lock()
		c.streams--
		s.clients.total--
		c.seen = time.Now()
		if holder != "" {
			if s.clients.holders[holder]--; s.clients.holders[holder] == 0 {
				delete(s.clients.holders, holder)
			}
		}
		s.clients.mu.Unlock()
	}, nil
}

// limitRefusal is admitStream's refusal of a stream over a client's or a holder's share: a
// rate_limited error, the reason it is counted by and an event stream is told, and when a
// stream may be opened again, where that is known (0: streamRetryAfter).
type limitRefusal struct {
	reason, why string
	err         error
	after       time.Duration
}

func (e *limitRefusal) Error() string { return e.err.Error() }
func (e *limitRefusal) Unwrap() error { return e.err }

// streamHolder is whom r's stream is held for, by its token, under MaxStreamsPerHolder:
//   - a customer's tracking token: its order ("order o-1"), every such token of it together;
//   - a party's actor token: the party ("restaurant:r-1");
//   - a tracking token a party's page made from its own: that party (its via), and a courier's
//     tracking token: that courier; so that a restaurant's fifty tracking pages of an order
//     spend its share, not the customer's, whose own stream of the order they would refuse;
//   - "" for none counted: an open server, public tracking, a token the stream's own
//     authorization refuses;
//   - "" and platform true for admin and system tokens, and the console's tracking pages: the
//     platform's own streams, which no per-address or per-holder share limits.
func (s *Server) streamHolder(r *http.Request) (holder string, platform bool) {
	if s.Auth == nil {
		return "", false
	}
	tok, err := s.watchToken(r)
	if tok == "" || err != nil { // none, or one the stream's authorization refuses
		return "", false
	}
	if tr, err := s.Auth.Tokens.ParseTracking(tok); err == nil {
		if s.Auth.PublicTracking {
			return "", false
		}
		via, made := tr.ViaActor()
		switch {
		case made && via.Privileged():
			return "", true // the console's (an admin's): the platform's own, as its token's
		case made:
			return via.String(), false
		case tr.Courier != "":
			return auth.Actor{Role: auth.RoleCourier, Sub: tr.Courier}.String(), false
		}
		return "order " + tr.OrderID, false
	}
	a, err := s.Auth.Tokens.ParseActor(tok)
	switch {
	case err != nil:
		return "", false
	case a.Privileged():
		return "", true
	case s.Auth.PublicTracking:
		return "", false
	}
	return a.String(), false
}
