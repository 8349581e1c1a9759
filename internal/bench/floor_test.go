package bench_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ordercast/ordercast"
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
}
