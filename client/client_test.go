package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
)

// recorded is what a test server saw of one request.
type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                map[string]any
}

// apiServer answers every request with status and body, recording the request on a channel.
func apiServer(t *testing.T, status int, body string, header http.Header) (*client.Client, <-chan recorded) {
	t.Helper()
	reqs := make(chan recorded, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &rec.Body); err != nil {
				t.Errorf("request body %q: %v", b, err)
			}
		}
		reqs <- rec
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &client.Client{BaseURL: srv.URL + "/", HTTPClient: srv.Client(), Token: "tok"}, reqs
}

const orderJSON = `{"id":"o-1","status":"placed","version":1,"details":{"a":1},"created_at":"2026-11-23T19:40:00Z","updated_at":"2026-11-23T19:40:00Z"}`

// createdJSON is a create answer: the order with its customer's tracking token.
const createdJSON = `{"id":"o-1","status":"placed","version":1,"details":{"a":1},"created_at":"2026-11-23T19:40:00Z","updated_at":"2026-11-23T19:40:00Z","tracking_token":"trk"}`

func TestCreateOrder(t *testing.T) {
	for _, tt := range []struct {
		status      int
		wantCreated bool
	}{{http.StatusCreated, true}, {http.StatusOK, false}} {
		c, reqs := apiServer(t, tt.status, createdJSON, nil)
		res, err := c.CreateOrder(context.Background(), client.CreateOrderRequest{ID: "o-1", Details: json.RawMessage(`{"a":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		o, created := res.Order, res.Created
		if res.TrackingToken != "trk" {
			t.Errorf("tracking token = %q, want trk", res.TrackingToken)
		}
		if o.ID != "o-1" || o.Status != ordercast.StatusPlaced || o.Version != 1 || string(o.Details) != `{"a":1}` {
			t.Errorf("order = %+v", o)
		}
		if created != tt.wantCreated {
			t.Errorf("HTTP %d: created = %v, want %v", tt.status, created, tt.wantCreated)
		}
		r := <-reqs
		if r.Method != http.MethodPost || r.Path != "/v1/orders" {
			t.Errorf("request = %s %s", r.Method, r.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer tok" {
			t.Errorf("Authorization = %q", got)
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type = %q", got)
		}
		if _, ok := r.Body["note"]; ok {
			t.Errorf("body %v carries an empty note", r.Body)
		}
	}
}

func TestOrderAndEvents(t *testing.T) {
	c, reqs := apiServer(t, http.StatusOK, orderJSON, nil)
	o, err := c.Order(context.Background(), "o-1")
	if err != nil || o.ID != "o-1" {
		t.Fatalf("Order = %+v, %v", o, err)
	}
	if r := <-reqs; r.Method != http.MethodGet || r.Path != "/v1/orders/o-1" {
		t.Errorf("request = %s %s", r.Method, r.Path)
	}

	c, reqs = apiServer(t, http.StatusOK, `{"order_id":"o-1","events":[{"order_id":"o-1","seq":3,"status":"ready","at":"2026-11-23T19:40:00Z"}]}`, nil)
	evs, err := c.Events(context.Background(), "o-1", 2)
	if err != nil || len(evs) != 1 || evs[0].Seq != 3 || evs[0].Status != ordercast.StatusReady {
		t.Fatalf("Events = %+v, %v", evs, err)
	}
	if r := <-reqs; r.Path != "/v1/orders/o-1/events" || r.Query != "after=2" {
		t.Errorf("request = %s?%s", r.Path, r.Query)
	}
}

func TestSetStatus(t *testing.T) {
	body := `{"order":` + orderJSON + `,"event":{"order_id":"o-1","seq":2,"status":"confirmed","at":"2026-11-23T19:40:00Z"},"changed":true}`
	tests := []struct {
		req  client.SetStatusRequest
		want map[string]any
	}{
		{client.SetStatusRequest{Status: ordercast.StatusConfirmed}, map[string]any{"status": "confirmed"}},
		{client.SetStatusRequest{Status: ordercast.StatusConfirmed, Note: "n", ExpectedVersion: new(int64(1))},
			map[string]any{"status": "confirmed", "note": "n", "expected_version": 1.0}},
	}
	for _, tt := range tests {
		c, reqs := apiServer(t, http.StatusOK, body, nil)
		res, err := c.SetStatus(context.Background(), "o-1", tt.req)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Changed || res.Event.Seq != 2 || res.Order.ID != "o-1" {
			t.Errorf("result = %+v", res)
		}
		r := <-reqs
		if r.Method != http.MethodPost || r.Path != "/v1/orders/o-1/status" {
			t.Errorf("request = %s %s", r.Method, r.Path)
		}
		if len(r.Body) != len(tt.want) {
			t.Errorf("body = %v, want %v", r.Body, tt.want)
		}
		for k, v := range tt.want {
			if r.Body[k] != v {
				t.Errorf("body[%s] = %v, want %v", k, r.Body[k], v)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		wantCode   string
		wantMsg    string
		wantRetry  time.Duration
		wantAt     int64 // the version a conflict names (CurrentVersion, ordercast.ConflictVersion)
	}{
		{"api error", http.StatusConflict, `{"error":{"code":"version_conflict","message":"order o-1 is at version 3, not 2","current_version":3}}`, "",
			ordercast.EVersionConflict, "order o-1 is at version 3, not 2", 0, 3},
		{"retry after seconds", http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"slow down"}}`, "7",
			ordercast.ERateLimited, "slow down", 7 * time.Second, 0},
		{"not json", http.StatusBadGateway, "<html>bad gateway</html>", "", ordercast.EUnavailable, "Bad Gateway: <html>bad gateway</html>", 0, 0},
		{"empty 404", http.StatusNotFound, "", "", ordercast.ENotFound, "Not Found", 0, 0},
		{"bad retry after", http.StatusServiceUnavailable, "", "soon", ordercast.EUnavailable, "Service Unavailable", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.retryAfter != "" {
				h.Set("Retry-After", tt.retryAfter)
			}
			c, _ := apiServer(t, tt.status, tt.body, h)
			_, err := c.Order(context.Background(), "o-1")
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *client.Error", err)
			}
			if ce.StatusCode != tt.status || ce.Code != tt.wantCode || ce.Message != tt.wantMsg || ce.RetryAfter != tt.wantRetry || ce.CurrentVersion != tt.wantAt {
				t.Errorf("error = %+v", ce)
			}
			// The conflict's version is read as the server's domain error says it, dropped by
			// the client before (a client integrator's review: re-read the order, or parse the
			// message).
			if at, ok := ordercast.ConflictVersion(err); at != tt.wantAt || ok != (tt.wantAt > 0) {
				t.Errorf("ConflictVersion = %d, %v; want %d", at, ok, tt.wantAt)
			}
			if got := ordercast.ErrorCode(err); got != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", got, tt.wantCode)
			}
			if got := ordercast.ErrorMessage(err); got != tt.wantMsg {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

func TestRetryAfterDate(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	c, _ := apiServer(t, http.StatusServiceUnavailable, "", h)
	_, err := c.Order(context.Background(), "o-1")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.RetryAfter <= 0 || ce.RetryAfter > time.Hour {
		t.Fatalf("err = %#v, want RetryAfter within the next hour", err)
	}
}
