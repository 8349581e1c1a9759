package ordercast_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
)

func TestPositionValidate(t *testing.T) {
	now := time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)
	f := func(v float64) *float64 { return &v }
	ok := ordercast.Position{Point: ordercast.Point{Lat: 52.5, Lng: 13.4}, At: now}
	for _, tt := range []struct {
		name string
		edit func(*ordercast.Position)
		ok   bool
		// says is what the refusal must say, if anything in particular.
		says string
	}{
		{"good", func(*ordercast.Position) {}, true, ""},
		{"poles and antimeridian", func(p *ordercast.Position) { p.Lat, p.Lng = -90, 180 }, true, ""},
		{"the equator", func(p *ordercast.Position) { p.Lat = 0 }, true, ""},
		{"the prime meridian", func(p *ordercast.Position) { p.Lng = 0 }, true, ""},
		{"both 0: a phone with no fix", func(p *ordercast.Position) { p.Lat, p.Lng = 0, 0 }, false, "lat and lng are both 0"},
		{"lat NaN", func(p *ordercast.Position) { p.Lat = math.NaN() }, false, ""},
		{"lng +Inf", func(p *ordercast.Position) { p.Lng = math.Inf(1) }, false, ""},
		{"lat 90.1", func(p *ordercast.Position) { p.Lat = 90.1 }, false, ""},
		{"accuracy NaN", func(p *ordercast.Position) { p.AccuracyM = f(math.NaN()) }, false, ""},
		{"heading -1", func(p *ordercast.Position) { p.Heading = f(-1) }, false, ""},
		{"heading 359.9", func(p *ordercast.Position) { p.Heading = f(359.9) }, true, ""},
		{"speed Inf", func(p *ordercast.Position) { p.SpeedMPS = f(math.Inf(1)) }, false, ""},
		{"no time", func(p *ordercast.Position) { p.At = time.Time{} }, false, ""},
		{"a little ahead (clock skew)", func(p *ordercast.Position) { p.At = now.Add(2 * time.Second) }, true, ""},
		{"future", func(p *ordercast.Position) { p.At = now.Add(time.Minute) }, false,
			"at is 1m ahead of the server's clock (2026-11-30T20:00:00Z), which takes at most 5s"},
		{"too old", func(p *ordercast.Position) { p.At = now.Add(-140 * time.Second) }, false,
			"at is 2m20s old by the server's clock (2026-11-30T20:00:00Z), and a position may be at most 2m old"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			err := p.Validate(now, ordercast.DefaultLocationMaxAge)
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
			if err != nil && ordercast.ErrorCode(err) != ordercast.EInvalidLocation {
				t.Fatalf("code %q, want %q", ordercast.ErrorCode(err), ordercast.EInvalidLocation)
			}
			if err != nil && !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Validate = %q, want it to say %q", err, tt.says)
			}
		})
	}
}

func TestDistanceAndETA(t *testing.T) {
	// One degree of latitude is about 111.2 km everywhere.
	if d := ordercast.DistanceM(ordercast.Point{Lat: 10, Lng: 5}, ordercast.Point{Lat: 11, Lng: 5}); math.Abs(d-111_195) > 50 {
		t.Fatalf("one degree of latitude = %v m", d)
	}
	m := ordercast.DefaultETAModel
	for _, tt := range []struct {
		dist, speed float64
		eta         int64
		nearby      bool
	}{
		{dist: 6000, speed: 6, eta: 1300}, // 6 km * 1.3 at 6 m/s
		{dist: 6000, speed: 0, eta: 1560}, // not seen moving yet: the typical 5 m/s
		{dist: 6000, speed: 1, eta: 3900}, // slowed to a stop: the floor speed, not forever
		{dist: 6000, speed: 90, eta: 520}, // a bad fix: the ceiling speed
		{dist: 50, speed: 6, eta: m.FloorS, nearby: true},
		{dist: 1e7, speed: 6, eta: m.CeilingS},
	} {
		eta, nearby := m.Estimate(tt.dist, tt.speed)
		if eta != tt.eta || nearby != tt.nearby {
			t.Errorf("Estimate(%v m, %v m/s) = %d s, nearby %v; want %d, %v", tt.dist, tt.speed, eta, nearby, tt.eta, tt.nearby)
		}
	}
	// Past its first window, averaged over time: a stop as long as the window leaves 1/e of the
	// speed, whatever the number of fixes it took.
	settled := 2 * m.SpeedWindow
	if got, want := m.Speed(10, 0, m.SpeedWindow, settled), 10/math.E; math.Abs(got-want) > 1e-9 {
		t.Errorf("Speed(10, 0 for the window) = %v, want %v", got, want)
	}
	stepped := 10.0
	for range 60 {
		stepped = m.Speed(stepped, 0, m.SpeedWindow/60, settled)
	}
	if want := 10 / math.E; math.Abs(stepped-want) > 1e-9 {
		t.Errorf("sixty fixes of 0 over the window: speed %v, want %v, as one", stepped, want)
	}
	// ride runs samples of speed mps a second apart for d, from an estimate s begun since ago.
	ride := func(s float64, since time.Duration, mps float64, d time.Duration) (float64, time.Duration) {
		for range int(d / time.Second) {
			since += time.Second
			s = m.Speed(s, mps, time.Second, since)
		}
		return s, since
	}
	// Its first window is the mean of what it saw: a courier who walked the bike out (2.1 m/s)
	// and rides at 6 m/s is estimated near 6 within seconds, not minutes.
	s, since := ride(m.Speed(0, 2.1, 0, 0), 0, 6, 10*time.Second)
	if eta, want := func() (int64, int64) { a, _ := m.Estimate(2000, s); b, _ := m.Estimate(2000, 6); return a, b }(); float64(eta) > 1.1*float64(want) {
		t.Errorf("10 s into a ride at 6 m/s after a first sample of 2.1: speed %.2f, ETA %d s, want within 10%% of %d s", s, eta, want)
	}
	// A red light after a steady ride: three seconds hardly move the ETA (counted by fixes, 30 %
	// the newest, it moved 2.5 times), thirty lengthen it by about a quarter.
	s, since = ride(s, since, 6, 3*time.Minute)
	before, _ := m.Estimate(2000, s)
	for _, stop := range []struct {
		d   time.Duration
		max float64
	}{{3 * time.Second, 1.05}, {30 * time.Second, 1.35}} {
		stopped, _ := ride(s, since, 0, stop.d)
		if after, _ := m.Estimate(2000, stopped); float64(after) > stop.max*float64(before) {
			t.Errorf("a stop of %v at a light moved the ETA from %d s to %d s", stop.d, before, after)
		}
	}
	// One bad fix (111 km in a second) weighs as the top speed, for the second it covers.
	if bad := m.Speed(5, 111_000, time.Second, settled); bad > 5+(m.MaxSpeedMPS-5)*time.Second.Seconds()/m.SpeedWindow.Seconds() {
		t.Errorf("after a jump of 111 km in a second the speed is %v m/s, more than the top speed for a second", bad)
	}
}

