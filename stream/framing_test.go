package stream

import (
	"strings"
	"testing"
	"time"
)

// TestRetryFrame: a stream's opening and a refused stream's answer write the SSE retry frame one
// way, in whole milliseconds and never 0 (which a client reads as reconnect at once).
func TestRetryFrame(t *testing.T) {
	for _, tc := range []struct {
		retry   time.Duration
		comment string
		want    string
	}{
		{2 * time.Second, "", "retry: 2000\n\n"},
		{500 * time.Microsecond, "", "retry: 1\n\n"},
		{1500 * time.Millisecond, "draining, retry shortly", "retry: 1500\n: draining, retry shortly\n\n"},
	} {
		var b strings.Builder
		if err := WriteRetry(&b, tc.retry, tc.comment); err != nil || b.String() != tc.want {
			t.Errorf("WriteRetry(%s, %q) = %q, %v; want %q", tc.retry, tc.comment, b.String(), err, tc.want)
		}
		if tc.comment == "" {
			if got := string(sseFraming{}.preamble(nil, tc.retry)); got != tc.want {
				t.Errorf("preamble(%s) = %q, want %q", tc.retry, got, tc.want)
			}
		}
	}
}
