package server_test

import (
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/server"
)

// decodeErrorCodes are the only codes a decoder may answer with.
var decodeErrorCodes = map[string]bool{ordercast.EMalformed: true, ordercast.EBodyTooLarge: true}

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
		n, err := server.ParseLastEventID(v)
		if err != nil {
			if ordercast.ErrorCode(err) != ordercast.EMalformed {
				t.Fatalf("ParseLastEventID(%q): %v", v, err)
			}
			return
		}
		if n < 0 || (v == "" && n != 0) {
			t.Fatalf("ParseLastEventID(%q) = %d", v, n)
		}
	})
}
