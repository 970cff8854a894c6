package room_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/diskblob"
	"dealroom/room"
	"dealroom/task"
)

// The people of the service tests. Alice owns the room; Bob writes, Rita
// reads (both staff); Carol writes, Dan reads (customers); Mike manages
// and Adam administers without being members; Olga is a rep of another
// team who is not a member.
var (
	alice = dealroom.Actor{ID: "alice", Name: "Alice Rep", Kind: dealroom.Staff, Role: dealroom.Rep}
	bob   = dealroom.Actor{ID: "bob", Name: "Bob Engineer", Kind: dealroom.Staff, Role: dealroom.Rep}
	rita  = dealroom.Actor{ID: "rita", Name: "Rita Reader", Kind: dealroom.Staff, Role: dealroom.Rep}
	carol = dealroom.Actor{ID: "carol", Name: "Carol Buyer", Kind: dealroom.Customer}
	dan   = dealroom.Actor{ID: "dan", Name: "Dan Viewer", Kind: dealroom.Customer}
	mike  = dealroom.Actor{ID: "mike", Name: "Mike Manager", Kind: dealroom.Staff, Role: dealroom.Manager}
	adam  = dealroom.Actor{ID: "adam", Name: "Adam Admin", Kind: dealroom.Staff, Role: dealroom.Admin}
	olga  = dealroom.Actor{ID: "olga", Name: "Olga Other", Kind: dealroom.Staff, Role: dealroom.Rep}
)

// env is a Service on a real embedded store in a temporary directory,
// with a clock the test moves.
type env struct {
	ctx   context.Context
	store *boltstore.Store
	svc   *room.Service
	mu    sync.Mutex
	now   time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	e := &env{ctx: context.Background(), store: s, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e.svc = &room.Service{Store: s, Now: e.clock}
	return e
}

// clock ticks a millisecond per reading, so that ids sort in the order
// things happened.
func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(time.Millisecond)
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *env) current() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// room makes Alice's room with Bob, Rita, Carol and Dan in it.
func (e *env) room(t *testing.T) string {
	t.Helper()
	r, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Acme renewal", Company: "Acme"}, "")
	require.NoError(t, err)
	for _, m := range []room.MemberDraft{
		{UserID: bob.ID, Name: bob.Name, Kind: dealroom.Staff},
		{UserID: rita.ID, Name: rita.Name, Kind: dealroom.Staff, Access: room.Read},
		{UserID: carol.ID, Name: carol.Name, Kind: dealroom.Customer},
		{UserID: dan.ID, Name: dan.Name, Kind: dealroom.Customer, Access: room.Read},
	} {
		_, err := e.svc.AddMember(e.ctx, alice, r.ID, m, "")
		require.NoError(t, err)
	}
	return r.ID
}

func (e *env) head(t *testing.T, roomID string) int64 {
	t.Helper()
	r, err := e.store.Room(e.ctx, roomID)
	require.NoError(t, err)
	return r.Head
}

func (e *env) task(t *testing.T, a dealroom.Actor, roomID string, d task.Draft) task.Task {
	t.Helper()
	res, err := e.svc.CreateTask(e.ctx, a, roomID, d, "")
	require.NoError(t, err)
	return res.Task
}

func (e *env) post(t *testing.T, a dealroom.Actor, roomID string, d room.MessageDraft) room.MessageResult {
	t.Helper()
	res, err := e.svc.PostMessage(e.ctx, a, roomID, d, "")
	require.NoError(t, err)
	return res
}

func (e *env) invite(t *testing.T, roomID string, d room.InviteDraft) room.NewInvite {
	t.Helper()
	inv, err := e.svc.CreateInvite(e.ctx, alice, roomID, d, "")
	require.NoError(t, err)
	return inv
}

func (e *env) inbox(t *testing.T, a dealroom.Actor) []room.InboxItem {
	t.Helper()
	items, _, err := e.svc.Inbox(e.ctx, a, "", 200)
	require.NoError(t, err)
	return items
}

func requireCode(tb testing.TB, code string, err error, msgAndArgs ...any) {
	tb.Helper()
	require.Error(tb, err, msgAndArgs...)
	assert.Equal(tb, code, dealroom.ErrorCode(err), append([]any{"error: %v", err}, msgAndArgs...)...)
}

func requireField(tb testing.TB, field string, err error) {
	tb.Helper()
	requireCode(tb, dealroom.EINVALID, err)
	var de *dealroom.Error
	require.ErrorAs(tb, err, &de)
	assert.Equal(tb, field, de.Field)
}

func taskTitles(ts []task.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Title
	}
	return out
}

func msgIDs(ms []room.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// --- rooms ---------------------------------------------------------------

func TestCreateRoom(t *testing.T) {
	e := newEnv(t)
	r, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Globex", Company: "Globex", Stage: room.Signing, CloseWindow: room.ThisMonth}, "")
	require.NoError(t, err)
	assert.Equal(t, room.Signing, r.Stage)
	assert.Equal(t, "alice", r.OwnerID)

	ms, err := e.svc.Members(e.ctx, alice, r.ID)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	assert.Equal(t, "alice", ms[0].UserID)
	assert.Equal(t, room.Owner, ms[0].RoleInRoom, "the creator owns the room")
	assert.Equal(t, room.Write, ms[0].Access)
	assert.Equal(t, "Alice Rep", ms[0].Name)

	evs, err := e.svc.Events(e.ctx, alice, r.ID, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, room.RoomCreated, evs[0].Type)
	assert.Equal(t, int64(1), evs[0].Seq)

	_, err = e.svc.CreateRoom(e.ctx, carol, room.Draft{Name: "Mine", Company: "Acme"}, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "customers do not create rooms")
	_, err = e.svc.CreateRoom(e.ctx, dealroom.Actor{ID: "x"}, room.Draft{Name: "Mine", Company: "Acme"}, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "someone of no known kind is not staff")
	_, err = e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Bad", Company: "Acme", Stage: "closing"}, "")
	requireField(t, "stage", err)
	_, err = e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Bad", Company: "Acme", CloseWindow: "soon"}, "")
	requireField(t, "close_window", err)

	rooms, err := e.svc.Rooms(e.ctx, alice, room.RoomFilter{Limit: 10})
	require.NoError(t, err)
	assert.Len(t, rooms, 1, "refused rooms are not created")
}

func TestRoomSettings(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	for _, a := range []dealroom.Actor{carol, dan, rita} {
		_, err := e.svc.UpdateRoom(e.ctx, a, r, room.Patch{Stage: dealroom.Some(room.Trust)}, "")
		requireCode(t, dealroom.EFORBIDDEN, err, a.ID)
	}
	_, err := e.svc.UpdateRoom(e.ctx, olga, r, room.Patch{Stage: dealroom.Some(room.Trust)}, "")
	requireCode(t, dealroom.ENOTFOUND, err, "a non-member learns nothing")

	res, err := e.svc.UpdateRoom(e.ctx, bob, r, room.Patch{Stage: dealroom.Some(room.Trust)}, "")
	require.NoError(t, err)
	got := res.Room
	assert.Equal(t, room.Trust, got.Stage)
	res, err = e.svc.UpdateRoom(e.ctx, mike, r, room.Patch{Value: dealroom.Some(90000.0), CloseWindow: dealroom.Some(room.NextMonth)}, "")
	require.NoError(t, err, "managers act as writers in every room")
	got = res.Room
	require.NotNil(t, got.Value)
	assert.Equal(t, 90000.0, *got.Value)

	_, err = e.svc.UpdateRoom(e.ctx, alice, r, room.Patch{Stage: dealroom.Some(room.Stage("closing"))}, "")
	requireField(t, "stage", err)

	// The customer's timeline has the stage change, without the forecast.
	evs, err := e.svc.Events(e.ctx, carol, r, 0, 100)
	require.NoError(t, err)
	var updates []room.Event
	for _, ev := range evs {
		if ev.Type == room.RoomUpdated {
			updates = append(updates, ev)
		}
		assert.NotContains(t, string(ev.Data), "90000")
		assert.NotContains(t, string(ev.Data), "next_month")
	}
	require.Len(t, updates, 1, "a change of value and forecast only is not the customer's news")
	assert.Contains(t, updates[0].Changes, "stage")

	head := e.head(t, r)
	_, err = e.svc.UpdateRoom(e.ctx, alice, r, room.Patch{Stage: dealroom.Some(room.Trust)}, "")
	require.NoError(t, err)
	assert.Equal(t, head, e.head(t, r), "setting what is already set writes no event")
}

// --- templates -------------------------------------------------------------

func TestCreateRoomFromBuiltInTemplate(t *testing.T) {
	e := newEnv(t)
	r, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Acme", Company: "Acme", Template: "tpl_standard"}, "")
	require.NoError(t, err)
	tpl := room.Templates[0]
	require.Equal(t, "tpl_standard", tpl.ID)

	ts, err := e.svc.Tasks(e.ctx, alice, r.ID)
	require.NoError(t, err)
	require.Len(t, ts, len(tpl.Tasks))
	for i, tk := range ts {
		d := tpl.Tasks[i]
		assert.Equal(t, d.Title, tk.Title, "the plan keeps the template's order")
		assert.Equal(t, d.Description, tk.Description)
		assert.Equal(t, d.Visibility, tk.Visibility)
		assert.Equal(t, float64(i+1), tk.Position)
		assert.Equal(t, task.Open, tk.Status)
		assert.Empty(t, tk.Assignees)
		assert.Equal(t, "alice", tk.CreatedBy)
		assert.Equal(t, r.ID, tk.RoomID)
	}

	// The customer sees the shared steps only, now and in the timeline.
	_, err = e.svc.AddMember(e.ctx, alice, r.ID, room.MemberDraft{UserID: carol.ID, Name: carol.Name, Kind: dealroom.Customer}, "")
	require.NoError(t, err)
	var shared []string
	var internal []task.Task
	for _, tk := range ts {
		if tk.Visibility == dealroom.Shared {
			shared = append(shared, tk.Title)
		} else {
			internal = append(internal, tk)
		}
	}
	require.NotEmpty(t, internal, "the standard plan has internal steps")
	cts, err := e.svc.Tasks(e.ctx, carol, r.ID)
	require.NoError(t, err)
	assert.Equal(t, shared, taskTitles(cts))
	for _, tk := range internal {
		_, err := e.svc.Task(e.ctx, carol, r.ID, tk.ID)
		requireCode(t, dealroom.ENOTFOUND, err)
	}
	evs, err := e.svc.Events(e.ctx, carol, r.ID, 0, 10)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	assert.Equal(t, room.RoomCreated, evs[0].Type)
	for _, tk := range internal {
		assert.NotContains(t, string(evs[0].Data), tk.ID)
		assert.NotContains(t, string(evs[0].Data), tk.Title)
	}

	// New tasks go after the plan.
	next := e.task(t, alice, r.ID, task.Draft{Title: "Extra"})
	assert.Equal(t, float64(len(tpl.Tasks)+1), next.Position)
}

func TestCreateRoomFromRenewalTemplate(t *testing.T) {
	e := newEnv(t)
	r, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Acme", Company: "Acme", Template: "tpl_renewal"}, "")
	require.NoError(t, err)
	ts, err := e.svc.Tasks(e.ctx, alice, r.ID)
	require.NoError(t, err)
	assert.Len(t, ts, 4)
}

func TestCreateRoomFromUnknownTemplate(t *testing.T) {
	e := newEnv(t)
	for _, tpl := range []string{"tpl_nope", "r_doesnotexist", "standard", "../tpl_standard"} {
		_, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Acme", Company: "Acme", Template: tpl}, "")
		requireField(t, "template", err)
	}
	rooms, err := e.svc.Rooms(e.ctx, alice, room.RoomFilter{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, rooms)
}

func TestCreateRoomFromWorkedExample(t *testing.T) {
	e := newEnv(t)
	src := e.room(t)
	due := task.Date{Year: 2026, Month: time.April, Day: 1}
	e.task(t, alice, src, task.Draft{Title: "Kick-off", Description: "Agenda", Assignees: []string{"carol"}, Due: &due, Status: task.Done})
	e.task(t, alice, src, task.Draft{Title: "Price floor", Visibility: dealroom.Internal, Assignees: []string{"bob"}})
	e.task(t, carol, src, task.Draft{Title: "Legal review"})

	r, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Next deal", Company: "Initech", Template: src}, "")
	require.NoError(t, err)
	ts, err := e.svc.Tasks(e.ctx, alice, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"Kick-off", "Price floor", "Legal review"}, taskTitles(ts))
	for _, tk := range ts {
		assert.Empty(t, tk.Assignees, "a worked example passes on the plan, not its people")
		assert.Nil(t, tk.Due, "nor its dates")
		assert.Equal(t, task.Open, tk.Status, "nor its progress")
		assert.Nil(t, tk.CompletedAt)
		assert.Equal(t, "alice", tk.CreatedBy)
	}
	assert.Equal(t, "Agenda", ts[0].Description)
	assert.Equal(t, dealroom.Internal, ts[1].Visibility, "internal steps stay internal")

	// Nobody is told of assignments in the new room.
	for _, a := range []dealroom.Actor{bob, carol} {
		for _, it := range e.inbox(t, a) {
			assert.NotEqual(t, r.ID, it.RoomID)
		}
	}

	// A rep who is not a member of the example cannot copy it, and cannot
	// tell it from a room that does not exist.
	_, err = e.svc.CreateRoom(e.ctx, olga, room.Draft{Name: "Copy", Company: "X", Template: src}, "")
	requireField(t, "template", err)
	_, errMissing := e.svc.CreateRoom(e.ctx, olga, room.Draft{Name: "Copy", Company: "X", Template: "r_missing"}, "")
	assert.Equal(t, dealroom.ErrorMessage(errMissing), strings.Replace(dealroom.ErrorMessage(err), src, "r_missing", 1))

	// A manager shares a room as a worked example with anyone.
	m, err := e.svc.CreateRoom(e.ctx, mike, room.Draft{Name: "Managed", Company: "Y", Template: src}, "")
	require.NoError(t, err)
	ts, err = e.svc.Tasks(e.ctx, mike, m.ID)
	require.NoError(t, err)
	assert.Len(t, ts, 3)
}

func TestTemplateTasksLookLikeOtherTasks(t *testing.T) {
	// A client reads every task the same way: lists are lists, never null.
	e := newEnv(t)
	r, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Acme", Company: "Acme", Template: "tpl_renewal"}, "")
	require.NoError(t, err)
	e.task(t, alice, r.ID, task.Draft{Title: "Added by hand"})
	ts, err := e.svc.Tasks(e.ctx, alice, r.ID)
	require.NoError(t, err)
	require.Len(t, ts, 5)
	for _, tk := range ts {
		raw, err := json.Marshal(tk)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), `"mentions":null`, "task %q", tk.Title)
		assert.NotContains(t, string(raw), `"assignees":null`, "task %q", tk.Title)
	}
}

