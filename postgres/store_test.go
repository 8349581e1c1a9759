package postgres_test

import (
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/postgres"
	"github.com/ordercast/ordercast/storetest"
)

func TestStore(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.Exercise(t, func(t *testing.T, pub ordercast.Publisher) ordercast.Store {
		t.Helper()
		s := postgres.New(pgtest.NewDatabase(t))
		s.Publisher = pub
		return mustOpen(t, s)
	})
}

func mustOpen(t *testing.T, s *postgres.Store) *postgres.Store {
	t.Helper()
	if err := s.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
