package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/pgtest"
	"github.com/ordercast/ordercast/server"
)

// partyServer starts an open server over a fresh store of the named kind, holding streams as
// hold says, and returns its base URL and its store (PostgreSQL: pgNode).
func partyServer(t *testing.T, kind string, hold holding) (string, ordercast.Store) {
	t.Helper()
	if kind == "sqlite" {
		ts := hold.newServer(t, nil)
		return ts.URL(), ts.store
	}
	return pgNode(t, pgtest.NewDatabase(t), pgNodeOptions{hold: hold})
}

// bothStoresAndHoldings runs test on SQLite and PostgreSQL, each with both holdings.
func bothStoresAndHoldings(t *testing.T, test func(t *testing.T, kind string, hold holding)) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			bothHoldings(t, func(t *testing.T, hold holding) { test(t, kind, hold) })
		})
	}
}

// partyWriter makes changes through the store and fails the test on any error.
type partyWriter struct {
	t  *testing.T
	st ordercast.Store
}

func (w partyWriter) create(id, restaurant, customer string) {
	w.t.Helper()
	if _, _, err := w.st.CreateOrder(w.t.Context(), ordercast.NewOrder{ID: id, RestaurantID: restaurant, CustomerID: customer}); err != nil {
		w.t.Fatal(err)
	}
}

func (w partyWriter) move(id string, to ordercast.Status) {
	w.t.Helper()
	if _, _, _, err := w.st.AppendStatus(w.t.Context(), ordercast.StatusChange{OrderID: id, Status: to}); err != nil {
		w.t.Fatal(err)
	}
}

func (w partyWriter) assign(id, courier string) {
	w.t.Helper()
	if _, _, _, err := w.st.AssignCourier(w.t.Context(), ordercast.CourierChange{OrderID: id, CourierID: courier}); err != nil {
		w.t.Fatal(err)
	}
}

// next reads the next update of a party watch within a deadline.
func nextUpdate(t *testing.T, w *client.Watch) client.ScopeUpdate {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u, err := w.NextScoped(ctx)
	if err != nil {
		t.Fatalf("NextScoped: %v", err)
	}
	return u
}

