package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/clock"
	"github.com/ordercast/ordercast/internal/storehealth"
	"github.com/ordercast/ordercast/postgres"
	"github.com/ordercast/ordercast/sqlite"
)

// openStore opens the store --db names. A postgres:// URL selects PostgreSQL, whose Listener
// feeds the hub with every node's commits, and catches it up after a lost connection (a
// postgres.Store has no publisher of its own, so nothing arrives twice); anything else is an
// SQLite file, which publishes to the hub itself.
func (m *Main) openStore(ctx context.Context) error {
	// A node that starts while its database is away (a cluster restarting together, a database
	// still recovering) waits for it rather than exiting; only an outage is waited out, never a
	// configuration error.
	return waitForDatabase(ctx, m.DBWait, m.openStoreOnce, func(attempt int, err error) {
		if attempt == 1 {
			m.Logger.Warn("database unavailable at start; waiting for it", "db", redactURL(m.DB), "wait", m.DBWait, "err", err)
		} else {
			m.Logger.Debug("database still unavailable", "attempt", attempt, "err", err)
		}
	})
}

// waitForDatabase calls open until it succeeds, fails with anything but ordercast.EUnavailable,
// or wait has passed, with a doubling, capped delay between attempts; waiting hears of each
// attempt that will be followed by another. Each attempt is told how long it may take to connect
// (attemptBound). It returns open's last error.
func waitForDatabase(ctx context.Context, wait time.Duration, open func(ctx context.Context, connectWithin time.Duration) error, waiting func(attempt int, err error)) error {
	deadline := time.Now().Add(wait)
	delay := dbRetryMin
	for attempt := 1; ; attempt++ {
		err := open(ctx, attemptBound(time.Until(deadline)))
		left := time.Until(deadline)
		if err == nil || ordercast.ErrorCode(err) != ordercast.EUnavailable {
			return err
		}
		if left <= 0 {
			// Said for the operator, whose node now exits: the driver's "retry shortly" is a
			// client's advice, and how long was waited, and what sets it, are not in it.
			return fmt.Errorf("the database stayed unavailable for --db-wait %v (ORDERCAST_DB_WAIT; longer waits longer): %w", wait, err)
		}
		waiting(attempt, err)
		// The last delay is cut to the deadline, where one more attempt is made: a database
		// that comes back within --db-wait is found, however the delays fall.
		if serr := clock.Sleep(ctx, min(delay, left)); serr != nil {
			return fmt.Errorf("waiting for the database: %w", errors.Join(serr, err))
		}
		delay = min(2*delay, dbRetryMax)
	}
}

// attemptBound is how long an attempt to reach the database may take to connect, with left of
// --db-wait still to wait: half of it, from dbAttemptMin to dbAttemptMax. An attempt without a
// bound, on a server that took the connection and never answered, sat until the server's
// authentication_timeout (a minute), or for ever, whatever --db-wait said, and logged nothing.
// Half, so that such a server fails an attempt while there is still time to wait, and the wait
// is logged (waiting); at least dbAttemptMin, so that the attempt made as the wait ends, or the
// only one of --db-wait 0, can still reach a database that answers.
func attemptBound(left time.Duration) time.Duration {
	return min(max(left/2, dbAttemptMin), dbAttemptMax)
}

// The delays between attempts to reach the database at start, doubling from min to max, and
// the bounds of an attempt's connecting (attemptBound).
const (
	dbRetryMin = 100 * time.Millisecond
	dbRetryMax = 5 * time.Second
	// dbAttemptMin is far more than a database that answers takes to take a connection
	// (milliseconds; a TLS handshake over a long route, a few hundred).
	dbAttemptMin = 2 * time.Second
	// dbAttemptMax is postgres.DefaultConnectTimeout, the bound on every later connection.
	dbAttemptMax = postgres.DefaultConnectTimeout
	// DefaultDBWait is how long a starting node waits for an unavailable database.
	DefaultDBWait = time.Minute
)

