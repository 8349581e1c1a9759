package location

import (
	"context"
	"maps"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// Latest returns an order's newest position still fresh (Fresh), or nil: this node's, or, in a
// cluster, the newest any node sent. The stream engine asks it when a stream opens. It may be a
// courier's the order no longer has: whoever shows it checks it against the order
// (ShowsPosition).
//
// It never fails: a position is extra to the status a stream or a long poll opens with, and
// must never refuse or hold that up. A read of the bus that fails or takes
// longer than busReadTimeout is logged (at most once per busWarnEvery, with how many failed), and
// this node's own position stands in, if it has one.
func (t *Tracker) Latest(ctx context.Context, orderID string) *hub.Location {
	return t.LatestMany(ctx, []string{orderID})[orderID]
}

// busReadTimeout bounds the read of the cluster's positions a stream opening waits for: well
// under a second, the least time between two positions the streams show by default.
const busReadTimeout = 250 * time.Millisecond

// busWarnEvery is the least time between two warnings of failed reads of the bus.
const busWarnEvery = 10 * time.Second

// LatestMany is Latest for many orders at once, keyed by order id (orders without a position are
// left out): this node's, and the rest in one read of the bus.
func (t *Tracker) LatestMany(ctx context.Context, orderIDs []string) map[string]*hub.Location {
	ls := make(map[string]*hub.Location)
	var missing []string
	// own are this node's positions of the missing orders that may be older than the cluster's
	// (missed): what stands in when the bus cannot be read.
	var own map[string]*hub.Location
	t.mu.Lock()
	for _, id := range orderIDs {
		st := t.orders[id]
		switch {
		case st == nil || st.latest == nil:
			missing = append(missing, id)
		case !st.missed || t.Bus == nil:
			ls[id] = st.latest
		default:
			missing = append(missing, id)
			if own == nil {
				own = make(map[string]*hub.Location)
			}
			own[id] = st.latest
		}
	}
	t.mu.Unlock()
	if len(missing) == 0 || t.Bus == nil {
		return t.fresh(ls)
	}
	ctx, cancel := context.WithTimeout(ctx, busReadTimeout)
	defer cancel()
	us, err := t.Bus.Latest(ctx, missing)
	if err != nil {
		// A node that many streams open on at once (a reconnect storm after a restart) would
		// otherwise write a line per stream about one slow or absent database.
		if c, warn := t.busReads.Failed(len(missing)); warn {
			t.Logger.Warn("read the cluster's latest positions; streams open with this node's",
				"reads_failed", c.Failures, "orders", c.Items, "err", err)
		}
		maps.Copy(ls, own)
		return t.fresh(ls)
	}
	if c, was := t.busReads.Worked(); was {
		t.Logger.Info("reading the cluster's latest positions works again", "reads_failed_since_warning", c.Failures)
	}
	// The cluster's is for positions this node may have missed, not to hide a newer one it holds:
	// a batch of this node's that failed when the database blinked, as its listener's connection
	// did, left the table older than it. Latest wins, here as everywhere.
	for _, u := range us {
		if o := own[u.OrderID]; o == nil || u.Replaces(o.Update) {
			ls[u.OrderID] = hub.NewLocation(u)
		}
	}
	for id, o := range own {
		if ls[id] == nil {
			ls[id] = o
		}
	}
	return t.fresh(ls)
}

// ReceiveLocations takes positions the cluster's other nodes accepted (the bus hands them over):
// each becomes the order's newest if it replaces the one this node has
// (ordercast.LocationUpdate.Replaces), and goes to this node's watchers. A position it already
// holds, handed over again, changes nothing. With PrivacyM, the node follows the orders' events
// from the first one on (follow), as it does from its first post.
func (t *Tracker) ReceiveLocations(us []ordercast.LocationUpdate) {
	for _, u := range us {
		var l *hub.Location
		t.mu.Lock()
		if t.PrivacyM > 0 {
			// The order's end, which makes where its courier was then private (noteZone), must
			// reach this node, though no courier posted to it yet: its next post may land here.
			t.follow()
		}
		st := t.orders[u.OrderID]
		if st == nil {
			st = &orderState{}
			t.orders[u.OrderID] = st
		}
		newer := st.latest == nil || u.Replaces(st.latest.Update)
		if newer {
			if st.latest != nil && st.latest.Update.CourierID != u.CourierID {
				*st = orderState{} // another courier: the old one's speed says nothing of it
			}
			l = hub.NewLocation(u)
			st.latest, st.missed = l, false
			if !t.coarse(u) { // as the node that took it judged it (update)
				st.last, st.lastAt = ordercast.Point{Lat: l.Update.Lat, Lng: l.Update.Lng}, l.Update.At
				st.trail.add(u)
			}
		}
		t.mu.Unlock()
		if newer {
			t.hub.PublishLocation(l)
		}
	}
}

// MissedLocations marks every position this node holds as possibly not the cluster's newest:
// until a newer one arrives, a stream that opens reads the order's position from the bus.
func (t *Tracker) MissedLocations() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.orders {
		st.missed = true
	}
}

// fresh drops from ls the positions too old to show (Fresh), and returns it.
func (t *Tracker) fresh(ls map[string]*hub.Location) map[string]*hub.Location {
	now := t.now()
	maps.DeleteFunc(ls, func(_ string, l *hub.Location) bool { return !l.Fresh(now, t.Fresh) })
	return ls
}
