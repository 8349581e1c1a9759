package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ordercast/ordercast"
)

// decode reads a JSON request body into v strictly: JSON content type, no content coding, at most
// limit bytes, and what decodeJSON takes. Every JSON route reads its body here.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	// Content-Type is one value (RFC 9110 §8.3): of two, a proxy or validator in front may read
	// the other one, and judge the body as what it is not, as of a key sent twice (keyProblem).
	if len(r.Header["Content-Type"]) > 1 {
		w.Header().Set("Accept", "application/json")
		return ordercast.Errorf(ordercast.EUnsupportedMedia, "Content-Type must be sent once, as application/json")
	}
	// The exact common value skips the parser, which allocates a map for the parameters.
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			// RFC 9110 §15.5.16: Accept, in a 415, says which media type would have been taken.
			w.Header().Set("Accept", "application/json")
			return ordercast.Errorf(ordercast.EUnsupportedMedia, "Content-Type must be application/json")
		}
		// JSON is UTF-8 (RFC 8259 §8.1): a body declared in another charset would be read as if
		// it were UTF-8, its text changed.
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			w.Header().Set("Accept", "application/json; charset=utf-8")
			return ordercast.Errorf(ordercast.EUnsupportedMedia, "JSON must be UTF-8, not charset %s", ordercast.Quote(cs))
		}
	}
	// A coded body is not decoded here: read as JSON, gzip would be refused for its bytes and a
	// "br" body that is plain JSON applied as if it had been decoded. RFC 9110 §15.5.16: 415, and
	// Accept-Encoding says which coding is taken.
	if coding := contentCoding(r.Header["Content-Encoding"]); coding != "" {
		w.Header().Set("Accept-Encoding", "identity")
		return ordercast.Errorf(ordercast.EUnsupportedMedia, "Content-Encoding %s is not supported: send the body uncompressed", ordercast.Quote(coding))
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return decodeJSON(r.Body, v)
}

// contentCoding returns the first content coding of a request's Content-Encoding values other
// than identity, or "" for a body that is not coded.
func contentCoding(values []string) string {
	for _, v := range values {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return c
			}
		}
	}
	return ""
}

// bodyBuffer is what decodeJSON reads a body into, kept for the next request: the status change
// is the hot path, and the decoder copies what it keeps out of it.
type bodyBuffer struct {
	bytes.Buffer
	reader bytes.Reader
}

var bodyBuffers = sync.Pool{New: func() any { return new(bodyBuffer) }}

// maxPooledBody is the largest buffer put back for reuse: a rare large body's buffer is let go.
const maxPooledBody = 64 << 10

