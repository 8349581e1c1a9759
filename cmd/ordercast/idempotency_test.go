package main_test

import (
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
// answers, byte for byte (the tracking token included), and change nothing more.
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

	if status, again := postKeyed(t, b.url+"/v1/orders", "k-create", `{"details":{"items":1}}`); status != http.StatusCreated || again != first {
		t.Fatalf("create retried on b: %d %s, want 201 %s", status, again, first)
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
