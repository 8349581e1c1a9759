package postgres_test

import (
	"testing"
	"time"

	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/postgres"
)

// TestAnnounceSettings: each node's announcement returns the other nodes' settings seen within
// live, not its own; a node seen longer ago is left out, one unseen for ForgetNodesAfter is
// deleted, and a node that forgets itself is gone from the others' view.
func TestAnnounceSettings(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a := storetest.MustOpen(t, postgres.New(db))
	b := storetest.MustOpen(t, postgres.New(db))
	live := 2 * time.Minute
	announce := func(s *postgres.Store, settings string) map[string]string {
		t.Helper()
		nodes, err := s.AnnounceSettings(t.Context(), []byte(settings), live)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, n := range nodes {
			got[n.Node] = string(n.Settings)
		}
		return got
	}
	if got := announce(a, `{"x": 1}`); len(got) != 0 {
		t.Fatalf("the first node sees %v, want no other", got)
	}
	if got := announce(b, `{"x": 2}`); len(got) != 1 || got[a.Node()] != `{"x": 1}` {
		t.Fatalf("the second node sees %v, want only %s with its settings", got, a.Node())
	}
	if got := announce(a, `{"x": 1}`); len(got) != 1 || got[b.Node()] != `{"x": 2}` {
		t.Fatalf("the first node sees %v, want only %s with its settings", got, b.Node())
	}

	conn := pgtest.Connect(t, db)
	if _, err := conn.Exec(t.Context(), `UPDATE cluster_nodes SET seen_at = now() - interval '3 minutes' WHERE node = $1`, b.Node()); err != nil {
		t.Fatal(err)
	}
	if got := announce(a, `{"x": 1}`); len(got) != 0 {
		t.Fatalf("a node unseen for 3 minutes is still live to the other: %v", got)
	}
	if _, err := conn.Exec(t.Context(), `UPDATE cluster_nodes SET seen_at = now() - $2::interval WHERE node = $1`, b.Node(), postgres.ForgetNodesAfter+time.Minute); err != nil {
		t.Fatal(err)
	}
	announce(a, `{"x": 1}`)
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM cluster_nodes WHERE node = $1`, b.Node()).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the row of a node unseen for longer than ForgetNodesAfter: %d, %v; want deleted", n, err)
	}

	announce(b, `{"x": 2}`)
	if err := a.ForgetNode(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := announce(b, `{"x": 2}`); len(got) != 0 {
		t.Fatalf("after the first node forgot itself the second sees %v, want none", got)
	}
}
