package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"dealroom/room"
)

// colReads holds the read markers (room.ReadStore), one document per
// (room, user). They are not events: a marker moves each time someone
// reads, and is written on its own, with no transaction.
const colReads = "reads"

var _ room.ReadStore = (*Store)(nil)

// readDoc is a marker as the collection keeps it. Its _id is the room and
// the user, so that a marker is one document and an upsert cannot make two.
type readDoc struct {
	ID     readID    `bson:"_id"`
	RoomID string    `bson:"room_id"`
	UserID string    `bson:"user_id"`
	Seq    int64     `bson:"seq"`
	At     time.Time `bson:"at"`
}

type readID struct {
	Room string `bson:"r"`
	User string `bson:"u"`
}

func (d readDoc) marker() room.ReadMarker {
	return room.ReadMarker{UserID: d.UserID, Seq: d.Seq, At: d.At.UTC()}
}

// ensureReadIndexes creates the index of a room's markers in user order.
func (s *Store) ensureReadIndexes(ctx context.Context) error {
	_, err := s.db.Collection(colReads).Indexes().CreateOne(ctx,
		mongo.IndexModel{Keys: bson.D{{Key: "room_id", Value: 1}, {Key: "user_id", Value: 1}}})
	if err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", colReads, err))
	}
	return nil
}

// SetRead implements room.ReadStore: one conditional upsert. When the
// marker is at seq or past it, the filter matches nothing and the upsert
// tries to insert a second document with the same _id, which the server
// refuses: the marker did not move, and is read back.
func (s *Store) SetRead(ctx context.Context, roomID, user string, seq int64, at time.Time) (room.ReadMarker, bool, error) {
	if err := s.begin(); err != nil {
		return room.ReadMarker{}, false, err
	}
	coll := s.db.Collection(colReads)
	id := readID{Room: roomID, User: user}
	if seq > 0 {
		at = at.UTC().Truncate(time.Millisecond)
		_, err := coll.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "seq", Value: bson.D{{Key: "$lt", Value: seq}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "room_id", Value: roomID}, {Key: "user_id", Value: user},
				{Key: "seq", Value: seq}, {Key: "at", Value: at}}}},
			options.Update().SetUpsert(true))
		if err == nil {
			return room.ReadMarker{UserID: user, Seq: seq, At: at}, true, nil
		}
		if !duplicate(err) {
			return room.ReadMarker{}, false, s.fail(ctx, err)
		}
	}
	var d readDoc
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	switch {
	case err == mongo.ErrNoDocuments:
		return room.ReadMarker{UserID: user}, false, nil
	case err != nil:
		return room.ReadMarker{}, false, s.fail(ctx, err)
	}
	return d.marker(), false, nil
}

// ReadMarkers implements room.ReadStore.
func (s *Store) ReadMarkers(ctx context.Context, roomID string) ([]room.ReadMarker, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	docs, err := findAll[readDoc](ctx, s.db.Collection(colReads), bson.D{{Key: "room_id", Value: roomID}},
		options.Find().SetSort(bson.D{{Key: "room_id", Value: 1}, {Key: "user_id", Value: 1}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]room.ReadMarker, len(docs))
	for i, d := range docs {
		out[i] = d.marker()
	}
	return out, nil
}

// UserReadMarkers implements room.ReadStore: one find by _id.
func (s *Store) UserReadMarkers(ctx context.Context, user string, rooms []string) (map[string]room.ReadMarker, error) {
	out := make(map[string]room.ReadMarker, len(rooms))
	if len(rooms) == 0 {
		return out, nil
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	ids := make(bson.A, len(rooms))
	for i, r := range rooms {
		ids[i] = readID{Room: r, User: user}
	}
	docs, err := findAll[readDoc](ctx, s.db.Collection(colReads), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	for _, d := range docs {
		out[d.RoomID] = d.marker()
	}
	return out, nil
}
