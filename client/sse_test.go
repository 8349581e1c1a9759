package client_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ordercast/ordercast/client"
)

// parsed is everything observable from one full read of a stream.
type parsed struct {
	Events   []client.SSEEvent
	LastID   string
	Retry    time.Duration
	HasRetry bool
	Comments []string
	Err      error // the error that ended the stream; io.EOF for a clean end
}

func parseAll(r io.Reader) parsed {
	var p parsed
	sr := client.NewSSEReader(r)
	sr.OnComment = func(s string) { p.Comments = append(p.Comments, s) }
	for {
		ev, err := sr.Next()
		if err != nil {
			p.Err = err
			break
		}
		p.Events = append(p.Events, ev)
	}
	p.LastID = sr.LastEventID()
	p.Retry, p.HasRetry = sr.Retry()
	if sr.Comments() != len(p.Comments) {
		panic("Comments() disagrees with OnComment calls")
	}
	return p
}

// readers gives the same input in differently sized reads, so every rule is also checked with
// line ends (CR then LF in particular) and multi-byte characters split across reads.
var readers = []struct {
	name string
	wrap func(string) io.Reader
}{
	{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
	{"one-byte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
	{"half", func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) }},
	{"data-err", func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) }},
}

func msg(id, data string) client.SSEEvent {
	return client.SSEEvent{ID: id, Type: "message", Data: data}
}

