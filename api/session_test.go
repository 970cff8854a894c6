package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/api"
	"dealroom/internal/testclock"
	"dealroom/ws"
)

// browser is one browser's session: its cookie and the CSRF token the
// page was given.
type browser struct {
	Cookie string // the dealroom_session cookie's value
	CSRF   string
}

// signIn exchanges a's token for a session, as the page does after an
// invite or with a pasted token.
func (ts *testServer) signIn(tb testing.TB, a dealroom.Actor) browser {
	tb.Helper()
	r := ts.do(tb, "POST", "/session", "", map[string]any{"token": ts.tok(tb, a)})
	require.Equal(tb, http.StatusCreated, r.Status, "%s", r)
	return browserOf(tb, r)
}

func browserOf(tb testing.TB, r response) browser {
	tb.Helper()
	var b browser
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == "dealroom_session" {
			b.Cookie = ck.Value
		}
	}
	require.NotEmpty(tb, b.Cookie, "the answer sets the session cookie")
	b.CSRF, _ = r.object(tb)["csrf_token"].(string)
	require.NotEmpty(tb, b.CSRF)
	return b
}

// do sends a request signed in by the browser's cookie alone; withCSRF
// adds its CSRF token.
func (b browser) do(tb testing.TB, ts *testServer, withCSRF bool, method, path string, body any) response {
	tb.Helper()
	hdrs := []header{{"Cookie", "dealroom_session=" + b.Cookie}}
	if withCSRF {
		hdrs = append(hdrs, header{"X-CSRF-Token", b.CSRF})
	}
	return ts.do(tb, method, path, "", body, hdrs...)
}

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)

	r := ts.do(t, "POST", "/session", "", map[string]any{"token": ts.tok(t, staffW)})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	var set *http.Cookie
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		set = ck
	}
	require.NotNil(t, set)
	assert.Equal(t, "dealroom_session", set.Name)
	assert.True(t, set.HttpOnly, "scripts cannot read the cookie")
	assert.Equal(t, http.SameSiteLaxMode, set.SameSite)
	assert.Equal(t, "/", set.Path)
	assert.False(t, set.Secure, "served over plain HTTP, with no https public address")
	body := r.object(t)
	user, _ := body["user"].(map[string]any)
	assert.Equal(t, staffW.ID, user["user_id"])
	assert.NotContains(t, string(r.Body), set.Value, "the token is in the cookie only")
	b := browserOf(t, r)

	// Reading needs the cookie only.
	base := "/rooms/" + f.Room
	assert.Equal(t, http.StatusOK, b.do(t, ts, false, "GET", base, nil).Status)
	got := b.do(t, ts, false, "GET", "/session", nil)
	require.Equal(t, http.StatusOK, got.Status, "%s", got)
	assert.Equal(t, b.CSRF, got.str(t, "csrf_token"), "a reloaded page gets its CSRF token again")

	// Writing needs the CSRF token too.
	n := ts.eventCount(t, f.Room)
	post := map[string]any{"body": "signed in by a cookie"}
	r = b.do(t, ts, false, "POST", base+"/messages", post)
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r)
	assertErrorBody(t, r, "")
	assert.Contains(t, string(r.Body), "X-CSRF-Token", "the refusal says what is missing")
	r = ts.do(t, "POST", base+"/messages", "", post, header{"Cookie", "dealroom_session=" + b.Cookie}, header{"X-CSRF-Token", b.CSRF + "x"})
	assert.Equal(t, http.StatusForbidden, r.Status, "a wrong CSRF token: %s", r)
	r = ts.do(t, "POST", base+"/messages", "", post, header{"Cookie", "dealroom_session=" + b.Cookie}, header{"X-CSRF-Token", ts.signIn(t, staffW).CSRF})
	assert.Equal(t, http.StatusForbidden, r.Status, "another session's CSRF token: %s", r)
	r = b.do(t, ts, false, "DELETE", base+"/invites/"+f.Invite, nil)
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r)
	assert.Equal(t, n, ts.eventCount(t, f.Room), "nothing was written")

	r = b.do(t, ts, true, "POST", base+"/messages", post)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	assert.Equal(t, n+1, ts.eventCount(t, f.Room))
	msg := ts.must(t, http.StatusOK, "GET", base+"/messages/"+r.str(t, "id"), staffW, nil)
	assert.Equal(t, staffW.ID, msg.str(t, "author"), "written as the session's user")

	// A bearer token needs no CSRF token: nothing sends it on its own.
	ts.must(t, http.StatusCreated, "POST", base+"/messages", staffW, post)
	// With both, the Authorization header alone counts.
	r = ts.do(t, "POST", base+"/messages", ts.tok(t, staffW), post, header{"Cookie", "dealroom_session=" + b.Cookie})
	assert.Equal(t, http.StatusCreated, r.Status, "%s", r)

	// Signing out needs the CSRF token, ends the session and clears the cookie.
	assert.Equal(t, http.StatusForbidden, b.do(t, ts, false, "DELETE", "/session", nil).Status)
	assert.Equal(t, http.StatusOK, b.do(t, ts, false, "GET", base, nil).Status, "still signed in")
	r = b.do(t, ts, true, "DELETE", "/session", nil)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r)
	cleared := (&http.Response{Header: r.Header}).Cookies()
	require.Len(t, cleared, 1)
	assert.Equal(t, "dealroom_session", cleared[0].Name)
	assert.Less(t, cleared[0].MaxAge, 0, "the cookie is cleared")
	for _, path := range []string{base, "/session", "/me"} {
		r = b.do(t, ts, false, "GET", path, nil)
		assert.Equal(t, http.StatusUnauthorized, r.Status, "%s after sign-out: %s", path, r)
	}
	assert.Equal(t, http.StatusUnauthorized, b.do(t, ts, true, "POST", base+"/messages", post).Status)
}

