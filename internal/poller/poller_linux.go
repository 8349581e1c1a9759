//go:build linux

package poller

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Supported reports whether connections can be held on this platform.
const Supported = true

const (
	wakeID     = 0 // the epoll id of the eventfd that wakes the loop to stop
	watchRead  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	watchWrite = watchRead | unix.EPOLLOUT
)

// closeCheck bounds each wait of the loop, so that it sees Close even when the wake cannot be
// written: one wasted wakeup a second, against a loop (and its OS thread) stuck for good.
const closeCheck = time.Second

// Poller watches held connections with one epoll instance and one goroutine.
type Poller struct {
	// MaxPending bounds each connection's queue of unwritten bytes; set before Open.
	MaxPending int
	// MaxPendingTotal bounds, about, the bytes queued across all connections (0: no bound): a
	// write that would pass it closes its connection with ErrBudget. Set before Open.
	MaxPendingTotal int64
	// OnFail, if set before Open, is called once, on the poller's goroutine, if the loop fails
	// for good (see loop): Hold refuses from then on, and the held connections are closed with
	// the same error once it returns. Close then does not report that failure again.
	OnFail func(error)

	epfd, wakefd int
	done         chan struct{}
	// in reads the held connections' input for the loop goroutine, its only user (drainInput).
	in rawRead
	// pending is the bytes queued across the connections (Conn.account).
	pending atomic.Int64

	mu      sync.Mutex
	conns   map[uint64]*Conn
	nextID  uint64
	closed  bool  // no more connections are held: Close was called, or the loop failed
	closing bool  // Close was called
	err     error // why the loop failed, for Close to report
}

// Conn is one held connection. Its methods are safe for concurrent use.
type Conn struct {
	p       *Poller
	id      uint64
	nc      net.Conn
	raw     syscall.RawConn
	onClose func(error)

	mu      sync.Mutex
	pending []byte
	// front is how much of pending is the rest of the write that started the queue: MaxPending
	// bounds what is queued behind it.
	front int
	// alloc is the size of the array pending is a window of: what the queue holds in memory,
	// which a partly written queue keeps whole (flushLocked). counted is what of it
	// Poller.pending counts (account).
	alloc, counted int
	pendingSince   time.Time
	closed         bool
	closeAfter     error // set by WriteClose: close with it once pending is written
}

// New returns a Poller with the default limits; call Open before Hold.
func New() *Poller {
	return &Poller{MaxPending: DefaultMaxPending, MaxPendingTotal: DefaultMaxPendingTotal}
}

// Pending returns the bytes queued across the held connections.
func (p *Poller) Pending() int64 { return p.pending.Load() }

// Open creates the epoll instance and starts the goroutine that watches it.
func (p *Poller) Open() error {
	if p.MaxPending <= 0 {
		p.MaxPending = DefaultMaxPending
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("poller: epoll_create: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("poller: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return fmt.Errorf("poller: epoll_ctl: %w", err)
	}
	p.epfd, p.wakefd = epfd, wakefd
	p.conns = make(map[uint64]*Conn)
	p.nextID = wakeID
	p.done = make(chan struct{})
	p.in.do = p.in.read
	go p.loop()
	return nil
}

// Close closes every held connection (their callbacks get ErrClosed), stops the goroutine and
// releases the epoll instance and the eventfd, whatever fails on the way: it returns every
// failure joined, and the loop's own (see loop) when there was no OnFail to be told of it.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closing || p.done == nil {
		p.mu.Unlock()
		return nil
	}
	p.closing = true
	p.mu.Unlock()
	p.closeAll(ErrClosed)
	var errs []error
	var one [8]byte
	one[0] = 1 // eventfd counters are host-endian; any non-zero value wakes the loop
	if _, err := unix.Write(p.wakefd, one[:]); err != nil {
		// Not woken, the loop still sees closing once its wait times out (closeCheck).
		errs = append(errs, fmt.Errorf("poller: wake: %w", err))
	}
	// The descriptors close only once the loop has ended: closing the epoll fd under a wait does
	// not end the wait, and a wait started after would watch whatever took the fd's number.
	<-p.done
	if p.OnFail == nil { // told already, the owner would take a clean shutdown for a failed one
		p.mu.Lock()
		errs = append(errs, p.err)
		p.mu.Unlock()
	}
	if err := unix.Close(p.epfd); err != nil {
		errs = append(errs, fmt.Errorf("poller: close epoll: %w", err))
	}
	if err := unix.Close(p.wakefd); err != nil {
		errs = append(errs, fmt.Errorf("poller: close eventfd: %w", err))
	}
	return errors.Join(errs...)
}