// --- members ---------------------------------------------------------------

func TestLastOwnerCannotGo(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	_, err := e.svc.RemoveMember(e.ctx, alice, r, alice.ID, "")
	requireCode(t, dealroom.ECONFLICT, err, "the only owner cannot leave")
	_, err = e.svc.RemoveMember(e.ctx, mike, r, alice.ID, "")
	requireCode(t, dealroom.ECONFLICT, err, "not even a manager removes the only owner")
	_, err = e.svc.UpdateMember(e.ctx, alice, r, alice.ID, room.MemberPatch{RoleInRoom: dealroom.Some(room.PlainMember)}, "")
	requireCode(t, dealroom.ECONFLICT, err, "the only owner cannot step down")
	_, err = e.svc.UpdateMember(e.ctx, alice, r, alice.ID, room.MemberPatch{Access: dealroom.Some(room.Read)}, "")
	requireField(t, "access", err)

	m, err := e.svc.Members(e.ctx, alice, r)
	require.NoError(t, err)
	assert.Equal(t, room.Owner, m[0].RoleInRoom, "Alice still owns the room")

	// With a second owner, the first may go.
	_, err = e.svc.UpdateMember(e.ctx, alice, r, bob.ID, room.MemberPatch{RoleInRoom: dealroom.Some(room.Owner)}, "")
	require.NoError(t, err)
	_, err = e.svc.RemoveMember(e.ctx, alice, r, alice.ID, "")
	require.NoError(t, err)
	_, _, err = e.svc.Room(e.ctx, alice, r)
	requireCode(t, dealroom.ENOTFOUND, err, "who left sees the room no more")
	_, err = e.svc.RemoveMember(e.ctx, bob, r, bob.ID, "")
	requireCode(t, dealroom.ECONFLICT, err, "now Bob is the only owner")
	_, err = e.svc.UpdateMember(e.ctx, bob, r, bob.ID, room.MemberPatch{RoleInRoom: dealroom.Some(room.PlainMember)}, "")
	requireCode(t, dealroom.ECONFLICT, err)
}

func TestMembershipRules(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	eve := room.MemberDraft{UserID: "eve", Name: "Eve", Kind: dealroom.Customer}

	for _, a := range []dealroom.Actor{bob, rita, carol, dan} {
		_, err := e.svc.AddMember(e.ctx, a, r, eve, "")
		requireCode(t, dealroom.EFORBIDDEN, err, "%s is no owner", a.ID)
		_, err = e.svc.RemoveMember(e.ctx, a, r, alice.ID, "")
		requireCode(t, dealroom.EFORBIDDEN, err, "%s is no owner", a.ID)
		_, err = e.svc.UpdateMember(e.ctx, a, r, dan.ID, room.MemberPatch{Access: dealroom.Some(room.Write)}, "")
		requireCode(t, dealroom.EFORBIDDEN, err, "%s is no owner", a.ID)
	}
	_, err := e.svc.AddMember(e.ctx, olga, r, eve, "")
	requireCode(t, dealroom.ENOTFOUND, err, "a non-member learns nothing")

	_, err = e.svc.AddMember(e.ctx, mike, r, eve, "")
	require.NoError(t, err, "managers manage every room")
	_, err = e.svc.AddMember(e.ctx, alice, r, eve, "")
	requireCode(t, dealroom.ECONFLICT, err, "a member is added once")
	_, err = e.svc.AddMember(e.ctx, alice, r, room.MemberDraft{UserID: "fay", Name: "Fay", Kind: dealroom.Customer, RoleInRoom: room.Owner}, "")
	requireField(t, "role_in_room", err)
	_, err = e.svc.UpdateMember(e.ctx, alice, r, carol.ID, room.MemberPatch{RoleInRoom: dealroom.Some(room.Owner)}, "")
	requireField(t, "role_in_room", err)
	_, err = e.svc.UpdateMember(e.ctx, alice, r, rita.ID, room.MemberPatch{RoleInRoom: dealroom.Some(room.Owner)}, "")
	requireField(t, "access", err)
	m, err := e.svc.UpdateMember(e.ctx, alice, r, rita.ID, room.MemberPatch{RoleInRoom: dealroom.Some(room.Owner), Access: dealroom.Some(room.Write)}, "")
	require.NoError(t, err, "an owner with write access in one step")
	assert.Equal(t, room.Owner, m.RoleInRoom)

	_, err = e.svc.RemoveMember(e.ctx, alice, r, "nobody", "")
	requireCode(t, dealroom.ENOTFOUND, err)
	_, err = e.svc.UpdateMember(e.ctx, alice, r, "nobody", room.MemberPatch{Name: dealroom.Some("X")}, "")
	requireCode(t, dealroom.ENOTFOUND, err)

	// Anyone may leave.
	_, err = e.svc.RemoveMember(e.ctx, dan, r, dan.ID, "")
	require.NoError(t, err)
	_, _, err = e.svc.Room(e.ctx, dan, r)
	requireCode(t, dealroom.ENOTFOUND, err)

	// Changing nothing writes nothing.
	head := e.head(t, r)
	got, err := e.svc.UpdateMember(e.ctx, alice, r, carol.ID, room.MemberPatch{Access: dealroom.Some(room.Write)}, "")
	require.NoError(t, err)
	assert.Equal(t, carol.ID, got.UserID)
	assert.Equal(t, room.Write, got.Access)
	assert.Equal(t, head, e.head(t, r))
}

