package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// memStore is one order's history in memory: enough for the engine, without I/O (which a synctest
// bubble cannot wait on).
type memStore struct {
	noPartyLogs
	mu     sync.Mutex
	events []ordercast.Event // seq 1, 2, …
	fail   error             // returned by every read when set
	hang   bool              // EventsAfter waits for its context to end, as a store that hangs
	reads  int               // EventsAfter and LastEvent calls
	// read is the events the reads returned, all told: what they loaded.
	read int
}

// noPartyLogs is the party logs of a test store that keeps none: the tests that use it watch
// one order, or all.
type noPartyLogs struct{}

var errNoPartyLogs = errors.New("this test's store keeps no party logs")

func (noPartyLogs) ScopeSnapshot(context.Context, ordercast.Party, int) (ordercast.ScopeSnapshot, error) {
	return ordercast.ScopeSnapshot{}, errNoPartyLogs
}

func (noPartyLogs) ScopeEventsAfter(context.Context, ordercast.Party, int64, int) ([]ordercast.ScopedEvent, error) {
	return nil, errNoPartyLogs
}

func (noPartyLogs) ScopeLogBounds(context.Context, ordercast.Party) (ordercast.LogBounds, error) {
	return ordercast.LogBounds{}, errNoPartyLogs
}

func newMemStore(statuses ...ordercast.Status) *memStore {
	s := &memStore{}
	for _, st := range statuses {
		s.append(st)
	}
	return s
}

// append commits the next event and returns it.
func (s *memStore) append(st ordercast.Status) ordercast.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := ordercast.Event{OrderID: "o-1", Seq: int64(len(s.events)) + 1, Status: st, At: time.Now()}
	s.events = append(s.events, ev)
	return ev
}

// assign commits a courier event (courier "" unassigns) and returns it; the status stays.
func (s *memStore) assign(courier string) ordercast.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := ordercast.Event{OrderID: "o-1", Seq: int64(len(s.events)) + 1, Kind: ordercast.KindCourier,
		Status: s.events[len(s.events)-1].Status, CourierID: courier, At: time.Now()}
	s.events = append(s.events, ev)
	return ev
}

func (s *memStore) Order(_ context.Context, id string) (ordercast.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return ordercast.Order{}, s.fail
	}
	if id != "o-1" || len(s.events) == 0 {
		return ordercast.Order{}, ordercast.Errorf(ordercast.ENotFound, "no order %s", id)
	}
	last := s.events[len(s.events)-1]
	o := ordercast.Order{ID: id, Status: last.Status, Version: last.Seq}
	for _, ev := range slices.Backward(s.events) {
		if ev.Kind == ordercast.KindCourier {
			o.CourierID = ev.CourierID
			break
		}
	}
	return o, nil
}

func (s *memStore) EventsAfter(ctx context.Context, _ string, after int64, limit int) ([]ordercast.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.fail != nil {
		return nil, s.fail
	}
	if after >= int64(len(s.events)) {
		return nil, nil
	}
	evs := s.events[after:]
	if limit > 0 && len(evs) > limit {
		evs = evs[:limit]
	}
	s.read += len(evs)
	return slices.Clone(evs), nil
}

func (s *memStore) LastEvent(_ context.Context, id string, kind ordercast.EventKind, before int64) (ordercast.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.fail != nil {
		return ordercast.Event{}, s.fail
	}
	for i := min(before-1, int64(len(s.events))); i >= 1; i-- {
		if ev := s.events[i-1]; ev.Kind == kind {
			s.read++
			return ev, nil
		}
	}
	return ordercast.Event{}, ordercast.Errorf(ordercast.ENotFound, "no %s event of %s before %d", kind.Name(), id, before)
}

func (s *memStore) ActiveOrders(ctx context.Context, _ int) ([]ordercast.Order, error) {
	o, err := s.Order(ctx, "o-1")
	if err != nil || o.Status.Terminal() {
		return nil, err
	}
	return []ordercast.Order{o}, nil
}

// recorder is a transport that keeps every frame written, and a pinger when pings is set.
type recorder struct {
	mu     sync.Mutex
	frames []string
	batch  []int // frames per WriteMany
	closed string
	fail   error
}

func (r *recorder) Write(f []byte) error { return r.WriteMany(f) }

