package stream

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

// TestOrderStreamWhoseHistoryWentBackEnds: a failover to a standby that lacked the last commits
// (or a copy restored) takes an order's history back under its streams. A change made again
// then takes a seq the client holds for the lost one: the stream took it as a duplicate, and a
// reconnect with Last-Event-ID resumed after it; the customer saw "preparing" for an order
// cancelled since. A stream caught up after the history went back (as every stream of an
// order whose history the hub finds changed is: Feed.CatchUp) ends saying so (event: end,
// history_rewritten), whether the history ends before the event it sent last or holds another
// change under it; one whose history is as it was goes on.
func TestOrderStreamWhoseHistoryWentBackEnds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                string
		failover, madeAgain bool
		heardLive           bool // the change made again reaches the stream live, not by a catch-up
		lostTwo             bool // the stream was sent seqs 3 and 4, both lost
	}{
		{"history as it was", false, false, false, false}, {"history shorter", true, false, false, false},
		{"a change made again", true, true, false, false},
		// A database restored in place under a running node: no catch-up, the bus hears the
		// change made again under the seq the stream sent last.
		{"a change made again, heard live", true, true, true, false},
		// Cut short by two and cancelled: the history ends at a seq the stream had passed.
		{"a change made again before the stream's seq, heard live", true, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			dir := t.TempDir()
			primary := sqlite.New(filepath.Join(dir, "primary.db"))
			storetest.MustOpen(t, primary)
			move := func(s *sqlite.Store, status ordercast.Status) ordercast.Event {
				t.Helper()
				_, ev, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "o-1", Status: status})
				if err != nil {
					t.Fatal(err)
				}
				return ev
			}
			if _, _, err := primary.CreateOrder(ctx, ordercast.NewOrder{ID: "o-1"}); err != nil {
				t.Fatal(err)
			}
			move(primary, ordercast.StatusConfirmed) // seq 2
			standby := filepath.Join(dir, "standby.db")
			if _, err := sqlite.Backup(ctx, filepath.Join(dir, "primary.db"), standby); err != nil {
				t.Fatal(err)
			}
			e := New(primary, hub.New(), testConfig, &counter{})
			w, rec := openedWatcher(t, e, Request{OrderID: "o-1"})
			lost := move(primary, ordercast.StatusPreparing) // seq 3, sent live
			if deliverSent(t, w, rec, false, lost); w.last != 3 {
				t.Fatalf("seq 3 live: at %d", w.last)
			}
			if tc.lostTwo {
				if deliverSent(t, w, rec, false, move(primary, ordercast.StatusReady)); w.last != 4 {
					t.Fatalf("seq 4 live: at %d", w.last)
				}
			}

			var live []ordercast.Event
			if tc.failover {
				s := sqlite.New(standby)
				storetest.MustOpen(t, s)
				e.store = s
				if tc.madeAgain {
					again := move(s, ordercast.StatusCancelled) // seq 3 again
					if tc.heardLive {
						live = append(live, again)
					}
				}
			} else {
				move(primary, ordercast.StatusReady) // seq 4, missed
			}
			sent := deliverSent(t, w, rec, len(live) == 0, live...)
			if tc.failover {
				// The stream's end is written as it closes (held.go, serve.go), for its reason.
				end := string(sseFraming{}.end(nil, w.endReason()))
				if !w.ended || w.endReason() != ReasonRewound || sent != "" || !strings.Contains(end, "event: end\n") || !strings.Contains(end, `"reason":"history_rewritten"`) {
					t.Errorf("caught up after the history went back: sent %q, ended %v (%s), ending with %q; want nothing more, then an end saying history_rewritten", sent, w.ended, w.endReason(), end)
				}
				return
			}
			if w.ended || !strings.Contains(sent, `"status":"ready"`) || w.last != 4 {
				t.Errorf("caught up with the history as it was: sent %q, ended %v, at %d; want seq 4, and on", sent, w.ended, w.last)
			}
		})
	}
}
