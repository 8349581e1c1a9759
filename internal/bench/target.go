package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ordercast/ordercast/auth"
)

// target is the server side of a run: child serve processes the bench started (whose memory
// and CPU it reads from /proc), or a server at a URL (read from its /metrics).
type target struct {
	urls []string
	// metrics are the URLs of the servers' /metrics, one per url: the servers' own port, or
	// where --metrics-url says.
	metrics []string
	token   string // the actor token the bench's writes carry
	// secret signs the servers' tokens (hex, as ORDERCAST_SECRET): the couriers sign their own
	// with it. "" for a server at a URL, whose secret the bench does not know.
	secret string
	procs  []*exec.Cmd
	dir    string
	// postmaster is the pid of the servers' PostgreSQL, when the bench started them on one
	// whose processes it can read here (dbCPU); dbUnreadable says why the servers' CPU leaves
	// their database out, when it may.
	postmaster   int
	dbUnreadable string
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on Linux.
const clockTicks = 100

// startTarget starts nodes serve processes of exe on db (a fresh SQLite file in a temp dir
// when db is empty), each on its own loopback port, or uses url with token for its writes and
// metricsURL (when set) for its metrics.
func startTarget(ctx context.Context, exe, url, metricsURL, db string, nodes int, token string, hold bool, serveArgs []string, stderr io.Writer) (*target, error) {
	if url != "" {
		t := &target{token: token, dbUnreadable: "with --url the bench cannot see the servers' database: a PostgreSQL's processes are not in it, a SQLite database is (it runs in the server's process)"}
		for _, u := range strings.Split(url, ",") {
			t.urls = append(t.urls, strings.TrimSuffix(u, "/"))
			t.metrics = append(t.metrics, strings.TrimSuffix(u, "/")+"/metrics")
		}
		if metricsURL != "" {
			t.metrics = strings.Split(metricsURL, ",")
		}
		return t, nil
	}
	t := &target{}
	if db == "" {
		if nodes > 1 {
			return nil, errors.New("several nodes need a shared database: give --db postgres://…")
		}
		dir, err := os.MkdirTemp("", "ordercast-bench-")
		if err != nil {
			return nil, err
		}
		t.dir = dir
		db = filepath.Join(dir, "bench.db")
	}
	// A fresh secret per run: the nodes share it, and the bench signs its admin token with it.
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails on supported platforms
	t.secret = hex.EncodeToString(secret)
	a, err := auth.New([]byte(t.secret))
	if err != nil {
		return nil, err
	}
	if t.token, err = a.SignActor(auth.Actor{Role: auth.RoleSystem, Sub: "bench"}, 24*time.Hour); err != nil {
		return nil, err
	}
	if strings.HasPrefix(db, "postgres") {
		if t.postmaster, err = findPostmaster(ctx, db); err != nil {
			t.dbUnreadable = "PostgreSQL's processes could not be read here: " + err.Error()
		}
	}
	if nodes > 4 && strings.HasPrefix(db, "postgres") && !strings.Contains(db, "pool_max_conns") {
		// Each node's pool defaults to 16 connections plus its listener; PostgreSQL allows 100 by
		// default. Share about 80 among the nodes.
		sep := "?"
		if strings.Contains(db, "?") {
			sep = "&"
		}
		db += fmt.Sprintf("%spool_max_conns=%d", sep, max(2, 80/nodes-1))
	}
	for i := range nodes {
		args := serveArgs
		if i > 0 {
			// ORDERCAST_PPROF in the bench's environment profiles the first node; the others
			// would fail to listen on the same address.
			args = append(slices.Clip(serveArgs), "--pprof=")
		}
		u, cmd, err := startServe(ctx, exe, db, hex.EncodeToString(secret), hold, args, stderr)
		if err != nil {
			return nil, errors.Join(err, t.close())
		}
		t.urls = append(t.urls, u)
		t.metrics = append(t.metrics, u+"/metrics")
		t.procs = append(t.procs, cmd)
	}
	return t, nil
}

// startServe starts one `serve` child and returns its URL once it listens. Its limits are off
// (the bench is one client address opening thousands of streams and sending every write) and
// tracking is public (the watchers carry no tokens); writes need the bench's actor token. Its
// /metrics stay on its own port, where the bench reads them, whatever ORDERCAST_METRICS_ADDR
// the bench's environment (a node's) says: that address would be one port for every child.
func startServe(ctx context.Context, exe, db, secret string, hold bool, extra []string, stderr io.Writer) (string, *exec.Cmd, error) {
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr=", "--db", db, "--drain", "0s", "--log-level", "warn",
		"--public-tracking", "--max-streams", "0", "--max-streams-per-client", "0", "--max-conns-per-peer", "0", "--write-rate", "0",
		"--stream-open-rate", "0", "--stream-lifetime", "0", "--hold-streams=" + strconv.FormatBool(hold)}, extra...)
	// The secret goes in the environment, not on the command line, where ps shows it.
	return startChild(ctx, exe, args, []string{"ORDERCAST_SECRET=" + secret}, stderr)
}

