package location_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/location"
)

// lockedBuffer is a log's output, written by many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), substr)
}

// TestFailedBusReadsAreWarnedOnce: many streams opening at once on a node whose database is slow
// or away (a reconnect storm after a restart) each fail to read the cluster's positions, and the
// log says so once, with how many, not once a stream; the first read that works says so.
func TestFailedBusReadsAreWarnedOnce(t *testing.T) {
	now := time.Now()
	bus := &tableBus{table: map[string]ordercast.LocationUpdate{}, fail: errors.New("timeout: context deadline exceeded")}
	var out lockedBuffer
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
	if n := out.lines("read the cluster's latest positions"); n != 1 {
		t.Errorf("200 failed reads logged %d warnings, want 1:\n%s", n, out.b.String())
	}
	bus.mu.Lock()
	bus.fail = nil
	bus.mu.Unlock()
	tr.Latest(t.Context(), "a")
	tr.Latest(t.Context(), "a")
	if n := out.lines("works again"); n != 1 {
		t.Errorf("reads that work again logged %d lines saying so, want 1:\n%s", n, out.b.String())
	}
}