// closeAll stops taking connections and closes every one held, their callbacks getting err.
func (p *Poller) closeAll(err error) {
	p.mu.Lock()
	p.closed = true
	conns := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close(err)
	}
}

// Len returns the number of connections held now.
func (p *Poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Hold takes over nc, which must be a socket (a *net.TCPConn or *net.UnixConn) that nobody else
// reads or writes any more. onClose is called once, from any goroutine, when the connection is
// closed, with the reason; never if Hold fails (a connection Close closes while Hold adds it is
// returned, closed, with its callback run). Deadlines set on nc are cleared: held connections
// have none.
func (p *Poller) Hold(nc net.Conn, onClose func(error)) (*Conn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, ErrUnsupported
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("poller: %w", err)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("poller: clear deadline: %w", err)
	}
	p.mu.Lock()
	if p.closed || p.done == nil {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.nextID++
	c := &Conn{p: p, id: p.nextID, nc: nc, raw: raw, onClose: onClose}
	p.conns[c.id] = c
	p.mu.Unlock()

	// Epoll reports a peer that left before this call as soon as the fd is added.
	if err := c.ctl(unix.EPOLL_CTL_ADD, watchRead); err != nil {
		// The caller learns of the end once: by the callback or by this error, never both.
		c.mu.Lock()
		if c.closed {
			// Close closed it meanwhile (which is why the add failed), and its callback has run or
			// is running: it is the caller's as a held connection that closed; writes get ErrClosed.
			c.mu.Unlock()
			return c, nil
		}
		c.closed = true // claimed: a Close from now on runs no callback
		c.mu.Unlock()
		p.mu.Lock()
		delete(p.conns, c.id)
		p.mu.Unlock()
		return nil, err
	}
	return c, nil
}

func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func getID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// loop dispatches epoll events until Close wakes it, or it finds Close called after a wait.
func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, int(closeCheck/time.Millisecond))
		p.mu.Lock()
		closing := p.closing
		p.mu.Unlock()
		if closing {
			return // Close has closed every connection; what the wait reported is moot
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Only a bad epfd makes epoll_wait fail: nothing more can be watched, so every held
			// connection ends now (its stream ends, its client resumes) rather than never.
			err = fmt.Errorf("poller: epoll_wait: %w", err)
			p.mu.Lock()
			p.err = err
			p.closed = true // no Hold from now on, before anyone is told
			p.mu.Unlock()
			if p.OnFail != nil {
				p.OnFail(err)
			}
			p.closeAll(err)
			return
		}
		for i := range events[:n] {
			id := getID(&events[i])
			if id == wakeID {
				return
			}
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				c.handle(events[i].Events)
			}
		}
	}
}

// handle reacts to the readiness epoll reported for c.
func (c *Conn) handle(events uint32) {
	if events&(unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 {
		c.Close(ErrPeerClosed)
		return
	}
	if events&unix.EPOLLIN != 0 {
		// A watcher has nothing more to say after its request; whatever it sends is drained and
		// dropped, and end of file means it left.
		if err := c.drainInput(); err != nil {
			c.Close(err)
			return
		}
	}
	if events&unix.EPOLLOUT != 0 {
		c.mu.Lock()
		err := c.flushLocked()
		c.mu.Unlock()
		if err != nil {
			c.Close(err)
		}
	}
}

// drainInput reads and drops what the peer sent; it runs on the loop goroutine alone.
func (c *Conn) drainInput() error {
	in := &c.p.in
	for range 64 { // bounded: a client flooding us must not starve the others
		if err := c.raw.Read(in.do); err != nil {
			return err
		}
		n, rerr := in.n, in.err
		switch {
		case errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EINTR):
			return nil
		case rerr != nil:
			return rerr
		case n == 0:
			return ErrPeerClosed
		}
	}
	return nil
}

