package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ordercast/ordercast"
)

// queryer is what *sql.DB and *sql.Tx share, so lookups work inside and outside a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const (
	orderColumns = `id, status, version, details, created_at, updated_at, restaurant_id, customer_id, courier_id`
	eventColumns = `order_id, seq, status, at, note, actor, kind, courier_id`
)

// placeColumns are the order's pickup and drop-off (migration 005), read after orderColumns.
const placeColumns = `pickup, dropoff`

// CreateOrder creates an order in status placed with its event seq 1, or returns the existing
// order when the same id is created again with the same details.
func (s *Store) CreateOrder(ctx context.Context, n ordercast.NewOrder) (ordercast.Order, bool, error) {
	o, created, err := s.createOrder(ctx, n)
	return o, created, s.health(err, true)
}

func (s *Store) createOrder(ctx context.Context, n ordercast.NewOrder) (ordercast.Order, bool, error) {
	n, err := n.Normalize()
	if err != nil {
		return ordercast.Order{}, false, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return ordercast.Order{}, false, fmt.Errorf("sqlite: create order: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit

	existing, err := findOrder(ctx, tx, n.ID)
	switch {
	case err == nil:
		// Details are kept as given, so compare their values, not their spelling.
		if !n.Matches(existing) {
			return ordercast.Order{}, false, ordercast.Errorf(ordercast.EOrderExists,
				"order %s already exists with different details, pickup or drop-off", n.ID)
		}
		if n.Idem != nil { // the idempotency step: a repeat's answer is recorded too
			first, err := findEvent(ctx, tx, existing.ID, 1)
			if err != nil {
				return ordercast.Order{}, false, err
			}
			if err := s.recordAnswer(ctx, tx, n.Idem, ordercast.Result{Order: existing, Event: first}); err != nil {
				return ordercast.Order{}, false, err
			}
			if err := tx.Commit(); err != nil {
				return ordercast.Order{}, false, fmt.Errorf("sqlite: create order %s: commit: %w", n.ID, err)
			}
		}
		return existing, false, nil
	case ordercast.ErrorCode(err) != ordercast.ENotFound:
		return ordercast.Order{}, false, err
	}

	now := s.now()
	o, ev := n.Place(now)
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO orders (`+orderColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, string(o.Status), o.Version, string(o.Details), now.UnixMicro(), now.UnixMicro(),
		o.RestaurantID, o.CustomerID, o.CourierID,
	); err != nil {
		return ordercast.Order{}, false, fmt.Errorf("sqlite: create order %s: %w", o.ID, err)
	}
	if err := insertEvent(ctx, tx, ordercast.Order{}, o, &ev); err != nil {
		return ordercast.Order{}, false, err
	}
	if o.Pickup != nil || o.Dropoff != nil {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET pickup = ?, dropoff = ? WHERE id = ?`,
			ordercast.PointColumn(o.Pickup), ordercast.PointColumn(o.Dropoff), o.ID); err != nil {
			return ordercast.Order{}, false, fmt.Errorf("sqlite: create order %s: places: %w", o.ID, err)
		}
	}
	if err := s.recordAnswer(ctx, tx, n.Idem, ordercast.Result{Order: o, Event: ev, Created: true}); err != nil {
		return ordercast.Order{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return ordercast.Order{}, false, fmt.Errorf("sqlite: create order %s: commit: %w", o.ID, err)
	}
	s.publish(ev)
	return o, true, nil
}

// Order returns the current state of one order.
func (s *Store) Order(ctx context.Context, id string) (ordercast.Order, error) {
	o, err := findOrder(ctx, s.readers, id)
	return o, s.health(err, false)
}

// AppendStatus applies a status change in one transaction: the domain's StatusChange decides
// whether and how the order moves; the store bumps the version and appends the event.
func (s *Store) AppendStatus(ctx context.Context, c ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	o, ev, changed, err := s.appendStatus(ctx, c)
	return o, ev, changed, s.health(err, true)
}

func (s *Store) appendStatus(ctx context.Context, c ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	if err := c.Validate(); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	return s.change(ctx, c.OrderID, c.Idem, func(o ordercast.Order, now time.Time) (ordercast.Order, ordercast.Event, bool, error) {
		changed, err := c.Apply(o)
		if err != nil || !changed {
			return o, ordercast.Event{}, false, err
		}
		o.Status, o.Version, o.UpdatedAt = c.Status, o.Version+1, now
		return o, ordercast.Event{OrderID: o.ID, Seq: o.Version, Status: o.Status, At: now, Note: c.Note, Actor: c.Actor}, true, nil
	})
}

// AssignCourier applies a courier change in one transaction, as an event of its own.
func (s *Store) AssignCourier(ctx context.Context, c ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	o, ev, changed, err := s.assignCourier(ctx, c)
	return o, ev, changed, s.health(err, true)
}

func (s *Store) assignCourier(ctx context.Context, c ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	if err := c.Validate(); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	return s.change(ctx, c.OrderID, nil, func(o ordercast.Order, now time.Time) (ordercast.Order, ordercast.Event, bool, error) {
		changed, err := c.Apply(o)
		if err != nil || !changed {
			return o, ordercast.Event{}, false, err
		}
		o.CourierID, o.Version, o.UpdatedAt = c.CourierID, o.Version+1, now
		return o, c.Event(o), true, nil
	})
}

// decideFunc decides what a change does to the order as stored, at time now: the order after it
// and its event, or changed=false for an idempotent repeat.
type decideFunc func(o ordercast.Order, now time.Time) (after ordercast.Order, ev ordercast.Event, changed bool, err error)

// change is every change to an existing order, in one transaction: the domain decides, the store
// bumps the version, appends the event to the order's history and its parties' logs.
func (s *Store) change(ctx context.Context, orderID string, idem *ordercast.Idempotency, decide decideFunc) (ordercast.Order, ordercast.Event, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("sqlite: change order: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit; the only end of a no-op change

	o, err := findOrder(ctx, tx, orderID)
	if err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	after, ev, changed, err := decide(o, s.now())
	if err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	if !changed {
		ev, err := findEvent(ctx, tx, o.ID, o.Version)
		if err != nil {
			return ordercast.Order{}, ordercast.Event{}, false, err
		}
		if idem != nil { // the idempotency step: a repeat's answer is recorded too
			if err := s.recordAnswer(ctx, tx, idem, ordercast.Result{Order: o, Event: ev}); err != nil {
				return ordercast.Order{}, ordercast.Event{}, false, err
			}
			if err := tx.Commit(); err != nil {
				return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("sqlite: change order %s: commit: %w", o.ID, err)
			}
		}
		return o, ev, false, nil
	}

	// The version guard is redundant while s.mu and the single writer serialise writes, but keeps
	// the invariant in SQL should another process write the same file.
	res, err := tx.ExecContext(ctx,
		`UPDATE orders SET status = ?, version = ?, updated_at = ?, courier_id = ? WHERE id = ? AND version = ?`,
		string(after.Status), after.Version, after.UpdatedAt.UnixMicro(), after.CourierID, o.ID, o.Version)
	if err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("sqlite: update order %s: %w", o.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("sqlite: update order %s: %w", o.ID, err)
	} else if n != 1 {
		return ordercast.Order{}, ordercast.Event{}, false, ordercast.Errorf(ordercast.EVersionConflict,
			"order %s changed concurrently", o.ID)
	}
	if err := insertEvent(ctx, tx, o, after, &ev); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	if err := s.recordAnswer(ctx, tx, idem, ordercast.Result{Order: after, Event: ev, Changed: true}); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("sqlite: change order %s: commit: %w", o.ID, err)
	}
	s.publish(ev)
	return after, ev, true, nil
}

// EventsAfter returns up to limit events of an order with seq > after, in seq order; limit <= 0
// means all.
func (s *Store) EventsAfter(ctx context.Context, orderID string, after int64, limit int) ([]ordercast.Event, error) {
	evs, err := s.eventsAfter(ctx, orderID, after, limit)
	return evs, s.health(err, false)
}

func (s *Store) eventsAfter(ctx context.Context, orderID string, after int64, limit int) ([]ordercast.Event, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.readers.QueryContext(ctx, `
		SELECT `+eventColumns+` FROM order_events
		WHERE order_id = ? AND seq > ? ORDER BY seq LIMIT ?`, orderID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events of %s: %w", orderID, err)
	}
	defer rows.Close()
	events := []ordercast.Event{}
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: events of %s: %w", orderID, err)
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events of %s: %w", orderID, err)
	}
	if len(events) == 0 {
		// Only an empty answer needs the existence check. Orders are never deleted, so asking
		// outside the query's snapshot cannot turn a real order into a false not-found.
		if _, err := findOrder(ctx, s.readers, orderID); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// ActiveOrders returns up to limit non-terminal orders, most recently updated first; limit <= 0
// means all.
func (s *Store) ActiveOrders(ctx context.Context, limit int) ([]ordercast.Order, error) {
	orders, err := s.activeOrders(ctx, limit)
	return orders, s.health(err, false)
}

func (s *Store) activeOrders(ctx context.Context, limit int) ([]ordercast.Order, error) {
	if limit <= 0 {
		limit = -1
	}
	// The WHERE clause matches the orders_active partial index exactly.
	rows, err := s.readers.QueryContext(ctx, `
		SELECT `+orderColumns+`, `+placeColumns+` FROM orders
		WHERE status NOT IN ('delivered', 'cancelled')
		ORDER BY updated_at DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: active orders: %w", err)
	}
	defer rows.Close()
	orders := []ordercast.Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: active orders: %w", err)
		}
		orders = append(orders, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: active orders: %w", err)
	}
	return orders, nil
}

// findOrder reads one order, translating a missing row into ENotFound.
func findOrder(ctx context.Context, q queryer, id string) (ordercast.Order, error) {
	o, err := scanOrder(q.QueryRowContext(ctx, `SELECT `+orderColumns+`, `+placeColumns+` FROM orders WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ordercast.Order{}, ordercast.Errorf(ordercast.ENotFound, "order %s not found", id)
	} else if err != nil {
		return ordercast.Order{}, fmt.Errorf("sqlite: find order %s: %w", id, err)
	}
	return o, nil
}

// findEvent reads one event of an order; it exists for every seq up to the order's version.
func findEvent(ctx context.Context, q queryer, orderID string, seq int64) (ordercast.Event, error) {
	ev, err := scanEvent(q.QueryRowContext(ctx, `
		SELECT `+eventColumns+` FROM order_events
		WHERE order_id = ? AND seq = ?`, orderID, seq))
	if err != nil {
		// A missing row here is a broken invariant, not a client's unknown id: report it as internal.
		return ordercast.Event{}, fmt.Errorf("sqlite: find event %s/%d: %w", orderID, seq, err)
	}
	return ev, nil
}

// insertEvent appends ev, which moves the order from before to after, to the order's history and
// to the log of every party it concerns, and records its positions there in ev.Marks.
func insertEvent(ctx context.Context, tx *sql.Tx, before, after ordercast.Order, ev *ordercast.Event) error {
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO order_events (`+eventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.OrderID, ev.Seq, string(ev.Status), ev.At.UnixMicro(), ev.Note, ev.Actor, string(ev.Kind), ev.CourierID,
	); err != nil {
		return fmt.Errorf("sqlite: insert event %s/%d: %w", ev.OrderID, ev.Seq, err)
	}
	// Writes are serialised by s.mu, so positions are commit-ordered here without further locks.
	for _, party := range ordercast.LogParties(before, after) {
		var pos int64
		if err := tx.QueryRowContext(ctx, `
			INSERT INTO party_heads (party, pos) VALUES (?, 1)
			ON CONFLICT (party) DO UPDATE SET pos = pos + 1 RETURNING pos`, party).Scan(&pos); err != nil {
			return fmt.Errorf("sqlite: log event %s/%d for %s: %w", ev.OrderID, ev.Seq, party, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO party_log (party, pos, order_id, seq) VALUES (?, ?, ?, ?)`,
			party, pos, ev.OrderID, ev.Seq); err != nil {
			return fmt.Errorf("sqlite: log event %s/%d for %s: %w", ev.OrderID, ev.Seq, party, err)
		}
		ev.Marks = ev.Marks.With(party, pos)
	}
	return nil
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

func scanOrder(row scanner) (ordercast.Order, error) {
	var (
		o                ordercast.Order
		status, details  string
		created, updated int64
		pickup, dropoff  *string
	)
	if err := row.Scan(&o.ID, &status, &o.Version, &details, &created, &updated,
		&o.RestaurantID, &o.CustomerID, &o.CourierID, &pickup, &dropoff); err != nil {
		return ordercast.Order{}, err
	}
	var err error
	if o.Pickup, err = ordercast.ParsePointColumn(pickup); err != nil {
		return ordercast.Order{}, err
	}
	if o.Dropoff, err = ordercast.ParsePointColumn(dropoff); err != nil {
		return ordercast.Order{}, err
	}
	o.Status = ordercast.Status(status)
	o.Details = ordercast.ServedDetails([]byte(details))
	o.CreatedAt, o.UpdatedAt = fromMicros(created), fromMicros(updated)
	return o, nil
}

func scanEvent(row scanner) (ordercast.Event, error) {
	var (
		ev           ordercast.Event
		status, kind string
		at           int64
	)
	if err := row.Scan(&ev.OrderID, &ev.Seq, &status, &at, &ev.Note, &ev.Actor, &kind, &ev.CourierID); err != nil {
		return ordercast.Event{}, err
	}
	ev.Kind = ordercast.EventKind(kind)
	ev.Status = ordercast.Status(status)
	ev.At = fromMicros(at)
	return ev, nil
}
