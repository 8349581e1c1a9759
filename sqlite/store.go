// Package sqlite implements ordercast.Store on an SQLite file, the embedded default store. It uses
// the pure-Go driver modernc.org/sqlite so the binary needs no C toolchain.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/groupcommit"
	"github.com/ordercast/ordercast/internal/ordercache"
	"github.com/ordercast/ordercast/internal/storehealth"
)

var _ ordercast.Store = (*Store)(nil)

// Defaults for the tunable fields of Store.
const (
	// DefaultBusyTimeout is how long a connection waits for a lock held by another process (a
	// second ordercast on the same file, or a backup tool) before failing with SQLITE_BUSY.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultMaxReaders bounds the read pool; WAL lets readers run beside the one writer.
	DefaultMaxReaders = 8
	// DefaultSynchronous is FULL: the WAL is synced on every commit, once per batch with group
	// commit, before the batch's changes are answered or pushed, so a change anyone was told of
	// survives a power loss or an OS crash too, at the disk's sync latency. NORMAL, SQLite's
	// advice for WAL mode, syncs only at checkpoints: a commit survives a crash of the process
	// (the OS holds the write), but a power loss may roll back the last commits that watchers
	// already saw, and the next changes then take the same seqs with other statuses; the file is
	// never corrupted either way.
	DefaultSynchronous = "FULL"
	// DefaultCheckpointInterval is the least time between two looks at the WAL's size, unless
	// commits fill CheckpointSize of it faster (see waitToLook); a store without a commit for as
	// long is idle, and its WAL file is emptied.
	DefaultCheckpointInterval = time.Second
	// DefaultCheckpointSize is the WAL size past which a PASSIVE checkpoint runs (about 1,000
	// pages of 4 KiB, as litestream's minimum), and how far short of MaxWALSize one runs at once
	// to leave the writer's RESTART little to copy.
	DefaultCheckpointSize = 4 << 20
	// DefaultOrderCache bounds the memory (bytes, approximately) of the orders the writer
	// remembers from its last batches, so that a batch reads from the database only the orders
	// it has not written lately: about 30,000 orders of small details.
	DefaultOrderCache = ordercache.DefaultSize
	// DefaultMaxWALSize bounds the WAL: once a commit takes it past this size, the writer runs a
	// RESTART checkpoint before its next batch (a PASSIVE one has copied most of it), so that the
	// next commit starts the WAL over; a purge's commit (writeAside) is bound the same way. The
	// file stays within this size plus one transaction, a batch or a purge's (at most a few MiB),
	// unless a reader in another process keeps a transaction open (see boundWAL).
	DefaultMaxWALSize = 64 << 20
	// DefaultMinFreeDisk is the free space on the database's file system below which the store
	// is not ready (Ping): the WAL grows to its bound before it starts over, and each checkpoint
	// may grow the database file by as much (the pages are new), so less than twice the bound
	// may fail the next commits.
	DefaultMinFreeDisk = 2 * (DefaultMaxWALSize + maxBatchWAL)
)

// maxBatchWAL is the most WAL one batch writes, with margin: DefaultMaxBatch creations of orders
// with the largest details and owners, recording 6 KB idempotency answers, wrote 3.6 MiB.
const maxBatchWAL = 4 << 20

