package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ordercast/ordercast"
	"github.com/ordercast/ordercast/api"
	"github.com/ordercast/ordercast/auth"
)

// errorStatus returns the HTTP status for an error's domain code, from the wire contract's one
// code-to-status table.
func errorStatus(err error) int {
	return api.HTTPStatus(ordercast.ErrorCode(err))
}

// statusClientClosedRequest is the status logged and counted for a request whose client left
// before its answer (nginx's 499): nobody receives it, but for a client still connected when a
// node past its shutdown deadline cuts the requests it holds.
const statusClientClosedRequest = 499

// writeError answers with the JSON error body. Internal errors are logged here, once, and their
// text stays out of the response.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = wrongScheme(r, err)
	body := api.NewErrorBody(err)
	abandoned := r.Context().Err() != nil && errors.Is(err, r.Context().Err())
	if abandoned {
		// The client left (or the server is cutting requests at shutdown) while the request
		// waited: nobody reads this answer, and nothing is broken.
		s.Logger.Debug("request abandoned", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
	} else if body.Error.Code == ordercast.EInternal {
		s.Logger.Error("request failed", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if body.Error.Code == ordercast.EUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", s.retryAfterSeconds())
	}
	status := errorStatus(err)
	if abandoned {
		// Not a 500: the request log and ordercast_http_requests_total would count a client
		// that gave up (on a database slow or away, say) as a failure of the server's. 499 is
		// nginx's status for it, so the node's line and nginx's agree.
		status = statusClientClosedRequest
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", bearerChallenge(err))
	}
	b, err := json.Marshal(body)
	if err != nil { // an ErrorBody is strings and an int: it always encodes
		panic("server: encode an error body: " + err.Error())
	}
	writeRawJSON(w, status, append(b, '\n'))
}

// wrongScheme adds to a refusal for want of a token (auth.ErrNoToken) what a request that did
// send an Authorization header got wrong: a token goes there as "Bearer <token>"; any other err it
// returns as it is. Such a header is not an error in itself: a proxy's Basic credentials, beside a
// page's cookie, are let through.
func wrongScheme(r *http.Request, err error) error {
	if !errors.Is(err, auth.ErrNoToken) || r.Header.Get("Authorization") == "" {
		return err
	}
	// The header's value is not repeated: sent without its scheme, it is the token itself.
	return auth.NoToken(ordercast.ErrorMessage(err) + `; the Authorization header sent holds none: it takes a token as "Bearer <token>"`)
}

// bearerChallenge is the WWW-Authenticate of a 401 (RFC 9110 §11.6.1 requires one): the scheme
// the API takes, and invalid_token when a token was presented and refused (RFC 6750 §3.1; a
// request that presented none gets no error code). Browsers prompt for Basic only, so the pages'
// own requests are answered as before.
func bearerChallenge(err error) string {
	switch {
	case errors.Is(err, auth.ErrNoToken):
		return `Bearer realm="ordercast"`
	case ordercast.ErrorCode(err) == ordercast.ETokenExpired:
		// RFC 6750 §3's own example: a client that reads the challenge, not the body, can tell
		// an expired token (get a new one) from one refused for good.
		return `Bearer realm="ordercast", error="invalid_token", error_description="The access token expired"`
	}
	return `Bearer realm="ordercast", error="invalid_token"`
}

// writeJSON answers with v as JSON. v is encoded before the status line goes out, so that a
// value that cannot be encoded is a 500 the log names, not a 200 with a body cut short.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	a, err := encodeAnswer(status, v)
	if err != nil {
		w.Header().Del("ETag") // of the answer that could not be sent
		s.writeError(w, r, err)
		return
	}
	writeRawJSON(w, a.Status, a.Body)
}

// writeRawJSON answers with body, JSON already encoded.
func writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	// Shared, never-modified values: Header().Set would allocate a slice for each on every answer.
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	_, _ = w.Write(body) // the status line is out: a write error can only mean the client went away
}

var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)
