package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ordercast/ordercast/internal/logpurge"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// endedIndex finds orders by when they ended: an entry for each terminal event, none for the
// others. It is built by the first purge, not by a migration, so that a node that keeps every
// order (no --retention, the default) pays nothing for it on its writes; once built, a write
// that ends an order adds one entry at the index's end.
const endedIndex = `CREATE INDEX IF NOT EXISTS order_events_ended ON order_events (at)
	WHERE status IN ('delivered', 'cancelled')`

// purgeScanPage is how many entries of a party's log a purge reads at a time.
const purgeScanPage = 1000

// PurgeEnded deletes up to limit orders that ended before endedBefore (see ordercast.Purger).
// It runs on the writer's connection between two batches, as a checkpoint does: a batch
// waits for it, and it never waits for SQLite's write lock.
func (s *Store) PurgeEnded(ctx context.Context, endedBefore time.Time, limit int) (int, error) {
	n, err := s.purgeEnded(ctx, endedBefore, limit)
	return n, s.health(err, storehealth.CommitProof(n > 0))
}

func (s *Store) purgeEnded(ctx context.Context, endedBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	if err := s.buildEndedIndex(ctx); err != nil {
		return 0, err
	}
	return s.writeAside(ctx, "sqlite: purge", func(ctx context.Context) (int, error) {
		return s.purgeInTx(ctx, endedBefore, limit)
	})
}

// buildEndedIndex builds the index of ended orders on the writer's connection, once.
func (s *Store) buildEndedIndex(ctx context.Context) error {
	s.writing.Lock()
	defer s.writing.Unlock()
	if s.endedIndexed {
		return nil
	}
	if s.conn == nil {
		if err := s.openWriterConn(ctx); err != nil {
			return err
		}
	}
	if _, err := s.conn.ExecContext(ctx, endedIndex); err != nil {
		return fmt.Errorf("sqlite: purge: build the index of ended orders: %w", err)
	}
	s.endedIndexed = true
	return nil
}

// writeAside runs write, which deletes what the store no longer keeps (a purge, a sweep of
// expired idempotency records), in a transaction of its own on the writer's connection between
// two batches, as a checkpoint does: a batch waits for it, and it never waits for SQLite's write
// lock. It commits when write deleted something (n > 0), and then keeps the WAL within its bound
// (boundWAL), as the writer does after a batch: nothing else would on a node that only purges, and
// a purge of 489,000 orders grew the WAL to 2.2 GB. what names the errors.
func (s *Store) writeAside(ctx context.Context, what string, write func(ctx context.Context) (int, error)) (int, error) {
	n, err := s.writeAsideTx(ctx, what, write)
	if err != nil || n == 0 {
		return 0, err
	}
	// Its pages are in the WAL like a batch's: the checkpointer copies them back, and past the
	// bound this goroutine restarts the WAL before the next batch or purge.
	s.kickCheckpointer()
	s.boundWAL()
	return n, nil
}

