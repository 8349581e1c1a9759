package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
)

// codes is every domain error code; a new one must be added here and to the table.
var codes = []string{
	ordercast.EInternal, ordercast.EMalformed, ordercast.EBodyTooLarge, ordercast.EUnsupportedMedia,
	ordercast.ENotFound, ordercast.EInvalid, ordercast.EInvalidID, ordercast.EInvalidStatus,
	ordercast.EInvalidDetails, ordercast.EInvalidTransition, ordercast.EVersionConflict,
	ordercast.EOrderExists, ordercast.EUnauthenticated, ordercast.EForbidden, ordercast.ERateLimited,
	ordercast.ETooManyStreams, ordercast.EUnavailable, ordercast.ETooManyPositions,
	ordercast.ETooManyChanges, ordercast.EInvalidLocation, ordercast.EIdempotencyKeyReused,
	ordercast.EIdempotencyKeyInUse, ordercast.EMethodNotAllowed, ordercast.EUpgradeRequired,
	ordercast.EMisdirected, ordercast.ETooManyAssignments, ordercast.EPreconditionFailed,
}

// TestCodeStatusTableBothWays proves the one table reads both ways: every code has its documented
// status, and reading a status back gives a code with that same status.
func TestCodeStatusTableBothWays(t *testing.T) {
	want := map[string]int{
		ordercast.EMalformed: 400, ordercast.EUnauthenticated: 401, ordercast.EForbidden: 403,
		ordercast.ENotFound: 404, ordercast.EInvalidTransition: 409, ordercast.EVersionConflict: 409,
		ordercast.EOrderExists: 409, ordercast.EBodyTooLarge: 413, ordercast.EUnsupportedMedia: 415,
		ordercast.EInvalid: 422, ordercast.EInvalidID: 422, ordercast.EInvalidStatus: 422,
		ordercast.EInvalidDetails: 422, ordercast.ERateLimited: 429, ordercast.ETooManyStreams: 503,
		ordercast.EUnavailable: 503, ordercast.EInternal: 500, ordercast.ETooManyPositions: 413,
		ordercast.ETooManyChanges: 413, ordercast.EInvalidLocation: 422, ordercast.EIdempotencyKeyReused: 422,
		ordercast.EIdempotencyKeyInUse: 409, ordercast.EMethodNotAllowed: 405, ordercast.EUpgradeRequired: 426,
		ordercast.EMisdirected: 421, ordercast.ETooManyAssignments: 409, ordercast.EPreconditionFailed: 412,
	}
	for _, code := range codes {
		st := api.HTTPStatus(code)
		if st != want[code] {
			t.Errorf("HTTPStatus(%q) = %d, want %d", code, st, want[code])
		}
		if back := api.CodeForStatus(st); api.HTTPStatus(back) != st {
			t.Errorf("CodeForStatus(%d) = %q, whose status is %d", st, back, api.HTTPStatus(back))
		}
	}
	for st, code := range map[int]string{
		422: ordercast.EInvalid, 503: ordercast.EUnavailable, 502: ordercast.EUnavailable,
		504: ordercast.EUnavailable, 418: ordercast.EInternal, 404: ordercast.ENotFound,
		405: ordercast.EMethodNotAllowed, 426: ordercast.EUpgradeRequired,
	} {
		if got := api.CodeForStatus(st); got != code {
			t.Errorf("CodeForStatus(%d) = %q, want %q", st, got, code)
		}
	}
	if got := api.HTTPStatus("no_such_code"); got != http.StatusInternalServerError {
		t.Errorf("HTTPStatus of an unknown code = %d, want 500", got)
	}
}

func TestErrorBodyHidesInternalErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ordercast.Errorf(ordercast.ENotFound, "no order x"), `{"error":{"code":"not_found","message":"no order x"}}`},
		{json.Unmarshal([]byte("{"), new(any)), `{"error":{"code":"internal","message":"internal error"}}`},
	} {
		b, err := json.Marshal(api.NewErrorBody(tc.err))
		if err != nil || string(b) != tc.want {
			t.Errorf("body of %v = %s, %v; want %s", tc.err, b, err, tc.want)
		}
	}
}

