package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
)

// TestWatchScopeSnapshotMidStream: a party stream that fell more than the server's backlog
// behind gets a fresh snapshot mid-stream; NextScoped returns it like the first, the watch goes
// on after its position, and a reconnect resumes after the last event.
func TestWatchScopeSnapshotMidStream(t *testing.T) {
	snapshot := func(pos int64, ids ...string) api.PartySnapshot {
		s := api.PartySnapshot{Party: "restaurant:luigi", Pos: pos}
		for _, id := range ids {
			s.Orders = append(s.Orders, ordercast.Order{ID: id, Status: ordercast.StatusPlaced, Version: 1})
		}
		return s
	}
	srv := newResumingServer(t, func(w http.ResponseWriter, n int) {
		if n == 1 {
			partyFrame(w, 1, api.EventSnapshot, snapshot(1, "o-1"))
			partyFrame(w, 2, api.EventStatus, ordercast.Event{OrderID: "o-1", Seq: 2, Status: ordercast.StatusConfirmed})
			partyFrame(w, 10_003, api.EventSnapshot, snapshot(10_003, "o-2"))
			partyFrame(w, 10_004, api.EventStatus, ordercast.Event{OrderID: "o-2", Seq: 2, Status: ordercast.StatusConfirmed})
			return // dropped
		}
		partyFrame(w, 10_005, api.EventStatus, ordercast.Event{OrderID: "o-2", Seq: 3, Status: ordercast.StatusReady})
	})
	want := []string{"1 snapshot o-1", "2 o-1 confirmed", "10003 snapshot o-2", "10004 o-2 confirmed", "10005 o-2 ready"}
	if got := srv.watchRestaurant(t, "luigi", len(want)); !slices.Equal(got, want) {
		t.Errorf("updates %q, want %q", got, want)
	}
	if got, want := srv.resumes(), []string{"", "10004"}; !slices.Equal(got, want) {
		t.Errorf("Last-Event-IDs %q, want %q", got, want)
	}
}

// partyFrame writes one message of a party stream: its position, type and JSON data.
func partyFrame(w http.ResponseWriter, pos int64, typ string, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", pos, typ, b)
	w.(http.Flusher).Flush()
}

// resumingServer is a fake stream server that records the Last-Event-ID each connection came
// with: serve answers the n-th (from 1) after the stream's headers; the first connection is then
// dropped, and every later one held open.
type resumingServer struct {
	*httptest.Server
	mu  sync.Mutex
	ids []string
}

