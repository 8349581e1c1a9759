// Package bench measures ordercast: how many watchers a node holds, what each costs in memory,
// how fast a committed change reaches them, and what each way of watching (polling, long polling,
// SSE, WebSocket) costs in requests, bytes and server CPU per delivered change.
//
// All load goes to loopback (or the URL it is given); every phase is bounded in time.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/clock"
)

// Defaults of the bench's knobs.
const (
	DefaultWatchers         = 1000
	DefaultRate             = 100
	DefaultDuration         = 10 * time.Second
	DefaultPollInterval     = time.Second
	DefaultTimeout          = 10 * time.Minute
	DefaultWatchersPerGroup = 9000 // per client process, under its 20,000 open files
	DefaultP99Bound         = 10 * time.Millisecond
	DefaultStepDuration     = time.Second
	DefaultPerRestaurant    = 50
)

// statusCycle is the path the bench moves each order along. It stops short of delivered, so
// every watcher stays open for the whole run; the bench makes enough orders instead.
var statusCycle = []ordercast.Status{"confirmed", "preparing", "ready", "out_for_delivery"}

// Config is one bench invocation.
type Config struct {
	// URL targets running servers (comma-separated for several nodes); empty starts children.
	URL string
	// MetricsURL, with URL, is where each of those servers serves GET /metrics when it does so
	// on a listener of its own (serve --metrics-addr): comma-separated, one per URL, in the same
	// order. Empty reads each URL's /metrics.
	MetricsURL string
	// DB is the database of child servers: empty for a fresh SQLite file, or postgres://….
	DB string
	// Store says what the servers the bench starts store in, and how, for the report ("" for
	// servers it does not start, --url).
	Store string
	// Nodes is how many child servers to start (several need a postgres:// DB).
	Nodes int
	// Exe is the ordercast binary to re-execute for servers and workers.
	Exe string
	// Token is the actor token (admin or system) the bench's writes carry with URL. Servers the
	// bench starts get a fresh secret, and the bench signs its own token.
	Token string

	Watchers     int
	PerOrder     int
	Rate         float64
	Duration     time.Duration
	Transports   []string
	PollInterval time.Duration
	// Workers is how many bench-worker processes hold the watchers: 0 runs them in this
	// process, -1 picks ceil(Watchers/DefaultWatchersPerGroup) when more than one is needed.
	Workers int
	// Timeout bounds the whole bench.
	Timeout time.Duration
	// HoldStreams is the --hold-streams of the servers the bench starts: idle streams held by the
	// epoll poller, or a goroutine each. The report says which ran.
	HoldStreams bool
	// Writers bounds the status changes in flight; 0 picks one per 20 changes/s of Rate (32 to
	// 512), which keeps the writer from being the bottleneck.
	Writers int
	// WritesByOrder sends every change of an order to one node (order i to node i mod nodes), as
	// a load balancer that hashes the order id does; otherwise each change goes to whichever
	// node its writer is connected to.
	WritesByOrder bool
	// WriteBatch above 1 sends the status changes due in each tick through POST
	// /v1/status-changes in requests of up to WriteBatch, as an integration relaying many
	// changes does; 0 or 1: each change on its own POST /v1/orders/{id}/status.
	WriteBatch int

	// Floor runs the same workload (status changes, positions, or both) once more, after the
	// ordercast runs, against the plain in-memory push server of floor.go (a child `ordercast
	// bench-floor`): what any Go HTTP push server pays for it on this machine in the same hour.
	// Its row's transport is TransportFloor.
	Floor bool

	// FindMax raises the rate from Rate, in steps of StepDuration on the same watchers, until the
	// p99 latency from the writes' due times passes P99Bound or the rate is not reached, and
	// reports the highest rate that held.
	FindMax      bool
	P99Bound     time.Duration
	StepDuration time.Duration

	// Restaurants, when positive, runs the party-stream workload instead of one watcher per
	// order: Restaurants×PerRestaurant orders, each with its restaurant_id, and ONE restaurant
	// stream (GET /v1/restaurants/{rid}/stream, through client.WatchRestaurant) per restaurant,
	// which must receive every change of its orders once. Watchers becomes Restaurants.
	Restaurants   int
	PerRestaurant int

	// Couriers, when positive, runs the location workload (location.go): courier i carries order
	// i and posts a position every LocationEvery to the orders the Watchers SSE watchers watch,
	// which record every position they receive. The couriers post from the processes that hold
	// the watchers, at most Posters positions in flight over all of them (0: DefaultPosters).
	// WithStatus runs the status workload at Rate on the same orders at the same time; without it
	// no status changes. LocationInterval, when set, is the --location-interval of the servers
	// the bench starts (nil: their default).
	// PostBatch above 1 sends the positions due in each tick through POST /v1/locations in
	// requests of up to PostBatch (post.go), as an integration forwarding its couriers' positions
	// does; 0 or 1: each position on its own POST /v1/couriers/{cid}/location.
	Couriers         int
	LocationEvery    time.Duration
	Posters          int
	PostBatch        int
	WithStatus       bool
	LocationInterval *time.Duration

	// Progress receives live progress; TTY makes it one \r-updated line.
	Progress io.Writer
	TTY      bool
	// Stderr receives the children's logs.
	Stderr io.Writer
}

