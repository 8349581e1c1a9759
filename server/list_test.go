package server_test

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// TestListOrders: GET /v1/orders lists every order, ended ones too, oldest created first, a page
// at a time: admin and system any restaurant's, a restaurant its own whether it names itself or
// not; a courier, a customer, a tracking token, none, and a token of none is 401. Its filters keep
// what they say; a page's next leads to the one after it, and the last has none.
func TestListOrders(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, o := range []string{`{"id":"l-1","restaurant_id":"r-1"}`, `{"id":"l-2","restaurant_id":"r-2"}`,
		`{"id":"l-3","restaurant_id":"r-1","customer_id":"u-1"}`, `{"id":"l-4"}`, `{"id":"l-5","restaurant_id":"r-1"}`} {
		mustCall(t, "POST", base+"/v1/orders", admin, o, http.StatusCreated)
	}
	mustCall(t, "POST", base+"/v1/orders/l-3/status", admin, `{"status":"delivered"}`, http.StatusOK)

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
	r1 := actorToken(t, auth.RoleRestaurant, "r-1")
	for _, tc := range []struct {
		name, token, query string
		want               []string
	}{
		{"admin, every order", admin, "", []string{"l-1", "l-2", "l-3", "l-4", "l-5"}},
		{"system, one restaurant's", actorToken(t, auth.RoleSystem, "pos"), "?restaurant_id=r-2", []string{"l-2"}},
		{"a restaurant, its own", r1, "", []string{"l-1", "l-3", "l-5"}},
		{"a restaurant naming itself", r1, "?restaurant_id=r-1", []string{"l-1", "l-3", "l-5"}},
		{"a restaurant's delivered", r1, "?status=delivered", []string{"l-3"}},
		{"a restaurant's still placed", r1, "?status=placed", []string{"l-1", "l-5"}},
		{"created before any", admin, "?until=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), nil},
		{"created since an hour ago", admin, "?since=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339Nano)), []string{"l-1", "l-2", "l-3", "l-4", "l-5"}},
		{"admin, every order, oldest first by name", admin, "?order=oldest", []string{"l-1", "l-2", "l-3", "l-4", "l-5"}},
		{"admin, every order, newest first", admin, "?order=newest", []string{"l-5", "l-4", "l-3", "l-2", "l-1"}},
		{"a restaurant, its own, newest first", r1, "?order=newest", []string{"l-5", "l-3", "l-1"}},
		{"support, a customer's, newest first", actorToken(t, auth.RoleSupport, "ana"), "?customer_id=u-1&order=newest", []string{"l-3"}},
	} {
		if got, next := list(tc.token, tc.query); !slices.Equal(got, tc.want) || next != "" {
			t.Errorf("%s: %v (next %q), want %v and no next", tc.name, got, next, tc.want)
		}
	}

	// Page by page, either way: each next leads on, the last page has none.
	firstNext := map[string]string{}
	for _, tc := range []struct {
		order string
		want  []string
	}{{"oldest", []string{"l-1", "l-3", "l-5"}}, {"newest", []string{"l-5", "l-3", "l-1"}}} {
		var paged []string
		query := "?limit=2&order=" + tc.order
		for range 5 {
			ids, next := list(r1, query)
			paged = append(paged, ids...)
			if next == "" {
				break
			}
			firstNext[tc.order] = cmp.Or(firstNext[tc.order], next)
			query = "?limit=2&order=" + tc.order + "&cursor=" + url.QueryEscape(next)
		}
		if !slices.Equal(paged, tc.want) {
			t.Errorf("pages of 2, %s first: %v, want %v", tc.order, paged, tc.want)
		}
	}

	tracking, _, err := authority(t).SignTracking("l-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, query string
		status             int
		code, saying       string
	}{
		{"no token", "", "", 401, ordercast.EUnauthenticated, ""},
		{"a tracking token", tracking, "", 403, ordercast.EForbidden, "its one order only"},
		{"a courier", actorToken(t, auth.RoleCourier, "c-1"), "", 403, ordercast.EForbidden, "party stream"},
		{"a customer", actorToken(t, auth.RoleCustomer, "u-1"), "", 403, ordercast.EForbidden, "party stream"},
		{"a restaurant, another's", r1, "?restaurant_id=r-2", 403, ordercast.EForbidden, "only its own orders (restaurant_id r-1)"},
		{"a restaurant without a sub", actorToken(t, auth.RoleRestaurant, ""), "", 403, ordercast.EForbidden, "without a sub"},
		{"an unknown status", admin, "?status=lost", 422, ordercast.EInvalidStatus, `"lost"`},
		{"a time that is not RFC 3339", admin, "?since=yesterday", 422, ordercast.EInvalid, "since must be an RFC 3339 time"},
		{"an offset's + sent unencoded", admin, "?since=2026-12-06T10:00:00+01:00", 422, ordercast.EInvalid, "a + in a query string must be sent as %2B"},
		{"a range that is none", admin, "?since=2026-12-06T10:00:00Z&until=2026-12-06T09:00:00Z", 422, ordercast.EInvalid, "until"},
		{"a limit of 0", admin, "?limit=0", 422, ordercast.EInvalid, "from 1 to 500"},
		{"a limit past the most", admin, "?limit=501", 422, ordercast.EInvalid, "from 1 to 500"},
		{"a cursor of another making", admin, "?cursor=abc", 422, ordercast.EInvalid, "not one this server gave"},
		{"a filter misspelt", admin, "?restaurant=r-1", 422, ordercast.EInvalid, `unknown query parameter "restaurant"`},
		{"an order that is no way", admin, "?order=desc", 422, ordercast.EInvalid, `order must be oldest or newest, not "desc"`},
		// A cursor starts its page on the side of its order that the list's way reads next.
		{"an oldest-first cursor, newest first", r1, "?order=newest&cursor=" + url.QueryEscape(firstNext["oldest"]), 422, ordercast.EInvalid, "the cursor is of a list oldest first"},
		{"a newest-first cursor, oldest first", r1, "?cursor=" + url.QueryEscape(firstNext["newest"]), 422, ordercast.EInvalid, "the cursor is of a list newest first"},
		{"a filter twice", admin, "?status=placed&status=ready", 400, ordercast.EMalformed, "status must be sent once"},
		// An empty filter is a caller's unset variable: read as none, it listed every
		// customer's orders as one's (a restaurant's too, which may not ask for a customer's).
		{"a customer empty", admin, "?customer_id=", 422, ordercast.EInvalid, "customer_id is empty"},
		{"a customer empty, asked by a restaurant", r1, "?customer_id=", 422, ordercast.EInvalid, "customer_id is empty"},
		{"a restaurant empty", admin, "?restaurant_id=&order=newest", 422, ordercast.EInvalid, "restaurant_id is empty"},
		{"a status empty", admin, "?status=", 422, ordercast.EInvalid, "status is empty"},
		{"a cursor empty", r1, "?limit=2&cursor=", 422, ordercast.EInvalid, "cursor is empty"},
	} {
		resp, body := call(t, "GET", base+"/v1/orders"+tc.query, tc.token, "")
		var e struct {
			Error  struct{ Code, Message string }
			Orders any
		}
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != tc.status || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.saying) || e.Orders != nil {
			t.Errorf("%s: %d %s, want %d %s saying %q, and no orders", tc.name, resp.StatusCode, body, tc.status, tc.code, tc.saying)
		}
	}
}

// TestAMisspeltQueryParameterIsRefused: a query parameter a route does not take was answered as
// if it were not there: a long poll's afterVersion returned at once, again and again (a hot
// loop); a resume's last_event_id started afresh; an events page's afterr gave the whole
// history. Every route of the API refuses one, 422 naming it and what the route takes, and
// changes nothing; the token, where a read takes it, is no unknown parameter.
func TestAMisspeltQueryParameterIsRefused(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "m-1")
	for _, tt := range []struct{ method, path, body, says string }{
		{"GET", "/v1/orders/m-1?wait=30s&afterVersion=1", "", `"afterVersion": GET /v1/orders/{id} takes wait and after_version`},
		{"GET", "/v1/orders/m-1/stream?last_event_id=1", "", `"last_event_id": GET /v1/orders/{id}/stream takes lastEventId, heartbeat and location_interval`},
		{"GET", "/v1/orders/m-1/events?afterr=1", "", `"afterr": GET /v1/orders/{id}/events takes after and limit`},
		{"GET", "/v1/restaurants/r-1/stream?heartbeats=event", "", `"heartbeats"`},
		{"POST", "/v1/orders/m-1/status?expected_version=1", `{"status":"confirmed"}`, `"expected_version": POST /v1/orders/{id}/status takes none`},
	} {
		// Bounded: a stream let in, or a long poll held, would never end its body.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, tt.method, base+tt.path, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusUnprocessableEntity || errorCodeOf(t, body) != ordercast.EInvalid || !strings.Contains(string(body), "unknown query parameter "+strings.ReplaceAll(tt.says, `"`, `\"`)) {
			t.Errorf("%s %s: %d %s, want 422 invalid_argument saying unknown query parameter %s", tt.method, tt.path, resp.StatusCode, body, tt.says)
		}
	}
	if o, err := ts.store.Order(t.Context(), "m-1"); err != nil || o.Version != 1 {
		t.Errorf("after the refusals the order is %+v, %v; want it unchanged", o, err)
	}
	if resp, body := call(t, "GET", base+"/v1/orders/m-1?wait=1ms&after_version=1&token=x", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("a long poll with its parameters and a token: %d %s, want 200", resp.StatusCode, body)
	}
}
