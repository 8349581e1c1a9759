package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// TestPermissionTable: each role and party against each action, on an order it owns and on one
// it does not. A refusal is 403 with no order data in the body, and the store is unchanged; an
// allowed action succeeds. The order belongs to restaurant r-1 and customer u-1, with courier c-1.
func TestPermissionTable(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")

	type action struct {
		name, method, path, body string
	}
	actions := []action{
		{"read", "GET", "", ""},
		{"history", "GET", "/events", ""},
		{"restaurant status", "POST", "/status", `{"status":"preparing"}`},
		{"courier status", "POST", "/status", `{"status":"out_for_delivery"}`},
		{"assign", "PUT", "/courier", `{"courier_id":"c-9"}`},
	}
	parties := []struct {
		who   string
		token string
		// may lists the actions allowed on the order it owns; on a foreign order nothing is.
		may       []string
		privilege bool // acts on every order
	}{
		{"admin", admin, []string{"read", "history", "restaurant status", "courier status", "assign"}, true},
		{"system", actorToken(t, auth.RoleSystem, ""), []string{"read", "history", "restaurant status", "courier status", "assign"}, true},
		{"support", actorToken(t, auth.RoleSupport, "ana"), []string{"read", "history", "restaurant status", "courier status", "assign"}, true},
		{"restaurant", actorToken(t, auth.RoleRestaurant, "r-1"), []string{"read", "history", "restaurant status", "assign"}, false},
		{"courier", actorToken(t, auth.RoleCourier, "c-1"), []string{"read", "history", "courier status"}, false},
		{"customer", actorToken(t, auth.RoleCustomer, "u-1"), []string{"read", "history"}, false},
		{"restaurant without sub", actorToken(t, auth.RoleRestaurant, ""), nil, false},
	}
	n := 0
	for _, p := range parties {
		for _, own := range []bool{true, false} {
			for _, a := range actions {
				n++
				id := fmt.Sprintf("perm-%d", n)
				restaurant, customer, courier := "r-1", "u-1", "c-1"
				if !own {
					restaurant, customer, courier = "r-2", "u-2", "c-2"
				}
				if resp, body := call(t, "POST", base+"/v1/orders", admin,
					`{"id":"`+id+`","restaurant_id":"`+restaurant+`","customer_id":"`+customer+`","details":{"secret":"s3cr3t"}}`); resp.StatusCode != http.StatusCreated {
					t.Fatalf("create: %d %s", resp.StatusCode, body)
				}
				for _, step := range []string{`PUT /courier {"courier_id":"` + courier + `"}`, `POST /status {"status":"confirmed"}`} {
					f := strings.SplitN(step, " ", 3)
					if resp, body := call(t, f[0], base+"/v1/orders/"+id+f[1], admin, f[2]); resp.StatusCode != http.StatusOK {
						t.Fatalf("%s: %d %s", step, resp.StatusCode, body)
					}
				}
				allowed := false
				for _, m := range p.may {
					allowed = allowed || m == a.name
				}
				allowed = allowed && (own || p.privilege)
				before := snapshot(t, ts.store, id)
				resp, body := call(t, a.method, base+"/v1/orders/"+id+a.path, p.token, a.body)
				what := fmt.Sprintf("%s %s on a %s order", p.who, a.name, map[bool]string{true: "own", false: "foreign"}[own])
				if allowed {
					if resp.StatusCode != http.StatusOK {
						t.Errorf("%s: %d %s, want 200", what, resp.StatusCode, body)
					}
					continue
				}
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: %d %s, want 403", what, resp.StatusCode, body)
				}
				if b := string(body); strings.Contains(b, "s3cr3t") || strings.Contains(b, `"version"`) || strings.Contains(b, "confirmed") {
					t.Errorf("%s: the refusal carries order data: %s", what, b)
				}
				if after := snapshot(t, ts.store, id); after != before {
					t.Errorf("%s: refused, but the store changed", what)
				}
			}
		}
	}
}

// TestPartyReadRefusalSaysWhatItMayRead: a party token refused an order that is not its party's
// is told which orders it reads (not that it lacks a tracking token, which its own orders do not
// need), in the same words for an order that does not exist.
func TestPartyReadRefusalSaysWhatItMayRead(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"o-2","restaurant_id":"r-2"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		role        auth.Role
		sub, saying string
	}{
		{auth.RoleRestaurant, "r-1", "role restaurant may read only the orders whose restaurant_id is its token's sub: this one does not exist or is another's"},
		{auth.RoleCourier, "c-1", "role courier may read only the orders whose courier_id is its token's sub: this one does not exist or is another's"},
		{auth.RoleCustomer, "u-1", "role customer may read only the orders whose customer_id is its token's sub: this one does not exist or is another's"},
	} {
		tok := actorToken(t, tc.role, tc.sub)
		_, foreign := call(t, "GET", base+"/v1/orders/o-2", tok, "")
		resp, unknown := call(t, "GET", base+"/v1/orders/o-nope/events", tok, "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(foreign), tc.saying) || string(unknown) != string(foreign) {
			t.Errorf("%s: another party's order %s, an unknown one %d %s; want both 403 saying %q", tc.role, foreign, resp.StatusCode, unknown, tc.saying)
		}
	}
}

