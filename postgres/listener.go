package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/clock"
	"github.com/ordercast/ordercast/internal/failurelog"
)

// Defaults for the tunable fields of Listener.
const (
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between reconnection attempts; the
	// wait doubles from the first to the second, with jitter so that many nodes losing the
	// database at once do not all come back in the same instant.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// DefaultHealthInterval is how long the LISTEN connection may stay silent before the
	// listener checks it with a query. A connection cut without a TCP reset would otherwise
	// wait for notifications that never come, the node still ready and its watchers told
	// nothing of other nodes' commits: with DefaultPingTimeout it is let go of within 7 s, inside
	// the 10 s after which a silent database is answered as away. An idle node pays one round
	// trip every interval.
	DefaultHealthInterval = 5 * time.Second
	// DefaultPingTimeout bounds that query's answer, as /readyz bounds its own: an alive
	// connection answers in a round trip.
	DefaultPingTimeout = 2 * time.Second
	// DefaultCatchUpTimeout bounds a catch-up after a reconnection, which reads the latest event
	// of every watched order, a batch at a time: many reads, where the reads of a notice are one
	// (bounded by HealthInterval). Past it the listener gives the catch-up up and reconnects.
	DefaultCatchUpTimeout = 20 * time.Second
)

// Listener holds a node's one LISTEN connection and hands every committed event, from any node,
// to the node's Feed (its hub). When the connection is lost it reconnects with exponential
// backoff, then has the Feed catch up from the store, so watchers miss nothing and their streams
// stay open. It is the only way a Store's commits reach a hub: a Store has no in-process
// publisher, so no event can arrive twice.
type Listener struct {
	// URL is the database's connection string.
	URL string
	// Store reads what notifications do not carry: events announced by id only.
	Store *Store
	// Feed receives the events, and is told to catch up after a lost connection.
	Feed ordercast.Feed
	// Locations, when set, also gets the batches of positions the other nodes send on
	// PositionsChannel (see LocationBus), and those of older nodes on LocationChannel.
	Locations ordercast.LocationFeed
	// Logger receives operational messages. Nil discards them.
	Logger *slog.Logger
	// ApplicationName names the connection in pg_stat_activity; empty means
	// "ordercast-listen <pid> <hostname>", so an operator can tell the nodes' listeners apart.
	ApplicationName string

	MinBackoff, MaxBackoff time.Duration
	HealthInterval         time.Duration
	PingTimeout            time.Duration
	CatchUpTimeout         time.Duration

	listening  atomic.Bool
	reconnects atomic.Int64
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// NewListener returns a Listener for the database at url that hands what it hears to feed,
// reading events too large to announce from s.
func NewListener(url string, s *Store, feed ordercast.Feed) *Listener {
	return &Listener{URL: url, Store: s, Feed: feed}
}

// Open connects and starts listening. The first connection is made here, so a bad URL or an
// unreachable database fails the start of the node instead of being retried forever.
func (l *Listener) Open(ctx context.Context) error {
	if l.Store == nil || l.Feed == nil {
		return errors.New("postgres: listener needs a Store and a Feed")
	}
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	if l.ApplicationName == "" {
		host, _ := os.Hostname() // only a label: an empty one is fine
		l.ApplicationName = fmt.Sprintf("%s %d %s", ListenerApplicationPrefix, os.Getpid(), host)
	}
	if len(l.ApplicationName) > 63 {
		l.ApplicationName = l.ApplicationName[:63] // PostgreSQL's limit; it would cut it anyway
	}
	if l.MinBackoff <= 0 {
		l.MinBackoff = DefaultMinBackoff
	}
	if l.MaxBackoff < l.MinBackoff {
		l.MaxBackoff = max(DefaultMaxBackoff, l.MinBackoff)
	}
	if l.HealthInterval <= 0 {
		l.HealthInterval = DefaultHealthInterval
	}
	if l.PingTimeout <= 0 {
		l.PingTimeout = DefaultPingTimeout
	}
	if l.CatchUpTimeout <= 0 {
		l.CatchUpTimeout = DefaultCatchUpTimeout
	}
	conn, err := l.connect(ctx)
	if err != nil {
		return unavailableIfAway(err) // a node starting waits for it, as for the store's (Store.Open)
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.listening.Store(true)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.run(conn)
	}()
	return nil
}

// Close stops listening and waits for the listener's goroutine to end.
func (l *Listener) Close() error {
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	l.wg.Wait()
	l.listening.Store(false)
	return nil
}

// Ready reports whether the node is listening: while it is not, changes made through other nodes
// do not reach its watchers, so it should not take new ones. Its signature fits a readiness check.
func (l *Listener) Ready(context.Context) error {
	if !l.listening.Load() {
		return errors.New("postgres: not listening for changes (reconnecting)")
	}
	return nil
}

// Reconnects returns how many times the listener has re-established its connection.
func (l *Listener) Reconnects() int64 { return l.reconnects.Load() }

// connect opens the LISTEN connection.
func (l *Listener) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(l.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: listener: parse url: %w", err)
	}
	cfg.RuntimeParams["application_name"] = l.ApplicationName
	// The store's bound: a server that takes the connection and never answers fails it, at
	// start and at each reconnect, as it fails the pool's.
	boundConnect(&cfg.Config, l.URL, cmp.Or(l.Store.ConnectTimeout, DefaultConnectTimeout))
	for k := range cfg.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			delete(cfg.RuntimeParams, k) // the store's pool settings, not server parameters
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: listener: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("postgres: listener: listen: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{OrdersChannel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("postgres: listener: listen for created orders: %w", err)
	}
	if l.Locations != nil {
		for _, ch := range []string{PositionsChannel, LocationChannel} {
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
				_ = conn.Close(context.Background())
				return nil, fmt.Errorf("postgres: listener: listen for positions on %s: %w", ch, err)
			}
		}
	}
	return conn, nil
}

