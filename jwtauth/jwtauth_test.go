package jwtauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/jwtauth"
)

var (
	secret = []byte("jwtauth-test-secret-0123456789abcdef")
	now    = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock  = func() time.Time { return now }
)

// Generated keys are shared by the tests: RSA key generation is slow.
var (
	keysOnce          sync.Once
	rsaKey, rsaOther  *rsa.PrivateKey
	ecKey, ecOther    *ecdsa.PrivateKey
	ec384Key          *ecdsa.PrivateKey
	rsaSmallKey       *rsa.PrivateKey
	edPub             ed25519.PublicKey
	errGeneratingKeys error
)

func genKeys(tb testing.TB) {
	tb.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if err == nil {
				err = e
			}
		}
		var e error
		rsaKey, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		rsaOther, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		rsaSmallKey, e = rsa.GenerateKey(rand.Reader, 1024)
		must(e)
		ecKey, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(e)
		ecOther, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(e)
		ec384Key, e = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(e)
		edPub, _, e = ed25519.GenerateKey(rand.Reader)
		must(e)
		errGeneratingKeys = err
	})
	require.NoError(tb, errGeneratingKeys)
}

// pemPKIX encodes a public key as a PEM "PUBLIC KEY" block.
func pemPKIX(tb testing.TB, pub crypto.PublicKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(tb, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func mustKeys(tb testing.TB, cfg jwtauth.Config) *jwtauth.Keys {
	tb.Helper()
	if cfg.Secret == nil {
		cfg.Secret = secret
	}
	if cfg.Now == nil {
		cfg.Now = clock
	}
	if cfg.PublicKey != nil && cfg.Audience == "" {
		cfg.Audience = "dealroom" // as claims() says
	}
	k, err := jwtauth.New(cfg)
	require.NoError(tb, err)
	return k
}

// claims returns valid staff claims; edit the map to break them.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":   "alice",
		"name":  "Alice Rep",
		"email": "alice@seller.example",
		"kind":  "staff",
		"role":  "manager",
		"aud":   "dealroom",
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
}

// An identity provider signs the tokens of all its applications with one
// key: with a public key configured, only the audience tells that a token
// is meant for this server, so one is required.
func TestPublicKeyNeedsAudience(t *testing.T) {
	genKeys(t)
	for _, pk := range []crypto.PublicKey{&rsaKey.PublicKey, &ecKey.PublicKey} {
		_, err := jwtauth.New(jwtauth.Config{Secret: secret, PublicKey: pk})
		require.Error(t, err, "%T without an audience", pk)
		assert.Contains(t, err.Error(), "audience")
	}
	k := mustKeys(t, jwtauth.Config{PublicKey: &rsaKey.PublicKey, Audience: "dealroom"})
	_, err := k.Verify(sign(t, jwt.SigningMethodRS256, rsaKey, claims()))
	require.NoError(t, err)
	for _, aud := range []any{"the-crm", []string{"the-crm", "the-wiki"}, nil} {
		c := claims()
		if aud == nil {
			delete(c, "aud")
		} else {
			c["aud"] = aud
		}
		requireRefused(t, k, sign(t, jwt.SigningMethodRS256, rsaKey, c))
	}
}

func sign(tb testing.TB, m jwt.SigningMethod, key any, c jwt.Claims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	require.NoError(tb, err)
	return s
}

// requireRefused checks that a token is refused with EUNAUTH and that the
// message does not echo the token.
func requireRefused(tb testing.TB, k *jwtauth.Keys, token string) string {
	tb.Helper()
	a, err := k.Verify(token)
	require.Error(tb, err, "the token must be refused")
	assert.Equal(tb, dealroom.EUNAUTH, dealroom.ErrorCode(err))
	assert.Equal(tb, dealroom.Actor{}, a, "a refused token speaks for nobody")
	msg := dealroom.ErrorMessage(err)
	assert.NotEmpty(tb, msg)
	if len(token) > 10 {
		assert.NotContains(tb, msg, token, "the message does not echo the token")
		for _, part := range strings.Split(token, ".") {
			if len(part) > 10 {
				assert.NotContains(tb, msg, part)
			}
		}
	}
	return msg
}

func TestNewRefusesShortSecret(t *testing.T) {
	for _, s := range [][]byte{nil, {}, []byte("short"), make([]byte, jwtauth.MinSecret-1)} {
		_, err := jwtauth.New(jwtauth.Config{Secret: s})
		assert.Error(t, err, "a %d-byte secret is refused", len(s))
	}
	_, err := jwtauth.New(jwtauth.Config{Secret: make([]byte, jwtauth.MinSecret)})
	assert.NoError(t, err)
	assert.Equal(t, 32, jwtauth.MinSecret)
}

func TestNewRefusesUnfitPublicKeys(t *testing.T) {
	genKeys(t)
	for name, pk := range map[string]crypto.PublicKey{
		"RSA 1024":         &rsaSmallKey.PublicKey,
		"ECDSA P-384":      &ec384Key.PublicKey,
		"Ed25519":          edPub,
		"RSA key by value": rsaKey.PublicKey,
		"a string":         "not a key",
	} {
		_, err := jwtauth.New(jwtauth.Config{Secret: secret, PublicKey: pk, Audience: "dealroom"})
		assert.Error(t, err, name)
	}
	for name, pk := range map[string]crypto.PublicKey{
		"RSA 2048":    &rsaKey.PublicKey,
		"ECDSA P-256": &ecKey.PublicKey,
	} {
		_, err := jwtauth.New(jwtauth.Config{Secret: secret, PublicKey: pk, Audience: "dealroom"})
		assert.NoError(t, err, name)
	}
}

func TestHS256(t *testing.T) {
	k := mustKeys(t, jwtauth.Config{})
	a, err := k.Verify(sign(t, jwt.SigningMethodHS256, secret, claims()))
	require.NoError(t, err)
	assert.Equal(t, dealroom.Actor{ID: "alice", Name: "Alice Rep", Email: "alice@seller.example",
		Kind: dealroom.Staff, Role: dealroom.Manager}, a)
}

func TestIssueThenVerify(t *testing.T) {
	k := mustKeys(t, jwtauth.Config{Issuer: "dealroom", Audience: "dealroom-web"})
	staff := dealroom.Actor{ID: "bob", Name: "Bob Engineer", Email: "bob@seller.example", Kind: dealroom.Staff, Role: dealroom.Admin}
	tok, err := k.Issue(staff, time.Hour)
	require.NoError(t, err)
	got, err := k.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, staff, got)

	customer := dealroom.Actor{ID: "c_123", Name: "Carol", Email: "carol@customer.example", Kind: dealroom.Customer, Role: dealroom.Admin}
	tok, err = k.Issue(customer, time.Hour)
	require.NoError(t, err)
	got, err = k.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, dealroom.Customer, got.Kind)
	assert.Empty(t, got.Role, "a customer never carries a staff role")

	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	assert.Equal(t, "HS256", parsed.Method.Alg())
	m := parsed.Claims.(jwt.MapClaims)
	assert.Equal(t, "dealroom", m["iss"])
	assert.Equal(t, []any{"dealroom-web"}, m["aud"])
	assert.NotContains(t, m, "role", "no role is written for a customer")
	exp, err := m.GetExpirationTime()
	require.NoError(t, err)
	assert.Equal(t, now.Add(time.Hour).Unix(), exp.Unix())

	// The issued token expires with its lifetime.
	later := mustKeys(t, jwtauth.Config{Issuer: "dealroom", Audience: "dealroom-web",
		Now: func() time.Time { return now.Add(2 * time.Hour) }})
	requireRefused(t, later, tok)

	// Another server with another audience does not take it.
	other := mustKeys(t, jwtauth.Config{Issuer: "dealroom", Audience: "other-app"})
	requireRefused(t, other, tok)
	// Nor one with another secret.
	otherSecret := mustKeys(t, jwtauth.Config{Secret: []byte("another-secret-another-secret-0123456789"),
		Issuer: "dealroom", Audience: "dealroom-web"})
	requireRefused(t, otherSecret, tok)
}

