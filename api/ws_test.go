package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/room"
)

// wsRoom makes a room with a staff writer and a customer writer.
func (c *cluster) wsRoom(name string) string {
	c.t.Helper()
	n := c.Nodes[0]
	var r struct {
		ID string `json:"id"`
	}
	require.Equal(c.t, 201, c.rest(n, owner, "POST", "/rooms", map[string]any{"name": name, "company": "Acme"}, &r))
	for _, m := range []map[string]any{
		{"user_id": staffW.ID, "name": staffW.Name, "kind": "staff", "access": "write"},
		{"user_id": custW.ID, "name": custW.Name, "kind": "customer", "access": "write"},
		{"user_id": custR.ID, "name": custR.Name, "kind": "customer", "access": "read"},
	} {
		require.Equal(c.t, 201, c.rest(n, owner, "POST", "/rooms/"+r.ID+"/members", m, nil))
	}
	return r.ID
}

func eventType(t testing.TB, ev json.RawMessage) string {
	var e struct {
		Type string `json:"type"`
	}
	require.NoError(t, json.Unmarshal(ev, &e))
	return e.Type
}

// TestWSSubscribeCatchUpThenLive: a device subscribing from 0 receives the
// room's history in order, then "subscribed" with the head, then changes
// made afterwards, each once.
func TestWSSubscribeCatchUpThenLive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Catch-up")
	history := c.visibleEvents(n, owner, roomID)
	require.Len(t, history, 4)

	cl := c.dial(n, owner)
	cl.subscribe(roomID, 0)
	fs := cl.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })
	require.Len(t, fs, 5)
	for i, f := range fs[:4] {
		assert.Equal(t, "event", f.Type)
		assert.Equal(t, roomID, f.Room)
		assert.JSONEq(t, string(history[i]), string(f.Event), "catch-up event %d as the timeline has it", i+1)
	}
	assert.Equal(t, int64(4), fs[4].Head)

	require.Equal(t, 201, c.rest(n, staffW, "POST", "/rooms/"+roomID+"/tasks", map[string]any{"title": "Live one"}, nil))
	f := cl.next(5 * time.Second)
	require.Equal(t, "event", f.Type)
	assert.Equal(t, int64(5), seqOf(t, f.Event))
	assert.Equal(t, "task.created", eventType(t, f.Event))

	// Resubscribing from the middle replays from there, once.
	cl.subscribe(roomID, 3)
	fs = cl.until(5*time.Second, "subscribed again", func(f frame) bool { return f.Type == "subscribed" })
	require.Len(t, fs, 3)
	assert.Equal(t, int64(4), seqOf(t, fs[0].Event))
	assert.Equal(t, int64(5), seqOf(t, fs[1].Event))
	assert.Equal(t, int64(5), fs[2].Head)
}

// TestWSCustomerSeesOnlyShared: a customer's device never receives an
// internal event, and receives shared events as the customer timeline
// shows them.
func TestWSCustomerSeesOnlyShared(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Visibility")
	cust := c.dial(n, custW)
	cust.subscribe(roomID, 0)
	cust.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })
	staff := c.dial(n, staffW)
	staff.subscribe(roomID, 0)
	staff.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })

	base := "/rooms/" + roomID
	require.Equal(t, 201, c.rest(n, owner, "POST", base+"/messages", map[string]any{"body": "internal " + internalMarker, "visibility": "internal"}, nil))
	require.Equal(t, 200, c.rest(n, owner, "PATCH", base, map[string]any{"value": 123456, "tags": []string{secretTag}}, nil))
	var it struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.rest(n, owner, "POST", base+"/tasks", map[string]any{"title": "Plan " + internalMarker, "visibility": "internal"}, &it))
	require.Equal(t, 200, c.rest(n, owner, "PATCH", base+"/tasks/"+it.ID, map[string]any{"title": "Shared plan", "description": "", "visibility": "shared"}, nil))
	require.Equal(t, 201, c.rest(n, owner, "POST", base+"/messages", map[string]any{"body": "shared end"}, nil))

	staffGot := staff.until(5*time.Second, "the last message", func(f frame) bool { return f.Type == "event" && seqOf(t, f.Event) == 9 })
	assert.Len(t, staffGot, 5, "staff receive all five events")
	custGot := cust.until(5*time.Second, "the last message", func(f frame) bool { return f.Type == "event" && seqOf(t, f.Event) == 9 })
	var seqs []int64
	for _, f := range custGot {
		assert.NotContains(t, string(f.raw), internalMarker)
		assert.NotContains(t, string(f.raw), secretTag)
		assert.NotContains(t, string(f.raw), "123456")
		seqs = append(seqs, seqOf(t, f.Event))
	}
	want := c.visibleEvents(n, custW, roomID)
	var wantSeqs []int64
	for _, ev := range want {
		if s := seqOf(t, ev); s > 4 {
			wantSeqs = append(wantSeqs, s)
		}
	}
	assert.Equal(t, wantSeqs, seqs, "the customer's device gets what the customer timeline shows")
	for i, f := range custGot {
		assert.JSONEq(t, string(want[len(want)-len(custGot)+i]), string(f.Event))
	}
}

