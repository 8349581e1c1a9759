package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// Bounds on response bodies read into memory, so a misbehaving server cannot exhaust the client.
const (
	maxResponseBytes = 8 << 20
	maxErrorBytes    = 64 << 10
)

// Client calls one ordercast server. The zero value is not usable: BaseURL must be set. A Client
// is safe for concurrent use.
type Client struct {
	// BaseURL is the server's root, such as "http://localhost:8080"; a trailing slash is ignored.
	BaseURL string
	// HTTPClient makes the requests; nil means http.DefaultClient. Its Timeout, if set, bounds
	// each attempt of a call; a watch's streams, endless by design, go without it, bounded by the
	// watch's context and WatchOptions.IdleTimeout instead.
	HTTPClient *http.Client
	// Token, when set, is sent as "Authorization: Bearer <Token>". It must not change while the
	// Client is in use (a watch reads it at every reconnect): a token that is renewed (a
	// courier's app through a shift, a service's token from its identity provider) comes from
	// TokenSource.
	Token string
	// TokenSource, when set, gives the token of each request instead of Token, and of each of a
	// watch's connections: a watch whose token expired (the server ends its stream then) goes
	// on with the renewed one. A watch refused 401 asks it again, and ends only when the very
	// next attempt is refused too (a call refused 401 is returned as it is); an error from it
	// fails the call, and a watch retries it as a connection that failed.
	// It is called from the goroutines that use the Client, at once.
	TokenSource func(context.Context) (string, error)
	// MaxAttempts bounds how many times a call is sent: any call while it applied nothing (it
	// was never sent, or refused 429), and a read (Order, Events, Trail) or a write with an
	// idempotency key (WithIdempotencyKey) while its outcome stays unknown too; 1 turns the
	// client's own retry off. Zero means DefaultMaxAttempts. A write without a key that may have
	// applied is never sent again.
	MaxAttempts int
}

// The request and response bodies are the wire contract's own types (package api).
type (
	// CreateOrderRequest is the body of POST /v1/orders.
	CreateOrderRequest = api.CreateOrderRequest
	// SetStatusRequest is the body of POST /v1/orders/{id}/status. Set ExpectedVersion (for
	// example to new(int64(3))) to make the change apply only at that version.
	SetStatusRequest = api.SetStatusRequest
	// SetStatusResult answers SetStatus: the order after the change, its event, and whether
	// anything changed. Changed is false for an idempotent repeat of the current status; Event
	// is then the order's latest event. Replayed says the server answered a retry with the
	// answer it recorded for the idempotency key.
	SetStatusResult = api.SetStatusResponse
	// StatusResult is SetStatusResult's former name.
	//
	// Deprecated: use SetStatusResult. This name is easily taken for api.StatusResult, a
	// different type: the result of one change in SetStatusesResult.Results, which holds either
	// a SetStatusResult or the change's error.
	StatusResult = SetStatusResult
	// SetCourierRequest is the body of PUT /v1/orders/{id}/courier: CourierID is
	// api.AssignTo("c-1") or api.Unassign(), and CourierName, optional, the name the order's
	// parties see an assigned courier by. Set ExpectedVersion to make the change apply only at
	// that version.
	SetCourierRequest = api.SetCourierRequest
	// CourierResult answers SetCourier: the order after the change, its courier event, and
	// whether anything changed. Changed is false when the courier was already the order's;
	// Event is then the order's latest event. The server answers it with the type it answers
	// a status change with (Replayed is always false here).
	CourierResult = api.SetStatusResponse
	// Position is the body of POST /v1/couriers/{cid}/location: one courier's fix. Lat and Lng
	// are required: api.PositionAt(lat, lng) makes one.
	Position = api.PostLocationRequest
	// PostLocationResult answers PostLocation: the orders the position reached and, if none, why.
	PostLocationResult = api.PostLocationResponse
	// CourierPosition is one courier's fix in a PostLocations request.
	CourierPosition = api.CourierPosition
	// PostLocationsResult answers PostLocations: one result per position, in order.
	PostLocationsResult = api.PostLocationsResponse
	// OrderStatusChange is one change of SetStatuses: an order's id and a SetStatusRequest.
	OrderStatusChange = api.OrderStatusChange
	// Trail answers Trail: the order's courier and the fixes of the way it came.
	Trail = api.TrailResponse
	// SetStatusesResult answers SetStatuses: one result per change, in order, each an
	// api.StatusResult (a SetStatusResult, or the change's error).
	SetStatusesResult = api.SetStatusesResponse
)

