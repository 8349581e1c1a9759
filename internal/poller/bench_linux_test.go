//go:build linux

package poller_test

import (
	"io"
	"net"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkWrite writes one small event to a held connection whose peer reads it before the
// next: every write is taken whole by the socket, the path of nearly every write to a held
// stream.
func BenchmarkWrite(b *testing.B) {
	p := openPoller(b)
	s, cl := pair(b)
	c, _ := hold(b, p, s)
	msg := []byte("event: status\ndata: {\"order\":\"o-1\",\"status\":\"confirmed\"}\n\n")
	got := make([]byte, len(msg))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(cl, got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDrainInput sends a byte to a held connection and waits for the poller's loop to
// drain it (the socket has nothing left to read): a read event, as a client that sends after its
// request causes.
func BenchmarkDrainInput(b *testing.B) {
	p := openPoller(b)
	s, cl := pair(b)
	fd := socketFD(b, s)
	hold(b, p, s)
	one := []byte{'x'}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cl.Write(one); err != nil {
			b.Fatal(err)
		}
		for {
			n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			runtime.Gosched()
		}
	}
}

// socketFD returns nc's descriptor, which stays nc's while nc is open.
func socketFD(tb testing.TB, nc net.Conn) int {
	tb.Helper()
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var fd int
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		tb.Fatal(err)
	}
	return fd
}