func TestVerifyFillsDefaults(t *testing.T) {
	k := mustKeys(t, jwtauth.Config{})
	c := claims()
	delete(c, "role")
	delete(c, "name")
	a, err := k.Verify(sign(t, jwt.SigningMethodHS256, secret, c))
	require.NoError(t, err)
	assert.Equal(t, dealroom.Rep, a.Role, "staff without a role are reps")
	assert.Equal(t, "alice", a.Name, "without a name the user id stands in")

	c = claims()
	c["kind"] = "customer"
	c["role"] = "admin"
	a, err = k.Verify(sign(t, jwt.SigningMethodHS256, secret, c))
	require.NoError(t, err)
	assert.Equal(t, dealroom.Customer, a.Kind)
	assert.Empty(t, a.Role, "a customer's token cannot make them an admin")
	assert.False(t, a.Oversees())
}

func TestVerifyRefusesBadHS256Tokens(t *testing.T) {
	k := mustKeys(t, jwtauth.Config{})
	edit := func(f func(jwt.MapClaims)) string {
		c := claims()
		f(c)
		return sign(t, jwt.SigningMethodHS256, secret, c)
	}
	tests := []struct {
		name  string
		token string
		says  string // a word the message should contain
	}{
		{"exp missing", edit(func(c jwt.MapClaims) { delete(c, "exp") }), "exp"},
		{"expired an hour ago", edit(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), "expired"},
		{"expired beyond the leeway", edit(func(c jwt.MapClaims) { c["exp"] = now.Add(-31 * time.Second).Unix() }), "expired"},
		{"exp not a number", edit(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), ""},
		{"nbf in the future", edit(func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), "not valid yet"},
		{"signed with another secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123456789"), claims()), "signature"},
		{"HS384 with the right secret", sign(t, jwt.SigningMethodHS384, secret, claims()), ""},
		{"HS512 with the right secret", sign(t, jwt.SigningMethodHS512, secret, claims()), ""},
		{"sub missing", edit(func(c jwt.MapClaims) { delete(c, "sub") }), "sub"},
		{"sub too long", edit(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("a", 129) }), "sub"},
		{"sub with a control character", edit(func(c jwt.MapClaims) { c["sub"] = "ali\nce" }), "sub"},
		{"kind missing", edit(func(c jwt.MapClaims) { delete(c, "kind") }), "kind"},
		{"kind unknown", edit(func(c jwt.MapClaims) { c["kind"] = "robot" }), "kind"},
		{"kind in capitals", edit(func(c jwt.MapClaims) { c["kind"] = "Staff" }), "kind"},
		{"role unknown", edit(func(c jwt.MapClaims) { c["role"] = "superuser" }), "role"},
		{"name with a control character", edit(func(c jwt.MapClaims) { c["name"] = "Alice\x1b[2J" }), "name"},
		{"name too long", edit(func(c jwt.MapClaims) { c["name"] = strings.Repeat("n", 201) }), "name"},
		{"garbage", "not-a-token", "malformed"},
		{"empty", "", ""},
		{"two parts", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := requireRefused(t, k, tt.token)
			if tt.says != "" {
				assert.Contains(t, msg, tt.says, "the message says what is wrong")
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	// Clocks of an identity provider and ours differ a little: 30 seconds
	// are forgiven, no more.
	k := mustKeys(t, jwtauth.Config{})
	c := claims()
	c["exp"] = now.Add(-10 * time.Second).Unix()
	_, err := k.Verify(sign(t, jwt.SigningMethodHS256, secret, c))
	assert.NoError(t, err, "expired 10s ago is within the leeway")

	c = claims()
	c["nbf"] = now.Add(10 * time.Second).Unix()
	_, err = k.Verify(sign(t, jwt.SigningMethodHS256, secret, c))
	assert.NoError(t, err, "valid in 10s is within the leeway")

	c = claims()
	c["nbf"] = now.Add(-time.Minute).Unix()
	_, err = k.Verify(sign(t, jwt.SigningMethodHS256, secret, c))
	assert.NoError(t, err, "nbf in the past is fine")
}

func TestAlgNoneIsRefused(t *testing.T) {
	genKeys(t)
	for name, k := range map[string]*jwtauth.Keys{
		"HS256 only": mustKeys(t, jwtauth.Config{}),
		"with RSA":   mustKeys(t, jwtauth.Config{PublicKey: &rsaKey.PublicKey}),
		"with ECDSA": mustKeys(t, jwtauth.Config{PublicKey: &ecKey.PublicKey}),
	} {
		t.Run(name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims())
			requireRefused(t, k, tok)

			// Hand-made, with the alg spelled in other ways and a signature
			// part that is empty or copied from a valid token.
			body := strings.Split(tok, ".")[1]
			valid := sign(t, jwt.SigningMethodHS256, secret, claims())
			for _, alg := range []string{"none", "None", "NONE", "nOnE", ""} {
				header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))
				requireRefused(t, k, header+"."+body+".")
				requireRefused(t, k, header+"."+body+"."+strings.Split(valid, ".")[2])
			}
		})
	}
}

