package ordercast

import (
	"math"
	"strings"
	"time"
)

// Location is the second kind of live data: where a courier is. Unlike a status event it is state,
// not history: it has no seq, is never stored in an order's events, and only the
// newest position of an order matters.

// Point is a place on the earth, in degrees (WGS 84).
type Point struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Validate checks that p is a finite latitude in [-90, 90] and longitude in [-180, 180], and not
// both 0: that point in the Gulf of Guinea is where a phone with no fix yet, or a form whose
// place was left unset, puts one ("null island"), and no delivery goes there. Shown, it drew
// the courier thousands of kilometres away, with an ETA of hours.
func (p Point) Validate(field string) error {
	switch {
	case !Finite(p.Lat) || p.Lat < -90 || p.Lat > 90:
		return Errorf(EInvalidLocation, "%slat must be a number from -90 to 90", field)
	case !Finite(p.Lng) || p.Lng < -180 || p.Lng > 180:
		return Errorf(EInvalidLocation, "%slng must be a number from -180 to 180", field)
	case p.Lat == 0 && p.Lng == 0:
		return Errorf(EInvalidLocation, "%slat and %slng are both 0, what a device with no fix (or a place left unset) sends: no place a delivery goes", field, field)
	}
	return nil
}

// Limits of a reported position.
const (
	// MaxAccuracyM is the worst accuracy radius accepted: a fix worse than 10 km places the
	// courier nowhere useful.
	MaxAccuracyM = 10_000
	// MaxSpeedMPS is the fastest a courier is believed to move (about 360 km/h); more is a bad fix.
	MaxSpeedMPS = 100
	// DefaultLocationMaxAge is how old a position may be when it is posted: a courier's phone that
	// was offline may flush a short backlog, but a stale fix would show the courier where it was.
	DefaultLocationMaxAge = 2 * time.Minute
	// LocationClockSkew tolerates a phone's clock running this much ahead of the server's.
	LocationClockSkew = 5 * time.Second
)

// TrailFix is one point of the way an order's courier came (its trail): where and when.
type TrailFix struct {
	Point
	At time.Time `json:"at"`
}

// Position is one reported fix of a courier. The optional fields are nil when not reported.
type Position struct {
	Point
	AccuracyM *float64
	Heading   *float64 // degrees clockwise from north, [0, 360)
	SpeedMPS  *float64
	At        time.Time
}

// Validate checks the fix's ranges and its time: not after now (give or take LocationClockSkew)
// and not older than maxAge.
func (p Position) Validate(now time.Time, maxAge time.Duration) error {
	if err := p.Point.Validate(""); err != nil {
		return err
	}
	if p.AccuracyM != nil && (!Finite(*p.AccuracyM) || *p.AccuracyM < 0 || *p.AccuracyM > MaxAccuracyM) {
		return Errorf(EInvalidLocation, "accuracy_m must be a number from 0 to %d", MaxAccuracyM)
	}
	if p.Heading != nil && (!Finite(*p.Heading) || *p.Heading < 0 || *p.Heading >= 360) {
		return Errorf(EInvalidLocation, "heading must be a number from 0 up to 360")
	}
	if p.SpeedMPS != nil && (!Finite(*p.SpeedMPS) || *p.SpeedMPS < 0 || *p.SpeedMPS > MaxSpeedMPS) {
		return Errorf(EInvalidLocation, "speed_mps must be a number from 0 to %d", MaxSpeedMPS)
	}
	switch {
	case p.At.IsZero():
		return Errorf(EInvalidLocation, "at is required")
	case p.At.After(now.Add(LocationClockSkew)):
		return Errorf(EInvalidLocation, "at is %s ahead of the server's clock (%s), which takes at most %s: set it by the answers' Date header, or leave at out for the time the position arrives",
			roughly(p.At.Sub(now)), now.UTC().Format(time.RFC3339), roughly(LocationClockSkew))
	case p.At.Before(now.Add(-maxAge)):
		return Errorf(EInvalidLocation, "at is %s old by the server's clock (%s), and a position may be at most %s old: send a newer fix",
			roughly(now.Sub(p.At)), now.UTC().Format(time.RFC3339), roughly(maxAge))
	}
	return nil
}

// roughly writes d to the second, without the zero units Duration.String writes ("2m", not
// "2m0s"), for a person reading a refusal.
func roughly(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Finite reports whether f is a number: NaN passes every range check written as "f < lo" (it
// compares false with everything), and an infinity means no bound at all. A float flag, or JSON
// decoded elsewhere, can carry either.
func Finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// earthRadiusM is the mean radius of the earth.
const earthRadiusM = 6_371_008.8

// DistanceM returns the great-circle distance between a and b in metres (haversine).
func DistanceM(a, b Point) float64 {
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLng := (b.Lng - a.Lng) * rad
	s := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(s)))
}

