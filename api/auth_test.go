package api_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/jwtauth"
)

// testKeys are an identity provider's keys, made once per test binary.
var testKeys = sync.OnceValue(func() (k struct {
	rsa, rsaOther *rsa.PrivateKey
	ec, ecOther   *ecdsa.PrivateKey
}) {
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa, &k.rsaOther} {
		if *p, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	for _, p := range []**ecdsa.PrivateKey{&k.ec, &k.ecOther} {
		if *p, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	}
	return k
})

// publicPEM is the PEM text of a public key, as an operator configures it.
func publicPEM(tb testing.TB, pub crypto.PublicKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(tb, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// withPublicKey configures the server with a public key read from PEM, as
// cmd/dealroom does.
func withPublicKey(tb testing.TB, pub crypto.PublicKey) serverOption {
	pk, err := jwtauth.ParsePublicKey(publicPEM(tb, pub))
	require.NoError(tb, err)
	return withJWT(func(c *jwtauth.Config) {
		c.PublicKey = pk
		if c.Audience == "" {
			c.Audience = testAudience // a public key needs one
		}
	})
}

// testAudience is the audience of every test token (claims).
const testAudience = "dealroom-api"

// claims are a valid staff token's claims, changed by set (a nil value
// removes the claim).
func claims(set map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "name": "Alice", "email": "alice@seller.example", "kind": "staff",
		"role": "rep", "aud": testAudience, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range set {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign makes a token.
func sign(tb testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	require.NoError(tb, err)
	return s
}

// hs signs with the test secret.
func hs(tb testing.TB, set map[string]any) string {
	return sign(tb, jwt.SigningMethodHS256, testSecret, claims(set))
}

// unsigned makes an "alg": "none" token by hand.
func unsigned(header string, c jwt.MapClaims, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	payload, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SigningString()
	return enc([]byte(header)) + "." + strings.Split(payload, ".")[1] + "." + sig
}

// tamper replaces a signed token's payload, keeping its signature.
func tamper(tb testing.TB, token string, c jwt.MapClaims) string {
	tb.Helper()
	other := sign(tb, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123"), c)
	p := strings.Split(token, ".")
	p[1] = strings.Split(other, ".")[1]
	return strings.Join(p, ".")
}

type authCase struct {
	name   string
	token  func(t *testing.T) string
	hdr    func(t *testing.T) string // the whole Authorization header, when set
	status int
	// then checks GET /me of an accepted token.
	then func(t *testing.T, me map[string]any)
}

func runAuthCases(t *testing.T, ts *testServer, cases []authCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r response
			if c.hdr != nil {
				r = ts.do(t, "GET", "/me", "", nil, header{"Authorization", c.hdr(t)})
			} else {
				r = ts.do(t, "GET", "/me", c.token(t), nil)
			}
			require.Equal(t, c.status, r.Status, "%s", r)
			if r.Status == 401 {
				assertErrorBody(t, r, "")
				assert.NotEmpty(t, r.Header.Get("WWW-Authenticate"), "a 401 says how to authenticate")
				if c.token != nil {
					tk := c.token(t)
					if len(tk) > 20 {
						assert.NotContains(t, string(r.Body), tk[len(tk)-20:], "the error does not echo the token")
					}
				}
				return
			}
			if c.then != nil {
				c.then(t, r.object(t))
			}
		})
	}
}

func TestAuthHS256(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	k := testKeys()
	now := time.Now()
	valid := func(t *testing.T) string { return hs(t, nil) }
	cases := []authCase{
		{name: "valid", token: valid, status: 200, then: func(t *testing.T, me map[string]any) {
			assert.Equal(t, "alice", me["user_id"])
			assert.Equal(t, "staff", me["kind"])
			assert.Equal(t, "rep", me["role"])
		}},
		{name: "issued by the server's keys", token: func(t *testing.T) string { return tok(t, manager) }, status: 200,
			then: func(t *testing.T, me map[string]any) { assert.Equal(t, "manager", me["role"]) }},
		{name: "customer", token: func(t *testing.T) string { return hs(t, map[string]any{"kind": "customer", "role": nil}) }, status: 200},
		// A role on a customer's token gives nothing.
		{name: "customer claiming admin", token: func(t *testing.T) string { return hs(t, map[string]any{"kind": "customer", "role": "admin"}) },
			status: 200, then: func(t *testing.T, me map[string]any) { assert.Empty(t, me["role"]) }},
		{name: "wrong secret", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-0123456"), claims(nil))
		}, status: 401},
		{name: "HS512 with the secret", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS512, testSecret, claims(nil))
		}, status: 401},
		{name: "expired", token: func(t *testing.T) string { return hs(t, map[string]any{"exp": now.Add(-time.Hour).Unix()}) }, status: 401},
		{name: "expired long ago", token: func(t *testing.T) string { return hs(t, map[string]any{"exp": 1}) }, status: 401},
		{name: "no exp", token: func(t *testing.T) string { return hs(t, map[string]any{"exp": nil}) }, status: 401},
		{name: "exp not a number", token: func(t *testing.T) string { return hs(t, map[string]any{"exp": "tomorrow"}) }, status: 401},
		{name: "not valid yet", token: func(t *testing.T) string { return hs(t, map[string]any{"nbf": now.Add(time.Hour).Unix()}) }, status: 401},
		{name: "alg none", token: func(t *testing.T) string {
			return unsigned(`{"alg":"none","typ":"JWT"}`, claims(nil), "")
		}, status: 401},
		{name: "alg None", token: func(t *testing.T) string {
			return unsigned(`{"alg":"None","typ":"JWT"}`, claims(nil), "")
		}, status: 401},
		{name: "alg none with a signature", token: func(t *testing.T) string {
			return unsigned(`{"alg":"none","typ":"JWT"}`, claims(nil), strings.Split(hs(t, nil), ".")[2])
		}, status: 401},
		{name: "library none", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))
		}, status: 401},
		{name: "no alg", token: func(t *testing.T) string {
			return unsigned(`{"typ":"JWT"}`, claims(nil), strings.Split(hs(t, nil), ".")[2])
		}, status: 401},
		{name: "RS256 without a configured key", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil))
		}, status: 401},
		{name: "ES256 without a configured key", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, k.ec, claims(nil))
		}, status: 401},
		{name: "tampered payload", token: func(t *testing.T) string {
			return tamper(t, hs(t, nil), claims(map[string]any{"role": "admin"}))
		}, status: 401},
		{name: "kind missing", token: func(t *testing.T) string { return hs(t, map[string]any{"kind": nil}) }, status: 401},
		{name: "kind unknown", token: func(t *testing.T) string { return hs(t, map[string]any{"kind": "vendor"}) }, status: 401},
		{name: "kind capitalised", token: func(t *testing.T) string { return hs(t, map[string]any{"kind": "Staff"}) }, status: 401},
		{name: "kind not a string", token: func(t *testing.T) string { return hs(t, map[string]any{"kind": 1}) }, status: 401},
		{name: "role unknown", token: func(t *testing.T) string { return hs(t, map[string]any{"role": "ceo"}) }, status: 401},
		{name: "role capitalised", token: func(t *testing.T) string { return hs(t, map[string]any{"role": "Admin"}) }, status: 401},
		{name: "role not a string", token: func(t *testing.T) string { return hs(t, map[string]any{"role": true}) }, status: 401},
		{name: "sub missing", token: func(t *testing.T) string { return hs(t, map[string]any{"sub": nil}) }, status: 401},
		{name: "sub empty", token: func(t *testing.T) string { return hs(t, map[string]any{"sub": ""}) }, status: 401},
		{name: "sub control char", token: func(t *testing.T) string { return hs(t, map[string]any{"sub": "al\x00ice"}) }, status: 401},
		{name: "sub too long", token: func(t *testing.T) string { return hs(t, map[string]any{"sub": long(129)}) }, status: 401},
		{name: "name control char", token: func(t *testing.T) string { return hs(t, map[string]any{"name": "Al\nice"}) }, status: 401},
		{name: "garbage", token: func(t *testing.T) string { return "not-a-jwt" }, status: 401},
		{name: "two parts", token: func(t *testing.T) string { return "a.b" }, status: 401},
		{name: "three garbage parts", token: func(t *testing.T) string { return "a.b.c" }, status: 401},
		{name: "four parts", token: func(t *testing.T) string { return hs(t, nil) + ".x" }, status: 401},
		{name: "huge", token: func(t *testing.T) string { return long(40 << 10) }, status: 401},

		{name: "no header", hdr: func(*testing.T) string { return "" }, status: 401},
		{name: "scheme only", hdr: func(*testing.T) string { return "Bearer" }, status: 401},
		{name: "scheme and space", hdr: func(*testing.T) string { return "Bearer " }, status: 401},
		{name: "basic", hdr: func(*testing.T) string { return "Basic YWxpY2U6c2VjcmV0" }, status: 401},
		{name: "other scheme", hdr: func(t *testing.T) string { return "Token " + hs(t, nil) }, status: 401},
		{name: "no scheme", hdr: func(t *testing.T) string { return hs(t, nil) }, status: 401},
		{name: "extra words", hdr: func(t *testing.T) string { return "Bearer " + hs(t, nil) + " extra" }, status: 401},
		{name: "two tokens", hdr: func(t *testing.T) string { return "Bearer " + hs(t, nil) + ", Bearer " + hs(t, nil) }, status: 401},
		{name: "lower-case scheme", hdr: func(t *testing.T) string { return "bearer " + hs(t, nil) }, status: 200},
		{name: "upper-case scheme", hdr: func(t *testing.T) string { return "BEARER " + hs(t, nil) }, status: 200},
	}
	runAuthCases(t, ts, cases)

	// A token in the query string is for the websocket only.
	r := ts.do(t, "GET", "/me?token="+hs(t, nil), "", nil)
	assert.Equal(t, 401, r.Status, "%s", r)
	assertErrorBody(t, r, "")
}

