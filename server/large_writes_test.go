package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
)

// TestLargeOpeningReachesHeldStreams: a console stream whose opening snapshot is larger than the
// poller's MaxPending (64 KiB) opens: 40 orders with 2 KB details each, about 85 KB of snapshot.
func TestLargeOpeningReachesHeldStreams(t *testing.T) {
	bothHoldings(t, func(t *testing.T, hold holding) {
		ts := hold.newServer(t, nil)
		details := json.RawMessage(`{"note":"` + strings.Repeat("x", 2000) + `"}`)
		for i := range 40 {
			if _, _, err := ts.store.CreateOrder(context.Background(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d", i), Details: details}); err != nil {
				t.Fatal(err)
			}
		}
		r := readStream(t, ts.URL()+"/v1/stream", "")
		r.MaxEventSize = 1 << 20
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("hold=%v: reading the snapshot: %v", hold, err)
		}
		if ev.Type != "snapshot" || len(ev.Data) < 64<<10 {
			t.Fatalf("hold=%v: got %q with %d bytes", hold, ev.Type, len(ev.Data))
		}
	})
}

// TestLongPartyResumeReachesHeldStreams: a restaurant's board that was offline during a busy
// spell resumes with Last-Event-ID and gets the missed events: 300 orders created and confirmed
// (600 events of about 250 bytes, 150 KB), one lunch hour of a busy restaurant.
func TestLongPartyResumeReachesHeldStreams(t *testing.T) {
	bothHoldings(t, func(t *testing.T, hold holding) {
		ts := hold.newServer(t, nil)
		ctx := context.Background()
		if _, _, err := ts.store.CreateOrder(ctx, ordercast.NewOrder{ID: "first", RestaurantID: "r-1"}); err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			id := fmt.Sprintf("o-%d", i)
			if _, _, err := ts.store.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: "r-1", Note: "extra napkins please, ring twice"}); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := ts.store.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: ordercast.StatusConfirmed}); err != nil {
				t.Fatal(err)
			}
		}
		r := readStream(t, ts.URL()+"/v1/restaurants/r-1/stream", "1")
		for i := range 600 {
			ev, err := r.Next()
			if err != nil {
				t.Fatalf("hold=%v: event %d of 600 missed: %v", hold, i+1, err)
			}
			if want := fmt.Sprint(i + 2); ev.ID != want {
				t.Fatalf("hold=%v: id %s, want %s", hold, ev.ID, want)
			}
		}
	})
}

// readStream opens the stream at url (resuming after lastEventID, if any) with a client that
// gives up after 5 s, and returns a reader of its events.
func readStream(t *testing.T, url, lastEventID string) *client.SSEReader {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	return client.NewSSEReader(resp.Body)
}
