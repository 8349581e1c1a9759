package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/server"
)

func TestCreateGetAndChange(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()

	o := mustCreate(t, base, "o-1")
	if o.Status != ordercast.StatusPlaced || o.Version != 1 || string(o.Details) != `{"items":2}` {
		t.Fatalf("created %+v", o)
	}
	// The same create again is an idempotent 200 with the same order.
	code, body := do(t, "POST", base+"/v1/orders", "application/json", `{"id":"o-1","details":{"items":2}}`)
	if code != http.StatusOK {
		t.Fatalf("repeat create: %d %s, want 200", code, body)
	}
	// Without an id, one is generated.
	code, body = do(t, "POST", base+"/v1/orders", "application/json", `{}`)
	var gen ordercast.Order
	if code != http.StatusCreated || json.Unmarshal(body, &gen) != nil || ordercast.ValidateID(gen.ID) != nil {
		t.Fatalf("create without id: %d %s", code, body)
	}

	ev := mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)
	if ev.Seq != 2 || ev.Status != ordercast.StatusConfirmed {
		t.Fatalf("event %+v, want seq 2 confirmed", ev)
	}
	// Repeating the status is a no-op 200 with changed=false and no new event.
	code, body = do(t, "POST", base+"/v1/orders/o-1/status", "application/json", `{"status":"confirmed"}`)
	var res struct {
		Order   ordercast.Order
		Changed bool
	}
	if code != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Changed || res.Order.Version != 2 {
		t.Fatalf("repeat status: %d %s, want 200 changed=false version 2", code, body)
	}
	code, body = do(t, "POST", base+"/v1/orders/o-1/status", "application/json", `{"status":"ready","note":"hot","expected_version":2}`)
	if code != http.StatusOK {
		t.Fatalf("change with expected_version: %d %s", code, body)
	}

	code, body = do(t, "GET", base+"/v1/orders/o-1", "", "")
	var got ordercast.Order
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Status != ordercast.StatusReady || got.Version != 3 {
		t.Fatalf("get: %d %s, want ready at version 3", code, body)
	}
	code, body = do(t, "GET", base+"/v1/orders/o-1/events", "", "")
	var hist struct {
		OrderID string            `json:"order_id"`
		Events  []ordercast.Event `json:"events"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &hist) != nil || len(hist.Events) != 3 || hist.Events[2].Note != "hot" {
		t.Fatalf("events: %d %s, want 3 events, the last with note", code, body)
	}
	code, body = do(t, "GET", base+"/v1/orders/o-1/events?after=2", "", "")
	if code != http.StatusOK || json.Unmarshal(body, &hist) != nil || len(hist.Events) != 1 || hist.Events[0].Seq != 3 {
		t.Fatalf("events after 2: %d %s, want only seq 3", code, body)
	}
}

// TestBadInputChangesNothing sends each kind of bad request and checks its status, its stable
// error code, and that the store is exactly as it was.
func TestBadInputChangesNothing(t *testing.T) {
	ts := newServer(t, func(s *server.Server) { s.MaxBodyBytes = 1024 })
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusPreparing)
	mustCreate(t, base, "o-done")
	mustSetStatus(t, base, "o-done", ordercast.StatusDelivered)
	ids := []string{"o-1", "o-done", "o-new"}

	const js = "application/json"
	tests := []struct {
		name, method, path, ctype, body string
		wantStatus                      int
		wantCode                        string
	}{
		{"malformed JSON", "POST", "/v1/orders/o-1/status", js, `{"status":`, 400, ordercast.EMalformed},
		{"empty body", "POST", "/v1/orders/o-1/status", js, ``, 400, ordercast.EMalformed},
		{"unknown field", "POST", "/v1/orders/o-1/status", js, `{"status":"ready","colour":"red"}`, 400, ordercast.EMalformed},
		{"wrong type", "POST", "/v1/orders/o-1/status", js, `{"status":7}`, 400, ordercast.EMalformed},
		{"trailing data", "POST", "/v1/orders/o-1/status", js, `{"status":"ready"} {"status":"delivered"}`, 400, ordercast.EMalformed},
		{"create malformed", "POST", "/v1/orders", js, `[`, 400, ordercast.EMalformed},
		{"create unknown field", "POST", "/v1/orders", js, `{"id":"o-new","price":3}`, 400, ordercast.EMalformed},
		{"unknown order", "POST", "/v1/orders/o-nope/status", js, `{"status":"ready"}`, 404, ordercast.ENotFound},
		{"get unknown order", "GET", "/v1/orders/o-nope", "", ``, 404, ordercast.ENotFound},
		{"events of unknown order", "GET", "/v1/orders/o-nope/events", "", ``, 404, ordercast.ENotFound},
		{"stream of unknown order", "GET", "/v1/orders/o-nope/stream", "", ``, 404, ordercast.ENotFound},
		{"backwards", "POST", "/v1/orders/o-1/status", js, `{"status":"confirmed"}`, 409, ordercast.EInvalidTransition},
		{"after terminal", "POST", "/v1/orders/o-done/status", js, `{"status":"cancelled"}`, 409, ordercast.EInvalidTransition},
		{"stale version", "POST", "/v1/orders/o-1/status", js, `{"status":"ready","expected_version":1}`, 409, ordercast.EVersionConflict},
		{"create with other details", "POST", "/v1/orders", js, `{"id":"o-1","details":{"items":3}}`, 409, ordercast.EOrderExists},
		{"body too large", "POST", "/v1/orders/o-1/status", js, `{"status":"ready","note":"` + strings.Repeat("x", 2000) + `"}`, 413, ordercast.EBodyTooLarge},
		{"create too large", "POST", "/v1/orders", js, `{"id":"o-new","details":{"x":"` + strings.Repeat("x", 2000) + `"}}`, 413, ordercast.EBodyTooLarge},
		{"no content type", "POST", "/v1/orders/o-1/status", "", `{"status":"ready"}`, 415, ordercast.EUnsupportedMedia},
		{"form content type", "POST", "/v1/orders", "application/x-www-form-urlencoded", `id=o-new`, 415, ordercast.EUnsupportedMedia},
		{"unknown status", "POST", "/v1/orders/o-1/status", js, `{"status":"eaten"}`, 422, ordercast.EInvalidStatus},
		{"missing status", "POST", "/v1/orders/o-1/status", js, `{}`, 422, ordercast.EInvalidStatus},
		{"zero expected version", "POST", "/v1/orders/o-1/status", js, `{"status":"ready","expected_version":0}`, 422, ordercast.EInvalid},
		{"note too long", "POST", "/v1/orders/o-1/status", js, `{"status":"ready","note":"` + strings.Repeat("x", 501) + `"}`, 422, ordercast.EInvalid},
		{"bad id in create", "POST", "/v1/orders", js, `{"id":"o new"}`, 422, ordercast.EInvalidID},
		{"empty restaurant in create", "POST", "/v1/orders", js, `{"id":"o-new","restaurant_id":""}`, 422, ordercast.EInvalid},
		{"empty customer in create", "POST", "/v1/orders", js, `{"id":"o-new","restaurant_id":"r-1","customer_id":""}`, 422, ordercast.EInvalid},
		{"long id in create", "POST", "/v1/orders", js, `{"id":"` + strings.Repeat("x", 65) + `"}`, 422, ordercast.EInvalidID},
		{"bad id in path", "POST", "/v1/orders/o%20new/status", js, `{"status":"ready"}`, 422, ordercast.EInvalidID},
		{"details not an object", "POST", "/v1/orders", js, `{"id":"o-new","details":[1,2]}`, 422, ordercast.EInvalidDetails},
		{"bad after", "GET", "/v1/orders/o-1/events?after=-1", "", ``, 422, ordercast.EInvalid},
		{"signed after", "GET", "/v1/orders/o-1/events?after=%2B1", "", ``, 422, ordercast.EInvalid},
		{"signed limit", "GET", "/v1/orders/o-1/events?limit=%2B5", "", ``, 422, ordercast.EInvalid},
		{"zero limit", "GET", "/v1/orders/o-1/events?limit=0", "", ``, 422, ordercast.EInvalid},
		{"signed after_version", "GET", "/v1/orders/o-1?wait=1s&after_version=%2B1", "", ``, 422, ordercast.EInvalid},
		{"bad Last-Event-ID", "GET", "/v1/orders/o-1/stream?lastEventId=x", "", ``, 400, ordercast.EMalformed},
		{"negative Last-Event-ID", "GET", "/v1/orders/o-1/stream?lastEventId=-3", "", ``, 400, ordercast.EMalformed},
		{"lastEventId twice", "GET", "/v1/orders/o-1/stream?lastEventId=1&lastEventId=2", "", ``, 400, ordercast.EMalformed},
	}
	before := snapshot(t, ts.store, ids...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, base+tt.path, tt.ctype, tt.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", body, err)
			}
			if code != tt.wantStatus || e.Error.Code != tt.wantCode || e.Error.Message == "" {
				t.Fatalf("got %d %s, want %d with code %s and a message", code, body, tt.wantStatus, tt.wantCode)
			}
			if after := snapshot(t, ts.store, ids...); after != before {
				t.Fatalf("store changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestParseLastEventID: an id is a non-negative decimal integer; none (a fresh connect) is told
// apart from 0, which asks for every event after 0.
func TestParseLastEventID(t *testing.T) {
	for _, tt := range []struct {
		in     string
		want   int64
		resume bool
	}{{"", 0, false}, {"0", 0, true}, {"7", 7, true}, {"9223372036854775807", 1<<63 - 1, true}} {
		if got, resume, err := server.ParseLastEventID(tt.in); err != nil || got != tt.want || resume != tt.resume {
			t.Errorf("ParseLastEventID(%q) = %d, %t, %v; want %d, %t", tt.in, got, resume, err, tt.want, tt.resume)
		}
	}
	for _, in := range []string{"-1", "+1", "1.0", "x", " 1", "9223372036854775808", "0x10", "01", "00"} {
		if _, _, err := server.ParseLastEventID(in); ordercast.ErrorCode(err) != ordercast.EMalformed {
			t.Errorf("ParseLastEventID(%q) = %v, want %s", in, err, ordercast.EMalformed)
		}
	}
}

// TestABadLastEventIDIsNamedWhereItCameFrom: a refused resume point names the header or the
// query parameter it came in, and what it must be.
func TestABadLastEventIDIsNamedWhereItCameFrom(t *testing.T) {
	t.Parallel()
	base := newServer(t, nil).URL()
	mustCreate(t, base, "o-1")
	for _, tc := range []struct {
		query, header, says string
	}{
		{"?lastEventId=abc", "", `lastEventId must be an event's id as the server sent it`},
		{"", "0838", `Last-Event-ID must be an event's id as the server sent it: a non-negative integer in decimal digits, with no sign or leading zero; got \"0838\"`},
	} {
		var header []string
		if tc.header != "" {
			header = []string{"Last-Event-ID", tc.header}
		}
		resp, body := call(t, "GET", base+"/v1/orders/o-1/stream"+tc.query, "", "", header...)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.says) {
			t.Errorf("%s%s: %d %s, want 400 saying %s", tc.query, tc.header, resp.StatusCode, body, tc.says)
		}
	}
}

