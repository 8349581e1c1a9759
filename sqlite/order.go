package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/column"
	"github.com/ordercast/ordercast/internal/storehealth"
)

// queryer is what *sql.DB and *sql.Tx share, so lookups work inside and outside a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const (
	orderColumns = `id, status, version, details, created_at, updated_at, restaurant_id, customer_id, courier_id, courier_name`
	eventColumns = `order_id, seq, status, at, note, actor, kind, courier_id, courier_name`
)

// placeColumns are the order's pickup and drop-off (migration 005), read after orderColumns.
const placeColumns = `pickup, dropoff`

// readColumns are what a read of an order selects, for scanOrder: orderColumns, placeColumns, and
// erased_at (migration 014), which only an erasure writes.
const readColumns = orderColumns + `, ` + placeColumns + `, erased_at`

// CreateOrder creates an order in status placed with its event seq 1, or returns the existing
// order when the same id is created again with the same details. It joins the writer's next
// batch.
//
// A database that is away fails it with EUnavailable (the batch's commit is judged once, in
// commitBatch); with n.Idem, its answer is recorded in the batch's transaction (see Batch).
func (s *Store) CreateOrder(ctx context.Context, n ordercast.NewOrder) (ordercast.Order, bool, error) {
	return s.batches.CreateOrder(ctx, n)
}

// Order returns the current state of one order.
func (s *Store) Order(ctx context.Context, id string) (ordercast.Order, error) {
	o, err := findOrder(ctx, s.reads, id)
	return o, s.health(err, storehealth.ProvesNothing)
}

// AppendStatus applies a status change in the writer's next batch: the domain's StatusChange
// decides whether and how the order moves, against the order as the writes before it in the
// batch left it; the store bumps the version and appends the event.
func (s *Store) AppendStatus(ctx context.Context, c ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	return s.batches.AppendStatus(ctx, c)
}

// AppendStatuses applies status changes in their order, together, in the writer's next
// batches (as many as its bound takes).
func (s *Store) AppendStatuses(ctx context.Context, cs []ordercast.StatusChange) []ordercast.WriteResult {
	return s.batches.AppendStatuses(ctx, cs)
}

// AssignCourier applies a courier change in the writer's next batch, as an event of its own.
func (s *Store) AssignCourier(ctx context.Context, c ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	return s.batches.AssignCourier(ctx, c)
}

// EventsAfter returns up to limit events of an order with seq > after, in seq order; limit <= 0
// means all.
func (s *Store) EventsAfter(ctx context.Context, orderID string, after int64, limit int) ([]ordercast.Event, error) {
	evs, err := s.eventsAfter(ctx, orderID, after, limit)
	return evs, s.health(err, storehealth.ProvesNothing)
}

