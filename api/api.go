// Package api is the wire contract of the ordercast HTTP API: the paths, the parameter and event
// names, the request and response bodies, the error body and the one table that maps error codes
// to HTTP statuses. The server answers with these types and the Go client sends and reads them, so
// the two cannot drift apart. It imports only the standard library and the domain.
package api

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/ordercast/ordercast"
)

// Paths. An order's own paths are built with OrderPath and friends, which escape the id.
const (
	// PathOrders is where orders are created (POST) and listed (GET).
	PathOrders = "/v1/orders"
	// PathStreamAll is the SSE stream of every order, for consoles (GET).
	PathStreamAll = "/v1/stream"
	// PathCouriers is the root of couriers' paths; see LocationPath.
	PathCouriers = "/v1/couriers"
	// PathLocations is where an integration posts many couriers' positions at once (POST).
	PathLocations = "/v1/locations"
	// PathStatusChanges is where an integration posts many orders' status changes at once (POST).
	PathStatusChanges = "/v1/status-changes"
)

// Route patterns, as net/http's ServeMux spells them, one per endpoint.
const (
	RouteCreateOrder = "POST " + PathOrders
	RouteListOrders  = "GET " + PathOrders
	RouteOrder       = "GET " + PathOrders + "/{id}"
	RouteSetStatus   = "POST " + PathOrders + "/{id}/status"
	RouteEvents      = "GET " + PathOrders + "/{id}/events"
	RouteStream      = "GET " + PathOrders + "/{id}/stream"
	RouteWebSocket   = "GET " + PathOrders + "/{id}/ws"
	RouteStreamAll   = "GET " + PathStreamAll
	RouteSetCourier  = "PUT " + PathOrders + "/{id}/courier"
	// RouteTrackingToken hands out a fresh tracking token for an order (admin, system and
	// support): its customer's link sent again.
	RouteTrackingToken = "POST " + PathOrders + "/{id}/tracking-token"
	// RouteTrail is where a tracking page finds the way the courier came before it opened.
	RouteTrail = "GET " + PathOrders + "/{id}/trail"
	// The party streams: every order of one restaurant, courier or customer.
	RouteRestaurantStream = "GET /v1/restaurants/{pid}/stream"
	RouteCourierStream    = "GET /v1/couriers/{pid}/stream"
	RouteCustomerStream   = "GET /v1/customers/{pid}/stream"
	// RouteEraseCustomer erases the personal data of a customer's ended orders (admin and
	// system only): ordercast.CustomerEraser.
	RouteEraseCustomer = "POST /v1/customers/{pid}/erase"
	// RoutePostLocation is where a courier reports its position.
	RoutePostLocation = "POST " + PathCouriers + "/{cid}/location"
	// RoutePostLocations is where an integration reports many couriers' positions in one request.
	RoutePostLocations = "POST " + PathLocations
	// RouteSetStatuses is where an integration moves many orders in one request.
	RouteSetStatuses = "POST " + PathStatusChanges
	// RouteOpenAPI serves OpenAPI, this API's description.
	RouteOpenAPI = "GET /v1/openapi.json"
)

// LocationPath is where courier cid reports its position (POST).
func LocationPath(cid string) string { return PathCouriers + "/" + url.PathEscape(cid) + "/location" }

// TrackingTokenPath is where a fresh tracking token for order id is asked for (POST).
func TrackingTokenPath(id string) string { return OrderPath(id) + "/tracking-token" }

// CourierPath is where an order's courier is assigned (PUT).
func CourierPath(id string) string { return OrderPath(id) + "/courier" }

// partyPaths is the collection each kind of party's paths live under.
var partyPaths = map[ordercast.PartyKind]string{
	ordercast.PartyRestaurant: "/v1/restaurants/",
	ordercast.PartyCourier:    "/v1/couriers/",
	ordercast.PartyCustomer:   "/v1/customers/",
}

