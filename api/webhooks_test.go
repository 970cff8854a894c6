package api_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/api"
	"dealroom/boltstore"
	"dealroom/internal/netguard"
	"dealroom/webhook"
)

// newWebhookServer is a test server whose webhooks may point at 10.0.0.0/8
// (named by address, so that no name is looked up).
func newWebhookServer(t *testing.T) *testServer {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	g := netguard.New(netguard.Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	svc := &webhook.Service{Store: st, Rooms: st, Guard: g}
	return newTestServer(t, withAPI(func(c *api.Config) { c.Webhooks = svc }))
}

func TestWebhookAdminRoutes(t *testing.T) {
	ts := newWebhookServer(t)
	r := ts.must(t, http.StatusCreated, "POST", "/admin/webhooks", admin,
		map[string]any{"url": "https://10.1.2.3/hooks", "events": []string{"message.posted"}, "room_tags": []string{"emea"}})
	ep := r.object(t)
	id, secret := ep["id"].(string), ep["secret"].(string)
	assert.True(t, strings.HasPrefix(secret, "whsec_"), "the secret is shown at creation: %s", r)
	assert.Equal(t, false, ep["internal"], "internal events are off by default")

	got := ts.must(t, http.StatusOK, "GET", "/admin/webhooks/"+id, admin, nil)
	assert.NotContains(t, string(got.Body), secret, "not shown again")
	list := ts.must(t, http.StatusOK, "GET", "/admin/webhooks", admin, nil).items(t)
	require.Len(t, list, 1)
	assert.NotContains(t, ts.must(t, http.StatusOK, "GET", "/admin/webhooks", admin, nil).String(), secret)

	up := ts.must(t, http.StatusOK, "PATCH", "/admin/webhooks/"+id, admin, map[string]any{"paused": true, "internal": true}).object(t)
	assert.Equal(t, true, up["paused"])
	assert.Equal(t, true, up["internal"])
	assert.Equal(t, []any{"message.posted"}, up["events"], "fields left out stay")

	rot := ts.must(t, http.StatusOK, "POST", "/admin/webhooks/"+id+"/secret", admin, nil).object(t)
	assert.NotEqual(t, secret, rot["secret"])

	log := ts.must(t, http.StatusOK, "GET", "/admin/webhooks/"+id+"/deliveries", admin, nil).items(t)
	assert.Empty(t, log)
	ts.must(t, http.StatusNotFound, "POST", "/admin/webhooks/"+id+"/replay", admin, map[string]any{"room": "r_nope", "from_seq": 1})
	ts.must(t, http.StatusUnprocessableEntity, "POST", "/admin/webhooks/"+id+"/replay", admin, map[string]any{"room": "r_nope", "from_seq": 0})

	ts.must(t, http.StatusNoContent, "DELETE", "/admin/webhooks/"+id, admin, nil)
	ts.must(t, http.StatusNotFound, "GET", "/admin/webhooks/"+id, admin, nil)
	ts.must(t, http.StatusNotFound, "DELETE", "/admin/webhooks/"+id, admin, nil)
}

func TestWebhookRefusals(t *testing.T) {
	ts := newWebhookServer(t)
	ts.must(t, http.StatusForbidden, "POST", "/admin/webhooks", manager, map[string]any{"url": "https://10.1.2.3/x"})
	ts.must(t, http.StatusForbidden, "POST", "/admin/webhooks", owner, map[string]any{"url": "https://10.1.2.3/x"})
	ts.must(t, http.StatusForbidden, "GET", "/admin/webhooks", custW, nil)
	for _, u := range []string{"https://127.0.0.1/x", "https://192.168.1.1/x", "https://169.254.169.254/x", "http://10.1.2.3/x",
		"https://[::1]/x", "not a url", "https://localhost/x"} {
		r := ts.do(t, "POST", "/admin/webhooks", ts.tok(t, admin), map[string]any{"url": u})
		assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", u, r)
	}
	r := ts.do(t, "POST", "/admin/webhooks", ts.tok(t, admin), map[string]any{"url": "https://10.1.2.3/x", "events": []string{"nope"}})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r)
	r = ts.do(t, "POST", "/admin/webhooks", ts.tok(t, admin), map[string]any{"url": "https://10.1.2.3/x", "secret": "mine"})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "the server makes the secret: %s", r)
	r = ts.do(t, "POST", "/admin/webhooks", ts.tok(t, admin), map[string]any{"url": "https://10.1.2.3/x", "events": nil})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r)
	assert.Empty(t, ts.must(t, http.StatusOK, "GET", "/admin/webhooks", admin, nil).items(t), "nothing made")
	id := ts.must(t, http.StatusCreated, "POST", "/admin/webhooks", admin, map[string]any{"url": "https://10.1.2.3/x"}).str(t, "id")
	for _, f := range []string{"url", "events", "room_tags", "internal", "paused"} {
		r := ts.do(t, "PATCH", "/admin/webhooks/"+id, ts.tok(t, admin), map[string]any{f: nil})
		assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: null: %s", f, r)
	}
	r = ts.do(t, "GET", "/admin/webhooks/"+id+"/deliveries?limit=0", ts.tok(t, admin), nil)
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r)
}

// TestWebhookCreateIdempotencyKey: an admin's client that retries a
// create whose answer was lost gets the endpoint made the first time,
// secret included, and no second endpoint; the key with other settings
// is a conflict.
func TestWebhookCreateIdempotencyKey(t *testing.T) {
	ts := newWebhookServer(t)
	body := map[string]any{"url": "https://10.1.2.3/hooks", "events": []string{"task.updated"}}
	first := ts.must(t, http.StatusCreated, "POST", "/admin/webhooks", admin, body, idem("crm-hook-1")).object(t)
	again := ts.must(t, http.StatusCreated, "POST", "/admin/webhooks", admin, body, idem("crm-hook-1")).object(t)
	assert.Equal(t, first["id"], again["id"])
	assert.Equal(t, first["secret"], again["secret"], "the retry can sign-check like the first answer")
	require.Len(t, ts.must(t, http.StatusOK, "GET", "/admin/webhooks", admin, nil).items(t), 1, "one endpoint")

	other := map[string]any{"url": "https://10.9.9.9/hooks"}
	r := ts.must(t, http.StatusConflict, "POST", "/admin/webhooks", admin, other, idem("crm-hook-1"))
	assert.Contains(t, r.String(), "Idempotency-Key")
	ts.must(t, http.StatusCreated, "POST", "/admin/webhooks", admin, other, idem("crm-hook-2"))
	ts.must(t, http.StatusCreated, "POST", "/admin/webhooks", admin, other)
	require.Len(t, ts.must(t, http.StatusOK, "GET", "/admin/webhooks", admin, nil).items(t), 3)
	ts.must(t, http.StatusBadRequest, "POST", "/admin/webhooks", admin, other, idem("has space"))
	require.Len(t, ts.must(t, http.StatusOK, "GET", "/admin/webhooks", admin, nil).items(t), 3, "a bad key makes nothing")
}
