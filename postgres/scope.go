package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
)

// ScopeSnapshot returns the party's active orders and its log position, read in one REPEATABLE
// READ transaction: one snapshot, so every event at or below Pos is in the orders and no event
// after it is. Positions are commit-ordered per party, so a snapshot sees a prefix of the log.
func (s *Store) ScopeSnapshot(ctx context.Context, p ordercast.Party, limit int) (snap ordercast.ScopeSnapshot, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		snap, err = s.scopeSnapshot(ctx, p, limit)
		return err
	})
	return snap, err
}

func (s *Store) scopeSnapshot(ctx context.Context, p ordercast.Party, limit int) (ordercast.ScopeSnapshot, error) {
	col := p.Kind.Field()
	if col == "" {
		return ordercast.ScopeSnapshot{}, ordercast.Errorf(ordercast.EInvalid, "unknown party kind %q", p.Kind)
	}
	var lim *int
	if limit > 0 {
		lim = &limit // NULL is no limit
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return ordercast.ScopeSnapshot{}, fmt.Errorf("postgres: scope %s: begin: %w", p.Key(), err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // read only: nothing to commit

	var snap ordercast.ScopeSnapshot
	err = tx.QueryRow(ctx, `SELECT pos FROM party_heads WHERE party = $1`, p.Key()).Scan(&snap.Pos)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return ordercast.ScopeSnapshot{}, fmt.Errorf("postgres: scope %s: position: %w", p.Key(), err)
	}
	// The WHERE clause matches the party's partial index, which finds its active orders; they are
	// sorted here (see activeOrders).
	rows, err := tx.Query(ctx, `
		SELECT `+readColumns+` FROM orders
		WHERE active AND `+col+` <> '' AND `+col+` = $1
		ORDER BY updated_at DESC, id COLLATE "C" LIMIT $2`, p.ID, lim)
	if err != nil {
		return ordercast.ScopeSnapshot{}, fmt.Errorf("postgres: scope %s: orders: %w", p.Key(), err)
	}
	if snap.Orders, err = collectOrders(rows); err != nil {
		return ordercast.ScopeSnapshot{}, fmt.Errorf("postgres: scope %s: orders: %w", p.Key(), err)
	}
	return snap, nil
}

// CouriersOrders returns the active orders assigned to each of the couriers, in one query.
func (s *Store) CouriersOrders(ctx context.Context, courierIDs []string) (orders map[string][]ordercast.Order, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		orders, err = s.couriersOrders(ctx, courierIDs)
		return err
	})
	return orders, err
}

func (s *Store) couriersOrders(ctx context.Context, courierIDs []string) (map[string][]ordercast.Order, error) {
	// The WHERE clause matches the couriers' partial index.
	rows, err := s.pool.Query(ctx, `
		SELECT `+readColumns+` FROM orders
		WHERE active AND courier_id <> '' AND courier_id = ANY($1)
		ORDER BY courier_id, updated_at DESC, id COLLATE "C"`, courierIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: couriers' orders: %w", err)
	}
	orders, err := collectOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: couriers' orders: %w", err)
	}
	out := make(map[string][]ordercast.Order)
	for _, o := range orders {
		out[o.CourierID] = append(out[o.CourierID], o)
	}
	return out, nil
}

// ScopeEventsAfter returns up to limit events of the party's log after position after.
func (s *Store) ScopeEventsAfter(ctx context.Context, p ordercast.Party, after int64, limit int) (evs []ordercast.ScopedEvent, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		evs, err = s.scopeEventsAfter(ctx, p, after, limit)
		return err
	})
	return evs, err
}

func (s *Store) scopeEventsAfter(ctx context.Context, p ordercast.Party, after int64, limit int) ([]ordercast.ScopedEvent, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `
		SELECT l.pos, e.order_id, e.seq, e.status, e.at, e.note, e.actor, e.kind, e.courier_id, e.courier_name
		FROM party_log l JOIN order_events e ON e.order_id = l.order_id AND e.seq = l.seq
		WHERE l.party = $1 AND l.pos > $2 ORDER BY l.pos LIMIT $3`, p.Key(), after, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: log of %s: %w", p.Key(), err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ordercast.ScopedEvent, error) {
		var pos int64
		ev, err := scanEvent(prefixed{r, &pos})
		ev.Marks = ordercast.Marks("").With(p.Key(), pos)
		return ordercast.ScopedEvent{Event: ev, Pos: pos}, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: log of %s: %w", p.Key(), err)
	}
	if out == nil {
		out = []ordercast.ScopedEvent{}
	}
	// After the entries, not before: a purge that commits between the two reads is seen here
	// (and the stream opens with a snapshot it might not have needed), while one seen as not yet
	// run before the entries were read could have deleted some of them in between.
	var purged int64
	err = s.pool.QueryRow(ctx, `SELECT pos FROM party_purged WHERE party = $1`, p.Key()).Scan(&purged)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("postgres: log of %s: how far it was purged: %w", p.Key(), err)
	case after < purged:
		return nil, fmt.Errorf("postgres: log of %s after %d: %w", p.Key(), after, ordercast.ErrLogPurged)
	}
	return out, nil
}

// ScopeLogBounds returns where the party's log stands: its head and how far it was purged.
func (s *Store) ScopeLogBounds(ctx context.Context, p ordercast.Party) (b ordercast.LogBounds, err error) {
	err = s.read(ctx, func(ctx context.Context) error {
		// Each by its table's key.
		if err := s.pool.QueryRow(ctx, `SELECT
			coalesce((SELECT pos FROM party_heads WHERE party = $1), 0),
			coalesce((SELECT pos FROM party_purged WHERE party = $1), 0)`, p.Key()).Scan(&b.Head, &b.Purged); err != nil {
			return fmt.Errorf("postgres: where the log of %s stands: %w", p.Key(), err)
		}
		return nil
	})
	return b, err
}

// prefixed scans one extra leading column into first, then the rest as the caller expects.
type prefixed struct {
	row   pgx.Row
	first any
}

func (p prefixed) Scan(dest ...any) error { return p.row.Scan(append([]any{p.first}, dest...)...) }
