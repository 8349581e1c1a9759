package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/server"
)

// TestJSONRoutesReadOneObjectOneWay: every JSON route refuses a body that is not one JSON
// object, that holds a key twice in one object (in any letter case, escaped or not, at any
// depth), that is coded, or that leaves out what it must say; with a stable code and a message
// that says what is wrong, and with the store as it was. o-1 has a courier, so that a body read
// as an unassignment would show.
func TestJSONRoutesReadOneObjectOneWay(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	mustCreate(t, base, "o-1")
	ls.assign(t, "o-1", "c-1")
	ids := []string{"o-1", "o-new"}

	const (
		create    = "POST /v1/orders"
		status    = "POST /v1/orders/o-1/status"
		courier   = "PUT /v1/orders/o-1/courier"
		changes   = "POST /v1/status-changes"
		position  = "POST /v1/couriers/c-1/location"
		positions = "POST /v1/locations"
	)
	for _, tt := range []struct {
		route, body string
		header      []string
		status      int
		code        string
		message     string
	}{
		// Not one object: encoding/json takes null as "nothing set".
		{create, `null`, nil, 400, ordercast.EMalformed, "must be a JSON object"},
		{status, ` null `, nil, 400, ordercast.EMalformed, "must be a JSON object"},
		{courier, `null`, nil, 400, ordercast.EMalformed, "must be a JSON object"},
		{courier, `[]`, nil, 400, ordercast.EMalformed, "must be a JSON object"},
		{changes, `[{"order_id":"o-1","status":"confirmed"}]`, nil, 400, ordercast.EMalformed, "must be a JSON object"},
		{position, `"here"`, nil, 400, ordercast.EMalformed, "must be a JSON object"},
		{positions, "\n\tnull", nil, 400, ordercast.EMalformed, "must be a JSON object"},
		{positions, `{"positions":[{"courier_id":"c-1","lat":1,"lng":1},null]}`, nil, 400, ordercast.EMalformed, "position 1 is null"},
		{create, `7`, nil, 400, ordercast.EMalformed, "must be a JSON object"},

		// Only an explicit null unassigns.
		{courier, `{}`, nil, 422, ordercast.EInvalid, "courier_id is required"},
		{courier, `{"note":"x"}`, nil, 422, ordercast.EInvalid, "courier_id is required"},
		{courier, `{"note":"x","courier_id":7}`, nil, 400, ordercast.EMalformed, `field "courier_id" has the wrong type`},
		// A name goes with a courier, on one line.
		{courier, `{"courier_id":null,"courier_name":"Omar"}`, nil, 422, ordercast.EInvalid, "courier_name names the courier assigned"},
		{courier, `{"courier_id":"c-1","courier_name":" "}`, nil, 422, ordercast.EInvalid, "courier_name must not be blank"},
		{courier, `{"courier_id":"c-2","courier_name":""}`, nil, 422, ordercast.EInvalid, "courier_name is empty: leave it out"},
		{courier, `{"courier_id":null,"courier_name":""}`, nil, 422, ordercast.EInvalid, "courier_name is empty: leave it out"},
		// A version check sent null, a serializer's unset variable, is not one left out: the
		// change would apply at any version.
		{status, `{"status":"confirmed","expected_version":null}`, nil, 422, ordercast.EInvalid, "expected_version is null: leave it out"},
		{status, `{"status":"confirmed","expected_version":99999999999999999999}`, nil, 422, ordercast.EInvalid, `field "expected_version" is out of range`},
		{status, `{"status":"confirmed","expected_version":1.5}`, nil, 400, ordercast.EMalformed, `field "expected_version" has the wrong type`},
		{status, `{"status":"confirmed","Expected_Version" : null}`, nil, 422, ordercast.EInvalid, "expected_version is null"},
		{courier, `{"courier_id":"c-2","expected_version":null}`, nil, 422, ordercast.EInvalid, "expected_version is null"},
		{changes, `{"changes":[{"order_id":"o-1","status":"confirmed","expected_version":null}]}`, nil, 422, ordercast.EInvalid, "expected_version is null"},
		// An id sent empty or null is not one left out: a retry would make another order. Nor is
		// an owner: the order would be on no board and no page.
		{create, `{"id":""}`, nil, 422, ordercast.EInvalidID, "id is empty: leave it out for the server to make one"},
		{create, `{"id":null,"restaurant_id":"luigi"}`, nil, 422, ordercast.EInvalidID, "id is null: leave it out for the server to make one"},
		{create, `{"id":"o-new","restaurant_id":null}`, nil, 422, ordercast.EInvalid, "restaurant_id is null: leave it out for an order without one"},
		{create, `{"id":"o-new","customer_id":null}`, nil, 422, ordercast.EInvalid, "customer_id is null: leave it out for an order without one"},
		{create, `{"id":7}`, nil, 400, ordercast.EMalformed, `field "id" has the wrong type`},
		{create, `{"id":"o-new","restaurant_id":["luigi"]}`, nil, 400, ordercast.EMalformed, `field "restaurant_id" has the wrong type`},
		{courier, `{"courier_id":"c-2","courier_name":null}`, nil, 422, ordercast.EInvalid, "courier_name is null: leave it out"},
		// A status left out, or null (an unset variable), is said to be missing, not unknown.
		{status, `{"note":"x"}`, nil, 422, ordercast.EInvalidStatus, "status is required"},
		{status, `{"status":null}`, nil, 422, ordercast.EInvalidStatus, "status is required"},
		{courier, `{"courier_id":"c-1","courier_name":" \u200b"}`, nil, 422, ordercast.EInvalid, "courier_name must not be blank"},
		{courier, `{"courier_id":"c-1","courier_name":"\u3164\u034f\ufe0f\u2800"}`, nil, 422, ordercast.EInvalid, "courier_name must not be blank"},
		{courier, `{"courier_id":"c-1","courier_name":"Omar\u202e"}`, nil, 422, ordercast.EInvalid, "courier_name must not hold bidirectional"},
		{courier, `{"courier_id":"c-1","courier_name":"Omar\u0007"}`, nil, 422, ordercast.EInvalid, "courier_name must be one line of text"},
		{courier, `{"courier_id":"c-1","courier_name":"Omar\u2028Ali"}`, nil, 422, ordercast.EInvalid, "courier_name must be one line of text"},
		{courier, `{"courier_id":"c-1","courier_name":"` + strings.Repeat("o", ordercast.MaxCourierNameLength+1) + `"}`, nil, 422, ordercast.EInvalid, "courier_name must be at most 64 bytes"},
		{courier, `{"courier_id":"c-1","courier_name":7}`, nil, 400, ordercast.EMalformed, `field "courier_name" has the wrong type`},

		// A place needs both coordinates, as a position does.
		{create, `{"id":"o-new","pickup":{"lat":1}}`, nil, 422, ordercast.EInvalidLocation, "pickup.lat and pickup.lng are required"},
		{create, `{"id":"o-new","dropoff":{}}`, nil, 422, ordercast.EInvalidLocation, "dropoff.lat and dropoff.lng are required"},
		{create, `{"id":"o-new","dropoff":{"lng":0}}`, nil, 422, ordercast.EInvalidLocation, "dropoff.lat and dropoff.lng are required"},
		{position, `{"lat":52.5}`, nil, 422, ordercast.EInvalidLocation, "lat and lng are required"},
		// A number beyond float64 is a coordinate out of range, not a value of another type.
		{position, `{"lat":1e400,"lng":13.4}`, nil, 422, ordercast.EInvalidLocation, `field "lat" is out of range`},
		{create, `{"id":"o-new","pickup":{"lat":1,"lng":-1e999}}`, nil, 422, ordercast.EInvalidLocation, `field "pickup.lng" is out of range`},
		{positions, `{"positions":[{"courier_id":"c-1","lat":1,"lng":1,"speed_mps":2e308}]}`, nil, 422, ordercast.EInvalidLocation, `field "positions[0].speed_mps" is out of range`},
		{position, `{"lat":"52.5","lng":13.4}`, nil, 400, ordercast.EMalformed, `field "lat" has the wrong type`},
		{position, `{"lat":52.5,"lng":13.4,"at":12345}`, nil, 400, ordercast.EMalformed, "a time must be an RFC 3339 string"},
		{positions, `{"positions":[{"courier_id":"c-1","lat":52.5,"lng":13.4,"at":true}]}`, nil, 400, ordercast.EMalformed, "a time must be an RFC 3339 string"},

		// A key twice: the server would apply the last, a proxy or validator may read the first.
		{status, `{"status":"confirmed","STATUS":"cancelled"}`, nil, 400, ordercast.EMalformed, `keys "status" and "STATUS" in one object are the same key`},
		{status, `{"status":"confirmed","\u0053tatus":"cancelled"}`, nil, 400, ordercast.EMalformed, `keys "status" and "Status"`},
		{status, `{"status":"confirmed","ſtatus":"cancelled"}`, nil, 400, ordercast.EMalformed, `"ſtatus"`}, // U+017F folds to s
		{create, `{"id":"x","restaurant_id":"luigi","Restaurant_ID":"mario"}`, nil, 400, ordercast.EMalformed, `"restaurant_id" and "Restaurant_ID"`},
		{create, `{"id":"o-new","id":"o-new"}`, nil, 400, ordercast.EMalformed, `key "id" appears twice in one object`},
		{create, `{"id":"o-new","details":{"size":"L","items":[{"n":1,"n":2}]}}`, nil, 400, ordercast.EMalformed, `key "n" appears twice`},
		{create, `{"id":"o-new","Details":{},"details":{}}`, nil, 400, ordercast.EMalformed, `"Details" and "details"`},
		{create, `{"id":"o-new","pickup":{"lat":1,"lng":2,"Lng":3}}`, nil, 400, ordercast.EMalformed, `"lng" and "Lng"`},
		{courier, `{"courier_id":"c-2","Courier_ID":null}`, nil, 400, ordercast.EMalformed, `"courier_id" and "Courier_ID"`},
		{changes, `{"changes":[{"order_id":"o-1","status":"confirmed","Status":"cancelled"}]}`, nil, 400, ordercast.EMalformed, `"status" and "Status"`},
		{position, `{"lat":52.5,"lng":13.4,"LAT":0}`, nil, 400, ordercast.EMalformed, `"lat" and "LAT"`},
		{positions, `{"positions":[],"Positions":[{"courier_id":"c-1","lat":1,"lng":1}]}`, nil, 400, ordercast.EMalformed, `"positions" and "Positions"`},

		// JSON is UTF-8: bytes that are not, or a body declared in another charset, are refused
		// rather than read with their text changed.
		{status, "{\"status\":\"confirmed\",\"note\":\"caf\xe9\"}", nil, 400, ordercast.EMalformed, "not valid UTF-8"},
		{create, "{\"id\":\"o-\xff\"}", nil, 400, ordercast.EMalformed, "not valid UTF-8"},
		// Nor is half of a UTF-16 surrogate pair, escaped: encoding/json puts U+FFFD in its
		// place in a note and keeps it in details, served back as JSON strict readers refuse.
		{create, `{"id":"o-new","details":{"a":"\ud800"}}`, nil, 400, ordercast.EMalformed, `a string holds \ud800, half of a UTF-16 surrogate pair alone`},
		{create, `{"id":"o-new","details":{"\udc00":1}}`, nil, 400, ordercast.EMalformed, `\udc00`},
		{status, `{"status":"confirmed","note":"caf\uD83D\u0065"}`, nil, 400, ordercast.EMalformed, `\uD83D`},
		{changes, `{"changes":[{"order_id":"o-1","status":"confirmed","note":"x\ud83d"}]}`, nil, 400, ordercast.EMalformed, `\ud83d`},
		{status, `{"status":"confirmed"}`, []string{"Content-Type", "application/json; charset=iso-8859-1"}, 415, ordercast.EUnsupportedMedia, `not charset "iso-8859-1"`},

		// Content-Type is one value: a proxy in front may read the other of two.
		{status, `{"status":"confirmed"}`, []string{"Content-Type", "application/json", "Content-Type", "text/plain"}, 415, ordercast.EUnsupportedMedia, "Content-Type must be sent once"},

		// A coded body is not taken, whether or not its bytes happen to be JSON.
		{status, `{"status":"confirmed"}`, []string{"Content-Encoding", "br"}, 415, ordercast.EUnsupportedMedia, `Content-Encoding "br" is not supported`},
		{create, "\x1f\x8b\x08\x00", []string{"Content-Encoding", "gzip"}, 415, ordercast.EUnsupportedMedia, `Content-Encoding "gzip" is not supported`},
		{courier, `{"courier_id":null}`, []string{"Content-Encoding", "identity, deflate"}, 415, ordercast.EUnsupportedMedia, `"deflate"`},

		// An Idempotency-Key sent empty is refused, not ignored.
		{create, `{"id":"o-new"}`, []string{"Idempotency-Key", ""}, 422, ordercast.EInvalid, "Idempotency-Key must be 1 to 255 characters"},
		{status, `{"status":"confirmed"}`, []string{"Idempotency-Key", ""}, 422, ordercast.EInvalid, "Idempotency-Key must be 1 to 255 characters"},
		{changes, `{"changes":[{"order_id":"o-1","status":"confirmed"}]}`, []string{"Idempotency-Key", ""}, 422, ordercast.EInvalid, "Idempotency-Key is not taken"},
		{courier, `{"courier_id":null}`, []string{"Idempotency-Key", "k-1"}, 422, ordercast.EInvalid, "Idempotency-Key is not taken by PUT /v1/orders/{id}/courier"},
		{position, `{"lat":52.5,"lng":13.4}`, []string{"Idempotency-Key", "k-1"}, 422, ordercast.EInvalid, "Idempotency-Key is not taken by POST /v1/couriers/{cid}/location"},
		{positions, `{"positions":[{"courier_id":"c-1","lat":52.5,"lng":13.4}]}`, []string{"Idempotency-Key", "k-1"}, 422, ordercast.EInvalid, "Idempotency-Key is not taken by POST /v1/locations"},
	} {
		method, path, _ := strings.Cut(tt.route, " ")
		t.Run(fmt.Sprintf("%s %q %s", tt.route, tt.body, strings.Join(tt.header, ": ")), func(t *testing.T) {
			before := snapshot(t, ls.store, ids...)
			resp, body := call(t, method, base+path, "", tt.body, tt.header...)
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%d %q is not a JSON error: %v", resp.StatusCode, body, err)
			}
			if resp.StatusCode != tt.status || e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.message) {
				t.Fatalf("%d %s, want %d %s saying %q", resp.StatusCode, body, tt.status, tt.code, tt.message)
			}
			if after := snapshot(t, ls.store, ids...); after != before {
				t.Fatalf("store changed:\nbefore %s\nafter  %s", before, after)
			}
			// A 415 says what would have been taken (RFC 9110 §15.5.16): Accept-Encoding for
			// a coded body, Accept for a media type.
			if resp.StatusCode == http.StatusUnsupportedMediaType {
				field, want := "Accept", "application/json"
				if slices.Contains(tt.header, "Content-Encoding") {
					field, want = "Accept-Encoding", "identity"
				}
				if got := resp.Header.Get(field); !strings.HasPrefix(got, want) {
					t.Fatalf("415 with %s %q, want %q", field, got, want)
				}
			}
		})
	}

	// Two Idempotency-Key fields are one list of both (RFC 9110 §5.3), which is no key.
	req, err := http.NewRequest("POST", base+"/v1/orders", strings.NewReader(`{"id":"o-new"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Idempotency-Key"] = []string{"k-1", "k-2"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("two Idempotency-Keys: %d, want 422", resp.StatusCode)
	}

	// What is still taken: an explicit null unassigns, a full place is kept, identity is no coding.
	resp, body := call(t, "PUT", base+"/v1/orders/o-1/courier", "", `{"courier_id":null}`, "Content-Encoding", "identity")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"changed":true`) || strings.Contains(string(body), `"courier_id"`) {
		t.Errorf("unassign with null: %d %s, want 200 changed, no courier", resp.StatusCode, body)
	}
	// A pair escaped whole is a character like any other; a key of the details may be named
	// expected_version and be null; an escaped backslash before a u starts no escape.
	resp, body = call(t, "POST", base+"/v1/orders", "", `{"id":"o-emoji","note":"\ud83c\udf55","details":{"a":"\uD83D\uDE00","expected_version":null,"b":"\\ud800"}}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"a":"\uD83D\uDE00"`) || !strings.Contains(string(body), `"b":"\\ud800"`) {
		t.Errorf("create with surrogate pairs, a backslash and a null expected_version in its details: %d %s, want 201 with them as sent", resp.StatusCode, body)
	}
	// The order's own details are JSON as sent, where letter case counts.
	resp, body = call(t, "POST", base+"/v1/orders", "", `{"id":"o-cased","details":{"Size":"L","size":"M","items":[{"n":1,"N":2}]}}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"Size":"L","size":"M"`) {
		t.Errorf("create with keys differing in case in its details: %d %s, want 201 with both", resp.StatusCode, body)
	}
	// encoding/json takes "Details" for details, so its keys keep their case as well.
	resp, body = call(t, "POST", base+"/v1/orders", "", `{"id":"o-cased-too","Details":{"Size":"L","size":"M"}}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"Size":"L","size":"M"`) {
		t.Errorf("create with keys differing in case in its Details: %d %s, want 201 with both", resp.StatusCode, body)
	}
	// A zero coordinate is kept (on the equator, or the prime meridian), not left out as unset.
	resp, body = call(t, "POST", base+"/v1/orders", "", `{"id":"o-placed","pickup":{"lat":0,"lng":9.7},"dropoff":{"lat":52.5,"lng":0}}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"pickup":{"lat":0,"lng":9.7}`) || !strings.Contains(string(body), `"dropoff":{"lat":52.5,"lng":0}`) {
		t.Errorf("create with places: %d %s, want 201 with the pickup at 0,9.7 and the drop-off at 52.5,0", resp.StatusCode, body)
	}
	// Both zero is what a checkout that never set the place sends: refused, nothing created.
	resp, body = call(t, "POST", base+"/v1/orders", "", `{"id":"o-nowhere","dropoff":{"lat":0,"lng":0}}`)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"invalid_location"`) || !strings.Contains(string(body), "dropoff.lat and dropoff.lng are both 0") {
		t.Errorf("create with the drop-off at 0,0: %d %s, want 422 invalid_location saying why", resp.StatusCode, body)
	}
	if resp, _ := call(t, "GET", base+"/v1/orders/o-nowhere", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("after the refused create, GET o-nowhere: %d, want 404", resp.StatusCode)
	}
}

// TestRepeatedKey: the decoder finds a key repeated in one object, and only that, whatever else
// the body holds; checked against a reference built on encoding/json's tokens.
func TestRepeatedKey(t *testing.T) {
	for _, body := range repeatedKeySeeds {
		checkRepeatedKey(t, body)
	}
}

// FuzzRepeatedKey: the same for any body.
func FuzzRepeatedKey(f *testing.F) {
	for _, s := range repeatedKeySeeds {
		f.Add(s)
	}
	f.Fuzz(checkRepeatedKey)
}

var repeatedKeySeeds = []string{
	`{}`, `{"a":1}`, `{"a":1,"b":2}`, `{"a":1,"A":2}`, `{"a":1,"a":1}`,
	`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, `{"a":{"b":1,"B":2}}`, `{"a":[{"x":1,"X":2}]}`,
	`{"a":"{\"a\":1,\"A\":2}"}`, `{"a\"":1,"A\"":2}`, `{"a\\":1,"b":"\\","A\\":2}`,
	`{"\u0041":1,"a":2}`, `{"k":1,"K":2}`, `{"s":1,"ſ":2}`, `{"ß":1,"ẞ":2}`, `{"σ":1,"ς":2}`,
	`{"a" : 1 , "A" : 2}`, "{\"\xff\":1,\"\xfe\":2}", `{"":1,"":2}`, `{"x":["a","A"]}`, `{"x":"a","y":"A"}`,
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"K3":3}`,
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"ǆ":{"K17":1},"ǅ":1}`,
	"{\"k\":1,\"\u212a\":2}", // the Kelvin sign folds to k
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"s16":16,"k17":17,"\u017f16":1}`,
	"{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,\"k16\":16,\"\u212a7\":7}",
	`{"a":[[[[{"b":{"c":{"d":1,"e":{"f":1,"F":[]}}}}]]]]}`,
	`{"details":{"n":1,"N":2}}`, `{"details":[{"n":1,"N":2},{"x":{"K":1,"k":2}}]}`, `{"details":{"n":1,"n":2}}`,
	`{"details":{"details":{"a":1,"A":2}},"x":{"a":1,"A":2}}`, `{"x":{"details":{"a":1,"A":2}}}`, `{"Details":{"a":1,"A":2}}`, `{"DETAILS":{"a":1,"A":2}}`, "{\"detail\u017f\":{\"a\":1,\"A\":2}}", `{"a":1e400,"b":{"c":[1e-400]}}`, `{"a":1} {"a":2}`, `[{"a":1,"A":2}]`, `{"a":`,
}

// checkRepeatedKey holds the decoder's verdict on body against the reference's, for a body that
// is one valid JSON object in UTF-8 (the decoder refuses anything else before it looks at keys;
// json.Valid takes bytes that are not UTF-8).
func checkRepeatedKey(t *testing.T, body string) {
	if !json.Valid([]byte(body)) || !utf8.ValidString(body) || !strings.HasPrefix(strings.TrimLeft(body, " \t\r\n"), "{") {
		return
	}
	var v json.RawMessage // takes any valid value: 1e400 too
	err := server.DecodeJSON(strings.NewReader(body), &v)
	if msg := ordercast.ErrorMessage(err); strings.Contains(msg, "surrogate pair alone") || strings.Contains(msg, "expected_version is null") {
		return // refused before its keys are compared, for what TestJSONRoutesReadOneObjectOneWay holds
	}
	repeated := err != nil && (strings.Contains(ordercast.ErrorMessage(err), "appears twice") || strings.Contains(ordercast.ErrorMessage(err), "are the same key"))
	if err != nil && !repeated {
		t.Fatalf("DecodeJSON(%q): %v, want a repeated key or nothing", body, err)
	}
	ref := json.NewDecoder(strings.NewReader(body))
	ref.UseNumber() // so that 1e400 is a token
	want, rerr := referenceRepeatedKey(ref)
	if rerr != nil {
		t.Fatalf("reference on %q: %v", body, rerr)
	}
	if repeated != want {
		t.Fatalf("DecodeJSON(%q): %v; a key repeats: %v", body, err, want)
	}
}

// referenceRepeatedKey reads one JSON value from dec and reports whether an object in it holds
// two keys equal under strings.EqualFold (within the top-level object's details, two equal
// keys): slow and plain, to hold the decoder's scan to.
func referenceRepeatedKey(dec *json.Decoder) (bool, error) { return referenceRepeated(dec, 0, false) }

// referenceRepeated is referenceRepeatedKey for a value at depth (0: the body) that is, or is
// within, the top-level details when exact.
func referenceRepeated(dec *json.Decoder, depth int, exact bool) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return false, nil
	}
	var keys []string
	found := false
	for dec.More() {
		innerExact := exact
		if d == '{' {
			k, err := dec.Token()
			if err != nil {
				return false, err
			}
			for _, seen := range keys {
				found = found || seen == k.(string) || !exact && strings.EqualFold(seen, k.(string))
			}
			keys = append(keys, k.(string))
			innerExact = exact || depth == 0 && strings.EqualFold(k.(string), "details")
		}
		inner, err := referenceRepeated(dec, depth+1, innerExact)
		if err != nil {
			return false, err
		}
		found = found || inner
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return found, nil
}

// TestARefusalRepeatsLittleOfWhatItWasSent: an error message names the value it refuses by its
// first few bytes, not whole. Repeated whole, a long value, each '<' escaped six bytes long in
// JSON, answered a small request with a body several times its size.
func TestARefusalRepeatsLittleOfWhatItWasSent(t *testing.T) {
	t.Parallel()
	ls := newLocationServer(t, false, nil)
	base := ls.URL()
	mustCreate(t, base, "o-1")
	long := strings.Repeat("<", 60<<10)
	for _, tt := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		code, message            string
	}{
		{"a status", "POST", "/v1/orders/o-1/status", `{"status":"` + long + `"}`, nil, 422, ordercast.EInvalidStatus, `unknown status "<<<`},
		{"an unknown field", "POST", "/v1/orders", `{"id":"o-new","` + long + `":1}`, nil, 400, ordercast.EMalformed, `unknown field "<<<`},
		{"a key twice", "POST", "/v1/orders", `{"id":"o-new","details":{"` + long[:30<<10] + `":1,"` + long[:30<<10] + `":2}}`, nil, 400, ordercast.EMalformed, `key "<<<`},
		{"a content coding", "POST", "/v1/orders", `{"id":"o-new"}`, []string{"Content-Encoding", long[:30<<10]}, 415, ordercast.EUnsupportedMedia, `Content-Encoding "<<<`},
		{"a position's time", "POST", "/v1/couriers/c-1/location", `{"lat":1,"lng":1,"at":"` + long + `"}`, nil, 400, ordercast.EMalformed, `not "<<<`},
		{"a heartbeat", "GET", "/v1/orders/o-1/stream?heartbeat=" + strings.Repeat("%3C", 8<<10), "", nil, 422, ordercast.EInvalid, `got "<<<`},
		{"an origin", "OPTIONS", "/v1/orders", "", []string{"Origin", "https://" + long[:30<<10], "Access-Control-Request-Method", "POST"}, 403, ordercast.EForbidden, `origin "https://<<<`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, tt.method, base+tt.path, "", tt.body, tt.header...)
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%d %.200q is not a JSON error: %v", resp.StatusCode, body, err)
			}
			if resp.StatusCode != tt.status || e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.message) || !strings.Contains(e.Error.Message, "…") {
				t.Fatalf("%d %s %.300q, want %d %s saying %q and cut short", resp.StatusCode, e.Error.Code, e.Error.Message, tt.status, tt.code, tt.message)
			}
			if len(body) > 1<<10 {
				t.Errorf("the refusal is %d bytes long, want at most 1 KiB", len(body))
			}
		})
	}

	// Many refusals in one answer: each names its value as shortly, so the answer is smaller
	// than the request it refuses.
	var req strings.Builder
	req.WriteString(`{"changes":[`)
	for i := range 1000 {
		if i > 0 {
			req.WriteByte(',')
		}
		req.WriteString(`{"order_id":"o-1","status":"` + long[:900] + `"}`)
	}
	req.WriteString(`]}`)
	resp, body := call(t, "POST", base+"/v1/status-changes", "", req.String())
	if resp.StatusCode != http.StatusOK || strings.Count(string(body), ordercast.EInvalidStatus) != 1000 {
		t.Fatalf("1,000 unknown statuses: %d %.300s, want 200 with 1,000 invalid_status", resp.StatusCode, body)
	}
	if len(body) >= req.Len()/2 {
		t.Errorf("the answer is %d bytes long for a request of %d, want less than half", len(body), req.Len())
	}
}