func (r *recorder) WriteMany(frames ...[]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	for _, f := range frames {
		r.frames = append(r.frames, string(f))
	}
	r.batch = append(r.batch, len(frames))
	return nil
}

func (r *recorder) Close(reason string, _ ordercast.Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = reason
	return nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

// counter is an Observer that counts.
type counter struct {
	mu                          sync.Mutex
	opened, delivered, caughtUp int
	closed                      []string
	holdingFailed               []error
}

func (c *counter) StreamOpened() { c.mu.Lock(); c.opened++; c.mu.Unlock() }
func (c *counter) StreamClosed(r string) {
	c.mu.Lock()
	c.closed = append(c.closed, r)
	c.mu.Unlock()
}
func (c *counter) EventsDelivered(n int, _ []time.Time, _ time.Time) {
	c.mu.Lock()
	c.delivered += n
	c.mu.Unlock()
}
func (c *counter) CaughtUp() { c.mu.Lock(); c.caughtUp++; c.mu.Unlock() }
func (c *counter) HoldingFailed(err error) {
	c.mu.Lock()
	c.holdingFailed = append(c.holdingFailed, err)
	c.mu.Unlock()
}

// testConfig is an engine's settings in the tests: its streams show positions as a tracker with
// the default --location-from does, and open with none (noLocations).
var testConfig = Config{Heartbeat: 15 * time.Second, Retry: 2 * time.Second, WriteTimeout: 10 * time.Second, Locations: noLocations{}}

func sseEvent(ev ordercast.Event) string { return string(appendEvent(nil, hub.NewMessage(ev))) }

// seqsOf returns the seqs of the SSE event frames among frames.
func seqsOf(frames []string) []string {
	var out []string
	for _, f := range frames {
		if id, ok := strings.CutPrefix(f, "id: "); ok {
			out = append(out, id[:strings.IndexByte(id, '\n')])
		}
	}
	return out
}

// newWatcher sets a watch of o-1 up on e and returns its watcher, writing to a recorder. It
// resumes after last when last is above 0; with 0 it is a fresh connect.
func newWatcher(t *testing.T, e *Engine, last int64, f framing) (*watcher, *recorder, *End) {
	t.Helper()
	wt, err := e.Watch(t.Context(), Request{OrderID: "o-1", Last: last, Resume: last > 0})
	if err != nil {
		t.Fatal(err)
	}
	rec, end := &recorder{}, &End{}
	w := &watcher{}
	w.init(e, rec, f, wt, func(x End) { *end = x })
	return w, rec, end
}

// TestWatchOpening: what a watch opens with. A fresh connect (no Last-Event-ID) starts with the
// order's last status event and, when courier events came after it, only the newest of them (a
// later assignment replaces an earlier one), so a client that listens for status events learns
// the current status even when courier events came last; when the latest event is a status
// event, that one event is read, in one read, unless the order has a courier: then its
// assignment comes first, though status events followed it, so that the client learns whom the
// order went to. A resume sends every event after its id, 0 included (the whole history), which
// is not the same as none.
func TestWatchOpening(t *testing.T) {
	t.Parallel()
	store := newMemStore(ordercast.StatusPlaced, ordercast.StatusConfirmed)
	store.assign("kofi")
	store.assign("")
	e := New(store, hub.New(), testConfig, &counter{})
	steps := []struct {
		name string
		req  Request
		want []string
	}{
		{"fresh after courier events", Request{}, []string{"2", "4"}},
		{"resume after 0", Request{Last: 0, Resume: true}, []string{"1", "2", "3", "4"}},
		{"resume after 3", Request{Last: 3, Resume: true}, []string{"4"}},
		{"resume past the version: none (it ends, TestAResumePastTheHistoryEnds)", Request{Last: 9, Resume: true}, nil},
	}
	for _, st := range steps {
		if got, _, _ := openingOf(t, e, store, st.req); !slices.Equal(got, st.want) {
			t.Errorf("%s: seqs %v, want %v", st.name, got, st.want)
		}
	}
	store.append(ordercast.StatusPreparing)
	if got, reads, _ := openingOf(t, e, store, Request{}); !slices.Equal(got, []string{"5"}) || reads != 1 {
		t.Errorf("fresh after a status event, no courier: seqs %v in %d reads, want [5] in 1", got, reads)
	}
	store.assign("ama")
	store.append(ordercast.StatusReady)
	store.append(ordercast.StatusOutForDelivery)
	if got, reads, _ := openingOf(t, e, store, Request{}); !slices.Equal(got, []string{"6", "8"}) || reads != 2 {
		t.Errorf("fresh after status events that followed an assignment: seqs %v in %d reads, want [6 8] in 2", got, reads)
	}
}

// TestWatchOpeningOfLongHistory: an order whose history runs past ordercast.MaxOrderVersion (one
// kept from before the cap: a restaurant alternated two couriers thousands of times) costs a
// watch no more than a short one. A fresh connect reads two events, whatever came between; a
// resume reads at most orderBacklogLimit events, and one further behind is answered as a fresh
// connect.
func TestWatchOpeningOfLongHistory(t *testing.T) {
	t.Parallel()
	store := newMemStore(ordercast.StatusPlaced, ordercast.StatusConfirmed)
	for i := range 3000 {
		store.assign(fmt.Sprintf("k%d", i%2))
	}
	last := int64(len(store.events)) // 3002
	e := New(store, hub.New(), testConfig, &counter{})
	edge := last - orderBacklogLimit
	steps := []struct {
		name     string
		req      Request
		wantSeqs []string
		wantRead int // events the reads loaded
	}{
		{"fresh", Request{}, []string{"2", "3002"}, 2},
		{"resume after 0: fresh", Request{Last: 0, Resume: true}, []string{"2", "3002"}, 2},
		{"resume one past the limit behind: fresh", Request{Last: edge - 1, Resume: true}, []string{"2", "3002"}, 2},
		{"resume at the limit behind", Request{Last: edge, Resume: true}, seqsFrom(edge+1, last), orderBacklogLimit},
		{"resume 2 behind", Request{Last: last - 2, Resume: true}, []string{"3001", "3002"}, 2},
	}
	for _, st := range steps {
		got, _, read := openingOf(t, e, store, st.req)
		if !slices.Equal(got, st.wantSeqs) || read != st.wantRead {
			t.Errorf("%s: %s from %d events read, want %s from %d", st.name, brief(got), read, brief(st.wantSeqs), st.wantRead)
		}
	}
}

// brief describes a long list of ids by its length and ends.
func brief(ids []string) string {
	if len(ids) <= 4 {
		return fmt.Sprint(ids)
	}
	return fmt.Sprintf("%d ids %s…%s", len(ids), ids[0], ids[len(ids)-1])
}

// seqsFrom returns the seqs from to to as a stream's ids.
func seqsFrom(from, to int64) []string {
	var ids []string
	for seq := from; seq <= to; seq++ {
		ids = append(ids, fmt.Sprint(seq))
	}
	return ids
}

// openingOf opens a watch of o-1 on e by req, and returns the ids of the events it opens with,
// and how many reads of store it took and how many events they loaded.
func openingOf(t *testing.T, e *Engine, store *memStore, req Request) (seqs []string, reads, read int) {
	t.Helper()
	store.mu.Lock()
	store.reads, store.read = 0, 0
	store.mu.Unlock()
	req.OrderID = "o-1"
	wt, err := e.Watch(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	w := &watcher{}
	w.init(e, rec, sseFraming{}, wt, func(End) {})
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	w.finish(ReasonClientGone, nil, false, false)
	store.mu.Lock()
	defer store.mu.Unlock()
	return seqsOf(rec.got()), store.reads, store.read
}

// TestAResumePastTheHistoryEnds: a Last-Event-ID past the order's version comes from another
// history (a database restored from an older copy). Answered as a fresh connect, the current
// status came under a seq the client held for another change, and a tracking page, which skips
// seqs it holds, went on showing the lost history. The stream ends at once, saying so
// (history_rewritten), and on SSE with an empty id, so that an EventSource reconnects without
// Last-Event-ID even if it knows no end event.
func TestAResumePastTheHistoryEnds(t *testing.T) {
	t.Parallel()
	store := newMemStore(ordercast.StatusPlaced, ordercast.StatusConfirmed)
	e := New(store, hub.New(), testConfig, &counter{})
	w, rec, _ := newWatcher(t, e, 9, sseFraming{})
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if !w.ended || w.endReason() != ReasonRewound || len(seqsOf(rec.got())) != 0 {
		t.Fatalf("resumed after 9 at version 2: ended %v (%s), seqs %v; want no event, ended history_rewritten", w.ended, w.endReason(), seqsOf(rec.got()))
	}
	end := string(sseFraming{}.end(nil, ReasonRewound))
	if !strings.HasPrefix(end, "id:\nevent: end\n") || !strings.Contains(end, `"reason":"history_rewritten"`) {
		t.Errorf("the end's frame %q, want an empty id, then event: end, history_rewritten", end)
	}
	if w, _, _ := newWatcher(t, e, 2, sseFraming{}); w.ended {
		t.Error("resumed at the version: ended, want it held for what follows")
	}
}

// TestDeliveryRules: live messages are forwarded in seq order; a duplicate is skipped; a gap or an
// overflowed mailbox is filled from the store; the terminal event ends the stream.
func TestDeliveryRules(t *testing.T) {
	t.Parallel()
	store := newMemStore(ordercast.StatusPlaced, ordercast.StatusConfirmed)
	obs := &counter{}
	e := New(store, hub.New(), testConfig, obs)
	w, rec, _ := newWatcher(t, e, 1, sseFraming{})
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.got(), []string{"retry: 2000\n\n", sseEvent(store.events[1])}; !slices.Equal(got, want) {
		t.Fatalf("opening frames %q, want %q", got, want)
	}

	msg := func(ev ordercast.Event) *hub.Message { return hub.NewMessage(ev) }
	ev3 := store.append(ordercast.StatusPreparing)
	store.append(ordercast.StatusReady) // never published: a gap
	ev5 := store.append(ordercast.StatusOutForDelivery)
	steps := []struct {
		name       string
		msgs       []*hub.Message
		overflowed bool
		want       []string
	}{
		{"duplicate skipped", []*hub.Message{msg(store.events[1])}, false, nil},
		{"next in order", []*hub.Message{msg(ev3)}, false, []string{"3"}},
		{"gap filled from the store", []*hub.Message{msg(ev5)}, false, []string{"4", "5"}},
		{"overflow caught up", nil, true, []string{"6"}},
	}
	for _, s := range steps {
		if s.name == "overflow caught up" {
			store.append(ordercast.StatusDelivered)
		}
		before := len(rec.got())
		if err := w.deliver(t.Context(), s.msgs, s.overflowed); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(rec.got()[before:]); !slices.Equal(got, s.want) {
			t.Errorf("%s: sent seqs %v, want %v", s.name, got, s.want)
		}
	}
	if !w.ended || w.lastStatus != ordercast.StatusDelivered {
		t.Errorf("ended %v on %s, want ended on delivered", w.ended, w.lastStatus)
	}
	if obs.caughtUp != 2 || obs.delivered != 5 {
		t.Errorf("caught up %d times, delivered %d events; want 2 and 5", obs.caughtUp, obs.delivered)
	}
	if got := w.events.Load(); got != 5 {
		t.Errorf("events counted %d, want 5", got)
	}
}

// TestCatchUpIsBounded: a read that catches a stream up from a store that hangs gives up after
// the write timeout, and the stream then ends with the error: a held stream's worker is never
// stuck behind it (the delivery itself carries no deadline, which would cost a timer per event).
func TestCatchUpIsBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore(ordercast.StatusPlaced)
		e := New(store, hub.New(), testConfig, nil)
		w, _, _ := newWatcher(t, e, 1, sseFraming{})
		store.mu.Lock()
		store.hang = true
		store.mu.Unlock()
		start := time.Now()
		err := w.deliver(context.Background(), nil, true)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("catch-up from a hanging store: %v, want the deadline exceeded", err)
		}
		if waited := time.Since(start); waited != testConfig.WriteTimeout {
			t.Errorf("catch-up gave up after %v, want the write timeout %v", waited, testConfig.WriteTimeout)
		}
	})
}

