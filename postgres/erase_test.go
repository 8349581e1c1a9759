package postgres_test

import (
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/postgres"
)

// TestEraseCustomerDeletesPositions: an erasure deletes the stored courier positions
// (order_locations) of the customer's orders and counts them, and leaves another customer's.
// The conformance suite (CustomerData) covers the rest; SQLite stores no position.
func TestEraseCustomerDeletesPositions(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(url))
	db := pgtest.Connect(t, url)
	ctx := t.Context()
	for _, n := range []ordercast.NewOrder{{ID: "mine", CustomerID: "u-1"}, {ID: "theirs", CustomerID: "u-2"}} {
		if _, _, err := s.CreateOrder(ctx, n); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: n.ID, Status: ordercast.StatusDelivered}); err != nil {
			t.Fatal(err)
		}
		// What the location bus upserts: a position kept a while after the order ended.
		if _, err := db.Exec(ctx, `INSERT INTO order_locations (order_id, at, data) VALUES ($1, now(), '{"lat":52.5,"lng":13.4}')`, n.ID); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.EraseCustomer(ctx, "u-1")
	if want := (ordercast.Erasure{Orders: 1, LogEntries: 2, Positions: 1}); err != nil || got != want {
		t.Fatalf("EraseCustomer(u-1) = %+v, %v; want %+v", got, err, want)
	}
	var left []string
	rows, err := db.Query(ctx, `SELECT order_id FROM order_locations ORDER BY order_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		left = append(left, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != "theirs" {
		t.Errorf("positions left after erasing u-1: %v, want only [theirs]", left)
	}
}
