package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// postKeyed sends an admin's JSON POST with an Idempotency-Key and returns status and body.
func postKeyed(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken())
	req.Header.Set("Idempotency-Key", key)
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestCluster_IdempotencyKeyAcrossNodeKill: a create and a status change answered by a node that
// is then killed are retried on another node with the same keys: the retries get the first
// answers, byte for byte but for the create's tracking token and its expiry, which a replay
// signs anew (the record keeps none), and change nothing more.
func TestCluster_IdempotencyKeyAcrossNodeKill(t *testing.T) {
	_, nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]

	status, first := postKeyed(t, a.url+"/v1/orders", "k-create", `{"details":{"items":1}}`)
	if status != http.StatusCreated {
		t.Fatalf("create on a: %d %s", status, first)
	}
	id := first[strings.Index(first, `"id":"`)+6:]
	id = id[:strings.IndexByte(id, '"')]
	status, moved := postKeyed(t, a.url+"/v1/orders/"+id+"/status", "k-move", `{"status":"confirmed"}`)
	if status != http.StatusOK {
		t.Fatalf("status on a: %d %s", status, moved)
	}
	a.kill(t)

	status, again := postKeyed(t, b.url+"/v1/orders", "k-create", `{"details":{"items":1}}`)
	answer, token := withoutToken(t, again)
	if want, _ := withoutToken(t, first); status != http.StatusCreated || answer != want {
		t.Fatalf("create retried on b: %d %s, want 201 %s", status, again, first)
	}
	req, _ := http.NewRequest("GET", b.url+"/v1/orders/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the replay's tracking token reading the order: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	if status, again := postKeyed(t, b.url+"/v1/orders/"+id+"/status", "k-move", `{"status":"confirmed"}`); status != http.StatusOK || again != moved {
		t.Fatalf("status retried on b: %d %s, want 200 %s", status, again, moved)
	}
	if status, body := postKeyed(t, b.url+"/v1/orders", "k-create", `{"details":{"items":2}}`); status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body on b: %d %s, want 422", status, body)
	}
	resp, err := http.Get(b.url + "/v1/orders/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(evs), `"seq"`); n != 2 {
		t.Fatalf("events after the retries: %d, want 2: %s", n, evs)
	}
}

// withoutToken returns a create's answer without its tracking token and its expiry, encoded
// again, and the token.
func withoutToken(t *testing.T, body string) (rest, token string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	token, _ = m["tracking_token"].(string)
	if token == "" {
		t.Fatalf("answer without a tracking token: %s", body)
	}
	// And when it expires, which a replay, signing the token anew, says anew too: a second
	// later when the replay crossed a second's boundary (it failed so once, 2026-12-07).
	if _, ok := m["tracking_token_expires_at"].(string); !ok {
		t.Fatalf("answer without tracking_token_expires_at: %s", body)
	}
	delete(m, "tracking_token")
	delete(m, "tracking_token_expires_at")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), token
}
