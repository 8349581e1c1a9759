package hub_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

func event(order string, seq int64) ordercast.Event {
	return ordercast.Event{OrderID: order, Seq: seq, Status: ordercast.StatusConfirmed, At: time.Unix(0, 0).UTC()}
}

// receive waits for the subscription's signal and takes what is queued.
func receive(t *testing.T, s *hub.Subscription) ([]*hub.Message, bool) {
	t.Helper()
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	return s.Take()
}

func seqs(msgs []*hub.Message) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.Event.Seq)
	}
	return out
}

func TestPublishReachesOnlyThatOrdersWatchers(t *testing.T) {
	h := hub.New()
	a1, a2, b := h.Subscribe("a"), h.Subscribe("a"), h.Subscribe("b")
	all := h.SubscribeAll()
	t.Cleanup(func() { a1.Close(); a2.Close(); b.Close(); all.Close() })

	h.Publish(event("a", 2))
	for _, s := range []*hub.Subscription{a1, a2, all} {
		msgs, over := receive(t, s)
		if got := seqs(msgs); len(got) != 1 || got[0] != 2 || over {
			t.Fatalf("got %v overflow=%v, want [2] without overflow", got, over)
		}
	}
	if msgs, _ := b.Take(); len(msgs) != 0 {
		t.Fatalf("watcher of b got %d messages of a", len(msgs))
	}
}

func TestMessageEncodedOnceAndShared(t *testing.T) {
	h := hub.New()
	s1, s2 := h.Subscribe("a"), h.Subscribe("a")
	t.Cleanup(func() { s1.Close(); s2.Close() })
	ev := event("a", 3)
	h.Publish(ev)
	m1, _ := receive(t, s1)
	m2, _ := receive(t, s2)
	if m1[0] != m2[0] {
		t.Fatal("each watcher got its own message; want one shared message")
	}
	var got ordercast.Event
	if err := json.Unmarshal(m1[0].JSON, &got); err != nil || got != ev {
		t.Fatalf("JSON decodes to %+v (%v), want %+v", got, err, ev)
	}
}

func TestSlowWatcherDoesNotBlockPublisherOrOthers(t *testing.T) {
	h := hub.New()
	h.MailboxSize = 4
	slow := h.Subscribe("a") // never reads
	fast := h.Subscribe("a")
	t.Cleanup(func() { slow.Close(); fast.Close() })

	const n = 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); i <= n; i++ {
			h.Publish(event("a", i))
			// The fast watcher keeps up; the slow one fills its mailbox and is flagged.
			msgs, over := receive(t, fast)
			if got := seqs(msgs); len(got) != 1 || got[0] != i || over {
				t.Errorf("fast watcher got %v overflow=%v, want [%d]", got, over, i)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publisher blocked by a slow watcher")
	}
	msgs, over := slow.Take()
	if got := seqs(msgs); len(got) != 4 || got[0] != 1 || got[3] != 4 || !over {
		t.Fatalf("slow watcher holds %v overflow=%v, want [1 2 3 4] with overflow", got, over)
	}
	// Taking clears the flag: the watcher has been told once and catches up from the store.
	if _, over := slow.Take(); over {
		t.Fatal("overflow flag not cleared by Take")
	}
}

func TestOverflowSignalsWatcherEvenAfterItDrained(t *testing.T) {
	h := hub.New()
	h.MailboxSize = 1
	s := h.Subscribe("a")
	t.Cleanup(s.Close)
	h.Publish(event("a", 1))
	h.Publish(event("a", 2)) // dropped: mailbox full
	msgs, over := receive(t, s)
	if got := seqs(msgs); len(got) != 1 || !over {
		t.Fatalf("got %v overflow=%v, want one message and overflow", got, over)
	}
	h.Publish(event("a", 3))
	msgs, over = receive(t, s)
	if got := seqs(msgs); len(got) != 1 || got[0] != 3 || over {
		t.Fatalf("after catching up got %v overflow=%v, want [3] without overflow", got, over)
	}
}

func TestCloseLeavesNothingBehind(t *testing.T) {
	h := hub.New()
	var subs []*hub.Subscription
	for i := range 100 {
		subs = append(subs, h.Subscribe(fmt.Sprintf("o%d", i%10)))
	}
	subs = append(subs, h.SubscribeAll())
	if got := h.Watchers(); got != 101 {
		t.Fatalf("Watchers() = %d, want 101", got)
	}
	if got := h.Orders(); got != 10 {
		t.Fatalf("Orders() = %d, want 10", got)
	}
	for _, s := range subs {
		s.Close()
		s.Close() // idempotent
	}
	if got := h.Watchers(); got != 0 {
		t.Fatalf("Watchers() = %d after Close, want 0", got)
	}
	if got := h.Orders(); got != 0 {
		t.Fatalf("Orders() = %d after Close, want no topics left", got)
	}
	if h.WatchesAll() {
		t.Fatal("WatchesAll() after Close")
	}
	h.Publish(event("o1", 9)) // must not reach a closed watcher
	if msgs, _ := subs[1].Take(); len(msgs) != 0 {
		t.Fatalf("closed watcher received %d messages", len(msgs))
	}
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	h := hub.New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				id := fmt.Sprintf("o%d", (i+j)%5)
				s := h.Subscribe(id)
				h.Publish(event(id, int64(j+1)))
				s.Take()
				s.Close()
			}
		})
	}
	wg.Wait()
	if h.Watchers() != 0 || h.Orders() != 0 {
		t.Fatalf("left behind: %d watchers, %d topics", h.Watchers(), h.Orders())
	}
}