func TestAuthRS256(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ts := newTestServer(t, withPublicKey(t, &k.rsa.PublicKey))
	pemBytes := publicPEM(t, &k.rsa.PublicKey)
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	require.NoError(t, err)
	runAuthCases(t, ts, []authCase{
		{name: "RS256", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil)) }, status: 200,
			then: func(t *testing.T, me map[string]any) { assert.Equal(t, "alice", me["user_id"]) }},
		{name: "HS256 with the secret still", token: func(t *testing.T) string { return hs(t, nil) }, status: 200},
		{name: "RS256 by another key", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, k.rsaOther, claims(nil)) }, status: 401},
		{name: "RS256 expired", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}))
		}, status: 401},
		{name: "RS256 without exp", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"exp": nil}))
		}, status: 401},
		{name: "RS256 unknown kind", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"kind": "robot"}))
		}, status: 401},
		// Algorithm confusion: the public key is public.
		{name: "HS256 signed with the public key PEM", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, pemBytes, claims(nil))
		}, status: 401},
		{name: "HS256 signed with the public key DER", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, der, claims(nil))
		}, status: 401},
		{name: "PS256 with the key", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodPS256, k.rsa, claims(nil)) }, status: 401},
		{name: "RS512 with the key", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodRS512, k.rsa, claims(nil)) }, status: 401},
		{name: "ES256 with an RSA key configured", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, k.ec, claims(nil)) }, status: 401},
		{name: "alg none", token: func(t *testing.T) string { return unsigned(`{"alg":"none"}`, claims(nil), "") }, status: 401},
		{name: "tampered RS256", token: func(t *testing.T) string {
			return tamper(t, sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil)), claims(map[string]any{"role": "admin"}))
		}, status: 401},
	})
}

