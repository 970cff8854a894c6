package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/jwtauth"
	"dealroom/ws"
)

// rawDial opens a websocket to url; the connection, if any, is closed at
// the end of the test.
func rawDial(t *testing.T, url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, opts)
	if conn != nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, resp, err
}

// refused asserts that an upgrade was answered with an HTTP status.
func refused(t *testing.T, status int, conn *websocket.Conn, resp *http.Response, err error) []byte {
	t.Helper()
	require.Error(t, err, "the upgrade was accepted")
	require.Nil(t, conn)
	require.NotNil(t, resp, "an HTTP answer: %v", err)
	assert.Equal(t, status, resp.StatusCode, "%v", err)
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(resp.Body)
	}
	return body
}

// closedWith waits for the server to end the connection and returns the
// close status it gave.
func closedWith(t *testing.T, cl *wsClient) websocket.StatusCode {
	t.Helper()
	select {
	case <-cl.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	return websocket.CloseStatus(cl.err)
}

// bystander is a device that follows a room while a test misbehaves
// elsewhere, and checks that it is still served.
type bystander struct {
	c    *cluster
	cl   *wsClient
	room string
}

func newBystander(c *cluster, roomID string) *bystander {
	cl := c.dial(c.Nodes[0], staffW)
	cl.subscribed(roomID, 0)
	return &bystander{c: c, cl: cl, room: roomID}
}

// served posts a message and checks that the bystander receives it.
func (b *bystander) served(t *testing.T, body string) {
	t.Helper()
	var msg struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, b.c.rest(b.c.Nodes[0], owner, "POST", "/rooms/"+b.room+"/messages", map[string]any{"body": body}, &msg))
	b.cl.until(5*time.Second, "the message "+body, func(f frame) bool {
		return f.Type == "event" && f.Room == b.room && strings.Contains(string(f.Event), msg.ID)
	})
	b.cl.barrier()
}

// TestWSAuthentication: the token comes in the query (browsers) or an
// Authorization header; without a valid one the upgrade is refused with
// 401 before any websocket exists.
func TestWSAuthentication(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Auth")
	internal := c.mkTask(roomID, "Internal", "internal")

	t.Run("query token", func(t *testing.T) {
		conn, _, err := rawDial(t, n.wsURL("?token="+c.token(staffW)), nil)
		require.NoError(t, err)
		cl := newWSClient(t, conn)
		cl.subscribed(roomID, 0)
	})
	t.Run("bearer header", func(t *testing.T) {
		conn, _, err := rawDial(t, n.wsURL(""), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + c.token(custW)}}})
		require.NoError(t, err)
		cl := newWSClient(t, conn)
		cl.subscribed(roomID, 0)
		// It is the customer's session: an internal task is not found.
		sendPresence(cl, roomID, "typing", internal)
		f := cl.until(5*time.Second, "an error", func(f frame) bool { return f.Type == "error" })
		assert.Equal(t, "not_found", f[len(f)-1].Error.Code)
	})

	expired, err := c.Keys.Issue(staffW, -time.Hour)
	require.NoError(t, err)
	otherKeys, err := jwtauth.New(jwtauth.Config{Secret: []byte("another-secret-another-secret-0123456789")})
	require.NoError(t, err)
	forged, err := otherKeys.Issue(owner, time.Hour)
	require.NoError(t, err)
	good := c.token(staffW)
	for _, tc := range []struct {
		name, query string
		header      http.Header
	}{
		{"no token", "", nil},
		{"empty query token", "?token=", nil},
		{"garbage query token", "?token=not-a-token", nil},
		{"expired query token", "?token=" + expired, nil},
		{"forged query token", "?token=" + forged, nil},
		{"truncated query token", "?token=" + good[:len(good)-5], nil},
		{"garbage bearer", "", http.Header{"Authorization": {"Bearer garbage"}}},
		{"expired bearer", "", http.Header{"Authorization": {"Bearer " + expired}}},
		{"forged bearer", "", http.Header{"Authorization": {"Bearer " + forged}}},
		{"basic auth", "", http.Header{"Authorization": {"Basic b2xpdmlhOnNlY3JldA=="}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, resp, err := rawDial(t, n.wsURL(tc.query), &websocket.DialOptions{HTTPHeader: tc.header})
			body := refused(t, http.StatusUnauthorized, conn, resp, err)
			var eb struct {
				Error struct{ Code string } `json:"error"`
			}
			if assert.NoError(t, json.Unmarshal(body, &eb), "%s", body) {
				assert.Equal(t, "unauthenticated", eb.Error.Code)
			}
			assert.NotContains(t, string(body), good)
		})
	}
}

