package roomtest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
)

// TestReads runs the conformance suite of room.ReadStore against the
// stores open makes (each must implement it).
func TestReads(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"MarkersOnlyMoveForward", testMarkersForward},
		{"MarkersPerRoomAndUser", testMarkersPerRoomAndUser},
		{"ServiceClampsAndChecksAccess", testReadAccess},
		{"RemovedMembersLeaveSeenBy", testReadRemovedMember},
		{"UnreadCounts", testUnread},
		{"ReadAll", testReadAll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

func readStore(t *testing.T, f *fixture) room.ReadStore {
	t.Helper()
	rs, ok := f.store.(room.ReadStore)
	require.True(t, ok, "the store keeps no read markers (room.ReadStore)")
	return rs
}

func testMarkersForward(t *testing.T, open Opener) {
	f := newFixture(t, open)
	rs := readStore(t, f)
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

	m, moved, err := rs.SetRead(f.ctx, "r1", "alice", 5, at)
	require.NoError(t, err)
	assert.True(t, moved)
	assert.Equal(t, room.ReadMarker{UserID: "alice", Seq: 5, At: at}, m)

	for _, seq := range []int64{5, 3, 0} {
		m, moved, err = rs.SetRead(f.ctx, "r1", "alice", seq, at.Add(time.Hour))
		require.NoError(t, err)
		assert.False(t, moved, "seq %d", seq)
		assert.Equal(t, room.ReadMarker{UserID: "alice", Seq: 5, At: at}, m, "a marker never moves back (seq %d)", seq)
	}

	m, moved, err = rs.SetRead(f.ctx, "r1", "alice", 9, at.Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, moved)
	assert.Equal(t, room.ReadMarker{UserID: "alice", Seq: 9, At: at.Add(time.Minute)}, m)

	all, err := rs.ReadMarkers(f.ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, []room.ReadMarker{{UserID: "alice", Seq: 9, At: at.Add(time.Minute)}}, all)
}

func testMarkersPerRoomAndUser(t *testing.T, open Opener) {
	f := newFixture(t, open)
	rs := readStore(t, f)
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	set := func(r, u string, seq int64) {
		t.Helper()
		_, _, err := rs.SetRead(f.ctx, r, u, seq, at)
		require.NoError(t, err)
	}
	set("r1", "bob", 2)
	set("r1", "alice", 4)
	set("r2", "alice", 7)
	set("r10", "alice", 1)
	set("r1x", "bob", 3)

	all, err := rs.ReadMarkers(f.ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, []room.ReadMarker{{UserID: "alice", Seq: 4, At: at}, {UserID: "bob", Seq: 2, At: at}}, all)

	none, err := rs.ReadMarkers(f.ctx, "r3")
	require.NoError(t, err)
	assert.Empty(t, none)

	mine, err := rs.UserReadMarkers(f.ctx, "alice", []string{"r1", "r2", "r3"})
	require.NoError(t, err)
	assert.Equal(t, map[string]room.ReadMarker{
		"r1": {UserID: "alice", Seq: 4, At: at},
		"r2": {UserID: "alice", Seq: 7, At: at},
	}, mine)

	empty, err := rs.UserReadMarkers(f.ctx, "alice", nil)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func testReadAccess(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	var moves []room.RoomRead
	f.svc.ReadMoved = func(m room.RoomRead) { moves = append(moves, m) }
	head := f.head(t, r)

	m, err := f.svc.SetRead(f.ctx, Carol, r, head+100)
	require.NoError(t, err)
	assert.Equal(t, head, m.Seq, "clamped to the room's head")
	require.Len(t, moves, 1)
	assert.Equal(t, room.RoomRead{Room: r, ReadMarker: m}, moves[0])

	_, err = f.svc.SetRead(f.ctx, Carol, r, 1)
	require.NoError(t, err)
	assert.Len(t, moves, 1, "a marker that did not move is not announced")

	outsider := dealroom.Actor{ID: "zed", Name: "Zed", Kind: dealroom.Customer}
	_, err = f.svc.SetRead(f.ctx, outsider, r, 1)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	_, err = f.svc.Reads(f.ctx, outsider, r)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	_, err = f.svc.SetRead(f.ctx, Carol, r, -1)
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))

	seq, err := f.svc.SeenSeq(f.ctx, r, Carol.ID)
	require.NoError(t, err)
	assert.Equal(t, head, seq)
	seq, err = f.svc.SeenSeq(f.ctx, r, Bob.ID)
	require.NoError(t, err)
	assert.Zero(t, seq)

	for _, a := range []dealroom.Actor{Alice, Carol} {
		reads, err := f.svc.Reads(f.ctx, a, r)
		require.NoError(t, err)
		require.Len(t, reads, 1, a.ID)
		assert.Equal(t, Carol.ID, reads[0].UserID)
	}
}

