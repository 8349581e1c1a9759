// Package ordercast is the domain of the ordercast service: orders, their statuses and the events
// that record each change. It does no I/O; every other package speaks its types.
package ordercast

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
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

// rank orders the forward stages. Cancelled, reached sideways from any of them, is in the map for
// Valid, at 0: it comes after no stage.
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
		return Errorf(EInvalidStatus, "unknown status %s", Quote(string(to)))
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
	ID      string          `json:"id"`
	Status  Status          `json:"status"`
	Version int64           `json:"version"`
	Details json.RawMessage `json:"details"`
	// RestaurantID is the restaurant the order is for, set at creation. Orders created before
	// ownership existed, or without one, have none: only admin, system and tracking see them.
	RestaurantID string `json:"restaurant_id,omitempty"`
	// CustomerID is the customer who placed the order, set at creation; optional.
	CustomerID string `json:"customer_id,omitempty"`
	// CourierID is the courier assigned now, if any (see CourierChange), and CourierName the
	// name its assignment gave it to show the order's parties, if any.
	CourierID   string `json:"courier_id,omitempty"`
	CourierName string `json:"courier_name,omitempty"`
	// Pickup and Dropoff are where the food is collected and delivered, when known: the courier's
	// distance and ETA are measured to Dropoff.
	Pickup    *Point    `json:"pickup,omitempty"`
	Dropoff   *Point    `json:"dropoff,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ErasedAt is when the order's customer data was erased (CustomerEraser), nil if never: its
	// details, customer and drop-off are gone since. An erasure is no change of the order (no
	// event, no new version, UpdatedAt stays), but its representation changed.
	ErasedAt *time.Time `json:"erased_at,omitempty"`
}

// EventKind says what an event records. The zero value is a status change, so that a status
// event's JSON is what it always was and old clients parse it unchanged.
type EventKind string

// The kinds of event.
const (
	KindStatus  EventKind = ""        // a status change (or the creation)
	KindCourier EventKind = "courier" // a courier assigned or unassigned; Status is unchanged
)

// Name is the kind as messages say it: "status" for KindStatus, whose value is empty.
func (k EventKind) Name() string {
	if k == KindStatus {
		return "status"
	}
	return string(k)
}

// Event records one change of an order. Seq runs 1, 2, 3… per order with no holes; the first
// event of every order is its creation in status placed. Status is the order's status after the
// event, whatever its kind.
type Event struct {
	OrderID string    `json:"order_id"`
	Seq     int64     `json:"seq"`
	Kind    EventKind `json:"kind,omitempty"`
	Status  Status    `json:"status"`
	// CourierID is the courier assigned by a courier event; empty there means unassigned.
	// CourierName is the name the assignment gave that courier, if any.
	CourierID   string    `json:"courier_id,omitempty"`
	CourierName string    `json:"courier_name,omitempty"`
	At          time.Time `json:"at"`
	Note        string    `json:"note,omitempty"`
	Actor       string    `json:"actor,omitempty"`
	// Marks are the event's positions in the logs of the parties it concerns, as the store
	// assigned them. They travel with the event to every node's hub; streams send them as ids,
	// never in an event's data.
	Marks Marks `json:"marks,omitempty"`
}

// Wire returns ev as it is sent to watchers: without its marks, which are the cursor of other
// parties' streams and none of a watcher's business.
func (ev Event) Wire() Event {
	ev.Marks = ""
	return ev
}

// Committed is when ev was committed, in Unix microseconds as the stores keep it; 0 when ev
// does not say. A stream, and a hub, check by it that a store still holds the event they sent
// under its seq or log position: a database that came back with less than it had (a failover
// that lost its last commits) may hold another change there.
func (ev Event) Committed() int64 {
	if ev.At.IsZero() {
		return 0
	}
	return ev.At.UnixMicro()
}

// Limits on what a client may put in an order.
const (
	MaxIDLength     = 64
	MaxDetailsBytes = 4 << 10
	MaxNoteLength   = 500
	MaxActorLength  = 128
	// MaxCourierNameLength bounds the name an assignment shows a courier by: a name, not a
	// biography.
	MaxCourierNameLength = 64
	generatedIDBytes     = 12
)

// NewOrder is a request to create an order. ID may be empty to have one generated.
type NewOrder struct {
	ID      string
	Details json.RawMessage
	// RestaurantID and CustomerID say whom the order belongs to; both may be empty.
	RestaurantID string
	CustomerID   string
	Note         string
	Actor        string
	// Pickup and Dropoff are where the food is collected and delivered, if known.
	Pickup, Dropoff *Point
	// Idem, when set, records the answer in the transaction of the creation's batch (see Idempotency
	// and Batch).
	Idem *Idempotency
}

// Normalize validates the request and puts it in the form stores keep: an ID (generated when
// empty) and details as given, compacted (see NormalizeDetails).
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
	for _, p := range []Party{{PartyRestaurant, n.RestaurantID}, {PartyCustomer, n.CustomerID}} {
		if p.ID != "" {
			if err := ValidatePartyIDOf(p.Kind.Field(), p.ID); err != nil {
				return n, err
			}
		}
	}
	for field, p := range map[string]*Point{"pickup.": n.Pickup, "dropoff.": n.Dropoff} {
		if p != nil {
			if err := p.Validate(field); err != nil {
				return n, err
			}
		}
	}
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
	o := Order{
		ID: n.ID, Status: StatusPlaced, Version: 1, Details: n.Details,
		RestaurantID: n.RestaurantID, CustomerID: n.CustomerID, Pickup: n.Pickup, Dropoff: n.Dropoff,
		CreatedAt: at, UpdatedAt: at,
	}
	return o, Event{OrderID: o.ID, Seq: 1, Status: o.Status, At: at, Note: n.Note, Actor: n.Actor}
}

// Matches reports whether an existing order is what n would create: the same details (by value),
// the same owners, and the same pickup and drop-off. A repeated create that matches returns the
// order (with a tracking token for it); one with other owners is another order under a taken id,
// and must not be handed someone else's.
func (n NewOrder) Matches(o Order) bool {
	return SameDetails(o.Details, n.Details) && o.RestaurantID == n.RestaurantID && o.CustomerID == n.CustomerID &&
		samePoint(o.Pickup, n.Pickup) && samePoint(o.Dropoff, n.Dropoff)
}

func samePoint(a, b *Point) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// StatusChange is a request to move an order to a new status. ExpectedVersion, when not zero, must
// equal the order's version for the change to apply (optimistic concurrency).
type StatusChange struct {
	OrderID         string
	Status          Status
	Note            string
	Actor           string
	ExpectedVersion int64
	// Owner, when set, must own the order (see Order.Owns) for the change to apply: checked in
	// the write's transaction, so a courier unassigned a moment ago cannot still deliver.
	Owner Party
	// NotBefore, when set, is the stage the order must have reached (it, or a later one) for the
	// change to apply: where the acting party's part of the order begins (a courier delivers
	// only what it picked up). Checked in the write's transaction, after Owner.
	NotBefore Status
	// Before, when set, is the stage from which the change no longer applies: where the acting
	// party's part of the order ends (a restaurant's at the pickup, when the courier has the
	// food). Checked in the write's transaction, as NotBefore is.
	Before Status
	// Idem, when set, records the answer in the transaction of the change's batch (see Idempotency
	// and Batch).
	Idem *Idempotency
}

// Validate checks the request's own values; whether the transition is allowed is decided against
// the stored order.
func (c StatusChange) Validate() error {
	if err := ValidateID(c.OrderID); err != nil {
		return err
	}
	switch {
	case c.Status == "":
		return Errorf(EInvalidStatus, "status is required")
	case !c.Status.Valid():
		return Errorf(EInvalidStatus, "unknown status %s", Quote(string(c.Status)))
	}
	if err := validateExpectedVersion(c.ExpectedVersion); err != nil {
		return err
	}
	if err := validateText("note", c.Note, MaxNoteLength); err != nil {
		return err
	}
	return validateText("actor", c.Actor, MaxActorLength)
}

func validateExpectedVersion(v int64) error {
	if v < 0 {
		return Errorf(EInvalid, "expected_version must not be negative")
	}
	return nil
}

// checkVersion is optimistic concurrency, for every kind of change: expected, when not zero,
// must be order o's version. A change checks it after its idempotent repeat, which a retry
// carrying the version its first attempt moved past must still be.
func checkVersion(expected int64, o Order) error {
	if expected != 0 && expected != o.Version {
		return &VersionConflict{Errorf(EVersionConflict, "order %s is at version %d, not %d", o.ID, o.Version, expected), o.Version}
	}
	return nil
}

// Apply decides what a status change does to order o. It returns changed=false for the idempotent
// repeat of the order's current status, which must not append an event: a retried request from a
// courier should succeed quietly. That check comes before the version check for the same reason
// (the retry carries the version the first attempt already moved past).
func (c StatusChange) Apply(o Order) (changed bool, err error) {
	if err := checkOwner(c.Owner, o); err != nil {
		return false, err
	}
	if c.Status == o.Status {
		return false, nil
	}
	if err := checkVersion(c.ExpectedVersion, o); err != nil {
		return false, err
	}
	if err := CheckTransition(o.Status, c.Status); err != nil {
		return false, err
	}
	if c.NotBefore != "" && rank[o.Status] < rank[c.NotBefore] {
		return false, Errorf(EInvalidTransition, "order is %s: it must be %s or later before it can be %s", o.Status, c.NotBefore, c.Status)
	}
	if c.Before != "" && rank[o.Status] >= rank[c.Before] {
		return false, Errorf(EInvalidTransition, "order is %s: from %s on it can be %s only by dispatch (an admin or system token)", o.Status, c.Before, c.Status)
	}
	return true, nil
}

// ValidateID checks a client-supplied order id: 1–64 characters of A-Z a-z 0-9 . _ : -, and
// neither . nor ..
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLength {
		return Errorf(EInvalidID, "order id must be 1 to %d characters", MaxIDLength)
	}
	if id == "." || id == ".." {
		// URL paths resolve these away: such an order could never be reached.
		return Errorf(EInvalidID, "order id must not be . or ..")
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

func validateText(field, s string, max int) error {
	if len(s) > max {
		return Errorf(EInvalid, "%s must be at most %d bytes", field, max)
	}
	// PostgreSQL's text cannot hold NUL nor anything not UTF-8; refuse them here so both stores
	// answer 422, and no batch fails for one write's text.
	if strings.ContainsRune(s, 0) {
		return Errorf(EInvalid, "%s must not contain NUL", field)
	}
	if !utf8.ValidString(s) {
		return Errorf(EInvalid, "%s must be UTF-8", field)
	}
	return nil
}
