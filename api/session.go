package api

import (
	"crypto/subtle"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/session"
	"dealroom/staff"
)

// Browser sessions (package session). After a sign-in the browser holds
// the session's token in an HttpOnly cookie, out of reach of the page's
// scripts and never in a URL; the session itself is kept in the store, so
// that every instance knows it and ending it ends it everywhere.
//
// A cookie goes with every request to the server, whichever page sent it,
// so a request it authenticates that changes something must prove that
// it comes from our own page: it repeats the session's CSRF token (which
// only our page can read, from POST or GET /api/v1/session) in the
// X-CSRF-Token header. A bearer token is never sent on its own, so
// bearer requests need no such proof.

const (
	// sessionCookie names the cookie that holds the session's token.
	sessionCookie = "dealroom_session"
	// csrfHeader carries the session's CSRF token on unsafe requests.
	csrfHeader = "X-CSRF-Token"
	// sessionKey is where authenticate puts the request's session.
	sessionKey = "dealroom.session"
)

// errNoSessions answers the session routes of a server without sessions.
var errNoSessions = dealroom.Errorf(dealroom.EUNAVAILABLE, "browser sessions are not enabled on this server")

// requestActor returns who the request is from: its bearer token's actor,
// else its session cookie's (checked for CSRF when the method changes
// something; the session is then kept in the context).
func (s *Server) requestActor(c echo.Context) (dealroom.Actor, error) {
	r := c.Request()
	if token, ok := bearer(r); ok {
		if staff.IsKey(token) && s.cfg.Staff != nil {
			return s.cfg.Staff.Authenticate(r.Context(), token)
		}
		return s.keys.Verify(token)
	}
	if s.sessions != nil {
		if ck, err := r.Cookie(sessionCookie); err == nil && ck.Value != "" {
			sess, err := s.sessions.Get(r.Context(), ck.Value)
			if err != nil {
				return dealroom.Actor{}, err
			}
			if !safeMethod(r.Method) && !csrfMatches(r.Header.Get(csrfHeader), sess.CSRF) {
				return dealroom.Actor{}, errCSRF
			}
			c.Set(sessionKey, sess)
			return sess.Actor, nil
		}
	}
	return dealroom.Actor{}, dealroom.Errorf(dealroom.EUNAUTH, "this route needs an Authorization: Bearer <token> header or a session cookie")
}

var errCSRF = dealroom.Errorf(dealroom.EFORBIDDEN,
	"a request signed in by the session cookie that changes something must carry the session's CSRF token in the "+csrfHeader+" header (see GET /api/v1/session)")

// safeMethod reports whether a method only reads.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfMatches compares in constant time, so that the answer's timing
// tells nothing about how much of a guess was right.
func csrfMatches(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// requestSession returns the session that authenticated the request.
func requestSession(c echo.Context) (session.Session, bool) {
	sess, ok := c.Get(sessionKey).(session.Session)
	return sess, ok
}

// sessionAnswer is what the session routes answer: the CSRF token the
// page repeats, when the session ends at the latest, and who it is.
type sessionAnswer struct {
	CSRFToken string         `json:"csrf_token"`
	ExpiresAt time.Time      `json:"expires_at"`
	User      map[string]any `json:"user"`
}

func answerOf(sess session.Session) sessionAnswer {
	a := sess.Actor
	return sessionAnswer{CSRFToken: sess.CSRF, ExpiresAt: sess.ExpiresAt.UTC(),
		User: map[string]any{"user_id": a.ID, "name": a.Name, "email": a.Email, "kind": a.Kind, "role": a.Role}}
}

// createSession exchanges a valid bearer token for a session cookie: the
// path of a customer who accepted an invite (the page calls it with the
// token it was given) and of a pasted development token. The session
// ends with the token at the latest.
func (s *Server) createSession(c echo.Context) error {
	if s.sessions == nil {
		return errNoSessions
	}
	// A page of another site could post a form here to sign the browser
	// in as someone else (login CSRF); a form cannot send JSON without
	// the browser asking this server first (CORS), which it refuses.
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if mt != "application/json" {
		return dealroom.Errorf(dealroom.EBADREQUEST, "the body must be JSON (Content-Type: application/json)")
	}
	var in struct {
		Token string `json:"token"`
	}
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if in.Token == "" {
		return dealroom.Invalid("token", "token is required")
	}
	ctx := c.Request().Context()
	a, until, err := s.keys.VerifyUntil(in.Token)
	if err != nil {
		return err
	}
	if err := s.svc.Authorize(ctx, a); err != nil {
		return err
	}
	via := session.ViaToken
	if a.Invite != "" {
		via = session.ViaInvite
	}
	sess, err := s.beginSession(c, a, via, until)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, answerOf(sess))
}