// Write sends b now, as far as the socket takes it, and queues the rest to be sent when the
// socket is writable. It never blocks, and it keeps a copy of what it queues, never b itself: the
// caller may reuse b once Write returns. A write is taken whole, however large, unless what is
// queued behind the queue's first write has already passed MaxPending: a stream's opening or
// catch-up is one write that a client reading at its pace must get (the caller built it, so
// queueing it costs at most its size again, and a client that stops reading it is found by
// Stalled), while a queue that keeps growing behind its head is a client that stopped reading,
// and its connection is closed with ErrBacklog. A closed connection returns ErrClosed.
func (c *Conn) Write(b []byte) error {
	c.mu.Lock()
	if c.closed || c.closeAfter != nil {
		c.mu.Unlock()
		return ErrClosed
	}
	err := c.sendLocked(b)
	c.mu.Unlock()
	if err != nil {
		c.Close(err)
	}
	return err
}

// sendLocked writes b as far as the socket takes it and queues the rest behind what is queued
// already, with c.mu held; when what is queued behind the queue's first write has passed
// MaxPending it fails with ErrBacklog.
func (c *Conn) sendLocked(b []byte) error {
	if len(c.pending) > 0 {
		if len(c.pending)-c.front > c.p.MaxPending {
			return ErrBacklog
		}
		if !c.p.fits(len(b)) {
			return ErrBudget
		}
		was := cap(c.pending)
		c.pending = append(c.pending, b...) // keep order: the queue goes first
		if cap(c.pending) != was {          // moved to a new array, from pending's start: the old one is let go
			c.alloc = cap(c.pending)
		}
		c.account()
		return nil
	}
	n, err := c.write(b)
	if err != nil || n == len(b) {
		return err
	}
	if !c.p.fits(len(b) - n) {
		return ErrBudget
	}
	c.pending = append(c.pending[:0:0], b[n:]...)
	c.alloc = cap(c.pending)
	c.account()
	c.front = len(c.pending)
	c.pendingSince = time.Now()
	return c.ctl(unix.EPOLL_CTL_MOD, watchWrite)
}

// fits reports whether n more queued bytes keep the connections' queues within MaxPendingTotal.
// Connections queue concurrently, so the bound may be passed by what they queue at once.
func (p *Poller) fits(n int) bool {
	return p.MaxPendingTotal <= 0 || p.pending.Load()+int64(n) <= p.MaxPendingTotal
}

// account brings Poller.pending up to date with the memory c's queue holds, with c.mu held.
func (c *Conn) account() {
	if d := c.alloc - c.counted; d != 0 {
		c.p.pending.Add(int64(d))
		c.counted = c.alloc
	}
}

// rawRead is one read of a connection's input through syscall.RawConn.Read, whose callback
// escapes to the heap, and a closure made per read would take the buffer and the results with it:
// the callback (do, the method value of read) is made once, and its buffer and results live here.
type rawRead struct {
	buf [512]byte
	n   int
	err error
	do  func(fd uintptr) bool
}

func (r *rawRead) read(fd uintptr) bool {
	r.n, r.err = unix.Read(int(fd), r.buf[:])
	return true // never wait: epoll tells us when there is more
}

// rawWrite is one write attempt through syscall.RawConn.Write, for the same reason as rawRead: a
// closure per write cost three allocations (it, b, the results). They are pooled rather than
// kept per connection, so that a held connection, idle nearly always, holds none.
type rawWrite struct {
	b   []byte
	n   int
	err error
	do  func(fd uintptr) bool // the method value of write, made once per rawWrite
}

var rawWrites = sync.Pool{New: func() any {
	w := new(rawWrite)
	w.do = w.write
	return w
}}

func (w *rawWrite) write(fd uintptr) bool {
	w.n, w.err = unix.Write(int(fd), w.b)
	return true // never wait: epoll tells us when to try again
}