// CreatedOrder is the answer to CreateOrder: the order, and the tracking token its customer
// watches it with (set the watching Client's Token to it; empty when the server runs without
// auth). A server with public tracking signs one too, which its customers need once the
// operator turns public tracking off.
type CreatedOrder struct {
	api.CreateOrderResponse
	// Created is false when the order existed already with the same details. A replayed
	// answer says what the key's first request got: true when that one created the order.
	Created bool `json:"-"`
	// Replayed says the server answered a retry with the answer it recorded for the
	// idempotency key (WithIdempotencyKey): the order was not created again.
	Replayed bool `json:"-"`
}

// Error is an error answer from the server. It unwraps to an *ordercast.Error with the same code
// and message, so ordercast.ErrorCode works on anything the server answered. A call that got no
// answer (its context ended, the connection failed) returns an error that is not an *Error, and
// ordercast.ErrorCode calls it internal: recognise it with errors.Is(err,
// context.DeadlineExceeded) (or context.Canceled) when the context ended, and errors.As(err,
// new(net.Error)) when the network failed. The outcome of a write is then unknown; see the
// package documentation on retrying it.
type Error struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code is the stable error code, such as ordercast.ENotFound.
	Code string
	// Message is the server's explanation for people.
	Message string
	// RetryAfter is the Retry-After header's delay, zero when absent or unparseable.
	RetryAfter time.Duration
	// CurrentVersion is, in a version_conflict or a precondition_failed, the order's version
	// now: what ExpectedVersion (or If-Match) would have had to say, so that a caller need not
	// read the order again to decide what to do with its change. Zero otherwise.
	// ordercast.ConflictVersion reads it too.
	CurrentVersion int64
}

func (e *Error) Error() string {
	return fmt.Sprintf("ordercast: HTTP %d: %s: %s", e.StatusCode, e.Code, e.Message)
}

// Unwrap returns the domain form of the error: an *ordercast.VersionConflict for a refusal that
// names the order's version, else an *ordercast.Error.
func (e *Error) Unwrap() error {
	de := &ordercast.Error{Code: e.Code, Message: e.Message}
	if e.CurrentVersion > 0 {
		return &ordercast.VersionConflict{Err: de, Current: e.CurrentVersion}
	}
	return de
}

// ItemError is the error of one item of a request of many, as the call for that item alone
// would have returned it: an *Error, with the HTTP status the code is answered with alone, for
// a refused change of SetStatuses or position of PostLocations (their results' Error); nil for
// an item that was taken (a nil detail).
//
//	for i, r := range res.Results {
//		if err := client.ItemError(r.Error); err != nil {
//			log.Printf("change %d: %v", i, err) // ordercast.ErrorCode(err), errors.As(err, new(*client.Error))
//		}
//	}
func ItemError(d *api.ErrorDetail) error {
	if d == nil {
		return nil
	}
	return &Error{
		StatusCode:     api.HTTPStatus(d.Code),
		Code:           d.Code,
		Message:        d.Message,
		RetryAfter:     time.Duration(d.RetryAfterS) * time.Second,
		CurrentVersion: d.CurrentVersion,
	}
}

// CreateOrder creates an order (POST /v1/orders). Created is false when the server answered an
// idempotent repeat of an earlier create with 200 instead of 201. It takes WithIdempotencyKey,
// with which it retries a create whose answer was lost (see the package documentation).
func (c *Client) CreateOrder(ctx context.Context, req CreateOrderRequest, opts ...CallOption) (CreatedOrder, error) {
	var res CreatedOrder
	r, err := c.do(ctx, http.MethodPost, api.PathOrders, req, &res, opts)
	if err != nil {
		return CreatedOrder{}, fmt.Errorf("create order: %w", err)
	}
	res.Created, res.Replayed = r.status == http.StatusCreated, r.replayed
	return res, nil
}

// Order returns the current state of one order (GET /v1/orders/{id}).
func (c *Client) Order(ctx context.Context, id string) (ordercast.Order, error) {
	var o ordercast.Order
	if _, err := c.do(ctx, http.MethodGet, api.OrderPath(id), nil, &o, nil); err != nil {
		return ordercast.Order{}, fmt.Errorf("get order %s: %w", id, err)
	}
	return o, nil
}

