package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
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
				err := waitForDatabase(t.Context(), tt.wait, func(context.Context) error {
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
		err := waitForDatabase(t.Context(), time.Minute, func(context.Context) error {
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
		err = waitForDatabase(t.Context(), time.Minute, func(context.Context) error { tries++; return bad }, func(int, error) {})
		if !errors.Is(err, bad) || tries != 1 {
			t.Errorf("a configuration error: %v after %d attempts, want it after 1", err, tries)
		}
	})
}
