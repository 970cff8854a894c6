package oidc

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"dealroom"
	"dealroom/internal/testenv/oidcop"
)

const (
	callback = "http://127.0.0.1:9/auth/callback"
	password = "correct horse"
)

// users of the test provider: an admin, a manager, a rep, one from
// another company, one whose email is not verified.
var users = []oidcop.User{
	{Email: "ada@example.com", EmailVerified: true, GivenName: "Ada", FamilyName: "Admin", Groups: []string{"staff", "dealroom-admins"}, Password: password},
	{Email: "max@example.com", EmailVerified: true, GivenName: "Max", FamilyName: "Manager", Groups: []string{"dealroom-managers"}, Password: password},
	{Email: "rita@Example.COM", EmailVerified: true, GivenName: "Rita", FamilyName: "Rep", Groups: []string{"staff"}, Password: password},
	{Email: "otto@other.org", EmailVerified: true, GivenName: "Otto", FamilyName: "Other", Password: password},
	{Email: "una@example.com", EmailVerified: false, GivenName: "Una", FamilyName: "Unverified", Password: password},
}

// startProvider starts a provider with users and two clients, "dealroom"
// and "other".
func startProvider(t *testing.T, opts oidcop.Options) *oidcop.Provider {
	t.Helper()
	opts.Users = users
	opts.Clients = []oidcop.Client{
		{ID: "dealroom", Secret: "s3cret", RedirectURIs: []string{callback}},
		{ID: "other", Secret: "0ther", RedirectURIs: []string{callback}},
	}
	return oidcop.Start(t, opts)
}

// config is the relying party's configuration for client "dealroom" of p.
func config(p *oidcop.Provider) Config {
	return Config{
		Issuer:         p.Issuer,
		ClientID:       "dealroom",
		ClientSecret:   "s3cret",
		RedirectURL:    callback,
		AllowedDomains: []string{"example.com"},
		AdminGroups:    []string{"dealroom-admins"},
		ManagerGroups:  []string{"dealroom-managers", "sales-leads"},
		Scopes:         []string{"groups"},
	}
}

func mustNew(t *testing.T, cfg Config) *RelyingParty {
	t.Helper()
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// login signs email in at p for the authorization URL and returns the
// callback's query.
func login(t *testing.T, p *oidcop.Provider, authURL, email string) url.Values {
	t.Helper()
	cb, err := p.Login(context.Background(), authURL, email, password)
	if err != nil {
		t.Fatalf("login of %s at the provider: %v", email, err)
	}
	return cb.Query()
}

// wantRefused checks that err is a dealroom error with code whose message
// contains part and quotes neither the code nor the state.
func wantRefused(t *testing.T, err error, code, part string, q url.Values) {
	t.Helper()
	if err == nil {
		t.Fatalf("sign-in accepted, want %s (%q)", code, part)
	}
	if got := dealroom.ErrorCode(err); got != code {
		t.Fatalf("error code %q (%v), want %q", got, err, code)
	}
	msg := dealroom.ErrorMessage(err)
	if !strings.Contains(msg, part) {
		t.Errorf("message %q does not say %q", msg, part)
	}
	for _, secret := range []string{q.Get("code"), q.Get("state")} {
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("error %q quotes the callback's %q", err, secret)
		}
	}
}

func TestFullLoginAndRoles(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	r := mustNew(t, config(p))
	for _, tc := range []struct {
		email, name string
		role        dealroom.Role
	}{
		{"ada@example.com", "Ada Admin", dealroom.Admin}, // in both staff and admins: admin wins
		{"max@example.com", "Max Manager", dealroom.Manager},
		{"rita@Example.COM", "Rita Rep", dealroom.Rep}, // domain matched without regard to case
	} {
		t.Run(tc.email, func(t *testing.T) {
			authURL, a := r.Begin()
			u, err := url.Parse(authURL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") != a.Nonce || q.Get("state") != a.State {
				t.Fatalf("authorization URL lacks PKCE S256, nonce or state: %s", authURL)
			}
			before := time.Now()
			actor, expiry, err := r.Finish(context.Background(), a, login(t, p, authURL, tc.email))
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			want := dealroom.Actor{Kind: dealroom.Staff, Email: tc.email, Name: tc.name, Role: tc.role}
			id := actor.ID
			actor.ID = ""
			if actor != want {
				t.Errorf("actor %+v, want %+v", actor, want)
			}
			if !strings.HasPrefix(id, "oidc:") || len(id) != len("oidc:")+20 {
				t.Errorf("actor ID %q, want oidc: and 20 hex digits", id)
			}
			if !expiry.After(before) {
				t.Errorf("ID token expiry %v is not in the future", expiry)
			}
		})
	}

	// The same person signing in again is the same actor; another is not.
	ids := map[string]bool{}
	for _, email := range []string{"ada@example.com", "ada@example.com", "max@example.com"} {
		authURL, a := r.Begin()
		actor, _, err := r.Finish(context.Background(), a, login(t, p, authURL, email))
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		ids[actor.ID] = true
	}
	if len(ids) != 2 {
		t.Errorf("IDs of ada, ada, max: %v, want two distinct", ids)
	}
}

