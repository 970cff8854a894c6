package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"dealroom/notify"
)

// colReplyKeys holds the keys of reply addresses (notify.ReplyKeys), keyed
// by the key: a second insert of a key is a duplicate key, and changes
// nothing. No other index: a key is only ever looked up by itself.
const colReplyKeys = "reply_keys"

var _ notify.ReplyKeys = (*Store)(nil)

// replyKeyDoc is a reply key as the collection keeps it. The conversions
// stop the build when notify.ReplyKey gains a field this lacks.
type replyKeyDoc struct {
	Key       string    `bson:"_id"`
	User      string    `bson:"user"`
	Room      string    `bson:"room"`
	Thread    string    `bson:"thread"`
	CreatedAt time.Time `bson:"created_at"`
}

// AddReplyKey implements notify.ReplyKeys: one insert, whose duplicate key
// means the key is recorded already.
func (s *Store) AddReplyKey(ctx context.Context, k notify.ReplyKey) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colReplyKeys).InsertOne(ctx, replyKeyDoc(k))
	if duplicate(err) {
		return nil
	}
	return s.fail(ctx, err)
}

// ReplyKey implements notify.ReplyKeys.
func (s *Store) ReplyKey(ctx context.Context, key string) (*notify.ReplyKey, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	var d replyKeyDoc
	err := s.db.Collection(colReplyKeys).FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	k := notify.ReplyKey(d)
	return &k, nil
}
