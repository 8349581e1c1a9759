package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

// dialWS opens the WebSocket of an order, resuming after lastEventID when it is not empty.
func dialWS(t *testing.T, base, id, lastEventID string) *websocket.Conn {
	t.Helper()
	c, resp, err := tryDialWS(t, base, id, lastEventID)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func tryDialWS(t *testing.T, base, id, lastEventID string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(base, "http") + "/v1/orders/" + id + "/ws"
	if lastEventID != "" {
		u += "?lastEventId=" + lastEventID
	}
	return websocket.Dial(ctx, u, nil)
}

// wsNext reads the next message, which must be one JSON event.
func wsNext(t *testing.T, c *websocket.Conn) ordercast.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message type %v, want text", typ)
	}
	var ev ordercast.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("message %q: %v", b, err)
	}
	return ev
}

// wantWSClosed reads once more and expects the server's close with code.
func wantWSClosed(t *testing.T, c *websocket.Conn, code websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err == nil {
		t.Fatalf("got message %q, want the connection closed with %v", b, code)
	}
	if got := websocket.CloseStatus(err); got != code {
		t.Fatalf("closed with %v (%v), want %v", got, err, code)
	}
}

func TestWebSocketSendsCurrentStatusThenEveryChange(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)

	c := dialWS(t, base, "o-1", "")
	wantSeqStatus(t, wsNext(t, c), 2, ordercast.StatusConfirmed)
	for seq, st := range []ordercast.Status{"preparing", "ready", "out_for_delivery"} {
		mustSetStatus(t, base, "o-1", st)
		wantSeqStatus(t, wsNext(t, c), int64(seq+3), st)
	}
}

func TestWebSocketResumesAfterLastEventID(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	for _, st := range []ordercast.Status{"confirmed", "preparing", "ready"} {
		mustSetStatus(t, base, "o-1", st)
	}
	c := dialWS(t, base, "o-1", "2")
	wantSeqStatus(t, wsNext(t, c), 3, "preparing")
	wantSeqStatus(t, wsNext(t, c), 4, "ready")
	mustSetStatus(t, base, "o-1", "out_for_delivery")
	wantSeqStatus(t, wsNext(t, c), 5, "out_for_delivery")

	// A resume point past the order's version is not from its history (a database restored from
	// an older copy): the socket closes at once, saying the history was rewritten, for the
	// client to open it afresh.
	c = dialWS(t, base, "o-1", "99")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, b, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusCode(api.CloseHistoryRewritten) {
		t.Errorf("resumed after 99 of a history at 5: %q, %v; want the close %d", b, err, api.CloseHistoryRewritten)
	}
}

// TestWebSocketHistoryBehindOnThe101: a WebSocket resumed after a seq past the order's history
// says where the history ends in its 101's History-Behind, as the SSE stream's 200 does, so a
// client learns it before reading a message it would take for a replay.
func TestWebSocketHistoryBehindOnThe101(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)
	for _, tc := range []struct{ last, want string }{{"1", ""}, {"9", "2"}} {
		c, resp, err := tryDialWS(t, base, "o-1", tc.last)
		if err != nil {
			t.Fatalf("dial after %s: %v (response %v)", tc.last, err, resp)
		}
		c.CloseNow()
		if got := resp.Header.Get(api.HeaderHistoryBehind); resp.StatusCode != http.StatusSwitchingProtocols || got != tc.want {
			t.Errorf("resumed after %s: %d %s %q, want 101 with %q", tc.last, resp.StatusCode, api.HeaderHistoryBehind, got, tc.want)
		}
	}
}

