//go:build !linux

package poller

import (
	"net"
	"time"
)

// Supported reports whether connections can be held on this platform: only Linux's epoll is
// used, and elsewhere callers keep a goroutine per connection.
const Supported = false

// Poller is unavailable on this platform; Open fails with ErrUnsupported.
type Poller struct {
	MaxPending      int
	MaxPendingTotal int64
	OnFail          func(error)
}

// Conn is unavailable on this platform.
type Conn struct{}

// New returns a Poller whose Open fails on this platform.
func New() *Poller { return &Poller{} }

// Open fails with ErrUnsupported.
func (p *Poller) Open() error { return ErrUnsupported }

// Close does nothing.
func (p *Poller) Close() error { return nil }

// BreakEpoll fails with ErrUnsupported.
func BreakEpoll(*Poller) error { return ErrUnsupported }

// Pending returns 0.
func (p *Poller) Pending() int64 { return 0 }

// Len returns 0.
func (p *Poller) Len() int { return 0 }

// Hold fails with ErrUnsupported.
func (p *Poller) Hold(net.Conn, func(error)) (*Conn, error) { return nil, ErrUnsupported }

// Write fails with ErrUnsupported.
func (c *Conn) Write([]byte) error { return ErrUnsupported }

// Stalled returns false.
func (c *Conn) Stalled(time.Time, time.Duration) bool { return false }

// Close does nothing.
func (c *Conn) Close(error) {}

// WriteClose fails with ErrUnsupported.
func (c *Conn) WriteClose([]byte, error) error { return ErrUnsupported }

// RemoteAddr returns nil.
func (c *Conn) RemoteAddr() net.Addr { return nil }
