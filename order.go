// Package ordercast is the domain of the ordercast service: orders, their statuses and the events
// that record each change. It does no I/O; every other package speaks its types.
package ordercast

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Status is the stage an order is in.
type Status string

// The stages of an order, in the order they are normally reached. Cancelled is reachable from any
// non-terminal stage; Delivered and Cancelled are terminal.
const (
	StatusPlaced         Status = "placed"
	StatusConfirmed      Status = "confirmed"
	StatusPreparing      Status = "preparing"
	StatusReady          Status = "ready"
	StatusOutForDelivery Status = "out_for_delivery"
	StatusDelivered      Status = "delivered"
	StatusCancelled      Status = "cancelled"
)

// Statuses lists every status, forward stages first, cancelled last.
var Statuses = []Status{
	StatusPlaced, StatusConfirmed, StatusPreparing, StatusReady,
	StatusOutForDelivery, StatusDelivered, StatusCancelled,
}

// rank orders the forward stages; cancelled has no rank because it is reached sideways.
var rank = map[Status]int{
	StatusPlaced: 1, StatusConfirmed: 2, StatusPreparing: 3, StatusReady: 4,
	StatusOutForDelivery: 5, StatusDelivered: 6, StatusCancelled: 0,
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	_, ok := rank[s]
	return ok
}

// Terminal reports whether an order in status s accepts no further change.
func (s Status) Terminal() bool {
	return s == StatusDelivered || s == StatusCancelled
}

// CheckTransition returns nil when an order may move from one status to another: forward to any
// later stage (skipping is allowed), or to cancelled from any non-terminal stage. Staying in the
// same status is not a transition; callers treat it as an idempotent no-op before asking.
func CheckTransition(from, to Status) error {
	if !to.Valid() {
		return Errorf(EInvalidStatus, "unknown status %q", to)
	}
	switch {
	case from.Terminal():
		return Errorf(EInvalidTransition, "order is %s and accepts no further change", from)
	case to == StatusCancelled:
		return nil
	case rank[to] <= rank[from]:
		return Errorf(EInvalidTransition, "cannot move from %s back to %s", from, to)
	}
	return nil
}

