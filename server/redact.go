package server

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"regexp"
)

// tokenInQuery finds the value of a token query parameter in any text: a URL in a log line, an
// http.Server error, a panic message.
var tokenInQuery = regexp.MustCompile(`(?i)([?&;]token=)[^&\s"'#;]*`)

// redactedValue replaces a token's value in the logs.
const redactedValue = "REDACTED"

// RedactTokens returns s with the value of every token query parameter replaced, so that no
// tracking token reaches a log line.
func RedactTokens(s string) string {
	return tokenInQuery.ReplaceAllString(s, "${1}"+redactedValue)
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
	out := slog.NewRecord(rec.Time, rec.Level, RedactTokens(rec.Message), rec.PC)
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
		a.Value = slog.StringValue(RedactTokens(v.String()))
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
		if red := RedactTokens(text); red != text {
			a.Value = slog.StringValue(red)
		}
	}
	return a
}

// httpErrorLog is the http.Server's ErrorLog: its lines go through the redacting Logger.
func (s *Server) httpErrorLog() *log.Logger {
	return slog.NewLogLogger(redacting(s.Logger).Handler(), slog.LevelWarn)
}