func TestSSEReader(t *testing.T) {
	type want struct {
		events   []client.SSEEvent
		lastID   string
		retry    time.Duration
		hasRetry bool
		comments []string
	}
	tests := []struct {
		name string
		in   string
		want want
	}{
		{"lf", "data: hello\n\n", want{events: []client.SSEEvent{msg("", "hello")}}},
		{"crlf", "event: a\r\ndata: x\r\n\r\n", want{events: []client.SSEEvent{{Type: "a", Data: "x"}}}},
		{"cr", "data: x\r\rdata: y\r\r", want{events: []client.SSEEvent{msg("", "x"), msg("", "y")}}},
		{"crlf is one line end", "data: a\r\ndata: b\r\n\r\n", want{events: []client.SSEEvent{msg("", "a\nb")}}},
		{"mixed line ends", "data: a\r\ndata: b\ndata: c\r\r\ndata: d\n\r",
			want{events: []client.SSEEvent{msg("", "a\nb\nc"), msg("", "d")}}},
		{"lf cr is two line ends", "data: a\n\rdata: b\n\n", want{events: []client.SSEEvent{msg("", "a"), msg("", "b")}}},
		{"bom stripped", "\ufeffdata: x\n\n", want{events: []client.SSEEvent{msg("", "x")}}},
		{"bom alone on first line", "\ufeff\ndata: x\n\n", want{events: []client.SSEEvent{msg("", "x")}}},
		{"only one bom stripped", "\ufeff\ufeffdata: x\n\ndata: y\n\n", want{events: []client.SSEEvent{msg("", "y")}}},
		{"bom later is data", "data: a\n\n\ufeffdata: b\n\n", want{events: []client.SSEEvent{msg("", "a")}}},
		{"comment", ": ping\n\n", want{comments: []string{"ping"}}},
		{"comment forms", ":\n:x\n:  two\n", want{comments: []string{"", "x", " two"}}},
		{"comment between data", "data: a\n: hi\ndata: b\n\n", want{events: []client.SSEEvent{msg("", "a\nb")}, comments: []string{"hi"}}},
		{"data without colon", "data\n\n", want{events: []client.SSEEvent{msg("", "")}}},
		{"two data without colon", "data\ndata\n\n", want{events: []client.SSEEvent{msg("", "\n")}}},
		{"no space after colon", "data:x\n\n", want{events: []client.SSEEvent{msg("", "x")}}},
		{"only one space removed", "data:  x \n\n", want{events: []client.SSEEvent{msg("", " x ")}}},
		{"tab is not removed", "data:\tx\n\n", want{events: []client.SSEEvent{msg("", "\tx")}}},
		{"split on first colon", "data: a:b: c\n\n", want{events: []client.SSEEvent{msg("", "a:b: c")}}},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", want{events: []client.SSEEvent{msg("", "a\nb\n")}}},
		{"event type", "event: status\ndata: x\n\ndata: y\n\n",
			want{events: []client.SSEEvent{{Type: "status", Data: "x"}, msg("", "y")}}},
		{"event type reset without dispatch", "event: a\n\ndata: x\n\n", want{events: []client.SSEEvent{msg("", "x")}}},
		{"last event type wins", "event: a\nevent: b\ndata: x\n\n", want{events: []client.SSEEvent{{Type: "b", Data: "x"}}}},
		{"empty event type is message", "event:\ndata: x\n\n", want{events: []client.SSEEvent{msg("", "x")}}},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
			want{events: []client.SSEEvent{msg("1", "a"), msg("1", "b"), msg("", "c")}}},
		{"id with nul ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			want{events: []client.SSEEvent{msg("1", "a"), msg("1", "b")}, lastID: "1"}},
		{"id without data moves last id", "id: 1\ndata: a\n\nid: 7\n\n", want{events: []client.SSEEvent{msg("1", "a")}, lastID: "7"}},
		{"id after data in same block", "data: a\nid: 3\n\n", want{events: []client.SSEEvent{msg("3", "a")}, lastID: "3"}},
		{"id not committed without blank line", "id: 1\ndata: a\n\nid: 2\n", want{events: []client.SSEEvent{msg("1", "a")}, lastID: "1"}},
		{"retry", "retry: 1500\n\n", want{retry: 1500 * time.Millisecond, hasRetry: true}},
		{"retry zero", "retry: 0\n", want{hasRetry: true}},
		{"retry takes effect without blank line", "retry: 10\n", want{retry: 10 * time.Millisecond, hasRetry: true}},
		{"retry last valid wins", "retry: 10\nretry: x\nretry: 20\nretry: 2.5\n", want{retry: 20 * time.Millisecond, hasRetry: true}},
		{"retry not digits", "retry: 15x\nretry: -1\nretry: +1\nretry:  100\nretry: 1e3\n", want{}},
		{"retry empty", "retry:\nretry\n", want{}},
		{"retry huge saturates", "retry: 99999999999999999999999\n", want{retry: time.Duration(math.MaxInt64), hasRetry: true}},
		{"unknown field ignored", "foo: bar\ndata: x\nDATA: y\n\n", want{events: []client.SSEEvent{msg("", "x")}}},
		{"field names are case sensitive", "Data: x\n\n", want{}},
		{"space line is not blank", "data: a\n \ndata: b\n\n", want{events: []client.SSEEvent{msg("", "a\nb")}}},
		{"empty data buffer no dispatch", "event: x\nid: 4\n\n\n\n", want{lastID: "4"}},
		{"no trailing blank line", "data: a\n\ndata: b\n", want{events: []client.SSEEvent{msg("", "a")}}},
		{"no trailing line end", "data: a\n\ndata: b", want{events: []client.SSEEvent{msg("", "a")}}},
		{"trailing cr", "data: a\r\r", want{events: []client.SSEEvent{msg("", "a")}}},
		{"nothing", "", want{}},
		{"nul in data kept", "data: a\x00b\n\n", want{events: []client.SSEEvent{msg("", "a\x00b")}}},
		{"utf-8 kept", "data: é😀\n\n", want{events: []client.SSEEvent{msg("", "é😀")}}},
		{"invalid byte", "data: \xff\n\n", want{events: []client.SSEEvent{msg("", "\ufffd")}}},
		{"truncated sequence is one replacement", "data: \xe2\x82a\n\n", want{events: []client.SSEEvent{msg("", "\ufffda")}}},
		{"truncated at line end", "data: \xf0\x9f\x98\n\n", want{events: []client.SSEEvent{msg("", "\ufffd")}}},
		{"surrogate is three replacements", "data: \xed\xa0\x80\n\n", want{events: []client.SSEEvent{msg("", "\ufffd\ufffd\ufffd")}}},
		{"overlong", "data: \xc0\xaf\xf0\x80\x80\n\n", want{events: []client.SSEEvent{msg("", strings.Repeat("\ufffd", 5))}}},
		{"invalid in id and type", "id: \xff\nevent: \xe2\ndata: x\n\n", want{events: []client.SSEEvent{{ID: "\ufffd", Type: "\ufffd", Data: "x"}}, lastID: "\ufffd"}},
		{"wire format from the design", "retry: 2000\n\nid: 3\nevent: status\ndata: {\"seq\":3}\n\n: ping\n\n",
			want{events: []client.SSEEvent{{ID: "3", Type: "status", Data: `{"seq":3}`}}, lastID: "3",
				retry: 2 * time.Second, hasRetry: true, comments: []string{"ping"}}},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				got := parseAll(rd.wrap(tt.in))
				if got.Err != io.EOF {
					t.Fatalf("ended with %v, want io.EOF", got.Err)
				}
				wantLast := tt.want.lastID
				if wantLast == "" && len(tt.want.events) > 0 {
					wantLast = tt.want.events[len(tt.want.events)-1].ID
				}
				if !reflect.DeepEqual(got.Events, tt.want.events) {
					t.Errorf("events = %q, want %q", got.Events, tt.want.events)
				}
				if got.LastID != wantLast {
					t.Errorf("LastEventID = %q, want %q", got.LastID, wantLast)
				}
				if got.Retry != tt.want.retry || got.HasRetry != tt.want.hasRetry {
					t.Errorf("Retry = %v, %v; want %v, %v", got.Retry, got.HasRetry, tt.want.retry, tt.want.hasRetry)
				}
				if !reflect.DeepEqual(got.Comments, tt.want.comments) {
					t.Errorf("comments = %q, want %q", got.Comments, tt.want.comments)
				}
			})
		}
	}
}

