package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
)

// who is one column of the access matrix.
type who struct {
	name  string
	actor dealroom.Actor
	anon  bool // sends no token
}

// The columns, in the order of the want arrays below.
var matrixActors = []who{
	{name: "owner", actor: owner},
	{name: "staff_writer", actor: staffW},
	{name: "staff_reader", actor: staffR},
	{name: "customer_writer", actor: custW},
	{name: "customer_reader", actor: custR},
	{name: "staff_nonmember", actor: staffOut},
	{name: "customer_nonmember", actor: custOut},
	{name: "manager", actor: manager},
	{name: "admin", actor: admin},
	{name: "no_token", anon: true},
}

// want holds the expected status per column:
// owner, staff writer, staff reader, customer writer, customer reader,
// staff non-member, customer non-member, manager, admin, no token.
type want [10]int

// Frequent rows.
var (
	// every member and overseer reads; strangers find nothing.
	allMembersRead = want{200, 200, 200, 200, 200, 404, 404, 200, 200, 401}
	// internal items: customers find nothing either.
	staffMembersRead = want{200, 200, 200, 404, 404, 404, 404, 200, 200, 401}
)

// accessCase is one row: a route tried by every column.
type accessCase struct {
	name   string
	method string
	path   string // {room}, {task}, ... from the fixture; {self} is the actor's id
	body   func(tb testing.TB, f *fixture, w who) any
	// write: an allowed request appends exactly one event to the fixture
	// room; any other request appends none.
	write bool
	want  want
	// check runs after a successful request that got its expected status.
	check func(t *testing.T, f *fixture, w who, r response)
}

func jsonBody(v any) func(testing.TB, *fixture, who) any {
	return func(testing.TB, *fixture, who) any { return v }
}

