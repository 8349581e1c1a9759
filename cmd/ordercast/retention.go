package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/internal/retention"
	"github.com/ordercast/ordercast/sqlite"
)

// retentionFlags declares --retention.
func (m *Main) retentionFlags(fs *flag.FlagSet) {
	fs.DurationVar(&m.Retention, "retention", m.Retention, "delete an order with its history and its entries in the party logs this long after it was delivered or cancelled (0: keep every order for ever); at least the longest a tracking token lives (a week, or --tracking-ttl if longer) plus --idempotency-ttl")
}

// validateRetention refuses a --retention shorter than minRetention.
func (m *Main) validateRetention() error {
	if least := m.minRetention(); m.Retention < 0 || (m.Retention > 0 && m.Retention < least) {
		return fmt.Errorf("--retention must be 0 (keep every order) or at least %s (a tracking token's longest life, %s, plus --idempotency-ttl, %s): once an order is deleted its id may be used again, and no token of the old order may still show the new one; got %s",
			least, max(auth.DefaultTrackingMaxLifetime, m.TrackingTTL), m.HTTP.IdempotencyTTL, m.Retention)
	}
	return nil
}

// minRetention is the least --retention. An order's id may be given again once the order is
// deleted, and by then every tracking token minted for it, at its creation or by a replay of
// that creation while its Idempotency-Key is kept, must have expired.
func (m *Main) minRetention() time.Duration {
	return max(auth.DefaultTrackingMaxLifetime, m.TrackingTTL) + m.HTTP.IdempotencyTTL
}

// startRetention runs, each on its own goroutine, the purge of ended orders when --retention is
// set, and on every node the purge of expired idempotency records, and counts what they delete
// on reg. stopRetention ends them.
func (m *Main) startRetention(reg prometheus.Registerer) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	m.retentionStop = func() { cancel(); wg.Wait() }
	base := retention.Config{Keep: m.Retention}
	if _, ok := m.Store.(*sqlite.Store); ok {
		// A purge holds SQLite's one writer while it runs: short transactions, each followed
		// by the writes that waited for it (retention.WriterTxTime).
		base.TxTime, base.Pause = retention.WriterTxTime, retention.WriterPause
	}
	// counted is base for one purge: its log lines' component, and the counter of what it deleted.
	counted := func(component, counter, help string) retention.Config {
		purged := prometheus.NewCounter(prometheus.CounterOpts{Name: counter, Help: help})
		reg.MustRegister(purged)
		cfg := base
		cfg.Logger = m.Logger.With("component", component)
		cfg.Purged = func(n int) { purged.Add(float64(n)) }
		return cfg
	}
	if p, ok := m.Store.(ordercast.KeyPurger); ok {
		cfg := counted("idempotency", "ordercast_purged_idempotency_records_total",
			"Expired idempotency records (recorded answers) this node deleted.")
		wg.Go(func() { retention.RunKeys(ctx, p, cfg) })
	}
	if m.Retention == 0 {
		return
	}
	p, ok := m.Store.(ordercast.Purger)
	if !ok {
		m.Logger.Warn("--retention is set but this store cannot purge; every order is kept")
		return
	}
	cfg := counted("retention", "ordercast_purged_orders_total",
		"Ended orders this node deleted with their histories, --retention after they ended.")
	wg.Go(func() { retention.Run(ctx, p, cfg) })
	m.Logger.Info("ended orders are deleted after their retention", "retention", m.Retention)
}

// stopRetention stops the purges, and waits for a transaction in progress to end.
func (m *Main) stopRetention() {
	if m.retentionStop != nil {
		m.retentionStop()
		m.retentionStop = nil
	}
}
