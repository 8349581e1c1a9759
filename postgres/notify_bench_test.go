package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

// benchEvents returns n events as a busy node's batch holds them: status changes by restaurants
// and couriers, a courier assignment now and then, a note on some, each marked in the logs of
// its order's restaurant and customer (and courier, once assigned).
func benchEvents(n int) []ordercast.Event {
	at := time.Date(2026, 12, 1, 19, 30, 0, 123456000, time.UTC)
	evs := make([]ordercast.Event, n)
	for i := range evs {
		order := fmt.Sprintf("ord-%024x", 0x5eed0000+i*7919)
		restaurant, customer := fmt.Sprintf("r-%04d", i%37), fmt.Sprintf("u-%06d", 100000+i*13)
		marks := ordercast.Marks("").With("restaurant:"+restaurant, int64(48211+i)).With("customer:"+customer, int64(17+i%5))
		ev := ordercast.Event{OrderID: order, Seq: int64(2 + i%5), Status: ordercast.Statuses[1+i%5],
			At: at.Add(time.Duration(i) * time.Millisecond), Actor: "restaurant:" + restaurant, Marks: marks}
		switch i % 8 {
		case 3:
			ev.Kind, ev.Status, ev.CourierID, ev.CourierName = ordercast.KindCourier, ordercast.StatusReady, "c-0042", "Zoë"
			ev.Actor, ev.Marks = "admin:dispatch", marks.With("courier:c-0042", int64(901+i))
		case 5:
			ev.Note = "Ring twice, \"side door\" <gate B>; no onions"
		case 6:
			ev.Actor = "courier:c-0042"
		}
		evs[i] = ev
	}
	return evs
}

// BenchmarkParseNotification reads the notices of a batch of n events, as notifyPayloads writes
// them (a batch of 64 takes two), the work every node's listener does for every batch of the
// cluster: go test -run '^$' -bench ParseNotification -benchmem -count 5 ./postgres
func BenchmarkParseNotification(b *testing.B) { benchmarkParse(b, parseNotification) }

// BenchmarkParseNotificationJSON is the same with encoding/json alone, as every notice was read
// before readNotices, and as the forms it leaves are read still.
func BenchmarkParseNotificationJSON(b *testing.B) { benchmarkParse(b, parseNotificationJSON) }

func benchmarkParse(b *testing.B, parse func(string) ([]ordercast.Event, error)) {
	for _, n := range []int{1, 16, 64} {
		payloads, err := notifyPayloads(benchEvents(n), DefaultMaxNotifyPayload)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, p := range payloads {
					if _, err := parse(p); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}
