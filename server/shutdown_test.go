package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/server"
)

// TestDrainedClientsResumeWithoutLoss runs two nodes over one store, opens 50 streams on the
// first, drains it while the orders move on through the second, and shows that every client
// resumes on the second with Last-Event-ID and sees every event exactly once, in order.
func TestDrainedClientsResumeWithoutLoss(t *testing.T) {
	a, b := twoNodes(t, filepath.Join(t.TempDir(), "shared.db"))
	a.DrainWindow = time.Second
	for _, n := range []*testServer{a, b} {
		if err := n.Open(); err != nil {
			t.Fatalf("open server: %v", err)
		}
	}

	const orders, perOrder = 5, 10
	for i := range orders {
		mustCreate(t, a.URL(), fmt.Sprintf("d-%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		seqs       []int64
		reconnects int
		duplicates int
		err        error
	}
	results := make([]result, orders*perOrder)
	opened := make(chan struct{}, orders*perOrder)
	var wg sync.WaitGroup
	for i := range orders * perOrder {
		id := fmt.Sprintf("d-%d", i%orders)
		// On the first node, then, when that stream ends before the order does, on the second
		// from the last seq seen. A second failure in a row (the second node refusing) ends it.
		w := (&client.Client{BaseURL: a.URL()}).Watch(ctx, id, client.WatchOptions{
			FailoverURLs: []string{b.URL()}, MinRetry: time.Millisecond, MaxRetry: 10 * time.Millisecond, MaxFailures: 2,
		})
		t.Cleanup(func() { w.Close() })
		wg.Go(func() {
			r := &results[i]
			defer func() { r.reconnects, r.duplicates = w.Reconnects(), w.Duplicates() }()
			for {
				ev, err := w.Next(ctx)
				if err != nil {
					r.err = err
					return
				}
				r.seqs = append(r.seqs, ev.Seq)
				if len(r.seqs) == 1 {
					opened <- struct{}{}
				}
			}
		})
	}
	for range orders * perOrder {
		select {
		case <-opened:
		case <-ctx.Done():
			t.Fatal("streams did not open")
		}
	}

	closed := make(chan error, 1)
	go func() { closed <- a.Close(ctx) }()
	// The orders move on through the second node, during and after the drain of the first.
	for _, status := range []ordercast.Status{
		ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady,
		ordercast.StatusOutForDelivery, ordercast.StatusDelivered,
	} {
		for i := range orders {
			mustSetStatus(t, b.URL(), fmt.Sprintf("d-%d", i), status)
		}
	}
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatalf("drain of the first server: %v", err)
	}

	want := []int64{1, 2, 3, 4, 5, 6}
	for i, r := range results {
		if r.err != io.EOF {
			t.Errorf("watcher %d ended with %v, want io.EOF after the terminal event", i, r.err)
		}
		if r.reconnects == 0 {
			t.Errorf("watcher %d never resumed on the second node", i)
		}
		if r.duplicates != 0 {
			t.Errorf("watcher %d was sent %d events it already had", i, r.duplicates)
		}
		if !slices.Equal(r.seqs, want) {
			t.Errorf("watcher %d saw seqs %v, want %v", i, r.seqs, want)
		}
	}
	mfs, err := a.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got := value(families(mfs), "ordercast_streams_closed_total", "reason", "shutdown"); got != orders*perOrder {
		t.Errorf("first node closed %v streams for shutdown, want %d", got, orders*perOrder)
	}
}

// TestReadinessFlipsBeforeTheListenerCloses: on Close the node reports not-ready at once while it
// still serves everything else for ShutdownDelay, so a load balancer can stop sending first; and
// it closes each connection after its answer (a long poll's begun before Close too), so that a
// proxy keeps none idle to send a request on as the listener closes (a POST sent then is lost,
// and nginx passes no POST on).
func TestReadinessFlipsBeforeTheListenerCloses(t *testing.T) {
	srv := newServer(t, func(s *server.Server) { s.ShutdownDelay = time.Hour })
	base, c := srv.URL(), http.DefaultClient
	if got := getStatus(t, c, base+"/readyz"); got != http.StatusOK {
		t.Fatalf("readyz before shutdown: %d, want 200", got)
	}
	mustCreate(t, base, "r-1")
	keepsAlive := func() bool {
		t.Helper()
		resp, err := c.Get(base + "/v1/orders/r-1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return !resp.Close
	}
	if !keepsAlive() {
		t.Fatal("an answer before Close closes its connection")
	}
	// A long poll begun before Close and answered after it closes its connection too.
	polled := make(chan *http.Response, 1)
	go func() {
		resp, err := c.Get(base + "/v1/orders/r-1?wait=30s&after_version=1")
		if err != nil {
			t.Error(err)
			polled <- nil
			return
		}
		resp.Body.Close()
		polled <- resp
	}()
	testutil.WaitFor(t, "the long poll to wait", func() bool { return srv.hub.Watchers() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- srv.Close(ctx) }()
	testutil.WaitFor(t, "readyz to turn 503 after Close began", func() bool {
		return getStatus(t, c, base+"/readyz") == http.StatusServiceUnavailable
	})
	// Not ready, yet still serving: the listener is open and streams are accepted.
	if got := getStatus(t, c, base+"/healthz"); got != http.StatusOK {
		t.Errorf("healthz while not ready: %d, want 200", got)
	}
	if keepsAlive() {
		t.Error("an answer while closing keeps its connection open")
	}
	_, st := openStream(t, ctx, c, base, "r-1", "")
	if ev := next(t, st); ev.Seq != 1 {
		t.Errorf("stream while not ready: seq %d, want 1", ev.Seq)
	}
	mustSetStatus(t, base, "r-1", "confirmed")
	if resp := <-polled; resp == nil || resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("a long poll begun before Close, answered after: %v, want 200 closing its connection", resp)
	}

	// Cut the delay short. The stream ends with the same context, so Close either finds nothing
	// left or reports that its context ended while the connection was winding down.
	cancel()
	if err := <-closed; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Close: %v", err)
	}
	if _, err := c.Get(base + "/healthz"); err == nil {
		t.Error("the listener still accepts after Close")
	}
}

// TestASecondCloseWaitsForTheFirst: a Close called while another is under way does not return
// before it (its caller would go on, closing the store, while requests still run): it waits for
// the first, or for its own context.
func TestASecondCloseWaitsForTheFirst(t *testing.T) {
	srv := newServer(t, func(s *server.Server) { s.ShutdownDelay = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- srv.Close(ctx) }()
	testutil.WaitFor(t, "the first Close to begin", srv.Draining)
	gone, stop := context.WithCancel(context.Background())
	stop()
	if err := srv.Close(gone); !errors.Is(err, context.Canceled) {
		t.Fatalf("a second Close while the first waits out its delay = %v, want its context's end", err)
	}
	cancel()
	<-first
	if err := srv.Close(context.Background()); err != nil {
		t.Errorf("a Close after the first returned = %v, want nil", err)
	}
}

func getStatus(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func families(mfs []*dto.MetricFamily) map[string]*dto.MetricFamily {
	m := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		m[mf.GetName()] = mf
	}
	return m
}

// twoNodes returns two servers, not yet open, over one SQLite store at path (two stores may not
// open one SQLite file). Every commit reaches b's hub and none a's: a stream on a gets the
// events it reads at its start, and then only its end, by a's drain, so that every client must
// resume on b for the rest.
func twoNodes(t *testing.T, path string) (a, b *testServer) {
	t.Helper()
	a = prepareServer(t, path)
	hb := hub.New()
	a.store.Publisher = hb
	b = &testServer{Server: server.New(a.store, hb), store: a.store, hub: hb, path: path}
	b.Addr = "127.0.0.1:0"
	t.Cleanup(func() { b.close(t) }) // before a's: the store is closed by the first, a no-op for the second
	return a, b
}
