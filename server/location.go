package server

import (
	"net/http"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// DefaultLocationInterval caps how often one stream is sent its order's position: a map on a
// phone moves smoothly enough at one step a second, and a courier posting faster costs the
// watchers nothing more.
const DefaultLocationInterval = time.Second

// handlePostLocation serves POST /v1/couriers/{cid}/location: courier cid's position, handed to
// the watchers of every order it carries that is out for delivery. It needs the courier's own
// token (sub = cid), or an admin or system token when auth is on. Positions are not stored with
// the order's history: the answer says how many orders the position reached.
func (s *Server) handlePostLocation(w http.ResponseWriter, r *http.Request) {
	var req api.PostLocationRequest
	actor, ok := s.changeRequest(w, r, &req)
	if !ok {
		return
	}
	cid := r.PathValue("cid")
	if cid == "" || len(cid) > ordercast.MaxActorLength {
		s.writeError(w, r, ordercast.Errorf(ordercast.EInvalid, "courier id must be 1 to %d bytes", ordercast.MaxActorLength))
		return
	}
	if err := s.permitLocation(actor, cid); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Lat == nil || req.Lng == nil {
		s.writeError(w, r, ordercast.Errorf(ordercast.EInvalidLocation, "lat and lng are required"))
		return
	}
	p := ordercast.Position{
		Point:     ordercast.Point{Lat: *req.Lat, Lng: *req.Lng},
		AccuracyM: req.AccuracyM, Heading: req.Heading, SpeedMPS: req.SpeedMPS,
	}
	if req.At != nil {
		p.At = *req.At
	}
	n, err := s.Locations.Post(r.Context(), cid, p)
	if err != nil {
		if ordercast.ErrorCode(err) == ordercast.ERateLimited {
			w.Header().Set("Retry-After", "1")
		}
		s.writeError(w, r, err)
		return
	}
	s.Metrics.locationsAccepted.Inc()
	writeJSON(w, http.StatusOK, api.PostLocationResponse{Orders: n})
}

// permitLocation decides whether actor may report courier cid's position: the courier itself,
// or a privileged role (dispatch integrations, tests). Everyone else is refused, whatever the
// position would reach.
func (s *Server) permitLocation(a auth.Actor, cid string) error {
	switch {
	case s.Auth == nil, a.Role.MayWatchAny():
		return nil
	case a.Role == auth.RoleCourier && a.Sub == cid:
		return nil
	}
	return ordercast.Errorf(ordercast.EForbidden, "only courier %s may report its position", cid)
}

// longPollAnswer is the long poll's answer: the order, with its courier's newest fresh position
// while the order shows one (and only its current courier's).
func (s *Server) longPollAnswer(r *http.Request, o ordercast.Order) (api.LongPollResponse, error) {
	res := api.LongPollResponse{Order: o}
	if !ordercast.ShowsLocation(o.Status, s.Locations.From) {
		return res, nil
	}
	l, err := s.Locations.Latest(r.Context(), o.ID)
	if err != nil {
		return res, err
	}
	if l.Fresh(time.Now(), s.Locations.Fresh) && ordercast.ShowsPosition(l.Update, o.Status, o.CourierID, s.Locations.From) {
		res.Location = &l.Update
	}
	return res, nil
}
