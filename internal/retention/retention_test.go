package retention

import (
	"context"
	"errors"
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