func TestSessionExchange(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withAPI(func(c *api.Config) { c.PublicURL = "https://deals.example.com" }))

	r := ts.do(t, "POST", "/session", "", map[string]any{"token": ts.tok(t, staffW)})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	cks := (&http.Response{Header: r.Header}).Cookies()
	require.Len(t, cks, 1)
	assert.True(t, cks[0].Secure, "people reach the server by https: the cookie travels over TLS only")
	exp, err := time.Parse(time.RFC3339, r.str(t, "expires_at"))
	require.NoError(t, err)
	assert.False(t, exp.After(time.Now().Add(time.Hour+time.Minute)), "the session ends with the token it came from (an hour)")

	r = ts.do(t, "POST", "/session", "", map[string]any{"token": "not-a-token"})
	assert.Equal(t, http.StatusUnauthorized, r.Status, "%s", r)
	r = ts.do(t, "POST", "/session", "", map[string]any{})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r)
	assertErrorBody(t, r, "token")
	// Another site's page can post a form, not JSON: no signing a
	// browser in as someone else.
	r = ts.do(t, "POST", "/session", "", strings.NewReader("token="+ts.tok(t, staffW)),
		header{"Content-Type", "application/x-www-form-urlencoded"})
	assert.Equal(t, http.StatusBadRequest, r.Status, "%s", r)
	assert.Empty(t, (&http.Response{Header: r.Header}).Cookies())

	// The session routes are about a cookie session, not a bearer token.
	r = ts.do(t, "GET", "/session", ts.tok(t, staffW), nil)
	assert.Equal(t, http.StatusUnauthorized, r.Status, "%s", r)
	r = ts.do(t, "GET", "/session", "", nil)
	assert.Equal(t, http.StatusUnauthorized, r.Status, "%s", r)
}

func TestSessionOfRevokedInvite(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	r := ts.do(t, "POST", "/invites/"+f.InviteCode+"/accept", "", map[string]any{"name": "Ivy", "email": inviteeEmail})
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	token := r.str(t, "token")
	r = ts.do(t, "POST", "/session", "", map[string]any{"token": token})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	b := browserOf(t, r)
	assert.Equal(t, http.StatusOK, b.do(t, ts, false, "GET", "/rooms/"+f.Room, nil).Status)

	ts.must(t, http.StatusNoContent, "DELETE", "/rooms/"+f.Room+"/invites/"+f.Invite, owner, nil)
	assert.Equal(t, http.StatusUnauthorized, b.do(t, ts, false, "GET", "/rooms/"+f.Room, nil).Status,
		"a session of a revoked invite's token ends with it")
	r = ts.do(t, "POST", "/session", "", map[string]any{"token": token})
	assert.Equal(t, http.StatusUnauthorized, r.Status, "%s", r)
}

func TestSessionReplacesThePrevious(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	before := ts.signIn(t, staffW)
	r := ts.do(t, "POST", "/session", "", map[string]any{"token": ts.tok(t, custW)}, header{"Cookie", "dealroom_session=" + before.Cookie})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	after := browserOf(t, r)
	assert.NotEqual(t, before.Cookie, after.Cookie, "a fresh token, never the one the browser had")
	assert.Equal(t, http.StatusUnauthorized, before.do(t, ts, false, "GET", "/me", nil).Status, "the browser's previous session ended")
	me := after.do(t, ts, false, "GET", "/me", nil)
	require.Equal(t, http.StatusOK, me.Status)
	assert.Equal(t, custW.ID, me.str(t, "user_id"))
}

