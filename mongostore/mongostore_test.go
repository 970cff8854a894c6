package mongostore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"dealroom"
	"dealroom/hub"
	"dealroom/internal/testenv"
	"dealroom/mongostore"
	"dealroom/room"
	"dealroom/room/roomtest"
	"dealroom/session"
	"dealroom/session/sessiontest"
	"dealroom/task"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// database returns the URI of the test server and a database for tb alone.
func database(tb testing.TB) (uri, db string) {
	tb.Helper()
	return testenv.MongoDatabase(tb)
}

// open opens a store on the database, closed when the test ends.
func open(tb testing.TB, uri, db string, opts ...mongostore.Option) *mongostore.Store {
	tb.Helper()
	s, err := mongostore.Open(ctxT(tb), uri, append([]mongostore.Option{mongostore.WithDatabase(db)}, opts...)...)
	require.NoError(tb, err)
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	roomtest.TestStore(t, func(tb testing.TB) room.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}

// The store checks many rooms' heads in one read for the hub. Checked
// here, not beside Ahead: the hub's own tests use the store.
var _ hub.HeadsStore = (*mongostore.Store)(nil)

// --- Open, indexes, URI ---

func TestDatabaseFromURI(t *testing.T) {
	for uri, want := range map[string]string{
		"mongodb://localhost":                                   "dealroom",
		"mongodb://localhost:27017/":                            "dealroom",
		"mongodb://localhost:27017/?replicaSet=rs0":             "dealroom",
		"mongodb://localhost:27017/sales":                       "sales",
		"mongodb://u:p%2Fq@h1:1,h2:2/sales?replicaSet=rs0&w=1":  "sales",
		"mongodb+srv://cluster.example.com/deals?retryWrites=1": "deals",
	} {
		got, err := mongostore.DatabaseFromURI(uri)
		require.NoError(t, err, uri)
		assert.Equal(t, want, got, uri)
	}
	_, err := mongostore.DatabaseFromURI("localhost:27017")
	assert.Error(t, err)
}

// withDatabase puts db into the path of a MongoDB URI.
func withDatabase(uri, db string) string {
	scheme, rest, _ := strings.Cut(uri, "://")
	hosts, query := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hosts = rest[:i]
		if j := strings.IndexByte(rest, '?'); j >= 0 {
			query = rest[j:]
		}
	}
	return scheme + "://" + hosts + "/" + db + query
}

func TestOpenUsesTheURIsDatabase(t *testing.T) {
	uri, db := database(t)
	s, err := mongostore.Open(ctxT(t), withDatabase(uri, db))
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, db, s.Database().Name())
	names, err := s.Database().ListCollectionNames(ctxT(t), bson.D{})
	require.NoError(t, err)
	assert.Contains(t, names, "events", "indexes are made in the URI's database")
}

// indexKeys renders an index's key document as "a:1,b:-1".
func indexKeys(t *testing.T, keys bson.Raw) string {
	elems, err := keys.Elements()
	require.NoError(t, err)
	var parts []string
	for _, e := range elems {
		v := e.Value()
		var n int64
		switch v.Type {
		case bson.TypeInt32:
			n = int64(v.Int32())
		case bson.TypeInt64:
			n = v.Int64()
		case bson.TypeDouble:
			n = int64(v.Double())
		}
		parts = append(parts, fmt.Sprintf("%s:%d", e.Key(), n))
	}
	return strings.Join(parts, ",")
}