// Run runs the workload over each of cfg.Transports in turn, each on fresh servers.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	limit := RaiseFileLimit()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	rep := &Report{
		Started: time.Now().UTC(), Watchers: cfg.Watchers, PerOrder: cfg.PerOrder, Rate: cfg.Rate,
		Duration: cfg.Duration.String(), Nodes: cfg.Nodes, FileLimit: limit, Machine: machine(), Store: cfg.Store,
		Restaurants: cfg.Restaurants, PerRestaurant: cfg.PerRestaurant,
		Couriers: cfg.Couriers, WithStatus: cfg.WithStatus, PostBatch: cfg.PostBatch, WriteBatch: cfg.WriteBatch,
		CourierTokens: cfg.Couriers > 0 && cfg.PostBatch <= 1 && cfg.URL == "",
	}
	if cfg.Couriers > 0 {
		rep.LocationEvery = cfg.LocationEvery.String()
		if !cfg.WithStatus {
			rep.Rate = 0
		}
	}
	if cfg.FindMax {
		rep.FindMax = true
		rep.P99BoundMs = float64(cfg.P99Bound) / float64(time.Millisecond)
		rep.Duration = cfg.StepDuration.String()
	}
	for _, tr := range cfg.Transports {
		res, err := runOne(ctx, cfg, tr)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", tr, err)
		}
		rep.Runs = append(rep.Runs, res)
	}
	if cfg.Floor {
		res, err := runOne(ctx, cfg, TransportFloor)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", TransportFloor, err)
		}
		rep.Runs = append(rep.Runs, res)
	}
	return rep, nil
}

// check fills in cfg's defaults and refuses a combination of settings the bench cannot run,
// each refusal naming the flags.
func (cfg *Config) check() error {
	cfg.applyDefaults()
	if err := cfg.checkRestaurants(); err != nil {
		return err
	}
	if err := cfg.checkCouriers(); err != nil {
		return err
	}
	if err := cfg.checkRun(); err != nil {
		return err
	}
	if cfg.Workers < 0 { // as many worker processes as groups of watchers
		cfg.Workers = 0
		if n := (cfg.Watchers + DefaultWatchersPerGroup - 1) / DefaultWatchersPerGroup; n > 1 {
			cfg.Workers = n
		}
	}
	return nil
}

