package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testclock"
	"dealroom/ws"
)

// readCases are the read-state routes as every kind of person: members set
// and read markers, strangers find no room, and no marker is an event.
func readCases() []accessCase {
	return []accessCase{
		{name: "PUT read", method: "PUT", path: "/rooms/{room}/read", body: jsonBody(map[string]any{"seq": 3}),
			want: want{204, 204, 204, 204, 204, 404, 404, 204, 204, 401}},
		{name: "PUT read without seq", method: "PUT", path: "/rooms/{room}/read", body: jsonBody(map[string]any{}),
			want: want{422, 422, 422, 422, 422, 422, 422, 422, 422, 401}},
		{name: "GET reads", method: "GET", path: "/rooms/{room}/reads", want: allMembersRead},
		{name: "POST read-all", method: "POST", path: "/me/read-all",
			want: want{204, 204, 204, 204, 204, 204, 204, 204, 204, 401}},
	}
}

func TestReadAccessMatrix(t *testing.T) {
	t.Parallel()
	for _, c := range readCases() {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			for i, w := range matrixActors {
				t.Run(w.name, func(t *testing.T) {
					f := newFixture(t, ts)
					runAccessCase(t, f, c, w, c.want[i])
				})
			}
		})
	}
}

// TestNotFoundDoesNotLeakReads: a stranger's answer on the read routes of
// an existing room is that of a room that does not exist.
func TestNotFoundDoesNotLeakReads(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	for _, stranger := range matrixActors[5:7] {
		for _, r := range []struct{ method, path string }{{"GET", "/rooms/{room}/reads"}, {"PUT", "/rooms/{room}/read"}} {
			var body any
			if r.method == "PUT" {
				body = map[string]any{"seq": 1}
			}
			got := ts.do(t, r.method, f.expand(r.path), tok(t, stranger.actor), body)
			fake := ts.do(t, r.method, strings.Replace(f.expand(r.path), f.Room, "r_0000000000000000000000nope", 1), tok(t, stranger.actor), body)
			assert.Equal(t, 404, got.Status, "%s %s", stranger.name, r.path)
			assert.Equal(t, strings.ReplaceAll(string(fake.Body), "r_0000000000000000000000nope", "ROOM"),
				strings.ReplaceAll(string(got.Body), f.Room, "ROOM"))
		}
	}
}

