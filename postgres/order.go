package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
)

const (
	orderColumns = `id, status, version, details, created_at, updated_at, restaurant_id, customer_id, courier_id`
	eventColumns = `order_id, seq, status, at, note, actor, kind, courier_id`
)

// placeColumns are the order's pickup and drop-off (migration 005), read after orderColumns.
const placeColumns = `pickup, dropoff`

// CreateOrder creates an order in status placed with its event seq 1, or returns the existing
// order when the same id is created again with the same details. The creation is announced with
// pg_notify in the same transaction.
func (s *Store) CreateOrder(ctx context.Context, n ordercast.NewOrder) (ordercast.Order, bool, error) {
	o, created, err := s.createOrder(ctx, n)
	return o, created, s.health(err, true)
}

func (s *Store) createOrder(ctx context.Context, n ordercast.NewOrder) (ordercast.Order, bool, error) {
	n, err := n.Normalize()
	if err != nil {
		return ordercast.Order{}, false, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ordercast.Order{}, false, fmt.Errorf("postgres: create order: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit

	// ON CONFLICT DO NOTHING waits for a concurrent creator of the same id to finish, so racing
	// creates end with exactly one winner and the others reading its committed row below.
	var at time.Time
	err = tx.QueryRow(ctx, `
		INSERT INTO orders (`+orderColumns+`)
		SELECT $1, 'placed', 1, $2, c.t, c.t, $3, $4, '' FROM (SELECT clock_timestamp() AS t) c
		ON CONFLICT (id) DO NOTHING
		RETURNING created_at`, n.ID, string(n.Details), n.RestaurantID, n.CustomerID).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		existing, err := findOrder(ctx, tx, n.ID)
		if err != nil {
			return ordercast.Order{}, false, err
		}
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
			if err := tx.Commit(ctx); err != nil {
				return ordercast.Order{}, false, fmt.Errorf("postgres: create order %s: commit: %w", n.ID, err)
			}
		}
		return existing, false, nil
	} else if err != nil {
		return ordercast.Order{}, false, fmt.Errorf("postgres: create order %s: %w", n.ID, err)
	}
	o, ev := n.Place(at)
	if err := s.appendEvent(ctx, tx, ordercast.Order{}, o, &ev); err != nil {
		return ordercast.Order{}, false, err
	}
	if o.Pickup != nil || o.Dropoff != nil {
		if _, err := tx.Exec(ctx, `UPDATE orders SET pickup = $1, dropoff = $2 WHERE id = $3`,
			ordercast.PointColumn(o.Pickup), ordercast.PointColumn(o.Dropoff), o.ID); err != nil {
			return ordercast.Order{}, false, fmt.Errorf("postgres: create order %s: places: %w", o.ID, err)
		}
	}
	if err := s.recordAnswer(ctx, tx, n.Idem, ordercast.Result{Order: o, Event: ev, Created: true}); err != nil {
		return ordercast.Order{}, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return ordercast.Order{}, false, fmt.Errorf("postgres: create order %s: commit: %w", o.ID, err)
	}
	s.publish(ev)
	return o, true, nil
}

// Order returns the current state of one order.
func (s *Store) Order(ctx context.Context, id string) (ordercast.Order, error) {
	o, err := findOrder(ctx, s.pool, id)
	return o, s.health(err, false)
}

// AppendStatus applies a status change in one transaction: the order's row is locked, the
// domain's StatusChange decides whether and how it moves, the store bumps the version, appends
// the event and announces it with pg_notify, which PostgreSQL delivers only if the transaction
// commits.
func (s *Store) AppendStatus(ctx context.Context, c ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	o, ev, changed, err := s.appendStatus(ctx, c)
	return o, ev, changed, s.health(err, true)
}

func (s *Store) appendStatus(ctx context.Context, c ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	if err := c.Validate(); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	return s.change(ctx, c.OrderID, c.Idem, func(o ordercast.Order) (ordercast.Order, ordercast.Event, bool, error) {
		changed, err := c.Apply(o)
		if err != nil || !changed {
			return o, ordercast.Event{}, false, err
		}
		o.Status, o.Version = c.Status, o.Version+1
		return o, ordercast.Event{OrderID: o.ID, Seq: o.Version, Status: o.Status, Note: c.Note, Actor: c.Actor}, true, nil
	})
}

// AssignCourier applies a courier change in one transaction, as an event of its own announced
// like a status change.
func (s *Store) AssignCourier(ctx context.Context, c ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	o, ev, changed, err := s.assignCourier(ctx, c)
	return o, ev, changed, s.health(err, true)
}

func (s *Store) assignCourier(ctx context.Context, c ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	if err := c.Validate(); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	return s.change(ctx, c.OrderID, nil, func(o ordercast.Order) (ordercast.Order, ordercast.Event, bool, error) {
		changed, err := c.Apply(o)
		if err != nil || !changed {
			return o, ordercast.Event{}, false, err
		}
		o.CourierID, o.Version = c.CourierID, o.Version+1
		return o, c.Event(o), true, nil
	})
}

