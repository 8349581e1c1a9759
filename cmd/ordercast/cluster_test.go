package main_test

// The cluster tests run real `ordercast serve` processes sharing one PostgreSQL database, with
// watchers spread over the nodes, and check that every watcher sees every event exactly once, in
// order: through a plain cluster, when a node is killed, when a node's LISTEN connection is
// terminated, and through a real nginx.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/nginxconf"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/testutil"
)

// path is the forward path every test order walks; six events per order.
var path = []ordercast.Status{
	ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady,
	ordercast.StatusOutForDelivery, ordercast.StatusDelivered,
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds ./cmd/ordercast once for all the tests of this package.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "ordercast-cluster-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "ordercast")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out.Bytes())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// node is one running `ordercast serve` process.
type node struct {
	url    string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	stderr *testutil.Buffer
}

var servingLine = regexp.MustCompile(`ordercast is serving on (https?://\S+)`)

// startNode runs `ordercast serve` on a free loopback port against db and waits until it is ready.
// env adds ORDERCAST_* variables, overriding the defaults below.
func startNode(t *testing.T, db string, env ...string) *node {
	t.Helper()
	n, urls := launchNode(t, db, env...)
	n.awaitServing(t, urls)
	return n
}

// launchNode starts `ordercast serve` against db; awaitServing then waits for it to serve.
func launchNode(t *testing.T, db string, env ...string) (*node, chan string) {
	t.Helper()
	return launchNodeUnder(t, nil, db, env...)
}

// launchNodeUnder is launchNode with the node run by wrap, a command that runs its first argument
// with the rest (a shell that lowers a limit first); nil runs it as it is.
func launchNodeUnder(t *testing.T, wrap []string, db string, env ...string) (*node, chan string) {
	t.Helper()
	args := []string{binary(t), "serve", "--addr", "127.0.0.1:0", "--drain", "0s", "--shutdown-timeout", "5s", "--log-level", "info"}
	args = append(slices.Clone(wrap), args...)
	cmd := exec.Command(args[0], args[1:]...)
	// --db through the environment, as a deployment would pass a secret. Watching is public and
	// the write and stream limits are off: these tests are about the cluster, not about auth.
	cmd.Env = append(os.Environ(), "ORDERCAST_DB="+db, "ORDERCAST_SECRET="+testSecret,
		"ORDERCAST_PUBLIC_TRACKING=true", "ORDERCAST_WRITE_RATE=0", "ORDERCAST_MAX_STREAMS_PER_CLIENT=0")
	cmd.Env = append(cmd.Env, env...) // exec uses the last value of a repeated key
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, done: make(chan struct{}), stderr: &testutil.Buffer{}}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ordercast: %v", err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		_ = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("node %s (pid %d) log:\n%s", n.url, cmd.Process.Pid, n.stderr.String())
		}
	})
	return n, urls
}

func (n *node) awaitServing(t *testing.T, urls chan string) {
	t.Helper()
	n.awaitURL(t, urls)
	waitReady(t, n.url)
}

// awaitURL waits for the node's serving line and sets n.url from it. Signals are handled from
// then on.
func (n *node) awaitURL(t *testing.T, urls chan string) {
	t.Helper()
	select {
	case n.url = <-urls:
	case <-n.done:
		t.Fatalf("ordercast exited before serving:\n%s", n.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("ordercast did not start:\n%s", n.stderr.String())
	}
}

// kill ends the node with SIGKILL: no drain, no goodbye.
func (n *node) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-n.done
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became ready (last: %v)", base, err)
		}
		time.Sleep(20 * time.Millisecond) // polling readiness with a deadline
	}
}

