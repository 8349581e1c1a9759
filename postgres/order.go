package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/column"
)

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
// order when the same id is created again with the same value of details. It joins the writer's
// next batch, whose commit announces it with pg_notify.
//
// A database that is away fails it with EUnavailable (the batch's commit is judged once, in
// commitBatch); with n.Idem, its answer is recorded in the batch's transaction (see Batch).
func (s *Store) CreateOrder(ctx context.Context, n ordercast.NewOrder) (ordercast.Order, bool, error) {
	return s.batches.CreateOrder(ctx, n)
}

// Order returns the current state of one order.
func (s *Store) Order(ctx context.Context, id string) (o ordercast.Order, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		o, err = findOrder(ctx, s.pool, id)
		return err
	})
	return o, err
}

// AppendStatus applies a status change in the writer's next batch: the order's row is locked,
// the domain's StatusChange decides whether and how it moves (seeing the writes before it in the
// batch), the store bumps the version, appends the event and announces it with the batch's
// pg_notify, which PostgreSQL delivers only if the transaction commits.
func (s *Store) AppendStatus(ctx context.Context, c ordercast.StatusChange) (ordercast.Order, ordercast.Event, bool, error) {
	return s.batches.AppendStatus(ctx, c)
}

// AppendStatuses applies status changes in their order, together, in the writer's next
// batches (as many as its bound takes), each batch announced with its one pg_notify.
func (s *Store) AppendStatuses(ctx context.Context, cs []ordercast.StatusChange) []ordercast.WriteResult {
	return s.batches.AppendStatuses(ctx, cs)
}

// AssignCourier applies a courier change in the writer's next batch, as an event of its own
// announced like a status change.
func (s *Store) AssignCourier(ctx context.Context, c ordercast.CourierChange) (ordercast.Order, ordercast.Event, bool, error) {
	return s.batches.AssignCourier(ctx, c)
}

// EventsAfter returns up to limit events of an order with seq > after, in seq order; limit <= 0
// means all.
func (s *Store) EventsAfter(ctx context.Context, orderID string, after int64, limit int) (evs []ordercast.Event, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		evs, err = s.eventsAfter(ctx, orderID, after, limit)
		return err
	})
	return evs, err
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
		// Only an empty answer needs the existence check, asked outside the query's snapshot:
		// an order deleted in between (--retention purges ended ones) is not found, which it
		// now is.
		if _, err := findOrder(ctx, s.pool, orderID); err != nil {
			return nil, err
		}
		return []ordercast.Event{}, nil
	}
	return events, nil
}

// LastEvent returns an order's latest event of the kind with seq < before.
func (s *Store) LastEvent(ctx context.Context, orderID string, kind ordercast.EventKind, before int64) (ev ordercast.Event, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		ev, err = s.lastEvent(ctx, orderID, kind, before)
		return err
	})
	return ev, err
}

func (s *Store) lastEvent(ctx context.Context, orderID string, kind ordercast.EventKind, before int64) (ordercast.Event, error) {
	// The primary key (order_id, seq), walked backwards: no row of the history is loaded but
	// the one returned.
	ev, err := scanEvent(s.pool.QueryRow(ctx, `
		SELECT `+eventColumns+` FROM order_events
		WHERE order_id = $1 AND seq < $2 AND kind = $3 ORDER BY seq DESC LIMIT 1`, orderID, before, string(kind)))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := findOrder(ctx, s.pool, orderID); err != nil {
			return ordercast.Event{}, err
		}
		return ordercast.Event{}, ordercast.Errorf(ordercast.ENotFound, "order %s has no %s event before seq %d", orderID, kind.Name(), before)
	} else if err != nil {
		return ordercast.Event{}, fmt.Errorf("postgres: last %s event of %s: %w", kind.Name(), orderID, err)
	}
	return ev, nil
}

// LatestEvents returns the latest event of each of the given orders that exists, in one query.
// A listener that lost its connection uses it to catch up every watched order at once.
func (s *Store) LatestEvents(ctx context.Context, orderIDs []string) (evs []ordercast.Event, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		evs, err = s.latestEvents(ctx, orderIDs)
		return err
	})
	return evs, err
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

// activeOrdersQuery reads the first entries of the orders_active partial index, in its order,
// with no sort (migration 007): the read of the newest few costs the same however many are
// active. Orders created in one batch share created_at and are listed by id byte by byte, as
// SQLite lists them, whatever the database's collation (migration 009).
const activeOrdersQuery = `
	SELECT ` + readColumns + ` FROM orders
	WHERE active
	ORDER BY created_at DESC, id COLLATE "C" LIMIT $1`

// ActiveOrders returns up to limit non-terminal orders, newest first; limit <= 0 means all.
func (s *Store) ActiveOrders(ctx context.Context, limit int) (orders []ordercast.Order, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		orders, err = s.activeOrders(ctx, limit)
		return err
	})
	return orders, err
}

func (s *Store) activeOrders(ctx context.Context, limit int) ([]ordercast.Order, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, activeOrdersQuery, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: active orders: %w", err)
	}
	orders, err := collectOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: active orders: %w", err)
	}
	return orders, nil
}

// ListOrders returns a page of the orders q keeps, oldest or newest created first, read in the
// order of migration 012's indexes, or against it.
func (s *Store) ListOrders(ctx context.Context, q ordercast.OrderQuery) (orders []ordercast.Order, err error) {
	err = s.read(ctx, func(ctx context.Context) (err error) {
		orders, err = s.listOrders(ctx, q)
		return err
	})
	return orders, err
}