// Store is an ordercast.Store backed by one SQLite database file in WAL mode. Set the exported
// fields after New and before Open.
type Store struct {
	// Path is the database file; it is created when missing.
	Path string

	// Publisher receives every committed event, in commit order. Nil publishes nothing.
	Publisher ordercast.Publisher
	// Now returns the current time; tests replace it. Defaults to time.Now.
	Now func() time.Time
	// Logger receives operational messages. Nil discards them.
	Logger *slog.Logger

	// BusyTimeout is SQLite's busy_timeout; zero means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// MaxReaders is the size of the read connection pool; zero means DefaultMaxReaders.
	MaxReaders int
	// MaxBatch bounds the writes committed in one transaction; zero means
	// groupcommit.DefaultMaxBatch.
	MaxBatch int
	// Synchronous is SQLite's synchronous setting: NORMAL (a power loss may roll back the last
	// commits; a process crash loses nothing), FULL (durable against power loss on COMMIT) or
	// EXTRA. Empty means DefaultSynchronous.
	Synchronous string
	// CheckpointInterval and CheckpointSize drive the background checkpointer, MaxWALSize the
	// writer's bound on the WAL (boundWAL); zero means the Default of each.
	CheckpointInterval time.Duration
	CheckpointSize     int64
	MaxWALSize         int64
	// OrderCache bounds the memory (bytes) of the orders the writer remembers (see internal/ordercache);
	// zero means DefaultOrderCache, a negative value remembers none.
	OrderCache int64
	// MinFreeDisk is the free space (bytes) on the database's file system below which Ping says
	// the store is not ready; zero means DefaultMinFreeDisk, a negative value never judges it.
	// Writes are not refused for it: they fail only when the disk is full (503, "full").
	MinFreeDisk int64

	// writer is the pool of write connections: one pinned by the group-commit writer (conn), one
	// by the checkpointer, one spare for Ping. Only conn writes, so writes never contend for
	// SQLite's write lock among themselves; readers is a separate pool so reads never wait
	// behind a write.
	writer  *sql.DB
	readers *sql.DB
	// file is the database file SQLite opened, which is Path only when Path is a plain file name
	// (a file: URI names it its own way); set by lock, at open.
	file    string
	opened  openedFiles // the files at file when the store opened them (checkFiles)
	held    *os.File    // the lock file, locked while the store is open (lock)
	corrupt atomic.Bool // a read or write found the file damaged (health): unready until restarted
	lowDisk atomic.Bool // the last readiness probe found less free disk than MinFreeDisk
	reads   *reads      // the readers' queries, prepared once
	conn    *sql.Conn
	stmts   *statements
	batches *groupcommit.Writer
	ckpt    *checkpointer
	recent  *ordercache.Cache
	// dataVersion is the connection's PRAGMA data_version at the writer's last check; -1 before
	// the first. The writer goroutine's alone.
	dataVersion int64
	// writing is held by a batch on conn, by the checkpoints run on conn (checkpointOnWriter),
	// and while conn is replaced (replaceWriterConn).
	writing sync.Mutex
	// endedIndexed is set once the writer's connection has built the index of ended orders
	// (endedIndex), which the first purge does; guarded by writing.
	endedIndexed bool
	// checkpointing is held by every checkpoint this store runs, after writing when both are.
	checkpointing sync.Mutex
	// bounding is held by boundWAL, which the writer's goroutine runs after a batch and a purge's
	// after its commit; taken before writing.
	bounding sync.Mutex
	bound    walBound // guarded by bounding

	tracker storehealth.Tracker // whether the database is away, and why
	closed  atomic.Bool         // Close was called: every failure is the store closing
}

// New returns a Store for the database file at path. Call Open before using it.
func New(path string) *Store {
	return &Store{Path: path, Now: time.Now}
}

// checkPath refuses a path that cannot name a database: a directory, or a file in a directory
// that does not exist. SQLite calls both "unable to open", as it does a file system that is
// briefly away, which start-up waits out; these never come right by waiting. A file that is not
// there yet it creates, private (createPrivate). A file: URI is judged by the file it names. Each
// refusal is storehealth.ErrMisconfigured: a restart finds the same path (the node exits 2, which
// its unit does not restart; a file system mounted late is the unit's to wait for, with
// RequiresMountsFor=).
func checkPath(path string) error {
	if strings.HasPrefix(path, "file:") {
		var err error
		if path, err = uriFile(path); err != nil {
			return storehealth.Misconfigured(err)
		}
	}
	if path == ":memory:" || path == "" {
		return nil
	}
	file, ferr := os.Stat(path)
	if ferr == nil && file.IsDir() {
		return storehealth.Misconfigured(fmt.Errorf("sqlite: %s is a directory, not a database file", path))
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return storehealth.Misconfigured(fmt.Errorf("sqlite: the directory of %s does not exist: create it first", path))
	case err == nil && !fi.IsDir():
		return storehealth.Misconfigured(fmt.Errorf("sqlite: %s is not a directory", dir))
	case err != nil:
		return fmt.Errorf("sqlite: the directory of %s: %w", path, err)
	}
	// SQLite says only "unable to open database file" of a file or directory this process may
	// not write, which start-up would wait out as an outage. The directory is written too: WAL
	// mode keeps its -wal and -shm files beside the database.
	if err := writable(dir); err != nil {
		return storehealth.Misconfigured(fmt.Errorf("sqlite: the directory %s is not writable by this process (%w): ordercast keeps the database and its -wal and -shm files there", dir, err))
	}
	switch {
	case errors.Is(ferr, fs.ErrNotExist):
		return createPrivate(path)
	case ferr == nil:
		if err := writable(path); err != nil {
			return storehealth.Misconfigured(fmt.Errorf("sqlite: %s is not writable by this process (%w)", path, err))
		}
	}
	return nil
}

