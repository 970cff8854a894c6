package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testclock"
	"dealroom/ws"
)

// The websocket's hardening (issue 11, items 2, 3, 13 and 15).

// closeOf waits for the server to end the connection and returns its close
// status and reason.
func closeOf(t *testing.T, cl *wsClient) (websocket.StatusCode, string) {
	t.Helper()
	select {
	case <-cl.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	var ce websocket.CloseError
	if !assert.ErrorAs(t, cl.err, &ce, "a close frame, not %v", cl.err) {
		return -1, ""
	}
	return ce.Code, ce.Reason
}

// errorFrame waits for the next error frame.
func errorFrame(t *testing.T, cl *wsClient) frame {
	t.Helper()
	fs := cl.until(10*time.Second, "an error frame", func(f frame) bool { return f.Type == "error" })
	f := fs[len(fs)-1]
	require.NotNil(t, f.Error, "%s", f.raw)
	return f
}

// TestWSTokenExpiryEndsSession: a session lives no longer than its token.
// Once the token has expired (past the leeway Verify allows), the next
// frame is not carried out: the connection is closed with 4001 and a
// reason that tells the client to reconnect with a fresh token. A device
// that sends nothing is closed by the keep-alive, the same way.
func TestWSTokenExpiryEndsSession(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	c := newCluster(t, 1, withRealtime(ws.Config{Now: clock.Now, PingEvery: 200 * time.Millisecond}))
	n := c.Nodes[0]
	roomID := c.wsRoom("Expiry")

	active := c.dial(n, custW) // the cluster's tokens last an hour
	active.subscribed(roomID, 0)
	idle := c.dial(n, staffW)
	idle.subscribed(roomID, 0)
	got := active.command("before", roomID, "message.post", map[string]any{"body": "still valid"})
	require.Equal(t, "ack", got.Type, "%s", got.raw)
	before := len(c.visibleEvents(n, owner, roomID))

	clock.Advance(time.Hour + 31*time.Second) // past exp and the leeway
	active.send(map[string]any{"type": "command", "id": "after", "room": roomID, "op": "message.post",
		"data": map[string]any{"body": "sent with an expired token"}})
	code, reason := closeOf(t, active)
	assert.Equal(t, ws.StatusTokenExpired, code)
	assert.EqualValues(t, 4001, code)
	assert.Contains(t, reason, "token expired")
	assert.Contains(t, reason, "fresh token")
	for _, f := range active.drain() {
		assert.NotEqual(t, "ack", f.Type, "the command of an expired token was carried out: %s", f.raw)
	}
	assert.Len(t, c.visibleEvents(n, owner, roomID), before, "nothing was written with the expired token")

	code, reason = closeOf(t, idle)
	assert.Equal(t, ws.StatusTokenExpired, code)
	assert.Contains(t, reason, "token expired")
}

// TestWSMemberTurnedCustomer: a manager follows a room as staff; the
// owner adds them as a customer-kind member, which makes them see the
// room as a customer. The open subscription must not go on delivering
// staff frames (before the fix, the internal note arrived): it ends with
// resync, and subscribing again gives the customer's view.
func TestWSMemberTurnedCustomer(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Turned customer")

	m := c.dial(n, manager)
	m.subscribed(roomID, 0)
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/members",
		map[string]any{"user_id": manager.ID, "name": manager.Name, "kind": "customer", "access": "write"}, nil))
	var note struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/messages",
		map[string]any{"body": "internal: our floor price", "visibility": "internal"}, &note))

	fs := m.until(10*time.Second, "resync", func(f frame) bool { return f.Type == "resync" || f.Type == "unsubscribed" })
	last := fs[len(fs)-1]
	assert.Equal(t, "resync", last.Type, "%s", last.raw)
	assert.Equal(t, roomID, last.Room)
	assert.Contains(t, last.Reason, "access")
	var lastSeq int64
	for _, f := range fs {
		if f.Type == "event" {
			assert.NotContains(t, string(f.Event), note.ID, "an internal note reached a customer-kind member")
			lastSeq = seqOf(t, f.Event)
		}
	}
	for _, f := range append(m.barrier(), m.drain()...) {
		assert.NotContains(t, string(f.raw), note.ID, "an internal note reached a customer-kind member")
	}
	// Subscribing again: the customer's view, from the last seq processed.
	for _, f := range m.subscribed(roomID, lastSeq) {
		assert.NotContains(t, string(f.raw), note.ID, "an internal note reached a customer-kind member")
		assert.NotContains(t, string(f.raw), `"visibility":"internal"`)
	}
}