// TestCourierMovesOnlyWhatItsPartHasReached: a courier assigned early (restaurants assign before
// the food is ready) picks the order up only once its restaurant has accepted it, and delivers
// only what it picked up: refused 409 invalid_transition, with nothing changed, before that.
func TestCourierMovesOnlyWhatItsPartHasReached(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	courier := actorToken(t, auth.RoleCourier, "c-1")
	for _, step := range []struct{ method, path, body string }{
		{"POST", "/v1/orders", `{"id":"early","restaurant_id":"r-1"}`},
		{"PUT", "/v1/orders/early/courier", `{"courier_id":"c-1"}`},
	} {
		if resp, body := call(t, step.method, base+step.path, admin, step.body); resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", step.method, step.path, resp.StatusCode, body)
		}
	}
	move := func(tok, status string, want int) {
		t.Helper()
		before := snapshot(t, ts.store, "early")
		resp, body := call(t, "POST", base+"/v1/orders/early/status", tok, `{"status":"`+status+`"}`)
		if resp.StatusCode != want {
			t.Fatalf("%s: %d %s, want %d", status, resp.StatusCode, body, want)
		}
		if want == http.StatusConflict {
			if !strings.Contains(string(body), `"invalid_transition"`) {
				t.Errorf("%s refused with %s, want invalid_transition", status, body)
			}
			if snapshot(t, ts.store, "early") != before {
				t.Errorf("%s was refused, but the store changed", status)
			}
		}
	}
	move(courier, "out_for_delivery", http.StatusConflict) // placed: the restaurant has not accepted it
	move(courier, "delivered", http.StatusConflict)
	move(admin, "confirmed", http.StatusOK)
	move(courier, "delivered", http.StatusConflict) // not picked up
	move(courier, "out_for_delivery", http.StatusOK)
	move(courier, "delivered", http.StatusOK)
}

// TestARestaurantsPartEndsAtThePickup: once the courier has picked an order up, its restaurant
// may neither cancel it nor take its courier away (the courier has the food: unassigned, the
// order could be delivered by nobody but dispatch), refused 409 invalid_transition with nothing
// changed, a repeat of what the order already is still a quiet success; dispatch may do both.
// Before the pickup the restaurant may do both.
func TestARestaurantsPartEndsAtThePickup(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	rest := actorToken(t, auth.RoleRestaurant, "r-1")
	courier := actorToken(t, auth.RoleCourier, "c-1")
	do := func(tok, method, path, body string, want int) {
		t.Helper()
		id := strings.Split(path, "/")[3]
		before := snapshot(t, ts.store, id)
		resp, got := call(t, method, base+path, tok, body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, resp.StatusCode, got, want)
		}
		if want == http.StatusConflict {
			if !strings.Contains(string(got), `"invalid_transition"`) || !strings.Contains(string(got), "dispatch") {
				t.Errorf("%s %s refused with %s, want invalid_transition naming dispatch", method, path, got)
			}
			if snapshot(t, ts.store, id) != before {
				t.Errorf("%s %s %s was refused, but the store changed", method, path, body)
			}
		}
	}
	for _, id := range []string{"early", "late"} {
		if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`","restaurant_id":"r-1"}`); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, resp.StatusCode, body)
		}
		do(rest, "POST", "/v1/orders/"+id+"/status", `{"status":"ready"}`, http.StatusOK)
		do(rest, "PUT", "/v1/orders/"+id+"/courier", `{"courier_id":"c-1"}`, http.StatusOK)
	}
	// Before the pickup: the restaurant's to undo.
	do(rest, "PUT", "/v1/orders/early/courier", `{"courier_id":null}`, http.StatusOK)
	do(rest, "POST", "/v1/orders/early/status", `{"status":"cancelled"}`, http.StatusOK)

	do(courier, "POST", "/v1/orders/late/status", `{"status":"out_for_delivery"}`, http.StatusOK)
	do(rest, "PUT", "/v1/orders/late/courier", `{"courier_id":null}`, http.StatusConflict)
	do(rest, "POST", "/v1/orders/late/status", `{"status":"cancelled"}`, http.StatusConflict)
	do(rest, "PUT", "/v1/orders/late/courier", `{"courier_id":"c-1"}`, http.StatusOK) // the courier it has: a quiet repeat
	do(admin, "PUT", "/v1/orders/late/courier", `{"courier_id":null}`, http.StatusOK)
	do(admin, "POST", "/v1/orders/late/status", `{"status":"cancelled"}`, http.StatusOK)
}

