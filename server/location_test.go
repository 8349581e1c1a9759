package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/internal/testutil"
	"github.com/ordercast/ordercast/location"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// locationServer is a test server that takes positions; configure may adjust the tracker and
// the server before Open.
type locationServer struct {
	*testServer
	tracker *location.Tracker
}

// watchOnTheRoad creates order o-1, gives it to courier c-1, who picks it up, and opens its
// stream past the pickup's event (seq 3): where a test of positions starts.
func (ls *locationServer) watchOnTheRoad(t *testing.T) *client.SSEReader {
	t.Helper()
	base := ls.URL()
	mustCreate(t, base, "o-1")
	ls.assign(t, "o-1", "c-1")
	ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
	_, r := openStream(t, context.Background(), http.DefaultClient, base, "o-1", "")
	nextCourier(t, r, 2) // a fresh stream names the courier first
	wantSeqStatus(t, next(t, r), 3, "out_for_delivery")
	return r
}

// assign makes courierID the order's courier, as dispatch does.
func (ls *locationServer) assign(t *testing.T, orderID, courierID string) {
	t.Helper()
	if _, _, _, err := ls.store.AssignCourier(context.Background(), ordercast.CourierChange{OrderID: orderID, CourierID: courierID}); err != nil {
		t.Fatalf("assign %s to %s: %v", orderID, courierID, err)
	}
}

// stampChangesBack makes s's store stamp the orders' changes two minutes back (as far back as a
// post's fix may be dated, --location-max-age), so that a test's fixes, dated up to a minute
// back to stand for a drive made in a moment, come after the pickup, as a drive's do: a fix taken
// before the order's last change reaches no order. Called while s is configured, before any
// write (the store's writer reads its clock after taking a write).
func stampChangesBack(s *server.Server) {
	s.Store.(*sqlite.Store).Now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
}

func newLocationServer(t *testing.T, hold holding, configure func(*server.Server, *location.Tracker)) *locationServer {
	t.Helper()
	ls := &locationServer{}
	ls.testServer = hold.newServer(t, func(s *server.Server) {
		ls.tracker = location.New(s.Hub, s.Store)
		ls.tracker.AssignmentsTTL = 0 // every post sees the latest assignment and status
		ls.tracker.Rate = 0
		s.Locations = ls.tracker
		if configure != nil {
			configure(s, ls.tracker)
		}
		if err := ls.tracker.Open(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ls.tracker.Close() })
	})
	return ls
}

// postLocation reports a position of courier cid with token tok (none on an open server) and
// returns the status and body.
func postLocation(t *testing.T, base, cid, tok, body string) (int, []byte) {
	t.Helper()
	resp, b := call(t, "POST", base+"/v1/couriers/"+cid+"/location", tok, body)
	return resp.StatusCode, b
}

// mustPost posts a position and returns how many orders it reached.
func mustPost(t *testing.T, base, cid string, lat, lng float64) int {
	t.Helper()
	code, body := postLocation(t, base, cid, "", fmt.Sprintf(`{"lat":%v,"lng":%v}`, lat, lng))
	if code != http.StatusOK {
		t.Fatalf("post position: %d %s", code, body)
	}
	var res struct{ Orders int }
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("post answer %s: %v", body, err)
	}
	return res.Orders
}

// nextAny reads the next event of a raw stream, whatever its type.
func nextAny(t *testing.T, r *client.SSEReader) client.SSEEvent {
	t.Helper()
	ev, err := r.Next()
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	return ev
}

// nextLocation reads the next event, which must be a location, and checks it moved no event id.
func nextLocation(t *testing.T, r *client.SSEReader, wantID string) ordercast.LocationUpdate {
	t.Helper()
	ev := nextAny(t, r)
	if ev.Type != "location" {
		t.Fatalf("event %q %s, want a location", ev.Type, ev.Data)
	}
	if ev.ID != wantID {
		t.Fatalf("last event id after a location = %q, want %q unchanged", ev.ID, wantID)
	}
	var u ordercast.LocationUpdate
	if err := json.Unmarshal([]byte(ev.Data), &u); err != nil {
		t.Fatalf("location %s: %v", ev.Data, err)
	}
	return u
}

// newAuthLocationServer starts a location server with auth on, and signs a customer's tracking
// token for order o-1.
func newAuthLocationServer(t *testing.T) (ls *locationServer, tracking string) {
	t.Helper()
	a := authority(t)
	ls = newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.Auth = &server.Auth{Tokens: a}
	})
	tracking, _, err := a.SignTracking("o-1", time.Time{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ls, tracking
}

// permissionCase is one row of a permission table: a token and the status it must get.
type permissionCase struct {
	name string
	tok  string
	want int
}

func TestPostLocationPermissions(t *testing.T) {
	t.Parallel()
	ls, tracking := newAuthLocationServer(t)
	for _, tt := range []permissionCase{
		{"own courier", actorToken(t, auth.RoleCourier, "c-1"), http.StatusOK},
		{"other courier", actorToken(t, auth.RoleCourier, "c-2"), http.StatusForbidden},
		{"courier without sub", actorToken(t, auth.RoleCourier, ""), http.StatusForbidden},
		{"restaurant", actorToken(t, auth.RoleRestaurant, "c-1"), http.StatusForbidden},
		{"customer's tracking token", tracking, http.StatusForbidden},
		{"admin", actorToken(t, auth.RoleAdmin, "support"), http.StatusOK},
		{"system", actorToken(t, auth.RoleSystem, "dispatch"), http.StatusOK},
		{"no token", "", http.StatusUnauthorized},
	} {
		tt.check(t, func(t *testing.T) (int, []byte) {
			return postLocation(t, ls.URL(), "c-1", tt.tok, `{"lat":52.5,"lng":13.4}`)
		})
	}
	// The token is judged before the body is read: one that may not post for the courier is
	// refused for that, whatever it sent, as is a path that names no courier.
	for _, tt := range []permissionCase{
		{"restaurant with a body that is not JSON", actorToken(t, auth.RoleRestaurant, "r-1"), http.StatusForbidden},
		{"other courier with a body that is not JSON", actorToken(t, auth.RoleCourier, "c-2"), http.StatusForbidden},
	} {
		tt.check(t, func(t *testing.T) (int, []byte) { return postLocation(t, ls.URL(), "c-1", tt.tok, `garbage`) })
	}
	permissionCase{"a bad courier id with a body that is not JSON", actorToken(t, auth.RoleAdmin, "support"), http.StatusUnprocessableEntity}.check(t,
		func(t *testing.T) (int, []byte) {
			return postLocation(t, ls.URL(), "c%20x", actorToken(t, auth.RoleAdmin, "support"), `garbage`)
		})
}

// check runs the case as a subtest: send must get the case's status, and a refusal an error
// body with a code.
func (tt permissionCase) check(t *testing.T, send func(t *testing.T) (int, []byte)) {
	t.Run(tt.name, func(t *testing.T) {
		code, body := send(t)
		if code != tt.want {
			t.Fatalf("status %d %s, want %d", code, body, tt.want)
		}
		if code != http.StatusOK && !strings.Contains(string(body), `"code"`) {
			t.Errorf("refusal without an error body: %s", body)
		}
	})
}

func TestPostLocationValidation(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	mustCreate(t, base, "o-1")
	ls.assign(t, "o-1", "c-1")
	ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
	now := time.Now().UTC()
	for _, tt := range []struct {
		name, body string
		code       int
		errCode    string
	}{
		{"lat over 90", `{"lat":90.5,"lng":0}`, 422, "invalid_location"},
		{"lat under -90", `{"lat":-91,"lng":0}`, 422, "invalid_location"},
		{"lng over 180", `{"lat":0,"lng":180.01}`, 422, "invalid_location"},
		{"lat missing", `{"lng":0}`, 422, "invalid_location"},
		{"lng missing", `{"lat":0}`, 422, "invalid_location"},
		{"both 0 (a phone with no fix)", `{"lat":0,"lng":0}`, 422, "invalid_location"},
		{"heading 360", `{"lat":52.5,"lng":13.4,"heading":360}`, 422, "invalid_location"},
		{"negative speed", `{"lat":52.5,"lng":13.4,"speed_mps":-1}`, 422, "invalid_location"},
		{"speed of a plane", `{"lat":52.5,"lng":13.4,"speed_mps":250}`, 422, "invalid_location"},
		{"accuracy 20 km", `{"lat":52.5,"lng":13.4,"accuracy_m":20000}`, 422, "invalid_location"},
		{"at the zero time (a clock never set)", `{"lat":52.5,"lng":13.4,"at":"0001-01-01T00:00:00Z"}`, 422, "invalid_location"},
		{"at in the future", fmt.Sprintf(`{"lat":52.5,"lng":13.4,"at":%q}`, now.Add(time.Minute).Format(time.RFC3339Nano)), 422, "invalid_location"},
		{"at too old", fmt.Sprintf(`{"lat":52.5,"lng":13.4,"at":%q}`, now.Add(-time.Hour).Format(time.RFC3339Nano)), 422, "invalid_location"},
		{"NaN", `{"lat":NaN,"lng":0}`, 400, "malformed_request"},
		{"huge number", `{"lat":1e400,"lng":0}`, 422, "invalid_location"}, // valid JSON, out of any range
		{"lat as a string", `{"lat":"52.5","lng":0}`, 400, "malformed_request"},
		{"unknown field", `{"lat":52.5,"lng":13.4,"alt":30}`, 400, "malformed_request"},
		{"courier id with a NUL", `{"lat":52.5,"lng":13.4}`, 422, "invalid_argument"},
		{"courier id not UTF-8", `{"lat":52.5,"lng":13.4}`, 422, "invalid_argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cid := "c-1"
			switch tt.name {
			case "courier id with a NUL":
				cid = "c%00x"
			case "courier id not UTF-8":
				cid = "c%FF"
			}
			code, body := postLocation(t, base, cid, "", tt.body)
			if code != tt.code || !strings.Contains(string(body), `"code":"`+tt.errCode+`"`) {
				t.Fatalf("status %d %s, want %d %s", code, body, tt.code, tt.errCode)
			}
		})
	}
	// Nothing was taken in: a new stream sees no position.
	if l := ls.tracker.Latest(context.Background(), "o-1"); l != nil {
		t.Fatalf("after refused posts the latest position is %v; want none", l)
	}
	if got := mustPost(t, base, "c-1", 52.5, 13.4); got != 1 {
		t.Fatalf("a good position reached %d orders, want 1", got)
	}
}