// decideFunc decides what a change does to the order as stored: the order after it (its time is
// stamped by the database) and its event, or changed=false for an idempotent repeat.
type decideFunc func(o ordercast.Order) (after ordercast.Order, ev ordercast.Event, changed bool, err error)

// change is every change to an existing order, in one transaction: the order's row is locked,
// the domain decides, the store bumps the version, appends the event to the order's history and
// its parties' logs, and announces it with pg_notify, which PostgreSQL delivers only if the
// transaction commits.
func (s *Store) change(ctx context.Context, orderID string, idem *ordercast.Idempotency, decide decideFunc) (ordercast.Order, ordercast.Event, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("postgres: change order: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit; the only end of a no-op change

	// FOR UPDATE serialises writers of one order: the next one reads the version this one writes.
	o, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+`, `+placeColumns+` FROM orders WHERE id = $1 FOR UPDATE`, orderID))
	if errors.Is(err, pgx.ErrNoRows) {
		return ordercast.Order{}, ordercast.Event{}, false, ordercast.Errorf(ordercast.ENotFound, "order %s not found", orderID)
	} else if err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("postgres: find order %s: %w", orderID, err)
	}
	after, ev, changed, err := decide(o)
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
			if err := tx.Commit(ctx); err != nil {
				return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("postgres: change order %s: commit: %w", o.ID, err)
			}
		}
		return o, ev, false, nil
	}

	// greatest() keeps updated_at from going back should the clock step backwards.
	var at time.Time
	if err := tx.QueryRow(ctx, `
		UPDATE orders SET status = $2, version = $4, courier_id = $5,
			updated_at = greatest(clock_timestamp(), updated_at)
		WHERE id = $1 AND version = $3
		RETURNING updated_at`, o.ID, string(after.Status), o.Version, after.Version, after.CourierID).Scan(&at); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("postgres: update order %s: %w", o.ID, err)
	}
	after.UpdatedAt = at.UTC()
	ev.At = after.UpdatedAt
	if err := s.appendEvent(ctx, tx, o, after, &ev); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	if err := s.recordAnswer(ctx, tx, idem, ordercast.Result{Order: after, Event: ev, Changed: true}); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, err
	}
	if s.beforeCommit != nil {
		s.beforeCommit(ev)
	}
	if err := tx.Commit(ctx); err != nil {
		return ordercast.Order{}, ordercast.Event{}, false, fmt.Errorf("postgres: change order %s: commit: %w", o.ID, err)
	}
	s.publish(ev)
	return after, ev, true, nil
}

// appendEvent appends ev, which moves the order from before to after, to the order's history and
// to the log of every party it concerns (recording its positions in ev.Marks), and queues its
// announcement; all take effect only on commit. A party's position is taken by upserting its
// party_heads row, whose lock is held until this transaction ends: the next writer for that
// party waits for the commit, so positions are in commit order (docs/party-streams.md). The
// parties are locked in sorted order, so two writers never wait on each other in a cycle.
func (s *Store) appendEvent(ctx context.Context, tx pgx.Tx, before, after ordercast.Order, ev *ordercast.Event) error {
	if parties := ordercast.LogParties(before, after); len(parties) > 0 {
		rows, err := tx.Query(ctx, `
			WITH heads AS (
				INSERT INTO party_heads (party, pos) SELECT p, 1 FROM unnest($1::text[]) WITH ORDINALITY AS u(p, i)
				ORDER BY i
				ON CONFLICT (party) DO UPDATE SET pos = party_heads.pos + 1
				RETURNING party, pos)
			INSERT INTO party_log (party, pos, order_id, seq) SELECT party, pos, $2, $3 FROM heads
			RETURNING party, pos`, parties, ev.OrderID, ev.Seq)
		if err != nil {
			return fmt.Errorf("postgres: log event %s/%d: %w", ev.OrderID, ev.Seq, err)
		}
		type mark struct {
			party string
			pos   int64
		}
		marks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mark, error) {
			var m mark
			err := r.Scan(&m.party, &m.pos)
			return m, err
		})
		if err != nil {
			return fmt.Errorf("postgres: log event %s/%d: %w", ev.OrderID, ev.Seq, err)
		}
		slices.SortFunc(marks, func(a, b mark) int { return strings.Compare(a.party, b.party) })
		for _, m := range marks {
			ev.Marks = ev.Marks.With(m.party, m.pos)
		}
	}
	payload, err := notifyPayload(*ev, s.MaxNotifyPayload)
	if err != nil {
		return err
	}
	// One round trip for both statements.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO order_events (`+eventColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ev.OrderID, ev.Seq, string(ev.Status), ev.At, ev.Note, ev.Actor, string(ev.Kind), ev.CourierID)
	b.Queue(`SELECT pg_notify($1, $2)`, Channel, payload)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: insert event %s/%d: %w", ev.OrderID, ev.Seq, err)
	}
	return nil
}

// notice is the short announcement sent when an event's JSON is too large for NOTIFY: the
// receiver reads the event from the store.
type notice struct {
	OrderID string          `json:"order_id"`
	Seq     int64           `json:"seq"`
	Marks   ordercast.Marks `json:"marks,omitempty"` // the store's rows do not say them
}

