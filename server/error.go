package server

import (
	"encoding/json"
	"net/http"

	"github.com/ordercast/ordercast"
)

// statusOf maps each domain error code to its HTTP status; this table is the only place that does.
var statusOf = map[string]int{
	ordercast.EMalformed:         http.StatusBadRequest,
	ordercast.EUnauthenticated:   http.StatusUnauthorized,
	ordercast.EForbidden:         http.StatusForbidden,
	ordercast.ENotFound:          http.StatusNotFound,
	ordercast.EInvalidTransition: http.StatusConflict,
	ordercast.EVersionConflict:   http.StatusConflict,
	ordercast.EOrderExists:       http.StatusConflict,
	ordercast.EBodyTooLarge:      http.StatusRequestEntityTooLarge,
	ordercast.EUnsupportedMedia:  http.StatusUnsupportedMediaType,
	ordercast.EInvalid:           http.StatusUnprocessableEntity,
	ordercast.EInvalidID:         http.StatusUnprocessableEntity,
	ordercast.EInvalidStatus:     http.StatusUnprocessableEntity,
	ordercast.EInvalidDetails:    http.StatusUnprocessableEntity,
	ordercast.ERateLimited:       http.StatusTooManyRequests,
	ordercast.ETooManyStreams:    http.StatusServiceUnavailable,
	ordercast.EUnavailable:       http.StatusServiceUnavailable,
	ordercast.EInternal:          http.StatusInternalServerError,
}

// ErrorStatus returns the HTTP status for an error's domain code.
func ErrorStatus(err error) int {
	if st, ok := statusOf[ordercast.ErrorCode(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers with the JSON error body. Internal errors are logged here, once, and their
// text stays out of the response.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := ordercast.ErrorCode(err)
	if code == ordercast.EInternal {
		s.Logger.Error("request failed", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var body errorBody
	body.Error.Code = code
	body.Error.Message = ordercast.ErrorMessage(err)
	writeJSON(w, ErrorStatus(err), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// Shared, never-modified values: Header().Set would allocate a slice for each on every answer.
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	// The status line is out: an encoding or write error can only mean the client went away.
	_ = json.NewEncoder(w).Encode(v)
}

var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)
