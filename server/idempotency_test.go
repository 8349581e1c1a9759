package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/server"
)

// post sends a JSON POST with an optional Idempotency-Key and returns the response and its body.
func post(t *testing.T, url, key, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(server.IdempotencyKeyHeader, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestIdempotencyKey: a retry with the same key and body gets the first answer, byte for byte,
// and changes nothing more; the same key with another body is 422 idempotency_key_reused.
func TestIdempotencyKey(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()

	first, firstBody := post(t, base+"/v1/orders", "create-1", `{"details":{"items":2}}`)
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("first create: %d %s", first.StatusCode, firstBody)
	}
	var created struct{ ID string }
	if err := json.Unmarshal([]byte(firstBody), &created); err != nil || first.Header.Get("Location") != "/v1/orders/"+created.ID {
		t.Fatalf("first create: Location %q for %s (%v), want the order's address", first.Header.Get("Location"), firstBody, err)
	}
	again, againBody := post(t, base+"/v1/orders", "create-1", `{"details":{"items":2}}`)
	if again.StatusCode != http.StatusCreated || againBody != firstBody || again.Header.Get(server.IdempotentReplayedHeader) != "true" ||
		again.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("retry: %d %s (replayed %q), want 201 %s", again.StatusCode, againBody, again.Header.Get(server.IdempotentReplayedHeader), firstBody)
	}
	active, err := ts.store.ActiveOrders(context.Background(), 0)
	if err != nil || len(active) != 1 {
		t.Fatalf("orders after a retried create without id: %d, %v; want 1", len(active), err)
	}
	id := active[0].ID

	other, otherBody := post(t, base+"/v1/orders", "create-1", `{"details":{"items":3}}`)
	if other.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(otherBody, `"idempotency_key_reused"`) {
		t.Fatalf("same key, other body: %d %s, want 422 idempotency_key_reused", other.StatusCode, otherBody)
	}

	url := base + "/v1/orders/" + id + "/status"
	first, firstBody = post(t, url, "move-1", `{"status":"confirmed"}`)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("status change: %d %s", first.StatusCode, firstBody)
	}
	mustSetStatus(t, base, id, "preparing")
	again, againBody = post(t, url, "move-1", `{"status":"confirmed"}`)
	if again.StatusCode != http.StatusOK || againBody != firstBody {
		t.Fatalf("retried status change after another change: %d %s, want the first answer %s", again.StatusCode, againBody, firstBody)
	}
	other, otherBody = post(t, base+"/v1/orders/"+id+"x/status", "move-1", `{"status":"confirmed"}`)
	if other.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(otherBody, `"idempotency_key_reused"`) {
		t.Fatalf("same key on another order: %d %s, want 422", other.StatusCode, otherBody)
	}
	if bad, body := post(t, base+"/v1/orders", "has space", `{}`); bad.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a key with a space: %d %s, want 422", bad.StatusCode, body)
	}
	// Two keys: refused as two, not as one key "a, b" with a space in it.
	req, err := http.NewRequest("POST", base+"/v1/orders", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header[server.IdempotencyKeyHeader] = []string{"a", "b"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "one Idempotency-Key a request, not 2") {
		t.Fatalf("two keys: %d %s, want 422 saying there are two", resp.StatusCode, body)
	}
}