// SetStatus moves an order to a new status (POST /v1/orders/{id}/status). It takes
// WithIdempotencyKey, with which it retries a change whose answer was lost (see the package
// documentation).
func (c *Client) SetStatus(ctx context.Context, id string, req SetStatusRequest, opts ...CallOption) (SetStatusResult, error) {
	var res SetStatusResult
	r, err := c.do(ctx, http.MethodPost, api.StatusPath(id), req, &res, opts)
	if err != nil {
		return SetStatusResult{}, fmt.Errorf("set status of %s: %w", id, err)
	}
	res.Replayed = r.replayed
	return res, nil
}

// SetStatuses moves many orders in one request (POST /v1/status-changes), applied in the order
// given, as an integration relaying many changes does; it needs an admin or system token. Each
// change is judged alone: the error is for the request as a whole (a 503: retry it whole, a
// repeat of a change that did apply is answered changed false), and each refused change has its
// error in its result (ItemError makes it the error SetStatus would have returned).
func (c *Client) SetStatuses(ctx context.Context, cs []OrderStatusChange) (SetStatusesResult, error) {
	var res SetStatusesResult
	if _, err := c.do(ctx, http.MethodPost, api.PathStatusChanges, api.SetStatusesRequest{Changes: cs}, &res, nil); err != nil {
		return SetStatusesResult{}, fmt.Errorf("set the status of %d orders: %w", len(cs), err)
	}
	return res, nil
}

// SetCourier assigns order id to a courier, CourierID api.AssignTo("c-1"), or takes its courier
// away, api.Unassign() (PUT /v1/orders/{id}/courier); Note, when not empty, goes on the event.
// The assignment is an event of the order (event: courier on streams) and leaves its status as
// it is; the courier already assigned again changes nothing (Changed false). It needs an admin
// or system token, or the order's restaurant's. A zero Assignment is refused by the server
// (invalid_argument), so that a forgotten courier never unassigns; a terminal order is
// invalid_transition, one whose history is full too_many_assignments. It takes no idempotency
// key: repeating the same assignment is answered Changed false, but a repeat after someone
// else changed the courier meanwhile would undo their change, unless the request carries
// ExpectedVersion (the version the order had when you decided; 409 version_conflict then).
func (c *Client) SetCourier(ctx context.Context, id string, req SetCourierRequest) (CourierResult, error) {
	var res CourierResult
	if _, err := c.do(ctx, http.MethodPut, api.CourierPath(id), req, &res, nil); err != nil {
		return CourierResult{}, fmt.Errorf("set the courier of %s: %w", id, err)
	}
	return res, nil
}

// PostLocation reports courier cid's position (POST /v1/couriers/{cid}/location) and returns
// how many of its orders it reached and, when it reached none, why (Missed: no order shows the
// courier yet, a newer fix was taken, or a coarse fix is held behind a precise one). It needs the
// courier's own token, or an admin or system one.
func (c *Client) PostLocation(ctx context.Context, cid string, p Position) (PostLocationResult, error) {
	var res PostLocationResult
	if _, err := c.do(ctx, http.MethodPost, api.LocationPath(cid), p, &res, nil); err != nil {
		return PostLocationResult{}, fmt.Errorf("post location of courier %s: %w", cid, err)
	}
	return res, nil
}

// PostLocations reports many couriers' positions in one request (POST /v1/locations), as an
// integration forwarding its couriers' fixes does; it needs an admin or system token. Each
// position is judged alone: the error is for the request as a whole, and each refused position
// has its error in its result (ItemError makes it the error PostLocation would have returned).
func (c *Client) PostLocations(ctx context.Context, ps []CourierPosition) (PostLocationsResult, error) {
	var res PostLocationsResult
	if _, err := c.do(ctx, http.MethodPost, api.PathLocations, api.PostLocationsRequest{Positions: ps}, &res, nil); err != nil {
		return PostLocationsResult{}, fmt.Errorf("post %d locations: %w", len(ps), err)
	}
	return res, nil
}