// write makes one non-blocking write attempt; a full socket is n < len(b) with no error.
func (c *Conn) write(b []byte) (int, error) {
	w := rawWrites.Get().(*rawWrite)
	w.b = b
	err := c.raw.Write(w.do)
	n, werr := w.n, w.err
	w.b, w.n, w.err = nil, 0, nil // the pool keeps no caller's buffer
	rawWrites.Put(w)
	if err != nil {
		return 0, err
	}
	if errors.Is(werr, unix.EAGAIN) || errors.Is(werr, unix.EINTR) {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}

// flushLocked writes what is queued; once the queue is empty it stops watching for writability.
func (c *Conn) flushLocked() error {
	if c.closed || len(c.pending) == 0 {
		return nil
	}
	n, err := c.write(c.pending)
	if err != nil {
		return err
	}
	if n > 0 {
		c.pendingSince = time.Now() // progress: the client is slow, not stuck
		c.front = max(0, c.front-n)
	}
	if n < len(c.pending) {
		c.pending = c.pending[n:]
		if len(c.pending) <= c.alloc/4 {
			// What is left moves to an array of its size, letting the rest go: a client that
			// took most of a large write and trickles the end would otherwise hold all of it,
			// counted as its few bytes.
			c.pending = append([]byte(nil), c.pending...)
			c.alloc = cap(c.pending)
			c.account()
		}
		return nil
	}
	c.pending, c.front, c.alloc = nil, 0, 0
	c.account()
	if c.closeAfter != nil {
		return c.closeAfter // all written: the caller closes
	}
	return c.ctl(unix.EPOLL_CTL_MOD, watchRead)
}

// Stalled reports whether bytes have waited in c's queue, without any progress, since before
// now-timeout: the client is not reading.
func (c *Conn) Stalled(now time.Time, timeout time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > 0 && now.Sub(c.pendingSince) > timeout
}

// WriteClose writes b, the last bytes of the connection, and closes c with err once they have
// reached the socket, as a Write followed by a close once the queue drains; but when b is written at once the close
// is claimed under the same lock, so a peer that hangs up on receiving b cannot close c first
// with ErrPeerClosed. A closed connection returns ErrClosed.
func (c *Conn) WriteClose(b []byte, err error) error {
	c.mu.Lock()
	if c.closed || c.closeAfter != nil {
		c.mu.Unlock()
		return ErrClosed
	}
	werr := c.sendLocked(b)
	switch {
	case werr != nil:
		c.mu.Unlock()
		c.Close(werr)
		return werr
	case len(c.pending) > 0:
		c.closeAfter = err // the loop closes once the queue is written
		c.mu.Unlock()
		return nil
	}
	c.closeLocked()
	c.mu.Unlock()
	c.release(err)
	return nil
}

// Close stops holding c and closes it; the close callback runs once, with err.
func (c *Conn) Close(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closeLocked()
	c.mu.Unlock()
	c.release(err)
}

// closeLocked claims the close of c, with c.mu held: whoever sets closed first closes.
func (c *Conn) closeLocked() {
	c.closed = true
	c.pending, c.front, c.alloc = nil, 0, 0
	c.account()
	// Out of the epoll set before the fd is closed, so a new socket reusing the number is never
	// mistaken for this one.
	_ = c.ctl(unix.EPOLL_CTL_DEL, 0) // fails only if the fd is already gone, which is the goal
}

// release forgets c, closes its socket and runs the close callback, once closeLocked has claimed it.
func (c *Conn) release(err error) {
	c.p.mu.Lock()
	delete(c.p.conns, c.id)
	c.p.mu.Unlock()
	_ = c.nc.Close() // the socket is done with either way; there is no one to tell of an error
	if c.onClose != nil {
		c.onClose(err)
	}
}

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

func (c *Conn) ctl(op int, events uint32) error {
	var cerr error
	err := c.raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: events}
		setID(&ev, c.id)
		cerr = unix.EpollCtl(c.p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return fmt.Errorf("poller: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("poller: epoll_ctl: %w", cerr)
	}
	return nil
}