// PartyPath is the API path of a party: /v1/restaurants/{id} and so on. A kind other than the
// three gets a path under /v1/ that no route serves (404), never one without its leading slash,
// which a client would glue onto its base URL's host name.
func PartyPath(p ordercast.Party) string {
	prefix, ok := partyPaths[p.Kind]
	if !ok {
		prefix = "/v1/" + url.PathEscape(string(p.Kind)) + "-is-no-party-kind/"
	}
	return prefix + url.PathEscape(p.ID)
}

// EraseCustomerPath is where customer id's personal data is erased (POST).
func EraseCustomerPath(id string) string {
	return PartyPath(ordercast.Party{Kind: ordercast.PartyCustomer, ID: id}) + "/erase"
}

// PartyStreamPath is a party's SSE stream (GET).
func PartyStreamPath(p ordercast.Party) string { return PartyPath(p) + "/stream" }

// OrderPath is the path of one order: GET it, or long-poll it with ParamWait.
func OrderPath(id string) string { return PathOrders + "/" + url.PathEscape(id) }

// StatusPath is where an order's status is changed (POST).
func StatusPath(id string) string { return OrderPath(id) + "/status" }

// EventsPath is an order's history (GET), optionally after a seq (ParamAfter).
func EventsPath(id string) string { return OrderPath(id) + "/events" }

// TrailPath is the way an order's courier came (GET).
func TrailPath(id string) string { return OrderPath(id) + "/trail" }

// StreamPath is an order's SSE stream (GET).
func StreamPath(id string) string { return OrderPath(id) + "/stream" }

// WebSocketPath is an order's WebSocket (GET, upgraded).
func WebSocketPath(id string) string { return OrderPath(id) + "/ws" }

// QueryParams are the query parameters each route takes, as api/openapi.json describes them
// (TestQueryParamsAreTheDescriptions), besides ParamToken, which every read takes: any other is
// refused 422 (a misspelt after_version or lastEventId answered as if absent made a long poll
// return at once, again and again, or a resume start afresh). A route not named takes none.
var QueryParams = map[string][]string{
	RouteListOrders:       {ParamRestaurantID, ParamCustomerID, ParamStatus, ParamSince, ParamUntil, ParamOrder, ParamCursor, ParamLimit},
	RouteOrder:            {ParamWait, ParamAfterVersion},
	RouteEvents:           {ParamAfter, ParamLimit},
	RouteStream:           {ParamLastEventID, ParamHeartbeat, ParamLocationInterval},
	RouteWebSocket:        {ParamLastEventID, ParamLocationInterval},
	RouteStreamAll:        {ParamHeartbeat},
	RouteRestaurantStream: {ParamLastEventID, ParamHeartbeat, ParamLocationInterval},
	RouteCourierStream:    {ParamLastEventID, ParamHeartbeat, ParamLocationInterval},
	RouteCustomerStream:   {ParamLastEventID, ParamHeartbeat, ParamLocationInterval},
}

// MaxLocationInterval bounds ParamLocationInterval: a tracking page judges a courier lost when
// it has heard of no position for 20 s, and a courier posts every few seconds.
const MaxLocationInterval = 10 * time.Second