// Events returns an order's events with seq greater than after, in seq order
// (GET /v1/orders/{id}/events?after=N): one page, of up to api.MaxEventsPerPage events, which
// holds any order's whole history (ordercast.MaxOrderVersion). A full page of a history kept from
// before that bound may have more after it: call again with after = its last seq.
func (c *Client) Events(ctx context.Context, id string, after int64) ([]ordercast.Event, error) {
	var res api.EventsResponse
	p := api.EventsPath(id) + "?" + api.ParamAfter + "=" + strconv.FormatInt(after, 10)
	if _, err := c.do(ctx, http.MethodGet, p, nil, &res, nil); err != nil {
		return nil, fmt.Errorf("list events of %s: %w", id, err)
	}
	return res.Events, nil
}

// OrderFilter keeps the orders ListOrders and Orders list; its zero value keeps every order the
// token may list (a restaurant's token: its own).
type OrderFilter struct {
	RestaurantID string
	// CustomerID keeps one customer's orders: an access request's export (admin and system
	// tokens only; see ExportCustomer).
	CustomerID string
	Status     ordercast.Status
	// Since and Until keep the orders created at or after Since and before Until; zero is no
	// bound.
	Since, Until time.Time
	// Newest lists the newest created first, each page older than the one before.
	Newest bool
}

