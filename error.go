package dealroom

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. They are chosen where a fault is known and mapped to HTTP
// statuses and protocol error frames in one place (PublicOf).
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

// codes is the one table from an error code to what the public contract
// shows: the HTTP status of a REST answer and the code word of its error
// body, which a websocket error frame carries too.
var codes = map[string]struct {
	status int
	wire   string
}{
	EINVALID:     {422, "invalid_field"},
	EBADREQUEST:  {400, "bad_request"},
	EUNAUTH:      {401, "unauthenticated"},
	EFORBIDDEN:   {403, "forbidden"},
	ENOTFOUND:    {404, "not_found"},
	ECONFLICT:    {409, "conflict"},
	ETOOLARGE:    {413, "payload_too_large"},
	EMETHOD:      {405, "method_not_allowed"},
	ERATELIMITED: {429, "rate_limited"},
	EUNAVAILABLE: {503, "unavailable"},
	EINTERNAL:    {500, "internal"},
}

// Codes returns every error code, in no particular order.
func Codes() []string {
	out := make([]string, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	return out
}

// Public is an error as the public contract shows it, over HTTP and over
// the websocket alike.
type Public struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// PublicOf describes err for its caller: its status, its code word, a
// message safe to show (internal errors get a generic one) and the field
// at fault. A cancelled or timed-out context is "unavailable": the caller
// may retry.
func PublicOf(err error) Public {
	if err == nil {
		return Public{}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if ErrorCode(err) == EINTERNAL {
			err = &Error{Code: EUNAVAILABLE, Message: "the server is busy or shutting down; retry", Err: err}
		}
	}
	code := ErrorCode(err)
	c, ok := codes[code]
	if !ok {
		c, err = codes[EINTERNAL], errors.New("unknown error code "+code)
	}
	p := Public{Status: c.status, Code: c.wire, Message: ErrorMessage(err)}
	var e *Error
	if errors.As(err, &e) {
		p.Field = e.Field
	}
	return p
}