// TestWSOrigin: a page of another site may not open a websocket with a
// token it got hold of; configured origins may.
func TestWSOrigin(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Origin")
	tok := "?token=" + c.token(staffW)
	origin := func(o string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {o}}}
	}

	u, err := url.Parse(n.URL)
	require.NoError(t, err)
	for _, o := range []string{"https://evil.example", "http://evil.example", "https://app.example.com", "null",
		"https://127.0.0.1.evil.example", "http://" + u.Hostname() + ":1"} {
		conn, resp, err := rawDial(t, n.wsURL(tok), origin(o))
		refused(t, http.StatusForbidden, conn, resp, err)
	}
	// The server's own pages may.
	conn, _, err := rawDial(t, n.wsURL(tok), origin(n.URL))
	require.NoError(t, err)
	newWSClient(t, conn).subscribed(roomID, 0)
	// A client that sends no Origin (not a browser) may.
	conn, _, err = rawDial(t, n.wsURL(tok), nil)
	require.NoError(t, err)
	newWSClient(t, conn).subscribed(roomID, 0)

	// With an allowed origin configured.
	c2 := newCluster(t, 1, withRealtime(ws.Config{AllowedOrigins: []string{"app.example.com"}}))
	n2 := c2.Nodes[0]
	room2 := c2.wsRoom("Allowed origin")
	tok2 := "?token=" + c2.token(staffW)
	conn, _, err = rawDial(t, n2.wsURL(tok2), origin("https://app.example.com"))
	require.NoError(t, err, "an allowed origin")
	newWSClient(t, conn).subscribed(room2, 0)
	for _, o := range []string{"https://evil.example", "https://app.example.com.evil.example", "https://evil.app.example.com"} {
		conn, resp, err := rawDial(t, n2.wsURL(tok2), origin(o))
		refused(t, http.StatusForbidden, conn, resp, err)
	}
}

// TestWSFrameTooBig: a frame over MaxFrameBytes ends the connection with
// 1009; others are served on.
func TestWSFrameTooBig(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, withRealtime(ws.Config{MaxFrameBytes: 1024}))
	n := c.Nodes[0]
	roomID := c.wsRoom("Big frames")
	by := newBystander(c, roomID)

	cl := c.dial(n, owner)
	cl.subscribed(roomID, 0)
	// Just under the limit is fine.
	ok, _ := json.Marshal(map[string]any{"type": "command", "id": "c1", "room": roomID, "op": "message.post",
		"data": map[string]any{"body": strings.Repeat("a", 900)}})
	require.Less(t, len(ok), 1024)
	require.NoError(t, cl.conn.Write(context.Background(), websocket.MessageText, ok))
	cl.until(5*time.Second, "the ack", func(f frame) bool { return f.Type == "ack" && f.ID == "c1" })

	big, _ := json.Marshal(map[string]any{"type": "command", "id": "c2", "room": roomID, "op": "message.post",
		"data": map[string]any{"body": strings.Repeat("a", 2000)}})
	require.NoError(t, cl.conn.Write(context.Background(), websocket.MessageText, big))
	assert.Equal(t, websocket.StatusMessageTooBig, closedWith(t, cl), "%v", cl.err)
	by.served(t, "after the big frame")
	assert.Len(t, c.visibleEvents(n, owner, roomID), 6, "the big command was not applied")
}

