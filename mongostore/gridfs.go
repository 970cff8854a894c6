package mongostore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readconcern"

	"dealroom"
	"dealroom/room"
)

// ChunkSize is the size of the GridFS chunks Blobs writes (GridFS's
// default, 255 KiB).
const ChunkSize = 255 * 1024

// staleUpload is how old an unfinished upload must be before Blobs removes
// what it left.
const staleUpload = 24 * time.Hour

var (
	_ room.Blobs         = (*Blobs)(nil)
	_ room.BlobCollector = (*Blobs)(nil)
)

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Blobs keeps attachment bytes in a GridFS bucket of the store's database,
// addressed by their SHA256: the files document of a blob has the hex
// SHA256 as its filename (unique), so the same bytes are kept once. Any
// GridFS tool can read the bucket.
//
// Put writes the chunks under a fresh file id and inserts the files
// document last: that single insert makes the blob visible, whole. Chunks
// of an upload that fails are deleted; those of a process that died
// mid-upload are found through the bucket's "uploads" collection (one
// document per upload in progress) and removed by the next Store.Blobs
// call once they are a day old.
type Blobs struct {
	s                      *Store
	files, chunks, uploads *mongo.Collection
}

// Blobs returns the GridFS blob store in the store's database (bucket
// "blobs" unless WithBlobBucket), creating its indexes and removing what
// unfinished uploads older than a day left behind.
func (s *Store) Blobs(ctx context.Context) (*Blobs, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	name := s.cfg.blobBucket
	b := &Blobs{s: s, files: s.db.Collection(name + ".files"), chunks: s.db.Collection(name + ".chunks"),
		uploads: s.db.Collection(name + ".uploads")}
	_, err := b.files.Indexes().CreateMany(ctx, []mongo.IndexModel{
		// GridFS's own index, as the drivers create it.
		{Keys: bson.D{{Key: "filename", Value: 1}, {Key: "uploadDate", Value: 1}}},
		// One file per content.
		{Keys: bson.D{{Key: "filename", Value: 1}}, Options: options.Index().SetUnique(true)},
	})
	if err != nil {
		return nil, s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", b.files.Name(), err))
	}
	_, err = b.chunks.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)})
	if err != nil {
		return nil, s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", b.chunks.Name(), err))
	}
	if err := b.sweep(ctx, time.Now().Add(-staleUpload)); err != nil {
		return nil, s.fail(ctx, err)
	}
	return b, nil
}

// gridFile is a GridFS files document.
type gridFile struct {
	ID         primitive.ObjectID `bson:"_id"`
	Length     int64              `bson:"length"`
	ChunkSize  int32              `bson:"chunkSize"`
	UploadDate time.Time          `bson:"uploadDate"`
	Filename   string             `bson:"filename"`
	Metadata   bson.D             `bson:"metadata,omitempty"`
}

type gridChunk struct {
	ID      primitive.ObjectID `bson:"_id"`
	FilesID primitive.ObjectID `bson:"files_id"`
	N       int32              `bson:"n"`
	Data    []byte             `bson:"data"`
}

type upload struct {
	ID      primitive.ObjectID `bson:"_id"`
	Started time.Time          `bson:"started"`
}

