package client_test

import (
	"context"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
)

// TestTrackingTokenMadeAgain: support has a fresh tracking token made for an order, with which
// the customer's client reads that order; a restaurant may not have one made.
func TestTrackingTokenMadeAgain(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, true, nil)
	system := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleSystem, "checkout")}
	if _, err := system.CreateOrder(ctx, client.CreateOrderRequest{ID: "t-1", RestaurantID: "r-1"}); err != nil {
		t.Fatal(err)
	}
	support := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleSupport, "ana")}
	got, err := support.TrackingToken(ctx, "t-1")
	if err != nil || got.OrderID != "t-1" || got.TrackingToken == "" || got.ExpiresAt == nil {
		t.Fatalf("TrackingToken(t-1) = %+v, %v; want a token for t-1 and when it expires", got, err)
	}
	customer := &client.Client{BaseURL: srv.url, Token: got.TrackingToken}
	if o, err := customer.Order(ctx, "t-1"); err != nil || o.ID != "t-1" {
		t.Errorf("the order read with the new token: %+v, %v", o, err)
	}
	restaurant := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleRestaurant, "r-1")}
	if _, err := restaurant.TrackingToken(ctx, "t-1"); ordercast.ErrorCode(err) != ordercast.EForbidden {
		t.Errorf("a restaurant's TrackingToken(t-1): %v, want %s", err, ordercast.EForbidden)
	}
}
