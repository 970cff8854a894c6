package room_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// inboxOf summarises inbox items as user → kind.
func inboxOf(items []room.InboxItem) map[string]string {
	out := map[string]string{}
	for _, it := range items {
		out[it.UserID] = it.Kind
	}
	return out
}

func TestProjectRoomCreated(t *testing.T) {
	r := sampleRoom()
	owner := room.Member{UserID: "alice", Name: "Alice", Kind: dealroom.Staff, Access: room.Write, RoleInRoom: room.Owner}
	tasks := []task.Task{
		{ID: "t_1", Title: "Kick-off", Visibility: dealroom.Shared, Assignees: []string{}},
		{ID: "t_2", Title: "Questions", Visibility: dealroom.Internal, Assignees: []string{"alice", "bob"}},
	}
	ev := mkEvent(t, room.RoomCreated, dealroom.Shared, "alice", room.RoomCreatedData{Room: r, Members: []room.Member{owner}, Tasks: tasks})
	fx, err := room.Project(ev)
	require.NoError(t, err)
	require.NotNil(t, fx.Room)
	assert.Equal(t, r.ID, fx.Room.ID)
	assert.Equal(t, r.Value, fx.Room.Value)
	assert.Equal(t, []room.Member{owner}, fx.Members)
	assert.Equal(t, tasks, fx.Tasks)
	assert.Equal(t, map[string]string{"bob": room.InboxAssignment}, inboxOf(fx.Inbox),
		"assignees of the plan hear of it, the creator does not")
	require.Len(t, fx.Inbox, 1)
	assert.Equal(t, dealroom.Internal, fx.Inbox[0].Visibility, "the item is as visible as the task")
	assert.Equal(t, "t_2", fx.Inbox[0].TaskID)
}

func TestProjectMembers(t *testing.T) {
	carol := room.Member{UserID: "carol", Name: "Carol", Kind: dealroom.Customer, Access: room.Write, RoleInRoom: room.PlainMember}
	ev := mkEvent(t, room.MemberAdded, dealroom.Shared, "alice", carol)
	fx, err := room.Project(ev)
	require.NoError(t, err)
	assert.Equal(t, []room.Member{carol}, fx.Members)
	require.Len(t, fx.Inbox, 1, "the new member is told")
	it := fx.Inbox[0]
	assert.Equal(t, room.InboxItem{ID: ev.ID, UserID: "carol", Kind: room.InboxInvitation, RoomID: "r_1", Seq: ev.Seq,
		Actor: ev.Actor, Visibility: dealroom.Shared, At: ev.At}, it)

	self := mkEvent(t, room.MemberAdded, dealroom.Shared, "carol", carol)
	fx, err = room.Project(self)
	require.NoError(t, err)
	assert.Empty(t, fx.Inbox, "nobody is told of their own doing")

	upd := mkEvent(t, room.MemberUpdated, dealroom.Shared, "alice", carol)
	fx, err = room.Project(upd)
	require.NoError(t, err)
	assert.Equal(t, []room.Member{carol}, fx.Members)
	assert.Empty(t, fx.Inbox, "a change of access is no invitation")

	rm := mkEvent(t, room.MemberRemoved, dealroom.Shared, "alice", room.MemberRemovedData{UserID: "carol", Name: "Carol"})
	fx, err = room.Project(rm)
	require.NoError(t, err)
	assert.Equal(t, []string{"carol"}, fx.RemovedMembers)
	assert.Empty(t, fx.Members)
	assert.Empty(t, fx.Inbox)
}