// uriFile is the file a file: URI (with no query: Open refuses '?') names, as SQLite reads it:
// file:name, file:/abs, file:///abs or file://localhost/abs, percent-encoded. "file::memory:"
// names ":memory:", and "file:" no file (a temporary database).
func uriFile(uri string) (string, error) {
	rest := strings.TrimPrefix(uri, "file:")
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	if auth, ok := strings.CutPrefix(rest, "//"); ok {
		host, path, _ := strings.Cut(auth, "/")
		if host != "" && host != "localhost" {
			return "", fmt.Errorf("sqlite: %s names the host %q: a file: URI names a local file, as file:///path or file:path", uri, host)
		}
		rest = "/" + path
	}
	name, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("sqlite: %s: %w", uri, err)
	}
	return name, nil
}

// createPrivate creates the database file at path, which is not there, empty (SQLite makes an
// empty file a new database) and readable and writable by this process's user alone: orders
// hold customers' details and drop-offs, which the process's umask (022 most often) would leave
// readable to every local user. SQLite gives the -wal and -shm files the database file's mode; an
// existing file keeps the mode its owner chose. A symbolic link whose file does not exist yet (a
// data volume linked into place before the first start) has its file created at its end.
func createPrivate(path string) error {
	// Without O_EXCL: a file another process made meanwhile is opened as it is, mode and all.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return nil
}

// applyDefaults gives every setting left zero its default.
func (s *Store) applyDefaults() {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.tracker.Logger, s.tracker.Classify, s.tracker.Full = s.Logger, unavailableReason, reasonFull
	if s.BusyTimeout == 0 {
		s.BusyTimeout = DefaultBusyTimeout
	}
	if s.MaxReaders == 0 {
		s.MaxReaders = DefaultMaxReaders
	}
	if s.Synchronous == "" {
		s.Synchronous = DefaultSynchronous
	}
	if s.CheckpointInterval == 0 {
		s.CheckpointInterval = DefaultCheckpointInterval
	}
	if s.CheckpointSize == 0 {
		s.CheckpointSize = DefaultCheckpointSize
	}
	if s.MaxWALSize == 0 {
		s.MaxWALSize = DefaultMaxWALSize
	}
	if s.OrderCache == 0 {
		s.OrderCache = DefaultOrderCache
	}
}

// validate refuses settings the store cannot run with, its defaults applied.
func (s *Store) validate() error {
	switch {
	case s.Path == "":
		return fmt.Errorf("sqlite: path required")
	case strings.ContainsRune(s.Path, '?'): // the driver cuts a plain file name at the first '?' to find its parameters
		return fmt.Errorf("sqlite: path %q must not contain '?'", s.Path)
	case s.BusyTimeout < 0 || s.MaxReaders < 0 || s.MaxBatch < 0:
		return fmt.Errorf("sqlite: BusyTimeout, MaxReaders and MaxBatch must not be negative")
	case s.Synchronous != "FULL" && s.Synchronous != "NORMAL" && s.Synchronous != "EXTRA":
		return fmt.Errorf("sqlite: Synchronous must be FULL, NORMAL or EXTRA, not %q", s.Synchronous)
	case s.CheckpointInterval < 0 || s.CheckpointSize < 0 || s.MaxWALSize < s.CheckpointSize:
		return fmt.Errorf("sqlite: checkpoint settings must be positive, MaxWALSize at least CheckpointSize")
	}
	return nil
}

