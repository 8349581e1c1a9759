package server

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// handleCreateOrder serves POST /v1/orders: 201 with the new order, 200 for an idempotent repeat.
// It needs an admin or system actor token when auth is on.
func (s *Server) handleCreateOrder(w http.ResponseWriter, r *http.Request) {
	var body createBody
	actor, ok := s.changeRequestUpTo(w, r, &body, s.MaxBodyBytes, auth.Actor.PermitCreate)
	if !ok {
		return
	}
	n, same, err := body.newOrder(actor)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	idem, done := s.idempotent(w, r, actor, same, s.withTrackingToken)
	if done {
		return
	}
	// The answer recorded under the key holds no tracking token: it is kept in the database for
	// a day, where a token would be a credential to the order (and, out for delivery, to where
	// its courier is) for whoever reads the database or a backup of it. A replay signs one anew
	// (withTrackingToken), as the first answer did.
	if idem != nil {
		idem.Render = func(res ordercast.Result) (ordercast.Answer, error) { return createAnswer(res, "", nil) }
		n.Idem = idem
	}
	o, created, err := s.Store.CreateOrder(r.Context(), n)
	if ordercast.ErrorCode(err) == ordercast.EIdempotencyKeyInUse && s.replayIdempotent(w, r, idem, s.withTrackingToken) {
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if created {
		s.Metrics.eventsCommitted.Inc() // the order's first event
		w.Header().Set("Location", api.OrderPath(o.ID))
	}
	// Signed after the write, for the order as created (an order of the id created before, for
	// a repeat): the token reads that order only. It cannot fail for the order's id, valid
	// since the store took it.
	tok, exp, err := s.trackingToken(o)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("sign tracking token: %w", err))
		return
	}
	a, err := createAnswer(ordercast.Result{Order: o, Created: created}, tok, exp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeRawJSON(w, a.Status, a.Body)
}

// createAnswer is the answer to a create that res says what it did, with tracking token tok,
// which expires at exp ("" and nil for the answer recorded under an idempotency key, see
// handleCreateOrder).
func createAnswer(res ordercast.Result, tok string, exp *time.Time) (ordercast.Answer, error) {
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return encodeAnswer(status, api.CreateOrderResponse{Order: res.Order, TrackingToken: tok, TrackingTokenExpiresAt: exp})
}

// withTrackingToken completes a recorded create's answer with a tracking token for its order,
// signed now (none on an open server, which signs none). A record written before
// tokens were left out of records has one: it is replaced.
func (s *Server) withTrackingToken(a ordercast.Answer) (ordercast.Answer, error) {
	var res api.CreateOrderResponse
	if err := json.Unmarshal(a.Body, &res); err != nil {
		return a, fmt.Errorf("read a create's answer: %w", err)
	}
	tok, exp, err := s.trackingToken(res.Order)
	if err != nil {
		return a, fmt.Errorf("sign tracking token: %w", err)
	}
	res.TrackingToken, res.TrackingTokenExpiresAt = tok, exp
	return encodeAnswer(a.Status, res)
}

// createBody is the body of POST /v1/orders as decoded: api.CreateOrderRequest, with its id and
// parties read as optional fields, since encoding/json fills the shallower of two fields of one
// name. The wire type keeps plain strings (its clients leave an owner out by leaving it empty),
// but an owner sent empty or null is most often a checkout's unset variable (serializers send
// one or the other): taken for no owner, it would make an order that no restaurant's board and
// no customer's page shows. So is an id sent empty or null, which taken for none would make a
// new order of each retry.
type createBody struct {
	api.CreateOrderRequest
	ID           optional `json:"id"`
	RestaurantID optional `json:"restaurant_id"`
	CustomerID   optional `json:"customer_id"`
}

// request is the create request the body holds, or 422 for a field sent empty.
func (b createBody) request() (api.CreateOrderRequest, error) {
	req := b.CreateOrderRequest
	var ierr, rerr, cerr error
	req.ID, ierr = b.ID.value(ordercast.EInvalidID, "id", "for the server to make one")
	req.RestaurantID, rerr = b.RestaurantID.value(ordercast.EInvalid, "restaurant_id", "for an order without one")
	req.CustomerID, cerr = b.CustomerID.value(ordercast.EInvalid, "customer_id", "for an order without one")
	return req, cmp.Or(ierr, rerr, cerr)
}

