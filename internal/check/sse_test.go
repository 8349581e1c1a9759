package check

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestSSEReader checks the WHATWG parsing rules the checker's reader follows.
func TestSSEReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"plain", "id: 1\nevent: status\ndata: {}\n\n", []sseEvent{{ID: "1", SetsID: true, Type: "status", Data: "{}", Retry: -1}}},
		{"CRLF and CR line ends", "id: 1\r\ndata: a\r\rdata: b\r\n\r\n", []sseEvent{{ID: "1", SetsID: true, Type: "message", Data: "a", Retry: -1}, {ID: "1", Type: "message", Data: "b", Retry: -1}}},
		{"leading BOM", "\xEF\xBB\xBFdata: x\n\n", []sseEvent{{Type: "message", Data: "x", Retry: -1}}},
		{"comments and retry", ": ping\nretry: 2000\n\n: ping\ndata: x\n\n", []sseEvent{{Type: "message", Data: "x", Retry: 2000}}},
		{"bad retry ignored", "retry: 2s\ndata: x\n\n", []sseEvent{{Type: "message", Data: "x", Retry: -1}}},
		{"multi-line data", "data: a\ndata\ndata:b\n\n", []sseEvent{{Type: "message", Data: "a\n\nb", Retry: -1}}},
		{"one space removed only", "data:  a\n\n", []sseEvent{{Type: "message", Data: " a", Retry: -1}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []sseEvent{{ID: "1", SetsID: true, Type: "message", Data: "a", Retry: -1}, {ID: "1", Type: "message", Data: "b", Retry: -1}}},
		{"id persists; an event without data is not dispatched but sets the id", "id: 1\nevent: status\n\nid: 2\ndata: a\n\n", []sseEvent{{ID: "2", SetsID: true, Type: "message", Data: "a", Retry: -1}}},
		{"an id of an event not dispatched is not the next one's own", "id: 1\nevent: status\n\nevent: location\ndata: a\n\n", []sseEvent{{ID: "1", Type: "location", Data: "a", Retry: -1}}},
		{"an unfinished event at the end is dropped", "data: a\n\ndata: b\n", []sseEvent{{Type: "message", Data: "a", Retry: -1}}},
		{"unknown fields ignored", "foo: bar\ndata: a\n\n", []sseEvent{{Type: "message", Data: "a", Retry: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newSSEReader(strings.NewReader(tt.in))
			var got []sseEvent
			for {
				ev, err := r.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatal(err)
					}
					break
				}
				got = append(got, ev)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
