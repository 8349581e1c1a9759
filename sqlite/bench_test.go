package sqlite_test

import (
	"path/filepath"
	"testing"

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