// cluster starts n nodes on a fresh database.
func cluster(t *testing.T, n int) (db string, nodes []*node) {
	t.Helper()
	db = pgtest.NewDatabase(t)
	nodes = make([]*node, n)
	var wg sync.WaitGroup
	for i := range nodes {
		// Started at once: their migrations race, and the advisory lock must sort it out.
		wg.Go(func() { nodes[i] = startNode(t, db) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return db, nodes
}

func createOrder(t *testing.T, base, id string) {
	t.Helper()
	c := &client.Client{BaseURL: base, Token: adminToken()}
	if res, err := c.CreateOrder(t.Context(), client.CreateOrderRequest{ID: id}); err != nil || !res.Created {
		t.Fatalf("create %s on %s: created %v, %v", id, base, res.Created, err)
	}
}

// setStatus changes an order's status; it returns an error rather than failing the test so that
// a writer goroutine can call it.
func setStatus(ctx context.Context, base, id string, st ordercast.Status) error {
	c := &client.Client{BaseURL: base, Token: adminToken()}
	_, err := c.SetStatus(ctx, id, client.SetStatusRequest{Status: st})
	return err
}

func mustSetStatus(t *testing.T, base, id string, st ordercast.Status) {
	t.Helper()
	if err := setStatus(t.Context(), base, id, st); err != nil {
		t.Fatal(err)
	}
}

// follower reads one order's client.Watch on its own goroutine until the watch ends, keeping
// every event it returns, so that the tests can wait on it while changes are still being made.
type follower struct {
	id string
	w  *client.Watch

	mu      sync.Mutex
	events  []ordercast.Event
	err     error         // why the watch ended: io.EOF after the terminal event
	changed chan struct{} // signalled on every event
	done    chan struct{}
}

// follow watches order id on urls[0], failing over to the others in turn whenever a stream
// breaks, as a client behind a load balancer lands on another node. It stops when the test ends.
func follow(t *testing.T, id string, urls ...string) *follower {
	t.Helper()
	c := &client.Client{BaseURL: urls[0], Token: adminToken()}
	f := &follower{id: id, changed: make(chan struct{}, 1), done: make(chan struct{})}
	f.w = c.Watch(context.Background(), id, client.WatchOptions{
		FailoverURLs: urls[1:],
		MinRetry:     50 * time.Millisecond, // the server's retry, shortened
		MaxRetry:     50 * time.Millisecond,
		MaxFailures:  50,
	})
	go f.run()
	t.Cleanup(func() { f.w.Close(); <-f.done })
	return f
}

func (f *follower) run() {
	defer close(f.done)
	for {
		ev, err := f.w.Next(context.Background())
		f.mu.Lock()
		if err != nil {
			f.err = err
		} else {
			f.events = append(f.events, ev)
		}
		f.mu.Unlock()
		if err != nil {
			return
		}
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}
}

func (f *follower) received() []ordercast.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

// waitFor waits until the follower has received at least n events.
func (f *follower) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for len(f.received()) < n {
		select {
		case <-f.changed:
		case <-f.done:
			if len(f.received()) < n {
				t.Fatalf("%s: watch ended after %d events with %v, want %d events", f.id, len(f.received()), f.err, n)
			}
		case <-deadline:
			t.Fatalf("%s: timed out with %d events, want %d", f.id, len(f.received()), n)
		}
	}
}

// checkComplete waits for the terminal event and checks that the follower saw the order's whole
// history, seq 1 to the end, each once and in order: Watch skips a replayed seq, so a server
// that sent one shows in Duplicates, and a hole shows in the seqs.
func (f *follower) checkComplete(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: stream did not reach the terminal event; got %v", f.id, seqs(f.received()))
	}
	if f.err != io.EOF {
		t.Errorf("%s: watch ended with %v, want io.EOF after the terminal event", f.id, f.err)
	}
	if n := f.w.Duplicates(); n != 0 {
		t.Errorf("%s: the servers sent %d events the watch already had", f.id, n)
	}
	got := f.received()
	want := append([]ordercast.Status{ordercast.StatusPlaced}, path...)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Seq == int64(i+1) && got[i].Status == want[i] && got[i].OrderID == f.id
	}
	if !ok {
		t.Errorf("%s: watch saw %v, want seqs 1..%d with statuses %v, each once, in order", f.id, seqs(got), len(want), want)
	}
}

func seqs(evs []ordercast.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d:%s", ev.Seq, ev.Status))
	}
	return out
}

func urlsOf(nodes []*node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.url)
	}
	return out
}

