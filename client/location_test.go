package client_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// TestPostLocations: a courier's own post and an integration's batch reach the order the courier
// carries; a refused position in the batch is answered in its place; a courier token may not
// post the batch; the order's trail ends where the courier is.
func TestPostLocations(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, true, nil)
	system := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleSystem, "dispatch")}
	courier := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleCourier, "c-1")}

	if _, err := system.CreateOrder(ctx, client.CreateOrderRequest{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := srv.store.AssignCourier(ctx, ordercast.CourierChange{OrderID: "o-1", CourierID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := system.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: ordercast.StatusOutForDelivery}); err != nil {
		t.Fatal(err)
	}

	lat, lng := 52.37, 4.89
	if r, err := courier.PostLocation(ctx, "c-1", api.PositionAt(lat, lng)); err != nil || r.Orders != 1 || r.Missed != "" {
		t.Fatalf("courier's own post: %+v, err %v; want 1 order reached", r, err)
	}
	// A courier with no order out for delivery is told why its position reached none.
	other := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleCourier, "c-2")}
	if r, err := other.PostLocation(ctx, "c-2", api.PositionAt(lat, lng)); err != nil || r.Orders != 0 || r.Missed != string(location.MissedNoOrderShown) {
		t.Fatalf("a courier with no order: %+v, err %v; want 0 orders, missed %s", r, err, location.MissedNoOrderShown)
	}

	res, err := system.PostLocations(ctx, []client.CourierPosition{
		{CourierID: "c-1", PostLocationRequest: api.PositionAt(lat, lng)},
		{CourierID: "c-1", PostLocationRequest: client.Position{Lng: &lng}}, // no lat
		{CourierID: "c-9", PostLocationRequest: api.PositionAt(lat, lng)},
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

	// The way the courier came, for a map opened now: it ends where the courier is.
	tr, err := courier.Trail(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tr.Trail); tr.OrderID != "o-1" || tr.CourierID != "c-1" || n == 0 || tr.Trail[n-1].Lat != lat || tr.Trail[n-1].Lng != lng {
		t.Fatalf("Trail = %+v, want c-1's, ending at %v,%v", tr, lat, lng)
	}
	if _, err := system.Trail(ctx, "o-9"); ordercast.ErrorCode(err) != ordercast.ENotFound {
		t.Fatalf("Trail of an unknown order: err %v, want %s", err, ordercast.ENotFound)
	}
}

// TestWatchScopeOnLocationSeesPositions: a party watch hands the positions of its orders'
// couriers to OnLocation, as an order watch does; a position moves no resume point.
func TestWatchScopeOnLocationSeesPositions(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, false, nil)
	c := &client.Client{BaseURL: srv.url}
	if _, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: "o-1", RestaurantID: "luigi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetCourier(ctx, "o-1", client.SetCourierRequest{CourierID: api.AssignTo("c-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetStatus(ctx, "o-1", client.SetStatusRequest{Status: ordercast.StatusOutForDelivery}); err != nil {
		t.Fatal(err)
	}
	positions := make(chan ordercast.LocationUpdate, 1)
	w := c.WatchCourier(ctx, "c-1", client.WatchOptions{OnLocation: func(u ordercast.LocationUpdate, _ time.Time) { positions <- u }})
	t.Cleanup(func() { w.Close() })
	nctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	u, err := w.NextScoped(nctx)
	if err != nil || u.Snapshot == nil {
		t.Fatalf("NextScoped = %+v, %v; want the opening snapshot", u, err)
	}
	go func() { // the callbacks run on the goroutine reading the watch
		for {
			if _, err := w.NextScoped(ctx); err != nil {
				return
			}
		}
	}()
	lat, lng := 52.37, 4.89
	if r, err := c.PostLocation(ctx, "c-1", client.Position{Lat: &lat, Lng: &lng}); err != nil || r.Orders != 1 {
		t.Fatalf("PostLocation: %+v, err %v; want 1 order reached", r, err)
	}
	select {
	case got := <-positions:
		if got.OrderID != "o-1" || got.Lat != lat || got.Lng != lng {
			t.Errorf("OnLocation saw %+v, want o-1 at %v,%v", got, lat, lng)
		}
	case <-nctx.Done():
		t.Fatal("the party watch's OnLocation never saw the position")
	}
	if got := w.LastEventID(); got != u.Pos {
		t.Errorf("LastEventID = %d after a position, want the snapshot's %d", got, u.Pos)
	}
}

