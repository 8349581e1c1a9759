package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/postgres"
)

func TestStore(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.Exercise(t, func(t *testing.T, pub ordercast.Publisher) ordercast.Store {
		t.Helper()
		return storetest.MustOpen(t, postgres.NewPublishing(pgtest.NewDatabase(t), pub))
	})
}

func TestLatestEvents(t *testing.T) {
	s := storetest.MustOpen(t, postgres.New(pgtest.NewDatabase(t)))
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: id, Details: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusReady} {
		if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "a", Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.LatestEvents(ctx, []string{"a", "b", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ordercast.Event{}
	for _, ev := range evs {
		got[ev.OrderID] = ev
	}
	if len(got) != 2 || got["a"].Seq != 3 || got["a"].Status != ordercast.StatusReady || got["b"].Seq != 1 {
		t.Fatalf("LatestEvents = %+v, want a at seq 3 (ready) and b at seq 1, nothing for missing", evs)
	}
}

func TestStore_FailedCommit(t *testing.T) {
	db := pgtest.NewDatabase(t)
	storetest.FailedCommit(t, func(t *testing.T, pub ordercast.Publisher) ordercast.Store {
		return storetest.MustOpen(t, postgres.NewPublishing(db, pub))
	}, func(t *testing.T, id string, seq int64) {
		conn, err := pgx.Connect(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(t.Context()) }()
		if _, err := conn.Exec(t.Context(),
			`INSERT INTO order_events (order_id, seq, status, at) VALUES ($1, $2, 'confirmed', now())`, id, seq); err != nil {
			t.Fatalf("plant event: %v", err)
		}
	})
}
