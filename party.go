package ordercast

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// PartyKind is the kind of party an order belongs to.
type PartyKind string

// The kinds of party. An order has one restaurant (set at creation), at most one customer (set at
// creation) and at most one courier at a time (assigned and changed by dispatch).
const (
	PartyRestaurant PartyKind = "restaurant"
	PartyCourier    PartyKind = "courier"
	PartyCustomer   PartyKind = "customer"
)

// Field is the name of the Order field (in JSON, and the stores' column) that names an order's
// party of kind k; "" for an unknown kind.
func (k PartyKind) Field() string {
	switch k {
	case PartyRestaurant:
		return "restaurant_id"
	case PartyCustomer:
		return "customer_id"
	case PartyCourier:
		return "courier_id"
	}
	return ""
}

// Party is one restaurant, courier or customer: whoever a party stream follows.
type Party struct {
	Kind PartyKind
	ID   string
}

// Valid reports whether p names a known kind and a well-formed id.
func (p Party) Valid() bool {
	switch p.Kind {
	case PartyRestaurant, PartyCourier, PartyCustomer:
		return ValidatePartyID(p.ID) == nil
	}
	return false
}

// Key is how a party is stored in its log and keyed in the hub: "restaurant:r-1".
func (p Party) Key() string { return string(p.Kind) + ":" + p.ID }

// ParsePartyKey is the inverse of Key.
func ParsePartyKey(key string) (Party, bool) {
	kind, id, ok := strings.Cut(key, ":")
	p := Party{Kind: PartyKind(kind), ID: id}
	return p, ok && p.Valid()
}

// ValidatePartyID checks a restaurant, courier or customer id that comes in with no field name (a
// URL path, a token, a flag); ValidatePartyIDOf holds the rule.
func ValidatePartyID(id string) error { return ValidatePartyIDOf("party id", id) }

// ValidatePartyIDOf checks a restaurant, courier or customer id sent in field (restaurant_id,
// courier_id…), and names the field when refusing it: a request may carry two party ids, and a
// message that does not say which was wrong leaves its sender guessing. The rule is an order id's
// alphabet and length, since ids of parties appear in the same URL paths. A bad one is EInvalid,
// not EInvalidID: that code names a bad order id. Checking before a store also keeps out what
// PostgreSQL refuses outright (a NUL, invalid UTF-8), which would fail a whole batch's read.
func ValidatePartyIDOf(field, id string) error {
	if err := ValidateID(id); err != nil {
		return Errorf(EInvalid, "%s must be 1 to %d characters of A-Z a-z 0-9 . _ : -", field, MaxIDLength)
	}
	return nil
}

// Owns reports whether order o is in party p's scope now: the order's restaurant, its customer,
// or its currently assigned courier.
func (o Order) Owns(p Party) bool {
	if p.ID == "" {
		return false
	}
	switch p.Kind {
	case PartyRestaurant:
		return o.RestaurantID == p.ID
	case PartyCustomer:
		return o.CustomerID == p.ID
	case PartyCourier:
		return o.CourierID == p.ID
	}
	return false
}

// ReadableByCourier refuses order o to a read authorized as courier courierID's ("" for a reader
// that is no courier, which it does not concern) once the order is no longer that courier's. A
// courier reads an order, its history included, only while it carries it; of the events that
// follow such a read, it reads those before one that takes the order from it (Event.TakesFrom).
func (o Order) ReadableByCourier(courierID string) error {
	if courierID == "" || o.Owns(Party{Kind: PartyCourier, ID: courierID}) {
		return nil
	}
	return Errorf(EForbidden, "order %s is no longer assigned to courier %s", o.ID, courierID)
}

// Parties lists the parties order o belongs to now.
func (o Order) Parties() []Party {
	var ps []Party
	if o.RestaurantID != "" {
		ps = append(ps, Party{PartyRestaurant, o.RestaurantID})
	}
	if o.CustomerID != "" {
		ps = append(ps, Party{PartyCustomer, o.CustomerID})
	}
	if o.CourierID != "" {
		ps = append(ps, Party{PartyCourier, o.CourierID})
	}
	return ps
}

