package ordercast

import (
	"context"
	"time"
)

// Store is the system of record for orders and their events. Implementations must commit every
// write, with its idempotency answer, in one transaction (which may carry other writes: group
// commit, judged by Batch, so a refused write changes nothing), serialise changes to one order by
// its version, and announce each committed event (and only committed events) in commit order:
// to their Publisher, or on their bus (PostgreSQL's pg_notify, heard by its Listener).
type Store interface {
	// CreateOrder creates an order in status placed with event seq 1. A repeat with the same id and
	// details returns the existing order and created=false; different details are a conflict.
	CreateOrder(ctx context.Context, n NewOrder) (o Order, created bool, err error)
	// Order returns the current state of one order.
	Order(ctx context.Context, id string) (Order, error)
	// AppendStatus applies a status change. changed=false, with no event, for an idempotent repeat;
	// then ev is the order's latest event.
	AppendStatus(ctx context.Context, c StatusChange) (o Order, ev Event, changed bool, err error)
	// AppendStatuses applies status changes in their order, as AppendStatus applies each, taken
	// together: as few transactions as the batch bound allows, a later change of an order seeing
	// the earlier ones. One result per change; a change that breaks a rule fails alone.
	AppendStatuses(ctx context.Context, cs []StatusChange) []WriteResult
	// AssignCourier applies a courier change, an event with its own seq. changed=false, with no
	// event, for an idempotent repeat; then ev is the order's latest event.
	AssignCourier(ctx context.Context, c CourierChange) (o Order, ev Event, changed bool, err error)
	// EventsAfter returns up to limit events of an order with seq > after, in seq order
	// (limit <= 0 means all). An unknown order is ENotFound.
	EventsAfter(ctx context.Context, orderID string, after int64, limit int) ([]Event, error)
	// LastEvent returns an order's latest event of the kind with seq < before, in one read
	// however many events of the other kind follow it. An unknown order, or none, is ENotFound.
	LastEvent(ctx context.Context, orderID string, kind EventKind, before int64) (Event, error)
	// ActiveOrders returns up to limit non-terminal orders, newest (most recently created) first:
	// the order in which a console lists them as they come, so that a snapshot after a
	// reconnect lays the rows out as they were.
	ActiveOrders(ctx context.Context, limit int) ([]Order, error)
	// ListOrders returns up to q.Limit orders that q keeps, oldest created first (ids of one
	// time byte by byte), after q.After: a page of every order, ended ones too.
	ListOrders(ctx context.Context, q OrderQuery) ([]Order, error)
	// CouriersOrders returns the active orders assigned to each of the couriers, keyed by courier
	// (one with none is left out), in one read however many couriers are asked for: a batch of
	// positions names up to a thousand couriers.
	CouriersOrders(ctx context.Context, courierIDs []string) (map[string][]Order, error)
	// EraseCustomer removes the personal data of a customer's ended orders (an erasure
	// request), in one transaction; see Erasure.
	CustomerEraser
	// IdempotentAnswer finds the answer recorded for a request's idempotency key.
	IdempotencyStore
	// ScopeReader reads the party logs that party streams resume from.
	ScopeReader
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// Purger is a Store that deletes orders that ended long ago (both stores; internal/retention
// runs it).
type Purger interface {
	// PurgeEnded deletes up to limit orders that ended (delivered or cancelled) before
	// endedBefore, those that ended first first, with their events and their entries in the
	// party logs, in one transaction, and returns how many it deleted. Orders in progress are
	// never touched. Each party log that lost entries remembers the highest position it lost:
	// ScopeEventsAfter from a position below it is ErrLogPurged, so no reader ever meets a gap.
	PurgeEnded(ctx context.Context, endedBefore time.Time, limit int) (int, error)
}

// StampClock is a Store that stamps events (Event.At) on a clock other than this process's:
// PostgreSQL's, which every node shares. A time measured from a stamp on this node's own clock
// (the delivery latency) carried the two clocks' offset: a database five seconds ahead made
// every delivery take -5 s, and an alert on its p99 could never fire.
type StampClock interface {
	// StampNow is the store's clock now, as this node reckons it.
	StampNow() time.Time
}

// KeyPurger is a Store that deletes expired idempotency records (both stores). A batch that
// records answers deletes a few (ExpiredKeysToPurge), but only as long as keyed writes come;
// internal/retention runs this on every node, so that each record, which holds an order's answer
// (its details and drop-off), goes soon after it expires whatever the traffic.
type KeyPurger interface {
	// PurgeExpiredKeys deletes up to limit idempotency records that expired at or before now
	// (Idempotency.Expires), in one transaction, and returns how many it deleted. It never
	// waits for a record another transaction holds, which is left to the next call.
	PurgeExpiredKeys(ctx context.Context, now time.Time, limit int) (int, error)
}

// Publisher receives every committed event. Publish must not block on slow consumers.
type Publisher interface {
	Publish(Event)
}