// TestBadPartyIDOneCode: a party id out of the alphabet or too long gets invalid_argument wherever
// it comes in, as a courier assigned, an order's restaurant or customer, a courier posting its
// position, or one position of POST /v1/locations; invalid_order_id is an order id's.
func TestBadPartyIDOneCode(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	mustCreate(t, base, "o-1")
	for _, bad := range []string{"c x", strings.Repeat("c", ordercast.MaxIDLength+1)} {
		js, _ := json.Marshal(bad)
		for _, tt := range []struct{ name, method, path, body string }{
			{"assigned courier", "PUT", "/v1/orders/o-1/courier", `{"courier_id":` + string(js) + `}`},
			{"restaurant_id", "POST", "/v1/orders", `{"id":"o-2","restaurant_id":` + string(js) + `}`},
			{"customer_id", "POST", "/v1/orders", `{"id":"o-3","customer_id":` + string(js) + `}`},
			{"courier posting", "POST", "/v1/couriers/" + url.PathEscape(bad) + "/location", `{"lat":52.5,"lng":13.4}`},
		} {
			resp, body := call(t, tt.method, base+tt.path, "", tt.body)
			var got api.ErrorBody
			if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusUnprocessableEntity || got.Error.Code != ordercast.EInvalid {
				t.Errorf("%s %q: %d %s, want 422 %s", tt.name, bad, resp.StatusCode, body, ordercast.EInvalid)
			}
		}
		resp, body := call(t, "POST", base+"/v1/locations", "", `{"positions":[{"courier_id":`+string(js)+`,"lat":52.5,"lng":13.4}]}`)
		var got api.PostLocationsResponse
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusOK || len(got.Results) != 1 ||
			got.Results[0].Error == nil || got.Results[0].Error.Code != ordercast.EInvalid {
			t.Errorf("POST /v1/locations with courier %q: %d %s, want 200 with one %s result", bad, resp.StatusCode, body, ordercast.EInvalid)
		}
	}
}

// TestBadPartyIDNamesItsField: the 422 for a bad party id sent in a request's field names that
// field, so a sender of two ids (an order's restaurant and customer) knows which one was wrong;
// the code stays invalid_argument (TestBadPartyIDOneCode).
func TestBadPartyIDNamesItsField(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	mustCreate(t, base, "o-1")
	const bad = `"c x"`
	for _, tt := range []struct{ field, method, path, body string }{
		{"restaurant_id", "POST", "/v1/orders", `{"id":"o-2","restaurant_id":` + bad + `,"customer_id":"u-1"}`},
		{"customer_id", "POST", "/v1/orders", `{"id":"o-3","restaurant_id":"r-1","customer_id":` + bad + `}`},
		{"courier_id", "PUT", "/v1/orders/o-1/courier", `{"courier_id":` + bad + `}`},
	} {
		resp, body := call(t, tt.method, base+tt.path, "", tt.body)
		var got api.ErrorBody
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusUnprocessableEntity ||
			got.Error.Code != ordercast.EInvalid || !strings.HasPrefix(got.Error.Message, tt.field+" ") {
			t.Errorf("%s %s with a bad %s: %d %s, want 422 %s naming %s", tt.method, tt.path, tt.field,
				resp.StatusCode, body, ordercast.EInvalid, tt.field)
		}
	}
	resp, body := call(t, "POST", base+"/v1/locations", "", `{"positions":[{"courier_id":`+bad+`,"lat":52.5,"lng":13.4}]}`)
	var got api.PostLocationsResponse
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusOK || len(got.Results) != 1 ||
		got.Results[0].Error == nil || got.Results[0].Error.Code != ordercast.EInvalid ||
		!strings.HasPrefix(got.Results[0].Error.Message, "courier_id ") {
		t.Errorf("POST /v1/locations with a bad courier_id: %d %s, want 200 with one %s result naming courier_id",
			resp.StatusCode, body, ordercast.EInvalid)
	}
}