// Marks are an event's positions in the logs of the parties it concerns, as
// "restaurant:r-1=12 courier:c-7=3": in each, the event is the n-th event of that party's scope.
// Positions run 1, 2, 3… per party with no holes, in commit order, because stores assign them
// under a per-party lock held until the write commits; they are the cursor of party streams. A
// string, so that an Event stays comparable.
type Marks string

// With returns m with the position of party key added.
func (m Marks) With(key string, pos int64) Marks {
	entry := key + "=" + strconv.FormatInt(pos, 10)
	if m == "" {
		return Marks(entry)
	}
	return m + " " + Marks(entry)
}

// All yields each party key m has a position for, with the position (0 for a malformed mark,
// which is no mark), in m's order.
func (m Marks) All() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		for entry := range strings.FieldsSeq(string(m)) {
			if !yield(mark(entry)) {
				return
			}
		}
	}
}

// Pos returns the position in party key's log, or 0 when the event is not in that log.
// It scans m in place: every watcher of a party reads it for every event of the party.
func (m Marks) Pos(key string) int64 {
	for entry := range strings.FieldsSeq(string(m)) {
		if k, n := mark(entry); k == key {
			return n
		}
	}
	return 0
}

// Parties returns the keys of the parties m has a position for (nil for none).
func (m Marks) Parties() []string {
	n := 0
	for range strings.FieldsSeq(string(m)) {
		n++
	}
	if n == 0 {
		return nil
	}
	keys := make([]string, 0, n)
	for k := range m.All() {
		keys = append(keys, k)
	}
	return keys
}

// mark splits one entry of Marks into the party's key and the position, 0 when malformed.
func mark(entry string) (key string, pos int64) {
	k, v, _ := strings.Cut(entry, "=")
	n, _ := strconv.ParseInt(v, 10, 64)
	return k, n
}

