package location

import (
	"slices"
	"time"

	"github.com/ordercast/ordercast"
)

// DefaultPrivacyM is the radius, in metres, around another customer's drop-off within which a
// courier carrying several orders is shown to that customer's order alone (Tracker.PrivacyM):
// wider than the ETA's default "nearby" (200 m), so that the approach the other customer's page
// calls nearby is not drawn on this one either, and than a geocoded address's usual error.
const DefaultPrivacyM = 250

// zoneHold bounds how long a drop-off stays private after its order ends (a zone): the courier
// leaves it within minutes, and a zone whose courier posts nothing from outside it (a phone
// switched off at the door) must not hold back the next order's positions for good.
const zoneHold = 15 * time.Minute

// zone is a drop-off that stays private after its order ended: the courier is still at the door,
// or on its way back to the street, when the order is marked delivered. It lasts until the
// courier's first fine fix outside it, or zoneHold.
type zone struct {
	at       ordercast.Point
	since    time.Time // its order's end: it is private from the orders that showed the courier before
	customer string    // the ended order's customer, when known: its own other orders may see it
	until    time.Time
}

// live reports whether z still holds at now (zoneHold).
func (z zone) live(now time.Time) bool { return now.Before(z.until) }

// private reports whether position p of a courier must not reach order o, lest it show o's
// customer the door of another customer whose order the same courier carries (a courier with
// two orders drives to one door, then the other):
//
//   - p is within PrivacyM of the drop-off of another order the courier carries that shows it
//     now, or of one whose order just ended (zones);
//   - or that other order has no drop-off: where its door is, the server cannot tell, so while
//     the courier carries it the courier is shown to that order alone.
//
// Orders of the same customer are not private from each other, and neither is a drop-off within
// PrivacyM of o's own (a neighbour's door shows nothing o's customer does not see from home).
// PrivacyM zero shows every order every position, as before the rule. Called with t.mu held.
func (t *Tracker) private(p ordercast.Point, o ordercast.Order, carried []ordercast.Order, zones []zone, now time.Time) bool {
	if t.PrivacyM <= 0 {
		return false
	}
	for _, other := range carried {
		if other.ID == o.ID || !t.ShowsLocation(other.Status) || t.stopped(other, now) {
			continue
		}
		if other.Dropoff == nil {
			if !sameCustomer(o, other.CustomerID) {
				return true
			}
			continue
		}
		if t.guards(*other.Dropoff, other.CustomerID, p, o) {
			return true
		}
	}
	for _, z := range zones {
		// An order that began to show the courier after, or changed since (its pickup came
		// later), never saw it on its way to that door: no zone, and no door to keep from it.
		// One without its time of last change (made by hand, in a test) is not judged.
		if !o.UpdatedAt.IsZero() && o.UpdatedAt.Before(z.since) && t.guards(z.at, z.customer, p, o) {
			return true
		}
	}
	return false
}

// guards reports whether the drop-off at, another customer's, keeps position p from order o.
func (t *Tracker) guards(at ordercast.Point, customer string, p ordercast.Point, o ordercast.Order) bool {
	return !sameCustomer(o, customer) && ordercast.DistanceM(p, at) <= t.PrivacyM &&
		(o.Dropoff == nil || ordercast.DistanceM(*o.Dropoff, at) > t.PrivacyM)
}

// sameCustomer reports whether customer, an order's, is o's customer: both named, and alike.
func sameCustomer(o ordercast.Order, customer string) bool {
	return o.CustomerID != "" && o.CustomerID == customer
}

// zonesOf returns courier cid's private drop-offs that still hold for its fix p at now, and lets
// go of those it has left: a fine fix (CoarseM) outside one says the courier is gone from that
// door. Called with t.mu held.
func (t *Tracker) zonesOf(cid string, p ordercast.Position, now time.Time) []zone {
	if len(t.zones[cid]) == 0 {
		return nil
	}
	fine := p.AccuracyM == nil || *p.AccuracyM <= t.CoarseM
	return t.keepZones(cid, func(z zone) bool {
		return z.live(now) && !(fine && ordercast.DistanceM(p.Point, z.at) > t.PrivacyM)
	})
}

// keepZones keeps those of courier cid's zones that keep says to, and returns them. Called with
// t.mu held.
func (t *Tracker) keepZones(cid string, keep func(zone) bool) []zone {
	kept := slices.DeleteFunc(t.zones[cid], func(z zone) bool { return !keep(z) })
	if len(kept) == 0 {
		delete(t.zones, cid)
		return nil
	}
	t.zones[cid] = kept
	return kept
}

// noteZone keeps the drop-off of order ev.OrderID private for its courier when the event ends
// the order while the order showed the courier: its drop-off from a courier's copy of its orders,
// or, without one, the courier's newest position the order showed (or the courier's newest on
// this node), which is where the courier was when it was marked delivered: at the door. Called
// with t.mu held, before the event drops the copies.
func (t *Tracker) noteZone(ev ordercast.Event) {
	if t.PrivacyM <= 0 || !ev.Status.Terminal() {
		return
	}
	z := zone{since: ev.At, until: ev.At.Add(zoneHold)} // from the end, however late this node hears of it
	cid, showed, known := "", false, false
	// Of the copies that hold the order (two while it changes couriers), the newest's: its
	// courier is the one that carried it last.
	version := int64(-1)
	for _, id := range t.carriedBy[ev.OrderID] {
		if c := t.couriers[id]; c != nil {
			for _, o := range c.orders {
				if o.ID == ev.OrderID && o.CourierID == id && o.Version > version {
					version = o.Version
					cid, showed, z.customer = id, t.ShowsLocation(o.Status), o.CustomerID
					z.at, known = ordercast.Point{}, o.Dropoff != nil
					if known {
						z.at = *o.Dropoff
					}
				}
			}
		}
	}
	if st := t.orders[ev.OrderID]; st != nil && st.latest != nil {
		u := st.latest.Update
		cid, showed = u.CourierID, true
		if !known {
			z.at, known = ordercast.Point{Lat: u.Lat, Lng: u.Lng}, true
		}
	}
	if c := t.couriers[cid]; showed && !known && c != nil && c.last != nil {
		// No position reached it (it had no drop-off, and another order of the courier's was
		// private from it): the courier's newest fix on this node is as near the door.
		z.at, known = c.last.Point, true
	}
	if showed && known {
		t.addZone(cid, z)
	}
}

// addZone adds z to courier cid's private drop-offs. Called with t.mu held.
func (t *Tracker) addZone(cid string, z zone) {
	if t.zones == nil {
		t.zones = make(map[string][]zone)
	}
	t.zones[cid] = append(t.zones[cid], z)
}

// sweepZones forgets the zones past their hold. Called with t.mu held.
func (t *Tracker) sweepZones(now time.Time) {
	for cid := range t.zones {
		t.keepZones(cid, func(z zone) bool { return z.live(now) })
	}
}
