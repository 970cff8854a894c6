// Package oidc signs staff in with their company's identity provider: the
// relying party of OpenID Connect's authorization code flow with PKCE,
// against any standard provider (Google Workspace, Microsoft Entra ID,
// Okta, Keycloak, Auth0).
//
// The protocol is github.com/coreos/go-oidc/v3 (discovery, the provider's
// keys, ID token verification) and golang.org/x/oauth2 (the authorization
// URL, PKCE, the code exchange); this package only decides what a sign-in
// must show before it becomes a [dealroom.Actor]:
//
//   - [RelyingParty.Begin] makes a fresh state, nonce and PKCE verifier
//     (S256) and returns the provider's authorization URL and the
//     [Attempt] to keep until the browser comes back, for ten minutes. The
//     caller keeps it server-side or in a short-lived cookie sealed with
//     an HMAC ([Attempt.Seal], [OpenAttempt]).
//   - [RelyingParty.Finish] takes the attempt and the callback's query. It
//     checks the state, finishes an attempt only once, exchanges the code
//     with the verifier, verifies the ID token (signature by the
//     provider's keys, issuer, audience = our client id, expiry), checks
//     the nonce and refuses one seen before, requires a verified email in
//     an allowed domain, and maps the groups claim to a role: a member of
//     one of AdminGroups is an admin, else of ManagerGroups a manager,
//     else a rep.
//
// Replays are refused through [Used]: the state and the nonce of every
// finished sign-in are remembered until they could no longer be accepted
// anyway. [MemoryUsed] does so for one instance; [StoreUsed] keeps them in
// the store, for every instance.
//
// The actor's ID is "oidc:" and a hash of the issuer and the subject: the
// subject is the only identifier a provider promises never to change or
// give to someone else (OpenID Connect Core, 5.7); an email address can be
// renamed or, once freed, reassigned. The ID is therefore stable across
// renames and distinct from the user ids of other sign-ins ("alice").
//
// Every refusal is a *dealroom.Error (unauthenticated, or forbidden for a
// person the provider vouched for who may not come in) whose message can
// be shown to the user; it never contains a code or a token.
//
// The server wires it to DEALROOM_OIDC_* (cmd/dealroom) and to the routes
// /api/v1/auth/oidc/login and /callback (api/signin_oidc.go), which keep
// the attempt in a sealed cookie and begin a browser session, with a
// StoreUsed over the server's store.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"dealroom"
)

// AttemptLifetime is how long a sign-in may take, from Begin to Finish.
const AttemptLifetime = 10 * time.Minute

// Config configures a [RelyingParty].
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document and tokens write it (e.g. "https://accounts.google.com").
	Issuer string
	// ClientID and ClientSecret are the credentials of our client
	// (registered at the provider as a confidential web client).
	ClientID, ClientSecret string
	// RedirectURL is our callback URL, registered at the provider.
	RedirectURL string
	// AllowedDomains are the email domains whose people may sign in
	// ("example.com"); at least one is required. Matched exactly, without
	// regard to case: a subdomain needs its own entry.
	AllowedDomains []string
	// GroupsClaim names the ID token claim that lists the person's groups;
	// "" means "groups".
	GroupsClaim string
	// AdminGroups and ManagerGroups are the groups whose members are
	// admins and managers; everyone else is a rep.
	AdminGroups, ManagerGroups []string
	// Scopes are asked for besides "openid", "email" and "profile": e.g.
	// "groups" for providers that send the groups claim only when asked
	// (Okta).
	Scopes []string
	// Used remembers finished sign-ins; nil means a [MemoryUsed] of this
	// RelyingParty's own (right for one instance).
	Used Used
	// HTTPClient makes the requests to the provider; nil means a client
	// with a 10-second timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Used remembers the sign-ins that were finished, so that none is
// finished twice.
type Used interface {
	// Use records id as used until the given time and reports whether it
	// is its first use. After until the id may be forgotten. It returns
	// an error only when it cannot tell.
	Use(ctx context.Context, id string, until time.Time) (first bool, err error)
}

// RelyingParty signs people in with one OpenID provider. Its methods may
// be called from several goroutines.
type RelyingParty struct {
	cfg      Config
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
	client   *http.Client
	used     Used
	now      func() time.Time
}