// startChild starts exe with args and env added to the bench's environment, and returns its URL
// once it says "serving on URL" on its stdout.
func startChild(ctx context.Context, exe string, args, env []string, stderr io.Writer) (string, *exec.Cmd, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start server: %w", err)
	}
	urlc := make(chan string, 1)
	eof := make(chan struct{}) // closed when the child's stdout ends: it has exited
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "serving on "); ok {
				urlc <- strings.TrimSpace(u)
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case u := <-urlc:
		return u, cmd, nil
	case <-eof:
		// It said why on stderr, which is the bench's; don't wait out the 30 s for it.
		return "", nil, fmt.Errorf("server exited before it listened: %w", cmd.Wait())
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	cmd.Process.Kill()
	cmd.Wait()
	return "", nil, errors.New("server did not start listening within 30s")
}

// rss returns the resident memory of the server side, summed over nodes.
func (t *target) rss(ctx context.Context) (int64, error) {
	var sum int64
	if len(t.procs) == 0 {
		for _, u := range t.metrics {
			v, err := scrape(ctx, u, "process_resident_memory_bytes")
			if err != nil {
				return 0, err
			}
			sum += int64(v)
		}
		return sum, nil
	}
	for _, p := range t.procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Process.Pid))
		if err != nil {
			return 0, err
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
				}
				sum += kb << 10
			}
		}
	}
	return sum, nil
}