// TestWSGarbage: unreadable frames are answered with error frames; past
// MaxBadFrames the connection is closed with 1008.
func TestWSGarbage(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, withRealtime(ws.Config{MaxBadFrames: 5}))
	n := c.Nodes[0]
	roomID := c.wsRoom("Garbage")
	by := newBystander(c, roomID)

	cl := c.dial(n, owner)
	write := func(s string) {
		t.Helper()
		require.NoError(t, cl.conn.Write(context.Background(), websocket.MessageText, []byte(s)))
	}
	for i, tc := range []struct {
		in, code, field string
	}{
		{"not JSON at all", "bad_request", ""},
		{`[{"type":"ping"}]`, "bad_request", ""},
		{`{"type":"explode","room":"` + roomID + `"}`, "invalid_field", "type"},
		{`{"type":"subscribe","room":"` + roomID + `","after":-5}`, "invalid_field", "after"},
	} {
		write(tc.in)
		fs := cl.until(5*time.Second, "an error frame", func(f frame) bool { return f.Type == "error" })
		f := fs[len(fs)-1]
		require.NotNil(t, f.Error, "%s", f.raw)
		assert.Equal(t, tc.code, f.Error.Code, "frame %d %q: %s", i, tc.in, f.raw)
		assert.Equal(t, tc.field, f.Error.Field, "frame %d %q: %s", i, tc.in, f.raw)
		assert.NotEmpty(t, f.Error.Message)
	}
	// Good frames in between still work and do not reset the count.
	cl.barrier()
	cl.subscribed(roomID, 0)

	write(`{"type":"command","id":"bad id","room":"` + roomID + `","op":"task.create"}`)
	assert.Equal(t, websocket.StatusPolicyViolation, closedWith(t, cl), "the 5th bad frame closes: %v", cl.err)
	by.served(t, "after the garbage")

	// A fresh connection of the same person starts over.
	cl2 := c.dial(n, owner)
	cl2.subscribed(roomID, 0)
	cl2.barrier()
}

// TestWSBinaryFrame: frames are JSON text; a binary frame ends the
// connection with 1003.
func TestWSBinaryFrame(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Binary")
	by := newBystander(c, roomID)

	cl := c.dial(n, owner)
	cl.subscribed(roomID, 0)
	require.NoError(t, cl.conn.Write(context.Background(), websocket.MessageBinary, []byte(`{"type":"ping"}`)))
	assert.Equal(t, websocket.StatusUnsupportedData, closedWith(t, cl), "%v", cl.err)
	by.served(t, "after the binary frame")
}

// TestWSSubscribeUnseenRoom: a room the person may not see is not found,
// and nothing of it ever arrives.
func TestWSSubscribeUnseenRoom(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Private")
	by := newBystander(c, roomID)

	outsiders := []struct {
		name string
		cl   *wsClient
	}{{"outsider customer", c.dial(n, custOut)}, {"outsider staff", c.dial(n, staffOut)}}
	for _, who := range outsiders {
		cl := who.cl
		cl.subscribe(roomID, 0)
		fs := cl.until(5*time.Second, "an error frame", func(f frame) bool { return f.Type == "error" || f.Type == "subscribed" })
		f := fs[len(fs)-1]
		require.Equal(t, "error", f.Type, "%s: %s", who.name, f.raw)
		assert.Equal(t, roomID, f.Room, who.name)
		assert.Equal(t, "not_found", f.Error.Code, who.name)
		// A room that does not exist is answered the same way.
		cl.subscribe("r_does_not_exist", 0)
		fs = cl.until(5*time.Second, "an error frame", func(f frame) bool { return f.Type == "error" })
		assert.Equal(t, "not_found", fs[len(fs)-1].Error.Code)
		assert.Equal(t, "r_does_not_exist", fs[len(fs)-1].Room)
	}

	// The room lives on; nothing of it reaches the outsiders.
	by.served(t, "while outsiders knock")
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/tasks", map[string]any{"title": "Secret plan"}, nil))
	by.cl.until(5*time.Second, "the task", func(f frame) bool { return f.Type == "event" && eventType(t, f.Event) == "task.created" })
	time.Sleep(200 * time.Millisecond) // presence is paced
	for _, who := range outsiders {
		for _, f := range append(who.cl.barrier(), who.cl.drain()...) {
			assert.NotEqual(t, "event", f.Type, "%s received %s", who.name, f.raw)
			assert.NotEqual(t, "subscribed", f.Type, "%s received %s", who.name, f.raw)
			assert.NotEqual(t, roomID, f.Room, "%s received %s", who.name, f.raw)
			assert.NotContains(t, string(f.raw), "Secret plan")
		}
	}
}

