package ordercast_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ordercast/ordercast"
)

// TestQuoteCutsLongInputShort: a value a client sent is quoted whole when short, and otherwise
// its first 64 bytes are, cut between runes, with "…" after.
func TestQuoteCutsLongInputShort(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", `""`},
		{"ready", `"ready"`},
		{`a"b`, `"a\"b"`},
		{strings.Repeat("x", 64), `"` + strings.Repeat("x", 64) + `"`},
		{strings.Repeat("x", 65), `"` + strings.Repeat("x", 64) + `"…`},
		{"x" + strings.Repeat("é", 40), `"x` + strings.Repeat("é", 31) + `"…`}, // 63 bytes: the 32nd é would end at 65
	} {
		got := ordercast.Quote(tt.in)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("Quote(%.80q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