// Header and query parameter names.
const (
	// HeaderLastEventID carries the seq a stream resumes after; browsers send it on reconnect.
	HeaderLastEventID = "Last-Event-ID"
	// ParamLastEventID is HeaderLastEventID as a query parameter, for clients that cannot set
	// headers (a first EventSource connect, a WebSocket).
	ParamLastEventID = "lastEventId"
	// ParamHeartbeat=event asks an SSE stream for visible heartbeats (EventHeartbeat) instead of
	// comments, which an EventSource never shows its page: a browser can then tell a connection
	// that died silently from a quiet order.
	ParamHeartbeat = "heartbeat"
	// ParamLocationInterval asks a stream for a position of an order at most this often (a Go
	// duration, up to MaxLocationInterval; below the server's --location-interval it is the
	// server's): a client saving data gets fewer, each the newest.
	ParamLocationInterval = "location_interval"
	// ParamAfter asks GET …/events for the events after this seq.
	ParamAfter = "after"
	// ParamLimit bounds the events of one page of GET …/events: 1 to MaxEventsPerPage.
	ParamLimit = "limit"
	// ParamRestaurantID, ParamStatus, ParamSince and ParamUntil keep the orders GET /v1/orders
	// lists: a restaurant's, at a status, created at or after a time (RFC 3339), before one.
	ParamRestaurantID = "restaurant_id"
	ParamStatus       = "status"
	ParamSince        = "since"
	ParamUntil        = "until"
	// ParamCustomerID keeps one customer's orders in GET /v1/orders: an access request's export,
	// admin and system only.
	ParamCustomerID = "customer_id"
	// ParamCursor asks GET /v1/orders for the page after the one whose next it is.
	ParamCursor = "cursor"
	// ParamOrder lists GET /v1/orders OrderOldest first (the default) or OrderNewest first.
	ParamOrder = "order"
	// ParamWait turns GET /v1/orders/{id} into a long poll of at most this long (a Go duration
	// or seconds).
	ParamWait = "wait"
	// ParamAfterVersion is the version a long poll waits to see passed.
	ParamAfterVersion = "after_version"
	// ParamToken is a read's or a watch's token in the URL, for a client that can send neither a
	// header nor the pages' cookies (an EventSource on another origin): a tracking token, or a
	// party's; never an admin's or a system token, which proxies' logs would keep.
	ParamToken = "token"
	// HeaderIdempotencyKey carries a client's key for a create or a status change it may need to
	// retry: a retry with the same key and request gets the first answer.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderIdempotentReplayed is "true" on an answer that is the one recorded for an earlier
	// request with the same HeaderIdempotencyKey.
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	// HeaderHistoryBehind is on a stream of one order (SSE or WebSocket) that resumed after a seq
	// past the order's history: its value is the seq the history ends at, and the stream opens as
	// a fresh connect would. The resume point came from another history (a database reset or
	// restored from an older backup), so the events that follow come under seqs the client may
	// have seen already.
	HeaderHistoryBehind = "History-Behind"
)

// SSE event names (the event: field).
const (
	// EventStatus is one status event; its data is an ordercast.Event.
	EventStatus = "status"
	// EventSnapshot opens GET /v1/stream; its data is a JSON array of active orders. It also
	// opens a party stream (its data is then a PartySnapshot).
	EventSnapshot = "snapshot"
	// EventLocation is a courier's newest position for an order; its data is an
	// ordercast.LocationUpdate, whose "type" is this name too (ordercast.LocationType): on a
	// WebSocket, where there is no event name, it tells a position from an event, which has a
	// seq and no type. It carries no id: a position is state, not history, so it never moves a
	// client's Last-Event-ID.
	EventLocation = ordercast.LocationType
	// EventCourier is one courier assignment; its data is an ordercast.Event of kind courier.
	EventCourier = "courier"
	// EventHeartbeat is a stream's heartbeat on a stream opened with ParamHeartbeat=event: no
	// id, data {"every_s": N}, one at the opening and then after N seconds without a frame.
	EventHeartbeat = "heartbeat"
	// EventEnd is the last event of an SSE stream that ends where a reconnect as it was would be
	// refused or misled, saying why, as a WebSocket's close reason does: no id, data a StreamEnd.
	EventEnd = "end"
)

// StreamEnd is the data of an EventEnd: why the stream ended (EndTokenExpired,
// EndOrderReassigned, EndHistoryRewritten), and the same in words.
type StreamEnd struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Why a stream ends with an EventEnd.
const (
	// EndTokenExpired: the token the stream was opened with is no longer accepted: reconnect
	// with a new one (the same one is refused 401).
	EndTokenExpired = "token_expired"
	// EndOrderReassigned: a courier's stream of an order that went to another courier (a
	// reconnect is refused 403: the order is no longer its).
	EndOrderReassigned = "order_reassigned"
	// EndHistoryRewritten: the order's history went back under the stream (its database came
	// back with less than it had: a failover that lost the last commits, a copy restored), so
	// seqs the client holds may now be other changes'. A reconnect with Last-Event-ID would
	// skip them: open the stream afresh, without it, and show the order as it comes.
	EndHistoryRewritten = "history_rewritten"
)

