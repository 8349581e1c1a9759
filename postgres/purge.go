package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast/internal/logpurge"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// purgeLockKey is the pg_advisory_xact_lock key a purge holds, so that one node of a cluster
// purges at a time, and the key held while one builds the index of ended orders.
const purgeLockKey int64 = 0x6f72646572707267 // "orderprg"

// purgeScanPage is how many entries of a party's log a purge reads at a time.
const purgeScanPage = 1000

// endedIndexName finds orders by when they ended: an entry for each terminal event, none for
// the others. The first purge builds it, CONCURRENTLY (writes go on while it is built), not a
// migration: a cluster that keeps every order (no --retention, the default) pays nothing for it
// on its writes; once built, a write that ends an order adds one entry.
const endedIndexName = "order_events_ended"

// PurgeEnded deletes up to limit orders that ended before endedBefore (see ordercast.Purger),
// or none while another node purges. It never waits for a row a batch holds: the orders it
// takes are locked SKIP LOCKED (one a batch holds, refusing a change to it, is left to the next
// purge), and the rest it deletes (ended orders' events, old entries of the party logs,
// party_purged) no batch writes.
func (s *Store) PurgeEnded(ctx context.Context, endedBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	if err := s.ensureEndedIndex(ctx); errors.Is(err, errPurgeBusy) {
		return 0, nil // another node builds the index: this node's next round
	} else if err != nil {
		return 0, s.health(err, storehealth.ProvesNothing)
	}
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		n, err = purgeInTx(ctx, tx, endedBefore, limit)
		return err
	})
	if err != nil {
		return 0, s.health(fmt.Errorf("postgres: purge: %w", err), storehealth.ProvesNothing)
	}
	return n, s.health(nil, storehealth.ProvesNothing) // as PurgeExpiredKeys: only a batch and a ping end an outage
}

// errPurgeBusy is a purge or an index build another node is running: this node skips its turn.
var errPurgeBusy = errors.New("postgres: purge: another node is purging")

