package server

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"time"
)

// redactedValue replaces a token's value in the logs.
const redactedValue = "REDACTED"

// redact returns s with every token in it replaced: a token parameter's value (redactTokens),
// and a token anywhere else (redactJWTs).
func redact(s string) string { return redactJWTs(redactTokens(s)) }

// redactTokens returns s with the value of every token query parameter replaced, so that no
// tracking token reaches a log line: in any text (a URL in a log line, an http.Server error, a
// panic message), "token=" after one of ? & ; (any case) up to one of & ; # ' " or a space.
// It runs on every string of every log line, so it is a scan for '=' that allocates only when
// there is something to redact (it replaces the regexp (?i)([?&;]token=)[^&\s"'#;]*).
func redactTokens(s string) string {
	i := tokenValueIndex(s, 0)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(redactedValue))
	last := 0
	for i >= 0 {
		b.WriteString(s[last:i])
		b.WriteString(redactedValue)
		last = i
		for last < len(s) && !endsTokenValue(s[last]) {
			last++
		}
		i = tokenValueIndex(s, last)
	}
	b.WriteString(s[last:])
	return b.String()
}

// redactJWTs returns s with every token outside a token parameter replaced too: a token sent
// where an id goes (GET /v1/orders/<token>, a client's mistake) is in the path a request's line
// logs. A token this server signs is a JWT, whose first part, base64url of a JSON object, begins
// "eyJ": three parts of base64url joined by two dots, from there to the end of the run of
// base64url and dots it is in, are one. Anyone can put any path in a log line, so this is one
// pass over s, however it is made, and allocates only when it redacts.
func redactJWTs(s string) string {
	if !strings.Contains(s, "eyJ") {
		return s
	}
	var b strings.Builder
	last := 0 // s[:last] is in b, or needs no redacting
	for i := 0; i < len(s); {
		if !isTokenByte(s[i]) {
			i++
			continue
		}
		run := i
		dots := 0
		for i < len(s) && isTokenByte(s[i]) {
			if s[i] == '.' {
				dots++
			}
			i++
		}
		// A token starts the run or follows one of its dots, and has two dots after its start.
		// dots counts the dots in s[c:i].
		for c := run; c < i && dots >= 2; c++ {
			if (c == run || s[c-1] == '.') && dots == 2 && strings.HasPrefix(s[c:i], "eyJ") {
				if b.Len() == 0 {
					b.Grow(len(s))
				}
				b.WriteString(s[last:c])
				b.WriteString(redactedValue)
				last = i
				break
			}
			if s[c] == '.' {
				dots--
			}
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// isTokenByte reports whether c may be in a JWT: base64url or the dot between parts.
func isTokenByte(c byte) bool { return isBase64URL(c) || c == '.' }

// isBase64URL reports whether c is a letter of base64url (RFC 4648 §5).
func isBase64URL(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// tokenValueIndex returns where the value of the first token parameter starting at or after
// from begins, or -1.
func tokenValueIndex(s string, from int) int {
	for eq := from; ; eq++ {
		k := strings.IndexByte(s[eq:], '=')
		if k < 0 {
			return -1
		}
		eq += k
		if p := tokenNameStart(s, eq); p > from && (s[p-1] == '?' || s[p-1] == '&' || s[p-1] == ';') {
			return eq + 1
		}
	}
}

// tokenNameStart returns where "token" ends just before s[eq] begins, in any case (K may also be
// the Kelvin sign, which case-folds to k), or -1.
func tokenNameStart(s string, eq int) int {
	i := eq
	for _, c := range []byte("ne") {
		if i == 0 || s[i-1]|0x20 != c {
			return -1
		}
		i--
	}
	switch {
	case i >= 1 && s[i-1]|0x20 == 'k':
		i--
	case i >= 3 && s[i-3:i] == "\u212a":
		i -= 3
	default:
		return -1
	}
	for _, c := range []byte("ot") {
		if i == 0 || s[i-1]|0x20 != c {
			return -1
		}
		i--
	}
	return i
}

// endsTokenValue reports whether c ends a token's value: the regexp's [&\s"'#;], \s being
// RE2's ASCII space class.
func endsTokenValue(c byte) bool {
	switch c {
	case '&', '"', '\'', '#', ';', ' ', '\t', '\n', '\f', '\r':
		return true
	}
	return false
}

// redactingHandler is a slog.Handler that redacts token query parameters in the message and in
// every string, error or Stringer attribute before passing the record on. The server wraps its
// Logger with it, so that the request log, error logs and http.Server.ErrorLog are all covered.
type redactingHandler struct{ next slog.Handler }

// redacting wraps l's handler, once.
func redacting(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(redactingHandler); ok {
		return l
	}
	return slog.New(redactingHandler{next: l.Handler()})
}

func (h redactingHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return redactingHandler{next: h.next.WithAttrs(red)}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{next: h.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(redact(v.String()))
	case slog.KindGroup:
		group := v.Group()
		red := make([]slog.Attr, len(group))
		for i, g := range group {
			red[i] = redactAttr(g)
		}
		a.Value = slog.GroupValue(red...)
	case slog.KindAny:
		var text string
		switch x := v.Any().(type) {
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		default:
			return a
		}
		if red := redact(text); red != text {
			a.Value = slog.StringValue(red)
		}
	}
	return a
}

// httpErrorLog is the http.Server's ErrorLog: its lines go through the redacting Logger, at
// WARN, but for failed TLS handshakes, at DEBUG: every scanner on the internet and every client
// that gives up mid-handshake makes one, which is nothing for an operator to act on.
func (s *Server) httpErrorLog() *log.Logger {
	return log.New(httpErrorWriter{redacting(s.Logger).Handler()}, "", 0)
}

// httpErrorWriter writes net/http's log lines to a slog handler, each at its level.
type httpErrorWriter struct{ h slog.Handler }

func (w httpErrorWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	if ctx := context.Background(); w.h.Enabled(ctx, level) {
		if err := w.h.Handle(ctx, slog.NewRecord(time.Now(), level, msg, 0)); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
