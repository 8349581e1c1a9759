package postgres_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/postgres"
)

// The location bus keeps the newest position of each order for nodes that open streams later,
// with the courier it came from, and reads any number of orders' positions in one call: those
// that have one, newest only, none for the others. Another courier's position replaces an
// order's even when its phone's clock is behind the old courier's.
func TestLocationBusLatest(t *testing.T) {
	b := openBus(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	b.Send([]ordercast.LocationUpdate{
		{OrderID: "a", CourierID: "c-1", Lat: 1, At: now.Add(-time.Second)},
		{OrderID: "b", CourierID: "c-2", Lat: 2, At: now},
	})
	b.Send([]ordercast.LocationUpdate{{OrderID: "a", CourierID: "c-1", Lat: 1.5, At: now}})
	var got []ordercast.LocationUpdate
	testutil.WaitFor(t, "both positions in the table", func() bool {
		var err error
		got, err = b.Latest(t.Context(), []string{"a", "b", "missing"})
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 2
	})
	slices.SortFunc(got, func(x, y ordercast.LocationUpdate) int { return cmp.Compare(x.Lat, y.Lat) })
	if got[0].OrderID != "a" || got[0].Lat != 1.5 || got[0].CourierID != "c-1" ||
		got[1].OrderID != "b" || got[1].Lat != 2 || got[1].CourierID != "c-2" || !got[1].At.Equal(now) {
		t.Fatalf("Latest = %+v, want a at 1.5 (c-1) and b at 2 (c-2)", got)
	}

	b.Send([]ordercast.LocationUpdate{{OrderID: "b", CourierID: "c-3", Lat: 3, At: now.Add(-5 * time.Second)}})
	testutil.WaitFor(t, "c-3's position to replace c-2's", func() bool {
		got, err := b.Latest(t.Context(), []string{"b"})
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 1 && got[0].CourierID == "c-3"
	})
}

// The table keeps, of two positions of an order, the one ordercast.LocationUpdate.Replaces says:
// its upsert spells the rule in SQL, and this holds the two to one answer. Above all, an old
// courier's position that comes late (posted on a node the reassignment had not reached yet, or
// in a batch on its way when the order moved) does not replace the new courier's, whatever its
// time. The order's version a position was judged against comes back from the table.
func TestLocationBusReplacesAsTheRuleSays(t *testing.T) {
	b := openBus(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	pos := func(courier string, version int64, at time.Duration) ordercast.LocationUpdate {
		return ordercast.LocationUpdate{CourierID: courier, OrderVersion: version, At: now.Add(at)}
	}
	cases := []struct {
		name       string
		kept, next ordercast.LocationUpdate
	}{
		{"same courier, later", pos("a", 4, 0), pos("a", 4, time.Second)},
		{"same courier, earlier", pos("a", 4, 0), pos("a", 4, -time.Second)},
		{"same courier, same time", pos("a", 4, 0), pos("a", 4, 0)},
		{"same courier, later, older copy", pos("a", 5, 0), pos("a", 4, time.Second)},
		{"new courier, clock behind", pos("a", 4, 0), pos("b", 5, -time.Minute)},
		{"old courier, late", pos("b", 5, 0), pos("a", 4, time.Minute)},
		{"old courier, version unknown", pos("b", 5, 0), pos("a", 0, time.Minute)},
		{"new courier, kept version unknown", pos("a", 0, 0), pos("b", 5, -time.Minute)},
		{"given back to the first courier", pos("b", 5, 0), pos("a", 7, -time.Minute)},
		{"no courier, then one", pos("", 0, 0), pos("a", 4, -time.Minute)},
	}
	ids := make([]string, len(cases))
	var kept, next []ordercast.LocationUpdate
	for i, c := range cases {
		ids[i] = fmt.Sprintf("order-%d", i)
		c.kept.OrderID, c.kept.Lat = ids[i], 1
		c.next.OrderID, c.next.Lat = ids[i], 2
		kept, next = append(kept, c.kept), append(next, c.next)
	}
	latest := func(ids []string) map[string]ordercast.LocationUpdate {
		t.Helper()
		us, err := b.Latest(t.Context(), ids)
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]ordercast.LocationUpdate, len(us))
		for _, u := range us {
			m[u.OrderID] = u
		}
		return m
	}
	b.Send(kept)
	testutil.WaitFor(t, "the first positions in the table", func() bool { return len(latest(ids)) == len(ids) })
	// The next positions go in one batch, so in one transaction with the marker.
	b.Send(append(next, ordercast.LocationUpdate{OrderID: "marker", CourierID: "m", At: now}))
	testutil.WaitFor(t, "the next batch in the table", func() bool { return len(latest([]string{"marker"})) == 1 })
	got := latest(ids)
	for i, c := range cases {
		want := kept[i]
		if next[i].Replaces(kept[i]) {
			want = next[i]
		}
		if g := got[ids[i]]; g.Lat != want.Lat || g.CourierID != want.CourierID || g.OrderVersion != want.OrderVersion || !g.At.Equal(want.At) {
			t.Errorf("%s: the table holds %+v, want %+v", c.name, g, want)
		}
	}
}

