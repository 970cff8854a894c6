package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"dealroom"
	"dealroom/webhook"
)

// colWebhooks holds the webhook endpoints (package webhook) by id;
// colWebhookDeliveries their deliveries, keyed by the delivery's id (its
// webhook-id), so that recording one twice is a duplicate key on every
// instance.
const (
	colWebhooks          = "webhooks"
	colWebhookDeliveries = "webhook_deliveries"
)

var _ webhook.Store = (*Store)(nil)

// webhookDoc is an endpoint as the collection keeps it. Version grows
// with every write, so that an update does not overwrite one made
// meanwhile.
type webhookDoc struct {
	ID           string    `bson:"_id"`
	Version      int64     `bson:"version"`
	URL          string    `bson:"url"`
	Events       []string  `bson:"events"`
	RoomTags     []string  `bson:"room_tags"`
	Internal     bool      `bson:"internal"`
	Secret       string    `bson:"secret"`
	Paused       bool      `bson:"paused"`
	PausedReason string    `bson:"paused_reason,omitempty"`
	PausedAt     time.Time `bson:"paused_at,omitempty"`
	ResumedAt    time.Time `bson:"resumed_at,omitempty"`
	CreatedBy    string    `bson:"created_by"`
	CreatedEmail string    `bson:"created_by_email,omitempty"`
	CreatedAt    time.Time `bson:"created_at"`
	UpdatedAt    time.Time `bson:"updated_at"`
}

func toWebhookDoc(e webhook.Endpoint, version int64) webhookDoc {
	return webhookDoc{ID: e.ID, Version: version, URL: e.URL, Events: e.Events, RoomTags: e.RoomTags, Internal: e.Internal,
		Secret: e.Secret, Paused: e.Paused, PausedReason: e.PausedReason, PausedAt: e.PausedAt, ResumedAt: e.ResumedAt,
		CreatedBy: e.CreatedBy, CreatedEmail: e.CreatedByEmail, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

func (d webhookDoc) endpoint() webhook.Endpoint {
	return webhook.Endpoint{ID: d.ID, URL: d.URL, Events: orEmpty(d.Events), RoomTags: orEmpty(d.RoomTags), Internal: d.Internal,
		Secret: d.Secret, Paused: d.Paused, PausedReason: d.PausedReason, PausedAt: utc(d.PausedAt), ResumedAt: utc(d.ResumedAt),
		CreatedBy: d.CreatedBy, CreatedByEmail: d.CreatedEmail, CreatedAt: utc(d.CreatedAt), UpdatedAt: utc(d.UpdatedAt)}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// utc keeps a zero time zero (the driver reads it back as 1970 or as a
// local time otherwise).
func utc(t time.Time) time.Time {
	if t.IsZero() || t.Unix() == (time.Time{}).Unix() {
		return time.Time{}
	}
	return t.UTC()
}

// deliveryDoc is a delivery as the collection keeps it.
type deliveryDoc struct {
	ID           string    `bson:"_id"`
	Endpoint     string    `bson:"endpoint"`
	RoomID       string    `bson:"room_id"`
	Seq          int64     `bson:"seq"`
	EventID      string    `bson:"event_id"`
	Type         string    `bson:"type"`
	State        string    `bson:"state"`
	CreatedAt    time.Time `bson:"created_at"`
	Due          time.Time `bson:"due"`
	Attempts     int       `bson:"attempts"`
	FailingSince time.Time `bson:"failing_since,omitempty"`
	Status       int       `bson:"status"`
	LatencyMS    int64     `bson:"latency_ms"`
	LastError    string    `bson:"last_error,omitempty"`
	At           time.Time `bson:"at"`
	DeliveredAt  time.Time `bson:"delivered_at,omitempty"`
}

func toDeliveryDoc(d webhook.Delivery) deliveryDoc {
	return deliveryDoc{ID: d.ID, Endpoint: d.Endpoint, RoomID: d.RoomID, Seq: d.Seq, EventID: d.EventID, Type: d.Type, State: d.State,
		CreatedAt: d.CreatedAt, Due: d.Due, Attempts: d.Attempts, FailingSince: d.FailingSince, Status: d.Status,
		LatencyMS: d.LatencyMS, LastError: d.LastError, At: d.At, DeliveredAt: d.DeliveredAt}
}

func (d deliveryDoc) delivery() webhook.Delivery {
	return webhook.Delivery{ID: d.ID, Endpoint: d.Endpoint, RoomID: d.RoomID, Seq: d.Seq, EventID: d.EventID, Type: d.Type, State: d.State,
		CreatedAt: utc(d.CreatedAt), Due: utc(d.Due), Attempts: d.Attempts, FailingSince: utc(d.FailingSince), Status: d.Status,
		LatencyMS: d.LatencyMS, LastError: d.LastError, At: utc(d.At), DeliveredAt: utc(d.DeliveredAt)}
}

// ensureWebhookIndexes creates the indexes of the sender's walk, the
// delivery log and the sweep.
func (s *Store) ensureWebhookIndexes(ctx context.Context) error {
	_, err := s.db.Collection(colWebhookDeliveries).Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "endpoint", Value: 1}, {Key: "state", Value: 1}, {Key: "room_id", Value: 1}, {Key: "seq", Value: 1}}},
		{Keys: bson.D{{Key: "endpoint", Value: 1}, {Key: "at", Value: -1}}},
		{Keys: bson.D{{Key: "state", Value: 1}, {Key: "delivered_at", Value: 1}}},
	})
	if err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", colWebhookDeliveries, err))
	}
	return nil
}

