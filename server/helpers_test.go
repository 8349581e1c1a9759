package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// testServer is a real server on 127.0.0.1:0 over a real SQLite store.
type testServer struct {
	*server.Server
	store *sqlite.Store
	hub   *hub.Hub
	path  string
}

// newServer starts a server; configure may adjust it before Open.
func newServer(t *testing.T, configure func(*server.Server)) *testServer {
	t.Helper()
	return openServer(t, filepath.Join(t.TempDir(), "ordercast.db"), configure)
}

func openServer(t *testing.T, path string, configure func(*server.Server)) *testServer {
	t.Helper()
	h := hub.New()
	st := sqlite.New(path)
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	if configure != nil {
		configure(srv)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, store: st, hub: h, path: path}
	t.Cleanup(func() { ts.close(t) })
	return ts
}

// close shuts the server down and closes its store; safe to call twice.
func (ts *testServer) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Server.Close(ctx); err != nil {
		t.Errorf("close server: %v", err)
	}
	if err := ts.store.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
}

// do sends a request and returns the status and body.
func do(t *testing.T, method, url, contentType, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
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
	return resp.StatusCode, b
}

// mustCreate creates an order through the API.
func mustCreate(t *testing.T, base, id string) ordercast.Order {
	t.Helper()
	code, body := do(t, "POST", base+"/v1/orders", "application/json", `{"id":"`+id+`","details":{"items":2}}`)
	if code != http.StatusCreated {
		t.Fatalf("create %s: %d %s", id, code, body)
	}
	var o ordercast.Order
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// mustSetStatus changes an order's status through the API.
func mustSetStatus(t *testing.T, base, id string, status ordercast.Status) ordercast.Event {
	t.Helper()
	code, body := do(t, "POST", base+"/v1/orders/"+id+"/status", "application/json", `{"status":"`+string(status)+`"}`)
	if code != http.StatusOK {
		t.Fatalf("set %s to %s: %d %s", id, status, code, body)
	}
	var resp struct{ Event ordercast.Event }
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Event
}

// snapshot is everything the store holds about some orders, to prove a request changed nothing.
func snapshot(t *testing.T, st ordercast.Store, ids ...string) string {
	t.Helper()
	var b strings.Builder
	for _, id := range ids {
		o, err := st.Order(context.Background(), id)
		if ordercast.ErrorCode(err) == ordercast.ENotFound {
			b.WriteString(id + ": none\n")
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		evs, err := st.EventsAfter(context.Background(), id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(struct {
			O ordercast.Order
			E []ordercast.Event
		}{o, evs})
		b.Write(j)
		b.WriteByte('\n')
	}
	active, err := st.ActiveOrders(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(active)
	b.Write(j)
	return b.String()
}