// TestWSRemovedMember: a member removed from the room while subscribed is
// told so and receives nothing of the room afterwards.
func TestWSRemovedMember(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Removal")
	by := newBystander(c, roomID)

	cust := c.dial(n, custW)
	cust.subscribed(roomID, 0)
	by.cl.waitPresence(presenceWait, roomID, "the customer viewing", present(custW.ID, "viewing", 1))
	cust.waitPresence(presenceWait, roomID, "both viewing", func(f frame) bool {
		return present(custW.ID, "viewing", 1)(f) && present(staffW.ID, "viewing", 1)(f)
	})
	// Quiet: what the customer received before the removal is set aside.
	time.Sleep(300 * time.Millisecond)
	cust.barrier()
	cust.drain()

	require.Equal(t, 204, c.rest(n, owner, "DELETE", "/rooms/"+roomID+"/members/"+custW.ID, nil, nil))
	fs := cust.until(5*time.Second, "unsubscribed", func(f frame) bool { return f.Type == "unsubscribed" })
	f := fs[len(fs)-1]
	assert.Equal(t, roomID, f.Room, "%s", f.raw)
	assert.NotEmpty(t, f.Reason)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(f.raw, &raw))
	assert.Equal(t, "unsubscribed", raw["type"])

	// The others see the customer leave.
	by.cl.waitPresence(presenceWait, roomID, "the customer gone", absent(custW.ID))

	// Later events of the room do not reach the removed member.
	by.served(t, "after the removal")
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/tasks", map[string]any{"title": "After removal"}, nil))
	by.cl.until(5*time.Second, "the task", func(f frame) bool { return f.Type == "event" && eventType(t, f.Event) == "task.created" })
	for _, f := range append(cust.barrier(), cust.drain()...) {
		assert.NotEqual(t, "event", f.Type, "the removed member received %s", f.raw)
		if f.Type == "presence" {
			assert.NotEqual(t, roomID, f.Room, "the removed member received presence: %s", f.raw)
		}
	}

	// Subscribing again is refused; so is presence.
	cust.subscribe(roomID, 0)
	fs = cust.until(5*time.Second, "an answer", func(f frame) bool { return f.Type == "error" || f.Type == "subscribed" })
	require.Equal(t, "error", fs[len(fs)-1].Type, "%s", fs[len(fs)-1].raw)
	assert.Equal(t, "not_found", fs[len(fs)-1].Error.Code)
	for _, f := range fs {
		assert.NotEqual(t, "event", f.Type, "%s", f.raw)
	}
	sendPresence(cust, roomID, "viewing", "")
	fs = cust.until(5*time.Second, "an error", func(f frame) bool { return f.Type == "error" })
	assert.Equal(t, roomID, fs[len(fs)-1].Room)
}