// CreateEndpoint implements webhook.Store.
func (s *Store) CreateEndpoint(ctx context.Context, e webhook.Endpoint) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colWebhooks).InsertOne(ctx, toWebhookDoc(e, 1))
	if duplicate(err) {
		return dealroom.Errorf(dealroom.ECONFLICT, "webhook endpoint %s exists", e.ID)
	}
	return s.fail(ctx, err)
}

func (s *Store) endpointDoc(ctx context.Context, id string) (webhookDoc, error) {
	var d webhookDoc
	err := s.db.Collection(colWebhooks).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, dealroom.NotFound("webhook endpoint", id)
	}
	return d, s.fail(ctx, err)
}

// Endpoint implements webhook.Store.
func (s *Store) Endpoint(ctx context.Context, id string) (webhook.Endpoint, error) {
	if err := s.begin(); err != nil {
		return webhook.Endpoint{}, err
	}
	d, err := s.endpointDoc(ctx, id)
	if err != nil {
		return webhook.Endpoint{}, err
	}
	return d.endpoint(), nil
}

// Endpoints implements webhook.Store.
func (s *Store) Endpoints(ctx context.Context) ([]webhook.Endpoint, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	docs, err := findAll[webhookDoc](ctx, s.db.Collection(colWebhooks), bson.D{},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]webhook.Endpoint, len(docs))
	for i, d := range docs {
		out[i] = d.endpoint()
	}
	return out, nil
}

// UpdateEndpoint implements webhook.Store: a replace that matches only
// the version read, tried again when another write came between.
func (s *Store) UpdateEndpoint(ctx context.Context, id string, fn func(*webhook.Endpoint) error) (webhook.Endpoint, error) {
	if err := s.begin(); err != nil {
		return webhook.Endpoint{}, err
	}
	for {
		d, err := s.endpointDoc(ctx, id)
		if err != nil {
			return webhook.Endpoint{}, err
		}
		e := d.endpoint()
		if err := fn(&e); err != nil {
			return webhook.Endpoint{}, err
		}
		e.ID = id
		res, err := s.db.Collection(colWebhooks).ReplaceOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "version", Value: d.Version}}, toWebhookDoc(e, d.Version+1))
		if err != nil {
			return webhook.Endpoint{}, s.fail(ctx, err)
		}
		if res.MatchedCount == 1 {
			return e, nil
		}
		if err := ctx.Err(); err != nil {
			return webhook.Endpoint{}, dealroom.Unavailable(err)
		}
	}
}

// DeleteEndpoint implements webhook.Store: the endpoint, then its
// deliveries (what a crash between leaves, no walk reads, and
// SweepDeliveries removes).
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	if err := s.begin(); err != nil {
		return err
	}
	res, err := s.db.Collection(colWebhooks).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return s.fail(ctx, err)
	}
	if res.DeletedCount == 0 {
		return dealroom.NotFound("webhook endpoint", id)
	}
	_, err = s.db.Collection(colWebhookDeliveries).DeleteMany(ctx, bson.D{{Key: "endpoint", Value: id}})
	return s.fail(ctx, err)
}

