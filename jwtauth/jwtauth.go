// Package jwtauth verifies and issues the bearer tokens of Dealroom with
// github.com/golang-jwt/jwt/v5. Tokens are accepted when signed with HS256
// and the configured secret, or with RS256/ES256 and the configured public
// key of a company's identity provider. Each algorithm is tied to its own
// key, so a token cannot pick the key it is checked with ("alg": "none",
// or an HS256 token "signed" with the public key, is refused).
package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"dealroom"
)

// Config says which tokens to accept.
type Config struct {
	// Secret is the HS256 key; tokens this server issues (development
	// tokens, customers' tokens after an invite) are signed with it. It
	// must be at least 32 bytes.
	Secret []byte
	// PublicKey, when set, accepts RS256 (an *rsa.PublicKey) or ES256 (an
	// *ecdsa.PublicKey on P-256) tokens from an identity provider. It needs
	// an Audience: a provider signs tokens for all its applications with
	// the same key, and only the audience tells that a token is meant for
	// this one.
	PublicKey crypto.PublicKey
	// Issuer and Audience, when set, must appear in every token (iss, aud),
	// and are written into the tokens this server issues.
	Issuer   string
	Audience string
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
}

// Keys verifies and issues tokens.
type Keys struct {
	cfg     Config
	methods []string
	opts    []jwt.ParserOption
	cache   verifiedCache
}

// Leeway is the clock skew allowed when checking a token's times: a token
// is accepted until Leeway after its exp.
const Leeway = 30 * time.Second

// MinSecret is the shortest HS256 secret accepted.
const MinSecret = 32

// New checks cfg and returns Keys for it.
func New(cfg Config) (*Keys, error) {
	if len(cfg.Secret) < MinSecret {
		return nil, fmt.Errorf("jwtauth: the HS256 secret must have at least %d bytes", MinSecret)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &Keys{cfg: cfg, methods: []string{"HS256"}}
	switch pk := cfg.PublicKey.(type) {
	case nil:
	case *rsa.PublicKey:
		if pk.N.BitLen() < 2048 {
			return nil, errors.New("jwtauth: an RSA public key needs at least 2048 bits")
		}
		k.methods = append(k.methods, "RS256")
	case *ecdsa.PublicKey:
		if pk.Curve != elliptic.P256() {
			return nil, errors.New("jwtauth: an ECDSA public key must be on P-256 (ES256)")
		}
		k.methods = append(k.methods, "ES256")
	default:
		return nil, fmt.Errorf("jwtauth: unsupported public key type %T (want RSA or ECDSA P-256)", pk)
	}
	if cfg.PublicKey != nil && cfg.Audience == "" {
		return nil, errors.New("jwtauth: an identity provider's public key needs an audience (the client id this server has at the provider): " +
			"without one, tokens the provider issued for any other application would be accepted")
	}
	k.opts = []jwt.ParserOption{
		jwt.WithValidMethods(k.methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		k.opts = append(k.opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		k.opts = append(k.opts, jwt.WithAudience(cfg.Audience))
	}
	return k, nil
}

// ParsePublicKey reads a PEM-encoded RSA or ECDSA public key (PKIX "PUBLIC
// KEY", PKCS#1 "RSA PUBLIC KEY", or a certificate).
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("jwtauth: no PEM block in the public key")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("jwtauth: unsupported PEM block %q", block.Type)
}

// claims are the token's contents.
type claims struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Kind  string `json:"kind"`
	Role  string `json:"role,omitempty"`
	// Invite names the invite whose acceptance issued the token.
	Invite string `json:"inv,omitempty"`
	jwt.RegisteredClaims
}

// Verify checks a token and returns who it speaks for. Every failure is an
// EUNAUTH error whose message says what is wrong without echoing the token.
func (k *Keys) Verify(token string) (dealroom.Actor, error) {
	a, _, err := k.VerifyUntil(token)
	return a, err
}

// VerifyUntil is Verify for a connection that outlives the request: it also
// returns the instant the token stops being accepted (its exp plus Leeway),
// when the connection must end.
func (k *Keys) VerifyUntil(token string) (dealroom.Actor, time.Time, error) {
	now := k.cfg.Now()
	if v, ok := k.cache.get(token, now); ok {
		return v.actor, v.until, nil
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, k.key, k.opts...)
	if err != nil {
		return dealroom.Actor{}, time.Time{}, unauth(reason(err))
	}
	a, err := c.actor()
	if err != nil {
		return dealroom.Actor{}, time.Time{}, err
	}
	until := c.ExpiresAt.Time.Add(Leeway)
	k.cache.put(token, verified{actor: a, until: until}, now)
	return a, until, nil
}

// actor reads and checks who verified claims speak for.
func (c *claims) actor() (dealroom.Actor, error) {
	a := dealroom.Actor{ID: c.Subject, Name: c.Name, Email: c.Email, Kind: dealroom.Kind(c.Kind), Role: dealroom.Role(c.Role),
		Invite: c.Invite}
	if a.ID == "" || len(a.ID) > 128 || strings.IndexFunc(a.ID, unicode.IsControl) >= 0 {
		return dealroom.Actor{}, unauth("the token's sub must be a user id of 1 to 128 characters")
	}
	if !a.Kind.Valid() {
		return dealroom.Actor{}, unauth(`the token's kind must be "staff" or "customer"`)
	}
	switch {
	case a.Kind == dealroom.Customer:
		a.Role = ""
	case a.Role == "":
		a.Role = dealroom.Rep
	case !a.Role.Valid():
		return dealroom.Actor{}, unauth(`the token's role must be "rep", "manager" or "admin"`)
	}
	if a.Name == "" {
		a.Name = a.ID
	}
	if len(a.Name) > 200 || strings.IndexFunc(a.Name, unicode.IsControl) >= 0 {
		return dealroom.Actor{}, unauth("the token's name is not a usable display name")
	}
	return a, nil
}

// key picks the verification key by algorithm: each algorithm has its own
// key, never the token's choice of key.
func (k *Keys) key(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case "HS256":
		return k.cfg.Secret, nil
	case "RS256":
		if pk, ok := k.cfg.PublicKey.(*rsa.PublicKey); ok {
			return pk, nil
		}
	case "ES256":
		if pk, ok := k.cfg.PublicKey.(*ecdsa.PublicKey); ok {
			return pk, nil
		}
	}
	return nil, fmt.Errorf("algorithm %s is not accepted", t.Method.Alg())
}

