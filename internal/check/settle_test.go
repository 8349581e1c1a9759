package check

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitCaughtUpSeesALateCommit: a write cancelled when the writers stopped commits after the
// ledger was first settled. A watcher that has everything the first settle knew is not yet
// caught up: the wait must read the histories again, see the late event, and wait for it
// (here in vain, so it reports the watcher as behind) instead of letting the watchers stop.
func TestWaitCaughtUpSeesALateCommit(t *testing.T) {
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs := `{"seq":1,"status":"placed"},{"seq":2,"status":"confirmed"},{"seq":3,"status":"preparing"}`
		if reads.Add(1) > 1 {
			evs += `,{"seq":4,"status":"ready"}` // committed after the first read
		}
		fmt.Fprintf(w, `{"events":[%s]}`, evs)
	}))
	defer srv.Close()

	o := &orderState{id: "o-1", version: 3, status: "preparing"}
	o.known.Store(3)
	led := newLedger("t")
	led.orders[o.id], led.active = o, []*orderState{o}
	p := &phase{world: world{nodes: []*node{{url: srv.URL}}}, led: led}
	p.watchers = []*watcher{{idx: 0, p: p, curOrder: o, lastSeq: 3}}

	err := p.waitCaughtUp(context.Background(), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "1 watchers still behind") {
		t.Fatalf("waitCaughtUp: %v; want the watcher reported behind the late seq 4", err)
	}
	if got := o.known.Load(); got != 4 {
		t.Fatalf("the ledger knows seq %d of o-1, want 4", got)
	}
}

// TestWaitCaughtUpWaitsForTheLedgerToBeStill: a write given up on that commits a moment after the
// watchers caught up with a settled ledger (here 300 ms) is still seen before they are let go.
func TestWaitCaughtUpWaitsForTheLedgerToBeStill(t *testing.T) {
	committed := time.Now().Add(300 * time.Millisecond)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs := `{"seq":1,"status":"placed"}`
		if time.Now().After(committed) {
			evs += `,{"seq":2,"status":"confirmed"}`
		}
		fmt.Fprintf(w, `{"events":[%s]}`, evs)
	}))
	defer srv.Close()

	o := &orderState{id: "o-1", version: 1, status: "placed"}
	o.known.Store(1)
	led := newLedger("t")
	led.orders[o.id], led.active = o, []*orderState{o}
	p := &phase{world: world{nodes: []*node{{url: srv.URL}}}, led: led}
	p.watchers = []*watcher{{idx: 0, p: p, curOrder: o, lastSeq: 1}}

	err := p.waitCaughtUp(context.Background(), 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "1 watchers still behind") {
		t.Fatalf("waitCaughtUp: %v; want the watcher reported behind the late seq 2", err)
	}
	if got := o.known.Load(); got != 2 {
		t.Fatalf("the ledger knows seq %d of o-1, want 2", got)
	}
}
