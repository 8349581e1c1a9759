package ordercast

import (
	"bytes"
	"encoding/json"
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
	va, errA := decodeDetails(a)
	vb, errB := decodeDetails(b)
	return errA == nil && errB == nil && sameValue(va, vb)
}

func decodeDetails(raw json.RawMessage) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	err := dec.Decode(&v)
	return v, err
}

func sameValue(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		return ok && decimalKey(string(x)) == decimalKey(string(y))
	}
	return a == b // string, bool or nil
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
		return "?" + s // an exponent beyond any store's range: compared as spelled
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

// ServedDetails returns stored details as they may be served: a row written before details were
// checked as served (an older PostgreSQL rendering) that is not a JSON object within
// MaxDetailsBytes is served as {} rather than let one order make every read huge.
func ServedDetails(stored []byte) json.RawMessage {
	if len(stored) > MaxDetailsBytes || !json.Valid(stored) {
		return json.RawMessage("{}")
	}
	return stored
}