// notifyPayload is the event's JSON, or only its order id and seq when the JSON exceeds max.
func notifyPayload(ev ordercast.Event, max int) (string, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("postgres: encode event: %w", err)
	}
	if len(b) > max {
		if b, err = json.Marshal(notice{OrderID: ev.OrderID, Seq: ev.Seq, Marks: ev.Marks}); err != nil {
			return "", fmt.Errorf("postgres: encode notice: %w", err)
		}
	}
	return string(b), nil
}

// EventsAfter returns up to limit events of an order with seq > after, in seq order; limit <= 0
// means all.
func (s *Store) EventsAfter(ctx context.Context, orderID string, after int64, limit int) ([]ordercast.Event, error) {
	evs, err := s.eventsAfter(ctx, orderID, after, limit)
	return evs, s.health(err, false)
}

func (s *Store) eventsAfter(ctx context.Context, orderID string, after int64, limit int) ([]ordercast.Event, error) {
	var lim *int
	if limit > 0 {
		lim = &limit // NULL is no limit
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+eventColumns+` FROM order_events
		WHERE order_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, orderID, after, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: events of %s: %w", orderID, err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ordercast.Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: events of %s: %w", orderID, err)
	}
	if len(events) == 0 {
		// Only an empty answer needs the existence check. Orders are never deleted, so asking
		// outside the query's snapshot cannot turn a real order into a false not-found.
		if _, err := findOrder(ctx, s.pool, orderID); err != nil {
			return nil, err
		}
		return []ordercast.Event{}, nil
	}
	return events, nil
}

// LatestEvents returns the latest event of each of the given orders that exists, in one query.
// A listener that lost its connection uses it to catch up every watched order at once.
func (s *Store) LatestEvents(ctx context.Context, orderIDs []string) ([]ordercast.Event, error) {
	evs, err := s.latestEvents(ctx, orderIDs)
	return evs, s.health(err, false)
}

func (s *Store) latestEvents(ctx context.Context, orderIDs []string) ([]ordercast.Event, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT ON (order_id) `+eventColumns+` FROM order_events
		WHERE order_id = ANY($1) ORDER BY order_id, seq DESC`, orderIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: latest events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ordercast.Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: latest events: %w", err)
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
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	// The WHERE clause matches the orders_active partial index exactly.
	rows, err := s.pool.Query(ctx, `
		SELECT `+orderColumns+`, `+placeColumns+` FROM orders
		WHERE status NOT IN ('delivered', 'cancelled')
		ORDER BY updated_at DESC, id LIMIT $1`, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: active orders: %w", err)
	}
	orders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ordercast.Order, error) { return scanOrder(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: active orders: %w", err)
	}
	if orders == nil {
		orders = []ordercast.Order{}
	}
	return orders, nil
}

// querier is what the pool and a transaction share, so lookups work inside and outside one.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// findOrder reads one order, translating a missing row into ENotFound.
func findOrder(ctx context.Context, q querier, id string) (ordercast.Order, error) {
	o, err := scanOrder(q.QueryRow(ctx, `SELECT `+orderColumns+`, `+placeColumns+` FROM orders WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return ordercast.Order{}, ordercast.Errorf(ordercast.ENotFound, "order %s not found", id)
	} else if err != nil {
		return ordercast.Order{}, fmt.Errorf("postgres: find order %s: %w", id, err)
	}
	return o, nil
}

// findEvent reads one event of an order; it exists for every seq up to the order's version.
func findEvent(ctx context.Context, q querier, orderID string, seq int64) (ordercast.Event, error) {
	ev, err := scanEvent(q.QueryRow(ctx, `
		SELECT `+eventColumns+` FROM order_events WHERE order_id = $1 AND seq = $2`, orderID, seq))
	if err != nil {
		// A missing row here is a broken invariant, not a client's unknown id: report it as internal.
		return ordercast.Event{}, fmt.Errorf("postgres: find event %s/%d: %w", orderID, seq, err)
	}
	return ev, nil
}

func scanOrder(row pgx.Row) (ordercast.Order, error) {
	var (
		o       ordercast.Order
		status  string
		details string
		pickup  *string
		dropoff *string
	)
	if err := row.Scan(&o.ID, &status, &o.Version, &details, &o.CreatedAt, &o.UpdatedAt,
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
	o.Status, o.Details = ordercast.Status(status), ordercast.ServedDetails([]byte(details))
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, nil
}

func scanEvent(row pgx.Row) (ordercast.Event, error) {
	var (
		ev           ordercast.Event
		status, kind string
	)
	if err := row.Scan(&ev.OrderID, &ev.Seq, &status, &ev.At, &ev.Note, &ev.Actor, &kind, &ev.CourierID); err != nil {
		return ordercast.Event{}, err
	}
	ev.Status, ev.At, ev.Kind = ordercast.Status(status), ev.At.UTC(), ordercast.EventKind(kind)
	return ev, nil
}