// TestSupportActsOnEveryOrderButNotAsThePlatform: a support agent's token (role support) reads,
// watches and changes every order and party, and lists a customer's orders, as a call to
// support needs; it creates no order, erases no customer and sends no request of many items,
// which are the platform's (nor reports a position: TestPermitPositionAndMany); and like the platform's tokens it is not taken
// from a URL, where logs would keep it. Its changes are recorded as the agent's.
func TestSupportActsOnEveryOrderButNotAsThePlatform(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	support := actorToken(t, auth.RoleSupport, "ana")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"s-1","restaurant_id":"r-1","customer_id":"u-1"}`, http.StatusCreated)

	for _, tc := range []struct {
		what, method, path, body string
		want                     int
	}{
		{"list a customer's orders", "GET", "/v1/orders?customer_id=u-1", "", http.StatusOK},
		{"list a restaurant's orders", "GET", "/v1/orders?restaurant_id=r-1", "", http.StatusOK},
		{"cancel an order", "POST", "/v1/orders/s-1/status", `{"status":"cancelled","note":"customer asked"}`, http.StatusOK},
		{"create an order", "POST", "/v1/orders", `{"id":"s-2"}`, http.StatusForbidden},
		{"erase a customer", "POST", "/v1/customers/u-1/erase", "", http.StatusForbidden},
		{"change many orders", "POST", api.PathStatusChanges, `{"changes":[{"order_id":"s-1","status":"delivered"}]}`, http.StatusForbidden},
	} {
		if resp, body := call(t, tc.method, base+tc.path, support, tc.body); resp.StatusCode != tc.want {
			t.Errorf("support may %s: %d %s, want %d", tc.what, resp.StatusCode, body, tc.want)
		}
	}
	var history api.EventsResponse
	if err := json.Unmarshal(mustCall(t, "GET", base+"/v1/orders/s-1/events", admin, "", http.StatusOK), &history); err != nil {
		t.Fatal(err)
	}
	if last := history.Events[len(history.Events)-1].Actor; last != "support:ana" {
		t.Errorf("the cancellation is recorded as %q, want support:ana", last)
	}

	streamStatus := func(path, header, query string) int {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", base+path+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set("Authorization", "Bearer "+header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/v1/stream", "/v1/restaurants/r-1/stream", "/v1/customers/u-1/stream", "/v1/orders/s-1/stream"} {
		if code := streamStatus(path, support, ""); code != http.StatusOK {
			t.Errorf("support watches %s: %d, want 200", path, code)
		}
	}
	if code := streamStatus("/v1/stream", "", "?token="+support); code != http.StatusUnauthorized {
		t.Errorf("a support token in the URL: %d, want 401", code)
	}
}

// TestATrackingLinkIsMadeAgain: support, admin and system have a fresh tracking token made for
// an order (a customer's link lost, or expired: an order for tomorrow outlives its first), which
// reads that order and expires when it says; no party may (a restaurant would mint its
// customers' watch access at will), an unknown order is 404, and nothing changes.
func TestATrackingLinkIsMadeAgain(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"l-1","restaurant_id":"r-1","customer_id":"u-1"}`, http.StatusCreated)
	mustCall(t, "POST", base+"/v1/orders", admin, `{"id":"l-2","restaurant_id":"r-1","customer_id":"u-1"}`, http.StatusCreated)
	before := snapshot(t, ts.store, "l-1")
	for _, role := range []auth.Role{auth.RoleSupport, auth.RoleAdmin, auth.RoleSystem} {
		var got api.TrackingTokenResponse
		if err := json.Unmarshal(mustCall(t, "POST", base+api.TrackingTokenPath("l-1"), actorToken(t, role, "x"), "", http.StatusOK), &got); err != nil {
			t.Fatal(err)
		}
		if got.OrderID != "l-1" || got.TrackingToken == "" || got.ExpiresAt == nil || time.Until(*got.ExpiresAt) < 23*time.Hour || time.Until(*got.ExpiresAt) > 24*time.Hour {
			t.Errorf("%s's tracking token: %+v, want one for l-1 that lives 24 h", role, got)
			continue
		}
		mustCall(t, "GET", base+"/v1/orders/l-1", got.TrackingToken, "", http.StatusOK)
		mustCall(t, "GET", base+"/v1/orders/l-2", got.TrackingToken, "", http.StatusForbidden)
	}
	for _, tc := range []struct {
		who, token, id string
		want           int
	}{
		{"the order's restaurant", actorToken(t, auth.RoleRestaurant, "r-1"), "l-1", http.StatusForbidden},
		{"the order's customer", actorToken(t, auth.RoleCustomer, "u-1"), "l-1", http.StatusForbidden},
		{"nobody", "", "l-1", http.StatusUnauthorized},
		{"support, for no such order", actorToken(t, auth.RoleSupport, "ana"), "l-none", http.StatusNotFound},
		{"support, for no id", actorToken(t, auth.RoleSupport, "ana"), "l%201", http.StatusUnprocessableEntity},
	} {
		if resp, body := call(t, "POST", base+"/v1/orders/"+tc.id+"/tracking-token", tc.token, ""); resp.StatusCode != tc.want || strings.Contains(string(body), "tracking_token") {
			t.Errorf("%s: %d %s, want %d and no token", tc.who, resp.StatusCode, body, tc.want)
		}
	}
	if after := snapshot(t, ts.store, "l-1"); after != before {
		t.Error("making tracking tokens changed the order")
	}
}