// TestAKeyIsBoundToItsVersion: the version a status change is conditioned on is part of the
// request an Idempotency-Key names, whether it came in If-Match or in expected_version: the
// same key with another version, or with none, is 422 idempotency_key_reused rather than a
// replay telling the client its condition held; the same version sent the other way is the
// same request, replayed.
func TestAKeyIsBoundToItsVersion(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	o := mustCreate(t, base, "o-bound")
	send := func(ifMatch, body string) (*http.Response, string) {
		t.Helper()
		header := []string{server.IdempotencyKeyHeader, "move-bound"}
		if ifMatch != "" {
			header = append(header, "If-Match", ifMatch)
		}
		resp, b := call(t, "POST", base+"/v1/orders/"+o.ID+"/status", "", body, header...)
		return resp, string(b)
	}
	first, firstBody := send(`"v1"`, `{"status":"confirmed"}`)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first change: %d %s", first.StatusCode, firstBody)
	}
	for _, tt := range []struct{ ifMatch, body string }{
		{`"v1"`, `{"status":"confirmed"}`},
		{"", `{"status":"confirmed","expected_version":1}`},
	} {
		if again, body := send(tt.ifMatch, tt.body); again.StatusCode != http.StatusOK || body != firstBody || again.Header.Get(server.IdempotentReplayedHeader) != "true" {
			t.Errorf("retry with If-Match %q and %s: %d %s, want the first answer replayed", tt.ifMatch, tt.body, again.StatusCode, body)
		}
	}
	for _, tt := range []struct{ ifMatch, body string }{
		{`"v7"`, `{"status":"confirmed"}`},
		{"", `{"status":"confirmed","expected_version":7}`},
		{"", `{"status":"confirmed"}`},
	} {
		if other, body := send(tt.ifMatch, tt.body); other.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `"idempotency_key_reused"`) {
			t.Errorf("same key with If-Match %q and %s: %d %s, want 422 idempotency_key_reused", tt.ifMatch, tt.body, other.StatusCode, body)
		}
	}
}

// TestARetryIsTheSameRequestByMeaning: a create's retry whose details are spelled another way
// but mean the same (null or none, 1 or 1.0, keys in another order or spacing, an escaped
// letter) is the same request, as a repeated creation judges it, and gets the first answer.
// Details that mean something else are another request.
func TestARetryIsTheSameRequestByMeaning(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	for i, tt := range []struct{ first, retry string }{
		{`{"id":"o-%d","details":null}`, `{"id":"o-%d"}`},
		{`{"id":"o-%d"}`, `{"details":{},"id":"o-%d"}`},
		{`{"id":"o-%d","details":{"n":1,"m":[1.5,"<"]}}`, `{"id":"o-%d","details":{ "m" : [15e-1, "\u003c"], "n" : 1.0 }}`},
	} {
		key := fmt.Sprintf("same-%d", i)
		first, firstBody := post(t, base+"/v1/orders", key, fmt.Sprintf(tt.first, i))
		if first.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", tt.first, first.StatusCode, firstBody)
		}
		again, againBody := post(t, base+"/v1/orders", key, fmt.Sprintf(tt.retry, i))
		if again.StatusCode != http.StatusCreated || again.Header.Get(server.IdempotentReplayedHeader) != "true" {
			t.Errorf("retry %s after %s: %d %s, want the first answer replayed", tt.retry, tt.first, again.StatusCode, againBody)
		}
	}
	first, body := post(t, base+"/v1/orders", "other", `{"id":"o-other","details":{"n":1}}`)
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", first.StatusCode, body)
	}
	if other, body := post(t, base+"/v1/orders", "other", `{"id":"o-other","details":{"n":10}}`); other.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `"idempotency_key_reused"`) {
		t.Errorf("same key, other details: %d %s, want 422 idempotency_key_reused", other.StatusCode, body)
	}
}