// courierBody is the body of PUT /v1/orders/{id}/courier as decoded: api.SetCourierRequest's
// fields, with the courier's name read as an optional field (see createBody), so that a name
// sent empty or null, a form's unfilled field, is refused as a blank one is rather than taken
// for no name. It does
// not embed the wire type, as createBody does: encoding/json would then name a courier_id of the
// wrong type, which a method of its own decodes, "SetCourierRequest.courier_id".
type courierBody struct {
	CourierID       api.Assignment `json:"courier_id,omitzero"`
	CourierName     optional       `json:"courier_name,omitempty"`
	Note            string         `json:"note,omitempty"`
	ExpectedVersion *int64         `json:"expected_version,omitempty"`
}

// request is the courier change the body holds, or 422 invalid_argument for a name sent empty
// or null.
func (b courierBody) request() (api.SetCourierRequest, error) {
	name, err := b.CourierName.value(ordercast.EInvalid, "courier_name", "for a courier without a name")
	return api.SetCourierRequest{CourierID: b.CourierID, CourierName: name, Note: b.Note, ExpectedVersion: b.ExpectedVersion}, err
}

// newOrder is the order the body asks actor to create, normalized, and the request as an
// idempotency key fingerprints it: a retry is the same request when it means the same order, so
// its details are taken by value, as a repeated creation is judged (ordercast.SameDetails), and
// null and no details, or 1 and 1.0, are not taken for another request's reuse of the key.
func (b createBody) newOrder(actor auth.Actor) (n ordercast.NewOrder, same api.CreateOrderRequest, err error) {
	req, err := b.request()
	if err != nil {
		return n, same, err
	}
	pickup, err := placeOf("pickup.", req.Pickup)
	if err != nil {
		return n, same, err
	}
	dropoff, err := placeOf("dropoff.", req.Dropoff)
	if err != nil {
		return n, same, err
	}
	n, err = ordercast.NewOrder{
		ID: req.ID, Details: req.Details, Note: req.Note, Actor: actor.String(),
		RestaurantID: req.RestaurantID, CustomerID: req.CustomerID,
		Pickup: pickup, Dropoff: dropoff,
	}.Normalize()
	if err != nil {
		return n, same, err
	}
	same = req
	same.Details, err = ordercast.CanonicalDetails(n.Details)
	return n, same, err
}

// optional is a string field of a request body that a client may leave out, but not send empty
// or null: either is most often an unset variable, never what the client meant (see createBody).
// The zero value is a field left out.
type optional struct {
	sent, null bool
	v          string
}

// UnmarshalJSON takes the field's value; encoding/json calls it for a null too, which a pointer
// field could not tell from a field left out.
func (o *optional) UnmarshalJSON(b []byte) error {
	o.sent = true
	if string(b) == "null" {
		o.null = true
		return nil
	}
	return json.Unmarshal(b, &o.v)
}

// value is what the field, named name, holds: "" when it was left out; sent empty or null, it is
// refused with code, saying to leave it out instead (what for).
func (o optional) value(code, name, instead string) (string, error) {
	switch {
	case !o.sent:
		return "", nil
	case o.null:
		return "", ordercast.Errorf(code, "%s is null: leave it out %s", name, instead)
	case o.v == "":
		return "", ordercast.Errorf(code, "%s is empty: leave it out %s", name, instead)
	}
	return o.v, nil
}

// placeOf reads an order's pickup or drop-off (field names it: "pickup.") from the wire: none when
// absent, and both coordinates when present (pointOf); the ranges are the domain's to judge.
func placeOf(field string, p *api.Place) (*ordercast.Point, error) {
	if p == nil {
		return nil, nil
	}
	pt, err := pointOf(field, p.Lat, p.Lng)
	if err != nil {
		return nil, err
	}
	return &pt, nil
}

