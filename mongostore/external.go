package mongostore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"dealroom/room"
)

// colExternal is the index of rooms by external id (room.ExternalIndex):
// one document per external id, {_id: external id, room_id}. Its unique
// _id is what keeps an external id to one room across every instance: an
// event that gives a room an external id is inserted only after its room
// holds the claim. An external id is never changed or removed once set,
// so claims are never removed either; a claim whose event then failed
// (the process died, the seq was taken and the new decision changed
// nothing) keeps the id reserved to its room id, where an upsert by the
// id creates the room.
const colExternal = "external_ids"

var _ room.ExternalIndex = (*Store)(nil)

// externalDoc is one claim.
type externalDoc struct {
	ID     string `bson:"_id"`
	RoomID string `bson:"room_id"`
}

// claimExternal claims the external id that ev gives its room before the
// event is inserted: inserted when new, kept when the room holds it
// already (a retry), refused with room.ExternalIDTaken when another room
// does.
func (s *Store) claimExternal(ctx context.Context, ev room.Event) error {
	id, err := room.ExternalOf(ev)
	if err != nil {
		return fmt.Errorf("mongostore: %w", err)
	}
	if id == "" {
		return nil
	}
	c := s.db.Collection(colExternal)
	_, err = c.InsertOne(ctx, externalDoc{ID: id, RoomID: ev.RoomID})
	if err == nil || !duplicate(err) {
		return s.fail(ctx, err)
	}
	var d externalDoc
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return s.fail(ctx, err)
	}
	if d.RoomID != ev.RoomID {
		return room.ExternalIDTaken(id)
	}
	return nil
}

// RoomOfExternal implements room.ExternalIndex.
func (s *Store) RoomOfExternal(ctx context.Context, externalID string) (string, error) {
	if err := s.begin(); err != nil {
		return "", err
	}
	var d externalDoc
	err := s.db.Collection(colExternal).FindOne(ctx, bson.D{{Key: "_id", Value: externalID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	if err != nil {
		return "", s.fail(ctx, err)
	}
	return d.RoomID, nil
}