// TestCluster_EveryWatcherSeesEveryEvent spreads watchers of each order over three nodes and sends
// each change to a random node: every watcher must see every event once, in order.
func TestCluster_EveryWatcherSeesEveryEvent(t *testing.T) {
	t.Parallel()
	_, nodes := cluster(t, 3)
	runWorkload(t, urlsOf(nodes), urlsOf(nodes), 8, 2)
}

// runWorkload creates orders through random write URLs, opens perNode watchers of each order on
// every watch URL, walks every order to delivered through random write URLs, and checks what
// each watcher saw.
func runWorkload(t *testing.T, watchURLs, writeURLs []string, orders, perURL int) {
	t.Helper()
	var ws []*follower
	for i := range orders {
		id := fmt.Sprintf("ord-%d", i)
		createOrder(t, writeURLs[rand.N(len(writeURLs))], id)
		for _, u := range watchURLs {
			for range perURL {
				ws = append(ws, follow(t, id, u))
			}
		}
	}
	for _, w := range ws {
		w.waitFor(t, 1) // every stream is open and live before the changes start
	}
	for _, st := range path {
		for i := range orders {
			mustSetStatus(t, writeURLs[rand.N(len(writeURLs))], fmt.Sprintf("ord-%d", i), st)
		}
	}
	for _, w := range ws {
		w.checkComplete(t)
	}
}

// TestCluster_KillNode kills one node with SIGKILL while its watchers wait for changes: they must
// resume on another node and miss nothing.
func TestCluster_KillNode(t *testing.T) {
	t.Parallel()
	_, nodes := cluster(t, 3)
	const orders = 6
	var ws, onVictim []*follower
	for i := range orders {
		id := fmt.Sprintf("ord-%d", i)
		createOrder(t, nodes[1].url, id)
		for j, n := range nodes {
			// Each watcher resumes on the nodes after its own, in turn.
			w := follow(t, id, n.url, nodes[(j+1)%3].url, nodes[(j+2)%3].url)
			ws = append(ws, w)
			if j == 0 {
				onVictim = append(onVictim, w)
			}
		}
	}
	for _, w := range ws {
		w.waitFor(t, 1)
	}
	live := []string{nodes[1].url, nodes[2].url}
	for k, st := range path {
		if k == 2 {
			nodes[0].kill(t)
		}
		for i := range orders {
			mustSetStatus(t, live[rand.N(len(live))], fmt.Sprintf("ord-%d", i), st)
		}
	}
	for _, w := range ws {
		w.checkComplete(t)
	}
	for _, w := range onVictim {
		if w.w.Reconnects() == 0 {
			t.Errorf("%s: watcher on the killed node never reconnected", w.id)
		}
	}
}