func accessCases() []accessCase {
	return []accessCase{
		// Rooms.
		{name: "GET room", method: "GET", path: "/rooms/{room}", want: allMembersRead,
			check: func(t *testing.T, f *fixture, w who, r response) {
				body := r.object(t)
				assert.Equal(t, f.Room, body["id"])
				if w.actor.IsCustomer() {
					for _, k := range []string{"value", "close_window", "tags", "follow_up_days"} {
						assert.NotContains(t, body, k, "a customer's view of the room hides %s", k)
					}
				} else {
					assert.EqualValues(t, secretValue, body["value"], "staff see the deal value")
					assert.Equal(t, "this_month", body["close_window"])
					assert.Equal(t, []any{secretTag}, body["tags"])
				}
			}},
		{name: "GET unknown room", method: "GET", path: "/rooms/r_0000000000000000000000nope",
			want: want{404, 404, 404, 404, 404, 404, 404, 404, 404, 401}},
		{name: "GET unknown room tasks", method: "GET", path: "/rooms/r_0000000000000000000000nope/tasks",
			want: want{404, 404, 404, 404, 404, 404, 404, 404, 404, 401}},
		{name: "PATCH room", method: "PATCH", path: "/rooms/{room}", write: true,
			body: jsonBody(map[string]any{"stage": "solution", "close_window": "next_month", "follow_up_days": 30}),
			want: want{200, 200, 403, 403, 403, 404, 404, 200, 200, 401},
			check: func(t *testing.T, f *fixture, w who, r response) {
				assert.EqualValues(t, 30, r.object(t)["follow_up_days"], "the room's follow-up period")
			}},
		{name: "GET room events", method: "GET", path: "/rooms/{room}/events", want: allMembersRead},

		// Members.
		{name: "GET members", method: "GET", path: "/rooms/{room}/members", want: allMembersRead,
			check: func(t *testing.T, f *fixture, w who, r response) {
				assert.Len(t, r.items(t), 6, "every member sees all six members")
			}},
		{name: "POST member", method: "POST", path: "/rooms/{room}/members", write: true,
			body: jsonBody(map[string]any{"user_id": "nina", "name": "Nina New", "kind": "staff", "access": "read"}),
			want: want{201, 403, 403, 403, 403, 404, 404, 201, 201, 401}},
		{name: "POST customer member", method: "POST", path: "/rooms/{room}/members", write: true,
			body: jsonBody(map[string]any{"user_id": "ben", "name": "Ben Buyer", "kind": "customer"}),
			want: want{201, 403, 403, 403, 403, 404, 404, 201, 201, 401}},
		{name: "PATCH member", method: "PATCH", path: "/rooms/{room}/members/" + target.ID, write: true,
			body: jsonBody(map[string]any{"access": "read"}),
			want: want{200, 403, 403, 403, 403, 404, 404, 200, 200, 401}},
		{name: "PATCH member role", method: "PATCH", path: "/rooms/{room}/members/" + target.ID, write: true,
			body: jsonBody(map[string]any{"role_in_room": "owner"}),
			want: want{200, 403, 403, 403, 403, 404, 404, 200, 200, 401}},
		{name: "DELETE member", method: "DELETE", path: "/rooms/{room}/members/" + target.ID, write: true,
			want: want{204, 403, 403, 403, 403, 404, 404, 204, 204, 401}},
		// Anyone may leave, except the last owner; overseers are no members.
		{name: "DELETE own membership", method: "DELETE", path: "/rooms/{room}/members/{self}", write: true,
			want: want{409, 204, 204, 204, 204, 404, 404, 404, 404, 401}},

		// Tasks.
		{name: "GET tasks", method: "GET", path: "/rooms/{room}/tasks", want: allMembersRead,
			check: func(t *testing.T, f *fixture, w who, r response) {
				n := 2
				if w.actor.IsCustomer() {
					n = 1
				}
				assert.Len(t, r.items(t), n)
			}},
		{name: "POST shared task", method: "POST", path: "/rooms/{room}/tasks", write: true,
			body: jsonBody(map[string]any{"title": "Next step", "assignees": []string{custW.ID}}),
			want: want{201, 201, 403, 201, 403, 404, 404, 201, 201, 401}},
		{name: "POST internal task", method: "POST", path: "/rooms/{room}/tasks", write: true,
			body: jsonBody(map[string]any{"title": "Staff only step", "visibility": "internal"}),
			want: want{201, 201, 403, 403, 403, 404, 404, 201, 201, 401}},
		{name: "GET shared task", method: "GET", path: "/rooms/{room}/tasks/{task}", want: allMembersRead},
		{name: "GET internal task", method: "GET", path: "/rooms/{room}/tasks/{itask}", want: staffMembersRead},
		{name: "PATCH shared task", method: "PATCH", path: "/rooms/{room}/tasks/{task}", write: true,
			body: jsonBody(map[string]any{"status": "in_progress"}),
			want: want{200, 200, 403, 200, 403, 404, 404, 200, 200, 401}},
		{name: "PATCH internal task", method: "PATCH", path: "/rooms/{room}/tasks/{itask}", write: true,
			body: jsonBody(map[string]any{"status": "done"}),
			want: want{200, 200, 403, 404, 404, 404, 404, 200, 200, 401}},
		// Customers delete only what they created; this one is the owner's.
		{name: "DELETE shared task", method: "DELETE", path: "/rooms/{room}/tasks/{task}", write: true,
			want: want{204, 204, 403, 403, 403, 404, 404, 204, 204, 401}},
		{name: "DELETE internal task", method: "DELETE", path: "/rooms/{room}/tasks/{itask}", write: true,
			want: want{204, 204, 403, 404, 404, 404, 404, 204, 204, 401}},

		// Messages.
		{name: "GET messages", method: "GET", path: "/rooms/{room}/messages", want: allMembersRead,
			check: func(t *testing.T, f *fixture, w who, r response) {
				n := 2
				if w.actor.IsCustomer() {
					n = 1
				}
				assert.Len(t, r.items(t), n)
			}},
		{name: "GET internal thread", method: "GET", path: "/rooms/{room}/messages?parent_id={imsg}", want: staffMembersRead},
		{name: "GET internal task discussion", method: "GET", path: "/rooms/{room}/messages?task_id={itask}", want: staffMembersRead},
		{name: "POST shared message", method: "POST", path: "/rooms/{room}/messages", write: true,
			body: jsonBody(map[string]any{"body": "Shall we meet on Tuesday?"}),
			want: want{201, 201, 403, 201, 403, 404, 404, 201, 201, 401}},
		{name: "POST internal message", method: "POST", path: "/rooms/{room}/messages", write: true,
			body: jsonBody(map[string]any{"body": "Note to self", "visibility": "internal"}),
			want: want{201, 201, 403, 403, 403, 404, 404, 201, 201, 401}},
		{name: "POST reply to shared message", method: "POST", path: "/rooms/{room}/messages", write: true,
			body: func(_ testing.TB, f *fixture, _ who) any { return map[string]any{"body": "Agreed", "parent_id": f.Msg} },
			want: want{201, 201, 403, 201, 403, 404, 404, 201, 201, 401}},
		// To a customer the internal parent does not exist: the same answer
		// as for a parent that does not exist at all.
		{name: "POST reply to internal message", method: "POST", path: "/rooms/{room}/messages", write: true,
			body: func(_ testing.TB, f *fixture, _ who) any {
				return map[string]any{"body": "Agreed", "parent_id": f.IMsg}
			},
			want: want{201, 201, 403, 422, 403, 404, 404, 201, 201, 401}},
		{name: "POST message under internal task", method: "POST", path: "/rooms/{room}/messages", write: true,
			body: func(_ testing.TB, f *fixture, _ who) any {
				return map[string]any{"body": "Status?", "task_id": f.ITask}
			},
			want: want{201, 201, 403, 422, 403, 404, 404, 201, 201, 401}},
		{name: "POST message with internal attachment", method: "POST", path: "/rooms/{room}/messages", write: true,
			body: func(_ testing.TB, f *fixture, _ who) any {
				return map[string]any{"body": "See file", "visibility": "internal", "attachments": []string{f.IAtt}}
			},
			want: want{201, 201, 403, 403, 403, 404, 404, 201, 201, 401}},
		// A shared message cannot carry an internal file; to a customer the
		// file does not exist. Both are refused without telling more.
		{name: "POST shared message with internal attachment", method: "POST", path: "/rooms/{room}/messages", write: true,
			body: func(_ testing.TB, f *fixture, _ who) any {
				return map[string]any{"body": "See file", "attachments": []string{f.IAtt}}
			},
			want: want{422, 422, 403, 422, 403, 404, 404, 422, 422, 401}},
		{name: "POST message with shared attachment", method: "POST", path: "/rooms/{room}/messages", write: true,
			body: func(_ testing.TB, f *fixture, _ who) any {
				return map[string]any{"body": "See file", "attachments": []string{f.Att}}
			},
			want: want{201, 201, 403, 201, 403, 404, 404, 201, 201, 401}},
		{name: "GET shared message", method: "GET", path: "/rooms/{room}/messages/{msg}", want: allMembersRead},
		{name: "GET internal message", method: "GET", path: "/rooms/{room}/messages/{imsg}", want: staffMembersRead},
		// Only the author edits (the owner wrote these).
		{name: "PATCH shared message", method: "PATCH", path: "/rooms/{room}/messages/{msg}", write: true,
			body: jsonBody(map[string]any{"body": "Welcome, here is the updated plan"}),
			want: want{200, 403, 403, 403, 403, 404, 404, 403, 403, 401}},
		{name: "PATCH internal message", method: "PATCH", path: "/rooms/{room}/messages/{imsg}", write: true,
			body: jsonBody(map[string]any{"body": "Between us, revised"}),
			want: want{200, 403, 403, 404, 404, 404, 404, 403, 403, 401}},
		// Authors, owners, managers and admins delete.
		{name: "DELETE shared message", method: "DELETE", path: "/rooms/{room}/messages/{msg}", write: true,
			want: want{204, 403, 403, 403, 403, 404, 404, 204, 204, 401}},
		{name: "DELETE internal message", method: "DELETE", path: "/rooms/{room}/messages/{imsg}", write: true,
			want: want{204, 403, 403, 404, 404, 404, 404, 204, 204, 401}},

		// Attachments.
		{name: "GET attachments", method: "GET", path: "/rooms/{room}/attachments", want: allMembersRead,
			check: func(t *testing.T, f *fixture, w who, r response) {
				n := 2
				if w.actor.IsCustomer() {
					n = 1
				}
				assert.Len(t, r.items(t), n)
			}},
		{name: "POST shared attachment", method: "POST", path: "/rooms/{room}/attachments", write: true,
			body: func(tb testing.TB, _ *fixture, _ who) any {
				return fileUpload(tb, "notes.txt", []byte("meeting notes"))
			},
			want: want{201, 201, 403, 201, 403, 404, 404, 201, 201, 401}},
		{name: "POST internal attachment", method: "POST", path: "/rooms/{room}/attachments?visibility=internal", write: true,
			body: func(tb testing.TB, _ *fixture, _ who) any { return fileUpload(tb, "costs.txt", []byte("our costs")) },
			want: want{201, 201, 403, 403, 403, 404, 404, 201, 201, 401}},
		{name: "GET shared attachment", method: "GET", path: "/rooms/{room}/attachments/{att}", want: allMembersRead,
			check: func(t *testing.T, f *fixture, w who, r response) {
				assert.Equal(t, sharedFileBody, string(r.Body), "the stored bytes are the bytes uploaded")
				assert.Contains(t, r.Header.Get("Content-Disposition"), "attachment")
				assert.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))
			}},
		{name: "GET internal attachment", method: "GET", path: "/rooms/{room}/attachments/{iatt}", want: staffMembersRead},

		// Invites: staff with write access.
		{name: "GET invites", method: "GET", path: "/rooms/{room}/invites",
			want: want{200, 200, 403, 403, 403, 404, 404, 200, 200, 401}},
		{name: "POST invite", method: "POST", path: "/rooms/{room}/invites", write: true,
			body: jsonBody(map[string]any{"email": "dora@buyer.example", "access": "read"}),
			want: want{201, 201, 403, 403, 403, 404, 404, 201, 201, 401}},
		{name: "DELETE invite", method: "DELETE", path: "/rooms/{room}/invites/{invite}", write: true,
			want: want{204, 204, 403, 403, 403, 404, 404, 204, 204, 401}},
		// The code is the credential: a token is neither needed nor used.
		{name: "POST accept invite", method: "POST", path: "/invites/{code}/accept", write: true,
			body: jsonBody(map[string]any{"name": "Ivy Invitee", "email": inviteeEmail}),
			want: want{200, 200, 200, 200, 200, 200, 200, 200, 200, 200},
			check: func(t *testing.T, f *fixture, w who, r response) {
				body := r.object(t)
				assert.NotEmpty(t, body["token"])
				rm, _ := body["room"].(map[string]any)
				assert.Equal(t, f.Room, rm["id"])
				assertCustomerSafe(t, r.Body, "invite acceptance")
			}},

		// The actor's own things.
		{name: "GET me", method: "GET", path: "/me",
			want: want{200, 200, 200, 200, 200, 200, 200, 200, 200, 401},
			check: func(t *testing.T, f *fixture, w who, r response) {
				assert.Equal(t, w.actor.ID, r.object(t)["user_id"])
			}},
		{name: "GET my tasks", method: "GET", path: "/me/tasks",
			want: want{200, 200, 200, 200, 200, 200, 200, 200, 200, 401},
			check: func(t *testing.T, f *fixture, w who, r response) {
				var mine []any
				for _, it := range r.items(t) {
					if it["room_id"] == f.Room {
						mine = append(mine, it["id"])
					}
				}
				n := map[string]int{staffW.ID: 2, custW.ID: 1}[w.actor.ID]
				assert.Len(t, mine, n, "tasks assigned to %s in the room", w.actor.ID)
			}},
		{name: "GET my inbox", method: "GET", path: "/me/inbox",
			want: want{200, 200, 200, 200, 200, 200, 200, 200, 200, 401},
			check: func(t *testing.T, f *fixture, w who, r response) {
				for _, it := range r.items(t) {
					assert.Equal(t, w.actor.ID, it["user_id"], "an inbox holds only its owner's items")
				}
			}},
		// Walter's item (his internal assignment): nobody else can mark it.
		{name: "POST mark read", method: "POST", path: "/me/inbox/{item}/read",
			want: want{404, 204, 404, 404, 404, 404, 404, 404, 404, 401}},
		{name: "GET templates", method: "GET", path: "/templates",
			want: want{200, 200, 200, 403, 403, 200, 403, 200, 200, 401}},
		{name: "GET rooms", method: "GET", path: "/rooms?limit=200",
			want: want{200, 200, 200, 200, 200, 200, 200, 200, 200, 401},
			check: func(t *testing.T, f *fixture, w who, r response) {
				var ids []any
				for _, it := range r.items(t) {
					ids = append(ids, it["id"])
				}
				if w.actor == staffOut || w.actor == custOut {
					assert.NotContains(t, ids, f.Room, "a stranger's room list does not show the room")
				} else {
					assert.Contains(t, ids, f.Room)
				}
			}},
		// The machine-readable contract is public documentation.
		{name: "GET openapi", method: "GET", path: "/openapi.yaml",
			want: want{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
		{name: "GET unknown route", method: "GET", path: "/rooms/{room}/nothing-here/x",
			want: want{404, 404, 404, 404, 404, 404, 404, 404, 404, 404}},
		// A new room gets its own first event; the fixture's room none.
		{name: "POST room", method: "POST", path: "/rooms",
			body: jsonBody(map[string]any{"name": "Second deal", "company": "Beta"}),
			want: want{201, 201, 201, 403, 403, 201, 403, 201, 201, 401},
			check: func(t *testing.T, f *fixture, w who, r response) {
				id := r.str(t, "id")
				body := r.object(t)
				assert.Equal(t, w.actor.ID, body["owner_id"], "the creator owns the room")
				evs := f.ts.events(t, id, w.actor)
				if assert.Len(t, evs, 1) {
					assert.Equal(t, "room.created", evs[0]["type"])
				}
			}},
	}
}

