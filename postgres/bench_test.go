package postgres_test

import (
	"context"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/postgres"
)

// BenchmarkAppendStatusParallel: ORDERCAST_TEST_POSTGRES=… go test -run '^$' -bench AppendStatusParallel -benchtime 5000x -count 3 ./postgres/
func BenchmarkAppendStatusParallel(b *testing.B) {
	storetest.BenchmarkWrites(b, openBench(b, pgtest.NewDatabase(b)))
}

// BenchmarkAppendStatusParallelParties: the same with orders owned by restaurants and customers.
func BenchmarkAppendStatusParallelParties(b *testing.B) {
	storetest.BenchmarkPartyWrites(b, openBench(b, pgtest.NewDatabase(b)))
}

func openBench(b *testing.B, db string) *postgres.Store {
	s := postgres.New(db)
	if err := s.Open(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkAppendStatusTwoNodes: two nodes (a store and its listener each) on one database, each
// order created on the first and its changes sent to the two in turn, as a load balancer that
// does not route by order spreads them.
func BenchmarkAppendStatusTwoNodes(b *testing.B) {
	db := pgtest.NewDatabase(b)
	nodes := []*postgres.Store{openBenchNode(b, db), openBenchNode(b, db)}
	storetest.RunWrites(b, func(ctx context.Context, id string) error {
		_, _, err := nodes[0].CreateOrder(ctx, ordercast.NewOrder{ID: id})
		return err
	}, func(ctx context.Context, id string, to ordercast.Status) error {
		_, _, _, err := nodes[storetest.Step(to)%2].AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: to})
		return err
	})
}

// openBenchNode opens a store with its listener feeding a hub, as `ordercast serve` wires them.
func openBenchNode(b *testing.B, db string) *postgres.Store {
	s := openBench(b, db)
	h := hub.New()
	l := postgres.NewListener(db, s, hub.NewFeed(h, s))
	if err := l.Open(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	return s
}