// TestAQueryParameterSentTwiceIsRefused: of a query parameter sent twice, which did the client
// mean? Each route refuses it, as it refuses Last-Event-ID sent twice, rather than take the first.
func TestAQueryParameterSentTwiceIsRefused(t *testing.T) {
	t.Parallel()
	base := newServer(t, nil).URL()
	mustCreate(t, base, "o-1")
	for _, tc := range []struct{ path, param string }{
		{"/v1/orders/o-1/events?after=1&after=0", "after"},
		{"/v1/orders/o-1/events?limit=5&limit=1", "limit"},
		{"/v1/orders/o-1?after_version=1&after_version=0", "after_version"},
		{"/v1/orders/o-1?wait=1s&wait=0s", "wait"},
		{"/v1/orders/o-1/stream?heartbeat=event&heartbeat=comment", "heartbeat"},
		{"/v1/orders/o-1/stream?lastEventId=1&lastEventId=0", "lastEventId"},
	} {
		resp, body := call(t, "GET", base+tc.path, "", "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.param+" must be sent once") {
			t.Errorf("GET %s: %d %s, want 400 saying %s must be sent once", tc.path, resp.StatusCode, body, tc.param)
		}
	}
}

// TestLastEventIDSentTwiceIsRefused: two Last-Event-ID fields name no one resume point.
func TestLastEventIDSentTwiceIsRefused(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", "confirmed")
	req, err := http.NewRequest("GET", base+"/v1/orders/o-1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("Last-Event-ID", "1")
	req.Header.Add("Last-Event-ID", "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "sent once") {
		t.Fatalf("%d %s, want 400 saying Last-Event-ID must be sent once", resp.StatusCode, b)
	}
}
