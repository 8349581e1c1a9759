package client_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
)

// TestCustomerExportAndErasure: an operator answers an access request with ExportCustomer (every
// order of the customer, ended ones too, each with its events) and an erasure request with
// EraseCustomer, which is refused with ECustomerActive while an order is in progress, answers
// counts once every order ended, and zeros when repeated; a restaurant's token may do neither.
func TestCustomerExportAndErasure(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, true, nil)
	system := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleSystem, "dpo")}
	for _, id := range []string{"x-1", "x-2"} {
		req := client.CreateOrderRequest{ID: id, RestaurantID: "r-1", CustomerID: "u-1", Details: json.RawMessage(`{"name":"Alice"}`)}
		if _, err := system.CreateOrder(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := system.CreateOrder(ctx, client.CreateOrderRequest{ID: "y-1", CustomerID: "u-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := system.SetStatus(ctx, "x-1", client.SetStatusRequest{Status: ordercast.StatusDelivered, Note: "to Alice"}); err != nil {
		t.Fatal(err)
	}

	export, err := system.ExportCustomer(ctx, "u-1")
	if err != nil || len(export) != 2 || export[0].Order.ID != "x-1" || len(export[0].Events) != 2 || export[0].Events[1].Note != "to Alice" ||
		export[1].Order.ID != "x-2" || len(export[1].Events) != 1 {
		t.Fatalf("ExportCustomer(u-1) = %+v, %v; want x-1 with its 2 events, x-2 with its 1", export, err)
	}
	restaurant := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleRestaurant, "r-1")}
	if _, err := restaurant.ExportCustomer(ctx, "u-1"); ordercast.ErrorCode(err) != ordercast.EForbidden {
		t.Errorf("a restaurant exporting u-1: %v, want %s", err, ordercast.EForbidden)
	}
	if _, err := restaurant.EraseCustomer(ctx, "u-1"); ordercast.ErrorCode(err) != ordercast.EForbidden {
		t.Errorf("a restaurant erasing u-1: %v, want %s", err, ordercast.EForbidden)
	}

	if _, err := system.EraseCustomer(ctx, "u-1"); ordercast.ErrorCode(err) != ordercast.ECustomerActive {
		t.Fatalf("EraseCustomer(u-1) with x-2 in progress: %v, want %s", err, ordercast.ECustomerActive)
	}
	if _, err := system.SetStatus(ctx, "x-2", client.SetStatusRequest{Status: ordercast.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	want := api.EraseCustomerResponse{CustomerID: "u-1", Erasure: ordercast.Erasure{Orders: 2, Notes: 1, LogEntries: 4}}
	if got, err := system.EraseCustomer(ctx, "u-1"); err != nil || got != want {
		t.Fatalf("EraseCustomer(u-1) = %+v, %v; want %+v", got, err, want)
	}
	if got, err := system.EraseCustomer(ctx, "u-1"); err != nil || got != (api.EraseCustomerResponse{CustomerID: "u-1"}) {
		t.Errorf("EraseCustomer(u-1) again = %+v, %v; want zeros", got, err)
	}
	if export, err := system.ExportCustomer(ctx, "u-1"); err != nil || len(export) != 0 {
		t.Errorf("ExportCustomer(u-1) after the erasure = %+v, %v; want nothing", export, err)
	}
	if export, err := system.ExportCustomer(ctx, "u-2"); err != nil || len(export) != 1 || export[0].Order.ID != "y-1" {
		t.Errorf("ExportCustomer(u-2) after u-1's erasure = %+v, %v; want y-1", export, err)
	}
}