// Open validates the settings, opens the connection pools, sets the pragmas and applies any
// pending migrations. On error nothing stays open.
func (s *Store) Open(ctx context.Context) (err error) {
	s.closed.Store(false)
	s.applyDefaults()
	// Settled before the file is touched: settings refused leave no new, empty database behind.
	if err := s.validate(); err != nil {
		return err
	}
	if err := checkPath(s.Path); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = s.Close() // the Open error is the one worth reporting
		}
	}()

	// Pragmas go in the DSN so the driver applies them to every connection the pool opens,
	// not just the one an Exec happens to land on. wal_autocheckpoint(0) keeps checkpoints off
	// the commit path: the checkpointer and the writer between batches run them.
	common := url.Values{}
	common.Add("_pragma", "busy_timeout("+strconv.FormatInt(s.BusyTimeout.Milliseconds(), 10)+")")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous("+s.Synchronous+")")
	common.Add("_pragma", "wal_autocheckpoint(0)")

	// BEGIN IMMEDIATE takes the write lock at the start of the transaction, so a write never
	// fails half-way when upgrading a read lock (SQLITE_BUSY that busy_timeout cannot retry).
	w := cloneValues(common)
	w.Add("_pragma", "journal_mode(WAL)")
	// The first commit into a WAL that starts over cuts the file back to this size, so that it
	// grows past it only with frames written since (see boundWAL).
	w.Add("_pragma", "journal_size_limit("+strconv.FormatInt(s.MaxWALSize-s.CheckpointSize, 10)+")")
	// What the writer deletes is overwritten with zeros, not left in the file's free space: a
	// purged order's details (a customer's address) and an expired idempotency record's answer
	// go from the file, and from any copy of it made since, as --retention promises. On the
	// hot path it zeroes the space an order's update frees in its page, and the expired
	// idempotency records a keyed batch deletes: no page is written for it that was not
	// already; the bench at 5,000 changes/s showed no difference (docs/performance.md).
	w.Add("_pragma", "secure_delete(1)")
	w.Set("_txlock", "immediate")
	if s.writer, err = sql.Open("sqlite", s.Path+"?"+w.Encode()); err != nil {
		return fmt.Errorf("sqlite: open writer: %w", err)
	}
	s.writer.SetMaxOpenConns(3)
	s.writer.SetMaxIdleConns(3)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	if err := s.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.Path, atStart(err))
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	if err := s.migrate(ctx); err != nil {
		return atStart(err)
	}

	// query_only guards against a write slipping onto a reader and bypassing the writer's lock.
	r := cloneValues(common)
	r.Add("_pragma", "query_only(1)")
	if s.readers, err = sql.Open("sqlite", s.Path+"?"+r.Encode()); err != nil {
		return fmt.Errorf("sqlite: open readers: %w", err)
	}
	s.readers.SetMaxOpenConns(s.MaxReaders)
	s.readers.SetMaxIdleConns(s.MaxReaders)
	if err := s.readers.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: open readers %s: %w", s.Path, err)
	}
	s.reads = newReads(s.readers)

	if err := s.openWriterConn(ctx); err != nil {
		return err
	}
	if err := s.startCheckpointer(ctx); err != nil {
		return err
	}
	if err := s.prepareScopeQueries(ctx); err != nil {
		return err
	}
	s.noteFiles()
	s.recent, s.dataVersion = ordercache.New(s.OrderCache), -1
	s.batches = groupcommit.Start(s.commitBatch, s.MaxBatch, s.boundWAL)
	return nil
}

// Close stops the writer (writes still queued fail with an error), then the checkpointer, and
// closes the connections. It is safe to call on a Store that failed to open, and more than once.
// The writer and the readers stay in place, closed: a request still running when a shutdown gives
// up waiting for it gets their error, answered 503 (health), not a nil pointer.
func (s *Store) Close() error {
	s.closed.Store(true)
	var errs []error
	if s.batches != nil {
		s.batches.Close()
	}
	if s.ckpt != nil {
		if err := s.ckpt.close(); err != nil {
			errs = append(errs, err)
		}
		s.ckpt = nil
	}
	if s.stmts != nil {
		s.stmts.close()
		s.stmts = nil
	}
	if s.conn != nil {
		if err := s.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: close writer connection: %w", err))
		}
		s.conn = nil
	}
	if s.reads != nil {
		if err := s.reads.close(); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: readers: %w", err))
		}
	}
	if s.readers != nil {
		if err := s.readers.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: close readers: %w", err))
		}
	}
	if s.writer != nil {
		// Kept, closed: a Ping running now gets its error, not a nil pointer (and no race).
		if err := s.writer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: close writer: %w", err))
		}
	}
	if s.held != nil { // last: the next process may open the database once this one let it go
		if err := s.held.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: release the lock file: %w", err))
		}
		s.held = nil
	}
	return errors.Join(errs...)
}

