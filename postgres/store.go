// Package postgres implements ordercast.Store on PostgreSQL (through pgx), and the bus that lets
// many ordercast nodes share it: every batch of changes is announced with one pg_notify inside
// its own transaction, and each node's Listener holds one LISTEN connection that feeds its hub.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/groupcommit"
	"github.com/ordercast/ordercast/internal/ordercache"
	"github.com/ordercast/ordercast/internal/storehealth"
)

var (
	_ ordercast.Store              = (*Store)(nil)
	_ ordercast.LatestEventsReader = (*Store)(nil)
)

// Defaults for the tunable fields of Store.
const (
	// DefaultMaxConns bounds the connection pool of one node. PostgreSQL's own limit (100 by
	// default) is shared by every node, so a node takes a modest share.
	DefaultMaxConns = 16
	// DefaultMaxNotifyPayload is the largest NOTIFY payload sent; PostgreSQL refuses payloads of
	// 8000 bytes or more. A batch whose events do not fit is announced in several payloads; an
	// event that alone does not fit is announced by order id and seq only.
	DefaultMaxNotifyPayload = 7900
	// MinNotifyPayload is the smallest MaxNotifyPayload: it holds the short form of any event,
	// which announces it by order id, seq and marks alone (notify.go) and has nothing left to
	// cut. That form takes at most 468 bytes: ids of ordercast.MaxIDLength, a seq and log
	// positions of 19 digits, and the marks of four parties (the order's restaurant, customer
	// and courier, and the courier it left).
	MinNotifyPayload = 512
	// DefaultOrderCache bounds the memory of the orders a node remembers: about 30,000 orders
	// of small details.
	DefaultOrderCache = ordercache.DefaultSize
	// DefaultApplicationName names the pool's connections in pg_stat_activity.
	DefaultApplicationName = "ordercast"
	// DefaultBatchTimeout bounds a batch, over every attempt it makes: a database that stops answering without
	// closing the connection (a dead host, a dropped route) would otherwise hold the writer, and
	// every write queued behind it, until the kernel gives up on TCP, minutes later. A batch
	// takes milliseconds; ten seconds is far past any lock wait a sound cluster has, and under
	// the HTTP write timeout (30 s), so its writes are answered 503 while their clients listen.
	DefaultBatchTimeout = 10 * time.Second
	// DefaultReadTimeout bounds one read, for the same reason: a request's context has no
	// deadline, and a read of a silent database would hold the request until TCP gives up. A
	// read takes milliseconds; past ten seconds it is answered 503 like a write.
	DefaultReadTimeout = 10 * time.Second
	// DefaultNotAnsweringTimeout bounds a read or a batch once another has waited out its bound
	// for an answer and none has come since: a request is answered 503 in a second, not in ten,
	// while the database stays silent.
	DefaultNotAnsweringTimeout = time.Second
	// DefaultIdleInTransactionTimeout is the pool's idle_in_transaction_session_timeout: how long
	// PostgreSQL keeps a session that sits in a transaction, waiting for its node, before it ends
	// the session and lets its locks go. A node's transaction waits on the node only between its
	// round trips, for microseconds; a node whose host died, or whose route dropped, between them
	// would otherwise hold its orders' rows and its parties' log heads until TCP gave up (two
	// hours with the kernel's keepalives), and every node's writes to those orders and parties
	// would wait out their BatchTimeout and fail. A URL that sets the parameter is the operator's
	// word.
	DefaultIdleInTransactionTimeout = 5 * time.Second
	// DefaultConnectTimeout bounds the making of each connection, the server's answers to the
	// start-up and authentication included: without a bound, a server that takes the connection
	// and never answers (hung, or stuck on its disk) held the attempt until the server's own
	// authentication_timeout (a minute by default), or for ever. A connection is made in
	// milliseconds; ten seconds leaves a slow TLS handshake over a long route plenty.
	DefaultConnectTimeout = 10 * time.Second
)

// Channel is the NOTIFY channel that carries committed events.
const Channel = "ordercast_events"

