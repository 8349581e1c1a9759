package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// TestMetricsFollowStreams scrapes /metrics as a stream opens, receives a live event and closes,
// once because the client left and once because the order ended.
func TestMetricsFollowStreams(t *testing.T) {
	srv := newServer(t, nil)
	base, c := srv.URL(), http.DefaultClient

	mustCreate(t, base, "m-1")
	mfs := scrape(t, c, base)
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ordercast_streams_open", nil, 0},
		{"ordercast_events_committed_total", nil, 1},
		{"ordercast_events_delivered_total", nil, 0},
		{"ordercast_http_requests_total", []string{"route", "POST /v1/orders", "code", "201"}, 1},
		{"ordercast_http_request_duration_seconds", []string{"route", "POST /v1/orders"}, 1},
	} {
		if got := value(mfs, m.name, m.labels...); got != m.want {
			t.Errorf("before any stream: %s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if mfs[name] == nil {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, st := openStream(t, ctx, c, base, "m-1", "")
	if ev := next(t, st); ev.Seq != 1 {
		t.Fatalf("first event seq %d, want 1", ev.Seq)
	}
	// The backlog is delivered but is no commit-to-write latency sample. Deliveries are counted
	// just after the flush the client reads from, hence the wait.
	waitMetric(t, c, base, 1, "ordercast_events_delivered_total")
	mfs = scrape(t, c, base)
	if got := value(mfs, "ordercast_streams_open"); got != 1 {
		t.Errorf("streams open after connecting: %v, want 1", got)
	}
	if got := value(mfs, "ordercast_delivery_latency_seconds"); got != 0 {
		t.Errorf("latency samples after the backlog: %v, want 0", got)
	}

	mustSetStatus(t, base, "m-1", ordercast.StatusConfirmed)
	if ev := next(t, st); ev.Seq != 2 {
		t.Fatalf("live event seq %d, want 2", ev.Seq)
	}
	waitMetric(t, c, base, 2, "ordercast_events_delivered_total")
	mfs = scrape(t, c, base)
	if got := value(mfs, "ordercast_events_committed_total"); got != 2 {
		t.Errorf("events committed: %v, want 2", got)
	}
	if got := value(mfs, "ordercast_delivery_latency_seconds"); got != 1 {
		t.Errorf("latency samples after one live event: %v, want 1", got)
	}

	// A repeat of the same status commits nothing.
	mustSetStatus(t, base, "m-1", ordercast.StatusConfirmed)
	if got := value(scrape(t, c, base), "ordercast_events_committed_total"); got != 2 {
		t.Errorf("events committed after a no-op repeat: %v, want 2", got)
	}

	cancel() // the client goes away
	waitMetric(t, c, base, 1, "ordercast_streams_closed_total", "reason", "client_gone")
	waitMetric(t, c, base, 0, "ordercast_streams_open")
	waitMetric(t, c, base, 1, "ordercast_http_requests_total", "route", "GET /v1/orders/{id}/stream", "code", "200")
	// A stream is held open as long as its client wants: its time is no request's duration.
	if got := value(scrape(t, c, base), "ordercast_http_request_duration_seconds", "route", "GET /v1/orders/{id}/stream"); got != 0 {
		t.Errorf("request durations of a stream: %v samples, want none", got)
	}

	// A stream that sees the order end closes as terminal.
	_, st = openStream(t, context.Background(), c, base, "m-1", "2")
	mustSetStatus(t, base, "m-1", ordercast.StatusDelivered)
	if ev := next(t, st); ev.Status != ordercast.StatusDelivered {
		t.Fatalf("got %s, want delivered", ev.Status)
	}
	waitMetric(t, c, base, 1, "ordercast_streams_closed_total", "reason", "terminal")
	waitMetric(t, c, base, 0, "ordercast_streams_open")
}

// TestMetricsPerServer shows that two servers in one process keep separate counts.
func TestMetricsPerServer(t *testing.T) {
	a := newServer(t, nil)
	b := newServer(t, nil)
	mustCreate(t, a.URL(), "only-on-a")
	if got := value(scrape(t, http.DefaultClient, b.URL()), "ordercast_events_committed_total"); got != 0 {
		t.Errorf("server b counted server a's commit: %v", got)
	}
}

// TestMetricsHelpNamesEveryReason: the help of the stream counters by reason names every reason
// the metric exports, so an operator reading it is never missing one.
func TestMetricsHelpNamesEveryReason(t *testing.T) {
	ts := newServer(t, nil)
	mfs := scrape(t, http.DefaultClient, ts.URL())
	for _, name := range []string{"ordercast_streams_closed_total", "ordercast_streams_refused_total"} {
		mf := mfs[name]
		if mf == nil || len(mf.GetMetric()) == 0 {
			t.Fatalf("%s: no series exported from the start", name)
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && !strings.Contains(mf.GetHelp(), l.GetValue()) {
					t.Errorf("%s: help %q does not name reason %s", name, mf.GetHelp(), l.GetValue())
				}
			}
		}
	}
}

// TestPollerFailureIsLoggedAndCounted: the stream engine reports the poller's failure once, and
// the server makes it visible: an error in the log, with why, and a count in the metrics (an
// alert on it finds a node serving every stream on a goroutine).
func TestPollerFailureIsLoggedAndCounted(t *testing.T) {
	var logs testutil.Buffer
	srv := newServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	base, c := srv.URL(), http.DefaultClient
	if got := value(scrape(t, c, base), "ordercast_stream_poller_failures_total"); got != 0 {
		t.Fatalf("poller failures before any: %v, want 0", got)
	}
	server.StreamObserver(srv.Server).HoldingFailed(errors.New("poller: epoll_wait: bad file descriptor"))
	if got := value(scrape(t, c, base), "ordercast_stream_poller_failures_total"); got != 1 {
		t.Errorf("poller failures after one: %v, want 1", got)
	}
	var found bool
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.HasPrefix(fmt.Sprint(rec["msg"]), "stream poller failed") {
			found = true
			if rec["level"] != "ERROR" || rec["err"] != "poller: epoll_wait: bad file descriptor" {
				t.Errorf("the failure logged as %v, want an error with its cause", rec)
			}
		}
	}
	if !found {
		t.Errorf("the poller's failure was not logged:\n%s", logs.String())
	}
}

