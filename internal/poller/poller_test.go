//go:build linux

package poller_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ordercast/ordercast/internal/poller"
	"github.com/ordercast/ordercast/internal/testutil"
)

func openPoller(t testing.TB) *poller.Poller {
	t.Helper()
	p := poller.New()
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close poller: %v", err)
		}
	})
	return p
}

// pair returns both ends of a loopback TCP connection.
func pair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// hold holds the server end and returns the channel its close reason arrives on.
func hold(t testing.TB, p *poller.Poller, nc net.Conn) (*poller.Conn, chan error) {
	t.Helper()
	closed := make(chan error, 1)
	c, err := p.Hold(nc, func(err error) { closed <- err })
	if err != nil {
		t.Fatal(err)
	}
	return c, closed
}

func waitClosed(t *testing.T, closed chan error) error {
	t.Helper()
	select {
	case err := <-closed:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed within 10s")
		return nil
	}
}

func TestWriteReachesPeer(t *testing.T) {
	p := openPoller(t)
	s, cl := pair(t)
	c, _ := hold(t, p, s)
	for _, msg := range []string{"id: 1\n\n", "id: 2\n\n"} {
		if err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		cl.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(cl, got); err != nil || string(got) != msg {
			t.Fatalf("peer read %q, %v; want %q", got, err, msg)
		}
	}
}

func TestPeerClosingIsNoticed(t *testing.T) {
	p := openPoller(t)
	s, cl := pair(t)
	_, closed := hold(t, p, s)
	cl.Close()
	if err := waitClosed(t, closed); !errors.Is(err, poller.ErrPeerClosed) {
		t.Fatalf("close reason %v, want ErrPeerClosed", err)
	}
	if p.Len() != 0 {
		t.Fatalf("Len() = %d after the peer left, want 0", p.Len())
	}
}