// TestLocationOnlyWhileOutForDelivery: a position reaches an order's stream only while the order
// is out for delivery and assigned to the courier; it carries no id (the stream's last event id
// stays the last status's seq); none follows the terminal event.
func TestLocationOnlyWhileOutForDelivery(t *testing.T) {
	t.Parallel()
	bothHoldings(t, func(t *testing.T, hold holding) {
		ls := newLocationServer(t, hold, nil)
		base := ls.URL()
		mustCreate(t, base, "o-1")
		_, r := openStream(t, context.Background(), http.DefaultClient, base, "o-1", "")
		wantSeqStatus(t, next(t, r), 1, "placed")

		if got := mustPost(t, base, "c-1", 52.5, 13.4); got != 0 {
			t.Fatalf("a courier with no order reached %d", got)
		}
		ls.assign(t, "o-1", "c-1")
		if ev := nextAny(t, r); ev.ID != "2" || !strings.Contains(ev.Data, `"courier_id":"c-1"`) {
			t.Fatalf("got %q id %q %s, want the courier assignment, seq 2", ev.Type, ev.ID, ev.Data)
		}
		if got := mustPost(t, base, "c-1", 52.5, 13.4); got != 0 {
			t.Fatalf("a position before out_for_delivery reached %d orders", got)
		}
		mustSetStatus(t, base, "o-1", "out_for_delivery")
		wantSeqStatus(t, next(t, r), 3, "out_for_delivery")
		if got := mustPost(t, base, "c-1", 52.51, 13.41); got != 1 {
			t.Fatalf("a position out for delivery reached %d orders, want 1", got)
		}
		u := nextLocation(t, r, "3")
		if u.OrderID != "o-1" || u.Lat != 52.51 || u.Lng != 13.41 {
			t.Fatalf("location %+v, want o-1 at 52.51,13.41", u)
		}
		mustSetStatus(t, base, "o-1", "delivered")
		wantSeqStatus(t, next(t, r), 4, "delivered")
		if ev, err := r.Next(); err == nil {
			t.Fatalf("after the terminal event the stream sent %q %s", ev.Type, ev.Data)
		}
		if got := mustPost(t, base, "c-1", 52.52, 13.42); got != 0 {
			t.Fatalf("a position after delivery reached %d orders", got)
		}
	})
}

// TestAPositionThatReachesNoOrderSaysWhy: a position taken that reached no order says why, so a
// courier's app (or its developer) tells "keep posting" from "the phone's clock is off": no order
// at the stage that shows the courier; a newer fix taken already; a coarse fix held behind a fine
// one. One that reached an order says nothing of the kind; a request of many says it per
// position.
func TestAPositionThatReachesNoOrderSaysWhy(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	mustCreate(t, base, "o-1")
	ls.assign(t, "o-1", "c-1")
	now := time.Now()
	fix := func(lat float64, at time.Time, extra string) string {
		return fmt.Sprintf(`{"lat":%v,"lng":13.4,"at":%q%s}`, lat, at.Format(time.RFC3339Nano), extra)
	}
	for _, tc := range []struct {
		name, body, want string
		before           func()
	}{
		{"before the pickup", fix(52.5, now, ""), `{"orders":0,"missed":"no_order_shows_courier"}`, nil},
		{"out for delivery", fix(52.51, now.Add(time.Second), `,"accuracy_m":8`), `{"orders":1}`,
			func() { ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery) }},
		{"older than the one taken", fix(52.52, now, ""), `{"orders":0,"missed":"newer_fix_taken"}`, nil},
		{"coarse, a second after a fine one", fix(52.6, now.Add(2*time.Second), `,"accuracy_m":900`), `{"orders":0,"missed":"coarse_fix_held"}`, nil},
	} {
		if tc.before != nil {
			tc.before()
		}
		if code, body := postLocation(t, base, "c-1", "", tc.body); code != http.StatusOK || strings.TrimSpace(string(body)) != tc.want {
			t.Errorf("%s: %d %s, want 200 %s", tc.name, code, body, tc.want)
		}
	}
	code, body := postLocations(t, base, "", `{"positions":[`+
		`{"courier_id":"c-1","lat":52.53,"lng":13.4,"at":"`+now.Add(3*time.Second).Format(time.RFC3339Nano)+`"},`+
		`{"courier_id":"c-2","lat":52.53,"lng":13.4}]}`)
	if want := `"results":[{"orders":1},{"orders":0,"missed":"no_order_shows_courier"}]`; code != http.StatusOK || !strings.Contains(string(body), want) {
		t.Errorf("POST /v1/locations: %d %s, want 200 with %s", code, body, want)
	}
}

// TestLocationAtInMicroseconds: a position's at is sent to the microsecond, as a status event's
// is, whether the courier sent it with nanoseconds or the server stamped its arrival: a client
// reads both kinds of time in one form.
func TestLocationAtInMicroseconds(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.LocationInterval = 0 // every position reaches the stream, none held back by the cap
	})
	base := ls.URL()
	r := ls.watchOnTheRoad(t)
	// The wire's text, not a time.Time parsed from it: parsing hides how many digits came.
	wireAt := func() string {
		t.Helper()
		ev := nextAny(t, r)
		var u struct{ At string }
		if err := json.Unmarshal([]byte(ev.Data), &u); ev.Type != "location" || err != nil {
			t.Fatalf("event %q %s (%v), want a location", ev.Type, ev.Data, err)
		}
		return u.At
	}

	sent := time.Now().Add(-time.Second).Truncate(time.Second).Add(123456789 * time.Nanosecond).UTC()
	if code, body := postLocation(t, base, "c-1", "", fmt.Sprintf(`{"lat":1,"lng":1,"at":%q}`, sent.Format(time.RFC3339Nano))); code != http.StatusOK {
		t.Fatalf("post with at: %d %s", code, body)
	}
	if got, want := wireAt(), sent.Truncate(time.Microsecond).Format(time.RFC3339Nano); got != want {
		t.Errorf("at sent with nanoseconds came as %s, want %s", got, want)
	}
	mustPost(t, base, "c-1", 2, 2)
	got := wireAt()
	at, err := time.Parse(time.RFC3339Nano, got)
	if err != nil || !at.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("at stamped by the server came as %s (%v), want whole microseconds", got, err)
	}
}

// TestLocationConflatedUnderTheCap: a stream capped at one position per interval, sent a flood
// of positions within one interval, gets the newest of them and none of those in between, and
// no more than the cap allows (one per interval plus the one it lets come early).
func TestLocationConflatedUnderTheCap(t *testing.T) {
	t.Parallel()
	bothHoldings(t, func(t *testing.T, hold holding) {
		ls := newLocationServer(t, hold, func(s *server.Server, _ *location.Tracker) {
			s.LocationInterval = 300 * time.Millisecond
		})
		base := ls.URL()
		r := ls.watchOnTheRoad(t)
		mustPost(t, base, "c-1", 10, 10)
		if u := nextLocation(t, r, "3"); u.Lat != 10 {
			t.Fatalf("first position %v, want 10", u.Lat)
		}
		start := time.Now()
		for i := 1; i <= 50; i++ {
			mustPost(t, base, "c-1", 10+float64(i)/100, 10)
		}
		// The stream gets at most one position per interval, each newer than the last, and ends
		// on the newest: never a backlog of the fifty.
		got, prev := 0, 10.0
		for prev != 10.5 {
			u := nextLocation(t, r, "3")
			if u.Lat <= prev {
				t.Fatalf("position %v after %v: not the newest", u.Lat, prev)
			}
			prev = u.Lat
			got++
		}
		if most := int(time.Since(start)/(300*time.Millisecond)) + 2; got > most {
			t.Fatalf("the stream got %d positions in %v, want at most %d under the cap", got, time.Since(start), most)
		}
	})
}