func newResumingServer(t *testing.T, serve func(w http.ResponseWriter, n int)) *resumingServer {
	s := &resumingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ids = append(s.ids, r.Header.Get("Last-Event-ID"))
		n := len(s.ids)
		s.mu.Unlock()
		openStream(w)
		serve(w, n)
		if n > 1 {
			<-r.Context().Done()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// watchRestaurant watches restaurant id's stream on s and returns its first n updates, each
// as "<pos> snapshot <its first order>" or "<pos> <order> <status>".
func (s *resumingServer) watchRestaurant(t *testing.T, id string, n int) []string {
	t.Helper()
	c := &client.Client{BaseURL: s.URL, HTTPClient: s.Client()}
	w := c.WatchRestaurant(context.Background(), id, fastRetry)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var got []string
	for range n {
		u, err := w.NextScoped(ctx)
		switch {
		case err != nil:
			t.Fatalf("after %q: %v", got, err)
		case u.Snapshot != nil:
			first := "none"
			if len(u.Snapshot.Orders) > 0 {
				first = u.Snapshot.Orders[0].ID
			}
			got = append(got, fmt.Sprintf("%d snapshot %s", u.Pos, first))
		default:
			got = append(got, fmt.Sprintf("%d %s %s", u.Pos, u.Event.OrderID, u.Event.Status))
		}
	}
	return got
}

// resumes lists the Last-Event-ID of each connection so far, "" for none.
func (s *resumingServer) resumes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// TestAPartyWatchResumesAfterASnapshotAtZero: a party whose log is empty yet (a new restaurant,
// a courier's first shift) is sent its snapshot at position 0. A watch dropped after it resumes
// after 0, getting every event since as an event; it once reconnected afresh, and the orders
// placed and confirmed while it was away came only as a new snapshot's state.
func TestAPartyWatchResumesAfterASnapshotAtZero(t *testing.T) {
	srv := newResumingServer(t, func(w http.ResponseWriter, n int) {
		if n == 1 {
			partyFrame(w, 0, api.EventSnapshot, api.PartySnapshot{Party: "restaurant:new", Pos: 0})
			return // dropped
		}
		partyFrame(w, 1, api.EventStatus, ordercast.Event{OrderID: "o-1", Seq: 1, Status: ordercast.StatusPlaced})
	})
	want := []string{"0 snapshot none", "1 o-1 placed"}
	if got := srv.watchRestaurant(t, "new", len(want)); !slices.Equal(got, want) {
		t.Errorf("updates %q, want %q", got, want)
	}
	if got, want := srv.resumes(), []string{"", "0"}; !slices.Equal(got, want) {
		t.Errorf("Last-Event-IDs %q, want %q", got, want)
	}
}

// TestAPartyWatchReadsTheLargestSnapshotTheServerSends: a party's snapshot is one event of up
// to 2,000 orders with up to 4 KiB of details each. A party watch read it with an order
// watch's 1 MiB bound, failed, reconnected and fetched it again, for ever: a busy
// restaurant's board never got an update.
func TestAPartyWatchReadsTheLargestSnapshotTheServerSends(t *testing.T) {
	details := json.RawMessage(`{"items":"` + strings.Repeat("x", ordercast.MaxDetailsBytes-12) + `"}`)
	snap := api.PartySnapshot{Party: "restaurant:r-1", Pos: 42}
	for i := range 2000 {
		snap.Orders = append(snap.Orders, ordercast.Order{ID: fmt.Sprintf("order-%04d", i), Status: ordercast.StatusPreparing,
			Version: 3, Details: details, RestaurantID: "r-1", CustomerID: "u-1", CourierID: "c-1"})
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) <= client.DefaultSSEMaxEventSize {
		t.Fatalf("the snapshot is %d bytes: within an order watch's bound, it tests nothing", len(b))
	}
	var connects atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connects.Add(1)
		openStream(w)
		fmt.Fprintf(w, "id: 42\nevent: snapshot\ndata: %s\n\n", b)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	c := &client.Client{BaseURL: srv.URL, HTTPClient: srv.Client()}
	opts := fastRetry
	opts.MaxFailures = 1
	w := c.WatchRestaurant(context.Background(), "r-1", opts)
	t.Cleanup(func() { w.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	u, err := w.NextScoped(ctx)
	if err != nil {
		t.Fatalf("NextScoped on a %d-byte snapshot: %v", len(b), err)
	}
	if u.Snapshot == nil || len(u.Snapshot.Orders) != 2000 || connects.Load() != 1 {
		t.Fatalf("got a snapshot of %d orders after %d connects, want 2000 after 1", len(u.Snapshot.Orders), connects.Load())
	}
}

// TestAPartyOfNoKindSendsNothing: a party kind the API does not know ("restaurants", a typo)
// made a path without its leading slash, which, glued onto the base URL, extended its host
// name: the token went to another host. The watch now ends before anything is sent.
func TestAPartyOfNoKindSendsNothing(t *testing.T) {
	var sent atomic.Int64
	c := &client.Client{BaseURL: "https://api.example.com", Token: "secret", HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return nil, errors.New("no network here")
	})}}
	for _, p := range []ordercast.Party{{Kind: "restaurants", ID: "r-1"}, {ID: "r-1"}, {Kind: ordercast.PartyRestaurant, ID: ""}} {
		w := c.WatchScope(context.Background(), p, fastRetry)
		_, err := w.NextScoped(context.Background())
		w.Close()
		if ordercast.ErrorCode(err) != ordercast.EInvalid {
			t.Errorf("party %+v: NextScoped = %v, want invalid_argument", p, err)
		}
	}
	if n := sent.Load(); n != 0 {
		t.Fatalf("%d requests sent for parties that do not exist", n)
	}
	if p := api.PartyPath(ordercast.Party{Kind: "restaurants", ID: "r-1"}); !strings.HasPrefix(p, "/") {
		t.Errorf("PartyPath of an unknown kind = %q, without its leading slash", p)
	}
}

// The largest snapshot a server sends, api.MaxPartySnapshotOrders orders each as large as an
// order can be, fits in the bound a party watch reads events with by default: a larger one
// would end every watch of such a party in an error.
func TestTheLargestSnapshotFitsThePartyWatchBound(t *testing.T) {
	long := strings.Repeat("x", ordercast.MaxIDLength)
	// Details as large as served, every byte of them a character the JSON escapes again
	// nowhere: the store keeps them as the JSON it was sent.
	details := `{"d":"` + strings.Repeat(`\u003c`, (ordercast.MaxDetailsBytes-8)/6) + `"}`
	at := time.Date(2026, 12, 31, 23, 59, 59, 999999000, time.UTC)
	far := &ordercast.Point{Lat: -89.123456789012345, Lng: -179.12345678901234}
	snap := api.PartySnapshot{Party: "restaurant:" + long, Pos: 1 << 62}
	for range api.MaxPartySnapshotOrders {
		snap.Orders = append(snap.Orders, ordercast.Order{
			ID: long, Status: ordercast.StatusOutForDelivery, Version: 1 << 62, Details: json.RawMessage(details),
			RestaurantID: long, CustomerID: long, CourierID: long,
			CourierName: strings.Repeat("<", ordercast.MaxCourierNameLength), // each escaped to six bytes
			Pickup:      far, Dropoff: far, CreatedAt: at, UpdatedAt: at,
		})
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	frame := len("id: 4611686018427387904\nevent: snapshot\ndata: \n\n") + len(b)
	if frame > client.DefaultPartyMaxEventSize {
		t.Errorf("the largest snapshot is %d bytes framed, over DefaultPartyMaxEventSize (%d)", frame, client.DefaultPartyMaxEventSize)
	}
	t.Logf("the largest snapshot: %.1f MiB framed, of %d MiB", float64(frame)/(1<<20), client.DefaultPartyMaxEventSize>>20)
}