// ensureEndedIndex builds the index of ended orders unless it is there and valid. A CREATE INDEX
// CONCURRENTLY that failed half way leaves an invalid index behind, which is dropped and built
// again. One node builds it, under an advisory lock held on the connection for the build, which
// the others only try to take (errPurgeBusy): a node waiting for the lock would hold a snapshot,
// and the build's last phase waits for every older snapshot, so the two would deadlock and
// PostgreSQL would abort one, over and over when a build takes longer than a round.
func (s *Store) ensureEndedIndex(ctx context.Context) error {
	if s.endedIndexed.Load() {
		return nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: purge: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, purgeLockKey).Scan(&locked); err != nil {
		return fmt.Errorf("postgres: purge: lock the index build: %w", err)
	}
	if !locked {
		return errPurgeBusy
	}
	defer func() {
		// A session lock outlives a failed statement; an unlock that fails leaves it to the
		// connection, which is closed so that nothing else runs under it.
		if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, purgeLockKey); err != nil {
			_ = conn.Conn().Close(context.Background()) // the unlock's failure is what matters, reported by the next purge
		}
	}()
	var valid *bool
	err = conn.QueryRow(ctx, `
		SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace`, endedIndexName).Scan(&valid)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: purge: look for the index of ended orders: %w", err)
	}
	if valid != nil && !*valid {
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+endedIndexName); err != nil {
			return fmt.Errorf("postgres: purge: drop an invalid index of ended orders: %w", err)
		}
	}
	if valid == nil || !*valid {
		if _, err := conn.Exec(ctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS `+endedIndexName+`
			ON order_events (at) WHERE status IN ('delivered', 'cancelled')`); err != nil {
			return fmt.Errorf("postgres: purge: build the index of ended orders: %w", err)
		}
	}
	s.endedIndexed.Store(true)
	return nil
}

// purgeInTx deletes the orders, their events and their entries in the party logs, in tx. It only
// tries the advisory lock, for the reason ensureEndedIndex does: a node that finds another
// purging deletes nothing this time.
func purgeInTx(ctx context.Context, tx pgx.Tx, endedBefore time.Time, limit int) (int, error) {
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, purgeLockKey).Scan(&locked); err != nil {
		return 0, fmt.Errorf("lock: %w", err)
	}
	if !locked {
		return 0, nil
	}
	rows, err := tx.Query(ctx, `
		WITH ended AS (
			SELECT order_id, seq, at FROM order_events
			WHERE status IN ('delivered', 'cancelled') AND at < $1 ORDER BY at LIMIT $2)
		SELECT o.id, e.seq, o.restaurant_id, o.customer_id
		FROM ended e JOIN orders o ON o.id = e.order_id
		ORDER BY e.at FOR UPDATE OF o SKIP LOCKED`, endedBefore, limit)
	if err != nil {
		return 0, fmt.Errorf("find ended orders: %w", err)
	}
	orders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (o logpurge.Order, err error) {
		err = r.Scan(&o.ID, &o.EndSeq, &o.RestaurantID, &o.CustomerID)
		return o, err
	})
	if err != nil {
		return 0, fmt.Errorf("find ended orders: %w", err)
	}
	if len(orders) == 0 {
		return 0, nil
	}
	ids := make([]string, len(orders))
	index := make(map[string]int, len(orders))
	for i, o := range orders {
		ids[i], index[o.ID] = o.ID, i
	}
	rows, err = tx.Query(ctx, `
		SELECT order_id, seq, courier_id FROM order_events
		WHERE order_id = ANY ($1) AND kind = 'courier' ORDER BY order_id, seq`, ids)
	if err != nil {
		return 0, fmt.Errorf("the orders' couriers: %w", err)
	}
	var (
		id string
		cs logpurge.CourierSeq
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &cs.Seq, &cs.CourierID}, func() error {
		o := &orders[index[id]]
		o.Couriers = append(o.Couriers, cs)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("the orders' couriers: %w", err)
	}
	for _, q := range []string{
		`DELETE FROM order_events WHERE order_id = ANY ($1)`,
		`DELETE FROM orders WHERE id = ANY ($1)`,
	} {
		if _, err := tx.Exec(ctx, q, ids); err != nil {
			return 0, err
		}
	}
	targets := logpurge.Targets(orders)
	for _, party := range slices.Sorted(maps.Keys(targets)) {
		if err := purgeLog(ctx, tx, party, targets[party]); err != nil {
			return 0, err
		}
	}
	return len(orders), nil
}

// purgeLog deletes the entries of one party's log whose orders are gone (deleted by this purge,
// or an earlier one), reading from its first entry until it has passed left, the purged orders'
// last entries there (logpurge.Judge), and records the highest position it deleted.
func purgeLog(ctx context.Context, tx pgx.Tx, party string, left map[string]int64) error {
	var (
		drop  []int64
		after int64
	)
	for done := false; !done; {
		rows, err := tx.Query(ctx, `
			SELECT l.pos, l.order_id, l.seq, o.id IS NOT NULL
			FROM party_log l LEFT JOIN orders o ON o.id = l.order_id
			WHERE l.party = $1 AND l.pos > $2 ORDER BY l.pos LIMIT $3`, party, after, purgeScanPage)
		if err != nil {
			return fmt.Errorf("log of %s: %w", party, err)
		}
		var read int
		drop, read, done, err = logpurge.JudgePage(rows, left, &after, drop)
		rows.Close()
		if err = errors.Join(err, rows.Err()); err != nil {
			return fmt.Errorf("log of %s: %w", party, err)
		}
		done = done || read < purgeScanPage // the log's end
	}
	if len(drop) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM party_log WHERE party = $1 AND pos = ANY ($2)`, party, drop); err != nil {
		return fmt.Errorf("log of %s: %w", party, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO party_purged (party, pos) VALUES ($1, $2)
		ON CONFLICT (party) DO UPDATE SET pos = greatest(party_purged.pos, excluded.pos)`, party, drop[len(drop)-1]); err != nil {
		return fmt.Errorf("log of %s: %w", party, err)
	}
	return nil
}