// Ping reports whether the database can be read and written: the readers answer, the writer can
// take the write lock (a file locked by another process or made read-only cannot), and the disk
// has MinFreeDisk free. A ping that passes ends an outage only where it proves what the outage
// was about: taking the write lock writes nothing, so it passes on a full disk, and only the free
// space (or a commit that wrote) says a "full" one is over (storehealth.Tracker.Full). Were it to
// end that one, each ping would log the database available again and the next failing commit
// unavailable again. With MinFreeDisk off (never judged), a ping does not say the disk is full
// either: /readyz stays 200 while writes fail for want of room, and ordercast_store_up says so.
func (s *Store) Ping(ctx context.Context) error {
	if s.writer == nil || s.readers == nil {
		return s.health(errors.New("sqlite: store not open"), storehealth.ProvesNothing) // or closed: unavailable
	}
	if err := s.health(s.readers.PingContext(ctx), storehealth.ProvesNothing); err != nil {
		return fmt.Errorf("sqlite: ping readers: %w", err)
	}
	if err := s.checkFiles(); err != nil {
		return s.health(err, storehealth.ProvesNothing)
	}
	if s.corrupt.Load() {
		s.tracker.Fail(reasonCorrupt, errDamaged)
		return storehealth.Unavailable(reasonCorrupt, errDamaged)
	}
	if err := s.probeWrite(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", s.health(err, storehealth.ProvesAnswer))
	}
	judged, err := s.checkFreeDisk()
	if judged && err == nil {
		s.tracker.OK(storehealth.ProvesWrite) // room on the disk: what a full one's outage awaited
	}
	return err
}

// errFreeDiskUnknown is freeDisk's answer where the platform's free space is not read.
var errFreeDiskUnknown = errors.New("free disk space is not read on this platform")

// checkFreeDisk reports the store unavailable when its file system has less free space than
// MinFreeDisk; judged is false when no floor is set or the free space cannot be read.
func (s *Store) checkFreeDisk() (judged bool, err error) {
	floor := cmp.Or(s.MinFreeDisk, DefaultMinFreeDisk)
	if floor < 0 {
		return false, nil
	}
	free, err := s.FreeDisk()
	if errors.Is(err, errFreeDiskUnknown) {
		return false, nil // an unknown free space is no reason to refuse work
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: free disk: %w", err)
	}
	low := free < floor
	// Said once each way, as an outage is: the probe runs every few seconds. It is no outage
	// (writes go on), so the store's health, and ordercast_store_up, do not change for it.
	if was := s.lowDisk.Swap(low); low && !was {
		s.Logger.Warn("sqlite: the database's disk is low; /readyz answers 503 until it is above the floor again (writes go on)", "free_mib", free>>20, "floor_mib", floor>>20)
	} else if was && !low {
		s.Logger.Info("sqlite: the database's disk has room again", "free_mib", free>>20, "floor_mib", floor>>20)
	}
	if low {
		return true, ordercast.Errorf(ordercast.EUnavailable, "the database's disk has %d MiB free, below the %d MiB its log may need; free some space", free>>20, floor>>20)
	}
	return true, nil
}

// FreeDisk is the free space in bytes of the file system that holds the database: what the
// readiness probe holds to MinFreeDisk. Call it between Open and Close.
// A database in memory has no disk: its free space is unknown.
func (s *Store) FreeDisk() (int64, error) {
	if s.file == "" {
		return 0, errFreeDiskUnknown
	}
	return freeDisk(filepath.Dir(s.file))
}

// probeWait bounds how long a readiness probe waits for the write lock: far longer than a batch
// holds it, and short of the readiness check's own deadline (2 s), so that a lock another
// process holds is reported as such ("locked") rather than as the probe running out of time.
const probeWait = time.Second

// probeWrite takes the write lock and gives it back at once (BEGIN IMMEDIATE, ROLLBACK), on
// the writer pool's spare connection: it waits behind a batch in progress, within probeWait.
func (s *Store) probeWrite(ctx context.Context) error {
	pctx, cancel := context.WithTimeoutCause(ctx, min(probeWait, s.BusyTimeout), errLockHeld)
	defer cancel()
	tx, err := s.writer.BeginTx(pctx, nil)
	if err != nil {
		if ctx.Err() == nil && context.Cause(pctx) == errLockHeld {
			err = fmt.Errorf("%w: %w", errLockHeld, err)
		}
		return err
	}
	return tx.Rollback()
}

// now returns the store's clock reading at the precision it stores: UTC microseconds.
func (s *Store) now() time.Time {
	return s.Now().UTC().Truncate(time.Microsecond)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// Batches returns how many batches the store's writer has committed since it opened, and how many
// writes they carried. Call it between Open and Close.
func (s *Store) Batches() (batches, writes int64) { return s.batches.Counts() }
