package server

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
	"github.com/ordercast/ordercast/location"
)

// What the requests of many items share (POST /v1/status-changes, POST /v1/locations): an
// integration's, each item judged alone and answered in its own result.

// permitMany is auth.Actor.PermitMany as a request's permit (changeRequestUpTo).
func permitMany(what string) func(auth.Actor) error {
	return func(a auth.Actor) error { return a.PermitMany(what) }
}

// nullItem refuses a request of many items (what: "position", "change") one of which is null.
// Decoded into a value, encoding/json reads null as an item with nothing set, which is no item at
// all but a malformed request: the requests decode their items as pointers to tell.
func nullItem[T any](items []*T, what string) error {
	if i := slices.Index(items, nil); i >= 0 {
		return ordercast.Errorf(ordercast.EMalformed, "%s %d is null, not an object", what, i)
	}
	return nil
}

// itemCount refuses a request of many items (what: "positions", "changes") that holds none, or
// more than most (tooMany, 413: it is the request's size that is wrong, not a value).
func itemCount(n, most int, what, tooMany string) error {
	switch {
	case n == 0:
		return ordercast.Errorf(ordercast.EInvalid, "%s must hold at least one", what)
	case n > most:
		return ordercast.Errorf(tooMany, "%d %s; one request may carry at most %d", n, what, most)
	}
	return nil
}

// resultError is the error of one item of a request of many (a position of POST /v1/locations,
// a change of POST /v1/status-changes), logged as writeError logs a whole request's when it is
// the server's fault.
func (s *Server) resultError(r *http.Request, err error) *api.ErrorDetail {
	body := api.NewErrorBody(err)
	if body.Error.Code == ordercast.EInternal && r.Context().Err() == nil {
		s.Logger.Error("one item of a request failed", "request_id", RequestID(r.Context()), "path", r.URL.Path, "err", err)
	}
	if wait, ok := retryWait(err); ok {
		body.Error.RetryAfterS = retrySeconds(wait)
	} else if body.Error.Code == ordercast.EUnavailable {
		// What the Retry-After of a whole request refused as unavailable says (writeError).
		body.Error.RetryAfterS = retrySeconds(s.Retry)
	}
	return &body.Error
}

// allUnavailable returns the error of the first result if every result failed as unavailable (a
// store that is away refuses everything it is given): the request as a whole is then answered
// 503 with Retry-After, which the caller retries whole, rather than 200 with every item
// unavailable, which a caller retrying on failures only would take as an answer.
func allUnavailable[R any](results []R, errOf func(R) error) error {
	if len(results) == 0 || slices.ContainsFunc(results, func(r R) bool {
		return ordercast.ErrorCode(errOf(r)) != ordercast.EUnavailable
	}) {
		return nil
	}
	return errOf(results[0])
}

// retryWait is how long the client should wait before it tries err's request again, for an error
// that says so: a courier over its budget (location.RateLimitError).
func retryWait(err error) (time.Duration, bool) {
	var rl *location.RateLimitError
	if errors.As(err, &rl) {
		return rl.Wait, true
	}
	return 0, false
}
