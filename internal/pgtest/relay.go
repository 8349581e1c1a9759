package pgtest

import (
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Relay forwards TCP to a test database. It can cut every connection and refuse new ones, which
// is how a network partition looks to a client; or freeze, forwarding nothing and closing
// nothing, which is how a partition without resets looks (a dead host, a dropped route): the
// client's reads wait for as long as it lets them. HoldAnswers freezes one way only: what the
// client sends reaches the database, and runs, but the client hears nothing back, as when a
// connection is lost just after the client sent a commit.
type Relay struct {
	ln     net.Listener
	target string
	url    string

	mu      sync.Mutex
	refuse  bool
	frozen  bool
	held    bool       // answers only: what the database sends is held
	thawed  *sync.Cond // on mu: frozen or held ended, or the relay stopped
	conns   map[net.Conn]bool
	refused atomic.Int64 // connections closed at once while cut
	wg      sync.WaitGroup
	stopped bool
}

// NewRelay starts a relay to the server of dbURL, closed when the test ends. Its URL names the
// same database through the relay.
func NewRelay(t testing.TB, dbURL string) *Relay {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, target: u.Host, conns: map[net.Conn]bool{}}
	u.Host = ln.Addr().String()
	r.url = u.String()
	r.thawed = sync.NewCond(&r.mu)
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

// URL is the database's URL through the relay.
func (r *Relay) URL() string { return r.url }

// Refused is how many connections the relay closed at once, cut (see Cut).
func (r *Relay) Refused() int64 { return r.refused.Load() }

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.refuse || r.stopped {
			r.mu.Unlock()
			_ = c.Close()
			r.refused.Add(1)
			continue
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			r.mu.Unlock()
			_ = c.Close()
			continue
		}
		r.conns[c], r.conns[up] = true, true
		r.wg.Add(2)
		r.mu.Unlock()
		go r.pipe(up, c, false)
		go r.pipe(c, up, true)
	}
}

// pipe forwards src to dst until either ends, holding what it reads while the relay is frozen,
// or while it holds answers when src is the database (answers).
func (r *Relay) pipe(dst, src net.Conn, answers bool) {
	defer r.wg.Done()
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		r.mu.Lock()
		for (r.frozen || answers && r.held) && !r.stopped {
			r.thawed.Wait() // what was read is held back, not lost
		}
		r.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every forwarded connection and refuses new ones until Resume.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = true
	for c := range r.conns {
		_ = c.Close()
		delete(r.conns, c)
	}
}

// Resume accepts connections again after Cut.
func (r *Relay) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = false
}

// Freeze stops forwarding on every connection, new ones included, without closing any, until
// Thaw: what arrives meanwhile is held and then forwarded.
func (r *Relay) Freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frozen = true
}

// HoldAnswers stops forwarding what the database sends, on every connection, until Thaw, while
// what clients send still reaches it.
func (r *Relay) HoldAnswers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = true
}

// Thaw forwards again what Freeze or HoldAnswers held, and all that follows.
func (r *Relay) Thaw() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frozen, r.held = false, false
	r.thawed.Broadcast()
}

func (r *Relay) close() {
	r.mu.Lock()
	r.stopped = true
	r.thawed.Broadcast()
	r.mu.Unlock()
	r.Cut()
	err := r.ln.Close()
	r.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		panic(err)
	}
}