func TestNonMembersSeeNothing(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	tk := e.task(t, alice, r, task.Draft{Title: "Kick-off"})
	msg := e.post(t, alice, r, room.MessageDraft{Body: "Hello"})
	stranger := dealroom.Actor{ID: "zoe", Name: "Zoe", Kind: dealroom.Customer}
	for _, a := range []dealroom.Actor{olga, stranger} {
		checks := map[string]error{}
		_, _, checks["room"] = e.svc.Room(e.ctx, a, r)
		_, checks["members"] = e.svc.Members(e.ctx, a, r)
		_, checks["tasks"] = e.svc.Tasks(e.ctx, a, r)
		_, checks["task"] = e.svc.Task(e.ctx, a, r, tk.ID)
		_, checks["messages"] = e.svc.Messages(e.ctx, a, room.MessageFilter{Room: r, Limit: 10})
		_, checks["message"] = e.svc.Message(e.ctx, a, r, msg.ID)
		_, checks["events"] = e.svc.Events(e.ctx, a, r, 0, 10)
		_, _, checks["attachments"] = e.svc.Attachments(e.ctx, a, r, "", 0)
		_, checks["create task"] = e.svc.CreateTask(e.ctx, a, r, task.Draft{Title: "x"}, "")
		_, checks["update task"] = e.svc.UpdateTask(e.ctx, a, r, tk.ID, task.Patch{Title: dealroom.Some("x")}, "")
		_, checks["delete task"] = e.svc.DeleteTask(e.ctx, a, r, tk.ID, "")
		_, checks["post"] = e.svc.PostMessage(e.ctx, a, r, room.MessageDraft{Body: "x"}, "")
		_, checks["invite"] = e.svc.CreateInvite(e.ctx, a, r, room.InviteDraft{Email: "x@y.example"}, "")
		_, _, checks["invites"] = e.svc.Invites(e.ctx, a, r, "", 0)
		checks["can write"] = e.svc.CanWrite(e.ctx, a, r)
		for name, err := range checks {
			requireCode(t, dealroom.ENOTFOUND, err, "%s: %s", a.ID, name)
		}
	}
	rooms, err := e.svc.Rooms(e.ctx, olga, room.RoomFilter{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, rooms)
	for _, a := range []dealroom.Actor{mike, adam} {
		rooms, err := e.svc.Rooms(e.ctx, a, room.RoomFilter{Limit: 10})
		require.NoError(t, err)
		assert.Len(t, rooms, 1, "%s oversees every room", a.ID)
		_, err = e.svc.CreateTask(e.ctx, a, r, task.Draft{Title: "Next step from " + a.Name, Assignees: []string{"alice"}}, "")
		assert.NoError(t, err, "%s assigns next steps anywhere", a.ID)
	}
}

func TestReadersChangeNothing(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	tk := e.task(t, alice, r, task.Draft{Title: "Kick-off"})
	for _, a := range []dealroom.Actor{rita, dan} {
		checks := map[string]error{}
		_, checks["create task"] = e.svc.CreateTask(e.ctx, a, r, task.Draft{Title: "x"}, "")
		_, checks["update task"] = e.svc.UpdateTask(e.ctx, a, r, tk.ID, task.Patch{Status: dealroom.Some(task.Done)}, "")
		_, checks["delete task"] = e.svc.DeleteTask(e.ctx, a, r, tk.ID, "")
		_, checks["post"] = e.svc.PostMessage(e.ctx, a, r, room.MessageDraft{Body: "x"}, "")
		_, checks["attach"] = e.svc.AddAttachment(e.ctx, a, r, room.Upload{Name: "a.pdf", Blob: room.Blob{SHA256: "ab", Size: 1}}, "")
		checks["can write"] = e.svc.CanWrite(e.ctx, a, r)
		_, checks["invite"] = e.svc.CreateInvite(e.ctx, a, r, room.InviteDraft{Email: "x@y.example"}, "")
		for name, err := range checks {
			requireCode(t, dealroom.EFORBIDDEN, err, "%s: %s", a.ID, name)
		}
		ts, err := e.svc.Tasks(e.ctx, a, r)
		require.NoError(t, err, "readers read")
		assert.Len(t, ts, 1)
	}
	got, err := e.svc.Task(e.ctx, alice, r, tk.ID)
	require.NoError(t, err)
	assert.Equal(t, task.Open, got.Status)
}

// --- customers and internal things ---------------------------------------

func TestCustomersCannotCreateInternalThings(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	head := e.head(t, r)
	_, err := e.svc.CreateTask(e.ctx, carol, r, task.Draft{Title: "x", Visibility: dealroom.Internal}, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "internal task")
	_, err = e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "x", Visibility: dealroom.Internal}, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "internal message")
	_, err = e.svc.AddAttachment(e.ctx, carol, r, room.Upload{Name: "x.pdf", Visibility: dealroom.Internal, Blob: room.Blob{SHA256: "ab", Size: 1}}, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "internal attachment")
	err = e.svc.CheckUpload(e.ctx, carol, r, room.Upload{Name: "x.pdf", Visibility: dealroom.Internal})
	requireCode(t, dealroom.EFORBIDDEN, err, "internal upload checked before bytes are stored")
	_, err = e.svc.CreateInvite(e.ctx, carol, r, room.InviteDraft{Email: "friend@customer.example"}, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "invite")
	_, _, err = e.svc.Invites(e.ctx, carol, r, "", 0)
	requireCode(t, dealroom.EFORBIDDEN, err, "invite list")
	assert.Equal(t, head, e.head(t, r), "nothing was written")

	// Under an internal task, a customer finds nothing to attach to.
	secret := e.task(t, alice, r, task.Draft{Title: "Price floor", Visibility: dealroom.Internal})
	_, err = e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "x", TaskID: secret.ID}, "")
	requireField(t, "task_id", err)
	_, err = e.svc.AddAttachment(e.ctx, carol, r, room.Upload{Name: "x.pdf", TaskID: secret.ID, Blob: room.Blob{SHA256: "ab", Size: 1}}, "")
	requireField(t, "task_id", err)
	_, errMissing := e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "x", TaskID: "t_missing"}, "")
	requireField(t, "task_id", errMissing)
	_, err = e.svc.UpdateTask(e.ctx, carol, r, secret.ID, task.Patch{Title: dealroom.Some("x")}, "")
	requireCode(t, dealroom.ENOTFOUND, err)
	_, err = e.svc.DeleteTask(e.ctx, carol, r, secret.ID, "")
	requireCode(t, dealroom.ENOTFOUND, err)

	// Customers cannot be handed internal work.
	_, err = e.svc.CreateTask(e.ctx, alice, r, task.Draft{Title: "x", Visibility: dealroom.Internal, Assignees: []string{"carol"}}, "")
	requireField(t, "assignees", err)
	_, err = e.svc.UpdateTask(e.ctx, alice, r, secret.ID, task.Patch{Assignees: dealroom.Some([]string{"bob", "dan"})}, "")
	requireField(t, "assignees", err)
	_, err = e.svc.CreateTask(e.ctx, alice, r, task.Draft{Title: "x", Assignees: []string{"olga"}}, "")
	requireField(t, "assignees", err)
}

func TestCustomerTaskRights(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	staffTask := e.task(t, alice, r, task.Draft{Title: "Send proposal"})
	own := e.task(t, carol, r, task.Draft{Title: "Collect requirements", Assignees: []string{"carol", "bob"}})
	assert.Equal(t, dealroom.Shared, own.Visibility, "a customer's task is shared")

	_, err := e.svc.DeleteTask(e.ctx, carol, r, staffTask.ID, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "customers delete only their own tasks")
	res, err := e.svc.UpdateTask(e.ctx, carol, r, staffTask.ID, task.Patch{Status: dealroom.Some(task.Done)}, "")
	require.NoError(t, err, "customers move shared steps of the plan")
	assert.Equal(t, task.Done, res.Status)
	_, err = e.svc.DeleteTask(e.ctx, carol, r, own.ID, "")
	require.NoError(t, err)
	_, err = e.svc.Task(e.ctx, alice, r, own.ID)
	requireCode(t, dealroom.ENOTFOUND, err)
}

func TestCustomersSeeOnlySharedThings(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	shared := e.task(t, alice, r, task.Draft{Title: "Kick-off"})
	internal := e.task(t, alice, r, task.Draft{Title: "Price floor", Visibility: dealroom.Internal})
	pub := e.post(t, alice, r, room.MessageDraft{Body: "Welcome"})
	note := e.post(t, alice, r, room.MessageDraft{Body: "They will sign", Visibility: dealroom.Internal})
	onInternal := e.post(t, bob, r, room.MessageDraft{Body: "Floor is 80k", TaskID: internal.ID})
	assert.Equal(t, dealroom.Internal, onInternal.Visibility, "a message under an internal task is internal")
	_, err := e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: "x", TaskID: internal.ID, Visibility: dealroom.Shared}, "")
	requireField(t, "visibility", err)
	file, err := e.svc.AddAttachment(e.ctx, alice, r, room.Upload{Name: "floor.xlsx", Visibility: dealroom.Internal, Blob: room.Blob{SHA256: "ab", Size: 1}}, "")
	require.NoError(t, err)
	_, err = e.svc.AddAttachment(e.ctx, alice, r, room.Upload{Name: "x.pdf", TaskID: internal.ID, Visibility: dealroom.Shared, Blob: room.Blob{SHA256: "ab", Size: 1}}, "")
	requireField(t, "visibility", err)
	_, err = e.svc.PostMessage(e.ctx, alice, r, room.MessageDraft{Body: "see file", Attachments: []string{file.ID}}, "")
	requireField(t, "attachments", err)

	for _, a := range []dealroom.Actor{carol, dan} {
		ts, err := e.svc.Tasks(e.ctx, a, r)
		require.NoError(t, err)
		assert.Equal(t, []string{shared.Title}, taskTitles(ts))
		ms, err := e.svc.Messages(e.ctx, a, room.MessageFilter{Room: r, Limit: 100})
		require.NoError(t, err)
		assert.Equal(t, []string{pub.ID}, msgIDs(ms))
		for _, id := range []string{note.ID, onInternal.ID} {
			_, err = e.svc.Message(e.ctx, a, r, id)
			requireCode(t, dealroom.ENOTFOUND, err)
			_, err = e.svc.Messages(e.ctx, a, room.MessageFilter{Room: r, ParentID: id, Limit: 10})
			requireCode(t, dealroom.ENOTFOUND, err)
		}
		_, err = e.svc.Messages(e.ctx, a, room.MessageFilter{Room: r, TaskID: internal.ID, Limit: 10})
		requireCode(t, dealroom.ENOTFOUND, err)
		ats, _, err := e.svc.Attachments(e.ctx, a, r, "", 0)
		require.NoError(t, err)
		assert.Empty(t, ats)
	}

	// The timeline: same seq numbers, internal events left out.
	all, err := e.svc.Events(e.ctx, alice, r, 0, 1000)
	require.NoError(t, err)
	theirs, err := e.svc.Events(e.ctx, carol, r, 0, 1000)
	require.NoError(t, err)
	want := map[int64]bool{}
	for _, ev := range all {
		if ev.Visibility == dealroom.Shared {
			want[ev.Seq] = true
		}
	}
	assert.Len(t, theirs, len(want))
	for _, ev := range theirs {
		assert.True(t, want[ev.Seq], "seq %d is a shared event", ev.Seq)
		for _, secret := range []string{"Price floor", "They will sign", "Floor is 80k", "floor.xlsx", internal.ID} {
			assert.NotContains(t, string(ev.Data), secret)
		}
	}
	after, err := e.svc.Events(e.ctx, carol, r, theirs[len(theirs)-1].Seq, 100)
	require.NoError(t, err)
	assert.Empty(t, after)
}