// cpu returns the CPU seconds (user and system) the server side has used, summed over nodes.
func (t *target) cpu(ctx context.Context) (float64, error) {
	var sum float64
	if len(t.procs) == 0 {
		for _, u := range t.metrics {
			v, err := scrape(ctx, u, "process_cpu_seconds_total")
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	}
	for _, p := range t.procs {
		st, err := readProcStat(p.Process.Pid)
		if err != nil {
			return 0, fmt.Errorf("server CPU: %w", err)
		}
		sum += st.cpu
	}
	return sum, nil
}

// cpuReading is the CPU time the servers, their database and the machine have used so far, and
// what the servers have allocated.
type cpuReading struct {
	server, db float64 // seconds
	machine    machineCPU
	machineOK  bool // false where the machine's CPU time cannot be read
	alloc      allocReading
	allocOK    bool // false where the servers do not say (the floor has no /metrics)
}

// allocReading is what the servers' Go runtimes have allocated so far, summed over nodes.
type allocReading struct {
	bytes, objects float64
}

// readCPU reads the CPU time of the servers, of their PostgreSQL when the bench reads it, and of
// the whole machine, and what the servers have allocated.
func (t *target) readCPU(ctx context.Context) (cpuReading, error) {
	var c cpuReading
	var err error
	if c.server, err = t.cpu(ctx); err != nil {
		return c, err
	}
	if c.db, err = t.dbCPU(); err != nil {
		return c, err
	}
	c.machine, c.machineOK = readMachineCPU()
	c.alloc, c.allocOK = t.allocated(ctx)
	return c, nil
}

// allocated reads, from each server's /metrics, what its Go runtime has allocated so far
// (go_memstats_alloc_bytes_total, go_memstats_mallocs_total): the heap the servers churn, which
// the garbage collector then pays for, counted the same on any machine. ok is false when a
// server does not say; the figure is a side one, and its absence fails nothing.
func (t *target) allocated(ctx context.Context) (a allocReading, ok bool) {
	if len(t.metrics) == 0 {
		return a, false
	}
	for _, u := range t.metrics {
		b, err1 := scrape(ctx, u, "go_memstats_alloc_bytes_total")
		n, err2 := scrape(ctx, u, "go_memstats_mallocs_total")
		if err1 != nil || err2 != nil {
			return a, false
		}
		a.bytes += b
		a.objects += n
	}
	return a, true
}

// dbCPU returns the CPU seconds the servers' PostgreSQL has used, when it has a postmaster.
func (t *target) dbCPU() (float64, error) {
	if t.postmaster == 0 {
		return 0, nil
	}
	return treeCPU(t.postmaster)
}

// scrape reads one unlabelled sample from a server's /metrics at url.
func scrape(ctx context.Context, url, name string) (float64, error) {
	var v float64
	found := false
	err := metricLines(ctx, url, func(line string) error {
		s, ok := strings.CutPrefix(line, name+" ")
		if !ok || found {
			return nil
		}
		found = true
		var err error
		v, err = strconv.ParseFloat(strings.TrimSpace(s), 64)
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("scrape %s: no %s", url, name)
	}
	return v, err
}

// scrapeHistogram reads a histogram without labels from a server's /metrics at url.
func scrapeHistogram(ctx context.Context, url, name string) (histogram, error) {
	h := histogram{}
	prefix := name + `_bucket{le="`
	err := metricLines(ctx, url, func(line string) error {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			return nil
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			return fmt.Errorf("scrape %s: bucket line %q", url, line)
		}
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses too
		n, err2 := strconv.ParseFloat(strings.TrimSpace(count), 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("scrape %s: bucket line %q: %w", url, line, err)
		}
		h[bound] = n
		return nil
	})
	if err == nil && len(h) == 0 {
		err = fmt.Errorf("scrape %s: no histogram %s", url, name)
	}
	return h, err
}

// metricLines calls f with each line of a server's /metrics at url, until f fails.
func metricLines(ctx context.Context, url string, f func(line string) error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape %s: %s (a server with --metrics-addr serves them there: give it with --metrics-url)", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if err := f(sc.Text()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	return nil
}

// deliveryLatency is the servers' ordercast_delivery_latency_seconds, summed over the nodes:
// the time from an event's commit to its bytes flushed to a stream, measured by the server.
func (t *target) deliveryLatency(ctx context.Context) (histogram, error) {
	sum := histogram{}
	for _, u := range t.metrics {
		h, err := scrapeHistogram(ctx, u, "ordercast_delivery_latency_seconds")
		if err != nil {
			return nil, err
		}
		for b, n := range h {
			sum[b] += n
		}
	}
	return sum, nil
}

// close stops the child servers (SIGTERM, then SIGKILL after 20 s) and removes the temp dir.
func (t *target) close() error {
	var errs []error
	for _, p := range t.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range t.procs {
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("server %d: %w", p.Process.Pid, err))
			}
		case <-time.After(20 * time.Second):
			p.Process.Kill()
			<-done
			errs = append(errs, fmt.Errorf("server %d did not stop in 20s; killed", p.Process.Pid))
		}
	}
	t.procs = nil
	if t.dir != "" {
		errs = append(errs, os.RemoveAll(t.dir))
	}
	return errors.Join(errs...)
}

// startFloor starts the plain push server of floor.go (`exe bench-floor`) as the run's target.
// Its CPU and memory are read from /proc as a serve child's are; it has no /metrics, so the
// report has no server-side figure for it, and writes carry no token.
func startFloor(ctx context.Context, exe string, stderr io.Writer) (*target, error) {
	u, cmd, err := startChild(ctx, exe, []string{"bench-floor"}, nil, stderr)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	return &target{urls: []string{u}, procs: []*exec.Cmd{cmd}}, nil
}
