package location_test

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
)

// TestFailedBusReadsAreWarnedOnce: many streams opening at once on a node whose database is slow
// or away (a reconnect storm after a restart) each fail to read the cluster's positions, and the
// log says so once, with how many, not once a stream; the first read that works says so.
func TestFailedBusReadsAreWarnedOnce(t *testing.T) {
	now := time.Now()
	bus := &tableBus{table: map[string]ordercast.LocationUpdate{}, fail: errors.New("timeout: context deadline exceeded")}
	var out testutil.Buffer
	tr, _ := open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "k"}}, func(tr *location.Tracker) {
		tr.Bus = bus
		tr.Logger = slog.New(slog.NewTextHandler(&out, nil))
	})
	if _, err := tr.Post(t.Context(), "k", at(1, now.Add(-time.Second))); err != nil {
		t.Fatal(err)
	}
	tr.MissedLocations() // every opening now reads the table
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { tr.Latest(t.Context(), "a") })
	}
	wg.Wait()
	if n := out.Count("read the cluster's latest positions"); n != 1 {
		t.Errorf("200 failed reads logged %d warnings, want 1:\n%s", n, out.String())
	}
	bus.mu.Lock()
	bus.fail = nil
	bus.mu.Unlock()
	tr.Latest(t.Context(), "a")
	tr.Latest(t.Context(), "a")
	if n := out.Count("works again"); n != 1 {
		t.Errorf("reads that work again logged %d lines saying so, want 1:\n%s", n, out.String())
	}
}
