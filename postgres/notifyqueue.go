package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast/internal/failurelog"
)

// PostgreSQL keeps one NOTIFY queue for the whole server, every database's sessions together, and
// each notification stays in it until every session listening at the time has read it. A
// listener whose client stops reading (a node paused with kill -STOP, a VM frozen, a process
// hung) keeps its backend idle, waiting to write to the client (wait_event ClientWrite): no
// timeout of PostgreSQL ends such a session, and TCP keepalives do not, since the peer's kernel
// still acknowledges. The queue then grows with every pg_notify of the cluster until its cap (8
// GB by default), where pg_notify, and so every write of every node, fails with "too many
// notifications in the NOTIFY queue". NotifyQueueWatch shows it coming.

// ListenerApplicationPrefix begins the application_name of every node's LISTEN connection
// (Listener.ApplicationName's default, "ordercast-listen <pid> <host>"): how a node tells the
// cluster's listeners from other sessions of the server.
const ListenerApplicationPrefix = "ordercast-listen"

// DefaultNotifyQueueWarnAt is the share of the NOTIFY queue's cap past which NotifyQueueWatch
// warns: 10 %, 800 MB of the default 8 GB. A server whose listeners all read keeps the queue
// within a few 8 kB pages (its tail is moved on every few pages), so 10 % is no noise: it is a
// listener that stopped reading minutes ago (8 minutes at the documented peak of 20,000
// positions/s, about 1.6 MB/s), and it leaves 90 % of the cap, over an hour at that peak, to act
// before every write fails. PostgreSQL's own warning, in the server's log only, comes at 50 %.
const DefaultNotifyQueueWarnAt = 0.10

// notifyQueueWarnEvery bounds the warnings while the queue stays above WarnAt: each says how
// full it is, so that a line every few minutes shows it growing.
const notifyQueueWarnEvery = 5 * time.Minute

// NotifyQueue is what one look at the server's NOTIFY queue found.
type NotifyQueue struct {
	// Usage is pg_notification_queue_usage(): the share of the queue's cap that holds
	// notifications some listening session has not read yet, from 0 to 1.
	Usage float64
	// Stalled are the sessions found not reading what is sent to them, oldest first.
	Stalled []StalledListener
}

// StalledListener is a session found idle and waiting for its client to read (wait_event
// ClientWrite). An idle session writes to its client only what it was not asked for:
// notifications (and notices), so it is a listener whose client stopped reading, the likely
// holder of the queue's tail. PostgreSQL shows the state of another role's sessions only to a
// role with pg_read_all_stats: a listener of another role, or one held in a transaction, which
// reads nothing until it commits, is not found.
type StalledListener struct {
	PID             int32
	ApplicationName string
	// ClientAddr is the client's address; empty for a Unix socket.
	ClientAddr string
	Database   string
	// IdleSince is when its last statement ended (state_change): it has been stalled since then
	// at the earliest. An ordercast listener's last statement is its health check, made after
	// 5 s without a notification, or its LISTEN on a cluster never that quiet.
	IdleSince time.Time
	// Started is when the session began (backend_start): with PID, it names the session, whose
	// PID the server may give to another once it ends.
	Started time.Time
}

// Ordercast reports whether the session is an ordercast node's listener.
func (l StalledListener) Ordercast() bool {
	return strings.HasPrefix(l.ApplicationName, ListenerApplicationPrefix)
}

// notifyQueueQuery reads the queue's usage and the stalled sessions, in one round trip; the outer
// join keeps the usage's row when no session is stalled.
const notifyQueueQuery = `
	SELECT q.usage, a.pid, a.application_name, coalesce(host(a.client_addr), ''), coalesce(a.datname, ''),
		a.state_change, a.backend_start
	FROM (SELECT pg_notification_queue_usage() AS usage) AS q
	LEFT JOIN pg_stat_activity AS a
		ON a.state = 'idle' AND a.wait_event = 'ClientWrite' AND a.pid <> pg_backend_pid()
	ORDER BY a.backend_start`

// NotifyQueue reads how full the server's NOTIFY queue is, and which sessions are not reading
// their notifications.
func (s *Store) NotifyQueue(ctx context.Context) (NotifyQueue, error) {
	ctx, cancel := context.WithTimeout(ctx, s.ReadTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, notifyQueueQuery)
	if err != nil {
		return NotifyQueue{}, fmt.Errorf("postgres: read the NOTIFY queue: %w", err)
	}
	var q NotifyQueue
	defer rows.Close()
	for rows.Next() {
		var (
			pid                *int32
			app, addr, db      *string
			idleSince, started *time.Time
		)
		if err := rows.Scan(&q.Usage, &pid, &app, &addr, &db, &idleSince, &started); err != nil {
			return NotifyQueue{}, fmt.Errorf("postgres: read the NOTIFY queue: %w", err)
		}
		if pid == nil {
			continue // no session stalled: the usage's row alone
		}
		// A column PostgreSQL hides (another role's session, without pg_read_all_stats) is
		// NULL; such a session's state is hidden too, so it is not found here at all.
		q.Stalled = append(q.Stalled, StalledListener{PID: *pid, ApplicationName: deref(app), ClientAddr: deref(addr),
			Database: deref(db), IdleSince: deref(idleSince), Started: deref(started)})
	}
	if err := rows.Err(); err != nil {
		return NotifyQueue{}, fmt.Errorf("postgres: read the NOTIFY queue: %w", err)
	}
	return q, nil
}

