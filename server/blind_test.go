package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/auth"
)

// TestStatusChangeRevealsNothingToNonReaders: a courier or restaurant token may not read orders
// of other parties (403 on GET), so no status-change answer about such an order carries it: a
// foreign party is refused with 403 before anything is decided, whatever the change, and an
// unknown id is 403 rather than 404 (issue 13, finding 3; issue 14).
func TestStatusChangeRevealsNothingToNonReaders(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"b-1","details":{"phone":"+15550100"},"note":"secret note"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", base+"/v1/orders/b-1/status", admin, `{"status":"preparing"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("move: %d %s", resp.StatusCode, body)
	}
	restaurant := actorToken(t, auth.RoleRestaurant, "r-1")
	courier := actorToken(t, auth.RoleCourier, "c-1")
	if resp, _ := call(t, "GET", base+"/v1/orders/b-1", restaurant, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("restaurant GET: %d, want 403 (the premise)", resp.StatusCode)
	}
	leaks := func(body []byte) bool {
		b := string(body)
		return strings.Contains(b, "15550100") || strings.Contains(b, "secret") || strings.Contains(b, `"version"`) ||
			strings.Contains(b, "version 2") || strings.Contains(b, "details") || strings.Contains(b, "is preparing")
	}
	for _, c := range []struct {
		what, token, url, body string
		status                 int
	}{
		{"no-op with a wrong expected_version", restaurant, "/v1/orders/b-1/status", `{"status":"preparing","expected_version":7}`, http.StatusForbidden},
		{"move with a wrong expected_version", restaurant, "/v1/orders/b-1/status", `{"status":"ready","expected_version":7}`, http.StatusForbidden},
		{"invalid transition", restaurant, "/v1/orders/b-1/status", `{"status":"confirmed"}`, http.StatusForbidden},
		{"unknown id", courier, "/v1/orders/nope/status", `{"status":"delivered"}`, http.StatusForbidden},
		{"courier of another order", courier, "/v1/orders/b-1/status", `{"status":"delivered"}`, http.StatusForbidden},
		{"assignment by another restaurant", restaurant, "/v1/orders/b-1/courier", `{"courier_id":"c-1"}`, http.StatusForbidden},
		{"applied change", restaurant, "/v1/orders/b-1/status", `{"status":"ready"}`, http.StatusForbidden},
	} {
		method := "POST"
		if strings.HasSuffix(c.url, "/courier") {
			method = "PUT"
		}
		resp, body := call(t, method, base+c.url, c.token, c.body)
		if resp.StatusCode != c.status || leaks(body) {
			t.Errorf("%s: %d %s, want %d revealing nothing of the order", c.what, resp.StatusCode, body, c.status)
		}
	}
	// A reader still gets the order.
	if resp, body := call(t, "POST", base+"/v1/orders/b-1/status", admin, `{"status":"ready"}`); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "15550100") {
		t.Fatalf("admin no-op: %d %s, want the order", resp.StatusCode, body)
	}
}

// TestOwnersRefusalsSayWhy: a party's change to its own order, which it may read, is refused
// with the reason an admin would get (the stage it is at, the version it is at), not the blind
// answer a foreign order gets: the owner is checked first, so such a refusal tells nothing the
// party could not read.
func TestOwnersRefusalsSayWhy(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	restaurant := actorToken(t, auth.RoleRestaurant, "r-1")
	courier := actorToken(t, auth.RoleCourier, "c-1")
	for _, step := range []struct{ method, url, body string }{
		{"POST", "/v1/orders", `{"id":"w-1","restaurant_id":"r-1"}`},
		{"PUT", "/v1/orders/w-1/courier", `{"courier_id":"c-1"}`},
		{"POST", "/v1/orders", `{"id":"w-2","restaurant_id":"r-1"}`},
		{"POST", "/v1/orders/w-2/status", `{"status":"delivered"}`},
	} {
		if resp, body := call(t, step.method, base+step.url, admin, step.body); resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", step.method, step.url, resp.StatusCode, body)
		}
	}
	for _, c := range []struct {
		what, token, method, url, body, code, says string
	}{
		{"a courier's step before its stage", courier, "POST", "/v1/orders/w-1/status", `{"status":"out_for_delivery"}`, "invalid_transition", "order is placed: it must be"},
		{"a stale expected_version", restaurant, "POST", "/v1/orders/w-1/status", `{"status":"confirmed","expected_version":7}`, "version_conflict", "is at version 2, not 7"},
		{"a change to an ended order", restaurant, "POST", "/v1/orders/w-2/status", `{"status":"cancelled"}`, "invalid_transition", "delivered"},
		{"an assignment to an ended order", restaurant, "PUT", "/v1/orders/w-2/courier", `{"courier_id":"c-2"}`, "invalid_transition", "order is delivered and accepts no further change"},
	} {
		resp, body := call(t, c.method, base+c.url, c.token, c.body)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), `"`+c.code+`"`) || !strings.Contains(string(body), c.says) {
			t.Errorf("%s: %d %s, want 409 %s saying %q", c.what, resp.StatusCode, body, c.code, c.says)
		}
	}
}
