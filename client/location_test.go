package client_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// TestPostLocations: a courier's own post and an integration's batch reach the order the courier
// carries; a refused position in the batch is answered in its place; a courier token may not
// post the batch.
func TestPostLocations(t *testing.T) {
	ctx := context.Background()
	h := hub.New()
	st := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	st.Publisher = h
	if err := st.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tokens, err := auth.New([]byte(rand.Text() + rand.Text()))
	if err != nil {
		t.Fatal(err)
	}
	tr := location.New(h, st)
	tr.Rate = 0
	if err := tr.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	srv := server.New(st, h)
	srv.Addr = "127.0.0.1:0"
	srv.Auth = &server.Auth{Tokens: tokens}
	srv.Locations = tr
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	sign := func(role auth.Role, sub string) string {
		tok, err := tokens.SignActor(auth.Actor{Role: role, Sub: sub}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	system := &client.Client{BaseURL: srv.URL(), Token: sign(auth.RoleSystem, "dispatch")}
	courier := &client.Client{BaseURL: srv.URL(), Token: sign(auth.RoleCourier, "c-1")}

	if _, err := system.CreateOrder(ctx, client.CreateOrderRequest{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := st.AssignCourier(ctx, ordercast.CourierChange{OrderID: "o-1", CourierID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := system.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: ordercast.StatusOutForDelivery}); err != nil {
		t.Fatal(err)
	}

	lat, lng := 52.37, 4.89
	if n, err := courier.PostLocation(ctx, "c-1", client.Position{Lat: &lat, Lng: &lng}); err != nil || n != 1 {
		t.Fatalf("courier's own post reached %d orders, err %v; want 1", n, err)
	}

	res, err := system.PostLocations(ctx, []client.CourierPosition{
		{CourierID: "c-1", PostLocationRequest: client.Position{Lat: &lat, Lng: &lng}},
		{CourierID: "c-1", PostLocationRequest: client.Position{Lng: &lng}}, // no lat
		{CourierID: "c-9", PostLocationRequest: client.Position{Lat: &lat, Lng: &lng}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || res.Refused != 1 || len(res.Results) != 3 {
		t.Fatalf("got %+v, want 2 accepted (o-1's courier, a courier with no order) and 1 refused", res)
	}
	if r := res.Results[0]; r.Orders == nil || *r.Orders != 1 {
		t.Errorf("result 0 %+v, want 1 order reached", r)
	}
	if r := res.Results[1]; r.Error == nil || r.Error.Code != ordercast.EInvalidLocation {
		t.Errorf("result 1 %+v, want %s", r, ordercast.EInvalidLocation)
	}
	if r := res.Results[2]; r.Orders == nil || *r.Orders != 0 {
		t.Errorf("result 2 %+v, want 0 orders reached", r)
	}

	_, err = courier.PostLocations(ctx, []client.CourierPosition{{CourierID: "c-1", PostLocationRequest: client.Position{Lat: &lat, Lng: &lng}}})
	if ordercast.ErrorCode(err) != ordercast.EForbidden {
		t.Fatalf("a courier's batch: err %v, want %s", err, ordercast.EForbidden)
	}
}