// decodeJSON decodes body, which must be exactly one JSON object, into v: no unknown fields, no
// key twice in any object, nothing after it. Failures become domain errors.
func decodeJSON(body io.Reader, v any) error {
	b := bodyBuffers.Get().(*bodyBuffer)
	defer func() {
		if b.Cap() <= maxPooledBody {
			b.Reset()
			b.reader.Reset(nil)
			bodyBuffers.Put(b)
		}
	}()
	_, err := b.ReadFrom(body)
	data := b.Bytes()
	if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return ordercast.Errorf(ordercast.EBodyTooLarge, "request body exceeds %d bytes", tooBig.Limit)
	} else if err != nil {
		return ordercast.Errorf(ordercast.EMalformed, "read request body: %v", err)
	}
	// encoding/json replaces bytes that are not UTF-8 with U+FFFD, silently changing a note or
	// an id; JSON text is UTF-8 (RFC 8259 §8.1), so such a body is not JSON.
	if !utf8.Valid(data) {
		return ordercast.Errorf(ordercast.EMalformed, "request body is not valid UTF-8")
	}
	// Every request body is an object. encoding/json would take null (or [] into a slice) as
	// "nothing set", and the route would then act on its zero request.
	switch rest := bytes.TrimLeft(data, " \t\r\n"); {
	case len(rest) == 0:
		return ordercast.Errorf(ordercast.EMalformed, "request body is empty")
	case rest[0] != '{':
		return ordercast.Errorf(ordercast.EMalformed, "request body must be a JSON object")
	}
	b.reader.Reset(data)
	dec := json.NewDecoder(&b.reader)
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		// One value only: anything but whitespace after it is malformed.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
			if terr != nil {
				err = terr
			}
		}
	}
	if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := ordercast.Quote(wrongTypeField(data, typeErr))
		if typeErr.Type != nil && typeErr.Type.Kind() == reflect.Float64 && strings.HasPrefix(typeErr.Value, "number") {
			// A number, too large for a float64 (1e400). The request bodies' only floats are
			// coordinates and a position's measures, whose ranges invalid_location names.
			return ordercast.Errorf(ordercast.EInvalidLocation, "field %s is out of range", field)
		}
		if typeErr.Type != nil && typeErr.Type.Kind() == reflect.Int64 && isInteger(strings.TrimPrefix(typeErr.Value, "number ")) {
			// An integer, too large for an int64: a version of the wrong range, not of the
			// wrong type.
			return ordercast.Errorf(ordercast.EInvalid, "field %s is out of range", field)
		}
		return ordercast.Errorf(ordercast.EMalformed, "field %s has the wrong type", field)
	} else if timeErr, ok := errors.AsType[*time.ParseError](err); ok {
		// encoding/json gives time's own words, which repeat the whole value sent, twice.
		return ordercast.Errorf(ordercast.EMalformed, "a time must be RFC 3339 (2026-12-04T19:40:00Z), not %s", ordercast.Quote(timeErr.Value))
	} else if err != nil {
		return ordercast.Errorf(ordercast.EMalformed, "%s", jsonProblem(err))
	}
	if esc, ok := loneSurrogate(data); ok {
		return ordercast.Errorf(ordercast.EMalformed, "a string holds %s, half of a UTF-16 surrogate pair alone: no Unicode character, which JSON readers take each their own way (RFC 8259 §8.2)", esc)
	}
	return keyProblem(data)
}

// isInteger reports whether v, a JSON number, is written as an integer: an optional minus and
// digits.
func isInteger(v string) bool {
	v = strings.TrimPrefix(v, "-")
	return v != "" && strings.Trim(v, "0123456789") == ""
}

// expectedVersionKey is the one key of a request body that may be left out but not sent null:
// encoding/json reads a null into its pointer as a key left out, and a change sent with
// "expected_version": null, a serializer's unset variable, would apply at any version, its guard
// silently gone.
var expectedVersionKey = []byte("expected_version")

// detailsKey is the top-level key whose object keeps its keys' case (see keyProblem).
var detailsKey = []byte("details")

// jsonProblem is the message of a decoding error other than a wrong type: encoding/json's own
// words, except that an unknown field, which the client named and may have made as long as the
// body, is repeated only so far (ordercast.Quote). encoding/json gives that error no type of its
// own, so it is known by its text; a text it ever changes is still reported, only whole.
//
// A time that is not a JSON string is known by its text too: time.Time refuses it in words of its
// own ("Time.UnmarshalJSON: input is not a JSON string"), with no type and no field, which read
// as malformed JSON where the JSON was fine.
func jsonProblem(err error) string {
	const unknown = "json: unknown field "
	msg := err.Error()
	if strings.HasPrefix(msg, unknown) {
		if field, uerr := strconv.Unquote(msg[len(unknown):]); uerr == nil {
			return "unknown field " + ordercast.Quote(field)
		}
	}
	if strings.HasPrefix(msg, "Time.UnmarshalJSON: ") {
		return "a time must be an RFC 3339 string (2026-12-04T19:40:00Z), not another JSON type"
	}
	return "malformed JSON: " + msg
}

// linearKeys is how many keys of one object keyProblem compares one by one before it indexes
// them: request objects have a few, but details may hold thousands.
const linearKeys = 16

