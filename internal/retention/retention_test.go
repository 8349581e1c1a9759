package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/testutil"
)

// script is a Purger that answers each call with the next of its answers, and records the
// cutoff and limit it was given.
type script struct {
	mu      sync.Mutex
	answers []answer
	calls   []call
}

type answer struct {
	n   int
	err error
}

type call struct {
	before time.Time
	limit  int
}

func (s *script) PurgeEnded(_ context.Context, before time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call{before, limit})
	if len(s.answers) == 0 {
		return 0, nil
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a.n, a.err
}

func (s *script) made() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

// TestRunPurgesUntilABatchComesBackShort: a round deletes a batch after another, each up to
// Batch orders that ended Keep before now, until one deletes fewer than a batch; Purged hears
// each; a round that fails is logged and the next round tries again.
func TestRunPurgesUntilABatchComesBackShort(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	p := &script{answers: []answer{{2, nil}, {2, nil}, {1, nil}, {0, errors.New("database away")}, {0, nil}}}
	var (
		mu     sync.Mutex
		purged []int
		logged testutil.Buffer
	)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, p, Config{
			Keep: 30 * 24 * time.Hour, Every: time.Millisecond, Batch: 2, Pause: time.Millisecond,
			Now:    func() time.Time { return now },
			Purged: func(n int) { mu.Lock(); purged = append(purged, n); mu.Unlock() },
			Logger: slog.New(slog.NewTextHandler(&logged, nil)),
		})
	}()
	// Round 1: 2, 2, 1. Round 2 fails. Round 3 finds nothing.
	testutil.WaitFor(t, "three rounds", func() bool { return len(p.made()) >= 5 })
	cancel()
	<-done
	calls := p.made()
	for i, c := range calls {
		if want := now.Add(-30 * 24 * time.Hour); !c.before.Equal(want) || c.limit != 2 {
			t.Errorf("call %d: PurgeEnded(%s, %d), want (%s, 2)", i, c.before, c.limit, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(purged) != 3 || purged[0] != 2 || purged[1] != 2 || purged[2] != 1 {
		t.Errorf("Purged heard %v, want [2 2 1]", purged)
	}
	log := logged.String()
	for _, want := range []string{"purged ended orders", "orders=5", "purging ended orders failed", "database away", "purging ended orders works again"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log has no %q:\n%s", want, log)
		}
	}
}

// costly is a Purger, and a KeyPurger, on a clock of its own: each call deletes what it is asked
// (until left runs out) and moves the clock on by perItem for each, as a transaction's work takes
// time. It records the limits it was asked for.
type costly struct {
	mu      sync.Mutex
	now     time.Time
	perItem time.Duration
	perTx   time.Duration
	left    int
	limits  []int
	nows    []time.Time
	done    chan struct{} // closed by the first call that comes back short, which ends a round
	ended   bool
}

func newCostly(start time.Time, perItem time.Duration, left int) *costly {
	return &costly{now: start, perItem: perItem, left: left, done: make(chan struct{})}
}

func (c *costly) clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *costly) PurgeEnded(_ context.Context, before time.Time, limit int) (int, error) {
	return c.purge(before, limit)
}

func (c *costly) PurgeExpiredKeys(_ context.Context, now time.Time, limit int) (int, error) {
	return c.purge(now, limit)
}

func (c *costly) purge(at time.Time, limit int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limits, c.nows = append(c.limits, limit), append(c.nows, at)
	n := min(limit, c.left)
	if c.left -= n; n < limit && !c.ended {
		c.ended = true
		close(c.done)
	}
	c.now = c.now.Add(c.perTx + time.Duration(n)*c.perItem)
	return n, nil
}

func (c *costly) asked() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.limits...)
}

// runUntilDone runs run until a call to c comes back short, which ends the round, and then
// until logged holds (the round's log line comes after its last call), then stops it and waits
// for it.
func runUntilDone(t *testing.T, c *costly, logged func() bool, run func(ctx context.Context)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		run(ctx)
	}()
	select {
	case <-c.done:
	case <-time.After(testutil.WaitTimeout):
		t.Fatalf("the purge did not finish within %s; asked for %v", testutil.WaitTimeout, c.asked())
	}
	if logged != nil {
		testutil.WaitFor(t, "the round's log line", logged)
	}
	cancel()
	<-stopped
}