// TestLocationFloodDoesNotDisturbStatus: statuses committed while positions pour in arrive
// exactly, once each and in order, and every position between them carries no id.
func TestLocationFloodDoesNotDisturbStatus(t *testing.T) {
	t.Parallel()
	bothHoldings(t, func(t *testing.T, hold holding) {
		ls := newLocationServer(t, hold, func(s *server.Server, tr *location.Tracker) {
			s.LocationInterval = 0 // every position that can go, goes
			tr.From = ordercast.StatusConfirmed
		})
		base := ls.URL()
		mustCreate(t, base, "o-1")
		ls.assign(t, "o-1", "c-1")
		_, r := openStream(t, context.Background(), http.DefaultClient, base, "o-1", "")
		wantSeqStatus(t, next(t, r), 1, ordercast.StatusPlaced) // a fresh stream opens with the status
		if ev := nextAny(t, r); ev.ID != "2" || !strings.Contains(ev.Data, `"courier_id":"c-1"`) {
			t.Fatalf("got %q id %q %s, want the courier assignment, seq 2", ev.Type, ev.ID, ev.Data)
		}

		ctx, stop := context.WithCancel(context.Background())
		var posted atomic.Int64
		var wg sync.WaitGroup
		wg.Go(func() {
			c := &http.Client{}
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/couriers/c-1/location",
					strings.NewReader(fmt.Sprintf(`{"lat":%v,"lng":1}`, float64(i%1000)/100)))
				req.Header.Set("Content-Type", "application/json")
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
					posted.Add(1)
				}
			}
		})
		defer func() { stop(); wg.Wait() }()
		statuses := []ordercast.Status{"confirmed", "preparing", "ready", "out_for_delivery", "delivered"}
		go func() {
			for _, st := range statuses {
				start := posted.Load()
				for posted.Load() < start+20 && ctx.Err() == nil {
					time.Sleep(time.Millisecond) // pacing the writer among the positions, not waiting for a result
				}
				mustSetStatus(t, base, "o-1", st)
			}
		}()
		seq, locations := int64(2), 0
		for {
			ev := nextAny(t, r)
			if ev.Type == "location" {
				if ev.ID != fmt.Sprint(seq) {
					t.Fatalf("a location moved the last event id to %q, want %d", ev.ID, seq)
				}
				locations++
				continue
			}
			got := decodeEvent(t, ev)
			seq++
			wantSeqStatus(t, got, seq, statuses[seq-3])
			if got.Status == "delivered" {
				break
			}
		}
		if ev, err := r.Next(); err == nil {
			t.Fatalf("after delivered the stream sent %q %s", ev.Type, ev.Data)
		}
		if locations == 0 {
			t.Fatalf("no position reached the stream among %d posted", posted.Load())
		}
	})
}

// TestLocationOnResume: a new stream, and one resuming with Last-Event-ID, get the newest fresh
// position right after their status backlog.
func TestLocationOnResume(t *testing.T) {
	t.Parallel()
	bothHoldings(t, func(t *testing.T, hold holding) {
		ls := newLocationServer(t, hold, nil)
		base := ls.URL()
		mustCreate(t, base, "o-1")
		ls.assign(t, "o-1", "c-1")
		ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
		mustPost(t, base, "c-1", 1, 1)
		mustPost(t, base, "c-1", 2, 2)

		_, r := openStream(t, context.Background(), http.DefaultClient, base, "o-1", "")
		nextCourier(t, r, 2)
		wantSeqStatus(t, next(t, r), 3, "out_for_delivery")
		if u := nextLocation(t, r, "3"); u.Lat != 2 {
			t.Fatalf("new stream got position %v, want the newest, 2", u.Lat)
		}
		_, r = openStream(t, context.Background(), http.DefaultClient, base, "o-1", "2")
		wantSeqStatus(t, next(t, r), 3, "out_for_delivery")
		nextLocation(t, r, "3")
		_, r = openStream(t, context.Background(), http.DefaultClient, base, "o-1", "3")
		// This reader saw no id field: a location must not give it one.
		if u := nextLocation(t, r, ""); u.Lat != 2 {
			t.Fatalf("up-to-date resume got position %v, want 2", u.Lat)
		}
	})
}

// TestLocationETA: an order with a drop-off gets the courier's distance to it and an ETA that
// shrinks as the courier comes closer, and nearby within the radius.
func TestLocationETA(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		s.LocationInterval = 0
		stampChangesBack(s) // its fixes are dated 30 s back and on
	})
	base := ls.URL()
	c := &client.Client{BaseURL: base}
	if _, err := c.CreateOrder(context.Background(), client.CreateOrderRequest{
		ID: "o-1", Dropoff: api.PlaceAt(52.52, 13.40),
	}); err != nil {
		t.Fatal(err)
	}
	ls.assign(t, "o-1", "c-1")
	ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
	_, r := openStream(t, context.Background(), http.DefaultClient, base, "o-1", "")
	nextCourier(t, r, 2)
	next(t, r)
	at := time.Now().Add(-30 * time.Second)
	var prev ordercast.LocationUpdate
	for i, lat := range []float64{52.50, 52.51, 52.5195} {
		body := fmt.Sprintf(`{"lat":%v,"lng":13.40,"speed_mps":6,"at":%q}`, lat, at.Add(time.Duration(i)*10*time.Second).Format(time.RFC3339Nano))
		if code, b := postLocation(t, base, "c-1", "", body); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, b)
		}
		u := nextLocation(t, r, "3")
		if u.DistanceM == nil || u.ETAS == nil {
			t.Fatalf("location without distance or ETA: %+v", u)
		}
		want := ordercast.DistanceM(ordercast.Point{Lat: lat, Lng: 13.40}, ordercast.Point{Lat: 52.52, Lng: 13.40})
		if d := *u.DistanceM - want; d > 1 || d < -1 {
			t.Errorf("distance_m %v, want %v", *u.DistanceM, want)
		}
		if i > 0 && *u.ETAS > *prev.ETAS {
			t.Errorf("ETA grew from %d to %d s as the courier came closer", *prev.ETAS, *u.ETAS)
		}
		if u.Nearby != (want <= ordercast.DefaultETAModel.NearbyM) {
			t.Errorf("nearby = %v at %v m", u.Nearby, want)
		}
		prev = u
	}
	if !prev.Nearby || *prev.ETAS != ordercast.DefaultETAModel.FloorS {
		t.Errorf("50 m away: nearby %v, eta %d; want nearby and the floor", prev.Nearby, *prev.ETAS)
	}
	// The long poll's answer carries the newest position.
	code, body := do(t, "GET", base+"/v1/orders/o-1?wait=0", "", "")
	var lp struct {
		Status   string
		Location *ordercast.LocationUpdate
	}
	if err := json.Unmarshal(body, &lp); code != 200 || err != nil || lp.Location == nil || lp.Location.Lat != 52.5195 {
		t.Fatalf("long poll answer %d %s: want the newest position", code, body)
	}
}

