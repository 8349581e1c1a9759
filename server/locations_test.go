package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
)

// postLocations posts many positions with token tok (none on an open server) and returns the
// status and body.
func postLocations(t *testing.T, base, tok, body string) (int, []byte) {
	t.Helper()
	resp, b := call(t, "POST", base+api.PathLocations, tok, body)
	return resp.StatusCode, b
}

// positions is the body of a POST /v1/locations with n copies of position p.
func positions(n int, p string) string {
	return `{"positions":[` + strings.TrimSuffix(strings.Repeat(p+",", n), ",") + `]}`
}

func TestPostLocationsPermissions(t *testing.T) {
	t.Parallel()
	ls, tracking := newAuthLocationServer(t)
	for _, tt := range []permissionCase{
		{"system", actorToken(t, auth.RoleSystem, "dispatch"), http.StatusOK},
		{"admin", actorToken(t, auth.RoleAdmin, "support"), http.StatusOK},
		{"courier posting its own", actorToken(t, auth.RoleCourier, "c-1"), http.StatusForbidden},
		{"restaurant", actorToken(t, auth.RoleRestaurant, "r-1"), http.StatusForbidden},
		{"customer", actorToken(t, auth.RoleCustomer, "u-1"), http.StatusForbidden},
		{"customer's tracking token", tracking, http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	} {
		tt.check(t, func(t *testing.T) (int, []byte) {
			return postLocations(t, ls.URL(), tt.tok, `{"positions":[{"courier_id":"c-1","lat":52.5,"lng":13.4}]}`)
		})
	}
	// A token that may not send the request is refused before its body is read: a party's
	// token costs the server no parsing of a megabyte, here seen as 403, not 400 for the body.
	code, body := postLocations(t, ls.URL(), actorToken(t, auth.RoleCourier, "c-1"), `{"positions":[not JSON`)
	if code != http.StatusForbidden {
		t.Errorf("a courier's malformed request: %d %s, want 403 before the body is read", code, body)
	}
}

// TestPostLocationsPerPosition: each position of a request is judged alone, as the single post
// judges it, and answered in order; a refused one changes nothing, the others go through.
func TestPostLocationsPerPosition(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(_ *server.Server, tr *location.Tracker) {
		tr.Rate, tr.Burst = 0.001, 1 // one post per courier, then rate_limited
	})
	base := ls.URL()
	for _, o := range []struct{ id, courier string }{{"o-1", "c-1"}, {"o-2", "c-2"}} {
		mustCreate(t, base, o.id)
		ls.assign(t, o.id, o.courier)
		ls.mustCommit(t, o.id, ordercast.StatusOutForDelivery)
	}
	if got := mustPost(t, base, "c-2", 52.4, 13.3); got != 1 {
		t.Fatalf("c-2's first position reached %d orders, want 1", got)
	}
	code, body := postLocations(t, base, "", `{"positions":[
		{"courier_id":"c-1","lat":52.5,"lng":13.4,"speed_mps":5},
		{"courier_id":"c-1","lat":91,"lng":13.4},
		{"courier_id":"c-2","lat":52.6,"lng":13.5},
		{"courier_id":"c-9","lat":52.5,"lng":13.4},
		{"courier_id":"c-3","lng":13.4},
		{"courier_id":"","lat":52.5,"lng":13.4},
		{"courier_id":"c-1\u0000","lat":52.5,"lng":13.4}]}`)
	if code != http.StatusOK {
		t.Fatalf("status %d %s, want 200", code, body)
	}
	var res api.PostLocationsResponse
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	want := []string{"orders 1", "invalid_location", "rate_limited", "orders 0", "invalid_location", "invalid_argument", "invalid_argument"}
	if len(res.Results) != len(want) {
		t.Fatalf("%d results, want %d: %s", len(res.Results), len(want), body)
	}
	for i, r := range res.Results {
		var got string
		switch {
		case r.Orders != nil && r.Error == nil:
			got = fmt.Sprintf("orders %d", *r.Orders)
		case r.Error != nil && r.Orders == nil && r.Error.Message != "":
			got = r.Error.Code
		}
		if got != want[i] {
			t.Errorf("result %d = %q (%+v), want %q", i, got, r, want[i])
		}
	}
	// A courier over its budget is told when it may post again, as Retry-After tells a single
	// post (rate 0.001/s: 1,000 s); no other refusal says so.
	for i, r := range res.Results {
		if wantWait := want[i] == "rate_limited"; r.Error != nil && (r.Error.RetryAfterS >= 1) != wantWait {
			t.Errorf("result %d (%s) retry_after_s = %d; want it set only for rate_limited", i, r.Error.Code, r.Error.RetryAfterS)
		}
	}
	if r := res.Results[2]; r.Error == nil || r.Error.RetryAfterS < 990 || r.Error.RetryAfterS > 1000 {
		t.Errorf("rate-limited result %+v: want retry_after_s near 1000", r.Error)
	}
	if res.Accepted != 2 || res.Refused != 5 {
		t.Errorf("accepted %d, refused %d; want 2, 5", res.Accepted, res.Refused)
	}
	// The good position is o-1's newest; the invalid one after it and the rate-limited one of
	// c-2 changed nothing.
	for id, lat := range map[string]float64{"o-1": 52.5, "o-2": 52.4} {
		if l := ls.tracker.Latest(context.Background(), id); l == nil || l.Update.Lat != lat {
			t.Errorf("%s's newest position is %+v; want lat %v", id, l, lat)
		}
	}
	waitMetric(t, http.DefaultClient, base, 3, "ordercast_locations_accepted_total")
}