func TestAlgorithmConfusionIsRefused(t *testing.T) {
	genKeys(t)
	k := mustKeys(t, jwtauth.Config{PublicKey: &rsaKey.PublicKey})
	// The classic attack: the RSA public key is public, so an attacker signs
	// an HS256 token with its bytes as the HMAC secret.
	pemBytes := pemPKIX(t, &rsaKey.PublicKey)
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
	for name, hmacKey := range map[string][]byte{
		"PEM":            pemBytes,
		"PEM, trimmed":   []byte(strings.TrimSpace(string(pemBytes))),
		"DER":            der,
		"PKCS#1 PEM":     pkcs1,
		"modulus bytes":  rsaKey.PublicKey.N.Bytes(),
		"PKCS#1 DER":     x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey),
		"ES key as HMAC": pemPKIX(t, &ecKey.PublicKey),
	} {
		t.Run(name, func(t *testing.T) {
			requireRefused(t, k, sign(t, jwt.SigningMethodHS256, hmacKey, claims()))
		})
	}
	// A real RS256 token from the identity provider still works, so the
	// refusals above are not because RS256 is off.
	a, err := k.Verify(sign(t, jwt.SigningMethodRS256, rsaKey, claims()))
	require.NoError(t, err)
	assert.Equal(t, "alice", a.ID)

	// Same for an ECDSA configuration.
	ek := mustKeys(t, jwtauth.Config{PublicKey: &ecKey.PublicKey})
	requireRefused(t, ek, sign(t, jwt.SigningMethodHS256, pemPKIX(t, &ecKey.PublicKey), claims()))
}