// TestLocationOnPartyStreams: a restaurant's and a customer's streams get the positions of their
// orders out for delivery, without ids (the party cursor is unchanged), and none of an order
// after it ended there.
func TestLocationOnPartyStreams(t *testing.T) {
	t.Parallel()
	bothHoldings(t, func(t *testing.T, hold holding) {
		ls := newLocationServer(t, hold, func(s *server.Server, _ *location.Tracker) { s.LocationInterval = 0 })
		base := ls.URL()
		c := &client.Client{BaseURL: base}
		for _, id := range []string{"o-1", "o-2"} {
			if _, err := c.CreateOrder(context.Background(), client.CreateOrderRequest{ID: id, RestaurantID: "luigis", CustomerID: "ana"}); err != nil {
				t.Fatal(err)
			}
		}
		ls.assign(t, "o-1", "c-1")
		ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
		for _, path := range []string{"/v1/restaurants/luigis/stream", "/v1/customers/ana/stream"} {
			t.Run(path, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("open %s: %v %v", path, resp, err)
				}
				defer resp.Body.Close()
				r := client.NewSSEReader(resp.Body)
				snap := nextAny(t, r)
				if snap.Type != "snapshot" {
					t.Fatalf("opened with %q, want the snapshot", snap.Type)
				}
				mustPost(t, base, "c-1", 52.5, 13.4)
				if u := nextLocation(t, r, snap.ID); u.OrderID != "o-1" || u.Lat != 52.5 {
					t.Fatalf("party stream got %+v, want o-1 at 52.5", u)
				}
			})
		}
		// A position that was on its way when the order ended (a post that read the courier's
		// orders just before) is dropped by a stream that has the end.
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/customers/ana/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := client.NewSSEReader(resp.Body)
		snap := nextAny(t, r)
		nextLocation(t, r, snap.ID) // o-1's newest position, right after the snapshot
		ls.mustCommit(t, "o-1", ordercast.StatusDelivered)
		if ev := nextAny(t, r); ev.Type != "status" || !strings.Contains(ev.Data, `"delivered"`) {
			t.Fatalf("got %q %s, want o-1 delivered", ev.Type, ev.Data)
		}
		ls.hub.PublishLocation(hub.NewLocation(ordercast.LocationUpdate{
			OrderID: "o-1", Lat: 1, At: time.Now(), Parties: []string{"customer:ana", "restaurant:luigis"},
		}))
		ls.mustCommit(t, "o-2", ordercast.StatusConfirmed)
		if ev := nextAny(t, r); ev.Type != "status" || !strings.Contains(ev.Data, `"o-2"`) {
			t.Fatalf("after o-1 ended the stream sent %q %s, want o-2's change", ev.Type, ev.Data)
		}
		// A stream opened after the end never heard of o-1: a late position of it (from a node
		// that had not yet heard of the end) is dropped all the same.
		r = openParty(t, base, "/v1/customers/ana/stream", "")
		if snap := nextAny(t, r); snap.Type != "snapshot" || strings.Contains(snap.Data, `"o-1"`) {
			t.Fatalf("opened with %q %s, want a snapshot without o-1", snap.Type, snap.Data)
		}
		ls.tracker.ReceiveLocations([]ordercast.LocationUpdate{{
			OrderID: "o-1", CourierID: "c-1", Lat: 9, Lng: 9, At: time.Now(),
			Parties: []string{"customer:ana", "restaurant:luigis", "courier:c-1"},
		}})
		// A stream writes the positions it takes after the statuses it takes with them: the
		// second change shows what came with the first.
		ls.mustCommit(t, "o-2", ordercast.StatusPreparing)
		for _, want := range []ordercast.Status{ordercast.StatusPreparing, ordercast.StatusReady} {
			if ev := nextAny(t, r); ev.Type != "status" || !strings.Contains(ev.Data, `"`+string(want)+`"`) {
				t.Fatalf("a stream opened after o-1 ended sent %q %s, want o-2 %s", ev.Type, ev.Data, want)
			}
			if want == ordercast.StatusPreparing {
				ls.mustCommit(t, "o-2", ordercast.StatusReady)
			}
		}
	})
}

// TestLocationOnWebSocket: a WebSocket watcher gets the newest position right after its status,
// then each new one, as JSON messages typed "location", with lat and lng and no seq; a status
// event's message has a seq and no type, as it always had.
func TestLocationOnWebSocket(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) { s.LocationInterval = 0 })
	base := ls.URL()
	mustCreate(t, base, "o-1")
	ls.assign(t, "o-1", "c-1")
	ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
	mustPost(t, base, "c-1", 1, 1)
	c := dialWS(t, base, "o-1", "")
	read := func() map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var msg map[string]any
		if err := json.Unmarshal(data, &msg); err != nil {
			t.Fatalf("message %s: %v", data, err)
		}
		return msg
	}
	if msg := read(); msg["seq"] != 2.0 || msg["kind"] != "courier" || msg["courier_id"] != "c-1" {
		t.Fatalf("message %v, want the courier's assignment, seq 2", msg)
	}
	if msg := read(); msg["seq"] != 3.0 || msg["status"] != "out_for_delivery" || msg["type"] != nil {
		t.Fatalf("message %v, want the status event, seq 3, without a type", msg)
	}
	for _, want := range []float64{1, 2} {
		if want == 2 {
			mustPost(t, base, "c-1", 2, 2)
		}
		msg := read()
		if msg["type"] != "location" || msg["lat"] != want || msg["seq"] != nil || msg["courier_id"] != "c-1" {
			t.Fatalf("message %v, want a position of c-1 at %v typed location, without a seq", msg, want)
		}
	}
}

// openParty opens a party stream at path, resuming after lastEventID when it is not empty.
func openParty(t *testing.T, base, path, lastEventID string) *client.SSEReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("open %s: %v %v", path, resp, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return client.NewSSEReader(resp.Body)
}

// wantPositions reads the next locations, one per order in ids order, each at lat, with the
// party cursor left at cursor.
func wantPositions(t *testing.T, r *client.SSEReader, cursor string, ids []string, lats []float64) {
	t.Helper()
	for i, id := range ids {
		if u := nextLocation(t, r, cursor); u.OrderID != id || u.Lat != lats[i] {
			t.Fatalf("position %+v, want %s at %v", u, id, lats[i])
		}
	}
}

// TestLocationOnPartyStreamOpenAndResume: a restaurant's board gets the newest fresh position of
// each of its orders out for delivery right after its snapshot, after an up-to-date resume, and
// after a resume's backlog; the opening's positions count against the stream's cap.
func TestLocationOnPartyStreamOpenAndResume(t *testing.T) {
	t.Parallel()
	bothHoldings(t, func(t *testing.T, hold holding) {
		ls := newLocationServer(t, hold, func(s *server.Server, _ *location.Tracker) { s.LocationInterval = time.Hour })
		base := ls.URL()
		c := &client.Client{BaseURL: base}
		for _, id := range []string{"o-1", "o-2", "o-3"} {
			if _, err := c.CreateOrder(context.Background(), client.CreateOrderRequest{ID: id, RestaurantID: "luigis"}); err != nil {
				t.Fatal(err)
			}
		}
		ls.assign(t, "o-1", "c-1")
		ls.assign(t, "o-2", "c-2")
		ls.assign(t, "o-3", "c-3")
		ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
		ls.mustCommit(t, "o-2", ordercast.StatusOutForDelivery)
		mustPost(t, base, "c-1", 1, 1)
		mustPost(t, base, "c-2", 2, 2)
		mustPost(t, base, "c-3", 3, 3) // o-3 is not out for delivery: not shown

		const path = "/v1/restaurants/luigis/stream"
		r := openParty(t, base, path, "")
		snap := nextAny(t, r)
		if snap.Type != "snapshot" {
			t.Fatalf("opened with %q, want the snapshot", snap.Type)
		}
		wantPositions(t, r, snap.ID, []string{"o-1", "o-2"}, []float64{1, 2})
		// The cap lets one position come early, then holds the next back: the next thing the
		// board gets after the early one is o-3's change.
		mustPost(t, base, "c-1", 1.25, 1)
		wantPositions(t, r, snap.ID, []string{"o-1"}, []float64{1.25})
		mustPost(t, base, "c-1", 1.5, 1)
		ls.mustCommit(t, "o-3", ordercast.StatusConfirmed)
		ev := nextAny(t, r)
		if ev.Type != "status" || !strings.Contains(ev.Data, `"o-3"`) {
			t.Fatalf("after the opening's positions the board got %q %s, want o-3 confirmed (the cap holds positions back)", ev.Type, ev.Data)
		}

		// Resumed up to date: the newest positions at once.
		r = openParty(t, base, path, ev.ID)
		wantPositions(t, r, "", []string{"o-1", "o-2"}, []float64{1.5, 2})
		// Resumed from the snapshot: the backlog (o-3 confirmed), then the positions.
		r = openParty(t, base, path, snap.ID)
		if ev := nextAny(t, r); ev.Type != "status" || !strings.Contains(ev.Data, `"o-3"`) {
			t.Fatalf("resume from %s opened with %q %s, want o-3 confirmed", snap.ID, ev.Type, ev.Data)
		}
		wantPositions(t, r, ev.ID, []string{"o-1", "o-2"}, []float64{1.5, 2})
	})
}

