package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/server"
)

// setStatuses posts many status changes with token tok (none on an open server) and returns
// the status and body.
func setStatuses(t *testing.T, base, tok, body string, header ...string) (int, []byte) {
	t.Helper()
	resp, b := call(t, "POST", base+api.PathStatusChanges, tok, body, header...)
	return resp.StatusCode, b
}

func TestSetStatusesPermissions(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	mustCreateAs(t, base, "o-1")
	for _, tt := range []permissionCase{
		{"system", actorToken(t, auth.RoleSystem, "dispatch"), http.StatusOK},
		{"admin", actorToken(t, auth.RoleAdmin, "support"), http.StatusOK},
		{"restaurant", actorToken(t, auth.RoleRestaurant, "r-1"), http.StatusForbidden},
		{"courier", actorToken(t, auth.RoleCourier, "c-1"), http.StatusForbidden},
		{"customer", actorToken(t, auth.RoleCustomer, "u-1"), http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	} {
		tt.check(t, func(t *testing.T) (int, []byte) {
			return setStatuses(t, base, tt.tok, `{"changes":[{"order_id":"o-1","status":"confirmed"}]}`)
		})
	}
	// A token that may not send the request is refused before its body is read (403, not 400
	// for the body): a party's token costs the server no parsing of a megabyte.
	if code, body := setStatuses(t, base, actorToken(t, auth.RoleRestaurant, "r-1"), `{"changes":[not JSON`); code != http.StatusForbidden {
		t.Errorf("a restaurant's malformed request: %d %s, want 403 before the body is read", code, body)
	}
	// The event records who made it, as a single change's does.
	evs, err := (&client.Client{BaseURL: base, Token: actorToken(t, auth.RoleAdmin, "")}).Events(context.Background(), "o-1", 1)
	if err != nil || len(evs) != 1 || evs[0].Actor != "system:dispatch" {
		t.Fatalf("events after the allowed changes: %+v, %v; want one by system:dispatch", evs, err)
	}
}

// TestSetStatusesPerChange: each change of a request is judged alone, as the single change
// judges it, applied in the request's order and answered in it; a refused one changes nothing,
// the others commit and reach the orders' watchers, each once and in order.
func TestSetStatusesPerChange(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustCreate(t, base, "o-2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, r1 := openStream(t, ctx, http.DefaultClient, base, "o-1", "")
	wantSeqStatus(t, next(t, r1), 1, ordercast.StatusPlaced)

	code, body := setStatuses(t, base, "", `{"changes":[
		{"order_id":"o-1","status":"confirmed","note":"accepted"},
		{"order_id":"o-1","status":"placed"},
		{"order_id":"o-2","status":"confirmed","expected_version":1},
		{"order_id":"o-1","status":"preparing","expected_version":2},
		{"order_id":"o-9","status":"confirmed"},
		{"order_id":"o-2","status":"ready","expected_version":7},
		{"order_id":"o-2","status":"teleported"},
		{"order_id":"o/2","status":"ready"},
		{"order_id":"o-2","status":"ready","expected_version":0},
		{"order_id":"o-2","status":"confirmed"}]}`)
	if code != http.StatusOK {
		t.Fatalf("status %d %s, want 200", code, body)
	}
	var res api.SetStatusesResponse
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	type outcome struct {
		code    string // the error code, "" for an answer
		seq     int64  // the answer's event
		changed bool
	}
	want := []outcome{
		{seq: 2, changed: true}, {code: "invalid_transition"}, {seq: 2, changed: true}, {seq: 3, changed: true},
		{code: "not_found"}, {code: "version_conflict"}, {code: "invalid_status"}, {code: "invalid_order_id"},
		{code: "invalid_argument"}, {seq: 2, changed: false},
	}
	if len(res.Results) != len(want) {
		t.Fatalf("%d results, want %d: %s", len(res.Results), len(want), body)
	}
	for i, r := range res.Results {
		var got outcome
		switch {
		case r.Error != nil && r.SetStatusResponse == nil && r.Error.Message != "":
			got.code = r.Error.Code
		case r.Error == nil && r.SetStatusResponse != nil:
			got.seq, got.changed = r.Event.Seq, r.Changed
			if r.Order.Version != r.Event.Seq {
				t.Errorf("result %d: order at version %d beside event %d", i, r.Order.Version, r.Event.Seq)
			}
		}
		if got != want[i] {
			t.Errorf("result %d = %+v, want %+v", i, got, want[i])
		}
	}
	if res.Accepted != 4 || res.Refused != 6 {
		t.Errorf("accepted %d, refused %d; want 4, 6", res.Accepted, res.Refused)
	}
	// The watcher of o-1 reads its two changes, in order, and the note went on the first.
	ev := next(t, r1)
	wantSeqStatus(t, ev, 2, ordercast.StatusConfirmed)
	if ev.Note != "accepted" {
		t.Errorf("note %q, want accepted", ev.Note)
	}
	wantSeqStatus(t, next(t, r1), 3, ordercast.StatusPreparing)
	c := &client.Client{BaseURL: base}
	for id, n := range map[string]int{"o-1": 3, "o-2": 2} {
		if evs, err := c.Events(context.Background(), id, 0); err != nil || len(evs) != n {
			t.Errorf("%s: %d events, %v; want %d", id, len(evs), err, n)
		}
	}
	waitMetric(t, http.DefaultClient, base, 3+2, "ordercast_events_committed_total") // 2 creations
}

// TestSetStatusesRefusedWhole: a request that is wrong as a whole is refused with its code and
// applies nothing, not even its good changes.
func TestSetStatusesRefusedWhole(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	good := `{"order_id":"o-1","status":"confirmed"}`
	changes := func(n int, c string) string {
		return `{"changes":[` + strings.TrimSuffix(strings.Repeat(c+",", n), ",") + `]}`
	}
	for _, tt := range []struct {
		name, body string
		header     []string
		code       int
		errCode    string
	}{
		{"not JSON", `changes`, nil, 400, "malformed_request"},
		{"unknown field", `{"changes":[` + good + `],"batch":1}`, nil, 400, "malformed_request"},
		{"unknown field in a change", changes(1, `{"order_id":"o-1","status":"confirmed","at":1}`), nil, 400, "malformed_request"},
		{"a null change", `{"changes":[` + good + `,null]}`, nil, 400, "malformed_request"},
		{"no changes", `{}`, nil, 422, "invalid_argument"},
		{"empty changes", `{"changes":[]}`, nil, 422, "invalid_argument"},
		{"one too many", changes(api.MaxStatusChangesPerRequest+1, good), nil, 413, "too_many_changes"},
		{"body too large", changes(1, `{"order_id":"o-1","status":"confirmed"`+strings.Repeat(" ", api.MaxStatusChangesBodyBytes)+`}`), nil, 413, "body_too_large"},
		{"an Idempotency-Key", changes(1, good), []string{"Idempotency-Key", "k-1"}, 422, "invalid_argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := setStatuses(t, base, "", tt.body, tt.header...)
			if code != tt.code || !strings.Contains(string(body), `"code":"`+tt.errCode+`"`) {
				t.Fatalf("status %d %.300s, want %d %s", code, body, tt.code, tt.errCode)
			}
		})
	}
	if evs, err := (&client.Client{BaseURL: base}).Events(context.Background(), "o-1", 0); err != nil || len(evs) != 1 {
		t.Fatalf("after refused requests o-1 has %d events, %v; want 1", len(evs), err)
	}
	// At the limit, every change is answered: the first applies, the rest repeat it.
	res, err := (&client.Client{BaseURL: base}).SetStatuses(context.Background(),
		func() []client.OrderStatusChange {
			cs := make([]client.OrderStatusChange, api.MaxStatusChangesPerRequest)
			for i := range cs {
				cs[i] = client.OrderStatusChange{OrderID: "o-1", SetStatusRequest: client.SetStatusRequest{Status: ordercast.StatusConfirmed}}
			}
			return cs
		}())
	if err != nil || len(res.Results) != api.MaxStatusChangesPerRequest || res.Accepted != api.MaxStatusChangesPerRequest {
		t.Fatalf("%d changes at the limit: %d results, %d accepted, %v", api.MaxStatusChangesPerRequest, len(res.Results), res.Accepted, err)
	}
	if !res.Results[0].Changed || res.Results[1].Changed || res.Results[len(res.Results)-1].Event.Seq != 2 {
		t.Errorf("first %+v, second %+v; want the first applied and the rest repeats of seq 2", res.Results[0].SetStatusResponse, res.Results[1].SetStatusResponse)
	}
}

// cutOffStore applies the first change of a request and finds the database gone for the rest:
// the writer committed one batch, then lost the database.
type cutOffStore struct{ ordercast.Store }

func (s cutOffStore) AppendStatuses(ctx context.Context, cs []ordercast.StatusChange) []ordercast.WriteResult {
	results := s.Store.AppendStatuses(ctx, cs[:1])
	for range cs[1:] {
		results = append(results, ordercast.WriteResult{Err: ordercast.Errorf(ordercast.EUnavailable, "the database is unreachable")})
	}
	return results
}

// TestSetStatusesSaysWhenToRetryWhatWasNotApplied: a change the store could not take because it
// went away is told, in its result, when to send it again, as a whole request refused 503 is
// told in Retry-After; the change that was applied is answered as such.
func TestSetStatusesSaysWhenToRetryWhatWasNotApplied(t *testing.T) {
	t.Parallel()
	ts := newServer(t, func(s *server.Server) { s.Store = cutOffStore{s.Store}; s.Retry = 7 * time.Second })
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustCreate(t, base, "o-2")
	status, body := setStatuses(t, base, "", `{"changes":[{"order_id":"o-1","status":"confirmed"},{"order_id":"o-2","status":"confirmed"}]}`)
	var res api.SetStatusesResponse
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil || len(res.Results) != 2 {
		t.Fatalf("%d %s, want 200 with two results", status, body)
	}
	if r := res.Results[0]; r.Error != nil || r.SetStatusResponse == nil || !r.Changed {
		t.Errorf("the applied change: %s, want changed", body)
	}
	if r := res.Results[1]; r.Error == nil || r.Error.Code != ordercast.EUnavailable || r.Error.RetryAfterS != 7 {
		t.Errorf("the change the store could not take: %s, want unavailable with retry_after_s 7", body)
	}
}