// LocationUpdate is what watchers of an order receive: the courier's newest position, with the
// distance to the drop-off and the estimated time of arrival when the order has a drop-off.
type LocationUpdate struct {
	// Type is always LocationType. On a WebSocket a status event and a position are both bare
	// JSON messages: a position says "type":"location", an event never has a type (it has a seq).
	Type    string `json:"type"`
	OrderID string `json:"order_id"`
	// CourierID is the courier whose position this is. A stream shows a position only while it
	// is the order's courier's (ShowsPosition), so a reassigned order never shows the old one.
	CourierID string    `json:"courier_id,omitempty"`
	Lat       float64   `json:"lat"`
	Lng       float64   `json:"lng"`
	AccuracyM *float64  `json:"accuracy_m,omitempty"`
	Heading   *float64  `json:"heading,omitempty"`
	SpeedMPS  *float64  `json:"speed_mps,omitempty"`
	At        time.Time `json:"at"`
	DistanceM *float64  `json:"distance_m,omitempty"`
	ETAS      *int64    `json:"eta_s,omitempty"`
	Nearby    bool      `json:"nearby,omitempty"`
	// Parties are the keys (Party.Key) of the party streams that show the order: the update
	// reaches them too. It travels between nodes beside the update, never to a watcher.
	Parties []string `json:"-"`
	// OrderVersion is the order's version (Order.Version) as the position was judged against
	// it, when the courier was the order's: of two couriers' positions it tells which courier
	// came later (Replaces). Zero is unknown (a node of an older version sent it). It travels
	// between nodes and to the cluster's table beside the update, never to a watcher.
	OrderVersion int64 `json:"-"`
}

// Replaces reports whether u is to replace old as an order's newest position. Of one courier's,
// the later fix wins. Of two couriers', the one the order was given to later wins, whatever the
// phones' clocks say: compared by time, a new courier whose clock runs behind the old one's would
// stay hidden behind the old courier's last fix (which no stream shows), and an old courier's
// fix posted late, or still on its way when the order moved, would hide the new courier's. The
// order's versions tell which came later: the old courier's positions were judged against the
// order before the event that moved it, the new one's after. When either version is unknown,
// the other courier's position wins, as before versions travelled with positions.
func (u LocationUpdate) Replaces(old LocationUpdate) bool {
	if u.CourierID == old.CourierID {
		return u.At.After(old.At)
	}
	return u.OrderVersion == 0 || old.OrderVersion == 0 || u.OrderVersion > old.OrderVersion
}

// LocationType is the type of every LocationUpdate on the wire.
const LocationType = "location"

// ShowsPosition is the one rule that decides whether a watcher who knows an order in status s,
// carried by courier courierID, is shown position u, when positions are shown from stage from on:
// the order shows its courier now (ShowsLocation), and u came from that courier. A position kept
// from before the order was reassigned (in a node's memory, in the cluster's table, or on its way
// from another node) belongs to someone who no longer carries the order: it is never shown, not
// even for the moment until the new courier posts.
func ShowsPosition(u LocationUpdate, s Status, courierID string, from Status) bool {
	return ShowsLocation(s, from) && courierID != "" && u.CourierID == courierID
}

// ETAModel estimates arrival from a straight-line distance and a smoothed recent speed. It is a
// crude model on purpose: it knows no roads, traffic or stops, so it stretches the straight line
// by RouteFactor and keeps the answer between a floor and a ceiling rather than promise precision.
type ETAModel struct {
	// RouteFactor stretches the straight line to an expected road distance.
	RouteFactor float64
	// MinSpeedMPS and MaxSpeedMPS bound the speed the estimate divides by: a courier waiting at a
	// light is not expected to take forever, nor a bad fix to teleport.
	MinSpeedMPS, MaxSpeedMPS float64
	// TypicalSpeedMPS is the speed assumed until the courier is seen moving (its running speed is
	// still 0): the first estimate of a run at MinSpeedMPS was several times the steady one,
	// which the second fix then cut. Zero falls back to MinSpeedMPS.
	TypicalSpeedMPS float64
	// FloorS and CeilingS bound the answer.
	FloorS, CeilingS int64
	// NearbyM is the radius around the drop-off within which the courier is nearby.
	NearbyM float64
	// SpeedWindow is the time over which the running speed averages its samples (see Speed):
	// each sample weighs by the time it covers, not by its count. Counted by samples (30 % the
	// newest), three fixes at a red light cut the speed to a third and lengthened the ETA 2.5
	// times; over two minutes, a stop of three seconds moves it 2 %, of thirty a quarter.
	SpeedWindow time.Duration
}

// DefaultETAModel suits a city courier on a bicycle or scooter.
var DefaultETAModel = ETAModel{
	RouteFactor: 1.3,
	MinSpeedMPS: 2,
	MaxSpeedMPS: 15,
	// 18 km/h: a city courier's average on a bicycle, e-bike or scooter, stops at lights
	// included, is about 15 to 22 km/h.
	TypicalSpeedMPS: 5,
	FloorS:          30,
	CeilingS:        2 * 60 * 60,
	NearbyM:         200,
	SpeedWindow:     2 * time.Minute,
}

