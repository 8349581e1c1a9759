package stream

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/storetest"
	"github.com/ordercast/ordercast/sqlite"
)

// TestPartyStreamJudgesPositionsByWhatItTold: a party stream shows a position of an order only
// while what it told of the order (its opening, then the order's events) says the order shows
// that courier now, as a stream of the one order judges it. A position the tracker sent on an
// older view of the order (another node's, or a copy read before the change) is dropped: an
// order that ended, was never told of, is not yet out for delivery, or went to another courier.
func TestPartyStreamJudgesPositionsByWhatItTold(t *testing.T) {
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	opened := map[string]partyOrder{ // the active orders with a courier, as the opening read them
		"o-ready": {status: ordercast.StatusReady, courier: "c-1"},
		"o-out":   {status: ordercast.StatusOutForDelivery, courier: "c-1"},
	}
	status := func(id string, s ordercast.Status) ordercast.Event {
		return ordercast.Event{OrderID: id, Status: s}
	}
	courier := func(id string, s ordercast.Status, cid string) ordercast.Event {
		return ordercast.Event{OrderID: id, Kind: ordercast.KindCourier, Status: s, CourierID: cid}
	}
	cases := []struct {
		name    string
		events  []ordercast.Event // after the opening
		order   string            // the position's order, of courier c-1
		courier string
		shown   bool
	}{
		{"out for delivery since the opening", nil, "o-out", "c-1", true},
		{"another courier's", nil, "o-out", "c-2", false},
		{"not yet out for delivery", nil, "o-ready", "c-1", false},
		{"out for delivery since", []ordercast.Event{status("o-ready", ordercast.StatusOutForDelivery)}, "o-ready", "c-1", true},
		{"delivered", []ordercast.Event{status("o-out", ordercast.StatusDelivered)}, "o-out", "c-1", false},
		{"taken from its courier", []ordercast.Event{courier("o-out", ordercast.StatusOutForDelivery, "")}, "o-out", "c-1", false},
		{"given to another courier", []ordercast.Event{courier("o-out", ordercast.StatusOutForDelivery, "c-2")}, "o-out", "c-1", false},
		{"the other courier's, after", []ordercast.Event{courier("o-out", ordercast.StatusOutForDelivery, "c-2")}, "o-out", "c-2", true},
		{"never told of (ended before the stream opened)", nil, "o-gone", "c-1", false},
		{"assigned and out after the opening", []ordercast.Event{
			courier("o-new", ordercast.StatusReady, "c-1"), status("o-new", ordercast.StatusOutForDelivery),
		}, "o-new", "c-1", true},
		{"assigned after the opening, not yet out", []ordercast.Event{courier("o-new", ordercast.StatusReady, "c-1")}, "o-new", "c-1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &watcher{e: &Engine{cfg: testConfig}, f: sseFraming{}, scope: PartyEvents, party: party, partyKey: party.Key()}
			w.openParty(partyOpening{orders: opened})
			for i, ev := range tc.events {
				ev.Seq, ev.At = int64(10+i), time.Now()
				w.queueParty(hub.NewMessage(ev), int64(i+1))
			}
			w.out, w.ends = nil, nil
			w.locs = map[string]*hub.Location{tc.order: hub.NewLocation(ordercast.LocationUpdate{
				OrderID: tc.order, CourierID: tc.courier, Lat: 1, Lng: 1, At: time.Now(),
			})}
			w.partyLocations(time.Now())
			if got := strings.Contains(string(w.out), "event: location"); got != tc.shown {
				t.Fatalf("position of %s by %s shown: %v, want %v (%q)", tc.order, tc.courier, got, tc.shown, w.out)
			}
		})
	}
}