// New discovers the provider at cfg.Issuer (its endpoints and keys) and
// returns a RelyingParty for it. It fails (invalid) on an incomplete
// configuration and (unavailable) when the provider cannot be reached or
// its discovery document names another issuer.
func New(ctx context.Context, cfg Config) (*RelyingParty, error) {
	switch {
	case cfg.Issuer == "":
		return nil, dealroom.Invalid("issuer", "the OpenID issuer URL is required")
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, dealroom.Invalid("client_id", "the OpenID client id and secret are required")
	case cfg.RedirectURL == "":
		return nil, dealroom.Invalid("redirect_url", "the OpenID redirect URL is required")
	case len(cfg.AllowedDomains) == 0:
		return nil, dealroom.Invalid("allowed_domains", "at least one allowed email domain is required")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	r := &RelyingParty{cfg: cfg, client: cfg.HTTPClient, used: cfg.Used, now: cfg.Now}
	if r.client == nil {
		r.client = &http.Client{Timeout: 10 * time.Second}
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.used == nil {
		r.used = &MemoryUsed{Now: r.now}
	}
	provider, err := gooidc.NewProvider(gooidc.ClientContext(ctx, r.client), cfg.Issuer)
	if err != nil {
		return nil, &dealroom.Error{Code: dealroom.EUNAVAILABLE, Message: "the identity provider cannot be reached or is misconfigured", Err: err}
	}
	r.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURL:  cfg.RedirectURL,
		Endpoint:     provider.Endpoint(),
		Scopes:       append([]string{gooidc.ScopeOpenID, "email", "profile"}, cfg.Scopes...),
	}
	r.verifier = provider.Verifier(&gooidc.Config{ClientID: cfg.ClientID, Now: r.now})
	return r, nil
}

// Attempt is a sign-in between Begin and Finish: what the browser's return
// must match. It is secret (the verifier proves to the provider that we
// started the sign-in): keep it server-side or sealed in a cookie.
type Attempt struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Expires  time.Time `json:"e"`
}

// Begin starts a sign-in: it returns the provider's authorization URL to
// send the browser to, and the attempt to keep until it comes back.
func (r *RelyingParty) Begin() (authURL string, a Attempt) {
	a = Attempt{
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: oauth2.GenerateVerifier(),
		Expires:  r.now().Add(AttemptLifetime).Truncate(time.Second),
	}
	return r.authURL(a), a
}

// authURL is the authorization URL of attempt a.
func (r *RelyingParty) authURL(a Attempt) string {
	return r.oauth.AuthCodeURL(a.State, gooidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier))
}

// Finish ends the sign-in a, given the query of the request to our
// redirect URL. It returns the signed-in staff member and when the
// provider's ID token expires (a session may be bounded by it).
//
// It fails with unauthenticated when the sign-in cannot be trusted (the
// provider refused it, the state or the nonce does not match or was used
// before, the attempt or the ID token expired, the token is not valid for
// us) and with forbidden when the provider vouched for a person who may
// not sign in (no verified email, a domain not allowed). It fails with
// unavailable when the provider or Used cannot be reached.
func (r *RelyingParty) Finish(ctx context.Context, a Attempt, query url.Values) (dealroom.Actor, time.Time, error) {
	ctx = gooidc.ClientContext(ctx, r.client)
	if err := r.checkReturn(ctx, a, query); err != nil {
		return dealroom.Actor{}, time.Time{}, err
	}
	tok, err := r.exchange(ctx, a, query.Get("code"))
	if err != nil {
		return dealroom.Actor{}, time.Time{}, err
	}
	if err := r.checkNonce(ctx, a, tok); err != nil {
		return dealroom.Actor{}, time.Time{}, err
	}
	actor, err := r.actor(tok)
	if err != nil {
		return dealroom.Actor{}, time.Time{}, err
	}
	return actor, tok.Expiry, nil
}

// checkReturn checks that the browser's return belongs to attempt a and
// is its first.
func (r *RelyingParty) checkReturn(ctx context.Context, a Attempt, query url.Values) error {
	if e := query.Get("error"); e != "" {
		return &dealroom.Error{Code: dealroom.EUNAUTH, Message: "the identity provider did not sign you in; try again",
			Err: errors.New("provider error: " + e)}
	}
	if !r.now().Before(a.Expires) {
		return dealroom.Errorf(dealroom.EUNAUTH, "the sign-in took too long; start again")
	}
	if a.State == "" || subtle.ConstantTimeCompare([]byte(query.Get("state")), []byte(a.State)) != 1 {
		return dealroom.Errorf(dealroom.EUNAUTH, "this sign-in was not started in this browser; start again")
	}
	first, err := r.used.Use(ctx, "state:"+a.State, a.Expires)
	if err != nil {
		return dealroom.Unavailable(err)
	}
	if !first {
		return dealroom.Errorf(dealroom.EUNAUTH, "this sign-in was already used; start again")
	}
	if query.Get("code") == "" {
		return dealroom.Errorf(dealroom.EUNAUTH, "the identity provider sent no sign-in code; try again")
	}
	return nil
}