// TestSSEReaderDispatchesWithoutWaiting checks that an event is returned as soon as its blank
// line arrives, even when that line ends in CR and the next read would block.
func TestSSEReaderDispatchesWithoutWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	sr := client.NewSSEReader(pr)
	go func() {
		_, _ = pw.Write([]byte("data: a\r\r"))
		// Never closed until the test ends: a reader that waited for a possible LF would hang.
	}()
	ev, err := sr.Next()
	if err != nil || ev.Data != "a" {
		t.Fatalf("Next = %q, %v; want data a", ev, err)
	}
	go func() { _, _ = pw.Write([]byte("\ndata: b\n\n")) }()
	ev, err = sr.Next()
	if err != nil || ev.Data != "b" {
		t.Fatalf("Next = %q, %v; want data b (the LF after CR belongs to the earlier line end)", ev, err)
	}
}

func TestSSEReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	got := parseAll(r)
	if !reflect.DeepEqual(got.Events, []client.SSEEvent{msg("", "a")}) || got.Err != boom {
		t.Fatalf("got %q, %v; want event a then boom", got.Events, got.Err)
	}
}

func TestSSEReaderEOFIsSticky(t *testing.T) {
	sr := client.NewSSEReader(strings.NewReader("data: a"))
	for i := range 3 {
		if _, err := sr.Next(); err != io.EOF {
			t.Fatalf("call %d: err = %v, want io.EOF", i, err)
		}
	}
}

func TestSSEReaderMaxEventSize(t *testing.T) {
	tests := map[string]string{
		"long line":       "data: " + strings.Repeat("x", 100) + "\n\n",
		"long data total": strings.Repeat("data: xxxxxxxxxx\n", 20) + "\n",
		"no line end":     strings.Repeat("x", 1000),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			sr := client.NewSSEReader(strings.NewReader("data: ok\n\n" + in))
			sr.MaxEventSize = 64
			if ev, err := sr.Next(); err != nil || ev.Data != "ok" {
				t.Fatalf("first Next = %q, %v", ev, err)
			}
			if _, err := sr.Next(); !errors.Is(err, client.ErrSSETooLarge) {
				t.Fatalf("err = %v, want ErrSSETooLarge", err)
			}
			if _, err := sr.Next(); !errors.Is(err, client.ErrSSETooLarge) {
				t.Fatalf("second err = %v, want ErrSSETooLarge again", err)
			}
		})
	}
}

func TestDecodeUTF8(t *testing.T) {
	// Expected outputs follow the WHATWG Encoding standard's UTF-8 decoder: one U+FFFD per
	// maximal subpart of an ill-formed sequence.
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"\xc3\xa9", "é"},
		{"\x80", "\ufffd"},
		{"\xc3", "\ufffd"},
		{"\xc3a", "\ufffda"},
		{"\xe2\x82", "\ufffd"},
		{"\xe2\x82\xac", "€"},
		{"\xe0\x80\x80", "\ufffd\ufffd\ufffd"},
		{"\xed\x9f\xbf", "\ud7ff"},
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"},
		{"\xf4\x8f\xbf\xbf", "\U0010ffff"},
		{"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"},
		{"\xf0\x9f\x98", "\ufffd"},
		{"\xf0\x9f\x98\x80", "😀"},
		{"\xf5\xc1\xfe\xff", "\ufffd\ufffd\ufffd\ufffd"},
		{"\xf0\x9f\xe2\x82\xac", "\ufffd€"},
	}
	for _, tt := range tests {
		if got := client.DecodeUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("decode(%q) = %+q, want %+q", tt.in, got, tt.want)
		}
	}
}

