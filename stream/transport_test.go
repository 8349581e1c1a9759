package stream

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// deadlineRecorder is a response writer that records how many bytes each write deadline covered.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	spans []int // bytes written under each deadline, in order
}

func (d *deadlineRecorder) SetWriteDeadline(time.Time) error {
	d.spans = append(d.spans, 0)
	return nil
}

func (d *deadlineRecorder) Write(b []byte) (int, error) {
	if len(d.spans) == 0 {
		panic("a write before any deadline")
	}
	d.spans[len(d.spans)-1] += len(b)
	return d.ResponseRecorder.Write(b)
}

// TestALongBatchRenewsItsWriteDeadline: a backlog of megabytes, sent in one batch, is written
// under a deadline renewed every span of it, so a client that takes it slowly but steadily is not
// cut when the batch as a whole outlasts WriteTimeout; every frame is sent whole, in order.
func TestALongBatchRenewsItsWriteDeadline(t *testing.T) {
	frame := []byte("id: 1\nevent: status\ndata: {\"" + strings.Repeat("x", 990) + "\"}\n\n")
	frames := make([][]byte, 1000) // about 1 MB
	var want bytes.Buffer
	for i := range frames {
		frames[i] = frame
		want.Write(frame)
	}
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	tr := &responseTransport{w: rec, rc: http.NewResponseController(rec), timeout: time.Second}
	if err := tr.WriteMany(frames...); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), want.Bytes()) {
		t.Fatalf("wrote %d bytes, want the %d of the frames in order", rec.Body.Len(), want.Len())
	}
	if len(rec.spans) < want.Len()/deadlineSpan {
		t.Errorf("%d bytes written under %d deadlines, want one every %d bytes or so", want.Len(), len(rec.spans), deadlineSpan)
	}
	for i, n := range rec.spans {
		if n > deadlineSpan+len(frame) {
			t.Errorf("deadline %d covered %d bytes, want at most a span and a frame (%d)", i, n, deadlineSpan+len(frame))
		}
	}
}

// TestALargeFrameRenewsItsWriteDeadline: one frame of a megabyte (an all-orders snapshot of 500
// orders, or a party's of 2,000) is written under a deadline renewed every span of it, as a long
// batch of small frames is, alone (Write) or behind the preamble (WriteMany): a client that
// takes it slowly but steadily is not cut because the one frame outlasts WriteTimeout, as the
// poller would not cut it. Before, a frame got one deadline however large it was.
func TestALargeFrameRenewsItsWriteDeadline(t *testing.T) {
	snapshot := []byte("event: snapshot\ndata: [" + strings.Repeat("x", 1<<20) + "]\n\n")
	preamble := []byte("retry: 2000\n\n")
	for _, tc := range []struct {
		name   string
		frames [][]byte
	}{
		{"Write", [][]byte{snapshot}},
		{"WriteMany", [][]byte{preamble, snapshot}},
	} {
		rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
		tr := &responseTransport{w: rec, rc: http.NewResponseController(rec), timeout: time.Second}
		var err error
		if len(tc.frames) == 1 {
			err = tr.Write(tc.frames[0])
		} else {
			err = tr.WriteMany(tc.frames...)
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.Join(tc.frames, nil); !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("%s: wrote %d bytes, want the %d of the frames in order", tc.name, rec.Body.Len(), len(want))
		}
		for i, n := range rec.spans {
			if n > deadlineSpan+len(preamble) {
				t.Errorf("%s: deadline %d of %d covered %d bytes, want at most a span (%d)", tc.name, i, len(rec.spans), n, deadlineSpan)
			}
		}
	}
}
