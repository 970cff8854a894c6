// Package oidcop runs a real OpenID provider for tests: zitadel/oidc's
// certified provider library, with its example login page and in-memory
// storage, on a free port of 127.0.0.1, with the users and clients a test
// defines. It is a package of its own so that only the tests that sign in
// through it build the provider in.
package oidcop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/net/html"
)

// User is a person who can sign in at an [Provider].
type User struct {
	// Subject is the user's "sub" claim; "" makes one ("user1", "user2", ...
	// in the order of Options.Users).
	Subject string
	// Email is the "email" claim and the name typed into the login form.
	Email         string
	EmailVerified bool
	// GivenName and FamilyName make the "name" claim ("Given Family").
	GivenName, FamilyName string
	// Groups is the groups claim, sent when the "groups" scope is asked
	// for (as Okta does).
	Groups   []string
	Password string
}

// Client is a confidential client (a relying party) registered at an
// [Provider]: it authenticates at the token endpoint with its secret
// (HTTP Basic or form post).
type Client struct {
	ID, Secret   string
	RedirectURIs []string
}

// Options configure an [Provider].
type Options struct {
	Users   []User
	Clients []Client
	// IDTokenLifetime is how long the ID tokens it issues are valid; zero
	// means one hour.
	IDTokenLifetime time.Duration
	// GroupsClaim names the claim that carries User.Groups; "" means
	// "groups".
	GroupsClaim string
}

// Provider is a real OpenID provider, github.com/zitadel/oidc/v3's op
// (an OpenID-certified implementation) with its example login page and its
// in-memory storage, running in the test's process on a free port of
// 127.0.0.1 and stopped by the test's cleanup. Its issuer is
// "http://127.0.0.1:<port>". It offers discovery, the authorization code
// flow with PKCE (S256), RS256-signed ID tokens and their keys.
//
// The users, the groups claim, the clients and the ID token lifetime come
// from Options: the glue in this file (oidcStorage, oidcClient) only
// adds them to zitadel's example storage; the protocol is zitadel's.
type Provider struct {
	// Issuer is the provider's issuer URL, as it writes it in its tokens and
	// discovery document.
	Issuer string

	redirects []string
}

// Start starts an OpenID provider for tb alone, stopped in tb's
// cleanup.
func Start(tb testing.TB, opts Options) *Provider {
	tb.Helper()
	p, stop, err := Listen("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatalf("oidcop: %v", err)
	}
	tb.Cleanup(stop)
	return p
}

// Listen starts an OpenID provider on addr (a free port with
// "127.0.0.1:0"), for a process that serves one to others (the browser
// tests' cmd/oidcop). stop closes it and waits until it has stopped.
func Listen(addr string, opts Options) (p *Provider, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listening for the OpenID provider: %w", err)
	}
	p = &Provider{Issuer: "http://" + ln.Addr().String()}
	st := newOIDCStorage(opts)
	for _, c := range opts.Clients {
		p.redirects = append(p.redirects, c.RedirectURIs...)
	}
	// A nil logger leaves the process's default slog logger alone.
	router := exampleop.SetupServer(p.Issuer, st, nil, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return p, func() {
		_ = srv.Close()
		<-done
	}, nil
}

// Login signs user in at the provider as a browser would: it follows
// authURL (the relying party's authorization URL) to the provider's login
// page, posts the email and password to its form, and follows the
// redirects until one leads to a registered redirect URI. It returns that
// URL (the relying party's callback, with code and state, or with error
// and error_description when the provider refused the request) without
// requesting it. A wrong password is an error.
func (p *Provider) Login(ctx context.Context, authURL, email, password string) (*url.URL, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	posted := false
	for range 20 {
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("oidcop: bad redirect from the provider: %w", err)
			}
			if p.isRedirectURI(next) {
				return next, nil
			}
			if req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil); err != nil {
				return nil, err
			}
		case resp.StatusCode == http.StatusOK:
			if posted {
				return nil, errors.New("oidcop: the provider refused the credentials (its login page came back)")
			}
			action, form, err := loginForm(resp.Request.URL, body)
			if err != nil {
				return nil, err
			}
			form.Set("username", email)
			form.Set("password", password)
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			posted = true
		default:
			return nil, fmt.Errorf("oidcop: the provider answered %s at %s: %.200s", resp.Status, resp.Request.URL.Path, body)
		}
	}
	return nil, errors.New("oidcop: too many redirects at the provider")
}

