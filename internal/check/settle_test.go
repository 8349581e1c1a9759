package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// waitForLateCommit runs waitCaughtUp, for at most d, over one order whose history the server
// gives as events (the JSON objects of its "events" array), and one watcher that has received the
// order up to seq; it fails the test unless the wait reports the watcher behind and the ledger
// ends at want.
func waitForLateCommit(t *testing.T, seq, want int64, d time.Duration, events func() string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"events":[%s]}`, events())
	}))
	defer srv.Close()

	o := &orderState{id: "o-1", version: seq, status: "placed"}
	o.known.Store(seq)
	led := newLedger("t")
	led.orders[o.id], led.active = o, []*orderState{o}
	p := &phase{world: world{nodes: []*node{{url: srv.URL}}}, led: led}
	p.watchers = []*watcher{{idx: 0, p: p, curOrder: o, lastSeq: seq}}

	err := p.waitCaughtUp(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), "1 watchers still behind") {
		t.Fatalf("waitCaughtUp: %v; want the watcher reported behind the late seq %d", err, want)
	}
	if got := o.known.Load(); got != want {
		t.Fatalf("the ledger knows seq %d of o-1, want %d", got, want)
	}
}

// TestWaitCaughtUpSeesALateCommit: a write cancelled when the writers stopped commits after the
// ledger was first settled. A watcher that has everything the first settle knew is not yet
// caught up: the wait must read the histories again, see the late event, and wait for it
// (here in vain, so it reports the watcher as behind) instead of letting the watchers stop.
func TestWaitCaughtUpSeesALateCommit(t *testing.T) {
	var reads atomic.Int32
	waitForLateCommit(t, 3, 4, 300*time.Millisecond, func() string {
		evs := `{"seq":1,"status":"placed"},{"seq":2,"status":"confirmed"},{"seq":3,"status":"preparing"}`
		if reads.Add(1) > 1 {
			evs += `,{"seq":4,"status":"ready"}` // committed after the first read
		}
		return evs
	})
}

// TestWaitCaughtUpWaitsForTheLedgerToBeStill: a write given up on that commits a moment after the
// watchers caught up with a settled ledger (here 300 ms) is still seen before they are let go.
func TestWaitCaughtUpWaitsForTheLedgerToBeStill(t *testing.T) {
	committed := time.Now().Add(300 * time.Millisecond)
	waitForLateCommit(t, 1, 2, 2*time.Second, func() string {
		evs := `{"seq":1,"status":"placed"}`
		if time.Now().After(committed) {
			evs += `,{"seq":2,"status":"confirmed"}`
		}
		return evs
	})
}

// TestACreateThatCommitsAfterItsWriterGaveUpIsWaitedFor: a create whose answer never came (its
// request cancelled when the writers stopped) may commit all the same. It was left out of the
// ledger, so its restaurant's watchers were not waited for on its event, while the judge
// counted it in the restaurant's log: a correct server failed with party_incomplete. Settling
// now finds it and puts it in its restaurant's orders.
func TestACreateThatCommitsAfterItsWriterGaveUpIsWaitedFor(t *testing.T) {
	var committed atomic.Bool
	ctx, stopWriters := context.WithCancel(t.Context())
	defer stopWriters()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST":
			committed.Store(true) // it commits, but its answer is lost as the writers stop
			stopWriters()
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
		case committed.Load():
			fmt.Fprint(w, `{"events":[{"seq":1,"status":"placed"}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	led := newLedger("t")
	rest := &partyState{party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "t-r0"}}
	led.parties = []*partyState{rest}
	p := &phase{world: world{nodes: []*node{{url: srv.URL}}}, led: led}
	if err := p.createOrder(ctx, rand.New(rand.NewPCG(1, 2))); err == nil || !committed.Load() {
		t.Fatalf("create: %v, committed %v; want it committed without an answer", err, committed.Load())
	}
	if n := rest.known(); n != 0 {
		t.Fatalf("before settling the restaurant is known to have %d events", n)
	}
	if advanced := p.settleActive(t.Context()); advanced != 1 {
		t.Fatalf("settling advanced %d orders, want the late create", advanced)
	}
	if n := rest.known(); n != 1 {
		t.Fatalf("after settling the restaurant is known to have %d events, want its late order's 1", n)
	}
	if len(led.pending) != 0 {
		t.Fatalf("%d creates still pending", len(led.pending))
	}
}