// The application's WebSocket close codes (4000 to 4999 are the application's: RFC 6455 §7.4.2),
// one per EventEnd reason whose cure differs from the standard codes'.
const (
	// CloseHistoryRewritten: the socket ended for EndHistoryRewritten: reconnect without
	// lastEventId.
	CloseHistoryRewritten = 4001
	// CloseTokenExpired: the socket ended for EndTokenExpired: reconnect with a new token (the
	// same one is refused 401 token_expired). Not 1008, which a courier's socket of an order
	// given to another courier gets, and whose cure is to stop.
	CloseTokenExpired = 4002
)

// EventName is the SSE event name of ev: courier for an assignment, status otherwise.
func EventName(ev ordercast.Event) string {
	if ev.Kind == ordercast.KindCourier {
		return EventCourier
	}
	return EventStatus
}

// PartySnapshot opens a party stream: the party's active orders when the stream was read. Its
// SSE id is the party's log position then, the cursor a reconnect resumes after.
type PartySnapshot struct {
	Party  string            `json:"party"` // restaurant:r-1
	Pos    int64             `json:"pos"`
	Orders []ordercast.Order `json:"orders"` // MaxPartySnapshotOrders at most
}

// MaxPartySnapshotOrders bounds the orders of one PartySnapshot. A restaurant's board holds tens
// of active orders; a party past this has its oldest active orders left out of the snapshot
// (their later events still arrive).
const MaxPartySnapshotOrders = 2000

// ResumeQuery returns "?lastEventId=N", the query that resumes a stream after seq n, or "" for
// n <= 0 (from the current state).
func ResumeQuery(n int64) string {
	if n <= 0 {
		return ""
	}
	return ResumeAfterQuery(n)
}

// ResumeAfterQuery returns "?lastEventId=N" for any n, 0 included: after 0 is from the first
// event, which ResumeQuery(0) does not ask for.
func ResumeAfterQuery(n int64) string {
	return "?" + ParamLastEventID + "=" + strconv.FormatInt(n, 10)
}

// LongPollQuery returns the query of a long poll that waits for a version past afterVersion.
func LongPollQuery(wait string, afterVersion int64) string {
	return "?" + ParamWait + "=" + url.QueryEscape(wait) + "&" + ParamAfterVersion + "=" + strconv.FormatInt(afterVersion, 10)
}

// CreateOrderRequest is the body of POST /v1/orders.
type CreateOrderRequest struct {
	// ID is the order's id; empty (left out) asks the server to generate one. The server refuses an
	// id sent as "", which a client that does not omit it would make a new order of on each retry.
	ID string `json:"id,omitempty"`
	// Details is a JSON object describing the order; empty means {}.
	Details json.RawMessage `json:"details,omitempty"`
	// Note goes on the order's first event.
	Note string `json:"note,omitempty"`
	// RestaurantID is the restaurant the order is for; CustomerID who placed it. Optional, so
	// that clients from before ownership keep working; an order without them is seen only by
	// admin, system and its tracking token.
	RestaurantID string `json:"restaurant_id,omitempty"`
	CustomerID   string `json:"customer_id,omitempty"`
	// Pickup and Dropoff are where the food is collected and delivered; the courier's distance
	// and ETA are measured to Dropoff.
	Pickup  *Place `json:"pickup,omitempty"`
	Dropoff *Place `json:"dropoff,omitempty"`
}

// Place is an order's pickup or drop-off on the wire. Lat and Lng are both required, in degrees,
// as a courier's position's are; pointers, because the wire tells absent from 0.
type Place struct {
	Lat *float64 `json:"lat"`
	Lng *float64 `json:"lng"`
}

// PlaceAt returns the place at lat, lng.
func PlaceAt(lat, lng float64) *Place { return &Place{Lat: &lat, Lng: &lng} }

