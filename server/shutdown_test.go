package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/server"
)

// TestDrainedClientsResumeWithoutLoss runs two servers on one SQLite file, opens 50 streams on
// the first, drains it while the orders move on through the second, and shows that every client
// resumes on the second with Last-Event-ID and sees every event exactly once, in order.
func TestDrainedClientsResumeWithoutLoss(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	a := startServer(t, path, func(s *server.Server) { s.DrainWindow = time.Second })
	b := startServer(t, path, nil)
	c := http.DefaultClient

	const orders, perOrder = 5, 10
	for i := range orders {
		createOrder(t, c, a.URL(), fmt.Sprintf("d-%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		seqs    []int64
		resumed bool
		err     error
	}
	results := make([]result, orders*perOrder)
	opened := make(chan struct{}, orders*perOrder)
	var wg sync.WaitGroup
	for i := range orders * perOrder {
		id := fmt.Sprintf("d-%d", i%orders)
		wg.Go(func() {
			r := &results[i]
			var last int64
			// A watcher as every client library does it: on the first node, then, when that
			// stream ends before the order does, on the next node from the last seq seen.
			for n, base := range []string{a.URL(), b.URL()} {
				st, err := openStream(ctx, c, base, id, last)
				if err != nil {
					r.err = err
					return
				}
				r.resumed = n > 0
				for ev := range st.Events {
					r.seqs = append(r.seqs, ev.Seq)
					last = ev.Seq
					if n == 0 && len(r.seqs) == 1 {
						opened <- struct{}{}
					}
					if ev.Status.Terminal() {
						return
					}
				}
			}
			r.err = errors.New("the stream on the second node ended before the order did")
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
			setStatus(t, c, b.URL(), fmt.Sprintf("d-%d", i), status)
		}
	}
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatalf("drain of the first server: %v", err)
	}

	want := []int64{1, 2, 3, 4, 5, 6}
	for i, r := range results {
		if r.err != nil {
			t.Errorf("watcher %d: %v", i, r.err)
		}
		if !r.resumed {
			t.Errorf("watcher %d never resumed on the second node", i)
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
// still serves everything else for ShutdownDelay, so a load balancer can stop sending first.
func TestReadinessFlipsBeforeTheListenerCloses(t *testing.T) {
	srv := startServer(t, "", func(s *server.Server) { s.ShutdownDelay = time.Hour })
	base, c := srv.URL(), http.DefaultClient
	if got := getStatus(t, c, base+"/readyz"); got != http.StatusOK {
		t.Fatalf("readyz before shutdown: %d, want 200", got)
	}
	createOrder(t, c, base, "r-1")

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- srv.Close(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for getStatus(t, c, base+"/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("readyz did not turn 503 after Close began")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Not ready, yet still serving: the listener is open and streams are accepted.
	if got := getStatus(t, c, base+"/healthz"); got != http.StatusOK {
		t.Errorf("healthz while not ready: %d, want 200", got)
	}
	st, err := openStream(ctx, c, base, "r-1", 0)
	if err != nil {
		t.Fatalf("stream while not ready: %v", err)
	}
	if ev := st.next(t); ev.Seq != 1 {
		t.Errorf("stream while not ready: seq %d, want 1", ev.Seq)
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

// TestReadyChecks: /readyz asks every extra check, and any failure makes the node not ready.
func TestReadyChecks(t *testing.T) {
	var mu sync.Mutex
	busUp := false
	srv := startServer(t, "", func(s *server.Server) {
		s.ReadyChecks = append(s.ReadyChecks, func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if !busUp {
				return errors.New("bus not listening")
			}
			return nil
		})
	})
	if got := getStatus(t, http.DefaultClient, srv.URL()+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with a failing check: %d, want 503", got)
	}
	mu.Lock()
	busUp = true
	mu.Unlock()
	if got := getStatus(t, http.DefaultClient, srv.URL()+"/readyz"); got != http.StatusOK {
		t.Errorf("readyz with passing checks: %d, want 200", got)
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