// --- invites ---------------------------------------------------------------

func TestInviteAccepted(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	created := e.current()
	inv := e.invite(t, r, room.InviteDraft{Email: "Erin@Customer.example", Access: room.Read})
	assert.NotEmpty(t, inv.Code)
	assert.Equal(t, room.InviteID(inv.Code), inv.ID)
	assert.Equal(t, "Erin@Customer.example", inv.Email)
	assert.Equal(t, room.Read, inv.Access)
	assert.WithinDuration(t, created.Add(room.DefaultInviteDays*24*time.Hour), inv.ExpiresAt, time.Second,
		"an invite lasts %d days by default", room.DefaultInviteDays)

	list, _, err := e.svc.Invites(e.ctx, bob, r, "", 0)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "pending", list[0].Status(e.current()))
	_, _, err = e.svc.Invites(e.ctx, rita, r, "", 0)
	requireCode(t, dealroom.EFORBIDDEN, err, "readers do not see invites")

	got, m, err := e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: " Erin ", Email: "erin@customer.example"})
	require.NoError(t, err, "the email is compared without regard to case")
	assert.Equal(t, r, got.ID)
	assert.Equal(t, room.CustomerID("erin@customer.example"), m.UserID)
	assert.Equal(t, "Erin", m.Name)
	assert.Equal(t, dealroom.Customer, m.Kind)
	assert.Equal(t, room.Read, m.Access, "access is what the invite gave")
	assert.Equal(t, room.PlainMember, m.RoleInRoom)
	assert.Equal(t, "alice", m.AddedBy)

	erin := dealroom.Actor{ID: m.UserID, Name: "Erin", Kind: dealroom.Customer}
	_, p, err := e.svc.Room(e.ctx, erin, r)
	require.NoError(t, err)
	assert.True(t, p.See)
	assert.False(t, p.Write)
	assert.False(t, p.Internal)

	list, _, err = e.svc.Invites(e.ctx, alice, r, "", 0)
	require.NoError(t, err)
	assert.Equal(t, "accepted", list[0].Status(e.current()))
	assert.Equal(t, m.UserID, list[0].AcceptedBy)

	// Staff hear of the new member; customers see them join without the
	// invite's details.
	evs, err := e.svc.Events(e.ctx, carol, r, 0, 1000)
	require.NoError(t, err)
	last := evs[len(evs)-1]
	assert.Equal(t, room.InviteAccepted, last.Type)
	assert.Equal(t, m.UserID, last.Actor.ID)
	assert.NotContains(t, string(last.Data), "ustomer.example")
	for _, ev := range evs {
		assert.NotEqual(t, room.InviteCreated, ev.Type, "customers do not see invites being made")
	}
}

func TestInviteAcceptedTwiceBySamePerson(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	inv := e.invite(t, r, room.InviteDraft{Email: "erin@customer.example"})
	acc := room.Acceptance{Name: "Erin", Email: "erin@customer.example"}
	_, first, err := e.svc.AcceptInvite(e.ctx, inv.Code, acc)
	require.NoError(t, err)
	head := e.head(t, r)

	_, again, err := e.svc.AcceptInvite(e.ctx, inv.Code, acc)
	require.NoError(t, err, "a lost answer can be retried")
	assert.Equal(t, first, again)
	assert.Equal(t, head, e.head(t, r), "the retry writes nothing")

	_, again, err = e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: "Erin", Email: "ERIN@customer.example"})
	require.NoError(t, err, "the same person in other letters")
	assert.Equal(t, first.UserID, again.UserID)
	ms, err := e.svc.Members(e.ctx, alice, r)
	require.NoError(t, err)
	n := 0
	for _, m := range ms {
		if m.UserID == first.UserID {
			n++
		}
	}
	assert.Equal(t, 1, n, "one membership")

	// Briefly only: a link accepted a while ago is no standing key, not
	// even for the person who accepted it.
	e.advance(room.RepeatAcceptWindow - time.Second)
	_, _, err = e.svc.AcceptInvite(e.ctx, inv.Code, acc)
	require.NoError(t, err, "a second tab a little later")
	e.advance(2 * time.Second)
	_, _, err = e.svc.AcceptInvite(e.ctx, inv.Code, acc)
	requireCode(t, dealroom.ECONFLICT, err)
	assert.Equal(t, head, e.head(t, r), "repeats write nothing")
}

func TestInviteForAnotherEmail(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	inv := e.invite(t, r, room.InviteDraft{Email: "erin@customer.example"})
	head := e.head(t, r)
	_, _, err := e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: "Mallory", Email: "mallory@evil.example"})
	requireField(t, "email", err)
	assert.Equal(t, head, e.head(t, r))
	m, err := e.store.Member(e.ctx, r, room.CustomerID("mallory@evil.example"))
	require.NoError(t, err)
	assert.Nil(t, m, "the holder of someone else's link does not get in")

	// The invited person still can, once; after that, nobody else.
	_, _, err = e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: "Erin", Email: "erin@customer.example"})
	require.NoError(t, err)
	_, _, err = e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: "Mallory", Email: "mallory@evil.example"})
	require.Error(t, err)
	assert.Contains(t, []string{dealroom.EINVALID, dealroom.ECONFLICT}, dealroom.ErrorCode(err))
}

func TestInviteExpiry(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	late := e.invite(t, r, room.InviteDraft{Email: "late@customer.example", ExpiresInDays: 1})
	early := e.invite(t, r, room.InviteDraft{Email: "early@customer.example", ExpiresInDays: 1})

	e.advance(24*time.Hour - time.Second)
	_, _, err := e.svc.AcceptInvite(e.ctx, early.Code, room.Acceptance{Name: "Early", Email: "early@customer.example"})
	require.NoError(t, err, "a second before expiry the link works")

	e.advance(2 * time.Second)
	head := e.head(t, r)
	_, _, err = e.svc.AcceptInvite(e.ctx, late.Code, room.Acceptance{Name: "Late", Email: "late@customer.example"})
	requireCode(t, dealroom.ECONFLICT, err)
	assert.Contains(t, dealroom.ErrorMessage(err), "expired")
	assert.Equal(t, head, e.head(t, r))
	m, err := e.store.Member(e.ctx, r, room.CustomerID("late@customer.example"))
	require.NoError(t, err)
	assert.Nil(t, m)
	list, _, err := e.svc.Invites(e.ctx, alice, r, "", 0)
	require.NoError(t, err)
	for _, inv := range list {
		if inv.ID == late.ID {
			assert.Equal(t, "expired", inv.Status(e.current()))
		}
	}

	// Expiry does not throw out who joined in time, but the link no longer
	// hands out anything, not even to them.
	_, _, err = e.svc.Room(e.ctx, dealroom.Actor{ID: room.CustomerID("early@customer.example"), Kind: dealroom.Customer}, r)
	assert.NoError(t, err)
	_, _, err = e.svc.AcceptInvite(e.ctx, early.Code, room.Acceptance{Name: "Early", Email: "early@customer.example"})
	requireCode(t, dealroom.ECONFLICT, err)
}

func TestInviteLifetime(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	for _, days := range []int{-1, room.MaxInviteDays + 1, 100000} {
		_, err := e.svc.CreateInvite(e.ctx, alice, r, room.InviteDraft{Email: "erin@customer.example", ExpiresInDays: days}, "")
		requireField(t, "expires_in_days", err)
	}
	now := e.current()
	inv := e.invite(t, r, room.InviteDraft{Email: "erin@customer.example", ExpiresInDays: room.MaxInviteDays})
	assert.WithinDuration(t, now.Add(room.MaxInviteDays*24*time.Hour), inv.ExpiresAt, time.Second)

	for _, email := range []string{"", "erin", "Erin <erin@customer.example>", "erin@localhost", "a@b.example, c@d.example"} {
		_, err := e.svc.CreateInvite(e.ctx, alice, r, room.InviteDraft{Email: email}, "")
		requireField(t, "email", err)
	}
	_, err := e.svc.CreateInvite(e.ctx, alice, r, room.InviteDraft{Email: "erin@customer.example", Access: "admin"}, "")
	requireField(t, "access", err)
	_, err = e.svc.CreateInvite(e.ctx, mike, r, room.InviteDraft{Email: "erin@customer.example"}, "")
	assert.NoError(t, err, "managers invite in every room")
}

