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

// peerCapListener refuses a connection at accept when its peer address already holds max open
// connections. It counts the peer (the TCP address the listener sees), not the client behind a
// proxy: peers within the trusted proxies are not capped, since all their clients share their
// address and are counted by the stream and write limits instead.
type peerCapListener struct {
	net.Listener
	max     int
	trusted []netip.Prefix
	prefix  int // IPv6: the client's block (limitKey)
	logger  *slog.Logger
	refused atomic.Int64

	mu    sync.Mutex
	conns map[netip.Addr]int
}

func newPeerCapListener(ln net.Listener, max int, trusted []netip.Prefix, prefix int, logger *slog.Logger) *peerCapListener {
	return &peerCapListener{Listener: ln, max: max, trusted: trusted, prefix: prefix, logger: logger, conns: make(map[netip.Addr]int)}
}

// Accept returns the next connection whose peer is under the cap; over-cap connections are closed
// at once and never reach net/http, so they cost no goroutine and no buffers.
func (l *peerCapListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := peerAddr(c.RemoteAddr().String())
		if trusted(l.trusted, peer) {
			return c, nil
		}
		peer = limitKey(peer, l.prefix)
		l.mu.Lock()
		n := l.conns[peer]
		if n >= l.max {
			l.mu.Unlock()
			// Logged at the 1st, 2nd, 4th, 8th… refusal: a flood must not flood the log too.
			if n := l.refused.Add(1); n&(n-1) == 0 {
				l.logger.Warn("connection refused: too many from one peer", "peer", peer.String(), "max", l.max, "refused_total", n)
			}
			if cerr := c.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
				l.logger.Debug("close refused connection", "err", cerr)
			}
			continue
		}
		l.conns[peer] = n + 1
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(peer) }}, nil
	}
}

func (l *peerCapListener) release(peer netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
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
