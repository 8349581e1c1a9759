package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// TestRequestIDs: a sane incoming X-Request-ID is kept, anything else is replaced by a fresh id,
// and the id is always on the response.
func TestRequestIDs(t *testing.T) {
	srv := newServer(t, nil)
	for _, tc := range []struct {
		name, in string
		keep     bool
	}{
		{"none", "", false},
		{"uuid", "0b6f3c8e-4a1d-4f7e-9d55-2a4c6e1f0b9a", true},
		{"tracing format", "Root=1-67891233-abcdef012345678912345678", true},
		{"spaces", "hello world", false},
		{"too long", strings.Repeat("a", 200), false},
		{"quotes and semicolons", `id";drop`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL()+"/healthz", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.in != "" {
				req.Header.Set("X-Request-ID", tc.in)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Request-ID")
			switch {
			case tc.keep && got != tc.in:
				t.Errorf("X-Request-ID %q, want the incoming %q", got, tc.in)
			case !tc.keep && (got == "" || got == tc.in):
				t.Errorf("X-Request-ID %q, want a fresh id", got)
			}
		})
	}
}

// TestRequestLog: one line per request with its id, route, status, bytes and duration; a stream
// logs its line once, when it ends, with why it ended and how many events it sent.
func TestRequestLog(t *testing.T) {
	var logs testutil.Buffer
	srv := newServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	base, c := srv.URL(), http.DefaultClient

	req, err := http.NewRequest(http.MethodPost, base+"/v1/orders", strings.NewReader(`{"id":"log-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", "create-log-1")
	created, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	created.Body.Close()

	resp, st := openStream(t, context.Background(), c, base, "log-1", "")
	next(t, st)
	streamID := resp.Header.Get("X-Request-ID")
	mustSetStatus(t, base, "log-1", ordercast.StatusCancelled)
	next(t, st)

	// The stream's line is written when it ends, after the create's.
	stream := waitLogLine(t, &logs, streamID)
	create := waitLogLine(t, &logs, "create-log-1")
	for key, want := range map[string]any{"msg": "request", "method": "POST", "route": "POST /v1/orders", "status": 201.0, "client": "127.0.0.1"} {
		if create[key] != want {
			t.Errorf("create log %s = %v, want %v", key, create[key], want)
		}
	}
	if b, _ := create["bytes"].(float64); b <= 0 {
		t.Errorf("create log bytes = %v, want > 0", create["bytes"])
	}
	if _, ok := create["duration"]; !ok {
		t.Error("create log has no duration")
	}
	for key, want := range map[string]any{"route": "GET /v1/orders/{id}/stream", "status": 200.0, "reason": "terminal", "events": 2.0} {
		if stream[key] != want {
			t.Errorf("stream log %s = %v, want %v", key, stream[key], want)
		}
	}
}

// TestRequestLogNamesTheClientBehindATrustedProxy: behind a proxy named in TrustedProxies, a
// request's line names the client the proxy forwarded for, the address its limits count, not the
// proxy; a proxy that is not trusted cannot put a name in the log.
func TestRequestLogNamesTheClientBehindATrustedProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
		want    string
	}{
		{"trusted", loopbackProxy, "203.0.113.7"},
		{"untrusted", nil, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.Buffer
			srv := newServer(t, func(s *server.Server) {
				s.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
				s.Limits.TrustedProxies = tc.proxies
			})
			req, err := http.NewRequest(http.MethodGet, srv.URL()+"/v1/orders/none", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Request-ID", "proxied-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if line := waitLogLine(t, &logs, "proxied-1"); line["client"] != tc.want {
				t.Errorf("client = %v, want %s", line["client"], tc.want)
			}
		})
	}
}

// TestAbandonedRequestIsNotAnError: a request whose client left while the store was reading
// for it is logged at debug, not as a failed request at error level (nothing is broken), and its
// request line and metrics say 499, not 500.
func TestAbandonedRequestIsNotAnError(t *testing.T) {
	t.Parallel()
	logs := &testutil.Buffer{}
	ts := newServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	mustCreate(t, ts.URL(), "o-1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client is gone before the handler reads the store
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/orders/o-1/events", nil).WithContext(ctx))
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("an abandoned request was logged as an error:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "request abandoned") {
		t.Errorf("no debug line for the abandoned request:\n%s", logs.String())
	}
	// Nor counted as one: a 500 in the request log and in ordercast_http_requests_total would
	// page whoever alerts on them each time a client gave up on a slow database.
	if rec.Code != 499 {
		t.Errorf("an abandoned request answered %d, want 499 (the client closed it)", rec.Code)
	}
	if !strings.Contains(logs.String(), "status=499") || strings.Contains(logs.String(), "status=500") {
		t.Errorf("the request line of an abandoned request does not say 499:\n%s", logs.String())
	}
}

// TestAcceptedPositionsLogAtDebug: a courier's accepted position, about one a second a courier,
// logs its request line at debug; a refused one at info, as any refusal, and so does every other
// request.
func TestAcceptedPositionsLogAtDebug(t *testing.T) {
	t.Parallel()
	var logs testutil.Buffer
	ls := newLocationServer(t, true, func(s *server.Server, _ *location.Tracker) {
		s.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	base := ls.URL()
	mustPost(t, base, "c-1", 52.5, 13.4)
	if code, body := postLocation(t, base, "c-1", "", `{"lat":100,"lng":13.4}`); code != http.StatusUnprocessableEntity {
		t.Fatalf("a position off the globe: %d %s, want 422", code, body)
	}
	mustCreate(t, base, "o-1")
	levels := requestLevels(logs.String())
	for key, want := range map[string]string{
		"POST /v1/couriers/{cid}/location 200": "DEBUG",
		"POST /v1/couriers/{cid}/location 422": "INFO",
		"POST /v1/orders 201":                  "INFO",
	} {
		if got := levels[key]; got != want {
			t.Errorf("%s logged at %q, want %s (lines: %v)", key, got, want, levels)
		}
	}
}

// TestRequestLogCanBeTurnedDown: with RequestLog refused, only the requests answered 400 or
// above log their line at info, the others at debug; with off, every one at debug. A node that
// logs at info then writes a line a refusal (or none), not one a request, and keeps the info
// lines that say what it did.
func TestRequestLogCanBeTurnedDown(t *testing.T) {
	t.Parallel()
	for setting, want := range map[string]map[string]string{
		server.RequestLogAll:     {"POST /v1/orders 201": "INFO", "GET /v1/orders/{id} 200": "INFO", "GET /v1/orders/{id} 404": "INFO"},
		server.RequestLogRefused: {"POST /v1/orders 201": "DEBUG", "GET /v1/orders/{id} 200": "DEBUG", "GET /v1/orders/{id} 404": "INFO"},
		server.RequestLogOff:     {"POST /v1/orders 201": "DEBUG", "GET /v1/orders/{id} 200": "DEBUG", "GET /v1/orders/{id} 404": "DEBUG"},
	} {
		t.Run(setting, func(t *testing.T) {
			t.Parallel()
			var logs testutil.Buffer
			ts := newServer(t, func(s *server.Server) {
				s.RequestLog = setting
				s.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			base := ts.URL()
			mustCreate(t, base, "o-1")
			if code, _ := do(t, "GET", base+"/v1/orders/o-1", "", ""); code != http.StatusOK {
				t.Fatalf("GET o-1: %d", code)
			}
			if code, _ := do(t, "GET", base+"/v1/orders/o-2", "", ""); code != http.StatusNotFound {
				t.Fatalf("GET o-2: %d", code)
			}
			got := requestLevels(logs.String())
			for key, level := range want {
				if got[key] != level {
					t.Errorf("%s logged at %q, want %s (lines: %v)", key, got[key], level, got)
				}
			}
		})
	}
	c := server.DefaultConfig()
	c.RequestLog = "some"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "request-log") {
		t.Errorf("RequestLog \"some\": %v, want it refused naming --request-log", err)
	}
}

// requestLevels reads a JSON log's request lines into the level each was logged at, by
// "<route> <status>".
func requestLevels(log string) map[string]string {
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var l struct {
			Level, Route string
			Status       int
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Route != "" {
			levels[fmt.Sprintf("%s %d", l.Route, l.Status)] = l.Level
		}
	}
	return levels
}
