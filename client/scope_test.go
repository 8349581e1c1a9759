package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
)

// TestWatchScopeSnapshotMidStream: a party stream that fell more than the server's backlog
// behind gets a fresh snapshot mid-stream; NextScoped returns it like the first, the watch goes
// on after its position, and a reconnect resumes after the last event.
func TestWatchScopeSnapshotMidStream(t *testing.T) {
	frame := func(w http.ResponseWriter, pos int64, typ string, v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", pos, typ, b)
		w.(http.Flusher).Flush()
	}
	snapshot := func(pos int64, ids ...string) api.PartySnapshot {
		s := api.PartySnapshot{Party: "restaurant:luigi", Pos: pos}
		for _, id := range ids {
			s.Orders = append(s.Orders, ordercast.Order{ID: id, Status: ordercast.StatusPlaced, Version: 1})
		}
		return s
	}
	var mu sync.Mutex
	var resumes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		resumes = append(resumes, r.Header.Get("Last-Event-ID"))
		n := len(resumes)
		mu.Unlock()
		openStream(w)
		if n == 1 {
			frame(w, 1, api.EventSnapshot, snapshot(1, "o-1"))
			frame(w, 2, api.EventStatus, ordercast.Event{OrderID: "o-1", Seq: 2, Status: ordercast.StatusConfirmed})
			frame(w, 10_003, api.EventSnapshot, snapshot(10_003, "o-2"))
			frame(w, 10_004, api.EventStatus, ordercast.Event{OrderID: "o-2", Seq: 2, Status: ordercast.StatusConfirmed})
			return // dropped
		}
		frame(w, 10_005, api.EventStatus, ordercast.Event{OrderID: "o-2", Seq: 3, Status: ordercast.StatusReady})
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	c := &client.Client{BaseURL: srv.URL, HTTPClient: srv.Client()}
	w := c.WatchRestaurant(context.Background(), "luigi", fastRetry)
	t.Cleanup(func() { w.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var got []string
	for range 5 {
		u, err := w.NextScoped(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if u.Snapshot != nil {
			got = append(got, fmt.Sprintf("%d snapshot %s", u.Pos, u.Snapshot.Orders[0].ID))
		} else {
			got = append(got, fmt.Sprintf("%d %s %s", u.Pos, u.Event.OrderID, u.Event.Status))
		}
	}
	want := []string{"1 snapshot o-1", "2 o-1 confirmed", "10003 snapshot o-2", "10004 o-2 confirmed", "10005 o-2 ready"}
	if !slices.Equal(got, want) {
		t.Errorf("updates %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "10004"}; !slices.Equal(resumes, want) {
		t.Errorf("Last-Event-IDs %q, want %q", resumes, want)
	}
}
