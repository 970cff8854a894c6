package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"dealroom"
)

// codes maps domain error codes to HTTP statuses and the contract's codes.
var codes = map[string]struct {
	status int
	code   string
}{
	dealroom.EINVALID:     {http.StatusUnprocessableEntity, "invalid_field"},
	dealroom.EBADREQUEST:  {http.StatusBadRequest, "bad_request"},
	dealroom.EUNAUTH:      {http.StatusUnauthorized, "unauthenticated"},
	dealroom.EFORBIDDEN:   {http.StatusForbidden, "forbidden"},
	dealroom.ENOTFOUND:    {http.StatusNotFound, "not_found"},
	dealroom.ECONFLICT:    {http.StatusConflict, "conflict"},
	dealroom.ETOOLARGE:    {http.StatusRequestEntityTooLarge, "payload_too_large"},
	dealroom.EMETHOD:      {http.StatusMethodNotAllowed, "method_not_allowed"},
	dealroom.ERATELIMITED: {http.StatusTooManyRequests, "rate_limited"},
	dealroom.EUNAVAILABLE: {http.StatusServiceUnavailable, "unavailable"},
	dealroom.EINTERNAL:    {http.StatusInternalServerError, "internal"},
}

// errorBody is the contract's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Status returns the HTTP status and the contract's body for err. Internal
// errors get a generic message; their text is only logged.
func Status(err error) (int, errorBody) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		err = fromEcho(he)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = dealroom.Unavailable(err)
	}
	code := dealroom.ErrorCode(err)
	m, ok := codes[code]
	if !ok {
		m = codes[dealroom.EINTERNAL]
	}
	body := errorBody{Error: errorDetail{Code: m.code, Message: dealroom.ErrorMessage(err)}}
	var de *dealroom.Error
	if errors.As(err, &de) {
		body.Error.Field = de.Field
	}
	return m.status, body
}

// fromEcho turns Echo's own errors (no route, body limit, ...) into ours.
func fromEcho(he *echo.HTTPError) error {
	switch he.Code {
	case http.StatusNotFound:
		return dealroom.Errorf(dealroom.ENOTFOUND, "no such route")
	case http.StatusMethodNotAllowed: // Echo has set the Allow header
		return dealroom.Errorf(dealroom.EMETHOD, "this route does not answer this method; the Allow header lists those it does")
	case http.StatusRequestEntityTooLarge:
		return dealroom.Errorf(dealroom.ETOOLARGE, "the request body is too large")
	case http.StatusUnauthorized:
		return dealroom.Errorf(dealroom.EUNAUTH, "authentication required")
	case http.StatusTooManyRequests:
		return dealroom.Errorf(dealroom.ERATELIMITED, "too many requests")
	case http.StatusForbidden:
		return dealroom.Errorf(dealroom.EFORBIDDEN, "forbidden")
	case http.StatusServiceUnavailable:
		return dealroom.Errorf(dealroom.EUNAVAILABLE, "the service is temporarily unavailable")
	}
	if he.Code >= 400 && he.Code < 500 {
		return dealroom.Errorf(dealroom.EBADREQUEST, "bad request")
	}
	return he
}

// handleError writes every error of every route in the contract's shape,
// and logs the ones that are our fault.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := Status(err)
	if status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "status", status, "err", err)
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="dealroom"`)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, body)
	}
	if err != nil {
		s.log.Warn("writing an error response failed", "err", err)
	}
}