// TestPartyStreamRemembersOnlyActiveOrders: a board open all day forgets each order as it ends,
// so what it remembers stays bounded by its active orders, and an order that ended stays unknown
// (its late positions dropped) however many orders came after it. Past the bound, an order is
// forgotten for each new one: its positions are no longer shown, and never a wrong one.
func TestPartyStreamRemembersOnlyActiveOrders(t *testing.T) {
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	w := &watcher{e: &Engine{cfg: testConfig}, f: sseFraming{}, scope: PartyEvents, party: party, partyKey: party.Key()}
	pos := int64(0)
	emit := func(ev ordercast.Event) {
		pos++
		ev.Seq, ev.At = pos, time.Now()
		w.queueParty(hub.NewMessage(ev), pos)
	}
	emit(ordercast.Event{OrderID: "o-first", Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery, CourierID: "c-1"})
	emit(ordercast.Event{OrderID: "o-first", Status: ordercast.StatusDelivered})
	for i := range 3 * maxPartyOrders {
		id := fmt.Sprintf("o-%d", i)
		emit(ordercast.Event{OrderID: id, Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery, CourierID: "c-1"})
		if i%2 == 0 {
			emit(ordercast.Event{OrderID: id, Status: ordercast.StatusDelivered})
		}
		if len(w.orders) > maxPartyOrders {
			t.Fatalf("remembers %d orders, more than %d", len(w.orders), maxPartyOrders)
		}
	}
	for id := range w.orders {
		var i int
		if _, err := fmt.Sscanf(id, "o-%d", &i); err != nil || i%2 == 0 {
			t.Fatalf("remembers %s, which ended", id)
		}
	}
	w.out, w.ends = nil, nil
	w.locs = map[string]*hub.Location{"o-first": hub.NewLocation(ordercast.LocationUpdate{
		OrderID: "o-first", CourierID: "c-1", Lat: 1, Lng: 1, At: time.Now(),
	})}
	w.partyLocations(time.Now())
	if len(w.out) != 0 {
		t.Fatalf("a position of o-first, which ended long ago, was queued: %q", w.out)
	}
}

