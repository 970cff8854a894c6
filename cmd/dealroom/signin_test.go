package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv/oidcop"
)

// A browser of the sign-in tests: its cookies, and no redirect followed,
// so that each step can be seen.
type signInBrowser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newSignInBrowser(t *testing.T, base string) *signInBrowser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &signInBrowser{t: t, base: base, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *signInBrowser) do(method, url string, body string, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = b.base + url
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(b.t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, string(raw)
}

// signInWith signs a person in through the provider as the web app's
// button does: /api/v1/auth/oidc/login, the provider's login page, back
// to the callback. It returns the callback's answer.
func (b *signInBrowser) signInWith(p *oidcop.Provider, email string) (*http.Response, string) {
	b.t.Helper()
	resp, _ := b.do("GET", "/api/v1/auth/oidc/login", "", nil)
	require.Equal(b.t, http.StatusFound, resp.StatusCode)
	authURL := resp.Header.Get("Location")
	require.True(b.t, strings.HasPrefix(authURL, p.Issuer), "the login goes to the provider: %s", authURL)
	cb, err := p.Login(context.Background(), authURL, email, "correct horse battery staple")
	require.NoError(b.t, err)
	return b.do("GET", cb.String(), "", nil)
}

// TestSignInWithTheCompanysProvider: a rep signs in through the company's
// OpenID provider (a real one: zitadel/oidc's, on 127.0.0.1) into a
// browser session; the role comes from the provider's groups; someone of
// another company and a replayed callback are refused; a cookie-signed
// write needs its CSRF proof.
func TestSignInWithTheCompanysProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	public := "http://127.0.0.1:" + strconv.Itoa(port)

	pw := "correct horse battery staple"
	p := oidcop.Start(t, oidcop.Options{
		Users: []oidcop.User{
			{Email: "rita@example.com", EmailVerified: true, GivenName: "Rita", FamilyName: "Rep", Groups: []string{"sales"}, Password: pw},
			{Email: "ada@example.com", EmailVerified: true, GivenName: "Ada", FamilyName: "Admin", Groups: []string{"dealroom-admins"}, Password: pw},
			{Email: "otto@other.example", EmailVerified: true, GivenName: "Otto", FamilyName: "Other", Password: pw},
		},
		Clients: []oidcop.Client{{ID: "dealroom", Secret: "client-s3cret", RedirectURIs: []string{public + "/api/v1/auth/oidc/callback"}}},
	})
	url, _ := startRun(t, []string{"serve", "-addr", "127.0.0.1:" + strconv.Itoa(port), "-data-dir", t.TempDir(), "-log-level", "error"},
		env{"DEALROOM_JWT_SECRET": testSecret, "DEALROOM_PUBLIC_URL": public,
			"DEALROOM_OIDC_ISSUER": p.Issuer, "DEALROOM_OIDC_CLIENT_ID": "dealroom", "DEALROOM_OIDC_CLIENT_SECRET": "client-s3cret",
			"DEALROOM_OIDC_NAME": "Example SSO", "DEALROOM_OIDC_ALLOWED_DOMAINS": "example.com",
			"DEALROOM_OIDC_SCOPES": "groups", "DEALROOM_OIDC_ADMIN_GROUPS": "dealroom-admins"})

	b := newSignInBrowser(t, url)
	resp, body := b.do("GET", "/api/v1/auth", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"provider": "Example SSO", "login_url": "/api/v1/auth/oidc/login", "dev_tokens": false, "email_links": false}`, body)

	resp, _ = b.signInWith(p, "rita@example.com")
	require.Equal(t, http.StatusFound, resp.StatusCode, "the callback sends the browser to the web app")
	assert.Equal(t, "/", resp.Header.Get("Location"))
	resp, body = b.do("GET", "/api/v1/me", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var me struct {
		UserID string `json:"user_id"`
		Name   string `json:"name"`
		Email  string `json:"email"`
		Kind   string `json:"kind"`
		Role   string `json:"role"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &me))
	assert.Equal(t, "rita@example.com", me.Email)
	assert.Equal(t, "Rita Rep", me.Name)
	assert.Equal(t, "staff", me.Kind)
	assert.Equal(t, "rep", me.Role, "no admin or manager group: a rep")
	assert.True(t, strings.HasPrefix(me.UserID, "oidc:"), me.UserID)

	// The session signs writes in only with its CSRF proof.
	resp, _ = b.do("POST", "/api/v1/rooms", `{"name": "Acme", "company": "Acme"}`, map[string]string{"Content-Type": "application/json"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a cookie-signed write without its CSRF proof")
	resp, body = b.do("GET", "/api/v1/session", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var sess struct {
		CSRF string `json:"csrf_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &sess))
	resp, body = b.do("POST", "/api/v1/rooms", `{"name": "Acme", "company": "Acme"}`,
		map[string]string{"Content-Type": "application/json", "X-CSRF-Token": sess.CSRF})
	assert.Equal(t, http.StatusCreated, resp.StatusCode, body)

	// An admin by the provider's groups.
	admin := newSignInBrowser(t, url)
	resp, _ = admin.signInWith(p, "ada@example.com")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	_, body = admin.do("GET", "/api/v1/me", "", nil)
	assert.Contains(t, body, `"role":"admin"`)

	// Someone of another company is refused, and gets no session.
	other := newSignInBrowser(t, url)
	resp, body = other.signInWith(p, "otto@other.example")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, body, "Sign-in failed")
	resp, _ = other.do("GET", "/api/v1/me", "", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A callback replayed (its attempt is used) signs no one in.
	replay := newSignInBrowser(t, url)
	resp, _ = replay.do("GET", "/api/v1/auth/oidc/login", "", nil)
	cb, err := p.Login(context.Background(), resp.Header.Get("Location"), "rita@example.com", pw)
	require.NoError(t, err)
	resp, _ = replay.do("GET", cb.String(), "", nil)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	again := newSignInBrowser(t, url)
	resp, _ = again.do("GET", cb.String(), "", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the callback in another browser, without its attempt")
	resp, _ = again.do("GET", "/api/v1/me", "", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// Without a provider the sign-in page offers the development path.
func TestSignInWithoutAProvider(t *testing.T) {
	url, _ := startRun(t, []string{"serve", "-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-log-level", "error"},
		env{"DEALROOM_JWT_SECRET": testSecret})
	status, body := get(t, url+"/api/v1/auth", "")
	require.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"dev_tokens": true, "email_links": false}`, string(body))
	status, _ = get(t, url+"/api/v1/auth/oidc/login", "")
	assert.Equal(t, http.StatusNotFound, status)
}

// The provider's settings are checked at start: a missing one, or a
// provider that cannot be reached, stops the server with a clear message.
func TestSignInSettingsAreChecked(t *testing.T) {
	var stdout, stderr syncBuffer
	err := run(context.Background(), []string{"serve", "-data-dir", t.TempDir()},
		env{"DEALROOM_JWT_SECRET": testSecret, "DEALROOM_OIDC_ISSUER": "https://sso.example.com"}.get, &stdout, &stderr)
	require.Error(t, err)
	for _, want := range []string{"-oidc-client-id", "-oidc-client-secret", "-oidc-allowed-domains", "-public-url"} {
		assert.Contains(t, err.Error(), want)
	}
	err = run(context.Background(), []string{"serve", "-data-dir", t.TempDir(), "-addr", "127.0.0.1:0"},
		env{"DEALROOM_JWT_SECRET": testSecret, "DEALROOM_OIDC_ISSUER": "http://127.0.0.1:9/nowhere", "DEALROOM_PUBLIC_URL": "http://127.0.0.1:8080",
			"DEALROOM_OIDC_CLIENT_ID": "c", "DEALROOM_OIDC_CLIENT_SECRET": "super-secret-value", "DEALROOM_OIDC_ALLOWED_DOMAINS": "example.com"}.get, &stdout, &stderr)
	require.Error(t, err, "a provider that cannot be reached stops the start")
	assert.Contains(t, err.Error(), "DEALROOM_OIDC_ISSUER")
	assert.NotContains(t, stdout.String()+stderr.String()+err.Error(), "super-secret-value", "the client secret is never shown")
}
