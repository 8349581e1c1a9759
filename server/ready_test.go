package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

// TestReadyz_Checks checks that a failing readiness check makes GET /readyz answer 503, and that
// the node is ready again once the check passes.
func TestReadyz_Checks(t *testing.T) {
	var down atomic.Bool
	srv := newServer(t, func(s *server.Server) {
		s.ReadyChecks = append(s.ReadyChecks, func(context.Context) error {
			if down.Load() {
				return errors.New("reconnecting")
			}
			return nil
		})
	})
	for _, tt := range []struct {
		down bool
		want int
	}{{false, http.StatusOK}, {true, http.StatusServiceUnavailable}, {false, http.StatusOK}} {
		down.Store(tt.down)
		if got := getStatus(t, http.DefaultClient, srv.URL()+"/readyz"); got != tt.want {
			t.Errorf("check failing=%v: GET /readyz = %d, want %d", tt.down, got, tt.want)
		}
	}
}

// TestReadyzLogsAFailureOncePerSpell: a readiness check that fails probe after probe is logged
// when it starts failing, once, and the node's return to ready once; a new failure is logged
// again. Every load balancer probes every node every few seconds: a line a probe would bury the log.
func TestReadyzLogsAFailureOncePerSpell(t *testing.T) {
	var down atomic.Bool
	logs := &testutil.Buffer{}
	srv := newServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		s.ReadyChecks = append(s.ReadyChecks, func(context.Context) error {
			if down.Load() {
				return errors.New("reconnecting")
			}
			return nil
		})
	})
	probe := func(failing bool, times int) {
		down.Store(failing)
		for range times {
			getStatus(t, http.DefaultClient, srv.URL()+"/readyz")
		}
	}
	probe(false, 2)
	probe(true, 5)
	probe(false, 3)
	probe(true, 2)
	text := logs.String()
	if n := strings.Count(text, `msg="readiness check failed`); n != 2 {
		t.Errorf("%d lines for two spells of failing probes, want 2:\n%s", n, text)
	}
	if n := strings.Count(text, `msg="ready again"`); n != 1 {
		t.Errorf("%d lines for one return to ready, want 1:\n%s", n, text)
	}
}