// TestMessageFramingSendsOneFramePerEvent: a message transport (WebSocket) gets each event as its
// own frame, with no preamble and no heartbeat frame (it pings instead).
func TestMessageFramingSendsOneFramePerEvent(t *testing.T) {
	t.Parallel()
	e := New(newMemStore(ordercast.StatusPlaced, ordercast.StatusConfirmed), hub.New(), testConfig, nil)
	w, rec, _ := newWatcher(t, e, 0, messageFraming{})
	w.queueEvents([]ordercast.Event{{OrderID: "o-1", Seq: 3, Status: ordercast.StatusReady}})
	w.frame(w.f.heartbeat(w.out))
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	got := rec.got()
	if len(got) != 2 || !strings.Contains(got[0], `"seq":2`) || !strings.Contains(got[1], `"seq":3`) {
		t.Fatalf("frames %q, want the JSON of seq 2 and 3, one each", got)
	}
	if rec.batch[0] != 2 {
		t.Errorf("one flush wrote %d batches, want both frames in one WriteMany", len(rec.batch))
	}
}

// TestChunkFraming: the held stream's heartbeat and end of body are computed, and are what the
// HTTP/1.1 chunked encoding says.
func TestChunkFraming(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ got, want string }{
		{string(appendChunk(nil, sseFraming{}.heartbeat(nil))), "8\r\n: ping\n\n\r\n"},
		{string(appendChunk(nil, nil)), "0\r\n\r\n"},
		{string(appendChunk(nil, make([]byte, 300))[:5]), "12c\r\n"},
	} {
		if c.got != c.want {
			t.Errorf("chunk %q, want %q", c.got, c.want)
		}
	}
}