// TestRoundFitsTransactionsToTxTime: with a TxTime, a round starts small and sizes its batches so
// that a transaction takes about TxTime: smaller when one took longer, larger (up to Batch) when
// one took much less. At a fixed 200 orders, one held SQLite's writer 190 ms.
func TestRoundFitsTransactionsToTxTime(t *testing.T) {
	for _, tc := range []struct {
		name           string
		perTx, perItem time.Duration
		want           []int
	}{
		// 8 orders took 8 ms: 5 fit in 5 ms, and go on fitting.
		{"slow", 0, time.Millisecond, []int{8, 5, 5, 5, 5, 5, 5, 5}},
		// A transaction's own cost (its commit's sync) is counted: 2.5 ms and 0.5 ms an order.
		{"costly commits", 2500 * time.Microsecond, 500 * time.Microsecond, []int{8, 6, 5, 5, 5}},
		// Far too slow: halved each time, not cut to one at once.
		{"far too slow", 0, 100 * time.Millisecond, []int{8, 4, 2, 1, 1}},
		// Half a millisecond an order: 10 fit.
		{"fitting", 0, 500 * time.Microsecond, []int{8, 10, 10, 10, 10}},
		// 10 µs an order: doubling, up to Batch, 200.
		{"fast", 0, 10 * time.Microsecond, []int{8, 16, 32, 64, 128, 200, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total := 0
			for _, n := range tc.want {
				total += n
			}
			total-- // the last transaction comes back one short and ends the round
			c := newCostly(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC), tc.perItem, total)
			c.perTx = tc.perTx
			runUntilDone(t, c, nil, func(ctx context.Context) {
				Run(ctx, c, Config{Keep: time.Hour, Every: time.Hour, Pause: time.Microsecond, TxTime: 5 * time.Millisecond, Now: c.clock})
			})
			if got := c.asked(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("batches asked for %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRoundLogsProgress: a round that goes on (a backlog) says how far it got every
// ProgressEvery, with its count and rate, not only once it ends: a backlog of a million orders is
// one round of hours.
func TestRoundLogsProgress(t *testing.T) {
	// 10 ms an order, 200 a transaction: 2 s each; 40 of them, 80 s, and a short one.
	c := newCostly(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC), 10*time.Millisecond, 40*200+1)
	var logged testutil.Buffer
	const end = `msg="purged ended orders" orders=8001`
	runUntilDone(t, c, func() bool { return strings.Contains(logged.String(), end) }, func(ctx context.Context) {
		Run(ctx, c, Config{Keep: time.Hour, Every: time.Hour, Pause: time.Microsecond, ProgressEvery: 30 * time.Second,
			Now: c.clock, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	})
	var progress []string
	for line := range strings.Lines(logged.String()) {
		if strings.Contains(line, `msg="purging ended orders"`) {
			progress = append(progress, line)
		}
	}
	// At 30 s (after 15 transactions, 3,000 orders) and 60 s (6,000); the round's end says the
	// rest once the last transaction came back short.
	if len(progress) != 2 {
		t.Fatalf("%d progress lines in an 80 s round with ProgressEvery 30 s, want 2:\n%s", len(progress), logged.String())
	}
	for i, want := range []string{"orders=3000 batch=200 took=30s per_second=100", "orders=6000 batch=200 took=1m0s per_second=100"} {
		if !strings.Contains(progress[i], want) {
			t.Errorf("progress line %d: %s\nwant it to hold %q", i, progress[i], want)
		}
	}
}

// TestRunKeysPurgesExpiredRecords: RunKeys deletes what expired at the clock's time, a batch at a
// time (DefaultKeyBatch), and logs what a round deleted.
func TestRunKeysPurgesExpiredRecords(t *testing.T) {
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c := newCostly(start, 0, DefaultKeyBatch+1)
	var logged testutil.Buffer
	end := fmt.Sprintf(`msg="purged expired idempotency records" records=%d`, DefaultKeyBatch+1)
	runUntilDone(t, c, func() bool { return strings.Contains(logged.String(), end) }, func(ctx context.Context) {
		RunKeys(ctx, c, Config{Every: time.Hour, Pause: time.Microsecond, Now: c.clock, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	})
	if got := c.asked(); fmt.Sprint(got) != fmt.Sprint([]int{DefaultKeyBatch, DefaultKeyBatch}) {
		t.Errorf("asked for %v, want two batches of %d", got, DefaultKeyBatch)
	}
	c.mu.Lock()
	for _, at := range c.nows {
		if !at.Equal(start) {
			t.Errorf("purged what expired at %s, want the clock's time, %s", at, start)
		}
	}
	c.mu.Unlock()
}
