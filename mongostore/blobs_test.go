package mongostore_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"dealroom"
	"dealroom/mongostore"
	"dealroom/room"
	"dealroom/room/roomtest"
)

func blobs(t *testing.T) (*mongostore.Store, *mongostore.Blobs) {
	uri, db := database(t)
	s := open(t, uri, db)
	b, err := s.Blobs(ctxT(t))
	require.NoError(t, err)
	return s, b
}

func randomBytes(t *testing.T, n int) []byte {
	data := make([]byte, n)
	_, err := rand.Read(data)
	require.NoError(t, err)
	return data
}

func sumOf(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func TestBlobsRoundTrip(t *testing.T) {
	s, b := blobs(t)
	ctx := ctxT(t)
	data := randomBytes(t, 2*mongostore.ChunkSize+123) // three chunks
	blob, err := b.Put(ctx, bytes.NewReader(data), 10<<20)
	require.NoError(t, err)
	assert.Equal(t, sumOf(data), blob.SHA256)
	assert.EqualValues(t, len(data), blob.Size)
	assert.EqualValues(t, 3, count(t, s, "blobs.chunks", bson.D{}))
	assert.EqualValues(t, 0, count(t, s, "blobs.uploads", bson.D{}), "no upload left in progress")

	rc, err := b.Open(ctx, blob.SHA256)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "the stored bytes are the bytes uploaded")

	// Seeking is in the shared suite (roomtest.TestBlobs), across these
	// chunks' edges too.

	// A GridFS tool sees an ordinary file named by its hash.
	var f struct {
		Length    int64  `bson:"length"`
		ChunkSize int32  `bson:"chunkSize"`
		Filename  string `bson:"filename"`
	}
	require.NoError(t, s.Database().Collection("blobs.files").FindOne(ctx, bson.D{}).Decode(&f))
	assert.Equal(t, blob.SHA256, f.Filename)
	assert.EqualValues(t, len(data), f.Length)
	assert.EqualValues(t, mongostore.ChunkSize, f.ChunkSize)
}

func TestBlobsTooLargeStoresNothing(t *testing.T) {
	s, b := blobs(t)
	ctx := ctxT(t)
	data := randomBytes(t, mongostore.ChunkSize+10)
	_, err := b.Put(ctx, bytes.NewReader(data), int64(len(data)-1))
	assert.Equal(t, dealroom.ETOOLARGE, dealroom.ErrorCode(err))
	for _, c := range []string{"blobs.files", "blobs.chunks", "blobs.uploads"} {
		assert.EqualValues(t, 0, count(t, s, c, bson.D{}), "%s is empty", c)
	}
	_, err = b.Open(ctx, sumOf(data))
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))

	blob, err := b.Put(ctx, bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err, "exactly the limit is fine")
	assert.EqualValues(t, len(data), blob.Size)
}

func TestBlobsSameContentIsKeptOnce(t *testing.T) {
	s, b := blobs(t)
	ctx := ctxT(t)
	data := randomBytes(t, mongostore.ChunkSize+1)
	first, err := b.Put(ctx, bytes.NewReader(data), 1<<20)
	require.NoError(t, err)
	second, err := b.Put(ctx, bytes.NewReader(data), 1<<20)
	require.NoError(t, err)
	assert.Equal(t, first, second)

	// And at the same time.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			blob, err := b.Put(ctx, bytes.NewReader(data), 1<<20)
			if err == nil && blob != first {
				err = errors.New("another blob")
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, count(t, s, "blobs.files", bson.D{}))
	assert.EqualValues(t, 2, count(t, s, "blobs.chunks", bson.D{}), "one copy's chunks")
	assert.EqualValues(t, 0, count(t, s, "blobs.uploads", bson.D{}))
	rc, err := b.Open(ctx, first.SHA256)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got))
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

func TestBlobsBrokenUploadStoresNothing(t *testing.T) {
	s, b := blobs(t)
	ctx := ctxT(t)
	_, err := b.Put(ctx, &failingReader{n: mongostore.ChunkSize + 5}, 10<<20)
	assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(err), "%v", err)
	for _, c := range []string{"blobs.files", "blobs.chunks", "blobs.uploads"} {
		assert.EqualValues(t, 0, count(t, s, c, bson.D{}), "%s is empty", c)
	}
}

// TestBlobsSweepsDeadUploads: chunks of an upload whose process died are
// removed by the next start once they are old enough.
func TestBlobsSweepsDeadUploads(t *testing.T) {
	s, _ := blobs(t)
	ctx := ctxT(t)
	dead, recent := primitive.NewObjectID(), primitive.NewObjectID()
	for _, u := range []struct {
		id      primitive.ObjectID
		started time.Time
	}{{dead, time.Now().Add(-48 * time.Hour)}, {recent, time.Now()}} {
		_, err := s.Database().Collection("blobs.uploads").InsertOne(ctx, bson.D{{Key: "_id", Value: u.id}, {Key: "started", Value: u.started}})
		require.NoError(t, err)
		_, err = s.Database().Collection("blobs.chunks").InsertOne(ctx, bson.D{{Key: "files_id", Value: u.id}, {Key: "n", Value: int32(0)}, {Key: "data", Value: []byte("x")}})
		require.NoError(t, err)
	}
	_, err := s.Blobs(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 0, count(t, s, "blobs.chunks", bson.D{{Key: "files_id", Value: dead}}))
	assert.EqualValues(t, 1, count(t, s, "blobs.chunks", bson.D{{Key: "files_id", Value: recent}}), "an upload in progress is left alone")
	assert.EqualValues(t, 1, count(t, s, "blobs.uploads", bson.D{}))
}

// TestBlobs runs the room.Blobs (and room.BlobCollector) conformance
// suite; the tests below check what is GridFS's own.
func TestBlobs(t *testing.T) {
	roomtest.TestBlobs(t, func(tb testing.TB) room.Blobs {
		_, b := blobs(t)
		return b
	})
}