func TestInviteRevoked(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	inv := e.invite(t, r, room.InviteDraft{Email: "erin@customer.example"})
	_, err := e.svc.RevokeInvite(e.ctx, carol, r, inv.ID, "")
	requireCode(t, dealroom.EFORBIDDEN, err)
	_, err = e.svc.RevokeInvite(e.ctx, rita, r, inv.ID, "")
	requireCode(t, dealroom.EFORBIDDEN, err)
	_, err = e.svc.RevokeInvite(e.ctx, bob, r, inv.ID, "")
	require.NoError(t, err)
	head := e.head(t, r)
	_, err = e.svc.RevokeInvite(e.ctx, alice, r, inv.ID, "")
	require.NoError(t, err, "revoking twice is fine")
	assert.Equal(t, head, e.head(t, r), "and writes nothing")

	_, _, err = e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: "Erin", Email: "erin@customer.example"})
	requireCode(t, dealroom.ECONFLICT, err)
	assert.Contains(t, dealroom.ErrorMessage(err), "revoked")
	m, err := e.store.Member(e.ctx, r, room.CustomerID("erin@customer.example"))
	require.NoError(t, err)
	assert.Nil(t, m)

	// An accepted invite can be revoked: the tokens it issued end (the
	// actor carries the invite), the membership stays until removed.
	inv2 := e.invite(t, r, room.InviteDraft{Email: "fay@customer.example"})
	_, fay, err := e.svc.AcceptInvite(e.ctx, inv2.Code, room.Acceptance{Name: "Fay", Email: "fay@customer.example"})
	require.NoError(t, err)
	fayByLink := dealroom.Actor{ID: fay.UserID, Name: "Fay", Kind: dealroom.Customer, Invite: inv2.ID}
	require.NoError(t, e.svc.Authorize(e.ctx, fayByLink))
	_, err = e.svc.Access(e.ctx, fayByLink, r)
	require.NoError(t, err)
	_, err = e.svc.RevokeInvite(e.ctx, alice, r, inv2.ID, "")
	require.NoError(t, err)
	requireCode(t, dealroom.EUNAUTH, e.svc.Authorize(e.ctx, fayByLink))
	_, err = e.svc.Access(e.ctx, fayByLink, r)
	requireCode(t, dealroom.EUNAUTH, err)
	require.NoError(t, e.svc.Authorize(e.ctx, dealroom.Actor{ID: fay.UserID, Kind: dealroom.Customer}),
		"other tokens of the person are not the invite's")
	requireCode(t, dealroom.EUNAUTH, e.svc.Authorize(e.ctx, dealroom.Actor{ID: "someone-else", Kind: dealroom.Customer, Invite: inv.ID}),
		"an invite never accepted issued no token")
	m, err = e.store.Member(e.ctx, r, fay.UserID)
	require.NoError(t, err)
	assert.NotNil(t, m, "the member stays until removed")
	invs, _, err := e.svc.Invites(e.ctx, alice, r, "", 100)
	require.NoError(t, err)
	for _, i := range invs {
		if i.ID == inv2.ID {
			assert.Equal(t, "revoked", i.Status(e.current()))
		}
	}

	// Removed, the member cannot come back through the same link.
	_, err = e.svc.RemoveMember(e.ctx, alice, r, fay.UserID, "")
	require.NoError(t, err)
	_, _, err = e.svc.AcceptInvite(e.ctx, inv2.Code, room.Acceptance{Name: "Fay", Email: "fay@customer.example"})
	requireCode(t, dealroom.ECONFLICT, err)
	m, err = e.store.Member(e.ctx, r, fay.UserID)
	require.NoError(t, err)
	assert.Nil(t, m)

	// Invites are revoked in their own room only.
	other, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Other", Company: "Other"}, "")
	require.NoError(t, err)
	inv3 := e.invite(t, r, room.InviteDraft{Email: "gus@customer.example"})
	_, err = e.svc.RevokeInvite(e.ctx, alice, other.ID, inv3.ID, "")
	requireCode(t, dealroom.ENOTFOUND, err)
	_, err = e.svc.RevokeInvite(e.ctx, alice, r, "i_nothere", "")
	requireCode(t, dealroom.ENOTFOUND, err)
}

func TestInviteBadCodesAndAcceptances(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	inv := e.invite(t, r, room.InviteDraft{Email: "erin@customer.example"})
	for _, code := range []string{"", "nope", strings.Repeat("a", 101), inv.ID, strings.ToUpper(inv.Code)} {
		_, _, err := e.svc.AcceptInvite(e.ctx, code, room.Acceptance{Name: "Erin", Email: "erin@customer.example"})
		requireCode(t, dealroom.ENOTFOUND, err, "code %q", dealroom.Clip(code))
	}
	_, _, err := e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: " ", Email: "erin@customer.example"})
	requireField(t, "name", err)
	_, _, err = e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: "Erin\nAdmin", Email: "erin@customer.example"})
	requireField(t, "name", err)
	_, _, err = e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: "Erin", Email: "not an email"})
	requireField(t, "email", err)
	// None of that used the invite up.
	_, _, err = e.svc.AcceptInvite(e.ctx, inv.Code, room.Acceptance{Name: "Erin", Email: "erin@customer.example"})
	assert.NoError(t, err)
}

func TestSecondInviteKeepsTheBetterAccess(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	w := e.invite(t, r, room.InviteDraft{Email: "erin@customer.example", Access: room.Write})
	rd := e.invite(t, r, room.InviteDraft{Email: "erin@customer.example", Access: room.Read})
	acc := room.Acceptance{Name: "Erin", Email: "erin@customer.example"}
	_, m, err := e.svc.AcceptInvite(e.ctx, w.Code, acc)
	require.NoError(t, err)
	assert.Equal(t, room.Write, m.Access)
	_, m, err = e.svc.AcceptInvite(e.ctx, rd.Code, acc)
	require.NoError(t, err)
	assert.Equal(t, room.Write, m.Access, "a read invite does not take write access away")
}

// --- threads -----------------------------------------------------------------

func TestThreadRules(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	root := e.post(t, alice, r, room.MessageDraft{Body: "Kick-off on Monday?"})
	reply := e.post(t, carol, r, room.MessageDraft{Body: "Yes", ParentID: root.ID})
	assert.Equal(t, root.ID, reply.ParentID)
	assert.Equal(t, dealroom.Shared, reply.Visibility, "a reply has its thread's visibility")

	_, err := e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: "nested", ParentID: reply.ID}, "")
	requireField(t, "parent_id", err)
	assert.Contains(t, dealroom.ErrorMessage(err), root.ID, "the error points to the thread's first message")
	_, err = e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: "lost", ParentID: "m_nothere"}, "")
	requireField(t, "parent_id", err)

	// An internal aside in a customer's thread is refused: the customer would
	// be answering half a conversation.
	head := e.head(t, r)
	_, err = e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: "psst", ParentID: root.ID, Visibility: dealroom.Internal}, "")
	requireField(t, "visibility", err)
	assert.Equal(t, head, e.head(t, r))

	// In an internal thread, replies are internal; a shared one is refused.
	note := e.post(t, alice, r, room.MessageDraft{Body: "Internal", Visibility: dealroom.Internal})
	inner := e.post(t, bob, r, room.MessageDraft{Body: "agreed", ParentID: note.ID})
	assert.Equal(t, dealroom.Internal, inner.Visibility)
	_, err = e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: "to all", ParentID: note.ID, Visibility: dealroom.Shared}, "")
	requireField(t, "visibility", err)

	// A customer answering the internal thread finds it does not exist, in
	// the same words as for a message that does not exist.
	_, errInternal := e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "?", ParentID: note.ID}, "")
	_, errMissing := e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "?", ParentID: "m_nothere"}, "")
	requireField(t, "parent_id", errInternal)
	requireField(t, "parent_id", errMissing)
	assert.Equal(t, dealroom.ErrorMessage(errMissing), strings.Replace(dealroom.ErrorMessage(errInternal), note.ID, "m_nothere", 1))

	replies, err := e.svc.Messages(e.ctx, carol, room.MessageFilter{Room: r, ParentID: root.ID, Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, []string{reply.ID}, msgIDs(replies))
}

func TestThreadUnderATask(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	tk := e.task(t, alice, r, task.Draft{Title: "Security review"})
	other := e.task(t, alice, r, task.Draft{Title: "Legal"})
	root := e.post(t, alice, r, room.MessageDraft{Body: "Which SSO?", TaskID: tk.ID})
	reply := e.post(t, carol, r, room.MessageDraft{Body: "Okta", ParentID: root.ID})
	assert.Equal(t, tk.ID, reply.TaskID, "a reply belongs to its thread's task")
	_, err := e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "x", ParentID: root.ID, TaskID: other.ID}, "")
	requireField(t, "task_id", err)

	ms, err := e.svc.Messages(e.ctx, carol, room.MessageFilter{Room: r, TaskID: tk.ID, Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, []string{root.ID}, msgIDs(ms))
}

func TestReplyToADeletedMessage(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	root := e.post(t, alice, r, room.MessageDraft{Body: "Our price is 100k"})
	first := e.post(t, carol, r, room.MessageDraft{Body: "Too high", ParentID: root.ID})
	_, err := e.svc.DeleteMessage(e.ctx, alice, r, root.ID, "")
	require.NoError(t, err)

	tomb, err := e.svc.Message(e.ctx, carol, r, root.ID)
	require.NoError(t, err, "a deleted message stays as a tombstone")
	assert.True(t, tomb.Deleted)
	assert.Empty(t, tomb.Body)
	assert.Empty(t, tomb.Mentions)

	// The thread keeps its shape and stays open: the conversation under a
	// withdrawn message goes on.
	later := e.post(t, bob, r, room.MessageDraft{Body: "We will revise", ParentID: root.ID})
	replies, err := e.svc.Messages(e.ctx, carol, room.MessageFilter{Room: r, ParentID: root.ID, Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, []string{first.ID, later.ID}, msgIDs(replies))

	// The tombstone itself cannot be edited back to life.
	_, err = e.svc.EditMessage(e.ctx, alice, r, root.ID, room.MessageEdit{Body: "Our price is 90k"}, "")
	requireCode(t, dealroom.ECONFLICT, err)
	head := e.head(t, r)
	_, err = e.svc.DeleteMessage(e.ctx, alice, r, root.ID, "")
	require.NoError(t, err, "deleting twice is fine")
	assert.Equal(t, head, e.head(t, r), "and writes nothing")
}

func TestDeletedMessageTextIsGone(t *testing.T) {
	// Someone posts what was not meant for the customer and deletes it at
	// once. The tombstone keeps no text; neither may anything else a
	// member can read: the inbox, the thread, or the timeline.
	e := newEnv(t)
	r := e.room(t)
	const slip = "our walk-away price is 62k"
	m := e.post(t, bob, r, room.MessageDraft{Body: "@Carol " + slip})
	_, err := e.svc.DeleteMessage(e.ctx, bob, r, m.ID, "")
	require.NoError(t, err)

	got, err := e.svc.Message(e.ctx, carol, r, m.ID)
	require.NoError(t, err)
	assert.NotContains(t, got.Body, slip)
	for _, it := range e.inbox(t, carol) {
		assert.NotContains(t, it.Excerpt, slip)
	}
	evs, err := e.svc.Events(e.ctx, carol, r, 0, 1000)
	require.NoError(t, err)
	for _, ev := range evs {
		assert.NotContains(t, string(ev.Data), slip, "seq %d (%s) still carries the deleted text", ev.Seq, ev.Type)
	}
}

func TestThreadsOfADeletedTask(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	tk := e.task(t, alice, r, task.Draft{Title: "Security review"})
	root := e.post(t, alice, r, room.MessageDraft{Body: "Which SSO?", TaskID: tk.ID})
	_, err := e.svc.DeleteTask(e.ctx, alice, r, tk.ID, "")
	require.NoError(t, err)

	// Every thread a member is shown can be answered: a thread still listed
	// in the room's discussion after its task went away must take replies
	// (or not be listed any more).
	roots, err := e.svc.Messages(e.ctx, carol, room.MessageFilter{Room: r, Limit: 100})
	require.NoError(t, err)
	_, err = e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "Okta", ParentID: root.ID}, "")
	if assert.Contains(t, msgIDs(roots), root.ID) {
		assert.NoError(t, err, "a listed thread refuses a reply, naming task_id, which the reply did not send")
	}
}

