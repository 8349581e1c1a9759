package sqlite_test

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

// writtenBy empties the WAL, runs write, and returns the tables and indexes whose pages the
// WAL then holds: what the commits of write wrote, read from the WAL's frame headers and
// dbstat's map of pages.
func writtenBy(t *testing.T, s *sqlite.Store, db *sql.DB, write func()) []string {
	t.Helper()
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	write()
	wal, err := os.ReadFile(sqlite.WALPath(s))
	if err != nil {
		t.Fatal(err)
	}
	if len(wal) < 32 {
		t.Fatalf("the WAL holds %d bytes: no commit", len(wal))
	}
	pageSize := int(binary.BigEndian.Uint32(wal[8:12]))
	var pages []int64
	for off := 32; off+24+pageSize <= len(wal); off += 24 + pageSize {
		pages = append(pages, int64(binary.BigEndian.Uint32(wal[off:off+4])))
	}
	rows, err := db.Query(`SELECT name, pageno FROM dbstat`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var (
			name string
			page int64
		)
		if err := rows.Scan(&name, &page); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(pages, page) && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// TestAStatusChangeLeavesTheActiveIndexesAlone: a change that keeps an order active writes its
// row, its event and its parties' logs, and no page of the indexes that find the active orders
// (migration 006): their keys are not written by it. One that ends the order, or gives it a
// courier, does write them, which shows the test sees an index written.
func TestAStatusChangeLeavesTheActiveIndexesAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	s.CheckpointInterval, s.CheckpointSize, s.MaxWALSize = time.Hour, 1<<30, 1<<30 // nothing copies the WAL but the test
	storetest.MustOpen(t, s)
	db := rawDB(t, path)
	ctx := t.Context()
	for i := range 300 { // several pages in each index
		id := fmt.Sprintf("o-%03d", i)
		if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: fmt.Sprintf("r-%d", i%7), CustomerID: "u-" + id}); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: id, CourierID: fmt.Sprintf("c-%d", i%11)}); err != nil {
			t.Fatal(err)
		}
	}
	move := func(id string, to ordercast.Status) func() {
		return func() {
			if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: id, Status: to}); err != nil {
				t.Fatal(err)
			}
		}
	}
	active := func(names []string) (idx []string) {
		for _, n := range names {
			if strings.HasSuffix(n, "_active") {
				idx = append(idx, n)
			}
		}
		return idx
	}

	got := writtenBy(t, s, db, move("o-150", ordercast.StatusConfirmed))
	if !slices.Contains(got, "orders") || !slices.Contains(got, "order_events") {
		t.Fatalf("a status change wrote %v: want the orders and order_events pages among them", got)
	}
	if idx := active(got); len(idx) > 0 {
		t.Errorf("a status change that keeps the order active wrote pages of %v (all it wrote: %v)", idx, got)
	}

	got = writtenBy(t, s, db, move("o-151", ordercast.StatusCancelled))
	want := []string{"orders_active", "orders_courier_active", "orders_customer_active", "orders_restaurant_active"}
	if idx := active(got); !slices.Equal(idx, want) {
		t.Errorf("a cancellation wrote pages of %v, want %v: it leaves them all", idx, want)
	}

	got = writtenBy(t, s, db, func() {
		if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: "o-152", CourierID: "c-new"}); err != nil {
			t.Fatal(err)
		}
	})
	if idx := active(got); !slices.Equal(idx, []string{"orders_courier_active"}) {
		t.Errorf("a courier assignment wrote pages of %v, want only orders_courier_active", idx)
	}
}

// TestMigrationKeepsTheActiveOrders: a database an earlier release wrote (migrations 001 to
// 005) opens with its orders found active as they were (storetest.MigratedActiveOrders).
func TestMigrationKeepsTheActiveOrders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	db := rawDB(t, path)
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		version int
		name    string
	}{{1, "orders"}, {2, "idempotency_keys"}, {4, "owners"}, {5, "order_places"}} {
		file := fmt.Sprintf("migrations/%03d_%s.up.sql", m.version, m.name)
		q, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(q)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?, ?, 0)`, m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range storetest.PreActiveOrders {
		if _, err := db.Exec(`INSERT INTO orders (id, status, version, details, created_at, updated_at, restaurant_id, customer_id, courier_id)
			VALUES (?, ?, 1, '{}', ?, ?, 'r-1', 'u-1', 'c-1')`, o.ID, string(o.Status), o.CreatedMicros, o.UpdatedMicros); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO order_events (order_id, seq, status, at) VALUES (?, 1, ?, ?)`, o.ID, string(o.Status), o.UpdatedMicros); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.MigratedActiveOrders(t, storetest.MustOpen(t, sqlite.New(path)))
	newestWithoutASort(t, rawDB(t, path))
}