// TestPartyResumeIsBounded: a resumed party stream is sent the log after its cursor, up to
// Config.PartyBacklog events; a cursor further behind (Last-Event-ID: 0 on a long log, a board
// away all day) is sent a fresh snapshot instead, so no resume reads or holds the whole log.
func TestPartyResumeIsBounded(t *testing.T) {
	t.Parallel()
	store := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	storetest.MustOpen(t, store)
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	for i := range 5 { // positions 1…5 of luigis's log
		if _, _, err := store.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d", i), RestaurantID: party.ID}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig
	cfg.PartyBacklog = 3
	e := New(store, hub.New(), cfg, &counter{})
	for _, tc := range []struct {
		last     int64
		backlog  int  // events of the log sent
		snapshot bool // a snapshot sent instead
	}{
		{2, 3, false}, // exactly the limit behind: the log
		{1, 0, true},  // one more: the snapshot
		{0, 0, true},
		{5, 0, false}, // up to date: live events only
		{9, 0, true},  // a position the log never reached (a reset database, a forged header)
	} {
		o, err := e.readParty(t.Context(), party, tc.last, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(o.backlog) != tc.backlog || (o.snap != nil) != tc.snapshot {
			t.Errorf("resume after %d: %d events of the log, snapshot %v; want %d, %v", tc.last, len(o.backlog), o.snap != nil, tc.backlog, tc.snapshot)
		}
		if tc.snapshot && (o.pos != 5 || !strings.Contains(string(o.snap), `"o-4"`)) {
			t.Errorf("resume after %d: snapshot at %d %s, want the 5 orders at position 5", tc.last, o.pos, o.snap)
		}
	}
}

// boundedLog is a store that records the limit of every read of a party log.
type boundedLog struct {
	*sqlite.Store
	limits []int
}

func (s *boundedLog) ScopeEventsAfter(ctx context.Context, p ordercast.Party, after int64, limit int) ([]ordercast.ScopedEvent, error) {
	s.limits = append(s.limits, limit)
	return s.Store.ScopeEventsAfter(ctx, p, after, limit)
}

// TestPartyGapCatchUpIsBounded: a live party stream that finds a hole in the positions it receives
// catches up from the log under the resume's bound: up to Config.PartyBacklog events are sent
// from the log; further behind, a fresh snapshot of the scope is sent instead, from whose position
// the stream goes on, and no entry of the log is read for it (where the log stands says it is
// too far: reading the bound's worth to throw it away cost seconds on a year-old database). No
// catch-up reads the log without a limit.
func TestPartyGapCatchUpIsBounded(t *testing.T) {
	t.Parallel()
	store := &boundedLog{Store: sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))}
	storetest.MustOpen(t, store.Store)
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	n := 0
	create := func(count int) *hub.Message { // count more orders; the newest one's event, published
		var last *hub.Message
		for range count {
			n++
			id := fmt.Sprintf("o-%d", n)
			if _, _, err := store.CreateOrder(t.Context(), ordercast.NewOrder{ID: id, RestaurantID: party.ID}); err != nil {
				t.Fatal(err)
			}
			evs, err := store.EventsAfter(t.Context(), id, 0, 1)
			if err != nil || len(evs) != 1 {
				t.Fatalf("events of %s: %v %v", id, evs, err)
			}
			ev := evs[0]
			ev.Marks = ordercast.Marks("").With(party.Key(), int64(n)) // one event per order: pos n
			last = hub.NewMessage(ev)
		}
		return last
	}
	create(1)
	cfg := testConfig
	cfg.PartyBacklog = 3
	e := New(store, hub.New(), cfg, &counter{})
	w, rec := openedWatcher(t, e, Request{Scope: PartyEvents, Party: party})
	for _, tc := range []struct {
		name     string
		missed   int      // events committed since the stream's last position, the newest received
		wantIDs  []string // ids sent
		snapshot bool     // a snapshot among them
		reads    int      // reads of the log's entries
	}{
		{"exactly the bound behind: the log", 3, []string{"2", "3", "4"}, false, 1},
		{"one more: a snapshot", 4, []string{"8"}, true, 0},
		{"after the snapshot: the log again", 2, []string{"9", "10"}, false, 1},
	} {
		store.limits = nil
		before := len(rec.got())
		if err := w.deliver(t.Context(), []*hub.Message{create(tc.missed)}, false); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
		sent := rec.got()[before:]
		snapshot := slices.ContainsFunc(sent, func(f string) bool { return strings.Contains(f, "event: snapshot\n") })
		if got := seqsOf(sent); !slices.Equal(got, tc.wantIDs) || snapshot != tc.snapshot {
			t.Errorf("%s: sent ids %v, snapshot %v; want %v, %v", tc.name, got, snapshot, tc.wantIDs, tc.snapshot)
		}
		if w.last != int64(n) {
			t.Errorf("%s: the stream is at %d, want %d", tc.name, w.last, n)
		}
		if len(store.limits) != tc.reads {
			t.Errorf("%s: the log's entries were read %d times, want %d", tc.name, len(store.limits), tc.reads)
		}
		for _, l := range store.limits {
			if l <= 0 || l > cfg.PartyBacklog+1 {
				t.Errorf("%s: the log was read with limit %d, want at most %d", tc.name, l, cfg.PartyBacklog+1)
			}
		}
	}
}

// shownFromPickup says which positions a stream shows as a tracker with the default
// --location-from does: from out_for_delivery on.
type shownFromPickup struct{}

func (shownFromPickup) ShowsLocation(s ordercast.Status) bool { return ordercast.ShowsLocation(s, "") }
func (shownFromPickup) ShowsPosition(u ordercast.LocationUpdate, s ordercast.Status, courierID string) bool {
	return ordercast.ShowsPosition(u, s, courierID, "")
}

// noLocations knows no position: a stream engine with it reads the scope after a resume's
// backlog, as one with a tracker does, for the positions that follow it.
type noLocations struct{ shownFromPickup }

func (noLocations) Latest(context.Context, string) *hub.Location { return nil }
func (noLocations) LatestMany(context.Context, []string) map[string]*hub.Location {
	return nil
}

// growingLog is a boundedLog whose party log grows by grow's events just after its first read:
// events committed between a resume's read of its backlog and its read of the scope.
type growingLog struct {
	boundedLog
	grow func()
}

func (s *growingLog) ScopeEventsAfter(ctx context.Context, p ordercast.Party, after int64, limit int) ([]ordercast.ScopedEvent, error) {
	evs, err := s.boundedLog.ScopeEventsAfter(ctx, p, after, limit)
	if grow := s.grow; grow != nil {
		s.grow = nil
		grow()
	}
	return evs, err
}

