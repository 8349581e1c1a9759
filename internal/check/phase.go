package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/internal/nginxconf"
)

// world is what a phase runs against: the nodes, nginx in front, the database.
type world struct {
	nc    nodeConfig
	procs *procs
	nodes []*node
	ngx   *nginxconf.Nginx
	pg    *pgServer
}

// phase is one run against one store: its world, its watchers and writers, and their records.
type phase struct {
	world
	ctx      context.Context // the phase's: ends only with the whole check
	store    string          // "postgres" or "sqlite"
	cfg      PhaseConfig
	seed     int64
	token    string
	orders   int
	rate     float64
	led      *ledger
	watchers []*watcher
	// partyWatchers follow one restaurant's or courier's party stream each, for the whole run.
	partyWatchers []*partyWatcher
	rec           recovery
	out           io.Writer
	start         time.Time

	burst       atomic.Int32
	pgRestarts  atomic.Int64 // the first is an immediate shutdown, then they alternate
	received    atomic.Int64
	acked       atomic.Int64
	positions   atomic.Int64 // couriers' positions the watchers got
	ordersEnded atomic.Int64
	inFlight    sync.Map // endpoint URL -> *atomic.Int64: the writers' calls to it unanswered
	wg          sync.WaitGroup

	leakMu sync.Mutex
	leaked []net.Conn

	exitMu sync.Mutex
	exits  []string // processes that exited without the checker ending them

	serverMu sync.Mutex
	server   ServerCounts // the slow-consumer paths the nodes took, of the nodes read so far
}

// tally adds node n's ServerCounts to the phase's: before the checker kills it (its counters go
// with it) and at the end of the phase. A node that cannot be read is logged, not counted.
func (p *phase) tally(ctx context.Context, n *node) {
	c, err := readServerCounts(ctx, n.endpoint())
	if err != nil {
		p.logf("server counts of node %d not counted: %v", n.idx, err)
		return
	}
	p.serverMu.Lock()
	p.server.WriteTimeouts += c.WriteTimeouts
	p.server.CaughtUp += c.CaughtUp
	p.serverMu.Unlock()
}