func TestEditAndDeleteRights(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	m := e.post(t, carol, r, room.MessageDraft{Body: "Hello"})
	_, err := e.svc.EditMessage(e.ctx, bob, r, m.ID, room.MessageEdit{Body: "Changed"}, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "only the author edits")
	_, err = e.svc.EditMessage(e.ctx, alice, r, m.ID, room.MessageEdit{Body: "Changed"}, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "not even the owner edits someone's words")
	_, err = e.svc.DeleteMessage(e.ctx, bob, r, m.ID, "")
	requireCode(t, dealroom.EFORBIDDEN, err, "a writer does not delete others' messages")
	_, err = e.svc.DeleteMessage(e.ctx, dan, r, m.ID, "")
	requireCode(t, dealroom.EFORBIDDEN, err)

	res, err := e.svc.EditMessage(e.ctx, carol, r, m.ID, room.MessageEdit{Body: "Hello all"}, "")
	require.NoError(t, err)
	assert.Equal(t, "Hello all", res.Body)
	require.NotNil(t, res.EditedAt)
	head := e.head(t, r)
	_, err = e.svc.EditMessage(e.ctx, carol, r, m.ID, room.MessageEdit{Body: " Hello all "}, "")
	require.NoError(t, err)
	assert.Equal(t, head, e.head(t, r), "an edit to the same text writes nothing")
	_, err = e.svc.EditMessage(e.ctx, carol, r, m.ID, room.MessageEdit{Body: " "}, "")
	requireField(t, "body", err)

	_, err = e.svc.DeleteMessage(e.ctx, alice, r, m.ID, "")
	require.NoError(t, err, "owners delete any message")
	m2 := e.post(t, carol, r, room.MessageDraft{Body: "Again"})
	_, err = e.svc.DeleteMessage(e.ctx, mike, r, m2.ID, "")
	require.NoError(t, err, "managers too")
	m3 := e.post(t, carol, r, room.MessageDraft{Body: "Mine"})
	_, err = e.svc.DeleteMessage(e.ctx, carol, r, m3.ID, "")
	require.NoError(t, err, "authors delete their own")
}

func TestTaskPositions(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	a := e.task(t, alice, r, task.Draft{Title: "a"})
	b := e.task(t, alice, r, task.Draft{Title: "b"})
	assert.Equal(t, 1.0, a.Position)
	assert.Equal(t, 2.0, b.Position, "a new task goes to the end of the plan")
	half := 1.5
	c := e.task(t, alice, r, task.Draft{Title: "c", Position: &half})
	ts, err := e.svc.Tasks(e.ctx, alice, r)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "c", "b"}, taskTitles(ts))
	assert.Equal(t, 1.5, c.Position)

	// Moved to the very end of the allowed range, a task still has tasks
	// created after it; each of them must be a task whose position can be
	// written back as it is.
	_, err = e.svc.UpdateTask(e.ctx, alice, r, b.ID, task.Patch{Position: dealroom.Some(1e15)}, "")
	require.NoError(t, err)
	d := e.task(t, alice, r, task.Draft{Title: "d"})
	assert.LessOrEqual(t, d.Position, 1e15, "a new task's position lies in the range the API accepts")
	_, err = e.svc.UpdateTask(e.ctx, alice, r, d.ID, task.Patch{Position: dealroom.Some(d.Position), Title: dealroom.Some("d2")}, "")
	assert.NoError(t, err, "a task's own position is accepted back")
}

// A customer's new task, and the refusal of one, depend on shared tasks
// alone: neither its position nor the limit's error tells of internal
// tasks.
func TestCustomersTaskTellsNothingOfInternalTasks(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	e.task(t, alice, r, task.Draft{Title: "Kick-off"}) // position 1
	for _, title := range []string{"Price floor", "Competitor notes"} {
		e.task(t, alice, r, task.Draft{Title: title, Visibility: dealroom.Internal}) // 2, 3
	}
	mine := e.task(t, carol, r, task.Draft{Title: "Legal review"})
	assert.Equal(t, 2.0, mine.Position, "after the last shared task, as if there were no others")
	staffs := e.task(t, alice, r, task.Draft{Title: "Order form"})
	assert.Equal(t, 4.0, staffs.Position, "staff's new tasks go after the last task of all")

}

// --- rooms list ------------------------------------------------------------

func TestRoomsListedByMembership(t *testing.T) {
	e := newEnv(t)
	r1 := e.room(t)
	r2, err := e.svc.CreateRoom(e.ctx, olga, room.Draft{Name: "Olga's", Company: "Initech", Stage: room.Signing}, "")
	require.NoError(t, err)
	ids := func(a dealroom.Actor, f room.RoomFilter) []string {
		t.Helper()
		f.Limit = 10
		rs, err := e.svc.Rooms(e.ctx, a, f)
		require.NoError(t, err)
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.Room.ID
		}
		return out
	}
	assert.Equal(t, []string{r1}, ids(alice, room.RoomFilter{}))
	assert.Equal(t, []string{r1}, ids(carol, room.RoomFilter{}), "customers know only their rooms")
	assert.Equal(t, []string{r2.ID}, ids(olga, room.RoomFilter{}))
	assert.Equal(t, []string{r2.ID, r1}, ids(mike, room.RoomFilter{}), "managers see every room, newest first")
	assert.Equal(t, []string{r2.ID, r1}, ids(adam, room.RoomFilter{}))
	assert.Equal(t, []string{r2.ID}, ids(mike, room.RoomFilter{Stage: room.Signing}))
	assert.Equal(t, []string{r1}, ids(mike, room.RoomFilter{Owner: "alice"}))
	assert.Empty(t, ids(alice, room.RoomFilter{Stage: room.Signing}))
	// A rep cannot widen the list by asking for someone else's rooms.
	assert.Empty(t, ids(alice, room.RoomFilter{Member: "olga", Owner: "olga"}))
}

// A staff member who is a customer-kind member of a room sees it in the
// room list as customers do, as GET /rooms/{id} shows it: the stricter of
// token and membership, one rule everywhere.
func TestRoomsListedAsMembershipAllows(t *testing.T) {
	e := newEnv(t)
	value := 48000.0
	r, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Acme", Company: "Acme", Value: &value,
		Currency: "EUR", CloseWindow: room.ThisMonth, Tags: []string{"secret-tag"}}, "")
	require.NoError(t, err)
	// Olga (staff rep) and Mike (a manager) joined as the customer's contacts.
	for _, who := range []dealroom.Actor{olga, mike} {
		_, err = e.svc.AddMember(e.ctx, alice, r.ID, room.MemberDraft{UserID: who.ID, Name: who.Name, Kind: dealroom.Customer}, "")
		require.NoError(t, err)
	}
	for _, who := range []dealroom.Actor{olga, mike} {
		rs, err := e.svc.Rooms(e.ctx, who, room.RoomFilter{Limit: 10})
		require.NoError(t, err)
		require.Len(t, rs, 1, who.ID)
		shown, err := json.Marshal(rs[0].Perm.Present(&rs[0].Room))
		require.NoError(t, err)
		_, one, err := e.svc.Room(e.ctx, who, r.ID)
		require.NoError(t, err)
		alone, err := json.Marshal(one.Present(&rs[0].Room))
		require.NoError(t, err)
		assert.JSONEq(t, string(alone), string(shown), "%s: the list shows the room as GET /rooms/{id} does", who.ID)
		for _, hidden := range []string{"48000", "secret-tag", "this_month", `"owner_id"`, "EUR"} {
			assert.NotContains(t, string(shown), hidden, "%s sees the customer view", who.ID)
		}
	}
	rs, err := e.svc.Rooms(e.ctx, alice, room.RoomFilter{Limit: 10})
	require.NoError(t, err)
	require.Len(t, rs, 1)
	assert.True(t, rs[0].Perm.Internal, "the owner sees the whole room")
}

