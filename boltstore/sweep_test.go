package boltstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
)

// TestExpiredKeysAreSwept: idempotency records do not pile up: those past
// room.KeyRetention are removed by later commits, a few per commit, with
// the clock of the commands (no waiting).
func TestExpiredKeysAreSwept(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	svc := &room.Service{Store: s, Now: clock}
	ctx := context.Background()
	alice := dealroom.Actor{ID: "alice", Name: "Alice Rep", Kind: dealroom.Staff, Role: dealroom.Rep}
	r, err := svc.CreateRoom(ctx, alice, room.Draft{Name: "Acme", Company: "Acme"}, "room-key")
	require.NoError(t, err)
	keys := sweepBatch + 10
	for i := range keys {
		_, err := svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: fmt.Sprint("m", i)}, fmt.Sprint("k", i))
		require.NoError(t, err)
	}
	count := func() (records, byAge int) {
		require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
			records, byAge = tx.Bucket(bIdem).Stats().KeyN, tx.Bucket(bIdemAt).Stats().KeyN
			return nil
		}))
		return records, byAge
	}
	records, byAge := count()
	assert.Equal(t, keys+1, records)
	assert.Equal(t, keys+1, byAge)

	// Just before the retention ends nothing goes; after it, each commit
	// takes up to sweepBatch away, and a key used anew stays.
	advance(room.KeyRetention - time.Second)
	_, err = svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "x"}, "")
	require.NoError(t, err)
	records, _ = count()
	assert.Equal(t, keys+1, records)
	advance(time.Second)
	_, err = svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "m3"}, "k3") // k3 expired: anew
	require.NoError(t, err)
	records, byAge = count()
	assert.Equal(t, keys+1-sweepBatch+1, records, "a commit sweeps sweepBatch of them")
	assert.Equal(t, keys+1-sweepBatch+1, byAge)
	_, err = svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "y"}, "")
	require.NoError(t, err)
	records, byAge = count()
	assert.Equal(t, 1, records, "only the key used anew is left")
	assert.Equal(t, 1, byAge)
	res, err := svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "m3"}, "k3")
	require.NoError(t, err)
	assert.Equal(t, "m3", res.Body)
}