// referenceParse is a deliberately plain reading of the standard: decode the whole stream, split
// it into lines, apply each. The fuzz target holds SSEReader, which works incrementally on bytes,
// to the same results.
func referenceParse(in []byte) parsed {
	var p parsed
	s := client.DecodeUTF8(bytes.TrimPrefix(in, []byte("\ufeff")))
	var data strings.Builder // a Builder, not +=, so long fuzz inputs stay linear
	var eventType, idBuf string
	hasData := false
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			break // an unterminated last line is not a line
		}
		line := s[:i]
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			s = s[i+2:]
		} else {
			s = s[i+1:]
		}
		switch {
		case line == "":
			p.LastID = idBuf
			if hasData {
				typ := eventType
				if typ == "" {
					typ = "message"
				}
				p.Events = append(p.Events, client.SSEEvent{ID: p.LastID, Type: typ, Data: strings.TrimSuffix(data.String(), "\n")})
			}
			data.Reset()
			eventType, hasData = "", false
			continue
		case line[0] == ':':
			p.Comments = append(p.Comments, strings.TrimPrefix(line[1:], " "))
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "event":
			eventType = value
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				ms, err := strconv.ParseInt(value, 10, 64)
				if err != nil || ms > math.MaxInt64/int64(time.Millisecond) {
					p.Retry = time.Duration(math.MaxInt64)
				} else {
					p.Retry = time.Duration(ms) * time.Millisecond
				}
				p.HasRetry = true
			}
		}
	}
	p.Err = io.EOF
	return p
}

// encode writes events back out in the wire format, one field per line.
func encode(evs []client.SSEEvent) []byte {
	var b bytes.Buffer
	for _, ev := range evs {
		b.WriteString("id: " + ev.ID + "\n")
		b.WriteString("event: " + ev.Type + "\n")
		for line := range strings.SplitSeq(ev.Data, "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"data: hello\n\n",
		"\ufeffid: 1\r\nevent: status\r\ndata: {\"seq\":1}\r\n\r\n",
		"data: a\rdata: b\r\r: ping\n\nretry: 2000\n",
		"id: 1\x00\ndata\n\ndata:  x\n\nid\ndata: \xe2\x82\n\n",
		"retry: 99999999999999999999\nretry: 12a\n\nevent: x\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := parseAll(bytes.NewReader(in))
		if whole.Err != io.EOF {
			t.Fatalf("ended with %v, want io.EOF", whole.Err)
		}
		oneByte := parseAll(iotest.OneByteReader(bytes.NewReader(in)))
		if !reflect.DeepEqual(whole, oneByte) {
			t.Fatalf("whole read gives %#v\none-byte reads give %#v", whole, oneByte)
		}
		if ref := referenceParse(in); !reflect.DeepEqual(whole, ref) {
			t.Fatalf("SSEReader gives %#v\nreference gives %#v", whole, ref)
		}
		again := parseAll(bytes.NewReader(encode(whole.Events)))
		if !reflect.DeepEqual(again.Events, whole.Events) {
			t.Fatalf("re-encoded events parse as %+q\nwant %+q", again.Events, whole.Events)
		}
	})
}

func BenchmarkSSEReader(b *testing.B) {
	var stream bytes.Buffer
	for i := range 1000 {
		stream.WriteString("id: " + strconv.Itoa(i) + "\nevent: status\n")
		stream.WriteString(`data: {"order_id":"ord-1","seq":` + strconv.Itoa(i) + `,"status":"preparing","at":"2026-11-23T19:40:00Z"}` + "\n\n: ping\n\n")
	}
	b.SetBytes(int64(stream.Len()))
	b.ReportAllocs()
	for b.Loop() {
		sr := client.NewSSEReader(bytes.NewReader(stream.Bytes()))
		for {
			if _, err := sr.Next(); err != nil {
				break
			}
		}
	}
}
