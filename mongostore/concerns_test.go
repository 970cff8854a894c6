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
