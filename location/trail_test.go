package location_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
)

// metresNorth is how far a step of lat (at lng 1, as at gives) takes a courier.
func metresNorth(dlat float64) float64 {
	return ordercast.DistanceM(ordercast.Point{Lat: 0, Lng: 1}, ordercast.Point{Lat: dlat, Lng: 1})
}

// ride posts n fixes of courier c-1, step degrees of latitude apart, 100 ms apart (a long ride
// must end within the positions' age bound), ending now; it returns the positions posted.
func ride(t *testing.T, tr *location.Tracker, n int, step float64) []ordercast.Position {
	t.Helper()
	const every = 100 * time.Millisecond
	start := time.Now().Add(-time.Duration(n) * every).Truncate(time.Microsecond)
	var ps []ordercast.Position
	for i := range n {
		p := at(float64(i)*step, start.Add(time.Duration(i)*every))
		if _, err := tr.Post(context.Background(), "c-1", p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// rideTracker is a tracker whose courier c-1 carries order a, out for delivery, with no limit on
// its posts.
func rideTracker(t *testing.T) (*location.Tracker, *hub.Hub) {
	return open(t, fixed{{ID: "a", Status: ordercast.StatusOutForDelivery, CourierID: "c-1", Version: 4}},
		func(tr *location.Tracker) { tr.Rate = 0 })
}

// The trail starts where the courier's first position was, keeps fixes at least 25 m apart (a
// courier creeping through traffic adds nothing in between), in time order, and ends at the
// newest position exactly as posted.
func TestTrailIsTheWayTheCourierCame(t *testing.T) {
	tr, _ := rideTracker(t)
	if l, fixes := tr.Trail("a"); l != nil || fixes != nil {
		t.Fatalf("before any position: Trail = %s, %v; want none", describe(l), fixes)
	}
	step := 0.00009 // about 10 m
	ps := ride(t, tr, 40, step)
	l, fixes := tr.Trail("a")
	if l == nil || l.Update.CourierID != "c-1" {
		t.Fatalf("trail's position %s, want c-1's", describe(l))
	}
	first, last := fixes[0], fixes[len(fixes)-1]
	if first.Lat != ps[0].Lat || !first.At.Equal(ps[0].At) {
		t.Errorf("trail starts at %+v, want the first position %+v", first, ps[0])
	}
	if newest := ps[len(ps)-1]; last.Lat != newest.Lat || last.Lng != newest.Lng || !last.At.Equal(newest.At) {
		t.Errorf("trail ends at %+v, want the newest position %+v", last, newest)
	}
	for i := 1; i < len(fixes)-1; i++ {
		a, b := fixes[i-1], fixes[i]
		if d := ordercast.DistanceM(a.Point, b.Point); d < 25 {
			t.Errorf("fixes %d and %d are %.1f m apart, want at least 25", i-1, i, d)
		}
		if !b.At.After(a.At) {
			t.Errorf("fix %d at %v is not after fix %d at %v", i, b.At, i-1, a.At)
		}
	}
	// 390 m in 10 m steps: a fix every third step, about 14, not all 40.
	if n := len(fixes); n < 10 || n > 20 {
		t.Errorf("trail of a 390 m ride in 10 m steps holds %d fixes, want 10 to 20", n)
	}
}

// However long the ride, the trail stays bounded and spans all of it, evenly: the first fix is
// still the start, and no stretch of the way is left with far fewer fixes than another.
func TestTrailOfALongRideIsBoundedAndEven(t *testing.T) {
	tr, _ := rideTracker(t)
	step := 0.0003 // about 33 m: 1,000 of them, 33 km
	ps := ride(t, tr, 1000, step)
	_, fixes := tr.Trail("a")
	if n := len(fixes); n > 129 || n < 32 {
		t.Fatalf("trail of a 1,000-fix ride holds %d fixes, want 32 to 129", n)
	}
	if fixes[0].Lat != ps[0].Lat {
		t.Errorf("trail starts at lat %v, want the ride's start %v", fixes[0].Lat, ps[0].Lat)
	}
	if last := fixes[len(fixes)-1]; last.Lat != ps[len(ps)-1].Lat {
		t.Errorf("trail ends at lat %v, want the newest %v", last.Lat, ps[len(ps)-1].Lat)
	}
	least, most := 1e9, 0.0
	for i := 1; i < len(fixes)-1; i++ { // the last gap is to the newest position, any length
		gap := metresNorth(fixes[i].Lat - fixes[i-1].Lat)
		least, most = min(least, gap), max(most, gap)
	}
	if most > 2.5*least {
		t.Errorf("fixes from %.0f m to %.0f m apart: the trail is thinned unevenly", least, most)
	}
}

// A trail is one courier's: positions of another courier the order went to start a new one, on
// this node and from the cluster's; and it goes with the order's end.
func TestTrailIsTheCurrentCouriersUntilTheEnd(t *testing.T) {
	tr, h := rideTracker(t)
	ride(t, tr, 10, 0.001)
	now := time.Now()
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "a", CourierID: "c-2", OrderVersion: 5, Lat: 7, Lng: 1, At: now}})
	l, fixes := tr.Trail("a")
	if l == nil || l.Update.CourierID != "c-2" || len(fixes) != 1 || fixes[0].Lat != 7 {
		t.Fatalf("after c-2's first position: Trail = %s, %+v; want c-2's one fix", describe(l), fixes)
	}
	tr.ReceiveLocations([]ordercast.LocationUpdate{{OrderID: "a", CourierID: "c-2", OrderVersion: 5, Lat: 7.001, Lng: 1, At: now.Add(time.Second)}})
	if _, fixes := tr.Trail("a"); len(fixes) != 2 {
		t.Fatalf("after c-2's second position from the cluster: %d fixes, want 2", len(fixes))
	}
	h.Publish(ordercast.Event{OrderID: "a", Seq: 6, Status: ordercast.StatusDelivered, At: now})
	testutil.WaitFor(t, "the delivered order's trail to go", func() bool {
		l, fixes := tr.Trail("a")
		return l == nil && fixes == nil
	})
}
