package client

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultSSEMaxEventSize bounds how many bytes one line or one event's data may take when
// SSEReader.MaxEventSize is zero. The WHATWG rules set no limit; a client must, or a broken or
// hostile server could make it buffer without end.
const DefaultSSEMaxEventSize = 1 << 20

// sseReadSize is the first buffer size; the buffer grows only when a line does not fit.
const sseReadSize = 4 << 10

// ErrSSETooLarge is returned by SSEReader.Next when a line or an event's data exceeds the
// reader's MaxEventSize.
var ErrSSETooLarge = errors.New("client: server-sent event too large")

// SSEEvent is one dispatched server-sent event.
type SSEEvent struct {
	// ID is the stream's last event ID at dispatch: the value of the latest valid id field,
	// which persists across events until another id field changes it.
	ID string
	// Type is the event field's value, or "message" when the event had none.
	Type string
	// Data is the data fields' values joined by "\n".
	Data string
}

// SSEReader parses a text/event-stream as the WHATWG HTML standard's "Interpreting an event
// stream" says: UTF-8 with replacement of invalid bytes, one optional leading BOM, lines ending in
// CRLF, LF or CR, comments, the data, event, id and retry fields, dispatch on a blank line, and an
// incomplete event at the end of the stream discarded. It is not safe for concurrent use.
type SSEReader struct {
	// OnComment, when set, is called with each comment line's text after the colon, one leading
	// space removed (": ping" gives "ping"). It runs on the goroutine calling Next.
	OnComment func(text string)
	// MaxEventSize bounds a line and an event's data in bytes; zero means DefaultSSEMaxEventSize.
	MaxEventSize int

	r          io.Reader
	buf        []byte
	start, end int   // unread bytes are buf[start:end]
	err        error // sticky error from r, returned once the buffered lines are used up
	bomChecked bool
	skipLF     bool // the previous line ended in CR, so a following LF belongs to that line end

	data      []byte // data buffer, each value followed by '\n'
	eventType []byte // event type buffer
	idBuffer  string // last event ID buffer; persists across events
	lastID    string // last event ID string, set from idBuffer at each dispatch
	lastType  string // the last decoded non-default type, reused to avoid an allocation per event
	retry     time.Duration
	hasRetry  bool
	comments  int
}

// NewSSEReader returns a reader that parses events from r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: r}
}

// Retry returns the reconnection time the stream last set with a valid retry field, and whether
// it set one at all. A retry field takes effect even in a block that dispatches no event, which is
// why it is reader state rather than a field of SSEEvent.
func (r *SSEReader) Retry() (time.Duration, bool) { return r.retry, r.hasRetry }

// LastEventID returns the stream's last event ID string, which dispatch updates even for a block
// without data (so "id: 7" followed by a blank line moves it).
func (r *SSEReader) LastEventID() string { return r.lastID }

// Comments returns how many comment lines the reader has seen, so a caller can tell that a
// heartbeat arrived without setting OnComment.
func (r *SSEReader) Comments() int { return r.comments }

// Next returns the next dispatched event. At the end of the stream it returns io.EOF, discarding
// any incomplete event; other errors come from the underlying reader or are ErrSSETooLarge.
func (r *SSEReader) Next() (SSEEvent, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			// The standard discards pending data at end of stream; doing it for any error keeps
			// a half-read event from leaking into a later call.
			r.data, r.eventType = r.data[:0], r.eventType[:0]
			return SSEEvent{}, err
		}
		if !r.bomChecked {
			// A BOM holds no CR or LF, so stripping it from the first line is the same as
			// stripping it from the start of the stream.
			r.bomChecked = true
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if err := r.processLine(line); err != nil {
			return SSEEvent{}, err
		}
	}
}

func (r *SSEReader) maxSize() int {
	if r.MaxEventSize > 0 {
		return r.MaxEventSize
	}
	return DefaultSSEMaxEventSize
}