// TestPartyResumeWindowIsBounded: the events committed between a resume's backlog and its read
// of the scope (for the positions that follow the backlog) are read under the resume's bound
// too; more than Config.PartyBacklog of them in that moment and the stream opens with a fresh
// snapshot, as one that far behind does.
func TestPartyResumeWindowIsBounded(t *testing.T) {
	t.Parallel()
	store := &growingLog{boundedLog: boundedLog{Store: sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))}}
	storetest.MustOpen(t, store.Store)
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	n := 0
	create := func(count int) {
		for range count {
			n++
			if _, _, err := store.CreateOrder(t.Context(), ordercast.NewOrder{ID: fmt.Sprintf("o-%d", n), RestaurantID: party.ID}); err != nil {
				t.Fatal(err)
			}
		}
	}
	create(2) // positions 1, 2
	cfg := testConfig
	cfg.PartyBacklog, cfg.Locations = 3, noLocations{}
	e := New(store, hub.New(), cfg, &counter{})
	for _, tc := range []struct {
		name     string
		window   int // events committed between the two reads
		backlog  int // events of the log sent
		snapshot bool
	}{
		{"within the bound: they join the backlog", 3, 1 + 3, false},
		{"past it: a fresh snapshot", 4, 0, true},
	} {
		store.limits = nil
		last := int64(n - 1) // one event behind
		store.grow = func() { create(tc.window) }
		o, err := e.readParty(t.Context(), party, last, true)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(o.backlog) != tc.backlog || (o.snap != nil) != tc.snapshot {
			t.Errorf("%s: %d events of the log, snapshot %v; want %d, %v", tc.name, len(o.backlog), o.snap != nil, tc.backlog, tc.snapshot)
		}
		if tc.snapshot && o.pos != int64(n) {
			t.Errorf("%s: snapshot at %d, want %d", tc.name, o.pos, n)
		}
		for _, l := range store.limits {
			if l <= 0 || l > cfg.PartyBacklog+1 {
				t.Errorf("%s: the log was read with limit %d, want at most %d", tc.name, l, cfg.PartyBacklog+1)
			}
		}
	}
}

// knownPosition knows a fresh position of each of its orders, by courier c-1.
type knownPosition []string

func (knownPosition) ShowsLocation(s ordercast.Status) bool {
	return shownFromPickup{}.ShowsLocation(s)
}
func (knownPosition) ShowsPosition(u ordercast.LocationUpdate, s ordercast.Status, courierID string) bool {
	return shownFromPickup{}.ShowsPosition(u, s, courierID)
}

func (k knownPosition) Latest(context.Context, string) *hub.Location { return nil }
func (k knownPosition) LatestMany(_ context.Context, ids []string) map[string]*hub.Location {
	out := map[string]*hub.Location{}
	for _, id := range ids {
		if slices.Contains(k, id) {
			out[id] = hub.NewLocation(ordercast.LocationUpdate{OrderID: id, CourierID: "c-1", Lat: 1, Lng: 1, At: time.Now()})
		}
	}
	return out
}