// TestWatchSetUp: the one set-up refuses while draining before it admits, subscribes only once
// admitted, and gives everything back when the store read fails.
func TestWatchSetUp(t *testing.T) {
	t.Parallel()
	admitErr := ordercast.Errorf(ordercast.ETooManyStreams, "full")
	tests := []struct {
		name      string
		draining  bool
		scope     Scope
		admit     error
		storeFail error
		wantCode  string
		admitted  bool
	}{
		{name: "draining refuses before admitting", draining: true, wantCode: ordercast.EUnavailable},
		{name: "a long poll is answered while draining", draining: true, scope: OrderState, admitted: true},
		{name: "refused admission subscribes nothing", admit: admitErr, wantCode: ordercast.ETooManyStreams},
		{name: "failed read unsubscribes and releases", storeFail: errors.New("disk on fire"), wantCode: ordercast.EInternal, admitted: true},
		{name: "ok", admitted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore(ordercast.StatusPlaced)
			store.fail = tt.storeFail
			h := hub.New()
			e := New(store, h, testConfig, nil)
			if tt.draining {
				e.BeginDrain(0)
			}
			var admitted, released int
			wt, err := e.Watch(t.Context(), Request{Scope: tt.scope, OrderID: "o-1", Admit: func() (func(), error) {
				if tt.admit != nil {
					return nil, tt.admit
				}
				admitted++
				return func() { released++ }, nil
			}})
			if got := ordercast.ErrorCode(err); got != tt.wantCode && !(tt.wantCode == "" && err == nil) {
				t.Fatalf("err %v (code %q), want code %q", err, got, tt.wantCode)
			}
			if (admitted == 1) != tt.admitted {
				t.Errorf("admitted %d times, want admitted %v", admitted, tt.admitted)
			}
			if err == nil {
				if h.Watchers() != 1 {
					t.Errorf("watchers %d after set-up, want 1", h.Watchers())
				}
				wt.Close()
			}
			if h.Watchers() != 0 || released != admitted {
				t.Errorf("after the end: watchers %d, released %d of %d", h.Watchers(), released, admitted)
			}
		})
	}
}

