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
	"dealroom/session"
)

// colSessions holds the browser sessions (package session), keyed by
// their id, the hash of the browser's token.
const colSessions = "sessions"

var _ session.Store = (*Store)(nil)

// sessionDoc is a session as the collection keeps it. The conversions
// below stop the build when session.Session gains a field this lacks.
type sessionDoc struct {
	ID        string         `bson:"_id"`
	Actor     dealroom.Actor `bson:"actor"`
	CSRF      string         `bson:"csrf"`
	Via       session.Via    `bson:"via"`
	CreatedAt time.Time      `bson:"created_at"`
	LastSeen  time.Time      `bson:"last_seen"`
	IdleUntil time.Time      `bson:"idle_until"`
	ExpiresAt time.Time      `bson:"expires_at"`
}

// ensureSessionIndexes creates the sessions' indexes: a user's sessions
// in order, and a TTL index that has the server remove a session once it
// is past its absolute end (ended sessions are refused before that by
// package session; the index only keeps the collection small).
func (s *Store) ensureSessionIndexes(ctx context.Context) error {
	_, err := s.db.Collection(colSessions).Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "actor.id", Value: 1}, {Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(0)},
	})
	if err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", colSessions, err))
	}
	return nil
}

// CreateSession implements session.Store.
func (s *Store) CreateSession(ctx context.Context, sess session.Session) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colSessions).InsertOne(ctx, sessionDoc(sess))
	if duplicate(err) {
		return dealroom.Errorf(dealroom.ECONFLICT, "session exists")
	}
	return s.fail(ctx, err)
}

// Session implements session.Store.
func (s *Store) Session(ctx context.Context, id string) (session.Session, error) {
	if err := s.begin(); err != nil {
		return session.Session{}, err
	}
	var d sessionDoc
	err := s.db.Collection(colSessions).FindOne(ctx, bson.M{"_id": id}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return session.Session{}, dealroom.NotFound("session", "")
	}
	if err != nil {
		return session.Session{}, s.fail(ctx, err)
	}
	return session.Session(d), nil
}

// TouchSession implements session.Store.
func (s *Store) TouchSession(ctx context.Context, id string, seen, idleUntil time.Time) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colSessions).UpdateByID(ctx, id,
		bson.M{"$set": bson.M{"last_seen": seen, "idle_until": idleUntil}})
	return s.fail(ctx, err)
}

// EndSession implements session.Store.
func (s *Store) EndSession(ctx context.Context, id string) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colSessions).DeleteOne(ctx, bson.M{"_id": id})
	return s.fail(ctx, err)
}

// EndUserSessions implements session.Store. The ids are read first, then
// those sessions deleted: a session the user opens meanwhile is not
// ended, as it would not be had it come a moment later.
func (s *Store) EndUserSessions(ctx context.Context, user string) ([]string, error) {
	all, err := s.UserSessions(ctx, user)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(all))
	for _, ss := range all {
		ids = append(ids, ss.ID)
	}
	if len(ids) == 0 {
		return ids, nil
	}
	if _, err := s.db.Collection(colSessions).DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}}); err != nil {
		return nil, s.fail(ctx, err)
	}
	return ids, nil
}

// UserSessions implements session.Store.
func (s *Store) UserSessions(ctx context.Context, user string) ([]session.Session, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	cur, err := s.db.Collection(colSessions).Find(ctx, bson.M{"actor.id": user},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]session.Session, 0, len(docs))
	for _, d := range docs {
		out = append(out, session.Session(d))
	}
	return out, nil
}

// SweepSessions implements session.Store. The TTL index removes sessions
// past their absolute end on its own (within a minute or so); this also
// removes those left unused past their idle end.
func (s *Store) SweepSessions(ctx context.Context, now time.Time) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	res, err := s.db.Collection(colSessions).DeleteMany(ctx, bson.M{"$or": bson.A{
		bson.M{"idle_until": bson.M{"$lte": now}},
		bson.M{"expires_at": bson.M{"$lte": now}},
	}})
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	return int(res.DeletedCount), nil
}
