package postgres

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

func TestNotifyPayloads_RoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 30, 23, 0, 0, 123456000, time.UTC)
	evs := []ordercast.Event{
		{OrderID: "a", Seq: 2, Status: ordercast.StatusConfirmed, At: at},
		{OrderID: "b", Seq: 1, Status: ordercast.StatusPlaced, At: at, Note: "quoted \"note\" \u2028"},
		{OrderID: "a", Seq: 3, Status: ordercast.StatusReady, At: at, Actor: "restaurant:luigi"},
		{OrderID: "a", Seq: 4, Kind: ordercast.KindCourier, Status: ordercast.StatusReady, CourierID: "c-7", CourierName: "Omar", At: at, Marks: "courier:c-7=1"},
		{OrderID: "c", Seq: 7, Status: ordercast.StatusCancelled, At: at, Note: strings.Repeat("n", ordercast.MaxNoteLength), Actor: "courier:7"},
	}
	tests := []struct {
		name      string
		max       int
		payloads  int
		announced []ordercast.Event // what the listener gets: events too large come as id and seq
	}{
		{"OneNotifyPerBatch", DefaultMaxNotifyPayload, 1, evs},
		{"SplitWhenTooLarge", 600, 2, evs},
		{"ByIDWhenOneEventIsTooLarge", MinNotifyPayload, 1, append(evs[:4:4], ordercast.Event{OrderID: "c", Seq: 7})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payloads, err := notifyPayloads(evs, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if len(payloads) != tt.payloads {
				t.Errorf("%d payloads, want %d", len(payloads), tt.payloads)
			}
			var got []ordercast.Event
			for _, p := range payloads {
				if len(p) > tt.max {
					t.Errorf("payload of %d bytes, max %d", len(p), tt.max)
				}
				evs, err := parseNotification(p)
				if err != nil {
					t.Fatalf("parse %s: %v", p, err)
				}
				got = append(got, evs...)
			}
			if !reflect.DeepEqual(got, tt.announced) {
				t.Errorf("announced:\n got  %+v\n want %+v", got, tt.announced)
			}
		})
	}
}

// TestShortNoticeFitsTheSmallestPayload: the short notice of the largest event there can be
// (ids of the longest, a seq and log positions of 19 digits, the marks of four parties: a
// reassignment of an order with a restaurant and a customer) fits a payload of MinNotifyPayload,
// the smallest MaxNotifyPayload a store opens with, so no payload is ever over its bound.
func TestShortNoticeFitsTheSmallestPayload(t *testing.T) {
	id := func(prefix string) string { return prefix + strings.Repeat("x", ordercast.MaxIDLength-len(prefix)) }
	var marks ordercast.Marks
	for _, key := range []string{"courier:" + id("a"), "courier:" + id("b"), "customer:" + id("u"), "restaurant:" + id("r")} {
		marks = marks.With(key, math.MaxInt64)
	}
	ev := ordercast.Event{OrderID: id("o"), Seq: math.MaxInt64, Kind: ordercast.KindCourier, Status: ordercast.StatusOutForDelivery,
		CourierID: id("b"), At: time.Now(), Note: strings.Repeat("n", ordercast.MaxNoteLength), Actor: id("admin:"), Marks: marks}
	payloads, err := notifyPayloads([]ordercast.Event{ev}, MinNotifyPayload)
	if err != nil {
		t.Fatal(err)
	}
	if len(payloads) != 1 || len(payloads[0]) > MinNotifyPayload {
		t.Fatalf("%d payloads, the first of %d bytes; want one of at most %d", len(payloads), len(payloads[0]), MinNotifyPayload)
	}
	if got := len(payloads[0]); got != 468 {
		t.Errorf("the largest short notice is %d bytes; MinNotifyPayload's comment says 468", got)
	}
	got, err := parseNotification(payloads[0])
	if want := []ordercast.Event{{OrderID: ev.OrderID, Seq: ev.Seq, Marks: ev.Marks}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("announced %+v, %v; want %+v", got, err, want)
	}
}

