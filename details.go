package ordercast

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NormalizeDetails checks that raw is a JSON object (or empty, meaning {}) within MaxDetailsBytes,
// whose numbers are within float64's range and whose strings hold no NUL, and returns it as given,
// only compacted and with <, > and & escaped as encoding/json serves it: stores keep these bytes,
// so no database re-renders them (PostgreSQL's jsonb spelled 1e131000 out in 131 KB) and what is
// served is what was checked against the limit.
func NormalizeDetails(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	if len(raw) > MaxDetailsBytes {
		return nil, Errorf(EInvalidDetails, "details must be at most %d bytes", MaxDetailsBytes)
	}
	// Kept byte for byte, and PostgreSQL's text refuses what is not UTF-8 (failing the whole
	// batch the create is in): refuse it here, on both stores.
	if !utf8.Valid(raw) {
		return nil, Errorf(EInvalidDetails, "details must be UTF-8")
	}
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, Errorf(EInvalidDetails, "details must be a JSON object")
	}
	if err := checkDetailsValue(v); err != nil {
		return nil, err
	}
	// Marshal of a RawMessage compacts and escapes it exactly as every later Marshal would.
	out, err := json.Marshal(json.RawMessage(raw))
	if err != nil {
		return nil, Errorf(EInvalidDetails, "details must be a JSON object")
	}
	if len(out) > MaxDetailsBytes {
		return nil, Errorf(EInvalidDetails, "details must be at most %d bytes as served", MaxDetailsBytes)
	}
	return out, nil
}

// checkDetailsValue refuses what stores and clients cannot hold faithfully: numbers outside
// float64's range (or so small they round to zero) and NUL in strings and keys.
func checkDetailsValue(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) {
				return Errorf(EInvalidDetails, "details must not contain NUL (\\u0000)")
			}
			if err := checkDetailsValue(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := checkDetailsValue(e); err != nil {
				return err
			}
		}
	case string:
		if strings.ContainsRune(v, 0) {
			return Errorf(EInvalidDetails, "details must not contain NUL (\\u0000)")
		}
	case json.Number:
		if !finiteNumber(string(v)) {
			return Errorf(EInvalidDetails, "details numbers must be within the range of a 64-bit float")
		}
	}
	return nil
}

// finiteNumber reports whether a JSON number literal is a float64 that neither overflows nor
// underflows to zero.
func finiteNumber(lit string) bool {
	mant, _, _ := strings.Cut(strings.ToLower(lit), "e")
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	if f == 0 && strings.Trim(mant, "-+0.") != "" {
		return false // a non-zero mantissa that rounded to zero: the exponent is out of range
	}
	return true
}

// SameDetails reports whether two details documents hold the same value: object keys in any
// order, any spacing, numbers compared by decimal value (1, 1.0 and 10e-1 are one value), as
// PostgreSQL's jsonb compares them, so both stores judge a repeated creation alike.
func SameDetails(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ca, errA := CanonicalDetails(a)
	cb, errB := CanonicalDetails(b)
	return errA == nil && errB == nil && bytes.Equal(ca, cb)
}

// CanonicalDetails spells a details document's value one way, so that two documents are
// SameDetails exactly when their canonical forms are equal: keys sorted, no spacing, strings as
// encoding/json writes them, each number as its decimalKey, and empty or null as {}, which is
// what an order is given for them (NormalizeDetails). It identifies a request by its meaning, as
// an idempotent retry's fingerprint does, where the bytes as sent would tell 1 from 1.0.
func CanonicalDetails(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, Errorf(EInvalidDetails, "details must be a JSON object")
	}
	return appendCanonical(nil, v), nil
}

func appendCanonical(b []byte, v any) []byte {
	switch x := v.(type) {
	case map[string]any:
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, k)
			b = append(b, ':')
			b = appendCanonical(b, x[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case json.Number:
		return append(b, decimalKey(string(x))...)
	}
	// A string, a bool or nil: Marshal cannot fail on them.
	out, _ := json.Marshal(v)
	return append(b, out...)
}

// decimalKey spells a JSON number's value one way: sign, significant digits without trailing
// zeros, and the power of ten of the last one. No arithmetic, so a huge exponent costs nothing.
func decimalKey(s string) string {
	sign := ""
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		sign, s = "-", rest
	}
	mant, exp := s, "0"
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i+1:]
	}
	e, err := strconv.ParseInt(exp, 10, 32)
	if err != nil {
		return s // an exponent beyond any store's range: compared as spelled
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return "0" // -0 is 0
	}
	sig := strings.TrimRight(digits, "0")
	e += int64(len(digits)-len(sig)) - int64(len(frac))
	return sign + sig + "e" + strconv.FormatInt(e, 10)
}