// TestWSCommandsFollowMembership: what a member may do over a socket that
// was opened before their membership changed follows the membership of
// now, for commands, subscribe and presence with a task alike.
func TestWSCommandsFollowMembership(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Membership and commands")
	internal := c.mkTask(roomID, "Internal", "internal")
	shared := c.mkTask(roomID, "Shared", "")

	w := c.dial(n, staffW)
	w.subscribed(roomID, 0)
	require.Equal(t, "ack", w.command("w1", roomID, "message.post", map[string]any{"body": "as a writer"}).Type)

	// Lowered to read: commands are refused, presence on a task it sees
	// is still fine.
	require.Equal(t, 200, c.rest(n, owner, "PATCH", "/rooms/"+roomID+"/members/"+staffW.ID, map[string]any{"access": "read"}, nil))
	f := w.command("w2", roomID, "message.post", map[string]any{"body": "as a reader"})
	require.Equal(t, "error", f.Type, "%s", f.raw)
	assert.Equal(t, "forbidden", f.Error.Code)
	f = w.command("w3", roomID, "task.create", map[string]any{"title": "as a reader"})
	assert.Equal(t, "forbidden", f.Error.Code, "%s", f.raw)

	// Removed: unsubscribed, then every command, subscribe and presence
	// is refused as if the room did not exist.
	require.Equal(t, 204, c.rest(n, owner, "DELETE", "/rooms/"+roomID+"/members/"+staffW.ID, nil, nil))
	w.until(10*time.Second, "unsubscribed", func(f frame) bool { return f.Type == "unsubscribed" })
	f = w.command("w4", roomID, "message.post", map[string]any{"body": "as a stranger"})
	assert.Equal(t, "not_found", f.Error.Code, "%s", f.raw)
	w.subscribe(roomID, 0)
	assert.Equal(t, "not_found", errorFrame(t, w).Error.Code)
	sendPresence(w, roomID, "typing", shared)
	assert.Equal(t, roomID, errorFrame(t, w).Room)

	// Added back as a customer-kind member: internal tasks are gone for
	// presence and commands.
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/members",
		map[string]any{"user_id": staffW.ID, "name": staffW.Name, "kind": "customer", "access": "write"}, nil))
	w.subscribed(roomID, 0)
	sendPresence(w, roomID, "typing", internal)
	assert.Equal(t, "not_found", errorFrame(t, w).Error.Code)
	f = w.command("w5", roomID, "task.update", map[string]any{"id": internal, "title": "renamed"})
	assert.Equal(t, "not_found", f.Error.Code, "%s", f.raw)
	f = w.command("w6", roomID, "message.post", map[string]any{"body": "internal?", "visibility": "internal"})
	assert.Equal(t, "error", f.Type, "%s", f.raw)
}

// TestWSReaddedMemberResubscribes: a member removed and added back, whose
// device subscribes from a seq before the removal, catches up past it
// (before the fix, the catch-up stopped at the removal with unsubscribed).
func TestWSReaddedMemberResubscribes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Added back")

	require.Equal(t, 204, c.rest(n, owner, "DELETE", "/rooms/"+roomID+"/members/"+custW.ID, nil, nil))
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/members",
		map[string]any{"user_id": custW.ID, "name": custW.Name, "kind": "customer", "access": "write"}, nil))
	var msg struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": "welcome back"}, &msg))

	cl := c.dial(n, custW)
	cl.subscribe(roomID, 0)
	fs := cl.until(10*time.Second, "subscribed", func(f frame) bool {
		return f.Type == "subscribed" || f.Type == "unsubscribed" || f.Type == "error"
	})
	last := fs[len(fs)-1]
	require.Equal(t, "subscribed", last.Type, "%s", last.raw)
	var seen bool
	for _, f := range fs {
		seen = seen || (f.Type == "event" && strings.Contains(string(f.Event), msg.ID))
	}
	assert.True(t, seen, "the message after the return was caught up")

	// Live delivery goes on.
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": "live"}, &msg))
	cl.until(10*time.Second, "the live message", func(f frame) bool { return f.Type == "event" && strings.Contains(string(f.Event), msg.ID) })

	// A member removed for good still gets unsubscribed in the catch-up.
	require.Equal(t, 204, c.rest(n, owner, "DELETE", "/rooms/"+roomID+"/members/"+custR.ID, nil, nil))
	r := c.dial(n, custR)
	r.subscribe(roomID, 0)
	fs = r.until(10*time.Second, "an answer", func(f frame) bool { return f.Type != "event" })
	assert.Contains(t, []string{"unsubscribed", "error"}, fs[len(fs)-1].Type, "%s", fs[len(fs)-1].raw)
}

