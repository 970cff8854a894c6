package mongostore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"

	"dealroom/mongostore"
	"dealroom/room"
)

// TestConcernsOnTheWire: what the store sends: w:"majority" on its
// writes unless the URI says otherwise, read concern "majority" on the
// reads of events served to devices.
func TestConcernsOnTheWire(t *testing.T) {
	uri, db := database(t)
	var mu sync.Mutex
	sent := map[string][]bson.Raw{}
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		defer mu.Unlock()
		sent[e.CommandName] = append(sent[e.CommandName], append(bson.Raw(nil), e.Command...))
	}}
	s := open(t, uri, db, mongostore.WithCommandMonitor(mon))
	ctx := ctxT(t)
	svc := &room.Service{Store: s}
	r := seedRoom(t, ctx, svc)
	mu.Lock()
	inserts := sent["insert"]
	sent = map[string][]bson.Raw{}
	mu.Unlock()
	_, err := s.Events(ctx, r, 0, 10, false)
	require.NoError(t, err)

	require.NotEmpty(t, inserts)
	for _, cmd := range inserts {
		w, err := cmd.LookupErr("writeConcern", "w")
		require.NoError(t, err, "%s", cmd)
		assert.Equal(t, "majority", w.StringValue(), "%s", cmd)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, sent["find"], 1)
	level, err := sent["find"][0].LookupErr("readConcern", "level")
	require.NoError(t, err, "%s", sent["find"][0])
	assert.Equal(t, "majority", level.StringValue())
}
