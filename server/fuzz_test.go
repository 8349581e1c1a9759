package server_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/hub"
	"github.com/ordercast/ordercast/server"
	"github.com/ordercast/ordercast/sqlite"
)

// decodeErrorCodes are the only codes a decoder may answer with: a body that is no JSON it takes,
// one too large, and a value that is JSON of the right type but no argument the route takes (a
// null expected_version, an integer past int64).
var decodeErrorCodes = map[string]bool{ordercast.EMalformed: true, ordercast.EBodyTooLarge: true, ordercast.EInvalid: true}

func fuzzDecode[T any](f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v T
		err := server.DecodeJSON(strings.NewReader(body), &v)
		if err != nil && !decodeErrorCodes[ordercast.ErrorCode(err)] {
			t.Fatalf("DecodeJSON(%q): %v, code %q", body, err, ordercast.ErrorCode(err))
		}
	})
}

// FuzzDecodeCreateOrder: no body makes the create decoder panic or answer with anything but a
// client error.
func FuzzDecodeCreateOrder(f *testing.F) {
	fuzzDecode[server.CreateOrderRequest](f, `{"id":"a","details":{"items":2},"note":"n"}`, `{}`, `{"id":1}`, `{"x":1}`, `{} {}`, ``)
}

// FuzzDecodeSetStatus: the same for the status change decoder.
func FuzzDecodeSetStatus(f *testing.F) {
	fuzzDecode[server.SetStatusRequest](f, `{"status":"ready","expected_version":3}`, `{"status":null}`, `{"expected_version":1e400}`, `[`)
}

// FuzzParseLastEventID: any header value either parses to a non-negative seq whose decimal form
// is the input, or is a malformed-request error.
func FuzzParseLastEventID(f *testing.F) {
	for _, s := range []string{"", "0", "42", "-1", "+1", "9223372036854775808", " 1", "01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, resume, err := server.ParseLastEventID(v)
		if err != nil {
			if ordercast.ErrorCode(err) != ordercast.EMalformed {
				t.Fatalf("ParseLastEventID(%q): %v", v, err)
			}
			return
		}
		if n < 0 || resume != (v != "") || (v == "" && n != 0) || (v != "" && strconv.FormatInt(n, 10) != v) {
			t.Fatalf("ParseLastEventID(%q) = %d, %t", v, n, resume)
		}
	})
}

// FuzzIdempotentCreate: whatever the Idempotency-Key header and body, a create never answers 500,
// and sending it again with the same key and body gets the same status and body.
func FuzzIdempotentCreate(f *testing.F) {
	for _, s := range [][2]string{{"k-1", `{"details":{"a":1}}`}, {"", `{}`}, {"a b", `{}`}, {"k-2", `{"details":{"n":1e400}}`}, {"k-3", `{"id":".."}`}} {
		f.Add(s[0], s[1])
	}
	h := hub.New()
	st := sqlite.New(filepath.Join(f.TempDir(), "fuzz.db"))
	st.Publisher = h
	if err := st.Open(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	handler := server.New(st, h).Handler()
	send := func(key, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(server.IdempotencyKeyHeader, key)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}
	f.Fuzz(func(t *testing.T, key, body string) {
		first := send(key, body)
		if first.Code >= 500 {
			t.Fatalf("key %q body %q: %d %s", key, body, first.Code, first.Body)
		}
		if key == "" || first.Code >= 300 {
			return
		}
		again := send(key, body)
		if again.Code != first.Code || again.Body.String() != first.Body.String() {
			t.Fatalf("key %q body %q: first %d %s, retry %d %s", key, body, first.Code, first.Body, again.Code, again.Body)
		}
	})
}