// beginSession opens a session of a for the browser of c, ending at
// notAfter at the latest (zero: the session's own lifetimes only), and
// sets its cookie. One browser, one sign-in: the session the browser held
// before (of this person or another) ends, with its websockets.
func (s *Server) beginSession(c echo.Context, a dealroom.Actor, via session.Via, notAfter time.Time) (session.Session, error) {
	if s.sessions == nil {
		return session.Session{}, errNoSessions
	}
	ctx := c.Request().Context()
	token, sess, err := s.sessions.Create(ctx, a, via, notAfter)
	if err != nil {
		return session.Session{}, err
	}
	if ck, err := c.Request().Cookie(sessionCookie); err == nil && ck.Value != "" {
		old := session.Hash(ck.Value)
		if err := s.sessions.End(ctx, old); err != nil {
			s.log.Warn("the browser's previous session could not be ended", "err", err)
		} else {
			s.endSignIns([]string{old}, "")
		}
	}
	s.setSessionCookie(c, token, sess.ExpiresAt)
	return sess, nil
}

// getSession answers the current session, for a page that was reloaded
// and needs its CSRF token again.
func (s *Server) getSession(c echo.Context) error {
	sess, err := s.cookieOnly(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, answerOf(sess))
}

// deleteSession signs out: it ends the request's session, closes the
// websockets opened with it, and clears the cookie.
func (s *Server) deleteSession(c echo.Context) error {
	sess, err := s.cookieOnly(c)
	if err != nil {
		return err
	}
	if err := s.sessions.End(c.Request().Context(), sess.ID); err != nil {
		return err
	}
	s.endSignIns([]string{sess.ID}, "")
	s.clearSessionCookie(c)
	return c.NoContent(http.StatusNoContent)
}

// endAllSessions signs the user out everywhere: every session ends, and
// every websocket of the user closes, on every instance.
func (s *Server) endAllSessions(c echo.Context) error {
	a := actor(c)
	n, err := s.endUserSessions(c, a.ID)
	if err != nil {
		return err
	}
	if _, ok := requestSession(c); ok {
		s.clearSessionCookie(c)
	}
	return c.JSON(http.StatusOK, map[string]int{"ended": n})
}

// endSessionsOf lets an admin end every session of a person (one who left
// the company, a lost laptop).
func (s *Server) endSessionsOf(c echo.Context) error {
	a := actor(c)
	if a.Kind != dealroom.Staff || a.Role != dealroom.Admin {
		return dealroom.Errorf(dealroom.EFORBIDDEN, "only admins end other people's sessions")
	}
	n, err := s.endUserSessions(c, c.Param("user"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"ended": n})
}

// endUserSessions ends the user's sessions in the store, then closes the
// user's websockets on every instance, and returns how many sessions
// ended.
func (s *Server) endUserSessions(c echo.Context, user string) (int, error) {
	if s.sessions == nil {
		return 0, errNoSessions
	}
	ids, err := s.sessions.EndUser(c.Request().Context(), user)
	if err != nil {
		return 0, err
	}
	s.endSignIns(ids, user)
	return len(ids), nil
}

// endSignIns closes the websockets of ended sessions, here and on the
// other instances (through the hub's sessions channel).
func (s *Server) endSignIns(ids []string, user string) {
	if s.cfg.Hub != nil {
		s.cfg.Hub.EndSignIns(ids, user)
	}
}

// cookieOnly returns the session of a request authenticated by its
// session cookie: the session routes are about that session.
func (s *Server) cookieOnly(c echo.Context) (session.Session, error) {
	if s.sessions == nil {
		return session.Session{}, errNoSessions
	}
	sess, ok := requestSession(c)
	if !ok {
		return session.Session{}, dealroom.Errorf(dealroom.EUNAUTH, "this route is about the browser's session: the request must carry the session cookie, not a bearer token")
	}
	return sess, nil
}

// secureCookies reports whether the cookie must only travel over TLS: the
// request came over TLS, or people reach the server by https.
func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(s.cfg.PublicURL), "https://")
}

// setSessionCookie gives the browser the session's token. HttpOnly keeps
// it from the page's scripts; SameSite=Lax keeps other sites' pages from
// sending it with their requests that change something (the CSRF token
// is the defence that does not depend on the browser).
func (s *Server) setSessionCookie(c echo.Context, token string, expires time.Time) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.secureCookies(c.Request()), SameSite: http.SameSiteLaxMode})
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(c.Request()), SameSite: http.SameSiteLaxMode})
}