func (p *phase) logf(format string, args ...any) {
	fmt.Fprintf(p.out, "[%s %6.1fs] %s\n", p.store, time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// endpoints returns where requests may go: every node, and nginx when it runs.
func (p *phase) endpoints() []string {
	eps := make([]string, 0, len(p.nodes)+1)
	for _, n := range p.nodes {
		eps = append(eps, n.endpoint())
	}
	if p.ngx != nil {
		eps = append(eps, p.ngx.URL)
	}
	return eps
}

func (p *phase) endpoint(r *mrand.Rand) string {
	ep, _ := p.pickEndpoint(r)
	return ep
}

// pickEndpoint picks a random endpoint, as endpoint does, and names the node behind it,
// numbered from 1; 0 for nginx, which may send a request to any.
func (p *phase) pickEndpoint(r *mrand.Rand) (string, int) {
	eps := p.endpoints()
	i := r.IntN(len(eps))
	if i < len(p.nodes) {
		return eps[i], p.nodes[i].idx + 1
	}
	return eps[i], 0
}

// leakHold is how long a vanished watcher's connection stays open, unread, before it is closed
// (as a NAT or a phone's radio would finally drop it). Bounded, so that a long run's vanished
// connections do not pile up to the open-files limit of the checker, the nodes or nginx.
const leakHold = 20 * time.Second

func (p *phase) leak(c net.Conn) {
	p.leakMu.Lock()
	p.leaked = append(p.leaked, c)
	p.leakMu.Unlock()
	time.AfterFunc(leakHold, func() { c.Close() })
}

// PhaseReport is what one phase found.
type PhaseReport struct {
	Store      string `json:"store"`
	Nodes      int    `json:"nodes"`
	Nginx      bool   `json:"nginx"`
	PostgreSQL string `json:"postgresql,omitempty"`
	Watchers   int    `json:"watchers"`
	// PartyWatchers follow the streams of Restaurants restaurants, CourierWatchers those of
	// Couriers couriers.
	PartyWatchers   int            `json:"party_watchers"`
	Restaurants     int            `json:"restaurants"`
	CourierWatchers int            `json:"courier_watchers"`
	Couriers        int            `json:"couriers"`
	Duration        string         `json:"duration"`
	Judgement       Judgement      `json:"judgement"`
	ReadBack        int            `json:"writes_settled_by_reading_history"`
	WriteErrors     map[string]int `json:"write_errors"`
	Faults          map[string]int `json:"faults"`
	// Server is what the nodes say of the slow-consumer paths the run took them down.
	Server ServerCounts `json:"server"`
	// KilledInFlight is how many writes the node kills caught in flight to the node killed.
	KilledInFlight int64 `json:"writes_in_flight_at_kills"`
	// Skipped counts the faults that found nothing to act on, by kind; they are not in Faults.
	Skipped  map[string]int           `json:"skipped_faults,omitempty"`
	Recovery map[string]RecoveryStats `json:"recovery"`
	FaultLog []*fault                 `json:"fault_log"`
	SelfTest []SelfTestResult         `json:"self_test,omitempty"`
	// NotInjected lists fault kinds that were on but never happened (the run was too short).
	NotInjected []string `json:"not_injected,omitempty"`
	records     Records
}

// RecoveryStats is the recovery time of one fault kind: from its start until every watcher had
// every event committed before it was lifted.
type RecoveryStats struct {
	Count       int     `json:"count"`
	MedianMS    float64 `json:"median_ms"`
	MaxMS       float64 `json:"max_ms"`
	Unrecovered int     `json:"unrecovered"`
}

// runPhase sets up the world for pc, runs watchers, writers and faults for pc.Duration, lets it
// settle, and judges the records.
func runPhase(ctx context.Context, cfg Config, pc PhaseConfig, out io.Writer) (rep *PhaseReport, err error) {
	p := &phase{store: pc.Store, cfg: pc, seed: cfg.Seed, out: out, start: time.Now(),
		orders: max(1, pc.Watchers/max(1, pc.PerOrder)), rate: pc.Rate}
	p.ctx = ctx
	p.procs = &procs{unexpected: func(pr *proc, state string) {
		// A node or PostgreSQL that dies without being told to is a finding in itself. A node is
		// started again on its port so the run goes on.
		p.exitMu.Lock()
		p.exits = append(p.exits, fmt.Sprintf("%s (pid %d) exited unexpectedly: %s", pr.name, pr.pid(), state))
		p.exitMu.Unlock()
		p.logf("%s (pid %d) exited unexpectedly: %s", pr.name, pr.pid(), state)
		for _, n := range p.nodes {
			if n.proc() == pr && ctx.Err() == nil {
				go func() {
					if err := p.startNode(ctx, n); err != nil {
						p.logf("restart node %d after its unexpected exit: %v", n.idx, err)
					}
				}()
			}
		}
	}}
	p.burst.Store(1)
	dir, err := os.MkdirTemp("", "ordercast-check-")
	if err != nil {
		return nil, err
	}
	// Every exit path, Ctrl-C included, ends every process this phase started.
	defer func() {
		p.leakMu.Lock()
		for _, c := range p.leaked {
			c.Close()
		}
		p.leakMu.Unlock()
		if p.ngx != nil {
			err = errors.Join(err, p.ngx.Stop())
		}
		for _, n := range p.nodes {
			if pr := n.proc(); pr != nil {
				_ = pr.stop(15, 10*time.Second) // SIGTERM
			}
		}
		if p.pg != nil {
			err = errors.Join(err, p.pg.close())
		}
		p.procs.killAll()
		if err == nil || !cfg.KeepOnFailure {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintf(out, "logs kept in %s\n", dir)
		}
	}()

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	a, err := auth.New([]byte(hex.EncodeToString(secret)))
	if err != nil {
		return nil, err
	}
	if p.token, err = a.SignActor(auth.Actor{Role: auth.RoleSystem, Sub: "check"}, 24*time.Hour); err != nil {
		return nil, err
	}
	p.nc = nodeConfig{exe: cfg.Exe, secret: hex.EncodeToString(secret), dir: dir, heartbeat: time.Second}
	var runID [3]byte
	_, _ = rand.Read(runID[:])
	p.led = newLedger("c" + hex.EncodeToString(runID[:]))
	// The restaurants: each watched with its own restaurant token, as its board is.
	for i := range max(1, (p.orders+ordersPerRestaurant-1)/ordersPerRestaurant) {
		rest := &partyState{party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: fmt.Sprintf("%s-r%d", p.led.runID, i)}}
		if rest.token, err = a.SignActor(auth.Actor{Role: auth.RoleRestaurant, Sub: rest.party.ID}, 24*time.Hour); err != nil {
			return nil, err
		}
		p.led.parties = append(p.led.parties, rest)
	}
	// The couriers, each watched with its own courier token, as its app is.
	for n := range couriersPerRun {
		c := &partyState{party: ordercast.Party{Kind: ordercast.PartyCourier, ID: p.courierID(n)}}
		if c.token, err = a.SignActor(auth.Actor{Role: auth.RoleCourier, Sub: c.party.ID}, 24*time.Hour); err != nil {
			return nil, err
		}
		p.led.couriers = append(p.led.couriers, c)
	}

	rep = &PhaseReport{Store: pc.Store, Nodes: pc.Nodes, Watchers: pc.Watchers, PartyWatchers: pc.PartyWatchers, Restaurants: len(p.led.parties),
		CourierWatchers: pc.CourierWatchers, Couriers: len(p.led.couriers), Faults: map[string]int{}, Skipped: map[string]int{}, Recovery: map[string]RecoveryStats{}}
	kinds := slices.Clone(pc.Faults)
	if pc.Store == "postgres" {
		if cfg.DB == "" {
			p.pg, err = startOwnPG(ctx, p.procs)
		} else {
			p.pg, err = useExternalPG(ctx, cfg.DB, cfg.AllowPGRestart, p.procs)
		}
		if err != nil {
			return nil, err
		}
		rep.PostgreSQL = p.pg.describe()
		p.logf("PostgreSQL: %s", rep.PostgreSQL)
		if !p.pg.restartable {
			kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == FPGRestart })
		}
		if p.nc.db, err = p.pg.createDB(ctx); err != nil {
			return nil, err
		}
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == FSQLiteKill })
	} else {
		p.nc.db = filepath.Join(dir, "check.db")
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == FNodeKill || k == FListen || k == FPGRestart })
	}

	// The first node applies the migrations; the others start together after it.
	p.nodes = make([]*node, pc.Nodes)
	for i := range p.nodes {
		p.nodes[i] = &node{idx: i}
	}
	if err := p.startNode(ctx, p.nodes[0]); err != nil {
		return nil, err
	}
	var g errGroup
	for _, n := range p.nodes[1:] {
		g.Go(func() error { return p.startNode(ctx, n) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if pc.Nginx {
		bin, err := nginxconf.Find()
		if err != nil {
			return nil, fmt.Errorf("%w (or run with --nginx=false)", err)
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		ngdir := filepath.Join(dir, "nginx")
		if err := os.Mkdir(ngdir, 0o755); err != nil {
			return nil, err
		}
		var ups []string
		for _, n := range p.nodes {
			ups = append(ups, n.url)
		}
		if p.ngx, err = nginxconf.Start(ctx, bin, ups, port, ngdir); err != nil {
			return nil, err
		}
		rep.Nginx = true
	}
	holders := ""
	if len(p.nodes) > goroutineNode {
		holders = fmt.Sprintf(" (node %d holds its streams on goroutines, the others on the epoll poller)", goroutineNode)
	}
	p.logf("%d node(s) up%s%s; %d watchers on %d orders in progress, %d party watchers on %d restaurants and %d on %d couriers, %.0f changes/s, faults: %v",
		len(p.nodes), map[bool]string{true: " behind nginx " + p.ngxURL(), false: ""}[p.ngx != nil], holders, pc.Watchers, p.orders,
		pc.PartyWatchers, len(p.led.parties), pc.CourierWatchers, len(p.led.couriers), pc.Rate, kinds)

	r := mrand.New(mrand.NewPCG(uint64(cfg.Seed), 1))
	for range p.orders {
		if err := p.createOrder(ctx, r); err != nil {
			return nil, err
		}
	}

	watchCtx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	var wwg sync.WaitGroup
	for i := range pc.Watchers {
		w := &watcher{idx: i, p: p, r: mrand.New(mrand.NewPCG(uint64(cfg.Seed), uint64(1_000_000+i)))}
		p.watchers = append(p.watchers, w)
		wwg.Go(func() { w.run(watchCtx) })
	}
	for i := range pc.PartyWatchers + pc.CourierWatchers {
		party := p.led.parties[i%len(p.led.parties)]
		if i >= pc.PartyWatchers {
			party = p.led.couriers[i%len(p.led.couriers)]
		}
		w := &partyWatcher{idx: i, p: p, r: mrand.New(mrand.NewPCG(uint64(cfg.Seed), uint64(2_000_000+i))), party: party}
		p.partyWatchers = append(p.partyWatchers, w)
		wwg.Go(func() { w.run(watchCtx) })
	}
	recCtx, stopRec := context.WithCancel(ctx)
	defer stopRec()
	recDone := make(chan struct{})
	go func() { p.watchRecovery(recCtx); close(recDone) }()

	writeCtx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	writersDone := make(chan struct{})
	go func() { p.writers(writeCtx, 16); close(writersDone) }()
	couriersDone := make(chan struct{})
	go func() { p.couriers(writeCtx); close(couriersDone) }()

	// Progress every few seconds, so a long run shows it is alive.
	progCtx, stopProg := context.WithCancel(ctx)
	defer stopProg()
	go p.progress(progCtx)

	faultCtx, stopFaults := context.WithTimeout(ctx, pc.Duration)
	defer stopFaults()
	var nodeKinds, watchKinds []string
	for _, k := range kinds {
		if k == FWatchPause || k == FWatchVanish {
			watchKinds = append(watchKinds, k)
		} else {
			nodeKinds = append(nodeKinds, k)
		}
	}
	var lanes errGroup
	lanes.Go(func() error {
		return p.faultLane(faultCtx, nodeKinds, pc.FaultGap, mrand.New(mrand.NewPCG(uint64(cfg.Seed), 2)))
	})
	lanes.Go(func() error {
		return p.faultLane(faultCtx, watchKinds, pc.FaultGap, mrand.New(mrand.NewPCG(uint64(cfg.Seed), 3)))
	})
	laneErr := lanes.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if laneErr != nil {
		return nil, laneErr
	}
	p.logf("faults over; writers go on for %s, then stop", pc.Quiet/2)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(pc.Quiet / 2): // the quiet period: writes without faults
	}
	stopWriters()
	<-writersDone
	<-couriersDone
	p.wg.Wait()
	p.logf("writers stopped at %s; waiting (at most %s) for every watcher to have every event",
		time.Now().UTC().Format(logTime), pc.CatchUp)
	if err := p.waitCaughtUp(ctx, pc.CatchUp); err != nil {
		p.logf("%v", err)
	}
	p.logf("watchers let go at %s", time.Now().UTC().Format(logTime))
	stopWatchers()
	wwg.Wait()
	for _, n := range p.nodes {
		p.tally(ctx, n)
	}
	p.serverMu.Lock()
	rep.Server = p.server
	p.serverMu.Unlock()
	stopRec()
	<-recDone
	unwell := p.probeNodes(ctx, probeWait)
	for _, u := range unwell {
		p.logf("unwell after the faults: %s", u)
	}
	if err := p.crashBeforeReading(ctx); err != nil {
		return nil, err
	}

	recs, err := p.records(ctx)
	if err != nil {
		return nil, err
	}
	recs.Unwell = unwell
	p.rec.mu.Lock()
	recs.Disturbed = disturbed(p.rec.done)
	p.rec.mu.Unlock()
	rep.Duration = time.Since(p.start).Round(time.Second).String()
	rep.Judgement = Judge(recs)
	rep.records = recs
	p.led.mu.Lock()
	rep.ReadBack, rep.WriteErrors = p.led.readback, p.led.errors
	p.led.mu.Unlock()
	p.rec.mu.Lock()
	rep.FaultLog = p.rec.done
	p.rec.mu.Unlock()
	rep.countFaults(kinds)
	if cfg.SelfTest {
		rep.SelfTest = SelfTest(recs)
	}
	return rep, nil
}

// countFaults counts the faults of the log by kind, with their recovery times, and lists the
// kinds on that never happened; a skipped fault (it found nothing to act on) did not.
func (rep *PhaseReport) countFaults(kinds []string) {
	byKind := map[string][]time.Duration{}
	for _, f := range rep.FaultLog {
		if f.Skipped {
			rep.Skipped[f.Kind]++
			continue
		}
		rep.Faults[f.Kind]++
		rep.KilledInFlight += f.InFlight
		st := rep.Recovery[f.Kind]
		st.Count++
		if f.Recovered < 0 {
			st.Unrecovered++
		} else {
			byKind[f.Kind] = append(byKind[f.Kind], f.Recovered)
		}
		rep.Recovery[f.Kind] = st
	}
	for k, ds := range byKind {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		st := rep.Recovery[k]
		st.MedianMS = float64(ds[len(ds)/2].Microseconds()) / 1000
		st.MaxMS = float64(ds[len(ds)-1].Microseconds()) / 1000
		rep.Recovery[k] = st
	}
	for _, k := range kinds {
		if rep.Faults[k] == 0 {
			rep.NotInjected = append(rep.NotInjected, k)
		}
	}
}

func (p *phase) ngxURL() string {
	if p.ngx == nil {
		return ""
	}
	return p.ngx.URL
}

func (p *phase) progress(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.rec.mu.Lock()
		nf := len(p.rec.done) + len(p.rec.pending)
		p.rec.mu.Unlock()
		p.logf("events received %d, positions %d, acknowledged writes %d, orders ended %d, faults %d",
			p.received.Load(), p.positions.Load(), p.acked.Load(), p.ordersEnded.Load(), nf)
	}
}

// logTime is how the run's log and its anomalies give a moment, to the millisecond, so that an
// event's commit can be placed beside the writers' stop and the watchers' end.
const logTime = "15:04:05.000Z07:00"

// settleQuiet is how long the ledger must stay still, every watcher caught up with it, before
// waitCaughtUp lets the watchers go.
const settleQuiet = time.Second

// waitCaughtUp waits, at most d, until every watcher has at least one event and the last event
// of the order it follows (as the history says), and none is in the middle of ending a session,
// and every party watcher has as many positions as its restaurant's orders have events.
func (p *phase) waitCaughtUp(ctx context.Context, d time.Duration) error {
	// The writers' picture may lag after unclear outcomes: settle every order in progress first,
	// within the same deadline.
	deadline := time.Now().Add(d)
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	p.settleActive(hctx)
	var quietSince time.Time // when the ledger was last seen not to move with every watcher on it
	for {
		behind := 0
		var example string
		for _, w := range p.followers() {
			if late, where := w.behind(); late {
				if behind == 0 {
					example = where
				}
				behind++
			}
		}
		// Every watcher has what the ledger holds. A write whose answer its writer never got (its
		// request cancelled when the writers stopped) may still have committed after the ledger
		// was settled, since the server finishes a batch it has taken whoever gave up: settle
		// again, and wait for that too. Without this, watchers stopped a moment before such a
		// commit reached them were judged incomplete against the history read afterwards.
		//
		// Such a commit can come a moment later still (a request the proxy was still handing to a
		// node when its client went, a batch retried after losing a race), so the ledger must stay
		// still for settleQuiet before the watchers are let go. A committed event that never
		// reaches the watchers is not excused by this: the ledger holds it, and they stay behind.
		if behind == 0 {
			if p.settleActive(hctx) > 0 {
				quietSince = time.Time{}
				continue // the ledger moved: judge the watchers against it at once
			}
			if quietSince.IsZero() {
				quietSince = time.Now()
			}
			if time.Since(quietSince) >= settleQuiet || time.Now().After(deadline) {
				return nil // still for settleQuiet, or for as long as the deadline left
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d watchers still behind after %s (first: %s)", behind, d, example)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling the watchers with a deadline
		}
	}
}

// settleActive reads the history of every order in progress into the ledger and returns how
// many of them had moved past what the ledger held.
func (p *phase) settleActive(ctx context.Context) (advanced int) {
	p.led.mu.Lock()
	active := slices.Clone(p.led.active)
	pending := slices.Clone(p.led.pending)
	p.led.mu.Unlock()
	for _, c := range pending {
		if h, err := history(ctx, p.endpoints, c.o.id); err == nil && len(h) > 0 {
			// Committed after its writer gave up on it: known as the history has it before
			// writers can pick it.
			p.caughtUp(c.o, h)
			p.adopt(c)
			advanced++
		}
	}
	for _, o := range active {
		o.mu.Lock()
		h, err := history(ctx, p.endpoints, o.id)
		if err == nil && len(h) > 0 {
			if h[len(h)-1].Seq > o.version {
				advanced++
			}
			p.caughtUp(o, h)
		}
		o.mu.Unlock()
	}
	return advanced
}

func orderID(o *orderState) string {
	if o == nil {
		return "(none)"
	}
	return o.id
}

// records gathers the watchers' sessions, the writers' ledger, and every order's history read
// back through the API.
func (p *phase) records(ctx context.Context) (Records, error) {
	var recs Records
	for _, w := range p.watchers {
		recs.Sessions = append(recs.Sessions, w.allSessions()...)
	}
	for _, w := range p.partyWatchers {
		ss := w.allSessions()
		if len(ss) == 0 { // never got a frame: recorded empty, so that the judge sees it
			ss = []PartySession{{Watcher: w.idx, Party: w.party.party.Key()}}
		}
		recs.Parties = append(recs.Parties, ss...)
	}
	p.led.mu.Lock()
	recs.Attempts, recs.Acks, recs.Refusals = slices.Clone(p.led.attempts), slices.Clone(p.led.acks), slices.Clone(p.led.refusals)
	ids := make([]string, 0, len(p.led.orders))
	seen := map[string]bool{}
	for _, a := range p.led.attempts {
		if !seen[a.Order] {
			seen[a.Order] = true
			ids = append(ids, a.Order)
		}
	}
	p.led.mu.Unlock()
	p.exitMu.Lock()
	recs.Exits = slices.Clone(p.exits)
	p.exitMu.Unlock()
	recs.Histories = make(map[string][]HistEvent, len(ids))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, id := range ids {
		sem <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			h, err := history(ctx, p.endpoints, id)
			if err != nil {
				cancel(err) // the first failure ends the reading; it is the one reported
				return
			}
			if h != nil {
				mu.Lock()
				recs.Histories[id] = h
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return recs, fmt.Errorf("read histories: %w", err)
	}
	return recs, nil
}

// errGroup runs functions and returns the first error of any.
type errGroup struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (g *errGroup) Go(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		}
	})
}

func (g *errGroup) Wait() error {
	g.wg.Wait()
	return errors.Join(g.errs...)
}