func TestPathsEscapeIDs(t *testing.T) {
	for got, want := range map[string]string{
		api.OrderPath("a/b"):        "/v1/orders/a%2Fb",
		api.StatusPath("o-1"):       "/v1/orders/o-1/status",
		api.EventsPath("o-1"):       "/v1/orders/o-1/events",
		api.StreamPath("o-1"):       "/v1/orders/o-1/stream",
		api.WebSocketPath("o-1"):    "/v1/orders/o-1/ws",
		api.ResumeQuery(0):          "",
		api.ResumeQuery(7):          "?lastEventId=7",
		api.ResumeAfterQuery(0):     "?lastEventId=0",
		api.LongPollQuery("30s", 2): "?wait=30s&after_version=2",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestSetStatusRequestTellsAbsentFromZero: the server refuses expected_version 0 but accepts its
// absence, so the type must keep the two apart both ways.
func TestSetStatusRequestTellsAbsentFromZero(t *testing.T) {
	var absent, zero api.SetStatusRequest
	if err := json.Unmarshal([]byte(`{"status":"ready"}`), &absent); err != nil || absent.ExpectedVersion != nil {
		t.Fatalf("absent: %+v, %v", absent, err)
	}
	if err := json.Unmarshal([]byte(`{"status":"ready","expected_version":0}`), &zero); err != nil || zero.ExpectedVersion == nil || *zero.ExpectedVersion != 0 {
		t.Fatalf("zero: %+v, %v", zero, err)
	}
	b, _ := json.Marshal(api.SetStatusRequest{Status: "ready"})
	if string(b) != `{"status":"ready"}` {
		t.Fatalf("encoded %s, want no expected_version", b)
	}
}

// TestSetCourierRequestTellsAbsentFromNull: only an explicit null unassigns, so the type keeps
// absent, null and an id apart both ways.
func TestSetCourierRequestTellsAbsentFromNull(t *testing.T) {
	for _, tc := range []struct {
		wire             string
		present, assigns bool
		courier          string
	}{
		{`{}`, false, false, ""},
		{`{"note":"n"}`, false, false, ""},
		{`{"courier_id":null}`, true, false, ""},
		{`{"courier_id":"c-1"}`, true, true, "c-1"},
		{`{"courier_id":""}`, true, true, ""}, // the server refuses it; the type keeps it
	} {
		var req api.SetCourierRequest
		if err := json.Unmarshal([]byte(tc.wire), &req); err != nil {
			t.Fatalf("%s: %v", tc.wire, err)
		}
		if id, assigns := req.CourierID.Courier(); req.CourierID.IsZero() == tc.present || assigns != tc.assigns || id != tc.courier {
			t.Errorf("%s: present %v, assigns %v %q; want %v, %v %q", tc.wire, !req.CourierID.IsZero(), assigns, id, tc.present, tc.assigns, tc.courier)
		}
	}
	var req api.SetCourierRequest
	if err := json.Unmarshal([]byte(`{"courier_id":7}`), &req); err == nil {
		t.Error("a number as courier_id decoded")
	}
	for want, req := range map[string]api.SetCourierRequest{
		`{}`:                   {},
		`{"courier_id":null}`:  {CourierID: api.Unassign()},
		`{"courier_id":"c-1"}`: {CourierID: api.AssignTo("c-1")},
	} {
		if b, err := json.Marshal(req); err != nil || string(b) != want {
			t.Errorf("encoded %s, %v; want %s", b, err, want)
		}
	}
}

// TestPathsMatchRoutes: each path helper lands on its route pattern in a ServeMux, so a server
// that registers the routes and a client that builds the paths meet.
func TestPathsMatchRoutes(t *testing.T) {
	mux := http.NewServeMux()
	routes := []string{api.RouteCreateOrder, api.RouteOrder, api.RouteSetStatus, api.RouteEvents,
		api.RouteStream, api.RouteWebSocket, api.RouteStreamAll}
	for _, r := range routes {
		mux.HandleFunc(r, func(http.ResponseWriter, *http.Request) {})
	}
	for _, tc := range []struct{ method, path, route string }{
		{"POST", api.PathOrders, api.RouteCreateOrder},
		{"GET", api.OrderPath("o:1.a_b-c") + api.LongPollQuery("30s", 1), api.RouteOrder},
		{"POST", api.StatusPath("o-1"), api.RouteSetStatus},
		{"GET", api.EventsPath("o-1") + "?" + api.ParamAfter + "=2", api.RouteEvents},
		{"GET", api.StreamPath("o-1") + api.ResumeQuery(3), api.RouteStream},
		{"GET", api.WebSocketPath("o-1"), api.RouteWebSocket},
		{"GET", api.PathStreamAll, api.RouteStreamAll},
	} {
		req, err := http.NewRequest(tc.method, "http://x"+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, pattern := mux.Handler(req); pattern != tc.route {
			t.Errorf("%s %s matched %q, want %q", tc.method, tc.path, pattern, tc.route)
		}
	}
}

// TestPositionAt: a fix built from two numbers says just them, 0 included (an absent coordinate
// is refused, a 0 one is the equator's), and nothing it does not know.
func TestPositionAt(t *testing.T) {
	for _, tt := range []struct {
		lat, lng float64
		want     string
	}{{52.5, 13.4, `{"lat":52.5,"lng":13.4}`}, {0, 0, `{"lat":0,"lng":0}`}} {
		b, err := json.Marshal(api.PositionAt(tt.lat, tt.lng))
		if err != nil || string(b) != tt.want {
			t.Errorf("PositionAt(%v, %v) = %s, %v; want %s", tt.lat, tt.lng, b, err, tt.want)
		}
	}
}
