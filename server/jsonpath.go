package server

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// wrongTypeField names where in body, the request's, a value of the wrong type is (jsonPath), or,
// failing that, encoding/json's own name for it.
func wrongTypeField(body []byte, err *json.UnmarshalTypeError) string {
	if p := jsonPath(body, err.Offset); p != "" {
		return p
	}
	return err.Field
}

// jsonPath names, in the request's own terms (positions[3].lat), the value of body that ends at
// offset, where encoding/json reports a value of the wrong type (UnmarshalTypeError.Offset: just
// past a literal, or past the opening of an object or array). encoding/json's own Field has no
// array index and names embedded structs by their Go type (positions.PostLocationRequest.lat),
// which tells a client nothing. It returns "" when no value ends there (the body as a whole).
func jsonPath(body []byte, offset int64) string {
	type level struct {
		key     string
		index   int  // in an array: the element's index; -1 before the first
		array   bool // an array, else an object
		wantKey bool // in an object: the next string is a key
	}
	var stack []level
	path := func() string {
		var b strings.Builder
		for _, l := range stack {
			if l.array {
				b.WriteString("[" + strconv.Itoa(l.index) + "]")
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(l.key)
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number too large for a float64 is a value like any other here
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
				stack = stack[:len(stack)-1]
				continue
			}
			switch {
			case top.array:
				top.index++
			case top.wantKey:
				top.key, _ = tok.(string)
				top.wantKey = false
				continue
			default:
				top.wantKey = true // after this value (an object or array: once it closes), a key
			}
		}
		// tok is a value, at path().
		if dec.InputOffset() >= offset {
			return path()
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, level{index: -1, array: d == '[', wantKey: d == '{'})
		}
	}
}