// TestPostLocationsRefusedWhole: a request that is wrong as a whole is refused with its code and
// takes nothing in, not even its good positions.
func TestPostLocationsRefusedWhole(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	mustCreate(t, base, "o-1")
	ls.assign(t, "o-1", "c-1")
	ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
	good := `{"courier_id":"c-1","lat":52.5,"lng":13.4}`
	for _, tt := range []struct {
		name, body string
		code       int
		errCode    string
	}{
		{"not JSON", `positions`, 400, "malformed_request"},
		{"trailing data", positions(1, good) + `{}`, 400, "malformed_request"},
		{"unknown field", `{"positions":[` + good + `],"fleet":"x"}`, 400, "malformed_request"},
		{"unknown field in a position", positions(1, `{"courier_id":"c-1","lat":52.5,"lng":13.4,"alt":3}`), 400, "malformed_request"},
		{"a position of the wrong type", `{"positions":[` + good + `,"here"]}`, 400, "malformed_request"},
		{"no positions", `{}`, 422, "invalid_argument"},
		{"empty positions", `{"positions":[]}`, 422, "invalid_argument"},
		{"one too many", positions(api.MaxLocationsPerRequest+1, good), 413, "too_many_positions"},
		{"body too large", positions(1, `{"courier_id":"c-1","lat":52.5`+strings.Repeat(" ", api.MaxLocationsBodyBytes)+`,"lng":13.4}`), 413, "body_too_large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := postLocations(t, base, "", tt.body)
			if code != tt.code || !strings.Contains(string(body), `"code":"`+tt.errCode+`"`) {
				t.Fatalf("status %d %s, want %d %s", code, body, tt.code, tt.errCode)
			}
		})
	}
	if l := ls.tracker.Latest(context.Background(), "o-1"); l != nil {
		t.Fatalf("after refused requests the newest position is %+v; want none", l)
	}
	// At the limit, every position is answered.
	code, body := postLocations(t, base, "", positions(api.MaxLocationsPerRequest, `{"courier_id":"c-1","lat":52.5,"lng":13.4}`))
	var res api.PostLocationsResponse
	if err := json.Unmarshal(body, &res); code != http.StatusOK || err != nil {
		t.Fatalf("status %d %.200s (%v), want 200", code, body, err)
	}
	if len(res.Results) != api.MaxLocationsPerRequest || res.Accepted+res.Refused != api.MaxLocationsPerRequest {
		t.Fatalf("%d results, %d accepted, %d refused; want %d answered", len(res.Results), res.Accepted, res.Refused, api.MaxLocationsPerRequest)
	}
	if l := ls.tracker.Latest(context.Background(), "o-1"); l == nil {
		t.Fatalf("after %d positions there is none", api.MaxLocationsPerRequest)
	}
}

