package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/clock"
)

// The ways to watch an order that the bench compares.
const (
	TransportPoll     = "poll"
	TransportLongPoll = "longpoll"
	TransportSSE      = "sse"
	TransportWS       = "ws"
	// TransportFloor names the row of --floor: SSE watchers of the plain push server (floor.go).
	TransportFloor = "floor"
)

// Transports lists every transport, in the order --compare runs them.
var Transports = []string{TransportPoll, TransportLongPoll, TransportSSE, TransportWS}

// The ways a server holds idle streams, as Result.Holding names them.
const (
	HoldingPoller    = "poller"
	HoldingGoroutine = "goroutine"
)

// LongPollWait is the wait the bench's long-polling watchers ask for.
const LongPollWait = 30 * time.Second

// watchersPerSourceIP is how many watchers share one loopback source address: far below the
// ~28,000 ephemeral ports one address has, so the bench is never short of ports.
const watchersPerSourceIP = 2000

// maxOpening bounds the watchers opening at once in one process, so connects do not overflow
// the server's accept queue.
const maxOpening = 256

// GroupSpec says which watchers a group (one process) runs. Watcher g (First <= g <
// First+Count) watches order g/PerOrder on node g%len(URLs), from source address
// 127.0.0.(2+g/2000%250).
type GroupSpec struct {
	URLs         []string      `json:"urls"`
	Transport    string        `json:"transport"`
	PollInterval time.Duration `json:"poll_interval"`
	OrderPrefix  string        `json:"order_prefix"`
	PerOrder     int           `json:"per_order"`
	First        int           `json:"first"`
	Count        int           `json:"count"`
	// Restaurants, when positive, makes watcher g the stream of restaurant g (RestaurantID),
	// whose orders are g*PerRestaurant… (g+1)*PerRestaurant-1; Token is sent with it.
	Restaurants   int    `json:"restaurants,omitempty"`
	PerRestaurant int    `json:"per_restaurant,omitempty"`
	Token         string `json:"token,omitempty"`
	// Location makes the (SSE) watchers record the positions they receive too. The group posts
	// for couriers CourierFirst… CourierFirst+CourierCount-1 (courier i carries order i), each
	// every Every, at most Posters at once, with Token (post.go). PostBatch above 1 sends them
	// through POST /v1/locations, up to PostBatch a request.
	Location     bool          `json:"location,omitempty"`
	CourierFirst int           `json:"courier_first,omitempty"`
	CourierCount int           `json:"courier_count,omitempty"`
	Every        time.Duration `json:"every,omitempty"`
	Posters      int           `json:"posters,omitempty"`
	PostBatch    int           `json:"post_batch,omitempty"`
	// Secret, when set, is the servers' (as ORDERCAST_SECRET): each courier posts its own
	// positions with a courier token of its own signed with it, as a courier's app does, and
	// the server verifies (and caches) a token per courier, not one for the whole load. Without
	// it (a server at --url) they post with Token. PostBatch's requests, an integration's,
	// carry Token.
	Secret string `json:"secret,omitempty"`
}

// OrderID names order i of a run.
func OrderID(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// RestaurantID names restaurant i of a --restaurants run.
func RestaurantID(prefix string, i int) string { return prefix + "r" + strconv.Itoa(i) }

// Group runs a share of the watchers in this process and keeps their accounting.
type Group struct {
	spec      GroupSpec
	rec       Recorder
	clientsMu sync.Mutex
	clients   map[int]*http.Client // by source address

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// OpenGroup starts opening the watchers of spec in the background; Counts shows progress.
func OpenGroup(spec GroupSpec) (*Group, error) {
	switch spec.Transport {
	case TransportPoll, TransportLongPoll, TransportSSE, TransportWS:
	default:
		return nil, fmt.Errorf("unknown transport %q", spec.Transport)
	}
	if len(spec.URLs) == 0 || spec.PerOrder < 1 || spec.Count < 0 {
		return nil, fmt.Errorf("bad group spec %+v", spec)
	}
	if spec.Transport == TransportPoll && spec.PollInterval <= 0 {
		return nil, fmt.Errorf("poll interval must be positive")
	}
	if spec.Location && (spec.Transport != TransportSSE || spec.CourierCount < 0 || spec.CourierCount > 0 && (spec.Every <= 0 || spec.Posters < 1)) {
		return nil, fmt.Errorf("bad location spec %+v", spec)
	}
	g := &Group{spec: spec, clients: map[int]*http.Client{}}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	sem := make(chan struct{}, maxOpening)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for i := range spec.Count {
			select {
			case sem <- struct{}{}:
			case <-g.ctx.Done():
				return
			}
			n := spec.First + i
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				g.watch(n, sync.OnceFunc(func() { <-sem }))
			}()
		}
	}()
	return g, nil
}

