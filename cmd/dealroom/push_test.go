package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/push"
	"dealroom/push/pushtest"
)

// openPushApp starts an App in the process that pushes (and has no mail)
// with the settings e adds, on dataDir.
func openPushApp(t *testing.T, dataDir string, e env) *App {
	t.Helper()
	base := env{"DEALROOM_ADDR": "127.0.0.1:0", "DEALROOM_DATA_DIR": dataDir, "DEALROOM_JWT_SECRET": processSecret,
		"DEALROOM_RATE_LIMIT": "1000000", "DEALROOM_PUBLIC_URL": "https://deals.example.com", "DEALROOM_NOTIFY_DELAY": "0s"}
	for k, v := range e {
		base[k] = v
	}
	cfg, err := parseConfig("dealroom serve", nil, base.get, &bytes.Buffer{})
	require.NoError(t, err)
	app := &App{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	require.NoError(t, app.Open(context.Background()))
	t.Cleanup(func() { app.Close() })
	return app
}

// TestPushThroughTheServer: a device turned on through the API gets a
// mention pushed by the server, without any mail configured; the push
// service is reached only because the settings allow 127.0.0.1 and trust
// its certificate.
func TestPushThroughTheServer(t *testing.T) {
	svc := pushtest.StartService(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, svc.CertificatePEM(), 0o600))
	app := openPushApp(t, t.TempDir(), env{"DEALROOM_OUTBOUND_ALLOW": "127.0.0.1", "DEALROOM_OUTBOUND_CA_FILE": ca,
		"DEALROOM_VAPID_SUBJECT": "mailto:ops@deals.example.com"})
	c := &client{base: "http://" + app.Addr(), http: &http.Client{Timeout: 30 * time.Second}}
	ta, tb := tokenFor(t, alice), tokenFor(t, bob)

	key := field(t, c.must(t, http.StatusOK, http.MethodGet, "/api/v1/push/key", tb, nil, ""), "public_key")
	dev := svc.NewDevice(t)
	c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/me/push-subscriptions", tb,
		map[string]any{"endpoint": dev.Endpoint, "keys": map[string]string{"p256dh": dev.P256dh, "auth": dev.Auth}}, "")

	roomID := field(t, c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms", ta,
		map[string]any{"name": "Acme renewal", "company": "Acme Corp"}, ""), "id")
	rp := "/api/v1/rooms/" + roomID
	c.must(t, http.StatusCreated, http.MethodPost, rp+"/members", ta,
		map[string]any{"user_id": "bob", "name": bob.Name, "kind": "staff", "access": "write"}, "")
	c.must(t, http.StatusCreated, http.MethodPost, rp+"/messages", ta, map[string]any{"body": "@Bob Engineer the quote is ready"}, "")

	require.Eventually(t, func() bool { return len(svc.Received(dev)) > 0 }, 30*time.Second, 10*time.Millisecond)
	m := svc.Received(dev)[0]
	require.NoError(t, m.Err)
	assert.Equal(t, key, m.VAPID.Key)
	assert.Equal(t, "mailto:ops@deals.example.com", m.VAPID.Sub)
	var n push.Notification
	require.NoError(t, json.Unmarshal(m.Plain, &n))
	assert.Equal(t, "Alice Rep mentioned you in Acme renewal", n.Title)
	assert.Equal(t, "https://deals.example.com/room/"+roomID+"/discussion", n.URL)
}

// TestPushRefusesPrivateEndpoints: without DEALROOM_OUTBOUND_ALLOW an
// endpoint on loopback, a private network or link-local is refused.
func TestPushRefusesPrivateEndpoints(t *testing.T) {
	app := openPushApp(t, t.TempDir(), nil)
	c := &client{base: "http://" + app.Addr(), http: &http.Client{Timeout: 30 * time.Second}}
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	p256dh := base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes())
	auth := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	for _, ep := range []string{"https://127.0.0.1:8443/push/d1", "https://10.0.0.7/push", "https://169.254.169.254/latest/meta-data",
		"https://[::1]/push", "http://push.example.com/x"} {
		c.must(t, http.StatusUnprocessableEntity, http.MethodPost, "/api/v1/me/push-subscriptions", tokenFor(t, bob),
			map[string]any{"endpoint": ep, "keys": map[string]string{"p256dh": p256dh, "auth": auth}}, "")
	}
}

// TestVAPIDKeysKept: the key pair made at the first start is the one of
// the next start; a configured private key wins.
func TestVAPIDKeysKept(t *testing.T) {
	dir := t.TempDir()
	keyOf := func(app *App) string {
		c := &client{base: "http://" + app.Addr(), http: &http.Client{Timeout: 30 * time.Second}}
		return field(t, c.must(t, http.StatusOK, http.MethodGet, "/api/v1/push/key", tokenFor(t, bob), nil, ""), "public_key")
	}
	app := openPushApp(t, dir, nil)
	first := keyOf(app)
	require.NoError(t, app.Close())
	app = openPushApp(t, dir, nil)
	assert.Equal(t, first, keyOf(app), "the same pair after a restart")
	require.NoError(t, app.Close())

	mine, err := push.GenerateKeys()
	require.NoError(t, err)
	app = openPushApp(t, dir, env{"DEALROOM_VAPID_PRIVATE_KEY": mine.Private})
	assert.Equal(t, mine.Public, keyOf(app))

	_, err = parseConfig("dealroom serve", nil, env{"DEALROOM_VAPID_PRIVATE_KEY": "short"}.get, &bytes.Buffer{})
	assert.ErrorContains(t, err, "DEALROOM_VAPID_PRIVATE_KEY")
	_, err = parseConfig("dealroom serve", nil, env{"DEALROOM_OUTBOUND_ALLOW": "localhost"}.get, &bytes.Buffer{})
	assert.ErrorContains(t, err, "DEALROOM_OUTBOUND_ALLOW")
	_, err = parseConfig("dealroom serve", nil, env{"DEALROOM_VAPID_SUBJECT": "ops@example.com"}.get, &bytes.Buffer{})
	assert.ErrorContains(t, err, "DEALROOM_VAPID_SUBJECT")
}