// TestPostLocationsLaterPositionWithoutAtWins: positions of one request without at are stamped
// in request order, so of one courier's the last is the newest, on streams and the long poll,
// as when each is posted alone. Stamped all with the same time, the first one won.
func TestPostLocationsLaterPositionWithoutAtWins(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) { s.LocationInterval = 0 })
	base := ls.URL()
	r := ls.watchOnTheRoad(t)

	code, body := postLocations(t, base, "", `{"positions":[
		{"courier_id":"c-1","lat":52.51,"lng":13.4},
		{"courier_id":"c-1","lat":52.52,"lng":13.4},
		{"courier_id":"c-1","lat":52.53,"lng":13.4}]}`)
	if code != http.StatusOK {
		t.Fatalf("status %d %s, want 200", code, body)
	}
	var res api.PostLocationsResponse
	if err := json.Unmarshal(body, &res); err != nil || res.Accepted != 3 {
		t.Fatalf("answer %s (%v): want the three accepted", body, err)
	}
	code, body = do(t, "GET", base+"/v1/orders/o-1?wait=0", "", "")
	var lp struct{ Location *ordercast.LocationUpdate }
	if err := json.Unmarshal(body, &lp); code != http.StatusOK || err != nil || lp.Location == nil || lp.Location.Lat != 52.53 {
		t.Fatalf("long poll answer %d %s: want the third position, 52.53", code, body)
	}
	// The stream may be sent the first and second too; it ends on the third.
	for u := nextLocation(t, r, "3"); u.Lat != 52.53; u = nextLocation(t, r, "3") {
		if u.Lat != 52.51 && u.Lat != 52.52 {
			t.Fatalf("stream got position %v, want the request's", u.Lat)
		}
	}
}

// TestWrongTypeNamesTheFieldAsSent: a value of the wrong type is named by its place in the
// request, with the index of the array element it is in, and never by a Go type:
// encoding/json's own name for a position's lat was positions.PostLocationRequest.lat.
func TestWrongTypeNamesTheFieldAsSent(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	mustCreate(t, base, "o-1")
	good := `{"courier_id":"c-1","lat":52.5,"lng":13.4}`
	for _, tt := range []struct {
		name, path, body, field string
	}{
		{"a position's lat", api.PathLocations, `{"positions":[` + good + `,{"courier_id":"c-1","lat":"52.5","lng":13.4}]}`, "positions[1].lat"},
		{"a courier id", api.PathLocations, " \n" + `{"positions":[{"courier_id":7,"lat":1,"lng":1}]}`, "positions[0].courier_id"},
		{"an object for a number", api.PathLocations, `{"positions":[` + good + `,` + good + `,{"courier_id":"c-1","lat":{"a":[1]},"lng":1}]}`, "positions[2].lat"},
		{"an object for the array", api.PathLocations, `{"positions":{}}`, "positions"},
		{"a position that is not an object", api.PathLocations, `{"positions":[` + good + `,"here"]}`, "positions[1]"},
		{"a single position", "/v1/couriers/c-1/location", `{"lat":52.5,"lng":true}`, "lng"},
		{"a status", "/v1/orders/o-1/status", `{"status":7}`, "status"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, "POST", base+tt.path, "", tt.body)
			var e api.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusBadRequest || e.Error.Code != ordercast.EMalformed {
				t.Fatalf("status %d %s, want 400 malformed_request", resp.StatusCode, body)
			}
			if want := fmt.Sprintf("field %q has the wrong type", tt.field); e.Error.Message != want {
				t.Errorf("message %q, want %q", e.Error.Message, want)
			}
		})
	}
}
