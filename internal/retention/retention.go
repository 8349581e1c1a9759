// Package retention deletes what a node no longer keeps. Run deletes the orders that ended longer
// ago than a node keeps them (serve --retention): their details, drop-off, notes and history are
// personal data that a delivery platform has no reason to keep for ever, and a database that only
// grows slows its backups and its readers. RunKeys deletes the idempotency records that expired,
// on every node: each holds an answer (an order's details), which the API keeps for
// --idempotency-ttl, not for ever. Both run the store's purge a batch at a time, so that the
// writes of the moment go between two batches.
package retention

import (
	"context"
	"log/slog"
	"math"
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
	// DefaultProgressEvery is how often a round still purging says how far it got: a backlog
	// (--retention turned on over a year of orders) is one round of minutes or hours.
	DefaultProgressEvery = 30 * time.Second
)

// Settings for a store whose purge holds its one writer while it runs (SQLite): each
// transaction is kept near WriterTxTime, so that a write waits for a purge no longer than that,
// and the pause after it gives the writes queued meanwhile the writer. At 200 orders a
// transaction, one held SQLite's writer 190 ms in the DBA review (creates' p99 536 ms).
const (
	WriterTxTime = 5 * time.Millisecond
	WriterPause  = 2 * time.Millisecond
)

// DefaultKeyBatch is the Batch of RunKeys: a record is a row (an answer of a few KB), lighter
// than an order with its history and its entries in the party logs.
const DefaultKeyBatch = 500

// firstBatch is the batch a round with a TxTime starts at, before it knows what one costs.
const firstBatch = 8

// Config is a node's retention. Keep is required by Run; zero values of the rest mean their
// defaults.
type Config struct {
	// Keep is how long an order is kept after it ended (delivered or cancelled); RunKeys
	// ignores it (a record goes once expired).
	Keep time.Duration
	// Every is the time between two rounds; a round purges until nothing is left to purge.
	Every time.Duration
	// Batch is the most one transaction deletes: DefaultBatch orders (Run), DefaultKeyBatch
	// records (RunKeys).
	Batch int
	// Pause is the time between two transactions of a round: SQLite's writer, and PostgreSQL's
	// party logs, are free for the writes of the moment meanwhile.
	Pause time.Duration
	// TxTime, when set, is what one transaction should take: a round starts at a small batch,
	// halves it (or more) after a transaction that took longer, and doubles it, up to Batch,
	// after one that took less than half. Zero deletes Batch at a time.
	TxTime time.Duration
	// ProgressEvery is how often a round that goes on logs how far it got.
	ProgressEvery time.Duration
	// Now is the clock, which also times the transactions; nil means time.Now.
	Now func() time.Time
	// Purged, when set, is told how many each transaction deleted (for /metrics).
	Purged func(n int)
	Logger *slog.Logger
}