func TestRS256(t *testing.T) {
	genKeys(t)
	k := mustKeys(t, jwtauth.Config{PublicKey: &rsaKey.PublicKey})
	a, err := k.Verify(sign(t, jwt.SigningMethodRS256, rsaKey, claims()))
	require.NoError(t, err)
	assert.Equal(t, dealroom.Actor{ID: "alice", Name: "Alice Rep", Email: "alice@seller.example",
		Kind: dealroom.Staff, Role: dealroom.Manager}, a)

	// HS256 tokens of this server keep working beside the IdP's.
	_, err = k.Verify(sign(t, jwt.SigningMethodHS256, secret, claims()))
	assert.NoError(t, err)

	requireRefused(t, k, sign(t, jwt.SigningMethodRS256, rsaOther, claims())) // another IdP's key
	requireRefused(t, k, sign(t, jwt.SigningMethodRS384, rsaKey, claims()))   // another RSA algorithm
	requireRefused(t, k, sign(t, jwt.SigningMethodPS256, rsaKey, claims()))   // PSS is not configured
	requireRefused(t, k, sign(t, jwt.SigningMethodES256, ecKey, claims()))    // ES256 without an EC key
	c := claims()
	delete(c, "exp")
	requireRefused(t, k, sign(t, jwt.SigningMethodRS256, rsaKey, c)) // exp is required from the IdP too
	c = claims()
	c["exp"] = now.Add(-time.Hour).Unix()
	requireRefused(t, k, sign(t, jwt.SigningMethodRS256, rsaKey, c))

	// Without a public key, RS256 is not accepted at all.
	requireRefused(t, mustKeys(t, jwtauth.Config{}), sign(t, jwt.SigningMethodRS256, rsaKey, claims()))

	// A tampered payload breaks the signature.
	tok := sign(t, jwt.SigningMethodRS256, rsaKey, claims())
	parts := strings.Split(tok, ".")
	c = claims()
	c["role"] = "admin"
	forged := strings.Split(sign(t, jwt.SigningMethodRS256, rsaOther, c), ".")[1]
	requireRefused(t, k, parts[0]+"."+forged+"."+parts[2])
}