// LogParties returns the keys of the party logs an event of order o belongs in, sorted (stores
// lock them in this order, so two writers never wait on each other in a cycle). before is the
// order as it was before the event: an order that leaves a courier (reassigned, unassigned) is
// logged to that courier too, so its stream learns the order left.
func LogParties(before, after Order) []string {
	var keys []string
	for _, p := range after.Parties() {
		keys = append(keys, p.Key())
	}
	if before.CourierID != "" && before.CourierID != after.CourierID {
		keys = append(keys, Party{PartyCourier, before.CourierID}.Key())
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// SeenBy returns the event as party p may read it in its stream. The courier an order leaves
// gets the assignment that took it away (LogParties), so that its stream learns the order left,
// but nothing of the order after that: not whom it went to, nor the note, nor who moved it. It
// reads the event as an unassignment. Nor does a courier that has the order (again) learn from
// its history who else had it: a change another courier made reads without its note or actor.
// Every other party reads the event whole.
func (ev Event) SeenBy(p Party) Event {
	if p.Kind != PartyCourier {
		return ev
	}
	if ev.TakesFrom(p.ID) {
		ev.CourierID, ev.CourierName, ev.Note, ev.Actor = "", "", "", ""
	} else if by, ok := ParsePartyKey(ev.Actor); ok && by.Kind == PartyCourier && by.ID != p.ID {
		ev.Note, ev.Actor = "", ""
	}
	return ev
}

// TakesFrom reports whether the event gives the order to another courier than courierID, or
// to none: after it the order is no longer courierID's to read (Owns).
func (ev Event) TakesFrom(courierID string) bool {
	return ev.Kind == KindCourier && ev.CourierID != courierID
}

// CourierChange assigns a courier to an order, or unassigns it (CourierID ""). It is an event in
// the order's history with its own seq; the status does not change.
type CourierChange struct {
	OrderID   string
	CourierID string
	// CourierName, optional, is the name the order's parties see the courier by ("Omar is on
	// the way"), kept with the assignment: the history says whom the order went to as it was
	// said then. Only an assignment has one.
	CourierName string
	Note        string
	Actor       string
	// Owner, when set, must own the order (see Order.Owns) for the change to apply: the check
	// is made in the write's transaction, so it cannot race a change of ownership.
	Owner Party
	// Before, when set, is the stage from which the change no longer applies: a party chooses
	// an order's courier only before the order shows its courier's position, so that the
	// courier itself moves the order there (a pickup). Without it a restaurant could hand an
	// order already out for delivery to any courier it names, and follow that courier wherever
	// it went. Nor may it take the courier away from then on: the courier has the food, and an
	// order out for delivery with no courier is one nobody but dispatch can deliver.
	Before Status
	// ExpectedVersion, when not zero, must be the order's version for the change to apply, as
	// for a StatusChange: a retried assignment cannot undo one dispatch made meanwhile.
	ExpectedVersion int64
}

// Validate checks the request's own values.
func (c CourierChange) Validate() error {
	if err := ValidateID(c.OrderID); err != nil {
		return err
	}
	if c.CourierID != "" {
		if err := ValidatePartyIDOf(PartyCourier.Field(), c.CourierID); err != nil {
			return err
		}
	}
	if err := c.validateName(); err != nil {
		return err
	}
	if err := validateExpectedVersion(c.ExpectedVersion); err != nil {
		return err
	}
	if err := validateText("note", c.Note, MaxNoteLength); err != nil {
		return err
	}
	return validateText("actor", c.Actor, MaxActorLength)
}

// validateName checks the courier's name: one line of text that shows something, and only on an
// assignment (an unassignment names nobody).
func (c CourierChange) validateName() error {
	const field = "courier_name"
	switch {
	case c.CourierName == "":
		return nil
	case c.CourierID == "":
		return Errorf(EInvalid, "%s names the courier assigned; an unassignment (courier_id null) has none", field)
	case strings.TrimFunc(c.CourierName, invisible) == "":
		return Errorf(EInvalid, "%s must not be blank; leave it out for none", field)
	case strings.ContainsFunc(c.CourierName, breaksLine):
		return Errorf(EInvalid, "%s must be one line of text, without control characters", field)
	case strings.ContainsFunc(c.CourierName, reorders):
		return Errorf(EInvalid, "%s must not hold bidirectional embeddings, overrides or isolates (U+202A to U+202E, U+2066 to U+2069), which reorder the text shown after it", field)
	}
	return validateText(field, c.CourierName, MaxCourierNameLength)
}

// invisible reports whether r shows nothing: a space, a format character such as a zero-width
// space, a character Unicode has a renderer ignore (a variation selector, a Hangul filler, the
// combining grapheme joiner), or the blank braille cell. A name of nothing else is blank.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || r == '\u2800' ||
		unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// reorders reports whether r is a bidirectional embedding, override or isolate: in a name shown
// beside other text ("Omar (c-7)" on a board) it would reorder what follows it. The marks a
// right-to-left name may need (U+200E, U+200F) and joiners (U+200C, U+200D) are left alone.
func reorders(r rune) bool {
	return r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// breaksLine reports whether r has no place in one line of text: a control character, or a
// line or paragraph separator (U+2028, U+2029), which is no control character but ends a line.
func breaksLine(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp)
}

// MaxOrderVersion is the most events one order holds: its version never passes it. Every read
// of one order (a stream's opening or resume, a page of its history) is bounded by it, so that
// no writer can make an order whose history costs every reader megabytes. Status events are
// bounded by the state machine; courier changes, which a restaurant may repeat at will
// (alternating two couriers), are refused past maxCourierVersion. 128 leaves room for about 120
// reassignments, far beyond any real delivery.
const MaxOrderVersion = 128

// laterStatusEvents is the most status events an order may get after its creation: one per
// stage after placed, as the state machine moves only forward and cancelled ends it.
const laterStatusEvents = 5

// maxCourierVersion is the highest version at which an order still takes a courier change. It
// keeps room under MaxOrderVersion for every status event the order may still get, so the cap
// never stops an order from being delivered or cancelled.
const maxCourierVersion = MaxOrderVersion - laterStatusEvents - 1

// maxPartyCourierVersion is the highest version at which a party (a restaurant) still changes an
// order's courier itself; past it only dispatch does. A restaurant alternating two couriers
// would otherwise use up the order's room for courier changes (maxCourierVersion) and leave
// dispatch unable to reassign it, each change an event on a courier's own stream. About 25
// changes, far beyond a real kitchen, with room for about 90 of dispatch's after them.
const maxPartyCourierVersion = 32

// Apply decides what the assignment does to order o: changed=false for the idempotent repeat of
// the current courier, whatever name it gives (a courier keeps the name it was assigned under:
// a new name is no reason for an event that every tracker of the order would read as the order
// changing hands). A terminal order keeps its courier, and an order whose history is full
// (maxCourierVersion; for a change a party makes, maxPartyCourierVersion) takes no further change
// of courier.
func (c CourierChange) Apply(o Order) (changed bool, err error) {
	if err := checkOwner(c.Owner, o); err != nil {
		return false, err
	}
	if c.CourierID == o.CourierID {
		return false, nil
	}
	if err := checkVersion(c.ExpectedVersion, o); err != nil {
		return false, err
	}
	if o.Status.Terminal() {
		return false, Errorf(EInvalidTransition, "order is %s and accepts no further change", o.Status)
	}
	if c.Before != "" && rank[o.Status] >= rank[c.Before] {
		if c.CourierID == "" {
			return false, Errorf(EInvalidTransition, "order is %s: its courier can be taken away only before %s (from then on the courier has the food), except by dispatch (an admin or system token)", o.Status, c.Before)
		}
		return false, Errorf(EInvalidTransition, "order is %s: its courier can be chosen only before %s (from then on its courier's position is shown), except by dispatch (an admin or system token)", o.Status, c.Before)
	}
	if o.Version > maxCourierVersion {
		return false, Errorf(ETooManyAssignments, "order %s has had as many courier changes as one order may; its status can still change", o.ID)
	}
	if c.Owner.Kind != "" && o.Version > maxPartyCourierVersion {
		return false, Errorf(ETooManyAssignments, "order %s has had as many courier changes as its %s may make; dispatch (an admin or system token) may still reassign it, and its status can still change", o.ID, c.Owner.Kind)
	}
	return true, nil
}

// Event returns the event that records the assignment on order o, at its new version.
func (c CourierChange) Event(o Order) Event {
	return Event{
		OrderID: o.ID, Seq: o.Version, Kind: KindCourier, Status: o.Status,
		CourierID: o.CourierID, CourierName: o.CourierName, At: o.UpdatedAt, Note: c.Note, Actor: c.Actor,
	}
}

// checkOwner refuses a change made for a party that does not own the order. The message says
// nothing about the order: the caller may not read it.
func checkOwner(owner Party, o Order) error {
	if owner.Kind == "" || o.Owns(owner) {
		return nil
	}
	return Errorf(EForbidden, "the order does not belong to this %s; no change was made", owner.Kind)
}

// ScopeSnapshot is a party's scope as read at one moment: its active orders and the position of
// the last event in its log then. A stream starts with it; every later event has a higher Pos.
type ScopeSnapshot struct {
	Orders []Order
	Pos    int64
}

// ScopedEvent is an event read from a party's log, with its position there.
type ScopedEvent struct {
	Event
	Pos int64
}

// ScopeReader reads party logs. Stores implement it alongside Store.
type ScopeReader interface {
	// ScopeSnapshot returns the party's active orders (up to limit, most recently updated first;
	// limit <= 0 means all) and its log position, read in one consistent snapshot.
	ScopeSnapshot(ctx context.Context, p Party, limit int) (ScopeSnapshot, error)
	// ScopeEventsAfter returns up to limit events of the party's log with position > after, in
	// position order (limit <= 0 means all). Their positions follow each other with no gap. When
	// entries after `after` were deleted with their orders (Purger), it returns ErrLogPurged.
	ScopeEventsAfter(ctx context.Context, p Party, after int64, limit int) ([]ScopedEvent, error)
	// ScopeLogBounds returns where the party's log stands: its last position, and the position
	// up to which it was purged (0 for none). Two lookups by key, however long the log: a stream
	// learns from them that it is too far behind to resume before it reads what it missed.
	ScopeLogBounds(ctx context.Context, p Party) (LogBounds, error)
}

// LogBounds is where a party's log stands (ScopeReader.ScopeLogBounds). Head is its last
// position (0 for a party with none); the entries up to Purged were deleted with their ended
// orders, and a stream at a position below Purged cannot resume (ErrLogPurged).
type LogBounds struct {
	Head, Purged int64
}

// ErrLogPurged is ScopeEventsAfter's answer for a position the party's log can no longer
// continue from: entries after it were deleted with their orders, which had ended longer ago
// than the store keeps them (Purger). A stream that far behind opens with a fresh snapshot, as
// one too many events behind does.
var ErrLogPurged = errors.New("entries of the party's log after this position were purged with their ended orders")
