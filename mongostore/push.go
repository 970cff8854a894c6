package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"dealroom"
	"dealroom/push"
)

// colPush holds the devices' push subscriptions, keyed by their id (the
// endpoint's), with an index by user; colVAPID the one VAPID key pair,
// inserted by the first instance (its _id is fixed, so a second insert
// is a duplicate key and reads the first).
const (
	colPush  = "push_subscriptions"
	colVAPID = "vapid_keys"
)

var _ push.Store = (*Store)(nil)

// pushDoc is a subscription as the collection keeps it. The conversions
// stop the build when push.Subscription gains a field this lacks.
type pushDoc struct {
	ID        string    `bson:"_id"`
	User      string    `bson:"user"`
	Endpoint  string    `bson:"endpoint"`
	P256dh    string    `bson:"p256dh"`
	Auth      string    `bson:"auth"`
	CreatedAt time.Time `bson:"created_at"`
}

type vapidDoc struct {
	ID      string `bson:"_id"`
	Private string `bson:"private"`
	Public  string `bson:"public"`
}

// ensurePushIndexes creates the index of a person's subscriptions.
func (s *Store) ensurePushIndexes(ctx context.Context) error {
	_, err := s.db.Collection(colPush).Indexes().CreateOne(ctx,
		mongo.IndexModel{Keys: bson.D{{Key: "user", Value: 1}, {Key: "created_at", Value: 1}}})
	if err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", colPush, err))
	}
	return nil
}

// AddPushSubscription implements push.Store: one replacement, made when
// missing.
func (s *Store) AddPushSubscription(ctx context.Context, sub push.Subscription) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colPush).ReplaceOne(ctx, bson.D{{Key: "_id", Value: sub.ID}}, pushDoc(sub),
		options.Replace().SetUpsert(true))
	return s.fail(ctx, err)
}

// PushSubscriptions implements push.Store.
func (s *Store) PushSubscriptions(ctx context.Context, user string) ([]push.Subscription, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	cur, err := s.db.Collection(colPush).Find(ctx, bson.D{{Key: "user", Value: user}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(10*push.MaxPerUser))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	var docs []pushDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.fail(ctx, err)
	}
	var out []push.Subscription
	for _, d := range docs {
		d.CreatedAt = d.CreatedAt.UTC()
		out = append(out, push.Subscription(d))
	}
	return out, nil
}

// RemovePushSubscription implements push.Store.
func (s *Store) RemovePushSubscription(ctx context.Context, user, id string) error {
	if err := s.begin(); err != nil {
		return err
	}
	res, err := s.db.Collection(colPush).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user", Value: user}})
	if err != nil {
		return s.fail(ctx, err)
	}
	if res.DeletedCount == 0 {
		return dealroom.NotFound("push subscription", id)
	}
	return nil
}

// VAPIDKeys implements push.Store.
func (s *Store) VAPIDKeys(ctx context.Context, fresh push.Keys) (push.Keys, error) {
	if err := s.begin(); err != nil {
		return push.Keys{}, err
	}
	c := s.db.Collection(colVAPID)
	_, err := c.InsertOne(ctx, vapidDoc{ID: "vapid", Private: fresh.Private, Public: fresh.Public})
	if err == nil {
		return fresh, nil
	}
	if !duplicate(err) {
		return push.Keys{}, s.fail(ctx, err)
	}
	var d vapidDoc
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "vapid"}}).Decode(&d); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return push.Keys{}, dealroom.Unavailable(err)
		}
		return push.Keys{}, s.fail(ctx, err)
	}
	return push.Keys{Private: d.Private, Public: d.Public}, nil
}
