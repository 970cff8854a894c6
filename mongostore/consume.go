package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"dealroom/consume"
)

// The event log's consumers (package consume): leases keyed by their name,
// cursors keyed by consumer and room. Every change is one single-document
// operation, which the server runs one at a time per document; neither
// collection needs an index beyond _id.
const (
	colLeases  = "leases"
	colCursors = "cursors"
)

var _ consume.Store = (*Store)(nil)

// leaseDoc is a lease as the collection keeps it.
type leaseDoc struct {
	Name   string    `bson:"_id"`
	Holder string    `bson:"holder"`
	Epoch  int64     `bson:"epoch"`
	Until  time.Time `bson:"until"`
}

func (d leaseDoc) lease() consume.Lease {
	return consume.Lease{Name: d.Name, Holder: d.Holder, Epoch: d.Epoch, Until: d.Until}
}

// AcquireLease implements consume.Store in at most two operations: a
// renewal, which matches only the holder's own lease, then a take-over,
// which matches only an expired one (or upserts a new one: when another
// holder's unexpired lease is there, the insert is refused as a duplicate
// key and the lease is not taken).
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (consume.Lease, bool, error) {
	if err := s.begin(); err != nil {
		return consume.Lease{}, false, err
	}
	c := s.db.Collection(colLeases)
	until := now.Add(ttl)
	after := options.FindOneAndUpdate().SetReturnDocument(options.After)
	var d leaseDoc
	err := c.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: name}, {Key: "holder", Value: holder}, {Key: "until", Value: bson.D{{Key: "$gt", Value: now}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: until}}}}, after).Decode(&d)
	if err == nil {
		return d.lease(), true, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return consume.Lease{}, false, s.fail(ctx, err)
	}
	// A holder that lets its own lease expire and takes it again keeps
	// its epoch only by chance of timing; the epoch grows, which fences
	// nothing that should not be.
	err = c.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: name}, {Key: "until", Value: bson.D{{Key: "$lte", Value: now}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "holder", Value: holder}, {Key: "until", Value: until}}},
			{Key: "$inc", Value: bson.D{{Key: "epoch", Value: int64(1)}}}},
		after.SetUpsert(true)).Decode(&d)
	if err == nil {
		return d.lease(), true, nil
	}
	if !duplicate(err) {
		return consume.Lease{}, false, s.fail(ctx, err)
	}
	err = c.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&d)
	if err != nil {
		return consume.Lease{}, false, s.fail(ctx, err)
	}
	return d.lease(), false, nil
}

// ReleaseLease implements consume.Store: the lease ends now, its epoch
// stays.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colLeases).UpdateOne(ctx, bson.D{{Key: "_id", Value: name}, {Key: "holder", Value: holder}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "holder", Value: ""}, {Key: "until", Value: time.Time{}}}}})
	return s.fail(ctx, err)
}

// cursorDoc is a cursor as the collection keeps it.
type cursorDoc struct {
	ID       string `bson:"_id"` // consumer 0 room
	Consumer string `bson:"consumer"`
	Room     string `bson:"room"`
	Seq      int64  `bson:"seq"`
}

func cursorID(consumer, roomID string) string { return consumer + "\x00" + roomID }

// Cursors implements consume.Store.
func (s *Store) Cursors(ctx context.Context, consumer string, rooms []string) (map[string]int64, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	ids := make([]string, len(rooms))
	for i, r := range rooms {
		ids[i] = cursorID(consumer, r)
	}
	docs, err := findAll[cursorDoc](ctx, s.db.Collection(colCursors), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make(map[string]int64, len(docs))
	for _, d := range docs {
		out[d.Room] = d.Seq
	}
	return out, nil
}

// Advance implements consume.Store: one unordered bulk write of an upsert
// per room that matches only a cursor behind its seq; when the cursor is
// at the seq or further, the insert it falls back to is refused as a
// duplicate key, and nothing changes.
func (s *Store) Advance(ctx context.Context, consumer string, seqs map[string]int64) error {
	if err := s.begin(); err != nil {
		return err
	}
	if len(seqs) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(seqs))
	for roomID, seq := range seqs {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: cursorID(consumer, roomID)}, {Key: "seq", Value: bson.D{{Key: "$lt", Value: seq}}}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "consumer", Value: consumer}, {Key: "room", Value: roomID}, {Key: "seq", Value: seq}}}}).
			SetUpsert(true))
	}
	_, err := s.db.Collection(colCursors).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bw mongo.BulkWriteException
	if errors.As(err, &bw) && bw.WriteConcernError == nil {
		for _, we := range bw.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return s.fail(ctx, err)
			}
		}
		return nil
	}
	return s.fail(ctx, err)
}

// Heads implements consume.Store from the rooms collection, by _id, with
// only the high-water mark of each room's read models read (applied_seq:
// the room's head once its read models caught up, which the next write or
// repair does).
func (s *Store) Heads(ctx context.Context, after string, limit int) ([]consume.Head, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	docs, err := findAll[struct {
		ID         string `bson:"_id"`
		AppliedSeq int64  `bson:"applied_seq"`
	}](ctx, s.rooms, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)).
			SetProjection(bson.D{{Key: "applied_seq", Value: 1}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]consume.Head, len(docs))
	for i, d := range docs {
		out[i] = consume.Head{Room: d.ID, Seq: d.AppliedSeq}
	}
	return out, nil
}
