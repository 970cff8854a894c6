package boltstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
)

var testAlice = dealroom.Actor{ID: "alice", Name: "Alice Rep", Kind: dealroom.Staff, Role: dealroom.Rep}

// openWithRoom opens the store in dir (the test closes it) with a service
// on it and Alice's room. Tests that reopen dir close it themselves.
func openWithRoom(t *testing.T, dir string) (*Store, *room.Service, *room.Room) {
	t.Helper()
	s, err := Open(dir)
	require.NoError(t, err)
	svc := &room.Service{Store: s}
	r, err := svc.CreateRoom(context.Background(), testAlice, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	return s, svc, r
}

// TestInvitesIndexedOnOpen: a file from before the invites were indexed
// by time gets the index when it is opened, and lists them all.
func TestInvitesIndexedOnOpen(t *testing.T) {
	dir := t.TempDir()
	s, svc, r := openWithRoom(t, dir)
	ctx := context.Background()
	for i := range 5 {
		_, err := svc.CreateInvite(ctx, testAlice, r.ID, room.InviteDraft{Email: fmt.Sprintf("p%d@customer.example", i)}, "")
		require.NoError(t, err)
	}
	before, err := s.Invites(ctx, r.ID, nil, 100)
	require.NoError(t, err)
	require.Len(t, before, 5)
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bRoomInvitesAt) }))
	require.NoError(t, s.Close())

	s, err = Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	after, err := s.Invites(ctx, r.ID, nil, 100)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}