// TestAccessMatrix tries every route of the API as every kind of person
// and checks the status, the error body, and that only allowed writes
// write an event.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	for _, c := range accessCases() {
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

func runAccessCase(t *testing.T, f *fixture, c accessCase, w who, status int) {
	ts := f.ts
	self := "nobody"
	if !w.anon {
		self = w.actor.ID
	}
	path := strings.ReplaceAll(f.expand(c.path), "{self}", self)
	var body any
	if c.body != nil {
		body = c.body(t, f, w)
	}
	token := ""
	if !w.anon {
		token = tok(t, w.actor)
	}
	before := ts.eventCount(t, f.Room)
	r := ts.do(t, c.method, path, token, body)
	require.NotEqual(t, http.StatusInternalServerError, r.Status, "never a 500: %s", r)
	if !assert.Equal(t, status, r.Status, "%s %s as %s: %s", c.method, path, w.name, r) {
		return
	}
	if r.Status >= 400 {
		assertErrorBody(t, r, "")
	}
	after := ts.eventCount(t, f.Room)
	wrote := c.write && r.Status < 300
	if wrote {
		assert.Equal(t, before+1, after, "an allowed write appends exactly one event")
	} else {
		assert.Equal(t, before, after, "a refused request or a read appends no event")
	}
	if !w.anon && w.actor.IsCustomer() && r.Status < 300 {
		assertCustomerSafe(t, r.Body, c.method+" "+c.path)
	}
	if c.check != nil && r.Status < 300 {
		c.check(t, f, w, r)
	}
}

