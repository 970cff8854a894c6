package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/hub"
	"dealroom/ws"
)

// presenceWait bounds the wait for a presence change that needs no
// timeout to happen (paced at 100ms by default).
const presenceWait = 5 * time.Second

// present matches a presence frame where the user is in the given state
// on the given number of devices (0: any).
func present(user, state string, devices int) func(frame) bool {
	return func(f frame) bool {
		m, ok := f.members()[user]
		return ok && m.State == state && (devices == 0 || m.Devices == devices)
	}
}

// absent matches a presence frame without the user.
func absent(user string) func(frame) bool {
	return func(f frame) bool {
		_, ok := f.members()[user]
		return !ok
	}
}

// mkTask creates a task in the room and returns its id.
func (c *cluster) mkTask(roomID, title, visibility string) string {
	c.t.Helper()
	var task struct {
		ID string `json:"id"`
	}
	body := map[string]any{"title": title}
	if visibility != "" {
		body["visibility"] = visibility
	}
	require.Equal(c.t, 201, c.rest(c.Nodes[0], owner, "POST", "/rooms/"+roomID+"/tasks", body, &task))
	require.NotEmpty(c.t, task.ID)
	return task.ID
}

func sendPresence(cl *wsClient, roomID, state, taskID string) {
	f := map[string]any{"type": "presence", "room": roomID, "state": state}
	if taskID != "" {
		f["task_id"] = taskID
	}
	cl.send(f)
}

// TestWSPresenceArrive: a device that subscribes shows as viewing to the
// room's other devices, each person once with the number of devices.
func TestWSPresenceArrive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Presence arrive")

	b := c.dial(n, staffW)
	b.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "B itself", present(staffW.ID, "viewing", 1))

	a1 := c.dial(n, owner)
	a1.subscribed(roomID, 0)
	fs := b.waitPresence(presenceWait, roomID, "A viewing on 1 device", present(owner.ID, "viewing", 1))
	m := fs[len(fs)-1].members()[owner.ID]
	assert.Equal(t, owner.Name, m.Name)
	assert.Equal(t, "staff", m.Kind)
	assert.Empty(t, m.TaskID)
	assert.Equal(t, 1, fs[len(fs)-1].members()[staffW.ID].Devices)

	// A sees B too.
	a1.waitPresence(presenceWait, roomID, "B viewing", present(staffW.ID, "viewing", 1))

	a2 := c.dial(n, owner)
	a2.subscribed(roomID, 0)
	fs = b.waitPresence(presenceWait, roomID, "A on 2 devices", present(owner.ID, "viewing", 2))
	assert.Len(t, fs[len(fs)-1].Members, 2, "one entry per person: %s", fs[len(fs)-1].raw)

	// A customer sees the same people.
	cust := c.dial(n, custW)
	cust.subscribed(roomID, 0)
	fs = cust.waitPresence(presenceWait, roomID, "A on 2 devices and B", func(f frame) bool {
		return present(owner.ID, "viewing", 2)(f) && present(staffW.ID, "viewing", 1)(f) && present(custW.ID, "viewing", 1)(f)
	})
	last := fs[len(fs)-1]
	var names []string
	for _, m := range last.Members {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{custW.Name, owner.Name, staffW.Name}, names, "ordered by name")

	// One device leaving leaves the other.
	a2.Close()
	b.waitPresence(presenceWait, roomID, "A on 1 device", present(owner.ID, "viewing", 1))
}

