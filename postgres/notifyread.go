package postgres

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ordercast/ordercast"
)

// readNotices reads a notice on Channel written as notifyPayloads writes it (notify.go), without
// encoding/json's reflection: encoding/json took 6 to 7 µs and 29 allocations an event, on every
// node for every event of the cluster. It reads only the subset of JSON that json.Marshal
// writes for those rows: no whitespace, rows of 2 to 10 fields, each a string or an integer in
// its place, strings of valid UTF-8 without a \u escape of a surrogate. Whatever else it meets
// (a later version's extra fields, a null, another form, a malformed notice) it leaves to
// parseNotificationJSON (ok false), so for what it reads it gives what encoding/json gives, and
// for the rest encoding/json answers, errors included. It does not validate the events.
func readNotices(payload string) (evs []ordercast.Event, ok bool) {
	r := noticeReader{s: payload}
	if !r.next('[') {
		return nil, false
	}
	// Every row opens with '[': their count, or more when a string holds one; and a row is
	// at least 7 bytes (["",0]), so a notice of brackets alone reserves no more than its rows.
	evs = make([]ordercast.Event, 0, min(strings.Count(payload, "[")-1, len(payload)/7))
	if r.next(']') {
		return evs, r.i == len(r.s)
	}
	for {
		ev, ok := r.row()
		if !ok {
			return nil, false
		}
		evs = append(evs, ev)
		if r.next(',') {
			continue
		}
		if r.next(']') && r.i == len(r.s) {
			return evs, true
		}
		return nil, false
	}
}

// noticeReader reads s from i on.
type noticeReader struct {
	s string
	i int
}

// next consumes c if it comes next.
func (r *noticeReader) next(c byte) bool {
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	return false
}

// row reads one event's array, its fields in notifyPayloads' order. A row of three is the short
// form [order_id, seq, marks].
func (r *noticeReader) row() (ev ordercast.Event, ok bool) {
	if !r.next('[') {
		return ev, false
	}
	var third string
	var at int64
	n := 0
	for ; ; n++ {
		switch n {
		case 0:
			ev.OrderID, ok = r.text()
		case 1:
			ev.Seq, ok = r.integer()
		case 2:
			third, ok = r.text()
		case 3:
			at, ok = r.integer()
		case 4:
			ev.Note, ok = r.text()
		case 5:
			ev.Actor, ok = r.text()
		case 6:
			var kind string
			kind, ok = r.text()
			ev.Kind = ordercast.EventKind(kind)
		case 7:
			ev.CourierID, ok = r.text()
		case 8:
			var marks string
			marks, ok = r.text()
			ev.Marks = ordercast.Marks(marks)
		case 9:
			ev.CourierName, ok = r.text()
		default:
			return ev, false // a later version's fields: encoding/json skips them
		}
		if !ok {
			return ev, false
		}
		if r.next(',') {
			continue
		}
		if r.next(']') {
			break
		}
		return ev, false
	}
	n++ // the field the row ended with
	switch {
	case n < 2:
		return ev, false // encoding/json's error says what is missing
	case n == 3:
		ev.Marks = ordercast.Marks(third)
	case n > 3:
		ev.Status = ordercast.Status(third)
		ev.At = time.UnixMicro(at).UTC()
	}
	return ev, true
}

// text reads a JSON string into a string of its own, as encoding/json does: an event outlives
// its payload (in the order cache, as party heads' keys), and a substring would keep the whole
// payload alive with it. The statuses and the courier kind, on nearly every event, are shared
// constants instead.
func (r *noticeReader) text() (string, bool) {
	raw, escaped, ok := r.quoted()
	switch {
	case !ok:
		return "", false
	case escaped:
		return unquote(raw), true
	case raw == string(ordercast.KindCourier):
		return string(ordercast.KindCourier), true
	}
	for _, s := range ordercast.Statuses {
		if raw == string(s) {
			return string(s), true
		}
	}
	return strings.Clone(raw), true
}

// quoted reads a JSON string and returns what is between its quotes, and whether it holds an
// escape. It refuses (ok false) what json.Marshal never writes and encoding/json reads otherwise
// than as it stands: invalid UTF-8 (read as U+FFFD) and \u escapes of surrogates (read in pairs).
func (r *noticeReader) quoted() (raw string, escaped, ok bool) {
	if !r.next('"') {
		return "", false, false
	}
	start := r.i
	for r.i < len(r.s) {
		switch c := r.s[r.i]; {
		case c == '"':
			raw = r.s[start:r.i]
			r.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			if r.i+1 >= len(r.s) {
				return "", false, false
			}
			switch r.s[r.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i += 2
			case 'u':
				v, ok := hex4(r.s[r.i+2:])
				if !ok || utf16Surrogate(v) {
					return "", false, false
				}
				r.i += 6
			default:
				return "", false, false
			}
		case c < ' ':
			return "", false, false
		case c < utf8.RuneSelf:
			r.i++
		default:
			rn, size := utf8.DecodeRuneInString(r.s[r.i:])
			if rn == utf8.RuneError && size == 1 {
				return "", false, false
			}
			r.i += size
		}
	}
	return "", false, false
}

// integer reads a JSON number that is an int64, as encoding/json reads one into an int64.
func (r *noticeReader) integer() (int64, bool) {
	start := r.i
	r.next('-')
	digits := r.i
	for r.i < len(r.s) && '0' <= r.s[r.i] && r.s[r.i] <= '9' {
		r.i++
	}
	if r.i == digits || (r.s[digits] == '0' && r.i-digits > 1) {
		return 0, false // no digits, or a leading zero JSON does not allow
	}
	v, err := strconv.ParseInt(r.s[start:r.i], 10, 64)
	return v, err == nil
}

// unquote returns the text of raw, the inside of a JSON string quoted has accepted.
func unquote(raw string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			v, _ := hex4(raw[i+1:])
			b.WriteRune(rune(v))
			i += 4
		default: // '"', '\\', '/'
			b.WriteByte(raw[i])
		}
	}
	return b.String()
}

// hex4 reads the four hex digits of a \u escape.
func hex4(s string) (uint16, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var v uint16
	for _, c := range []byte(s[:4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}

func utf16Surrogate(v uint16) bool { return 0xd800 <= v && v < 0xe000 }
