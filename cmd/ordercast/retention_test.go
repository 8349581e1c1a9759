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
	var count float64
	testutil.WaitFor(t, "a purge counted on /metrics", func() bool {
		count = counted(t, reg, "ordercast_purged_orders_total")
		return count > 0
	})
	if count != 1 {
		t.Errorf("ordercast_purged_orders_total %v; want 1", count)
	}
	if _, err := st.Order(ctx, "long-ago"); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Errorf("the order that ended 201 h ago: %v; want it purged", err)
	}
	if _, err := st.Order(ctx, "lately"); err != nil {
		t.Errorf("the order that ended 199 h ago: %v; want it kept", err)
	}
}

// counted is the value of the counter name on reg, 0 when it has none yet.
func counted(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestExpiredKeysArePurgedWithoutRetention: a node without --retention (the default) deletes the
// idempotency records that expired, with no keyed write to do it, and counts them on /metrics:
// the record holds an order's answer, which the API keeps for --idempotency-ttl. They went only
// with later keyed writes, so an integration that stopped sending keys left its last day of
// answers for ever.
func TestExpiredKeysArePurgedWithoutRetention(t *testing.T) {
	t.Setenv("ORDERCAST_SECRET", testSecret)
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseFlags([]string{"--db", filepath.Join(t.TempDir(), "o.db")}); err != nil {
		t.Fatal(err)
	}
	m.Hub = hub.New()
	if err := m.openStore(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.stopRetention(); _ = m.closeStore() })
	st := m.Store.(*sqlite.Store)
	ctx := t.Context()
	expired := time.Now().Add(-time.Minute)
	idem := &ordercast.Idempotency{Scope: "s", Key: "k", Fingerprint: "f", Expires: expired,
		Render: func(ordercast.Result) (ordercast.Answer, error) {
			return ordercast.Answer{Status: 201, Body: []byte(`{"details":{"name":"Erin"}}`)}, nil
		}}
	if _, _, err := st.CreateOrder(ctx, ordercast.NewOrder{ID: "o-1", Idem: idem}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IdempotentAnswer(ctx, "s", "k", expired.Add(-time.Hour)); err != nil {
		t.Fatalf("the record before the node's purge: %v", err)
	}
	reg := prometheus.NewRegistry()
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	m.startRetention(reg)
	testutil.WaitFor(t, "an expired record purged and counted on /metrics", func() bool {
		return counted(t, reg, "ordercast_purged_idempotency_records_total") > 0
	})
	if _, err := st.IdempotentAnswer(ctx, "s", "k", expired.Add(-time.Hour)); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Errorf("the expired record after the node's purge: %v; want it gone", err)
	}
	if _, err := st.Order(ctx, "o-1"); err != nil {
		t.Errorf("the order, which no --retention deletes: %v", err)
	}
}