// IsURL reports whether db names a PostgreSQL database (a postgres:// or postgresql:// URL)
// rather than an SQLite file.
func IsURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Store is an ordercast.Store backed by PostgreSQL. Set the exported fields after New and before
// Open.
type Store struct {
	// URL is the connection string, postgres://user@host:port/db?sslmode=…
	URL string

	// Logger receives operational messages. Nil discards them.
	Logger *slog.Logger
	// NodeID names this node in its notices, its row of cluster_nodes, and its log (the caller's
	// Logger, which the caller gives it); empty means a random one (NewNodeID). Unique per
	// running node: a node's listener skips the position notices of its own id.
	NodeID string

	// MaxConns is the size of the connection pool; zero means DefaultMaxConns. A pool_max_conns
	// parameter in URL overrides it.
	MaxConns int32
	// MaxNotifyPayload is the largest payload sent with pg_notify, from MinNotifyPayload to
	// 7999 (PostgreSQL refuses 8000 bytes); zero means DefaultMaxNotifyPayload.
	MaxNotifyPayload int
	// ApplicationName is set on the pool's connections; empty means DefaultApplicationName.
	ApplicationName string
	// MaxBatch bounds the writes committed in one transaction; zero means
	// groupcommit.DefaultMaxBatch.
	MaxBatch int
	// OrderCache bounds the memory (bytes) of the orders this node remembers, to judge a batch
	// without reading them (see known.go); zero means DefaultOrderCache, a negative value
	// remembers none (a batch that changes orders then takes the locking path).
	OrderCache int64
	// BatchTimeout bounds committing a batch, however many attempts it takes (a lost
	// connection, a lost race); past it the batch's writes fail with EUnavailable ("not
	// answering"). Zero means DefaultBatchTimeout.
	BatchTimeout time.Duration
	// ReadTimeout bounds each read (an order, its events, a party's snapshot, a ping); past it
	// the read fails with EUnavailable ("not answering"). Zero means DefaultReadTimeout.
	ReadTimeout time.Duration
	// NotAnsweringTimeout bounds an attempt (a read, a batch) while the database is not
	// answering, but for one at a time, which is given its whole bound (see leash). Zero means
	// DefaultNotAnsweringTimeout.
	NotAnsweringTimeout time.Duration
	// IdleInTransactionTimeout is the pool's idle_in_transaction_session_timeout; zero means
	// DefaultIdleInTransactionTimeout. An idle_in_transaction_session_timeout parameter in URL
	// overrides it.
	IdleInTransactionTimeout time.Duration
	// ConnectTimeout bounds the making of each connection of the pool, and of its Listener's;
	// past it the connection fails with EUnavailable ("not answering"). Zero means
	// DefaultConnectTimeout. A connect_timeout in URL (or PGCONNECT_TIMEOUT in the environment)
	// overrides it, 0 included, which is libpq's "wait for ever".
	ConnectTimeout time.Duration
	// MigrationLockTimeout is the lock_timeout of the migrations Open applies: past it a try
	// gives up its place in a table's lock queue, logs who holds the table, and tries again after
	// MigrationRetry. Zero means DefaultMigrationLockTimeout.
	MigrationLockTimeout time.Duration
	// MigrationRetry is the pause after the first try of the migrations that gave up on a lock,
	// doubling at each try up to DefaultMigrationRetryMax (or MigrationRetry, if longer). Zero
	// means DefaultMigrationRetry.
	MigrationRetry time.Duration

	pool    *pgxpool.Pool
	batches *groupcommit.Writer
	// endedIndexed is set once the index the purges read has been found valid or built
	// (ensureEndedIndex).
	endedIndexed atomic.Bool
	// publisher is set only by the conformance tests (export_test.go), which check what a store
	// announces without a database listener. In a program a Store's commits reach a hub through
	// its Listener alone, which hears every node's commits, this one's included: there is no
	// field to set, so no node can be wired to deliver an event twice.
	publisher ordercast.Publisher
	// beforeCommit, set only by tests (export_test.go), runs after a change wrote everything and
	// before it commits: a test holds a writer there to interleave commits.
	beforeCommit func(ordercast.Event)
	// failAttempt, set only by tests (export_test.go), fails a batch's attempt n (the one made
	// after n-1 lost races) with its error before anything is sent: a test makes a batch lose
	// races it cannot stage. ctx is the attempt's, bounded as the attempt is.
	failAttempt func(ctx context.Context, n int) error
	tracker     storehealth.Tracker // whether the database is away, and why
	leash       leash               // whether it has stopped answering: waits shortened
	closed      atomic.Bool         // Close was called: every failure is the store closing
	// opened is when Open began, and lostAt when a connection was last found lost, as time
	// since opened (0: never): the pool pings the connections idle since before then (read.go).
	opened time.Time
	lostAt atomic.Int64
	// resetAt is when Ping last reset the pool (resetPool), as time since opened (0: never), and
	// resetEvery the least time between two resets (DefaultResetEvery; a test's shorter).
	resetAt    atomic.Int64
	resetEvery time.Duration

	recent *ordercache.Cache
	heads  partyHeads
	clock  dbClock // the database's clock, as this node reckons it
	// node names this store's notices of positions (positions.go), so that its listener skips
	// its own.
	node string
	// paths counts the batches committed in one round trip, the guesses that failed, and the
	// batches committed on the locking path.
	paths struct{ oneTrip, wrong, locking atomic.Int64 }
}