// Filters on fields customers do not see are refused for customers'
// tokens, and never match a room that its reader sees as a customer: a
// filter must not tell what the view hides.
func TestRoomFiltersRevealNothingHidden(t *testing.T) {
	e := newEnv(t)
	r1, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Acme", Company: "Acme", CloseWindow: room.ThisMonth}, "")
	require.NoError(t, err)
	r2, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Globex", Company: "Globex", CloseWindow: room.ThisMonth}, "")
	require.NoError(t, err)
	for _, r := range []string{r1.ID, r2.ID} {
		_, err = e.svc.AddMember(e.ctx, alice, r, room.MemberDraft{UserID: carol.ID, Name: carol.Name, Kind: dealroom.Customer}, "")
		require.NoError(t, err)
	}
	// Olga is staff in Acme and the customer's contact in Globex, the newer.
	_, err = e.svc.AddMember(e.ctx, alice, r1.ID, room.MemberDraft{UserID: olga.ID, Name: olga.Name, Kind: dealroom.Staff}, "")
	require.NoError(t, err)
	_, err = e.svc.AddMember(e.ctx, alice, r2.ID, room.MemberDraft{UserID: olga.ID, Name: olga.Name, Kind: dealroom.Customer}, "")
	require.NoError(t, err)

	for _, f := range []room.RoomFilter{{Owner: "alice"}, {CloseWindow: room.ThisMonth}, {Owner: "bob"}} {
		_, err := e.svc.Rooms(e.ctx, carol, f)
		assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err), "a customer's filter %+v is refused", f)
	}
	rs, err := e.svc.Rooms(e.ctx, carol, room.RoomFilter{Stage: room.Discovery, Limit: 10})
	require.NoError(t, err, "customers see the stage, and may filter by it")
	assert.Len(t, rs, 2)

	ids := func(f room.RoomFilter) []string {
		t.Helper()
		rs, err := e.svc.Rooms(e.ctx, olga, f)
		require.NoError(t, err)
		var out []string
		for _, r := range rs {
			out = append(out, r.Room.ID)
		}
		return out
	}
	assert.Equal(t, []string{r2.ID, r1.ID}, ids(room.RoomFilter{Limit: 10}))
	assert.Equal(t, []string{r1.ID}, ids(room.RoomFilter{Owner: "alice", Limit: 10}),
		"a room seen as a customer never matches a filter on its owner")
	assert.Equal(t, []string{r1.ID}, ids(room.RoomFilter{CloseWindow: room.ThisMonth, Limit: 10}))
	assert.Equal(t, []string{r1.ID}, ids(room.RoomFilter{Owner: "alice", Limit: 1}), "pages are filled past left-out rooms")
	assert.Empty(t, ids(room.RoomFilter{Owner: "alice", Before: r1.ID, Limit: 1}))
}

// --- attachments -------------------------------------------------------------

// memBlobs is an in-memory room.Blobs.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func (b *memBlobs) Put(ctx context.Context, r io.Reader, max int64) (room.Blob, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return room.Blob{}, err
	}
	if int64(len(data)) > max {
		return room.Blob{}, dealroom.Errorf(dealroom.ETOOLARGE, "too large")
	}
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.blobs == nil {
		b.blobs = map[string][]byte{}
	}
	b.blobs[h] = data
	return room.Blob{SHA256: h, Size: int64(len(data))}, nil
}

type readSeekNopCloser struct{ *bytes.Reader }

func (readSeekNopCloser) Close() error { return nil }

func (b *memBlobs) Open(ctx context.Context, sum string) (io.ReadSeekCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.blobs[sum]
	if !ok {
		return nil, dealroom.NotFound("blob", sum)
	}
	return readSeekNopCloser{bytes.NewReader(data)}, nil
}

// The bytes of an upload whose record failed after they were stored are
// collected once they are older than the cutoff; the bytes of every
// attachment stay, also when another upload of them failed.
func TestCollectBlobs(t *testing.T) {
	e := newEnv(t)
	blobs, err := diskblob.Open(t.TempDir())
	require.NoError(t, err)
	e.svc.Blobs = blobs
	r := e.room(t)
	upload := func(a dealroom.Actor, data string) (room.Blob, error) {
		t.Helper()
		up := room.Upload{Name: "f.txt", ContentType: "text/plain"}
		require.NoError(t, e.svc.CheckUpload(e.ctx, a, r, up))
		blob, err := e.svc.Blobs.Put(e.ctx, strings.NewReader(data), 1<<20)
		require.NoError(t, err)
		up.Blob = blob
		_, err = e.svc.AddAttachment(e.ctx, a, r, up, "")
		return blob, err
	}
	kept, err := upload(carol, "the proposal")
	require.NoError(t, err)
	// Carol loses write access between the check and the record.
	lost := func(data string) room.Blob {
		t.Helper()
		up := room.Upload{Name: "g.txt", ContentType: "text/plain"}
		require.NoError(t, e.svc.CheckUpload(e.ctx, carol, r, up))
		_, err := e.svc.UpdateMember(e.ctx, alice, r, carol.ID, room.MemberPatch{Access: dealroom.Some(room.Read)}, "")
		require.NoError(t, err)
		blob, err := e.svc.Blobs.Put(e.ctx, strings.NewReader(data), 1<<20)
		require.NoError(t, err)
		up.Blob = blob
		_, err = e.svc.AddAttachment(e.ctx, carol, r, up, "")
		requireCode(t, dealroom.EFORBIDDEN, err)
		_, err = e.svc.UpdateMember(e.ctx, alice, r, carol.ID, room.MemberPatch{Access: dealroom.Some(room.Write)}, "")
		require.NoError(t, err)
		return blob
	}
	orphan := lost("a draft nobody recorded")
	lost("the proposal") // the same bytes as an attachment's

	removed, err := e.svc.CollectBlobs(e.ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Zero(t, removed, "nothing older than the cutoff")
	time.Sleep(5 * time.Millisecond)
	removed, err = e.svc.CollectBlobs(e.ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, removed)
	_, err = blobs.Open(e.ctx, orphan.SHA256)
	requireCode(t, dealroom.ENOTFOUND, err, "the unrecorded upload's bytes are gone")
	rc, err := blobs.Open(e.ctx, kept.SHA256)
	require.NoError(t, err, "an attachment's bytes stay")
	rc.Close()
}

func TestAttachments(t *testing.T) {
	e := newEnv(t)
	e.svc.Blobs = &memBlobs{}
	r := e.room(t)
	upload := func(a dealroom.Actor, name, ct string, vis dealroom.Visibility, data string) (room.Attachment, error) {
		t.Helper()
		up := room.Upload{Name: name, ContentType: ct, Visibility: vis}
		if err := e.svc.CheckUpload(e.ctx, a, r, up); err != nil {
			return room.Attachment{}, err
		}
		blob, err := e.svc.Blobs.Put(e.ctx, strings.NewReader(data), 1<<20)
		require.NoError(t, err)
		up.Blob = blob
		return e.svc.AddAttachment(e.ctx, a, r, up, "")
	}
	page, err := upload(carol, "../../../var/www/index.html", "text/html\r\nX-XSS: 1", "", "<script>alert(1)</script>")
	require.NoError(t, err)
	assert.Equal(t, "index.html", page.Name, "no directories in a stored name")
	assert.Equal(t, "application/octet-stream", page.ContentType)
	assert.Equal(t, dealroom.Shared, page.Visibility)
	assert.Equal(t, int64(25), page.Size)
	assert.Equal(t, "carol", page.UploadedBy)

	plan, err := upload(alice, "floor.xlsx", "application/vnd.ms-excel", dealroom.Internal, "80k")
	require.NoError(t, err)

	at, rc, err := e.svc.OpenAttachment(e.ctx, dan, r, page.ID)
	require.NoError(t, err, "readers download")
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, "<script>alert(1)</script>", string(data), "the bytes are exactly those uploaded")
	assert.Equal(t, page, *at)

	for _, a := range []dealroom.Actor{carol, dan} {
		_, _, err = e.svc.OpenAttachment(e.ctx, a, r, plan.ID)
		requireCode(t, dealroom.ENOTFOUND, err, "an internal file does not exist for %s", a.ID)
	}
	_, _, err = e.svc.OpenAttachment(e.ctx, olga, r, page.ID)
	requireCode(t, dealroom.ENOTFOUND, err)
	_, _, err = e.svc.OpenAttachment(e.ctx, alice, r, "a_nothere")
	requireCode(t, dealroom.ENOTFOUND, err)
	_, rc, err = e.svc.OpenAttachment(e.ctx, rita, r, plan.ID)
	require.NoError(t, err)
	rc.Close()

	// Messages carry files everyone who sees the message may see.
	msg, err := e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "see", Attachments: []string{page.ID, page.ID}}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{page.ID}, msg.Attachments, "a file is attached once")
	_, err = e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "see", Attachments: []string{plan.ID}}, "")
	requireField(t, "attachments", err)
	_, err = e.svc.PostMessage(e.ctx, carol, r, room.MessageDraft{Body: "see", Attachments: []string{"a_nothere"}}, "")
	requireField(t, "attachments", err)
	many := make([]string, room.MaxMessageAttachments+1)
	for i := range many {
		many[i] = page.ID
	}
	_, err = e.svc.PostMessage(e.ctx, alice, r, room.MessageDraft{Body: "see", Attachments: many}, "")
	requireField(t, "attachments", err)
	note, err := e.svc.PostMessage(e.ctx, alice, r, room.MessageDraft{Body: "see", Visibility: dealroom.Internal, Attachments: []string{plan.ID, page.ID}}, "")
	require.NoError(t, err, "an internal note may carry any file")
	assert.Equal(t, []string{plan.ID, page.ID}, note.Attachments)

	// A file of another room is not this room's.
	other, err := e.svc.CreateRoom(e.ctx, alice, room.Draft{Name: "Other", Company: "Other"}, "")
	require.NoError(t, err)
	_, err = e.svc.PostMessage(e.ctx, alice, other.ID, room.MessageDraft{Body: "x", Attachments: []string{page.ID}}, "")
	requireField(t, "attachments", err)
	_, _, err = e.svc.OpenAttachment(e.ctx, alice, other.ID, page.ID)
	requireCode(t, dealroom.ENOTFOUND, err)
}

// --- inbox -----------------------------------------------------------------

func itemsIn(items []room.InboxItem, roomID, kind string) []room.InboxItem {
	var out []room.InboxItem
	for _, it := range items {
		if it.RoomID == roomID && it.Kind == kind {
			out = append(out, it)
		}
	}
	return out
}

