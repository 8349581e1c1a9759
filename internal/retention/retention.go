// Package retention deletes the orders that ended longer ago than a node keeps them (serve
// --retention): their details, drop-off, notes and history are personal data that a delivery
// platform has no reason to keep for ever, and a database that only grows slows its backups
// and its readers. It runs the store's purge (ordercast.Purger) a batch at a time, so that the
// writes of the moment go between two batches.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/clock"
	"github.com/ordercast/ordercast/internal/failurelog"
)

// Defaults of Config.
const (
	DefaultEvery = time.Minute
	DefaultBatch = 200
	DefaultPause = 50 * time.Millisecond
)

// Config is a node's retention. Keep is required; zero values of the rest mean their defaults.
type Config struct {
	// Keep is how long an order is kept after it ended (delivered or cancelled).
	Keep time.Duration
	// Every is the time between two rounds; a round purges until nothing is left to purge.
	Every time.Duration
	// Batch is how many orders one transaction deletes.
	Batch int
	// Pause is the time between two transactions of a round: SQLite's writer, and PostgreSQL's
	// party logs, are free for the writes of the moment meanwhile.
	Pause time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Purged, when set, is told how many orders each transaction deleted (for /metrics).
	Purged func(n int)
	Logger *slog.Logger
}

// Run purges p's ended orders every cfg.Every until ctx ends, first at once. It returns when
// ctx ends; a round that fails is logged (at most once every ten minutes while it lasts) and
// tried again at the next.
func Run(ctx context.Context, p ordercast.Purger, cfg Config) {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Pause <= 0 {
		cfg.Pause = DefaultPause
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fails := failurelog.Failures{Every: 10 * time.Minute, Now: cfg.Now}
	for {
		n, err := round(ctx, p, cfg)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if c, warn := fails.Failed(1); warn {
				cfg.Logger.Warn("purging ended orders failed; trying again at the next round",
					"err", err, "rounds_failed", c.Failures, "purged_before_failing", n)
			}
		default:
			if c, ok := fails.Worked(); ok {
				cfg.Logger.Info("purging ended orders works again", "rounds_failed", c.Failures)
			}
			if n > 0 {
				cfg.Logger.Info("purged ended orders", "orders", n, "ended_before", cfg.Now().Add(-cfg.Keep).UTC())
			}
		}
		if clock.Sleep(ctx, cfg.Every) != nil {
			return
		}
	}
}

// round purges until a transaction finds fewer orders to delete than a batch, and returns how
// many orders it deleted.
func round(ctx context.Context, p ordercast.Purger, cfg Config) (int, error) {
	total := 0
	for {
		n, err := p.PurgeEnded(ctx, cfg.Now().Add(-cfg.Keep), cfg.Batch)
		total += n
		if n > 0 && cfg.Purged != nil {
			cfg.Purged(n)
		}
		if err != nil || n < cfg.Batch {
			return total, err
		}
		if err := clock.Sleep(ctx, cfg.Pause); err != nil {
			return total, err
		}
	}
}