// TestWSCommands: every operation works over the socket with an ack that
// carries the event's seq, repeats are applied once, and refusals come as
// error frames with the REST error codes.
func TestWSCommands(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Commands")
	cl := c.dial(n, owner)
	cl.subscribe(roomID, 0)
	cl.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })

	ack := cl.command("c1", roomID, "task.create", map[string]any{"title": "Over the socket", "assignees": []string{custW.ID}})
	require.Equal(t, "ack", ack.Type, "%s", ack.raw)
	assert.Equal(t, int64(5), ack.Seq)
	var created struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	require.NoError(t, json.Unmarshal(ack.Data, &created))
	assert.Equal(t, "Over the socket", created.Title)

	again := cl.command("c1", roomID, "task.create", map[string]any{"title": "Over the socket", "assignees": []string{custW.ID}})
	require.Equal(t, "ack", again.Type)
	assert.Equal(t, int64(5), again.Seq, "a repeated command id is acknowledged with the first seq")

	steps := []struct {
		op   string
		data map[string]any
	}{
		{"task.update", map[string]any{"id": created.ID, "status": "done"}},
		{"message.post", map[string]any{"body": "Hello @Carl", "task_id": created.ID}},
		{"room.update", map[string]any{"stage": "solution"}},
		{"member.add", map[string]any{"user_id": "zoe", "name": "Zoe", "kind": "staff", "access": "read"}},
		{"member.update", map[string]any{"user_id": "zoe", "access": "write"}},
		{"member.remove", map[string]any{"user_id": "zoe"}},
		{"invite.create", map[string]any{"email": "buyer@acme.example"}},
	}
	seq := int64(5)
	var msgID, inviteID string
	for i, s := range steps {
		a := cl.command(fmt.Sprintf("s%d", i), roomID, s.op, s.data)
		require.Equal(t, "ack", a.Type, "%s: %s", s.op, a.raw)
		seq++
		assert.Equal(t, seq, a.Seq, s.op)
		var d struct {
			ID string `json:"id"`
		}
		json.Unmarshal(a.Data, &d)
		switch s.op {
		case "message.post":
			msgID = d.ID
		case "invite.create":
			inviteID = d.ID
		}
	}
	for i, s := range []struct {
		op   string
		data map[string]any
	}{
		{"message.edit", map[string]any{"id": msgID, "body": "Hello again"}},
		{"message.delete", map[string]any{"id": msgID}},
		{"invite.revoke", map[string]any{"id": inviteID}},
		{"task.delete", map[string]any{"id": created.ID}},
	} {
		a := cl.command(fmt.Sprintf("t%d", i), roomID, s.op, s.data)
		require.Equal(t, "ack", a.Type, "%s: %s", s.op, a.raw)
		seq++
		assert.Equal(t, seq, a.Seq, s.op)
	}
	// Every acknowledged change arrived as an event, once, in order.
	evs := cl.until(5*time.Second, "the last event", func(f frame) bool { return f.Type == "event" && seqOf(t, f.Event) == seq })
	var got []int64
	for _, f := range evs {
		if f.Type == "event" {
			got = append(got, seqOf(t, f.Event))
		}
	}
	var want []int64
	for s := int64(5); s <= seq; s++ {
		want = append(want, s)
	}
	assert.Equal(t, want, got)

	// Refusals.
	cust := c.dial(n, custR)
	for _, tc := range []struct {
		name, op, code string
		data           any
		as             *wsClient
	}{
		{"unknown op", "task.explode", "invalid_field", map[string]any{}, cl},
		{"bad field", "task.create", "invalid_field", map[string]any{"title": ""}, cl},
		{"unknown field", "task.create", "invalid_field", map[string]any{"title": "x", "colour": "red"}, cl},
		{"missing id", "task.update", "invalid_field", map[string]any{"status": "done"}, cl},
		{"unknown task", "task.update", "not_found", map[string]any{"id": "t_nope", "status": "done"}, cl},
		{"reader writes", "message.post", "forbidden", map[string]any{"body": "hi"}, cust},
	} {
		a := tc.as.command("bad-"+strings.ReplaceAll(tc.name, " ", "-"), roomID, tc.op, tc.data)
		require.Equal(t, "error", a.Type, tc.name)
		require.NotNil(t, a.Error, tc.name)
		assert.Equal(t, tc.code, a.Error.Code, "%s: %s", tc.name, a.Error.Message)
	}
	outsider := c.dial(n, custOut)
	a := outsider.command("o1", roomID, "message.post", map[string]any{"body": "let me in"})
	require.Equal(t, "error", a.Type)
	assert.Equal(t, "not_found", a.Error.Code)
	assert.Len(t, c.visibleEvents(n, owner, roomID), int(seq), "refused commands wrote nothing")
}

