package server_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/server"
)

// TestHTTPErrorLogLevels: net/http's own lines are warnings, but for failed TLS handshakes, which
// every scanner and every client that gives up mid-handshake makes: those are debug, out of an
// operator's log at the default level.
func TestHTTPErrorLogLevels(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	ts := newServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	el := server.ErrorLog(ts.Server)
	el.Printf("http: TLS handshake error from 198.51.100.7:40000: EOF")
	el.Printf("http: Accept error: too many open files; retrying in 5ms")
	out := logs.String()
	if strings.Contains(out, "TLS handshake error") {
		t.Errorf("a failed TLS handshake was logged at info or above:\n%s", out)
	}
	if !strings.Contains(out, `level=WARN msg="http: Accept error`) {
		t.Errorf("net/http's other lines are not warnings:\n%s", out)
	}
}
