package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/retention"
	"github.com/ordercast/ordercast/sqlite"
)

// purgeBacklog is the number of ended orders BenchmarkPurgeBacklog purges: a test-sized version
// of the DBA review's 489,000 (finding 2), of the same shape.
const purgeBacklog = 20000

// BenchmarkPurgeBacklog: a node that turns --retention on over a backlog of ended orders, and
// creates orders one after another while it purges them. It reports how long each purge
// transaction held the writer (hold-*), the creates' latency meanwhile (create-*), the purge's
// rate and the largest WAL seen after a purge transaction:
// go test -run '^$' -bench PurgeBacklog -benchtime 1x ./sqlite/
// The quiet runs write nothing meanwhile: the purge alone must keep the WAL within its bound.
func BenchmarkPurgeBacklog(b *testing.B) {
	for _, c := range purgeConfigs {
		for _, quiet := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/quiet=%v", c.name, quiet), func(b *testing.B) {
				for range b.N {
					benchmarkPurgeBacklog(b, c.cfg, quiet)
				}
			})
		}
	}
}

func benchmarkPurgeBacklog(b *testing.B, cfg retention.Config, quiet bool) {
	ctx := b.Context()
	var clock atomic.Int64
	long := time.Now().Add(-30 * 24 * time.Hour)
	clock.Store(long.UnixMicro())
	s := sqlite.New(filepath.Join(b.TempDir(), "ordercast.db"))
	s.Now = func() time.Time { return time.UnixMicro(clock.Load()) }
	if err := s.Open(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	loadEnded(b, s, purgeBacklog)
	clock.Store(0)
	s.Now = time.Now // before the purge starts: the writer reads it, nothing else meanwhile

	timed := &timedPurger{s: s}
	timed.more = sync.NewCond(&timed.mu)
	cfg.Keep = 24 * time.Hour
	cfg.Every = time.Hour
	var purged atomic.Int64
	cfg.Purged = func(n int) { purged.Add(int64(n)) }
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		retention.Run(rctx, timed, cfg)
	}()
	var creates []time.Duration
	for i := 0; !quiet && purged.Load() < purgeBacklog; i++ {
		t0 := time.Now()
		if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: fmt.Sprintf("new-%d", i), RestaurantID: "r-7", CustomerID: "u-7"}); err != nil {
			b.Fatal(err)
		}
		creates = append(creates, time.Since(t0))
	}
	if quiet {
		timed.waitPurged(purgeBacklog)
	}
	took := time.Since(start)
	cancel()
	<-done

	holds := timed.took()
	report := func(what string, ds []time.Duration) {
		slices.Sort(ds)
		at := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000 }
		b.ReportMetric(at(0.5), what+"-p50-ms")
		b.ReportMetric(at(0.99), what+"-p99-ms")
		b.ReportMetric(at(1), what+"-max-ms")
	}
	report("hold", holds)
	if !quiet {
		report("create", creates)
	}
	b.ReportMetric(float64(purgeBacklog)/took.Seconds(), "purged/s")
	b.ReportMetric(float64(len(holds)), "transactions")
	b.ReportMetric(float64(timed.wal.Load())/(1<<20), "max-wal-MiB")
}

// timedPurger times each of the store's purge transactions, and notes the WAL's size after it.
type timedPurger struct {
	s      *sqlite.Store
	mu     sync.Mutex
	holds  []time.Duration
	purged int
	more   *sync.Cond // signalled when purged grows
	wal    atomic.Int64
}

// waitPurged returns once the purge deleted n orders.
func (p *timedPurger) waitPurged(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.purged < n {
		p.more.Wait()
	}
}

func (p *timedPurger) PurgeEnded(ctx context.Context, before time.Time, limit int) (int, error) {
	t0 := time.Now()
	n, err := p.s.PurgeEnded(ctx, before, limit)
	d := time.Since(t0)
	if n > 0 {
		p.mu.Lock()
		p.holds, p.purged = append(p.holds, d), p.purged+n
		p.more.Broadcast()
		p.mu.Unlock()
	}
	if size, werr := p.s.WALSize(); werr == nil && size > p.wal.Load() {
		p.wal.Store(size)
	}
	return n, err
}

func (p *timedPurger) took() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.holds)
}

// loadEnded writes n orders through the store, of the DBA review's shape: 96 % delivered through
// every stage with a courier (six events), 4 % cancelled (three), spread over 100 restaurants,
// n/5 customers and 50 couriers, each with 300 bytes of details.
func loadEnded(b *testing.B, s *sqlite.Store, n int) {
	b.Helper()
	ctx := b.Context()
	details := []byte(`{"name":"Erin Example","phone":"+49 30 1234567","address":"` + strings.Repeat("Hauptstrasse 1 ", 15) + `"}`)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, 32)
	)
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := endOrder(ctx, s, i, details); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func endOrder(ctx context.Context, s *sqlite.Store, i int, details []byte) error {
	id := fmt.Sprintf("o-%06d", i)
	if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: id, Details: details,
		RestaurantID: fmt.Sprintf("r-%d", i%100), CustomerID: fmt.Sprintf("u-%d", i%(purgeBacklog/5))}); err != nil {
		return err
	}
	steps := []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusCancelled}
	if i%25 != 0 {
		steps = []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusReady, ordercast.StatusOutForDelivery, ordercast.StatusDelivered}
	}
	for _, st := range steps {
		if st == ordercast.StatusOutForDelivery {
			if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: id, CourierID: fmt.Sprintf("c-%d", i%50)}); err != nil {
				return err
			}
		}
		if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: st}); err != nil {
			return err
		}
	}
	return nil
}