// Paths counts how a Store's batches were committed since it opened.
type Paths struct {
	// OneRoundTrip batches were judged from what the node knew and committed in one pipeline.
	OneRoundTrip int64
	// WrongGuesses were one-round-trip batches a guard refused (another node had moved an order
	// or a party log on unseen); each was then committed on the locking path.
	WrongGuesses int64
	// Locking batches read their orders under lock first: an order the node did not know, a
	// write refused or repeated, or a wrong guess.
	Locking int64
}

// Paths returns how s committed its batches so far. Many wrong guesses mean the nodes do not hear
// each other's commits (a listener away), or an order is written on several nodes at once.
func (s *Store) Paths() Paths {
	return Paths{OneRoundTrip: s.paths.oneTrip.Load(), WrongGuesses: s.paths.wrong.Load(), Locking: s.paths.locking.Load()}
}

// setsPoolMaxConns reports whether the connection string sets pool_max_conns, in either of its
// forms (a URL, or key=value pairs). pgx keeps the parameters it does not know among the
// connection's, so the setting is found there and nowhere else: not in a password, a database
// name or another parameter's value that happens to spell it.
func setsPoolMaxConns(conn string) bool {
	c, err := pgx.ParseConfig(conn)
	if err != nil {
		return false // pgxpool.ParseConfig has parsed it already; not reached
	}
	_, ok := c.RuntimeParams["pool_max_conns"]
	return ok
}

// boundConnect gives cfg, parsed from conn, the connect timeout d unless conn or the
// environment sets one (setsConnectTimeout).
func boundConnect(cfg *pgconn.Config, conn string, d time.Duration) {
	if cfg.ConnectTimeout == 0 && !setsConnectTimeout(conn) {
		cfg.ConnectTimeout = d
	}
}

// setsConnectTimeout reports whether the connection string, or the environment libpq reads
// (PGCONNECT_TIMEOUT), sets connect_timeout, 0 included, libpq's "wait for ever", which is the
// operator's word as much as another value. pgx takes the setting out of the parameters it
// keeps, and its 0 is also that of none, so it is looked for where it is written: a URL's
// query, or a key=value string's keys.
func setsConnectTimeout(conn string) bool {
	if os.Getenv("PGCONNECT_TIMEOUT") != "" { // pgx, as libpq, takes an empty one for none
		return true
	}
	if IsURL(conn) {
		u, err := url.Parse(conn)
		return err == nil && u.Query().Has("connect_timeout")
	}
	for _, field := range strings.Fields(conn) {
		if k, _, ok := strings.Cut(field, "="); ok && k == "connect_timeout" {
			return true
		}
	}
	return false
}

