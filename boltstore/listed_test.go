package boltstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// TestListingsReadTheirIndex: a customer's page of messages or files, and
// a task's discussion, are read from the index of that listing, not by
// scanning the room: with hundreds of internal messages and replies, the
// listing reads only the entries of its own scope (an entry taken out of
// the index is not listed, which shows that nothing else is read). A file
// from before the index gets it when it is opened.
func TestListingsReadTheirIndex(t *testing.T) {
	dir := t.TempDir()
	s, svc, r := openWithRoom(t, dir)
	ctx := context.Background()
	alice := testAlice
	tk, err := svc.CreateTask(ctx, alice, r.ID, task.Draft{Title: "Security review"}, "")
	require.NoError(t, err)
	post := func(d room.MessageDraft) string {
		t.Helper()
		m, err := svc.PostMessage(ctx, alice, r.ID, d, "")
		require.NoError(t, err)
		return m.ID
	}
	shared := post(room.MessageDraft{Body: "hello"})
	for i := range 300 {
		post(room.MessageDraft{Body: fmt.Sprintf("internal %d", i), Visibility: dealroom.Internal})
	}
	for i := range 100 {
		post(room.MessageDraft{Body: fmt.Sprintf("reply %d", i), ParentID: shared})
	}
	onTask := post(room.MessageDraft{Body: "about the review", TaskID: tk.ID})
	list := func(f room.MessageFilter) []string {
		t.Helper()
		f.Room, f.Limit = r.ID, 50
		ms, err := s.Messages(ctx, f)
		require.NoError(t, err)
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		return ids
	}
	customerPage := list(room.MessageFilter{SharedOnly: true})
	assert.Equal(t, []string{shared, onTask}, customerPage)
	assert.Equal(t, []string{onTask}, list(room.MessageFilter{TaskID: tk.ID}))
	assert.Equal(t, []string{onTask}, list(room.MessageFilter{TaskID: tk.ID, SharedOnly: true}))
	assert.Len(t, list(room.MessageFilter{}), 50, "staff's roots: a page")
	ms, err := s.Messages(ctx, room.MessageFilter{Room: r.ID, SharedOnly: true, Limit: 1})
	require.NoError(t, err)
	require.Len(t, ms, 1)
	assert.Equal(t, 100, ms[0].ReplyCount)

	// The customer's listing reads its index alone.
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bListed).Delete(key(r.ID, scopeSharedRoots, shared))
	}))
	assert.Equal(t, []string{onTask}, list(room.MessageFilter{SharedOnly: true}))

	// Files likewise.
	for _, vis := range []dealroom.Visibility{dealroom.Internal, dealroom.Shared} {
		_, err := svc.AddAttachment(ctx, alice, r.ID, room.Upload{Name: string(vis) + ".txt", ContentType: "text/plain",
			Visibility: vis, Blob: room.Blob{SHA256: strings.Repeat("a", 64), Size: 1}}, "")
		require.NoError(t, err)
	}
	atts, err := s.Attachments(ctx, r.ID, "", 10, true)
	require.NoError(t, err)
	require.Len(t, atts, 1)
	assert.Equal(t, "shared.txt", atts[0].Name)

	// A file from before the index: opened, it is indexed again.
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bListed) }))
	require.NoError(t, s.Close())
	s, err = Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	assert.Equal(t, customerPage, list(room.MessageFilter{SharedOnly: true}))
	assert.Equal(t, []string{onTask}, list(room.MessageFilter{TaskID: tk.ID}))
	atts, err = s.Attachments(ctx, r.ID, "", 10, true)
	require.NoError(t, err)
	assert.Len(t, atts, 1)
}
