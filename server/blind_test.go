package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/auth"
)

// TestStatusChangeRevealsNothingToNonReaders: a courier or restaurant token may set statuses but
// not read orders (403 on GET), so no status-change answer carries the order: no details, note
// or version on a no-op or an applied change, no version or status in a 409, and 403 rather than
// 404 for an unknown id (issue 13, finding 3).
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
		{"no-op with a wrong expected_version", restaurant, "/v1/orders/b-1/status", `{"status":"preparing","expected_version":7}`, http.StatusOK},
		{"move with a wrong expected_version", restaurant, "/v1/orders/b-1/status", `{"status":"ready","expected_version":7}`, http.StatusConflict},
		{"invalid transition", restaurant, "/v1/orders/b-1/status", `{"status":"confirmed"}`, http.StatusConflict},
		{"unknown id", courier, "/v1/orders/nope/status", `{"status":"delivered"}`, http.StatusForbidden},
		{"applied change", restaurant, "/v1/orders/b-1/status", `{"status":"ready"}`, http.StatusOK},
	} {
		resp, body := call(t, "POST", base+c.url, c.token, c.body)
		if resp.StatusCode != c.status || leaks(body) {
			t.Errorf("%s: %d %s, want %d revealing nothing of the order", c.what, resp.StatusCode, body, c.status)
		}
	}
	// A reader still gets the order.
	if resp, body := call(t, "POST", base+"/v1/orders/b-1/status", admin, `{"status":"ready"}`); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "15550100") {
		t.Fatalf("admin no-op: %d %s, want the order", resp.StatusCode, body)
	}
}
