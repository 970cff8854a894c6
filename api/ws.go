package api

import (
	"context"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/hub"
	"dealroom/ws"
)

// serveWS authenticates a websocket's request and hands it to the
// websocket server (package ws), which upgrades it and serves it.
func (s *Server) serveWS(c echo.Context) error {
	if s.ws == nil {
		return dealroom.Errorf(dealroom.EUNAVAILABLE, "realtime is not enabled on this server")
	}
	token, ok := bearer(c.Request())
	if !ok {
		token = c.QueryParam("token")
	}
	if token == "" {
		return dealroom.Errorf(dealroom.EUNAUTH, "send the token in an Authorization: Bearer header or, from a browser, as ?token=")
	}
	a, until, err := s.keys.VerifyUntil(token)
	if err != nil {
		return err
	}
	if err := s.svc.Authorize(c.Request().Context(), a); err != nil {
		return err
	}
	err = s.ws.Serve(c.Response(), c.Request(), a, until)
	if dealroom.ErrorCode(err) == dealroom.ERATELIMITED {
		// Too many sockets of this user: one may close soon.
		c.Response().Header().Set("Retry-After", "5")
	}
	return err
}

// wsService is what the websocket server asks of the API: the sign-in
// check and the commands, carried out as their routes are.
type wsService struct{ s *Server }

var _ ws.Service = wsService{}

func (w wsService) Authorize(ctx context.Context, a dealroom.Actor) error {
	return w.s.svc.Authorize(ctx, a)
}

func (w wsService) Command(ctx context.Context, a dealroom.Actor, f hub.Frame) []byte {
	return w.s.command(ctx, a, f)
}
