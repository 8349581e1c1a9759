package ordercast

import "context"

// CustomerEraser removes what the store keeps of one customer (GDPR Art. 17), keeping what
// accounting needs of their orders: each order's row, status history and times.
type CustomerEraser interface {
	// EraseCustomer erases customer id's ended orders, in one transaction: their details become
	// {}, their customer_id and drop-off are cleared, their events' notes are cleared, any
	// stored courier position of theirs is deleted, and the customer's party log (its entries,
	// head and purge position) is deleted. What the restaurants' and couriers' logs hold of
	// those orders stays: their entries point at the events, whose notes are cleared. While the
	// customer has an order in progress it erases nothing and fails with ECustomerActive,
	// saying how many. It is idempotent: once erased, the orders are no longer the customer's,
	// so a second call erases nothing and answers a zero Erasure. An invalid id is EInvalid.
	EraseCustomer(ctx context.Context, id string) (Erasure, error)
}

// Erasure counts what one EraseCustomer changed.
type Erasure struct {
	// Orders is how many ended orders had their details, customer and drop-off cleared.
	Orders int `json:"orders"`
	// Notes is how many of their events had a note, now cleared.
	Notes int `json:"notes"`
	// LogEntries is how many entries of the customer's party log were deleted.
	LogEntries int `json:"log_entries"`
	// Positions is how many stored courier positions of the orders were deleted (PostgreSQL's
	// order_locations; SQLite stores none).
	Positions int `json:"positions"`
}

// ActiveOrdersError is the refusal of an erasure while the customer has n orders in progress.
func ActiveOrdersError(customerID string, n int) *Error {
	return Errorf(ECustomerActive, "customer %s has %d order(s) in progress: erase their data once every order has ended, so that no delivery loses its drop-off mid-way", customerID, n)
}