func TestShowsLocation(t *testing.T) {
	for _, tt := range []struct {
		s, from ordercast.Status
		want    bool
	}{
		{ordercast.StatusOutForDelivery, "", true},
		{ordercast.StatusReady, "", false},
		{ordercast.StatusDelivered, "", false},
		{ordercast.StatusCancelled, "", false},
		{ordercast.StatusReady, ordercast.StatusConfirmed, true},
		{ordercast.StatusPlaced, ordercast.StatusConfirmed, false},
		{ordercast.StatusDelivered, ordercast.StatusConfirmed, false},
		{ordercast.StatusOutForDelivery, ordercast.StatusCancelled, false},
		// Never from placed: the restaurant has not taken the order yet.
		{ordercast.StatusPlaced, ordercast.StatusPlaced, false},
		{ordercast.StatusOutForDelivery, ordercast.StatusPlaced, false},
	} {
		if got := ordercast.ShowsLocation(tt.s, tt.from); got != tt.want {
			t.Errorf("ShowsLocation(%s, from %q) = %v, want %v", tt.s, tt.from, got, tt.want)
		}
	}
}

// TestLocationFromValid: --location-from takes the default or a stage from confirmed to
// out_for_delivery; not placed (nobody is owed a courier's whereabouts for an order the
// restaurant has not taken), not an end, not a word that is no status.
func TestLocationFromValid(t *testing.T) {
	for from, want := range map[ordercast.Status]bool{
		"": true, ordercast.StatusConfirmed: true, ordercast.StatusPreparing: true, ordercast.StatusReady: true, ordercast.StatusOutForDelivery: true,
		ordercast.StatusPlaced: false, ordercast.StatusDelivered: false, ordercast.StatusCancelled: false, "pickup": false,
	} {
		if got := ordercast.LocationFromValid(from); got != want {
			t.Errorf("LocationFromValid(%q) = %v, want %v", from, got, want)
		}
	}
}

// Replaces: of one courier's positions the later fix wins; of two couriers', the one judged
// against the later version of the order (the courier it was given to later), whatever the
// clocks; with a version unknown, the other courier's.
func TestLocationUpdateReplaces(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	pos := func(courier string, version int64, at time.Duration) ordercast.LocationUpdate {
		return ordercast.LocationUpdate{OrderID: "o", CourierID: courier, OrderVersion: version, At: now.Add(at)}
	}
	for _, tt := range []struct {
		name     string
		u, old   ordercast.LocationUpdate
		replaces bool
	}{
		{"same courier, later", pos("a", 4, time.Second), pos("a", 4, 0), true},
		{"same courier, same time", pos("a", 4, 0), pos("a", 4, 0), false},
		{"same courier, earlier", pos("a", 4, -time.Second), pos("a", 4, 0), false},
		{"same courier, later, older copy", pos("a", 4, time.Second), pos("a", 5, 0), true},
		{"new courier, clock behind", pos("b", 5, -time.Minute), pos("a", 4, 0), true},
		{"old courier, late", pos("a", 4, time.Minute), pos("b", 5, 0), false},
		{"old courier, version unknown", pos("a", 0, time.Minute), pos("b", 5, 0), true},
		{"new courier, kept version unknown", pos("b", 5, -time.Minute), pos("a", 0, 0), true},
		{"given back to the first courier", pos("a", 7, -time.Minute), pos("b", 5, 0), true},
	} {
		if got := tt.u.Replaces(tt.old); got != tt.replaces {
			t.Errorf("%s: Replaces = %v, want %v", tt.name, got, tt.replaces)
		}
	}
}