// sweep removes the chunks of uploads started before cutoff that never
// finished.
func (b *Blobs) sweep(ctx context.Context, cutoff time.Time) error {
	stale, err := findAll[upload](ctx, b.uploads, bson.D{{Key: "started", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	if err != nil {
		return err
	}
	for _, u := range stale {
		// Whoever deletes the record owns the cleanup; an uploader that
		// finds its record gone gives up instead of committing.
		res, err := b.uploads.DeleteOne(ctx, bson.D{{Key: "_id", Value: u.ID}})
		if err != nil {
			return err
		}
		if res.DeletedCount == 1 {
			if _, err := b.chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: u.ID}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Put implements room.Blobs.
func (b *Blobs) Put(ctx context.Context, r io.Reader, max int64) (room.Blob, error) {
	if err := b.s.begin(); err != nil {
		return room.Blob{}, err
	}
	id := primitive.NewObjectID()
	if _, err := b.uploads.InsertOne(ctx, upload{ID: id, Started: time.Now()}); err != nil {
		return room.Blob{}, b.s.fail(ctx, err)
	}
	blob, err := b.writeChunks(ctx, id, r, max)
	if err == nil {
		var mine bool
		if mine, err = b.publish(ctx, id, blob); mine && err == nil {
			return blob, nil
		}
	}
	// The chunks written are not the blob's: removed even if ctx is over.
	b.discard(ctx, id)
	if err != nil {
		return room.Blob{}, err
	}
	return blob, nil
}

// writeChunks writes the bytes of r, up to max, as the chunks of the
// upload id, and returns their hash and size.
func (b *Blobs) writeChunks(ctx context.Context, id primitive.ObjectID, r io.Reader, max int64) (room.Blob, error) {
	h := sha256.New()
	in := io.LimitReader(room.ContextReader(ctx, r), max+1)
	buf := make([]byte, ChunkSize)
	var size int64
	for n := int32(0); ; n++ {
		k, rerr := io.ReadFull(in, buf)
		if k > 0 {
			size += int64(k)
			if size > max {
				return room.Blob{}, dealroom.Errorf(dealroom.ETOOLARGE, "the file is larger than the limit of %d bytes", max)
			}
			h.Write(buf[:k])
			if _, err := b.chunks.InsertOne(ctx, gridChunk{ID: primitive.NewObjectID(), FilesID: id, N: n, Data: buf[:k]}); err != nil {
				return room.Blob{}, b.s.fail(ctx, err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			var de *dealroom.Error
			if errors.As(rerr, &de) || ctx.Err() != nil {
				return room.Blob{}, rerr
			}
			return room.Blob{}, dealroom.Errorf(dealroom.EBADREQUEST, "the upload could not be read: %v", rerr)
		}
	}
	return room.Blob{SHA256: hex.EncodeToString(h.Sum(nil)), Size: size}, nil
}

// publish makes the chunks of the upload id the blob's, by inserting its
// files document; mine is false when the same bytes are stored already
// (then they are stored again now, for StoredBefore, and the upload's
// chunks are not needed).
func (b *Blobs) publish(ctx context.Context, id primitive.ObjectID, blob room.Blob) (mine bool, err error) {
	// The update and Remove's conditional delete are each atomic: either
	// the bytes stay, or they are gone and this upload stores its own.
	res, err := b.files.UpdateOne(ctx, bson.D{{Key: "filename", Value: blob.SHA256}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "uploadDate", Value: time.Now().UTC().Truncate(time.Millisecond)}}}})
	if err != nil {
		return false, b.s.fail(ctx, err)
	}
	if res.MatchedCount > 0 {
		return false, nil
	}
	// Claim the upload, so that no sweep removes its chunks from now on.
	claimed, err := b.uploads.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return false, b.s.fail(ctx, err)
	}
	if claimed.DeletedCount != 1 {
		return false, dealroom.Unavailable(errors.New("mongostore: the upload took too long and was cleaned up"))
	}
	f := gridFile{ID: id, Length: blob.Size, ChunkSize: ChunkSize, UploadDate: time.Now().UTC().Truncate(time.Millisecond),
		Filename: blob.SHA256, Metadata: bson.D{{Key: "sha256", Value: blob.SHA256}}}
	_, err = b.files.InsertOne(ctx, f)
	switch {
	case err == nil:
		return true, nil
	case duplicate(err):
		// The same bytes were stored meanwhile by another upload.
		return false, nil
	}
	// The answer was lost: the insert may have happened. The bytes count
	// as stored only once a failover cannot take their record back, since
	// an attachment event is written next.
	majority, cerr := b.files.Clone(options.Collection().SetReadConcern(readconcern.Majority()))
	if cerr != nil {
		return false, b.s.fail(ctx, cerr)
	}
	switch got, serr := settleDoc(ctx, b.files, majority, id); got {
	case committed:
		return true, nil
	case unknown:
		return false, dealroom.Unavailable(fmt.Errorf("mongostore: storing a blob: %v; whether it is stored is not known: %w", err, serr))
	}
	return false, b.s.fail(ctx, err)
}

// discard removes the chunks of a failed or needless upload, and then
// its record, even if ctx is over.
func (b *Blobs) discard(ctx context.Context, id primitive.ObjectID) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := b.chunks.DeleteMany(cctx, bson.D{{Key: "files_id", Value: id}}); err == nil {
		b.uploads.DeleteOne(cctx, bson.D{{Key: "_id", Value: id}})
	}
}

// StoredBefore implements room.BlobCollector: a files document's
// uploadDate is when its bytes were last stored.
func (b *Blobs) StoredBefore(ctx context.Context, cutoff time.Time, fn func(string) error) error {
	if err := b.s.begin(); err != nil {
		return err
	}
	cur, err := b.files.Find(ctx, bson.D{{Key: "uploadDate", Value: bson.D{{Key: "$lt", Value: cutoff}}}},
		options.Find().SetProjection(bson.D{{Key: "filename", Value: 1}}))
	if err != nil {
		return b.s.fail(ctx, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var f struct {
			Filename string `bson:"filename"`
		}
		if err := cur.Decode(&f); err != nil {
			return b.s.fail(ctx, err)
		}
		if shaRE.MatchString(f.Filename) {
			if err := fn(f.Filename); err != nil {
				return err
			}
		}
	}
	return b.s.fail(ctx, cur.Err())
}

// Remove implements room.BlobCollector: the files document goes first, in
// one conditional delete, then its chunks.
func (b *Blobs) Remove(ctx context.Context, sum string, cutoff time.Time) error {
	if err := b.s.begin(); err != nil {
		return err
	}
	var f gridFile
	err := b.files.FindOneAndDelete(ctx, bson.D{{Key: "filename", Value: sum},
		{Key: "uploadDate", Value: bson.D{{Key: "$lt", Value: cutoff}}}}).Decode(&f)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil // gone, or stored again meanwhile
	}
	if err != nil {
		return b.s.fail(ctx, err)
	}
	_, err = b.chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: f.ID}})
	return b.s.fail(ctx, err)
}