func TestES256(t *testing.T) {
	genKeys(t)
	k := mustKeys(t, jwtauth.Config{PublicKey: &ecKey.PublicKey})
	a, err := k.Verify(sign(t, jwt.SigningMethodES256, ecKey, claims()))
	require.NoError(t, err)
	assert.Equal(t, "alice", a.ID)
	assert.Equal(t, dealroom.Manager, a.Role)

	_, err = k.Verify(sign(t, jwt.SigningMethodHS256, secret, claims()))
	assert.NoError(t, err, "the server's own HS256 tokens work beside ES256")

	requireRefused(t, k, sign(t, jwt.SigningMethodES256, ecOther, claims()))
	requireRefused(t, k, sign(t, jwt.SigningMethodRS256, rsaKey, claims()))
	requireRefused(t, k, sign(t, jwt.SigningMethodES384, ec384Key, claims()))
	requireRefused(t, mustKeys(t, jwtauth.Config{}), sign(t, jwt.SigningMethodES256, ecKey, claims()))
}

func TestIssuerAndAudience(t *testing.T) {
	k := mustKeys(t, jwtauth.Config{Issuer: "https://idp.seller.example", Audience: "dealroom"})
	with := func(f func(jwt.MapClaims)) string {
		c := claims()
		c["iss"] = "https://idp.seller.example"
		c["aud"] = "dealroom"
		f(c)
		return sign(t, jwt.SigningMethodHS256, secret, c)
	}
	_, err := k.Verify(with(func(jwt.MapClaims) {}))
	require.NoError(t, err)
	_, err = k.Verify(with(func(c jwt.MapClaims) { c["aud"] = []string{"other", "dealroom"} }))
	assert.NoError(t, err, "one of several audiences is enough")

	requireRefused(t, k, with(func(c jwt.MapClaims) { delete(c, "iss") }))
	msg := requireRefused(t, k, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))
	assert.Contains(t, msg, "issuer")
	requireRefused(t, k, with(func(c jwt.MapClaims) { c["iss"] = "https://idp.seller.example/" }))
	requireRefused(t, k, with(func(c jwt.MapClaims) { delete(c, "aud") }))
	msg = requireRefused(t, k, with(func(c jwt.MapClaims) { c["aud"] = "other-app" }))
	assert.Contains(t, msg, "audience")
	requireRefused(t, k, with(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }))

	// Without iss/aud configured, tokens carrying them are fine.
	plain := mustKeys(t, jwtauth.Config{})
	_, err = plain.Verify(with(func(jwt.MapClaims) {}))
	assert.NoError(t, err)
}