// openStoreOnce is one attempt to open the store. On PostgreSQL its connecting, the store's and
// the listener's, is bounded by within (connectWithin); the migrations the store applies in
// between are not: they may take minutes, and cut short they would be tried again at every start.
func (m *Main) openStoreOnce(ctx context.Context, within time.Duration) error {
	if !postgres.IsURL(m.DB) {
		st := sqlite.New(m.DB)
		st.Publisher = m.Hub
		st.Logger = m.Logger
		st.Synchronous = strings.ToUpper(m.SQLiteSync)
		st.MinFreeDisk = int64(m.SQLiteMinFreeMiB) << 20
		if m.SQLiteMinFreeMiB == 0 {
			st.MinFreeDisk = -1 // the flag's 0 is "never"; the store's is "the default"
		}
		if err := st.Open(ctx); err != nil {
			return fmt.Errorf("open database %s: %w", m.DB, err)
		}
		m.Store = st
		return nil
	}
	st := postgres.New(m.DB)
	st.Logger, st.NodeID = m.Logger, m.node
	if err := connectWithin(ctx, within, st.Connect); err != nil {
		return fmt.Errorf("open database %s: %w", redactURL(m.DB), err)
	}
	if err := st.Open(ctx); err != nil {
		return fmt.Errorf("open database %s: %w", redactURL(m.DB), err)
	}
	l := postgres.NewListener(m.DB, st, hub.NewFeed(m.Hub, st))
	l.Logger = m.Logger
	l.Locations = m.Tracker
	// Listener.Open's context bounds its first connection only.
	if err := connectWithin(ctx, within, l.Open); err != nil {
		return errors.Join(fmt.Errorf("listen on database %s: %w", redactURL(m.DB), err), st.Close())
	}
	bus := postgres.NewLocationBus(st)
	bus.Batch, bus.Logger, bus.LegacyNotices = m.LocationBatch, m.Logger.With("component", "location-bus"), m.LocationLegacyNotices
	if err := bus.Open(); err != nil {
		return errors.Join(fmt.Errorf("open location bus: %w", err), l.Close(), st.Close())
	}
	m.Tracker.Bus = bus
	m.Store, m.Listener, m.LocationBus = st, l, bus
	return nil
}

// connectWithin calls connect on ctx, bounded by within. A connect that ran out of that bound,
// ctx still going, is the database unavailable ("not answering"), to be waited for like one that
// refuses connections: the bound is the starting node's, on the database, not a caller's that
// gave up on its request, which the driver's deadline error would be taken for.
func connectWithin(ctx context.Context, within time.Duration, connect func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	err := connect(cctx)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil && ordercast.ErrorCode(err) != ordercast.EUnavailable {
		return storehealth.Unavailable("not answering", fmt.Errorf("no connection within %v: %w", within, err))
	}
	return err
}

// readiness lists the checks the store brings to GET /readyz: a cluster node that cannot listen
// would not hear other nodes' changes.
func (m *Main) readiness() []func(context.Context) error {
	if m.Listener == nil {
		return nil
	}
	return []func(context.Context) error{m.Listener.Ready}
}

// batchCounter is a store whose group-commit writer counts its batches (both stores).
type batchCounter interface {
	Batches() (batches, writes int64)
}

// walSizer is a store with a write-ahead log file whose size it reports (SQLite).
type walSizer interface {
	WALSize() (int64, error)
}

// freeDisker is a store whose database is a file (SQLite), on a disk whose free space matters.
type freeDisker interface {
	FreeDisk() (int64, error)
}

// outageReporter is a store that says whether its database is away (both stores).
type outageReporter interface {
	Unavailable() string
}

// outageProbe is how often a node whose database is away probes it (Store.Ping), so that the end
// of the outage is seen when the database is back: the store learns it from a write or a
// readiness probe, and a node nobody writes to or probes (one node, no balancer) would report the
// outage, in ordercast_store_up and in the log's length of it, for as long as it stayed idle.
const outageProbe = 2 * time.Second

