package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/boltstore"
	"dealroom/hub"
	"dealroom/room"
)

// TestHubStore: the hub reads events with deleted messages' text removed,
// and checks many rooms' heads in one read of the store.
func TestHubStore(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	svc := &room.Service{Store: st}
	r, err := svc.CreateRoom(ctx, alice, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	m, err := svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "the price is 42"}, "")
	require.NoError(t, err)
	_, err = svc.DeleteMessage(ctx, alice, r.ID, m.ID, "")
	require.NoError(t, err)

	if _, ok := hubStore(st, false).(hub.HeadsStore); ok {
		t.Error("heads batched when not asked to")
	}
	hs := hubStore(st, true)
	evs, err := hs.Events(ctx, r.ID, m.Seq-1, 1, false)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.NotContains(t, string(evs[0].Data), "the price is 42", "a deleted message's text")

	heads, ok := hs.(hub.HeadsStore)
	require.True(t, ok, "the hub checks heads room by room")
	ahead, err := heads.Ahead(ctx, map[string]int64{r.ID: m.Seq})
	require.NoError(t, err)
	assert.Equal(t, []string{r.ID}, ahead)
}
