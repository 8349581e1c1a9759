package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// BenchmarkParallelism is how many goroutines per GOMAXPROCS the write benchmarks run: many
// concurrent writers, as many HTTP handlers would be, so that a store can group their commits.
const BenchmarkParallelism = 32

// BenchmarkWrites measures concurrent durable writes on s (see RunWrites) of orders without
// owners.
func BenchmarkWrites(b *testing.B, s ordercast.Store) {
	b.Helper()
	benchmarkWrites(b, s, func(id string) ordercast.NewOrder { return ordercast.NewOrder{ID: id} })
}

// BenchmarkPartyWrites is BenchmarkWrites with owners: each order has its own customer and one
// of ten restaurants, so each event also takes positions in two party logs, and every
// restaurant's log is written by many batches at once.
func BenchmarkPartyWrites(b *testing.B, s ordercast.Store) {
	b.Helper()
	var n atomic.Int64
	benchmarkWrites(b, s, func(id string) ordercast.NewOrder {
		return ordercast.NewOrder{ID: id, RestaurantID: fmt.Sprintf("r-%d", n.Add(1)%10), CustomerID: "u-" + id}
	})
}

func benchmarkWrites(b *testing.B, s ordercast.Store, order func(id string) ordercast.NewOrder) {
	b.Helper()
	RunWrites(b, func(ctx context.Context, id string) error {
		_, _, err := s.CreateOrder(ctx, order(id))
		return err
	}, func(ctx context.Context, id string, to ordercast.Status) error {
		_, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: to})
		return err
	})
}

// RunWrites runs a write benchmark: each goroutine creates an order and moves it through its
// five forward stages, one write per iteration, with create and move. It reports changes/s
// (every creation and status change counts, as each is one durable commit).
func RunWrites(b *testing.B, create func(ctx context.Context, id string) error, move func(ctx context.Context, id string, to ordercast.Status) error) {
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
			var err error
			if step := n % len(forward); step == 0 {
				id = fmt.Sprintf("b%d-%d", g, n)
				err = create(ctx, id)
			} else {
				err = move(ctx, id, forward[step])
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "changes/s")
}

// Step is a status's place on the path RunWrites moves each order along (1 for the first
// change), so that a benchmark can spread an order's changes over nodes.
func Step(to ordercast.Status) int { return slices.Index(forward, to) }
