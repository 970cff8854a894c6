package testenv_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/gridfs"
	"go.mongodb.org/mongo-driver/mongo/options"

	"dealroom/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperProcess()
		return
	}
	testenv.Main(m)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func redisClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// --- Redis ---

func TestRedisShared(t *testing.T) {
	ctx := ctxT(t)
	addr := testenv.Redis(t)
	assert.Equal(t, addr, testenv.Redis(t), "the shared server is started once")
	assert.True(t, strings.HasPrefix(addr, "127.0.0.1:"), addr)

	c := redisClient(t, addr)
	require.NoError(t, c.Ping(ctx).Err())
	key := t.Name() + ":k"
	require.NoError(t, c.Set(ctx, key, "v1", time.Minute).Err())
	got, err := c.Get(ctx, key).Result()
	require.NoError(t, err)
	assert.Equal(t, "v1", got)
	_, err = c.Get(ctx, t.Name()+":missing").Result()
	assert.ErrorIs(t, err, redis.Nil)

	sub := c.Subscribe(ctx, t.Name()+":ch")
	defer sub.Close()
	_, err = sub.Receive(ctx) // the subscription confirmation
	require.NoError(t, err)
	n, err := c.Publish(ctx, t.Name()+":ch", "hello").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "one subscriber")
	msg, err := sub.ReceiveMessage(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello", msg.Payload)
}

func TestRedisStopStart(t *testing.T) {
	ctx := ctxT(t)
	srv := testenv.StartRedis(t)
	addr := srv.Addr()
	assert.NotEqual(t, testenv.Redis(t), addr, "a per-test server is not the shared one")
	c := redisClient(t, addr)
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	sub := c.Subscribe(ctx, "ch")
	defer sub.Close()
	_, err := sub.Receive(ctx)
	require.NoError(t, err)
	msgs := sub.Channel()

	srv.Stop()
	assert.False(t, srv.Running())
	assert.Error(t, c.Ping(ctx).Err(), "the server is down")

	srv.Start()
	assert.True(t, srv.Running())
	assert.Equal(t, addr, srv.Addr(), "same port after a restart")
	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		assert.NoError(c2, c.Ping(ctx).Err())
	}, 10*time.Second, 50*time.Millisecond, "the client reconnects")
	assert.ErrorIs(t, c.Get(ctx, "k").Err(), redis.Nil, "nothing is kept across restarts")

	// The subscription is re-established by go-redis after the outage.
	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		require.NoError(c2, c.Publish(ctx, "ch", "after-restart").Err())
		select {
		case m := <-msgs:
			assert.Equal(c2, "after-restart", m.Payload)
		case <-time.After(200 * time.Millisecond):
			c2.Errorf("no message yet")
		}
	}, 15*time.Second, 100*time.Millisecond, "the subscriber resubscribes")

	// A crash (SIGKILL) and a restart.
	srv.Kill()
	assert.False(t, srv.Running())
	srv.Restart()
	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		assert.NoError(c2, c.Set(ctx, "k", "v2", 0).Err())
	}, 10*time.Second, 50*time.Millisecond)
}

// fakeTB records how a test would have ended.
type fakeTB struct {
	testing.TB
	fatal, skip string
	dir         string
	cleanups    []func()
}

func (f *fakeTB) Helper()         {}
func (f *fakeTB) Name() string    { return "Fake" }
func (f *fakeTB) TempDir() string { return f.dir }
func (f *fakeTB) Cleanup(fn func()) {
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }
func (f *fakeTB) Skipf(format string, args ...any)  { f.skip = fmt.Sprintf(format, args...) }