// TestCluster_ListenerTerminated terminates one node's LISTEN connection while changes keep coming
// through another node: the node's watchers must still get every event, in order, on the same
// stream (no reconnect), and the node must be listening again afterwards.
func TestCluster_ListenerTerminated(t *testing.T) {
	t.Parallel()
	db, nodes := cluster(t, 2)
	victim, writer := nodes[0], nodes[1]
	conn := pgtest.Connect(t, db)
	listenPID := func() int {
		t.Helper()
		var pid int
		err := conn.QueryRow(t.Context(), `
			SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE $1`,
			fmt.Sprintf("ordercast-listen %d %%", victim.cmd.Process.Pid)).Scan(&pid)
		if err != nil {
			t.Fatalf("find the LISTEN connection of pid %d: %v", victim.cmd.Process.Pid, err)
		}
		return pid
	}
	before := listenPID()

	const orders = 10
	var ws []*follower
	for i := range orders {
		id := fmt.Sprintf("ord-%d", i)
		createOrder(t, writer.url, id)
		ws = append(ws, follow(t, id, victim.url))
	}
	for _, w := range ws {
		w.waitFor(t, 1)
	}

	// Changes keep coming from another node while the connection is terminated mid-way.
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for _, st := range path {
			for i := range orders {
				if err := setStatus(t.Context(), writer.url, fmt.Sprintf("ord-%d", i), st); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	ws[0].waitFor(t, 2)
	var terminated bool
	if err := conn.QueryRow(t.Context(), `SELECT pg_terminate_backend($1)`, before).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", before, terminated, err)
	}
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	for _, w := range ws {
		w.checkComplete(t)
		if n := w.w.Reconnects(); n != 0 {
			t.Errorf("%s: watcher reconnected %d times, want 0 (the stream must stay open)", w.id, n)
		}
	}
	waitReady(t, victim.url)
	if after := listenPID(); after == before {
		t.Errorf("LISTEN connection is still backend %d after pg_terminate_backend", before)
	}
	// The lost connection shows on the victim's /metrics; the writer, which created every order
	// and heard its own commits, judged each batch from memory and never guessed wrong.
	if n := metric(t, victim.url, `ordercast_pg_listener_reconnects_total`); n != 1 {
		t.Errorf("victim: ordercast_pg_listener_reconnects_total = %v, want 1", n)
	}
	// The database runs on this machine's clock: the writer reckons it so, within a round trip.
	if d := metric(t, writer.url, `ordercast_pg_clock_offset_seconds`); d < -0.5 || d > 0.5 {
		t.Errorf("writer: ordercast_pg_clock_offset_seconds = %v, want about 0 (one clock)", d)
	}
	batches := orders * (1 + len(path))
	oneTrip := metric(t, writer.url, `ordercast_pg_batches_total{path="one_round_trip"}`)
	locking := metric(t, writer.url, `ordercast_pg_batches_total{path="locking"}`)
	if oneTrip < 1 || oneTrip+locking > float64(batches) || locking > 0 {
		t.Errorf("writer: %v batches in one round trip and %v locking, want 1 to %d and 0", oneTrip, locking, batches)
	}
	// Every batch took one path, and the writes are the test's: the group-commit counters agree.
	if n := metric(t, writer.url, `ordercast_write_batches_total`); n != oneTrip+locking {
		t.Errorf("writer: ordercast_write_batches_total = %v, want the paths' %v", n, oneTrip+locking)
	}
	if n := metric(t, writer.url, `ordercast_batched_writes_total`); n != float64(batches) {
		t.Errorf("writer: ordercast_batched_writes_total = %v, want the %d writes made", n, batches)
	}
	if n := metric(t, writer.url, `ordercast_pg_wrong_guesses_total`); n != 0 {
		t.Errorf("writer: ordercast_pg_wrong_guesses_total = %v, want 0", n)
	}
	// The pool: its bound, a connection taken for each batch at least, and all of them back by
	// now but the listener's own, which is not the pool's.
	if n := metric(t, writer.url, `ordercast_pg_pool_max_connections`); n != 16 {
		t.Errorf("writer: ordercast_pg_pool_max_connections = %v, want the default 16", n)
	}
	if n := metric(t, writer.url, `ordercast_pg_pool_acquires_total`); n < oneTrip+locking {
		t.Errorf("writer: ordercast_pg_pool_acquires_total = %v, want at least the %v batches", n, oneTrip+locking)
	}
	if n := metric(t, writer.url, `ordercast_pg_pool_connections{state="idle"}`); n < 1 {
		t.Errorf("writer: ordercast_pg_pool_connections{state=\"idle\"} = %v, want the connections its batches used back", n)
	}
}

// metric reads one sample from the /metrics of the node at base, named as the text format
// writes it (name{labels}); absent is a failure.
func metric(t *testing.T, base, sample string) float64 {
	t.Helper()
	return metricFrom(t, http.DefaultClient, base, sample)
}

// scrapeText is base's /metrics as text.
func scrapeText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", base, err)
	}
	return string(b)
}

// metricFrom is metric through client (one that trusts a node's own TLS certificate).
func metricFrom(t *testing.T, client *http.Client, base, sample string) float64 {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", base, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", base, sc.Text(), err)
			}
			return v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", base, err)
	}
	t.Fatalf("%s/metrics has no sample %s", base, sample)
	return 0
}