// openBus opens a location bus of short batches over a store of a database of its own.
func openBus(t *testing.T) *postgres.LocationBus {
	t.Helper()
	b := postgres.NewLocationBus(storetest.MustOpen(t, postgres.New(pgtest.NewDatabase(t))))
	b.Batch = 10 * time.Millisecond
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// A batch of more positions than one notice holds goes out as several notices, each under
// PostgreSQL's payload limit: a listener gets every position, and the table holds every one.
func TestLocationBusSplitsABatchIntoNotices(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(url))
	listen := pgtest.Connect(t, url)
	if _, err := listen.Exec(t.Context(), "LISTEN "+postgres.PositionsChannel); err != nil {
		t.Fatal(err)
	}
	b := postgres.NewLocationBus(s)
	b.Batch = time.Hour // the batch goes out when the bus closes
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	const n = 400
	now := time.Now().UTC().Truncate(time.Microsecond)
	us := make([]ordercast.LocationUpdate, n)
	ids := make([]string, n)
	for i := range us {
		ids[i] = fmt.Sprintf("order-%03d", i)
		us[i] = ordercast.LocationUpdate{OrderID: ids[i], CourierID: "c-" + ids[i], Lat: 52.5, Lng: 13.4, At: now}
	}
	b.Send(us)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	_, notices := readNotices(t, listen, n, postgres.DecodePositions)
	if notices < 2 {
		t.Errorf("%d positions came in %d notice, want them split", n, notices)
	}
	kept, err := b.Latest(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != n {
		t.Errorf("the table holds %d of the %d positions", len(kept), n)
	}
}

// TestLocationBusLegacyNotices: with LegacyNotices, a batch also goes out on LocationChannel in
// the JSON an older node reads, every position with its parties, split under the payload limit;
// without it, nothing goes there. The bus without it sends first, so its notice, had it sent
// one, would be the first the older node hears.
func TestLocationBusLegacyNotices(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(url))
	older := pgtest.Connect(t, url)
	if _, err := older.Exec(t.Context(), "LISTEN "+postgres.LocationChannel); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	send := func(legacy bool, us []ordercast.LocationUpdate) {
		t.Helper()
		b := postgres.NewLocationBus(s)
		b.Batch, b.LegacyNotices = time.Hour, legacy // the batch goes out when the bus closes
		if err := b.Open(); err != nil {
			t.Fatal(err)
		}
		b.Send(us)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	send(false, []ordercast.LocationUpdate{{OrderID: "not-legacy", CourierID: "c-0", At: now}})
	const n = 400
	us := make([]ordercast.LocationUpdate, n)
	for i := range us {
		us[i] = ordercast.LocationUpdate{OrderID: fmt.Sprintf("order-%03d", i), CourierID: "c-1", Lat: 52.5, Lng: 13.4, At: now,
			Parties: []string{"restaurant:r-1"}, OrderVersion: 6}
	}
	send(true, us)

	got, _ := readNotices(t, older, n, postgres.DecodeLegacyLocations)
	if _, ok := got["not-legacy"]; ok {
		t.Fatal("a bus without LegacyNotices sent on the older nodes' channel")
	}
	for _, u := range got {
		if u.CourierID != "c-1" || u.Lat != 52.5 || !u.At.Equal(now) || !slices.Equal(u.Parties, []string{"restaurant:r-1"}) || u.OrderVersion != 6 {
			t.Fatalf("an older node read %+v", u)
		}
	}
}

// readNotices reads the notices conn listens to until decode has read n orders' positions from
// them (or 10 s pass), each notice under PostgreSQL's payload limit. It returns the positions by
// order, and how many notices carried them.
func readNotices(t *testing.T, conn *pgx.Conn, n int, decode func(string) ([]ordercast.LocationUpdate, error)) (map[string]ordercast.LocationUpdate, int) {
	t.Helper()
	got := map[string]ordercast.LocationUpdate{}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	notices := 0
	for len(got) < n {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("after %d notices with %d positions: %v", notices, len(got), err)
		}
		notices++
		if len(note.Payload) >= 8000 {
			t.Errorf("notice %d is %d bytes, over PostgreSQL's limit", notices, len(note.Payload))
		}
		us, err := decode(note.Payload)
		if err != nil {
			t.Fatalf("notice %d: %v", notices, err)
		}
		for _, u := range us {
			got[u.OrderID] = u
		}
	}
	return got, notices
}

