package postgres_test

import (
	"testing"

	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/postgres"
)

// BenchmarkAppendStatusParallel: ORDERCAST_TEST_POSTGRES=… go test -run '^$' -bench AppendStatusParallel -benchtime 5000x -count 3 ./postgres/
func BenchmarkAppendStatusParallel(b *testing.B) {
	storetest.BenchmarkWrites(b, openBench(b))
}

// BenchmarkAppendStatusParallelParties: the same with orders owned by restaurants and customers.
func BenchmarkAppendStatusParallelParties(b *testing.B) {
	storetest.BenchmarkPartyWrites(b, openBench(b))
}

func openBench(b *testing.B) *postgres.Store {
	s := postgres.New(pgtest.NewDatabase(b))
	if err := s.Open(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}
