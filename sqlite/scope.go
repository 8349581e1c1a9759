package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// ScopeSnapshot returns the party's active orders and its log position, read in one read
// transaction: WAL gives it one snapshot, so every event at or below Pos is in the orders and
// every event after it is not.
func (s *Store) ScopeSnapshot(ctx context.Context, p ordercast.Party, limit int) (ordercast.ScopeSnapshot, error) {
	snap, err := s.scopeSnapshot(ctx, p, limit)
	return snap, s.health(err, storehealth.ProvesNothing)
}

// partyHeadQuery reads a party's last position in its log.
const partyHeadQuery = `SELECT pos FROM party_heads WHERE party = ?`

// scopeOrdersQuery reads the active orders of a party of kind k. Its WHERE clause matches the
// kind's partial index, which finds its active orders; they are sorted here (see activeOrders).
func scopeOrdersQuery(k ordercast.PartyKind) string {
	col := k.Field()
	return `
		SELECT ` + readColumns + ` FROM orders INDEXED BY orders_` + string(k) + `_active
		WHERE active = 1 AND ` + col + ` <> '' AND ` + col + ` = ?
		ORDER BY updated_at DESC, id LIMIT ?`
}

// prepareScopeQueries prepares the queries a scope snapshot runs in its read transaction, which
// uses only statements prepared before (txReads).
func (s *Store) prepareScopeQueries(ctx context.Context) error {
	queries := []string{partyHeadQuery}
	for _, k := range []ordercast.PartyKind{ordercast.PartyRestaurant, ordercast.PartyCourier, ordercast.PartyCustomer} {
		queries = append(queries, scopeOrdersQuery(k))
	}
	for _, q := range queries {
		if _, err := s.reads.stmt(ctx, q); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
	}
	return nil
}

func (s *Store) scopeSnapshot(ctx context.Context, p ordercast.Party, limit int) (ordercast.ScopeSnapshot, error) {
	if p.Kind.Field() == "" {
		return ordercast.ScopeSnapshot{}, ordercast.Errorf(ordercast.EInvalid, "unknown party kind %q", p.Kind)
	}
	if limit <= 0 {
		limit = -1
	}
	tx, err := s.readers.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ordercast.ScopeSnapshot{}, fmt.Errorf("sqlite: scope %s: begin: %w", p.Key(), err)
	}
	defer func() { _ = tx.Rollback() }() // read only: nothing to commit
	q := s.reads.in(tx)

	snap := ordercast.ScopeSnapshot{Orders: []ordercast.Order{}}
	err = q.QueryRowContext(ctx, partyHeadQuery, p.Key()).Scan(&snap.Pos)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return ordercast.ScopeSnapshot{}, fmt.Errorf("sqlite: scope %s: position: %w", p.Key(), err)
	}
	// The WHERE clause matches the party's partial index, which finds its active orders; they are
	// sorted here (see activeOrders).
	rows, err := q.QueryContext(ctx, scopeOrdersQuery(p.Kind), p.ID, limit)
	if err != nil {
		return ordercast.ScopeSnapshot{}, fmt.Errorf("sqlite: scope %s: orders: %w", p.Key(), err)
	}
	if snap.Orders, err = scanOrders(rows); err != nil {
		return ordercast.ScopeSnapshot{}, fmt.Errorf("sqlite: scope %s: orders: %w", p.Key(), err)
	}
	return snap, nil
}

// CouriersOrders returns the active orders assigned to each of the couriers, in one query: the
// ids go in as one JSON array, so the statement's text is one whatever their number and is
// prepared once.
func (s *Store) CouriersOrders(ctx context.Context, courierIDs []string) (map[string][]ordercast.Order, error) {
	orders, err := s.couriersOrders(ctx, courierIDs)
	return orders, s.health(err, storehealth.ProvesNothing)
}

