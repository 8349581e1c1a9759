package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/testutil"
)

// TestDBWaitIsWaitedInFull: a database that stays away is tried until the whole of --db-wait has
// passed, the last delay cut to the deadline and one more attempt made there. The loop used to
// give up as soon as the next delay would overshoot, up to 5 s early: a database back within the
// wait it was given was never found. Time is synctest's, so the test waits for nothing.
func TestDBWaitIsWaitedInFull(t *testing.T) {
	ms := time.Millisecond
	for _, tt := range []struct {
		wait time.Duration
		want []time.Duration // when each attempt is made, from the start
	}{
		{0, []time.Duration{0}},
		{50 * ms, []time.Duration{0, 50 * ms}},
		{250 * ms, []time.Duration{0, 100 * ms, 250 * ms}}, // 200 ms cut to 150
		{time.Second, []time.Duration{0, 100 * ms, 300 * ms, 700 * ms, time.Second}},
		{DefaultDBWait, []time.Duration{0, 100 * ms, 300 * ms, 700 * ms, 1500 * ms, 3100 * ms, 6300 * ms,
			11300 * ms, 16300 * ms, 21300 * ms, 26300 * ms, 31300 * ms, 36300 * ms, 41300 * ms, 46300 * ms,
			51300 * ms, 56300 * ms, time.Minute}},
	} {
		t.Run(tt.wait.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				away := ordercast.Errorf(ordercast.EUnavailable, "the database is away")
				start := time.Now()
				var got []time.Duration
				waited := 0
				err := waitForDatabase(t.Context(), tt.wait, func(context.Context, time.Duration) error {
					got = append(got, time.Since(start))
					return away
				}, func(int, error) { waited++ })
				if !errors.Is(err, away) {
					t.Errorf("err %v, want the last attempt's %v", err, away)
				}
				// The operator reads this as the node exits: it says how long it waited, and what sets it.
				if want := "--db-wait " + tt.wait.String(); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err %v does not say %q", err, want)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("attempts at %v, want %v", got, tt.want)
				}
				if waited != len(got)-1 {
					t.Errorf("told of %d waits between %d attempts", waited, len(got))
				}
			})
		})
	}
}

// TestDBWaitEndsOnSuccessOrAnotherError: the wait ends at the first attempt that succeeds, and at
// once on an error that is not an outage (a configuration error does not mend with time).
func TestDBWaitEndsOnSuccessOrAnotherError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tries := 0
		err := waitForDatabase(t.Context(), time.Minute, func(context.Context, time.Duration) error {
			if tries++; tries < 3 {
				return ordercast.Errorf(ordercast.EUnavailable, "the database is away")
			}
			return nil
		}, func(int, error) {})
		if err != nil || tries != 3 {
			t.Errorf("back at the third attempt: %v after %d attempts, want nil after 3", err, tries)
		}

		bad := fmt.Errorf("open database: %w", ordercast.Errorf(ordercast.EInvalid, "no such table"))
		tries = 0
		err = waitForDatabase(t.Context(), time.Minute, func(context.Context, time.Duration) error { tries++; return bad }, func(int, error) {})
		if !errors.Is(err, bad) || tries != 1 {
			t.Errorf("a configuration error: %v after %d attempts, want it after 1", err, tries)
		}
	})
}

// TestDBWaitGivesUpOnASilentDatabase: a database server that takes the connection and never
// answers (hung, or stuck on its disk before it authenticates) is waited for no longer than
// --db-wait, about, and said to be, as one that refuses connections is: the node logs that it
// waits for it, then gives up with the outage's error. Each attempt sat, with no deadline and no
// log line, until the server's authentication_timeout (a minute), whatever --db-wait said, or
// here for ever.
func TestDBWaitGivesUpOnASilentDatabase(t *testing.T) {
	t.Parallel()
	log := &testutil.Buffer{}
	m := NewMain(io.Discard, io.Discard)
	m.DB, m.DBWait = pgtest.NewSilentServer(t), 3*time.Second
	m.Logger = slog.New(slog.NewTextHandler(log, nil))
	// Far past --db-wait: without a bound on the attempts, the open fails on this deadline, not
	// with the outage, rather than hang the test.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := m.openStore(ctx)
	if ctx.Err() != nil {
		t.Fatalf("the open of a silent database still waiting after 30 s, with --db-wait 3s: %v\n%s", err, log.String())
	}
	if err == nil {
		_ = m.closeStore()
		t.Fatal("opened a database on a server that never answers")
	}
	if want := "--db-wait 3s"; !strings.Contains(err.Error(), want) || ordercast.ErrorCode(err) != ordercast.EUnavailable {
		t.Errorf("open of a silent database: %v (code %q), want unavailable, saying %q", err, ordercast.ErrorCode(err), want)
	}
	if want := "database unavailable at start; waiting for it"; !strings.Contains(log.String(), want) {
		t.Errorf("the log does not say %q:\n%s", want, log.String())
	}
}

// TestDBWaitBoundsEachAttempt: an attempt may take half the wait left to connect, so that a
// database that never answers fails one while there is time to wait, and is logged as waited
// for; at least 2 s, so that the attempt made as the wait ends, or the only one of --db-wait 0,
// reaches a database that answers; at most 10 s, the bound on every later connection.
func TestDBWaitBoundsEachAttempt(t *testing.T) {
	for _, tt := range []struct{ left, want time.Duration }{
		{0, 2 * time.Second},
		{3 * time.Second, 2 * time.Second},
		{5 * time.Second, 2500 * time.Millisecond},
		{DefaultDBWait, 10 * time.Second},
	} {
		if got := attemptBound(tt.left); got != tt.want {
			t.Errorf("with %v of --db-wait left, an attempt may take %v to connect; want %v", tt.left, got, tt.want)
		}
	}
}
