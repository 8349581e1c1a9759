package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/server"
)

// TestHeadOnStreamRoutes: HEAD gets a stream's headers and no body, and holds nothing open.
func TestHeadOnStreamRoutes(t *testing.T) {
	ts := newServer(t, nil)
	mustCreate(t, ts.URL(), "h-1")
	c := http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/v1/orders/h-1/stream", "/v1/stream", "/v1/orders/h-1?wait=30s",
		"/v1/restaurants/r-1/stream", "/v1/couriers/c-1/stream", "/v1/customers/u-1/stream"} {
		req, _ := http.NewRequest("HEAD", ts.URL()+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("HEAD %s: %v", path, err)
		}
		resp.Body.Close()
		// The long poll's HEAD may state the length a GET would have; none sends a body, and the
		// client's 5 s timeout proves none was held for its 30 s wait.
		if resp.StatusCode != http.StatusOK || (resp.ContentLength > 0 && strings.Contains(path, "stream")) || resp.TransferEncoding != nil {
			t.Errorf("HEAD %s: %d, length %d, encoding %v; want 200 with headers only", path, resp.StatusCode, resp.ContentLength, resp.TransferEncoding)
		}
	}
	if n := ts.hub.Watchers(); n != 0 {
		t.Errorf("%d watchers after HEAD requests, want 0", n)
	}
}

// TestHeadAnswersAsGetWould: HEAD on a stream route goes through the GET's own checks and
// set-up, so it gets the status a GET would get where that is not 200: an unknown order, a
// resume at a terminal order's last event, a malformed Last-Event-ID, a WebSocket route asked
// without an upgrade (which a HEAD never is). It still opens no stream.
func TestHeadAnswersAsGetWould(t *testing.T) {
	ts := newServer(t, nil)
	base := ts.URL()
	mustCreate(t, base, "h-1")
	mustCreate(t, base, "h-done")
	mustSetStatus(t, base, "h-done", ordercast.StatusDelivered)
	for _, tt := range []struct {
		path, lastEventID string
		want              int
	}{
		{"/v1/orders/h-404/stream", "", http.StatusNotFound},
		{"/v1/orders/h-done/stream", "2", http.StatusNoContent},
		{"/v1/orders/h-1/stream", "x", http.StatusBadRequest},
		{"/v1/restaurants/r-1/stream", "-1", http.StatusBadRequest},
		{"/v1/orders/h-1/ws", "", http.StatusUpgradeRequired},
		{"/v1/orders/h-done/stream", "1", http.StatusOK},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			if method == "GET" && tt.want == http.StatusOK {
				continue // a stream that opens: HEAD only
			}
			resp, _ := call(t, method, base+tt.path, "", "", "Last-Event-ID", tt.lastEventID)
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s (Last-Event-ID %q): %d, want %d", method, tt.path, tt.lastEventID, resp.StatusCode, tt.want)
			}
		}
	}
	if n := ts.hub.Watchers(); n != 0 {
		t.Errorf("%d watchers after HEAD requests, want 0", n)
	}
}

// TestLowFindings: ids . and .. refused, no static listing, nosniff on JSON, a large numeric wait
// capped, and a tracking token on /v1/stream gets 403 saying why.
func TestLowFindings(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	for _, id := range []string{".", ".."} {
		resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"`+id+`"}`)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "invalid_order_id") {
			t.Errorf("create %q: %d %s, want 422 invalid_order_id", id, resp.StatusCode, body)
		}
	}
	if resp, body := call(t, "GET", base+"/static/", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /static/: %d %.80s, want 404 (no listing)", resp.StatusCode, body)
	}
	resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"low-1"}`)
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("JSON answer without nosniff: %v", resp.Header)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS over cleartext")
	}
	var created struct {
		TrackingToken string `json:"tracking_token"`
	}
	if err := jsonUnmarshal(body, &created); err != nil || created.TrackingToken == "" {
		t.Fatalf("create: %s %v", body, err)
	}
	// low-1 is at version 1 and placed: a wait past version 1 waits, so a huge wait is capped, not
	// refused; after_version=0 answers at once.
	if resp, body := call(t, "GET", base+"/v1/orders/low-1?wait=4294967296&after_version=0", admin, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("wait of 2^32 s: %d %s, want 200 (capped)", resp.StatusCode, body)
	}
	if resp, body := call(t, "GET", base+"/v1/orders/low-1?wait=99999999999999999999999&after_version=0", admin, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("wait of 10^23 s: %d %s, want 200 (capped)", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", base+"/v1/stream", created.TrackingToken, "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "tracking token") {
		t.Errorf("tracking token on /v1/stream: %d %s, want 403 saying a tracking token watches one order", resp.StatusCode, body)
	}
}

// TestTrackingCookieSecureBehindProxy: behind a trusted proxy that terminated TLS
// (X-Forwarded-Proto: https) the tracking cookie keeps Secure; from an untrusted peer the header
// is ignored.
func TestTrackingCookieSecureBehindProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies bool
		secure  bool
	}{{"trusted proxy", true, true}, {"untrusted peer", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newAuthServer(t, func(s *server.Server) {
				if tc.proxies {
					s.Limits.TrustedProxies = loopbackProxy
				}
			})
			tok, _, err := authority(t).SignTracking("c-1", time.Time{}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", ts.URL()+"/track/c-1?token="+tok, nil)
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cookies := resp.Cookies()
			if len(cookies) != 1 || cookies[0].Secure != tc.secure {
				t.Fatalf("cookies %v, want one with Secure=%v", cookies, tc.secure)
			}
		})
	}
}

// TestHSTSUnderTLS: answers over TLS carry Strict-Transport-Security.
func TestHSTSUnderTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	srv := newServer(t, func(s *server.Server) { s.TLSCertFile, s.TLSKeyFile = certFile, keyFile })
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL()+"/healthz", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("HSTS = %q under TLS", resp.Header.Get("Strict-Transport-Security"))
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
