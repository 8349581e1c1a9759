package stream

import (
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// TestStreamNeverShowsAnOlderFix: two posts of one courier may publish in either order, and a
// stream that already sent the newer fix drops the older one when it arrives after: latest wins
// on the screen too. Another courier's fix (a reassignment) is shown whatever its time.
func TestStreamNeverShowsAnOlderFix(t *testing.T) {
	at := time.Now()
	fix := func(courier string, lat float64, at time.Time) *hub.Location {
		return hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", CourierID: courier, Lat: lat, Lng: 1, At: at})
	}
	steps := []struct {
		fix   *hub.Location
		shown bool
	}{
		{fix("c-1", 2, at), true},
		{fix("c-1", 1, at.Add(-time.Second)), false}, // published late
		{fix("c-1", 2, at), false},                   // handed over again
		{fix("c-1", 3, at.Add(time.Second)), true},
		{fix("c-2", 4, at.Add(-time.Minute)), true}, // the order went to c-2
	}
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r"}
	for _, scope := range []Scope{OrderEvents, PartyEvents} {
		w := &watcher{e: &Engine{cfg: testConfig}, f: sseFraming{}, scope: scope, party: party, partyKey: party.Key()}
		w.lastStatus, w.courier = ordercast.StatusOutForDelivery, "c-1"
		w.rememberOrder("o-1", partyOrder{status: ordercast.StatusOutForDelivery, courier: "c-1"})
		for i, s := range steps {
			if s.fix.Update.CourierID == "c-2" {
				w.courier = "c-2"
				w.rememberOrder("o-1", partyOrder{status: ordercast.StatusOutForDelivery, courier: "c-2"})
			}
			w.out, w.ends = nil, nil
			if scope == PartyEvents {
				w.locs = map[string]*hub.Location{"o-1": s.fix}
			} else {
				w.loc = s.fix
			}
			w.location(time.Now())
			if got := strings.Contains(string(w.out), "event: location"); got != s.shown {
				t.Errorf("scope %v, step %d (%s at %v): shown %v, want %v", scope, i, s.fix.Update.CourierID, s.fix.Update.Lat, got, s.shown)
			}
		}
	}
}

// TestAHeldBackPositionGivesWayOnlyToANewerOne: a position the cap holds back waits in the
// watcher, not in the hub's slot; an older fix of a racing post that lands in the emptied slot
// meanwhile must not take its place, or the cap would release the older one and the newest would
// never be shown. Both a stream of one order and a party stream are judged.
func TestAHeldBackPositionGivesWayOnlyToANewerOne(t *testing.T) {
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r"}
	for _, scope := range []Scope{OrderEvents, PartyEvents} {
		h := hub.New()
		var sub *hub.Subscription
		if scope == PartyEvents {
			sub = h.SubscribeParty(party.Key())
		} else {
			sub = h.Subscribe("o-1")
		}
		e := &Engine{hub: h, cfg: Config{LocationInterval: time.Second, Locations: noLocations{}}}
		w := &watcher{e: e, f: sseFraming{}, scope: scope, orderID: "o-1", sub: sub, party: party, partyKey: party.Key(),
			lastStatus: ordercast.StatusOutForDelivery, courier: "c-1"}
		w.rememberOrder("o-1", partyOrder{status: ordercast.StatusOutForDelivery, courier: "c-1"})
		at, now := time.Now(), time.Now()
		step := func(lat float64, at, now time.Time) string {
			if lat != 0 {
				h.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", CourierID: "c-1", Lat: lat, Lng: 1,
					At: at, Parties: []string{party.Key()}}))
			}
			w.take(nil)
			w.out, w.ends = nil, nil
			w.location(now)
			return string(w.out)
		}
		step(1, at, now)                           // shown
		step(2, at.Add(time.Second), now)          // shown: the cap's burst
		step(4, at.Add(3*time.Second), now)        // held back by the cap: the newest
		step(3, at.Add(2*time.Second), now)        // an older fix of a racing post, published late
		out := step(0, at, now.Add(2*time.Second)) // the cap lets one go
		if !strings.Contains(out, `"lat":4`) {
			t.Errorf("scope %v: the cap released %q, want the newest fix (lat 4)", scope, out)
		}
		sub.Close()
	}
}

// TestAPositionAheadOfItsStageWaitsForIt: a tracker sends a position to an order it judged to
// show its courier, by the store's state, which may be ahead of the stream's events (a node
// hears of a pickup through its listener, after the courier's post was judged by a read of the
// store). The stream keeps its courier's position until the pickup's event and shows it then; it
// never shows it if the order ends instead, nor another courier's.
func TestAPositionAheadOfItsStageWaitsForIt(t *testing.T) {
	party := ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "r"}
	for _, c := range []struct {
		name    string
		courier string           // whose position arrives while the stream knows the order ready
		next    ordercast.Status // the order's next event
		shown   bool
	}{
		{"its courier's, then the pickup", "c-1", ordercast.StatusOutForDelivery, true},
		{"its courier's, then a cancel", "c-1", ordercast.StatusCancelled, false},
		{"another courier's, then the pickup", "c-2", ordercast.StatusOutForDelivery, false},
	} {
		for _, scope := range []Scope{OrderEvents, PartyEvents} {
			w := &watcher{e: &Engine{cfg: testConfig}, f: sseFraming{}, scope: scope, party: party, partyKey: party.Key()}
			know := func(s ordercast.Status) {
				w.lastStatus, w.courier = s, "c-1"
				w.rememberOrder("o-1", partyOrder{status: s, courier: "c-1"})
			}
			know(ordercast.StatusReady)
			l := hub.NewLocation(ordercast.LocationUpdate{OrderID: "o-1", CourierID: c.courier, Lat: 1, Lng: 1, At: time.Now()})
			if scope == PartyEvents {
				w.locs = map[string]*hub.Location{"o-1": l}
			} else {
				w.loc = l
			}
			w.location(time.Now())
			if strings.Contains(string(w.out), "event: location") {
				t.Fatalf("%s, scope %v: the position was shown while the stream knows the order ready", c.name, scope)
			}
			know(c.next)
			w.location(time.Now())
			if got := strings.Contains(string(w.out), "event: location"); got != c.shown {
				t.Errorf("%s, scope %v: shown %v after the next event, want %v", c.name, scope, got, c.shown)
			}
			if w.loc != nil || len(w.locs) != 0 {
				t.Errorf("%s, scope %v: a position still waits after the next event", c.name, scope)
			}
		}
	}
}
