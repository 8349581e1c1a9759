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