// TestReadsSeenBy: markers move forward only, are clamped to the room's
// head, and a customer's answer holds markers and nothing else.
func TestReadsSeenBy(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	head := int64(ts.eventCount(t, f.Room))

	ts.must(t, 204, "PUT", base+"/read", owner, map[string]any{"seq": head + 50})
	ts.must(t, 204, "PUT", base+"/read", custW, map[string]any{"seq": 4})
	ts.must(t, 204, "PUT", base+"/read", custW, map[string]any{"seq": 2})
	ts.must(t, 422, "PUT", base+"/read", custW, map[string]any{"seq": -1})
	assert.Equal(t, int(head), ts.eventCount(t, f.Room), "a marker is not an event")

	for _, a := range matrixActors[:5] {
		r := ts.must(t, 200, "GET", base+"/reads", a.actor, nil)
		seqs := map[string]float64{}
		for _, it := range r.items(t) {
			keys := make([]string, 0, len(it))
			for k := range it {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			assert.Equal(t, []string{"at", "seq", "user_id"}, keys, "a marker is a person, a seq and a time")
			seqs[it["user_id"].(string)] = it["seq"].(float64)
		}
		assert.Equal(t, map[string]float64{owner.ID: float64(head), custW.ID: 4}, seqs, a.name)
	}
}

// TestUnreadInRoomList: the room list tells each reader what they have not
// seen: the events after their marker they may see, not their own.
func TestUnreadInRoomList(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	unread := func(a who) map[string]any {
		t.Helper()
		items := ts.must(t, 200, "GET", "/rooms", a.actor, nil).items(t)
		require.Len(t, items, 1)
		u, ok := items[0]["unread"].(map[string]any)
		require.True(t, ok, "a listed room has unread: %v", items[0])
		return u
	}
	cust, rep, walter := matrixActors[3], matrixActors[0], matrixActors[1]
	for _, a := range []who{cust, rep, walter} {
		ts.must(t, 204, "PUT", base+"/read", a.actor, map[string]any{"seq": 1 << 40})
		assert.Equal(t, float64(0), unread(a)["count"], a.name)
	}
	ts.must(t, 201, "POST", base+"/messages", staffW, map[string]any{"body": "shared news"})
	ts.must(t, 201, "POST", base+"/messages", staffW, map[string]any{"body": "note " + internalMarker, "visibility": "internal"})
	ts.must(t, 201, "POST", base+"/messages", owner, map[string]any{"body": "more shared news"})

	assert.Equal(t, float64(2), unread(cust)["count"], "the customer: two shared messages, not the internal one")
	assert.Equal(t, float64(2), unread(rep)["count"], "the owner: Walter's two, not her own")
	assert.Equal(t, float64(1), unread(walter)["count"], "Walter: the owner's one")

	ts.must(t, 204, "POST", "/me/read-all", custW, nil)
	assert.Equal(t, float64(0), unread(cust)["count"])
	for _, it := range ts.must(t, 200, "GET", "/me/inbox", custW, nil).items(t) {
		assert.NotNil(t, it["read_at"], "read-all marks the inbox read: %v", it)
	}
}

// TestWSReadLive: a customer's read frame moves their marker, and the rep's
// device in the room gets it live as a read frame; the REST route does
// the same.
func TestWSReadLive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	roomID := c.wsRoom("Seen by")
	var msg struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.rest(c.Nodes[0], owner, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": "Here is the offer"}, &msg))
	var r struct {
		Head int64 `json:"head"`
	}
	require.Equal(t, 200, c.rest(c.Nodes[0], owner, "GET", "/rooms/"+roomID, nil, &r))

	rep := c.dial(c.Nodes[1], owner)
	rep.subscribed(roomID, r.Head)
	customer := c.dial(c.Nodes[0], custW)
	customer.send(map[string]any{"type": "read", "room": roomID, "seq": r.Head})

	type readFrame struct {
		Type   string    `json:"type"`
		Room   string    `json:"room"`
		UserID string    `json:"user_id"`
		Seq    int64     `json:"seq"`
		At     time.Time `json:"at"`
	}
	readOf := func(f frame) readFrame {
		var rf readFrame
		require.NoError(t, json.Unmarshal(f.raw, &rf))
		return rf
	}
	isRead := func(user string, seq int64) func(frame) bool {
		return func(f frame) bool { rf := readOf(f); return rf.Type == "read" && rf.UserID == user && rf.Seq == seq }
	}
	fs := rep.until(10*time.Second, "the customer's read frame", isRead(custW.ID, r.Head))
	got := readOf(fs[len(fs)-1])
	assert.Equal(t, roomID, got.Room)
	assert.False(t, got.At.IsZero())

	require.Equal(t, http.StatusNoContent, c.rest(c.Nodes[0], staffW, "PUT", "/rooms/"+roomID+"/read", map[string]any{"seq": r.Head}, nil))
	rep.until(10*time.Second, "Walter's read frame", isRead(staffW.ID, r.Head))

	var reads struct {
		Items []readFrame `json:"items"`
	}
	require.Equal(t, 200, c.rest(c.Nodes[1], owner, "GET", "/rooms/"+roomID+"/reads", nil, &reads))
	var users []string
	for _, it := range reads.Items {
		users = append(users, it.UserID)
	}
	assert.ElementsMatch(t, []string{custW.ID, staffW.ID}, users)

	// A read frame that breaks the rules is answered with an error frame.
	customer.send(map[string]any{"type": "read", "room": roomID, "seq": "x"})
	customer.until(5*time.Second, "an error frame", func(f frame) bool { return f.Type == "error" })
	stranger := c.dial(c.Nodes[0], custOut)
	stranger.send(map[string]any{"type": "read", "room": roomID, "seq": 1})
	fs = stranger.until(5*time.Second, "an error frame", func(f frame) bool { return f.Type == "error" })
	assert.Equal(t, "not_found", fs[len(fs)-1].Error.Code)
}

// TestWSReadRateLimit: read frames have a token bucket of their own per
// connection; one over it is answered with rate_limited naming its room,
// while commands keep their own budget (an injected clock).
func TestWSReadRateLimit(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	c := newCluster(t, 1, withRealtime(ws.Config{Now: clock.Now, FrameRate: 1, FrameBurst: 3}))
	n := c.Nodes[0]
	roomID := c.wsRoom("Read rate")
	cl := c.dial(n, custW)
	for i := range 3 {
		cl.send(map[string]any{"type": "read", "room": roomID, "seq": i + 1})
	}
	cl.send(map[string]any{"type": "read", "room": roomID, "seq": 9})
	f := errorFrame(t, cl)
	assert.Equal(t, "rate_limited", f.Error.Code, "%s", f.raw)
	assert.Equal(t, roomID, f.Room)
	assert.Equal(t, "ack", cl.command("c1", roomID, "message.post", map[string]any{"body": "still heard"}).Type)

	var reads struct {
		Items []struct {
			UserID string `json:"user_id"`
			Seq    int64  `json:"seq"`
		} `json:"items"`
	}
	require.Equal(t, 200, c.rest(n, owner, "GET", "/rooms/"+roomID+"/reads", nil, &reads))
	require.Len(t, reads.Items, 1)
	assert.Equal(t, custW.ID, reads.Items[0].UserID)
	assert.Equal(t, int64(3), reads.Items[0].Seq, "the frames within the budget were carried out, the one over it not")
}