func TestInputIsDrainedAndIgnored(t *testing.T) {
	p := openPoller(t)
	s, cl := pair(t)
	c, closed := hold(t, p, s)
	if _, err := cl.Write([]byte("GET /pipelined HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Still held and writable after the input.
	if err := c.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(cl, got); err != nil || string(got) != "ok" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	select {
	case err := <-closed:
		t.Fatalf("closed by input: %v", err)
	default:
	}
}

// TestInputOfManyConnectionsIsDrained: input longer than one read, from several connections at
// once, is read to the end (the loop reads every connection's into one buffer), and each
// connection stays held and writable.
func TestInputOfManyConnectionsIsDrained(t *testing.T) {
	p := openPoller(t)
	input := bytes.Repeat([]byte("GET /pipelined HTTP/1.1\r\n\r\n"), 200) // 5,400 bytes
	type held struct {
		c      *poller.Conn
		cl     net.Conn
		fd     int
		closed chan error
	}
	var hs []held
	for range 3 {
		s, cl := pair(t)
		fd := socketFD(t, s)
		c, closed := hold(t, p, s)
		hs = append(hs, held{c, cl, fd, closed})
	}
	for _, h := range hs {
		if _, err := h.cl.Write(input); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range hs {
		for deadline := time.Now().Add(10 * time.Second); ; {
			n, err := unix.IoctlGetInt(h.fd, unix.SIOCINQ)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection %d: %d bytes of input still unread after 10s", i, n)
			}
			time.Sleep(time.Millisecond)
		}
		if err := h.c.Write([]byte("ok")); err != nil {
			t.Fatalf("connection %d: write after its input: %v", i, err)
		}
		got := make([]byte, 2)
		h.cl.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(h.cl, got); err != nil || string(got) != "ok" {
			t.Fatalf("connection %d: peer read %q, %v", i, got, err)
		}
		select {
		case err := <-h.closed:
			t.Fatalf("connection %d closed by its input: %v", i, err)
		default:
		}
	}
}

// TestSlowReaderGetsQueuedBytesInOrder fills the socket of a peer that is not reading, then
// lets it read, and checks every byte arrives once and in order. The one buffer written is
// changed after each Write, as a caller reusing it does: what was queued must not change with it.
func TestSlowReaderGetsQueuedBytesInOrder(t *testing.T) {
	p := openPoller(t)
	p.MaxPending = 64 << 20 // no backlog limit in this test
	s, cl := pair(t)
	c, _ := hold(t, p, s)
	var want bytes.Buffer
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for i := range 64 {                                     // 4 MiB: far more than socket buffers
		chunk[0] = byte('A' + i%26)
		want.Write(chunk)
		if err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if !c.Stalled(time.Now().Add(time.Hour), time.Minute) {
		t.Fatal("a peer that has not read 4 MiB does not count as stalled")
	}
	got := make([]byte, want.Len())
	cl.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(cl, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("bytes arrived out of order or corrupted")
	}
	if c.Stalled(time.Now().Add(time.Hour), time.Minute) {
		t.Fatal("stalled after the peer read everything")
	}
}

func TestBacklogLimitClosesStuckConnection(t *testing.T) {
	p := openPoller(t)
	p.MaxPending = 1024
	s, _ := pair(t)
	c, closed := hold(t, p, s)
	chunk := make([]byte, 64<<10)
	var err error
	for i := 0; i < 1000 && err == nil; i++ { // bounded: socket buffers are a few MiB at most
		err = c.Write(chunk)
	}
	if !errors.Is(err, poller.ErrBacklog) {
		t.Fatalf("write error %v, want ErrBacklog", err)
	}
	if got := waitClosed(t, closed); !errors.Is(got, poller.ErrBacklog) {
		t.Fatalf("close reason %v, want ErrBacklog", got)
	}
	if err := c.Write([]byte("x")); !errors.Is(err, poller.ErrClosed) {
		t.Fatalf("write after close: %v, want ErrClosed", err)
	}
}

// TestQueuesAcrossConnectionsAreBounded: a large write queued for one client that does not read
// yet is taken, but one that would pass MaxPendingTotal with it is refused, its connection
// closed with ErrBudget: clients that read a stream's opening a byte at a time cannot hold the
// node's memory between them. Once the first client reads its queue, the room is there again.
func TestQueuesAcrossConnectionsAreBounded(t *testing.T) {
	p := openPoller(t)
	const big = 32 << 20 // far past a loopback socket's buffers: most of it is queued
	p.MaxPendingTotal = big + big/4
	write := func() (net.Conn, chan error, error) {
		s, peer := pair(t)
		c, closed := hold(t, p, s)
		return peer, closed, c.Write(make([]byte, big))
	}
	first, _, err := write()
	if err != nil {
		t.Fatalf("the first large write: %v", err)
	}
	if _, closed, err := write(); !errors.Is(err, poller.ErrBudget) {
		t.Fatalf("a second large write with the first still queued: %v, want ErrBudget", err)
	} else if got := waitClosed(t, closed); !errors.Is(got, poller.ErrBudget) {
		t.Fatalf("close reason %v, want ErrBudget", got)
	}
	if err := first.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first, make([]byte, big)); err != nil {
		t.Fatalf("the first client reading its write: %v", err)
	}
	testutil.WaitFor(t, "the queues to be empty", func() bool { return p.Pending() == 0 })
	if _, _, err := write(); err != nil {
		t.Fatalf("a large write once the queues emptied: %v", err)
	}
}

// TestAQueueTakenMostlyLetsItsMemoryGo: the budget counts what a queue holds in memory, which a
// partly written queue keeps whole; a client that took most of a large write and reads the end
// slowly lets the rest go: its queue holds at most a quarter of the write once that little is
// left (the array is made anew when a quarter of it is still queued).
func TestAQueueTakenMostlyLetsItsMemoryGo(t *testing.T) {
	p := openPoller(t)
	const big, left = 128 << 20, 24 << 20 // left: more than the sockets' buffers take
	s, peer := pair(t)
	c, _ := hold(t, p, s)
	if err := c.Write(make([]byte, big)); err != nil {
		t.Fatal(err)
	}
	if queued := p.Pending(); queued < big/2 {
		t.Fatalf("%d bytes queued of a %d-byte write to a client that does not read", queued, big)
	}
	if err := peer.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, make([]byte, big-left)); err != nil {
		t.Fatal(err)
	}
	// The end, read slowly: the queue is written on as the socket makes room, and each write
	// that leaves little of it queued lets the rest go. A few MiB make room for several writes
	// (a socket says it is writable again once a third of its buffer is free).
	chunk := make([]byte, 64<<10)
	for read := 0; read < 4<<20 && p.Pending() > big/4; read += len(chunk) {
		if _, err := io.ReadFull(peer, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Pending(); got > big/4 {
		t.Errorf("a queue with less than %d of a %d-byte write left to write holds %d", left, big, got)
	}
}

// TestOneLargeWriteIsTakenWhole: a single write far larger than MaxPending and than the socket's
// buffers, to a client that reads it at its pace, is queued and delivered whole, and so is a
// small write behind it: a stream's opening or catch-up is one write, and the bound is for a
// client that stopped reading, whose queue keeps growing behind it.
func TestOneLargeWriteIsTakenWhole(t *testing.T) {
	p := openPoller(t)
	p.MaxPending = 1024
	s, peer := pair(t)
	c, _ := hold(t, p, s)
	big := make([]byte, 16<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := c.Write(big); err != nil {
		t.Fatalf("one large write: %v", err)
	}
	tail := []byte("the next event")
	if err := c.Write(tail); err != nil {
		t.Fatalf("a small write behind the large one: %v", err)
	}
	if err := peer.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(big)+len(tail))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("reading the large write: %v", err)
	}
	if !bytes.Equal(got, append(big, tail...)) {
		t.Fatal("the writes arrived out of order or corrupted")
	}
}

// TestLargeWriteBehindAShortQueue: a catch-up larger than MaxPending, written while the tail of
// an earlier event is still queued (the socket's buffer full for a moment, the client reading at
// its pace), is taken whole too.
func TestLargeWriteBehindAShortQueue(t *testing.T) {
	p := openPoller(t)
	s, _ := pair(t)
	c, _ := hold(t, p, s)
	small := make([]byte, 512)
	for i := 0; !c.Stalled(time.Now().Add(time.Hour), time.Minute); i++ { // until a write leaves bytes queued
		if i == 100000 {
			t.Fatal("the socket took 50 MB without queueing")
		}
		if err := c.Write(small); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Write(make([]byte, 4*poller.DefaultMaxPending)); err != nil {
		t.Fatalf("a catch-up behind a short queue: %v", err)
	}
}

func TestCloseClosesHeldConnections(t *testing.T) {
	p := poller.New()
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	s, cl := pair(t)
	_, closed := hold(t, p, s)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitClosed(t, closed); !errors.Is(err, poller.ErrClosed) {
		t.Fatalf("close reason %v, want ErrClosed", err)
	}
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := cl.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read %v, want EOF", err)
	}
	s2, _ := pair(t)
	if _, err := p.Hold(s2, nil); !errors.Is(err, poller.ErrClosed) {
		t.Fatalf("Hold after Close: %v, want ErrClosed", err)
	}
}

// TestHoldingCostsNoGoroutines holds many connections and checks the goroutine count stays put:
// the point of the package.
func TestHoldingCostsNoGoroutines(t *testing.T) {
	p := openPoller(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 300
	var clients []net.Conn
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	before := runtime.NumGoroutine()
	for range n {
		cl, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Hold(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := runtime.NumGoroutine(); got > before+5 {
		t.Fatalf("%d goroutines holding %d connections, started with %d", got, n, before)
	}
	if p.Len() != n {
		t.Fatalf("Len() = %d, want %d", p.Len(), n)
	}
}

// TestWriteCloseDeliversEverything queues more than the socket takes, then writes the last bytes
// with a close, and checks the peer reads every byte and then the end of the stream.
func TestWriteCloseDeliversEverything(t *testing.T) {
	p := openPoller(t)
	p.MaxPending = 64 << 20
	s, cl := pair(t)
	c, closed := hold(t, p, s)
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 8 {
		if err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	done := errors.New("done")
	if err := c.WriteClose([]byte("end"), done); err != nil {
		t.Fatal(err)
	}
	if err := c.Write([]byte("late")); !errors.Is(err, poller.ErrClosed) {
		t.Fatalf("write after WriteClose: %v, want ErrClosed", err)
	}
	cl.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(cl)
	if err != nil || len(got) != 8<<20+3 || string(got[len(got)-3:]) != "end" {
		t.Fatalf("peer read %d bytes, %v; want %d ending in \"end\", then EOF", len(got), err, 8<<20+3)
	}
	if err := waitClosed(t, closed); err != done {
		t.Fatalf("close reason %v, want the one given", err)
	}
}

// TestWriteCloseClaimsTheClose: last bytes the socket takes at once close the connection before
// WriteClose returns, with the reason given, so a peer that hangs up on reading them cannot
// close it first as gone.
func TestWriteCloseClaimsTheClose(t *testing.T) {
	p := openPoller(t)
	s, cl := pair(t)
	c, closed := hold(t, p, s)
	done := errors.New("done")
	if err := c.WriteClose([]byte("end"), done); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != done {
			t.Fatalf("close reason %v, want the one given", err)
		}
	default:
		t.Fatal("WriteClose returned before the connection closed")
	}
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(cl); err != nil || string(got) != "end" {
		t.Fatalf("peer read %q, %v; want \"end\" then EOF", got, err)
	}
}

// TestHoldRacingCloseReportsOnce: Hold registers a connection, then adds it to epoll. Whatever
// happens in between, its caller learns of the end once: either Hold fails and the close
// callback never runs, or Hold returns the connection and the callback runs (or will). Before,
// a Close in between ran the callback and Hold failed too, and the stream engine finished the
// stream twice.
func TestHoldRacingCloseReportsOnce(t *testing.T) {
	tests := []struct {
		name  string
		fail  error // the epoll add fails by itself
		close bool  // the poller closes while Hold adds
	}{
		{name: "closed meanwhile", close: true},
		{name: "add fails", fail: errors.New("add fails")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := poller.New()
			if err := p.Open(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			s, _ := pair(t)
			gc := testutil.Gate(s, tt.fail)
			callbacks := make(chan error, 2)
			type result struct {
				c   *poller.Conn
				err error
			}
			held := make(chan result, 1)
			go func() {
				c, err := p.Hold(gc, func(err error) { callbacks <- err })
				held <- result{c, err}
			}()
			<-gc.Entered
			if tt.close {
				if err := p.Close(); err != nil { // closes the connection Hold has registered
					t.Fatal(err)
				}
			}
			close(gc.Release)
			r := <-held
			if !tt.close {
				if err := p.Close(); err != nil { // Hold failed: nothing of it to close
					t.Fatal(err)
				}
			}
			// Close has returned, so the callback has run if it ever will.
			close(callbacks)
			var got []error
			for err := range callbacks {
				got = append(got, err)
			}
			switch {
			case r.err != nil && len(got) > 0:
				t.Fatalf("Hold failed (%v) and the close callback ran (%v): the end is reported twice", r.err, got)
			case r.err == nil && len(got) != 1:
				t.Fatalf("Hold held the connection and the close callback ran %d times (%v), want once", len(got), got)
			case tt.close && (r.err != nil || !errors.Is(got[0], poller.ErrClosed)):
				t.Fatalf("Hold: %v, callback %v; want the connection, closed by Close", r.err, got)
			case tt.fail != nil && !errors.Is(r.err, tt.fail):
				t.Fatalf("Hold: %v, want %v", r.err, tt.fail)
			}
			if r.c != nil {
				if err := r.c.Write([]byte("x")); !errors.Is(err, poller.ErrClosed) {
					t.Fatalf("write to the closed connection: %v, want ErrClosed", err)
				}
			}
			if p.Len() != 0 {
				t.Fatalf("Len() = %d, want 0", p.Len())
			}
		})
	}
}

// TestLoopFailureClosesHeldConnections: when epoll_wait fails for good (a bad epfd), nothing more
// can be watched, so OnFail is told, once, and every held connection is closed, its callback told
// why, as Close does; Close then still releases the poller's descriptors, and reports the failure
// only to an owner that had no OnFail to hear it (one told already would take a clean shutdown
// for a failed one).
func TestLoopFailureClosesHeldConnections(t *testing.T) {
	for _, told := range []bool{true, false} {
		t.Run(fmt.Sprintf("OnFail=%v", told), func(t *testing.T) {
			p := poller.New()
			failed := make(chan error, 2)
			if told {
				p.OnFail = func(err error) { failed <- err }
			}
			if err := p.Open(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() }) // a second Close does nothing
			s1, cl1 := pair(t)
			s2, cl2 := pair(t)
			_, closed1 := hold(t, p, s1)
			_, closed2 := hold(t, p, s2)
			if err := poller.BreakEpoll(p); err != nil {
				t.Fatal(err)
			}
			// Wakes the loop from its wait on the old instance; its next wait fails.
			if _, err := cl1.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			for i, closed := range []chan error{closed1, closed2} {
				if err := waitClosed(t, closed); err == nil || errors.Is(err, poller.ErrPeerClosed) {
					t.Errorf("connection %d closed with %v, want the loop's failure", i+1, err)
				}
			}
			for i, cl := range []net.Conn{cl1, cl2} {
				cl.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := cl.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("peer %d read %v, want EOF", i+1, err)
				}
			}
			if p.Len() != 0 {
				t.Errorf("Len() = %d after the loop failed, want 0", p.Len())
			}
			s3, _ := pair(t)
			if _, err := p.Hold(s3, nil); !errors.Is(err, poller.ErrClosed) {
				t.Errorf("Hold after the loop failed: %v, want ErrClosed", err)
			}
			if err := p.Close(); told != (err == nil) {
				t.Errorf("Close after the loop failed returned %v; want the failure only when OnFail was not there to be told", err)
			}
			close(failed) // the loop has ended: OnFail has run if it ever will
			var errs []error
			for err := range failed {
				errs = append(errs, err)
			}
			if told && (len(errs) != 1 || errs[0] == nil) {
				t.Errorf("OnFail called with %v, want once with the failure", errs)
			}
		})
	}
}

// TestCloseReleasesEverythingWhenTheWakeFails: Close cannot wake the loop (its eventfd takes no
// write) while the loop waits. It still closes the held connections, ends the loop, closes the
// epoll instance and the eventfd, and reports the failure. Before, it returned at the failed
// wake: both descriptors leaked and the loop waited on for good.
func TestCloseReleasesEverythingWhenTheWakeFails(t *testing.T) {
	p := poller.New()
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	s, _ := pair(t)
	_, closed := hold(t, p, s)
	if err := poller.BreakWake(p); err != nil {
		t.Fatal(err)
	}
	epfd, wakefd := poller.Descriptors(p)
	err := p.Close()
	if !errors.Is(err, unix.EBADF) {
		t.Errorf("Close: %v, want the failed wake (EBADF)", err)
	}
	if err := waitClosed(t, closed); !errors.Is(err, poller.ErrClosed) {
		t.Errorf("close reason %v, want ErrClosed", err)
	}
	select {
	case <-poller.LoopDone(p):
	default:
		t.Error("Close returned with the loop still running")
	}
	for name, fd := range map[string]int{"epoll fd": epfd, "eventfd": wakefd} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
			t.Errorf("%s %d after Close: %v, want EBADF (closed)", name, fd, err)
		}
	}
}