// Issue signs an HS256 token for a with the given lifetime.
func (k *Keys) Issue(a dealroom.Actor, ttl time.Duration) (string, error) {
	now := k.cfg.Now()
	c := claims{Name: a.Name, Email: a.Email, Kind: string(a.Kind), Role: string(a.Role), Invite: a.Invite,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   a.ID,
			Issuer:    k.cfg.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		}}
	if k.cfg.Audience != "" {
		c.Audience = jwt.ClaimStrings{k.cfg.Audience}
	}
	if a.Kind == dealroom.Customer {
		c.Role = ""
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(k.cfg.Secret)
}

func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token's audience is not accepted"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's signature or algorithm is not accepted"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	}
	return "the token is not valid"
}

func unauth(msg string) *dealroom.Error {
	return &dealroom.Error{Code: dealroom.EUNAUTH, Message: msg}
}

// verifiedCache remembers the tokens verified lately, so that a client
// that sends the same token with every request (a browser's hundred
// requests a minute) has it parsed and its signature checked once: a
// token's answer cannot change before it expires (the revocation of a
// sign-in is checked elsewhere, on every request: room.Service.Authorize).
// A hit is still refused from its expiry on. The cache holds at most
// maxVerified tokens; when full, half of them are dropped.
type verifiedCache struct {
	mu sync.Mutex
	m  map[string]verified
}

type verified struct {
	actor dealroom.Actor
	until time.Time // exp plus Leeway
}

const maxVerified = 8192

func (c *verifiedCache) get(token string, now time.Time) (verified, bool) {
	c.mu.Lock()
	v, ok := c.m[token]
	if ok && !now.Before(v.until) {
		delete(c.m, token)
		ok = false
	}
	c.mu.Unlock()
	return v, ok
}

func (c *verifiedCache) put(token string, v verified, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]verified)
	}
	if len(c.m) >= maxVerified {
		// Expired ones first, then any (map order is random).
		n := 0
		for t, old := range c.m {
			if !now.Before(old.until) || n%2 == 0 {
				delete(c.m, t)
			}
			n++
		}
	}
	c.m[token] = v
}

func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
