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
	"dealroom/ws"
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
// tokens it issued, on every instance: REST and new websockets are
// refused, and the websockets open with them are closed with 4003, those
// that follow the room and those that do not, on the instance that
// revoked and on the others.
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
	following := c.dial(n1, carol)
	following.subscribe(r.ID, 0)
	following.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })
	idleHere, idleThere := c.dial(n0, carol), c.dial(n1, carol)
	// Carol's other sign-in (not through this invite) stays.
	otherSignIn := c.dial(n1, dealroom.Actor{ID: me.UserID, Name: "Carol", Kind: dealroom.Customer})
	otherSignIn.subscribe(r.ID, 0)
	otherSignIn.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })
	for _, d := range []*wsClient{idleHere, idleThere} {
		d.send(map[string]any{"type": "ping", "id": "p"})
		d.until(5*time.Second, "pong", func(f frame) bool { return f.Type == "pong" })
	}

	require.Equal(t, 204, c.rest(n0, alice, "DELETE", "/rooms/"+r.ID+"/invites/"+inv.ID, nil, nil))

	for _, n := range []*node{n0, n1} {
		assert.Equal(t, 401, getWith(t, n, token, "/rooms/"+r.ID), "REST with a token of the revoked invite")
		assert.Equal(t, 401, getWith(t, n, token, "/me"))
	}
	_, err = c.tryDial(n0, carol, nil)
	require.Error(t, err, "a new websocket with a token of the revoked invite")
	assert.Contains(t, err.Error(), "401")

	for name, d := range map[string]*wsClient{"following the room": following,
		"idle, on the instance that revoked": idleHere, "idle, on another instance": idleThere} {
		code, reason := closeOf(t, d)
		assert.Equal(t, ws.StatusSignedOut, code, name)
		assert.EqualValues(t, 4003, code, name)
		assert.Contains(t, reason, "signed out", name)
	}
	ans := otherSignIn.command("other-sign-in", r.ID, "message.post", map[string]any{"body": "from my other sign-in"})
	require.Equal(t, "ack", ans.Type, "another sign-in of the person is not the invite's: %s", ans.raw)
	var msgs struct{ Items []map[string]any }
	require.Equal(t, 200, c.rest(n0, alice, "GET", "/rooms/"+r.ID+"/messages", nil, &msgs))
	assert.Len(t, msgs.Items, 1, "only the other sign-in's message")

	// The repeat accept that would mint a fresh token is refused too.
	status, _ = acceptInvite(t, n0, inv.Code, "Carol", "carol@acme.example")
	assert.Equal(t, 409, status)
}
