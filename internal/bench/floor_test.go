package bench_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/bench"
)

// TestFloorSpeaksTheWorkloadsWire drives the floor server with the Go client the bench's watchers
// use: a watch gets the order's first event and then each change, a resumed watch only what came
// after its Last-Event-ID, and a change at a version the order has left is refused and sent to
// no one, so that the bench's accounting of the floor means what it means for ordercast.
func TestFloorSpeaksTheWorkloadsWire(t *testing.T) {
	ctx := t.Context()
	srv := httptest.NewServer(bench.FloorHandler(ctx))
	t.Cleanup(srv.Close)
	c := &client.Client{BaseURL: srv.URL}
	created, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: "o1"})
	if err != nil || created.Order.Version != 1 || created.Order.Status != ordercast.StatusPlaced {
		t.Fatalf("create: %+v, %v; want version 1, placed", created.Order, err)
	}
	w := c.Watch(ctx, "o1", client.WatchOptions{})
	defer w.Close()
	next := func(w *client.Watch, seq int64, st ordercast.Status) {
		t.Helper()
		ev, err := w.Next(ctx)
		if err != nil || ev.Seq != seq || ev.Status != st || ev.OrderID != "o1" || ev.At.IsZero() {
			t.Fatalf("event %+v, %v; want seq %d %s of o1", ev, err, seq, st)
		}
	}
	next(w, 1, ordercast.StatusPlaced)
	one := int64(1)
	res, err := c.SetStatus(ctx, "o1", client.SetStatusRequest{Status: ordercast.StatusConfirmed, ExpectedVersion: &one})
	if err != nil || res.Event.Seq != 2 || !res.Changed {
		t.Fatalf("set status: %+v, %v; want seq 2, changed", res, err)
	}
	next(w, 2, ordercast.StatusConfirmed)

	_, err = c.SetStatus(ctx, "o1", client.SetStatusRequest{Status: ordercast.StatusPreparing, ExpectedVersion: &one})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
		t.Fatalf("set status at a version left behind: %v, want 409", err)
	}
	resumed := c.Watch(ctx, "o1", client.WatchOptions{LastEventID: 1})
	defer resumed.Close()
	next(resumed, 2, ordercast.StatusConfirmed) // not 1 again, and no refused change
	if _, err := c.SetStatus(ctx, "o1", client.SetStatusRequest{Status: ordercast.StatusPreparing}); err != nil {
		t.Fatal(err)
	}
	next(w, 3, ordercast.StatusPreparing)
	next(resumed, 3, ordercast.StatusPreparing)

	// A courier's positions, one a request and many, reach the watchers of the order it carries
	// as location events without an id, after the assignment's event.
	positions := make(chan ordercast.LocationUpdate, 4)
	located := c.Watch(ctx, "o1", client.WatchOptions{LastEventID: 3, OnLocation: func(u ordercast.LocationUpdate, _ time.Time) { positions <- u }})
	defer located.Close()
	if res, err := c.SetCourier(ctx, "o1", client.SetCourierRequest{CourierID: api.AssignTo("c1")}); err != nil || res.Event.Seq != 4 || res.Event.Kind != ordercast.KindCourier {
		t.Fatalf("assign: %+v, %v; want a courier event, seq 4", res, err)
	}
	if ev, err := located.Next(ctx); err != nil || ev.Seq != 4 || ev.CourierID != "c1" {
		t.Fatalf("event %+v, %v; want seq 4 assigning c1", ev, err)
	}
	lat, lng := 52.5, 13.4
	if r, err := c.PostLocation(ctx, "c1", client.Position{Lat: &lat, Lng: &lng}); err != nil || r.Orders != 1 {
		t.Fatalf("post location: %+v, %v; want 1 order reached", r, err)
	}
	if r, err := c.PostLocation(ctx, "c2", client.Position{Lat: &lat, Lng: &lng}); err != nil || r.Orders != 0 {
		t.Fatalf("another courier's position: %+v, %v; want 0 orders", r, err)
	}
	lng2 := 13.5
	many, err := c.PostLocations(ctx, []client.CourierPosition{{CourierID: "c1", PostLocationRequest: api.PostLocationRequest{Lat: &lat, Lng: &lng2}}})
	if err != nil || many.Accepted != 1 || len(many.Results) != 1 || many.Results[0].Orders == nil || *many.Results[0].Orders != 1 {
		t.Fatalf("post locations: %+v, %v; want one accepted, reaching one order", many, err)
	}
	reading := make(chan struct{}) // Next reads the positions, handing them to OnLocation
	go func() { defer close(reading); located.Next(ctx) }()
	defer func() { located.Close(); <-reading }()
	for _, want := range []float64{lng, lng2} {
		select {
		case u := <-positions:
			if u.OrderID != "o1" || u.CourierID != "c1" || u.Lng != want || u.At.IsZero() {
				t.Fatalf("position %+v, want c1's on o1 at lng %v", u, want)
			}
		case <-ctx.Done():
			t.Fatal("no position")
		}
	}
}