// applyDefaults gives every setting left zero its default.
func (cfg *Config) applyDefaults() {
	if cfg.PerOrder == 0 {
		cfg.PerOrder = 1
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.P99Bound == 0 {
		cfg.P99Bound = DefaultP99Bound
	}
	if cfg.StepDuration == 0 {
		cfg.StepDuration = DefaultStepDuration
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Restaurants > 0 && cfg.PerRestaurant == 0 {
		cfg.PerRestaurant = DefaultPerRestaurant
	}
	if cfg.Couriers != 0 {
		if cfg.LocationEvery == 0 {
			cfg.LocationEvery = DefaultLocationEvery
		}
		if cfg.Posters == 0 {
			cfg.Posters = DefaultPosters
		}
	}
}

// checkRestaurants refuses what the restaurants' workload (--restaurants) does not combine
// with, then sets the watchers it means: one stream a restaurant, held in this process.
func (cfg *Config) checkRestaurants() error {
	if cfg.Restaurants <= 0 {
		return nil
	}
	switch {
	case cfg.PerRestaurant < 1:
		return errors.New("--per-restaurant must be at least 1")
	case cfg.FindMax:
		return errors.New("--restaurants does not combine with --find-max")
	case cfg.Workers > 0:
		return errors.New("--restaurants holds its streams in this process (no --workers)")
	case !slices.Equal(cfg.Transports, []string{TransportSSE}):
		return errors.New("--restaurants watches over SSE only")
	}
	cfg.Watchers, cfg.PerOrder, cfg.Workers = cfg.Restaurants, 1, 0
	return nil
}

// checkCouriers refuses what the location workload (--couriers) does not combine with.
func (cfg *Config) checkCouriers() error {
	if cfg.Couriers == 0 {
		if cfg.PostBatch != 0 {
			return errors.New("--post-batch sends the location workload's positions: it needs --couriers")
		}
		return nil
	}
	switch {
	case cfg.Couriers < 0 || cfg.LocationEvery < 0 || cfg.Posters < 0:
		return errors.New("--couriers, --location-every and --posters must be positive")
	case cfg.PostBatch < 0 || cfg.PostBatch > api.MaxLocationsPerRequest:
		return fmt.Errorf("--post-batch must be 0 to %d (the server's limit per request)", api.MaxLocationsPerRequest)
	case cfg.Restaurants > 0 || cfg.FindMax:
		return errors.New("--couriers does not combine with --restaurants or --find-max")
	case !slices.Equal(cfg.Transports, []string{TransportSSE}):
		return errors.New("--couriers watches over SSE only")
	case cfg.LocationInterval != nil && cfg.URL != "":
		return errors.New("--location-interval sets the servers the bench starts; with --url, set it on the servers")
	}
	return nil
}

// checkRun refuses what no workload runs with: the watchers, the rate, the writers, the
// servers to run against, the floor.
func (cfg *Config) checkRun() error {
	switch {
	case cfg.Watchers < 1:
		return errors.New("--watchers must be at least 1")
	case cfg.PerOrder < 1:
		return errors.New("--per-order must be at least 1")
	case !(cfg.Rate > 0) && (cfg.Couriers == 0 || cfg.WithStatus) || math.IsInf(cfg.Rate, 0) || cfg.Duration <= 0: // !(> 0): NaN too
		return errors.New("--rate and --duration must be positive")
	case cfg.PollInterval < 0:
		return errors.New("--poll-interval must be positive")
	case cfg.Writers < 0:
		return errors.New("--writers must not be negative")
	case cfg.WriteBatch < 0 || cfg.WriteBatch > api.MaxStatusChangesPerRequest:
		return fmt.Errorf("--write-batch must be 0 to %d (the server's limit per request)", api.MaxStatusChangesPerRequest)
	case cfg.WriteBatch > 1 && cfg.Couriers > 0 && !cfg.WithStatus:
		return errors.New("--write-batch sends status changes: with --couriers it needs --rate")
	case cfg.WriteBatch > 1 && cfg.WritesByOrder:
		return errors.New("--write-batch spreads its requests over the nodes, each with many orders: it does not combine with --writes-by-order")
	case cfg.FindMax && (cfg.P99Bound < 0 || cfg.StepDuration < 0):
		return errors.New("--p99-bound and --step must be positive")
	case len(cfg.Transports) == 0:
		return errors.New("no transport")
	case cfg.URL == "" && cfg.Exe == "":
		return errors.New("no ordercast binary to start servers from")
	case cfg.MetricsURL != "" && cfg.URL == "":
		return errors.New("--metrics-url goes with --url: the servers the bench starts serve /metrics on their own port")
	case cfg.MetricsURL != "" && len(strings.Split(cfg.MetricsURL, ",")) != len(strings.Split(cfg.URL, ",")):
		return errors.New("--metrics-url needs one URL for each of --url's, in the same order")
	case cfg.Nodes > 1 && cfg.URL == "" && !strings.HasPrefix(cfg.DB, "postgres"):
		return errors.New("--nodes above 1 needs --db postgres://… (a shared database)")
	case cfg.Workers > 0 && cfg.Exe == "":
		return errors.New("bench workers need the ordercast binary")
	case cfg.Floor && cfg.Exe == "":
		return errors.New("--floor starts the floor server from the ordercast binary")
	case cfg.Floor && (cfg.Restaurants > 0 || cfg.Nodes > 1 && cfg.URL == ""):
		// The floor is one process, and it speaks no party stream.
		return errors.New("--floor runs on order streams and one node: not with --restaurants or --nodes")
	case cfg.Floor && !slices.Contains(cfg.Transports, TransportSSE):
		return errors.New("--floor is measured over SSE: run it with --transport sse")
	}
	for _, tr := range cfg.Transports {
		if !slices.Contains(Transports, tr) {
			return fmt.Errorf("unknown transport %q (want one of %s)", tr, strings.Join(Transports, ", "))
		}
	}
	return nil
}

// run is the state of one transport's run.
type run struct {
	cfg    Config
	tr     string
	target *target
	groups []group // appended while opening; read by the progress line
	gmu    sync.Mutex
	phase  atomic.Value // string
	start  time.Time
	mem    []MemSample
	memMu  sync.Mutex
}

func runOne(ctx context.Context, cfg Config, tr string) (res Result, err error) {
	r := &run{cfg: cfg, tr: tr, start: time.Now()}
	r.phase.Store("starting servers")
	res = Result{Transport: tr, Watchers: cfg.Watchers, PerOrder: cfg.PerOrder, Nodes: cfg.Nodes, Workers: cfg.Workers}
	if tr == TransportFloor {
		r.target, err = startFloor(ctx, cfg.Exe, cfg.Stderr)
	} else {
		r.target, err = startTarget(ctx, cfg.Exe, cfg.URL, cfg.MetricsURL, cfg.DB, cfg.Nodes, cfg.Token, cfg.HoldStreams, cfg.serveArgs(), cfg.Stderr)
	}
	if err != nil {
		return res, err
	}
	switch {
	case tr == TransportFloor:
		res.Holding = HoldingGoroutine // net/http's, one a stream
	case cfg.URL == "":
		res.Holding = HoldingGoroutine
		if cfg.HoldStreams {
			res.Holding = HoldingPoller
		}
	}
	res.Nodes = len(r.target.urls)
	if r.target.postmaster != 0 || r.target.dbUnreadable != "" {
		res.DBCPU = &DBCPU{Unmeasured: r.target.dbUnreadable}
	}
	defer func() {
		for _, g := range r.groups {
			g.Close()
		}
		if cerr := r.target.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	stopProgress := r.progress(ctx)
	defer stopProgress()

	api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer api.CloseIdleConnections()
	prefix := fmt.Sprintf("b%x-%s-", time.Now().UnixNano(), tr)
	orders := (cfg.Watchers + cfg.PerOrder - 1) / cfg.PerOrder
	cycle := statusCycle
	makeOrder := func(ctx context.Context, c *client.Client, i int) (int64, error) {
		o, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: OrderID(prefix, i)})
		return o.Order.Version, err
	}
	switch {
	case cfg.Restaurants > 0:
		orders = cfg.Restaurants * cfg.PerRestaurant
		makeOrder = func(ctx context.Context, c *client.Client, i int) (int64, error) {
			o, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: OrderID(prefix, i), RestaurantID: RestaurantID(prefix, i/cfg.PerRestaurant)})
			return o.Order.Version, err
		}
	case cfg.Couriers > 0:
		orders = max(orders, cfg.Couriers)
		stage := ordercast.StatusOutForDelivery
		if cfg.WithStatus {
			stage, cycle = locationFromWithStatus, statusCycleWithLocation
		}
		res.Location = &LocationResult{Couriers: cfg.Couriers, EverySeconds: cfg.LocationEvery.Seconds(), Posters: cfg.Posters, ShownFrom: stage}
		makeOrder = func(ctx context.Context, c *client.Client, i int) (int64, error) {
			courier := -1 // a watched order no courier carries
			if i < cfg.Couriers {
				courier = i
			}
			return prepareCourierOrder(ctx, c, OrderID(prefix, i), courier, stage)
		}
	}
	res.Orders, res.StepsPerOrder = orders, len(cycle)
	r.phase.Store("creating orders")
	base, err := createOrders(ctx, api, r.target.urls, r.target.token, orders, makeOrder)
	if err != nil {
		return res, err
	}

	if res.RSSBefore, err = r.target.rss(ctx); err != nil {
		return res, err
	}
	r.phase.Store("opening watchers")
	openStart := time.Now()
	if err := r.openGroups(prefix); err != nil {
		return res, err
	}
	r.sampleMemory(ctx, res.RSSBefore) // the origin of the memory curve
	if err := r.waitOpen(ctx, res.RSSBefore); err != nil {
		return res, err
	}
	c := r.counts()
	res.Opened, res.Failed = c.Opened, c.Failed
	res.ConnectSeconds = time.Since(openStart).Seconds()
	res.ConnectRate = float64(c.Opened) / res.ConnectSeconds
	if res.RSSAfter, err = r.target.rss(ctx); err != nil {
		return res, err
	}
	r.sampleMemory(ctx, res.RSSBefore)
	if c.Opened > 0 {
		res.BytesPerStream = float64(res.RSSAfter-res.RSSBefore) / float64(c.Opened)
	}

	// The load: mark once, then one paced load (or find-max's several) on the same watchers.
	for _, g := range r.groups {
		if err := g.Mark(); err != nil {
			return res, err
		}
	}
	writers := cfg.Writers
	if writers == 0 {
		writers = defaultWriters(cfg.Rate)
		if cfg.FindMax {
			writers = maxWriters // the search may go far above the rate it starts from
		}
	}
	var d *driver // none in a location run without --rate
	if cfg.Couriers == 0 || cfg.WithStatus {
		if d, err = newDriver(ctx, r.target.urls, r.target.token, prefix, base, cycle, writers); err != nil {
			return res, err
		}
		if cfg.WritesByOrder {
			d.writeByOrder()
		}
		if cfg.WriteBatch > 1 {
			d.batchWrites(cfg.WriteBatch)
		}
		defer d.close()
		res.Writers = d.writers
	}
	if cfg.FindMax {
		if err := r.findMax(ctx, d, &res); err != nil {
			return res, err
		}
	} else {
		s, err := r.step(ctx, d, cfg.Rate, cfg.Duration)
		if err != nil {
			return res, err
		}
		res.add(s)
		if d != nil {
			res.setLoad(s)
		}
		if res.Location != nil {
			res.setLocation(res.Location, s)
			if res.Location.RSSAfterLoad, err = r.target.rss(ctx); err != nil {
				return res, err
			}
		}
	}
	if d != nil {
		if err := d.firstError(); err != nil {
			res.CommitError = err.Error()
		}
	}
	r.memMu.Lock()
	res.Memory = r.mem
	r.memMu.Unlock()
	r.phase.Store("closing")
	return res, ctx.Err()
}

