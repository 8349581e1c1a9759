package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// TestReadTransactionsNeverWaitForAnotherReader: a read transaction holds one reader; a query
// in it that had not been prepared yet was prepared on the pool, under the statements' lock,
// so with every reader in such a transaction none came back and every read of the node stalled
// (party streams opening together after a restart, MaxReaders of them). A transaction now runs
// what is not prepared on its own connection.
func TestReadTransactionsNeverWaitForAnotherReader(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), "ordercast.db"))
	s.MaxReaders = 2
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var txs []txReads
	for range s.MaxReaders {
		tx, err := s.readers.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		txs = append(txs, s.reads.in(tx))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(txs))
	for i, q := range txs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var n int
			errs[i] = q.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&n) // prepared nowhere yet
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d, with every reader in a transaction: %v", i, err)
		}
	}
}

// TestManyPartySnapshotsAtOnceOnAFreshStore: what a restart meets, through the store's own entry
// point: many more snapshots at once than readers.
func TestManyPartySnapshotsAtOnceOnAFreshStore(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), "ordercast.db"))
	s.MaxReaders = 2
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			kinds := []ordercast.PartyKind{ordercast.PartyRestaurant, ordercast.PartyCourier, ordercast.PartyCustomer}
			if _, err := s.ScopeSnapshot(ctx, ordercast.Party{Kind: kinds[i%3], ID: fmt.Sprint("p-", i)}, 100); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPingWhileClosing: a readiness probe still running when the store closes gets an error,
// not a nil pointer (Close set the writer to nil under it, a data race under -race).
func TestPingWhileClosing(t *testing.T) {
	for range 10 {
		s := New(filepath.Join(t.TempDir(), "ordercast.db"))
		if err := s.Open(t.Context()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = s.Ping(context.Background())
			}
		})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(t.Context()); ordercast.ErrorCode(err) != ordercast.EUnavailable {
			t.Errorf("Ping after Close: %v, want unavailable", err)
		}
		close(stop)
		wg.Wait()
	}
}