// TestLocationNeverShowsTheOldCourier: once an order is reassigned, no stream shows the old
// courier's position, wherever it comes from: a position kept before the reassignment (here one
// arriving late from another node, as the cluster's table would give it), nor one published
// after. New and open per-order streams, party streams and the long poll wait for the new
// courier's.
func TestLocationNeverShowsTheOldCourier(t *testing.T) {
	t.Parallel()
	bothHoldings(t, func(t *testing.T, hold holding) {
		ls := newLocationServer(t, hold, func(s *server.Server, _ *location.Tracker) { s.LocationInterval = 0 })
		base := ls.URL()
		c := &client.Client{BaseURL: base}
		if _, err := c.CreateOrder(context.Background(), client.CreateOrderRequest{ID: "o-1", RestaurantID: "luigis"}); err != nil {
			t.Fatal(err)
		}
		ls.assign(t, "o-1", "c-1")
		ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
		mustPost(t, base, "c-1", 1, 1)
		_, open := openStream(t, context.Background(), http.DefaultClient, base, "o-1", "")
		nextCourier(t, open, 2)
		wantSeqStatus(t, next(t, open), 3, "out_for_delivery")
		nextLocation(t, open, "3")
		board := openParty(t, base, "/v1/restaurants/luigis/stream", "")
		nextLocation(t, board, nextAny(t, board).ID) // after the snapshot

		ls.assign(t, "o-1", "c-2")
		for _, r := range []*client.SSEReader{open, board} {
			if ev := nextAny(t, r); ev.Type != "courier" || !strings.Contains(ev.Data, `"c-2"`) {
				t.Fatalf("got %q %s, want the reassignment to c-2", ev.Type, ev.Data)
			}
		}
		// This node forgets c-1's position of the order; then one arrives late from another node.
		testutil.WaitFor(t, "the tracker to forget o-1's position", func() bool {
			l := ls.tracker.Latest(context.Background(), "o-1")
			return l == nil
		})
		old := ordercast.LocationUpdate{OrderID: "o-1", CourierID: "c-1", Lat: 9, At: time.Now(), Parties: []string{"restaurant:luigis"}}
		ls.tracker.ReceiveLocations([]ordercast.LocationUpdate{old})
		code, body := do(t, "GET", base+"/v1/orders/o-1?wait=0", "", "")
		if code != http.StatusOK || strings.Contains(string(body), `"location"`) {
			t.Fatalf("long poll answer %d %s: want no position of c-1", code, body)
		}
		_, fresh := openStream(t, context.Background(), http.DefaultClient, base, "o-1", "")
		wantSeqStatus(t, next(t, fresh), 3, ordercast.StatusOutForDelivery) // the last status first
		if ev := nextAny(t, fresh); ev.Type != "courier" {
			t.Fatalf("new stream went on with %q %s, want the reassignment", ev.Type, ev.Data)
		}
		freshBoard := openParty(t, base, "/v1/restaurants/luigis/stream", "")
		nextAny(t, freshBoard) // the snapshot

		mustPost(t, base, "c-2", 2, 2)
		for _, r := range []*client.SSEReader{open, board, fresh, freshBoard} {
			if ev := nextAny(t, r); ev.Type != "location" || !strings.Contains(ev.Data, `"courier_id":"c-2"`) {
				t.Fatalf("got %q %s, want c-2's position and none of c-1", ev.Type, ev.Data)
			}
		}
	})
}

// brokenBus is a cluster bus whose table cannot be read.
type brokenBus struct{}

func (brokenBus) Send([]ordercast.LocationUpdate) {}
func (brokenBus) Latest(context.Context, []string) ([]ordercast.LocationUpdate, error) {
	return nil, errors.New("canceling statement due to statement timeout")
}

// TestStatusWhenPositionsCannotBeRead: a position is extra to the status, so a stream and a long
// poll of an order out for delivery open with their status when the cluster's positions cannot
// be read, rather than fail.
func TestStatusWhenPositionsCannotBeRead(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(_ *server.Server, tr *location.Tracker) { tr.Bus = brokenBus{} })
	base := ls.URL()
	mustCreate(t, base, "o-1")
	ls.assign(t, "o-1", "c-1")
	ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
	resp := rawStreamWith(t, t.Context(), http.DefaultClient, base, "o-1", "")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d, want 200", resp.StatusCode)
	}
	r := client.NewSSEReader(resp.Body)
	nextCourier(t, r, 2) // a fresh stream names the courier first
	if ev := nextAny(t, r); ev.Type != "status" || !strings.Contains(ev.Data, `"out_for_delivery"`) {
		t.Fatalf("stream opened with %q %s, want the status", ev.Type, ev.Data)
	}
	if code, body := do(t, "GET", base+"/v1/orders/o-1?wait=0", "", ""); code != http.StatusOK || !strings.Contains(string(body), `"out_for_delivery"`) {
		t.Fatalf("long poll: %d %s, want 200 with the order", code, body)
	}
}

// TestPostLocationRetryAfterAtLowRate: a courier over its budget is told in Retry-After when
// the next position is allowed: at --location-rate 0.1 that is about 10 s away, not 1.
func TestPostLocationRetryAfterAtLowRate(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(_ *server.Server, tr *location.Tracker) {
		tr.Rate, tr.Burst = 0.1, 1
	})
	base := ls.URL()
	mustPost(t, base, "c-1", 52.5, 13.4)
	resp, body := call(t, "POST", base+"/v1/couriers/c-1/location", "", `{"lat":52.5,"lng":13.4}`)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second post at 0.1 a second: %d %s, want 429", resp.StatusCode, body)
	}
	// The token refills in 10 s, less the moments since the first post; rounded up, 10.
	if got := resp.Header.Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After %q, want 10", got)
	}
}

// newStoreAwayLocationServer is a server whose tracker, configured by configure, reads the
// couriers' orders through a store that is away while the returned StoreAway is Down; order o-1
// is out for delivery with courier c-1. It returns the server's URL.
func newStoreAwayLocationServer(t *testing.T, configure func(*location.Tracker)) (string, *testutil.StoreAway) {
	t.Helper()
	as := &testutil.StoreAway{}
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) {
		as.Orders = s.Store
		tr := location.New(s.Hub, as)
		configure(tr)
		if err := tr.Open(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		s.Locations = tr
	})
	base := ls.URL()
	mustCreate(t, base, "o-1")
	ls.assign(t, "o-1", "c-1")
	ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
	return base, as
}