// TestCluster_Nginx runs the workload through a real nginx in front of three nodes, configured
// with the example of docs/deploy.md.
func TestCluster_Nginx(t *testing.T) {
	t.Parallel()
	nginx := needNginx(t)
	_, nodes := cluster(t, 3)
	front := startNginx(t, nginx, urlsOf(nodes)).URL
	runWorkload(t, []string{front}, []string{front}, 6, 6)

	// The request id the node logs is nginx's (32 hex digits; a node's own has 16), or the
	// client's own when it sent one.
	for _, tt := range []struct{ sent, want string }{{"", `^[0-9a-f]{32}$`}, {"checkout-42", `^checkout-42$`}} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", front+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.sent != "" {
			req.Header.Set("X-Request-ID", tt.sent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-ID"); !regexp.MustCompile(tt.want).MatchString(got) {
			t.Errorf("X-Request-ID sent %q: the node answered %q, want %s", tt.sent, got, tt.want)
		}
	}

	// A WebSocket goes through the same proxy: nginx passes the upgrade on.
	createOrder(t, front, "ws-1")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front, "http")+api.OrderPath("ws-1")+"/ws", nil)
	if err != nil {
		t.Fatalf("WebSocket through nginx: %v (answer %+v)", err, resp)
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("WebSocket through nginx: read: %v", err)
	}
	if !strings.Contains(string(msg), `"status":"placed"`) {
		t.Fatalf("WebSocket through nginx: first message %s, want the order's first event", msg)
	}

	// A courier's positions all go to one node (the config hashes their path), so that its
	// budget is one node's; different couriers go to different nodes.
	const accepted = "ordercast_locations_accepted_total"
	reached := map[int]bool{}
	for c := range 12 {
		before := make([]float64, len(nodes))
		for i, n := range nodes {
			before[i] = metric(t, n.url, accepted)
		}
		for range 3 {
			adminCall(t, "POST", front+api.LocationPath(fmt.Sprintf("c-%d", c)), `{"lat":52.5,"lng":13.4}`)
		}
		var took []string
		for i, n := range nodes {
			if d := metric(t, n.url, accepted) - before[i]; d != 0 {
				took = append(took, fmt.Sprintf("node %d: %v", i, d))
				if d == 3 {
					reached[i] = true
				}
			}
		}
		if len(took) != 1 || !strings.HasSuffix(took[0], ": 3") {
			t.Fatalf("courier c-%d's 3 positions through nginx went to %v, want all 3 to one node", c, took)
		}
	}
	if len(reached) < 2 {
		t.Errorf("12 couriers' positions all went to one node (%v): the hash spreads nothing", reached)
	}
}

// TestCluster_NginxLeavesAFrozenNode: a node that stops answering but keeps its connections (a
// process frozen, a VM paused, a host cut off) holds nothing behind the docs' nginx for longer
// than its proxy_read_timeout (75 s as written; 3 s here, with a heartbeat of 1 s): a GET that
// went to it is answered by another node, and a stream it held ends, so that a watcher with no
// idle timeout of its own (a browser's EventSource) reconnects through a node that answers and
// gets what it missed. With the timeout at an hour, as it was, such a watcher heard nothing for
// an hour and a GET waited as long.
func TestCluster_NginxLeavesAFrozenNode(t *testing.T) {
	t.Parallel()
	bin := needNginx(t)
	db := pgtest.NewDatabase(t)
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = startNode(t, db, "ORDERCAST_HEARTBEAT=1s")
	}
	ngx := startNginx(t, bin, urlsOf(nodes), func(conf string) (string, error) {
		const docs = "proxy_read_timeout 75s;"
		if !strings.Contains(conf, docs) {
			return "", fmt.Errorf("the docs' config has no %q", docs)
		}
		return strings.Replace(conf, docs, "proxy_read_timeout 3s;", 1), nil
	})
	front := ngx.URL
	createOrder(t, front, "fz-1")

	// Six watchers through nginx, which spreads them over the nodes (least_conn).
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := &client.Client{BaseURL: front}
	watches := make([]*client.Watch, 6)
	for i := range watches {
		watches[i] = c.Watch(ctx, "fz-1", client.WatchOptions{IdleTimeout: -1})
		if ev, err := watches[i].Next(ctx); err != nil || ev.Status != ordercast.StatusPlaced {
			t.Fatalf("watcher %d: %+v, %v; want the order placed", i, ev, err)
		}
	}
	frozen := 0
	for i, n := range nodes {
		if metric(t, n.url, "ordercast_streams_open") > metric(t, nodes[frozen].url, "ordercast_streams_open") {
			frozen = i
		}
	}
	if metric(t, nodes[frozen].url, "ordercast_streams_open") == 0 {
		t.Fatal("no node holds a watcher")
	}
	p := nodes[frozen].cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Signal(syscall.SIGCONT) }) // before the node is stopped
	live := nodes[(frozen+1)%len(nodes)].url

	hc := &http.Client{Timeout: 20 * time.Second}
	for i := range 6 {
		resp, err := hc.Get(front + api.OrderPath("fz-1"))
		if err != nil {
			t.Fatalf("GET %d through nginx with a node frozen: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d through nginx with a node frozen: %d, want 200 from another node", i, resp.StatusCode)
		}
	}
	// nginx gave up on the frozen node (on its streams, and on the GETs least_conn sent it once
	// they were cut): else the watchers below test nothing.
	if log, err := os.ReadFile(ngx.ErrorLog); err != nil || !strings.Contains(string(log), "upstream timed out") {
		t.Fatalf("nginx timed nothing out on the frozen node (error log: %v):\n%s", err, log)
	}
	if err := setStatus(ctx, live, "fz-1", ordercast.StatusConfirmed); err != nil {
		t.Fatal(err)
	}
	for i, w := range watches {
		if ev, err := w.Next(ctx); err != nil || ev.Status != ordercast.StatusConfirmed {
			t.Fatalf("watcher %d with node %d frozen: %+v, %v; want the change made on another node", i, frozen, ev, err)
		}
	}
}