// TestGoroutineHolderTimers runs a stream on the goroutine holder on a fake clock: heartbeats
// every interval, then the end at its lifetime (between nine tenths of it and all of it), counted
// and reported once; or, when the token it was let in with is accepted for less than that, at the
// token's end, for that reason (an operator tells the two apart in the metrics, a WebSocket
// client by its close).
func TestGoroutineHolderTimers(t *testing.T) {
	t.Parallel()
	const lifetime = 10 * time.Second
	for _, tt := range []struct {
		name       string
		until      time.Duration // how long the token is accepted for from the start; 0 for ever
		min, max   time.Duration
		wantReason string
	}{
		{"lifetime", 0, lifetime * 9 / 10, lifetime, ReasonLifetime},
		{"token accepted for longer", 2 * lifetime, lifetime * 9 / 10, lifetime, ReasonLifetime},
		// Half a heartbeat off the beat: a heartbeat due at the same instant as the end would be
		// sent or not as the select chose.
		{"token expires first", 5500 * time.Millisecond, 5500 * time.Millisecond, 5500 * time.Millisecond, ReasonExpired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig
				cfg.Heartbeat, cfg.Lifetime = time.Second, lifetime
				obs := &counter{}
				e := New(newMemStore(ordercast.StatusPlaced), hub.New(), cfg, obs)
				start := time.Now()
				var until time.Time
				if tt.until > 0 {
					until = start.Add(tt.until)
				}
				wt, err := e.Watch(t.Context(), Request{OrderID: "o-1", Until: until})
				if err != nil {
					t.Fatal(err)
				}
				rec, end := &recorder{}, &End{}
				w := &watcher{}
				w.init(e, rec, sseFraming{}, wt, func(x End) { *end = x })
				e.run(t.Context(), w, false)
				lived := time.Since(start)
				if lived > tt.max || lived < tt.min {
					t.Errorf("stream lived %v, want between %v and %v", lived, tt.min, tt.max)
				}
				pings := 0
				for _, f := range rec.got() {
					if f == ": ping\n\n" {
						pings++
					}
				}
				if want := int(lived / cfg.Heartbeat); pings != want {
					t.Errorf("%d heartbeats in %v, want %d", pings, lived, want)
				}
				if end.Reason != tt.wantReason || end.Events != 1 || end.Held {
					t.Errorf("end %+v, want %s after 1 event, not held", *end, tt.wantReason)
				}
				if obs.opened != 1 || !slices.Equal(obs.closed, []string{tt.wantReason}) {
					t.Errorf("opened %d, closed %v", obs.opened, obs.closed)
				}
				if want := int64(len(strings.Join(rec.got(), ""))); end.Bytes != want {
					t.Errorf("end bytes %d, want %d", end.Bytes, want)
				}
			})
		})
	}
}