func TestSignOutEverywhere(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	laptop, phone := ts.signIn(t, staffW), ts.signIn(t, staffW)
	other := ts.signIn(t, owner)

	assert.Equal(t, http.StatusForbidden, laptop.do(t, ts, false, "POST", "/session/end-all", nil).Status, "needs the CSRF token")
	r := laptop.do(t, ts, true, "POST", "/session/end-all", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	assert.EqualValues(t, 2, r.object(t)["ended"])
	for name, b := range map[string]browser{"laptop": laptop, "phone": phone} {
		assert.Equal(t, http.StatusUnauthorized, b.do(t, ts, false, "GET", "/me", nil).Status, name)
	}
	assert.Equal(t, http.StatusOK, other.do(t, ts, false, "GET", "/me", nil).Status, "another user's session goes on")

	// From a script, with a bearer token.
	ts.signIn(t, owner)
	r = ts.must(t, http.StatusOK, "POST", "/session/end-all", owner, nil)
	assert.EqualValues(t, 2, r.object(t)["ended"])
	assert.Equal(t, http.StatusUnauthorized, other.do(t, ts, false, "GET", "/me", nil).Status)
}

func TestAdminEndsSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	leaver := ts.signIn(t, staffW)
	ts.signIn(t, staffW)
	managerB := ts.signIn(t, manager)

	for _, a := range []dealroom.Actor{owner, manager, custW} {
		r := ts.do(t, "DELETE", "/users/"+staffW.ID+"/sessions", ts.tok(t, a), nil)
		assert.Equal(t, http.StatusForbidden, r.Status, "%s: %s", a.ID, r)
		assertErrorBody(t, r, "")
	}
	r := managerB.do(t, ts, true, "DELETE", "/users/"+staffW.ID+"/sessions", nil)
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r)
	assert.Equal(t, http.StatusOK, leaver.do(t, ts, false, "GET", "/me", nil).Status, "refused: nothing ended")

	r = ts.must(t, http.StatusOK, "DELETE", "/users/"+staffW.ID+"/sessions", admin, nil)
	assert.EqualValues(t, 2, r.object(t)["ended"])
	assert.Equal(t, http.StatusUnauthorized, leaver.do(t, ts, false, "GET", "/me", nil).Status)
	assert.Equal(t, http.StatusOK, managerB.do(t, ts, false, "GET", "/me", nil).Status)
	r = ts.must(t, http.StatusOK, "DELETE", "/users/nobody/sessions", admin, nil)
	assert.EqualValues(t, 0, r.object(t)["ended"])
}

// --- websockets, across instances ---

// signInOn opens a session of a on node n.
func (c *cluster) signInOn(n *node, a dealroom.Actor) browser {
	c.t.Helper()
	body, err := json.Marshal(map[string]string{"token": c.token(a)})
	require.NoError(c.t, err)
	resp, err := http.Post(n.URL+"/api/v1/session", "application/json", strings.NewReader(string(body)))
	require.NoError(c.t, err)
	defer resp.Body.Close()
	require.Equal(c.t, http.StatusCreated, resp.StatusCode)
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&out))
	b := browser{CSRF: out.CSRF}
	for _, ck := range resp.Cookies() {
		if ck.Name == "dealroom_session" {
			b.Cookie = ck.Value
		}
	}
	require.NotEmpty(c.t, b.Cookie)
	return b
}