// TestWSRemovedMemberOnOtherInstance: the removal made through another
// instance ends the subscription the same way.
func TestWSRemovedMemberOnOtherInstance(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	roomID := c.wsRoom("Removal elsewhere")
	cust := c.dial(c.Nodes[1], custW)
	cust.subscribed(roomID, 0)
	require.Equal(t, 204, c.rest(c.Nodes[0], owner, "DELETE", "/rooms/"+roomID+"/members/"+custW.ID, nil, nil))
	fs := cust.until(5*time.Second, "unsubscribed", func(f frame) bool { return f.Type == "unsubscribed" })
	assert.Equal(t, roomID, fs[len(fs)-1].Room)
	require.Equal(t, 201, c.rest(c.Nodes[0], owner, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": "after"}, nil))
	time.Sleep(200 * time.Millisecond)
	for _, f := range append(cust.barrier(), cust.drain()...) {
		assert.NotEqual(t, "event", f.Type, "the removed member received %s", f.raw)
	}
}

// TestWSPing: a ping frame is answered with a pong frame.
func TestWSPing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	cl := c.dial(c.Nodes[0], custR)
	for range 3 {
		cl.send(map[string]any{"type": "ping"})
		f := cl.next(5 * time.Second)
		assert.Equal(t, "pong", f.Type)
		assert.JSONEq(t, `{"type":"pong"}`, string(f.raw))
	}
	// A ping with a room is a malformed frame, not a ping.
	cl.send(map[string]any{"type": "ping", "room": "r_1"})
	f := cl.next(5 * time.Second)
	assert.Equal(t, "error", f.Type, "%s", f.raw)
}

// TestWSUnsubscribe: after unsubscribing from a room, its events stop
// while another room's keep coming.
func TestWSUnsubscribe(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	r1 := c.wsRoom("Left")
	r2 := c.wsRoom("Kept")
	cl := c.dial(n, staffW)
	cl.subscribed(r1, 0)
	cl.subscribed(r2, 0)

	post := func(roomID, body string) {
		t.Helper()
		require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": body}, nil))
	}
	post(r1, "to r1 while subscribed")
	cl.until(5*time.Second, "r1's message", func(f frame) bool { return f.Type == "event" && f.Room == r1 })

	cl.send(map[string]any{"type": "unsubscribe", "room": r1})
	cl.barrier() // the unsubscribe was read
	post(r1, "to r1 after unsubscribing")
	post(r2, "to r2")
	post(r1, "to r1 again")
	post(r2, "to r2 again")
	fs := cl.until(5*time.Second, "r2's second message", func(f frame) bool {
		return f.Type == "event" && f.Room == r2 && strings.Contains(string(f.Event), "to r2 again")
	})
	fs = append(fs, cl.barrier()...)
	r2Events := 0
	for _, f := range fs {
		assert.NotEqual(t, r1, f.Room, "an event of the room left: %s", f.raw)
		if f.Type == "event" && f.Room == r2 {
			r2Events++
		}
	}
	assert.Equal(t, 2, r2Events)

	// Unsubscribing from a room not followed is harmless; subscribing
	// again catches up with what was missed.
	cl.send(map[string]any{"type": "unsubscribe", "room": "r_never_followed"})
	cl.barrier()
	missed := cl.subscribed(r1, 5)
	require.Len(t, missed, 2, "the two messages posted while away")
	assert.Contains(t, string(missed[0].Event), "to r1 after unsubscribing")
	assert.Contains(t, string(missed[1].Event), "to r1 again")
}

// TestWSFeedUnavailable: while the broker is out (Redis down), a room's
// feed cannot start: subscribing is answered with an error frame, and a
// presence frame sent right behind the subscribe (what a browser does on
// opening a room) does no harm; the connection keeps working. (Found: the
// presence dereferenced the failed subscription's nil feed in
// Session.SetPresence; the panic, recovered by echo, left the connection
// dead or dropped.)
func TestWSFeedUnavailable(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Broker down")
	n.Broker.Close()

	cl := c.dial(n, staffW)
	for i := range 10 {
		cl.subscribe(roomID, 0)
		sendPresence(cl, roomID, "viewing", "")
		cl.send(map[string]any{"type": "ping"})
		// The subscribe's error comes from its catch-up, the pong from the
		// reader: wait for both, in any order.
		var got []frame
		pong, unavailable := false, 0
		deadline := time.After(3 * time.Second)
		for !pong || unavailable == 0 {
			select {
			case f, ok := <-cl.frames:
				if !ok {
					t.Fatalf("attempt %d: the server dropped the connection (%v)", i, cl.err)
				}
				got = append(got, f)
				require.NotEqual(t, "subscribed", f.Type, "attempt %d", i)
				switch {
				case f.Type == "pong":
					pong = true
				case f.Type == "error":
					assert.Equal(t, roomID, f.Room)
					if f.Error.Code == "unavailable" {
						unavailable++
					}
				}
			case <-deadline:
				t.Fatalf("attempt %d: after subscribe+presence with the feed unavailable, within 3s: pong %v, "+
					"subscribe refused %v (got %d frames): the connection is dead but left open", i, pong, unavailable > 0, len(got))
			}
		}
	}
}

// TestWSServerShutdown: when the hub closes (the server stops), every
// device is told with a close frame, 1001 going away, so that it
// reconnects elsewhere instead of waiting for a ping to time out.
func TestWSServerShutdown(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Shutdown")
	idle := c.dial(n, custR)
	busy := c.dial(n, owner)
	busy.subscribed(roomID, 0)
	n.Hub.Close()
	assert.Equal(t, websocket.StatusGoingAway, closedWith(t, idle), "%v", idle.err)
	assert.Equal(t, websocket.StatusGoingAway, closedWith(t, busy), "%v", busy.err)
}