// TestWSPresenceTyping: typing shows with the task to those who may see
// the task; customers see work on an internal task as viewing, and never
// learn the task's id.
func TestWSPresenceTyping(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Presence typing")
	shared := c.mkTask(roomID, "Shared task", "")
	internal := c.mkTask(roomID, "Internal task "+internalMarker, "internal")

	staff := c.dial(n, staffW)
	staff.subscribed(roomID, 0)
	cust := c.dial(n, custW)
	var custGot []frame
	custGot = append(custGot, cust.subscribed(roomID, 0)...)
	a := c.dial(n, owner)
	a.subscribed(roomID, 0)
	staff.waitPresence(presenceWait, roomID, "A viewing", present(owner.ID, "viewing", 1))
	custGot = append(custGot, cust.waitPresence(presenceWait, roomID, "A viewing", present(owner.ID, "viewing", 1))...)

	// Typing on a shared task: everybody sees the task.
	sendPresence(a, roomID, "typing", shared)
	fs := staff.waitPresence(presenceWait, roomID, "A typing on the shared task", present(owner.ID, "typing", 1))
	assert.Equal(t, shared, fs[len(fs)-1].members()[owner.ID].TaskID)
	fs = cust.waitPresence(presenceWait, roomID, "A typing on the shared task", present(owner.ID, "typing", 1))
	custGot = append(custGot, fs...)
	assert.Equal(t, shared, fs[len(fs)-1].members()[owner.ID].TaskID)

	// Idle.
	sendPresence(a, roomID, "idle", "")
	staff.waitPresence(presenceWait, roomID, "A idle", present(owner.ID, "idle", 1))
	custGot = append(custGot, cust.waitPresence(presenceWait, roomID, "A idle", present(owner.ID, "idle", 1))...)

	// Typing on an internal task: staff see it, the customer sees A
	// viewing, without a task.
	sendPresence(a, roomID, "typing", internal)
	fs = staff.waitPresence(presenceWait, roomID, "A typing on the internal task", present(owner.ID, "typing", 1))
	assert.Equal(t, internal, fs[len(fs)-1].members()[owner.ID].TaskID)
	fs = cust.waitPresence(presenceWait, roomID, "A viewing (typing on an internal task)", present(owner.ID, "viewing", 1))
	custGot = append(custGot, fs...)
	assert.Empty(t, fs[len(fs)-1].members()[owner.ID].TaskID)

	// The customer's own typing on the shared task is seen by all; A's
	// other device typing on the internal task keeps A "typing" for staff.
	sendPresence(cust, roomID, "typing", shared)
	fs = staff.waitPresence(presenceWait, roomID, "the customer typing", present(custW.ID, "typing", 1))
	assert.Equal(t, shared, fs[len(fs)-1].members()[custW.ID].TaskID)
	assert.Equal(t, "typing", fs[len(fs)-1].members()[owner.ID].State)
	custGot = append(custGot, cust.waitPresence(presenceWait, roomID, "itself typing", present(custW.ID, "typing", 1))...)

	// Let any paced frame arrive, then look at everything the customer got.
	time.Sleep(300 * time.Millisecond)
	custGot = append(custGot, cust.barrier()...)
	custGot = append(custGot, cust.drain()...)
	require.NotEmpty(t, custGot)
	for _, f := range custGot {
		assert.NotContains(t, string(f.raw), internal, "the customer received the internal task's id")
		assert.NotContains(t, string(f.raw), internalMarker)
		if f.Type == "presence" {
			if m, ok := f.members()[owner.ID]; ok && m.State == "typing" {
				assert.Equal(t, shared, m.TaskID, "the customer sees A typing only on the shared task: %s", f.raw)
			}
		}
	}
}