func TestAuthES256(t *testing.T) {
	t.Parallel()
	k := testKeys()
	ts := newTestServer(t, withPublicKey(t, &k.ec.PublicKey))
	pemBytes := publicPEM(t, &k.ec.PublicKey)
	runAuthCases(t, ts, []authCase{
		{name: "ES256", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, k.ec, claims(nil)) }, status: 200},
		{name: "ES256 customer", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, k.ec, claims(map[string]any{"kind": "customer", "role": nil}))
		}, status: 200, then: func(t *testing.T, me map[string]any) { assert.Equal(t, "customer", me["kind"]) }},
		{name: "ES256 by another key", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, k.ecOther, claims(nil)) }, status: 401},
		{name: "RS256 with an EC key configured", token: func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil)) }, status: 401},
		{name: "HS256 signed with the public key PEM", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, pemBytes, claims(nil))
		}, status: 401},
		{name: "ES256 without exp", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, k.ec, claims(map[string]any{"exp": nil}))
		}, status: 401},
	})
}

func TestAuthIssuerAudience(t *testing.T) {
	t.Parallel()
	const iss, aud = "https://idp.seller.example", "dealroom-api"
	k := testKeys()
	ts := newTestServer(t, withJWT(func(c *jwtauth.Config) { c.Issuer, c.Audience = iss, aud }), withPublicKey(t, &k.rsa.PublicKey))
	rs := func(set map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, k.rsa, claims(set)) }
	}
	runAuthCases(t, ts, []authCase{
		{name: "issued by the server", token: func(t *testing.T) string { return ts.tok(t, staffW) }, status: 200},
		{name: "both right", token: rs(map[string]any{"iss": iss, "aud": aud}), status: 200},
		{name: "audience list", token: rs(map[string]any{"iss": iss, "aud": []string{"other", aud}}), status: 200},
		{name: "neither", token: rs(map[string]any{"aud": nil}), status: 401},
		{name: "no issuer", token: rs(map[string]any{"aud": aud}), status: 401},
		{name: "no audience", token: rs(map[string]any{"iss": iss, "aud": nil}), status: 401},
		{name: "wrong issuer", token: rs(map[string]any{"iss": "https://evil.example", "aud": aud}), status: 401},
		{name: "issuer with a trailing slash", token: rs(map[string]any{"iss": iss + "/", "aud": aud}), status: 401},
		{name: "wrong audience", token: rs(map[string]any{"iss": iss, "aud": "other-app"}), status: 401},
		{name: "HS256 without iss and aud", token: func(t *testing.T) string { return tok(t, staffW) }, status: 401},
		{name: "another application's token from the same provider", token: rs(map[string]any{"iss": iss, "aud": "the-crm"}), status: 401},
		{name: "HS256 with both", token: func(t *testing.T) string { return hs(t, map[string]any{"iss": iss, "aud": aud}) }, status: 200},
	})
}