func (s *Store) listOrders(ctx context.Context, q ordercast.OrderQuery) ([]ordercast.Order, error) {
	query, args := listOrdersQuery(q)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list orders: %w", err)
	}
	orders, err := collectOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list orders: %w", err)
	}
	return orders, nil
}

// listOrdersQuery is the read of one page of q: a range of one of migration 012's indexes, the
// restaurant's or every order's, in its order (ids byte by byte, migration 009), with no sort. A
// status is judged on each order the range holds; but a status an order has only while it is
// active is asked of the active orders' indexes (migration 006) instead, and their few orders
// sorted: its orders are the newest few of a year's, and a range of every order found them
// after passing the rest (2.8 s at 1,000,000 orders).
func listOrdersQuery(q ordercast.OrderQuery) (string, []any) {
	var where []string
	var args []any
	arg := func(cond string, v ...any) {
		for i := range v {
			cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)+i+1), 1)
		}
		where, args = append(where, cond), append(args, v...)
	}
	if q.CustomerID != "" {
		// The customer's orders are read from the customer's party log, by its key: every order
		// the customer has that was not purged, a few entries each, sorted here.
		arg("id IN (SELECT order_id FROM party_log WHERE party = ?)", ordercast.Party{Kind: ordercast.PartyCustomer, ID: q.CustomerID}.Key())
		arg("customer_id = ?", q.CustomerID)
	}
	if q.RestaurantID != "" {
		arg("restaurant_id = ?", q.RestaurantID)
	}
	// Newest first is the same range read backwards.
	cmp, desc := ">", ""
	if q.Newest {
		cmp, desc = "<", " DESC"
	}
	if q.After != nil {
		arg(`(created_at, id COLLATE "C") `+cmp+` (?, ?)`, q.After.CreatedAt, q.After.ID)
	}
	if !q.Since.IsZero() {
		arg("created_at >= ?", q.Since)
	}
	if !q.Until.IsZero() {
		arg("created_at < ?", q.Until)
	}
	if q.Status != "" {
		arg("status = ?", string(q.Status))
		if !q.Status.Terminal() && q.CustomerID == "" {
			// What the status implies (the trigger of migration 006 keeps it so), said in the
			// terms of the partial indexes, which the planner matches literally.
			arg("active")
			if q.RestaurantID != "" {
				arg("restaurant_id <> ''")
			}
		}
	}
	query := `SELECT ` + readColumns + ` FROM orders`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, q.Limit)
	return query + ` ORDER BY created_at` + desc + `, id COLLATE "C"` + desc + ` LIMIT $` + strconv.Itoa(len(args)), args
}

// collectOrders reads every order of rows, in their order (none is an empty list), and closes
// rows.
func collectOrders(rows pgx.Rows) ([]ordercast.Order, error) {
	orders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ordercast.Order, error) { return scanOrder(r) })
	if orders == nil && err == nil {
		orders = []ordercast.Order{}
	}
	return orders, err
}

// querier is what the pool and a transaction share, so lookups work inside and outside one.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// findOrder reads one order, translating a missing row into ENotFound.
func findOrder(ctx context.Context, q querier, id string) (ordercast.Order, error) {
	o, err := scanOrder(q.QueryRow(ctx, `SELECT `+readColumns+` FROM orders WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return ordercast.Order{}, ordercast.Errorf(ordercast.ENotFound, "order %s not found", id)
	} else if err != nil {
		return ordercast.Order{}, fmt.Errorf("postgres: find order %s: %w", id, err)
	}
	return o, nil
}

// scanOrder reads the order columns and the place columns, then any columns after them into
// extra.
func scanOrder(row pgx.Row, extra ...any) (ordercast.Order, error) {
	var (
		o       ordercast.Order
		status  string
		details string
		pickup  *string
		dropoff *string
	)
	if err := row.Scan(append([]any{&o.ID, &status, &o.Version, &details, &o.CreatedAt, &o.UpdatedAt,
		&o.RestaurantID, &o.CustomerID, &o.CourierID, &o.CourierName, &pickup, &dropoff, &o.ErasedAt}, extra...)...); err != nil {
		return ordercast.Order{}, err
	}
	var err error
	if o.Pickup, err = column.ParsePoint(pickup); err != nil {
		return ordercast.Order{}, err
	}
	if o.Dropoff, err = column.ParsePoint(dropoff); err != nil {
		return ordercast.Order{}, err
	}
	o.Status, o.Details = ordercast.Status(status), column.Details([]byte(details))
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	if o.ErasedAt != nil {
		at := o.ErasedAt.UTC()
		o.ErasedAt = &at
	}
	return o, nil
}

func scanEvent(row pgx.Row) (ordercast.Event, error) {
	var (
		ev           ordercast.Event
		status, kind string
	)
	if err := row.Scan(&ev.OrderID, &ev.Seq, &status, &ev.At, &ev.Note, &ev.Actor, &kind, &ev.CourierID, &ev.CourierName); err != nil {
		return ordercast.Event{}, err
	}
	ev.Status, ev.At, ev.Kind = ordercast.Status(status), ev.At.UTC(), ordercast.EventKind(kind)
	return ev, nil
}