// keyProblem refuses, in data, one valid JSON value, a null expected_version (expectedVersionKey)
// and a key repeated in one object: the first key of an object (at any depth) that equals an
// earlier key of the same object under Unicode case folding, named with it as written
// (unescaped). encoding/json matches keys to fields that way and the last one wins, so
// {"status":"confirmed","STATUS":"cancelled"} would cancel here what a proxy or validator reading
// the first key, or matching case, passed as a confirmation. Inside the top-level "details" (the
// order's own JSON, kept as sent and matched to no field) letter case counts, as JSON says: only
// a key written twice is refused there, which every reader of the details would take its own way.
// One pass, no allocation for an object of a few unescaped keys.
func keyProblem(data []byte) error {
	repeated := func(first, again []byte) error {
		if bytes.Equal(first, again) {
			return ordercast.Errorf(ordercast.EMalformed, "key %s appears twice in one object", ordercast.Quote(string(again)))
		}
		return ordercast.Errorf(ordercast.EMalformed, "keys %s and %s in one object are the same key (letter case does not count)", ordercast.Quote(string(first)), ordercast.Quote(string(again)))
	}
	type object struct {
		start     int               // where its keys begin in keys
		index     map[string][]byte // each key's folded form (appendFolded) to the key, once it has many
		exact     bool              // keys compared as written: in details
		inDetails bool              // the top-level object's value being read is its details
	}
	var (
		objectsBuf [8]object
		keysBuf    [linearKeys][]byte
		objects    = objectsBuf[:0] // the objects open around i, innermost last
		keys       = keysBuf[:0]    // the keys of the open objects, outermost first
		folded     []byte           // appendFolded's last result
	)
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{':
			exact := false
			if n := len(objects); n > 0 {
				exact = objects[n-1].exact || n == 1 && objects[0].inDetails
			}
			objects = append(objects, object{start: len(keys), exact: exact})
		case '}':
			keys = keys[:objects[len(objects)-1].start]
			objects = objects[:len(objects)-1]
		case '"':
			end := closingQuote(data, i)
			// In valid JSON a string is a key exactly when a colon follows it. Arrays need no
			// tracking: a key belongs to the innermost open object.
			colon := end + 1
			for colon < len(data) && isSpace(data[colon]) {
				colon++
			}
			if colon >= len(data) || data[colon] != ':' {
				i = end
				continue
			}
			key := unescapedKey(data[i : end+1])
			i = colon
			o := &objects[len(objects)-1]
			if !o.exact && bytes.EqualFold(key, expectedVersionKey) && bytes.HasPrefix(bytes.TrimLeft(data[colon+1:], " \t\r\n"), []byte("null")) {
				return ordercast.Errorf(ordercast.EInvalid, "expected_version is null: leave it out for a change at any version, or give the version the change must find")
			}
			if len(objects) == 1 {
				// encoding/json fills the Details field from any key equal to "details" under
				// case folding (the last one wins), so "Details" is the details too.
				o.inDetails = bytes.EqualFold(key, detailsKey)
			}
			same, fold := bytes.EqualFold, appendFolded
			if o.exact {
				same, fold = bytes.Equal, appendExact
			}
			if o.index == nil {
				for _, k := range keys[o.start:] {
					if same(k, key) {
						return repeated(k, key)
					}
				}
				if keys = append(keys, key); len(keys)-o.start > linearKeys {
					o.index = make(map[string][]byte, 2*linearKeys)
					for _, k := range keys[o.start:] {
						folded = fold(folded[:0], k)
						o.index[string(folded)] = k
					}
					keys = keys[:o.start]
				}
				continue
			}
			folded = fold(folded[:0], key)
			if k, ok := o.index[string(folded)]; ok {
				return repeated(k, key)
			}
			o.index[string(folded)] = key
		}
	}
	return nil
}

