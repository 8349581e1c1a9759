package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/ordercast/ordercast/internal/testutil"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/server"
)

// rawStream opens the SSE stream of an order with an optional Last-Event-ID and returns the
// response; the caller reads it with client.NewSSEReader.
func rawStream(t *testing.T, base, id string, lastEventID string) *http.Response {
	t.Helper()
	return rawStreamWith(t, context.Background(), http.DefaultClient, base, id, lastEventID)
}

// openStream opens the SSE stream of an order through hc, failing the test unless it answers
// 200, and returns the response and a reader of it. Ending ctx ends the stream as a client that
// leaves does.
func openStream(t *testing.T, ctx context.Context, hc *http.Client, base, id, lastEventID string) (*http.Response, *client.SSEReader) {
	t.Helper()
	resp := rawStreamWith(t, ctx, hc, base, id, lastEventID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream %s: status %d, want 200", id, resp.StatusCode)
	}
	return resp, client.NewSSEReader(resp.Body)
}

// rawStreamWith is rawStream through hc, ended by ctx.
func rawStreamWith(t *testing.T, ctx context.Context, hc *http.Client, base, id, lastEventID string) *http.Response {
	t.Helper()
	// The deadline turns a stream that never delivers into a failure instead of a hang.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/"+id+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// nextCourier reads the next event from a raw stream, failing unless it is the courier event
// seq.
func nextCourier(t *testing.T, r *client.SSEReader, seq int64) {
	t.Helper()
	ev, err := r.Next()
	if err != nil || ev.Type != "courier" || ev.ID != strconv.FormatInt(seq, 10) {
		t.Fatalf("got %+v, %v; want the courier event %d", ev, err, seq)
	}
}

// next reads the next status event from a raw stream, failing on anything else.
func next(t *testing.T, r *client.SSEReader) ordercast.Event {
	t.Helper()
	ev, err := r.Next()
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	if ev.Type != "status" {
		t.Fatalf("event type %q, want status", ev.Type)
	}
	return decodeEvent(t, ev)
}

func decodeEvent(t *testing.T, ev client.SSEEvent) ordercast.Event {
	t.Helper()
	var got ordercast.Event
	if err := json.Unmarshal([]byte(ev.Data), &got); err != nil {
		t.Fatalf("data %q: %v", ev.Data, err)
	}
	if strconv.FormatInt(got.Seq, 10) != ev.ID {
		t.Fatalf("id %q does not match seq %d", ev.ID, got.Seq)
	}
	return got
}

// watchNext reads the next event from a client watch with a deadline.
func watchNext(t *testing.T, w *client.Watch) ordercast.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return ev
}

func wantSeqStatus(t *testing.T, ev ordercast.Event, seq int64, status ordercast.Status) {
	t.Helper()
	if ev.Seq != seq || ev.Status != status {
		t.Fatalf("got event seq %d %s, want seq %d %s", ev.Seq, ev.Status, seq, status)
	}
}

func TestStreamSendsCurrentStatusThenEveryChange(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamSendsCurrentStatusThenEveryChange)
}

func testStreamSendsCurrentStatusThenEveryChange(t *testing.T, hold holding) {
	ts := hold.newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)

	resp := rawStream(t, base, "o-1", "")
	for h, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "private, no-cache, no-transform", "X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	r := client.NewSSEReader(resp.Body)
	first := next(t, r)
	wantSeqStatus(t, first, 2, ordercast.StatusConfirmed)
	if d, ok := r.Retry(); !ok || d != server.DefaultRetry {
		t.Fatalf("retry = %v (sent %v), want %v", d, ok, server.DefaultRetry)
	}
	if r.LastEventID() != "2" {
		t.Fatalf("id = %q, want 2", r.LastEventID())
	}
	for seq, st := range []ordercast.Status{"preparing", "ready", "out_for_delivery"} {
		mustSetStatus(t, base, "o-1", st)
		wantSeqStatus(t, next(t, r), int64(seq+3), st)
	}
}

func TestStreamResumesAfterLastEventID(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamResumesAfterLastEventID)
}