// TestUpToDatePartyResumeSendsWhatCommittedMeanwhileFirst: a board that resumes at the head of
// its log (nothing to replay) while an order goes out for delivery, between the read of the log
// and the read of the scope, is sent that event before the courier's position, which is judged
// by it: a position never precedes the status it is shown for.
func TestUpToDatePartyResumeSendsWhatCommittedMeanwhileFirst(t *testing.T) {
	t.Parallel()
	store := &growingLog{boundedLog: boundedLog{Store: sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))}}
	storetest.MustOpen(t, store.Store)
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	ctx := t.Context()
	if _, _, err := store.CreateOrder(ctx, ordercast.NewOrder{ID: "o-1", RestaurantID: party.ID}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []ordercast.Status{ordercast.StatusConfirmed, ordercast.StatusPreparing, ordercast.StatusReady} {
		if _, _, _, err := store.AppendStatus(ctx, ordercast.StatusChange{OrderID: "o-1", Status: s}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := store.AssignCourier(ctx, ordercast.CourierChange{OrderID: "o-1", CourierID: "c-1"}); err != nil {
		t.Fatal(err)
	}
	snap, err := store.ScopeSnapshot(ctx, party, 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig
	cfg.Locations = knownPosition{"o-1"}
	e := New(store, hub.New(), cfg, &counter{})
	store.grow = func() {
		if _, _, _, err := store.AppendStatus(ctx, ordercast.StatusChange{OrderID: "o-1", Status: ordercast.StatusOutForDelivery}); err != nil {
			t.Error(err)
		}
	}
	w, rec := openedWatcher(t, e, Request{Scope: PartyEvents, Party: party, Last: snap.Pos, Resume: true})
	got := strings.Join(rec.got(), "")
	status, position := strings.Index(got, `"status":"out_for_delivery"`), strings.Index(got, "event: location")
	if status < 0 || position < status {
		t.Errorf("the opening after position %d sent the out_for_delivery event at %d and the position at %d, want both, the event first:\n%s",
			snap.Pos, status, position, got)
	}
	if w.last != snap.Pos+1 {
		t.Errorf("the stream is at %d, want %d", w.last, snap.Pos+1)
	}
}

// longLog is a party log of n events, one order each, for a resume from its start.
type longLog struct {
	*memStore
	n int
}

func (l *longLog) ScopeSnapshot(context.Context, ordercast.Party, int) (ordercast.ScopeSnapshot, error) {
	return ordercast.ScopeSnapshot{Pos: int64(l.n)}, nil
}

func (l *longLog) ScopeLogBounds(context.Context, ordercast.Party) (ordercast.LogBounds, error) {
	return ordercast.LogBounds{Head: int64(l.n)}, nil
}

func (l *longLog) ScopeEventsAfter(_ context.Context, _ ordercast.Party, after int64, limit int) ([]ordercast.ScopedEvent, error) {
	var out []ordercast.ScopedEvent
	for pos := after + 1; pos <= int64(l.n) && (limit <= 0 || len(out) < limit); pos++ {
		out = append(out, ordercast.ScopedEvent{Pos: pos, Event: ordercast.Event{
			OrderID: fmt.Sprintf("order-%06d", pos), Seq: 1, Status: ordercast.StatusPlaced, At: time.Now(),
			Note: "a note of some length, as a restaurant writes one"}})
	}
	return out, nil
}

// TestAStreamOnItsGoroutineLetsGoOfItsBacklogsRoom: a board resumed from the start of a long log
// is sent a backlog of megabytes in one flush; a stream on its own goroutine (TLS, HTTP/2,
// WebSocket) then idles with buffers that hold a burst, not that backlog, for the rest of its life.
func TestAStreamOnItsGoroutineLetsGoOfItsBacklogsRoom(t *testing.T) {
	t.Parallel()
	store := &longLog{memStore: newMemStore(ordercast.StatusPlaced), n: 2000}
	e := New(store, hub.New(), testConfig, &counter{})
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	wt, err := e.Watch(t.Context(), Request{Scope: PartyEvents, Party: party, Last: 0, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wt.Close)
	rec := &recorder{}
	w := &watcher{}
	w.init(e, rec, sseFraming{}, wt, func(End) {})
	if n := len(w.out); n <= maxScratch {
		t.Fatalf("the backlog's frames hold %d bytes, want more than %d for this test to mean anything", n, maxScratch)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.got()); got < store.n {
		t.Fatalf("%d frames written, want the %d events and more", got, store.n)
	}
	if cap(w.out) > maxScratch || cap(w.ends) > maxKeptFrames || cap(w.liveAt) > maxKeptFrames {
		t.Errorf("an idle stream keeps room for %d bytes, %d frames and %d times, want at most %d, %d and %d",
			cap(w.out), cap(w.ends), cap(w.liveAt), maxScratch, maxKeptFrames, maxKeptFrames)
	}
}

// TestPartyStreamBehindAPurgeGetsASnapshot: a party stream whose position is below entries of
// its log that a purge deleted with their ended orders (ordercast.ErrLogPurged) is sent a fresh
// snapshot, on a resume and when it catches up a hole while open: the log no longer holds what
// it missed, here the end of an order it still shows. From the purged position on, the log.
func TestPartyStreamBehindAPurgeGetsASnapshot(t *testing.T) {
	t.Parallel()
	store := sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))
	storetest.MustOpen(t, store)
	ctx := t.Context()
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	create := func(id string) {
		if _, _, err := store.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: party.ID}); err != nil {
			t.Fatal(err)
		}
	}
	create("o-old") // position 1
	e := New(store, hub.New(), testConfig, &counter{})
	w, rec := openedWatcher(t, e, Request{Scope: PartyEvents, Party: party})
	if w.last != 1 {
		t.Fatalf("opening: at %d; want position 1", w.last)
	}
	// The stream misses o-old's end (position 2), which a purge then deletes with it.
	if _, _, _, err := store.AppendStatus(ctx, ordercast.StatusChange{OrderID: "o-old", Status: ordercast.StatusCancelled}); err != nil {
		t.Fatal(err)
	}
	if n, err := store.PurgeEnded(ctx, time.Now().Add(time.Hour), 10); n != 1 || err != nil {
		t.Fatalf("PurgeEnded = %d, %v; want 1", n, err)
	}
	create("o-new") // position 3
	evs, err := store.EventsAfter(ctx, "o-new", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	ev.Marks = ordercast.Marks("").With(party.Key(), 3)
	sent := deliverSent(t, w, rec, false, ev)
	if !strings.Contains(sent, "event: snapshot\n") || strings.Contains(sent, `"o-old"`) || !strings.Contains(sent, `"o-new"`) || w.last != 3 {
		t.Errorf("catching up past the purge: sent %q, at %d; want a snapshot of o-new alone at position 3", sent, w.last)
	}

	for _, tc := range []struct {
		last     int64
		snapshot bool
		backlog  int
	}{{0, true, 0}, {1, true, 0}, {2, false, 1}, {3, false, 0}} {
		o, err := e.readParty(ctx, party, tc.last, true)
		if err != nil {
			t.Fatal(err)
		}
		if (o.snap != nil) != tc.snapshot || len(o.backlog) != tc.backlog {
			t.Errorf("resume after %d: snapshot %v, %d events of the log; want %v, %d", tc.last, o.snap != nil, len(o.backlog), tc.snapshot, tc.backlog)
		}
	}
}

// holeLog is a store whose party-log reads lose their first entry when they return more than
// one: an entry deleted under the read without the purge recorded.
type holeLog struct{ *sqlite.Store }

func (s holeLog) ScopeEventsAfter(ctx context.Context, p ordercast.Party, after int64, limit int) ([]ordercast.ScopedEvent, error) {
	evs, err := s.Store.ScopeEventsAfter(ctx, p, after, limit)
	if len(evs) > 1 {
		evs = evs[1:]
	}
	return evs, err
}

// TestPartyLogWithAHoleGetsASnapshot: positions are commit-ordered, so a read of the log whose
// positions do not follow on from the cursor lost an entry; the stream is sent a snapshot, as
// for a purge the store recorded, and never the entries after the hole as if they came next.
func TestPartyLogWithAHoleGetsASnapshot(t *testing.T) {
	t.Parallel()
	store := holeLog{sqlite.New(filepath.Join(t.TempDir(), "ordercast.db"))}
	storetest.MustOpen(t, store.Store)
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	for _, id := range []string{"o-1", "o-2", "o-3"} {
		if _, _, err := store.CreateOrder(t.Context(), ordercast.NewOrder{ID: id, RestaurantID: party.ID}); err != nil {
			t.Fatal(err)
		}
	}
	e := New(store, hub.New(), testConfig, &counter{})
	o, err := e.readParty(t.Context(), party, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if o.snap == nil || len(o.backlog) != 0 || o.pos != 3 {
		t.Errorf("resume after 1 over a log read from 3: snapshot %v, %d events of the log, at %d; want a snapshot at 3", o.snap != nil, len(o.backlog), o.pos)
	}
}

// TestPartyStreamWhoseLogWentBackGetsASnapshot: a failover to a standby that had not received
// the last commits (or a database restored from a copy) takes a party's log back under its
// streams. A kitchen's board then held an order the database no longer has, and, taking its
// next events as following on, never showed the order created again at a position it took for
// one it had. A stream caught up after the log went back (as every one is when a node's bus
// reconnects) is sent the scope as it is now: whether the log ends before its position, or
// holds another commit there already.
func TestPartyStreamWhoseLogWentBackGetsASnapshot(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}
	create := func(s *sqlite.Store, id string) ordercast.Event {
		t.Helper()
		if _, _, err := s.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: party.ID}); err != nil {
			t.Fatal(err)
		}
		evs, err := s.ScopeEventsAfter(ctx, party, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return evs[len(evs)-1].Event
	}
	// heard: o-again, made again at position 2, reaches the stream live (a database restored in
	// place under a running node), not by a catch-up.
	for _, tc := range []struct{ live, again, heard bool }{{true, false, false}, {true, true, false}, {true, true, true}, {false, false, false}} {
		live, again := tc.live, tc.again
		// live: o-lost is sent live, not in the stream's opening snapshot (whose position's
		// commit the stream does not know).
		t.Run(fmt.Sprintf("sent live %v, made again before the catch-up %v, heard live %v", live, again, tc.heard), func(t *testing.T) {
			dir := t.TempDir()
			primary := sqlite.New(filepath.Join(dir, "primary.db"))
			storetest.MustOpen(t, primary)
			create(primary, "o-1") // position 1
			// The standby has o-1 only: it never received what follows.
			standby := filepath.Join(dir, "standby.db")
			if _, err := sqlite.Backup(ctx, filepath.Join(dir, "primary.db"), standby); err != nil {
				t.Fatal(err)
			}
			if !live {
				create(primary, "o-lost") // position 2, in the opening snapshot
			}
			e := New(primary, hub.New(), testConfig, &counter{})
			w, rec := openedWatcher(t, e, Request{Scope: PartyEvents, Party: party})
			if live {
				deliverSent(t, w, rec, false, create(primary, "o-lost")) // position 2, sent live
			}
			if w.last != 2 || !strings.Contains(strings.Join(rec.got(), ""), `"o-lost"`) {
				t.Fatalf("the stream is at %d; want o-lost sent, at position 2", w.last)
			}

			// The failover.
			s := sqlite.New(standby)
			storetest.MustOpen(t, s)
			e.store = s
			var heard []ordercast.Event
			if again {
				ev := create(s, "o-again") // position 2 again, committed before the stream catches up
				if tc.heard {
					heard = append(heard, ev)
				}
			}
			sent := deliverSent(t, w, rec, len(heard) == 0, heard...)
			if !strings.Contains(sent, "event: snapshot\n") || strings.Contains(sent, `"o-lost"`) || !strings.Contains(sent, `"o-1"`) {
				t.Fatalf("caught up after the log went back: sent %q; want a snapshot of the scope as the standby has it", sent)
			}
			if !again {
				sent += deliverSent(t, w, rec, false, create(s, "o-again")) // position 2 again, after the catch-up
			}
			if !strings.Contains(sent, `"o-again"`) || w.last != 2 {
				t.Errorf("the order made again at position 2: sent %q, at %d; want o-again shown, at position 2", sent, w.last)
			}
		})
	}
}

// openedWatcher opens req on e as an SSE stream's watcher that writes to a recorder, and
// flushes what opens the stream; the watch is closed with the test.
func openedWatcher(t *testing.T, e *Engine, req Request) (*watcher, *recorder) {
	t.Helper()
	wt, err := e.Watch(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wt.Close)
	rec, w := &recorder{}, &watcher{}
	w.init(e, rec, sseFraming{}, wt, func(End) {})
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	return w, rec
}

// deliverSent delivers evs to w as its subscription would hand them over (overflowed: with
// events missed, for w to catch up from the store), flushes, and returns what w sent for them.
func deliverSent(t *testing.T, w *watcher, rec *recorder, overflowed bool, evs ...ordercast.Event) string {
	t.Helper()
	before := len(rec.got())
	msgs := make([]*hub.Message, len(evs))
	for i, ev := range evs {
		msgs[i] = hub.NewMessage(ev)
	}
	if err := w.deliver(t.Context(), msgs, overflowed); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(rec.got()[before:], "")
}