func TestInboxMentions(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	res := e.post(t, alice, r, room.MessageDraft{Body: "@Carol Buyer and @Bob Engineer, please check with @nobody"})
	assert.Equal(t, []string{"carol", "bob"}, res.Mentions)
	assert.Equal(t, []string{"nobody"}, res.UnresolvedMentions, "the writer learns at once who was not reached")

	for _, a := range []dealroom.Actor{carol, bob} {
		items := itemsIn(e.inbox(t, a), r, room.InboxMention)
		require.Len(t, items, 1, a.ID)
		it := items[0]
		assert.Equal(t, res.ID, it.MessageID)
		assert.Equal(t, "Message from Alice Rep", it.Title)
		assert.Equal(t, res.Body, it.Excerpt)
		assert.Equal(t, "Acme renewal", it.RoomName)
		assert.Equal(t, "alice", it.Actor.ID)
		assert.Nil(t, it.ReadAt)
	}
	assert.Empty(t, itemsIn(e.inbox(t, alice), r, room.InboxMention), "no item for one's own words")
	assert.Empty(t, itemsIn(e.inbox(t, rita), r, room.InboxMention), "nor for who was not named")

	// Newest first: the mention comes before the invitation of joining.
	carolItems := e.inbox(t, carol)
	require.Len(t, carolItems, 2)
	assert.Equal(t, room.InboxMention, carolItems[0].Kind)
	assert.Equal(t, room.InboxInvitation, carolItems[1].Kind)
	assert.Equal(t, "You were added to Acme renewal", carolItems[1].Title)

	// Read marks.
	item := itemsIn(carolItems, r, room.InboxMention)[0]
	require.NoError(t, e.svc.MarkRead(e.ctx, carol, item.ID))
	read := itemsIn(e.inbox(t, carol), r, room.InboxMention)[0]
	require.NotNil(t, read.ReadAt)
	requireCode(t, dealroom.ENOTFOUND, e.svc.MarkRead(e.ctx, carol, "e_nothere"))
	requireCode(t, dealroom.ENOTFOUND, e.svc.MarkRead(e.ctx, dan, item.ID), "nobody marks another's item")
}

func TestInboxExcerptIsShort(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	body := "@Carol " + strings.Repeat("ü", 500)
	e.post(t, alice, r, room.MessageDraft{Body: body})
	items := itemsIn(e.inbox(t, carol), r, room.InboxMention)
	require.Len(t, items, 1)
	assert.Equal(t, 201, utf8.RuneCountInString(items[0].Excerpt), "200 characters and an ellipsis")
	assert.True(t, strings.HasSuffix(items[0].Excerpt, "…"))
	assert.True(t, utf8.ValidString(items[0].Excerpt))
}

func TestInboxInternalMentions(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	res := e.post(t, alice, r, room.MessageDraft{Body: "@Carol Buyer is slow, @Bob Engineer push", Visibility: dealroom.Internal})
	assert.Equal(t, []string{"bob"}, res.Mentions)
	assert.Equal(t, []string{"Carol Buyer"}, res.UnresolvedMentions, "a customer named in an internal note is not reached")
	assert.Empty(t, itemsIn(e.inbox(t, carol), r, room.InboxMention))
	require.Len(t, itemsIn(e.inbox(t, bob), r, room.InboxMention), 1)

	tk, err := e.svc.CreateTask(e.ctx, alice, r, task.Draft{Title: "Floor", Visibility: dealroom.Internal,
		Description: "ask @Carol and @Rita"}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"rita"}, tk.Mentions)
	assert.Equal(t, []string{"Carol"}, tk.UnresolvedMentions)
	assert.Empty(t, itemsIn(e.inbox(t, carol), r, room.InboxMention))
	require.Len(t, itemsIn(e.inbox(t, rita), r, room.InboxMention), 1)
}

func TestInboxFollowsEdits(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	m := e.post(t, alice, r, room.MessageDraft{Body: "@Bob please"})
	res, err := e.svc.EditMessage(e.ctx, alice, r, m.ID, room.MessageEdit{Body: "@Bob and @Rita please, not @zed"}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"bob", "rita"}, res.Mentions)
	assert.Equal(t, []string{"zed"}, res.UnresolvedMentions)
	assert.Len(t, itemsIn(e.inbox(t, bob), r, room.InboxMention), 1, "an edit does not notify twice")
	ritas := itemsIn(e.inbox(t, rita), r, room.InboxMention)
	require.Len(t, ritas, 1, "the newly named hear of it")
	assert.Contains(t, ritas[0].Excerpt, "@Rita")

	// The item shows the message as it stands: deleted, it says so.
	_, err = e.svc.DeleteMessage(e.ctx, alice, r, m.ID, "")
	require.NoError(t, err)
	for _, a := range []dealroom.Actor{bob, rita} {
		items := itemsIn(e.inbox(t, a), r, room.InboxMention)
		require.Len(t, items, 1)
		assert.Equal(t, "(deleted message)", items[0].Title)
		assert.Empty(t, items[0].Excerpt, "nothing of the deleted text")
	}
}

func TestInboxAssignments(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	res, err := e.svc.CreateTask(e.ctx, alice, r, task.Draft{Title: "Sign the MSA", Description: "@Rita please review, @Carol too",
		Assignees: []string{"carol", "bob", "alice"}}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"rita", "carol"}, res.Mentions)

	for _, a := range []dealroom.Actor{carol, bob} {
		items := itemsIn(e.inbox(t, a), r, room.InboxAssignment)
		require.Len(t, items, 1, a.ID)
		assert.Equal(t, res.ID, items[0].TaskID)
		assert.Equal(t, "Sign the MSA", items[0].Title)
		assert.Equal(t, res.Description, items[0].Excerpt)
	}
	assert.Empty(t, itemsIn(e.inbox(t, carol), r, room.InboxMention), "assigned and named: one item")
	assert.Len(t, itemsIn(e.inbox(t, rita), r, room.InboxMention), 1)
	assert.Empty(t, itemsIn(e.inbox(t, alice), r, room.InboxAssignment), "assigning oneself tells no one")

	// Adding Dan tells Dan only.
	_, err = e.svc.UpdateTask(e.ctx, alice, r, res.ID, task.Patch{Assignees: dealroom.Some([]string{"carol", "bob", "dan"})}, "")
	require.NoError(t, err)
	assert.Len(t, itemsIn(e.inbox(t, dan), r, room.InboxAssignment), 1)
	assert.Len(t, itemsIn(e.inbox(t, carol), r, room.InboxAssignment), 1)
	assert.Len(t, itemsIn(e.inbox(t, bob), r, room.InboxAssignment), 1)

	// Renamed, the item shows the new title; deleted, it goes away.
	_, err = e.svc.UpdateTask(e.ctx, alice, r, res.ID, task.Patch{Title: dealroom.Some("Sign the MSA v2")}, "")
	require.NoError(t, err)
	assert.Equal(t, "Sign the MSA v2", itemsIn(e.inbox(t, dan), r, room.InboxAssignment)[0].Title)
	_, err = e.svc.DeleteTask(e.ctx, alice, r, res.ID, "")
	require.NoError(t, err)
	assert.Empty(t, itemsIn(e.inbox(t, dan), r, room.InboxAssignment))
}

func TestInboxForgetsRoomsLeft(t *testing.T) {
	e := newEnv(t)
	r := e.room(t)
	e.post(t, alice, r, room.MessageDraft{Body: "@Carol hello"})
	e.task(t, alice, r, task.Draft{Title: "Sign", Assignees: []string{"carol"}})
	require.NotEmpty(t, e.inbox(t, carol))
	_, err := e.svc.RemoveMember(e.ctx, alice, r, carol.ID, "")
	require.NoError(t, err)
	for _, it := range e.inbox(t, carol) {
		assert.NotEqual(t, r, it.RoomID, "nothing of a room one left")
	}
}

func TestInboxTaskMadeShared(t *testing.T) {
	// Naming a customer in an internal task reaches no one; once the task
	// is shared, the customer is reached.
	e := newEnv(t)
	r := e.room(t)
	tk, err := e.svc.CreateTask(e.ctx, alice, r, task.Draft{Title: "Review", Visibility: dealroom.Internal, Description: "@Carol will review"}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"Carol"}, tk.UnresolvedMentions)
	res, err := e.svc.UpdateTask(e.ctx, alice, r, tk.ID, task.Patch{Visibility: dealroom.Some(dealroom.Shared)}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"carol"}, res.Mentions)
	assert.Empty(t, res.UnresolvedMentions)
	items := itemsIn(e.inbox(t, carol), r, room.InboxMention)
	require.Len(t, items, 1)
	assert.Equal(t, tk.ID, items[0].TaskID)

	_, err = e.svc.UpdateTask(e.ctx, alice, r, tk.ID, task.Patch{Visibility: dealroom.Some(dealroom.Internal)}, "")
	requireField(t, "visibility", err)
}

// --- my tasks ------------------------------------------------------------

func TestMyTasks(t *testing.T) {
	e := newEnv(t)
	r1 := e.room(t)
	r2 := e.room(t)
	day := func(d int) *task.Date { return &task.Date{Year: 2026, Month: time.March, Day: d} }
	a := e.task(t, alice, r1, task.Draft{Title: "a", Assignees: []string{"carol"}, Due: day(20)})
	b := e.task(t, alice, r2, task.Draft{Title: "b", Assignees: []string{"carol"}, Due: day(10)})
	c := e.task(t, alice, r1, task.Draft{Title: "c", Assignees: []string{"carol"}})
	d := e.task(t, alice, r2, task.Draft{Title: "d", Assignees: []string{"carol"}, Due: day(5), Status: task.Done})
	e.task(t, alice, r1, task.Draft{Title: "not hers", Assignees: []string{"bob"}, Due: day(1)})

	mine, err := e.svc.MyTasks(e.ctx, carol, room.MyTaskFilter{})
	require.NoError(t, err)
	assert.Equal(t, []string{d.ID, b.ID, a.ID, c.ID}, taskIDs(mine), "soonest due first, undated last")

	open, err := e.svc.MyTasks(e.ctx, carol, room.MyTaskFilter{Statuses: []task.Status{task.Open}})
	require.NoError(t, err)
	assert.Equal(t, []string{b.ID, a.ID, c.ID}, taskIDs(open))
	soon, err := e.svc.MyTasks(e.ctx, carol, room.MyTaskFilter{DueBefore: day(20)})
	require.NoError(t, err)
	assert.Equal(t, []string{d.ID, b.ID}, taskIDs(soon), "due strictly before the day; undated is not due")
	inR1, err := e.svc.MyTasks(e.ctx, carol, room.MyTaskFilter{Room: r1})
	require.NoError(t, err)
	assert.Equal(t, []string{a.ID, c.ID}, taskIDs(inR1))

	_, err = e.svc.RemoveMember(e.ctx, alice, r2, carol.ID, "")
	require.NoError(t, err)
	mine, err = e.svc.MyTasks(e.ctx, carol, room.MyTaskFilter{})
	require.NoError(t, err)
	assert.Equal(t, []string{a.ID, c.ID}, taskIDs(mine), "tasks of a room one left are gone")
}

func taskIDs(ts []task.Task) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}