// TestNotFoundDoesNotLeak: a stranger's answer for an existing room is the
// same as for a room that does not exist (not a 403), on every kind of
// room route.
func TestNotFoundDoesNotLeak(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	for _, stranger := range []dealroom.Actor{staffOut, custOut} {
		for _, p := range []string{"", "/events", "/members", "/tasks", "/tasks/{task}", "/messages",
			"/messages/{msg}", "/attachments", "/attachments/{att}", "/invites"} {
			got := ts.do(t, "GET", f.expand("/rooms/{room}"+p), tok(t, stranger), nil)
			fake := ts.do(t, "GET", strings.Replace(f.expand("/rooms/{room}"+p), f.Room, "r_0000000000000000000000nope", 1), tok(t, stranger), nil)
			assert.Equal(t, 404, got.Status, "%s %s", stranger.ID, p)
			assert.Equal(t, fake.Status, got.Status, "%s %s", stranger.ID, p)
			var a, b map[string]map[string]any
			if assert.NoError(t, json.Unmarshal(got.Body, &a)) && assert.NoError(t, json.Unmarshal(fake.Body, &b)) {
				assert.Equal(t, b["error"]["code"], a["error"]["code"])
				assert.Equal(t,
					strings.ReplaceAll(b["error"]["message"].(string), "r_0000000000000000000000nope", "ROOM"),
					strings.ReplaceAll(a["error"]["message"].(string), f.Room, "ROOM"),
					"the message does not tell an existing room from a missing one")
			}
		}
	}
}

