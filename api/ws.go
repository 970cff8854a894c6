package api

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/hub"
	"dealroom/session"
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
	var (
		a      dealroom.Actor
		until  time.Time
		signIn string // the browser session's id, when the cookie signed in
		err    error
	)
	switch ck, cerr := c.Request().Cookie(sessionCookie); {
	case token != "":
		a, until, err = s.keys.VerifyUntil(token)
	case s.sessions != nil && cerr == nil && ck.Value != "":
		// The upgrade is a GET and carries no CSRF token: the defence
		// against another site's page opening a websocket with the
		// browser's cookie is the Origin check of the upgrade (package
		// ws: the server's own origin and the allowed ones only; a
		// browser always sends Origin with a websocket and a page cannot
		// change it).
		var sess session.Session
		sess, err = s.sessions.Get(c.Request().Context(), ck.Value)
		a, until, signIn = sess.Actor, sess.ExpiresAt, sess.ID
	default:
		return dealroom.Errorf(dealroom.EUNAUTH, "send the token in an Authorization: Bearer header or, from a browser, as ?token= or the session cookie")
	}
	if err != nil {
		return err
	}
	if err := s.svc.Authorize(c.Request().Context(), a); err != nil {
		return err
	}
	err = s.ws.ServeSignIn(c.Response(), c.Request(), a, until, signIn)
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

func (w wsService) Authorize(ctx context.Context, a dealroom.Actor, signIn string) error {
	// The browser session may have ended on another instance, and the
	// news of it (hub.EndSignIns) been lost on the way.
	if signIn != "" && w.s.sessions != nil {
		if err := w.s.sessions.Alive(ctx, signIn); err != nil {
			return err
		}
	}
	return w.s.svc.Authorize(ctx, a)
}

func (w wsService) Command(ctx context.Context, a dealroom.Actor, f hub.Frame) []byte {
	return w.s.command(ctx, a, f)
}