// TestResyncAllFlagsWatchersOfEveryOrderAndOfParties: after a bus lost its feed, the watchers
// that see many orders (of all orders, of a party: a restaurant's board, a courier's) are told
// to read again what they may have missed, which the store knows; a watcher of one order is not
// (its catch-up delivers its order's events).
func TestResyncAllFlagsWatchersOfEveryOrderAndOfParties(t *testing.T) {
	h := hub.New()
	all, one, party := h.SubscribeAll(), h.Subscribe("a"), h.SubscribeParty("restaurant:r-1")
	t.Cleanup(func() { all.Close(); one.Close(); party.Close() })
	h.ResyncAll()
	for _, w := range []struct {
		name string
		sub  *hub.Subscription
	}{{"watcher of every order", all}, {"watcher of a party", party}} {
		msgs, over := receive(t, w.sub)
		if len(msgs) != 0 || !over {
			t.Fatalf("%s got %d messages, overflow=%v; want none and overflow", w.name, len(msgs), over)
		}
	}
	if msgs, over := one.Take(); len(msgs) != 0 || over {
		t.Fatalf("watcher of one order got %d messages, overflow=%v; want nothing", len(msgs), over)
	}
}

// TestOnReadyCallsBackInsteadOfSignalling: the callback runs on every publish, at once for what
// was queued before it was set, and says whether a status event waits or only a position, and
// whether it runs on the publisher's goroutine with leave to deliver (a status event only).
func TestOnReadyCallsBackInsteadOfSignalling(t *testing.T) {
	h := hub.New()
	s := h.Subscribe("a")
	t.Cleanup(s.Close)
	h.Publish(event("a", 1)) // queued before the callback is set: OnReady calls at once
	var calls []hub.Wake
	s.OnReady(func(w hub.Wake) { calls = append(calls, w) })
	if want := []hub.Wake{{Status: true}}; !slices.Equal(calls, want) {
		t.Fatalf("OnReady with a queued message called back %v, want %v", calls, want)
	}
	h.Publish(event("a", 2))
	h.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{OrderID: "a", Lat: 1, At: time.Now()}))
	if want := []hub.Wake{{Status: true}, {Status: true, Inline: true}, {}}; !slices.Equal(calls, want) {
		t.Fatalf("publishes called back %v, want %v (opening, status, position)", calls, want)
	}
	msgs, _ := s.Take()
	if got := seqs(msgs); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("took %v, want [1 2]", got)
	}
	if s.TakeLocation() == nil {
		t.Fatal("the position is not in its slot")
	}

	// A subscription holding only a position is called back at once, for a position.
	p := h.Subscribe("b")
	t.Cleanup(p.Close)
	h.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{OrderID: "b", Lat: 1, At: time.Now()}))
	calls = nil
	p.OnReady(func(w hub.Wake) { calls = append(calls, w) })
	if want := []hub.Wake{{}}; !slices.Equal(calls, want) {
		t.Fatalf("OnReady with a position waiting called back %v, want %v", calls, want)
	}
}

// TestInlineWakesAreBounded: one event lets at most InlineWakes of its watchers deliver on the
// publisher's goroutine, the order's own watchers first; the rest are told to schedule.
func TestInlineWakesAreBounded(t *testing.T) {
	h := hub.New()
	var inline, scheduled atomic.Int64
	count := func(w hub.Wake) {
		if w.Inline {
			inline.Add(1)
		} else {
			scheduled.Add(1)
		}
	}
	for range hub.InlineWakes + 4 {
		s := h.Subscribe("a")
		t.Cleanup(s.Close)
		s.OnReady(count)
	}
	all := h.SubscribeAll()
	t.Cleanup(all.Close)
	var allInline atomic.Bool
	all.OnReady(func(w hub.Wake) { allInline.Store(w.Inline) })
	h.Publish(event("a", 1))
	if inline.Load() != hub.InlineWakes || scheduled.Load() != 4 {
		t.Errorf("%d watchers woken inline and %d to schedule, want %d and 4", inline.Load(), scheduled.Load(), hub.InlineWakes)
	}
	if allInline.Load() {
		t.Error("the watcher of every order was woken inline after the order's own watchers had used up the bound")
	}
}

// TestCallbacksRunOutsideTheHubsLocks: a callback that delivers at once may end its stream there,
// closing its subscription (which takes the hub's locks) without deadlocking the publisher.
func TestCallbacksRunOutsideTheHubsLocks(t *testing.T) {
	h := hub.New()
	s := h.Subscribe("a")
	s.OnReady(func(hub.Wake) { s.Close() })
	all := h.SubscribeAll()
	all.OnReady(func(hub.Wake) { all.Close() })
	done := make(chan struct{})
	go func() {
		h.Publish(event("a", 1))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish did not return: a callback closing its subscription deadlocked on the hub's locks")
	}
}

func TestReadySignalsWhatWasQueuedBeforeIt(t *testing.T) {
	h := hub.New()
	s := h.Subscribe("a")
	t.Cleanup(s.Close)
	h.Publish(event("a", 1))
	select {
	case <-s.Ready():
	default:
		t.Fatal("Ready not signalled for a message queued before it was first asked for")
	}
}

// TestClosedSubscriptionHoldsNothing: a subscription closed after its mailbox overflowed says
// nothing is queued or missed, so a wake that comes after the close (the hub wakes watchers
// once it has let go of its locks) sends its watcher to the store for nothing.
func TestClosedSubscriptionHoldsNothing(t *testing.T) {
	h := hub.New()
	h.MailboxSize = 1
	s := h.Subscribe("a")
	h.Publish(event("a", 1))
	h.Publish(event("a", 2)) // past the mailbox: overflowed
	s.Close()
	if msgs, overflowed := s.Take(); len(msgs) != 0 || overflowed {
		t.Errorf("closed subscription takes %d messages, overflowed %v; want none and false", len(msgs), overflowed)
	}
}