// TestInviteTokenWorks: the token handed out on invite acceptance is a
// customer token for that person, also when iss and aud are enforced.
func TestInviteTokenWorks(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withJWT(func(c *jwtauth.Config) { c.Issuer, c.Audience = "https://idp.example", "dealroom" }))
	r := ts.do(t, "POST", "/rooms", ts.tok(t, owner), map[string]any{"name": "Deal", "company": "Acme"})
	require.Equal(t, 201, r.Status, "%s", r)
	roomID := r.str(t, "id")
	r = ts.do(t, "POST", "/rooms/"+roomID+"/invites", ts.tok(t, owner), map[string]any{"email": inviteeEmail, "access": "read"})
	require.Equal(t, 201, r.Status, "%s", r)
	code := r.str(t, "code")
	assert.Contains(t, r.str(t, "url"), code)

	r = ts.do(t, "POST", "/invites/"+code+"/accept", "", map[string]any{"name": "Ivy Invitee", "email": inviteeEmail})
	require.Equal(t, 200, r.Status, "%s", r)
	token := r.str(t, "token")
	me := ts.do(t, "GET", "/me", token, nil)
	require.Equal(t, 200, me.Status, "%s", me)
	assert.Equal(t, "customer", me.object(t)["kind"])
	assert.Empty(t, me.object(t)["role"])
	assert.Equal(t, 200, ts.do(t, "GET", "/rooms/"+roomID, token, nil).Status)
	// Read access as invited.
	assert.Equal(t, 403, ts.do(t, "POST", "/rooms/"+roomID+"/messages", token, map[string]any{"body": "hi"}).Status)

	// The same person again: fine, nothing new; someone else: refused.
	n := len(ts.do(t, "GET", "/rooms/"+roomID+"/events", ts.tok(t, owner), nil).items(t))
	r = ts.do(t, "POST", "/invites/"+code+"/accept", "", map[string]any{"name": "Ivy Invitee", "email": inviteeEmail})
	assert.Equal(t, 200, r.Status, "%s", r)
	r = ts.do(t, "POST", "/invites/"+code+"/accept", "", map[string]any{"name": "Eve", "email": "eve@buyer.example"})
	assert.GreaterOrEqual(t, r.Status, 400, "%s", r)
	assert.Less(t, r.Status, 500, "%s", r)
	assert.Equal(t, n, len(ts.do(t, "GET", "/rooms/"+roomID+"/events", ts.tok(t, owner), nil).items(t)))
}