// ListOrders returns one page of the orders f keeps, ended ones too, oldest created first (newest
// with f.Newest) (GET
// /v1/orders): up to limit (0: the server's default, 100; at most api.MaxOrdersPerPage), after
// the page whose Next cursor is ("" the first). A restaurant's token lists its own orders; admin
// and system any. Orders ranges over every page.
func (c *Client) ListOrders(ctx context.Context, f OrderFilter, cursor string, limit int) (api.ListOrdersResponse, error) {
	q := url.Values{}
	for name, v := range map[string]string{api.ParamRestaurantID: f.RestaurantID, api.ParamCustomerID: f.CustomerID, api.ParamStatus: string(f.Status), api.ParamCursor: cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	for name, t := range map[string]time.Time{api.ParamSince: f.Since, api.ParamUntil: f.Until} {
		if !t.IsZero() {
			q.Set(name, t.Format(time.RFC3339Nano))
		}
	}
	if f.Newest {
		q.Set(api.ParamOrder, api.OrderNewest)
	}
	if limit > 0 {
		q.Set(api.ParamLimit, strconv.Itoa(limit))
	}
	p := api.PathOrders
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var res api.ListOrdersResponse
	if _, err := c.do(ctx, http.MethodGet, p, nil, &res, nil); err != nil {
		return api.ListOrdersResponse{}, fmt.Errorf("list orders: %w", err)
	}
	return res, nil
}

// Orders ranges over every order f keeps, page by page (ListOrders, pages of
// api.MaxOrdersPerPage), oldest created first (newest with f.Newest); it stops at the first
// error, which it yields.
func (c *Client) Orders(ctx context.Context, f OrderFilter) iter.Seq2[ordercast.Order, error] {
	return func(yield func(ordercast.Order, error) bool) {
		cursor := ""
		for {
			page, err := c.ListOrders(ctx, f, cursor, api.MaxOrdersPerPage)
			if err != nil {
				yield(ordercast.Order{}, err)
				return
			}
			for _, o := range page.Orders {
				if !yield(o, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			cursor = page.Next
		}
	}
}

// CustomerOrder is one order of a customer's export, with its whole history.
type CustomerOrder struct {
	Order  ordercast.Order   `json:"order"`
	Events []ordercast.Event `json:"events"`
}

// ExportCustomer returns every order customer id has, ended ones too, oldest created first, each
// with its events: the answer to an access request (GDPR Art. 15). It reads GET
// /v1/orders?customer_id= page by page and each order's GET /v1/orders/{id}/events; admin and
// system tokens only. Orders purged by --retention, and those of an erasure, are not there.
func (c *Client) ExportCustomer(ctx context.Context, id string) ([]CustomerOrder, error) {
	out := []CustomerOrder{}
	for o, err := range c.Orders(ctx, OrderFilter{CustomerID: id}) {
		if err != nil {
			return nil, fmt.Errorf("export customer %s: %w", id, err)
		}
		evs, err := c.Events(ctx, o.ID, 0)
		if err != nil {
			return nil, fmt.Errorf("export customer %s: %w", id, err)
		}
		out = append(out, CustomerOrder{Order: o, Events: evs})
	}
	return out, nil
}

// EraseCustomer erases the personal data of customer id's ended orders (POST
// /v1/customers/{id}/erase; admin and system tokens only) and returns what changed. While an
// order of the customer is in progress it fails with ordercast.ECustomerActive and changes
// nothing. It is idempotent, so it is sent again while its outcome is unknown; a repeat answers
// zeros.
func (c *Client) EraseCustomer(ctx context.Context, id string) (api.EraseCustomerResponse, error) {
	var res api.EraseCustomerResponse
	if _, err := c.do(ctx, http.MethodPost, api.EraseCustomerPath(id), nil, &res, []CallOption{repeatable}); err != nil {
		return api.EraseCustomerResponse{}, fmt.Errorf("erase customer %s: %w", id, err)
	}
	return res, nil
}

// TrackingToken has a fresh tracking token made for order id (POST
// /v1/orders/{id}/tracking-token; admin, system and support tokens only), to send its customer
// their link again: one lost, or expired. It changes nothing, so it is sent again while its
// outcome is unknown. Its TrackingToken is empty on an open server.
func (c *Client) TrackingToken(ctx context.Context, id string) (api.TrackingTokenResponse, error) {
	var res api.TrackingTokenResponse
	if _, err := c.do(ctx, http.MethodPost, api.TrackingTokenPath(id), nil, &res, []CallOption{repeatable}); err != nil {
		return api.TrackingTokenResponse{}, fmt.Errorf("tracking token for %s: %w", id, err)
	}
	return res, nil
}

// Trail returns the way an order's courier came while the order showed it (GET
// /v1/orders/{id}/trail), oldest first, ending at its newest position: what a map opened
// mid-ride draws before the positions a watch brings. Its Trail is empty when the order shows
// no courier now (none assigned, not out for delivery, ended, or no fresh position).
func (c *Client) Trail(ctx context.Context, id string) (Trail, error) {
	var res Trail
	if _, err := c.do(ctx, http.MethodGet, api.TrailPath(id), nil, &res, nil); err != nil {
		return Trail{}, fmt.Errorf("get the trail of %s: %w", id, err)
	}
	return res, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// streamClient is httpClient without its Timeout, which bounds a response's body too: on a
// stream, which has no end, it would cut every connection at the same age, and the watch would
// reconnect and replay for ever. A watch bounds a connection by its idle guard instead.
func (c *Client) streamClient() *http.Client {
	hc := c.httpClient()
	if hc.Timeout == 0 {
		return hc
	}
	stream := *hc
	stream.Timeout = 0
	return &stream
}

// newRequest builds a request to path (which may carry a query) with the headers every call shares.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	return c.newRequestTo(ctx, c.BaseURL, method, path, body)
}

// newRequestTo is newRequest to another server than BaseURL, for a watch's failover.
func (c *Client) newRequestTo(ctx context.Context, base, method, path string, body io.Reader) (*http.Request, error) {
	if base == "" {
		return nil, errors.New("client: BaseURL is empty")
	}
	if !strings.HasPrefix(path, "/") {
		// Glued onto the base URL, it would extend its host name: the token sent elsewhere.
		return nil, fmt.Errorf("client: path %q does not start with /", path)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	token := c.Token
	if c.TokenSource != nil {
		if token, err = c.TokenSource(ctx); err != nil {
			return nil, &tokenSourceError{err}
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("User-Agent", "ordercast-client")
	return req, nil
}

// tokenSourceError is a Client.TokenSource that failed: the request was not sent.
type tokenSourceError struct{ err error }

func (e *tokenSourceError) Error() string { return "client: token source: " + e.err.Error() }
func (e *tokenSourceError) Unwrap() error { return e.err }

// closeBody drains a little of what is left so the connection can be reused, then closes.
func closeBody(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 4<<10))
	_ = b.Close()
}

// readError turns a non-2xx answer into an *Error. A body that is not the API's error JSON (a
// proxy's HTML page, say) still gets a code, derived from the status, so callers can match on it.
func readError(resp *http.Response) *Error {
	e := &Error{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var body api.ErrorBody
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.CurrentVersion = body.Error.Code, body.Error.Message, body.Error.CurrentVersion
		return e
	}
	e.Code = api.CodeForStatus(resp.StatusCode)
	e.Message = http.StatusText(resp.StatusCode)
	if s := strings.TrimSpace(string(raw)); s != "" && len(s) <= 200 {
		e.Message += ": " + s
	}
	return e
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date. Anything else, or a
// date in the past, is zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
