package bench_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/bench"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// TestLocationWorkload runs the location workload small against a real server: every post is
// accepted, every watcher gets positions, and the report says so.
func TestLocationWorkload(t *testing.T) {
	h := hub.New()
	st := sqlite.New(filepath.Join(t.TempDir(), "bench.db"))
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr := location.New(h, location.StoreAssignments{Store: st})
	if err := tr.Open(); err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, h)
	srv.Addr, srv.Locations = "127.0.0.1:0", tr
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		_ = tr.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	rep, err := bench.RunLocation(context.Background(), bench.LocationConfig{
		URL: srv.URL(), Couriers: 20, Every: 200 * time.Millisecond, Watchers: 40,
		Duration: time.Second, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Posted == 0 || rep.Accepted != rep.Posted {
		t.Errorf("posted %d, accepted %d: want every post accepted", rep.Posted, rep.Accepted)
	}
	if rep.Delivered < int64(rep.Watchers) || rep.P50 <= 0 || rep.Max < rep.P99 {
		t.Errorf("delivered %d to %d watchers, p50 %v, p99 %v, max %v", rep.Delivered, rep.Watchers, rep.P50, rep.P99, rep.Max)
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil || !strings.Contains(out.String(), "post→screen") {
		t.Errorf("table %q, %v", out.String(), err)
	}
}