// TestRevokedInvite: a revoked invite lets nobody in.
func TestRevokedInvite(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	ts.must(t, 204, "DELETE", "/rooms/"+f.Room+"/invites/"+f.Invite, staffW, nil)
	n := ts.eventCount(t, f.Room)
	r := ts.do(t, "POST", "/invites/"+f.InviteCode+"/accept", "", map[string]any{"name": "Ivy", "email": inviteeEmail})
	assert.Equal(t, 409, r.Status, "%s", r)
	assertErrorBody(t, r, "")
	assert.Equal(t, n, ts.eventCount(t, f.Room))
}

// Idempotency.

func idem(k string) header { return header{"Idempotency-Key", k} }

func TestIdempotentRetry(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	tasks := "/rooms/" + f.Room + "/tasks"
	body := map[string]any{"title": "Pilot plan", "description": "for @Carl and @nobody", "assignees": []string{custW.ID}}
	n := ts.eventCount(t, f.Room)

	first := ts.must(t, 201, "POST", tasks, staffW, body, idem("create-pilot-1"))
	second := ts.must(t, 201, "POST", tasks, staffW, body, idem("create-pilot-1"))
	assert.JSONEq(t, string(first.Body), string(second.Body), "a retry returns the first result")
	assert.Equal(t, n+1, ts.eventCount(t, f.Room), "and writes nothing new")
	assert.Len(t, ts.must(t, 200, "GET", "/me/tasks?room="+f.Room, custW, nil).items(t), 2, "one task, not two (plus the fixture's)")

	// The same key with another body is a conflict, not a retry.
	r := ts.do(t, "POST", tasks, tok(t, staffW), map[string]any{"title": "Another plan"}, idem("create-pilot-1"))
	assert.Equal(t, 409, r.Status, "%s", r)
	assertErrorBody(t, r, "")
	// So is the same key on another route.
	r = ts.do(t, "POST", "/rooms/"+f.Room+"/messages", tok(t, staffW), map[string]any{"body": "hello"}, idem("create-pilot-1"))
	assert.Equal(t, 409, r.Status, "%s", r)
	assert.Equal(t, n+1, ts.eventCount(t, f.Room))

	// Another actor with the same key: their own write.
	other := ts.must(t, 201, "POST", tasks, owner, body, idem("create-pilot-1"))
	assert.NotEqual(t, first.str(t, "id"), other.str(t, "id"))
	assert.Equal(t, n+2, ts.eventCount(t, f.Room))

	// Without a key, the same body is a new task every time.
	ts.must(t, 201, "POST", tasks, staffW, body)
	assert.Equal(t, n+3, ts.eventCount(t, f.Room))
}

// TestIdempotentMessage: a retried post returns the first answer,
// including what it said about mentions that reached no one.
func TestIdempotentMessage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	msgs := "/rooms/" + f.Room + "/messages"
	body := map[string]any{"body": "@Carl and @Zed, please review"}
	first := ts.must(t, 201, "POST", msgs, staffW, body, idem("m-1"))
	assert.Equal(t, []any{"Zed"}, first.object(t)["unresolved_mentions"])
	n := ts.eventCount(t, f.Room)
	second := ts.must(t, 201, "POST", msgs, staffW, body, idem("m-1"))
	assert.JSONEq(t, string(first.Body), string(second.Body), "a retry returns the first result")
	assert.Equal(t, n, ts.eventCount(t, f.Room))
}

func TestIdempotentUpdateAndDelete(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	task := "/rooms/" + f.Room + "/tasks/" + f.Task
	n := ts.eventCount(t, f.Room)

	first := ts.must(t, 200, "PATCH", task, staffW, map[string]any{"status": "done"}, idem("k-done"))
	second := ts.must(t, 200, "PATCH", task, staffW, map[string]any{"status": "done"}, idem("k-done"))
	assert.JSONEq(t, string(first.Body), string(second.Body))
	assert.Equal(t, n+1, ts.eventCount(t, f.Room))

	ts.must(t, 204, "DELETE", task, staffW, nil, idem("k-del"))
	ts.must(t, 204, "DELETE", task, staffW, nil, idem("k-del"))
	assert.Equal(t, n+2, ts.eventCount(t, f.Room), "a retried delete answers as the first time and deletes once")
	// Without the key, a second delete finds nothing.
	ts.must(t, 404, "DELETE", task, staffW, nil)

	// Room settings and membership.
	room := "/rooms/" + f.Room
	a := ts.must(t, 200, "PATCH", room, owner, map[string]any{"stage": "trust"}, idem("k-stage"))
	b := ts.must(t, 200, "PATCH", room, owner, map[string]any{"stage": "trust"}, idem("k-stage"))
	assert.JSONEq(t, string(a.Body), string(b.Body))
	ts.must(t, 201, "POST", room+"/members", owner, map[string]any{"user_id": "nina", "name": "Nina", "kind": "staff"}, idem("k-nina"))
	ts.must(t, 201, "POST", room+"/members", owner, map[string]any{"user_id": "nina", "name": "Nina", "kind": "staff"}, idem("k-nina"))
	assert.Equal(t, n+4, ts.eventCount(t, f.Room))
}