// TestCustomerTimeline: a customer receives the staff's seq numbers with
// every internal event left out, and no deal value, forecast or tags in
// the room's events.
func TestCustomerTimeline(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	// More of each kind: a value-only change (internal), a stage change
	// (shared, but with the value changed in the same update), an internal
	// reply, a deleted internal message, an internal task made done.
	ts.must(t, 200, "PATCH", base, owner, map[string]any{"value": 1234567.89, "tags": []string{"zz-secret-tag-2"}})
	ts.must(t, 200, "PATCH", base, owner, map[string]any{"stage": "trust", "value": 987654.99, "close_window": "quarter"})
	ts.must(t, 201, "POST", base+"/messages", staffW, map[string]any{"body": "reply " + internalMarker, "parent_id": f.IMsg})
	ts.must(t, 200, "PATCH", base+"/tasks/"+f.ITask, staffW, map[string]any{"status": "done"})
	ts.must(t, 204, "DELETE", base+"/messages/"+f.IMsg, owner, nil)
	ts.must(t, 201, "POST", base+"/invites", owner, map[string]any{"email": "x@buyer.example"})
	acc := ts.do(t, "POST", "/invites/"+f.InviteCode+"/accept", "", map[string]any{"name": "Ivy Invitee", "email": inviteeEmail})
	require.Equal(t, 200, acc.Status, "%s", acc)
	ivy := acc.str(t, "token")

	staff := ts.events(t, f.Room, owner)
	staffSeqs := map[float64]map[string]any{}
	var internal int
	for _, e := range staff {
		staffSeqs[e["seq"].(float64)] = e
		if e["visibility"] == "internal" {
			internal++
		}
	}
	require.Greater(t, internal, 5, "the fixture has internal events")

	for _, c := range []struct {
		name  string
		token string
	}{{"writer", tok(t, custW)}, {"reader", tok(t, custR)}, {"invited", ivy}} {
		t.Run(c.name, func(t *testing.T) {
			// Page through in small steps to exercise the cursor too.
			var got []map[string]any
			path := base + "/events?limit=3"
			for range 100 {
				r := ts.do(t, "GET", path, c.token, nil)
				require.Equal(t, 200, r.Status, "%s", r)
				assertCustomerSafe(t, r.Body, "customer events")
				got = append(got, r.items(t)...)
				next, _ := r.object(t)["next_cursor"].(string)
				_, hasAfter := r.object(t)["next_after"]
				assert.Equal(t, next != "", hasAfter, "next_after comes with next_cursor")
				if next == "" {
					break
				}
				path = base + "/events?limit=3&cursor=" + next
			}
			want := 0
			for _, e := range staff {
				if e["visibility"] == "shared" {
					want++
				}
			}
			assert.Len(t, got, want, "a customer gets every shared event")
			last := 0.0
			for _, e := range got {
				seq := e["seq"].(float64)
				assert.Greater(t, seq, last)
				last = seq
				se, ok := staffSeqs[seq]
				if assert.True(t, ok, "seq %v is a real seq", seq) {
					assert.Equal(t, se["id"], e["id"], "same seq, same event")
					assert.Equal(t, "shared", se["visibility"])
				}
			}
			// The catch-up from the middle: after= works the same.
			r := ts.do(t, "GET", base+"/events?after=5", c.token, nil)
			require.Equal(t, 200, r.Status)
			for _, e := range r.items(t) {
				assert.Greater(t, e["seq"].(float64), 5.0)
			}
			assertCustomerSafe(t, r.Body, "customer events after 5")
			// And the room itself.
			r = ts.do(t, "GET", base, c.token, nil)
			require.Equal(t, 200, r.Status)
			assertCustomerSafe(t, r.Body, "customer room")
			assert.Equal(t, "trust", r.object(t)["stage"])
			r = ts.do(t, "GET", "/rooms", c.token, nil)
			require.Equal(t, 200, r.Status)
			assertCustomerSafe(t, r.Body, "customer room list")
			require.Len(t, r.items(t), 1)
			for _, p := range []string{"/tasks", "/messages", "/attachments", "/members"} {
				r = ts.do(t, "GET", base+p, c.token, nil)
				require.Equal(t, 200, r.Status, "%s: %s", p, r)
				assertCustomerSafe(t, r.Body, "customer "+p)
			}
			for _, p := range []string{"/me/inbox", "/me/tasks"} {
				r = ts.do(t, "GET", p, c.token, nil)
				require.Equal(t, 200, r.Status, "%s: %s", p, r)
				assertCustomerSafe(t, r.Body, "customer "+p)
			}
		})
	}
}

