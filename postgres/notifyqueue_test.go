package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// stalledListener opens a session named app that LISTENs on channel and then never reads, as a
// node paused with kill -STOP: once the socket's buffers are full its backend waits to write to
// it (ClientWrite) and holds the server's NOTIFY queue. Closed when the test ends, after which
// the test waits for its backend to be gone, so that the queue drains.
func stalledListener(t *testing.T, db, app, channel string) *pgconn.PgConn {
	t.Helper()
	cfg, err := pgconn.ParseConfig(db)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = app
	conn, err := pgconn.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect the listener that stops reading: %v", err)
	}
	if _, err := conn.Exec(t.Context(), "LISTEN "+pgx.Identifier{channel}.Sanitize()).ReadAll(); err != nil {
		t.Fatalf("LISTEN: %v", err)
	}
	pid := conn.PID()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(ctx) // the backend may have been ended already
		admin, err := pgx.Connect(ctx, db)
		if err != nil {
			t.Errorf("check that the stalled session ended: %v", err)
			return
		}
		defer func() { _ = admin.Close(ctx) }()
		testutil.WaitFor(t, "the stalled session to end, and let go of the queue", func() bool {
			var n int
			err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&n)
			return err == nil && n == 0
		})
	})
	return conn
}

// fillUntilStalled sends notifications on channel, each of 7,800 unique bytes (PostgreSQL folds
// identical ones of a transaction), until s finds every session of pids stalled and the queue in
// use. The socket's buffers take about 4 MB on loopback before a backend stalls; the queue then
// grows by what is sent after, a few pages. Past 64 MB it gives up.
func fillUntilStalled(t *testing.T, s *postgres.Store, notifier *pgx.Conn, channel string, pids ...uint32) postgres.NotifyQueue {
	t.Helper()
	const batch, size, most = 10, 7800, 64 << 20
	for sent := 0; sent < most; sent += batch * size {
		if _, err := notifier.Exec(t.Context(), `SELECT pg_notify($1, g || ' ' || repeat('x', $2)) FROM generate_series(1, $3) AS g`,
			channel, size, batch); err != nil {
			t.Fatalf("notify: %v", err)
		}
		q, err := s.NotifyQueue(t.Context())
		if err != nil {
			t.Fatalf("NotifyQueue: %v", err)
		}
		if q.Usage > 0 && stalledAll(q, pids) {
			return q
		}
	}
	t.Fatalf("after %d MB of notifications, sessions %v are not all found stalled with the queue in use", most>>20, pids)
	return postgres.NotifyQueue{}
}

func stalledAll(q postgres.NotifyQueue, pids []uint32) bool {
	for _, pid := range pids {
		if !slices.ContainsFunc(q.Stalled, func(l postgres.StalledListener) bool { return uint32(l.PID) == pid }) {
			return false
		}
	}
	return true
}

// uniqueName returns prefix with a random suffix: the NOTIFY queue and pg_stat_activity are the
// server's, shared with every other test running on it.
func uniqueName(prefix string) string {
	return prefix + " " + rand.Text()[:8]
}

// sessionAlive reports whether the server still has a session of pid.
func sessionAlive(t *testing.T, conn *pgx.Conn, pid uint32) bool {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestNotifyQueueWatch_NamesAListenerThatStoppedReading: a LISTEN session whose client stops
// reading holds the server's NOTIFY queue; the watch's gauge rises above 0, and past its mark it
// warns, naming that session (pid, application_name, client address) as the likely holder. With
// EndStalledAfter unset it ends nothing.
func TestNotifyQueueWatch_NamesAListenerThatStoppedReading(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(db))
	notifier := pgtest.Connect(t, db)
	channel := strings.ReplaceAll(uniqueName("queue_test"), " ", "_")
	app := uniqueName(postgres.ListenerApplicationPrefix + " test")
	stalled := stalledListener(t, db, app, channel)

	w := postgres.NewNotifyQueueWatch(s)
	var logs testutil.Buffer
	w.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	w.WarnAt = math.SmallestNonzeroFloat64 // any use at all: the test keeps the queue to a few pages
	if got := w.Usage(); !math.IsNaN(got) {
		t.Errorf("Usage before the first look = %v, want NaN (unknown)", got)
	}

	fillUntilStalled(t, s, notifier, channel, stalled.PID())
	w.Check(t.Context())
	if got := w.Usage(); !(got > 0) {
		t.Errorf("Usage with a listener not reading = %v, want above 0", got)
	}
	if got := w.Stalled(); got < 1 {
		t.Errorf("Stalled = %d, want at least the session that stopped reading", got)
	}
	var named string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, fmt.Sprintf(" pid=%d ", stalled.PID())) {
			named = line
		}
	}
	for _, want := range []string{"level=WARN", fmt.Sprintf("application_name=%q", app), "client_addr=127.0.0.1", "ordercast_listener=true", "stalled_since="} {
		if !strings.Contains(named, want) {
			t.Errorf("the warning naming pid %d lacks %s:\n%s", stalled.PID(), want, logs.String())
		}
	}
	if !strings.Contains(logs.String(), `level=WARN msg="PostgreSQL's NOTIFY queue is filling`) {
		t.Errorf("no warning that the queue is filling:\n%s", logs.String())
	}
	if !sessionAlive(t, notifier, stalled.PID()) || w.Ended() != 0 {
		t.Errorf("without EndStalledAfter the watch ended the session (ended %d)", w.Ended())
	}
}

// TestNotifyQueueWatch_EndsAStalledListener: with EndStalledAfter set, a look that finds an
// ordercast listener stalled for that long, the queue past its mark, ends its session, and the
// queue is let go; another application's stalled session is only named, never ended.
func TestNotifyQueueWatch_EndsAStalledListener(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(db))
	notifier := pgtest.Connect(t, db)
	channel := strings.ReplaceAll(uniqueName("queue_test"), " ", "_")
	ours := stalledListener(t, db, uniqueName(postgres.ListenerApplicationPrefix+" test"), channel)
	theirs := stalledListener(t, db, uniqueName("another-application"), channel)

	w := postgres.NewNotifyQueueWatch(s)
	var logs testutil.Buffer
	w.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	w.WarnAt = math.SmallestNonzeroFloat64
	w.EndStalledAfter = time.Nanosecond // the second look that finds it stalled

	fillUntilStalled(t, s, notifier, channel, ours.PID(), theirs.PID())
	w.Check(t.Context())
	w.Check(t.Context())
	if got := w.Ended(); got != 1 {
		t.Fatalf("Ended = %d, want 1 (the ordercast listener):\n%s", got, logs.String())
	}
	testutil.WaitFor(t, "the stalled listener's session to end", func() bool { return !sessionAlive(t, notifier, ours.PID()) })
	if !sessionAlive(t, notifier, theirs.PID()) {
		t.Errorf("the other application's stalled session was ended; only ordercast's listeners may be")
	}
	if !strings.Contains(logs.String(), fmt.Sprintf(`level=WARN msg="ended a stalled listener that held the NOTIFY queue; its node reconnects and catches up from the database when it reads again" pid=%d `, ours.PID())) {
		t.Errorf("no warning that the listener was ended:\n%s", logs.String())
	}
}
