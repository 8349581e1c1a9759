package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

// TestExpiredKeysDoNotPileUp: a batch that records answers purges expired records in proportion
// to them (ordercast.ExpiredKeysToPurge): under load group commit makes batches of dozens of
// keyed writes, and a fixed number purged per batch let expired records pile up without bound.
func TestExpiredKeysDoNotPileUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	now := func() time.Time { return time.UnixMicro(clock.Load()).UTC() }
	s := sqlite.New(path)
	s.Now = now
	storetest.MustOpen(t, s)

	const perBatch, batches = 64, 10
	for b := range batches {
		sqlite.Held{Store: s}.HoldWrites(perBatch)
		var wg sync.WaitGroup
		for i := range perBatch {
			wg.Go(func() {
				idem := &ordercast.Idempotency{Scope: "POST /v1/orders admin", Key: fmt.Sprintf("k-%d-%d", b, i), Fingerprint: "f",
					Expires: now().Add(time.Second),
					Render: func(ordercast.Result) (ordercast.Answer, error) {
						return ordercast.Answer{Status: 201, Body: []byte(`{}`)}, nil
					}}
				if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d-%d", b, i), Idem: idem}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		clock.Add((2 * time.Second).Microseconds()) // every record so far has expired
	}
	var expired int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM idempotency_keys WHERE expires_at <= ?`, clock.Load()).Scan(&expired); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d expired records left after %d batches of %d keyed writes", expired, batches, perBatch)
	if expired > 2*perBatch {
		t.Errorf("%d expired idempotency records left after %d batches of %d: purging does not keep up", expired, batches, perBatch)
	}
}