func TestProjectTaskCreated(t *testing.T) {
	tk := task.Task{ID: "t_1", RoomID: "r_1", Title: "Sign", Visibility: dealroom.Shared,
		Assignees: []string{"alice", "carol", "bob"}, Mentions: []string{"bob", "dave", "alice"}}
	ev := mkEvent(t, room.TaskCreated, dealroom.Shared, "alice", tk)
	fx, err := room.Project(ev)
	require.NoError(t, err)
	assert.Equal(t, []task.Task{tk}, fx.Tasks)
	assert.Equal(t, map[string]string{
		"carol": room.InboxAssignment,
		"bob":   room.InboxAssignment, // assigned and mentioned: one item, the assignment
		"dave":  room.InboxMention,
	}, inboxOf(fx.Inbox))
	assert.Len(t, fx.Inbox, 3, "one item per person per event")
	for _, it := range fx.Inbox {
		assert.Equal(t, ev.ID, it.ID)
		assert.Equal(t, "t_1", it.TaskID)
		assert.Empty(t, it.MessageID)
		assert.Equal(t, dealroom.Shared, it.Visibility)
		assert.Nil(t, it.ReadAt)
	}
}

func TestProjectTaskUpdatedNotifiesOnlyNewPeople(t *testing.T) {
	tk := task.Task{ID: "t_1", Title: "Sign", Visibility: dealroom.Shared,
		Assignees: []string{"carol", "bob"}, Mentions: []string{"dave", "erin"}}

	// Assignees changed (carol stays, bob is new); mentions changed (dave
	// stays, erin is new).
	ev := mkEvent(t, room.TaskUpdated, dealroom.Shared, "alice", tk)
	ev.Changes = map[string]room.Change{
		"assignees": change(t, []string{"carol"}, tk.Assignees),
		"mentions":  change(t, []string{"dave"}, tk.Mentions),
	}
	fx, err := room.Project(ev)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"bob": room.InboxAssignment, "erin": room.InboxMention}, inboxOf(fx.Inbox))

	// Only the title changed: the people were told before.
	ev = mkEvent(t, room.TaskUpdated, dealroom.Shared, "alice", tk)
	ev.Changes = map[string]room.Change{"title": change(t, "Old", "Sign")}
	fx, err = room.Project(ev)
	require.NoError(t, err)
	assert.Empty(t, fx.Inbox)
	assert.Equal(t, []task.Task{tk}, fx.Tasks)

	// Assignees were null before.
	ev = mkEvent(t, room.TaskUpdated, dealroom.Shared, "alice", tk)
	ev.Changes = map[string]room.Change{"assignees": {From: json.RawMessage("null"), To: json.RawMessage(`["carol","bob"]`)}}
	fx, err = room.Project(ev)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"carol": room.InboxAssignment, "bob": room.InboxAssignment}, inboxOf(fx.Inbox))

	// Taking someone off a task tells nobody anything.
	less := tk
	less.Assignees = []string{"carol"}
	ev = mkEvent(t, room.TaskUpdated, dealroom.Shared, "alice", less)
	ev.Changes = map[string]room.Change{"assignees": change(t, tk.Assignees, less.Assignees)}
	fx, err = room.Project(ev)
	require.NoError(t, err)
	assert.Empty(t, fx.Inbox)
}

func TestProjectTaskDeleted(t *testing.T) {
	ev := mkEvent(t, room.TaskDeleted, dealroom.Shared, "alice", room.TaskDeletedData{ID: "t_1", Title: "Sign"})
	fx, err := room.Project(ev)
	require.NoError(t, err)
	assert.Equal(t, []string{"t_1"}, fx.DeletedTasks)
	assert.Empty(t, fx.Tasks)
	assert.Empty(t, fx.Inbox)
}

