package testutil

import (
	"net"
	"sync"
	"syscall"
)

// GatedConn is a TCP connection whose socket's first RawConn.Control call (a poller adding it to
// epoll, in poller.Hold) closes Entered, then waits until Release is closed, and then fails with
// Fail if it is set instead of running: a test makes something happen in that gap.
type GatedConn struct {
	*net.TCPConn
	Entered, Release chan struct{}
	Fail             error
	once             sync.Once
}

// Gate wraps nc, a *net.TCPConn, in a GatedConn that fails with fail (nil: goes on).
func Gate(nc net.Conn, fail error) *GatedConn {
	return &GatedConn{TCPConn: nc.(*net.TCPConn), Entered: make(chan struct{}), Release: make(chan struct{}), Fail: fail}
}

// SyscallConn hands out the socket's RawConn, gated.
func (c *GatedConn) SyscallConn() (syscall.RawConn, error) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return nil, err
	}
	return gatedRaw{RawConn: rc, c: c}, nil
}

type gatedRaw struct {
	syscall.RawConn
	c *GatedConn
}

func (r gatedRaw) Control(f func(fd uintptr)) error {
	first := false
	r.c.once.Do(func() { first = true })
	if first {
		close(r.c.Entered)
		<-r.c.Release
		if r.c.Fail != nil {
			return r.c.Fail
		}
	}
	return r.RawConn.Control(f)
}