// TestWSPresenceRefused: presence about a task the sender cannot see, or
// in a room it does not follow, is answered with an error frame.
func TestWSPresenceRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Presence refused")
	internal := c.mkTask(roomID, "Internal", "internal")
	shared := c.mkTask(roomID, "Shared", "")

	staff := c.dial(n, staffW)
	staff.subscribed(roomID, 0)
	cust := c.dial(n, custW)
	cust.subscribed(roomID, 0)
	staff.waitPresence(presenceWait, roomID, "the customer viewing", present(custW.ID, "viewing", 1))

	errorOf := func(cl *wsClient) frame {
		t.Helper()
		fs := cl.until(presenceWait, "an error frame", func(f frame) bool { return f.Type == "error" })
		f := fs[len(fs)-1]
		require.NotNil(t, f.Error, "%s", f.raw)
		return f
	}

	// A task the customer may not see: not found, as if it did not exist.
	sendPresence(cust, roomID, "typing", internal)
	f := errorOf(cust)
	assert.Equal(t, roomID, f.Room)
	assert.Equal(t, "not_found", f.Error.Code, "%s", f.raw)
	sendPresence(cust, roomID, "typing", "t_does_not_exist")
	f = errorOf(cust)
	assert.Equal(t, roomID, f.Room)
	assert.Equal(t, "not_found", f.Error.Code, "%s", f.raw)

	// A task of another room.
	other := c.wsRoom("Another room")
	otherTask := c.mkTask(other, "Elsewhere", "")
	sendPresence(staff, roomID, "typing", otherTask)
	f = errorOf(staff)
	assert.Equal(t, "not_found", f.Error.Code, "%s", f.raw)

	// Presence in a room the device does not follow (yet): the frame's
	// room is at fault (issue 11, item 15: it was a conflict).
	sendPresence(staff, other, "viewing", "")
	f = errorOf(staff)
	assert.Equal(t, other, f.Room)
	assert.Equal(t, "invalid_field", f.Error.Code, "%s", f.raw)
	assert.Equal(t, "room", f.Error.Field, "%s", f.raw)
	assert.Contains(t, f.Error.Message, "subscribe")
	a := c.dial(n, owner)
	sendPresence(a, roomID, "typing", shared)
	f = errorOf(a)
	assert.Equal(t, roomID, f.Room)
	assert.Equal(t, "invalid_field", f.Error.Code, "%s", f.raw)

	// Presence in a room the person may not see at all.
	out := c.dial(n, custOut)
	sendPresence(out, roomID, "viewing", "")
	f = errorOf(out)
	assert.Equal(t, roomID, f.Room)

	// Malformed presence.
	cust.send(map[string]any{"type": "presence", "room": roomID, "state": "dancing"})
	f = errorOf(cust)
	assert.Equal(t, "invalid_field", f.Error.Code)
	assert.Equal(t, "state", f.Error.Field)

	// Nothing of this changed what others see: the customer still views,
	// without a task; A, who never subscribed, is not there.
	time.Sleep(300 * time.Millisecond)
	var last frame
	for _, f := range staff.drain() {
		if f.Type == "presence" && f.Room == roomID {
			last = f
		}
	}
	if last.Type != "" {
		assert.Equal(t, "viewing", last.members()[custW.ID].State, "%s", last.raw)
		assert.NotContains(t, last.members(), owner.ID)
	}
	sendPresence(cust, roomID, "typing", shared)
	fs := staff.waitPresence(presenceWait, roomID, "the customer typing on the shared task", present(custW.ID, "typing", 1))
	assert.Equal(t, shared, fs[len(fs)-1].members()[custW.ID].TaskID)
	assert.NotContains(t, fs[len(fs)-1].members(), owner.ID)
}

// TestWSPresenceLeave: a device that unsubscribes, closes or drops its
// connection leaves the others' presence.
func TestWSPresenceLeave(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Presence leave")
	b := c.dial(n, staffW)
	b.subscribed(roomID, 0)

	a := c.dial(n, owner)
	a.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "A arrived", present(owner.ID, "viewing", 1))
	a.send(map[string]any{"type": "unsubscribe", "room": roomID})
	fs := b.waitPresence(presenceWait, roomID, "A gone after unsubscribing", absent(owner.ID))
	assert.Contains(t, fs[len(fs)-1].members(), staffW.ID, "B is still there")

	a.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "A back", present(owner.ID, "viewing", 1))
	a.Close()
	b.waitPresence(presenceWait, roomID, "A gone after closing", absent(owner.ID))

	a = c.dial(n, owner)
	a.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "A back again", present(owner.ID, "viewing", 1))
	a.Drop()
	b.waitPresence(presenceWait, roomID, "A gone after the connection dropped", absent(owner.ID))
}