// isRedirectURI reports whether u, without its query, is a redirect URI
// of one of the provider's clients.
func (p *Provider) isRedirectURI(u *url.URL) bool {
	bare := *u
	bare.RawQuery, bare.Fragment = "", ""
	return slices.Contains(p.redirects, bare.String())
}

// loginForm reads the first form of an HTML page: the URL it posts to and
// its hidden fields.
func loginForm(page *url.URL, body []byte) (*url.URL, url.Values, error) {
	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil {
		return nil, nil, fmt.Errorf("oidcop: reading the provider's login page: %w", err)
	}
	var form *html.Node
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "form" {
			form = n
			break
		}
	}
	if form == nil {
		return nil, nil, fmt.Errorf("oidcop: no form on the provider's page %s: %.200s", page.Path, body)
	}
	action, err := page.Parse(attr(form, "action"))
	if err != nil {
		return nil, nil, fmt.Errorf("oidcop: the login form's action: %w", err)
	}
	values := url.Values{}
	for n := range form.Descendants() {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "type") == "hidden" {
			values.Set(attr(n, "name"), attr(n, "value"))
		}
	}
	return action, values, nil
}

// attr returns the value of n's attribute key, or "".
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// oidcStorage is zitadel's example storage with our users, our clients
// and a groups claim.
type oidcStorage struct {
	*storage.Storage
	clients     map[string]*oidcClient
	groups      map[string][]string // by subject
	groupsClaim string
}

// groupsScope is the scope that asks for the groups claim.
const groupsScope = "groups"

func newOIDCStorage(opts Options) *oidcStorage {
	users := oidcUsers{}
	groups := map[string][]string{}
	for i, u := range opts.Users {
		sub := u.Subject
		if sub == "" {
			sub = fmt.Sprintf("user%d", i+1)
		}
		users[sub] = &storage.User{
			ID:            sub,
			Username:      u.Email,
			Password:      u.Password,
			FirstName:     u.GivenName,
			LastName:      u.FamilyName,
			Email:         u.Email,
			EmailVerified: u.EmailVerified,
		}
		groups[sub] = u.Groups
	}
	lifetime := opts.IDTokenLifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	clients := map[string]*storage.Client{}
	ours := map[string]*oidcClient{}
	for _, c := range opts.Clients {
		sc := storage.WebClient(c.ID, c.Secret, c.RedirectURIs...)
		clients[c.ID] = sc
		ours[c.ID] = &oidcClient{Client: sc, lifetime: lifetime}
	}
	claim := opts.GroupsClaim
	if claim == "" {
		claim = "groups"
	}
	return &oidcStorage{
		Storage:     storage.NewStorageWithClients(users, clients),
		clients:     ours,
		groups:      groups,
		groupsClaim: claim,
	}
}

// GetClientByClientID returns our wrapping of the client.
func (s *oidcStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

// SetUserinfoFromRequest adds the groups claim to the example's claims
// when the "groups" scope was asked for.
func (s *oidcStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	if g := s.groups[req.GetSubject()]; len(g) > 0 && slices.Contains(scopes, groupsScope) {
		info.AppendClaims(s.groupsClaim, g)
	}
	return nil
}

// oidcClient is an example web client with our ID token lifetime, whose
// ID tokens carry the email and profile claims (as Google's and Entra's
// do) and which may ask for the groups scope.
type oidcClient struct {
	*storage.Client
	lifetime time.Duration
}

// IDTokenLifetime is Options.IDTokenLifetime.
func (c *oidcClient) IDTokenLifetime() time.Duration { return c.lifetime }

// IDTokenUserinfoClaimsAssertion puts email and profile claims in the ID
// token even though an access token is issued with it.
func (c *oidcClient) IDTokenUserinfoClaimsAssertion() bool { return true }

// IsScopeAllowed allows the groups scope besides the standard ones.
func (c *oidcClient) IsScopeAllowed(scope string) bool { return scope == groupsScope }

// oidcUsers is the example storage's user store, with our users by
// subject.
type oidcUsers map[string]*storage.User

func (u oidcUsers) GetUserByID(id string) *storage.User { return u[id] }

func (u oidcUsers) GetUserByUsername(name string) *storage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}

// ExampleClientID names the example's service user (for its JWT profile
// grant, which we do not use).
func (u oidcUsers) ExampleClientID() string { return storage.ServiceUserID }