// TestWSPresenceInternalNote: staff typing an internal note say so
// (visibility internal); customers see them viewing, staff typing.
func TestWSPresenceInternalNote(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Internal typing")

	writer := c.dial(n, owner)
	writer.subscribed(roomID, 0)
	colleague := c.dial(n, staffW)
	colleague.subscribed(roomID, 0)
	cust := c.dial(n, custW)
	cust.subscribed(roomID, 0)
	cust.waitPresence(presenceWait, roomID, "the owner viewing", present(owner.ID, "viewing", 1))

	writer.send(map[string]any{"type": "presence", "room": roomID, "state": "typing", "visibility": "internal"})
	colleague.waitPresence(presenceWait, roomID, "the owner typing", present(owner.ID, "typing", 1))
	// The presence frames of a room are queued for every device of it at
	// once, so the customer's frame of the same change (if any: it may
	// read as the last one did) was queued already; a pong may overtake
	// it, so every frame of the next second is looked at.
	cust.barrier()
	deadline := time.After(time.Second)
	var got []frame
	for collecting := true; collecting; {
		select {
		case f := <-cust.presence:
			got = append(got, f)
		case <-deadline:
			collecting = false
		}
	}
	for _, f := range append(got, cust.drain()...) {
		require.NotEqual(t, "error", f.Type, "refused: %s", f.raw)
		if f.Type == "presence" && f.Room == roomID {
			assert.NotEqual(t, "typing", f.members()[owner.ID].State, "a customer learnt of an internal note: %s", f.raw)
		}
	}
	// Typing a shared message shows.
	writer.send(map[string]any{"type": "presence", "room": roomID, "state": "typing", "visibility": "shared"})
	cust.waitPresence(presenceWait, roomID, "the owner typing", present(owner.ID, "typing", 1))
}

// TestWSRefusedFrameNamesRequest: an error frame answering a frame refused
// in validation names the room and the id the frame had, even an id that
// breaks the rules, so that the client knows which request failed.
func TestWSRefusedFrameNamesRequest(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	roomID := c.wsRoom("Named refusals")
	cl := c.dial(c.Nodes[0], staffW)

	cl.send(map[string]any{"type": "presence", "room": roomID, "state": "dancing"})
	f := errorFrame(t, cl)
	assert.Equal(t, roomID, f.Room, "%s", f.raw)
	assert.Equal(t, "state", f.Error.Field)

	cl.send(map[string]any{"type": "command", "id": "op 7", "room": roomID, "op": "task.create"})
	f = errorFrame(t, cl)
	assert.Equal(t, "op 7", f.ID, "%s", f.raw)
	assert.Equal(t, roomID, f.Room, "%s", f.raw)
	assert.Equal(t, "id", f.Error.Field)
}

// TestWSNoOpCommandAck: a command that changes nothing is acknowledged
// with the room's head as its seq (before the fix: no seq).
func TestWSNoOpCommandAck(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("No-op")
	cl := c.dial(n, owner)
	f := cl.command("same", roomID, "member.update", map[string]any{"user_id": staffW.ID, "access": "write"})
	require.Equal(t, "ack", f.Type, "%s", f.raw)
	evs := c.visibleEvents(n, owner, roomID)
	assert.Equal(t, seqOf(t, evs[len(evs)-1]), f.Seq, "the room's head: %s", f.raw)
}