// SetCourierRequest is the body of PUT /v1/orders/{id}/courier. courier_id is required: a
// courier's id assigns the order to it, an explicit null unassigns it.
type SetCourierRequest struct {
	CourierID Assignment `json:"courier_id,omitzero"`
	// CourierName, optional, is the name the order's parties see the assigned courier by
	// (ordercast.CourierChange.CourierName).
	CourierName string `json:"courier_name,omitempty"`
	Note        string `json:"note,omitempty"`
	// ExpectedVersion, when present, makes the change apply only at that version (at least 1;
	// 409 version_conflict at another), as SetStatusRequest's does: a retried assignment then
	// cannot undo one made meanwhile.
	ExpectedVersion *int64 `json:"expected_version,omitempty"`
}

// Assignment is the courier_id of SetCourierRequest, which JSON has in three states where a
// *string has two: absent (the zero Assignment, refused, so that a body that forgot it
// unassigns nothing), null (Unassign) and a courier's id (AssignTo).
type Assignment struct {
	courier *string
	present bool
}

// AssignTo is the assignment of courier id.
func AssignTo(id string) Assignment { return Assignment{courier: &id, present: true} }

// Unassign is the assignment of no courier: an explicit null.
func Unassign() Assignment { return Assignment{present: true} }

// IsZero reports whether a is absent: it is not sent, and the server refuses a request without it.
func (a Assignment) IsZero() bool { return !a.present }

// Courier returns the courier a assigns, and false when it unassigns (or is absent).
func (a Assignment) Courier() (id string, assigns bool) {
	if a.courier == nil {
		return "", false
	}
	return *a.courier, true
}

// MarshalJSON writes the courier's id, or null.
func (a Assignment) MarshalJSON() ([]byte, error) {
	if a.courier == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*a.courier)
}

// UnmarshalJSON reads the courier's id, or null; encoding/json calls it for a present field only,
// null included.
func (a *Assignment) UnmarshalJSON(b []byte) error {
	*a = Unassign()
	if string(b) == "null" {
		return nil
	}
	var id string
	if err := json.Unmarshal(b, &id); err != nil {
		return err
	}
	*a = AssignTo(id)
	return nil
}

// CreateOrderResponse answers POST /v1/orders: the order, and the tracking token its customer
// watches it with. Only the creation hands the token out; GET /v1/orders/{id} does not.
type CreateOrderResponse struct {
	ordercast.Order
	// TrackingToken lets whoever holds it read and watch this one order. Empty on an open server
	// (no secret to sign it with); a server with public tracking gives it all the same.
	TrackingToken string `json:"tracking_token,omitempty"`
	// TrackingTokenExpiresAt is when TrackingToken stops being accepted (--tracking-ttl after
	// the answer), for an app to fetch a new one before (POST …/tracking-token) without reading
	// the token; absent with no token.
	TrackingTokenExpiresAt *time.Time `json:"tracking_token_expires_at,omitempty"`
}

// SetStatusRequest is the body of POST /v1/orders/{id}/status.
type SetStatusRequest struct {
	// Status is the status to move to.
	Status ordercast.Status `json:"status"`
	// Note goes on the event.
	Note string `json:"note,omitempty"`
	// ExpectedVersion, when present, makes the change apply only at that version (it must be at
	// least 1). A pointer, because the wire tells absent from 0 and the server refuses 0. It
	// guards a change, not a repeat: asking for the status the order already has is answered
	// 200 with Changed false at any version, so of several callers sending the same change at
	// the same version one gets Changed true and the rest Changed false: read Changed to know
	// whether this call made it.
	ExpectedVersion *int64 `json:"expected_version,omitempty"`
}

