package ordercast

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// OrderQuery asks for a page of orders (Store.ListOrders), oldest created first, as a point of
// sale rebuilding its day or reconciling it at the close reads them: every order, ended ones too,
// which no party stream's snapshot holds.
type OrderQuery struct {
	// RestaurantID keeps the orders of one restaurant; "" every order.
	RestaurantID string
	// CustomerID keeps the orders of one customer (an access request's export: admin and
	// system only); "" every order. The stores find them from the customer's party log, which
	// holds every order the customer has that was not purged, by its key: no scan of the orders.
	CustomerID string
	// Status keeps the orders at one status; "" every status.
	Status Status
	// Since and Until keep the orders created at or after Since and before Until; zero is no
	// bound.
	Since, Until time.Time
	// After starts the page after this order (the last of the page before); nil at the start.
	After *OrderCursor
	// Limit is the most orders returned, at least 1.
	Limit int
}

// OrderCursor is where a page of ListOrders ends: its last order's creation time and id, the
// order the orders are listed in (ids of one time byte by byte).
type OrderCursor struct {
	CreatedAt time.Time
	ID        string
}

// CursorOf is the cursor of the page that ends at order o.
func CursorOf(o Order) OrderCursor { return OrderCursor{CreatedAt: o.CreatedAt, ID: o.ID} }

// String is the cursor as a client holds it: opaque text safe in a URL, which ParseCursor reads.
func (c OrderCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + " " + c.ID))
}

// ParseCursor reads a cursor String made; anything else is EInvalid.
func ParseCursor(s string) (OrderCursor, error) {
	bad := Errorf(EInvalid, "cursor %s is not one this server gave: send the next of the page before, as it came", Quote(s))
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return OrderCursor{}, bad
	}
	at, id, ok := strings.Cut(string(b), " ")
	micros, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || ValidateID(id) != nil {
		return OrderCursor{}, bad
	}
	return OrderCursor{CreatedAt: time.UnixMicro(micros).UTC(), ID: id}, nil
}

// Validate checks a query: a known status, a range that is one, a limit.
func (q OrderQuery) Validate() error {
	switch {
	case q.Status != "" && !q.Status.Valid():
		return Errorf(EInvalidStatus, "unknown status %s", Quote(string(q.Status)))
	case q.RestaurantID != "" && ValidatePartyIDOf("restaurant_id", q.RestaurantID) != nil:
		return ValidatePartyIDOf("restaurant_id", q.RestaurantID)
	case q.CustomerID != "" && ValidatePartyIDOf("customer_id", q.CustomerID) != nil:
		return ValidatePartyIDOf("customer_id", q.CustomerID)
	case !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since):
		return Errorf(EInvalid, "until (%s) must be after since (%s)", q.Until.Format(time.RFC3339Nano), q.Since.Format(time.RFC3339Nano))
	case q.Limit < 1:
		return Errorf(EInvalid, "limit must be at least 1")
	}
	return nil
}
