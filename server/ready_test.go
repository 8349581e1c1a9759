package server_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// TestReadyz_Checks checks that a failing readiness check makes GET /readyz answer 503, and that
// the node is ready again once the check passes.
func TestReadyz_Checks(t *testing.T) {
	st := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	if err := st.Open(t.Context()); err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })

	var down atomic.Bool
	srv := server.New(st, hub.New())
	srv.Addr = "127.0.0.1:0"
	srv.ReadyChecks = append(srv.ReadyChecks, func(context.Context) error {
		if down.Load() {
			return errors.New("reconnecting")
		}
		return nil
	})
	if err := srv.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })

	for _, tt := range []struct {
		down bool
		want int
	}{{false, http.StatusOK}, {true, http.StatusServiceUnavailable}, {false, http.StatusOK}} {
		down.Store(tt.down)
		resp, err := http.Get(srv.URL() + "/readyz")
		if err != nil {
			t.Fatalf("GET /readyz: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("check failing=%v: GET /readyz = %d, want %d", tt.down, resp.StatusCode, tt.want)
		}
	}
}
