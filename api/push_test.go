package api_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/api"
	"dealroom/boltstore"
	"dealroom/internal/netguard"
	"dealroom/push"
)

func newPushServer(t *testing.T) (*testServer, push.Keys) {
	st, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	keys, err := push.GenerateKeys()
	require.NoError(t, err)
	ts := newTestServer(t, withAPI(func(c *api.Config) {
		c.Push = &api.PushDevices{Store: st, PublicKey: keys.Public, Guard: netguard.New(netguard.Config{})}
	}))
	return ts, keys
}

// browserKeys are keys as a browser makes them for a subscription.
func browserKeys(t *testing.T) (p256dh, auth string) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	secret := make([]byte, 16)
	rand.Read(secret)
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(secret)
}

func TestPushSubscriptions(t *testing.T) {
	ts, keys := newPushServer(t)
	r := ts.must(t, http.StatusOK, "GET", "/push/key", custW, nil)
	assert.Equal(t, keys.Public, r.str(t, "public_key"))

	p, a := browserKeys(t)
	const ep = "https://fcm.googleapis.com/fcm/send/device-one"
	r = ts.must(t, http.StatusCreated, "POST", "/me/push-subscriptions", custW,
		map[string]any{"endpoint": ep, "keys": map[string]string{"p256dh": p, "auth": a}})
	id := r.str(t, "id")
	assert.Equal(t, ep, r.str(t, "endpoint"))
	assert.NotContains(t, string(r.Body), a, "the secret is not sent back")
	ts.must(t, http.StatusCreated, "POST", "/me/push-subscriptions", custW,
		map[string]any{"endpoint": ep, "keys": map[string]string{"p256dh": p, "auth": a}})

	r = ts.must(t, http.StatusOK, "GET", "/me/push-subscriptions", custW, nil)
	subs := r.object(t)["subscriptions"].([]any)
	require.Len(t, subs, 1, "the same device once")
	assert.Equal(t, id, subs[0].(map[string]any)["id"])
	r = ts.must(t, http.StatusOK, "GET", "/me/push-subscriptions", staffW, nil)
	assert.Empty(t, r.object(t)["subscriptions"], "one's own only")

	ts.must(t, http.StatusNotFound, "DELETE", "/me/push-subscriptions/"+id, staffW, nil)
	ts.must(t, http.StatusNoContent, "DELETE", "/me/push-subscriptions/"+id, custW, nil)
	ts.must(t, http.StatusNotFound, "DELETE", "/me/push-subscriptions/"+id, custW, nil)
	r = ts.must(t, http.StatusOK, "GET", "/me/push-subscriptions", custW, nil)
	assert.Empty(t, r.object(t)["subscriptions"])
	assert.Equal(t, http.StatusUnauthorized, ts.do(t, "GET", "/me/push-subscriptions", "", nil).Status)
}

// TestPushSubscriptionInput: every bad subscription is a clear 4xx that
// keeps nothing; endpoints the server must not post to (SSRF) included.
func TestPushSubscriptionInput(t *testing.T) {
	ts, _ := newPushServer(t)
	p, a := browserKeys(t)
	const ep = "https://updates.push.services.mozilla.com/wpush/v2/abc"
	sub := func(endpoint, p256dh, auth string) map[string]any {
		return map[string]any{"endpoint": endpoint, "keys": map[string]string{"p256dh": p256dh, "auth": auth}}
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"http", sub("http://updates.push.services.mozilla.com/x", p, a), 422, "endpoint"},
		{"loopback", sub("https://127.0.0.1:8443/x", p, a), 422, "endpoint"},
		{"private", sub("https://10.1.2.3/x", p, a), 422, "endpoint"},
		{"metadata", sub("https://169.254.169.254/latest/meta-data/", p, a), 422, "endpoint"},
		{"ipv6 loopback", sub("https://[::1]/x", p, a), 422, "endpoint"},
		{"not a url", sub("push me", p, a), 422, "endpoint"},
		{"long", sub("https://push.example/"+strings.Repeat("x", 3000), p, a), 422, "endpoint"},
		{"short key", sub(ep, a, a), 422, "keys.p256dh"},
		{"not base64url", sub(ep, strings.ReplaceAll(p, "A", "+")+"+", a), 422, "keys.p256dh"},
		{"auth of 15 bytes", sub(ep, p, base64.RawURLEncoding.EncodeToString(make([]byte, 15))), 422, "keys.auth"},
		{"no keys", map[string]any{"endpoint": ep}, 422, "keys.p256dh"},
		{"unknown field", map[string]any{"endpoint": ep, "keys": map[string]string{"p256dh": p, "auth": a}, "x": 1}, 422, "x"},
		{"not json", raw("{"), 400, ""},
	} {
		r := ts.do(t, "POST", "/me/push-subscriptions", tok(t, custW), tc.body)
		if assert.Equal(t, tc.status, r.Status, "%s: %s", tc.name, r) {
			assertErrorBody(t, r, tc.field)
		}
	}
	r := ts.must(t, http.StatusOK, "GET", "/me/push-subscriptions", custW, nil)
	assert.Empty(t, r.object(t)["subscriptions"], "nothing kept")

	for i := range push.MaxPerUser {
		ts.must(t, http.StatusCreated, "POST", "/me/push-subscriptions", custW, sub(ep+strings.Repeat("x", i), p, a))
	}
	r = ts.do(t, "POST", "/me/push-subscriptions", tok(t, custW), sub(ep+"-one-more", p, a))
	assert.Equal(t, http.StatusConflict, r.Status, "%s", r)
}

func TestPushRoutesWithoutPush(t *testing.T) {
	ts := newTestServer(t)
	ts.must(t, http.StatusNotFound, "GET", "/push/key", custW, nil)
	ts.must(t, http.StatusNotFound, "GET", "/me/push-subscriptions", custW, nil)
}
