package server_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

// TestCustomerData: GET /v1/orders?customer_id= exports one customer's orders, ended ones too,
// in pages, and POST /v1/customers/{id}/erase erases their personal data once every order of
// theirs has ended (409 customer_has_active_orders before, saying how many), answering counts,
// and answers zeros when asked again. Only admin and system may do either: a restaurant, a
// courier, the customer themself and a tracking token are 403, no token 401, and nothing changes.
func TestCustomerData(t *testing.T) {
	t.Parallel()
	var logs testutil.Buffer
	ts := newAuthServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		s.RequestLog = server.RequestLogRefused
	})
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	system := actorToken(t, auth.RoleSystem, "dpo-tool")
	for _, o := range []string{
		`{"id":"d-1","restaurant_id":"r-1","customer_id":"u-1","details":{"name":"Alice"},"dropoff":{"lat":52.5,"lng":13.4},"note":"ring twice"}`,
		`{"id":"d-2","restaurant_id":"r-2","customer_id":"u-1","details":{"name":"Alice"}}`,
		`{"id":"d-3","restaurant_id":"r-1","customer_id":"u-2","details":{"name":"Bob"}}`,
	} {
		mustCall(t, "POST", base+"/v1/orders", admin, o, http.StatusCreated)
	}
	mustCall(t, "POST", base+"/v1/orders/d-1/status", admin, `{"status":"delivered","note":"left with Alice's neighbour"}`, http.StatusOK)

	list := func(token, query string) (ids []string, next string) {
		t.Helper()
		body := mustCall(t, "GET", base+"/v1/orders"+query, token, "", http.StatusOK)
		var page api.ListOrdersResponse
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("GET /v1/orders%s: %v: %s", query, err, body)
		}
		for _, o := range page.Orders {
			ids = append(ids, o.ID)
		}
		return ids, page.Next
	}
	if got, _ := list(admin, "?customer_id=u-1"); !slices.Equal(got, []string{"d-1", "d-2"}) {
		t.Errorf("admin, u-1's orders: %v, want [d-1 d-2]", got)
	}
	if got, _ := list(system, "?customer_id=u-1&status=delivered"); !slices.Equal(got, []string{"d-1"}) {
		t.Errorf("system, u-1's delivered: %v, want [d-1]", got)
	}
	var paged []string
	query := "?customer_id=u-1&limit=1"
	for range 3 {
		ids, next := list(admin, query)
		paged = append(paged, ids...)
		if next == "" {
			break
		}
		query = "?customer_id=u-1&limit=1&cursor=" + url.QueryEscape(next)
	}
	if !slices.Equal(paged, []string{"d-1", "d-2"}) {
		t.Errorf("u-1's orders in pages of 1: %v, want [d-1 d-2]", paged)
	}

	// Who may: the same table for both routes.
	tracking, _, err := authority(t).SignTracking("d-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	refusedTo := []struct {
		name, token string
		status      int
		code        string
	}{
		{"no token", "", 401, ordercast.EUnauthenticated},
		{"a tracking token", tracking, 403, ordercast.EForbidden},
		{"a restaurant of the customer's", actorToken(t, auth.RoleRestaurant, "r-1"), 403, ordercast.EForbidden},
		{"a courier", actorToken(t, auth.RoleCourier, "c-1"), 403, ordercast.EForbidden},
		{"the customer", actorToken(t, auth.RoleCustomer, "u-1"), 403, ordercast.EForbidden},
	}
	wantError := func(what string, resp *http.Response, body []byte, status int, code, saying string) {
		t.Helper()
		var e api.ErrorBody
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != status || e.Error.Code != code || !strings.Contains(e.Error.Message, saying) {
			t.Errorf("%s: %d %s, want %d %s saying %q", what, resp.StatusCode, body, status, code, saying)
		}
	}
	for _, tc := range refusedTo {
		resp, body := call(t, "GET", base+"/v1/orders?customer_id=u-1", tc.token, "")
		wantError(tc.name+" exporting", resp, body, tc.status, tc.code, "")
		resp, body = call(t, "POST", base+api.EraseCustomerPath("u-1"), tc.token, "")
		wantError(tc.name+" erasing", resp, body, tc.status, tc.code, "")
	}
	resp, body := call(t, "GET", base+"/v1/orders?customer_id=u%201", admin, "")
	wantError("an invalid customer_id", resp, body, 422, ordercast.EInvalid, "customer_id")
	resp, body = call(t, "POST", base+api.EraseCustomerPath("u 1"), admin, "")
	wantError("erasing an invalid customer id", resp, body, 422, ordercast.EInvalid, "customer_id")

	// d-2 is in progress: refused, saying how many; nothing changed.
	resp, body = call(t, "POST", base+api.EraseCustomerPath("u-1"), admin, "")
	wantError("erasing with an order in progress", resp, body, 409, ordercast.ECustomerActive, "1 order")
	order := func(id string) ordercast.Order {
		t.Helper()
		var o ordercast.Order
		if err := json.Unmarshal(mustCall(t, "GET", base+"/v1/orders/"+id, admin, "", http.StatusOK), &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	if o := order("d-1"); o.CustomerID != "u-1" || string(o.Details) != `{"name":"Alice"}` || o.Dropoff == nil {
		t.Errorf("d-1 after refused erasures: %+v, want it whole", o)
	}

	before, _ := call(t, "GET", base+"/v1/orders/d-1", admin, "")
	tagBefore := before.Header.Get("ETag")

	mustCall(t, "POST", base+"/v1/orders/d-2/status", admin, `{"status":"cancelled"}`, http.StatusOK)
	erase := func(token string) api.EraseCustomerResponse {
		t.Helper()
		var res api.EraseCustomerResponse
		if err := json.Unmarshal(mustCall(t, "POST", base+api.EraseCustomerPath("u-1"), token, "", http.StatusOK), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	// u-1's log: d-1 created and delivered, d-2 created and cancelled. Notes: d-1's two.
	want := api.EraseCustomerResponse{CustomerID: "u-1", Erasure: ordercast.Erasure{Orders: 2, Notes: 2, LogEntries: 4}}
	if got := erase(system); got != want {
		t.Errorf("the erasure answered %+v, want %+v", got, want)
	}
	// Whom it erased is on record, whatever the request log keeps (here only refusals): the one
	// way to erase them again after a restore from an older copy.
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, `msg="erased a customer's personal data"`) {
			line = l
		}
	}
	if !strings.Contains(line, " customer=u-1 ") || !strings.Contains(line, " actor=dpo-tool ") {
		t.Errorf("the erasure's log line %q, want it to name the customer and who asked", line)
	}
	if o := order("d-1"); o.CustomerID != "" || string(o.Details) != `{}` || o.Dropoff != nil || o.Status != ordercast.StatusDelivered || o.Version != 2 {
		t.Errorf("d-1 after the erasure: %+v, want no customer, details {}, no drop-off, delivered at version 2", o)
	}
	// The erasure is no change (no event, no version), but the representation changed: a client
	// holding it from before is answered the order as it is now, and sees when it was erased.
	start := time.Now()
	resp, body = call(t, "GET", base+"/v1/orders/d-1", admin, "", "If-None-Match", tagBefore)
	var erased ordercast.Order
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == tagBefore || json.Unmarshal(body, &erased) != nil || erased.ErasedAt == nil {
		t.Errorf("d-1 asked If-None-Match %s, its tag from before the erasure: %d, ETag %s, %s; want 200, another tag, erased_at", tagBefore, resp.StatusCode, resp.Header.Get("ETag"), body)
	} else if erased.ErasedAt.After(start) || start.Sub(*erased.ErasedAt) > time.Minute {
		t.Errorf("d-1 erased_at %s, want the erasure's time, just before %s", erased.ErasedAt, start)
	}
	erasedTag := resp.Header.Get("ETag")
	if resp, _ := call(t, "GET", base+"/v1/orders/d-1", admin, "", "If-None-Match", erasedTag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("d-1 asked If-None-Match its erased tag: %d, want 304", resp.StatusCode)
	}
	// The erased tag names the version: a change sent with it is refused as any change of an
	// ended order, not as a tag of no version.
	for _, h := range [][]string{nil, {"If-Match", erasedTag}} {
		resp, body := call(t, "POST", base+"/v1/orders/d-1/status", admin, `{"status":"cancelled"}`, h...)
		wantError(fmt.Sprintf("a change of the erased order, headers %q", h), resp, body, http.StatusConflict, ordercast.EInvalidTransition, "")
	}
	if o := order("d-3"); o.CustomerID != "u-2" || string(o.Details) != `{"name":"Bob"}` || o.ErasedAt != nil {
		t.Errorf("another customer's d-3 after the erasure: %+v, want it whole", o)
	}
	if got, _ := list(admin, "?customer_id=u-1"); len(got) != 0 {
		t.Errorf("u-1's orders after the erasure: %v, want none", got)
	}
	if got := erase(admin); got != (api.EraseCustomerResponse{CustomerID: "u-1"}) {
		t.Errorf("a second erasure answered %+v, want zeros", got)
	}
}

// TestActionsWithoutABodyRefuseWhatTheyWouldIgnore: an erasure and a tracking token made take
// neither a body nor an Idempotency-Key, and ignored both (a caller's key, which it believed
// guarded its retry; a body it believed counted): each is 422 now, changing nothing. And both
// are writes, charged to their address's write budget as every change is: past it, 429.
func TestActionsWithoutABodyRefuseWhatTheyWouldIgnore(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, func(s *server.Server) { s.Limits.WriteRate, s.Limits.WriteBurst = 0.001, 6 })
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"b-1","customer_id":"u-9"}`, http.StatusCreated) // 1 of 6
	for _, path := range []string{api.EraseCustomerPath("u-9"), "/v1/orders/b-1/tracking-token"} {
		for _, tc := range []struct {
			name   string
			body   string
			header []string
		}{{"a key", "", []string{api.HeaderIdempotencyKey, "k-1"}}, {"a body", `{"x":1}`, nil}} {
			resp, body := call(t, "POST", base+path, admin, tc.body, tc.header...)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"invalid_argument"`) {
				t.Errorf("%s with %s: %d %s, want 422 invalid_argument", path, tc.name, resp.StatusCode, body)
			}
		}
	}
	// Four charged above, one more each: the seventh write of the address is over its budget.
	mustCall(t, "POST", base+"/v1/orders/b-1/tracking-token", admin, "", http.StatusOK)
	if resp, body := call(t, "POST", base+api.EraseCustomerPath("u-9"), admin, ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("an erasure past the address's write budget: %d %s, want 429", resp.StatusCode, body)
	}
}
