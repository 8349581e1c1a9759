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
		w := &watcher{e: &Engine{}, f: sseFraming{}, scope: scope, party: party, partyKey: party.Key()}
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