func testStreamResumesAfterLastEventID(t *testing.T, hold holding) {
	ts := hold.newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	for _, st := range []ordercast.Status{"confirmed", "preparing", "ready"} {
		mustSetStatus(t, base, "o-1", st)
	}
	// Header form: exactly the events after 2, then live.
	resumed := rawStream(t, base, "o-1", "2")
	if v := resumed.Header.Get(api.HeaderHistoryBehind); v != "" {
		t.Errorf("a resume within the history says %s: %s", api.HeaderHistoryBehind, v)
	}
	r := client.NewSSEReader(resumed.Body)
	wantSeqStatus(t, next(t, r), 3, "preparing")
	wantSeqStatus(t, next(t, r), 4, "ready")
	// Past the history of an active order (a database restored from an older copy): it says
	// where the history ends, and ends at once, saying it was rewritten, with an empty id, so
	// that an EventSource reconnects without Last-Event-ID.
	behind := rawStream(t, base, "o-1", "9")
	if v := behind.Header.Get(api.HeaderHistoryBehind); v != "4" {
		t.Errorf("a resume after 9 of a history at 4 says %s: %q, want 4", api.HeaderHistoryBehind, v)
	}
	br := client.NewSSEReader(behind.Body)
	if ev, err := br.Next(); err != nil || ev.Type != api.EventEnd || ev.ID != "" || !strings.Contains(ev.Data, `"reason":"history_rewritten"`) {
		t.Errorf("resumed after 9 of a history at 4: %+v, %v; want event: end, history_rewritten, with an empty id", ev, err)
	}
	if ev, err := br.Next(); err != io.EOF {
		t.Errorf("after the end: %+v, %v; want the stream closed", ev, err)
	}
	mustSetStatus(t, base, "o-1", "out_for_delivery")
	wantSeqStatus(t, next(t, r), 5, "out_for_delivery")

	// Query form, through the client, which must see no duplicate.
	c := &client.Client{BaseURL: base}
	w := c.Watch(context.Background(), "o-1", client.WatchOptions{LastEventID: 3, LastEventIDInQuery: true})
	t.Cleanup(func() { w.Close() })
	wantSeqStatus(t, watchNext(t, w), 4, "ready")
	wantSeqStatus(t, watchNext(t, w), 5, "out_for_delivery")
	mustSetStatus(t, base, "o-1", "delivered")
	wantSeqStatus(t, watchNext(t, w), 6, "delivered")
	if _, err := w.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("after terminal event: %v, want io.EOF", err)
	}

	// A resume point past the order's end (a database reset under the client) is answered as a
	// fresh connect, the delivered event that the client takes for a replay: the watch says so
	// at once rather than reconnecting for ever.
	past := c.Watch(context.Background(), "o-1", client.WatchOptions{LastEventID: 9})
	t.Cleanup(func() { past.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := past.Next(ctx); !errors.Is(err, client.ErrHistoryBehind) {
		t.Fatalf("resumed past the order's end: %v, want ErrHistoryBehind", err)
	}
}

// TestLastEventIDHeaderWinsOverQuery: a stream asked with both the Last-Event-ID header and the
// lastEventId query parameter resumes after the header's id. An EventSource keeps the URL of its
// first connect, query included, and sends the header with its newest id on each reconnect: were
// the query to win, every reconnect would replay from the first connect's id.
func TestLastEventIDHeaderWinsOverQuery(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	for _, st := range []ordercast.Status{"confirmed", "preparing", "ready"} {
		mustSetStatus(t, base, "o-1", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/o-1/stream?"+api.ParamLastEventID+"=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(api.HeaderLastEventID, "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream with both resume points: status %d, want 200", resp.StatusCode)
	}
	wantSeqStatus(t, next(t, client.NewSSEReader(resp.Body)), 3, "preparing")

	// The WebSocket reads its resume point by the same rule.
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/orders/o-1/ws?"+api.ParamLastEventID+"=0",
		&websocket.DialOptions{HTTPHeader: http.Header{api.HeaderLastEventID: {"2"}}})
	if err != nil {
		t.Fatalf("dial with both resume points: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	wantSeqStatus(t, wsNext(t, c), 3, "preparing")
}

// TestFreshStreamStartsAtLastStatus: a stream opened without Last-Event-ID on an order whose
// latest events are courier assignments starts with the order's last status event, then the
// newest assignment (which replaces the earlier), then live changes, so a client that listens
// for status events learns the current status at once; once status events followed the
// assignment, it opens with the assignment, then the last status event, so that it still learns
// whom the order went to. Last-Event-ID 0, header or query, is not "none": it brings every
// event after 0.
func TestFreshStreamStartsAtLastStatus(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testFreshStreamStartsAtLastStatus)
}

func testFreshStreamStartsAtLastStatus(t *testing.T, hold holding) {
	ts := hold.newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)
	for _, courier := range []string{"kofi", "ama"} {
		if resp, body := call(t, "PUT", base+"/v1/orders/o-1/courier", "", `{"courier_id":"`+courier+`"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("assign %s: %d %s", courier, resp.StatusCode, body)
		}
	}
	r := client.NewSSEReader(rawStream(t, base, "o-1", "").Body)
	wantSeqStatus(t, next(t, r), 2, ordercast.StatusConfirmed)
	nextCourier(t, r, 4)
	mustSetStatus(t, base, "o-1", ordercast.StatusPreparing)
	wantSeqStatus(t, next(t, r), 5, ordercast.StatusPreparing)

	// Status events came after the assignment: a fresh stream still names the courier, the
	// assignment first, in seq order.
	r = client.NewSSEReader(rawStream(t, base, "o-1", "").Body)
	nextCourier(t, r, 4)
	wantSeqStatus(t, next(t, r), 5, ordercast.StatusPreparing)

	r = client.NewSSEReader(rawStream(t, base, "o-1", "0").Body)
	wantSeqStatus(t, next(t, r), 1, ordercast.StatusPlaced)
	wantSeqStatus(t, next(t, r), 2, ordercast.StatusConfirmed)
	nextCourier(t, r, 3)
	nextCourier(t, r, 4)
	wantSeqStatus(t, next(t, r), 5, ordercast.StatusPreparing)

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second) // a stream that never delivers fails
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/o-1/stream?lastEventId=0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	wantSeqStatus(t, next(t, client.NewSSEReader(resp.Body)), 1, ordercast.StatusPlaced)
}

// raceStore commits a status change right after the stream's first read of the store, i.e.
// between that read and the live feed: the window design rule 2 closes.
type raceStore struct {
	ordercast.Store
	armed atomic.Bool
}

func (s *raceStore) EventsAfter(ctx context.Context, id string, after int64, limit int) ([]ordercast.Event, error) {
	evs, err := s.Store.EventsAfter(ctx, id, after, limit)
	if err == nil && s.armed.CompareAndSwap(true, false) {
		if _, _, _, err := s.Store.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: "preparing"}); err != nil {
			return nil, err
		}
	}
	return evs, err
}

func TestStreamDoesNotLoseChangeCommittedDuringFirstRead(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamDoesNotLoseChangeCommittedDuringFirstRead)
}

func testStreamDoesNotLoseChangeCommittedDuringFirstRead(t *testing.T, hold holding) {
	var rs *raceStore
	ts := hold.newServer(t, func(s *server.Server) {
		rs = &raceStore{Store: s.Store}
		s.Store = rs
	})
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", "confirmed")
	rs.armed.Store(true)

	r := client.NewSSEReader(rawStream(t, base, "o-1", "").Body)
	wantSeqStatus(t, next(t, r), 2, "confirmed") // the snapshot, read before the change
	if rs.armed.Load() {
		t.Fatal("the racing change was not made")
	}
	wantSeqStatus(t, next(t, r), 3, "preparing") // the change that committed in the window
}

func TestStreamFillsGapFromStore(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamFillsGapFromStore)
}

func testStreamFillsGapFromStore(t *testing.T, hold holding) {
	ts := hold.newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	r := client.NewSSEReader(rawStream(t, base, "o-1", "").Body)
	wantSeqStatus(t, next(t, r), 1, "placed")

	// Commit two changes with the hub detached, then publish only the second: a hole at seq 2.
	evs := ts.commitUnannounced(t, "o-1", "confirmed", "ready")
	ts.hub.Publish(evs[1])
	wantSeqStatus(t, next(t, r), 2, "confirmed")
	wantSeqStatus(t, next(t, r), 3, "ready")
}

func TestStreamCatchesUpAfterMailboxOverflow(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamCatchesUpAfterMailboxOverflow)
}

func testStreamCatchesUpAfterMailboxOverflow(t *testing.T, hold holding) {
	ts := hold.newServer(t, nil)
	ts.hub.MailboxSize = 1
	base := ts.URL()
	mustCreate(t, base, "o-1")
	// Open the stream but do not read it yet; the handler blocks on nothing, so to force an
	// overflow publish more events at once than the mailbox holds, bypassing the store's order.
	r := client.NewSSEReader(rawStream(t, base, "o-1", "").Body)
	wantSeqStatus(t, next(t, r), 1, "placed")
	evs := ts.commitUnannounced(t, "o-1", "confirmed", "preparing", "ready", "out_for_delivery")
	// Only the first fits the mailbox; the last three are dropped, and the last one is not
	// followed by anything that would reveal a gap: only the overflow flag can.
	for _, ev := range evs {
		ts.hub.Publish(ev)
	}
	for i, st := range []ordercast.Status{"confirmed", "preparing", "ready", "out_for_delivery"} {
		wantSeqStatus(t, next(t, r), int64(i+2), st)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamHeartbeat)
}

func testStreamHeartbeat(t *testing.T, hold holding) {
	ts := hold.newServer(t, func(s *server.Server) { s.Heartbeat = 20 * time.Millisecond })
	mustCreate(t, ts.URL(), "o-1")
	c := &client.Client{BaseURL: ts.URL()}
	pings := 0
	w := c.Watch(context.Background(), "o-1", client.WatchOptions{OnComment: func(text string) {
		// Called on this goroutine, inside Next: once a ping is seen, make the change Next waits for.
		if text == "ping" {
			if pings++; pings == 1 {
				mustSetStatus(t, ts.URL(), "o-1", "confirmed")
			}
		}
	}})
	t.Cleanup(func() { w.Close() })
	wantSeqStatus(t, watchNext(t, w), 1, "placed")
	wantSeqStatus(t, watchNext(t, w), 2, "confirmed")
}

// TestVisibleHeartbeats: a stream opened with ?heartbeat=event, as the pages open theirs, sends
// its heartbeats as events an EventSource hands its page (event: heartbeat, no id, the
// interval as data), one at once when it opens, so that a page can tell a connection that died
// silently from a quiet order and an opened stream from a refusal; on either holder. Without
// the parameter heartbeats stay comments; another value is 422.
func TestVisibleHeartbeats(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testVisibleHeartbeats)
}

func testVisibleHeartbeats(t *testing.T, hold holding) {
	ts := hold.newServer(t, func(s *server.Server) { s.Heartbeat = 50 * time.Millisecond })
	base := ts.URL()
	mustCreate(t, base, "o-1")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/o-1/stream?heartbeat=event", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := client.NewSSEReader(resp.Body)
	comments := 0
	r.OnComment = func(string) { comments++ }
	var got []string
	for len(got) < 3 { // the opening heartbeat, the order's event, a heartbeat of the quiet
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, ev.Type+" id="+ev.ID+" "+ev.Data)
	}
	beat := `{"every_s":0.05}`
	if got[0] != "heartbeat id= "+beat || !strings.HasPrefix(got[1], "status id=1 ") || got[2] != "heartbeat id=1 "+beat {
		t.Errorf("frames %q; want a heartbeat (no id), the order's event, a heartbeat (the id still 1: it sets none)", got)
	}
	if comments != 0 {
		t.Errorf("%d comment heartbeats beside the visible ones", comments)
	}
	if resp, body := call(t, "GET", base+"/v1/orders/o-1/stream?heartbeat=loud", "", ""); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "invalid_argument") {
		t.Errorf("heartbeat=loud: %d %s, want 422 invalid_argument", resp.StatusCode, body)
	}
}

// TestWriteTimeoutDoesNotCutStreams holds a stream open for many times the server-wide
// WriteTimeout (counted in heartbeats, not slept) and then still receives an event on it.
func TestWriteTimeoutDoesNotCutStreams(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testWriteTimeoutDoesNotCutStreams)
}

func testWriteTimeoutDoesNotCutStreams(t *testing.T, hold holding) {
	ts := hold.newServer(t, func(s *server.Server) {
		s.WriteTimeout = 50 * time.Millisecond
		s.Heartbeat = 20 * time.Millisecond
	})
	// Orders are made through the store: a 50 ms WriteTimeout is too short to trust an ordinary
	// response to on a loaded machine, and the streams are what this test is about.
	ts.mustCreateInStore(t, "o-1")
	resp := rawStream(t, ts.URL(), "o-1", "")
	start := time.Now()
	r := client.NewSSEReader(resp.Body)
	wantSeqStatus(t, next(t, r), 1, "placed")
	// Each heartbeat that arrives proves the stream still open; once they have kept it open for
	// four times the WriteTimeout, make the change it must still deliver.
	changed := false
	r.OnComment = func(string) {
		if !changed && time.Since(start) > 4*50*time.Millisecond {
			changed = true
			ts.mustCommit(t, "o-1", "confirmed")
		}
	}
	wantSeqStatus(t, next(t, r), 2, "confirmed")
	if !changed {
		t.Fatal("the change was made before the stream outlasted the WriteTimeout")
	}
}

func TestStreamEndsAfterTerminalThen204(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testStreamEndsAfterTerminalThen204)
}

func testStreamEndsAfterTerminalThen204(t *testing.T, hold holding) {
	ts := hold.newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	r := client.NewSSEReader(rawStream(t, base, "o-1", "").Body)
	wantSeqStatus(t, next(t, r), 1, "placed")
	mustSetStatus(t, base, "o-1", "cancelled")
	wantSeqStatus(t, next(t, r), 2, "cancelled")
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the terminal event: %v, want the stream to end", err)
	}
	resp := rawStream(t, base, "o-1", "2")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("reconnect after the terminal event: %d (Cache-Control %q), want 204, not to be kept", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	// A client that missed the terminal event still gets it, then the end.
	r = client.NewSSEReader(rawStream(t, base, "o-1", "1").Body)
	wantSeqStatus(t, next(t, r), 2, "cancelled")
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the terminal event: %v, want the stream to end", err)
	}
}

func TestClientLeavingFreesWatcher(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testClientLeavingFreesWatcher)
}

func testClientLeavingFreesWatcher(t *testing.T, hold holding) {
	ts := hold.newServer(t, nil)
	base := ts.URL()
	for i := range 20 {
		mustCreate(t, base, "o-"+strconv.Itoa(i))
	}
	baseline := runtime.NumGoroutine()
	c := &client.Client{BaseURL: base}
	var watches []*client.Watch
	for i := range 20 {
		w := c.Watch(context.Background(), "o-"+strconv.Itoa(i), client.WatchOptions{})
		watchNext(t, w)
		watches = append(watches, w)
	}
	if got := ts.hub.Watchers(); got != 20 {
		t.Fatalf("hub has %d watchers, want 20", got)
	}
	for _, w := range watches {
		w.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	testutil.WaitFor(t, "hub watchers to reach 0", func() bool { return ts.hub.Watchers() == 0 })
	testutil.WaitFor(t, "goroutines to return to the baseline", func() bool { return runtime.NumGoroutine() <= baseline })
	if got := ts.hub.Orders(); got != 0 {
		t.Fatalf("hub still tracks %d orders", got)
	}
}

// TestShutdownClosesStreamsAndClientResumesAfterRestart stops the server under an open watch,
// commits a change while it is down, starts it again on the same address and database, and
// checks the watch resumes with exactly the events it missed.
func TestShutdownClosesStreamsAndClientResumesAfterRestart(t *testing.T) {
	t.Parallel()
	bothHoldings(t, testShutdownClosesStreamsAndClientResumesAfterRestart)
}

func testShutdownClosesStreamsAndClientResumesAfterRestart(t *testing.T, hold holding) {
	ts := hold.newServer(t, func(s *server.Server) { s.Retry = 20 * time.Millisecond })
	base, path := ts.URL(), ts.path
	mustCreate(t, base, "o-1")
	c := &client.Client{BaseURL: base}
	w := c.Watch(context.Background(), "o-1", client.WatchOptions{MaxRetry: 100 * time.Millisecond})
	t.Cleanup(func() { w.Close() })
	wantSeqStatus(t, watchNext(t, w), 1, "placed")
	mustSetStatus(t, base, "o-1", "confirmed")
	wantSeqStatus(t, watchNext(t, w), 2, "confirmed")

	ts.close(t)
	if got := ts.hub.Watchers(); got != 0 {
		t.Fatalf("%d watchers left after shutdown", got)
	}
	// While the node is down, another writer moves the order on.
	down := hold.openServer(t, path, func(s *server.Server) { s.Addr = "127.0.0.1:0" })
	mustSetStatus(t, down.URL(), "o-1", "preparing")
	down.close(t)

	restarted := hold.openServer(t, path, func(s *server.Server) { s.Addr = base[len("http://"):] })
	wantSeqStatus(t, watchNext(t, w), 3, "preparing")
	mustSetStatus(t, restarted.URL(), "o-1", "ready")
	wantSeqStatus(t, watchNext(t, w), 4, "ready")
	if w.Reconnects() < 1 {
		t.Fatalf("Reconnects() = %d, want the watch to have resumed", w.Reconnects())
	}
}