// A node of the previous version announces one event per notification, as a JSON object.
func TestParseNotification_PreviousVersion(t *testing.T) {
	got, err := parseNotification(`{"order_id":"a","seq":2,"status":"confirmed","at":"2026-11-30T23:00:00.5Z","note":"n"}`)
	want := []ordercast.Event{{OrderID: "a", Seq: 2, Status: ordercast.StatusConfirmed, At: time.Date(2026, 11, 30, 23, 0, 0, 5e8, time.UTC), Note: "n"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseNotification = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{``, `[`, `[["a"]]`, `[["",1]]`, `[["a",0,"x",1]]`, `{"seq":1}`, `[[1,2]]`} {
		if _, err := parseNotification(bad); err == nil {
			t.Errorf("parseNotification(%q) = nil error", bad)
		}
	}
}

// TestOrderPayloads_RoundTrip: the orders a batch created come back exactly, details byte for
// byte, with their latest events (the batch's last of each, without marks); they split over
// payloads when they do not fit one, and an order too large alone is left out.
func TestOrderPayloads_RoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC)
	details := `{"items": [1, 2.50],  "note": "<b> & \u00e9"}`
	b := ordercast.NewBatch([]ordercast.Write{
		{Create: &ordercast.NewOrder{ID: "a", Details: []byte(details), RestaurantID: "r", CustomerID: "u",
			Pickup: &ordercast.Point{Lat: 52.5, Lng: 13.4}, Note: "first", Actor: "restaurant:r"}},
		{Change: &ordercast.StatusChange{OrderID: "a", Status: ordercast.StatusConfirmed, Note: "ok"}},
		{Create: &ordercast.NewOrder{ID: "b", Details: []byte(`{}`)}},
		{Create: &ordercast.NewOrder{ID: "big", Details: []byte(`{"x":"` + strings.Repeat("x", 700) + `"}`)}},
	})
	b.Apply(at)
	b.Mark(map[string]int64{"restaurant:r": 2, "customer:u": 2})
	want := map[string]ordercast.Event{}
	for _, ev := range b.Events {
		want[ev.OrderID] = ev.Wire()
	}
	for _, tt := range []struct {
		max, payloads int
	}{{DefaultMaxNotifyPayload, 1}, {600, 2}} {
		payloads, err := orderPayloads(b, tt.max)
		if err != nil {
			t.Fatal(err)
		}
		if len(payloads) != tt.payloads {
			t.Errorf("max %d: %d payloads, want %d", tt.max, len(payloads), tt.payloads)
		}
		var got []ordercast.Order
		for _, p := range payloads {
			if len(p) > tt.max {
				t.Errorf("payload of %d bytes, max %d", len(p), tt.max)
			}
			orders, latest, err := parseOrders(p)
			if err != nil {
				t.Fatalf("parse %s: %v", p, err)
			}
			for i, o := range orders {
				if !reflect.DeepEqual(latest[i], want[o.ID]) {
					t.Errorf("%s's latest event %+v, want %+v", o.ID, latest[i], want[o.ID])
				}
			}
			got = append(got, orders...)
		}
		wantOrders := b.Created
		if tt.max < 1000 {
			wantOrders = b.Created[:2] // big does not fit alone
		}
		if !reflect.DeepEqual(got, wantOrders) {
			t.Errorf("max %d: orders\n got  %+v\n want %+v", tt.max, got, wantOrders)
		}
	}
	for _, bad := range []string{`[`, `[{"id":""}]`, `[{"id":"a","version":2,"latest":{"order_id":"a","seq":1}}]`} {
		if _, _, err := parseOrders(bad); err == nil {
			t.Errorf("parseOrders(%q) = nil error", bad)
		}
	}
}

// TestParseNotification_LaterVersion: a node of a later version may add fields after the ones
// this version knows; a node mid-way through a rolling upgrade reads the event it knows from
// such a row, rather than take it for a broken notice (which makes the listener reconnect).
func TestParseNotification_LaterVersion(t *testing.T) {
	got, err := parseNotification(`[["a",2,"confirmed",1796079600500000,"n","restaurant:r","","",null,"",{"a later field":true},42]]`)
	want := []ordercast.Event{{OrderID: "a", Seq: 2, Status: ordercast.StatusConfirmed, At: time.Date(2026, 11, 30, 23, 0, 0, 5e8, time.UTC), Note: "n", Actor: "restaurant:r"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseNotification = %+v, %v; want %+v", got, err, want)
	}
}