func (s *Store) couriersOrders(ctx context.Context, courierIDs []string) (map[string][]ordercast.Order, error) {
	ids, err := json.Marshal(courierIDs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: couriers' orders: %w", err)
	}
	// The WHERE clause matches the couriers' partial index.
	rows, err := s.reads.QueryContext(ctx, `
		SELECT `+readColumns+` FROM orders INDEXED BY orders_courier_active
		WHERE active = 1 AND courier_id <> ''
			AND courier_id IN (SELECT value FROM json_each(?))
		ORDER BY courier_id, updated_at DESC, id`, string(ids))
	if err != nil {
		return nil, fmt.Errorf("sqlite: couriers' orders: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]ordercast.Order)
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: couriers' orders: %w", err)
		}
		out[o.CourierID] = append(out[o.CourierID], o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: couriers' orders: %w", err)
	}
	return out, nil
}

// ScopeEventsAfter returns up to limit events of the party's log after position after.
func (s *Store) ScopeEventsAfter(ctx context.Context, p ordercast.Party, after int64, limit int) ([]ordercast.ScopedEvent, error) {
	evs, err := s.scopeEventsAfter(ctx, p, after, limit)
	return evs, s.health(err, storehealth.ProvesNothing)
}

func (s *Store) scopeEventsAfter(ctx context.Context, p ordercast.Party, after int64, limit int) ([]ordercast.ScopedEvent, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.reads.QueryContext(ctx, `
		SELECT l.pos, e.order_id, e.seq, e.status, e.at, e.note, e.actor, e.kind, e.courier_id, e.courier_name
		FROM party_log l JOIN order_events e ON e.order_id = l.order_id AND e.seq = l.seq
		WHERE l.party = ? AND l.pos > ? ORDER BY l.pos LIMIT ?`, p.Key(), after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: log of %s: %w", p.Key(), err)
	}
	defer rows.Close()
	out := []ordercast.ScopedEvent{}
	for rows.Next() {
		var pos int64
		ev, err := scanEvent(prefixed{rows, &pos})
		if err != nil {
			return nil, fmt.Errorf("sqlite: log of %s: %w", p.Key(), err)
		}
		ev.Marks = ordercast.Marks("").With(p.Key(), pos)
		out = append(out, ordercast.ScopedEvent{Event: ev, Pos: pos})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: log of %s: %w", p.Key(), err)
	}
	// After the entries, not before: a purge that commits between the two reads is seen here
	// (and the stream opens with a snapshot it might not have needed), while one seen as not yet
	// run before the entries were read could have deleted some of them in between.
	if err := s.checkPurged(ctx, p, after); err != nil {
		return nil, err
	}
	return out, nil
}

// ScopeLogBounds returns where the party's log stands: its head and how far it was purged.
func (s *Store) ScopeLogBounds(ctx context.Context, p ordercast.Party) (ordercast.LogBounds, error) {
	var b ordercast.LogBounds
	err := s.reads.QueryRowContext(ctx, logBoundsQuery, p.Key()).Scan(&b.Head, &b.Purged)
	if err != nil {
		err = fmt.Errorf("sqlite: where the log of %s stands: %w", p.Key(), err)
	}
	return b, s.health(err, storehealth.ProvesNothing)
}

// logBoundsQuery reads a party's head and purge position, each by its table's key.
const logBoundsQuery = `SELECT
	coalesce((SELECT pos FROM party_heads WHERE party = ?1), 0),
	coalesce((SELECT pos FROM party_purged WHERE party = ?1), 0)`

// checkPurged returns ordercast.ErrLogPurged when the party's log lost entries after position
// after to a purge (PurgeEnded).
func (s *Store) checkPurged(ctx context.Context, p ordercast.Party, after int64) error {
	var purged int64
	err := s.reads.QueryRowContext(ctx, `SELECT pos FROM party_purged WHERE party = ?`, p.Key()).Scan(&purged)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("sqlite: log of %s: how far it was purged: %w", p.Key(), err)
	case after < purged:
		return fmt.Errorf("sqlite: log of %s after %d: %w", p.Key(), after, ordercast.ErrLogPurged)
	}
	return nil
}

// prefixed scans one extra leading column into first, then the rest as the wrapped scanner's
// caller expects.
type prefixed struct {
	sc    scanner
	first any
}

func (p prefixed) Scan(dest ...any) error { return p.sc.Scan(append([]any{p.first}, dest...)...) }