func TestProjectMessages(t *testing.T) {
	m := room.Message{ID: "m_1", RoomID: "r_1", Body: "@Bob @Alice", Author: "alice", TaskID: "t_9",
		Visibility: dealroom.Internal, Mentions: []string{"bob", "alice"}, Attachments: []string{}}
	ev := mkEvent(t, room.MessagePosted, dealroom.Internal, "alice", m)
	fx, err := room.Project(ev)
	require.NoError(t, err)
	assert.Equal(t, []room.Message{m}, fx.Messages)
	require.Len(t, fx.Inbox, 1, "the author's self-mention tells nobody")
	it := fx.Inbox[0]
	assert.Equal(t, "bob", it.UserID)
	assert.Equal(t, room.InboxMention, it.Kind)
	assert.Equal(t, "m_1", it.MessageID)
	assert.Equal(t, "t_9", it.TaskID, "the item leads to the task's discussion")
	assert.Equal(t, dealroom.Internal, it.Visibility)

	// An edit tells only the newly mentioned.
	edited := m
	edited.Mentions = []string{"bob", "carol"}
	ev = mkEvent(t, room.MessageEdited, dealroom.Internal, "alice", edited)
	ev.Changes = map[string]room.Change{"body": change(t, "a", "b"), "mentions": change(t, m.Mentions, edited.Mentions)}
	fx, err = room.Project(ev)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"carol": room.InboxMention}, inboxOf(fx.Inbox))

	// A deletion leaves a tombstone and tells nobody.
	tomb := m
	tomb.Body, tomb.Mentions, tomb.Deleted = "", []string{}, true
	ev = mkEvent(t, room.MessageDeleted, dealroom.Internal, "alice", tomb)
	fx, err = room.Project(ev)
	require.NoError(t, err)
	assert.Equal(t, []room.Message{tomb}, fx.Messages)
	assert.Empty(t, fx.Inbox)
}

func TestProjectInvitesAndAttachments(t *testing.T) {
	inv := room.Invite{ID: "i_1", RoomID: "r_1", Email: "erin@customer.example", Access: room.Read, ExpiresAt: evTime}
	for _, typ := range []string{room.InviteCreated, room.InviteRevoked} {
		fx, err := room.Project(mkEvent(t, typ, dealroom.Internal, "alice", inv))
		require.NoError(t, err)
		assert.Equal(t, []room.Invite{inv}, fx.Invites)
		assert.Empty(t, fx.Inbox)
	}
	m := room.Member{UserID: "c_erin", Name: "Erin", Kind: dealroom.Customer, Access: room.Read, RoleInRoom: room.PlainMember}
	fx, err := room.Project(mkEvent(t, room.InviteAccepted, dealroom.Shared, "c_erin", room.InviteAcceptedData{Invite: inv, Member: m}))
	require.NoError(t, err)
	assert.Equal(t, []room.Invite{inv}, fx.Invites)
	assert.Equal(t, []room.Member{m}, fx.Members)
	assert.Empty(t, fx.Inbox, "accepting an invite is one's own doing")

	at := room.Attachment{ID: "a_1", RoomID: "r_1", Name: "q.pdf", Size: 3, SHA256: "ab", Visibility: dealroom.Shared}
	fx, err = room.Project(mkEvent(t, room.AttachmentAdded, dealroom.Shared, "alice", at))
	require.NoError(t, err)
	assert.Equal(t, []room.Attachment{at}, fx.Attachments)
	assert.Empty(t, fx.Inbox)
}

func TestProjectRefusesWhatItCannotRead(t *testing.T) {
	_, err := room.Project(room.Event{ID: "e_1", Type: "task.exploded", Data: json.RawMessage(`{}`)})
	assert.ErrorContains(t, err, "task.exploded", "an unknown type is an error, not silently skipped")

	for _, typ := range []string{room.RoomCreated, room.MemberAdded, room.TaskCreated, room.TaskUpdated,
		room.MessagePosted, room.InviteAccepted, room.AttachmentAdded} {
		fx, err := room.Project(room.Event{ID: "e_1", Type: typ, Data: json.RawMessage(`"not an object"`)})
		assert.Error(t, err, typ)
		assert.Equal(t, room.Effects{}, fx, "%s: bad data has no effects", typ)
	}
	ev := mkEvent(t, room.TaskUpdated, dealroom.Shared, "alice", task.Task{ID: "t_1", Title: "x"})
	ev.Changes = map[string]room.Change{"assignees": {From: json.RawMessage(`"bob"`), To: json.RawMessage(`["bob"]`)}}
	_, err = room.Project(ev)
	assert.Error(t, err, "a change that cannot be read is an error")
}
