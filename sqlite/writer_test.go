package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/ordercast/ordercast"
)

// TestFailedRollbackReplacesTheWriterConnection: a batch whose COMMIT fails and whose ROLLBACK
// fails too leaves its transaction open on the writer's pinned connection. The writer replaces
// the connection, so the next write commits, and a fresh connection to the file sees it, and
// nothing of the failed batch.
func TestFailedRollbackReplacesTheWriterConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := openRecent(t, path)
	if _, _, err := s.CreateOrder(t.Context(), ordercast.NewOrder{ID: "o"}); err != nil {
		t.Fatal(err)
	}
	// A COMMIT and a ROLLBACK that fail when run, on the writer's connection. The writer is
	// idle: queueing the next write (under the group-commit mutex) publishes the swap to it, and
	// its answer what it did.
	// The statements swapped out are closed: a statement left open on a connection keeps it,
	// and its transaction, alive after it is closed.
	prepare := func(query string) *sql.Stmt {
		t.Helper()
		stmt, err := s.conn.PrepareContext(t.Context(), query)
		if err != nil {
			t.Fatal(err)
		}
		return stmt
	}
	failing := prepare(`SELECT json('{')`)
	st := s.stmts
	_, _ = st.commit.Close(), st.rollback.Close()
	st.commit, st.rollback = failing, failing
	_, _, _, err := s.AppendStatus(t.Context(), ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusCancelled})
	if err == nil {
		t.Fatal("the change committed through a failing COMMIT")
	}
	if s.stmts == st {
		// Not replaced: working statements go back, so that what fails next is the connection
		// left in the failed batch's transaction.
		_ = failing.Close()
		st.commit, st.rollback = prepare(`COMMIT`), prepare(`ROLLBACK`)
	}

	o, ev, changed := mustAppend(t, s, ordercast.StatusChange{OrderID: "o", Status: ordercast.StatusConfirmed})
	if !changed || o.Version != 2 || ev.Seq != 2 {
		t.Fatalf("after the failed batch: changed %v, version %d, event seq %d; want a new change at 2", changed, o.Version, ev.Seq)
	}
	fresh, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fresh.Close() })
	var status string
	var version, events int
	if err := fresh.QueryRowContext(t.Context(), `
		SELECT status, version, (SELECT count(*) FROM order_events WHERE order_id = 'o')
		FROM orders WHERE id = 'o'`).Scan(&status, &version, &events); err != nil {
		t.Fatal(err)
	}
	if status != string(ordercast.StatusConfirmed) || version != 2 || events != 2 {
		t.Fatalf("a fresh connection reads o %s at version %d with %d events; want confirmed at 2 with 2", status, version, events)
	}
}