// benchCPU is the CPU seconds the bench's own processes have used: this one (its watchers,
// writers and posters when they run here) and each bench-worker's.
func (r *run) benchCPU() (float64, error) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		return 0, fmt.Errorf("bench CPU: %w", err)
	}
	sum := st.cpu
	for _, g := range r.groupList() {
		if rg, ok := g.(*remoteGroup); ok && rg.cmd != nil {
			st, err := readProcStat(rg.cmd.Process.Pid)
			if err != nil {
				return 0, fmt.Errorf("bench worker CPU: %w", err)
			}
			sum += st.cpu
		}
	}
	return sum, nil
}

// openGroups starts the watchers: in this process, or spread over worker processes.
func (r *run) openGroups(prefix string) error {
	watch := r.tr
	if watch == TransportFloor {
		watch = TransportSSE // the floor's watchers watch as ordercast's do
	}
	spec := GroupSpec{URLs: r.target.urls, Transport: watch, PollInterval: r.cfg.PollInterval, OrderPrefix: prefix, PerOrder: r.cfg.PerOrder,
		Restaurants: r.cfg.Restaurants, PerRestaurant: r.cfg.PerRestaurant, Token: r.target.token}
	if r.cfg.Couriers > 0 {
		spec.Location, spec.Every, spec.PostBatch, spec.Secret = true, r.cfg.LocationEvery, r.cfg.PostBatch, r.target.secret
	}
	if r.cfg.Workers == 0 {
		spec.Count = r.cfg.Watchers
		spec.CourierCount, spec.Posters = r.cfg.Couriers, r.cfg.Posters
		g, err := OpenGroup(spec)
		if err != nil {
			return err
		}
		r.addGroup(g)
		return nil
	}
	per := (r.cfg.Watchers + r.cfg.Workers - 1) / r.cfg.Workers
	groups := (r.cfg.Watchers + per - 1) / per
	for k, first := 0, 0; first < r.cfg.Watchers; k, first = k+1, first+per {
		s := spec
		s.First, s.Count = first, min(per, r.cfg.Watchers-first)
		// Each worker posts for an even share of the couriers too, with its share of the posters.
		s.CourierFirst = k * r.cfg.Couriers / groups
		s.CourierCount = (k+1)*r.cfg.Couriers/groups - s.CourierFirst
		s.Posters = (r.cfg.Posters + groups - 1) / groups
		g, err := startWorker(r.cfg.Exe, s, r.cfg.Stderr)
		if err != nil {
			return err
		}
		r.addGroup(g)
	}
	return nil
}