// PoolStat returns the connection pool's figures of the moment (for /metrics). Call it only
// after Open has succeeded.
func (s *Store) PoolStat() *pgxpool.Stat {
	return s.pool.Stat()
}

// New returns a Store for the database at url. Call Open before using it.
func New(url string) *Store {
	return &Store{URL: url, resetEvery: DefaultResetEvery}
}

// Open validates the settings, connects the pool (Connect, unless called already) and applies
// any pending migrations. It fails fast when the database is unreachable. On error nothing stays
// open.
func (s *Store) Open(ctx context.Context) (err error) {
	if s.pool == nil {
		if err := s.Connect(ctx); err != nil {
			return err
		}
	}
	defer func() {
		if err != nil {
			_ = s.Close() // the Open error is the one worth reporting
		}
	}()
	// The database may go away again between the ping and what follows (a restart, its
	// connections all taken): that too is an outage to wait out at start, not a failure.
	if err := s.migrate(ctx); err != nil {
		return unavailableIfAway(err)
	}
	if err := s.readClock(ctx); err != nil {
		return unavailableIfAway(err)
	}
	s.recent = ordercache.New(s.OrderCache)
	s.batches = groupcommit.Start(s.commitBatch, s.MaxBatch, nil)
	return nil
}

// Connect validates the settings and makes the pool's first connection: the part of Open that
// finds whether the database is there, which Open does itself unless it was called first. A
// caller that bounds how long it waits for the database calls it first, with a deadline, then
// Open without one: the migrations Open applies may take minutes (an index over a large table,
// the waits for tables' locks), and cut short they would be tried again at every start. On
// error nothing stays open, and the Store is not used again.
func (s *Store) Connect(ctx context.Context) (err error) {
	s.applyDefaults()
	if err := s.validate(); err != nil {
		return err
	}
	cfg, err := s.poolConfig()
	if err != nil {
		return err
	}
	s.opened = time.Now()
	defer func() {
		if err != nil {
			_ = s.Close() // the Connect error is the one worth reporting
		}
	}()
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: connect %s@%s/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Database, connectError(err))
	}
	return nil
}