// TestCustomerOwnItems: customers with write access edit and delete what
// they wrote, and nothing else.
func TestCustomerOwnItems(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	task := ts.must(t, 201, "POST", base+"/tasks", custW, map[string]any{"title": "Send the security questionnaire"}).str(t, "id")
	msg := ts.must(t, 201, "POST", base+"/messages", custW, map[string]any{"body": "Questionnaire attached"}).str(t, "id")
	n := ts.eventCount(t, f.Room)

	// The other customer can neither edit nor delete them.
	ts.must(t, 403, "PATCH", base+"/messages/"+msg, custR, map[string]any{"body": "hijack"})
	ts.must(t, 403, "DELETE", base+"/messages/"+msg, custR, nil)
	ts.must(t, 403, "DELETE", base+"/tasks/"+task, custR, nil)
	// Staff writers cannot edit a customer's words either.
	ts.must(t, 403, "PATCH", base+"/messages/"+msg, staffW, map[string]any{"body": "hijack"})
	assert.Equal(t, n, ts.eventCount(t, f.Room))

	ts.must(t, 200, "PATCH", base+"/messages/"+msg, custW, map[string]any{"body": "Questionnaire attached, v2"})
	ts.must(t, 204, "DELETE", base+"/messages/"+msg, custW, nil)
	ts.must(t, 204, "DELETE", base+"/tasks/"+task, custW, nil)
	assert.Equal(t, n+3, ts.eventCount(t, f.Room))

	// The tombstone stays in the thread.
	r := ts.must(t, 200, "GET", base+"/messages/"+msg, custR, nil)
	assert.Equal(t, true, r.object(t)["deleted"])
	assert.Empty(t, r.object(t)["body"])
}

// TestRemovedMemberLosesAccess: once removed, a member is a stranger.
func TestRemovedMemberLosesAccess(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	ts.must(t, 204, "DELETE", base+"/members/"+custW.ID, owner, nil)
	ts.must(t, 404, "GET", base, custW, nil)
	ts.must(t, 404, "GET", base+"/events", custW, nil)
	ts.must(t, 404, "POST", base+"/messages", custW, map[string]any{"body": "still here?"})
	r := ts.must(t, 200, "GET", "/me/tasks", custW, nil)
	assert.Empty(t, r.items(t), "tasks of a room one left are not listed")
	r = ts.must(t, 200, "GET", "/rooms", custW, nil)
	assert.Empty(t, r.items(t))
	for _, it := range ts.must(t, 200, "GET", "/me/inbox", custW, nil).items(t) {
		assert.NotEqual(t, f.Room, it["room_id"], "the inbox forgets rooms one left")
	}
}

