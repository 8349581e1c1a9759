package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/testutil"
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

// openServer starts a server over the SQLite file at path, which other servers may share.
func openServer(t *testing.T, path string, configure func(*server.Server)) *testServer {
	t.Helper()
	ts := prepareServer(t, path)
	if configure != nil {
		configure(ts.Server)
	}
	if err := ts.Open(); err != nil {
		t.Fatalf("open server: %v", err)
	}
	return ts
}

// holding is how a test server holds its streams: true hands them to the poller (where the
// platform can), false keeps a goroutine each.
type holding bool

// bothHoldings runs test, in parallel, with streams held by the poller and with a goroutine each:
// the delivery rules must hold the same on both paths.
func bothHoldings(t *testing.T, test func(t *testing.T, hold holding)) {
	for _, hold := range []holding{true, false} {
		name := "goroutine"
		if hold {
			name = "held"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, hold)
		})
	}
}

// newServer starts a server holding its streams as h says; configure may adjust it before Open.
func (h holding) newServer(t *testing.T, configure func(*server.Server)) *testServer {
	t.Helper()
	return h.openServer(t, filepath.Join(t.TempDir(), "ordercast.db"), configure)
}

// openServer starts a server over the SQLite file at path, holding its streams as h says.
func (h holding) openServer(t *testing.T, path string, configure func(*server.Server)) *testServer {
	t.Helper()
	return openServer(t, path, func(s *server.Server) {
		s.HoldStreams = s.HoldStreams && bool(h)
		if configure != nil {
			configure(s)
		}
	})
}

// prepareServer returns a server on 127.0.0.1:0 over the SQLite file at path with its store
// open, for a test to configure and Open itself. It closes at cleanup.
func prepareServer(t *testing.T, path string) *testServer {
	t.Helper()
	h := hub.New()
	st := sqlite.New(path)
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	ts := &testServer{Server: srv, store: st, hub: h, path: path}
	t.Cleanup(func() { ts.close(t) })
	return ts
}

// close shuts the server down and closes its store; safe to call twice, and on a server that
// never opened.
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
	return mustCreateWith(t, &client.Client{BaseURL: base}, id)
}

// mustCreateWith creates an order through api, whose HTTPClient may speak HTTP/2 or TLS.
func mustCreateWith(t *testing.T, api *client.Client, id string) ordercast.Order {
	t.Helper()
	res, err := api.CreateOrder(context.Background(), client.CreateOrderRequest{ID: id, Details: json.RawMessage(`{"items":2}`)})
	if err != nil || !res.Created {
		t.Fatalf("create %s: created %v, %v", id, res.Created, err)
	}
	return res.Order
}

// commitUnannounced moves an order through statuses in the store with the hub detached, so the
// watchers hear of none of it unless the test publishes some; it returns the events committed.
func (ts *testServer) commitUnannounced(t *testing.T, id string, statuses ...ordercast.Status) []ordercast.Event {
	t.Helper()
	ts.store.Publisher = nil
	var evs []ordercast.Event
	for _, st := range statuses {
		_, ev, _, err := ts.store.AppendStatus(context.Background(), ordercast.StatusChange{OrderID: id, Status: st})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// mustCreateInStore creates an order in the store, not through the API, for tests whose server has
// a WriteTimeout too short to trust an ordinary response to under load.
func (ts *testServer) mustCreateInStore(t *testing.T, id string) {
	t.Helper()
	if _, _, err := ts.store.CreateOrder(context.Background(), ordercast.NewOrder{ID: id}); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
}

// mustCommit changes an order's status in the store, announced to the hub as an API change is,
// for the same tests as mustCreateInStore.
func (ts *testServer) mustCommit(t *testing.T, id string, status ordercast.Status) {
	t.Helper()
	if _, _, _, err := ts.store.AppendStatus(context.Background(), ordercast.StatusChange{OrderID: id, Status: status}); err != nil {
		t.Fatalf("set %s to %s: %v", id, status, err)
	}
}

// mustSetStatus changes an order's status through the API.
func mustSetStatus(t *testing.T, base, id string, status ordercast.Status) ordercast.Event {
	t.Helper()
	return mustSetStatusWith(t, &client.Client{BaseURL: base}, id, status)
}

// mustSetStatusWith changes an order's status through api.
func mustSetStatusWith(t *testing.T, api *client.Client, id string, status ordercast.Status) ordercast.Event {
	t.Helper()
	res, err := api.SetStatus(context.Background(), id, client.SetStatusRequest{Status: status})
	if err != nil {
		t.Fatalf("set %s to %s: %v", id, status, err)
	}
	return res.Event
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

// scrape fetches /metrics and parses the Prometheus text format.
func scrape(t *testing.T, c *http.Client, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value returns the value of the sample of name whose labels include labels (pairs of name and
// value); for a histogram, its sample count. Absent is 0.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// waitMetric polls /metrics until the sample equals want, or fails after testutil.WaitTimeout.
func waitMetric(t *testing.T, c *http.Client, base string, want float64, name string, labels ...string) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%s%v = %v", name, labels, want), func() bool {
		return value(scrape(t, c, base), name, labels...) == want
	})
}