// probeOutage pings the store if it is away, or, on a cluster, while the listener has lost the
// database: the store learns of an outage only from a request, so an idle node (no writes, and
// no balancer polling /readyz, as with nginx's passive checks) would otherwise go on reporting
// ordercast_store_up 1 through the whole outage, and log none of it. What the ping finds is the
// store's to record and log (storehealth). A store whose listener is up is not pinged: nothing
// polls a database that answers.
func (m *Main) probeOutage(ctx context.Context) {
	or, ok := m.Store.(outageReporter)
	if !ok {
		return
	}
	listenerDown := m.Listener != nil && m.Listener.Ready(ctx) != nil
	if or.Unavailable() == "" && !listenerDown {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, outageProbe)
	defer cancel()
	_ = m.Store.Ping(pctx) // its error is the outage going on, which the store has logged
}

// bytesGauge is a gauge of a size that read reads at each scrape: NaN when it cannot (unknown,
// which 0 would hide).
func bytesGauge(name, help string, read func() (int64, error)) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		n, err := read()
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
}

// up is a gauge's value of a condition: 1 when it holds.
func up(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

// storeMetrics lists the metrics the store brings to /metrics: whether its database answers, how
// much its writer batches, on SQLite the size of its WAL, and on PostgreSQL how the node's
// batches were committed, its connection pool, whether and how often its listener lost the
// database, whether another node's settings disagree with its own, and how full the server's
// NOTIFY queue is.
func (m *Main) storeMetrics() []prometheus.Collector {
	var cs []prometheus.Collector
	if or, ok := m.Store.(outageReporter); ok {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordercast_store_up",
			Help: "1 while the database answered the node's last write or probe, 0 during an outage (the node answers writes 503 then); alert on 0 for longer than a blip.",
		}, func() float64 { return up(or.Unavailable() == "") }))
	}
	if bc, ok := m.Store.(batchCounter); ok {
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "ordercast_write_batches_total",
				Help: "Transactions the store's writer committed, each carrying every write queued meanwhile (group commit).",
			}, func() float64 { b, _ := bc.Batches(); return float64(b) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "ordercast_batched_writes_total",
				Help: "Writes (order creations, status changes, courier assignments) judged in those transactions; divided by ordercast_write_batches_total, the average batch.",
			}, func() float64 { _, w := bc.Batches(); return float64(w) }),
		)
	}
	if ws, ok := m.Store.(walSizer); ok {
		cs = append(cs, bytesGauge("ordercast_sqlite_wal_bytes",
			"Size of the SQLite database's WAL file: within 64 MiB plus a batch, unless a reader in another process keeps a transaction open (a backup, litestream, a sqlite3 shell).",
			ws.WALSize))
	}
	if fd, ok := m.Store.(freeDisker); ok {
		cs = append(cs, bytesGauge("ordercast_sqlite_free_disk_bytes",
			"Free space on the SQLite database's file system; below --sqlite-min-free, /readyz answers 503 (writes go on until the disk is full, then fail 503).",
			fd.FreeDisk))
	}
	if m.Listener == nil {
		return cs
	}
	st, l := m.Listener.Store, m.Listener
	cs = append(cs, newPoolCollector(st.PoolStat))
	if m.settingsCheck != nil {
		cs = append(cs, m.settingsCheck.metrics()...)
	}
	if m.notifyQueue != nil {
		cs = append(cs, notifyQueueMetrics(m.notifyQueue)...)
	}
	batches := func(path string, n func(postgres.Paths) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "ordercast_pg_batches_total",
			Help:        "Batches of writes this node committed, by path: one_round_trip (judged from what the node knew) or locking (read under lock first).",
			ConstLabels: prometheus.Labels{"path": path},
		}, func() float64 { return float64(n(st.Paths())) })
	}
	return append(cs,
		batches("one_round_trip", func(p postgres.Paths) int64 { return p.OneRoundTrip }),
		batches("locking", func(p postgres.Paths) int64 { return p.Locking }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordercast_pg_wrong_guesses_total",
			Help: "One-round-trip batches refused by a guard because another node had moved an order or a party log unseen; each was committed again on the locking path.",
		}, func() float64 { return float64(st.Paths().WrongGuesses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordercast_pg_listener_up",
			Help: "1 while this node's LISTEN connection is up, 0 while it reconnects: the node hears no other node's changes meanwhile (its streams catch up when it is back).",
		}, func() float64 { return up(l.Ready(context.Background()) == nil) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ordercast_pg_listener_reconnects_total",
			Help: "Times this node's listener lost its database connection, reconnected and caught up.",
		}, func() float64 { return float64(l.Reconnects()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordercast_pg_clock_offset_seconds",
			Help: "The database's clock minus this node's, as the node reckons it from its writes' round trips (the midpoint of the tightest recent one: within half the difference between the ways there and back). Events are stamped on the database's clock; tokens and positions on the node's: alert when it passes a few seconds (a tracking token signed on a node 30 s ahead is refused by the others).",
		}, func() float64 { return st.Offset().Seconds() }),
	)
}

