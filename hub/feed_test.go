package hub_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// fakeStore answers LatestEvents from a map and records each batch it was asked.
type fakeStore struct {
	mu      sync.Mutex
	latest  map[string]ordercast.Event
	batches [][]string
	err     error
}

func (f *fakeStore) LatestEvents(_ context.Context, ids []string) ([]ordercast.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, slices.Clone(ids))
	if f.err != nil {
		return nil, f.err
	}
	var out []ordercast.Event
	for _, id := range ids {
		if ev, ok := f.latest[id]; ok {
			out = append(out, ev)
		}
	}
	return out, nil
}

// TestFeedCatchUpPublishesOnlyWhatWatchersMissed drives a catch-up with a fake store: each
// watched order gets its latest event only when it is newer than what the hub last published to
// it (a late, older publish does not move that back), unwatched and missing orders are neither
// published nor cause trouble, the store is asked in batches, and watchers of every order are
// told to re-read the state.
func TestFeedCatchUpPublishesOnlyWhatWatchersMissed(t *testing.T) {
	h := hub.New()
	subs := map[string]*hub.Subscription{}
	for _, id := range []string{"behind", "current", "fresh", "missing"} {
		subs[id] = h.Subscribe(id)
		t.Cleanup(subs[id].Close)
	}
	all := h.SubscribeAll()
	t.Cleanup(all.Close)
	h.Publish(event("behind", 2))
	h.Publish(event("current", 5))
	h.Publish(event("current", 3)) // a late arrival must not move the last seq back
	for _, s := range subs {
		s.Take()
	}
	all.Take()

	store := &fakeStore{latest: map[string]ordercast.Event{
		"behind":    event("behind", 4),
		"current":   event("current", 5),
		"fresh":     event("fresh", 1), // watched, nothing published yet
		"unwatched": event("unwatched", 9),
	}}
	f := hub.NewFeed(h, store)
	f.BatchSize = 3
	if err := f.CatchUp(context.Background()); err != nil {
		t.Fatalf("CatchUp: %v", err)
	}

	for id, want := range map[string][]int64{"behind": {4}, "current": nil, "fresh": {1}, "missing": nil} {
		msgs, over := subs[id].Take()
		if got := seqs(msgs); !slices.Equal(got, want) || over {
			t.Errorf("%s: got seqs %v (overflow %v), want %v", id, got, over, want)
		}
	}
	var asked []string
	for _, b := range store.batches {
		if len(b) > 3 {
			t.Errorf("batch of %d orders, want at most 3", len(b))
		}
		asked = append(asked, b...)
	}
	slices.Sort(asked)
	if want := []string{"behind", "current", "fresh", "missing"}; !slices.Equal(asked, want) {
		t.Errorf("asked the store about %v, want %v", asked, want)
	}
	if _, over := all.Take(); !over {
		t.Error("watcher of every order was not told to re-read the state")
	}
}

// TestFeedCatchUpReportsStoreErrors: a failed read is returned (so the bus reconnects and tries
// again), and watchers of every order are not told to resync from a catch-up that did not happen.
func TestFeedCatchUpReportsStoreErrors(t *testing.T) {
	h := hub.New()
	s := h.Subscribe("a")
	t.Cleanup(s.Close)
	all := h.SubscribeAll()
	t.Cleanup(all.Close)
	boom := errors.New("connection refused")
	err := hub.NewFeed(h, &fakeStore{err: boom}).CatchUp(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("CatchUp = %v, want it to wrap %v", err, boom)
	}
	if _, over := all.Take(); over {
		t.Error("watcher of every order flagged although the catch-up failed")
	}
}

// TestFeedPublishesWhatTheBusHears: an event handed to the feed reaches the order's watchers.
func TestFeedPublishesWhatTheBusHears(t *testing.T) {
	h := hub.New()
	s := h.Subscribe("a")
	t.Cleanup(s.Close)
	var feed ordercast.Feed = hub.NewFeed(h, &fakeStore{})
	feed.Publish(event("a", 1))
	if msgs, _ := receive(t, s); !slices.Equal(seqs(msgs), []int64{1}) {
		t.Fatalf("got %v, want [1]", seqs(msgs))
	}
}

// TestFeedCatchUpResyncsAnOrderWhoseHistoryWentBack: a database that comes back with less than
// it had (a failover to a standby that lacked the last commits) holds an order's history short
// of what the hub published, or another commit under the same seq, or no order at all. Those
// orders' watchers are told to catch up (an overflow), to check what they sent against the
// store; an order the store holds as the hub published it is left alone, and nothing older is
// published.
func TestFeedCatchUpResyncsAnOrderWhoseHistoryWentBack(t *testing.T) {
	h := hub.New()
	at := func(id string, seq int64, micros int64) ordercast.Event {
		ev := event(id, seq)
		ev.At = time.UnixMicro(micros).UTC()
		return ev
	}
	subs := map[string]*hub.Subscription{}
	for _, id := range []string{"same", "shorter", "rewritten", "gone"} {
		subs[id] = h.Subscribe(id)
		t.Cleanup(subs[id].Close)
		h.Publish(at(id, 3, 1_000))
		subs[id].Take()
	}
	store := &fakeStore{latest: map[string]ordercast.Event{
		"same":      at("same", 3, 1_000),
		"shorter":   at("shorter", 2, 900),
		"rewritten": at("rewritten", 3, 2_000),
	}}
	if err := hub.NewFeed(h, store).CatchUp(context.Background()); err != nil {
		t.Fatalf("CatchUp: %v", err)
	}
	for id, want := range map[string]bool{"same": false, "shorter": true, "rewritten": true, "gone": true} {
		msgs, over := subs[id].Take()
		if len(msgs) != 0 || over != want {
			t.Errorf("%s: seqs %v, told to catch up %v; want none, %v", id, seqs(msgs), over, want)
		}
	}
}