// encodeAnswer encodes an answer's body as writeJSON would send it.
func encodeAnswer(status int, v any) (ordercast.Answer, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return ordercast.Answer{}, fmt.Errorf("encode answer: %w", err)
	}
	return ordercast.Answer{Status: status, Body: append(body, '\n')}, nil
}

// handleGetOrder serves GET /v1/orders/{id}: the order's current state. With ?wait= it is a
// long poll (see handleLongPoll).
func (s *Server) handleGetOrder(w http.ResponseWriter, r *http.Request) {
	id, courier, ok := s.orderRead(w, r)
	if !ok {
		return
	}
	// after_version means something only with wait, but a bad one is refused without it too: a
	// client that sent it believed it counted.
	v, err := filledQuery(r, api.ParamAfterVersion)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	after, err := parseAfterVersion(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	longPoll := r.URL.Query().Has(api.ParamWait)
	if longPoll {
		v, err := query(r, api.ParamWait)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		wait, err := parseWait(v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if r.Method != http.MethodHead { // HEAD is answered at once, as a poll whose wait ended
			s.handleLongPoll(w, r, id, courier, after, wait)
			return
		}
	}
	o, err := s.readAs(r, id, courier)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if longPoll { // a HEAD: the poll's answer, which carries no tag (it has no If-None-Match to match)
		s.writeLongPollAnswer(w, r, o)
		return
	}
	etag := orderETag(o)
	w.Header().Set("ETag", etag)
	if notModified(r, etag) {
		w.Header()["Cache-Control"] = noStore
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.writeJSON(w, r, http.StatusOK, o)
}

// orderRead begins every read of one order (GET /v1/orders/{id}, its events and its trail): the
// path's order id, checked, and the caller's right to watch the order (authorizeWatchAs), with
// the courier it reads as ("" for any other reader). On false it has answered.
func (s *Server) orderRead(w http.ResponseWriter, r *http.Request) (id, courier string, ok bool) {
	id = r.PathValue("id")
	if err := ordercast.ValidateID(id); err != nil {
		s.writeError(w, r, err)
		return "", "", false
	}
	courier, err := s.authorizeWatchAs(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return "", "", false
	}
	return id, courier, true
}

// readAs reads order id for a read authorized as courier's (authorizeWatchAs; "" for any other
// reader), refusing it if the order went to another courier since: the courier an order leaves
// never reads whom it went to.
func (s *Server) readAs(r *http.Request, id, courier string) (ordercast.Order, error) {
	o, err := s.Store.Order(r.Context(), id)
	if err == nil {
		err = o.ReadableByCourier(courier)
	}
	if err != nil {
		return ordercast.Order{}, err
	}
	return o, nil
}

// changeRequest reads what every change of an order starts with: the actor (from the
// Authorization header), whom permit lets send the request, and the JSON body into req. On
// false it has answered.
func (s *Server) changeRequest(w http.ResponseWriter, r *http.Request, req any, permit func(auth.Actor) error) (auth.Actor, bool) {
	return s.changeRequestUpTo(w, r, req, s.MaxBodyBytes, permit)
}

// changeRequestUpTo is changeRequest with a body of at most limit bytes. The actor is judged
// before the body is read, so a refusal costs no more than reading the header, however large the
// body it came with.
//
// The request is charged to its address's write budget. One refused there, unauthenticated or
// from a role that may never send it (a customer's token, which its page carries for anyone to
// read, moving an order), is charged to the address's smaller anonymous budget instead: such
// requests cannot use up the budget of the restaurants and couriers behind the same address.
func (s *Server) changeRequestUpTo(w http.ResponseWriter, r *http.Request, req any, limit int64, permit func(auth.Actor) error) (auth.Actor, bool) {
	return s.changeRequestCharged(w, r, req, limit, permit, func(auth.Actor) bool { return true })
}

// changeRequestCharged is changeRequestUpTo for a request whose address's write budget charges
// it only when charged says so of its actor, once permitted (a refused one is always charged,
// to the anonymous budget), and once its body is found malformed (chargeRefused).
func (s *Server) changeRequestCharged(w http.ResponseWriter, r *http.Request, req any, limit int64, permit func(auth.Actor) error, charged func(auth.Actor) bool) (auth.Actor, bool) {
	actor, ok := s.admitChange(w, r, permit, charged)
	if !ok {
		return actor, false
	}
	if err := s.decode(w, r, req, limit); err != nil {
		if !charged(actor) {
			err = s.chargeRefused(w, r, err)
		}
		s.writeError(w, r, err)
		return actor, false
	}
	return actor, true
}

// actionRequest begins a POST that takes neither a body nor an Idempotency-Key (an erasure, a
// tracking token made): admitted and charged to its address's write budget as any change
// (changeRequestUpTo), and a body or a key refused (422) rather than ignored, which would leave
// the caller believing it counted. safe says why a repeat needs no key. On false it has answered.
func (s *Server) actionRequest(w http.ResponseWriter, r *http.Request, permit func(auth.Actor) error, safe string) (auth.Actor, bool) {
	actor, ok := s.admitChange(w, r, permit, func(auth.Actor) bool { return true })
	if !ok || s.refuseIdempotencyKey(w, r, safe) {
		return actor, false
	}
	if r.ContentLength > 0 || r.ContentLength < 0 && len(r.TransferEncoding) > 0 {
		s.writeError(w, r, ordercast.Errorf(ordercast.EInvalid, "%s takes no body", r.Pattern))
		return actor, false
	}
	return actor, true
}

// admitChange authenticates a change, permits it, and charges it to its address's write budget
// as changeRequestCharged says. On false it has answered.
func (s *Server) admitChange(w http.ResponseWriter, r *http.Request, permit func(auth.Actor) error, charged func(auth.Actor) bool) (auth.Actor, bool) {
	actor, err := s.authenticate(r)
	if err == nil {
		err = permit(actor)
	}
	var lerr error
	if err != nil || charged(actor) {
		lerr = s.allowWrite(w, r, err != nil)
	}
	if lerr != nil {
		if err != nil {
			// The anonymous budget is spent: say what this request was refused for too (as its
			// 401 or 403 would), or a courier's app whose token expired, behind an address others'
			// refused writes share (a carrier's NAT), is told to retry later for ever and never to
			// sign in again.
			err = wrongScheme(r, err)
			if errorStatus(err) == http.StatusUnauthorized {
				// And in the header a client acts on, as a 401's: credentials, other than these,
				// may change the answer (RFC 9110 §11.6.1 lets any answer carry it). A client that
				// signs in again on a 401 and retries a 429 as it is would otherwise retry an
				// expired token for ever.
				w.Header().Set("WWW-Authenticate", bearerChallenge(err))
			}
			lerr = ordercast.Errorf(ordercast.ERateLimited, "too many refused write requests from your address; this one is refused too (%s: %s): fix that before you retry",
				ordercast.ErrorCode(err), ordercast.ErrorMessage(err))
		}
		s.writeError(w, r, lerr)
		return actor, false
	}
	if err != nil {
		s.writeError(w, r, err)
		return actor, false
	}
	return actor, true
}

// chargeRefused charges to its address's write budget a request that went uncharged (a
// courier's own position: its courier's budget bounds the positions it takes) and turned out
// refused before it reached that budget (malformed, invalid): only what the courier's budget
// takes is free of the address's. It returns the refusal to answer: the address's 429 once that
// budget is spent, else err.
func (s *Server) chargeRefused(w http.ResponseWriter, r *http.Request, err error) error {
	if lerr := s.allowWrite(w, r, false); lerr != nil {
		return lerr
	}
	return err
}

// handleSetStatus serves POST /v1/orders/{id}/status: apply a status change. When auth is on it
// needs an actor token whose role may set the requested status; the event records the actor.
func (s *Server) handleSetStatus(w http.ResponseWriter, r *http.Request) {
	var req api.SetStatusRequest
	actor, ok := s.changeRequest(w, r, &req, permitSetStatus)
	if !ok {
		return
	}
	c, err := s.statusChange(actor, r.PathValue("id"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var conditional bool
	if c.ExpectedVersion, conditional, err = ifMatch(r, c.ExpectedVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	if c.ExpectedVersion != 0 {
		// The version the change is bound to is part of the request, in the body or in
		// If-Match: a retry of a key with another version is another request, not a replay.
		req.ExpectedVersion = &c.ExpectedVersion
	}
	idem, done := s.idempotent(w, r, actor, req, nil)
	if done {
		return
	}
	// Every role that may change an order may read it (auth.permissions), so the answer is the
	// order and the event; a party's refusal says nothing of another party's order (blindError).
	record, answer := renderOnce(func(res ordercast.Result) (ordercast.Answer, error) {
		return encodeAnswer(http.StatusOK, api.SetStatusResponse{Order: res.Order, Event: res.Event.Wire(), Changed: res.Changed})
	})
	if idem != nil {
		idem.Render, c.Idem = record, idem
	}
	o, ev, changed, err := s.Store.AppendStatus(r.Context(), c)
	if ordercast.ErrorCode(err) == ordercast.EIdempotencyKeyInUse && s.replayIdempotent(w, r, idem, nil) {
		return
	}
	if err != nil {
		s.writeChangeError(w, r, actor, c.Owner, conditional, err)
		return
	}
	if changed {
		s.Metrics.eventsCommitted.Inc()
	}
	a, err := answer(ordercast.Result{Order: o, Event: ev, Changed: changed})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeRawJSON(w, a.Status, a.Body)
}

// writeChangeError answers a change of one order that the store refused: a party's refusal
// (owner set) says nothing of another party's order (blindError), and a version the request's
// If-Match named (conditional) is 412, not the body's 409.
func (s *Server) writeChangeError(w http.ResponseWriter, r *http.Request, actor auth.Actor, owner ordercast.Party, conditional bool, err error) {
	if owner != (ordercast.Party{}) {
		err = blindError(actor, err)
	}
	s.writeError(w, r, preconditionFailed(conditional, err))
}

// expectedVersion reads a change's expected_version: absent is 0 (any version); present, it
// must be at least 1, where the wire's 0 would silently mean "any".
func expectedVersion(v *int64) (int64, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 1 {
		return 0, ordercast.Errorf(ordercast.EInvalid, "expected_version must be at least 1")
	}
	return *v, nil
}

// statusChange reads a status change of order id from the wire and checks what can be checked
// before the order is read: the change's own validity and whether actor's role may set its
// status. It binds the change to everything the actor's role restricts (the stages, the owner)
// here, once, so that no route that changes statuses can forget one. Both
// POST /v1/orders/{id}/status and POST /v1/status-changes judge a change by it.
func (s *Server) statusChange(actor auth.Actor, id string, req api.SetStatusRequest) (ordercast.StatusChange, error) {
	c := ordercast.StatusChange{OrderID: id, Status: req.Status, Note: req.Note, Actor: actor.String()}
	var err error
	if c.ExpectedVersion, err = expectedVersion(req.ExpectedVersion); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	c.NotBefore, c.Before = actor.NotBefore(c.Status), actor.Until()
	if err := actor.PermitAction(auth.ActSetStatus, c.Status); err != nil {
		return c, err
	}
	c.Owner, err = s.owner(actor)
	return c, err
}

// courierChange reads a courier change of order id from the wire and checks what can be checked
// before the order is read (the role's right to assign at all is the route's permit,
// permitAssign). Like statusChange, it binds the change to what the actor's role restricts (the
// stage, the owner).
func (s *Server) courierChange(actor auth.Actor, id string, req api.SetCourierRequest) (ordercast.CourierChange, error) {
	c := ordercast.CourierChange{OrderID: id, CourierName: req.CourierName, Note: req.Note, Actor: actor.String()}
	// Only an explicit null unassigns: a body without courier_id (one meant for another route,
	// or {}) would otherwise take the order's courier away.
	if req.CourierID.IsZero() {
		return c, ordercast.Errorf(ordercast.EInvalid, "courier_id is required: a courier's id assigns the order, null unassigns it")
	}
	var err error
	if c.ExpectedVersion, err = expectedVersion(req.ExpectedVersion); err != nil {
		return c, err
	}
	if courier, assigns := req.CourierID.Courier(); assigns {
		if courier == "" {
			return c, ordercast.Errorf(ordercast.EInvalid, "courier_id must not be empty; null unassigns")
		}
		c.CourierID = courier
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	c.Before = actor.Until()
	c.Owner, err = s.owner(actor)
	return c, err
}

// handleSetStatuses serves POST /v1/status-changes: status changes of many orders in one
// request, from an integration (an admin or system token), so that one request's cost is paid
// once for all of them. Each change is judged as POST /v1/orders/{id}/status judges it and the
// store applies them in the request's order, together (Store.AppendStatuses): one result per
// change, a refused one changing nothing. Only what is wrong with the request as a whole refuses
// all of it. An Idempotency-Key is refused rather than ignored: a retried change is safe without
// one (a change to the status the order already has is answered changed false, with the order's
// latest event; expected_version guards the rest), and a caller must not believe a key protects
// it.
func (s *Server) handleSetStatuses(w http.ResponseWriter, r *http.Request) {
	// api.SetStatusesRequest, but for its changes' pointers: encoding/json reads a null change
	// as a change with nothing set, which is no change at all but a malformed request.
	var req struct {
		Changes []*api.OrderStatusChange `json:"changes"`
	}
	permit := permitMany("change many orders in one request")
	actor, ok := s.changeRequestUpTo(w, r, &req, max(s.MaxBodyBytes, api.MaxStatusChangesBodyBytes), permit)
	if !ok {
		return
	}
	if err := nullItem(req.Changes, "change"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.refuseIdempotencyKey(w, r, "a change is safe to repeat (a change to the status the order already has is answered changed false; expected_version applies a change only at the version it names)") {
		return
	}
	if len(r.Header.Values("If-Match")) > 0 {
		// The request has no one order whose version a tag could name; a caller must not
		// believe it guards the changes.
		s.writeError(w, r, ordercast.Errorf(ordercast.EInvalid, "If-Match is not taken by POST /v1/status-changes: give each change its expected_version"))
		return
	}
	if err := itemCount(len(req.Changes), api.MaxStatusChangesPerRequest, "changes", ordercast.ETooManyChanges); err != nil {
		s.writeError(w, r, err)
		return
	}
	res := api.SetStatusesResponse{Results: make([]api.StatusResult, len(req.Changes))}
	// The changes that pass the request's checks go to the store together; at[j] is where the
	// store's j-th result belongs.
	cs := make([]ordercast.StatusChange, 0, len(req.Changes))
	at := make([]int, 0, len(req.Changes))
	for i, q := range req.Changes {
		c, err := s.statusChange(actor, q.OrderID, q.SetStatusRequest)
		if err != nil {
			res.Results[i].Error = s.resultError(r, err)
			continue
		}
		cs, at = append(cs, c), append(at, i)
	}
	results := s.Store.AppendStatuses(r.Context(), cs)
	// (A change whose commit reached a database that then went silent may have applied, as for
	// any write whose answer was lost; its retry is answered changed false.)
	if err := allUnavailable(results, func(wr ordercast.WriteResult) error { return wr.Err }); err != nil {
		s.writeError(w, r, err)
		return
	}
	for j, wr := range results {
		i := at[j]
		if wr.Err != nil {
			res.Results[i].Error = s.resultError(r, wr.Err)
			continue
		}
		if wr.Changed {
			s.Metrics.eventsCommitted.Inc()
		}
		res.Results[i].SetStatusResponse = &api.SetStatusResponse{Order: wr.Order, Event: wr.Event.Wire(), Changed: wr.Changed}
		res.Accepted++
	}
	res.Refused = len(req.Changes) - res.Accepted
	s.writeJSON(w, r, http.StatusOK, res)
}

// handleSetCourier serves PUT /v1/orders/{id}/courier: assign a courier ({"courier_id": "c-1"})
// or unassign ({"courier_id": null}). Admin and system may on any order, a restaurant on its own
// orders. The assignment is an event of the order (event: courier on streams); its status does
// not change.
func (s *Server) handleSetCourier(w http.ResponseWriter, r *http.Request) {
	var body courierBody
	actor, ok := s.changeRequest(w, r, &body, s.permitAssign)
	if !ok || s.refuseIdempotencyKey(w, r, "setting the courier an order has is answered changed false; expected_version applies a change only at the version it names") {
		return
	}
	req, err := body.request()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.courierChange(actor, r.PathValue("id"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var conditional bool
	if c.ExpectedVersion, conditional, err = ifMatch(r, c.ExpectedVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	o, ev, changed, err := s.Store.AssignCourier(r.Context(), c)
	if err != nil {
		s.writeChangeError(w, r, actor, c.Owner, conditional, err)
		return
	}
	if changed {
		s.Metrics.eventsCommitted.Inc()
	}
	s.writeJSON(w, r, http.StatusOK, api.SetStatusResponse{Order: o, Event: ev.Wire(), Changed: changed})
}

// handleEvents serves GET /v1/orders/{id}/events?after=N&limit=L: up to L events of the
// order's history after seq N (api.MaxEventsPerPage at most, and by default).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	id, courier, ok := s.orderRead(w, r)
	if !ok {
		return
	}
	v, verr := query(r, api.ParamAfter)
	l, lerr := query(r, api.ParamLimit)
	if err := cmp.Or(verr, lerr); err != nil {
		s.writeError(w, r, err)
		return
	}
	var after int64
	if v != "" {
		n, ok := parseNonNegative(v)
		if !ok {
			s.writeError(w, r, ordercast.Errorf(ordercast.EInvalid, "%s must be a non-negative integer", api.ParamAfter))
			return
		}
		after = n
	}
	limit := api.MaxEventsPerPage
	if v := l; v != "" {
		// Above the maximum is refused, not cut down: a client pages until a page is shorter
		// than the limit it asked for, which a silently smaller limit would end too early.
		n, ok := parseNonNegative(v)
		if !ok || n < 1 || n > api.MaxEventsPerPage {
			s.writeError(w, r, ordercast.Errorf(ordercast.EInvalid, "%s must be an integer from 1 to %d", api.ParamLimit, api.MaxEventsPerPage))
			return
		}
		limit = int(n)
	}
	// A courier reads the history only as far as the version it holds the order at: events
	// committed after that may give the order to another courier.
	var upTo int64 = math.MaxInt64
	if courier != "" {
		o, err := s.readAs(r, id, courier)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		upTo = o.Version
	}
	events, err := s.Store.EventsAfter(r.Context(), id, after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for i, ev := range events {
		if ev.Seq > upTo {
			events = events[:i]
			break
		}
		if courier != "" {
			// Another courier's assignment is not this courier's business (Event.SeenBy).
			events[i] = ev.SeenBy(ordercast.Party{Kind: ordercast.PartyCourier, ID: courier})
		}
	}
	if events == nil {
		events = []ordercast.Event{}
	}
	s.writeJSON(w, r, http.StatusOK, api.EventsResponse{OrderID: id, Events: events})
}

// handleTrackingToken serves POST /v1/orders/{id}/tracking-token: a fresh tracking token for an
// order, as its creation handed out, for support sending a customer their link again (lost, or
// expired: a token lives TrackingTTL, 24 h by default, and an order placed for the next day
// outlives its first) and for the platform's services. Admin, system and support only
// (auth.Actor.PermitTrackingToken), by the Authorization header as every change; an order that
// does not exist is 404. It changes nothing; each token made is logged with who asked.
func (s *Server) handleTrackingToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	actor, ok := s.actionRequest(w, r, auth.Actor.PermitTrackingToken, "it makes a new token each time, and changes nothing")
	if !ok {
		return
	}
	err := ordercast.ValidateID(id)
	var o ordercast.Order
	if err == nil {
		o, err = s.Store.Order(r.Context(), id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tok, exp, err := s.trackingToken(o)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("sign tracking token: %w", err))
		return
	}
	if exp != nil { // an open server signs none
		s.Logger.Info("made a tracking token", "request_id", RequestID(r.Context()), "order", id, "actor", actor.String(), "expires", *exp)
	}
	s.writeJSON(w, r, http.StatusOK, api.TrackingTokenResponse{OrderID: id, TrackingToken: tok, ExpiresAt: exp})
}
