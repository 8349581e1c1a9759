package location

import (
	"math"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
)

// A trail is the path an order's courier has taken while the order showed it, so that a
// tracking page opened (or reopened, or back from a dropped connection) mid-delivery draws
// the way from the restaurant, not only what arrives after it. It is state like the newest
// position, not history: it lives in each node's memory beside that position, is the current
// courier's only (a new courier starts a new one), and goes when the position does (the order
// ends, or its courier stops posting for Fresh).
//
// It is a sketch of the path, bounded in memory whatever the length of the ride: a fix joins
// it once it is spacing metres from the last one kept (so a courier waiting at a light adds
// nothing), and when it holds maxTrail fixes every other one is dropped and spacing doubles,
// so the points stay evenly spread along the whole ride at half the detail.
type trail struct {
	pts     []trailPoint
	spacing float64
}

// trailPoint is a fix of a trail. Its coordinates are kept in millionths of a degree (a tenth of
// a metre, finer than a phone's fix), which an int32 holds to ±2,147°, in half the memory of two
// float64s: a node keeps a trail for every order out for delivery. A coordinate sent with six
// decimals or fewer comes back exactly as sent.
type trailPoint struct {
	lat, lng int32
	at       int64 // Unix microseconds, a position's precision (atPrecision)
}

// maxTrail bounds a trail's fixes; trailSpacing is the least distance between two at first.
// 128 fixes 25 m apart draw a 3 km ride at full detail; a longer one is thinned.
const (
	maxTrail     = 128
	trailSpacing = 25.0
)

// add extends the trail with u, the order's new newest position.
func (t *trail) add(u ordercast.LocationUpdate) {
	p := ordercast.Point{Lat: u.Lat, Lng: u.Lng}
	if n := len(t.pts); n > 0 {
		last := t.pts[n-1].point()
		if ordercast.DistanceM(last, p) < max(t.spacing, trailSpacing) {
			return
		}
	}
	if len(t.pts) == maxTrail {
		for i := range maxTrail / 2 {
			t.pts[i] = t.pts[2*i]
		}
		t.pts = t.pts[:maxTrail/2]
		t.spacing = 2 * max(t.spacing, trailSpacing)
	}
	if t.pts == nil {
		t.pts = make([]trailPoint, 0, 8)
	}
	t.pts = append(t.pts, trailPoint{lat: toMicro(u.Lat), lng: toMicro(u.Lng), at: u.At.UnixMicro()})
}

func (p trailPoint) point() ordercast.Point {
	return ordercast.Point{Lat: fromMicro(p.lat), Lng: fromMicro(p.lng)}
}

// toMicro and fromMicro turn a coordinate (degrees, validated within ±180) into millionths of a
// degree and back.
func toMicro(deg float64) int32     { return int32(math.Round(deg * 1e6)) }
func fromMicro(micro int32) float64 { return float64(micro) / 1e6 }

// Shows reports whether a reader of order o may be shown position l (nil: none) now, as it opens:
// l is fresh, and o shows l's courier (ordercast.ShowsPosition: its stage, its courier now).
func (t *Tracker) Shows(l *hub.Location, o ordercast.Order) bool {
	return l.Fresh(t.now(), t.Fresh) && t.ShowsPosition(l.Update, o.Status, o.CourierID)
}

// ShowsLocation reports whether an order in status s shows its courier's position: from From
// until its end (ordercast.ShowsLocation).
func (t *Tracker) ShowsLocation(s ordercast.Status) bool { return ordercast.ShowsLocation(s, t.From) }

// ShowsPosition reports whether an order in status s, carried by courierID, is shown u: it
// shows its courier, and u is that courier's (ordercast.ShowsPosition).
func (t *Tracker) ShowsPosition(u ordercast.LocationUpdate, s ordercast.Status, courierID string) bool {
	return ordercast.ShowsPosition(u, s, courierID, t.From)
}

// Trail returns the order's newest position on this node (nil when it holds none) and the path its
// courier took while the order showed it, oldest first, ending at that position. Whoever shows it
// judges the position as any other (Shows): the trail is that position's courier's. A node keeps
// the trail of the positions it took in or heard of from the cluster since it started: one that
// started mid-ride has the part since.
func (t *Tracker) Trail(orderID string) (latest *hub.Location, fixes []ordercast.TrailFix) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.orders[orderID]
	if st == nil || st.latest == nil {
		return nil, nil
	}
	u := st.latest.Update
	pts := st.trail.pts
	if n := len(pts); n > 0 && pts[n-1].at == u.At.UnixMicro() {
		pts = pts[:n-1] // the newest position itself: it ends the trail below, as sent
	}
	fixes = make([]ordercast.TrailFix, 0, len(pts)+1)
	for _, p := range pts {
		fixes = append(fixes, ordercast.TrailFix{Point: p.point(), At: time.UnixMicro(p.at).UTC()})
	}
	// The newest position ends it, as sent, however close to the last fix kept.
	return st.latest, append(fixes, ordercast.TrailFix{Point: ordercast.Point{Lat: u.Lat, Lng: u.Lng}, At: u.At})
}
