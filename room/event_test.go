package room_test

import (
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

var evTime = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// mkEvent builds an event as the service would record it.
func mkEvent(tb testing.TB, typ string, vis dealroom.Visibility, actor string, data any) room.Event {
	tb.Helper()
	raw, err := json.Marshal(data)
	require.NoError(tb, err)
	return room.Event{Seq: 7, ID: "e_" + typ, RoomID: "r_1", Type: typ,
		Actor: room.EventActor{ID: actor, Kind: dealroom.Staff, Name: actor}, At: evTime, Visibility: vis, Data: raw}
}

func change(tb testing.TB, from, to any) room.Change {
	tb.Helper()
	f, err := json.Marshal(from)
	require.NoError(tb, err)
	tt, err := json.Marshal(to)
	require.NoError(tb, err)
	return room.Change{From: f, To: tt}
}

// keysOf returns the top-level JSON keys of raw, sorted.
func keysOf(tb testing.TB, raw json.RawMessage) []string {
	tb.Helper()
	var m map[string]json.RawMessage
	require.NoError(tb, json.Unmarshal(raw, &m))
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sampleRoom() room.Room {
	v := 250000.0
	return room.Room{ID: "r_1", Name: "Acme", Company: "Acme Inc", Stage: room.Trust, Pipeline: room.DefaultPipeline,
		Value: &v, Currency: "EUR", CloseWindow: room.ThisMonth, Tags: []string{"strategic-discount"},
		OwnerID: "alice", CreatedBy: "alice", CreatedAt: evTime, UpdatedAt: evTime}
}

func TestForCustomerHidesInternalEvents(t *testing.T) {
	for _, typ := range []string{room.TaskCreated, room.TaskUpdated, room.TaskDeleted, room.MessagePosted,
		room.MessageEdited, room.MessageDeleted, room.AttachmentAdded, room.InviteCreated, room.InviteRevoked, room.RoomUpdated} {
		ev := mkEvent(t, typ, dealroom.Internal, "alice", map[string]string{"id": "x", "title": "Pricing floor"})
		got, ok := ev.ForCustomer()
		assert.False(t, ok, typ)
		assert.Equal(t, room.Event{}, got, "%s: nothing of an internal event is handed out", typ)
	}
	ev := mkEvent(t, room.TaskCreated, "", "alice", map[string]string{"id": "x"})
	_, ok := ev.ForCustomer()
	assert.False(t, ok, "an event without visibility is not shared")
}

func TestForCustomerRoomCreated(t *testing.T) {
	shared := task.Task{ID: "t_1", Title: "Kick-off", Visibility: dealroom.Shared, Assignees: []string{}}
	internal := task.Task{ID: "t_2", Title: "First-meeting questions", Visibility: dealroom.Internal, Assignees: []string{}}
	owner := room.Member{UserID: "alice", Name: "Alice", Kind: dealroom.Staff, Access: room.Write, RoleInRoom: room.Owner}
	ev := mkEvent(t, room.RoomCreated, dealroom.Shared, "alice",
		room.RoomCreatedData{Room: sampleRoom(), Members: []room.Member{owner}, Tasks: []task.Task{shared, internal}})
	before := ev

	got, ok := ev.ForCustomer()
	require.True(t, ok)
	assert.Equal(t, []string{"company", "created_at", "id", "members", "name", "pipeline", "stage", "tasks"}, keysOf(t, got.Data),
		"no value, currency, forecast, tags or owner")
	assert.NotContains(t, string(got.Data), "250000")
	assert.NotContains(t, string(got.Data), "strategic-discount")
	assert.NotContains(t, string(got.Data), "First-meeting questions", "internal template tasks stay with staff")
	var d struct {
		Members []room.Member `json:"members"`
		Tasks   []task.Task   `json:"tasks"`
		Stage   room.Stage    `json:"stage"`
	}
	require.NoError(t, json.Unmarshal(got.Data, &d))
	assert.Equal(t, []room.Member{owner}, d.Members)
	require.Len(t, d.Tasks, 1)
	assert.Equal(t, "t_1", d.Tasks[0].ID)
	assert.Equal(t, room.Trust, d.Stage)
	// The envelope is the same event.
	assert.Equal(t, ev.Seq, got.Seq)
	assert.Equal(t, ev.ID, got.ID)
	assert.Equal(t, ev.Type, got.Type)
	assert.Equal(t, ev.Actor, got.Actor)
	assert.Equal(t, ev.At, got.At)
	assert.Equal(t, before, ev, "the staff copy is untouched")
}

func TestForCustomerRoomUpdated(t *testing.T) {
	r := sampleRoom()
	r.Stage = room.Signing
	ev := mkEvent(t, room.RoomUpdated, dealroom.Shared, "alice", r)
	ev.Changes = map[string]room.Change{
		"stage":        change(t, room.Trust, room.Signing),
		"value":        change(t, 100000, 250000),
		"close_window": change(t, room.Quarter, room.ThisMonth),
		"tags":         change(t, []string{}, []string{"strategic-discount"}),
		"name":         change(t, "Acme old", "Acme"),
	}
	got, ok := ev.ForCustomer()
	require.True(t, ok)
	assert.Equal(t, []string{"company", "created_at", "id", "name", "pipeline", "stage"}, keysOf(t, got.Data))
	changed := make([]string, 0, len(got.Changes))
	for f := range got.Changes {
		changed = append(changed, f)
	}
	assert.ElementsMatch(t, []string{"stage", "name"}, changed, "only what the customer may see changed")
	assert.Equal(t, ev.Changes["stage"], got.Changes["stage"])
	raw, err := json.Marshal(got)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "250000")
	assert.NotContains(t, string(raw), "100000")
	assert.NotContains(t, string(raw), "this_month")
	assert.NotContains(t, string(raw), "strategic-discount")
	assert.Len(t, ev.Changes, 5, "the staff copy keeps every change")
}

func TestForCustomerInviteAccepted(t *testing.T) {
	exp := evTime.Add(14 * 24 * time.Hour)
	inv := room.Invite{ID: "i_1", RoomID: "r_1", Email: "erin@customer.example", Access: room.Write,
		CreatedBy: "alice", CreatedAt: evTime, ExpiresAt: exp, AcceptedAt: &evTime, AcceptedBy: "c_erin"}
	m := room.Member{UserID: "c_erin", Name: "Erin", Kind: dealroom.Customer, Access: room.Write, RoleInRoom: room.PlainMember}
	ev := mkEvent(t, room.InviteAccepted, dealroom.Shared, "c_erin", room.InviteAcceptedData{Invite: inv, Member: m})
	got, ok := ev.ForCustomer()
	require.True(t, ok)
	assert.Equal(t, []string{"member"}, keysOf(t, got.Data), "the invite itself stays with staff")
	assert.NotContains(t, string(got.Data), "erin@customer.example")
	assert.NotContains(t, string(got.Data), "i_1")
	var d struct {
		Member room.Member `json:"member"`
	}
	require.NoError(t, json.Unmarshal(got.Data, &d))
	assert.Equal(t, m, d.Member)
}

func TestForCustomerPassesSharedEventsThrough(t *testing.T) {
	tk := task.Task{ID: "t_1", Title: "Kick-off", Visibility: dealroom.Shared, Assignees: []string{"carol"}}
	msg := room.Message{ID: "m_1", Body: "Hello @Carol", Visibility: dealroom.Shared, Mentions: []string{"carol"}}
	for _, ev := range []room.Event{
		mkEvent(t, room.TaskCreated, dealroom.Shared, "alice", tk),
		mkEvent(t, room.MessagePosted, dealroom.Shared, "alice", msg),
		mkEvent(t, room.MemberAdded, dealroom.Shared, "alice", room.Member{UserID: "carol", Name: "Carol"}),
		mkEvent(t, room.TaskDeleted, dealroom.Shared, "alice", room.TaskDeletedData{ID: "t_1", Title: "Kick-off"}),
	} {
		got, ok := ev.ForCustomer()
		require.True(t, ok, ev.Type)
		assert.Equal(t, ev, got, "%s reaches the customer as it is", ev.Type)
	}
}

func TestForCustomerRefusesUnreadableRoomData(t *testing.T) {
	// A room event that cannot be reshaped is held back rather than sent
	// with the deal's value in it.
	for _, typ := range []string{room.RoomCreated, room.RoomUpdated, room.InviteAccepted} {
		ev := room.Event{Seq: 1, ID: "e", RoomID: "r_1", Type: typ, Visibility: dealroom.Shared, Data: json.RawMessage(`[1,2]`)}
		_, ok := ev.ForCustomer()
		assert.False(t, ok, typ)
	}
}
