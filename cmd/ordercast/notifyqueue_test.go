package main

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/testutil"
)

// TestServeShowsTheNotifyQueue: a cluster node looks at PostgreSQL's NOTIFY queue at start (and on
// the settings check's tick) and shows it in /metrics: a usage read, not NaN, and the stalled
// sessions and ended listeners.
func TestServeShowsTheNotifyQueue(t *testing.T) {
	db := pgtest.NewDatabase(t)
	t.Setenv("ORDERCAST_SECRET", testutil.Secret)
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--drain", "0s", "--db", db, "--end-stalled-listeners-after", "10m"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.notifyQueue.EndStalledAfter.String(); got != "10m0s" {
		t.Errorf("the watch's EndStalledAfter = %s, want --end-stalled-listeners-after's 10m0s", got)
	}
	_, body := get(t, m.Server.URL()+"/metrics")
	for _, want := range []string{
		`(?m)^ordercast_pg_notify_queue_usage_ratio [0-9.e+-]+$`,
		`(?m)^ordercast_pg_notify_stalled_sessions [0-9]+$`,
		`(?m)^ordercast_pg_notify_stalled_listeners_ended_total 0$`,
	} {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
}

// TestEndStalledListenersRefusesNegative: a negative bound is refused at start, naming the flag.
func TestEndStalledListenersRefusesNegative(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testutil.Secret)
	err := NewMain(io.Discard, io.Discard).ParseFlags([]string{"--end-stalled-listeners-after", "-1s"})
	if err == nil || !strings.Contains(err.Error(), "--end-stalled-listeners-after must not be negative") {
		t.Errorf("ParseFlags(--end-stalled-listeners-after -1s) = %v, want it refused naming the flag", err)
	}
}