// TestWebSocketOpensAsTheStreamDoes: the WebSocket opens by the SSE stream's rule. Without a
// resume point it starts with the order's last status event, though a courier assignment came
// after it; with lastEventId=0 it brings every event after 0.
func TestWebSocketOpensAsTheStreamDoes(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)
	if resp, body := call(t, "PUT", base+"/v1/orders/o-1/courier", "", `{"courier_id":"kofi"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("assign: %d %s", resp.StatusCode, body)
	}
	wantCourier := func(c *websocket.Conn) {
		t.Helper()
		if ev := wsNext(t, c); ev.Seq != 3 || ev.Kind != ordercast.KindCourier || ev.CourierID != "kofi" {
			t.Fatalf("got %+v, want the assignment of kofi, seq 3", ev)
		}
	}
	c := dialWS(t, base, "o-1", "")
	wantSeqStatus(t, wsNext(t, c), 2, ordercast.StatusConfirmed)
	wantCourier(c)

	c = dialWS(t, base, "o-1", "0")
	wantSeqStatus(t, wsNext(t, c), 1, ordercast.StatusPlaced)
	wantSeqStatus(t, wsNext(t, c), 2, ordercast.StatusConfirmed)
	wantCourier(c)
}

// TestWebSocketFillsGapFromStore shows the WebSocket shares the stream's gap filling.
func TestWebSocketFillsGapFromStore(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	c := dialWS(t, base, "o-1", "")
	wantSeqStatus(t, wsNext(t, c), 1, "placed")

	ev3 := ts.commitUnannounced(t, "o-1", "confirmed", "ready")[1]
	ts.hub.Publish(ev3)
	ts.hub.Publish(ev3) // a duplicate is dropped
	wantSeqStatus(t, wsNext(t, c), 2, "confirmed")
	wantSeqStatus(t, wsNext(t, c), 3, "ready")
}

func TestWebSocketEndsAfterTerminalThenClosesAtOnce(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	c := dialWS(t, base, "o-1", "")
	wantSeqStatus(t, wsNext(t, c), 1, "placed")
	mustSetStatus(t, base, "o-1", "cancelled")
	wantSeqStatus(t, wsNext(t, c), 2, "cancelled")
	wantWSClosed(t, c, websocket.StatusNormalClosure)

	// Reconnecting with the terminal event's id: closed normally before any message.
	wantWSClosed(t, dialWS(t, base, "o-1", "2"), websocket.StatusNormalClosure)
	// A client that missed the terminal event still gets it, then the close.
	c = dialWS(t, base, "o-1", "1")
	wantSeqStatus(t, wsNext(t, c), 2, "cancelled")
	wantWSClosed(t, c, websocket.StatusNormalClosure)
}

func TestWebSocketRejectsBadInput(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	for _, tc := range []struct {
		id, last string
		want     int
	}{
		{"o-1", "x", http.StatusBadRequest},
		{"o-1", "-1", http.StatusBadRequest},
		{"nope", "", http.StatusNotFound},
		{"bad%20id", "", http.StatusUnprocessableEntity},
	} {
		_, resp, err := tryDialWS(t, base, tc.id, tc.last)
		if err == nil || resp == nil || resp.StatusCode != tc.want {
			t.Errorf("id %q lastEventId %q: %v, %v; want HTTP %d", tc.id, tc.last, resp, err, tc.want)
		}
	}
}

func TestWebSocketClientLeavingFreesWatcher(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	var conns []*websocket.Conn
	for i := range 20 {
		id := "o-" + strconv.Itoa(i)
		mustCreate(t, base, id)
		c := dialWS(t, base, id, "")
		wsNext(t, c)
		conns = append(conns, c)
	}
	if got := ts.hub.Watchers(); got != 20 {
		t.Fatalf("hub has %d watchers, want 20", got)
	}
	for _, c := range conns {
		c.CloseNow() // gone without a close handshake, like a dropped network
	}
	testutil.WaitFor(t, "hub watchers to reach 0", func() bool { return ts.hub.Watchers() == 0 })
}

// TestWebSocketHeartbeatOutlastsWriteTimeout keeps an idle WebSocket open across many server
// WriteTimeouts (counted in server pings, which the client answers while it reads) and then still
// receives an event on it.
func TestWebSocketHeartbeatOutlastsWriteTimeout(t *testing.T) {
	t.Parallel()
	ts := newServer(t, func(s *server.Server) {
		s.WriteTimeout = 50 * time.Millisecond
		s.Heartbeat = 20 * time.Millisecond
	})
	base := ts.URL()
	// Orders are changed through the store: a 50 ms WriteTimeout is too short to trust an
	// ordinary response to on a loaded machine, and the WebSocket is what this test is about.
	ts.mustCreateInStore(t, "o-1")
	c := dialWS(t, base, "o-1", "")
	wantSeqStatus(t, wsNext(t, c), 1, "placed")
	// Reading in the background answers the server's pings while six WriteTimeouts pass.
	done := make(chan ordercast.Event, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, b, err := c.Read(ctx)
		var ev ordercast.Event
		if err == nil {
			err = json.Unmarshal(b, &ev)
		}
		if err != nil {
			ev.Note = "error: " + err.Error()
		}
		done <- ev
	}()
	start := time.Now()
	testutil.WaitFor(t, "several write timeouts to pass", func() bool { return time.Since(start) > 300*time.Millisecond })
	ts.mustCommit(t, "o-1", "confirmed")
	ev := <-done
	if ev.Note != "" {
		t.Fatal(ev.Note)
	}
	wantSeqStatus(t, ev, 2, "confirmed")
}

// TestWebSocketOriginsFollowCORS: a page may open an order's WebSocket from the server's own
// origin or from an origin --cors-origins lets call the API (an IPv6 one too), and a program
// that sends no Origin may as well; a page of any other origin is refused with the JSON 403
// forbidden before its token or the order is looked at (no 401 for the missing token, no 404 for
// the missing order), where Accept would have answered in plain text.
func TestWebSocketOriginsFollowCORS(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, func(s *server.Server) {
		s.Limits.CORSOrigins = []string{"https://app.example", "http://[::1]:3000"}
	})
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	createAs(t, base, admin, "o-1")
	for _, origin := range []string{"", base, strings.Replace(base, "http://", "https://", 1), "https://app.example", "http://[::1]:3000"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h := http.Header{"Authorization": {"Bearer " + admin}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/orders/o-1/ws", &websocket.DialOptions{HTTPHeader: h})
		cancel()
		if err != nil {
			t.Errorf("origin %q: %v (response %v), want the upgrade", origin, err, resp)
			continue
		}
		if ev := wsNext(t, c); ev.Status != ordercast.StatusPlaced {
			t.Errorf("origin %q: first event %+v, want placed", origin, ev)
		}
		c.CloseNow()
	}
	for _, origin := range []string{"https://evil.example", "http://app.example", "https://app.example:8443", "null", "http://[::1]:3001"} {
		for _, id := range []string{"o-1", "nope"} {
			resp, body := call(t, "GET", base+"/v1/orders/"+id+"/ws", "", "", append(wsHandshake, "Origin", origin)...)
			var e api.ErrorBody
			if resp.StatusCode != http.StatusForbidden || json.Unmarshal(body, &e) != nil || e.Error.Code != ordercast.EForbidden || !strings.Contains(e.Error.Message, "origin") {
				t.Errorf("origin %q, order %s, no token: %d %s, want 403 forbidden naming the origin", origin, id, resp.StatusCode, body)
			}
		}
	}
}
