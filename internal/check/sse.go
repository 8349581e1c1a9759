package check

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// sseEvent is one dispatched Server-Sent Event as the WHATWG HTML standard defines it.
type sseEvent struct {
	ID string // the last event ID buffer at dispatch time
	// SetsID says the event's own fields held an id (one without a NUL), which moves an
	// EventSource's lastEventId: a courier's position must not.
	SetsID bool
	Type   string // "message" when no event field was given
	Data   string
	Retry  int64 // the last valid retry field seen, ms; -1 when none
}

// sseReader parses a text/event-stream by the WHATWG rules (HTML, "Server-sent events",
// interpreting an event stream). It is written from the standard on purpose and shares no code
// with the server's writer or the client package, so a bug there cannot hide itself here.
type sseReader struct {
	r       *bufio.Reader
	started bool // the leading BOM has been considered
	lastID  string
	retry   int64
	pendCR  bool // the previous line ended with CR: a following LF belongs to it
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 2048), retry: -1}
}

// errLineTooLong bounds what a misbehaving server can make the checker hold.
var errLineTooLong = errors.New("sse: line longer than 64 KiB")

const maxSSELine = 64 << 10

// readLine returns one line without its terminator; lines end in CRLF, LF or CR.
func (s *sseReader) readLine() ([]byte, error) {
	var line []byte
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				// An incomplete final line is discarded by the standard (no dispatch at EOF).
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if s.pendCR {
			s.pendCR = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			return line, nil
		case '\r':
			s.pendCR = true
			return line, nil
		}
		if len(line) >= maxSSELine {
			return nil, errLineTooLong
		}
		line = append(line, b)
	}
}

// Next returns the next dispatched event. Comments and fields of events with empty data are
// consumed on the way (an empty data buffer dispatches nothing, but an id field still sets the
// last event ID). At the end of the stream it returns io.EOF or io.ErrUnexpectedEOF.
func (s *sseReader) Next() (sseEvent, error) {
	var data bytes.Buffer
	var typ string
	hasData, setsID := false, false
	for {
		line, err := s.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if !s.started {
			s.started = true
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		if len(line) == 0 {
			if !hasData {
				typ, setsID = "", false
				continue
			}
			d := data.Bytes()
			d = bytes.TrimSuffix(d, []byte("\n"))
			if typ == "" {
				typ = "message"
			}
			return sseEvent{ID: s.lastID, SetsID: setsID, Type: typ, Data: string(d), Retry: s.retry}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			typ = string(value)
		case "data":
			data.Write(value)
			data.WriteByte('\n')
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				s.lastID, setsID = string(value), true
			}
		case "retry":
			if len(value) > 0 && allDigits(value) {
				if n, err := strconv.ParseInt(string(value), 10, 64); err == nil {
					s.retry = n
				}
			}
		}
	}
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
