package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/netguard"
	"dealroom/push"
	"dealroom/push/pushtest"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// loopback is the guard of the tests: their push service is on 127.0.0.1.
func loopback(t *testing.T, svc *pushtest.Service) *netguard.Guard {
	allow, err := netguard.ParseAllow("127.0.0.1")
	require.NoError(t, err)
	return netguard.New(netguard.Config{Allow: allow, TLS: svc.TLS()})
}

func TestSendIsEncryptedAndSigned(t *testing.T) {
	svc := pushtest.StartService(t)
	g := loopback(t, svc)
	keys, err := push.GenerateKeys()
	require.NoError(t, err)
	c, err := push.NewClient(keys, "mailto:ops@example.com", g, 0)
	require.NoError(t, err)
	dev := svc.NewDevice(t)
	sub, err := push.NewSubscription(g, "ana", dev.Endpoint, dev.P256dh, dev.Auth, t0)
	require.NoError(t, err)

	n := push.Notification{Title: "Alice mentioned you in Acme", Body: "Ready to sign?",
		URL: "https://deals.example.com/room/r1/discussion", Tag: "o123"}
	before := time.Now()
	require.NoError(t, c.Send(context.Background(), sub, n, push.UrgencyHigh))

	got := svc.Received(dev)
	require.Len(t, got, 1)
	m := got[0]
	require.NoError(t, m.Err, "the message decrypts with the device's keys and its VAPID JWT verifies")
	var back push.Notification
	require.NoError(t, json.Unmarshal(m.Plain, &back))
	assert.Equal(t, n, back)
	assert.Equal(t, keys.Public, m.VAPID.Key, "signed with the server's VAPID key")
	assert.Equal(t, svc.URL(), m.VAPID.Aud, "aud is the endpoint's origin")
	assert.Equal(t, "mailto:ops@example.com", m.VAPID.Sub)
	assert.True(t, m.VAPID.Exp.After(before) && m.VAPID.Exp.Before(before.Add(24*time.Hour)), "exp within 24 h: %v", m.VAPID.Exp)
	assert.Equal(t, "86400", m.Header.Get("TTL"))
	assert.Equal(t, "high", m.Header.Get("Urgency"))
	assert.Equal(t, "o123", m.Header.Get("Topic"))
}

func TestSendAnswers(t *testing.T) {
	svc := pushtest.StartService(t)
	g := loopback(t, svc)
	keys, _ := push.GenerateKeys()
	c, err := push.NewClient(keys, "https://deals.example.com", g, time.Hour)
	require.NoError(t, err)
	dev := svc.NewDevice(t)
	sub, err := push.NewSubscription(g, "ana", dev.Endpoint, dev.P256dh, dev.Auth, t0)
	require.NoError(t, err)
	n := push.Notification{Title: "t", URL: "https://deals.example.com/room/r1"}
	ctx := context.Background()

	for _, tc := range []struct {
		status int
		check  func(error) bool
		what   string
	}{
		{http.StatusGone, func(err error) bool { return errors.Is(err, push.ErrGone) }, "gone"},
		{http.StatusNotFound, func(err error) bool { return errors.Is(err, push.ErrGone) }, "gone"},
		{http.StatusTooManyRequests, func(err error) bool { return dealroom.ErrorCode(err) == dealroom.EUNAVAILABLE }, "later"},
		{http.StatusServiceUnavailable, func(err error) bool { return dealroom.ErrorCode(err) == dealroom.EUNAVAILABLE }, "later"},
		{http.StatusBadRequest, func(err error) bool {
			return err != nil && !errors.Is(err, push.ErrGone) && dealroom.ErrorCode(err) != dealroom.EUNAVAILABLE
		}, "refused"},
		{http.StatusForbidden, func(err error) bool {
			return err != nil && !errors.Is(err, push.ErrGone) && dealroom.ErrorCode(err) != dealroom.EUNAVAILABLE
		}, "refused"},
	} {
		svc.Answer(dev, tc.status)
		err := c.Send(ctx, sub, n, push.UrgencyNormal)
		assert.True(t, tc.check(err), "%d: %v, want %s", tc.status, err, tc.what)
	}
	assert.NoError(t, c.Send(ctx, sub, n, push.UrgencyNormal))
	for _, m := range svc.Received(dev) {
		assert.NoError(t, m.Err)
		assert.Equal(t, "3600", m.Header.Get("TTL"))
		assert.Equal(t, "https://deals.example.com", m.VAPID.Sub)
	}

	big := n
	big.Body = strings.Repeat("x", 4000)
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(c.Send(ctx, sub, big, "")), "a payload too large for a push service")
}