// TestPostLocationStoreAwayCostsNoBudget: a post refused with 503 because the courier's orders
// could not be read spends none of the courier's budget, so its retry once the store is back is
// taken, not refused with 429; the budget still holds after that.
func TestPostLocationStoreAwayCostsNoBudget(t *testing.T) {
	t.Parallel()
	base, as := newStoreAwayLocationServer(t, func(tr *location.Tracker) { tr.Rate, tr.Burst = 0.001, 1 })
	as.Down.Store(true)
	for i := range 2 {
		resp, body := call(t, "POST", base+"/v1/couriers/c-1/location", "", `{"lat":52.5,"lng":13.4}`)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("post %d while the store is away: %d %s (Retry-After %q), want 503 with Retry-After", i, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	as.Down.Store(false)
	if got := mustPost(t, base, "c-1", 52.5, 13.4); got != 1 {
		t.Fatalf("the retry once the store is back reached %d orders, want 1", got)
	}
	if code, body := postLocation(t, base, "c-1", "", `{"lat":52.5,"lng":13.4}`); code != http.StatusTooManyRequests {
		t.Fatalf("a second post in a burst of 1: %d %s, want 429", code, body)
	}
}

// TestPostLocationsStoreAwayIs503: positions of which none could be taken in because the
// couriers' orders could not be read are refused whole, 503 with Retry-After, as a single post
// is: a caller that retries failures only would otherwise take the 200 as an answer and drop
// them. Once the store is back, the same request is taken in.
func TestPostLocationsStoreAwayIs503(t *testing.T) {
	t.Parallel()
	base, as := newStoreAwayLocationServer(t, func(tr *location.Tracker) { tr.AssignmentsTTL, tr.Rate = 0, 0 })
	body := `{"positions":[{"courier_id":"c-1","lat":52.5,"lng":13.4},{"courier_id":"c-2","lat":52.6,"lng":13.5}]}`

	as.Down.Store(true)
	resp, got := call(t, "POST", base+api.PathLocations, "", body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(got), `"unavailable"`) {
		t.Fatalf("positions while the store is away: %d %s (Retry-After %q), want 503 unavailable with Retry-After", resp.StatusCode, got, resp.Header.Get("Retry-After"))
	}
	as.Down.Store(false)
	code, got := postLocations(t, base, "", body)
	var res api.PostLocationsResponse
	if err := json.Unmarshal(got, &res); code != http.StatusOK || err != nil || res.Accepted != 2 {
		t.Fatalf("the same positions once the store is back: %d %s (%v), want 200 with both accepted", code, got, err)
	}
}

// TestARestaurantCannotHandAnOrderToACourierToFollowIt: a courier's position reaches an order's
// watchers, its restaurant included, while the order is out for delivery, a stage the courier
// reaches itself by picking the order up. A restaurant that could give an order already out for
// delivery to any courier it names would follow that courier on its rounds for other restaurants,
// who never agreed: it may choose the courier only before (nor take it away after: see
// TestARestaurantsPartEndsAtThePickup). Dispatch
// (a system or admin token) may reassign at any stage. A server that shows positions earlier
// (--location-from) shows them from the assignment on: there only dispatch assigns.
func TestARestaurantCannotHandAnOrderToACourierToFollowIt(t *testing.T) {
	t.Parallel()
	sys := actorToken(t, auth.RoleSystem, "dispatch")
	rest := actorToken(t, auth.RoleRestaurant, "r-1")
	courier := actorToken(t, auth.RoleCourier, "c-1")
	victim := actorToken(t, auth.RoleCourier, "c-victim")
	step := func(t *testing.T, base, method, path, tok, body string, want int) {
		t.Helper()
		resp, b := call(t, method, base+path, tok, body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
	}
	t.Run("shown from out_for_delivery", func(t *testing.T) {
		t.Parallel()
		ls, _ := newAuthLocationServer(t)
		base := ls.URL()
		step(t, base, "POST", "/v1/orders", sys, `{"id":"o-9","restaurant_id":"r-1","dropoff":{"lat":52.5,"lng":13.4}}`, http.StatusCreated)
		step(t, base, "POST", "/v1/orders/o-9/status", rest, `{"status":"confirmed"}`, http.StatusOK)
		step(t, base, "PUT", "/v1/orders/o-9/courier", rest, `{"courier_id":"c-1"}`, http.StatusOK) // before pickup: the restaurant's choice
		step(t, base, "POST", "/v1/orders/o-9/status", courier, `{"status":"out_for_delivery"}`, http.StatusOK)
		step(t, base, "PUT", "/v1/orders/o-9/courier", rest, `{"courier_id":"c-victim"}`, http.StatusConflict)
		if code, body := postLocation(t, base, "c-victim", victim, `{"lat":52.51,"lng":13.41}`); code != http.StatusOK || !strings.Contains(string(body), `"orders":0`) {
			t.Errorf("the courier the restaurant named posts: %d %s; want its position to reach no order", code, body)
		}
		if _, body := call(t, "GET", base+"/v1/orders/o-9", sys, ""); !strings.Contains(string(body), `"courier_id":"c-1"`) {
			t.Errorf("the order after the refused reassignment: %s; want c-1 its courier still", body)
		}
		step(t, base, "PUT", "/v1/orders/o-9/courier", sys, `{"courier_id":null}`, http.StatusOK)
		step(t, base, "PUT", "/v1/orders/o-9/courier", rest, `{"courier_id":"c-victim"}`, http.StatusConflict) // nor to an order with none
		step(t, base, "PUT", "/v1/orders/o-9/courier", sys, `{"courier_id":"c-2"}`, http.StatusOK)             // dispatch reassigns
	})
	t.Run("shown from confirmed", func(t *testing.T) {
		t.Parallel()
		a := authority(t)
		ls := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
			s.Auth = &server.Auth{Tokens: a}
			tr.From = ordercast.StatusConfirmed
		})
		base := ls.URL()
		step(t, base, "POST", "/v1/orders", sys, `{"id":"o-9","restaurant_id":"r-1"}`, http.StatusCreated)
		step(t, base, "PUT", "/v1/orders/o-9/courier", rest, `{"courier_id":"c-victim"}`, http.StatusForbidden)
		step(t, base, "PUT", "/v1/orders/o-9/courier", sys, `{"courier_id":"c-1"}`, http.StatusOK)
	})
}

// TestTheBoardOffersAssignmentAsTheServerAllows: a restaurant's board carries the stage from which
// its token may no longer choose a courier, for its script to offer Assign and Unassign only
// before it (TestRestaurantBoardOffersWhatTheRestaurantMay): out_for_delivery, where positions
// show from there, and never where they show earlier and only dispatch assigns; and the stage
// from which it may not cancel either, out_for_delivery wherever positions show from.
func TestTheBoardOffersAssignmentAsTheServerAllows(t *testing.T) {
	t.Parallel()
	tok := actorToken(t, auth.RoleRestaurant, "r-1")
	for _, tc := range []struct {
		from ordercast.Status
		want string
	}{
		{"", `data-assign-before="out_for_delivery" data-until="out_for_delivery"`},
		{ordercast.StatusReady, `data-assign-before="never" data-until="out_for_delivery"`},
	} {
		a := authority(t)
		ls := newLocationServer(t, false, func(s *server.Server, tr *location.Tracker) {
			s.Auth = &server.Auth{Tokens: a}
			tr.From = tc.from
		})
		if resp, page := visitWithCookie(t, ls.URL(), "/restaurants/r-1", tok); resp.StatusCode != http.StatusOK || !strings.Contains(page, tc.want) {
			t.Errorf("--location-from %q: the board (%d) lacks %s", tc.from, resp.StatusCode, tc.want)
		}
	}
}

// TestAFixFromBeforeTheOrdersChangeReachesNoOne: a fix measured before the order's pickup, or
// before its courier was given it, more than the clocks' tolerance (5 s) before, is shown to no
// one: where a courier was before it had the order (a backlog its app flushes after a tunnel, a
// new courier's last fix of its previous round, maybe at another customer's door) is not the
// order's customer's to see. It is answered 200, reaching no order, and says why; a fix within the
// tolerance, and the next fresh one, reach it.
func TestAFixFromBeforeTheOrdersChangeReachesNoOne(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) { s.LocationInterval = 0 })
	base := ls.URL()
	r := ls.watchOnTheRoad(t)
	post := func(cid string, lat float64, ago time.Duration) api.PostLocationResponse {
		t.Helper()
		body := fmt.Sprintf(`{"lat":%v,"lng":13.4,"at":%q}`, lat, time.Now().Add(-ago).Format(time.RFC3339Nano))
		code, b := postLocation(t, base, cid, "", body)
		var res api.PostLocationResponse
		if err := json.Unmarshal(b, &res); err != nil || code != http.StatusOK {
			t.Fatalf("post: %d %s", code, b)
		}
		return res
	}
	wantMissed := func(res api.PostLocationResponse, what string) {
		t.Helper()
		if res.Orders != 0 || res.Missed != string(location.MissedBeforeChange) {
			t.Errorf("%s: %+v, want no order reached, missed %s", what, res, location.MissedBeforeChange)
		}
	}
	o, err := ls.store.Order(t.Context(), "o-1")
	if err != nil {
		t.Fatal(err)
	}
	before := func(d time.Duration) time.Duration { return time.Since(o.UpdatedAt) + d } // d before the pickup
	wantMissed(post("c-1", 52.50, before(6*time.Second)), "a fix from 6 s before the pickup")
	if res := post("c-1", 52.51, before(2*time.Second)); res.Orders != 1 {
		t.Errorf("a fix from 2 s before the pickup: %+v, want it to reach the order", res)
	}
	if u := nextLocation(t, r, "3"); u.Lat != 52.51 {
		t.Fatalf("the stream's first position is at %v, want 52.51: the one from before the pickup went out", u.Lat)
	}

	ls.assign(t, "o-1", "c-2") // dispatch hands the order on, out for delivery
	if ev := nextAny(t, r); ev.ID != "4" {
		t.Fatalf("got %q id %q, want the reassignment, seq 4", ev.Type, ev.ID)
	}
	wantMissed(post("c-2", 52.52, 30*time.Second), "the new courier's fix from 30 s before it had the order")
	if res := post("c-2", 52.53, 0); res.Orders != 1 {
		t.Errorf("the new courier's fresh fix: %+v, want it to reach the order", res)
	}
	if u := nextLocation(t, r, "4"); u.Lat != 52.53 || u.CourierID != "c-2" {
		t.Fatalf("the stream's next position is c-2's at %v (%s), want c-2's at 52.53", u.Lat, u.CourierID)
	}
}