// TestManagerFilters: managers see every room, filterable; reps only theirs.
func TestManagerFilters(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	other := ts.must(t, 201, "POST", "/rooms", staffOut, map[string]any{"name": "Beta", "company": "Beta", "stage": "signing"}).str(t, "id")

	ids := func(r response) []string {
		var out []string
		for _, it := range r.items(t) {
			out = append(out, it["id"].(string))
		}
		slices.Sort(out)
		return out
	}
	both := []string{f.Room, other}
	slices.Sort(both)
	assert.Equal(t, both, ids(ts.must(t, 200, "GET", "/rooms", manager, nil)))
	assert.Equal(t, []string{other}, ids(ts.must(t, 200, "GET", "/rooms?stage=signing", manager, nil)))
	assert.Equal(t, []string{f.Room}, ids(ts.must(t, 200, "GET", "/rooms?owner="+owner.ID, admin, nil)))
	assert.Equal(t, []string{f.Room}, ids(ts.must(t, 200, "GET", "/rooms?close_window=this_month", admin, nil)))
	assert.Equal(t, []string{other}, ids(ts.must(t, 200, "GET", "/rooms", staffOut, nil)))
	// A rep's filter cannot widen the list to others' rooms.
	assert.Empty(t, ids(ts.must(t, 200, "GET", "/rooms?owner="+owner.ID, staffOut, nil)))
}

// TestRoomListAsMembershipAllows: a staff token that is a customer-kind
// member of a room gets the customer view of it in GET /rooms, as in
// GET /rooms/{room}, and its filters on hidden fields answer nothing about
// that room; customers' tokens may not filter on hidden fields at all.
func TestRoomListAsMembershipAllows(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	ts.must(t, 201, "POST", "/rooms/"+f.Room+"/members", owner, map[string]any{
		"user_id": staffOut.ID, "name": staffOut.Name, "kind": "customer", "access": "write"})
	for _, a := range []dealroom.Actor{staffOut, manager} {
		if a == manager {
			ts.must(t, 201, "POST", "/rooms/"+f.Room+"/members", owner, map[string]any{
				"user_id": manager.ID, "name": manager.Name, "kind": "customer", "access": "read"})
		}
		list := ts.must(t, 200, "GET", "/rooms", a, nil)
		assertCustomerSafe(t, list.Body, a.ID+": GET /rooms")
		one := ts.must(t, 200, "GET", "/rooms/"+f.Room, a, nil)
		assertCustomerSafe(t, one.Body, a.ID+": GET /rooms/{room}")
		for _, q := range []string{"?owner=" + owner.ID, "?close_window=this_month"} {
			for _, it := range ts.must(t, 200, "GET", "/rooms"+q, a, nil).items(t) {
				assert.NotEqual(t, f.Room, it["id"], "%s: the filter %s tells of a room seen as a customer", a.ID, q)
			}
		}
	}
	for _, q := range []string{"?owner=" + owner.ID, "?close_window=this_month", "?owner=nobody"} {
		r := ts.do(t, "GET", "/rooms"+q, ts.tok(t, custW), nil)
		assert.Equal(t, 422, r.Status, "a customer filters by %s: %s", q, r)
		assertErrorBody(t, r, strings.Split(q[1:], "=")[0])
	}
	ts.must(t, 200, "GET", "/rooms?stage=discovery", custW, nil)
}

// TestInternalTaskMadeShared: when staff share an internal task, customers
// get the task as it is now, but nothing of what it was while internal
// (its old title or description in the event's changes).
func TestInternalTaskMadeShared(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	head := ts.eventCount(t, f.Room)
	ts.must(t, 200, "PATCH", base+"/tasks/"+f.ITask, owner, map[string]any{
		"visibility": "shared", "title": "Pricing review", "description": "Let us agree on pricing",
	})
	for _, c := range []dealroom.Actor{custW, custR} {
		r := ts.must(t, 200, "GET", fmt.Sprintf("%s/events?after=%d", base, head), c, nil)
		evs := r.items(t)
		if assert.Len(t, evs, 1, "the customer learns of the shared task") {
			assert.Equal(t, "task.updated", evs[0]["type"])
		}
		assertCustomerSafe(t, r.Body, "events about a task made shared")
		r = ts.must(t, 200, "GET", base+"/tasks/"+f.ITask, c, nil)
		assert.Equal(t, "Pricing review", r.object(t)["title"])
		assertCustomerSafe(t, r.Body, "a task made shared")
	}
}

