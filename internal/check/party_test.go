package check

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ordercast/ordercast"
)

// TestPartySnapshotMidStreamIsAResume: a node that finds a party stream more than its backlog
// behind sends the scope anew in the middle of the stream; the watcher records it as a resume
// from the last position it had, answered with that snapshot, which is how the judge takes it.
func TestPartySnapshotMidStreamIsAResume(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: snapshot\nid: 0\ndata: {\"party\":\"restaurant:t-r0\",\"pos\":0,\"orders\":[]}\n\n")
		for pos := 1; pos <= 2; pos++ {
			fmt.Fprintf(w, "event: status\nid: %d\ndata: {\"order_id\":\"t-o1\",\"seq\":%d,\"status\":\"placed\"}\n\n", pos, pos)
		}
		fmt.Fprint(w, "event: snapshot\nid: 7\ndata: {\"party\":\"restaurant:t-r0\",\"pos\":7,\"orders\":[{\"id\":\"t-o1\",\"status\":\"ready\",\"version\":4}]}\n\n")
		fmt.Fprint(w, "event: status\nid: 8\ndata: {\"order_id\":\"t-o1\",\"seq\":5,\"status\":\"out_for_delivery\"}\n\n")
	}))
	defer srv.Close()
	led := newLedger("t")
	led.parties = []*partyState{{party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "t-r0"}, token: "r"}}
	p := &phase{world: world{nodes: []*node{{url: srv.URL}}}, led: led, token: "s"}
	w := &partyWatcher{idx: 1, p: p, r: rand.New(rand.NewPCG(1, 4)), party: led.parties[0]}
	if _, err := w.stream(t.Context(), 0); err == nil {
		t.Fatal("the stream the server ended reports no end")
	}
	ss := w.allSessions()
	if len(ss) != 2 {
		t.Fatalf("%d sessions recorded, want 2 (the opening, and the resume the mid-stream snapshot answers): %+v", len(ss), ss)
	}
	first, second := ss[0], ss[1]
	if first.Snapshot == nil || first.Snapshot.Pos != 0 || len(first.Events) != 2 {
		t.Errorf("first session = %+v, want the snapshot at 0 and positions 1, 2", first)
	}
	if second.Resumed != 2 || second.Snapshot == nil || second.Snapshot.Pos != 7 || len(second.Snapshot.Orders) != 1 ||
		len(second.Events) != 1 || second.Events[0].Pos != 8 {
		t.Errorf("second session = %+v, want a resume from 2 answered with the snapshot at 7, then position 8", second)
	}
	if got := w.last(); got != 8 {
		t.Errorf("the watcher resumes after %d, want 8", got)
	}
}
