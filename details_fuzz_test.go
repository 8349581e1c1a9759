package ordercast_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/ordercast/ordercast"
)

// FuzzNormalizeDetails: any input is either refused with invalid_details, or kept as a JSON object
// within the size limit, served exactly as stored, every number a finite float64, no NUL, equal
// to itself by value, and unchanged by a second pass.
func FuzzNormalizeDetails(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"n":1e131000}`, `{"n":1e-400}`, `{"s":"\u0000"}`, `{"a":"<&>"}`,
		`{"b":[1.50,{"c":null}]}`, ``, `null`, `[1]`, `{"a":1}{}`, `{"n":-0.0e-99999}`, `{"n":4.9e-324}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := ordercast.NormalizeDetails(json.RawMessage(in))
		if err != nil {
			if ordercast.ErrorCode(err) != ordercast.EInvalidDetails {
				t.Fatalf("NormalizeDetails(%q): %v", in, err)
			}
			return
		}
		if len(out) > ordercast.MaxDetailsBytes || !json.Valid(out) || out[0] != '{' {
			t.Fatalf("NormalizeDetails(%q) = %s: not an object within the limit", in, out)
		}
		served, err := json.Marshal(json.RawMessage(out))
		if err != nil || !bytes.Equal(served, out) {
			t.Fatalf("NormalizeDetails(%q) = %s, served as %s", in, out, served)
		}
		if again, err := ordercast.NormalizeDetails(out); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second pass of %s: %s, %v", out, again, err)
		}
		if !ordercast.SameDetails(out, out) {
			t.Fatalf("%s is not the same as itself", out)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch v := tok.(type) {
			case json.Number:
				if _, err := strconv.ParseFloat(string(v), 64); err != nil {
					t.Fatalf("%s kept a number out of range: %s", out, v)
				}
			case string:
				if strings.ContainsRune(v, 0) {
					t.Fatalf("%s kept a NUL", out)
				}
			}
		}
	})
}

// FuzzIdempotencyKey: a key is accepted only if it is 1 to 255 visible ASCII characters.
func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"k", "", "has space", "ключ", strings.Repeat("k", 256), "a\x00b", "550e8400-e29b-41d4-a716-446655440000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		err := ordercast.ValidateIdempotencyKey(k)
		ok := len(k) >= 1 && len(k) <= ordercast.MaxIdempotencyKeyLength
		for i := 0; i < len(k); i++ {
			ok = ok && k[i] > ' ' && k[i] < 0x7f
		}
		if (err == nil) != ok || (err != nil && ordercast.ErrorCode(err) != ordercast.EInvalid) {
			t.Fatalf("ValidateIdempotencyKey(%q) = %v, want ok=%v", k, err, ok)
		}
	})
}