// TestAnOlderReleasesWritesKeepActive: a release from before migration 006 does not refuse a
// migrated file (that came on 2026-12-02), so a rolled-back binary, or one started beside a
// newer process, writes orders without knowing the active column. An order it creates is among
// the active orders, one it ends leaves them (the triggers of migration 013), and so does an
// order this release ends, which leaves the column to the trigger.
func TestAnOlderReleasesWritesKeepActive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	ctx := t.Context()
	for _, id := range []string{"new", "ended"} {
		if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: "r-1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := s.AppendStatus(ctx, ordercast.StatusChange{OrderID: "ended", Status: ordercast.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	// What release 005's writer sends: its INSERT and UPDATE, which name no active column.
	for _, q := range []string{
		`INSERT INTO orders (id, status, version, details, created_at, updated_at, restaurant_id, customer_id, courier_id)
			VALUES ('old', 'placed', 1, '{}', 1, 1, 'r-1', '', '')`,
		`UPDATE orders SET status = 'delivered', version = 2, updated_at = 2 WHERE id = 'new'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ActiveOrders(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.ScopeSnapshot(ctx, ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r-1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for what, orders := range map[string][]ordercast.Order{"active orders": all, "restaurant r-1's": snap.Orders} {
		if len(orders) != 1 || orders[0].ID != "old" {
			t.Errorf("%s: %+v, want only the one the older release created (the others have ended)", what, orders)
		}
	}
}

// TestAnOlderReleasesReassignmentLeavesNoName: a release from before migration 010 writes
// without knowing courier names. An order it gives to another courier keeps no name of the
// courier before (the trigger of migration 013): its customer must not read "Omar is on the
// way" of someone else. This release's own assignments keep their names.
func TestAnOlderReleasesReassignmentLeavesNoName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := storetest.MustOpen(t, sqlite.New(path))
	ctx := t.Context()
	if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: "o", RestaurantID: "r-1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: "o", CourierID: "c-1", CourierName: "Omar"}); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	name := func() (string, string) {
		t.Helper()
		var id, name string
		if err := db.QueryRow(`SELECT courier_id, courier_name FROM orders WHERE id = 'o'`).Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		return id, name
	}
	if id, n := name(); id != "c-1" || n != "Omar" {
		t.Fatalf("after this release's assignment the order has courier %q named %q, want c-1 named Omar", id, n)
	}
	// What release 009's writer sends for a reassignment: its UPDATE, then its event, neither
	// naming a courier_name column.
	for _, q := range []string{
		`UPDATE orders SET status = 'placed', version = 3, updated_at = 3, courier_id = 'c-2' WHERE id = 'o'`,
		`INSERT INTO order_events (order_id, seq, status, at, note, actor, kind, courier_id)
			VALUES ('o', 3, 'placed', 3, '', '', 'courier', 'c-2')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if id, n := name(); id != "c-2" || n != "" {
		t.Errorf("after an older release's reassignment the order has courier %q named %q, want c-2 with no name", id, n)
	}
}

// TestMigrationMendsAnOlderReleasesWrites: a file an older release already wrote on after it was
// migrated (an order created without the active column, one ended without clearing it, one
// reassigned without a name) is mended by migration 013 as it is applied.
func TestMigrationMendsAnOlderReleasesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	s := sqlite.New(path)
	storetest.MustOpen(t, s)
	ctx := t.Context()
	for _, id := range []string{"ended", "named"} {
		if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: "r-1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := s.AssignCourier(ctx, ordercast.CourierChange{OrderID: "named", CourierID: "c-1", CourierName: "Omar"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	// The file as it was before 013, as an older release then left it.
	for _, q := range []string{
		`DROP TRIGGER orders_active_insert`, `DROP TRIGGER orders_active_status`, `DROP TRIGGER order_events_courier_name`,
		`DELETE FROM schema_migrations WHERE version = 13`,
		`INSERT INTO orders (id, status, version, details, created_at, updated_at, restaurant_id, customer_id, courier_id)
			VALUES ('old', 'placed', 1, '{}', 1, 1, 'r-1', '', '')`,
		`UPDATE orders SET status = 'delivered', version = 2, updated_at = 2 WHERE id = 'ended'`,
		`UPDATE orders SET version = 3, updated_at = 3, courier_id = 'c-2' WHERE id = 'named'`,
		`INSERT INTO order_events (order_id, seq, status, at, note, actor, kind, courier_id)
			VALUES ('named', 3, 'placed', 3, '', '', 'courier', 'c-2')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = storetest.MustOpen(t, sqlite.New(path))
	all, err := s.ActiveOrders(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range all {
		ids = append(ids, o.ID+"/"+o.CourierName)
	}
	slices.Sort(ids)
	if want := []string{"named/", "old/"}; !slices.Equal(ids, want) {
		t.Errorf("active orders (id/courier name) after the migration: %v, want %v", ids, want)
	}
}

// TestTheNewestActiveOrdersAreReadWithoutASort: ActiveOrders reads the first entries of the
// orders_active index in its order (migration 007), so reading the newest few costs the same
// however many orders are active; a sort would read and order every one of them first.
func TestTheNewestActiveOrdersAreReadWithoutASort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	storetest.MustOpen(t, sqlite.New(path))
	newestWithoutASort(t, rawDB(t, path))
}

// TestAListOfAnActiveStatusReadsTheActiveOrders: GET /v1/orders?status=preparing asks for
// orders that are among the newest few of a year's; read from the range of every order's index
// it passed all the ended ones first (2.8 s at 1,000,000 orders on PostgreSQL). A status only an
// active order has is read from the active orders' indexes; an ended status, which most orders
// have, from the range.
func TestAListOfAnActiveStatusReadsTheActiveOrders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	storetest.MustOpen(t, sqlite.New(path))
	db := rawDB(t, path)
	for _, tt := range []struct {
		q     ordercast.OrderQuery
		index string
	}{
		{ordercast.OrderQuery{Status: ordercast.StatusPreparing, Limit: 100}, "orders_active"},
		{ordercast.OrderQuery{Status: ordercast.StatusPlaced, RestaurantID: "r-1", Limit: 100}, "orders_restaurant_active"},
		{ordercast.OrderQuery{Status: ordercast.StatusDelivered, Limit: 100}, "orders_created"},
		{ordercast.OrderQuery{Status: ordercast.StatusCancelled, RestaurantID: "r-1", Limit: 100}, "orders_restaurant_created"},
		{ordercast.OrderQuery{Limit: 100}, "orders_created"},
		// Newest first: the same ranges, read backwards.
		{ordercast.OrderQuery{Limit: 100, Newest: true}, "orders_created"},
		{ordercast.OrderQuery{RestaurantID: "r-1", Limit: 100, Newest: true}, "orders_restaurant_created"},
		{ordercast.OrderQuery{Status: ordercast.StatusPlaced, RestaurantID: "r-1", Limit: 100, Newest: true}, "orders_restaurant_active"},
	} {
		query, args := sqlite.ListOrdersQuery(tt.q)
		plan := queryPlan(t, db, query, args...)
		if len(plan) == 0 || !strings.Contains(plan[0], "USING INDEX "+tt.index+" ") && !strings.HasSuffix(plan[0], "USING INDEX "+tt.index) {
			t.Errorf("a list of %+v is read %q, want from %s", tt.q, plan, tt.index)
		}
		// A range is read in its order, either way, with no sort: a restaurant's newest page
		// costs the same at a year's orders as at a day's.
		if !strings.Contains(tt.index, "active") && slices.ContainsFunc(plan, func(step string) bool { return strings.Contains(step, "TEMP B-TREE") }) {
			t.Errorf("a list of %+v is sorted: %q", tt.q, plan)
		}
	}
}

// queryPlan is SQLite's plan of query, one detail a step.
func queryPlan(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(`EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var (
			id, parent, unused int
			detail             string
		)
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// newestWithoutASort checks that ActiveOrders reads the first entries of the orders_active
// index of db in its order, with no sort.
func newestWithoutASort(t *testing.T, db *sql.DB) {
	t.Helper()
	plan := queryPlan(t, db, sqlite.ActiveOrdersQuery, 500)
	if len(plan) == 0 || !strings.Contains(plan[0], "USING INDEX orders_active") || slices.ContainsFunc(plan, func(d string) bool {
		return strings.Contains(d, "TEMP B-TREE")
	}) {
		t.Errorf("ActiveOrders' plan is %q: want the orders_active index read in its order, with no sort", plan)
	}
}

// TestACustomersOrdersAreReadFromTheirLog: GET /v1/orders?customer_id= (an access request's
// export) reads the customer's party log by its key and each of its orders by the primary key;
// no index of the orders' ranges, and no scan of the orders (the review's hand-made query for one
// customer scanned 1,000,000 orders for 674 ms on PostgreSQL).
func TestACustomersOrdersAreReadFromTheirLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ordercast.db")
	storetest.MustOpen(t, sqlite.New(path))
	db := rawDB(t, path)
	for _, q := range []ordercast.OrderQuery{
		{CustomerID: "u-1", Limit: 100},
		{CustomerID: "u-1", RestaurantID: "r-1", Status: ordercast.StatusPlaced, Limit: 100},
	} {
		query, args := sqlite.ListOrdersQuery(q)
		plan := queryPlan(t, db, query, args...)
		joined := strings.Join(plan, " | ")
		if !strings.Contains(joined, "party_log USING PRIMARY KEY (party=?)") || !strings.Contains(joined, "SEARCH orders USING INDEX sqlite_autoindex_orders_1 (id=?)") ||
			slices.ContainsFunc(plan, func(d string) bool { return strings.HasPrefix(d, "SCAN orders") }) {
			t.Errorf("a list of %+v is read %q, want from the party log's key, then each order by id", q, plan)
		}
	}
}