func TestIdempotentRoomCreation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	body := map[string]any{"name": "Gamma", "company": "Gamma", "template": "tpl_standard"}
	first := ts.must(t, 201, "POST", "/rooms", staffW, body, idem("new-gamma"))
	second := ts.must(t, 201, "POST", "/rooms", staffW, body, idem("new-gamma"))
	assert.Equal(t, first.str(t, "id"), second.str(t, "id"))
	assert.JSONEq(t, string(first.Body), string(second.Body))
	assert.Equal(t, 1, ts.roomCount(t))
	assert.Len(t, ts.events(t, first.str(t, "id"), staffW), 1)

	r := ts.do(t, "POST", "/rooms", tok(t, staffW), map[string]any{"name": "Delta", "company": "Delta"}, idem("new-gamma"))
	assert.Equal(t, 409, r.Status, "%s", r)
	assertErrorBody(t, r, "")
	other := ts.must(t, 201, "POST", "/rooms", owner, body, idem("new-gamma"))
	assert.NotEqual(t, first.str(t, "id"), other.str(t, "id"), "another person's key is their own")
	assert.Equal(t, 2, ts.roomCount(t))
}

func TestIdempotentUpload(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	path := "/rooms/" + f.Room + "/attachments"
	n := ts.eventCount(t, f.Room)
	a := ts.must(t, 201, "POST", path, custW, fileUpload(t, "po.pdf", []byte("purchase order")), idem("up-1"))
	b := ts.must(t, 201, "POST", path, custW, fileUpload(t, "po.pdf", []byte("purchase order")), idem("up-1"))
	assert.JSONEq(t, string(a.Body), string(b.Body))
	assert.Equal(t, n+1, ts.eventCount(t, f.Room))
	r := ts.do(t, "POST", path, tok(t, custW), fileUpload(t, "po.pdf", []byte("another order")), idem("up-1"))
	assert.Equal(t, 409, r.Status, "%s", r)
	assert.Equal(t, n+1, ts.eventCount(t, f.Room))
}

// TestIdempotentInvite: a retried invite is the same invite. Its code is
// only shown once (only its hash is kept), so the retry's answer names the
// invite but carries no code.
func TestIdempotentInvite(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	path := "/rooms/" + f.Room + "/invites"
	n := ts.eventCount(t, f.Room)
	a := ts.must(t, 201, "POST", path, owner, map[string]any{"email": "zoe@buyer.example"}, idem("inv-zoe"))
	b := ts.must(t, 201, "POST", path, owner, map[string]any{"email": "zoe@buyer.example"}, idem("inv-zoe"))
	assert.Equal(t, a.str(t, "id"), b.str(t, "id"))
	assert.Equal(t, n+1, ts.eventCount(t, f.Room))
}

// TestIdempotentConcurrentRetries: many copies of one request at once
// still make one change.
func TestIdempotentConcurrentRetries(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	path := "/rooms/" + f.Room + "/messages"
	n := ts.eventCount(t, f.Room)
	token := tok(t, custW)
	var wg sync.WaitGroup
	bodies := make([]response, 16)
	errs := make([]error, len(bodies))
	for i := range bodies {
		wg.Go(func() {
			bodies[i], errs[i] = ts.send("POST", path, token, map[string]any{"body": "Signed copy attached"}, idem("burst"))
		})
	}
	wg.Wait()
	for i, r := range bodies {
		require.NoError(t, errs[i])
		assert.Equal(t, 201, r.Status, "%s", r)
		assert.JSONEq(t, string(bodies[0].Body), string(r.Body))
	}
	assert.Equal(t, n+1, ts.eventCount(t, f.Room))
}