func TestMissingServicePolicy(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no redis-server there

	t.Setenv("CI", "true")
	f := &fakeTB{dir: t.TempDir()}
	assert.Nil(t, testenv.StartRedis(f))
	assert.Contains(t, f.fatal, "redis-server is not on PATH")
	assert.Contains(t, f.fatal, "apt-get install redis-server")
	assert.Empty(t, f.skip)

	t.Setenv("CI", "")
	f = &fakeTB{dir: t.TempDir()}
	assert.Nil(t, testenv.StartRedis(f))
	assert.Contains(t, f.skip, "redis-server is not on PATH")
	assert.Empty(t, f.fatal)
}

// --- processes end with the test binary ---

const helperEnv = "DEALROOM_TESTENV_HELPER"

// helperProcess runs in a child test binary: it starts servers, prints
// their addresses and dies abruptly, leaving no chance for cleanups.
func helperProcess() {
	t := &fakeTB{dir: os.TempDir()}
	redisAddr := testenv.StartRedis(t).Addr()
	mongoURI := testenv.MongoURI(t)
	if t.fatal != "" || t.skip != "" {
		fmt.Println("HELPER-FAILED", t.fatal, t.skip)
		os.Exit(2)
	}
	fmt.Printf("HELPER %s %s\n", redisAddr, strings.TrimPrefix(mongoURI, "mongodb://"))
	os.Stdout.Sync()
	panic("helper dies without cleanup")
}

func TestServersDieWithTestBinary(t *testing.T) {
	testenv.Redis(t) // skips (or fails in CI) here rather than in the child
	if os.Getenv("DEALROOM_TEST_MONGO_URI") != "" {
		t.Skip("uses mongo-java-server")
	}
	testenv.MongoURI(t)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the helper panics: %s", out)
	m := regexp.MustCompile(`HELPER (\S+) (\S+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "helper output: %s", out)

	for _, addr := range m[1:] {
		assert.Eventually(t, func() bool {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err != nil {
				return true
			}
			c.Close()
			return false
		}, 10*time.Second, 50*time.Millisecond, "server on %s outlived its test binary", addr)
	}
}

// --- MongoDB ---

func mongoDB(t *testing.T) *mongo.Database {
	uri, name := testenv.MongoDatabase(t)
	client, err := mongo.Connect(ctxT(t), options.Client().ApplyURI(uri))
	require.NoError(t, err)
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	return client.Database(name)
}

func usingMongoJavaServer() bool { return os.Getenv("DEALROOM_TEST_MONGO_URI") == "" }

func TestMongoServer(t *testing.T) {
	ctx := ctxT(t)
	uri := testenv.MongoURI(t)
	assert.Equal(t, uri, testenv.MongoURI(t), "the shared server is started once")
	db := mongoDB(t)
	require.NoError(t, db.Client().Ping(ctx, nil))
	if usingMongoJavaServer() {
		assert.Regexp(t, `^mongodb://127\.0\.0\.1:\d+$`, uri)
		var info struct {
			Version string `bson:"version"`
		}
		require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info))
		assert.Equal(t, "3.6.0", info.Version)
	}
}

func TestMongoDatabase(t *testing.T) {
	ctx := ctxT(t)
	var name1, name2 string
	t.Run("sub test/with odd*chars", func(t *testing.T) {
		db := mongoDB(t)
		name1 = db.Name()
		_, err := db.Collection("c").InsertOne(ctx, bson.M{"x": 1})
		require.NoError(t, err)
		_, name2 = testenv.MongoDatabase(t)
	})
	assert.Regexp(t, `^t_TestMongoDatabase_sub_test_with_odd_chars_[0-9a-f]{16}$`, name1)
	assert.NotEqual(t, name1, name2)
	assert.LessOrEqual(t, len(name1), 63)

	db := mongoDB(t)
	names, err := db.Client().ListDatabaseNames(ctx, bson.M{})
	require.NoError(t, err)
	assert.NotContains(t, names, name1, "dropped in the sub test's cleanup")
}

