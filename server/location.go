package server

import (
	"cmp"
	"net/http"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/location"
)

// DefaultLocationInterval caps how often one stream is sent its order's position: a map on a
// phone moves smoothly enough at one step a second, and a courier posting faster costs the
// watchers nothing more.
const DefaultLocationInterval = time.Second

// handlePostLocation serves POST /v1/couriers/{cid}/location: courier cid's position, handed to
// the watchers of every order it carries that shows its courier (location.Tracker). It needs the
// courier's own token (sub = cid), or an admin or system token when auth is on. Positions are not
// stored with the order's history: the answer says how many orders the position reached.
func (s *Server) handlePostLocation(w http.ResponseWriter, r *http.Request) {
	// The path and the token are judged before the body is read: a token that may not post for
	// this courier is 403, whatever it sent, and costs no more than its header.
	cid := r.PathValue("cid")
	if err := ordercast.ValidatePartyID(cid); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req api.PostLocationRequest
	actor, ok := s.changeRequestCharged(w, r, &req, s.MaxBodyBytes, func(a auth.Actor) error { return a.PermitPosition(cid) }, s.chargesAddress)
	if !ok {
		return
	}
	err := idempotencyKeyRefused(r, positionsRepeat)
	var res location.PostResult
	if err == nil {
		var p ordercast.Position
		if p, err = positionOf(req); err == nil {
			res = s.Locations.PostMany(r.Context(), []location.CourierPosition{{CourierID: cid, Position: p}})[0]
			err = res.Err
		}
	}
	// A post refused as it is (an Idempotency-Key, a position's numbers or time) its courier's
	// budget never saw: its address pays for it.
	if err != nil && !res.Budgeted && !s.chargesAddress(actor) {
		err = s.chargeRefused(w, r, err)
	}
	if err != nil {
		if wait, ok := retryWait(err); ok {
			w.Header().Set("Retry-After", retryAfter(wait))
		}
		s.writeError(w, r, err)
		return
	}
	s.Metrics.locationsAccepted.Inc()
	s.writeJSON(w, r, http.StatusOK, api.PostLocationResponse{Orders: res.Orders, Missed: string(res.Missed)})
}

// chargesAddress says whether a position posted with actor a's token is charged to its address's
// write budget. A courier's own is not: its courier's budget (--location-rate) bounds it, and
// couriers behind one carrier's NAT, each posting every second or two, spent the address's 20
// writes a second with forty of them, refused 429 for their address however few they each sent.
// Any other token's is; so is every position on a server without tokens, where any client may
// post for any courier and so has as many couriers' budgets as it names, and on one whose
// couriers have no budget (--location-rate 0). A courier's own that is refused before its budget
// is, too (chargeRefused).
func (s *Server) chargesAddress(a auth.Actor) bool {
	return s.Auth == nil || a.Role != auth.RoleCourier || s.Locations.Rate <= 0
}

// handlePostLocations serves POST /v1/locations: many couriers' positions in one request, from
// an integration (the platform's backend that its couriers' apps talk to). Each position is
// judged alone, as POST /v1/couriers/{cid}/location judges it, and the answer (200) has one
// result per position, in order. What is wrong with the request as a whole (not JSON, no
// positions, more than api.MaxLocationsPerRequest, a token that may not post for any courier)
// refuses all of it, with nothing taken in. It exists for throughput: most of a single post's
// cost is the HTTP request around it (docs/location.md).
func (s *Server) handlePostLocations(w http.ResponseWriter, r *http.Request) {
	// api.PostLocationsRequest, but for its positions' pointers (nullItem).
	var req struct {
		Positions []*api.CourierPosition `json:"positions"`
	}
	permit := permitMany("report many couriers' positions")
	if _, ok := s.changeRequestUpTo(w, r, &req, max(s.MaxBodyBytes, api.MaxLocationsBodyBytes), permit); !ok || s.refuseIdempotencyKey(w, r, positionsRepeat) {
		return
	}
	if err := cmp.Or(itemCount(len(req.Positions), api.MaxLocationsPerRequest, "positions", ordercast.ETooManyPositions),
		nullItem(req.Positions, "position")); err != nil {
		s.writeError(w, r, err)
		return
	}
	res := api.PostLocationsResponse{Results: make([]api.LocationResult, len(req.Positions))}
	// The positions that pass the request's checks go to the tracker together; at[j] is where
	// the tracker's j-th result belongs.
	ps := make([]location.CourierPosition, 0, len(req.Positions))
	at := make([]int, 0, len(req.Positions))
	for i, q := range req.Positions {
		err := ordercast.ValidatePartyIDOf(ordercast.PartyCourier.Field(), q.CourierID)
		var p ordercast.Position
		if err == nil {
			p, err = positionOf(q.PostLocationRequest)
		}
		if err != nil {
			res.Results[i].Error = s.resultError(r, err)
			continue
		}
		ps = append(ps, location.CourierPosition{CourierID: q.CourierID, Position: p})
		at = append(at, i)
	}
	results := s.Locations.PostMany(r.Context(), ps)
	if err := allUnavailable(results, func(pr location.PostResult) error { return pr.Err }); err != nil {
		s.writeError(w, r, err)
		return
	}
	for j, pr := range results {
		if pr.Err != nil {
			res.Results[at[j]].Error = s.resultError(r, pr.Err)
			continue
		}
		res.Results[at[j]].Orders, res.Results[at[j]].Missed = &pr.Orders, string(pr.Missed)
		res.Accepted++
	}
	res.Refused = len(req.Positions) - res.Accepted
	s.Metrics.locationsAccepted.Add(float64(res.Accepted))
	s.writeJSON(w, r, http.StatusOK, res)
}