func (s *Store) writeAsideTx(ctx context.Context, what string, write func(ctx context.Context) (int, error)) (n int, err error) {
	s.writing.Lock()
	defer s.writing.Unlock()
	if s.conn == nil {
		if err := s.openWriterConn(ctx); err != nil {
			return 0, err
		}
	}
	st := s.stmts
	if _, err := st.begin.ExecContext(ctx); err != nil {
		return 0, fmt.Errorf("%s: begin: %w", what, err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		err = errors.Join(err, s.rollback(context.Background(), what+": rollback"))
	}()
	n, err = write(ctx)
	if err != nil || n == 0 {
		return 0, err
	}
	if err := s.checkFiles(); err != nil {
		return 0, err
	}
	// Not ctx: a shutdown that comes now lets the COMMIT finish rather than interrupt it.
	if _, err := st.commit.ExecContext(context.Background()); err != nil {
		// Whether it committed is not known: the writer reads every order again.
		s.recent.Forget()
		return 0, fmt.Errorf("%s: commit: %w", what, err)
	}
	committed = true
	return n, nil
}

// purgeInTx deletes the orders, their events and their entries in the party logs, inside the
// transaction purgeEnded began on the writer's connection.
func (s *Store) purgeInTx(ctx context.Context, endedBefore time.Time, limit int) (int, error) {
	c := s.conn
	rows, err := c.QueryContext(ctx, `
		SELECT e.order_id, e.seq, o.restaurant_id, o.customer_id
		FROM order_events e INDEXED BY order_events_ended JOIN orders o ON o.id = e.order_id
		WHERE e.status IN ('delivered', 'cancelled') AND e.at < ?
		ORDER BY e.at LIMIT ?`, endedBefore.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge: find ended orders: %w", err)
	}
	var (
		orders []logpurge.Order
		ids    []string
		index  = map[string]int{}
	)
	for rows.Next() {
		var o logpurge.Order
		if err := rows.Scan(&o.ID, &o.EndSeq, &o.RestaurantID, &o.CustomerID); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: purge: find ended orders: %w", err)
		}
		index[o.ID] = len(orders)
		orders, ids = append(orders, o), append(ids, o.ID)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("sqlite: purge: find ended orders: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge: %w", err)
	}
	rows, err = c.QueryContext(ctx, `
		SELECT order_id, seq, courier_id FROM order_events
		WHERE order_id IN (SELECT value FROM json_each(?)) AND kind = 'courier'
		ORDER BY order_id, seq`, string(list))
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge: the orders' couriers: %w", err)
	}
	for rows.Next() {
		var (
			id string
			cs logpurge.CourierSeq
		)
		if err := rows.Scan(&id, &cs.Seq, &cs.CourierID); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: purge: the orders' couriers: %w", err)
		}
		o := &orders[index[id]]
		o.Couriers = append(o.Couriers, cs)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("sqlite: purge: the orders' couriers: %w", err)
	}
	for _, q := range []string{
		`DELETE FROM order_events WHERE order_id IN (SELECT value FROM json_each(?))`,
		`DELETE FROM orders WHERE id IN (SELECT value FROM json_each(?))`,
	} {
		if _, err := c.ExecContext(ctx, q, string(list)); err != nil {
			return 0, fmt.Errorf("sqlite: purge: %w", err)
		}
	}
	targets := logpurge.Targets(orders)
	for _, party := range slices.Sorted(maps.Keys(targets)) {
		if err := s.purgeLog(ctx, party, targets[party]); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// purgeLog deletes the entries of one party's log whose orders are gone (deleted by this purge,
// or an earlier one), reading from its first entry until it has passed left, the purged orders'
// last entries there (logpurge.Judge), and records the highest position it deleted.
func (s *Store) purgeLog(ctx context.Context, party string, left map[string]int64) error {
	var (
		drop  []int64
		after int64
	)
	for done := false; !done; {
		rows, err := s.conn.QueryContext(ctx, `
			SELECT l.pos, l.order_id, l.seq, o.id IS NOT NULL
			FROM party_log l LEFT JOIN orders o ON o.id = l.order_id
			WHERE l.party = ? AND l.pos > ? ORDER BY l.pos LIMIT ?`, party, after, purgeScanPage)
		if err != nil {
			return fmt.Errorf("sqlite: purge: log of %s: %w", party, err)
		}
		var read int
		drop, read, done, err = logpurge.JudgePage(rows, left, &after, drop)
		if err = errors.Join(err, rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("sqlite: purge: log of %s: %w", party, err)
		}
		done = done || read < purgeScanPage // the log's end
	}
	if len(drop) == 0 {
		return nil
	}
	list, err := json.Marshal(drop)
	if err != nil {
		return fmt.Errorf("sqlite: purge: %w", err)
	}
	if _, err := s.conn.ExecContext(ctx, `
		DELETE FROM party_log WHERE party = ? AND pos IN (SELECT value FROM json_each(?))`, party, string(list)); err != nil {
		return fmt.Errorf("sqlite: purge: log of %s: %w", party, err)
	}
	if _, err := s.conn.ExecContext(ctx, `
		INSERT INTO party_purged (party, pos) VALUES (?, ?)
		ON CONFLICT (party) DO UPDATE SET pos = max(pos, excluded.pos)`, party, drop[len(drop)-1]); err != nil {
		return fmt.Errorf("sqlite: purge: log of %s: %w", party, err)
	}
	return nil
}
