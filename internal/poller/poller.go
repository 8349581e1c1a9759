// Package poller holds many idle network connections without a goroutine each. Linux's epoll
// watches them all from one goroutine for the peer going away, and writes go straight to the
// socket without blocking: what the socket cannot take yet waits in a small per-connection
// queue until epoll says it is writable. An SSE stream is idle nearly all its life, so holding
// it this way costs a few hundred bytes instead of a goroutine stack and two I/O buffers.
package poller

import "errors"

// DefaultMaxPending bounds the bytes queued for one connection that is not reading: a client
// this far behind is stuck, and resuming later costs less than buffering for it. It bounds what
// piles up behind a queue, not one write (see Conn.Write).
const DefaultMaxPending = 64 << 10

// DefaultMaxPendingTotal bounds the bytes queued across every held connection. A client that
// reads the opening of its stream (a party's snapshot, up to megabytes) a byte at a time keeps
// its queue filled, never stalled; without a bound on the sum, enough such clients would hold
// the node's memory. Clients that read at any usual pace take their queues in milliseconds and
// never come near it.
const DefaultMaxPendingTotal = 256 << 20

// Errors passed to a connection's close callback, besides the socket's own.
var (
	// ErrPeerClosed means the other end closed or reset the connection.
	ErrPeerClosed = errors.New("poller: peer closed the connection")
	// ErrBacklog means the connection stopped reading and its queue reached MaxPending.
	ErrBacklog = errors.New("poller: connection is not reading; write queue full")
	// ErrBudget means a write would have queued more than MaxPendingTotal across the held
	// connections: the connection is closed, and its client comes back later.
	ErrBudget = errors.New("poller: the write queues of the held connections are full")
	// ErrClosed is returned by writes to a closed connection, and passed to the callbacks of
	// connections still held when the Poller closes.
	ErrClosed = errors.New("poller: closed")
	// ErrUnsupported means this platform or this kind of connection cannot be held.
	ErrUnsupported = errors.New("poller: not supported for this connection")
)
