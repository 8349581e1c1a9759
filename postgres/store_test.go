package postgres_test

import (
	"fmt"
	"net/url"
	"strings"
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
		return postgres.Held{Store: storetest.MustOpen(t, postgres.NewPublishing(pgtest.NewDatabase(t), pub))}
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
		return postgres.Held{Store: storetest.MustOpen(t, postgres.NewPublishing(db, pub))}
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

// A store refuses to open with a MaxNotifyPayload too small for the short notice of an event
// (it could only be sent over the bound) or one PostgreSQL refuses, saying what it must be,
// before it connects to anything.
func TestOpenRefusesANotifyPayloadOutOfBounds(t *testing.T) {
	for _, max := range []int{1, 40, postgres.MinNotifyPayload - 1, 8000} {
		s := postgres.New("postgres://127.0.0.1:1/nowhere")
		s.MaxNotifyPayload = max
		err := s.Open(t.Context())
		if err == nil {
			_ = s.Close()
			t.Fatalf("MaxNotifyPayload %d: opened", max)
		}
		if want := fmt.Sprintf("MaxNotifyPayload is %d bytes; it must be from %d", max, postgres.MinNotifyPayload); !strings.Contains(err.Error(), want) {
			t.Errorf("MaxNotifyPayload %d: %v; want it to say %q", max, err, want)
		}
	}
}

// The pool's bound is the URL's pool_max_conns when the URL sets it, and the store's MaxConns
// otherwise: also when the words "pool_max_conns" appear in the URL as something else (a
// password, another parameter's value), which once made the store leave its setting unused.
func TestPoolBoundFromTheURLOrMaxConns(t *testing.T) {
	db := pgtest.NewDatabase(t)
	with := func(param, value string) string {
		u, err := url.Parse(db)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set(param, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, tc := range []struct {
		url  string
		want int32
	}{
		{db, 5},
		{with("pool_max_conns", "3"), 3},
		{with("application_name", "pool_max_conns"), 5},
	} {
		s := postgres.New(tc.url)
		s.MaxConns = 5
		storetest.MustOpen(t, s)
		if got := s.PoolStat().MaxConns(); got != tc.want {
			t.Errorf("%s with MaxConns 5: the pool holds %d connections at most, want %d", tc.url, got, tc.want)
		}
	}
}