// withDefaults is cfg with its zero values replaced by their defaults, batch being Batch's.
func (cfg Config) withDefaults(batch int) Config {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Batch <= 0 {
		cfg.Batch = batch
	}
	if cfg.Pause <= 0 {
		cfg.Pause = DefaultPause
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = DefaultProgressEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// sweep is what a loop deletes and how the log names it.
type sweep struct {
	// purge deletes up to limit of what is past keeping at now.
	purge func(ctx context.Context, now time.Time, limit int) (int, error)
	// what names it in the log lines ("ended orders"), unit counts it ("orders").
	what, unit string
	// attrs are the round's own log attributes, given the time it ended.
	attrs func(now time.Time) []any
}

// Run purges p's ended orders every cfg.Every until ctx ends, first at once. It returns when
// ctx ends; a round that fails is logged (at most once every ten minutes while it lasts) and
// tried again at the next.
func Run(ctx context.Context, p ordercast.Purger, cfg Config) {
	cfg = cfg.withDefaults(DefaultBatch)
	run(ctx, sweep{
		purge: func(ctx context.Context, now time.Time, limit int) (int, error) {
			return p.PurgeEnded(ctx, now.Add(-cfg.Keep), limit)
		},
		what: "ended orders", unit: "orders",
		attrs: func(now time.Time) []any { return []any{"ended_before", now.Add(-cfg.Keep).UTC()} },
	}, cfg)
}

// RunKeys purges p's expired idempotency records every cfg.Every until ctx ends, first at once,
// as Run does orders. A node runs it whatever its --retention: the records are the answers the
// API keeps for --idempotency-ttl, and a batch deletes expired ones only while keyed writes come
// (ordercast.ExpiredKeysToPurge).
func RunKeys(ctx context.Context, p ordercast.KeyPurger, cfg Config) {
	cfg = cfg.withDefaults(DefaultKeyBatch)
	run(ctx, sweep{
		purge: p.PurgeExpiredKeys,
		what:  "expired idempotency records", unit: "records",
		attrs: func(time.Time) []any { return nil },
	}, cfg)
}

func run(ctx context.Context, sw sweep, cfg Config) {
	fails := failurelog.Failures{Every: 10 * time.Minute, Now: cfg.Now}
	for {
		start := cfg.Now()
		n, err := round(ctx, sw, cfg)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if c, warn := fails.Failed(1); warn {
				cfg.Logger.Warn("purging "+sw.what+" failed; trying again at the next round",
					"err", err, "rounds_failed", c.Failures, "purged_before_failing", n)
			}
		default:
			if c, ok := fails.Worked(); ok {
				cfg.Logger.Info("purging "+sw.what+" works again", "rounds_failed", c.Failures)
			}
			if n > 0 {
				now := cfg.Now()
				cfg.Logger.Info("purged "+sw.what, append([]any{sw.unit, n}, append(sw.attrs(now), rate(n, now.Sub(start))...)...)...)
			}
		}
		if clock.Sleep(ctx, cfg.Every) != nil {
			return
		}
	}
}

// round purges until a transaction finds fewer to delete than it was asked, and returns how many
// it deleted. Every cfg.ProgressEvery it logs how far it got.
func round(ctx context.Context, sw sweep, cfg Config) (int, error) {
	batch := cfg.Batch
	if cfg.TxTime > 0 {
		batch = min(batch, firstBatch)
	}
	start := cfg.Now()
	said, total := start, 0
	for {
		began := cfg.Now()
		n, err := sw.purge(ctx, began, batch)
		ended := cfg.Now()
		total += n
		if n > 0 && cfg.Purged != nil {
			cfg.Purged(n)
		}
		if err != nil || n < batch {
			return total, err
		}
		if cfg.TxTime > 0 {
			batch = fit(batch, ended.Sub(began), cfg.TxTime, cfg.Batch)
		}
		if ended.Sub(said) >= cfg.ProgressEvery {
			said = ended
			cfg.Logger.Info("purging "+sw.what, append([]any{sw.unit, total, "batch", batch}, rate(total, ended.Sub(start))...)...)
		}
		if err := clock.Sleep(ctx, cfg.Pause); err != nil {
			return total, err
		}
	}
}

// fit is the batch after a transaction of batch that took took, for transactions of about
// target: in proportion, within half and twice the last (a transaction slowed by a sync that
// took long does not drop it to one), and between 1 and most. A transaction has a cost of its
// own (its commit's sync) besides its orders', so the batch settles where they add up to target.
func fit(batch int, took, target time.Duration, most int) int {
	next := batch * 2
	if took > 0 {
		next = int(min(int64(next), int64(batch)*int64(target)/int64(took)))
	}
	return max(1, batch/2, min(next, most))
}

// rate is the log attributes of n purged in d: how long it took and how many a second.
func rate(n int, d time.Duration) []any {
	attrs := []any{"took", d.Round(time.Millisecond)}
	if d > 0 {
		attrs = append(attrs, "per_second", math.Round(float64(n)/d.Seconds()))
	}
	return attrs
}