// SetStatusResponse answers a status change or a courier assignment: the order after it, the
// event it appended (or the latest one, for an idempotent repeat), and whether anything changed.
type SetStatusResponse struct {
	Order   ordercast.Order `json:"order"`
	Event   ordercast.Event `json:"event"`
	Changed bool            `json:"changed"`
	// Replayed is not in the body: it is the HeaderIdempotentReplayed header of a status change
	// sent with a HeaderIdempotencyKey, which the Go client reads into it. True means nothing
	// was applied again: this is the answer the key's first request got, Changed included.
	// Always false in a SetStatusesResponse and in the answer to a courier assignment, which
	// take no key.
	Replayed bool `json:"-"`
}

// MaxStatusChangesPerRequest bounds the changes of one POST /v1/status-changes: a request of
// more is refused whole (413 too_many_changes), as MaxLocationsPerRequest bounds positions.
const MaxStatusChangesPerRequest = 1000

// MaxStatusChangesBodyBytes bounds the body of POST /v1/status-changes (413 body_too_large
// above it): a thousand changes take about 110 KB with short notes, and about 600 KB with notes
// of the full 500 characters of ASCII.
const MaxStatusChangesBodyBytes = 1 << 20

// SetStatusesRequest is the body of POST /v1/status-changes: status changes of many orders,
// from an integration, each judged alone and applied in this order.
type SetStatusesRequest struct {
	Changes []OrderStatusChange `json:"changes"`
}

// OrderStatusChange is one change of SetStatusesRequest: an order's id and the fields of
// POST /v1/orders/{id}/status.
type OrderStatusChange struct {
	OrderID string `json:"order_id"`
	SetStatusRequest
}

// SetStatusesResponse answers POST /v1/status-changes: one result per change, in the request's
// order, and how many were accepted (applied, or an idempotent repeat) and refused.
type SetStatusesResponse struct {
	Accepted int            `json:"accepted"`
	Refused  int            `json:"refused"`
	Results  []StatusResult `json:"results"`
}

// StatusResult is what became of one change of a POST /v1/status-changes: the single change's
// answer (order, event, changed), or the error the single change would have answered. (The Go
// client's deprecated StatusResult, now SetStatusResult, is another type: SetStatusResponse,
// the answer to a single change.) Exactly one of the two is set: look at Error first, since a
// refused change's promoted fields (r.Changed, r.Order) are those of a nil pointer and panic.
type StatusResult struct {
	*SetStatusResponse
	Error *ErrorDetail `json:"error,omitempty"`
}

// MaxEventsPerPage is the most events one GET /v1/orders/{id}/events returns, and how many it
// returns without ParamLimit: one read of an order's history is bounded, whatever the order. An
// order's whole history (ordercast.MaxOrderVersion) fits in one page; one kept from before that
// cap is read page by page: ask again with ParamAfter = the last seq returned, until a page is
// shorter than its limit.
const MaxEventsPerPage = 1000

// MaxOrdersPerPage is the most orders one GET /v1/orders returns (ParamLimit), and
// DefaultOrdersPerPage how many it returns without ParamLimit: an order with its details is up
// to a few KiB, so a page is bounded to a few MiB.
const (
	MaxOrdersPerPage     = 500
	DefaultOrdersPerPage = 100
)

// The values of ParamOrder: the orders created first first, or the orders created last first.
const (
	OrderOldest = "oldest"
	OrderNewest = "newest"
)

// ListOrdersResponse is one page of GET /v1/orders: orders oldest (or newest) created first,
// and the cursor of the page after it.
type ListOrdersResponse struct {
	Orders []ordercast.Order `json:"orders"`
	// Next, absent on the last page, asks for the page after this one (ParamCursor), with the
	// same filters.
	Next string `json:"next,omitempty"`
}