// TestIdempotencyKeyOneRule: the REST Idempotency-Key and the websocket
// command id, which serves as the same key, follow one rule: up to
// dealroom.MaxKey characters (before the fix: 200 and 128).
func TestIdempotencyKeyOneRule(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Keys")
	longest := strings.Repeat("k", dealroom.MaxKey)
	tooLong := longest + "k"

	cl := c.dial(n, owner)
	f := cl.command(longest, roomID, "message.post", map[string]any{"body": "by websocket"})
	assert.Equal(t, "ack", f.Type, "%s", f.raw)
	cl.send(map[string]any{"type": "command", "id": tooLong, "room": roomID, "op": "message.post", "data": map[string]any{"body": "x"}})
	f = errorFrame(t, cl)
	assert.Equal(t, "id", f.Error.Field)
	assert.Equal(t, tooLong, f.ID)

	post := func(key string) int {
		req, err := http.NewRequest("POST", n.URL+"/api/v1/rooms/"+roomID+"/messages", strings.NewReader(`{"body":"by REST"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+c.token(owner))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 201, post("rest-"+longest[5:]))
	assert.Equal(t, 400, post(tooLong))
}

// TestWSSocketCaps: a user may hold MaxSocketsPerUser websockets, the
// instance MaxSockets; one more is refused before the upgrade with 429 or
// 503 and the contract's error body, and a closed socket frees its place.
func TestWSSocketCaps(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, withRealtime(ws.Config{MaxSocketsPerUser: 2, MaxSockets: 3}))
	n := c.Nodes[0]

	first := c.dial(n, owner)
	c.dial(n, owner)
	conn, resp, err := rawDial(t, n.wsURL("?token="+c.token(owner)), nil)
	body := refused(t, 429, conn, resp, err)
	var eb struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.Unmarshal(body, &eb), "%s", body)
	assert.Equal(t, "rate_limited", eb.Error.Code)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))

	c.dial(n, staffW) // the third socket of the instance
	conn, resp, err = rawDial(t, n.wsURL("?token="+c.token(custW)), nil)
	body = refused(t, 503, conn, resp, err)
	require.NoError(t, json.Unmarshal(body, &eb), "%s", body)
	assert.Equal(t, "unavailable", eb.Error.Code)

	// A socket that closes frees its place (once the server has seen it go).
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl, err := c.tryDial(n, owner, nil)
		if err == nil {
			cl.barrier()
			break
		}
		require.True(t, time.Now().Before(deadline), "the closed socket's place was not freed: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWSSubscriptionCap: a connection follows at most MaxSubscriptions
// rooms; a subscribe past it is refused with rate_limited naming the room,
// a new subscribe of a followed room is not, and unsubscribing frees a
// place.
func TestWSSubscriptionCap(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, withRealtime(ws.Config{MaxSubscriptions: 2}))
	n := c.Nodes[0]
	r1, r2, r3 := c.wsRoom("One"), c.wsRoom("Two"), c.wsRoom("Three")
	cl := c.dial(n, owner)
	cl.subscribed(r1, 0)
	cl.subscribed(r2, 0)
	cl.subscribe(r3, 0)
	f := errorFrame(t, cl)
	assert.Equal(t, r3, f.Room)
	assert.Equal(t, "rate_limited", f.Error.Code, "%s", f.raw)
	assert.Contains(t, f.Error.Message, "2 rooms")
	cl.subscribed(r2, 0) // again: no new place taken
	cl.send(map[string]any{"type": "unsubscribe", "room": r1})
	cl.subscribed(r3, 0)
}

// TestWSFrameRateLimit: every frame kind has its own token bucket per
// connection; a frame over it is answered with rate_limited (naming its
// id and room), not dropped, and the bucket refills with time (an
// injected clock: nothing here waits for it).
func TestWSFrameRateLimit(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	c := newCluster(t, 1, withRealtime(ws.Config{Now: clock.Now, FrameRate: 1, FrameBurst: 3, MaxSubscriptions: 3}))
	n := c.Nodes[0]
	roomID := c.wsRoom("Rate")
	cl := c.dial(n, owner)

	for range 3 {
		cl.send(map[string]any{"type": "ping"})
	}
	for range 3 {
		cl.until(10*time.Second, "pong", func(f frame) bool { return f.Type == "pong" })
	}
	cl.send(map[string]any{"type": "ping"})
	f := errorFrame(t, cl)
	assert.Equal(t, "rate_limited", f.Error.Code, "%s", f.raw)

	// Other kinds have buckets of their own.
	cl.subscribed(roomID, 0)
	for range 3 {
		sendPresence(cl, roomID, "viewing", "")
	}
	cl.send(map[string]any{"type": "presence", "room": roomID, "state": "idle"})
	f = errorFrame(t, cl)
	assert.Equal(t, "rate_limited", f.Error.Code, "%s", f.raw)
	assert.Equal(t, roomID, f.Room)
	for i := range 3 {
		cl.command("c"+string(rune('0'+i)), roomID, "message.post", map[string]any{"body": "hi"})
	}
	f = cl.command("c9", roomID, "message.post", map[string]any{"body": "one too many"})
	assert.Equal(t, "error", f.Type, "%s", f.raw)
	assert.Equal(t, "rate_limited", f.Error.Code, "%s", f.raw)
	assert.Equal(t, "c9", f.ID)

	// The buckets refill.
	clock.Advance(time.Second)
	cl.barrier()
	f = cl.command("c10", roomID, "message.post", map[string]any{"body": "later"})
	assert.Equal(t, "ack", f.Type, "%s", f.raw)
}

// TestWSPresenceShowsKindOfMembership: a manager who joined a room as the
// customer's contact shows as a customer in its presence, as in its
// members list: presence does not tell customers who is seller staff.
func TestWSPresenceShowsKindOfMembership(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Presence kinds")
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/members",
		map[string]any{"user_id": manager.ID, "name": manager.Name, "kind": "customer"}, nil))
	cust := c.dial(n, custW)
	cust.subscribed(roomID, 0)
	contact := c.dial(n, manager)
	contact.subscribed(roomID, 0)
	fs := cust.waitPresence(presenceWait, roomID, "the contact viewing", present(manager.ID, "viewing", 1))
	assert.Equal(t, "customer", fs[len(fs)-1].members()[manager.ID].Kind)
	contact.send(map[string]any{"type": "presence", "room": roomID, "state": "typing"})
	fs = cust.waitPresence(presenceWait, roomID, "the contact typing", present(manager.ID, "typing", 1))
	assert.Equal(t, "customer", fs[len(fs)-1].members()[manager.ID].Kind)
}
