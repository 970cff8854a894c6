package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"dealroom/notify"
)

// colPeople holds what notifications know of each user (notify.Person),
// keyed by the user's id; every change is one upsert of one document.
const colPeople = "people"

var _ notify.People = (*Store)(nil)

// personDoc is a person as the collection keeps it. The conversions stop
// the build when notify.Person gains a field this lacks.
type personDoc struct {
	User         string    `bson:"_id"`
	Email        string    `bson:"email"`
	EmailOff     bool      `bson:"email_off"`
	RoomsOff     []string  `bson:"rooms_off"`
	Digest       string    `bson:"digest,omitempty"`
	RemindersOff bool      `bson:"reminders_off,omitempty"`
	TimeZone     string    `bson:"time_zone,omitempty"`
	UpdatedAt    time.Time `bson:"updated_at"`
}

// Person implements notify.People.
func (s *Store) Person(ctx context.Context, user string) (*notify.Person, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	var d personDoc
	err := s.db.Collection(colPeople).FindOne(ctx, bson.D{{Key: "_id", Value: user}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if len(d.RoomsOff) == 0 {
		d.RoomsOff = nil
	}
	p := notify.Person(d)
	return &p, nil
}

func (s *Store) updatePerson(ctx context.Context, user string, update bson.D) error {
	if err := s.begin(); err != nil {
		return err
	}
	_, err := s.db.Collection(colPeople).UpdateOne(ctx, bson.D{{Key: "_id", Value: user}}, update, options.Update().SetUpsert(true))
	return s.fail(ctx, err)
}

// SetAddress implements notify.People.
func (s *Store) SetAddress(ctx context.Context, user, email string, at time.Time) error {
	return s.updatePerson(ctx, user, bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: email}, {Key: "updated_at", Value: at}}}})
}

// SetEmail implements notify.People.
func (s *Store) SetEmail(ctx context.Context, user, roomID string, off bool, at time.Time) error {
	set := bson.D{{Key: "updated_at", Value: at}}
	if roomID == "" {
		set = append(set, bson.E{Key: "email_off", Value: off})
		return s.updatePerson(ctx, user, bson.D{{Key: "$set", Value: set}})
	}
	op := "$pull"
	if off {
		op = "$addToSet"
	}
	return s.updatePerson(ctx, user, bson.D{{Key: "$set", Value: set}, {Key: op, Value: bson.D{{Key: "rooms_off", Value: roomID}}}})
}

// SetDigest implements notify.People.
func (s *Store) SetDigest(ctx context.Context, user, digest string, at time.Time) error {
	return s.updatePerson(ctx, user, bson.D{{Key: "$set", Value: bson.D{{Key: "digest", Value: digest}, {Key: "updated_at", Value: at}}}})
}

// SetReminders implements notify.People.
func (s *Store) SetReminders(ctx context.Context, user string, off bool, at time.Time) error {
	return s.updatePerson(ctx, user, bson.D{{Key: "$set", Value: bson.D{{Key: "reminders_off", Value: off}, {Key: "updated_at", Value: at}}}})
}

// SetTimeZone implements notify.People.
func (s *Store) SetTimeZone(ctx context.Context, user, zone string, at time.Time) error {
	return s.updatePerson(ctx, user, bson.D{{Key: "$set", Value: bson.D{{Key: "time_zone", Value: zone}, {Key: "updated_at", Value: at}}}})
}

// PeopleAfter implements notify.People: one query by _id.
func (s *Store) PeopleAfter(ctx context.Context, after string, limit int) ([]notify.Person, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	docs, err := findAll[personDoc](ctx, s.db.Collection(colPeople), bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]notify.Person, len(docs))
	for i, d := range docs {
		if len(d.RoomsOff) == 0 {
			d.RoomsOff = nil
		}
		out[i] = notify.Person(d)
	}
	return out, nil
}