// Mark starts counting the load's events; it never fails in process.
func (g *Group) Mark() error {
	g.rec.Mark()
	return nil
}

// Counts returns the group's counters so far.
func (g *Group) Counts() Counts { return g.rec.Counts(false) }

// Take returns the group's counters and the samples not yet taken; it never fails in process.
func (g *Group) Take() (Counts, error) { return g.rec.Counts(true), nil }

// Err is nil: a group in this process fails with the process.
func (g *Group) Err() error { return nil }

// Post posts the group's couriers' positions on schedule for dur and returns what they did.
func (g *Group) Post(dur time.Duration) (PostCounts, error) {
	p, err := newPosters(g.ctx, g.spec)
	if err != nil {
		return PostCounts{}, err
	}
	defer p.close()
	return p.run(g.ctx, dur), nil
}

// Close stops every watcher and waits for them.
func (g *Group) Close() {
	g.cancel()
	g.wg.Wait()
	for _, c := range g.clients {
		c.CloseIdleConnections()
	}
}

// httpClient returns the client of a source address, creating it on first use.
func (g *Group) httpClient(n int) *http.Client {
	ip := 2 + n/watchersPerSourceIP%250
	g.clientsMu.Lock()
	defer g.clientsMu.Unlock()
	if c, ok := g.clients[ip]; ok {
		return c
	}
	d := &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(ip))},
		Timeout:   10 * time.Second,
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, rec: &g.rec}, nil
		},
		MaxIdleConnsPerHost: 4096,
		DisableCompression:  true,
		IdleConnTimeout:     90 * time.Second,
	}
	c := &http.Client{Transport: tr}
	g.clients[ip] = c
	return c
}

// countingConn counts the bytes a watcher's connection reads: headers, frames, heartbeats.
type countingConn struct {
	net.Conn
	rec *Recorder
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.Read(n)
	return n, err
}

// watch runs watcher n until the group closes or its order ends; opened is called once the
// watcher has its first answer or has given up.
func (g *Group) watch(n int, opened func()) {
	s := g.spec
	w := &watcherRun{
		g: g, w: &Watcher{Order: n / s.PerOrder, Node: n % len(s.URLs)}, hc: g.httpClient(n), opened: opened,
		base: strings.TrimSuffix(s.URLs[n%len(s.URLs)], "/"), orderID: OrderID(s.OrderPrefix, n/s.PerOrder),
	}
	defer w.open(false) // never leave the opening slot taken
	if s.Location {
		g.rec.Track(w.w)
	}
	if s.Restaurants > 0 {
		w.restaurant(g.ctx, n)
		return
	}
	switch s.Transport {
	case TransportSSE:
		w.sse(g.ctx)
	case TransportWS:
		w.ws(g.ctx)
	case TransportLongPoll:
		w.poll(g.ctx, 0)
	case TransportPoll:
		w.poll(g.ctx, s.PollInterval)
	}
}

// watcherRun is one watcher's loop state.
type watcherRun struct {
	g       *Group
	w       *Watcher
	hc      *http.Client
	base    string // the node's URL
	orderID string
	opened  func()
	isOpen  bool
	done    bool // the open slot was released
}

// open records the outcome of opening, once.
func (r *watcherRun) open(ok bool) {
	if r.done {
		return
	}
	r.done = true
	if ok {
		r.isOpen = true
		r.g.rec.Opened()
	} else {
		r.g.rec.Failed()
	}
	r.opened()
}

// maxReconnects bounds how often one stream is resumed after breaking.
const maxReconnects = 10

