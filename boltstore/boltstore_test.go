package boltstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/boltstore"
	"dealroom/hub"
	"dealroom/room"
	"dealroom/room/roomtest"
	"dealroom/session"
	"dealroom/session/sessiontest"
	"dealroom/task"
)

// MustOpen opens a store in a fresh directory, closed when the test ends.
func MustOpen(tb testing.TB, dir string) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.Open(dir)
	require.NoError(tb, err)
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	roomtest.TestStore(t, func(tb testing.TB) room.Store { return MustOpen(tb, tb.TempDir()) })
}

// The store checks many rooms' heads in one read for the hub. Checked
// here, not beside Ahead: the hub's own tests use the store.
var _ hub.HeadsStore = (*boltstore.Store)(nil)

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := MustOpen(t, dir)
	svc := &room.Service{Store: s}
	r, err := svc.CreateRoom(ctx, roomtest.Alice, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	tk, err := svc.CreateTask(ctx, roomtest.Alice, r.ID, task.Draft{Title: "Kick-off"}, "k")
	require.NoError(t, err)
	want, err := s.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "closing twice is safe")

	_, err = s.Events(ctx, r.ID, 0, 100, false)
	assert.Error(t, err, "a closed store refuses reads")
	_, err = s.Execute(ctx, room.Command{Room: r.ID})
	assert.Error(t, err, "a closed store refuses writes")

	s2 := MustOpen(t, dir)
	got, err := s2.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	svc2 := &room.Service{Store: s2}
	again, err := svc2.CreateTask(ctx, roomtest.Alice, r.ID, task.Draft{Title: "Kick-off"}, "k")
	require.NoError(t, err)
	assert.Equal(t, tk.ID, again.ID, "idempotency keys survive a restart")
}

func TestSecondOpenOfOneDirectoryFails(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the file lock timeout")
	}
	dir := t.TempDir()
	MustOpen(t, dir)
	_, err := boltstore.Open(dir)
	assert.ErrorContains(t, err, "another dealroom")
}

func TestSessionStore(t *testing.T) {
	sessiontest.TestStore(t, func(tb testing.TB) session.Store { return MustOpen(tb, tb.TempDir()) })
}
