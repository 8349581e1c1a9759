package server_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

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
