package client_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
)

// TestOrdersRangesOverEveryPage: a point of sale rebuilding its day reads every order of its
// restaurant, ended ones too, oldest first, across pages (ListOrders, then Orders over them), and
// none of another restaurant's; newest first, the same orders backwards.
func TestOrdersRangesOverEveryPage(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, true, nil)
	system := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleSystem, "checkout")}
	var want []string
	for i := range 2*api.MaxOrdersPerPage + 3 {
		restaurant := "luigi"
		if i%7 == 0 {
			restaurant = "mario"
		}
		id := fmt.Sprintf("%s-%04d", restaurant, i)
		if _, err := system.CreateOrder(ctx, client.CreateOrderRequest{ID: id, RestaurantID: restaurant}); err != nil {
			t.Fatal(err)
		}
		if restaurant == "luigi" {
			want = append(want, id)
		}
	}
	if _, err := system.SetStatus(ctx, want[0], client.SetStatusRequest{Status: ordercast.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	luigi := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleRestaurant, "luigi")}

	page, err := luigi.ListOrders(ctx, client.OrderFilter{}, "", 2)
	if err != nil || len(page.Orders) != 2 || page.Orders[0].ID != want[0] || page.Next == "" {
		t.Fatalf("the first page of 2: %+v, %v; want %v… and a next", page, err, want[:2])
	}
	var got []string
	for o, err := range luigi.Orders(ctx, client.OrderFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, o.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Orders: %d orders, want %d, the first %v", len(got), len(want), want[:3])
	}
	var newest []string
	for o, err := range luigi.Orders(ctx, client.OrderFilter{Newest: true}) {
		if err != nil {
			t.Fatal(err)
		}
		newest = append(newest, o.ID)
	}
	backwards := slices.Clone(want)
	slices.Reverse(backwards)
	if !slices.Equal(newest, backwards) {
		t.Fatalf("Orders newest first: %d orders, the first %v; want %d, the first %v", len(newest), newest[:min(3, len(newest))], len(backwards), backwards[:3])
	}
	cancelled, err := luigi.ListOrders(ctx, client.OrderFilter{Status: ordercast.StatusCancelled}, "", 0)
	if err != nil || len(cancelled.Orders) != 1 || cancelled.Orders[0].ID != want[0] {
		t.Fatalf("luigi's cancelled: %+v, %v; want %s", cancelled, err, want[0])
	}
	if _, err := luigi.ListOrders(ctx, client.OrderFilter{RestaurantID: "mario"}, "", 0); ordercast.ErrorCode(err) != ordercast.EForbidden {
		t.Fatalf("luigi listing mario's: %v, want %s", err, ordercast.EForbidden)
	}
}
