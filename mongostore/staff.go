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
	"dealroom/staff"
)

// Collections of package staff: service_accounts ({_id: account id,
// key_hash, ...}, with a unique index on key_hash, the look-up of every
// request with an API key) and staff_people ({_id: email, ...}).
const (
	colServiceAccounts = "service_accounts"
	colStaffPeople     = "staff_people"
)

var _ staff.Store = (*Store)(nil)

// accountDoc is an account as the collection keeps it. The conversions
// stop the build when staff.Account gains a field this lacks.
type accountDoc struct {
	ID         string        `bson:"_id"`
	Name       string        `bson:"name"`
	Scopes     []staff.Scope `bson:"scopes"`
	KeyStart   string        `bson:"key_start"`
	KeyHash    string        `bson:"key_hash"`
	CreatedBy  string        `bson:"created_by"`
	CreatedAt  time.Time     `bson:"created_at"`
	LastUsedAt *time.Time    `bson:"last_used_at"`
	RevokedAt  *time.Time    `bson:"revoked_at"`
}

// staffPersonDoc is a staff person as the collection keeps it.
type staffPersonDoc struct {
	Email  string        `bson:"_id"`
	UserID string        `bson:"user_id"`
	Name   string        `bson:"name"`
	Role   dealroom.Role `bson:"role"`
	SeenAt time.Time     `bson:"seen_at"`
}

func (s *Store) ensureStaffIndexes(ctx context.Context) error {
	_, err := s.db.Collection(colServiceAccounts).Indexes().CreateOne(ctx,
		mongo.IndexModel{Keys: bson.D{{Key: "key_hash", Value: 1}}, Options: options.Index().SetUnique(true)})
	if err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", colServiceAccounts, err))
	}
	return nil
}

// CreateAccount implements staff.Store.
func (s *Store) CreateAccount(ctx context.Context, a staff.Account) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colServiceAccounts).InsertOne(ctx, accountDoc(a))
	if duplicate(err) {
		return dealroom.Errorf(dealroom.ECONFLICT, "service account %s exists already", a.ID)
	}
	return s.fail(ctx, err)
}

// findAccount returns the account the filter matches, nil when none.
func (s *Store) findAccount(ctx context.Context, filter bson.D) (*staff.Account, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	var d accountDoc
	err := s.db.Collection(colServiceAccounts).FindOne(ctx, filter).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	a := staff.Account(d)
	return &a, nil
}

// AccountByKey implements staff.Store.
func (s *Store) AccountByKey(ctx context.Context, hash string) (*staff.Account, error) {
	return s.findAccount(ctx, bson.D{{Key: "key_hash", Value: hash}})
}

// Accounts implements staff.Store.
func (s *Store) Accounts(ctx context.Context) ([]staff.Account, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	docs, err := findAll[accountDoc](ctx, s.db.Collection(colServiceAccounts), bson.D{},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]staff.Account, len(docs))
	for i, d := range docs {
		out[i] = staff.Account(d)
	}
	return out, nil
}

// RevokeAccount implements staff.Store: one conditional update, then the
// account as it is.
func (s *Store) RevokeAccount(ctx context.Context, id string, at time.Time) (*staff.Account, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	_, err := s.db.Collection(colServiceAccounts).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: at}}}})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	a, err := s.findAccount(ctx, bson.D{{Key: "_id", Value: id}})
	if err == nil && a == nil {
		err = dealroom.NotFound("service account", id)
	}
	return a, err
}

// TouchAccount implements staff.Store: $max keeps the later time.
func (s *Store) TouchAccount(ctx context.Context, id string, at time.Time) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colServiceAccounts).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "last_used_at", Value: at}}}})
	return s.fail(ctx, err)
}

// SetPerson implements staff.Store.
func (s *Store) SetPerson(ctx context.Context, p staff.Person) error {
	if err := s.begin(); err != nil {
		return err
	}
	d := staffPersonDoc{Email: p.Email, UserID: p.UserID, Name: p.Name, Role: p.Role, SeenAt: p.SeenAt}
	_, err := s.db.Collection(colStaffPeople).ReplaceOne(ctx, bson.D{{Key: "_id", Value: p.Email}}, d,
		options.Replace().SetUpsert(true))
	return s.fail(ctx, err)
}

// PersonByEmail implements staff.Store.
func (s *Store) PersonByEmail(ctx context.Context, email string) (*staff.Person, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	var d staffPersonDoc
	err := s.db.Collection(colStaffPeople).FindOne(ctx, bson.D{{Key: "_id", Value: email}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &staff.Person{UserID: d.UserID, Name: d.Name, Email: d.Email, Role: d.Role, SeenAt: d.SeenAt}, nil
}