// AddDeliveries implements webhook.Store: one unordered insert, whose
// duplicate keys are the deliveries already there, then a read of the
// endpoints. DeleteEndpoint removes the endpoint before its deliveries,
// so an endpoint deleted before that read has its deliveries removed
// here, and one deleted after it by DeleteEndpoint's own removal.
func (s *Store) AddDeliveries(ctx context.Context, ds []webhook.Delivery) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	if len(ds) == 0 {
		return 0, nil
	}
	docs := make([]any, len(ds))
	var endpoints []string
	for i, d := range ds {
		docs[i] = toDeliveryDoc(d)
		if !slices.Contains(endpoints, d.Endpoint) {
			endpoints = append(endpoints, d.Endpoint)
		}
	}
	added, err := s.insertAbsent(ctx, colWebhookDeliveries, docs)
	if err != nil {
		return added, err
	}
	gone, err := s.goneEndpoints(ctx, endpoints)
	if err != nil || len(gone) == 0 {
		return added, err
	}
	res, err := s.db.Collection(colWebhookDeliveries).DeleteMany(ctx, bson.D{{Key: "endpoint", Value: bson.D{{Key: "$in", Value: gone}}}})
	if err != nil {
		return added, s.fail(ctx, err)
	}
	return max(0, added-int(res.DeletedCount)), nil
}

// goneEndpoints returns those of the endpoints ids that do not exist.
func (s *Store) goneEndpoints(ctx context.Context, ids []string) ([]string, error) {
	there, err := findAll[webhookDoc](ctx, s.db.Collection(colWebhooks), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return slices.DeleteFunc(ids, func(id string) bool {
		return slices.ContainsFunc(there, func(d webhookDoc) bool { return d.ID == id })
	}), nil
}

// SaveDelivery implements webhook.Store.
func (s *Store) SaveDelivery(ctx context.Context, d webhook.Delivery) error {
	if err := s.begin(); err != nil {
		return err
	}
	res, err := s.db.Collection(colWebhookDeliveries).ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, toDeliveryDoc(d))
	if err != nil {
		return s.fail(ctx, err)
	}
	if res.MatchedCount == 0 {
		return dealroom.NotFound("webhook delivery", d.ID)
	}
	return nil
}

// PendingDeliveries implements webhook.Store.
func (s *Store) PendingDeliveries(ctx context.Context, endpoint, afterRoom string, afterSeq int64, limit int) ([]webhook.Delivery, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "endpoint", Value: endpoint}, {Key: "state", Value: webhook.Pending},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "room_id", Value: bson.D{{Key: "$gt", Value: afterRoom}}}},
			bson.D{{Key: "room_id", Value: afterRoom}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: afterSeq}}}},
		}}}
	docs, err := findAll[deliveryDoc](ctx, s.db.Collection(colWebhookDeliveries), filter,
		options.Find().SetSort(bson.D{{Key: "room_id", Value: 1}, {Key: "seq", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return deliveriesOf(docs), nil
}

func deliveriesOf(docs []deliveryDoc) []webhook.Delivery {
	out := make([]webhook.Delivery, len(docs))
	for i, d := range docs {
		out[i] = d.delivery()
	}
	return out
}

// Deliveries implements webhook.Store.
func (s *Store) Deliveries(ctx context.Context, endpoint string, limit int) ([]webhook.Delivery, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	docs, err := findAll[deliveryDoc](ctx, s.db.Collection(colWebhookDeliveries), bson.D{{Key: "endpoint", Value: endpoint}},
		options.Find().SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return deliveriesOf(docs), nil
}

// SweepDeliveries implements webhook.Store.
func (s *Store) SweepDeliveries(ctx context.Context, before time.Time) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	res, err := s.db.Collection(colWebhookDeliveries).DeleteMany(ctx, bson.D{{Key: "state", Value: webhook.Delivered},
		{Key: "delivered_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	swept := int(res.DeletedCount)
	// What a DeleteEndpoint that stopped between its two writes left.
	eps, err := findAll[webhookDoc](ctx, s.db.Collection(colWebhooks), bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return swept, s.fail(ctx, err)
	}
	ids := make([]string, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	res, err = s.db.Collection(colWebhookDeliveries).DeleteMany(ctx, bson.D{{Key: "endpoint", Value: bson.D{{Key: "$nin", Value: ids}}}})
	if err != nil {
		return swept, s.fail(ctx, err)
	}
	return swept + int(res.DeletedCount), nil
}