// TestLocationBusWarnsOnceWhileItFails: a bus whose batches fail (here its table is gone) warns
// at the first failure and not at every batch, fifty a second at the default; the first batch
// that goes through again says so, with how many failed since the warning.
func TestLocationBusWarnsOnceWhileItFails(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(url))
	log := &logRecords{}
	b := postgres.NewLocationBus(s)
	b.Batch, b.Logger = 5*time.Millisecond, slog.New(log)
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	conn := pgtest.Connect(t, url)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	post := func(lat float64) {
		b.Send([]ordercast.LocationUpdate{{OrderID: "a", CourierID: "c-1", Lat: lat, At: time.Now()}})
	}

	exec(`ALTER TABLE order_locations RENAME TO order_locations_away`)
	for i := range 5 {
		post(float64(i))
		testutil.WaitFor(t, "the batch to fail", func() bool { return postgres.FailedBatches(b) > int64(i) })
	}
	if got := log.count("sending positions to the cluster failed"); got != 1 {
		t.Fatalf("5 failed batches logged %d warnings, want 1", got)
	}

	exec(`ALTER TABLE order_locations_away RENAME TO order_locations`)
	post(10)
	testutil.WaitFor(t, "the bus to say it works again", func() bool {
		return log.count("sending positions to the cluster works again") == 1
	})
	if got := log.attr("sending positions to the cluster works again", "batches_failed_since_warning"); got != "4" {
		t.Fatalf("recovery says %s batches failed since the warning, want 4", got)
	}
}

// logRecords is a slog handler that keeps every record.
type logRecords struct {
	mu sync.Mutex
	rs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }

func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rs = append(h.rs, r.Clone())
	return nil
}

// count returns how many records have message msg.
func (h *logRecords) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.rs {
		if r.Message == msg {
			n++
		}
	}
	return n
}

// attr returns attribute key of the last record with message msg, as text.
func (h *logRecords) attr(msg, key string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var v string
	for _, r := range h.rs {
		if r.Message != msg {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v = a.Value.String()
			}
			return true
		})
	}
	return v
}

// recordingFeed keeps the positions a listener hands it.
type recordingFeed struct {
	mu  sync.Mutex
	got []ordercast.LocationUpdate
}

func (f *recordingFeed) ReceiveLocations(us []ordercast.LocationUpdate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, us...)
}

func (f *recordingFeed) MissedLocations() {}

func (f *recordingFeed) orders() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, u := range f.got {
		ids = append(ids, u.OrderID)
	}
	return ids
}