// deref is what p points to, or T's zero value for a NULL column.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// EndStalledListener ends the session l names with pg_terminate_backend, and reports whether it
// did: not when that session is gone (its PID perhaps another session's since) or reads again.
// It needs the right to: membership of the session's role (every node of a cluster connects
// as one role, as a rule), or pg_signal_backend; a superuser's session only a superuser ends.
func (s *Store) EndStalledListener(ctx context.Context, l StalledListener) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.ReadTimeout)
	defer cancel()
	var ended bool
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity
		WHERE pid = $1 AND backend_start = $2 AND state = 'idle' AND wait_event = 'ClientWrite'`,
		l.PID, l.Started).Scan(&ended)
	if err != nil {
		return false, fmt.Errorf("postgres: end stalled listener %d (%s): %w", l.PID, l.ApplicationName, err)
	}
	return ended, nil
}

// NotifyQueueWatch looks at the server's NOTIFY queue each time it is asked (Check, on a periodic
// path of the node's): it keeps the queue's usage for a gauge, warns while the queue is fuller
// than WarnAt, naming the sessions that do not read, and, when EndStalledAfter is set, ends an
// ordercast listener found stalled that long. Set the exported fields before the first Check.
type NotifyQueueWatch struct {
	Store *Store
	// Logger receives the warnings. Nil discards them.
	Logger *slog.Logger
	// WarnAt is the usage (0 to 1) past which it warns; zero means DefaultNotifyQueueWarnAt.
	WarnAt float64
	// EndStalledAfter, when positive, has it end an ordercast listener (ListenerApplicationPrefix)
	// that every look for at least this long found stalled, while the queue is past WarnAt. Zero
	// never ends a session: an operator does, or the node when it resumes. Ending one costs its
	// node a reconnection and a catch-up from the store (Listener), as after any lost connection;
	// keeping it may cost every write of the cluster once the queue is full.
	EndStalledAfter time.Duration

	usage   atomic.Uint64 // math.Float64bits of the last usage read; NaN when unknown
	stalled atomic.Int64
	ended   atomic.Int64

	mu sync.Mutex
	// since holds each session the last look found stalled, with when a look first found it so,
	// every look since having found it so too.
	since map[stalledSession]time.Time
	// endedSessions are the sessions it ended that the last look still found, dying.
	endedSessions map[stalledSession]bool
	// fails are the looks that failed, full those that found the queue past WarnAt, and
	// endFails the sessions it could not end: each warned about at most every
	// notifyQueueWarnEvery.
	fails, full, endFails failurelog.Failures
}

// stalledSession names a session across looks: a PID alone may be a later session's.
type stalledSession struct {
	pid     int32
	started time.Time
}

// NewNotifyQueueWatch returns a watch of the NOTIFY queue of s's server, with the defaults.
func NewNotifyQueueWatch(s *Store) *NotifyQueueWatch {
	w := &NotifyQueueWatch{
		Store:         s,
		since:         map[stalledSession]time.Time{},
		endedSessions: map[stalledSession]bool{},
		fails:         failurelog.Failures{Every: notifyQueueWarnEvery},
		full:          failurelog.Failures{Every: notifyQueueWarnEvery},
		endFails:      failurelog.Failures{Every: notifyQueueWarnEvery},
	}
	w.usage.Store(math.Float64bits(math.NaN()))
	return w
}

// Usage is the queue's usage (0 to 1) the last look found, NaN before the first and after one
// that failed: unknown, which 0 would hide.
func (w *NotifyQueueWatch) Usage() float64 { return math.Float64frombits(w.usage.Load()) }

// Stalled is how many sessions the last look found not reading their notifications.
func (w *NotifyQueueWatch) Stalled() int64 { return w.stalled.Load() }

// Ended is how many stalled listeners the watch has ended.
func (w *NotifyQueueWatch) Ended() int64 { return w.ended.Load() }

// Check looks at the queue once: its usage, warnings, and the stalled listeners it ends. A
// failure is logged (at most every notifyQueueWarnEvery) and leaves the usage unknown.
func (w *NotifyQueueWatch) Check(ctx context.Context) {
	logger := w.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	warnAt := w.WarnAt
	if warnAt <= 0 {
		warnAt = DefaultNotifyQueueWarnAt
	}
	q, err := w.Store.NotifyQueue(ctx)
	if err != nil {
		w.usage.Store(math.Float64bits(math.NaN()))
		if ctx.Err() != nil {
			return // stopping
		}
		if n, warn := w.fails.Failed(0); warn {
			logger.Warn("reading PostgreSQL's NOTIFY queue failed: ordercast_pg_notify_queue_usage_ratio is unknown meanwhile", "failures", n.Failures, "err", err)
		}
		return
	}
	if n, was := w.fails.Worked(); was {
		logger.Info("reading PostgreSQL's NOTIFY queue works again", "failures_since_warning", n.Failures)
	}
	w.usage.Store(math.Float64bits(q.Usage))
	w.stalled.Store(int64(len(q.Stalled)))
	look := time.Now()
	since := w.track(q.Stalled, look)

	if q.Usage < warnAt {
		// Half the mark, so that a queue hovering about it does not say so at every look.
		if q.Usage < warnAt/2 {
			if _, was := w.full.Worked(); was {
				logger.Info("PostgreSQL's NOTIFY queue is back below its warning mark", "usage", q.Usage, "warn_at", warnAt)
			}
		}
		return
	}
	if _, warn := w.full.Failed(0); warn {
		logger.Warn("PostgreSQL's NOTIFY queue is filling: a listening session is not reading its notifications, and once the queue is full every pg_notify, so every write of every node, fails (see docs/deploy.md, Cluster)",
			"usage", q.Usage, "warn_at", warnAt, "stalled_sessions", len(q.Stalled))
		if len(q.Stalled) == 0 {
			logger.Warn("no stalled listener found: look for a session that LISTENs inside a long transaction, or one of a role whose state this role may not read (pg_read_all_stats)")
		}
		for _, l := range q.Stalled {
			logger.Warn("a session is not reading its notifications: the likely holder of the NOTIFY queue",
				"pid", l.PID, "application_name", l.ApplicationName, "client_addr", l.ClientAddr, "database", l.Database,
				"ordercast_listener", l.Ordercast(), "idle_since", l.IdleSince, "stalled_since", since[stalledSession{l.PID, l.Started}],
				"end_with", fmt.Sprintf("SELECT pg_terminate_backend(%d)", l.PID))
		}
	}
	if w.EndStalledAfter > 0 {
		w.endStalled(ctx, logger, q.Stalled, since, look)
	}
}

// track notes when each of stalled was first found so, in an unbroken run of looks, and returns
// it (a copy); a session the look did not find stalled starts over.
func (w *NotifyQueueWatch) track(stalled []StalledListener, now time.Time) map[stalledSession]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	found := make(map[stalledSession]time.Time, len(stalled))
	ended := make(map[stalledSession]bool)
	for _, l := range stalled {
		k := stalledSession{l.PID, l.Started}
		found[k] = now
		if t, ok := w.since[k]; ok {
			found[k] = t
		}
		if w.endedSessions[k] {
			ended[k] = true // ended, and still dying: not to be ended, nor counted, twice
		}
	}
	w.since, w.endedSessions = found, ended
	return maps.Clone(found)
}

// endStalled ends every ordercast listener of stalled that the looks have found so for
// EndStalledAfter, up to this look: one look alone never ends a session, however short the bound.
// Other applications' sessions are named in the warnings only: what ends them well is theirs.
func (w *NotifyQueueWatch) endStalled(ctx context.Context, logger *slog.Logger, stalled []StalledListener, since map[stalledSession]time.Time, look time.Time) {
	for _, l := range stalled {
		k := stalledSession{l.PID, l.Started}
		w.mu.Lock()
		done := w.endedSessions[k]
		w.mu.Unlock()
		if !l.Ordercast() || done || !since[k].Before(look) || look.Sub(since[k]) < w.EndStalledAfter {
			continue
		}
		ended, err := w.Store.EndStalledListener(ctx, l)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if n, warn := w.endFails.Failed(0); warn {
				logger.Warn("ending a stalled listener failed: end it by hand, or grant this role pg_signal_backend", "pid", l.PID, "application_name", l.ApplicationName, "failures", n.Failures, "err", err)
			}
			continue
		}
		if !ended {
			continue // gone, or reading again, since the look
		}
		w.ended.Add(1)
		w.mu.Lock()
		w.endedSessions[k] = true
		w.mu.Unlock()
		logger.Warn("ended a stalled listener that held the NOTIFY queue; its node reconnects and catches up from the database when it reads again",
			"pid", l.PID, "application_name", l.ApplicationName, "client_addr", l.ClientAddr, "database", l.Database,
			"stalled_since", since[k], "end_stalled_after", w.EndStalledAfter)
	}
}