// processLine applies one non-blank line. Field names and values are split and compared as bytes
// and decoded only when kept: CR, LF, ':' and ' ' are ASCII, which the UTF-8 decoder never
// swallows into a replacement character, so splitting before decoding gives the same result.
func (r *SSEReader) processLine(line []byte) error {
	if line[0] == ':' {
		r.comments++
		if r.OnComment != nil {
			text := line[1:]
			if len(text) > 0 && text[0] == ' ' {
				text = text[1:]
			}
			r.OnComment(decodeUTF8(text))
		}
		return nil
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) { // the compiler does not allocate for a switch on string(bytes)
	case "data":
		if len(r.data)+len(value)+1 > r.maxSize() {
			return r.fail(ErrSSETooLarge)
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	case "event":
		r.eventType = append(r.eventType[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != r.idBuffer {
			r.idBuffer = decodeUTF8(value)
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			r.retry, r.hasRetry = ms, true
		}
	}
	// Any other field is ignored, as the standard requires.
	return nil
}

// parseRetry reads a retry value of ASCII digits as milliseconds. An empty value is not a number
// and is ignored; a number too large for a Duration saturates, as it is still "that integer".
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const maxMS = int64(math.MaxInt64 / int64(time.Millisecond))
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxMS {
			ms = ms*10 + int64(c-'0')
		}
	}
	if ms > maxMS {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(ms) * time.Millisecond, true
}

// dispatch runs the standard's dispatch steps on a blank line and reports whether an event results.
func (r *SSEReader) dispatch() (SSEEvent, bool) {
	r.lastID = r.idBuffer
	if len(r.data) == 0 {
		r.eventType = r.eventType[:0]
		return SSEEvent{}, false
	}
	ev := SSEEvent{ID: r.lastID, Type: "message", Data: decodeUTF8(r.data[:len(r.data)-1])}
	if len(r.eventType) > 0 {
		if string(r.eventType) != r.lastType {
			r.lastType = decodeUTF8(r.eventType)
		}
		ev.Type = r.lastType
	}
	r.data, r.eventType = r.data[:0], r.eventType[:0]
	return ev, true
}

func (r *SSEReader) fail(err error) error {
	r.err = err
	r.start, r.end = 0, 0
	r.data, r.eventType = r.data[:0], r.eventType[:0]
	return err
}

// readLine returns the next line without its end; the slice is valid until the next call. A line
// must be ended by CR, LF or CRLF: bytes after the last line end at the end of the stream are not
// a line. A CR ends its line at once, without waiting to see whether LF follows, so an event whose
// last line ends in CR is dispatched without blocking on the next read.
func (r *SSEReader) readLine() ([]byte, error) {
	scanned := 0 // bytes at the front of buf[start:end] known to hold no line end
	for {
		if r.skipLF && r.start < r.end {
			r.skipLF = false
			if r.buf[r.start] == '\n' {
				r.start++
			}
		}
		if !r.skipLF {
			seg := r.buf[r.start+scanned : r.end]
			i := bytes.IndexByte(seg, '\n')
			head := seg
			if i >= 0 {
				head = seg[:i]
			}
			if j := bytes.IndexByte(head, '\r'); j >= 0 {
				i = j
				r.skipLF = true
			}
			if i >= 0 {
				i += r.start + scanned
				line := r.buf[r.start:i]
				r.start = i + 1
				return line, nil
			}
			scanned = r.end - r.start
		}
		if r.err != nil {
			return nil, r.err
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more bytes into the buffer, moving the unread part to the front and growing the
// buffer only when a single line fills it. A read error is kept for after the buffered lines.
func (r *SSEReader) fill() error {
	if r.start == r.end {
		r.start, r.end = 0, 0
	} else if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= r.maxSize() {
			return r.fail(ErrSSETooLarge)
		}
		size := max(2*len(r.buf), sseReadSize)
		nb := make([]byte, min(size, r.maxSize()))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.err = err
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	r.err = io.ErrNoProgress
	return nil
}

// decodeUTF8 decodes b as the WHATWG Encoding standard's UTF-8 decoder does: each maximal invalid
// subpart becomes one U+FFFD. Go's own conversions differ (one U+FFFD per bad byte, or per run),
// so invalid input takes this slow path; valid input is converted directly.
func decodeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			sb.WriteByte(c)
			i++
			continue
		}
		need, lower, upper := 0, byte(0x80), byte(0xBF)
		switch {
		case c >= 0xC2 && c <= 0xDF:
			need = 1
		case c >= 0xE0 && c <= 0xEF:
			need = 2
			if c == 0xE0 {
				lower = 0xA0 // overlong
			} else if c == 0xED {
				upper = 0x9F // surrogates
			}
		case c >= 0xF0 && c <= 0xF4:
			need = 3
			if c == 0xF0 {
				lower = 0x90 // overlong
			} else if c == 0xF4 {
				upper = 0x8F // above U+10FFFF
			}
		default:
			sb.WriteRune(utf8.RuneError)
			i++
			continue
		}
		j := i + 1
		for ; need > 0; need-- {
			if j >= len(b) || b[j] < lower || b[j] > upper {
				break
			}
			lower, upper = 0x80, 0xBF
			j++
		}
		if need > 0 {
			// The offending byte is not consumed: it starts the next sequence.
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[i:j])
		}
		i = j
	}
	return sb.String()
}
