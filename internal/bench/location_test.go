package bench_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/bench"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// TestLocationWorkload runs the location workload small against a real server: every post is
// accepted, every watcher gets positions, and the report says so.
func TestLocationWorkload(t *testing.T) {
	base := newServerWith(t, func(srv *server.Server, st *sqlite.Store) {
		tr := location.New(srv.Hub, location.StoreAssignments{Store: st})
		if err := tr.Open(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		srv.Locations = tr
	})
	rep, err := bench.RunLocation(context.Background(), bench.LocationConfig{
		URL: base, Couriers: 20, Every: 200 * time.Millisecond, Watchers: 40,
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
