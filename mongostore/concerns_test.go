package mongostore_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo/readpref"

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

// TestClientOptions: what the driver is given, from the URI or by
// default: w:"majority" (w=0 and w=1 refused), retryable writes, reads
// from the primary.
func TestClientOptions(t *testing.T) {
	for _, c := range []struct {
		uri     string
		w       any    // the write concern's w; nil: refused
		retry   bool   // retryable writes
		warning string // in the log, "" for none
	}{
		{"mongodb://db1/dealroom", "majority", true, ""},
		{"mongodb://a,b,c/dealroom?replicaSet=rs0&w=majority&retryWrites=true", "majority", true, ""},
		{"mongodb://a,b,c/dealroom?replicaSet=rs0&journal=true&wtimeoutMS=5000", "majority", true, ""},
		{"mongodb://a,b,c/dealroom?replicaSet=rs0&w=3", 3, true, ""},
		{"mongodb://a,b,c/dealroom?replicaSet=rs0&w=1", nil, false, ""},
		{"mongodb://db1/dealroom?w=0", nil, false, ""},
		{"mongodb://a,b,c/dealroom?replicaSet=rs0&retryWrites=false", "majority", false, "retryWrites=false"},
		{"mongodb://a,b,c/dealroom?replicaSet=rs0&readPreference=secondaryPreferred", "majority", true, "readPreference"},
	} {
		var logged bytes.Buffer
		copts, err := mongostore.ClientOptions(c.uri, slog.New(slog.NewTextHandler(&logged, nil)))
		if c.w == nil {
			assert.Error(t, err, c.uri)
			continue
		}
		require.NoError(t, err, c.uri)
		require.NotNil(t, copts.WriteConcern, c.uri)
		assert.Equal(t, c.w, copts.WriteConcern.W, c.uri)
		assert.Equal(t, c.retry, copts.RetryWrites == nil || *copts.RetryWrites, c.uri)
		require.NotNil(t, copts.ReadPreference, c.uri)
		assert.Equal(t, readpref.PrimaryMode, copts.ReadPreference.Mode(), c.uri)
		if c.warning == "" {
			assert.Empty(t, logged.String(), c.uri)
		} else {
			assert.Contains(t, logged.String(), c.warning, c.uri)
		}
	}
	_, err := mongostore.Open(ctxT(t), "mongodb://127.0.0.1:1/dealroom?w=1")
	assert.ErrorContains(t, err, "w=1", "Open refuses before it connects")
}

// TestAheadOnTheWire: the hub's check of many rooms' heads is one find on
// the events, an exact (room_id, seq) key per room, read with read concern
// "majority" as the events served to devices are, and answered with the
// rooms' ids alone.
func TestAheadOnTheWire(t *testing.T) {
	uri, db := database(t)
	var mu sync.Mutex
	var sent []bson.Raw
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, append(bson.Raw(nil), e.Command...))
	}}
	s := open(t, uri, db, mongostore.WithCommandMonitor(mon))
	ctx := ctxT(t)
	r := seedRoom(t, ctx, &room.Service{Store: s})
	rm, err := s.Room(ctx, r)
	require.NoError(t, err)
	head := rm.Head
	mu.Lock()
	sent = nil
	mu.Unlock()

	ahead, err := s.Ahead(ctx, map[string]int64{r: head - 1, "r_nothere": 0, "r_nothere2": 7})
	require.NoError(t, err)
	assert.Equal(t, []string{r}, ahead)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, sent, 1, "one command")
	cmd := sent[0]
	assert.Equal(t, "events", cmd.Lookup("find").StringValue(), "%s", cmd)
	level, err := cmd.LookupErr("readConcern", "level")
	require.NoError(t, err, "%s", cmd)
	assert.Equal(t, "majority", level.StringValue())
	var q struct {
		Filter struct {
			Or []struct {
				RoomID string `bson:"room_id"`
				Seq    int64  `bson:"seq"`
			} `bson:"$or"`
		} `bson:"filter"`
		Projection bson.M `bson:"projection"`
	}
	require.NoError(t, bson.Unmarshal(cmd, &q))
	assert.ElementsMatch(t, []struct {
		RoomID string `bson:"room_id"`
		Seq    int64  `bson:"seq"`
	}{{r, head}, {"r_nothere", 1}, {"r_nothere2", 8}}, q.Filter.Or, "the seq after each head")
	assert.Equal(t, bson.M{"room_id": int32(1), "_id": int32(0)}, q.Projection)
}
