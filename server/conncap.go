package server

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// DefaultMaxConnsPerPeer bounds the open connections of one peer address at the listener: above
// the streams one client may hold (DefaultMaxStreamsPerClient) with room for its other requests,
// far below the process's file limit, so one address cannot take every socket.
const DefaultMaxConnsPerPeer = 256

// connCapListener refuses a connection at accept when the node already holds max open
// connections in all, or its peer address perPeer (each cap off at zero). The per-peer cap counts
// the peer (the TCP address the listener sees), not the client behind a proxy: peers within the
// trusted proxies are not capped by it, since all their clients share their address and are
// counted by the stream and write limits instead; the node's cap counts them too.
type connCapListener struct {
	net.Listener
	max, perPeer int
	trusted      []netip.Prefix
	prefix       int // IPv6: the client's block (limitKey)
	logger       *slog.Logger
	refused      atomic.Int64 // for want of the peer's room
	full         atomic.Int64 // for want of the node's

	mu    sync.Mutex
	total int
	conns map[netip.Addr]int
}

func newConnCapListener(ln net.Listener, max, perPeer int, trusted []netip.Prefix, prefix int, logger *slog.Logger) *connCapListener {
	return &connCapListener{Listener: ln, max: max, perPeer: perPeer, trusted: trusted, prefix: prefix, logger: logger, conns: make(map[netip.Addr]int)}
}

// Accept returns the next connection under the caps; over-cap connections are closed at once and
// never reach net/http, so they cost no goroutine and no buffers, and the descriptor is free
// again at once.
func (l *connCapListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := peerAddr(c.RemoteAddr().String())
		capped := l.perPeer > 0 && !trusted(l.trusted, peer)
		if capped {
			peer = limitKey(peer, l.prefix)
		}
		l.mu.Lock()
		switch {
		case l.max > 0 && l.total >= l.max:
			l.mu.Unlock()
			l.refuse(c, &l.full, "connection refused: the node holds as many connections as its open-file limit leaves room for (raise the limit: LimitNOFILE in its unit, --ulimit nofile in Docker)", "max", l.max)
			continue
		case capped && l.conns[peer] >= l.perPeer:
			l.mu.Unlock()
			l.refuse(c, &l.refused, "connection refused: too many from one peer", "peer", peer.String(), "max", l.perPeer)
			continue
		}
		l.total++
		if capped {
			l.conns[peer]++
		}
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(peer, capped) }}, nil
	}
}

// refuse closes a connection over a cap, counted in refused, and logs msg with attrs at the 1st,
// 2nd, 4th, 8th… refusal of its kind: a flood must not flood the log too.
func (l *connCapListener) refuse(c net.Conn, refused *atomic.Int64, msg string, attrs ...any) {
	if n := refused.Add(1); n&(n-1) == 0 {
		l.logger.Warn(msg, append(attrs, "refused_total", n)...)
	}
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		l.logger.Debug("close refused connection", "err", err)
	}
}

func (l *connCapListener) release(peer netip.Addr, capped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if !capped {
		return
	}
	if l.conns[peer] <= 1 {
		delete(l.conns, peer)
		return
	}
	l.conns[peer]--
}

// countedConn gives its place back when closed, whoever closes it: net/http, or the poller or
// WebSocket that took it over.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// SyscallConn lets the poller reach the socket beneath (it holds connections by file descriptor).
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}