// closeStore stops the listener, then closes the store it reads from.
func (m *Main) closeStore() error {
	var errs []error
	if m.LocationBus != nil {
		if err := m.LocationBus.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close location bus: %w", err))
		}
	}
	if m.Listener != nil {
		if err := m.Listener.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close listener: %w", err))
		}
	}
	if m.Store != nil {
		if err := m.Store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// redactURL hides a password in a database URL, for logs and errors; a file path is returned
// as it is.
func redactURL(db string) string {
	if !postgres.IsURL(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "(unparsable URL)"
	}
	// libpq also takes the password (and a client key's passphrase) as query parameters.
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// looksLikeOtherURL reports whether db is no PostgreSQL URL (postgres.IsURL) but reads as a URL
// or a near miss of one: a scheme and "://" ("postgress://", "Postgres://", "mysql://"), or
// postgres's scheme without the slashes, in any case ("postgres:user:pw@host"). Taken for an SQLite
// file's name, it ran the node alone, ready, on a file of that name, the password in every log
// line that named the database; or it failed naming the password in the error.
func looksLikeOtherURL(db string) bool {
	if postgres.IsURL(db) {
		return false
	}
	scheme, _, found := strings.Cut(db, "://")
	// file: names an SQLite file (file:///var/lib/ordercast/ordercast.db, sqlite.Store.Path).
	if found && scheme != "" && scheme != "file" && !strings.ContainsAny(scheme, `/\`) {
		return true
	}
	lower := strings.ToLower(db)
	return strings.HasPrefix(lower, "postgres:") || strings.HasPrefix(lower, "postgresql:")
}

// rawAtInUserinfo reports whether db is a PostgreSQL URL whose user or password holds an @ left
// as it is. The driver (pgx, as libpq) ends the user and password at the first @ before the first
// /, a ? included, and takes the rest as the host: a second @ there means a piece of the password
// is read as the host, and named in the driver's errors.
func rawAtInUserinfo(db string) bool {
	if !postgres.IsURL(db) {
		return false
	}
	_, rest, _ := strings.Cut(db, "://")
	authority, _, _ := strings.Cut(rest, "/")
	_, host, found := strings.Cut(authority, "@")
	if !found {
		return false
	}
	host, _, _ = strings.Cut(host, "?")
	return strings.Contains(host, "@")
}

// connStringKeys are the keys of a libpq key=value connection string that a --db value is most
// likely to hold.
var connStringKeys = []string{"host", "hostaddr", "port", "dbname", "user", "password", "passfile",
	"sslmode", "sslrootcert", "service", "connect_timeout", "application_name", "options", "target_session_attrs"}

// looksLikeConnString reports whether db is a libpq key=value connection string ("host=db
// user=u password=…"). Taken for what it is not, an SQLite file's name, it would run the node on
// a file of that name in its working directory, alone, with the password in every log line.
func looksLikeConnString(db string) bool {
	for _, field := range strings.Fields(db) {
		if k, _, ok := strings.Cut(field, "="); ok && slices.Contains(connStringKeys, strings.ToLower(k)) {
			return true
		}
	}
	return false
}