// Speed folds a new sample, which covers the time since the one before, into a running speed
// estimate (0 means none yet) begun since ago (the time from its first sample to this one). Over
// its first SpeedWindow the estimate is the mean of its samples, each weighed by the time it
// covers; after it, an exponential average over SpeedWindow. A sample above MaxSpeedMPS counts as
// MaxSpeedMPS: one bad fix (a jump of kilometres in a second) must not hold the estimate far off
// for the long time an average takes to forget it.
//
// Until the courier is seen moving (prev 0), a sample under MinSpeedMPS is standing still and
// keeps the estimate at 0, the typical speed: a parked phone reports 0.2 or 0.5 m/s as often
// as 0, and taken as the first speed it put the first estimates at the floor speed, 2.5 times
// the typical one's. The first sample at or above it begins the estimate. (A mean from the
// start, not an exponential average alone: that took the first sample, a courier walking the
// bike out at 2 m/s, for most of the first two minutes of a ride at 6 m/s.)
func (m ETAModel) Speed(prev, sample float64, covers, since time.Duration) float64 {
	if !Finite(sample) || sample < 0 {
		return prev
	}
	sample = math.Min(sample, m.MaxSpeedMPS)
	if prev <= 0 {
		if sample < m.MinSpeedMPS {
			return 0
		}
		return sample
	}
	if covers <= 0 {
		return prev
	}
	var w float64
	if since < m.SpeedWindow {
		w = covers.Seconds() / (max(since, 0) + covers).Seconds()
	} else {
		w = 1 - math.Exp(-covers.Seconds()/m.SpeedWindow.Seconds())
	}
	return prev + w*(sample-prev)
}

// Estimate returns the seconds to cover distanceM at speed (a running estimate from Speed; 0,
// not seen moving yet, is TypicalSpeedMPS), clamped, within the floor and ceiling, and whether
// the courier is nearby.
func (m ETAModel) Estimate(distanceM, speed float64) (etaS int64, nearby bool) {
	if speed <= 0 {
		speed = m.TypicalSpeedMPS
	}
	speed = math.Min(math.Max(speed, m.MinSpeedMPS), m.MaxSpeedMPS)
	eta := int64(math.Round(distanceM * m.RouteFactor / speed))
	return min(max(eta, m.FloorS), m.CeilingS), distanceM <= m.NearbyM
}

// Remaining returns how far the food still has to go from a courier at p, for its ETA: straight
// to the drop-off once the order is out for delivery (carrying); before that (positions shown
// from an earlier stage, --location-from) through the pickup, which the courier has yet to
// reach. ok is false when the order names no drop-off, or, before the pickup, no pickup: no
// estimate is better than one that forgets the way to the restaurant.
func Remaining(o Order, p Point) (distanceM float64, carrying, ok bool) {
	switch {
	case o.Dropoff == nil:
		return 0, false, false
	case o.Status == StatusOutForDelivery:
		return DistanceM(p, *o.Dropoff), true, true
	case o.Pickup == nil:
		return 0, false, false
	}
	return DistanceM(p, *o.Pickup) + DistanceM(*o.Pickup, *o.Dropoff), false, true
}

// ShowsLocation reports whether an order in status s shows its courier's position to watchers,
// when positions are shown from stage from on (out_for_delivery by default; an earlier stage
// shows the courier on the way to the pickup): from that stage until the order ends, never after.
// No stage before confirmed shows it, whatever from says: a placed order is a request the
// restaurant has not taken, and nobody is owed a courier's whereabouts for it. So
// ShowsLocation(from, from) is false for a from that cannot be configured (LocationFromValid).
func ShowsLocation(s, from Status) bool {
	from = LocationFrom(from)
	return !s.Terminal() && rank[s] >= rank[from] && rank[from] >= rank[StatusConfirmed]
}

// LocationFrom is the first stage at which positions are shown, as set (--location-from): from,
// or out_for_delivery when it is empty, the default.
func LocationFrom(from Status) Status {
	if from == "" {
		return StatusOutForDelivery
	}
	return from
}

// LocationFromValid reports whether positions may be shown from stage from on ("": the default,
// out_for_delivery): a stage from confirmed to out_for_delivery, the one rule of --location-from.
func LocationFromValid(from Status) bool { return from == "" || ShowsLocation(from, from) }

// LocationFeed is a node's receiving end of the positions other nodes took in: the cluster bus
// hands it every batch it hears. The location tracker implements it.
type LocationFeed interface {
	ReceiveLocations(us []LocationUpdate)
	// MissedLocations says the bus was away: positions other nodes took in meanwhile were not
	// handed over, so the newest position the feed holds of an order may not be the cluster's.
	MissedLocations()
}
