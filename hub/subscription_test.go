package hub_test

import (
	"slices"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// TestTakeIntoKeepsTheMailboxBound: taking into a buffer appends to it, in publish order, and the
// mailbox it empties keeps its bound and its overflow flag as one that Take emptied.
func TestTakeIntoKeepsTheMailboxBound(t *testing.T) {
	h := hub.New()
	h.MailboxSize = 2
	s := h.Subscribe("a")
	t.Cleanup(s.Close)
	buf := []*hub.Message{hub.NewMessage(event("z", 9))}
	for round, seq := range []int64{1, 4, 7} {
		for i := range int64(3) { // one past the mailbox
			h.Publish(event("a", seq+i))
		}
		msgs, overflowed := s.TakeInto(buf)
		if got, want := seqs(msgs), []int64{9, seq, seq + 1}; !slices.Equal(got, want) || !overflowed {
			t.Fatalf("round %d: took %v, overflowed %v; want %v and true", round, got, overflowed, want)
		}
		if msgs, overflowed := s.TakeInto(nil); len(msgs) != 0 || overflowed {
			t.Fatalf("round %d: a second take got %v, overflowed %v; want nothing", round, seqs(msgs), overflowed)
		}
		buf = msgs[:1]
	}
	h.Publish(event("a", 10))
	if msgs, _ := s.Take(); !slices.Equal(seqs(msgs), []int64{10}) {
		t.Fatalf("Take after TakeInto got %v, want [10]", seqs(msgs))
	}
}

// BenchmarkDelivery publishes one event to hub.InlineWakes watchers, of its order or of one of its
// parties, which each take it, as held streams do: what it allocates beyond the one message shared
// by all is per watcher or per event. TakeInto, into a buffer on the taker's stack, allocates
// nothing.
func BenchmarkDelivery(b *testing.B) {
	takeInto := func(s *hub.Subscription) int {
		var buf [4]*hub.Message
		msgs, _ := s.TakeInto(buf[:0])
		return len(msgs)
	}
	for _, tc := range []struct {
		name  string
		party bool
		take  func(*hub.Subscription) int
	}{
		{"Take", false, func(s *hub.Subscription) int { msgs, _ := s.Take(); return len(msgs) }},
		{"TakeInto", false, takeInto},
		{"Party/TakeInto", true, takeInto},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := hub.New()
			subs := make([]*hub.Subscription, hub.InlineWakes)
			for i := range subs {
				if tc.party {
					subs[i] = h.SubscribeParty("restaurant:r-1")
				} else {
					subs[i] = h.Subscribe("a")
				}
				subs[i].OnReady(func(hub.Wake) {})
				b.Cleanup(subs[i].Close)
			}
			ev := event("a", 1)
			ev.Marks = ordercast.Marks("").With("customer:u-1", 40).With("restaurant:r-1", 1200)
			b.ReportAllocs()
			for b.Loop() {
				h.Publish(ev)
				for _, s := range subs {
					if n := tc.take(s); n != 1 {
						b.Fatalf("took %d messages, want 1", n)
					}
				}
			}
		})
	}
}