// send sends a request signed in by the browser's cookie and CSRF token
// to node n, and returns the status.
func (b browser) send(t testing.TB, n *node, method, path string) int {
	t.Helper()
	req, err := http.NewRequest(method, n.URL+"/api/v1"+path, nil)
	require.NoError(t, err)
	req.Header.Set("Cookie", "dealroom_session="+b.Cookie)
	req.Header.Set("X-CSRF-Token", b.CSRF)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// dialWith opens a websocket on n signed in by the browser's cookie,
// from a page of origin ("" for none).
func (b browser) dialWith(t *testing.T, n *node, origin string) (*wsClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{"Cookie": {"dealroom_session=" + b.Cookie}}
	if origin != "" {
		h.Set("Origin", origin)
	}
	conn, _, err := websocket.Dial(ctx, n.wsURL(""), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	return newWSClient(t, conn), nil
}

func (b browser) dial(t *testing.T, n *node) *wsClient {
	t.Helper()
	cl, err := b.dialWith(t, n, n.URL)
	require.NoError(t, err)
	cl.send(map[string]any{"type": "ping", "id": "p"})
	cl.until(5*time.Second, "pong", func(f frame) bool { return f.Type == "pong" })
	return cl
}

// open reports whether the socket still answers.
func open(t *testing.T, cl *wsClient) bool {
	t.Helper()
	cl.send(map[string]any{"type": "ping", "id": "still"})
	for _, f := range cl.until(5*time.Second, "pong", func(f frame) bool { return f.Type == "pong" }) {
		if f.Type == "pong" {
			return true
		}
	}
	return false
}

// TestEndedSessionClosesWebsockets: a websocket opened with a session
// cookie closes with 4003 when that session ends, on the instance that
// ended it and on the others; the user's other sockets close when the
// user signs out everywhere.
func TestEndedSessionClosesWebsockets(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	n0, n1 := c.Nodes[0], c.Nodes[1]
	walter := dealroom.Actor{ID: "walter", Name: "Walter", Kind: dealroom.Staff, Role: dealroom.Rep}
	laptop, phone := c.signInOn(n0, walter), c.signInOn(n1, walter)

	laptopThere, laptopHere := laptop.dial(t, n1), laptop.dial(t, n0)
	phoneWS := phone.dial(t, n1)
	script := c.dial(n1, walter) // a bearer token's socket

	require.Equal(t, http.StatusNoContent, laptop.send(t, n0, "DELETE", "/session"))
	for name, cl := range map[string]*wsClient{"on another instance": laptopThere, "on the same instance": laptopHere} {
		code, reason := closeOf(t, cl)
		assert.Equal(t, ws.StatusSignedOut, code, name)
		assert.Contains(t, reason, "signed out", name)
	}
	assert.True(t, open(t, phoneWS), "the user's other session goes on")
	assert.True(t, open(t, script))
	_, err := laptop.dialWith(t, n1, n1.URL)
	require.Error(t, err, "an ended session opens no websocket")
	assert.Contains(t, err.Error(), "401")

	require.Equal(t, http.StatusOK, phone.send(t, n0, "POST", "/session/end-all"))
	for name, cl := range map[string]*wsClient{"the other session's": phoneWS, "a bearer token's": script} {
		code, _ := closeOf(t, cl)
		assert.Equal(t, ws.StatusSignedOut, code, name)
	}
}

// TestAdminEndsWebsockets: an admin ending a person's sessions closes
// that person's websockets on every instance.
func TestAdminEndsWebsockets(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	n0, n1 := c.Nodes[0], c.Nodes[1]
	walter := dealroom.Actor{ID: "walter", Name: "Walter", Kind: dealroom.Staff, Role: dealroom.Rep}
	adam := dealroom.Actor{ID: "adam", Name: "Adam", Kind: dealroom.Staff, Role: dealroom.Admin}
	leaver := c.signInOn(n0, walter).dial(t, n1)
	admins := c.signInOn(n0, adam).dial(t, n1)

	require.Equal(t, http.StatusOK, c.rest(n0, adam, "DELETE", "/users/walter/sessions", nil, nil))
	code, _ := closeOf(t, leaver)
	assert.Equal(t, ws.StatusSignedOut, code)
	assert.True(t, open(t, admins), "only that person's sockets close")
}

// TestSessionWebsocketOrigin: a websocket request carries no CSRF token;
// the upgrade's Origin check is what keeps another site's page from
// opening one with the browser's cookie.
func TestSessionWebsocketOrigin(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	b := c.signInOn(n, dealroom.Actor{ID: "walter", Name: "Walter", Kind: dealroom.Staff, Role: dealroom.Rep})
	_, err := b.dialWith(t, n, "https://evil.example")
	require.Error(t, err, "a page of another site")
	assert.Contains(t, err.Error(), "403")
	b.dial(t, n) // the server's own page
}

// TestEndedSessionLostNews: an instance that missed the news of an ended
// session (the broker lost it) closes the session's socket at its first
// command once the sign-in's last check is older than the recheck window
// (5 s), and at once when it was never checked.
func TestEndedSessionLostNews(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	c := newCluster(t, 2, withRealtime(ws.Config{Now: clock.Now}))
	n0, n1 := c.Nodes[0], c.Nodes[1]
	walter := dealroom.Actor{ID: "walter", Name: "Walter", Kind: dealroom.Staff, Role: dealroom.Rep}
	b := c.signInOn(n0, walter)
	cl := b.dial(t, n1)
	fresh := b.dial(t, n1)
	cmd := func(id string) map[string]any {
		return map[string]any{"type": "command", "id": id, "room": "r_none", "op": "message.post", "data": map[string]any{"body": "hello"}}
	}
	post := map[string]any{"body": "hello"}
	assert.Equal(t, "not_found", cl.command("before-sign-out", "r_none", "message.post", post).Error.Code, "carried out")
	n1.Broker.Close() // n1 hears nothing more from the others

	require.Equal(t, http.StatusNoContent, b.send(t, n0, "DELETE", "/session"))
	fresh.send(cmd("never-checked"))
	code, _ := closeOf(t, fresh)
	assert.Equal(t, ws.StatusSignedOut, code, "a socket whose sign-in was never checked")

	assert.Equal(t, "not_found", cl.command("within-the-window", "r_none", "message.post", post).Error.Code,
		"checked a moment ago: trusted")
	clock.Advance(5 * time.Second)
	cl.send(cmd("after-the-window"))
	code, _ = closeOf(t, cl)
	assert.Equal(t, ws.StatusSignedOut, code)
}
