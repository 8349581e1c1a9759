package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ordercast/ordercast"

	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

// BenchmarkAppendStatusParallel: go test -run '^$' -bench AppendStatusParallel -benchtime 20000x -count 3 ./sqlite/
func BenchmarkAppendStatusParallel(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			s := sqlite.New(filepath.Join(b.TempDir(), "ordercast.db"))
			s.Synchronous = sync
			if err := s.Open(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			storetest.BenchmarkWrites(b, s)
		})
	}
}

// BenchmarkEndedIndex: the write path with and without the index a purge builds (--retention),
// one write in six of which ends its order and so writes an entry of it:
// go test -run '^$' -bench EndedIndex -benchtime 30000x -count 4 ./sqlite/
func BenchmarkEndedIndex(b *testing.B) {
	for _, retention := range []bool{false, true} {
		b.Run(fmt.Sprintf("retention=%v", retention), func(b *testing.B) {
			s := sqlite.New(filepath.Join(b.TempDir(), "ordercast.db"))
			if err := s.Open(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			if retention { // builds the index; nothing ended before the zero time
				if _, err := s.PurgeEnded(b.Context(), time.Time{}, 1); err != nil {
					b.Fatal(err)
				}
			}
			storetest.BenchmarkWrites(b, s)
		})
	}
}

// BenchmarkReads: the reads a stream's opening and a courier's first post make, one after
// another: go test -run '^$' -bench Reads -benchmem ./sqlite/
func BenchmarkReads(b *testing.B) {
	ctx := b.Context()
	s := sqlite.New(filepath.Join(b.TempDir(), "ordercast.db"))
	if err := s.Open(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: "o-1", RestaurantID: "r-1"}); err != nil {
		b.Fatal(err)
	}
	if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: "o-1", CourierID: "c-1"}); err != nil {
		b.Fatal(err)
	}
	courier := ordercast.Party{Kind: ordercast.PartyCourier, ID: "c-1"}
	b.Run("Order", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Order(ctx, "o-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EventsAfter", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.EventsAfter(ctx, "o-1", 0, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ScopeSnapshot", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ScopeSnapshot(ctx, courier, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkActiveOrders: the newest active orders, as the all-orders stream's snapshot (500) and
// the home page (20) read them, with 19,000 orders active: go test -run '^$' -bench
// ActiveOrders -benchtime 50x ./sqlite/
func BenchmarkActiveOrders(b *testing.B) {
	ctx := b.Context()
	s := sqlite.New(filepath.Join(b.TempDir(), "ordercast.db"))
	if err := s.Open(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	for i := range 19000 {
		o := ordercast.NewOrder{ID: fmt.Sprintf("o-%05d", i), RestaurantID: fmt.Sprintf("r-%d", i%50), CustomerID: fmt.Sprintf("u-%d", i)}
		if _, _, err := s.CreateOrder(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range []int{500, 20} {
		b.Run(fmt.Sprintf("newest-%d", n), func(b *testing.B) {
			for b.Loop() {
				if orders, err := s.ActiveOrders(ctx, n); err != nil || len(orders) != n {
					b.Fatalf("ActiveOrders(%d) = %d orders, %v", n, len(orders), err)
				}
			}
		})
	}
}
