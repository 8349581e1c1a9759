package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/client"
	"github.com/ordercast/ordercast/internal/openapi"
	"github.com/ordercast/ordercast/server"
)

// TestOpenAPIDescribesEveryRoute: the description's operations are the server's routes under
// /v1/, one for one, on a server that takes positions (which has every route); and any client,
// with no token, reads the description from the server.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	ls := newLocationServer(t, false, nil)
	routes := server.APIRoutes(ls.Server)
	slices.Sort(routes)
	if ops := openapi.MustParse(t, api.OpenAPI).Operations(); !slices.Equal(ops, routes) {
		t.Errorf("the description's operations:\n %v\nthe server's routes:\n %v", ops, routes)
	}

	ts := newAuthServer(t, nil)
	resp, body := call(t, "GET", ts.URL()+"/v1/openapi.json", "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, api.OpenAPI) {
		t.Errorf("GET /v1/openapi.json with no token = %d %s, %d bytes; want 200, the description", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

// TestOpenAPIAnswersHoldToTheDescription: what the server answers, on every route, in success
// and in refusal, and what its streams and its WebSocket send, holds to the description, which is strict
// (openapi.Document.Check): a field the server sends that the description leaves out fails. And
// each body the server took holds to the description's request.
func TestOpenAPIAnswersHoldToTheDescription(t *testing.T) {
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	doc := openapi.MustParse(t, api.OpenAPI)
	do := func(op, path, body string) []byte {
		t.Helper()
		method, _, _ := strings.Cut(op, " ")
		resp, b := call(t, method, base+path, "", body)
		media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		schema, err := doc.Response(op, resp.StatusCode, media)
		if err != nil {
			t.Errorf("%s %s answered %d %s: %v", method, path, resp.StatusCode, b, err)
			return b
		}
		if err := doc.CheckJSON(schema, b); err != nil {
			t.Errorf("%s %s answered %d, not as described: %v\n%s", method, path, resp.StatusCode, err, b)
		}
		// A body the server took whole holds to what the description says it takes: the
		// description's requests are ones the server answers. (A bulk request answered with a
		// refused item took that item no more than a 422 would.)
		if body != "" && resp.StatusCode < 300 && !bytes.Contains(b, []byte(`"error":`)) {
			schema, err := doc.Request(op, "application/json")
			if err == nil {
				err = doc.CheckJSON(schema, []byte(body))
			}
			if err != nil {
				t.Errorf("%s %s took a body the description does not: %v\n%s", method, path, err, body)
			}
		}
		return b
	}
	create := `{"id":"o-doc","restaurant_id":"r-1","customer_id":"u-1","details":{"items":2},"note":"placed at checkout",` +
		`"pickup":{"lat":52.52,"lng":13.405},"dropoff":{"lat":52.529,"lng":13.419}}`
	do(api.RouteCreateOrder, "/v1/orders", create) // 201
	do(api.RouteCreateOrder, "/v1/orders", create) // 200: a repeat
	do(api.RouteOrder, "/v1/orders/o-doc", "")
	do(api.RouteSetStatus, "/v1/orders/o-doc/status", `{"status":"confirmed","note":"accepted"}`)
	do(api.RouteSetCourier, "/v1/orders/o-doc/courier", `{"courier_id":"c-1","courier_name":"Kofi"}`)
	// One change applied, one refused: both kinds of result.
	do(api.RouteSetStatuses, "/v1/status-changes", `{"changes":[{"order_id":"o-doc","status":"out_for_delivery"},{"order_id":"o-doc","status":"placed"}]}`)
	do(api.RoutePostLocation, "/v1/couriers/c-1/location", `{"lat":52.525,"lng":13.41,"speed_mps":6,"heading":90,"accuracy_m":5}`)
	do(api.RoutePostLocations, "/v1/locations", `{"positions":[{"courier_id":"c-1","lat":52.526,"lng":13.412},{"courier_id":"c-1","lat":200,"lng":0}]}`)
	if b := do(api.RouteOrder, "/v1/orders/o-doc?wait=1s&after_version=1", ""); !bytes.Contains(b, []byte(`"location"`)) {
		t.Errorf("the long poll of an order out for delivery answered without its courier's position: %s", b)
	}
	if b := do(api.RouteTrail, "/v1/orders/o-doc/trail", ""); !bytes.Contains(b, []byte(`"courier_id"`)) {
		t.Errorf("the trail of an order out for delivery names no courier: %s", b)
	}
	do(api.RouteEvents, "/v1/orders/o-doc/events", "")
	do(api.RouteTrackingToken, api.TrackingTokenPath("o-doc"), "")
	do(api.RouteTrackingToken, api.TrackingTokenPath("nope"), "") // 404
	do(api.RouteListOrders, "/v1/orders?limit=1", "")
	do(api.RouteListOrders, "/v1/orders?status=lost", "") // 422
	do(api.RouteOpenAPI, "/v1/openapi.json", "")
	do(api.RouteListOrders, "/v1/orders?customer_id=u-1", "")
	do(api.RouteEraseCustomer, api.EraseCustomerPath("u-1"), "")      // 409: o-doc is in progress
	do(api.RouteEraseCustomer, api.EraseCustomerPath("u-nobody"), "") // 200, zeros
	do(api.RouteEraseCustomer, api.EraseCustomerPath("u 1"), "")      // 422
	// Refusals, each of its own status.
	do(api.RouteCreateOrder, "/v1/orders", `[]`)                             // 400
	do(api.RouteOrder, "/v1/orders/nope", "")                                // 404
	do(api.RouteSetStatus, "/v1/orders/o-doc/status", `{"status":"placed"}`) // 409
	do(api.RouteSetStatus, "/v1/orders/o-doc/status", `{"status":"lost"}`)   // 422
	do(api.RouteSetCourier, "/v1/orders/o-doc/courier", `{}`)                // 422
	// A query parameter sent twice is 400 on the routes that read one.
	do(api.RouteOrder, "/v1/orders/o-doc?wait=1s&wait=2s", "")
	do(api.RouteEvents, "/v1/orders/o-doc/events?after=1&after=2", "")
	do(api.RouteStreamAll, api.PathStreamAll+"?heartbeat=event&heartbeat=comment", "")

	// The streams: each event's data as the description says (an order's and a party's events,
	// positions, the snapshots).
	schemaOf := func(name string) map[string]any {
		s, err := doc.Schema(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	checkData := func(stream string, ev client.SSEEvent) {
		t.Helper()
		var schema map[string]any
		switch {
		case ev.Type == api.EventStatus || ev.Type == api.EventCourier:
			schema = schemaOf("Event")
		case ev.Type == api.EventLocation:
			schema = schemaOf("LocationUpdate")
		case ev.Type == api.EventSnapshot && stream == api.PathStreamAll:
			schema = map[string]any{"type": "array", "items": schemaOf("Order")}
		case ev.Type == api.EventSnapshot:
			schema = schemaOf("PartySnapshot")
		case ev.Type == api.EventEnd:
			schema = schemaOf("StreamEnd")
		default:
			t.Fatalf("%s sent an event of type %q", stream, ev.Type)
		}
		if err := doc.CheckJSON(schema, []byte(ev.Data)); err != nil {
			t.Errorf("%s sent a %s event not as described: %v\n%s", stream, ev.Type, err, ev.Data)
		}
	}
	// Each stream, read until it has sent every kind of event it sends here.
	for stream, kinds := range map[string][]string{
		api.StreamPath("o-doc"):      {api.EventStatus, api.EventCourier, api.EventLocation},
		"/v1/restaurants/r-1/stream": {api.EventSnapshot, api.EventLocation},
		api.PathStreamAll:            {api.EventSnapshot},
		"/v1/couriers/c-1/stream":    {api.EventSnapshot},
		"/v1/customers/u-1/stream":   {api.EventSnapshot, api.EventLocation},
	} {
		last := ""
		if stream == api.StreamPath("o-doc") {
			last = "0" // the whole history
		}
		r := openParty(t, base, stream, last)
		seen := map[string]bool{}
		for len(seen) < len(kinds) {
			ev, err := r.Next()
			if err != nil {
				t.Fatalf("%s: %v, having seen %v of %v", stream, err, seen, kinds)
			}
			checkData(stream, ev)
			if slices.Contains(kinds, ev.Type) {
				seen[ev.Type] = true
			}
		}
	}
	// The WebSocket's messages: each an event of the order's history or a position, as the
	// description says, a position marked by its type.
	ws := dialWS(t, base, "o-doc", "0")
	seen := map[string]bool{}
	for len(seen) < 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, b, err := ws.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("the WebSocket: %v, having seen %v", err, seen)
		}
		var m struct{ Type, Kind string }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("the WebSocket sent %q: %v", b, err)
		}
		schema := schemaOf("Event")
		if m.Type == api.EventLocation {
			schema = schemaOf("LocationUpdate")
		}
		if err := doc.CheckJSON(schema, b); err != nil {
			t.Errorf("the WebSocket sent a message not as described: %v\n%s", err, b)
		}
		seen[cmp.Or(m.Type, m.Kind, api.EventStatus)] = true
	}
	ws.CloseNow()

	// And the all-orders stream's events, once something changes.
	r := openParty(t, base, api.PathStreamAll, "")
	if ev, err := r.Next(); err != nil || ev.Type != api.EventSnapshot {
		t.Fatalf("the all-orders stream opened with %+v, %v", ev, err)
	}
	do(api.RouteSetStatus, "/v1/orders/o-doc/status", `{"status":"delivered"}`)
	for range 10 { // the delivery, after at most a few heartbeats
		ev, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		checkData(api.PathStreamAll, ev)
		if ev.Type == api.EventStatus {
			var e struct{ Status string }
			if json.Unmarshal([]byte(ev.Data), &e) == nil && e.Status == "delivered" {
				return
			}
		}
	}
	t.Error("the all-orders stream did not send the delivery")
}
