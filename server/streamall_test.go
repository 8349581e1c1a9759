package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
)

// allStreamEvent is one event read from GET /v1/stream.
type allStreamEvent struct {
	name, id, data string
}

// openAllStream connects to GET /v1/stream and returns a function that reads the next event.
func openAllStream(t *testing.T, srv *pageServer) func() allStreamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", srv.url+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/stream: HTTP %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	r := client.NewSSEReader(res.Body)
	return func() allStreamEvent {
		t.Helper()
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		return allStreamEvent{name: ev.Type, id: ev.ID, data: ev.Data}
	}
}

func snapshotIDs(t *testing.T, ev allStreamEvent) map[string]ordercast.Status {
	t.Helper()
	if ev.name != api.EventSnapshot {
		t.Fatalf("got event %q, want %q", ev.name, api.EventSnapshot)
	}
	var orders []ordercast.Order
	if err := json.Unmarshal([]byte(ev.data), &orders); err != nil {
		t.Fatalf("snapshot data %q: %v", ev.data, err)
	}
	out := map[string]ordercast.Status{}
	for _, o := range orders {
		out[o.ID] = o.Status
	}
	return out
}

func TestStreamAllSendsSnapshotThenChanges(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamAllSendsSnapshotThenChanges)
}

func testStreamAllSendsSnapshotThenChanges(t *testing.T, hold holding) {
	srv := startPageServerHolding(t, hold)
	srv.createOrder("a-active")
	srv.createOrder("a-done")
	srv.setStatus("a-done", ordercast.StatusDelivered, "")
	srv.setStatus("a-active", ordercast.StatusConfirmed, "")

	next := openAllStream(t, srv)
	snap := snapshotIDs(t, next())
	if len(snap) != 1 || snap["a-active"] != ordercast.StatusConfirmed {
		t.Fatalf("snapshot = %v, want only a-active, confirmed (no terminal orders)", snap)
	}

	srv.setStatus("a-active", ordercast.StatusPreparing, "on it")
	srv.createOrder("a-new")
	for _, want := range []ordercast.Event{
		{OrderID: "a-active", Seq: 3, Status: ordercast.StatusPreparing, Note: "on it"},
		{OrderID: "a-new", Seq: 1, Status: ordercast.StatusPlaced},
	} {
		ev := next()
		var got ordercast.Event
		if err := json.Unmarshal([]byte(ev.data), &got); err != nil {
			t.Fatal(err)
		}
		if ev.name != api.EventStatus || ev.id != "" {
			t.Fatalf("got event %q with id %q, want %q without id (a reconnect gets a snapshot)", ev.name, ev.id, api.EventStatus)
		}
		if got.OrderID != want.OrderID || got.Seq != want.Seq || got.Status != want.Status || got.Note != want.Note {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}

	// A reconnect is a fresh snapshot of the current state.
	snap = snapshotIDs(t, openAllStream(t, srv)())
	if len(snap) != 2 || snap["a-active"] != ordercast.StatusPreparing || snap["a-new"] != ordercast.StatusPlaced {
		t.Fatalf("snapshot after reconnect = %v, want a-active preparing and a-new placed", snap)
	}
}

// TestStreamAllResendsSnapshotAfterMissedChanges commits a change the hub never hears of, then
// tells the all-orders watchers they may have missed events (what a mailbox overflow or a
// reconnected cluster listener does): the console's stream must send a fresh snapshot that has it.
func TestStreamAllResendsSnapshotAfterMissedChanges(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamAllResendsSnapshotAfterMissedChanges)
}

func testStreamAllResendsSnapshotAfterMissedChanges(t *testing.T, hold holding) {
	srv := startPageServerHolding(t, hold)
	srv.createOrder("a-1")
	next := openAllStream(t, srv)
	if snap := snapshotIDs(t, next()); snap["a-1"] != ordercast.StatusPlaced {
		t.Fatalf("first snapshot = %v, want a-1 placed", snap)
	}
	srv.ts.commitUnannounced(t, "a-1", ordercast.StatusReady)
	srv.ts.hub.ResyncAll()
	if snap := snapshotIDs(t, next()); snap["a-1"] != ordercast.StatusReady {
		t.Fatalf("snapshot after the resync = %v, want a-1 ready", snap)
	}
}

// TestStreamAllShowsNoEndedOrderAgain: announcements of an order that ended can reach an
// all-orders stream after its snapshot (committed before it was read, announced after) or a
// second time (a cluster listener catching up). The console showed such an order as active
// again, until the end came round once more, if it did. Neither is sent; an order created after
// the snapshot, and changes of the active ones, are.
func TestStreamAllShowsNoEndedOrderAgain(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamAllShowsNoEndedOrderAgain)
}

func testStreamAllShowsNoEndedOrderAgain(t *testing.T, hold holding) {
	srv := startPageServerHolding(t, hold)
	srv.createOrder("a-late")  // ends before the snapshot; its announcements come after
	srv.createOrder("a-again") // ends live; an earlier announcement of it comes again
	srv.createOrder("a-live")
	next := openAllStream(t, srv)
	if snap := snapshotIDs(t, next()); len(snap) != 3 {
		t.Fatalf("first snapshot = %v, want the three orders", snap)
	}
	srv.setStatus("a-again", ordercast.StatusCancelled, "")
	wantAll(t, next(), "a-again", 2, ordercast.StatusCancelled)

	late := srv.ts.commitUnannounced(t, "a-late", ordercast.StatusConfirmed, ordercast.StatusCancelled)
	srv.ts.hub.ResyncAll()
	if snap := snapshotIDs(t, next()); len(snap) != 1 || snap["a-live"] != ordercast.StatusPlaced {
		t.Fatalf("snapshot after the resync = %v, want a-live alone", snap)
	}
	for _, ev := range late {
		srv.ts.hub.Publish(ev)
	}
	srv.ts.hub.Publish(ordercast.Event{OrderID: "a-again", Seq: 1, Status: ordercast.StatusPlaced, At: time.Now()})
	marker := srv.ts.commitUnannounced(t, "a-live", ordercast.StatusConfirmed)
	srv.ts.hub.Publish(marker[0])
	wantAll(t, next(), "a-live", 2, ordercast.StatusConfirmed)
}

// wantAll fails unless ev is the status event of order id at seq with status st.
func wantAll(t *testing.T, ev allStreamEvent, id string, seq int64, st ordercast.Status) {
	t.Helper()
	var got ordercast.Event
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil || ev.name != api.EventStatus {
		t.Fatalf("got %s %q (%v), want the status event of %s", ev.name, ev.data, err, id)
	}
	if got.OrderID != id || got.Seq != seq || got.Status != st {
		t.Fatalf("got %s at seq %d %s, want %s at seq %d %s", got.OrderID, got.Seq, got.Status, id, seq, st)
	}
}