// TestAFixPostedAgainReachesItsOrdersOnce: a courier's app that posts a fix again, the answer to
// the first lost, is answered as the first was (the orders it reached), not told that a newer fix
// was taken. (That the watchers get it once the tracker's own test says, where no conflation
// can hide a second: TestAFixBeforeTheOrdersChangeIsJudgedOnlyWhereItCan.)
func TestAFixPostedAgainReachesItsOrdersOnce(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, func(s *server.Server, _ *location.Tracker) { s.LocationInterval = 0 })
	base := ls.URL()
	r := ls.watchOnTheRoad(t)
	fix := fmt.Sprintf(`{"lat":52.51,"lng":13.4,"at":%q}`, time.Now().Format(time.RFC3339Nano))
	post := func(i int) {
		t.Helper()
		if code, b := postLocation(t, base, "c-1", "", fix); code != http.StatusOK || strings.TrimSpace(string(b)) != `{"orders":1}` {
			t.Fatalf("post %d of the same fix: %d %s, want 200 {\"orders\":1}", i, code, b)
		}
	}
	post(1)
	if u := nextLocation(t, r, "3"); u.Lat != 52.51 {
		t.Fatalf("the stream's position is at %v, want 52.51", u.Lat)
	}
	post(2)
}

// TestAStreamAsksForFewerPositions: a client saving data (a phone on a slow or metered network)
// asks its stream for a position at most every location_interval; it gets the newest at that
// pace, never a backlog, while a stream beside it that did not ask gets every one. A value past
// api.MaxLocationInterval, or none a duration, is 422 and opens nothing.
func TestAStreamAsksForFewerPositions(t *testing.T) {
	t.Parallel()
	bothHoldings(t, func(t *testing.T, hold holding) {
		ls := newLocationServer(t, hold, func(s *server.Server, _ *location.Tracker) { s.LocationInterval = 0 })
		base := ls.URL()
		every := ls.watchOnTheRoad(t) // asks nothing: every position, as the server's cap is none
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/orders/o-1/stream?location_interval=3s", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream with location_interval: %v %v", resp, err)
		}
		defer resp.Body.Close()
		saving := client.NewSSEReader(resp.Body)
		nextCourier(t, saving, 2)
		wantSeqStatus(t, next(t, saving), 3, "out_for_delivery")
		got := make(chan float64, 64)
		go func() {
			defer close(got)
			for {
				ev, err := saving.Next()
				if err != nil {
					return
				}
				var u ordercast.LocationUpdate
				if ev.Type == "location" && json.Unmarshal([]byte(ev.Data), &u) == nil {
					got <- u.Lat
				}
			}
		}()
		const posts = 20
		for i := 1; i <= posts; i++ {
			lat := 10 + float64(i)/100
			mustPost(t, base, "c-1", lat, 10)
			if u := nextLocation(t, every, "3"); u.Lat != lat { // published and delivered before the next
				t.Fatalf("the stream that asked nothing got %v, want %v", u.Lat, lat)
			}
		}
		early := len(got) // within the first 3 s: the first, and the one the pace lets come early
		if early > 2 {
			t.Errorf("the stream that asked for a position every 3 s got %d of %d at once", early, posts)
		}
		n, last := 0, 0.0
		for lat := range got {
			if lat <= last {
				t.Fatalf("position %v after %v: not the newest", lat, last)
			}
			n, last = n+1, lat
			if lat == 10+float64(posts)/100 {
				break
			}
		}
		if last != 10+float64(posts)/100 || n > 3 {
			t.Errorf("the stream that asked for a position every 3 s got %d, the last %v; want at most 3, ending on the newest", n, last)
		}
	})
	ls := newLocationServer(t, false, nil)
	for _, v := range []string{"11s", "1m", "soon", "-1s"} {
		if resp, body := call(t, "GET", ls.URL()+"/v1/orders/o-1/stream?location_interval="+v, "", ""); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("location_interval=%s: %d %s, want 422", v, resp.StatusCode, body)
		}
	}
}
