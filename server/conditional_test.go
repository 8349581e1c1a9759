package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ordercast/ordercast"
)

// errorCode is the code of an error answer's body.
func errorCodeOf(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Error struct{ Code string } }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%q is not a JSON error: %v", body, err)
	}
	return e.Error.Code
}

// TestGetOrderAnswersIfNoneMatch: an order's ETag is its version; a GET that already has it
// (weak comparison, or *) gets 304 with the tag and no body, one with an older tag the order.
func TestGetOrderAnswersIfNoneMatch(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed)
	resp, _ := call(t, "GET", base+"/v1/orders/o-1", "", "")
	if got := resp.Header.Get("ETag"); got != `"v2"` {
		t.Fatalf("ETag = %q, want \"v2\"", got)
	}
	for _, inm := range []string{`"v2"`, `W/"v2"`, `"v1", "v2"`, `*`} {
		resp, body := call(t, "GET", base+"/v1/orders/o-1", "", "", "If-None-Match", inm)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != `"v2"` || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("If-None-Match %s: %d %q (ETag %q, Cache-Control %q), want 304, no body, the tag", inm, resp.StatusCode, body,
				resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
		}
	}
	mustSetStatus(t, base, "o-1", ordercast.StatusPreparing)
	resp, body := call(t, "GET", base+"/v1/orders/o-1", "", "", "If-None-Match", `"v2"`)
	var o ordercast.Order
	if err := json.Unmarshal(body, &o); resp.StatusCode != http.StatusOK || err != nil || o.Version != 3 || resp.Header.Get("ETag") != `"v3"` {
		t.Fatalf("after a change: %d %s (ETag %q), want 200 with version 3", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
}

// TestChangesTakeIfMatch: a status or courier change sent with If-Match is applied only at the
// version its tag names, as expected_version; at another version it is 412 and changes
// nothing. A tag that cannot match (weak, not one of ours) is 412; a list, a tag that disagrees
// with expected_version, or If-Match on a request of many orders is refused 422.
func TestChangesTakeIfMatch(t *testing.T) {
	t.Parallel()
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "o-1")
	mustSetStatus(t, base, "o-1", ordercast.StatusConfirmed) // v2
	version := func() int64 {
		_, body := call(t, "GET", base+"/v1/orders/o-1", "", "")
		var o ordercast.Order
		if err := json.Unmarshal(body, &o); err != nil {
			t.Fatal(err)
		}
		return o.Version
	}
	for _, tt := range []struct {
		name, method, path, body, ifMatch string
		status                            int
		code                              string
	}{
		{"the order is past the tag", "POST", "/status", `{"status":"preparing"}`, `"v1"`, 412, ordercast.EPreconditionFailed},
		{"a courier change past the tag", "PUT", "/courier", `{"courier_id":"c-1"}`, `"v1"`, 412, ordercast.EPreconditionFailed},
		{"a weak tag", "POST", "/status", `{"status":"preparing"}`, `W/"v2"`, 412, ordercast.EPreconditionFailed},
		{"a tag not of ours", "POST", "/status", `{"status":"preparing"}`, `"abc"`, 412, ordercast.EPreconditionFailed},
		{"a version that never was", "POST", "/status", `{"status":"preparing"}`, `"v0"`, 412, ordercast.EPreconditionFailed},
		{"a list", "POST", "/status", `{"status":"preparing"}`, `"v1", "v2"`, 422, ordercast.EInvalid},
		{"a list that opens with a weak tag", "POST", "/status", `{"status":"preparing"}`, `W/"v1", "v2"`, 422, ordercast.EInvalid},
		{"an unquoted tag", "POST", "/status", `{"status":"preparing"}`, `v2`, 422, ordercast.EInvalid},
		{"a tag without its opening quote", "POST", "/status", `{"status":"preparing"}`, `v2"`, 422, ordercast.EInvalid},
		{"a tag without its closing quote", "POST", "/status", `{"status":"preparing"}`, `"v2`, 422, ordercast.EInvalid},
		{"a quoted version without its v", "POST", "/status", `{"status":"preparing"}`, `"2"`, 412, ordercast.EPreconditionFailed},
		{"a tag against expected_version", "POST", "/status", `{"status":"preparing","expected_version":1}`, `"v2"`, 422, ordercast.EInvalid},
		// A request wrong in itself is refused as such, whatever the version its tag names: the
		// caller must mend it, and a fresh tag would not make it right.
		{"a bad status past the tag", "POST", "/status", `{"status":"eaten"}`, `"v1"`, 422, ordercast.EInvalidStatus},
		{"an empty courier past the tag", "PUT", "/courier", `{"courier_id":""}`, `"v1"`, 422, ordercast.EInvalid},
		{"a blank name past the tag", "PUT", "/courier", `{"courier_id":"c-1","courier_name":" "}`, `"v1"`, 422, ordercast.EInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, tt.method, base+"/v1/orders/o-1"+tt.path, "", tt.body, "If-Match", tt.ifMatch)
			if resp.StatusCode != tt.status || errorCodeOf(t, body) != tt.code {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
			if v := version(); v != 2 {
				t.Fatalf("the order moved to version %d", v)
			}
		})
	}
	if resp, body := call(t, "POST", base+"/v1/orders/o-1/status", "", `{"status":"preparing"}`, "If-Match", `"v2"`); resp.StatusCode != http.StatusOK {
		t.Fatalf("at the tag's version: %d %s, want 200", resp.StatusCode, body)
	}
	if resp, body := call(t, "PUT", base+"/v1/orders/o-1/courier", "", `{"courier_id":"c-1"}`, "If-Match", `"v3"`); resp.StatusCode != http.StatusOK {
		t.Fatalf("a courier change at the tag's version: %d %s, want 200", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", base+"/v1/orders/o-1/status", "", `{"status":"ready"}`, "If-Match", `*`); resp.StatusCode != http.StatusOK {
		t.Fatalf("If-Match *: %d %s, want 200", resp.StatusCode, body)
	}
	resp, body := call(t, "POST", base+"/v1/status-changes", "", `{"changes":[{"order_id":"o-1","status":"cancelled"}]}`, "If-Match", `"v5"`)
	if resp.StatusCode != http.StatusUnprocessableEntity || errorCodeOf(t, body) != ordercast.EInvalid || version() != 5 {
		t.Fatalf("If-Match on a request of many orders: %d %s (order at %d), want 422 and nothing changed", resp.StatusCode, body, version())
	}
}
