package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/sqlite"
)

// TestRetentionPurges: with --retention the node deletes what ended longer ago than it, at once
// and then every round, counts it on /metrics, and leaves an order that ended since.
func TestRetentionPurges(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseFlags([]string{"--db", filepath.Join(t.TempDir(), "o.db"), "--retention", "200h"}); err != nil {
		t.Fatal(err)
	}
	m.Hub = hub.New()
	if err := m.openStore(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.stopRetention(); _ = m.closeStore() })
	st := m.Store.(*sqlite.Store)
	ctx := t.Context()
	end := func(id string, ago time.Duration) {
		st.Now = func() time.Time { return time.Now().Add(-ago) }
		if _, _, err := st.CreateOrder(ctx, ordercast.NewOrder{ID: id}); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := st.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: ordercast.StatusCancelled}); err != nil {
			t.Fatal(err)
		}
	}
	end("long-ago", 201*time.Hour)
	end("lately", 199*time.Hour)
	reg := prometheus.NewRegistry()
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	m.startRetention(reg)
	// The count comes after the purge's commit, which a read sees first: wait for the count.
	var name string
	var count float64
	testutil.WaitFor(t, "a purge counted on /metrics", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) != 1 {
			t.Fatalf("metrics %v; want one, ordercast_purged_orders_total", mfs)
		}
		name, count = mfs[0].GetName(), mfs[0].GetMetric()[0].GetCounter().GetValue()
		return count > 0
	})
	if name != "ordercast_purged_orders_total" || count != 1 {
		t.Errorf("%s %v; want ordercast_purged_orders_total 1", name, count)
	}
	if _, err := st.Order(ctx, "long-ago"); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Errorf("the order that ended 201 h ago: %v; want it purged", err)
	}
	if _, err := st.Order(ctx, "lately"); err != nil {
		t.Errorf("the order that ended 199 h ago: %v; want it kept", err)
	}
}