func testReadRemovedMember(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	_, err := f.svc.SetRead(f.ctx, Bob, r, 1)
	require.NoError(t, err)
	_, err = f.svc.RemoveMember(f.ctx, Alice, r, Bob.ID, "")
	require.NoError(t, err)
	reads, err := f.svc.Reads(f.ctx, Alice, r)
	require.NoError(t, err)
	assert.Empty(t, reads, "a removed member is not among those who saw")
}

func testUnread(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	_, err := f.svc.SetRead(f.ctx, Carol, r, f.head(t, r))
	require.NoError(t, err)
	_, err = f.svc.SetRead(f.ctx, Alice, r, f.head(t, r))
	require.NoError(t, err)

	post := func(a dealroom.Actor, v dealroom.Visibility) {
		t.Helper()
		_, err := f.svc.PostMessage(f.ctx, a, r, room.MessageDraft{Body: "hello", Visibility: v}, "")
		require.NoError(t, err)
	}
	post(Bob, dealroom.Shared)
	post(Bob, dealroom.Internal)
	post(Bob, dealroom.Internal)
	post(Carol, dealroom.Shared)
	post(Alice, dealroom.Shared)

	count := func(a dealroom.Actor) room.Unread {
		t.Helper()
		listed, err := f.svc.Rooms(f.ctx, a, room.RoomFilter{})
		require.NoError(t, err)
		require.Len(t, listed, 1)
		u, err := f.svc.Unread(f.ctx, a, listed)
		require.NoError(t, err)
		return u[r]
	}
	assert.Equal(t, 2, count(Carol).Count, "Bob's shared message and Alice's; not the internal ones, not her own")
	assert.Equal(t, 4, count(Alice).Count, "every message but her own")
	assert.Equal(t, room.Unread{}, count(Mike), "a manager who is not a member: nothing counted")
	bob := count(Bob)
	assert.Equal(t, int64(0), bob.Seq)
	assert.Greater(t, bob.Count, 0, "Bob never read the room")

	_, err = f.svc.SetRead(f.ctx, Carol, r, f.head(t, r))
	require.NoError(t, err)
	assert.Equal(t, room.Unread{Seq: f.head(t, r)}, count(Carol))

	for range room.UnreadScan + 5 {
		post(Bob, dealroom.Shared)
	}
	u := count(Carol)
	assert.Equal(t, room.UnreadScan, u.Count)
	assert.True(t, u.More)
}

func testReadAll(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r1, r2 := f.room(t), f.room(t)
	for _, r := range []string{r1, r2} {
		_, err := f.svc.PostMessage(f.ctx, Alice, r, room.MessageDraft{Body: "hi @carol", Visibility: dealroom.Shared}, "")
		require.NoError(t, err)
	}
	n, err := f.svc.ReadAll(f.ctx, Carol)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, r := range []string{r1, r2} {
		seq, err := f.svc.SeenSeq(f.ctx, r, Carol.ID)
		require.NoError(t, err)
		assert.Equal(t, f.head(t, r), seq)
	}
	items, _, err := f.svc.Inbox(f.ctx, Carol, "", 50)
	require.NoError(t, err)
	for _, it := range items {
		assert.NotNil(t, it.ReadAt, "inbox item %s", it.ID)
	}
	n, err = f.svc.ReadAll(f.ctx, Carol)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left to mark")
}

func (f *fixture) head(t *testing.T, roomID string) int64 {
	t.Helper()
	r, err := f.store.Room(f.ctx, roomID)
	require.NoError(t, err)
	return r.Head
}