func TestRoleFromOtherClaim(t *testing.T) {
	p := startProvider(t, oidcop.Options{GroupsClaim: "roles"})
	cfg := config(p)
	r := mustNew(t, cfg)
	authURL, a := r.Begin()
	actor, _, err := r.Finish(context.Background(), a, login(t, p, authURL, "ada@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if actor.Role != dealroom.Rep {
		t.Errorf("role read from %q while the groups are in %q: %s, want rep", "groups", "roles", actor.Role)
	}

	cfg.GroupsClaim = "roles"
	r = mustNew(t, cfg)
	authURL, a = r.Begin()
	actor, _, err = r.Finish(context.Background(), a, login(t, p, authURL, "ada@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if actor.Role != dealroom.Admin {
		t.Errorf("role %s, want admin", actor.Role)
	}
}

func TestRefusedPeople(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	r := mustNew(t, config(p))
	for _, tc := range []struct{ email, part string }{
		{"otto@other.org", `not open to email addresses at "other.org"`},
		{"una@example.com", "did not confirm your email"},
	} {
		authURL, a := r.Begin()
		q := login(t, p, authURL, tc.email)
		_, _, err := r.Finish(context.Background(), a, q)
		wantRefused(t, err, dealroom.EFORBIDDEN, tc.part, q)
	}
}

func TestWrongAudience(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	ours := mustNew(t, config(p))
	cfg := config(p)
	cfg.ClientID, cfg.ClientSecret = "other", "0ther"
	other := mustNew(t, cfg)

	// A sign-in begun and exchanged as client "other" yields an ID token
	// for "other": our verifier (audience "dealroom") refuses it.
	other.verifier = ours.verifier
	authURL, a := other.Begin()
	q := login(t, p, authURL, "ada@example.com")
	_, _, err := other.Finish(context.Background(), a, q)
	wantRefused(t, err, dealroom.EUNAUTH, "not valid for this server", q)
	if !strings.Contains(err.Error(), "audience") {
		t.Errorf("refused for %v, want the audience", err)
	}
}

func TestWrongIssuer(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	cfg := config(p)
	cfg.Issuer = strings.Replace(p.Issuer, "127.0.0.1", "localhost", 1)
	_, err := New(context.Background(), cfg)
	if err == nil {
		t.Fatalf("New accepted the provider at %s, whose issuer is %s", cfg.Issuer, p.Issuer)
	}
	if dealroom.ErrorCode(err) != dealroom.EUNAVAILABLE || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("New: %v, want unavailable about the issuer", err)
	}

	// Past discovery (go-oidc's escape hatch for providers whose discovery
	// document names another issuer), the ID token's issuer is checked too.
	ctx := gooidc.InsecureIssuerURLContext(context.Background(), "https://login.other.example")
	r, err := New(ctx, config(p))
	if err != nil {
		t.Fatal(err)
	}
	authURL, a := r.Begin()
	q := login(t, p, authURL, "ada@example.com")
	_, _, err = r.Finish(context.Background(), a, q)
	wantRefused(t, err, dealroom.EUNAUTH, "not valid for this server", q)
	if !strings.Contains(err.Error(), "different provider") {
		t.Errorf("refused for %v, want the issuer", err)
	}
}

func TestReplayedState(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	r := mustNew(t, config(p))
	authURL, a := r.Begin()
	q := login(t, p, authURL, "ada@example.com")
	if _, _, err := r.Finish(context.Background(), a, q); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Finish(context.Background(), a, q)
	wantRefused(t, err, dealroom.EUNAUTH, "already used", q)
}

func TestReplayedNonce(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	r := mustNew(t, config(p))
	authURL, a := r.Begin()
	q := login(t, p, authURL, "ada@example.com")

	// A second sign-in with a fresh state but the first one's nonce: its
	// ID token carries a nonce already presented.
	b := a
	b.State = "another-state"
	q2 := login(t, p, r.authURL(b), "ada@example.com")

	if _, _, err := r.Finish(context.Background(), a, q); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Finish(context.Background(), b, q2)
	wantRefused(t, err, dealroom.EUNAUTH, "token was already used", q2)
}

func TestNonceMismatch(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	r := mustNew(t, config(p))
	authURL, a := r.Begin()
	q := login(t, p, authURL, "ada@example.com")
	a.Nonce = "not-the-one-sent"
	_, _, err := r.Finish(context.Background(), a, q)
	wantRefused(t, err, dealroom.EUNAUTH, "not issued for this sign-in", q)
}

func TestStateMismatch(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	r := mustNew(t, config(p))
	authURL, _ := r.Begin()
	q := login(t, p, authURL, "ada@example.com")
	// The browser comes back with a sign-in this browser did not begin.
	_, mine := r.Begin()
	_, _, err := r.Finish(context.Background(), mine, q)
	wantRefused(t, err, dealroom.EUNAUTH, "not started in this browser", q)
}

func TestExpiredIDToken(t *testing.T) {
	p := startProvider(t, oidcop.Options{IDTokenLifetime: time.Minute})
	cfg := config(p)
	// The relying party's clock is five minutes ahead: the attempt (ten
	// minutes) is still valid, the ID token (one minute) no longer.
	cfg.Now = func() time.Time { return time.Now().Add(5 * time.Minute) }
	r := mustNew(t, cfg)
	authURL, a := r.Begin()
	q := login(t, p, authURL, "ada@example.com")
	_, _, err := r.Finish(context.Background(), a, q)
	wantRefused(t, err, dealroom.EUNAUTH, "token has expired", q)
}

func TestExpiredAttempt(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	cfg := config(p)
	now := time.Now()
	cfg.Now = func() time.Time { return now }
	r := mustNew(t, cfg)
	authURL, a := r.Begin()
	q := login(t, p, authURL, "ada@example.com")
	now = now.Add(AttemptLifetime)
	_, _, err := r.Finish(context.Background(), a, q)
	wantRefused(t, err, dealroom.EUNAUTH, "took too long", q)
}

func TestProviderRefusal(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	r := mustNew(t, config(p))
	_, a := r.Begin()
	q := url.Values{"error": {"access_denied"}, "state": {a.State}}
	_, _, err := r.Finish(context.Background(), a, q)
	wantRefused(t, err, dealroom.EUNAUTH, "did not sign you in", q)
}

func TestSealedAttempt(t *testing.T) {
	key := []byte(strings.Repeat("k", MinKeyLen))
	a := Attempt{State: "st", Nonce: "no", Verifier: "ve", Expires: time.Unix(1700000000, 0)}
	sealed, err := a.Seal(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenAttempt(key, sealed)
	if err != nil {
		t.Fatalf("OpenAttempt: %v", err)
	}
	if !(got.State == a.State && got.Nonce == a.Nonce && got.Verifier == a.Verifier && got.Expires.Equal(a.Expires)) {
		t.Errorf("opened %+v, want %+v", got, a)
	}

	// Changed anywhere, or sealed with another key: refused.
	other := []byte(strings.Repeat("x", MinKeyLen))
	forged, _ := Attempt{State: "st", Nonce: "mine", Verifier: "ve", Expires: a.Expires}.Seal(other)
	payload, sig, _ := strings.Cut(sealed, ".")
	forgedPayload, _, _ := strings.Cut(forged, ".")
	for name, s := range map[string]string{
		"other key":       forged,
		"payload swapped": forgedPayload + "." + sig,
		"signature cut":   payload + "." + sig[:len(sig)-2],
		"no signature":    payload,
		"empty":           "",
	} {
		if _, err := OpenAttempt(key, s); dealroom.ErrorCode(err) != dealroom.EUNAUTH {
			t.Errorf("%s: OpenAttempt: %v, want unauthenticated", name, err)
		}
	}
	if _, err := a.Seal(key[:MinKeyLen-1]); err == nil {
		t.Error("Seal accepted a short key")
	}
}

func TestTamperedAttemptCookie(t *testing.T) {
	p := startProvider(t, oidcop.Options{})
	r := mustNew(t, config(p))
	key := []byte(strings.Repeat("k", MinKeyLen))
	authURL, a := r.Begin()
	sealed, err := a.Seal(key)
	if err != nil {
		t.Fatal(err)
	}
	q := login(t, p, authURL, "ada@example.com")

	// The cookie's attempt changed by someone without the key is refused
	// before anything reaches the provider...
	payload, sig, _ := strings.Cut(sealed, ".")
	raw := []byte(payload)
	raw[len(raw)/2] ^= 1
	if _, err := OpenAttempt(key, string(raw)+"."+sig); dealroom.ErrorCode(err) != dealroom.EUNAUTH {
		t.Fatalf("tampered cookie opened: %v", err)
	}
	// ...and the untouched one finishes the sign-in.
	opened, err := OpenAttempt(key, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Finish(context.Background(), opened, q); err != nil {
		t.Fatalf("Finish with the opened cookie: %v", err)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for name, change := range map[string]func(*Config){
		"no issuer":       func(c *Config) { c.Issuer = "" },
		"no client id":    func(c *Config) { c.ClientID = "" },
		"no secret":       func(c *Config) { c.ClientSecret = "" },
		"no redirect URL": func(c *Config) { c.RedirectURL = "" },
		"no domain":       func(c *Config) { c.AllowedDomains = nil },
	} {
		cfg := Config{Issuer: "http://127.0.0.1:9", ClientID: "c", ClientSecret: "s", RedirectURL: callback, AllowedDomains: []string{"example.com"}}
		change(&cfg)
		if _, err := New(context.Background(), cfg); dealroom.ErrorCode(err) != dealroom.EINVALID {
			t.Errorf("%s: New: %v, want invalid", name, err)
		}
	}
}
