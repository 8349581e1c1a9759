package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one child process the checker started. Only these are ever signalled, by PID.
type proc struct {
	cmd      *exec.Cmd
	name     string
	done     chan struct{} // closed when the process has exited
	expected atomic.Bool   // the checker ended it (a fault, or the end of the run)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (after SIGCONT, so a stopped process dies at once) and waits for the exit.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	p.expected.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends sig and waits up to d for the exit, then kills.
func (p *proc) stop(sig syscall.Signal, d time.Duration) error {
	if p.exited() {
		return nil
	}
	p.expected.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		p.kill()
		return fmt.Errorf("pid %d did not stop within %s; killed", p.pid(), d)
	}
}

// procs is the registry of every child alive, so that every exit path ends them all.
type procs struct {
	mu  sync.Mutex
	all map[*proc]struct{}
	// unexpected is told of every child that exited without the checker ending it.
	unexpected func(p *proc, state string)

	spawnOnce sync.Once
	spawn     chan spawnReq
	quit      chan struct{}
	quitOnce  sync.Once
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

// spawner starts every child from one goroutine locked to its OS thread for the whole run. The
// kernel sends a child its parent-death signal when the thread that forked it ends, not the
// process (go.dev/issue/27505); from this thread, that is when the checker is done, or dies.
func (r *procs) spawner() {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine, after the run
	for {
		select {
		case req := <-r.spawn:
			req.err <- req.cmd.Start()
		case <-r.quit:
			return
		}
	}
}

func (r *procs) start(name string, cmd *exec.Cmd) (*proc, error) {
	r.spawnOnce.Do(func() {
		r.spawn, r.quit = make(chan spawnReq), make(chan struct{})
		go r.spawner()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Should the checker itself be killed, its children go with it.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	req := spawnReq{cmd: cmd, err: make(chan error, 1)}
	r.spawn <- req
	if err := <-req.err; err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, name: name, done: make(chan struct{})}
	r.mu.Lock()
	if r.all == nil {
		r.all = map[*proc]struct{}{}
	}
	r.all[p] = struct{}{}
	r.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		r.mu.Lock()
		delete(r.all, p)
		r.mu.Unlock()
		close(p.done)
		if !p.expected.Load() && r.unexpected != nil {
			r.unexpected(p, cmd.ProcessState.String())
		}
	}()
	return p, nil
}

// killAll ends every child still running.
func (r *procs) killAll() {
	r.mu.Lock()
	ps := make([]*proc, 0, len(r.all))
	for p := range r.all {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	for _, p := range ps {
		p.kill()
	}
	if r.quit != nil {
		r.quitOnce.Do(func() { close(r.quit) })
	}
}

// node is one `ordercast serve` child. It keeps its port across restarts.
type node struct {
	idx  int
	port int
	url  string
	mu   sync.Mutex
	p    *proc
}

func (n *node) proc() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

// endpoint is the node's URL now (a restart may give it another).
func (n *node) endpoint() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.url
}

// goroutineNode is the node that holds its streams on a goroutine each (--hold-streams=false),
// the way every node serves HTTP/2, TLS and platforms without epoll, where the others hold
// theirs on the epoll poller: both holders are under the faults, judged by one judge. A world
// of one node (SQLite) has only the poller.
const goroutineNode = 1

// nodeConfig is what every node of a world is started with.
type nodeConfig struct {
	exe, db, secret, dir string
	heartbeat            time.Duration
}

// startNode starts (or restarts, with the same port) node n and returns once it is ready.
func (w *world) startNode(ctx context.Context, n *node) error {
	addr := "127.0.0.1:0"
	if n.port != 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", n.port)
	}
	// Limits off and tracking public: the checker is a few addresses opening thousands of streams
	// and sending every write (nginx's and the writers' connections all come from 127.0.0.1), so
	// that a refused request is a finding (wrongly_refused), never a limit. Short heartbeats let
	// watchers notice a dead peer quickly; a short stream write timeout lets a node drop a
	// vanished watcher whose connection backed up (see streamRcvBuf) while the checker holds it.
	// No metrics listener of its own, whatever ORDERCAST_METRICS_ADDR the checker's environment
	// (a node's) says: that address would be one port for every node, and all but the first
	// would fail. ORDERCAST_PPROF, for the same reason, profiles the first node only. Every
	// order shows its courier's positions (--location-privacy-radius 0): the run's three
	// couriers each carry dozens of customers' orders without a drop-off, which the privacy rule
	// would keep off every map, and the check judges what streams show under faults; which of a
	// batched courier's orders see a position is the tracker's tests' to judge.
	args := []string{"serve", "--addr", addr, "--metrics-addr=", "--db", w.nc.db, "--drain", "0s",
		"--shutdown-timeout", "5s", "--log-level", "warn", "--heartbeat", w.nc.heartbeat.String(),
		"--public-tracking", "--max-streams", "0", "--max-streams-per-client", "0", "--write-rate", "0", "--location-rate", "0", "--location-privacy-radius", "0",
		"--max-conns-per-peer", "0", "--stream-open-rate", "0", "--stream-lifetime", "0", "--stream-write-timeout", streamWriteTimeout.String()}
	if n.idx > 0 {
		args = append(args, "--pprof=")
	}
	if n.idx == goroutineNode {
		args = append(args, "--hold-streams=false")
	}
	cmd := exec.Command(w.nc.exe, args...)
	cmd.Env = append(os.Environ(), "ORDERCAST_SECRET="+w.nc.secret) // not on the command line, where ps shows it
	logf, err := os.OpenFile(filepath.Join(w.nc.dir, fmt.Sprintf("node%d.log", n.idx)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("node log: %w", err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p, err := w.procs.start(fmt.Sprintf("node %d", n.idx), cmd)
	if err != nil {
		return fmt.Errorf("start node %d: %w", n.idx, err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "serving on "); ok {
				select {
				case urlc <- strings.TrimSpace(u):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	var u string
	select {
	case u = <-urlc:
	case <-p.done:
		return fmt.Errorf("node %d exited before serving (see %s/node%d.log)", n.idx, w.nc.dir, n.idx)
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("node %d did not listen within 30s", n.idx)
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
	n.mu.Lock()
	n.p, n.url = p, u
	if n.port == 0 {
		_, ps, _ := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
		fmt.Sscan(ps, &n.port)
	}
	n.mu.Unlock()
	return waitReady(ctx, u, 30*time.Second)
}

// streamWriteTimeout is the nodes' --stream-write-timeout.
const streamWriteTimeout = 2 * time.Second

// ServerCounts is what the nodes' /metrics say of the paths a slow watcher takes on the server,
// summed over the nodes of a phase, each read before the checker kills it and at the end (a node
// that dies by itself takes its counts with it).
type ServerCounts struct {
	// WriteTimeouts counts the streams a node closed because a write missed its deadline.
	WriteTimeouts int64 `json:"write_timeouts"`
	// CaughtUp counts the times a stream's mailbox overflowed (or it saw a gap) and it was
	// caught up from the store.
	CaughtUp int64 `json:"caught_up"`
}

// readServerCounts reads the ServerCounts of the node at base.
func readServerCounts(ctx context.Context, base string) (ServerCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var c ServerCounts
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return c, err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return c, fmt.Errorf("read %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("read %s/metrics: HTTP %d", base, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		sample, value, _ := strings.Cut(sc.Text(), " ")
		var to *int64
		switch sample {
		case `ordercast_streams_closed_total{reason="write_timeout"}`:
			to = &c.WriteTimeouts
		case "ordercast_watchers_caught_up_total":
			to = &c.CaughtUp
		default:
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return c, fmt.Errorf("read %s/metrics: %s: %w", base, sample, err)
		}
		*to = int64(v)
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("read %s/metrics: %w", base, err)
	}
	return c, nil
}

// waitReady polls base/readyz until it answers 200, for at most d.
func waitReady(ctx context.Context, base string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(rctx, "GET", base+"/readyz", nil)
		resp, err := apiClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			err = fmt.Errorf("readyz: HTTP %d", resp.StatusCode)
		}
		cancel()
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(25 * time.Millisecond) // polling readiness with a deadline
	}
	return fmt.Errorf("%s not ready within %s: %w", base, d, errors.Join(last, errors.New("timeout")))
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