// TrackingTokenResponse answers POST /v1/orders/{id}/tracking-token: a tracking token for the
// order, as its creation gave one, and when it expires.
type TrackingTokenResponse struct {
	OrderID string `json:"order_id"`
	// TrackingToken lets whoever holds it read and watch this one order. Empty on an open server
	// (no secret to sign it with), as a creation's.
	TrackingToken string `json:"tracking_token,omitempty"`
	// ExpiresAt is when TrackingToken stops being accepted; absent with it.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// EraseCustomerResponse is the answer of POST /v1/customers/{id}/erase: what the erasure
// changed. A second erasure of the same customer answers zeros.
type EraseCustomerResponse struct {
	CustomerID string `json:"customer_id"`
	ordercast.Erasure
}

// EventsResponse is an order's history, the body of GET /v1/orders/{id}/events: one page of it,
// up to the limit asked for (MaxEventsPerPage).
type EventsResponse struct {
	OrderID string            `json:"order_id"`
	Events  []ordercast.Event `json:"events"`
}

// PostLocationRequest is the body of POST /v1/couriers/{cid}/location: one position fix.
type PostLocationRequest struct {
	// Lat and Lng are required, in degrees; pointers, because the wire tells absent from 0.
	Lat *float64 `json:"lat"`
	Lng *float64 `json:"lng"`
	// AccuracyM is the fix's accuracy radius in metres; Heading degrees clockwise from north;
	// SpeedMPS metres per second.
	AccuracyM *float64 `json:"accuracy_m,omitempty"`
	Heading   *float64 `json:"heading,omitempty"`
	SpeedMPS  *float64 `json:"speed_mps,omitempty"`
	// At is when the fix was taken; absent means now. Not in the future, not too old.
	At *time.Time `json:"at,omitempty"`
}

// PositionAt returns a fix at lat, lng, taken now, with nothing else known: what a client sets the
// optional fields of as it has them.
func PositionAt(lat, lng float64) PostLocationRequest {
	return PostLocationRequest{Lat: &lat, Lng: &lng}
}

// PostLocationResponse answers a position: how many of the courier's orders it reached (those
// out for delivery and assigned to the courier), and, when none, why (location.Missed: an order
// not at the stage that shows the courier, a newer fix of it taken already, a coarse fix held).
type PostLocationResponse struct {
	Orders int    `json:"orders"`
	Missed string `json:"missed,omitempty"`
}

// MaxLocationsPerRequest bounds the positions of one POST /v1/locations: a request of more is
// refused whole (413 too_many_positions). A thousand keeps one answer under a second of one
// node's work and its body well under MaxLocationsBodyBytes.
const MaxLocationsPerRequest = 1000

// MaxLocationsBodyBytes bounds the body of POST /v1/locations (413 body_too_large above it): a
// thousand positions with every field and a long courier id take about 250 KB.
const MaxLocationsBodyBytes = 512 << 10

// PostLocationsRequest is the body of POST /v1/locations: positions of many couriers, from an
// integration (the platform's backend forwarding its couriers' apps), each judged alone.
type PostLocationsRequest struct {
	Positions []CourierPosition `json:"positions"`
}

// CourierPosition is one position of PostLocationsRequest: a courier's id and the fields of
// POST /v1/couriers/{cid}/location.
type CourierPosition struct {
	CourierID string `json:"courier_id"`
	PostLocationRequest
}

// PostLocationsResponse answers POST /v1/locations: one result per position, in the request's
// order, and how many were accepted and refused.
type PostLocationsResponse struct {
	Accepted int              `json:"accepted"`
	Refused  int              `json:"refused"`
	Results  []LocationResult `json:"results"`
}

// LocationResult is what became of one position of a POST /v1/locations: the orders it reached
// (as PostLocationResponse), or the error the single post would have answered.
type LocationResult struct {
	Orders *int         `json:"orders,omitempty"`
	Missed string       `json:"missed,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}

// TrailResponse answers GET /v1/orders/{id}/trail: the way the order's courier came while the
// order showed it, oldest first, ending at its newest position; empty (and no courier) when the
// order shows no courier now.
type TrailResponse struct {
	OrderID   string               `json:"order_id"`
	CourierID string               `json:"courier_id,omitempty"`
	Trail     []ordercast.TrailFix `json:"trail"`
}

// LongPollResponse answers a long poll: the order, and its courier's newest position while the
// order shows one.
type LongPollResponse struct {
	ordercast.Order
	Location *ordercast.LocationUpdate `json:"location,omitempty"`
}
