package boltstore

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/session"
)

// bTickets holds the one-time tickets (session.Ticket): ticket id →
// ticketRecord. bbolt has one writer at a time, so a read and a write in
// one transaction make adding and taking atomic.
var bTickets = []byte("tickets")

// ticketRecord is a ticket as the file keeps it. The conversions stop the
// build when session.Ticket gains a field this lacks.
type ticketRecord struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (r ticketRecord) ticket() session.Ticket { return session.Ticket(r) }

// AddTicket implements session.Tickets.
func (s *Store) AddTicket(ctx context.Context, t session.Ticket) (bool, error) {
	added := false
	err := s.writeSessions(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bTickets)
		old, err := getJSON[ticketRecord](b, []byte(t.ID))
		if err != nil {
			return err
		}
		if added = old == nil || old.ticket().Expired(t.CreatedAt); !added {
			return nil
		}
		return putJSON(b, []byte(t.ID), ticketRecord(t))
	})
	if err != nil {
		return false, err
	}
	return added, nil
}

// TakeTicket implements session.Tickets.
func (s *Store) TakeTicket(ctx context.Context, id string, now time.Time) (session.Ticket, error) {
	var got *ticketRecord
	err := s.writeSessions(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bTickets)
		var err error
		if got, err = getJSON[ticketRecord](b, []byte(id)); err != nil || got == nil {
			return err
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return session.Ticket{}, err
	}
	if got == nil || got.ticket().Expired(now) {
		return session.Ticket{}, dealroom.NotFound("ticket", "")
	}
	return got.ticket(), nil
}

// SweepTickets implements session.Tickets.
func (s *Store) SweepTickets(ctx context.Context, now time.Time) (int, error) {
	return s.sweep(ctx, bTickets, func(_, v []byte) (bool, error) {
		var r ticketRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return false, err
		}
		return r.ticket().Expired(now), nil
	}, nil)
}