// TestWSPresenceVanish: a device that stops answering (its connection is
// open but nothing reads it: a laptop closed, a network gone) leaves the
// room's presence within the keep-alive's bound.
func TestWSPresenceVanish(t *testing.T) {
	t.Parallel()
	// Pings come often; each has a second for its pong, so that B, which
	// reads, is not taken for gone on a busy machine (a 200 ms bound cut B
	// off once in CI), while A, which never answers, is gone well within
	// the 3 s the test waits.
	c := newCluster(t, 1, withRealtime(ws.Config{PingEvery: 200 * time.Millisecond, PingTimeout: time.Second}))
	n := c.Nodes[0]
	roomID := c.wsRoom("Presence vanish")
	b := c.dial(n, staffW)
	b.subscribed(roomID, 0)

	// A reads until it is subscribed, then never reads again: it never
	// answers a ping.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, n.wsURL("?token="+c.token(owner)), nil)
	require.NoError(t, err)
	t.Cleanup(func() { conn.CloseNow() })
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "room": roomID, "after": 0})
	require.NoError(t, conn.Write(ctx, websocket.MessageText, sub))
	for {
		_, data, err := conn.Read(ctx)
		require.NoError(t, err)
		var f frame
		require.NoError(t, json.Unmarshal(data, &f))
		if f.Type == "subscribed" {
			break
		}
	}
	b.waitPresence(presenceWait, roomID, "A arrived", present(owner.ID, "viewing", 1))
	stopped := time.Now()

	b.waitPresence(3*time.Second, roomID, "A gone after it stopped answering", absent(owner.ID))
	t.Logf("A left %s after it stopped reading", time.Since(stopped).Round(time.Millisecond))

	// B, which reads, stays connected through the same pings.
	time.Sleep(600 * time.Millisecond)
	b.barrier()
}

// TestWSPresenceAcrossInstances: devices on different instances see each
// other arrive, work and leave.
func TestWSPresenceAcrossInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	n0, n1 := c.Nodes[0], c.Nodes[1]
	roomID := c.wsRoom("Presence across")
	shared := c.mkTask(roomID, "Shared", "")
	internal := c.mkTask(roomID, "Internal", "internal")

	// A arrives first on node 0; B, arriving on node 1, learns of A.
	a := c.dial(n0, owner)
	a.subscribed(roomID, 0)
	b := c.dial(n1, staffW)
	b.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "A (node 0) as B arrives (node 1)", present(owner.ID, "viewing", 1))
	a.waitPresence(presenceWait, roomID, "B (node 1)", present(staffW.ID, "viewing", 1))

	// A customer on node 1 arrives after both.
	cust := c.dial(n1, custW)
	custGot := cust.subscribed(roomID, 0)

	sendPresence(a, roomID, "typing", shared)
	fs := b.waitPresence(presenceWait, roomID, "A typing on the shared task", present(owner.ID, "typing", 1))
	assert.Equal(t, shared, fs[len(fs)-1].members()[owner.ID].TaskID)

	sendPresence(a, roomID, "typing", internal)
	fs = b.waitPresence(presenceWait, roomID, "A typing on the internal task", present(owner.ID, "typing", 1))
	assert.Equal(t, internal, fs[len(fs)-1].members()[owner.ID].TaskID)
	fs = cust.waitPresence(presenceWait, roomID, "A viewing, for the customer", func(f frame) bool {
		return present(owner.ID, "viewing", 1)(f) && present(staffW.ID, "viewing", 1)(f)
	})
	custGot = append(custGot, fs...)
	assert.Empty(t, fs[len(fs)-1].members()[owner.ID].TaskID)

	// A second device of A on node 1: two devices, one per instance.
	a2 := c.dial(n1, owner)
	a2.subscribed(roomID, 0)
	fs = b.waitPresence(presenceWait, roomID, "A on 2 devices", present(owner.ID, "typing", 2))
	assert.Equal(t, internal, fs[len(fs)-1].members()[owner.ID].TaskID, "the busiest device tells")
	a.waitPresence(presenceWait, roomID, "itself on 2 devices", present(owner.ID, "typing", 2))

	// A leaves node 0: the device on node 1 remains.
	a.Close()
	b.waitPresence(presenceWait, roomID, "A on 1 device", present(owner.ID, "viewing", 1))
	a2.send(map[string]any{"type": "unsubscribe", "room": roomID})
	b.waitPresence(presenceWait, roomID, "A gone", absent(owner.ID))

	// A comes back on node 0 and leaves by unsubscribing.
	a = c.dial(n0, owner)
	a.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "A back on node 0", present(owner.ID, "viewing", 1))
	a.send(map[string]any{"type": "unsubscribe", "room": roomID})
	b.waitPresence(presenceWait, roomID, "A gone from node 0", absent(owner.ID))

	time.Sleep(300 * time.Millisecond)
	custGot = append(custGot, cust.barrier()...)
	custGot = append(custGot, cust.drain()...)
	for _, f := range custGot {
		assert.NotContains(t, string(f.raw), internal, "the customer on another instance received the internal task's id")
	}
}

