package server_test

import (
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ordercast/ordercast/internal/testutil"
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

// TestRedactCatchesATokenWhereAnIDGoes: a token sent in the path (GET /v1/orders/<token>, a
// client's mistake) is redacted as a token parameter is; a word that merely holds "eyJ", or a
// run with other than two dots, is left alone.
func TestRedactCatchesATokenWhereAnIDGoes(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjLTEifQ.c2lnbmF0dXJl"
	for in, want := range map[string]string{
		"path=/v1/orders/" + jwt:                     "path=/v1/orders/REDACTED",
		"/v1/orders/" + jwt + "/stream?token=" + jwt: "/v1/orders/REDACTED/stream?token=REDACTED",
		"a " + jwt + " and " + jwt:                   "a REDACTED and REDACTED",
		"/v1/orders/heyJude.a.b":                     "/v1/orders/heyJude.a.b",
		"/v1/orders/eyJ.only-one-dot":                "/v1/orders/eyJ.only-one-dot",
		"v1.2.3 eyJ.a.b.c":                           "v1.2.3 eyJ.a.b.c",
	} {
		if got := server.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestATokenInThePathIsNotLogged: the request line of GET /v1/orders/<token> (no such order)
// logs its path without the token.
func TestATokenInThePathIsNotLogged(t *testing.T) {
	var logs testutil.Buffer
	ts := newServer(t, func(s *server.Server) {
		s.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjLTEifQ.c2lnbmF0dXJl"
	if code, _ := do(t, "GET", ts.URL()+"/v1/orders/"+jwt, "", ""); code != http.StatusNotFound {
		t.Fatalf("GET /v1/orders/<token>: %d, want 404", code)
	}
	if strings.Contains(logs.String(), "c2lnbmF0dXJl") || !strings.Contains(logs.String(), "/v1/orders/REDACTED") {
		t.Errorf("the log holds the token, or no redacted path:\n%s", logs.String())
	}
}

// TestRedactIsOnePass: anyone can put a path of 32 KiB in a log line; one made of many tokens, or
// of "eyJ" over and over, is redacted right, building the result once (a rebuild for each token
// cost time and garbage in the square of the path's length).
func TestRedactIsOnePass(t *testing.T) {
	many := strings.Repeat("eyJ../", 5461)
	if got, want := server.Redact(many), strings.Repeat("REDACTED/", 5461); got != want {
		t.Fatalf("Redact(eyJ../ × 5461) = %.60q…, want REDACTED/ × 5461", got)
	}
	if allocs := testing.AllocsPerRun(5, func() { server.Redact(many) }); allocs > 2 {
		t.Errorf("Redact(eyJ../ × 5461) allocates %v times, want the result once", allocs)
	}
	same := strings.Repeat("eyJ", 10922)
	if got := server.Redact(same); got != same {
		t.Errorf("Redact(eyJ × 10922) changed it: %.60q…", got)
	}
	// A run that holds a token after another part: the token is from its eyJ on.
	if got, want := server.Redact("x.eyJa.b.c"), "x.REDACTED"; got != want {
		t.Errorf("Redact(x.eyJa.b.c) = %q, want %q", got, want)
	}
}

func BenchmarkRedactAdversarialPath(b *testing.B) {
	for _, in := range []string{strings.Repeat("eyJ", 10922), strings.Repeat("eyJ../", 5461)} {
		b.Run(in[:6], func(b *testing.B) {
			for b.Loop() {
				server.Redact(in)
			}
		})
	}
}
