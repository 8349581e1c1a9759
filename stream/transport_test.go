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
