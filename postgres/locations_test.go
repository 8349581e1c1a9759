package postgres_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
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
	s := storetest.MustOpen(t, postgres.New(pgtest.NewDatabase(t)))
	b := postgres.NewLocationBus(s)
	b.Batch = 10 * time.Millisecond
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
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

// A batch of more positions than one notice holds goes out as several notices, each under
// PostgreSQL's payload limit: a listener gets every position, and the table holds every one.
func TestLocationBusSplitsABatchIntoNotices(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := storetest.MustOpen(t, postgres.New(url))
	listen := pgtest.Connect(t, url)
	if _, err := listen.Exec(t.Context(), "LISTEN "+postgres.LocationChannel); err != nil {
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

	seen := map[string]bool{}
	notices := 0
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for len(seen) < n {
		note, err := listen.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("after %d notices with %d positions: %v", notices, len(seen), err)
		}
		notices++
		if len(note.Payload) >= 8000 {
			t.Errorf("notice %d is %d bytes, over PostgreSQL's limit", notices, len(note.Payload))
		}
		var got []struct {
			U struct {
				OrderID string `json:"order_id"`
			} `json:"u"`
		}
		if err := json.Unmarshal([]byte(note.Payload), &got); err != nil {
			t.Fatalf("notice %d: %v", notices, err)
		}
		for _, p := range got {
			seen[p.U.OrderID] = true
		}
	}
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
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
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
