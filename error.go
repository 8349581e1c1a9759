package ordercast

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Error codes. They are stable: clients match on them, so they never change meaning.
const (
	EInternal         = "internal"
	EMalformed        = "malformed_request"
	EBodyTooLarge     = "body_too_large"
	EUnsupportedMedia = "unsupported_media_type"
	ENotFound         = "not_found"
	EInvalid          = "invalid_argument"
	EInvalidID        = "invalid_order_id"
	EInvalidStatus    = "invalid_status"
	EInvalidDetails   = "invalid_details"
	// EInvalidLocation: a courier's position or an order's pickup or drop-off is out of range.
	EInvalidLocation   = "invalid_location"
	EInvalidTransition = "invalid_transition"
	EVersionConflict   = "version_conflict"
	// EPreconditionFailed: a change sent with If-Match found the order at another version.
	EPreconditionFailed = "precondition_failed"
	EOrderExists        = "order_exists"
	// ECustomerActive: a customer's data cannot be erased while an order of theirs is in
	// progress; the message says how many.
	ECustomerActive  = "customer_has_active_orders"
	EUnauthenticated = "unauthenticated"
	// ETokenExpired: the token was good but its time is up: a client fetches a new one (signs in
	// again, or asks for a new tracking link) rather than show a credential error. Its own code,
	// beside EUnauthenticated's forged, malformed or unknown tokens, because only this one is
	// cured by a renewal, and an app should not have to parse a message to know which it got.
	ETokenExpired = "token_expired"
	EForbidden    = "forbidden"
	ERateLimited  = "rate_limited"
	// ETooManyAssignments: the order's history is full (MaxOrderVersion): it takes no further
	// courier change, though its status still moves.
	ETooManyAssignments = "too_many_assignments"
	// ETooManyPositions: a POST /v1/locations carries more positions than one request may.
	ETooManyPositions = "too_many_positions"
	// ETooManyChanges: a POST /v1/status-changes carries more changes than one request may.
	ETooManyChanges = "too_many_changes"
	ETooManyStreams = "too_many_streams"
	EUnavailable    = "unavailable"
	// EIdempotencyKeyReused: the key was used before with another request.
	EIdempotencyKeyReused = "idempotency_key_reused"
	// EIdempotencyKeyInUse: a concurrent request with the same key won; the caller should look
	// its answer up.
	EIdempotencyKeyInUse = "idempotency_key_in_use"
	// EMethodNotAllowed: the API has the path, but not with this method; Allow lists the methods
	// it takes.
	EMethodNotAllowed = "method_not_allowed"
	// EUpgradeRequired: a WebSocket endpoint was asked without a WebSocket upgrade.
	EUpgradeRequired = "upgrade_required"
	// EMisdirected: the request names, in Host, a site this server does not answer for.
	EMisdirected = "misdirected_request"
)

// Error is the one error type of the domain: a stable code for programs and a message for people.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("ordercast: %s: %s", e.Code, e.Message)
}

// SettingError is a configuration value out of range (a component's Config or tunable fields,
// judged by its Validate or Open). Setting is named as `ordercast serve`'s flag for it is, so
// the command reports it under the flag's name without a table of its own.
type SettingError struct {
	Setting string // "heartbeat", "location-rate", …
	Problem string // "must be positive, got 0s"
}

func (e *SettingError) Error() string { return e.Setting + " " + e.Problem }

// BadSetting returns a *SettingError for setting with a formatted problem.
func BadSetting(setting, format string, args ...any) *SettingError {
	return &SettingError{Setting: setting, Problem: fmt.Sprintf(format, args...)}
}

// quotedMost is how many bytes of a client's own input an error message repeats. A message names
// what was refused so its sender can find it, and that needs a few words, not the whole value: a
// 60 KiB status echoed whole, each '<' escaped six bytes long in JSON, would answer a small
// request with a body several times its size.
const quotedMost = 64

// Quote returns s, a value the client sent, Go-quoted for an error message, cut at a rune
// boundary to quotedMost bytes with "…" after the closing quote when it was longer.
func Quote(s string) string {
	if len(s) <= quotedMost {
		return strconv.Quote(s)
	}
	cut := quotedMost
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// VersionConflict is a change refused for expected_version (EVersionConflict): it says the
// order's version now, so that a client need not read the order again, nor parse the message,
// to decide what to do with its change.
type VersionConflict struct {
	Err     *Error // EVersionConflict, or the EPreconditionFailed of a change sent with If-Match
	Current int64  // the order's version
}

func (e *VersionConflict) Error() string { return e.Err.Error() }
func (e *VersionConflict) Unwrap() error { return e.Err }

// ConflictVersion returns the order's version that err, a refusal for expected_version anywhere in
// its chain, names, and whether it is one.
func ConflictVersion(err error) (int64, bool) {
	var vc *VersionConflict
	if errors.As(err, &vc) {
		return vc.Current, true
	}
	return 0, false
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for any other error,
// and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of the first *Error in err's chain; other errors are internal
// and their text is not shown to clients.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	}
	return "internal error"
}