func TestParsePublicKey(t *testing.T) {
	genKeys(t)
	pk, err := jwtauth.ParsePublicKey(pemPKIX(t, &rsaKey.PublicKey))
	require.NoError(t, err)
	assert.True(t, rsaKey.PublicKey.Equal(pk), "PKIX RSA")

	pk, err = jwtauth.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}))
	require.NoError(t, err)
	assert.True(t, rsaKey.PublicKey.Equal(pk), "PKCS#1 RSA")

	pk, err = jwtauth.ParsePublicKey(pemPKIX(t, &ecKey.PublicKey))
	require.NoError(t, err)
	assert.True(t, ecKey.PublicKey.Equal(pk), "PKIX ECDSA")

	// A certificate of the identity provider.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	require.NoError(t, err)
	pk, err = jwtauth.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	require.NoError(t, err)
	assert.True(t, ecKey.PublicKey.Equal(pk), "certificate")

	// Text around the PEM block, as in a pasted file, is fine.
	pk, err = jwtauth.ParsePublicKey(append([]byte("issuer key:\n"), pemPKIX(t, &rsaKey.PublicKey)...))
	require.NoError(t, err)
	assert.True(t, rsaKey.PublicKey.Equal(pk))

	// The parsed key is usable end to end.
	k := mustKeys(t, jwtauth.Config{PublicKey: pk})
	_, err = k.Verify(sign(t, jwt.SigningMethodRS256, rsaKey, claims()))
	assert.NoError(t, err)
}

func TestParsePublicKeyRefusesGarbage(t *testing.T) {
	genKeys(t)
	privDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	require.NoError(t, err)
	good := pemPKIX(t, &rsaKey.PublicKey)
	block, _ := pem.Decode(good)
	truncated := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes[:len(block.Bytes)/2]})
	for name, data := range map[string][]byte{
		"nil":                  nil,
		"empty":                {},
		"text":                 []byte("this is not a key"),
		"binary":               {0x30, 0x82, 0x01, 0x22, 0xff, 0x00},
		"DER without PEM":      block.Bytes,
		"PEM header only":      []byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"),
		"bad base64":           []byte("-----BEGIN PUBLIC KEY-----\n!!!!not base64!!!!\n-----END PUBLIC KEY-----\n"),
		"truncated DER":        truncated,
		"private key":          pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		"RSA private key":      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}),
		"garbage certificate":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")}),
		"PKCS#1 labelled PKIX": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: block.Bytes}),
	} {
		t.Run(name, func(t *testing.T) {
			pk, err := jwtauth.ParsePublicKey(data)
			assert.Error(t, err)
			assert.Nil(t, pk)
		})
	}
}

func TestParsedKeyOfAnUnsupportedKindIsRefusedByNew(t *testing.T) {
	// An Ed25519 key parses, but the server does not verify EdDSA: it must
	// say so at start-up, not accept or crash later.
	genKeys(t)
	pk, err := jwtauth.ParsePublicKey(pemPKIX(t, edPub))
	require.NoError(t, err)
	_, err = jwtauth.New(jwtauth.Config{Secret: secret, PublicKey: pk, Audience: "dealroom"})
	assert.Error(t, err)
}

// A token verified once is remembered, but never past its
// expiry: the same token, asked again after exp plus the leeway, is
// refused as it would be the first time.
func TestVerifiedTokensExpireFromTheCache(t *testing.T) {
	at := now
	k := mustKeys(t, jwtauth.Config{Now: func() time.Time { return at }})
	c := claims()
	c["exp"] = now.Add(time.Minute).Unix()
	tok := sign(t, jwt.SigningMethodHS256, secret, c)
	a, until, err := k.VerifyUntil(tok)
	require.NoError(t, err)
	assert.Equal(t, "alice", a.ID)
	assert.True(t, now.Add(time.Minute+jwtauth.Leeway).Equal(until), "until is exp plus the leeway")

	at = now.Add(time.Minute + jwtauth.Leeway - time.Second)
	again, _, err := k.VerifyUntil(tok)
	require.NoError(t, err, "still valid a second before its end")
	assert.Equal(t, a, again)

	at = now.Add(time.Minute + jwtauth.Leeway)
	requireRefused(t, k, tok)
	// And a token changed by one character is checked, not found.
	requireRefused(t, k, tok[:len(tok)-2]+"xx")
}