// TestMetricsOnTheirOwnListener: with MetricsAddr, /metrics is served there only, counting the
// main listener's requests, and the main listener answers /metrics as any path it does not
// serve; the health endpoints stay on the main listener. The metrics listener closes with the
// server.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	t.Parallel()
	ts := newServer(t, func(s *server.Server) { s.MetricsAddr = "127.0.0.1:0" })
	base := ts.URL()
	metricsBase, ok := strings.CutSuffix(ts.MetricsURL(), "/metrics")
	if !ok || metricsBase == base {
		t.Fatalf("MetricsURL %s: want /metrics on a listener other than %s", ts.MetricsURL(), base)
	}

	unknownStatus, unknownBody := do(t, "GET", base+"/no-such-page", "", "")
	status, body := do(t, "GET", base+"/metrics", "", "")
	if status != unknownStatus || string(body) != string(unknownBody) {
		t.Errorf("GET /metrics on the main listener: %d %.60q…, want what an unknown path gets: %d %q", status, body, unknownStatus, unknownBody)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := do(t, "GET", base+path, "", ""); status != http.StatusOK {
			t.Errorf("GET %s on the main listener: %d %s, want 200", path, status, body)
		}
		if status, _ := do(t, "GET", metricsBase+path, "", ""); status != http.StatusNotFound {
			t.Errorf("GET %s on the metrics listener: %d, want 404", path, status)
		}
	}
	mustCreate(t, base, "m-1")
	if got := value(scrape(t, http.DefaultClient, metricsBase), "ordercast_events_committed_total"); got != 1 {
		t.Errorf("ordercast_events_committed_total = %v on the metrics listener, want 1", got)
	}
	waitMetric(t, http.DefaultClient, metricsBase, 1, "ordercast_http_requests_total", "route", "GET /healthz", "code", "200")

	ts.close(t)
	if resp, err := http.Get(ts.MetricsURL()); err == nil {
		resp.Body.Close()
		t.Errorf("GET %s after Close: %s, want the connection refused", ts.MetricsURL(), resp.Status)
	}
}

// TestRequestDurationsLeaveOutLongPolls: a long poll is held for its client's wait, which says
// nothing of the server's speed; a plain read of the same route is timed.
func TestRequestDurationsLeaveOutLongPolls(t *testing.T) {
	srv := newServer(t, nil)
	base, c := srv.URL(), http.DefaultClient
	mustCreate(t, base, "d-1")
	mustLongPoll(t, base, "d-1", "wait=30s&after_version=0") // past version 0: answered at once, still a long poll
	if code, body := do(t, "GET", base+"/v1/orders/d-1", "", ""); code != http.StatusOK {
		t.Fatalf("GET: %d %s", code, body)
	}
	waitMetric(t, c, base, 2, "ordercast_http_requests_total", "route", "GET /v1/orders/{id}", "code", "200")
	if got := value(scrape(t, c, base), "ordercast_http_request_duration_seconds", "route", "GET /v1/orders/{id}"); got != 1 {
		t.Fatalf("request durations of GET /v1/orders/{id}: %v samples, want 1 (the plain read, not the long poll)", got)
	}
}

// stampedAhead is a store that stamps its events an hour ahead of this process's clock, as a
// PostgreSQL whose clock is off from the node's does, and says so (ordercast.StampClock).
type stampedAhead struct{ *sqlite.Store }

func (s stampedAhead) StampNow() time.Time { return time.Now().Add(time.Hour) }

// TestDeliveryLatencyIsOnTheStoresClock: the delivery latency runs from an event's commit, which
// the store stamps on its own clock, to its flush, which the node reads: on the store's clock,
// as the store reckons it. On the node's, a database an hour ahead made every delivery take an
// hour less, below zero, and an alert on its p99 never fired.
func TestDeliveryLatencyIsOnTheStoresClock(t *testing.T) {
	srv := newServer(t, func(s *server.Server) {
		st := s.Store.(*sqlite.Store)
		st.Now = func() time.Time { return time.Now().Add(time.Hour) }
		s.Store = stampedAhead{st}
	})
	base, c := srv.URL(), http.DefaultClient
	mustCreate(t, base, "m-1")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, st := openStream(t, ctx, c, base, "m-1", "")
	next(t, st)
	mustSetStatus(t, base, "m-1", ordercast.StatusConfirmed)
	next(t, st)
	waitMetric(t, c, base, 1, "ordercast_delivery_latency_seconds")
	h := scrape(t, c, base)["ordercast_delivery_latency_seconds"].GetMetric()[0].GetHistogram()
	if sum := h.GetSampleSum(); sum < 0 || sum > 60 {
		t.Errorf("a delivery's latency, with the store's clock an hour ahead: %.3f s, want the moment it took", sum)
	}
}