// wantSnapshot reads a snapshot and fails the test unless it holds exactly the orders ids.
func wantSnapshot(t *testing.T, w *client.Watch, ids ...string) client.ScopeUpdate {
	t.Helper()
	u := nextUpdate(t, w)
	if u.Snapshot == nil {
		t.Fatalf("got %+v, want a snapshot of %v", u.Event, ids)
	}
	var got []string
	for _, o := range u.Snapshot.Orders {
		got = append(got, o.ID)
	}
	if strings.Join(sorted(got), " ") != strings.Join(sorted(ids), " ") {
		t.Fatalf("snapshot holds %v, want %v", got, ids)
	}
	if u.Pos != u.Snapshot.Pos {
		t.Errorf("snapshot id %d, its pos %d: they must agree", u.Pos, u.Snapshot.Pos)
	}
	return u
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// wantEvents reads len(want) events and fails the test unless they are want ("order/seq"), in
// order, at consecutive positions.
func wantEvents(t *testing.T, w *client.Watch, want ...string) int64 {
	t.Helper()
	var last int64
	for i, wt := range want {
		u := nextUpdate(t, w)
		if u.Event == nil {
			t.Fatalf("event %d: got a snapshot, want %s", i, wt)
		}
		if got := fmt.Sprintf("%s/%d", u.Event.OrderID, u.Event.Seq); got != wt {
			t.Fatalf("event %d: got %s (%s %s), want %s", i, got, u.Event.Kind, u.Event.Status, wt)
		}
		if last != 0 && u.Pos != last+1 {
			t.Errorf("event %d at position %d after %d: positions run without holes", i, u.Pos, last)
		}
		last = u.Pos
	}
	return last
}

// TestPartyStreams: each party's stream starts with its active orders, then brings every change
// of every order in its scope, in the party log's order: orders entering (created, assigned) and
// leaving (ended, reassigned); and a reconnect after missing changes to several orders, some of
// which entered and left the scope meanwhile, gets exactly those changes, once, then live ones.
// On both stores and both holdings.
func TestPartyStreams(t *testing.T) {
	bothStoresAndHoldings(t, func(t *testing.T, kind string, hold holding) {
		base, st := partyServer(t, kind, hold)
		wr := partyWriter{t, st}
		c := &client.Client{BaseURL: base}
		ctx := t.Context()

		wr.create("a", "r-1", "u-1")
		wr.create("b", "r-1", "u-2")
		wr.create("x", "r-2", "u-1")
		wr.move("b", ordercast.StatusCancelled) // ended before anyone watched

		rest := c.WatchRestaurant(ctx, "r-1", client.WatchOptions{})
		defer rest.Close()
		cour := c.WatchCourier(ctx, "c-1", client.WatchOptions{})
		defer cour.Close()
		cust := c.WatchCustomer(ctx, "u-1", client.WatchOptions{})
		defer cust.Close()
		wantSnapshot(t, rest, "a")
		wantSnapshot(t, cour)
		wantSnapshot(t, cust, "a", "x")

		// Live: a moves, is assigned (an event of its own, status unchanged), a new order enters.
		wr.move("a", ordercast.StatusConfirmed) // a/2
		wr.assign("a", "c-1")                   // a/3
		wr.create("c", "r-1", "")               // c/1
		wr.move("x", ordercast.StatusConfirmed) // x/2: not r-1's
		wantEvents(t, rest, "a/2", "a/3", "c/1")
		if u := wantEvents(t, cour, "a/3"); u == 0 {
			t.Fatal("courier stream: no position")
		}
		wantEvents(t, cust, "a/2", "a/3", "x/2")

		// The courier sees a's changes while assigned, and its reassignment away, then nothing:
		// of that reassignment only that a left it, not whom it went to (id or name), why or by whom (on a
		// resume too); the restaurant reads it whole.
		wr.move("a", ordercast.StatusReady) // a/4
		if _, _, _, err := st.AssignCourier(ctx, ordercast.CourierChange{OrderID: "a", CourierID: "c-2", CourierName: "Ana", Note: "for c-2 only", Actor: "admin:ops"}); err != nil {
			t.Fatal(err) // a/5: leaves c-1
		}
		wr.move("a", ordercast.StatusOutForDelivery)
		beforeLeft := wantEvents(t, cour, "a/4")
		for name, w := range map[string]*client.Watch{
			"live":    cour,
			"resumed": c.WatchCourier(ctx, "c-1", client.WatchOptions{LastEventID: beforeLeft}),
		} {
			u := nextUpdate(t, w)
			if ev := u.Event; ev == nil || ev.OrderID != "a" || ev.Seq != 5 || ev.Kind != ordercast.KindCourier || ev.CourierID != "" || ev.CourierName != "" || ev.Note != "" || ev.Actor != "" {
				t.Fatalf("%s: the courier a left read %+v; want a/5 as an unassignment, nothing more", name, u.Event)
			}
			if name == "resumed" {
				w.Close()
			}
		}
		wantEvents(t, rest, "a/4")
		if u := nextUpdate(t, rest); u.Event == nil || u.Event.Seq != 5 || u.Event.CourierID != "c-2" || u.Event.CourierName != "Ana" || u.Event.Note != "for c-2 only" {
			t.Fatalf("the restaurant read a/5 as %+v; want it whole", u.Event)
		}
		wantEvents(t, rest, "a/6")

		// Reconnect: the board goes away, several orders change, some enter and leave meanwhile.
		last := rest.LastEventID()
		rest.Close()
		wr.move("c", ordercast.StatusConfirmed) // c/2
		wr.create("d", "r-1", "")               // d/1: enters
		wr.move("d", ordercast.StatusCancelled) // d/2: and leaves
		wr.move("x", ordercast.StatusPreparing) // not r-1's
		wr.move("a", ordercast.StatusDelivered) // a/7: leaves (terminal)
		wr.assign("c", "c-1")                   // c/3
		again := c.WatchRestaurant(ctx, "r-1", client.WatchOptions{LastEventID: last})
		defer again.Close()
		wantEvents(t, again, "c/2", "d/1", "d/2", "a/7", "c/3")
		wr.move("c", ordercast.StatusPreparing) // c/4: the next thing, so nothing else came between
		wantEvents(t, again, "c/4")
		if again.Duplicates() != 0 {
			t.Errorf("the server replayed %d events the client had", again.Duplicates())
		}
		// A fresh board shows the active orders only: a and d ended, b long ago.
		wantSnapshot(t, c.WatchRestaurant(ctx, "r-1", client.WatchOptions{}), "c")
		// The courier, reconnecting, gets the assignment of c that it missed.
		cl := cour.LastEventID()
		cour.Close()
		wantEvents(t, c.WatchCourier(ctx, "c-1", client.WatchOptions{LastEventID: cl}), "c/3", "c/4")
		// The customer's a ended: it is the event, then a fresh snapshot without it.
		wantEvents(t, cust, "a/4", "a/5", "a/6", "x/3", "a/7")
		wantSnapshot(t, c.WatchCustomer(ctx, "u-1", client.WatchOptions{}), "x")
	})
}

// TestPartyStreamResumesAfterZero: Last-Event-ID 0 on a party's stream is a cursor like any
// other, before the log's first position: it brings the whole log, not the snapshot that a
// stream opened without one gets.
func TestPartyStreamResumesAfterZero(t *testing.T) {
	t.Parallel()
	base, st := partyServer(t, "sqlite", false)
	wr := partyWriter{t, st}
	wr.create("a", "r-1", "")
	wr.move("a", ordercast.StatusConfirmed)
	next := func(r *client.SSEReader) client.SSEEvent {
		t.Helper()
		ev, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if ev := next(openParty(t, base, "/v1/restaurants/r-1/stream", "")); ev.Type != "snapshot" || ev.ID != "2" {
		t.Fatalf("fresh: %s id %q, want the snapshot at 2", ev.Type, ev.ID)
	}
	r := openParty(t, base, "/v1/restaurants/r-1/stream", "0")
	for _, want := range []string{"1", "2"} {
		if ev := next(r); ev.Type != "status" || ev.ID != want {
			t.Fatalf("after 0: %s id %q, want the status event at %s", ev.Type, ev.ID, want)
		}
	}
}

// TestPartyStreamPermissions: a party's stream is for its own token, admin and system; another
// party, another kind of party, a tracking token and no token are refused before anything is
// read.
func TestPartyStreamPermissions(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	admin := actorToken(t, auth.RoleAdmin, "ops")
	tracking := createAs(t, base, admin, "t-1")
	for _, c := range []struct {
		who, token, path string
		want             int
	}{
		{"own restaurant", actorToken(t, auth.RoleRestaurant, "r-1"), "/v1/restaurants/r-1/stream", http.StatusOK},
		{"other restaurant", actorToken(t, auth.RoleRestaurant, "r-2"), "/v1/restaurants/r-1/stream", http.StatusForbidden},
		{"courier named like the restaurant", actorToken(t, auth.RoleCourier, "r-1"), "/v1/restaurants/r-1/stream", http.StatusForbidden},
		{"own courier", actorToken(t, auth.RoleCourier, "c-1"), "/v1/couriers/c-1/stream", http.StatusOK},
		{"other courier", actorToken(t, auth.RoleCourier, "c-2"), "/v1/couriers/c-1/stream", http.StatusForbidden},
		{"own customer", actorToken(t, auth.RoleCustomer, "u-1"), "/v1/customers/u-1/stream", http.StatusOK},
		{"other customer", actorToken(t, auth.RoleCustomer, "u-2"), "/v1/customers/u-1/stream", http.StatusForbidden},
		{"admin", admin, "/v1/customers/u-1/stream", http.StatusOK},
		{"tracking token", tracking, "/v1/customers/u-1/stream", http.StatusForbidden},
		{"no token", "", "/v1/restaurants/r-1/stream", http.StatusUnauthorized},
	} {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.want {
			t.Errorf("%s on %s: %d, want %d", c.who, c.path, resp.StatusCode, c.want)
		}
		cancel()
		resp.Body.Close()
	}
}

// TestHomePageLinksToParties: in demo mode the home page links to each simulated party's page
// (a courier's also to its stream, labelled as the raw stream it is), each page is titled by the
// party's name, and the console's new-order form offers the restaurants by name.
func TestHomePageLinksToParties(t *testing.T) {
	ts := newServer(t, func(s *server.Server) {
		s.PartyLinks = []server.PartyLink{
			{Party: ordercast.Party{Kind: ordercast.PartyRestaurant, ID: "luigis"}, Name: "Luigi's"},
			{Party: ordercast.Party{Kind: ordercast.PartyCustomer, ID: "ana"}, Name: "Ana"},
			{Party: ordercast.Party{Kind: ordercast.PartyCourier, ID: "ines"}, Name: "Ines"},
		}
	})
	status, body := do(t, "GET", ts.URL()+"/", "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /: %d", status)
	}
	for _, href := range []string{`href="/restaurants/luigis"`, `href="/customers/ana"`, `<a href="/couriers/ines">Ines</a>`, `<a href="/v1/couriers/ines/stream" aria-label="Raw event stream of Ines">raw event stream</a>`} {
		if !strings.Contains(string(body), href) {
			t.Errorf("home page lacks %s", href)
		}
	}
	// Each party's page is titled by the name the home page links it by, not by its id.
	for path, title := range map[string]string{"/restaurants/luigis": "Restaurant Luigi&#39;s", "/customers/ana": "Orders of Ana", "/couriers/ines": "Courier Ines", "/couriers/noor": "Courier noor"} {
		if status, body := do(t, "GET", ts.URL()+path, "", ""); status != http.StatusOK || !strings.Contains(string(body), `<h1 class="bar-title">`+title+`</h1>`) {
			t.Errorf("GET %s: %d, want the title %s", path, status, title)
		}
	}
	status, body = do(t, "GET", ts.URL()+"/console", "", "")
	if want := `<select name="restaurant_id"><option value="luigis">Luigi&#39;s</option></select>`; status != http.StatusOK || !strings.Contains(strings.Join(strings.Fields(string(body)), ""), strings.ReplaceAll(want, " ", "")) {
		t.Errorf("GET /console: %d, the form lacks %s", status, want)
	}
}

// TestPagesSayWhatIsWrong: an address no page can serve is answered with a page that says why in
// a sentence, not the API's JSON or the mux's plain text; the API keeps its JSON. A party's page
// opened without its token, outside demo mode, says how to open it instead of opening a stream
// the server can only refuse.
func TestPagesSayWhatIsWrong(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	for _, tc := range []struct {
		path       string
		wantStatus int
		wantText   string
	}{
		{"/track/a%20b", 404, "This address names no order"},
		{"/console/track/a%20b", 404, "This address names no order"},
		{"/restaurants/a%20b", 404, "This address names no restaurant"},
		{"/customers/a%20b", 404, "This address names no customer"},
		{"/couriers/a%20b", 404, "This address names no courier"},
		{"/restaurants/r-1/track/a%20b", 404, "This address names no order"},
		{"/couriers/c-1/track/a%20b", 404, "This address names no order"},
		{"/couriers/a%20b/track/o-1", 404, "This address names no courier"},
		{"/no/such/page", 404, "There is no page at this address"},
		{"/restaurants/r-1", 401, "This page opens from the link you were given, which ends in ?\u2060token=…: open that link again."},
		{"/customers/u-1", 401, "This page opens from the link you were given"},
		{"/couriers/c-1", 401, "This page opens from the link you were given"},
	} {
		resp, body := call(t, "GET", base+tc.path, "", "")
		if resp.StatusCode != tc.wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), tc.wantText) {
			t.Errorf("GET %s: %d %q %s; want %d, a page that says %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.wantStatus, tc.wantText)
		}
		if got := resp.Header.Get("WWW-Authenticate"); (resp.StatusCode == http.StatusUnauthorized) != strings.HasPrefix(got, "Bearer ") {
			t.Errorf("GET %s: %d with WWW-Authenticate %q, want a Bearer challenge on a 401 only", tc.path, resp.StatusCode, got)
		}
		// The page never repeats what the address says: a link could make the site's own
		// page say anything (a reversed sentence behind a bidirectional control, say).
		if strings.Contains(string(body), "a b") {
			t.Errorf("GET %s: the page repeats the id from the address:\n%s", tc.path, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
	}
	for _, path := range []string{"/v1/orders/a%20b", "/v1/no/such/endpoint"} {
		resp, body := call(t, "GET", base+path, "", "")
		if resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET %s: %d %q %s, want the API's JSON", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

// TestRestaurantTrackOpensTheRestaurantsView: a board links each order to
// /restaurants/{id}/track/{order}, which sends the browser to the restaurant's view of the
// tracking page (?view=restaurant&restaurant={id}, words only: no credential in the address),
// with the order's tracking cookie when the board's token may watch the order. Another
// restaurant's order, or no token, sets nothing and is sent there all the same, where the page
// shows the refusal and still links back to the board. A customer's page opens the customer's
// view, as the console does.
func TestRestaurantTrackOpensTheRestaurantsView(t *testing.T) {
	ts := newAuthServer(t, nil)
	base := ts.URL()
	mustCall(t, "POST", base+"/v1/orders", actorToken(t, auth.RoleAdmin, "ops"), `{"id":"o-1","restaurant_id":"shop:r-1","customer_id":"u-1"}`, http.StatusCreated)
	for _, tc := range []struct {
		name, path, tok string
		to              string
		sets            bool
	}{
		{"the restaurant's order", "/restaurants/shop:r-1/track/o-1", actorToken(t, auth.RoleRestaurant, "shop:r-1"), "/track/o-1?restaurant=shop%3Ar-1&view=restaurant", true},
		{"another restaurant's order", "/restaurants/r-2/track/o-1", actorToken(t, auth.RoleRestaurant, "r-2"), "/track/o-1?restaurant=r-2&view=restaurant", false},
		{"no token", "/restaurants/shop:r-1/track/o-1", "", "/track/o-1?restaurant=shop%3Ar-1&view=restaurant", false},
		{"the customer's page", "/customers/u-1/track/o-1", actorToken(t, auth.RoleCustomer, "u-1"), "/track/o-1", true},
	} {
		resp, _ := visitWithCookie(t, base, tc.path, tc.tok)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != tc.to {
			t.Errorf("%s: %d to %q, want 303 to %q", tc.name, resp.StatusCode, loc, tc.to)
		}
		if c := cookieNamed(resp, server.TrackingCookie, "/v1/orders/o-1"); (c != nil) != tc.sets || len(resp.Cookies()) > 1 {
			t.Errorf("%s: cookies %v, want the order's tracking cookie: %v", tc.name, resp.Cookies(), tc.sets)
		}
	}
}

// TestRestaurantViewOfTrackingPageIsWordsOnly: /track/{id}?view=restaurant&restaurant={id}
// renders the restaurant's view (a link back to its board, with the id as it is in the board's
// path; the drop-off named "Customer", not "You"), and nothing else changes: it sets no cookie,
// and a restaurant id that cannot be one, or a marker that names no restaurant, leaves the
// customer's view.
func TestRestaurantViewOfTrackingPageIsWordsOnly(t *testing.T) {
	ts := newAuthServer(t, nil)
	customers := []string{"Where your courier is", ">You<"}
	for _, tc := range []struct {
		query string
		want  []string
		not   []string
	}{
		{"?view=restaurant&restaurant=shop:r-1", []string{`data-view="restaurant"`, `<a href="/restaurants/shop:r-1">Back to the board</a>`, "Where the courier is", ">Customer<", ">Drop-off<"},
			[]string{"Where your courier is", ">You<", "Back to your deliveries"}},
		{"?view=restaurant&restaurant=a%20b", customers, []string{`data-view`, "Back to the board"}},
		{"?view=restaurant&courier=c-1", customers, []string{`data-view`, "Back to"}},
		{"?view=customer&customer=u-1", customers, []string{`data-view`, "Back to"}},
	} {
		checkTrackingView(t, ts.URL(), tc.query, tc.want, tc.not)
	}
}

// TestPartyCursorAt500ActiveOrders: the cursor a restaurant's stream hands out stays one small
// number at 500 active orders with several events each, and resuming from it is exact.
func TestPartyCursorAt500ActiveOrders(t *testing.T) {
	base, st := partyServer(t, "sqlite", false)
	wr := partyWriter{t, st}
	for i := range 500 {
		id := fmt.Sprintf("ord-%04d", i)
		wr.create(id, "r-1", "")
		wr.move(id, ordercast.StatusConfirmed)
		wr.assign(id, "c-1")
	}
	c := &client.Client{BaseURL: base}
	w := c.WatchRestaurant(t.Context(), "r-1", client.WatchOptions{})
	defer w.Close()
	snap := wantSnapshot(t, w, func() []string {
		var ids []string
		for i := range 500 {
			ids = append(ids, fmt.Sprintf("ord-%04d", i))
		}
		return ids
	}()...)
	cursor := strconv.FormatInt(snap.Pos, 10)
	if snap.Pos != 1500 || len(cursor) > 8 {
		t.Fatalf("cursor at 500 active orders = %q (%d bytes), want 1500", cursor, len(cursor))
	}
	t.Logf("cursor at 500 active orders, 1500 events: Last-Event-ID: %s (%d bytes)", cursor, len(cursor))
	w.Close()
	wr.move("ord-0007", ordercast.StatusPreparing)
	again := c.WatchRestaurant(t.Context(), "r-1", client.WatchOptions{LastEventID: snap.Pos})
	defer again.Close()
	wantEvents(t, again, "ord-0007/4")
}