// Order is the current state of one order. Version is the seq of its latest event.
type Order struct {
	ID        string          `json:"id"`
	Status    Status          `json:"status"`
	Version   int64           `json:"version"`
	Details   json.RawMessage `json:"details"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Event records one status change of an order. Seq runs 1, 2, 3… per order with no holes; the
// first event of every order is its creation in status placed.
type Event struct {
	OrderID string    `json:"order_id"`
	Seq     int64     `json:"seq"`
	Status  Status    `json:"status"`
	At      time.Time `json:"at"`
	Note    string    `json:"note,omitempty"`
	Actor   string    `json:"actor,omitempty"`
}

// Limits on what a client may put in an order.
const (
	MaxIDLength      = 64
	MaxDetailsBytes  = 4 << 10
	MaxNoteLength    = 500
	MaxActorLength   = 128
	generatedIDBytes = 12
)

// NewOrder is a request to create an order. ID may be empty to have one generated.
type NewOrder struct {
	ID      string
	Details json.RawMessage
	Note    string
	Actor   string
}

// Normalize validates the request and puts it in canonical form: an ID (generated when empty)
// and details re-encoded with sorted keys, so that a repeated create can be compared byte for byte.
func (n NewOrder) Normalize() (NewOrder, error) {
	if n.ID == "" {
		n.ID = NewID()
	} else if err := ValidateID(n.ID); err != nil {
		return n, err
	}
	details, err := NormalizeDetails(n.Details)
	if err != nil {
		return n, err
	}
	n.Details = details
	if err := validateText("note", n.Note, MaxNoteLength); err != nil {
		return n, err
	}
	if err := validateText("actor", n.Actor, MaxActorLength); err != nil {
		return n, err
	}
	return n, nil
}

// Place returns the order n creates at time at, in status placed at version 1, and its first
// event. Stores call it, so that every store starts an order the same way.
func (n NewOrder) Place(at time.Time) (Order, Event) {
	at = at.UTC()
	o := Order{ID: n.ID, Status: StatusPlaced, Version: 1, Details: n.Details, CreatedAt: at, UpdatedAt: at}
	return o, Event{OrderID: o.ID, Seq: 1, Status: o.Status, At: at, Note: n.Note, Actor: n.Actor}
}

// StatusChange is a request to move an order to a new status. ExpectedVersion, when not zero, must
// equal the order's version for the change to apply (optimistic concurrency).
type StatusChange struct {
	OrderID         string
	Status          Status
	Note            string
	Actor           string
	ExpectedVersion int64
}

// Validate checks the request's own values; whether the transition is allowed is decided against
// the stored order.
func (c StatusChange) Validate() error {
	if err := ValidateID(c.OrderID); err != nil {
		return err
	}
	if !c.Status.Valid() {
		return Errorf(EInvalidStatus, "unknown status %q", c.Status)
	}
	if c.ExpectedVersion < 0 {
		return Errorf(EInvalid, "expected_version must not be negative")
	}
	if err := validateText("note", c.Note, MaxNoteLength); err != nil {
		return err
	}
	return validateText("actor", c.Actor, MaxActorLength)
}

// Apply decides what a status change does to order o. It returns changed=false for the idempotent
// repeat of the order's current status, which must not append an event: a retried request from a
// courier should succeed quietly. That check comes before the version check for the same reason
// (the retry carries the version the first attempt already moved past).
func (c StatusChange) Apply(o Order) (changed bool, err error) {
	if c.Status == o.Status {
		return false, nil
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != o.Version {
		return false, Errorf(EVersionConflict, "order %s is at version %d, not %d", o.ID, o.Version, c.ExpectedVersion)
	}
	if err := CheckTransition(o.Status, c.Status); err != nil {
		return false, err
	}
	return true, nil
}

// ValidateID checks a client-supplied order id: 1–64 characters of A-Z a-z 0-9 . _ : -.
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLength {
		return Errorf(EInvalidID, "order id must be 1 to %d characters", MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return Errorf(EInvalidID, "order id may contain only A-Z a-z 0-9 . _ : -")
		}
	}
	return nil
}

// NewID returns a random order id.
func NewID() string {
	var b [generatedIDBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "ord-" + hex.EncodeToString(b[:])
}

// NormalizeDetails checks that raw is a JSON object (or empty, meaning {}) within MaxDetailsBytes
// and returns it re-encoded canonically, with object keys sorted.
func NormalizeDetails(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	if len(raw) > MaxDetailsBytes {
		return nil, Errorf(EInvalidDetails, "details must be at most %d bytes", MaxDetailsBytes)
	}
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, Errorf(EInvalidDetails, "details must be a JSON object")
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode details: %w", err)
	}
	if len(out) > MaxDetailsBytes {
		return nil, Errorf(EInvalidDetails, "details must be at most %d bytes", MaxDetailsBytes)
	}
	return out, nil
}

func validateText(field, s string, max int) error {
	if len(s) > max {
		return Errorf(EInvalid, "%s must be at most %d bytes", field, max)
	}
	return nil
}

// Store is the system of record for orders and their events. Implementations must commit every
// write in one transaction (which may carry other writes: group commit, judged by Batch, so a
// refused write changes nothing), serialise changes to one order by its version, and announce
// each committed event (and only committed events) to their Publisher, in commit order.
type Store interface {
	// CreateOrder creates an order in status placed with event seq 1. A repeat with the same id and
	// details returns the existing order and created=false; different details are a conflict.
	CreateOrder(ctx context.Context, n NewOrder) (o Order, created bool, err error)
	// Order returns the current state of one order.
	Order(ctx context.Context, id string) (Order, error)
	// AppendStatus applies a status change. changed=false, with no event, for an idempotent repeat;
	// then ev is the order's latest event.
	AppendStatus(ctx context.Context, c StatusChange) (o Order, ev Event, changed bool, err error)
	// EventsAfter returns up to limit events of an order with seq > after, in seq order
	// (limit <= 0 means all). An unknown order is ENotFound.
	EventsAfter(ctx context.Context, orderID string, after int64, limit int) ([]Event, error)
	// ActiveOrders returns up to limit non-terminal orders, most recently updated first.
	ActiveOrders(ctx context.Context, limit int) ([]Order, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// Publisher receives every committed event. Publish must not block on slow consumers.
type Publisher interface {
	Publish(Event)
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(Event)

// Publish calls f(ev).
func (f PublisherFunc) Publish(ev Event) { f(ev) }