// TestWSPresenceInstanceDies: when an instance dies without a word, its
// devices leave the other instances' presence once its announcement
// expires.
func TestWSPresenceInstanceDies(t *testing.T) {
	t.Parallel()
	const ttl = 1500 * time.Millisecond
	c := newCluster(t, 2, withHub(hub.Config{PresenceTTL: ttl}))
	n0, n1 := c.Nodes[0], c.Nodes[1]
	roomID := c.wsRoom("Presence death")

	b := c.dial(n1, staffW)
	b.subscribed(roomID, 0)
	a := c.dial(n0, owner)
	a.subscribed(roomID, 0)
	cust := c.dial(n0, custW)
	cust.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "A and C on node 0", func(f frame) bool {
		return present(owner.ID, "viewing", 1)(f) && present(custW.ID, "viewing", 1)(f)
	})
	// Let at least one renewal (every ttl/3) pass: presence holds beyond
	// the first announcement's TTL while node 0 lives.
	time.Sleep(ttl + 500*time.Millisecond)
	for _, f := range b.drain() {
		if f.Type == "presence" {
			assert.Contains(t, f.members(), owner.ID, "A left while node 0 lived: %s", f.raw)
		}
	}

	// Node 0 dies: cut off from the bus first, so that nothing it does
	// while stopping reaches node 1, then stopped.
	n0.Broker.Close()
	n0.Hub.Close()
	died := time.Now()
	fs := b.waitPresence(ttl+2*time.Second, roomID, "node 0's people gone", func(f frame) bool {
		return absent(owner.ID)(f) && absent(custW.ID)(f)
	})
	gone := time.Since(died)
	t.Logf("node 0's devices left %s after it died (TTL %s)", gone.Round(time.Millisecond), ttl)
	assert.GreaterOrEqual(t, gone, ttl/3, "they left by expiry, not by an announcement")
	assert.Contains(t, fs[len(fs)-1].members(), staffW.ID)

	// Node 1 keeps serving: a new device there is seen by B.
	a2 := c.dial(n1, owner)
	a2.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "A back on node 1", present(owner.ID, "viewing", 1))
}

// TestWSPresenceHubClosed: hub.Close (an instance shutting down) takes its
// devices out of the other instances' presence within TTL + 2s too.
func TestWSPresenceHubClosed(t *testing.T) {
	t.Parallel()
	const ttl = 1500 * time.Millisecond
	c := newCluster(t, 2, withHub(hub.Config{PresenceTTL: ttl}))
	n0, n1 := c.Nodes[0], c.Nodes[1]
	roomID := c.wsRoom("Presence shutdown")
	b := c.dial(n1, staffW)
	b.subscribed(roomID, 0)
	a := c.dial(n0, owner)
	a.subscribed(roomID, 0)
	b.waitPresence(presenceWait, roomID, "A on node 0", present(owner.ID, "viewing", 1))
	n0.Hub.Close()
	b.waitPresence(ttl+2*time.Second, roomID, "A gone", absent(owner.ID))
}
