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

// colTickets holds the one-time tickets (session.Ticket), keyed by their
// id. Every instance shares them: a ticket is added and taken by single
// document operations, which the server runs one at a time per document.
const colTickets = "tickets"

// ticketDoc is a ticket as the collection keeps it. The conversions stop
// the build when session.Ticket gains a field this lacks.
type ticketDoc struct {
	ID        string    `bson:"_id"`
	Subject   string    `bson:"subject,omitempty"`
	CreatedAt time.Time `bson:"created_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// ensureTicketIndexes creates the TTL index that has the server remove a
// ticket once expired (the stores refuse expired tickets before that; the
// index only keeps the collection small).
func (s *Store) ensureTicketIndexes(ctx context.Context) error {
	_, err := s.db.Collection(colTickets).Indexes().CreateOne(ctx,
		mongo.IndexModel{Keys: bson.D{{Key: "expires_at", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(0)})
	if err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", colTickets, err))
	}
	return nil
}

// AddTicket implements session.Tickets: one upsert that replaces only an
// expired ticket of the id. When an unexpired one is held the filter
// matches nothing, the upsert tries to insert a second document of the
// same _id, and the server refuses it (duplicate key): not added.
func (s *Store) AddTicket(ctx context.Context, t session.Ticket) (bool, error) {
	if err := s.begin(); err != nil {
		return false, err
	}
	_, err := s.db.Collection(colTickets).ReplaceOne(ctx,
		bson.M{"_id": t.ID, "expires_at": bson.M{"$lte": t.CreatedAt}}, ticketDoc(t), options.Replace().SetUpsert(true))
	if duplicate(err) {
		return false, nil
	}
	if err != nil {
		return false, s.fail(ctx, err)
	}
	return true, nil
}

// TakeTicket implements session.Tickets: one find-and-delete, so that of
// two takes exactly one gets the ticket.
func (s *Store) TakeTicket(ctx context.Context, id string, now time.Time) (session.Ticket, error) {
	if err := s.begin(); err != nil {
		return session.Ticket{}, err
	}
	var d ticketDoc
	err := s.db.Collection(colTickets).FindOneAndDelete(ctx, bson.M{"_id": id}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return session.Ticket{}, dealroom.NotFound("ticket", "")
	}
	if err != nil {
		return session.Ticket{}, s.fail(ctx, err)
	}
	t := session.Ticket(d)
	if t.Expired(now) {
		return session.Ticket{}, dealroom.NotFound("ticket", "")
	}
	return t, nil
}

// SweepTickets implements session.Tickets. The TTL index removes expired
// tickets on its own, within a minute or so; this is for a server whose
// TTL monitor is off or late.
func (s *Store) SweepTickets(ctx context.Context, now time.Time) (int, error) {
	if err := s.begin(); err != nil {
		return 0, err
	}
	res, err := s.db.Collection(colTickets).DeleteMany(ctx, bson.M{"expires_at": bson.M{"$lte": now}})
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	return int(res.DeletedCount), nil
}
