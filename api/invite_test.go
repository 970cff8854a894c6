package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
)

// acceptInvite accepts an invite by its code, as the customer's browser
// does (no token), and returns the answer's status and token.
func acceptInvite(t *testing.T, n *node, code, name, email string) (int, string) {
	t.Helper()
	body, err := json.Marshal(map[string]string{"name": name, "email": email})
	require.NoError(t, err)
	resp, err := http.Post(n.URL+"/api/v1/invites/"+code+"/accept", "application/json", strings.NewReader(string(body)))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	}
	return resp.StatusCode, out.Token
}

func getWith(t *testing.T, n *node, token, path string) int {
	t.Helper()
	req, err := http.NewRequest("GET", n.URL+"/api/v1"+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRevokedInviteEndsItsTokens: revoking an accepted invite ends the
// tokens it issued, on every instance, for REST, for new websockets and
// for commands and subscriptions on websockets opened before.
func TestRevokedInviteEndsItsTokens(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	n0, n1 := c.Nodes[0], c.Nodes[1]
	alice := dealroom.Actor{ID: "alice", Name: "Alice Rep", Kind: dealroom.Staff, Role: dealroom.Rep}
	var r struct{ ID string }
	require.Equal(t, 201, c.rest(n0, alice, "POST", "/rooms", map[string]any{"name": "Acme", "company": "Acme"}, &r))
	var inv struct{ ID, Code string }
	require.Equal(t, 201, c.rest(n0, alice, "POST", "/rooms/"+r.ID+"/invites", map[string]any{"email": "carol@acme.example"}, &inv))
	status, token := acceptInvite(t, n0, inv.Code, "Carol", "carol@acme.example")
	require.Equal(t, 200, status)
	assert.Equal(t, 200, getWith(t, n1, token, "/rooms/"+r.ID))

	// The same person's device, opened with a token of that invite.
	var me struct {
		UserID string `json:"user_id"`
	}
	req, _ := http.NewRequest("GET", n0.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&me))
	resp.Body.Close()
	carol := dealroom.Actor{ID: me.UserID, Name: "Carol", Kind: dealroom.Customer, Invite: inv.ID}
	dev := c.dial(n1, carol)
	dev.subscribe(r.ID, 0)
	dev.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })

	require.Equal(t, 204, c.rest(n0, alice, "DELETE", "/rooms/"+r.ID+"/invites/"+inv.ID, nil, nil))

	for _, n := range []*node{n0, n1} {
		assert.Equal(t, 401, getWith(t, n, token, "/rooms/"+r.ID), "REST with a token of the revoked invite")
		assert.Equal(t, 401, getWith(t, n, token, "/me"))
	}
	_, err = c.tryDial(n0, carol, nil)
	require.Error(t, err, "a new websocket with a token of the revoked invite")
	assert.Contains(t, err.Error(), "401")

	ans := dev.command("after-revoke", r.ID, "message.post", map[string]any{"body": "still here?"})
	require.Equal(t, "error", ans.Type, "a command on a websocket opened before the revocation: %s", ans.raw)
	assert.Equal(t, "unauthenticated", ans.Error.Code)
	var msgs struct{ Items []map[string]any }
	require.Equal(t, 200, c.rest(n0, alice, "GET", "/rooms/"+r.ID+"/messages", nil, &msgs))
	assert.Empty(t, msgs.Items, "the refused command wrote nothing")

	// The repeat accept that would mint a fresh token is refused too.
	status, _ = acceptInvite(t, n0, inv.Code, "Carol", "carol@acme.example")
	assert.Equal(t, 409, status)
}
