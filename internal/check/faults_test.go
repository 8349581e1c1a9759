package check

import (
	"context"
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