func (r *run) addGroup(g group) {
	r.gmu.Lock()
	r.groups = append(r.groups, g)
	r.gmu.Unlock()
}

// serveArgs are the flags the location workload adds to the servers the bench starts.
func (cfg *Config) serveArgs() []string {
	var args []string
	if cfg.Couriers > 0 && cfg.WithStatus {
		args = append(args, "--location-from", string(locationFromWithStatus))
	}
	if cfg.LocationInterval != nil {
		args = append(args, "--location-interval", cfg.LocationInterval.String())
	}
	return args
}

// openTimeout bounds the opening phase.
const openTimeout = 3 * time.Minute

func (r *run) waitOpen(ctx context.Context, rssBefore int64) error {
	deadline := time.Now().Add(openTimeout)
	next := time.Now()
	for {
		c := r.counts()
		if c.Opened+c.Failed >= int64(r.cfg.Watchers) {
			return nil
		}
		for _, g := range r.groupList() {
			if err := g.Err(); err != nil {
				return fmt.Errorf("%d of %d watchers open: %w", c.Opened, r.cfg.Watchers, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d watchers opened in %s", c.Opened, r.cfg.Watchers, openTimeout)
		}
		if time.Now().After(next) {
			r.sampleMemory(ctx, rssBefore)
			next = time.Now().Add(500 * time.Millisecond)
		}
		if err := clock.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func (r *run) sampleMemory(ctx context.Context, rssBefore int64) {
	rss, err := r.target.rss(ctx)
	if err != nil {
		return
	}
	c := r.counts()
	r.memMu.Lock()
	r.mem = append(r.mem, MemSample{Watchers: c.Opened, RSSBytes: rss, DeltaBytes: rss - rssBefore})
	r.memMu.Unlock()
}

// counts adds up the groups' counters so far.
func (r *run) counts() Counts {
	var c Counts
	for _, g := range r.groupList() {
		c.Add(g.Counts())
	}
	return c
}

// take adds up the groups' counters with the samples not yet taken.
func (r *run) take() (Counts, error) {
	var c Counts
	for _, g := range r.groupList() {
		gc, err := g.Take()
		if err != nil {
			return c, err
		}
		c.Add(gc)
	}
	return c, nil
}

func (r *run) groupList() []group {
	r.gmu.Lock()
	defer r.gmu.Unlock()
	return slices.Clone(r.groups)
}

// progress prints a progress line every second until the returned func is called.
func (r *run) progress(ctx context.Context) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	// A terminal gets one line redrawn every second; a log gets a line per phase, and one
	// every five seconds within a long phase.
	every := time.Second
	if !r.cfg.TTY {
		every = 5 * time.Second
	}
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		var last time.Time
		var lastPhase any
		for {
			select {
			case <-stop:
				if r.cfg.TTY {
					fmt.Fprintln(r.cfg.Progress)
				}
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				phase := r.phase.Load()
				if now.Sub(last) < every && (r.cfg.TTY || phase == lastPhase) {
					continue
				}
				last, lastPhase = now, phase
				c := r.counts()
				line := fmt.Sprintf("%-8s %5.0fs  %-17s open %d/%d failed %d  delivered %d  dup %d ooo %d gaps %d  reconnects %d",
					r.tr, time.Since(r.start).Seconds(), phase, c.Opened, r.cfg.Watchers, c.Failed,
					c.Delivered, c.Duplicates, c.OutOfOrder, c.Gaps, c.Reconnects)
				if r.cfg.Couriers > 0 {
					line += fmt.Sprintf("  positions %d", c.Positions)
				}
				if r.cfg.TTY {
					fmt.Fprintf(r.cfg.Progress, "\r%-120s", line)
				} else {
					fmt.Fprintln(r.cfg.Progress, line)
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// createOrders makes n orders with makeOrder through the API, spread over the nodes, and returns
// the version each was made at.
func createOrders(ctx context.Context, hc *http.Client, urls []string, token string, n int, makeOrder func(context.Context, *client.Client, int) (int64, error)) ([]int64, error) {
	versions := make([]int64, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for w := range min(32, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client.Client{BaseURL: urls[w%len(urls)], HTTPClient: hc, Token: token}
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				v, err := makeOrder(cctx, c, i)
				cancel()
				versions[i] = v
				if err != nil {
					select {
					case errc <- fmt.Errorf("make order %d: %w", i, err):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
		return versions, ctx.Err()
	}
}

// machine describes the host in one line: cores and memory.
func machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				mem = fmt.Sprintf(", %.0f GiB memory", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d cores%s", numCPU(), mem)
}