func (s *Store) eventsAfter(ctx context.Context, orderID string, after int64, limit int) ([]ordercast.Event, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.reads.QueryContext(ctx, `
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
		// Only an empty answer needs the existence check, asked outside the query's snapshot:
		// an order deleted in between (--retention purges ended ones) is not found, which it
		// now is.
		if _, err := findOrder(ctx, s.reads, orderID); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// LastEvent returns an order's latest event of the kind with seq < before.
func (s *Store) LastEvent(ctx context.Context, orderID string, kind ordercast.EventKind, before int64) (ordercast.Event, error) {
	ev, err := s.lastEvent(ctx, orderID, kind, before)
	return ev, s.health(err, storehealth.ProvesNothing)
}

func (s *Store) lastEvent(ctx context.Context, orderID string, kind ordercast.EventKind, before int64) (ordercast.Event, error) {
	// The primary key (order_id, seq), walked backwards: no row of the history is loaded but
	// the one returned.
	ev, err := scanEvent(s.reads.QueryRowContext(ctx, `
		SELECT `+eventColumns+` FROM order_events
		WHERE order_id = ? AND seq < ? AND kind = ? ORDER BY seq DESC LIMIT 1`, orderID, before, string(kind)))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := findOrder(ctx, s.reads, orderID); err != nil {
			return ordercast.Event{}, err
		}
		return ordercast.Event{}, ordercast.Errorf(ordercast.ENotFound, "order %s has no %s event before seq %d", orderID, kind.Name(), before)
	} else if err != nil {
		return ordercast.Event{}, fmt.Errorf("sqlite: last %s event of %s: %w", kind.Name(), orderID, err)
	}
	return ev, nil
}

// activeOrdersQuery reads the first entries of the orders_active index, in its order, with no
// sort (migration 007): the read of the newest few costs the same however many are active.
const activeOrdersQuery = `
	SELECT ` + readColumns + ` FROM orders INDEXED BY orders_active
	WHERE active = 1
	ORDER BY created_at DESC, id LIMIT ?`

// ActiveOrders returns up to limit non-terminal orders, newest first; limit <= 0 means all.
func (s *Store) ActiveOrders(ctx context.Context, limit int) ([]ordercast.Order, error) {
	orders, err := s.activeOrders(ctx, limit)
	return orders, s.health(err, storehealth.ProvesNothing)
}

func (s *Store) activeOrders(ctx context.Context, limit int) ([]ordercast.Order, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.reads.QueryContext(ctx, activeOrdersQuery, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: active orders: %w", err)
	}
	orders, err := scanOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: active orders: %w", err)
	}
	return orders, nil
}

// ListOrders returns a page of the orders q keeps, oldest or newest created first, read in the
// order of migration 012's indexes, or against it.
func (s *Store) ListOrders(ctx context.Context, q ordercast.OrderQuery) ([]ordercast.Order, error) {
	orders, err := s.listOrders(ctx, q)
	return orders, s.health(err, storehealth.ProvesNothing)
}

func (s *Store) listOrders(ctx context.Context, q ordercast.OrderQuery) ([]ordercast.Order, error) {
	query, args := listOrdersQuery(q)
	rows, err := s.reads.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list orders: %w", err)
	}
	orders, err := scanOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list orders: %w", err)
	}
	return orders, nil
}

// listOrdersQuery is the read of one page of q: a range of one of migration 012's indexes, the
// restaurant's or every order's, in its order, with no sort. A status is judged on each order
// the range holds; but a status an order has only while it is active is asked of the active
// orders' indexes (migration 006) instead, and their few orders sorted: its orders are the
// newest few of a year's, and a range of every order found them after passing the rest.
//
// A customer's orders are read from the customer's party log instead, by its key (the
// CROSS JOIN keeps SQLite from turning the join around into a range of every order): every order
// the customer has that was not purged, a few entries each, sorted here.
func listOrdersQuery(q ordercast.OrderQuery) (string, []any) {
	index, where, args := "orders_created", []string{}, []any{}
	// Newest first is the same range read backwards.
	cmp, desc := ">", ""
	if q.Newest {
		cmp, desc = "<", " DESC"
	}
	if q.CustomerID != "" {
		args = append(args, ordercast.Party{Kind: ordercast.PartyCustomer, ID: q.CustomerID}.Key())
		where, args = append(where, "customer_id = ?"), append(args, q.CustomerID)
	}
	if q.RestaurantID != "" {
		index = "orders_restaurant_created"
		where, args = append(where, "restaurant_id = ?"), append(args, q.RestaurantID)
	}
	if q.Status != "" && !q.Status.Terminal() && q.CustomerID == "" {
		// What the status implies (the triggers of migration 013 keep it so), said in the terms
		// of the partial indexes, which SQLite matches literally.
		index, where = "orders_active", append(where, "active = 1")
		if q.RestaurantID != "" {
			index, where = "orders_restaurant_active", append(where, "restaurant_id <> ''")
		}
	}
	if q.After != nil {
		at := q.After.CreatedAt.UnixMicro()
		where, args = append(where, "(created_at, id) "+cmp+" (?, ?)"), append(args, at, q.After.ID)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, q.Since.UnixMicro())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, q.Until.UnixMicro())
	}
	if q.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(q.Status))
	}
	from := `orders INDEXED BY ` + index
	if q.CustomerID != "" {
		from = `(SELECT DISTINCT order_id FROM party_log WHERE party = ?) l CROSS JOIN orders ON id = l.order_id`
	}
	query := `SELECT ` + readColumns + ` FROM ` + from
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	return query + ` ORDER BY created_at` + desc + `, id` + desc + ` LIMIT ?`, append(args, q.Limit)
}

// findOrder reads one order, translating a missing row into ENotFound.
func findOrder(ctx context.Context, q queryer, id string) (ordercast.Order, error) {
	o, err := scanOrder(q.QueryRowContext(ctx, `SELECT `+readColumns+` FROM orders WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ordercast.Order{}, ordercast.Errorf(ordercast.ENotFound, "order %s not found", id)
	} else if err != nil {
		return ordercast.Order{}, fmt.Errorf("sqlite: find order %s: %w", id, err)
	}
	return o, nil
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

// scanOrders reads every order of rows, in their order (none is an empty list), and closes rows.
func scanOrders(rows *sql.Rows) ([]ordercast.Order, error) {
	defer rows.Close()
	orders := []ordercast.Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		orders = append(orders, o)
	}
	return orders, rows.Err()
}

// scanOrder reads the order columns and the place columns, then any columns after them into
// extra.
func scanOrder(row scanner, extra ...any) (ordercast.Order, error) {
	var (
		o                ordercast.Order
		status, details  string
		created, updated int64
		pickup, dropoff  *string
		erased           *int64
	)
	if err := row.Scan(append([]any{&o.ID, &status, &o.Version, &details, &created, &updated,
		&o.RestaurantID, &o.CustomerID, &o.CourierID, &o.CourierName, &pickup, &dropoff, &erased}, extra...)...); err != nil {
		return ordercast.Order{}, err
	}
	var err error
	if o.Pickup, err = column.ParsePoint(pickup); err != nil {
		return ordercast.Order{}, err
	}
	if o.Dropoff, err = column.ParsePoint(dropoff); err != nil {
		return ordercast.Order{}, err
	}
	o.Status = ordercast.Status(status)
	o.Details = column.Details([]byte(details))
	o.CreatedAt, o.UpdatedAt = fromMicros(created), fromMicros(updated)
	if erased != nil {
		at := fromMicros(*erased)
		o.ErasedAt = &at
	}
	return o, nil
}

func scanEvent(row scanner) (ordercast.Event, error) {
	var (
		ev           ordercast.Event
		status, kind string
		at           int64
	)
	if err := row.Scan(&ev.OrderID, &ev.Seq, &status, &at, &ev.Note, &ev.Actor, &kind, &ev.CourierID, &ev.CourierName); err != nil {
		return ordercast.Event{}, err
	}
	ev.Kind = ordercast.EventKind(kind)
	ev.Status = ordercast.Status(status)
	ev.At = fromMicros(at)
	return ev, nil
}