func TestMongoUniqueCompoundIndex(t *testing.T) {
	ctx := ctxT(t)
	events := mongoDB(t).Collection("events")
	name, err := events.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "room_id", Value: 1}, {Key: "seq", Value: 1}},
		Options: options.Index().SetUnique(true),
	})
	require.NoError(t, err)
	assert.Equal(t, "room_id_1_seq_1", name)

	_, err = events.InsertOne(ctx, bson.M{"room_id": "r1", "seq": 1})
	require.NoError(t, err)
	_, err = events.InsertOne(ctx, bson.M{"room_id": "r2", "seq": 1})
	require.NoError(t, err, "same seq in another room")
	_, err = events.InsertOne(ctx, bson.M{"room_id": "r1", "seq": 2})
	require.NoError(t, err)

	_, err = events.InsertOne(ctx, bson.M{"room_id": "r1", "seq": 2})
	require.Error(t, err)
	assert.True(t, mongo.IsDuplicateKeyError(err), "%v", err)

	_, err = events.InsertMany(ctx, []any{bson.M{"room_id": "r1", "seq": 3}, bson.M{"room_id": "r1", "seq": 1}})
	assert.True(t, mongo.IsDuplicateKeyError(err), "%v", err)

	// Creating the same index again is a no-op.
	_, err = events.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "room_id", Value: 1}, {Key: "seq", Value: 1}},
		Options: options.Index().SetUnique(true),
	})
	assert.NoError(t, err)
}

