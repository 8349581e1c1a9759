package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// BenchmarkParallelism is how many goroutines per GOMAXPROCS the write benchmark runs: many
// concurrent writers, as many HTTP handlers would be, so that a store can group their commits.
const BenchmarkParallelism = 32

// BenchmarkWrites measures concurrent durable writes on s: each goroutine creates an order and
// moves it through its five forward stages, one write per iteration. It reports changes/s (every
// creation and status change counts, as each is one durable commit).
func BenchmarkWrites(b *testing.B, s ordercast.Store) {
	b.Helper()
	ctx := b.Context()
	var goroutines atomic.Int64
	b.SetParallelism(BenchmarkParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		g := goroutines.Add(1)
		var id string
		for n := 0; pb.Next(); n++ {
			step := n % len(forward)
			if step == 0 {
				id = fmt.Sprintf("b%d-%d", g, n)
				if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: id}); err != nil {
					b.Errorf("CreateOrder: %v", err)
					return
				}
				continue
			}
			if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: forward[step]}); err != nil {
				b.Errorf("AppendStatus: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "changes/s")
}
