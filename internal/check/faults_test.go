package check

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast/internal/pgtest"
)

// TestListenFaultCountsOnlyWhatItEnded: a listen_terminated fault that finds no LISTEN
// connection to end is skipped, not injected; with one to end, it ends it and says so.
func TestListenFaultCountsOnlyWhatItEnded(t *testing.T) {
	server := pgtest.ServerURL(t)
	ctx := t.Context()
	pg := &pgServer{adminURL: server, procs: &procs{}}
	dbURL, err := pg.createDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.close(); err != nil {
			t.Error(err)
		}
	})
	p := &phase{world: world{pg: pg}, ctx: ctx, out: &strings.Builder{}, start: time.Now()}
	r := rand.New(rand.NewPCG(1, 2))

	f := &fault{Kind: FListen, Start: time.Now()}
	if err := p.inject(ctx, f, r); err != nil {
		t.Fatal(err)
	}
	if !f.Skipped {
		t.Fatalf("a fault with no LISTEN connection to end was injected: %q", f.Detail)
	}

	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "ordercast-listen test"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	f = &fault{Kind: FListen, Start: time.Now()}
	if err := p.inject(ctx, f, r); err != nil {
		t.Fatal(err)
	}
	if f.Skipped || f.Detail != "1 LISTEN connections terminated" {
		t.Fatalf("skipped %v, %q; want 1 LISTEN connection terminated", f.Skipped, f.Detail)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("the LISTEN connection still answers")
	}
}

// TestSkippedFaultsAreNotInjected: a fault that found nothing to act on counts as skipped, not
// as injected, so a kind that was only ever skipped is reported as never injected.
func TestSkippedFaultsAreNotInjected(t *testing.T) {
	rep := &PhaseReport{Faults: map[string]int{}, Skipped: map[string]int{}, Recovery: map[string]RecoveryStats{},
		FaultLog: []*fault{
			{Kind: FListen, Skipped: true, Recovered: -1},
			{Kind: FNodeStop, Recovered: 2 * time.Second},
		}}
	rep.countFaults([]string{FListen, FNodeStop})
	if rep.Faults[FListen] != 0 || rep.Skipped[FListen] != 1 || rep.Faults[FNodeStop] != 1 {
		t.Fatalf("faults %v, skipped %v; want listen skipped once, node_sigstop injected once", rep.Faults, rep.Skipped)
	}
	if !slices.Equal(rep.NotInjected, []string{FListen}) {
		t.Fatalf("not injected: %v, want [%s]", rep.NotInjected, FListen)
	}
	if _, ok := rep.Recovery[FListen]; ok {
		t.Fatalf("a skipped fault has a recovery time: %v", rep.Recovery)
	}
}

// fakeFollower is a watcher as the recovery measurement sees it: what it follows, how far it
// has it, and the watcher faults that hit it.
type fakeFollower struct {
	watchFaults
	subject     any
	have, known int64
}

func (f *fakeFollower) mark() (any, int64, int64) { return f.subject, f.have, f.known }
func (f *fakeFollower) behind() (bool, string)    { return f.have < f.known, "" }

// TestRecoveryExcusesOnlyWatcherFaultsDuringTheFault: a watcher still behind after a node
// fault keeps the fault unrecovered unless a watcher fault acted on it while the node fault was
// on. One that hit it and was over before the fault began, or that hit it only during the
// recovery, must not cut the recovery short.
func TestRecoveryExcusesOnlyWatcherFaultsDuringTheFault(t *testing.T) {
	start := time.Now().Add(-20 * time.Second)
	lifted := start.Add(3 * time.Second)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	tests := []struct {
		name      string
		hit       *hitSpan // nil: none
		recovered bool
	}{
		{"no watcher fault", nil, false},
		{"a pause over before the fault began", &hitSpan{at(-6 * time.Second).UnixNano(), at(-2 * time.Second).UnixNano()}, false},
		{"a pause during the recovery", &hitSpan{at(5 * time.Second).UnixNano(), at(9 * time.Second).UnixNano()}, false},
		{"a vanish during the recovery, not back yet", &hitSpan{at(5 * time.Second).UnixNano(), math.MaxInt64}, false},
		{"a pause begun before the fault, lasting into it", &hitSpan{at(-2 * time.Second).UnixNano(), at(time.Second).UnixNano()}, true},
		{"a vanish while the fault was on", &hitSpan{at(time.Second).UnixNano(), at(4 * time.Second).UnixNano()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			order := &orderState{id: "o"}
			w := &fakeFollower{subject: order, have: 3, known: 5}
			if tt.hit != nil {
				w.lastHit.Store(tt.hit)
			}
			f := &fault{Kind: FNodeKill, Start: start, Lifted: lifted, targets: map[follower]target{w: {order, 5}}}
			p := &phase{}
			p.rec.pending = []*fault{f}
			p.checkRecovery(time.Now())
			if got := slices.Contains(p.rec.done, f); got != tt.recovered {
				t.Fatalf("recovered = %v, want %v (a watcher at seq 3 of 5)", got, tt.recovered)
			}
			if !tt.recovered {
				w.have = 5
				p.checkRecovery(time.Now())
				if !slices.Contains(p.rec.done, f) || f.Recovered <= 0 {
					t.Fatalf("not recovered once the watcher caught up: %v", f.Recovered)
				}
			}
		})
	}
}