// TestHeartbeatOnlyWhenQuiet: a stream on the goroutine holder that has events more often than
// the heartbeat interval gets no heartbeat; once they stop, one comes an interval after the last.
func TestHeartbeatOnlyWhenQuiet(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig
		cfg.Heartbeat, cfg.Lifetime = time.Second, 10*time.Second
		store, h := newMemStore(ordercast.StatusPlaced), hub.New()
		e := New(store, h, cfg, nil)
		w, rec, _ := newWatcher(t, e, 0, sseFraming{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.run(t.Context(), w, false)
		}()
		const every, events = 600 * time.Millisecond, 5
		for range events {
			time.Sleep(every) // the fake clock: an event every 0.6 s, from 0.6 s to 3 s
			h.Publish(store.append(ordercast.StatusPreparing))
		}
		lastEvent := time.Now()
		time.Sleep(cfg.Heartbeat + cfg.Heartbeat/2)
		synctest.Wait()
		got := rec.got()
		var pings []int // frame indexes
		seen := 0
		for i, f := range got {
			switch {
			case f == ": ping\n\n":
				pings = append(pings, i)
			case strings.HasPrefix(f, "id: "):
				seen++
			}
		}
		if seen != events+1 {
			t.Fatalf("%d events written, want %d: %q", seen, events+1, got)
		}
		// Quiet from lastEvent: exactly one heartbeat by lastEvent + 1.5 intervals, after the events.
		if len(pings) != 1 || pings[0] != len(got)-1 {
			t.Errorf("frames %q: want the events, then one heartbeat", got)
		}
		if time.Since(lastEvent) < cfg.Heartbeat {
			t.Fatal("the fake clock did not move")
		}
		<-done
	})
}

