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
	"dealroom/outbox"
)

// colOutbox holds the outbox's records (package outbox), keyed by their
// id, so that adding a record twice is refused by the server as a
// duplicate key on every instance.
const colOutbox = "outbox"

var _ outbox.Store = (*Store)(nil)

// outboxDoc is a record as the collection keeps it.
type outboxDoc struct {
	ID        string    `bson:"_id"`
	Channel   string    `bson:"channel"`
	Recipient string    `bson:"recipient"`
	RoomID    string    `bson:"room_id"`
	EventID   string    `bson:"event_id"`
	Seq       int64     `bson:"seq,omitempty"`
	Batch     string    `bson:"batch,omitempty"`
	Payload   []byte    `bson:"payload"`
	State     string    `bson:"state"`
	CreatedAt time.Time `bson:"created_at"`
	Due       time.Time `bson:"due"`
	Attempts  int       `bson:"attempts"`
	LastError string    `bson:"last_error,omitempty"`
	SettledAt time.Time `bson:"settled_at"`
}

func toOutboxDoc(r outbox.Record) outboxDoc {
	return outboxDoc{ID: r.ID, Channel: r.Channel, Recipient: r.Recipient, RoomID: r.RoomID, EventID: r.EventID,
		Seq: r.Seq, Batch: r.Batch, Payload: r.Payload, State: r.State, CreatedAt: r.CreatedAt, Due: r.Due, Attempts: r.Attempts,
		LastError: r.LastError, SettledAt: r.SettledAt}
}

func (d outboxDoc) record() outbox.Record {
	return outbox.Record{ID: d.ID, Channel: d.Channel, Recipient: d.Recipient, RoomID: d.RoomID, EventID: d.EventID,
		Seq: d.Seq, Batch: d.Batch, Payload: d.Payload, State: d.State, CreatedAt: d.CreatedAt, Due: d.Due, Attempts: d.Attempts,
		LastError: d.LastError, SettledAt: d.SettledAt}
}

// ensureOutboxIndexes creates the index the sender's query of due records
// and the sweep use.
func (s *Store) ensureOutboxIndexes(ctx context.Context) error {
	_, err := s.db.Collection(colOutbox).Indexes().CreateOne(ctx,
		mongo.IndexModel{Keys: bson.D{{Key: "state", Value: 1}, {Key: "due", Value: 1}}})
	if err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", colOutbox, err))
	}
	return nil
}

// AddOutbox implements outbox.Store: one unordered insert, whose
// duplicate keys are the records already there.
func (s *Store) AddOutbox(ctx context.Context, recs []outbox.Record) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return 0, nil
	}
	docs := make([]any, len(recs))
	for i, r := range recs {
		docs[i] = toOutboxDoc(r)
	}
	return s.insertAbsent(ctx, colOutbox, docs)
}

// insertAbsent inserts those of docs whose _id no document of col has, by
// one unordered insert whose duplicate keys are the documents already
// there, and returns how many it inserted. On a failure some may have
// been inserted: inserting again is safe.
func (s *Store) insertAbsent(ctx context.Context, col string, docs []any) (int, error) {
	res, err := s.db.Collection(col).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	added := 0
	if res != nil {
		added = len(res.InsertedIDs)
	}
	var bw mongo.BulkWriteException
	if errors.As(err, &bw) && bw.WriteConcernError == nil {
		for _, we := range bw.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return added, s.fail(ctx, err)
			}
		}
		return len(docs) - len(bw.WriteErrors), nil
	}
	if err != nil {
		return added, s.fail(ctx, err)
	}
	return len(docs), nil
}

// DueOutbox implements outbox.Store.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]outbox.Record, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	docs, err := findAll[outboxDoc](ctx, s.db.Collection(colOutbox),
		bson.D{{Key: "state", Value: outbox.Pending}, {Key: "due", Value: bson.D{{Key: "$lte", Value: now}}}},
		options.Find().SetSort(bson.D{{Key: "due", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]outbox.Record, len(docs))
	for i, d := range docs {
		out[i] = d.record()
	}
	return out, nil
}

// SettleOutbox implements outbox.Store: each record by an update that
// matches it only while it is pending. Several records are first checked
// to exist, then written by one command (an ordered bulk write): once
// sent, the database applies all of it even if this process dies, so a
// message's records do not part (only a failure of the database itself
// in the middle of the command could part them; MongoDB has no
// transaction on a standalone server).
func (s *Store) SettleOutbox(ctx context.Context, rs ...outbox.Record) error {
	if err := s.begin(); err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	c := s.db.Collection(colOutbox)
	ids := make([]string, len(rs))
	models := make([]mongo.WriteModel, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
		models[i] = mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: r.ID}, {Key: "state", Value: outbox.Pending}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: r.State}, {Key: "due", Value: r.Due},
				{Key: "attempts", Value: r.Attempts}, {Key: "last_error", Value: r.LastError}, {Key: "settled_at", Value: r.SettledAt},
				{Key: "batch", Value: r.Batch}}}})
	}
	if len(rs) > 1 {
		if err := s.outboxExist(ctx, ids); err != nil {
			return err
		}
	}
	res, err := c.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
	if err != nil {
		return s.fail(ctx, err)
	}
	if len(rs) == 1 && res.MatchedCount == 0 {
		return s.outboxExist(ctx, ids)
	}
	return nil
}

// outboxExist returns ENOTFOUND unless every record of ids exists.
func (s *Store) outboxExist(ctx context.Context, ids []string) error {
	cur, err := s.db.Collection(colOutbox).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return s.fail(ctx, err)
	}
	var found []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &found); err != nil {
		return s.fail(ctx, err)
	}
	have := make(map[string]bool, len(found))
	for _, f := range found {
		have[f.ID] = true
	}
	for _, id := range ids {
		if !have[id] {
			return dealroom.NotFound("outbox record", id)
		}
	}
	return nil
}

// SweepOutbox implements outbox.Store.
func (s *Store) SweepOutbox(ctx context.Context, before time.Time) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	res, err := s.db.Collection(colOutbox).DeleteMany(ctx, bson.D{
		{Key: "state", Value: bson.D{{Key: "$in", Value: []string{outbox.Sent, outbox.Failed, outbox.Skipped}}}},
		{Key: "settled_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	return int(res.DeletedCount), nil
}