// Open implements room.Blobs. The reader reads chunks as it goes, with ctx.
func (b *Blobs) Open(ctx context.Context, sum string) (io.ReadSeekCloser, error) {
	if err := b.s.begin(); err != nil {
		return nil, err
	}
	if !shaRE.MatchString(sum) {
		return nil, dealroom.NotFound("file", sum)
	}
	f, err := findOne[gridFile](ctx, b.files, bson.D{{Key: "filename", Value: sum}})
	if err != nil {
		return nil, b.s.fail(ctx, err)
	}
	if f == nil {
		return nil, dealroom.NotFound("file", sum)
	}
	if f.ChunkSize <= 0 {
		return nil, dealroom.Unavailable(fmt.Errorf("mongostore: blob %s has a bad chunk size %d", sum, f.ChunkSize))
	}
	return &blobReader{b: b, ctx: ctx, f: *f}, nil
}

// blobReader reads a GridFS file. Sequential reads stream the chunks from
// one cursor; a seek elsewhere opens another one when it is read.
type blobReader struct {
	b   *Blobs
	ctx context.Context
	f   gridFile
	off int64

	cur    *mongo.Cursor
	next   int32  // the chunk cur yields next
	chunk  []byte // the chunk at index have
	have   int32
	loaded bool
	closed bool
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("mongostore: read of a closed blob")
	}
	if r.off >= r.f.Length {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	size := int64(r.f.ChunkSize)
	idx := int32(r.off / size)
	if !r.loaded || r.have != idx {
		if err := r.load(idx); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.chunk[r.off-int64(idx)*size:])
	r.off += int64(n)
	return n, nil
}

// load fetches chunk idx, from the open cursor when it is next there.
func (r *blobReader) load(idx int32) error {
	if r.cur == nil || r.next != idx {
		if r.cur != nil {
			r.cur.Close(r.ctx)
		}
		cur, err := r.b.chunks.Find(r.ctx,
			bson.D{{Key: "files_id", Value: r.f.ID}, {Key: "n", Value: bson.D{{Key: "$gte", Value: idx}}}},
			options.Find().SetSort(bson.D{{Key: "n", Value: 1}}))
		if err != nil {
			r.cur = nil
			return r.b.s.fail(r.ctx, err)
		}
		r.cur, r.next = cur, idx
	}
	var c gridChunk
	if !r.cur.Next(r.ctx) {
		err := r.cur.Err()
		r.cur.Close(r.ctx)
		r.cur = nil
		if err != nil {
			return r.b.s.fail(r.ctx, err)
		}
		return dealroom.Unavailable(fmt.Errorf("mongostore: blob %s lacks chunk %d", r.f.Filename, idx))
	}
	if err := r.cur.Decode(&c); err != nil {
		return r.b.s.fail(r.ctx, err)
	}
	want := min(int64(r.f.ChunkSize), r.f.Length-int64(idx)*int64(r.f.ChunkSize))
	if c.N != idx || int64(len(c.Data)) != want {
		r.cur.Close(r.ctx)
		r.cur = nil
		return dealroom.Unavailable(fmt.Errorf("mongostore: blob %s has a bad chunk %d", r.f.Filename, idx))
	}
	r.next = idx + 1
	r.chunk, r.have, r.loaded = c.Data, idx, true
	return nil
}

func (r *blobReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.f.Length + offset
	default:
		return 0, errors.New("mongostore: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("mongostore: negative position")
	}
	r.off = abs
	return abs, nil
}

func (r *blobReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.cur != nil {
		r.cur.Close(context.WithoutCancel(r.ctx))
		r.cur = nil
	}
	return nil
}
