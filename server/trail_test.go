package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/internal/testutil"
)

// getTrail reads GET /v1/orders/{id}/trail with token tok and returns the status and the answer.
func getTrail(t *testing.T, base, id, tok string) (int, api.TrailResponse, []byte) {
	t.Helper()
	resp, body := call(t, "GET", base+"/v1/orders/"+id+"/trail", tok, "")
	var res api.TrailResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("trail answer %s: %v", body, err)
		}
	}
	return resp.StatusCode, res, body
}

// TestTrail: GET /v1/orders/{id}/trail gives whoever may watch the order the way its courier came
// while the order showed it, oldest first, ending at the newest position; only the current
// courier's, only out for delivery, and nothing after the end, as for every position.
func TestTrail(t *testing.T) {
	t.Parallel()
	ls, tracking := newAuthLocationServer(t)
	base := ls.URL()
	ctx := context.Background()
	admin := actorToken(t, auth.RoleAdmin, "support")
	if _, _, err := ls.store.CreateOrder(ctx, ordercast.NewOrder{ID: "o-1", RestaurantID: "luigis"}); err != nil {
		t.Fatal(err)
	}
	empty := func(what string) {
		t.Helper()
		code, res, body := getTrail(t, base, "o-1", admin)
		if code != http.StatusOK || res.OrderID != "o-1" || res.CourierID != "" || res.Trail == nil || len(res.Trail) != 0 {
			t.Fatalf("%s: %d %s, want 200 with an empty trail", what, code, body)
		}
	}
	empty("before a courier")

	ls.assign(t, "o-1", "c-1")
	ls.mustCommit(t, "o-1", ordercast.StatusOutForDelivery)
	courier := actorToken(t, auth.RoleCourier, "c-1")
	lats := []float64{52.50, 52.501, 52.502}
	for _, lat := range lats {
		if code, body := postLocation(t, base, "c-1", courier, `{"lat":`+jsonNumber(lat)+`,"lng":13.4}`); code != http.StatusOK {
			t.Fatalf("post: %d %s", code, body)
		}
	}
	code, res, body := getTrail(t, base, "o-1", tracking)
	if code != http.StatusOK || res.CourierID != "c-1" || len(res.Trail) != len(lats) {
		t.Fatalf("trail of the customer: %d %s, want c-1's %d fixes", code, body, len(lats))
	}
	for i, f := range res.Trail {
		if f.Lat != lats[i] || f.Lng != 13.4 {
			t.Errorf("fix %d at %v,%v, want %v,13.4", i, f.Lat, f.Lng, lats[i])
		}
		if i > 0 && !f.At.After(res.Trail[i-1].At) {
			t.Errorf("fix %d at %v, not after the one before (%v)", i, f.At, res.Trail[i-1].At)
		}
	}

	// Who may read it: whoever may watch the order.
	for _, tt := range []permissionCase{
		{"customer's tracking token", tracking, http.StatusOK},
		{"own courier", courier, http.StatusOK},
		{"the order's restaurant", actorToken(t, auth.RoleRestaurant, "luigis"), http.StatusOK},
		{"admin", admin, http.StatusOK},
		{"another courier", actorToken(t, auth.RoleCourier, "c-2"), http.StatusForbidden},
		{"another restaurant", actorToken(t, auth.RoleRestaurant, "marios"), http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	} {
		tt.check(t, func(t *testing.T) (int, []byte) {
			code, _, body := getTrail(t, base, "o-1", tt.tok)
			return code, body
		})
	}
	if code, _, body := getTrail(t, base, "o-9", admin); code != http.StatusNotFound {
		t.Errorf("trail of an unknown order: %d %s, want 404", code, body)
	}
	if code, _, body := getTrail(t, base, "o%20x", admin); code != http.StatusUnprocessableEntity {
		t.Errorf("trail of a bad order id: %d %s, want 422", code, body)
	}

	// Another courier: c-1's way is not c-2's, and is never shown again.
	ls.assign(t, "o-1", "c-2")
	testutil.WaitFor(t, "c-1's trail to go with the reassignment", func() bool {
		_, res, _ := getTrail(t, base, "o-1", admin)
		return res.CourierID == "" && len(res.Trail) == 0
	})
	if code, body := postLocation(t, base, "c-2", admin, `{"lat":52.6,"lng":13.5}`); code != http.StatusOK {
		t.Fatalf("post: %d %s", code, body)
	}
	if _, res, body := getTrail(t, base, "o-1", admin); res.CourierID != "c-2" || len(res.Trail) != 1 {
		t.Fatalf("after c-2's first position: %s, want c-2's one fix", body)
	}
	ls.mustCommit(t, "o-1", ordercast.StatusDelivered)
	empty("after delivery")
}

// jsonNumber spells f as JSON.
func jsonNumber(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// TestTrailJudgedByTheOrder: a node that took no post itself does not follow the orders' events,
// so it may still hold the trail another node's positions drew of a courier the order has left,
// or of an order that ended. The trail is judged by the order as the store has it, as every
// position is: another courier's, or any after the end, is not shown.
func TestTrailJudgedByTheOrder(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	for _, id := range []string{"o-1", "o-2"} {
		ls.mustCreateInStore(t, id)
		ls.assign(t, id, "c-1")
		ls.mustCommit(t, id, ordercast.StatusOutForDelivery)
	}
	ls.assign(t, "o-1", "c-2")
	ls.mustCommit(t, "o-2", ordercast.StatusDelivered)
	now := time.Now()
	ls.tracker.ReceiveLocations([]ordercast.LocationUpdate{
		{OrderID: "o-1", CourierID: "c-1", OrderVersion: 3, Lat: 1, Lng: 1, At: now},
		{OrderID: "o-2", CourierID: "c-1", OrderVersion: 3, Lat: 1, Lng: 1, At: now},
	})
	for _, id := range []string{"o-1", "o-2"} {
		if l, fixes := ls.tracker.Trail(id); l == nil || l.Update.CourierID != "c-1" || len(fixes) != 1 {
			t.Fatalf("%s: the tracker holds %v, want c-1's fix (the case this test is about)", id, fixes)
		}
		code, res, body := getTrail(t, base, id, "")
		if code != http.StatusOK || res.CourierID != "" || len(res.Trail) != 0 {
			t.Errorf("%s: %d %s, want an empty trail", id, code, body)
		}
	}
}