// TestGoroutineHolderDrain: streams open when the drain begins close one by one, evenly spread
// over the window, for shutdown; a failing write ends a stream as a write error, with its cause.
func TestGoroutineHolderDrain(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n, window = 4, 4 * time.Second
		e := New(newMemStore(ordercast.StatusPlaced), hub.New(), testConfig, nil)
		var mu sync.Mutex
		var offsets []time.Duration
		var start time.Time
		var wg sync.WaitGroup
		for i := range n {
			w, _, end := newWatcher(t, e, 0, sseFraming{})
			wg.Go(func() {
				e.run(t.Context(), w, false)
				mu.Lock()
				offsets = append(offsets, time.Since(start))
				mu.Unlock()
				if end.Reason != ReasonShutdown {
					t.Errorf("stream %d ended for %q, want shutdown", i, end.Reason)
				}
			})
		}
		synctest.Wait() // every stream waits in its loop
		start = time.Now()
		e.BeginDrain(window)
		wg.Wait()
		slices.Sort(offsets)
		for k, got := range offsets {
			if want := window / n * time.Duration(k); got != want {
				t.Errorf("closing %d at %v after the drain began, want %v", k, got, want)
			}
		}
		if err := e.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}

		other := New(newMemStore(ordercast.StatusPlaced), hub.New(), testConfig, nil)
		w, rec, end := newWatcher(t, other, 0, sseFraming{})
		rec.fail = fmt.Errorf("connection reset")
		other.run(t.Context(), w, false)
		if end.Reason != ReasonWriteError || end.Err == nil {
			t.Errorf("end %+v, want a write error with its cause", *end)
		}
	})
}

// TestBeginDrainAtOnce: BeginDrain called from several goroutines at once (a signal and the
// server's Close) begins one drain. Before, two calls could both find it not begun and both close
// the channel that says it has: a panic.
func TestBeginDrainAtOnce(t *testing.T) {
	t.Parallel()
	for range 2000 { // the calls must meet in a window of a few instructions: try often
		e := New(newMemStore(ordercast.StatusPlaced), hub.New(), testConfig, nil)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				<-start
				e.BeginDrain(time.Second)
			})
		}
		close(start)
		wg.Wait()
		if !e.Draining() {
			t.Fatal("not draining after BeginDrain")
		}
	}
}

// TestWaitOutlastsTheEnd: Wait returns only once every stream has ended whole, its end reported
// (the server's log line and metrics): a server's Close waits here, then shuts its metrics down.
// Before, a stream was counted out first, and Wait could return while its end still ran.
func TestWaitOutlastsTheEnd(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := New(newMemStore(ordercast.StatusPlaced), hub.New(), testConfig, nil)
		wt, err := e.Watch(t.Context(), Request{OrderID: "o-1"})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		ended := false
		w := &watcher{}
		w.init(e, &recorder{}, sseFraming{}, wt, func(End) { <-release; ended = true })
		ctx, leave := context.WithCancel(t.Context())
		go e.run(ctx, w, false)
		synctest.Wait() // the stream waits in its loop
		waited := make(chan error, 1)
		go func() { waited <- e.Wait(t.Context()) }()
		leave() // the client goes; the stream's end blocks until released
		synctest.Wait()
		early := len(waited) > 0
		close(release)
		synctest.Wait()
		if early {
			t.Fatal("Wait returned while the stream's end was still running")
		}
		select {
		case err := <-waited:
			if err != nil || !ended {
				t.Fatalf("Wait: %v, the end ran: %v; want nil after the end", err, ended)
			}
		default:
			t.Fatal("Wait did not return once the stream had ended")
		}
	})
}

// TestOpenRefusesASettingOutOfRange: each setting out of range stops Open with an
// *ordercast.SettingError that names it as the flag that sets it, as a command words it.
func TestOpenRefusesASettingOutOfRange(t *testing.T) {
	for _, c := range []struct {
		setting string
		edit    func(*Config)
	}{
		{"heartbeat", func(c *Config) { c.Heartbeat = 0 }},
		{"stream-write-timeout", func(c *Config) { c.WriteTimeout = -time.Second }},
		{"stream-lifetime", func(c *Config) { c.Lifetime = -time.Second }},
		{"location-interval", func(c *Config) { c.LocationInterval = -time.Second }},
		{"party-backlog", func(c *Config) { c.PartyBacklog = -1 }},
	} {
		cfg := testConfig
		c.edit(&cfg)
		err := New(newMemStore(), hub.New(), cfg, nil).Open()
		var se *ordercast.SettingError
		if !errors.As(err, &se) || se.Setting != c.setting {
			t.Errorf("%s out of range: Open = %v, want a SettingError for %s", c.setting, err, c.setting)
		}
	}
	if err := New(newMemStore(), hub.New(), testConfig, nil).Open(); err != nil {
		t.Errorf("Open with every setting in range = %v", err)
	}
}
