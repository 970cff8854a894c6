package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
)

var cacheOwner = dealroom.Actor{ID: "olivia", Name: "Olivia", Kind: dealroom.Staff, Role: dealroom.Rep}

// cacheFixture opens a store, closed when the test ends, with a room.
func cacheFixture(t *testing.T) (*Store, *room.Service, *room.Room) {
	t.Helper()
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	svc := &room.Service{Store: s}
	r, err := svc.CreateRoom(context.Background(), cacheOwner, room.Draft{Name: "Cache", Company: "Acme"}, "")
	require.NoError(t, err)
	return s, svc, r
}

// TestWriterCacheAfterFailedCommit: a commit whose transaction fails rolls
// back what its commands wrote, and the writer's cache of rooms must
// forget it too: the next write gets the seq after the last committed
// event, not after the rolled-back one.
func TestWriterCacheAfterFailedCommit(t *testing.T) {
	s, svc, r := cacheFixture(t)
	ctx, owner := context.Background(), cacheOwner
	head := r.Head
	if head == 0 {
		got, err := s.Room(ctx, r.ID)
		require.NoError(t, err)
		head = got.Head
	}
	require.Positive(t, head)

	// Two commands in one transaction: the first is a good message, the
	// second an event the store cannot project, so the whole commit fails.
	good := room.Command{Room: r.ID, Actor: owner.ID, Decide: func(v room.View) (room.Decision, error) {
		data, _ := json.Marshal(room.Message{ID: "m_good", Body: "hello", Visibility: dealroom.Shared})
		return room.Decision{Event: room.Event{ID: "ev_good", Type: room.MessagePosted, Visibility: dealroom.Shared, Data: data}}, nil
	}}
	bad := room.Command{Room: r.ID, Actor: owner.ID, Decide: func(v room.View) (room.Decision, error) {
		return room.Decision{Event: room.Event{ID: "ev_bad", Type: room.MessagePosted, Visibility: dealroom.Shared, Data: json.RawMessage(`"not a message"`)}}, nil
	}}
	reqs := []*request{
		{ctx: ctx, cmd: good, result: make(chan result, 1)},
		{ctx: ctx, cmd: bad, result: make(chan result, 1)},
	}
	// Commit runs on the writer goroutine; stop it from taking requests
	// meanwhile by running this batch the way it would.
	s.commit(reqs)
	for _, rq := range reqs {
		res := <-rq.result
		require.Error(t, res.err, "a failed commit fails every command in it")
	}
	evs, err := s.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	require.Len(t, evs, int(head), "nothing of the failed commit is stored")

	_, err = svc.PostMessage(ctx, owner, r.ID, room.MessageDraft{Body: "after"}, "")
	require.NoError(t, err)
	evs, err = s.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	require.Len(t, evs, int(head)+1)
	assert.Equal(t, head+1, evs[len(evs)-1].Seq, "the next event follows the last committed one")
	assert.Equal(t, "message.posted", evs[len(evs)-1].Type)
	got, err := s.Room(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, head+1, got.Head)
}

// TestWriterCacheSeesNewMembers: a member added by one write is seen by
// the next write's decision (a mention of them resolves).
func TestWriterCacheSeesNewMembers(t *testing.T) {
	_, svc, r := cacheFixture(t)
	ctx, owner := context.Background(), cacheOwner
	_, err := svc.PostMessage(ctx, owner, r.ID, room.MessageDraft{Body: "warm the cache"}, "")
	require.NoError(t, err)
	_, err = svc.AddMember(ctx, owner, r.ID, room.MemberDraft{UserID: "sam", Name: "Sam", Kind: dealroom.Staff, Access: room.Write}, "")
	require.NoError(t, err)
	m, err := svc.PostMessage(ctx, owner, r.ID, room.MessageDraft{Body: "hello @sam"}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"sam"}, m.Message.Mentions)
	_, err = svc.RemoveMember(ctx, owner, r.ID, "sam", "")
	require.NoError(t, err)
	m, err = svc.PostMessage(ctx, owner, r.ID, room.MessageDraft{Body: "bye @sam"}, "")
	require.NoError(t, err)
	assert.Empty(t, m.Message.Mentions, "a removed member is no longer mentioned")
}

// TestAppendBucketsArePacked: events and messages of many rooms written
// in turn (each room's keys grow, but the rooms interleave) fill their
// pages, instead of leaving every split page half empty: the file is
// smaller and each commit rewrites fewer levels of the tree.
func TestAppendBucketsArePacked(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	svc := &room.Service{Store: s}
	ctx := context.Background()
	var ids []string
	for i := range 30 {
		r, err := svc.CreateRoom(ctx, cacheOwner, room.Draft{Name: fmt.Sprint("Room ", i), Company: "Acme"}, "")
		require.NoError(t, err)
		ids = append(ids, r.ID)
	}
	for k := range 3000 {
		_, err := svc.PostMessage(ctx, cacheOwner, ids[k%len(ids)], room.MessageDraft{Body: fmt.Sprint("an ordinary message, number ", k)}, "")
		require.NoError(t, err)
	}
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bEvents, bMessages} {
			st := tx.Bucket(name).Stats()
			fill := float64(st.LeafInuse) / float64(st.LeafAlloc)
			t.Logf("%s: %d keys in %d leaf pages, %.0f%% used", name, st.KeyN, st.LeafPageN, 100*fill)
			assert.Greater(t, fill, 0.6, "%s pages are packed (bbolt's default leaves them 42%% used here)", name)
		}
		return nil
	}))
}
