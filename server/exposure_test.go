package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/server"
)

// TestUnknownOrderAnswersAsAnotherPartysOrder: a party's token gets the same refusal, status and
// words, for an order of another party as for an order that does not exist, on every route that
// names an order: the answer must not tell which ids exist.
func TestUnknownOrderAnswersAsAnotherPartysOrder(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	if resp, body := call(t, "POST", base+"/v1/orders", admin, `{"id":"o-7","restaurant_id":"r-2"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	r1 := actorToken(t, auth.RoleRestaurant, "r-1")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/orders/%s", ""},
		{"GET", "/v1/orders/%s/events", ""},
		{"POST", "/v1/orders/%s/status", `{"status":"confirmed"}`},
		{"PUT", "/v1/orders/%s/courier", `{"courier_id":"c-1"}`},
	} {
		re, be := call(t, c.method, base+fmt.Sprintf(c.path, "o-7"), r1, c.body)
		ru, bu := call(t, c.method, base+fmt.Sprintf(c.path, "nope"), r1, c.body)
		if re.StatusCode != http.StatusForbidden || re.StatusCode != ru.StatusCode || string(be) != string(bu) {
			t.Errorf("%s %s: another party's order %d %s; an unknown id %d %s", c.method, c.path, re.StatusCode, be, ru.StatusCode, bu)
		}
	}
}

// TestTokenCookiesAreSecureBehindATLSProxy: the cookies that hold an actor token handed to a page
// (the console's, a party page's, and each one's stream cookie) are Secure when the request came over HTTPS through a trusted
// proxy that ended TLS, as the tracking cookie is: the token must never travel over plain HTTP.
func TestTokenCookiesAreSecureBehindATLSProxy(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, func(s *server.Server) { s.Limits.TrustedProxies = loopbackProxy })
	tok := actorToken(t, auth.RoleAdmin, "ops")
	for _, path := range []string{"/console", "/restaurants/r-1?token=" + tok} {
		req, err := http.NewRequest("GET", ts.URL()+path, nil)
		if path == "/console" { // the console's sign-in form
			req, err = http.NewRequest("POST", ts.URL()+path, strings.NewReader("token="+tok))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		cs := resp.Cookies()
		if len(cs) != 2 {
			t.Errorf("%s: cookies %v, want the page's and its stream's", path, cs)
		}
		for _, c := range cs {
			// The page's own cookie is Lax (setPageCookies), its stream's Strict.
			want := http.SameSiteStrictMode
			if c.Name == server.ConsoleCookie || c.Name == server.PartyCookie {
				want = http.SameSiteLaxMode
			}
			if !c.Secure || !c.HttpOnly || c.SameSite != want {
				t.Errorf("%s: cookie %v, want Secure, HttpOnly, SameSite %v", path, c, want)
			}
		}
	}
}

// TestIPv6ClientCountsByItsBlock: the per-client write budget counts an IPv6 client by its /64
// (or the block --ipv6-client-prefix sets), from which it can take as many addresses as it
// likes, not address by address; the next block has a budget of its own.
func TestIPv6ClientCountsByItsBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prefix     int
		addr       string // a format of one address in the block, for i = 0…19
		next, name string
	}{
		{0, "2001:db8:1:2::%x", "2001:db8:1:3::1", "/64"},
		{56, "2001:db8:1:2%02x::1", "2001:db8:1:300::1", "/56"}, // 20 /64s of 2001:db8:1:200::/56
	} {
		ts := newAuthServer(t, func(s *server.Server) {
			s.Limits.TrustedProxies = loopbackProxy
			s.Limits.WriteRate, s.Limits.WriteBurst = 0.001, 2
			s.Limits.IPv6ClientPrefix = tc.prefix
		})
		sys := actorToken(t, auth.RoleSystem, "")
		post := func(i int, from string) int {
			resp, _ := call(t, "POST", ts.URL()+"/v1/orders", sys, fmt.Sprintf(`{"id":"v6-%d"}`, i), "X-Forwarded-For", from)
			return resp.StatusCode
		}
		accepted := 0
		for i := range 20 {
			if post(i, fmt.Sprintf(tc.addr, i)) < 300 {
				accepted++
			}
		}
		if accepted != 2 {
			t.Errorf("one %s made %d writes with a burst of 2", tc.name, accepted)
		}
		if code := post(100, tc.next); code >= 300 {
			t.Errorf("the next %s was refused (%d): it has a budget of its own", tc.name, code)
		}
	}
}

// reassigningStore gives an order to courier c-2 right after the read that authorized a
// courier's request for it: the window between that read and the data the request answers with.
type reassigningStore struct {
	ordercast.Store
	armed atomic.Bool
}

func (s *reassigningStore) Order(ctx context.Context, id string) (ordercast.Order, error) {
	o, err := s.Store.Order(ctx, id)
	if err == nil && s.armed.CompareAndSwap(true, false) {
		if _, _, _, err := s.Store.AssignCourier(ctx, ordercast.CourierChange{OrderID: id, CourierID: "c-2"}); err != nil {
			return o, err
		}
	}
	return o, err
}

// TestCourierReadsStopAtTheReassignment: a courier whose order goes to another courier after its
// read was authorized reads neither the order as it is now (whom it went to) nor the events
// from the reassignment on.
func TestCourierReadsStopAtTheReassignment(t *testing.T) {
	t.Parallel()
	var rs *reassigningStore
	ts := newAuthServer(t, func(s *server.Server) {
		rs = &reassigningStore{Store: s.Store}
		s.Store = rs
	})
	base := ts.URL()
	ctx := context.Background()
	c1 := actorToken(t, auth.RoleCourier, "c-1")
	for i, path := range []string{"/v1/orders/o-%d", "/v1/orders/o-%d/events"} {
		id := fmt.Sprintf("o-%d", i)
		if _, _, err := rs.Store.CreateOrder(ctx, ordercast.NewOrder{ID: id, RestaurantID: "r-1"}); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := rs.Store.AssignCourier(ctx, ordercast.CourierChange{OrderID: id, CourierID: "c-1"}); err != nil {
			t.Fatal(err)
		}
		rs.armed.Store(true)
		resp, body := call(t, "GET", base+fmt.Sprintf(path, i), c1, "")
		if rs.armed.Load() {
			t.Fatalf("%s: the order was not reassigned during the request", path)
		}
		if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "c-2") {
			t.Errorf("%s: the courier the order left read whom it went to: %s", path, body)
		}
	}
}

// TestACourierReadsAnotherCouriersAssignmentAsAnUnassignment: an order goes from courier c-1 to
// c-2 and back to c-1. c-1 reads the whole history again (through /events and a stream resumed
// from 0), but c-2's assignment as an unassignment: not whom the order went to, nor the note,
// nor who moved it, as c-1's party stream reads it; and a change c-2 made meanwhile without its
// note or that c-2 made it. Its own assignments and changes, and a restaurant's read of the same
// history, are whole.
func TestACourierReadsAnotherCouriersAssignmentAsAnUnassignment(t *testing.T) {
	t.Parallel()
	ts := newAuthServer(t, nil)
	base := ts.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := ts.store.CreateOrder(ctx, ordercast.NewOrder{ID: "o-1", RestaurantID: "r-1"}); err != nil {
		t.Fatal(err)
	}
	assign := func(courier, note string) {
		t.Helper()
		if _, _, _, err := ts.store.AssignCourier(ctx, ordercast.CourierChange{OrderID: "o-1", CourierID: courier, Note: note, Actor: "restaurant:r-1"}); err != nil {
			t.Fatal(err)
		}
	}
	move := func(st ordercast.Status, note, actor string) {
		t.Helper()
		if _, _, _, err := ts.store.AppendStatus(ctx, ordercast.StatusChange{OrderID: "o-1", Status: st, Note: note, Actor: actor}); err != nil {
			t.Fatal(err)
		}
	}
	assign("c-1", "nearest")
	assign("c-2", "c-1 had a flat tyre")
	move(ordercast.StatusConfirmed, "c-2 here, at the door", "courier:c-2") // a change c-2 made while the order was its
	assign("c-1", "tyre fixed")
	move(ordercast.StatusPreparing, "back on it", "courier:c-1")
	c1 := actorToken(t, auth.RoleCourier, "c-1")
	seen := func(evs []ordercast.Event) []string {
		var out []string
		for _, ev := range evs[1:] {
			out = append(out, fmt.Sprintf("%d %q %q %q", ev.Seq, ev.CourierID, ev.Note, ev.Actor))
		}
		return out
	}
	want := []string{
		`2 "c-1" "nearest" "restaurant:r-1"`,
		`3 "" "" ""`,
		`4 "" "" ""`,
		`5 "c-1" "tyre fixed" "restaurant:r-1"`,
		`6 "" "back on it" "courier:c-1"`,
	}
	var page api.EventsResponse
	resp, body := call(t, "GET", base+"/v1/orders/o-1/events", c1, "")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &page) != nil {
		t.Fatalf("c-1's /events: %d %s", resp.StatusCode, body)
	}
	if got := seen(page.Events); !slices.Equal(got, want) {
		t.Errorf("c-1's /events:\n got %q\nwant %q", got, want)
	}

	w := (&client.Client{BaseURL: base, Token: c1}).Watch(ctx, "o-1", client.WatchOptions{WholeHistory: true})
	defer w.Close()
	var streamed []ordercast.Event
	for range len(want) + 1 {
		ev, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("c-1's stream after %d events: %v", len(streamed), err)
		}
		streamed = append(streamed, ev)
	}
	if got := seen(streamed); !slices.Equal(got, want) {
		t.Errorf("c-1's stream from 0:\n got %q\nwant %q", got, want)
	}

	resp, body = call(t, "GET", base+"/v1/orders/o-1/events", actorToken(t, auth.RoleRestaurant, "r-1"), "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"courier_id":"c-2"`) || !strings.Contains(string(body), `"note":"c-1 had a flat tyre"`) ||
		!strings.Contains(string(body), `"actor":"courier:c-2"`) {
		t.Errorf("the restaurant's /events: %d %s, want c-2's assignment whole", resp.StatusCode, body)
	}
}