// run receives until Close; each lost connection, or notice it could not follow, is followed
// by a new connection and a catch-up.
func (l *Listener) run(conn *pgx.Conn) {
	ctx := l.ctx
	for {
		err := l.receive(ctx, conn)
		_ = conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		l.listening.Store(false)
		l.forget()
		// Logged once, here: a lost connection, or a notice it could not follow (handle).
		l.Logger.Warn("listener lost its connection, or a notice; reconnecting to catch up", "err", err)
		for {
			if conn = l.reconnect(ctx); conn == nil {
				return
			}
			// LISTEN is in place before the store is read, so a commit after the read is
			// notified and one before it is read: nothing falls in between. What the node
			// learned while nobody listened (its own writes, its own couriers' positions) is
			// forgotten again: other nodes' commits and positions of that time were not heard.
			l.forget()
			cctx, cancel := context.WithTimeout(ctx, l.CatchUpTimeout)
			err = l.Feed.CatchUp(cctx)
			cancel()
			if err == nil {
				break
			}
			_ = conn.Close(context.Background())
			if ctx.Err() != nil {
				return
			}
			l.Logger.Warn("listener catch-up failed; reconnecting", "err", err)
		}
		l.reconnects.Add(1)
		l.listening.Store(true)
		l.Logger.Info("listener reconnected and caught up")
	}
}

// forget drops what the node knows of orders, party logs and positions that commits it did not
// hear may have overtaken: its batches read the orders again, and new streams the positions.
func (l *Listener) forget() {
	l.Store.forgetAll()
	if l.Locations != nil {
		l.Locations.MissedLocations()
	}
}