// needNginx returns the nginx binary, or skips the test without one (fails it in CI).
func needNginx(t *testing.T) string {
	t.Helper()
	nginx := "/usr/sbin/nginx"
	if _, err := os.Stat(nginx); err != nil {
		msg := "nginx tests need " + nginx + " (apt-get install nginx; bash .ci/run does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return nginx
}

// startNginx runs nginx with the configuration of docs/deploy.md (internal/nginxconf swaps in the
// nodes and a loopback port, and edits makes its changes) and returns it.
func startNginx(t *testing.T, bin string, upstreams []string, edits ...func(string) (string, error)) *nginxconf.Nginx {
	t.Helper()
	dir := t.TempDir()
	n, err := nginxconf.Start(t.Context(), bin, upstreams, freePort(t), dir, edits...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			log, _ := os.ReadFile(n.ErrorLog)
			t.Logf("nginx output:\n%s\nerror log:\n%s", n.Output, log)
		}
	})
	return n
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestCluster_ATrackingTokenReadsItsOrderOnEveryNode: a tracking token names its order's creation
// (to the microsecond, as PostgreSQL keeps it); a customer's link made by one node reads the
// order on another, and one made again after the order ended, by the API, too.
func TestCluster_ATrackingTokenReadsItsOrderOnEveryNode(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	a := startNode(t, db, "ORDERCAST_PUBLIC_TRACKING=false")
	b := startNode(t, db, "ORDERCAST_PUBLIC_TRACKING=false")
	c := &client.Client{BaseURL: a.url, Token: adminToken()}
	res, err := c.CreateOrder(t.Context(), client.CreateOrderRequest{ID: "tt-1"})
	if err != nil || res.TrackingToken == "" {
		t.Fatalf("create: %+v, %v", res, err)
	}
	if _, err := c.SetStatus(t.Context(), "tt-1", client.SetStatusRequest{Status: ordercast.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	again, err := (&client.Client{BaseURL: b.url, Token: adminToken()}).TrackingToken(t.Context(), "tt-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{a, b} {
		for name, tok := range map[string]string{"the creation's": res.TrackingToken, "made again": again.TrackingToken} {
			if o, err := (&client.Client{BaseURL: n.url, Token: tok}).Order(t.Context(), "tt-1"); err != nil || o.Status != ordercast.StatusCancelled {
				t.Errorf("%s token on %s: %+v, %v; want the order", name, n.url, o, err)
			}
		}
	}
}