// Positions a node's bus sends reach the other nodes' listeners, not its own (it holds them
// already), also when it sends them in the older nodes' JSON as well; a notice in the JSON of a
// node of an older version, on the old channel, reaches every node, so positions keep flowing
// during a rolling upgrade.
func TestLocationBusReachesTheOtherNodes(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy notices %v", legacy), func(t *testing.T) { testLocationBusReachesTheOtherNodes(t, legacy) })
	}
}

func testLocationBusReachesTheOtherNodes(t *testing.T, legacy bool) {
	url := pgtest.NewDatabase(t)
	feeds := []*recordingFeed{{}, {}}
	nodes := make([]*node, 2)
	for i := range nodes {
		nodes[i] = newNode(t, url, url, func(_ *postgres.Store, l *postgres.Listener) { l.Locations = feeds[i] })
	}
	b := postgres.NewLocationBus(nodes[0].store)
	b.Batch, b.LegacyNotices = 5*time.Millisecond, legacy
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	at := time.Now().UTC()
	eta := int64(60)
	b.Send([]ordercast.LocationUpdate{{OrderID: "o-1", CourierID: "c-1", Lat: 52.5, Lng: 13.4, At: at, ETAS: &eta, Parties: []string{"restaurant:r-1"}, OrderVersion: 6}})
	// With legacy notices node 1 hears it twice, once on each channel, and keeps one.
	testutil.WaitFor(t, "node 1 to hear node 0's position", func() bool { return slices.Contains(feeds[1].orders(), "o-1") })
	feeds[1].mu.Lock()
	got := feeds[1].got[0]
	feeds[1].mu.Unlock()
	if got.CourierID != "c-1" || got.Lat != 52.5 || !got.At.Equal(at) || got.ETAS == nil || *got.ETAS != 60 ||
		!slices.Equal(got.Parties, []string{"restaurant:r-1"}) || got.OrderVersion != 6 {
		t.Fatalf("node 1 heard %+v", got)
	}

	old := `[{"u":{"type":"","order_id":"o-old","courier_id":"c-9","lat":1,"lng":2,"at":"2026-12-01T10:00:00Z"}}]`
	if _, err := pgtest.Connect(t, url).Exec(t.Context(), `SELECT pg_notify($1, $2)`, postgres.LocationChannel, old); err != nil {
		t.Fatal(err)
	}
	for i, f := range feeds {
		testutil.WaitFor(t, fmt.Sprintf("node %d to hear the older node's notice", i), func() bool { return slices.Contains(f.orders(), "o-old") })
	}
	if ids := feeds[0].orders(); slices.Contains(ids, "o-1") {
		t.Fatalf("node 0 was handed back its own position: %v", ids)
	}
}