// TestWSDeletedMessageTextIsGone: once a message is deleted, a device that
// catches up (from the feed's memory or from the store) receives its
// tombstone in place of what it said.
func TestWSDeletedMessageTextIsGone(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Deletion")
	var m struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.rest(n, custW, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": "oops my password is hunter2"}, &m))
	require.Equal(t, 200, c.rest(n, custW, "PATCH", "/rooms/"+roomID+"/messages/"+m.ID, map[string]any{"body": "still hunter2"}, nil))
	// A device follows the room now: the feed keeps the events in memory.
	live := c.dial(n, owner)
	live.subscribe(roomID, 0)
	live.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })
	require.Equal(t, 204, c.rest(n, custW, "DELETE", "/rooms/"+roomID+"/messages/"+m.ID, nil, nil))
	live.until(5*time.Second, "the deletion", func(f frame) bool { return f.Type == "event" && eventType(t, f.Event) == "message.deleted" })

	for _, node := range []*node{n, c.AddNode(clusterConfig{})} { // memory, then a fresh instance reading the store
		cl := c.dial(node, custR)
		cl.subscribe(roomID, 0)
		fs := cl.until(5*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })
		for _, f := range fs {
			assert.NotContains(t, string(f.raw), "hunter2")
		}
	}
	for _, ev := range c.visibleEvents(n, custR, roomID) {
		assert.NotContains(t, string(ev), "hunter2", "the timeline forgets a deleted message's text")
	}
}

// slowStore makes every write take a while, as a loaded database does.
type slowStore struct {
	room.Store
	delay time.Duration
}

func (s slowStore) Execute(ctx context.Context, cmd room.Command) (room.Executed, error) {
	time.Sleep(s.delay)
	return s.Store.Execute(ctx, cmd)
}

// TestWSSlowCommandsKeepTheConnection: while a command waits on a slow
// store, the connection still reads and answers frames (and so keep-alive
// pings: a reader stuck in a command would be cut off by them), and the
// commands are answered in order.
func TestWSSlowCommandsKeepTheConnection(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cc *clusterConfig) {
		cc.store = func(s room.Store) room.Store { return slowStore{s, 2 * time.Second} }
	})
	n := c.Nodes[0]
	roomID := c.wsRoom("Slow store")
	cl := c.dial(n, owner)
	cl.subscribe(roomID, 0)
	// A bound for a stuck subscription, not a speed: on a loaded machine
	// (the race detector, other suites) it has taken over 5 s.
	cl.until(20*time.Second, "subscribed", func(f frame) bool { return f.Type == "subscribed" })
	for i := range 2 {
		cl.send(map[string]any{"type": "command", "id": fmt.Sprintf("slow-%d", i), "room": roomID, "op": "message.post",
			"data": map[string]any{"body": fmt.Sprintf("slow %d", i)}})
	}
	cl.send(map[string]any{"type": "ping"})
	var order []string
	cl.until(30*time.Second, "the last ack", func(f frame) bool {
		if f.Type == "ack" || f.Type == "pong" {
			order = append(order, f.Type+" "+f.ID)
		}
		return f.Type == "ack" && f.ID == "slow-1"
	})
	assert.Equal(t, []string{"pong ", "ack slow-0", "ack slow-1"}, order,
		"the ping sent after two slow commands is answered first; the commands in order")
}

// TestWSCommandsAreCounted: an operator sees the websocket's commands in
// /metrics by op and outcome, as the REST requests are by route and
// status (commands no longer pass through the HTTP router).
func TestWSCommandsAreCounted(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Counted")
	cl := c.dial(n, owner)
	require.Equal(t, "ack", cl.command("k1", roomID, "task.create", map[string]any{"title": "One"}).Type)
	require.Equal(t, "ack", cl.command("k2", roomID, "task.create", map[string]any{"title": "Two"}).Type)
	require.Equal(t, "error", cl.command("k3", roomID, "task.create", map[string]any{"title": ""}).Type)
	require.Equal(t, "error", cl.command("k4", roomID, "task.explode", map[string]any{}).Type)

	resp, err := http.Get(n.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(body)
	assert.Contains(t, text, `dealroom_ws_commands_total{code="ok",op="task.create"} 2`)
	assert.Contains(t, text, `dealroom_ws_commands_total{code="invalid_field",op="task.create"} 1`)
	assert.Contains(t, text, `dealroom_ws_commands_total{code="invalid_field",op="unknown"} 1`, "an unknown op is counted under one label")
	assert.Contains(t, text, `dealroom_ws_command_duration_seconds_count{op="task.create"} 3`)
}
