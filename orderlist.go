package ordercast

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// OrderQuery asks for a page of orders (Store.ListOrders), oldest created first, as a point of
// sale rebuilding its day or reconciling it at the close reads them: every order, ended ones too,
// which no party stream's snapshot holds; or newest first, as a support agent looks up a
// customer's last orders, or a restaurant's, which run to thousands a day.
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
	// Newest lists the newest created first (ids of one time byte by byte backwards): the
	// first page is the newest orders, each next page older ones.
	Newest bool
}

// OrderCursor is where a page of ListOrders ends: its last order's creation time and id, the
// order the orders are listed in (ids of one time byte by byte), and which way they are listed.
type OrderCursor struct {
	CreatedAt time.Time
	ID        string
	// Newest is a cursor of a list newest first: the next page holds older orders.
	Newest bool
}

// Next is the cursor of q's page after one that ends at order o.
func (q OrderQuery) Next(o Order) OrderCursor {
	return OrderCursor{CreatedAt: o.CreatedAt, ID: o.ID, Newest: q.Newest}
}

// newestMark begins the text of a cursor of a list newest first; a cursor of a list oldest
// first reads as it did before lists had a way, so a client's cursor held across an upgrade
// still serves.
const newestMark = "n "

// String is the cursor as a client holds it: opaque text safe in a URL, which ParseCursor reads.
func (c OrderCursor) String() string {
	s := strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + " " + c.ID
	if c.Newest {
		s = newestMark + s
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// ParseCursor reads a cursor String made; anything else is EInvalid.
func ParseCursor(s string) (OrderCursor, error) {
	bad := Errorf(EInvalid, "cursor %s is not one this server gave: send the next of the page before, as it came", Quote(s))
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return OrderCursor{}, bad
	}
	text, newest := strings.CutPrefix(string(b), newestMark)
	at, id, ok := strings.Cut(text, " ")
	micros, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || ValidateID(id) != nil {
		return OrderCursor{}, bad
	}
	return OrderCursor{CreatedAt: time.UnixMicro(micros).UTC(), ID: id, Newest: newest}, nil
}

// Validate checks a query: a known status, a range that is one, a limit, a cursor of a list
// the same way (one of a list oldest first, given to one newest first, would start the page
// on the wrong side of it).
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
	case q.After != nil && q.After.Newest != q.Newest:
		return Errorf(EInvalid, "the cursor is of a list %s: ask for the next page listed the same way", way(q.After.Newest))
	}
	return nil
}

// way names the order a list is in.
func way(newest bool) string {
	if newest {
		return "newest first"
	}
	return "oldest first"
}
