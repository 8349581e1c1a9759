package api

import (
	"net/http"

	"github.com/ordercast/ordercast"
)

// ErrorBody is the body of every error answer: {"error":{"code":…,"message":…}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody: a stable code for programs, a message for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfterS is, in one item's result of a request of many (a courier over its budget in
	// POST /v1/locations, an item refused unavailable while others were taken), what
	// Retry-After says of a whole request: the seconds to wait before that item is sent again.
	RetryAfterS int `json:"retry_after_s,omitempty"`
	// CurrentVersion is, in a version_conflict or a precondition_failed, the order's version:
	// what the change's expected_version (or If-Match) would have had to say.
	CurrentVersion int64 `json:"current_version,omitempty"`
}

// NewErrorBody returns the error body of err: its domain code and message. Errors that are not
// *ordercast.Error are internal, and their text stays out of the body.
func NewErrorBody(err error) ErrorBody {
	b := ErrorBody{Error: ErrorDetail{Code: ordercast.ErrorCode(err), Message: ordercast.ErrorMessage(err)}}
	b.Error.CurrentVersion, _ = ordercast.ConflictVersion(err)
	return b
}

// codeStatus is the one table between error codes and HTTP statuses. Read forwards it gives each
// code its status; read backwards (the client, facing an answer without a JSON body, such as a
// proxy's page) the first code listed for a status is the one that status means.
var codeStatus = []struct {
	code   string
	status int
}{
	{ordercast.EMalformed, http.StatusBadRequest},
	{ordercast.EUnauthenticated, http.StatusUnauthorized}, // first: the general 401
	{ordercast.ETokenExpired, http.StatusUnauthorized},
	{ordercast.EForbidden, http.StatusForbidden},
	{ordercast.ENotFound, http.StatusNotFound},
	{ordercast.EMethodNotAllowed, http.StatusMethodNotAllowed},
	{ordercast.EInvalidTransition, http.StatusConflict},
	{ordercast.EVersionConflict, http.StatusConflict},
	{ordercast.EOrderExists, http.StatusConflict},
	{ordercast.ETooManyAssignments, http.StatusConflict},
	{ordercast.ECustomerActive, http.StatusConflict},
	{ordercast.EPreconditionFailed, http.StatusPreconditionFailed},
	{ordercast.EBodyTooLarge, http.StatusRequestEntityTooLarge}, // first: the general 413
	{ordercast.ETooManyPositions, http.StatusRequestEntityTooLarge},
	{ordercast.ETooManyChanges, http.StatusRequestEntityTooLarge},
	{ordercast.EUnsupportedMedia, http.StatusUnsupportedMediaType},
	{ordercast.EInvalid, http.StatusUnprocessableEntity}, // first: the general 422
	{ordercast.EInvalidID, http.StatusUnprocessableEntity},
	{ordercast.EInvalidStatus, http.StatusUnprocessableEntity},
	{ordercast.EInvalidDetails, http.StatusUnprocessableEntity},
	{ordercast.EInvalidLocation, http.StatusUnprocessableEntity},
	{ordercast.EIdempotencyKeyReused, http.StatusUnprocessableEntity},
	{ordercast.EIdempotencyKeyInUse, http.StatusConflict},
	{ordercast.EUpgradeRequired, http.StatusUpgradeRequired},
	{ordercast.EMisdirected, http.StatusMisdirectedRequest},
	{ordercast.ERateLimited, http.StatusTooManyRequests},
	{ordercast.EUnavailable, http.StatusServiceUnavailable}, // first: the general 503
	{ordercast.ETooManyStreams, http.StatusServiceUnavailable},
	{ordercast.EInternal, http.StatusInternalServerError},
}

// gatewayStatuses are what a proxy in front answers when no node could: they mean unavailable,
// though this server never sends them itself.
var gatewayStatuses = map[int]bool{http.StatusBadGateway: true, http.StatusGatewayTimeout: true}

var (
	statusOfCode = map[string]int{}
	codeOfStatus = map[int]string{}
)

func init() {
	for _, cs := range codeStatus {
		statusOfCode[cs.code] = cs.status
		if _, ok := codeOfStatus[cs.status]; !ok {
			codeOfStatus[cs.status] = cs.code
		}
	}
}

// HTTPStatus returns the HTTP status of an error code; 500 for a code it does not know.
func HTTPStatus(code string) int {
	if st, ok := statusOfCode[code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// CodeForStatus returns the code an error answer with this HTTP status means when it carries no
// error body; ordercast.EInternal for a status the API does not use.
func CodeForStatus(status int) string {
	if gatewayStatuses[status] {
		return ordercast.EUnavailable
	}
	if code, ok := codeOfStatus[status]; ok {
		return code
	}
	return ordercast.EInternal
}
