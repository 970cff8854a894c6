package api

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/oidc"
	"dealroom/session"
)

// Staff sign-in through the company's OpenID provider (package oidc):
//
//	GET /api/v1/auth/oidc/login     a fresh attempt (state, nonce, PKCE
//	                                verifier) sealed into a short-lived
//	                                cookie, and a redirect to the provider
//	GET /api/v1/auth/oidc/callback  the provider sends the browser back:
//	                                the attempt is finished (code exchanged,
//	                                ID token verified), a session begins,
//	                                and the browser goes to the web app
//
// The attempt's cookie is sealed with the server's secret (an HMAC), lives
// ten minutes, and is sent only to the callback's path; SameSite=Lax lets
// the provider's redirect (a top-level GET) carry it back.

// attemptCookie holds a sign-in attempt between the redirect to the
// provider and its callback.
const attemptCookie = "dealroom_oidc"

const oidcPath = "/api/v1/auth/oidc"

// SignInConfig is how people sign in, for the sign-in page.
type SignInConfig struct {
	// Provider names the company's identity provider on the sign-in
	// button ("Sign in with Okta"); empty without one.
	Provider string `json:"provider,omitempty"`
	// LoginURL starts a sign-in with the provider.
	LoginURL string `json:"login_url,omitempty"`
	// DevTokens: no provider is configured, and the page offers to paste
	// a token (`dealroom token`), the development path.
	DevTokens bool `json:"dev_tokens"`
	// EmailLinks: customers may ask for a sign-in link by email (a mail
	// server and the public URL are configured: signin_email.go);
	// otherwise the page tells them to ask their contact in the room.
	EmailLinks bool `json:"email_links"`
}

func (s *Server) signInConfig(c echo.Context) error {
	out := SignInConfig{DevTokens: s.cfg.OIDC == nil, EmailLinks: s.links != nil}
	if s.cfg.OIDC != nil {
		out.Provider, out.LoginURL = s.cfg.OIDCName, oidcPath+"/login"
	}
	return c.JSON(http.StatusOK, out)
}

// oidcLogin starts a sign-in at the provider.
func (s *Server) oidcLogin(c echo.Context) error {
	if s.cfg.OIDC == nil {
		return dealroom.Errorf(dealroom.ENOTFOUND, "no identity provider is configured on this server")
	}
	authURL, attempt := s.cfg.OIDC.Begin()
	sealed, err := attempt.Seal(s.cfg.CookieKey)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: attemptCookie, Value: sealed, Path: oidcPath, MaxAge: int(oidc.AttemptLifetime / time.Second),
		HttpOnly: true, Secure: s.secureCookies(c.Request()), SameSite: http.SameSiteLaxMode})
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, authURL)
}

// oidcCallback finishes a sign-in and begins the browser's session.
func (s *Server) oidcCallback(c echo.Context) error {
	if s.cfg.OIDC == nil {
		return dealroom.Errorf(dealroom.ENOTFOUND, "no identity provider is configured on this server")
	}
	// The attempt is used once, whatever happens next.
	c.SetCookie(&http.Cookie{Name: attemptCookie, Value: "", Path: oidcPath, MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(c.Request()), SameSite: http.SameSiteLaxMode})
	c.Response().Header().Set("Cache-Control", "no-store")
	ck, err := c.Cookie(attemptCookie)
	if err != nil {
		return s.signInFailed(c, dealroom.Errorf(dealroom.EUNAUTH,
			"this sign-in was not started here, or took longer than %d minutes; start again", int(oidc.AttemptLifetime/time.Minute)))
	}
	attempt, err := oidc.OpenAttempt(s.cfg.CookieKey, ck.Value)
	if err != nil {
		return s.signInFailed(c, err)
	}
	a, _, err := s.cfg.OIDC.Finish(c.Request().Context(), attempt, c.QueryParams())
	if err != nil {
		return s.signInFailed(c, err)
	}
	// The session lasts its own lifetimes, not the ID token's (which
	// only vouched for the person at sign-in).
	if _, err := s.beginSession(c, a, session.ViaOIDC, time.Time{}); err != nil {
		return s.signInFailed(c, err)
	}
	return c.Redirect(http.StatusFound, "/")
}

var signInFailedPage = template.Must(template.New("failed").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in failed · Dealroom</title></head>
<body><main><h1>Sign-in failed</h1><p>{{.}}</p><p><a href="/">Back to the sign-in page</a></p></main></body></html>
`))

// signInFailed answers a browser whose sign-in failed with a page that
// says why (the callback is a page the browser navigates to, not an API
// call), with the status of the error.
func (s *Server) signInFailed(c echo.Context, err error) error {
	p := dealroom.PublicOf(err)
	if p.Status >= 500 {
		s.log.Error("sign-in failed", "err", err)
	}
	var b strings.Builder
	if terr := signInFailedPage.Execute(&b, p.Message); terr != nil {
		return terr
	}
	return c.HTML(p.Status, b.String())
}