// loneSurrogate finds, in data, valid JSON, an escape of half a UTF-16 surrogate pair without
// its other half ("\ud800"), and returns it as written. encoding/json puts U+FFFD in its place in
// a string, silently changing an id or a note, and keeps it as sent in details, served back as
// JSON that strict readers refuse. Invalid UTF-8 is refused for the same reason (decodeJSON).
func loneSurrogate(data []byte) (string, bool) {
	// In valid JSON a backslash is found only in a string, where it starts an escape.
	for i := bytes.IndexByte(data, '\\'); i >= 0; {
		next := i + 2
		if data[i+1] == 'u' {
			next = i + 6
			switch r := hex4(data[i+2 : i+6]); {
			case 0xDC00 <= r && r <= 0xDFFF:
				return string(data[i:next]), true
			case 0xD800 <= r && r <= 0xDBFF:
				if len(data) < i+12 || data[i+6] != '\\' || data[i+7] != 'u' {
					return string(data[i:next]), true
				}
				if low := hex4(data[i+8 : i+12]); low < 0xDC00 || low > 0xDFFF {
					return string(data[i:next]), true
				}
				next = i + 12
			}
		}
		j := bytes.IndexByte(data[next:], '\\')
		if j < 0 {
			break
		}
		i = next + j
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape, which valid JSON guarantees.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= 'a':
			c -= 'a' - 10
		case c >= 'A':
			c -= 'A' - 10
		default:
			c -= '0'
		}
		r = r<<4 | rune(c)
	}
	return r
}

// closingQuote returns the index of the quote that closes the JSON string opening at open.
func closingQuote(data []byte, open int) int {
	for j := open + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++ // the escaped byte, which may be a quote
		case '"':
			return j
		}
	}
	return len(data)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// unescapedKey returns the key that quoted, a JSON string with its quotes, spells: encoding/json
// matches "\u0053TATUS" to the field status too.
func unescapedKey(quoted []byte) []byte {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return inner // not reached: the body decoded
	}
	return []byte(s)
}

// appendExact appends key as it is: the index form of a key where letter case counts.
func appendExact(dst, key []byte) []byte { return append(dst, key...) }

// appendFolded appends key with each rune replaced by the least rune of its case-folding orbit,
// so that two keys are bytes.EqualFold exactly when their folded forms are equal (an invalid
// byte is U+FFFD to both). Of an ASCII letter's orbit (k, K and the Kelvin sign) the least is the
// ASCII capital.
func appendFolded(dst, key []byte) []byte {
	for i := 0; i < len(key); {
		if c := key[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		dst = utf8.AppendRune(dst, least)
		i += n
	}
	return dst
}

// parseNonNegative reads a number the API takes in a header or a query parameter (an event id, a
// version, a page's size): decimal digits alone, as the server writes them. strconv alone would
// also take a sign ("+5") or leading zeros ("05"), which give one number several spellings; ok
// is false for those, for anything else, and for a number past int64.
func parseNonNegative(v string) (n int64, ok bool) {
	if v == "" || len(v) > 1 && v[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// query returns the value of r's query parameter name, "" when it is absent. Sent twice, it is
// refused: which one did the client mean? (As a header that is no list is: lastEventID.)
func query(r *http.Request, name string) (string, error) {
	vs := r.URL.Query()[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", ordercast.Errorf(ordercast.EMalformed, "%s must be sent once", name)
}

// filledQuery is query for a parameter that, when sent, must hold a value: sent empty, it is
// most often a caller's unset variable (?customer_id=$CUSTOMER), and read as absent it would
// widen what is asked (every customer's orders, a long poll answered at once), so it is refused.
func filledQuery(r *http.Request, name string) (string, error) {
	v, err := query(r, name)
	if err == nil && v == "" && r.URL.Query().Has(name) {
		err = ordercast.Errorf(ordercast.EInvalid, "%s is empty: give it a value, or leave it out", name)
	}
	return v, err
}