// TestMongoConditionalUpsert pins down what an upsert with a filter on _id
// and a condition does: when the condition fails for an existing _id, the
// upsert tries to insert a second document with that _id, and fails with a
// duplicate key error (as MongoDB does).
func TestMongoConditionalUpsert(t *testing.T) {
	ctx := ctxT(t)
	rooms := mongoDB(t).Collection("rooms")
	_, err := rooms.InsertOne(ctx, bson.M{"_id": "r1", "seq": 7})
	require.NoError(t, err)
	cond := func(id string, below int) bson.M {
		return bson.M{"_id": id, "seq": bson.M{"$lt": below}}
	}
	set := func(seq int) bson.M { return bson.M{"$set": bson.M{"seq": seq}} }

	t.Run("condition holds: update", func(t *testing.T) {
		res, err := rooms.UpdateOne(ctx, cond("r1", 10), set(8), options.Update().SetUpsert(true))
		require.NoError(t, err)
		assert.EqualValues(t, 1, res.MatchedCount)
		assert.EqualValues(t, 1, res.ModifiedCount)
		assert.Nil(t, res.UpsertedID)
	})

	t.Run("no such _id: insert", func(t *testing.T) {
		res, err := rooms.UpdateOne(ctx, cond("r2", 5),
			bson.M{"$set": bson.M{"seq": 1}, "$setOnInsert": bson.M{"created": true}},
			options.Update().SetUpsert(true))
		require.NoError(t, err)
		assert.EqualValues(t, 0, res.MatchedCount)
		assert.Equal(t, "r2", res.UpsertedID)
		var doc bson.M
		require.NoError(t, rooms.FindOne(ctx, bson.M{"_id": "r2"}).Decode(&doc))
		assert.Equal(t, bson.M{"_id": "r2", "seq": int32(1), "created": true}, doc)
	})

	t.Run("condition fails for an existing _id: duplicate key", func(t *testing.T) {
		_, err := rooms.UpdateOne(ctx, cond("r1", 5), set(5), options.Update().SetUpsert(true))
		assert.True(t, mongo.IsDuplicateKeyError(err), "UpdateOne: %v", err)

		_, err = rooms.ReplaceOne(ctx, cond("r1", 5), bson.M{"seq": 5}, options.Replace().SetUpsert(true))
		assert.True(t, mongo.IsDuplicateKeyError(err), "ReplaceOne: %v", err)

		err = rooms.FindOneAndUpdate(ctx, cond("r1", 5), set(5), options.FindOneAndUpdate().SetUpsert(true)).Err()
		assert.True(t, mongo.IsDuplicateKeyError(err), "FindOneAndUpdate: %v", err)

		_, err = rooms.BulkWrite(ctx, []mongo.WriteModel{
			mongo.NewUpdateOneModel().SetFilter(cond("r1", 5)).SetUpdate(set(5)).SetUpsert(true),
		})
		assert.True(t, mongo.IsDuplicateKeyError(err), "BulkWrite: %v", err)

		var doc bson.M
		require.NoError(t, rooms.FindOne(ctx, bson.M{"_id": "r1"}).Decode(&doc))
		assert.EqualValues(t, 8, doc["seq"], "unchanged")
	})

	t.Run("FindOneAndUpdate returns the new document", func(t *testing.T) {
		var doc struct {
			Seq int `bson:"seq"`
		}
		err := rooms.FindOneAndUpdate(ctx, cond("r1", 10), bson.M{"$inc": bson.M{"seq": 1}},
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
		require.NoError(t, err)
		assert.Equal(t, 9, doc.Seq)
	})
}

func TestMongoQueries(t *testing.T) {
	ctx := ctxT(t)
	events := mongoDB(t).Collection("events")
	docs := make([]any, 0, 300)
	for i := range 300 {
		docs = append(docs, bson.M{"_id": fmt.Sprintf("e%03d", i), "room_id": fmt.Sprintf("r%d", i%3), "seq": i / 3})
	}
	_, err := events.InsertMany(ctx, docs)
	require.NoError(t, err)

	type event struct {
		ID     string `bson:"_id"`
		RoomID string `bson:"room_id"`
		Seq    int    `bson:"seq"`
	}
	find := func(filter any, opts ...*options.FindOptions) []event {
		t.Helper()
		cur, err := events.Find(ctx, filter, opts...)
		require.NoError(t, err)
		var out []event
		require.NoError(t, cur.All(ctx, &out))
		return out
	}

	// The last three events of room r1, newest first.
	got := find(bson.M{"room_id": "r1"}, options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(3))
	assert.Equal(t, []event{{"e298", "r1", 99}, {"e295", "r1", 98}, {"e292", "r1", 97}}, got)

	// Events after seq 95, oldest first.
	got = find(bson.M{"room_id": "r2", "seq": bson.M{"$gt": 97}}, options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	assert.Equal(t, []event{{"e296", "r2", 98}, {"e299", "r2", 99}}, got)

	got = find(bson.M{"_id": bson.M{"$in": bson.A{"e001", "e010", "nope"}}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	assert.Equal(t, []event{{"e001", "r1", 0}, {"e010", "r1", 3}}, got)

	// More than one batch: getMore works.
	got = find(bson.M{"room_id": "r0"}, options.Find().SetBatchSize(7))
	assert.Len(t, got, 100)

	n, err := events.CountDocuments(ctx, bson.M{"room_id": "r0", "seq": bson.M{"$gte": 90}})
	require.NoError(t, err)
	assert.EqualValues(t, 10, n)
	n, err = events.CountDocuments(ctx, bson.M{})
	require.NoError(t, err)
	assert.EqualValues(t, 300, n)
	n, err = events.EstimatedDocumentCount(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 300, n)

	del, err := events.DeleteMany(ctx, bson.M{"room_id": "r0"})
	require.NoError(t, err)
	assert.EqualValues(t, 100, del.DeletedCount)
}

func TestMongoGridFS(t *testing.T) {
	ctx := ctxT(t)
	db := mongoDB(t)
	bucket, err := gridfs.NewBucket(db, options.GridFSBucket().SetName("blobs"))
	require.NoError(t, err)

	data := make([]byte, 300*1024+123) // more than one 255 KiB chunk
	_, err = rand.Read(data)
	require.NoError(t, err)

	id, err := bucket.UploadFromStream("deck.pdf", bytes.NewReader(data),
		options.GridFSUpload().SetMetadata(bson.M{"room_id": "r1"}))
	require.NoError(t, err)

	var buf bytes.Buffer
	n, err := bucket.DownloadToStream(id, &buf)
	require.NoError(t, err)
	assert.EqualValues(t, len(data), n)
	assert.True(t, bytes.Equal(data, buf.Bytes()), "same bytes back")

	buf.Reset()
	_, err = bucket.DownloadToStreamByName("deck.pdf", &buf)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, buf.Bytes()))

	cur, err := bucket.Find(bson.M{"metadata.room_id": "r1"})
	require.NoError(t, err)
	var files []gridfs.File
	require.NoError(t, cur.All(ctx, &files))
	require.Len(t, files, 1)
	assert.EqualValues(t, len(data), files[0].Length)
	assert.Equal(t, "deck.pdf", files[0].Name)
	chunks, err := db.Collection("blobs.chunks").CountDocuments(ctx, bson.M{"files_id": id})
	require.NoError(t, err)
	assert.EqualValues(t, 2, chunks)

	require.NoError(t, bucket.Delete(id))
	_, err = bucket.DownloadToStream(id, &buf)
	assert.ErrorIs(t, err, gridfs.ErrFileNotFound)
}

// TestMongoJavaServerLimitations pins down where mongo-java-server differs
// from MongoDB, so that code is not written against behaviour that only
// the fake has (or lacks). Skipped against a real MongoDB.
func TestMongoJavaServerLimitations(t *testing.T) {
	if !usingMongoJavaServer() {
		t.Skip("documents mongo-java-server only")
	}
	ctx := ctxT(t)
	db := mongoDB(t)

	t.Run("no sessions, so no transactions", func(t *testing.T) {
		sess, err := db.Client().StartSession()
		require.NoError(t, err)
		defer sess.EndSession(ctx)
		_, err = sess.WithTransaction(ctx, func(sc mongo.SessionContext) (any, error) {
			return db.Collection("tx").InsertOne(sc, bson.M{"x": 1})
		})
		assert.ErrorContains(t, err, "does not support sessions")
	})

	t.Run("partialFilterExpression is accepted but ignored", func(t *testing.T) {
		c := db.Collection("partial")
		_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: "a", Value: 1}},
			Options: options.Index().SetUnique(true).SetPartialFilterExpression(bson.M{"live": true}),
		})
		require.NoError(t, err)
		_, err = c.InsertOne(ctx, bson.M{"a": 1, "live": false})
		require.NoError(t, err)
		_, err = c.InsertOne(ctx, bson.M{"a": 1, "live": false})
		assert.True(t, mongo.IsDuplicateKeyError(err), "MongoDB would accept this document: %v", err)
	})

	t.Run("sparse unique index works", func(t *testing.T) {
		c := db.Collection("sparse")
		_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: "b", Value: 1}},
			Options: options.Index().SetUnique(true).SetSparse(true),
		})
		require.NoError(t, err)
		_, err = c.InsertMany(ctx, []any{bson.M{"x": 1}, bson.M{"x": 2}})
		assert.NoError(t, err)
	})

	t.Run("$text queries are not supported", func(t *testing.T) {
		c := db.Collection("text")
		_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "body", Value: "text"}}})
		require.NoError(t, err, "the index itself is accepted")
		_, err = c.InsertOne(ctx, bson.M{"body": "hello world"})
		require.NoError(t, err)
		_, err = c.Find(ctx, bson.M{"$text": bson.M{"$search": "hello"}})
		assert.ErrorContains(t, err, "unknown operator: $search")
	})

	t.Run("updates with an aggregation pipeline are not supported", func(t *testing.T) {
		c := db.Collection("pipe")
		_, err := c.InsertOne(ctx, bson.M{"_id": 1, "a": 1})
		require.NoError(t, err)
		_, err = c.UpdateOne(ctx, bson.M{"_id": 1}, mongo.Pipeline{{{Key: "$set", Value: bson.M{"b": "$a"}}}})
		assert.Error(t, err)
	})

	t.Run("collation is ignored by queries", func(t *testing.T) {
		c := db.Collection("collation")
		_, err := c.InsertMany(ctx, []any{bson.M{"n": "abc"}, bson.M{"n": "ABC"}})
		require.NoError(t, err)
		n, err := c.CountDocuments(ctx, bson.M{"n": "abc"},
			options.Count().SetCollation(&options.Collation{Locale: "en", Strength: 2}))
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "MongoDB would count 2")
	})

	t.Run("change streams need the --oplog launcher flag", func(t *testing.T) {
		if strings.Contains(os.Getenv("DEALROOM_TEST_MONGO_ARGS"), "--oplog") {
			t.Skip("oplog enabled")
		}
		_, err := db.Collection("w").Watch(ctx, mongo.Pipeline{})
		assert.Error(t, err)
	})
}