// TestIdempotentCreateRecordsNoToken: the answer a create records under its Idempotency-Key
// holds no tracking token, since it is kept in the database for a day and a token there is a
// credential to the order for whoever reads the database or a backup; a retry is answered with
// the order and a token signed anew, which opens the order as the first one does.
func TestIdempotentCreateRecordsNoToken(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ordercast.db")
	ts := openServer(t, path, func(s *server.Server) { s.Auth = &server.Auth{Tokens: authority(t)} })
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	create := func() (*http.Response, api.CreateOrderResponse) {
		t.Helper()
		resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"kept","details":{"items":2}}`, server.IdempotencyKeyHeader, "create-kept")
		var res api.CreateOrderResponse
		if err := json.Unmarshal(body, &res); resp.StatusCode != http.StatusCreated || err != nil || res.TrackingToken == "" || res.ID != "kept" {
			t.Fatalf("create: %d %s (%v), want 201 with the order and a tracking token", resp.StatusCode, body, err)
		}
		return resp, res
	}
	_, first := create()

	recorded, err := ts.store.IdempotentAnswer(context.Background(), "POST /v1/orders admin:ops", "create-kept", time.Now())
	if err != nil {
		t.Fatalf("the recorded answer: %v", err)
	}
	if bytes.Contains(recorded.Body, []byte(first.TrackingToken)) || bytes.Contains(recorded.Body, []byte("tracking_token")) {
		t.Errorf("the recorded answer holds a tracking token: %s", recorded.Body)
	}

	again, second := create()
	if again.Header.Get(server.IdempotentReplayedHeader) != "true" || second.Version != first.Version {
		t.Errorf("retry: replayed %q, order %+v; want the first answer's order, replayed", again.Header.Get(server.IdempotentReplayedHeader), second.Order)
	}
	for _, tok := range []string{first.TrackingToken, second.TrackingToken} {
		if resp, body := call(t, "GET", base+"/v1/orders/kept", tok, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET with a create's tracking token: %d %s, want 200", resp.StatusCode, body)
		}
	}

	// A record written before tokens were left out holds one: a replay replaces it.
	old := fmt.Sprintf(`%s,"tracking_token":"a-token-recorded-long-ago"}`, bytes.TrimSuffix(bytes.TrimSpace(recorded.Body), []byte("}")))
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE idempotency_keys SET body = ? WHERE key = 'create-kept'`, []byte(old)); err != nil {
		t.Fatal(err)
	}
	_, third := create()
	if third.TrackingToken == "a-token-recorded-long-ago" {
		t.Errorf("a replay of a record that held a token answered that token, want one signed anew")
	}
	if resp, body := call(t, "GET", base+"/v1/orders/kept", third.TrackingToken, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET with the token of a replayed old record: %d %s, want 200", resp.StatusCode, body)
	}
}

// TestIdempotencyFingerprintsStayTheSame pins what a keyed write is fingerprinted by. A release
// whose fingerprint of a request differs from the release before refuses a retry that crosses
// the upgrade as another request's reuse of the key (422 idempotency_key_reused): a client doing
// the right thing is told it did wrong. A change to a request's struct or to its
// canonicalization that moves these values must keep the old fingerprint accepted, or be named
// in docs/deploy.md ("From a release older than a few days"), and only then these values
// changed. Each request here sends every field its route takes.
func TestIdempotencyFingerprintsStayTheSame(t *testing.T) {
	t.Parallel()
	ts := openServer(t, filepath.Join(t.TempDir(), "ordercast.db"), func(s *server.Server) { s.Auth = &server.Auth{Tokens: authority(t)} })
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, w := range []struct {
		pattern, path, body, key, want string
	}{
		{"POST /v1/orders", "/v1/orders",
			`{"id":"pinned","details":{"items":[{"name":"Pho","qty":2}],"allergies":"peanuts","total":12.5},"note":"by phone",` +
				`"restaurant_id":"r-1","customer_id":"u-1","pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.51,"lng":13.39}}`,
			"pin-create", "80d1f6349e280b80d88e759cab9f66a605fa0c8df1c8b24693d3a33ca6cd2492"},
		{"POST /v1/orders/{id}/status", "/v1/orders/pinned/status",
			`{"status":"confirmed","note":"20 minutes","expected_version":1}`,
			"pin-status", "35ca38eab72a14f06cfb62bcc4a80e0dbf417e26f97ee0414431315f759084f9"},
	} {
		resp, body := call(t, "POST", base+w.path, admin, w.body, server.IdempotencyKeyHeader, w.key)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s: %d %s", w.pattern, resp.StatusCode, body)
		}
		recorded, err := ts.store.IdempotentAnswer(context.Background(), w.pattern+" admin:ops", w.key, time.Now())
		if err != nil {
			t.Fatalf("%s: the recorded answer: %v", w.pattern, err)
		}
		if recorded.Fingerprint != w.want {
			t.Errorf("%s is fingerprinted %s, was %s: a retry across this change would be refused (see the test's comment)", w.pattern, recorded.Fingerprint, w.want)
		}
	}
}