// exchange trades the code for the provider's tokens and verifies the ID
// token.
func (r *RelyingParty) exchange(ctx context.Context, a Attempt, code string) (*gooidc.IDToken, error) {
	tok, err := r.oauth.Exchange(ctx, code, oauth2.VerifierOption(a.Verifier))
	if err != nil {
		if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			// The provider's answer, not ours: its body may quote the
			// code, so it stays out of the error.
			return nil, dealroom.Errorf(dealroom.EUNAUTH, "the identity provider did not accept the sign-in; try again")
		}
		return nil, dealroom.Unavailable(err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, dealroom.Errorf(dealroom.EUNAUTH, "the identity provider sent no ID token")
	}
	idt, err := r.verifier.Verify(ctx, raw)
	if err != nil {
		if _, ok := errors.AsType[*gooidc.TokenExpiredError](err); ok {
			return nil, &dealroom.Error{Code: dealroom.EUNAUTH, Message: "the identity provider's token has expired; sign in again", Err: err}
		}
		return nil, &dealroom.Error{Code: dealroom.EUNAUTH, Message: "the identity provider's token is not valid for this server", Err: err}
	}
	return idt, nil
}

// checkNonce checks that the ID token was issued for attempt a and that
// no earlier sign-in presented it.
func (r *RelyingParty) checkNonce(ctx context.Context, a Attempt, tok *gooidc.IDToken) error {
	if a.Nonce == "" || subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(a.Nonce)) != 1 {
		return dealroom.Errorf(dealroom.EUNAUTH, "the identity provider's token was not issued for this sign-in; start again")
	}
	first, err := r.used.Use(ctx, "nonce:"+a.Nonce, tok.Expiry)
	if err != nil {
		return dealroom.Unavailable(err)
	}
	if !first {
		return dealroom.Errorf(dealroom.EUNAUTH, "the identity provider's token was already used; start again")
	}
	return nil
}

// claims are the ID token's claims that make an actor.
type claims struct {
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Name          string          `json:"name"`
}

// actor makes the staff member of a verified ID token.
func (r *RelyingParty) actor(tok *gooidc.IDToken) (dealroom.Actor, error) {
	var c claims
	var all map[string]json.RawMessage
	if err := tok.Claims(&c); err != nil {
		return dealroom.Actor{}, &dealroom.Error{Code: dealroom.EUNAUTH, Message: "the identity provider's token cannot be read", Err: err}
	}
	if err := tok.Claims(&all); err != nil {
		return dealroom.Actor{}, &dealroom.Error{Code: dealroom.EUNAUTH, Message: "the identity provider's token cannot be read", Err: err}
	}
	if c.Email == "" || !verified(c.EmailVerified) {
		return dealroom.Actor{}, dealroom.Errorf(dealroom.EFORBIDDEN, "your identity provider did not confirm your email address")
	}
	domain := ""
	if at := strings.LastIndexByte(c.Email, '@'); at > 0 {
		domain = strings.ToLower(c.Email[at+1:])
	}
	if domain == "" || !slices.ContainsFunc(r.cfg.AllowedDomains, func(d string) bool { return strings.EqualFold(d, domain) }) {
		return dealroom.Actor{}, dealroom.Errorf(dealroom.EFORBIDDEN, "sign-in is not open to email addresses at %q", domain)
	}
	name := c.Name
	if name == "" {
		name = c.Email
	}
	return dealroom.Actor{
		ID:    ActorID(tok.Issuer, tok.Subject),
		Name:  name,
		Email: c.Email,
		Kind:  dealroom.Staff,
		Role:  r.role(groups(all[r.cfg.GroupsClaim])),
	}, nil
}

// role maps groups to a role: admin before manager before rep.
func (r *RelyingParty) role(groups []string) dealroom.Role {
	in := func(names []string) bool {
		return slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(names, g) })
	}
	switch {
	case in(r.cfg.AdminGroups):
		return dealroom.Admin
	case in(r.cfg.ManagerGroups):
		return dealroom.Manager
	}
	return dealroom.Rep
}

// groups reads a groups claim: a list of names, or one name.
func groups(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return []string{one}
	}
	return nil
}

// verified reads email_verified: true, or "true" as some providers write
// it.
func verified(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && strings.EqualFold(s, "true")
}

// ActorID is the actor ID of the person the issuer knows as subject:
// "oidc:" and the first 20 hexadecimal digits of SHA-256 of both.
func ActorID(issuer, subject string) string {
	sum := sha256.Sum256([]byte(issuer + "\x00" + subject))
	return "oidc:" + hex.EncodeToString(sum[:10])
}