// A batch that hangs (here on a lock another session holds on the table) is given up after
// SendTimeout and counted as failed, rather than holding every later position of the cluster
// back; once the lock goes, positions reach the table again.
func TestLocationBusGivesUpAHangingBatch(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(url))
	b := postgres.NewLocationBus(s)
	b.Batch, b.SendTimeout = 5*time.Millisecond, 200*time.Millisecond
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	conn := pgtest.Connect(t, url)
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `LOCK TABLE order_locations IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	b.Send([]ordercast.LocationUpdate{{OrderID: "a", CourierID: "c-1", Lat: 1, At: time.Now()}})
	testutil.WaitFor(t, "the hanging batch to be given up", func() bool { return postgres.FailedBatches(b) > 0 })
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	next := []ordercast.LocationUpdate{{OrderID: "a", CourierID: "c-1", Lat: 2, At: time.Now()}}
	failed := postgres.FailedBatches(b)
	b.Send(next)
	testutil.WaitFor(t, "the next position in the table", func() bool {
		// A machine loaded enough (CI's parallel packages, under -race) may take longer than the
		// short SendTimeout over this batch too, which is then given up as it should be: sent
		// again. A bus stuck since the hang would give up every one, and never get there.
		if n := postgres.FailedBatches(b); n > failed {
			failed = n
			b.Send(next)
		}
		got, err := b.Latest(t.Context(), []string{"a"})
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 1 && got[0].Lat == 2
	})
}

// TestPositionBatchesOfManyNodesDoNotDeadlock: nodes upserting positions of the same orders at
// once lock the rows in one order; in map order, two such batches deadlocked (40P01) and one
// was dropped whole.
func TestPositionBatchesOfManyNodesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	const nodes, orders, batches = 3, 300, 40
	buses := make([]*postgres.LocationBus, nodes)
	for i := range buses {
		buses[i] = postgres.NewLocationBus(storetest.MustOpen(t, postgres.New(db)))
	}
	ids := make([]string, orders)
	for i := range ids {
		ids[i] = "o-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	at := time.Now()
	var wg sync.WaitGroup
	for _, b := range buses {
		wg.Go(func() {
			for n := range batches {
				us := make([]ordercast.LocationUpdate, len(ids))
				for i, id := range ids {
					us[i] = ordercast.LocationUpdate{OrderID: id, CourierID: "c-1", Lat: 1, Lng: 2, At: at.Add(time.Duration(n) * time.Millisecond)}
				}
				if err := postgres.SendPositions(t.Context(), b, us); err != nil {
					t.Errorf("a batch of positions of orders other nodes send too: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestPositionPurgeDoesNotDeadlockWithBatches: the purge of old positions takes no row a batch of
// positions holds. A batch locks its rows in order_id order; a purge that locked rows in the
// order it found them, and waited on one a batch held while holding one the batch wanted next,
// deadlocked with it (40P01), and one of the two failed. Here a batch of o-a and o-b holds o-a
// when the purge starts, and o-b, which the purge finds first, is the batch's next row. The purge
// still deletes the old positions no batch holds (o-c), and keeps the fresh ones (o-d).
func TestPositionPurgeDoesNotDeadlockWithBatches(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	b := postgres.NewLocationBus(storetest.MustOpen(t, postgres.New(db)))
	admin, batch := pgtest.Connect(t, db), pgtest.Connect(t, db)
	old, fresh := time.Now().Add(-time.Hour), time.Now()
	for _, r := range []struct {
		id string
		at time.Time
	}{{"o-b", old}, {"o-a", old}, {"o-c", old}, {"o-d", fresh}} { // o-b first in the table, so a scan meets it first
		if _, err := admin.Exec(t.Context(), `INSERT INTO order_locations (order_id, at, data) VALUES ($1, $2, '{}')`, r.id, r.at); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := batch.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	upsert := func(id string) error { // a batch's upsert of one row: it locks that row until commit
		_, err := tx.Exec(t.Context(), `INSERT INTO order_locations (order_id, at, data) VALUES ($1, now(), '{}')
			ON CONFLICT (order_id) DO UPDATE SET at = excluded.at, data = excluded.data`, id)
		return err
	}
	if err := upsert("o-a"); err != nil {
		t.Fatal(err)
	}
	purged := make(chan error, 1)
	go func() { purged <- postgres.PurgePositions(t.Context(), b) }()
	var purgeErr error
	done := false
	testutil.WaitFor(t, "the purge to end, or to wait on a row", func() bool {
		select {
		case purgeErr = <-purged:
			done = true
			return true
		default:
		}
		var waiting bool
		if err := admin.QueryRow(t.Context(), `SELECT count(*) > 0 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM order_locations%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		return waiting
	})
	if err := upsert("o-b"); err != nil {
		t.Errorf("the batch's next row, o-b, while the purge runs: %v", err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Errorf("commit the batch: %v", err)
	}
	if !done {
		purgeErr = <-purged
	}
	if purgeErr != nil {
		t.Errorf("the purge, while a batch holds a row it finds: %v", purgeErr)
	}
	rows, err := admin.Query(t.Context(), `SELECT order_id FROM order_locations ORDER BY order_id`)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"o-a", "o-b", "o-d"}; !slices.Equal(kept, want) {
		t.Errorf("positions after the purge and the batch: %v, want %v (the batch's and the fresh one, none old)", kept, want)
	}
}