// retry waits before a reconnect; it reports false when the watcher should stop.
func (r *watcherRun) retry(ctx context.Context, attempt int) bool {
	if ctx.Err() != nil || !r.isOpen || attempt >= maxReconnects {
		return false
	}
	r.g.rec.Reconnect()
	t := time.NewTimer(time.Duration(100+rand.IntN(400)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// connected counts a connection of a client watch (WatchOptions.OnConnect): every one a request,
// and each after the first a reconnect.
func (r *watcherRun) connected(reconnect bool) {
	r.g.rec.Request()
	if reconnect {
		r.g.rec.Reconnect()
	}
}

// sse watches with the Go client's resuming watch, the client the project ships: the bench
// measures what users run. OnEvent shows every event as the server sent it, so a replay or a
// reorder is counted here even though Next would hide it.
func (r *watcherRun) sse(ctx context.Context) {
	c := &client.Client{BaseURL: r.base, HTTPClient: r.hc}
	opts := client.WatchOptions{
		MinRetry: sseMinRetry, MaxRetry: sseMaxRetry, MaxFailures: maxReconnects,
		OnConnect: r.connected,
		OnEvent: func(ev ordercast.Event, received time.Time) {
			r.open(true)
			r.g.rec.Observe(r.w, ev.Seq, ev.At, received, true)
		},
	}
	if r.g.spec.Location {
		opts.OnLocation = func(u ordercast.LocationUpdate, received time.Time) {
			r.g.rec.ObservePosition(r.w, u.At, received)
		}
	}
	w := c.Watch(ctx, r.orderID, opts)
	defer w.Close()
	for {
		// The events themselves were recorded by OnEvent; Next drives the watch until the order
		// ends, the watch gives up, or the group closes.
		if _, err := w.Next(ctx); err != nil {
			return
		}
	}
}

// restaurant watches restaurant n's stream with the client's party watch. OnEvent shows every
// event as the server sent it (before the client's dedupe by position), and each is checked
// against the last seq of its own order: the stream must carry every change of every order of
// the restaurant once, in each order's seq order.
func (r *watcherRun) restaurant(ctx context.Context, n int) {
	s := r.g.spec
	orders := map[int]*Watcher{}
	watcher := func(id string) *Watcher {
		i, err := strconv.Atoi(strings.TrimPrefix(id, s.OrderPrefix))
		if err != nil || !strings.HasPrefix(id, s.OrderPrefix) || i/s.PerRestaurant != n {
			i = -1 // not an order of this restaurant: counted as a sample no write matches
		}
		w, ok := orders[i]
		if !ok {
			w = &Watcher{Order: i}
			orders[i] = w
		}
		return w
	}
	c := &client.Client{BaseURL: r.base, HTTPClient: r.hc, Token: s.Token}
	w := c.WatchRestaurant(ctx, RestaurantID(s.OrderPrefix, n), client.WatchOptions{
		MinRetry: sseMinRetry, MaxRetry: sseMaxRetry, MaxFailures: maxReconnects,
		OnConnect: r.connected,
		OnEvent: func(ev ordercast.Event, received time.Time) {
			r.g.rec.Observe(watcher(ev.OrderID), ev.Seq, ev.At, received, true)
		},
	})
	defer w.Close()
	for {
		u, err := w.NextScoped(ctx)
		if err != nil {
			return
		}
		if u.Snapshot != nil {
			// The state the stream (re)starts from: each order's version is where its events go on.
			for _, o := range u.Snapshot.Orders {
				if ow := watcher(o.ID); o.Version > ow.last {
					ow.last = o.Version
				}
			}
			r.open(true)
		}
	}
}

// The SSE watchers' reconnection waits: short, so that a broken stream resumes within the run.
const (
	sseMinRetry = 100 * time.Millisecond
	sseMaxRetry = 500 * time.Millisecond
)

func (r *watcherRun) ws(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		ended := r.wsOnce(ctx)
		if ended || !r.retry(ctx, attempt) {
			return
		}
	}
}

func (r *watcherRun) wsOnce(ctx context.Context) bool {
	u := "ws" + strings.TrimPrefix(r.base, "http") + api.WebSocketPath(r.orderID) + api.ResumeQuery(r.w.Last())
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: r.hc})
	if err != nil {
		return false
	}
	defer c.CloseNow()
	r.g.rec.Request()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return websocket.CloseStatus(err) == websocket.StatusNormalClosure
		}
		var ev ordercast.Event
		if json.Unmarshal(b, &ev) != nil {
			continue
		}
		r.open(true)
		r.g.rec.Observe(r.w, ev.Seq, ev.At, time.Now(), true)
	}
}

// poll asks for the order every interval, or with interval 0 long-polls it back to back.
func (r *watcherRun) poll(ctx context.Context, interval time.Duration) {
	var tick <-chan time.Time
	phase := true // a poller's first request goes at once, then it waits a random phase
	failures := 0
	for ctx.Err() == nil {
		u := r.base + api.OrderPath(r.orderID)
		if interval == 0 {
			u += api.LongPollQuery(LongPollWait.String(), r.w.Last())
		}
		o, err := r.get(ctx, u)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			if failures++; !r.isOpen || failures > maxReconnects {
				return
			}
		default:
			r.open(true)
			if o.Version != r.w.Last() {
				r.g.rec.Observe(r.w, o.Version, o.UpdatedAt, time.Now(), false)
			}
			if o.Status.Terminal() {
				return
			}
		}
		if interval > 0 && phase {
			// Spread the watchers' requests over the interval rather than all on one beat.
			phase = false
			if clock.Sleep(ctx, rand.N(interval)) != nil {
				return
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			tick = t.C
			continue
		}
		if tick != nil || err != nil {
			wait := tick
			if wait == nil {
				wait = time.After(time.Second)
			}
			select {
			case <-ctx.Done():
				return
			case <-wait:
			}
		}
	}
}

func (r *watcherRun) get(ctx context.Context, u string) (ordercast.Order, error) {
	var o ordercast.Order
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return o, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return o, err
	}
	defer resp.Body.Close()
	r.g.rec.Request()
	if resp.StatusCode != http.StatusOK {
		return o, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&o)
	return o, err
}
