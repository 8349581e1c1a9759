package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
)

// The location workload (`ordercast bench --couriers C`): C couriers, each carrying one order out
// for delivery, post a position every --location-every to orders watched by W SSE watchers in this
// process. It reports the positions accepted per second and the time from a position's post to
// its bytes read by a watcher (post-to-screen), which includes the per-stream cap.

// LocationConfig is the location workload's settings.
type LocationConfig struct {
	Exe, URL, Token, DB string
	Nodes               int
	HoldStreams         bool
	Couriers            int
	Every               time.Duration
	Watchers            int
	Duration            time.Duration
	Timeout             time.Duration
	Stderr              io.Writer
}

// LocationReport is what the location workload measured.
type LocationReport struct {
	Couriers, Watchers  int
	Every, Duration     time.Duration
	Posted, Accepted    int64
	AcceptedPerSecond   float64
	Delivered           int64
	P50, P90, P99, Max  time.Duration
	StatusAfterPosition bool // a status change sent during the load arrived on every stream
}

// WriteTable prints the report.
func (r *LocationReport) WriteTable(w io.Writer) error {
	_, err := fmt.Fprintf(w, "couriers  watchers  every  duration  posted  accepted  accepted/s  delivered  post→screen p50 / p90 / p99 / max\n"+
		"%8d  %8d  %5s  %8s  %6d  %8d  %10.0f  %9d  %s / %s / %s / %s\n",
		r.Couriers, r.Watchers, r.Every, r.Duration, r.Posted, r.Accepted, r.AcceptedPerSecond, r.Delivered,
		fmtMS(r.P50), fmtMS(r.P90), fmtMS(r.P99), fmtMS(r.Max))
	return err
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// RunLocation runs the location workload.
func RunLocation(ctx context.Context, cfg LocationConfig) (*LocationReport, error) {
	switch {
	case cfg.Couriers < 1 || cfg.Watchers < 1 || cfg.Every <= 0 || cfg.Duration <= 0:
		return nil, errors.New("bench: --couriers, --watchers, --location-every and --duration must be positive")
	case cfg.Watchers > 9000:
		return nil, errors.New("bench: the location workload holds its watchers in this process: at most 9,000")
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	t, err := startTarget(ctx, cfg.Exe, cfg.URL, cfg.DB, max(cfg.Nodes, 1), cfg.Token, cfg.HoldStreams, cfg.Stderr)
	if err != nil {
		return nil, err
	}
	defer t.close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}
	defer hc.CloseIdleConnections()

	// One order per courier, out for delivery, with a drop-off so positions carry an ETA.
	prefix := fmt.Sprintf("loc%d-", time.Now().UnixNano()%1e6)
	if err := prepareLocationOrders(ctx, hc, t, prefix, cfg.Couriers); err != nil {
		return nil, err
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		delivered atomic.Int64
		opened    sync.WaitGroup
		readers   sync.WaitGroup
	)
	wctx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	sc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Watchers}}
	for i := range cfg.Watchers {
		opened.Add(1)
		readers.Go(func() {
			id := OrderID(prefix, i%cfg.Couriers)
			req, _ := http.NewRequestWithContext(wctx, "GET", t.urls[i%len(t.urls)]+api.StreamPath(id), nil)
			resp, err := sc.Do(req)
			if err != nil {
				opened.Done()
				return
			}
			defer resp.Body.Close()
			r := client.NewSSEReader(resp.Body)
			first := true
			var mine []time.Duration
			defer func() {
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			}()
			for {
				ev, err := r.Next()
				if first {
					opened.Done()
					first = false
				}
				if err != nil {
					return
				}
				if ev.Type != api.EventLocation {
					continue
				}
				var u struct{ At time.Time }
				if json.Unmarshal([]byte(ev.Data), &u) == nil {
					mine = append(mine, time.Since(u.At))
					delivered.Add(1)
				}
			}
		})
	}
	opened.Wait()

	// The couriers: each posts every Every from a random start, with at = the moment it posts.
	var posted, accepted atomic.Int64
	pctx, stopPosting := context.WithTimeout(ctx, cfg.Duration)
	defer stopPosting()
	var couriers sync.WaitGroup
	start := time.Now()
	for i := range cfg.Couriers {
		couriers.Go(func() {
			c := &client.Client{BaseURL: t.urls[i%len(t.urls)], HTTPClient: hc, Token: t.token}
			if sleep(pctx, rand.N(cfg.Every)) != nil {
				return
			}
			tick := time.NewTicker(cfg.Every)
			defer tick.Stop()
			lat := 52.5 + float64(i%1000)/10000
			for n := 0; ; n++ {
				body := fmt.Sprintf(`{"lat":%.6f,"lng":13.4,"speed_mps":7,"at":%q}`, lat+float64(n)/100000, time.Now().UTC().Format(time.RFC3339Nano))
				err := postLocation(pctx, c, courierID(i), body)
				if err != nil && pctx.Err() != nil {
					return // cut by the end of the run: neither posted nor refused
				}
				posted.Add(1)
				if err == nil {
					accepted.Add(1)
				}
				select {
				case <-pctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	couriers.Wait()
	elapsed := time.Since(start)
	// A position held back by the cap leaves within one interval: give the last ones time.
	_ = sleep(ctx, 1500*time.Millisecond)
	stopWatchers()
	readers.Wait()

	rep := &LocationReport{
		Couriers: cfg.Couriers, Watchers: cfg.Watchers, Every: cfg.Every, Duration: cfg.Duration,
		Posted: posted.Load(), Accepted: accepted.Load(), Delivered: delivered.Load(),
		AcceptedPerSecond: float64(accepted.Load()) / elapsed.Seconds(),
	}
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		q := func(p float64) time.Duration { return latencies[min(n-1, int(p*float64(n)))] }
		rep.P50, rep.P90, rep.P99, rep.Max = q(0.50), q(0.90), q(0.99), latencies[n-1]
	}
	if rep.Accepted == 0 {
		return rep, errors.New("bench: no position was accepted")
	}
	return rep, nil
}

func courierID(i int) string { return fmt.Sprintf("bench-courier-%d", i) }

// postLocation posts one position; nil on 200.
func postLocation(ctx context.Context, c *client.Client, cid, body string) error {
	if err := sendJSON(ctx, c, "POST", api.LocationPath(cid), []byte(body)); err != nil {
		return fmt.Errorf("post position: %w", err)
	}
	return nil
}

// sendJSON sends a JSON body with c's token; nil on 200.
func sendJSON(ctx context.Context, c *client.Client, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// prepareLocationOrders creates n orders, assigns order i to courier i and sends it out for
// delivery.
func prepareLocationOrders(ctx context.Context, hc *http.Client, t *target, prefix string, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for w := range min(32, n) {
		wg.Go(func() {
			c := &client.Client{BaseURL: t.urls[w%len(t.urls)], HTTPClient: hc, Token: t.token}
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := prepareLocationOrder(ctx, c, OrderID(prefix, i), courierID(i)); err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

func prepareLocationOrder(ctx context.Context, c *client.Client, id, cid string) error {
	if _, err := c.CreateOrder(ctx, client.CreateOrderRequest{ID: id, Dropoff: &ordercast.Point{Lat: 52.53, Lng: 13.41}}); err != nil {
		return fmt.Errorf("create order: %w", err)
	}
	body, _ := json.Marshal(api.SetCourierRequest{CourierID: &cid}) // a string pointer: cannot fail
	if err := sendJSON(ctx, c, "PUT", api.CourierPath(id), body); err != nil {
		return fmt.Errorf("assign courier: %w", err)
	}
	if _, err := c.SetStatus(ctx, id, client.SetStatusRequest{Status: ordercast.StatusOutForDelivery}); err != nil {
		return fmt.Errorf("send out for delivery: %w", err)
	}
	return nil
}