// TestItemError: a refused item of a request of many becomes the error its call alone would
// have returned (status, code, message, Retry-After); a taken one is no error.
func TestItemError(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, true, func(s *server.Server) {
		s.Locations.Rate, s.Locations.Burst = 0.001, 1 // one post per courier, then rate_limited
	})
	system := &client.Client{BaseURL: srv.url, Token: srv.sign(t, auth.RoleSystem, "dispatch")}
	for _, id := range []string{"o-1", "o-2"} {
		if _, err := system.CreateOrder(ctx, client.CreateOrderRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	changes, err := system.SetStatuses(ctx, []client.OrderStatusChange{
		{OrderID: "o-1", SetStatusRequest: client.SetStatusRequest{Status: ordercast.StatusDelivered}},
		{OrderID: "o-1", SetStatusRequest: client.SetStatusRequest{Status: ordercast.StatusPreparing}},
		{OrderID: "o-9", SetStatusRequest: client.SetStatusRequest{Status: ordercast.StatusPreparing}},
		{OrderID: "o-2", SetStatusRequest: client.SetStatusRequest{Status: ordercast.StatusConfirmed, ExpectedVersion: new(int64(5))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	lat, lng := 52.37, 4.89
	positions, err := system.PostLocations(ctx, []client.CourierPosition{
		{CourierID: "c-1", PostLocationRequest: api.PositionAt(lat, lng)},
		{CourierID: "c-1", PostLocationRequest: api.PositionAt(lat, lng)},
		{CourierID: "c-2", PostLocationRequest: client.Position{Lng: &lng}}, // no lat
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes.Results) != 4 || len(positions.Results) != 3 {
		t.Fatalf("%d and %d results, want 4 and 3", len(changes.Results), len(positions.Results))
	}
	// A change refused for its version says the order's, as its call alone would.
	if at, ok := ordercast.ConflictVersion(client.ItemError(changes.Results[3].Error)); !ok || at != 1 {
		t.Errorf("a change at another version: ConflictVersion = %d, %v; want the order's version, 1", at, ok)
	}
	for _, c := range []struct {
		what   string
		detail *api.ErrorDetail
		status int
		code   string
		wait   bool
	}{
		{"a change taken", changes.Results[0].Error, 0, "", false},
		{"a change from a terminal status", changes.Results[1].Error, http.StatusConflict, ordercast.EInvalidTransition, false},
		{"a change to an unknown order", changes.Results[2].Error, http.StatusNotFound, ordercast.ENotFound, false},
		{"a position taken", positions.Results[0].Error, 0, "", false},
		{"a courier's position over its budget", positions.Results[1].Error, http.StatusTooManyRequests, ordercast.ERateLimited, true},
		{"a position without lat", positions.Results[2].Error, http.StatusUnprocessableEntity, ordercast.EInvalidLocation, false},
	} {
		err := client.ItemError(c.detail)
		if c.code == "" {
			if err != nil {
				t.Errorf("%s: ItemError = %v, want nil", c.what, err)
			}
			continue
		}
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: ItemError = %v (%T), want a *client.Error", c.what, err, err)
			continue
		}
		if ce.StatusCode != c.status || ordercast.ErrorCode(err) != c.code || ce.Message == "" || (ce.RetryAfter >= time.Second) != c.wait {
			t.Errorf("%s: got %d %s %q Retry-After %v, want %d %s with a message, Retry-After set: %v", c.what, ce.StatusCode, ordercast.ErrorCode(err), ce.Message, ce.RetryAfter, c.status, c.code, c.wait)
		}
	}
}
