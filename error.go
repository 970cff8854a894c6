package dealroom

import (
	"errors"
	"fmt"
)

// Error codes. They are chosen where a fault is known and mapped to HTTP
// statuses and protocol error frames in one place each (package api).
const (
	EINVALID     = "invalid"     // a field or value breaks a rule (422, with Field)
	EBADREQUEST  = "bad_request" // the request as a whole cannot be read (400)
	EUNAUTH      = "unauthenticated"
	EFORBIDDEN   = "forbidden"
	ENOTFOUND    = "not_found"
	ECONFLICT    = "conflict"
	ETOOLARGE    = "payload_too_large"
	EMETHOD      = "method_not_allowed" // the route exists, with other methods (405, with Allow)
	ERATELIMITED = "rate_limited"
	EUNAVAILABLE = "unavailable"
	EINTERNAL    = "internal"
)

// Error is the one error type of the domain. Code says what kind of fault it
// is, Message is safe to show to the user, and Field names the offending
// input field when there is one.
type Error struct {
	Code    string
	Message string
	Field   string
	Err     error // the cause, never shown to users
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error about one input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound returns an ENOTFOUND error for a thing of the given kind.
func NotFound(kind, id string) *Error {
	return &Error{Code: ENOTFOUND, Message: fmt.Sprintf("%s %s not found", kind, id)}
}

// Unavailable wraps a backend failure: the request may be retried later.
func Unavailable(err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: "the service is temporarily unavailable, retry later", Err: err}
}

// ErrorCode returns the code of err, EINTERNAL for errors that carry none,
// and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of err; internal errors get
// a generic text so that no internal detail leaks.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}

// WireCode returns the code the public contract uses for an error code:
// the same word, except "invalid_field" for EINVALID.
func WireCode(code string) string {
	if code == EINVALID {
		return "invalid_field"
	}
	return code
}