// TestReplyCountHidesInternalReplies: staff may add an internal reply to a
// shared thread; a customer sees the thread without it, and its reply count
// must not tell that it exists.
func TestReplyCountHidesInternalReplies(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	ts.must(t, 201, "POST", base+"/messages", custW, map[string]any{"body": "Thanks!", "parent_id": f.Msg})
	r := ts.do(t, "POST", base+"/messages", tok(t, staffW), map[string]any{
		"body": "Careful, " + internalMarker, "parent_id": f.Msg, "visibility": "internal",
	})
	if r.Status != 201 {
		// Refusing internal replies in shared threads is fine too.
		require.Equal(t, 422, r.Status, "%s", r)
		return
	}
	staffRoots := ts.must(t, 200, "GET", base+"/messages", staffW, nil).items(t)
	for _, m := range staffRoots {
		if m["id"] == f.Msg {
			assert.EqualValues(t, 2, m["reply_count"], "staff count both replies")
		}
	}
	for _, c := range []dealroom.Actor{custW, custR} {
		thread := ts.must(t, 200, "GET", base+"/messages?parent_id="+f.Msg, c, nil)
		assertCustomerSafe(t, thread.Body, "a shared thread")
		visible := len(thread.items(t))
		assert.Equal(t, 1, visible)
		roots := ts.must(t, 200, "GET", base+"/messages", c, nil)
		for _, m := range roots.items(t) {
			if m["id"] == f.Msg {
				assert.EqualValues(t, visible, m["reply_count"], "a customer's reply count counts only the replies they see")
			}
		}
	}
}

// TestTemplatesKeepInternalSteps: a room made from a template shows its
// customers only the shared steps; a room used as a worked example is a
// template only for those who can see it.
func TestTemplatesKeepInternalSteps(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.must(t, 201, "POST", "/rooms", owner, map[string]any{"name": "Templated", "company": "Acme", "template": "tpl_standard"})
	id := r.str(t, "id")
	ts.must(t, 201, "POST", "/rooms/"+id+"/members", owner, map[string]any{"user_id": custR.ID, "name": custR.Name, "kind": "customer", "access": "read"})
	staffTasks := ts.must(t, 200, "GET", "/rooms/"+id+"/tasks", owner, nil).items(t)
	custTasks := ts.must(t, 200, "GET", "/rooms/"+id+"/tasks", custR, nil)
	assertCustomerSafe(t, custTasks.Body, "template tasks")
	assert.Less(t, len(custTasks.items(t)), len(staffTasks), "the template has internal steps")
	evs := ts.must(t, 200, "GET", "/rooms/"+id+"/events", custR, nil)
	assertCustomerSafe(t, evs.Body, "template room events")
	assert.NotContains(t, string(evs.Body), "First-meeting questions")

	// A stranger cannot copy the plan of a room they cannot see; the
	// answer is the one for a room that does not exist.
	mine := ts.do(t, "POST", "/rooms", tok(t, staffOut), map[string]any{"name": "Copy", "company": "X", "template": id})
	none := ts.do(t, "POST", "/rooms", tok(t, staffOut), map[string]any{"name": "Copy", "company": "X", "template": "r_0000000000000000000000nope"})
	assert.Equal(t, none.Status, mine.Status, "%s", mine)
	assert.Equal(t, 422, mine.Status)
	// A member can.
	ts.must(t, 201, "POST", "/rooms", manager, map[string]any{"name": "Copy", "company": "X", "template": id})
}

// TestCustomerTimelineSkipsInternalStretch: a customer's page looks at a
// bounded stretch of the room; a stretch of internal events only is an
// empty page that says where to go on, not the end.
func TestCustomerTimelineSkipsInternalStretch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	for i := range 2*room.SharedScan(5) + 10 {
		ts.must(t, 201, "POST", base+"/messages", owner, map[string]any{"body": fmt.Sprint("note ", i), "visibility": "internal"})
	}
	last := ts.must(t, 201, "POST", base+"/messages", owner, map[string]any{"body": "the shared end"})
	lastID := last.str(t, "id")

	staff := ts.events(t, f.Room, owner)
	after := int64(len(staff)) - int64(2*room.SharedScan(5)) - 11 // before the stretch of notes
	path := fmt.Sprintf("%s/events?limit=5&after=%d", base, after)
	var got []map[string]any
	empty := 0
	for range 20 {
		r := ts.do(t, "GET", path, tok(t, custW), nil)
		require.Equal(t, 200, r.Status, "%s", r)
		items := r.items(t)
		got = append(got, items...)
		next, _ := r.object(t)["next_cursor"].(string)
		if next == "" {
			break
		}
		if len(items) == 0 {
			empty++
		}
		na, ok := r.object(t)["next_after"].(float64)
		require.True(t, ok, "next_after with next_cursor")
		assert.Greater(t, int64(na), after)
		after = int64(na)
		path = fmt.Sprintf("%s/events?limit=5&cursor=%s", base, next)
	}
	assert.Positive(t, empty, "an empty page with a cursor")
	require.NotEmpty(t, got)
	data, _ := got[len(got)-1]["data"].(map[string]any)
	assert.Equal(t, lastID, data["id"], "the customer reaches the shared message after the notes")
}