// TestMongoWriteConcerns: acknowledged write concerns, including
// w:"majority" and j:true, are accepted on a standalone server.
func TestMongoWriteConcerns(t *testing.T) {
	ctx := ctxT(t)
	uri, name := testenv.MongoDatabase(t)
	for _, q := range []string{"w=majority", "w=1&journal=true", "w=majority&wtimeoutMS=1000&readConcernLevel=majority&retryWrites=true"} {
		client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri+"/?"+q))
		require.NoError(t, err, q)
		_, err = client.Database(name).Collection("c").InsertOne(ctx, bson.M{"q": q})
		assert.NoError(t, err, q)
		_, err = client.Database(name).Collection("c").CountDocuments(ctx, bson.M{})
		assert.NoError(t, err, q)
		require.NoError(t, client.Disconnect(ctx))
	}
}

func TestRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	require.Len(t, c.Addrs(), 6)
	primaries := c.Primaries()
	require.Len(t, primaries, 3)
	ctx := context.Background()
	for _, a := range c.Addrs() {
		cl := redis.NewClient(&redis.Options{Addr: a})
		info, err := cl.ClusterInfo(ctx).Result()
		cl.Close()
		require.NoError(t, err)
		assert.Contains(t, info, "cluster_state:ok")
		assert.Contains(t, info, "cluster_known_nodes:6")
	}

	// A primary handed over to its replica.
	promoted := c.Failover(primaries[1])
	assert.NotContains(t, primaries, promoted)
	assert.Contains(t, c.Primaries(), promoted)
	c.WaitOK(20 * time.Second)

	// A killed primary's replica takes over.
	c.Kill(primaries[0])
	require.Eventually(t, func() bool {
		p := c.Primaries()
		return len(p) == 3 && !slices.Contains(p, primaries[0])
	}, 20*time.Second, 100*time.Millisecond)
	c.WaitOK(20 * time.Second)
}

// A slot moved to another primary takes its keys along, and every client
// is sent there.
func TestRedisClusterMoveSlot(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rdb.Close()
	for i := range 5 {
		require.NoError(t, rdb.Set(ctx, fmt.Sprintf("{moved}:%d", i), i, 0).Err())
	}
	slot, err := rdb.ClusterKeySlot(ctx, "moved").Result()
	require.NoError(t, err)
	from := c.SlotOwner(int(slot))
	var to string
	for _, p := range c.Primaries() {
		if p != from {
			to = p
			break
		}
	}
	c.MoveSlot(int(slot), to)
	assert.Equal(t, to, c.SlotOwner(int(slot)))

	// The new owner holds the keys; the old one sends the client there.
	target := redis.NewClient(&redis.Options{Addr: to})
	defer target.Close()
	n, err := target.ClusterCountKeysInSlot(ctx, int(slot)).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)
	old := redis.NewClient(&redis.Options{Addr: from})
	defer old.Close()
	assert.ErrorContains(t, old.Get(ctx, "{moved}:0").Err(), "MOVED")
	v, err := rdb.Get(ctx, "{moved}:3").Result()
	require.NoError(t, err)
	assert.Equal(t, "3", v)
}
