package server_test

import (
	"regexp"
	"testing"

	"github.com/ordercast/ordercast/server"
)

// redactRegexp is the regexp RedactTokens replaced; it stays as the reference the scan must match.
var redactRegexp = regexp.MustCompile(`(?i)([?&;]token=)[^&\s"'#;]*`)

func redactReference(s string) string {
	return redactRegexp.ReplaceAllString(s, "${1}REDACTED")
}

var redactCases = []string{
	"",
	"GET /v1/orders/o-1/stream?token=eyJ.abc.def HTTP/1.1",
	"/v1/orders/o-1/stream?lastEventId=3&token=abc&x=1",
	"/x?TOKEN=abc;token=def#frag",
	"/x?Token=abc'quoted\" /y?toKen=z",
	"/x?token=&token=b",
	"/x?token==a=b",
	"token=bare-not-in-a-query",
	"/x?mytoken=abc&tokens=def&atoken=x",
	"/x?to\u212aen=kelvin",
	"/x??token=a",
	"/x;token=a\tb\nc",
	"= ?= &token",
	"/x?token=a b?token=c",
}

func TestRedactTokens_MatchesRegexp(t *testing.T) {
	for _, s := range redactCases {
		if got, want := server.RedactTokens(s), redactReference(s); got != want {
			t.Errorf("RedactTokens(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzRedactTokens(f *testing.F) {
	for _, s := range redactCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := server.RedactTokens(s), redactReference(s); got != want {
			t.Errorf("RedactTokens(%q) = %q, want %q", s, got, want)
		}
	})
}

func BenchmarkRedactTokens(b *testing.B) {
	line := "GET /v1/orders/ord-0123456789abcdef/status 200 method=POST remote=127.0.0.1:5555"
	for b.Loop() {
		server.RedactTokens(line)
	}
}
