package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"dealroom"
)

// errorBody is the contract's error shape.
type errorBody struct {
	Error dealroom.Public `json:"error"`
}

// Status returns the HTTP status and the contract's body for err
// (dealroom.PublicOf: the one table from error codes to statuses and code
// words, which the websocket's error frames use too). Internal errors get
// a generic message; their text is only logged.
func Status(err error) (int, errorBody) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		err = fromEcho(he)
	}
	p := dealroom.PublicOf(err)
	return p.Status, errorBody{Error: p}
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