func TestIndexesAndOpenTwice(t *testing.T) {
	uri, db := database(t)
	s1 := open(t, uri, db)
	s2 := open(t, uri, db) // a second instance on the same database
	require.NoError(t, s2.Close())
	s3 := open(t, uri, db) // and a restart
	_ = s3
	ctx := ctxT(t)
	want := map[string]map[string]bool{ // collection → keys → unique
		"events":      {"room_id:1,seq:1": true, "room_id:1,idem:1": true},
		"rooms":       {"created_at:-1,_id:-1": false},
		"members":     {"room_id:1,user_id:1": true, "user_id:1,room_id:1": false},
		"tasks":       {"room_id:1,id:1": true, "assignees:1,room_id:1,id:1": false},
		"messages":    {"room_id:1,id:1": true, "room_id:1,parent_id:1,id:1": false, "room_id:1,deleted:1": false},
		"attachments": {"room_id:1,id:1": true},
		"invites":     {"room_id:1,created_at:-1": false},
		"inbox":       {"user_id:1,id:1": true},
	}
	for coll, keys := range want {
		specs, err := s1.Database().Collection(coll).Indexes().ListSpecifications(ctx)
		require.NoError(t, err)
		got := map[string]bool{}
		for _, sp := range specs {
			got[indexKeys(t, sp.KeysDocument)] = sp.Unique != nil && *sp.Unique
		}
		for k, unique := range keys {
			u, ok := got[k]
			if assert.True(t, ok, "%s has an index on %s (has %v)", coll, k, got) {
				assert.Equal(t, unique, u, "%s index %s unique", coll, k)
			}
		}
	}
	// It all works after the second Open.
	svc := &room.Service{Store: s3}
	_, err := svc.CreateRoom(ctx, roomtest.Alice, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	start := time.Now()
	_, err = mongostore.Open(ctxT(t), "mongodb://"+addr+"/?directConnection=true",
		mongostore.WithServerSelectionTimeout(300*time.Millisecond))
	require.Error(t, err)
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err), "%v", err)
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestClosedStore(t *testing.T) {
	uri, db := database(t)
	s := open(t, uri, db)
	ctx := ctxT(t)
	svc := &room.Service{Store: s}
	r, err := svc.CreateRoom(ctx, roomtest.Alice, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "closing twice is safe")
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(s.Ping(ctx)))
	_, err = s.Events(ctx, r.ID, 0, 10, false)
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err))
	_, err = s.Room(ctx, r.ID)
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err))
	_, err = s.Execute(ctx, room.Command{Room: r.ID})
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err))
}

func TestReopenKeepsEverything(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	s := open(t, uri, db)
	svc := &room.Service{Store: s}
	r, err := svc.CreateRoom(ctx, roomtest.Alice, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	tk, err := svc.CreateTask(ctx, roomtest.Alice, r.ID, task.Draft{Title: "Kick-off", Due: &task.Date{Year: 2026, Month: 4, Day: 1}}, "k")
	require.NoError(t, err)
	want, err := s.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	wantRoom, err := s.Room(ctx, r.ID)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s2 := open(t, uri, db)
	got, err := s2.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	gotRoom, err := s2.Room(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, wantRoom, gotRoom)
	stored, err := s2.Task(ctx, r.ID, tk.ID)
	require.NoError(t, err)
	require.NotNil(t, stored)
	assert.Equal(t, tk.Task, *stored, "a task with a due date reads back exactly")
	again, err := (&room.Service{Store: s2}).CreateTask(ctx, roomtest.Alice, r.ID, task.Draft{Title: "Kick-off", Due: &task.Date{Year: 2026, Month: 4, Day: 1}}, "k")
	require.NoError(t, err)
	assert.Equal(t, tk.ID, again.ID, "idempotency keys survive a restart")
}

func TestIdempotencyKeysDoNotCollide(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	s := open(t, uri, db)
	svc := &room.Service{Store: s}
	r, err := svc.CreateRoom(ctx, roomtest.Alice, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	// Actor "a|b" with key "c" and actor "a" with key "b|c" are different
	// requests, whatever the encoding of the key.
	mk := func(actor, key, title string) room.Event {
		x, err := s.Execute(ctx, room.Command{Room: r.ID, Actor: actor, Key: key, Fingerprint: title,
			Decide: func(v room.View) (room.Decision, error) {
				return room.Decision{Event: room.Event{ID: room.NewID("e", time.Now()), Type: room.RoomUpdated, At: time.Now().UTC().Truncate(time.Millisecond),
					Visibility: dealroom.Internal, Actor: room.EventActor{ID: "alice", Kind: dealroom.Staff},
					Data: mustJSON(t, room.Room{ID: r.ID, Name: title, Company: "Acme", Stage: room.Discovery})}}, nil
			}})
		require.NoError(t, err)
		assert.False(t, x.Replayed)
		return x.Event
	}
	e1 := mk("a|b", "c", "one")
	e2 := mk("a", "b|c", "two")
	assert.NotEqual(t, e1.Seq, e2.Seq)
	long := strings.Repeat("k", 300)
	e3 := mk(strings.Repeat("u", 128), long, "three")
	x, err := s.Execute(ctx, room.Command{Room: r.ID, Actor: strings.Repeat("u", 128), Key: long, Fingerprint: "three"})
	require.NoError(t, err)
	assert.True(t, x.Replayed, "long keys are found again")
	assert.Equal(t, e3.Seq, x.Event.Seq)
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return raw
}

func TestSessionStore(t *testing.T) {
	sessiontest.TestStore(t, func(tb testing.TB) session.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