// TestSendRefusesPrivateAddresses: without the allow-list the push
// service on 127.0.0.1 is not reached, and the refusal is for good.
func TestSendRefusesPrivateAddresses(t *testing.T) {
	svc := pushtest.StartService(t)
	keys, _ := push.GenerateKeys()
	c, err := push.NewClient(keys, "mailto:ops@example.com", netguard.New(netguard.Config{TLS: svc.TLS()}), 0)
	require.NoError(t, err)
	dev := svc.NewDevice(t)
	sub := push.Subscription{ID: push.IDOf(dev.Endpoint), User: "ana", Endpoint: dev.Endpoint, P256dh: dev.P256dh, Auth: dev.Auth}
	err = c.Send(context.Background(), sub, push.Notification{Title: "t", URL: "https://x.example/"}, "")
	require.Error(t, err)
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), "%v", err)
	assert.Empty(t, svc.All())
}

func TestNewSubscription(t *testing.T) {
	g := netguard.New(netguard.Config{})
	svc := pushtest.StartService(t)
	dev := svc.NewDevice(t)
	const ep = "https://fcm.googleapis.com/fcm/send/abc:def"
	padded := dev.P256dh + strings.Repeat("=", (4-len(dev.P256dh)%4)%4)
	s, err := push.NewSubscription(g, "ana", ep, padded, dev.Auth+"==", t0)
	require.NoError(t, err, "padded base64url is taken")
	assert.Equal(t, push.Subscription{ID: push.IDOf(ep), User: "ana", Endpoint: ep, P256dh: dev.P256dh, Auth: dev.Auth, CreatedAt: t0}, s)

	notOnCurve := "BA" + strings.Repeat("A", 85) // 65 bytes, not a point
	for _, tc := range []struct {
		endpoint, p256dh, auth, field string
	}{
		{"http://fcm.googleapis.com/x", dev.P256dh, dev.Auth, "endpoint"},
		{"https://127.0.0.1:8443/x", dev.P256dh, dev.Auth, "endpoint"},
		{"https://10.0.0.5/x", dev.P256dh, dev.Auth, "endpoint"},
		{"https://169.254.169.254/latest/meta-data", dev.P256dh, dev.Auth, "endpoint"},
		{"https://[::1]/x", dev.P256dh, dev.Auth, "endpoint"},
		{"https://" + strings.Repeat("a", 3000) + ".example/x", dev.P256dh, dev.Auth, "endpoint"},
		{"not a url", dev.P256dh, dev.Auth, "endpoint"},
		{ep, dev.Auth, dev.Auth, "keys.p256dh"},
		{ep, "not+base64/url", dev.Auth, "keys.p256dh"},
		{ep, notOnCurve, dev.Auth, "keys.p256dh"},
		{ep, "", dev.Auth, "keys.p256dh"},
		{ep, dev.P256dh, dev.Auth + "AAAA", "keys.auth"},
		{ep, dev.P256dh, "", "keys.auth"},
		{ep, dev.P256dh, "a+b/c+d/e+f/g+h/i+j/kw", "keys.auth"},
	} {
		_, err := push.NewSubscription(g, "ana", tc.endpoint, tc.p256dh, tc.auth, t0)
		var de *dealroom.Error
		if assert.ErrorAs(t, err, &de, "%+v", tc) {
			assert.Equal(t, dealroom.EINVALID, de.Code)
			assert.Equal(t, tc.field, de.Field, "%+v", tc)
		}
	}
}

func TestKeys(t *testing.T) {
	k, err := push.GenerateKeys()
	require.NoError(t, err)
	back, err := push.KeysOf(k.Private)
	require.NoError(t, err)
	assert.Equal(t, k, back)
	for _, bad := range []string{"", "short", strings.Repeat("A", 43), k.Public} {
		_, err := push.KeysOf(bad)
		assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err), "%q", bad)
	}
	_, err = push.NewClient(k, "ops@example.com", netguard.New(netguard.Config{}), 0)
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err), "a subject that is not a URI")
}