// receive hands notifications to the Feed until the connection fails or ctx ends. A silent
// connection is checked with a query every HealthInterval, which must answer within PingTimeout.
func (l *Listener) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, l.HealthInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Only the health interval ran out; ask the connection whether it is alive. A
			// timed-out wait leaves the pgx connection usable.
			pctx, cancel := context.WithTimeout(ctx, l.PingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("health check: %w", err)
			}
			continue
		case err != nil:
			return err
		}
		if n.Channel == OrdersChannel {
			// What the node knows of orders only saves it reads: a malformed notice is skipped.
			if orders, latest, err := parseOrders(n.Payload); err != nil {
				l.Logger.Error("listener: ignoring a malformed notice of created orders", "err", err)
			} else {
				l.Store.learn(orders, latest)
			}
			continue
		}
		if n.Channel == PositionsChannel || n.Channel == LocationChannel {
			// Positions are state: a malformed batch is skipped, the next one replaces it.
			var us []ordercast.LocationUpdate
			var err error
			if n.Channel == PositionsChannel {
				us, err = decodePositions(n.Payload, l.Store.node)
			} else {
				us, err = decodeLocations(n.Payload, l.Store.node)
			}
			if err != nil {
				l.Logger.Error("listener: ignoring a malformed batch of positions", "err", err)
			} else if len(us) > 0 {
				l.Locations.ReceiveLocations(us)
			}
			continue
		}
		if err := l.handle(ctx, n.Payload); err != nil {
			return err
		}
	}
}

// handle hands the events of one notification to the Feed, in commit order. An event announced by
// order id and seq only (too large for NOTIFY) is completed from the store; a failure there is
// treated like a lost connection, whose catch-up delivers the event. So is a notification that
// cannot be read: it announced events that watchers would otherwise never get (an order's final
// one among them, and its streams would never end), and the catch-up reads them from the store.
func (l *Listener) handle(ctx context.Context, payload string) error {
	evs, err := parseNotification(payload)
	if err != nil {
		return fmt.Errorf("malformed notification %q: %w", clip(payload, 200), err)
	}
	for _, ev := range evs {
		if ev.Status == "" {
			// Bounded like the health check: a database gone silent must not hold the listener
			// (and its readiness) for as long as TCP takes to give up.
			rctx, cancel := context.WithTimeout(ctx, l.HealthInterval)
			read, err := l.Store.EventsAfter(rctx, ev.OrderID, ev.Seq-1, 1)
			cancel()
			if err != nil {
				return fmt.Errorf("read announced event %s/%d: %w", ev.OrderID, ev.Seq, err)
			}
			if len(read) == 0 || read[0].Seq != ev.Seq {
				return fmt.Errorf("announced event %s/%d is not in the store", ev.OrderID, ev.Seq)
			}
			marks := ev.Marks // the notice carries the marks; the store's row does not
			ev = read[0]
			ev.Marks = marks
		}
		l.Store.follow(ev)
		l.Feed.Publish(ev)
	}
	return nil
}

// clip returns s, cut to at most n bytes, for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// reconnectWarnEvery bounds the listener's warnings while it cannot reconnect: a try every
// MaxBackoff (5 s) through an outage of an hour would otherwise write 720 lines about it.
const reconnectWarnEvery = time.Minute

// reconnect retries connect with exponential backoff until it succeeds or ctx ends (nil). Its
// failures are logged at once, then at most once per reconnectWarnEvery with how many there were.
func (l *Listener) reconnect(ctx context.Context) *pgx.Conn {
	wait := l.MinBackoff
	fails := failurelog.Failures{Every: reconnectWarnEvery}
	for {
		// Jittered in [wait/2, wait], so nodes cut off together do not reconnect together.
		if clock.Sleep(ctx, wait/2+rand.N(wait/2+1)) != nil {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := l.connect(cctx)
		cancel()
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		if c, warn := fails.Failed(0); warn {
			l.Logger.Warn("listener reconnect failed", "err", err, "retry_in", wait, "failures", c.Failures)
		}
		wait = min(2*wait, l.MaxBackoff)
	}
}
