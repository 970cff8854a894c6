package mongostore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/mongostore"

	"dealroom/room"
	"dealroom/room/roomtest"
)

func TestExternal(t *testing.T) {
	roomtest.TestExternal(t, func(tb testing.TB) room.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}

// Two instances on one database, each with its own locks and memory of
// rooms, upsert the same opportunity at once: the unique seq of the
// room's first event lets one create it.
func TestExternalAcrossInstances(t *testing.T) {
	uri, db := database(t)
	stores := []*mongostore.Store{open(t, uri, db), open(t, uri, db)}
	ctx := context.Background()
	const n = 20
	created := make([]bool, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := &room.Service{Store: stores[i%2]}
			u := room.Upsert{Name: "Acme", Company: "Acme", OwnerEmail: "alice@seller.example"}
			res, err := svc.UpsertRoom(ctx, roomtest.Mike, "0061", u, roomtest.Alice, "")
			if assert.NoError(t, err) {
				created[i], ids[i] = res.Created, res.Room.ID
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, countTrue(created), "one instance created the room")
	rs, err := stores[0].Rooms(ctx, room.RoomFilter{Limit: 100})
	require.NoError(t, err)
	require.Len(t, rs, 1)
	for _, id := range ids {
		assert.Equal(t, rs[0].ID, id)
	}
	evs, err := stores[1].Events(ctx, rs[0].ID, 0, 100, false)
	require.NoError(t, err)
	assert.Len(t, evs, 1, "the others changed nothing")
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