// positionOf reads one position from the wire: lat and lng are required (pointOf); the ranges are
// the tracker's to judge (ordercast.Position.Validate).
func positionOf(req api.PostLocationRequest) (ordercast.Position, error) {
	pt, err := pointOf("", req.Lat, req.Lng)
	if err != nil {
		return ordercast.Position{}, err
	}
	p := ordercast.Position{Point: pt, AccuracyM: req.AccuracyM, Heading: req.Heading, SpeedMPS: req.SpeedMPS}
	if req.At != nil {
		if req.At.IsZero() {
			// A phone whose clock was never set; an absent at is the one that means now.
			return ordercast.Position{}, ordercast.Errorf(ordercast.EInvalidLocation, "at is the zero time; leave it out to mean now")
		}
		p.At = *req.At
	}
	return p, nil
}

// positionsRepeat is why a position needs no Idempotency-Key (refuseIdempotencyKey).
const positionsRepeat = "a position is safe to repeat: it is state, not an event, and of a courier's positions the one taken last is shown"

// pointOf reads a point from the wire, a position's or an order's place (field prefixes the names
// in the refusal: "pickup."): both coordinates are required, since an absent one is not 0.
func pointOf(field string, lat, lng *float64) (ordercast.Point, error) {
	if lat == nil || lng == nil {
		return ordercast.Point{}, ordercast.Errorf(ordercast.EInvalidLocation, "%slat and %slng are required", field, field)
	}
	return ordercast.Point{Lat: *lat, Lng: *lng}, nil
}

// handleTrail serves GET /v1/orders/{id}/trail: the way the order's courier came while the order
// showed it (location.Tracker.Trail), to whoever may watch the order, so that a tracking page
// opened mid-ride, or back from a dropped connection, draws the path from the start rather than
// from when it began to listen. The rule of every position holds: only the order's current
// courier's, only while the order shows its courier, only while its newest position is fresh;
// otherwise the trail is empty.
func (s *Server) handleTrail(w http.ResponseWriter, r *http.Request) {
	id, courier, ok := s.orderRead(w, r)
	if !ok {
		return
	}
	o, err := s.readAs(r, id, courier)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := api.TrailResponse{OrderID: o.ID, Trail: []ordercast.TrailFix{}}
	if l, fixes := s.Locations.Trail(o.ID); s.Locations.Shows(l, o) {
		res.CourierID, res.Trail = l.Update.CourierID, fixes
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

// longPollAnswer is the long poll's answer: the order, with its courier's newest fresh position
// while the order shows one (and only its current courier's).
func (s *Server) longPollAnswer(r *http.Request, o ordercast.Order) api.LongPollResponse {
	res := api.LongPollResponse{Order: o}
	if !s.Locations.ShowsLocation(o.Status) {
		return res
	}
	l := s.Locations.Latest(r.Context(), o.ID)
	if s.Locations.Shows(l, o) {
		res.Location = &l.Update
	}
	return res
}