// applyDefaults gives every setting left zero its default.
func (s *Store) applyDefaults() {
	if s.node == "" {
		s.node = cmp.Or(s.NodeID, NewNodeID())
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.tracker.Logger, s.tracker.Classify, s.tracker.Full = s.Logger, unavailableReason, reasonDiskFull
	if s.MaxConns == 0 {
		s.MaxConns = DefaultMaxConns
	}
	if s.MaxNotifyPayload == 0 {
		s.MaxNotifyPayload = DefaultMaxNotifyPayload
	}
	if s.OrderCache == 0 {
		s.OrderCache = DefaultOrderCache
	}
	if s.ApplicationName == "" {
		s.ApplicationName = DefaultApplicationName
	}
	if s.BatchTimeout == 0 {
		s.BatchTimeout = DefaultBatchTimeout
	}
	if s.ReadTimeout == 0 {
		s.ReadTimeout = DefaultReadTimeout
	}
	if s.NotAnsweringTimeout == 0 {
		s.NotAnsweringTimeout = DefaultNotAnsweringTimeout
	}
	if s.IdleInTransactionTimeout == 0 {
		s.IdleInTransactionTimeout = DefaultIdleInTransactionTimeout
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.MigrationLockTimeout == 0 {
		s.MigrationLockTimeout = DefaultMigrationLockTimeout
	}
	if s.MigrationRetry == 0 {
		s.MigrationRetry = DefaultMigrationRetry
	}
}

// validate refuses settings the store cannot run with, its defaults applied.
func (s *Store) validate() error {
	if s.MaxConns < 0 || s.MaxBatch < 0 || s.BatchTimeout < 0 || s.ReadTimeout < 0 || s.NotAnsweringTimeout < 0 ||
		s.IdleInTransactionTimeout < 0 || s.ConnectTimeout < 0 || s.MigrationLockTimeout < 0 || s.MigrationRetry < 0 {
		return errors.New("postgres: MaxConns, MaxBatch, BatchTimeout, ReadTimeout, NotAnsweringTimeout, IdleInTransactionTimeout, ConnectTimeout, MigrationLockTimeout and MigrationRetry must not be negative")
	}
	if s.MaxNotifyPayload < MinNotifyPayload || s.MaxNotifyPayload >= 8000 {
		return fmt.Errorf("postgres: MaxNotifyPayload is %d bytes; it must be from %d (the short notice of an event, by order id, seq and marks, must fit) to 7999 (PostgreSQL refuses 8000)",
			s.MaxNotifyPayload, MinNotifyPayload)
	}
	return nil
}

// poolConfig is the pool's configuration: the URL's, with the store's settings where the URL
// leaves them out.
func (s *Store) poolConfig() (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(s.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if !setsPoolMaxConns(s.URL) {
		cfg.MaxConns = s.MaxConns // the URL's pool_max_conns, when given, is the operator's word
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = s.ApplicationName
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(max(1, s.IdleInTransactionTimeout.Milliseconds()), 10)
	}
	boundConnect(&cfg.ConnConfig.Config, s.URL, s.ConnectTimeout)
	cfg.ShouldPing = s.shouldPing
	cfg.ConnConfig.Tracer = poolTracer{} // a wait for a connection of a full pool is told apart
	return cfg, nil
}

// unavailableIfAway marks err unavailable when it says the database is away: a node starting
// waits for it (see cmd/ordercast) rather than exiting.
func unavailableIfAway(err error) error {
	if reason := unavailableReason(err); reason != "" {
		return storehealth.Unavailable(reason, err)
	}
	return err
}

// connectError marks err, a connection that could not be made, as what a starting node does
// about it: wait for a database away (unavailableIfAway); exit, not to be restarted, when the
// server refuses the node's settings (refusedSettings), with what to do about it.
func connectError(err error) error {
	if hint := refusedSettings(err); hint != "" {
		return storehealth.Misconfigured(fmt.Errorf("%w: %s", err, hint))
	}
	return unavailableIfAway(err)
}

// Close stops the writer (writes still queued fail with an error) and closes the connection
// pool. It is safe to call on a Store that failed to open, and more than once. Both stay in
// place: a request still running when a shutdown gives up waiting for it gets a closed writer's
// or pool's error, answered 503 (health), not a nil pointer.
func (s *Store) Close() error {
	s.closed.Store(true)
	if s.batches != nil {
		s.batches.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	return nil
}

// Ping reports whether the database takes writes, as readiness means: it answers; it is neither
// a standby nor set read-only (default_transaction_read_only), where reads succeed and every
// write fails; and no lock on the tables every write takes (a VACUUM FULL, an ALTER TABLE, a LOCK
// TABLE, a CREATE INDEX without CONCURRENTLY on orders or order_events) holds them waiting, which
// a plain query never saw: /readyz said 200 and ordercast_store_up 1 while every write waited out
// BatchTimeout and was answered 503. (A lock on a table only some writes take, the idempotency
// keys', a party's log, is no outage of the node: those writes are answered 503, the others go
// on.) Only that success proves the database available again (storehealth). A ping is a question
// of whether the database answers in time, and its caller's deadline is that time: one that runs
// out finds the database silent (see pingDeadline).
//
// A connection opened while the database was read-only stays so when the setting is undone: a
// ping that finds the database read-only lets go of the pool's connections (pgxpool's Reset, at
// most every DefaultResetEvery: a standby's outage must not churn them on every probe) and asks again
// on a new one, so that writes come back with the first probe after the database does, not when
// the pool retires its connections (an hour).
func (s *Store) Ping(ctx context.Context) error {
	if s.pool == nil {
		return s.health(errors.New("postgres: store not open"), storehealth.ProvesNothing) // or closed: unavailable
	}
	start := time.Now()
	err := s.readAgainOnLoss(ctx, s.probe)
	if errors.Is(err, errReadOnly) && s.resetPool() {
		err = s.readAgainOnLoss(ctx, s.probe) // on a connection opened now: the database's say
	}
	proof := storehealth.ProvesAnswer
	if err == nil && s.tracker.Reason() == reasonDiskFull {
		// The probe writes nothing, and passes on a full disk: only a write ends that outage,
		// and a node that /readyz keeps out of a balancer's rotation gets none.
		err, proof = s.probeDisk(ctx), storehealth.ProvesWrite
	}
	err = pingDeadline(ctx, err, time.Since(start))
	if err := s.health(err, proof); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// probeDisk asks whether the database has room to write again, once a write found it out of
// disk space: it creates a table of its own, grows it by a page, and rolls back, in one round
// trip. A new relation's first page is written to its file at once, on the disk the orders live
// on (unless the table is put in another tablespace: default_tablespace), so a disk still full
// fails it (53100), as it fails a write that needs a new page of orders. A few kilobytes free
// pass it, and the next write that needs more begins the outage again.
func (s *Store) probeDisk(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// One simple query, its statements run in turn: prepared, the INSERT would name a table
	// that does not exist yet. A failed statement ends it inside the transaction, and the pool
	// closes a connection it finds in one rather than hand it on.
	table := pgx.Identifier{"ordercast_disk_probe_" + s.node}.Sanitize()
	_, err = conn.Conn().PgConn().Exec(ctx, "BEGIN; CREATE TABLE "+table+" (b int); INSERT INTO "+table+" VALUES (1); ROLLBACK").ReadAll()
	return err
}

// DefaultResetEvery is the least time between two resets of the pool by Ping.
const DefaultResetEvery = 10 * time.Second

// resetPool lets go of the pool's connections (those in use when they are released) and reports
// whether it did: not within resetEvery of its last reset.
func (s *Store) resetPool() bool {
	now := int64(time.Since(s.opened))
	last := s.resetAt.Load()
	if last != 0 && time.Duration(now-last) < s.resetEvery || !s.resetAt.CompareAndSwap(last, now) {
		return false
	}
	s.pool.Reset()
	return true
}

// probe is Ping's question, in one round trip, in a transaction it rolls back: is the database
// writable, and can a write take its locks on the tables every write takes (ROW EXCLUSIVE, which
// only a lock that stops writes conflicts with) within lockWait, half the ping's time. Those are
// the orders and their events, and the party logs and their heads, which every write of an order
// with a party takes (nearly every order has its restaurant): a lock on party_log (a VACUUM FULL
// of the biggest table, a CREATE INDEX) stopped the writes while the nodes stayed ready.
func (s *Store) probe(ctx context.Context) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(`SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool, set_config('lock_timeout', $1, true)`,
		strconv.FormatInt(lockWait(ctx).Milliseconds(), 10))
	b.Queue("LOCK TABLE orders, order_events, party_log, party_heads IN ROW EXCLUSIVE MODE")
	b.Queue("ROLLBACK")
	// A failed statement skips the rest, ROLLBACK included; the pool then closes the connection,
	// which it finds in a transaction, rather than hand it on.
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	var readOnly bool
	if err := br.QueryRow().Scan(&readOnly, nil); err != nil {
		return err
	}
	if readOnly {
		return errReadOnly
	}
	if _, err := br.Exec(); err != nil {
		if busyReason(err) != "" {
			// Not the lock_timeout's error: busyReason would take a whole table's lock for
			// one order's, no outage.
			return fmt.Errorf("%w: %v", errLocked, err)
		}
		return err
	}
	_, err := br.Exec()
	return err
}

// lockWait is how long Ping's probe waits for the tables' locks: half the time ctx leaves it,
// from 10 ms to a second, so that a held lock is told as such before the ping's deadline.
func lockWait(ctx context.Context) time.Duration {
	d := time.Second
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline)/2)
	}
	return max(d, 10*time.Millisecond)
}

// publish hands a committed event to the test publisher, if any.
func (s *Store) publish(ev ordercast.Event) {
	if s.publisher != nil {
		s.publisher.Publish(ev)
	}
}

// Batches returns how many batches the store's writer has committed since it opened, and how many
// writes they carried. Call it between Open and Close.
func (s *Store) Batches() (batches, writes int64) { return s.batches.Counts() }
