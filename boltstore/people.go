package boltstore

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom/notify"
)

// bPeople holds what notifications know of each user (notify.Person):
// user → personRecord. Made by the first write, like the consumers'
// buckets.
var bPeople = []byte("people")

var _ notify.People = (*Store)(nil)

// personRecord is a person as the file keeps it. The conversions stop the
// build when notify.Person gains a field this lacks.
type personRecord struct {
	User         string    `json:"user"`
	Email        string    `json:"email,omitempty"`
	EmailOff     bool      `json:"email_off,omitempty"`
	RoomsOff     []string  `json:"rooms_off,omitempty"`
	Digest       string    `json:"digest,omitempty"`
	RemindersOff bool      `json:"reminders_off,omitempty"`
	TimeZone     string    `json:"time_zone,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Person implements notify.People.
func (s *Store) Person(ctx context.Context, user string) (*notify.Person, error) {
	var p *notify.Person
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPeople)
		if b == nil {
			return nil
		}
		r, err := getJSON[personRecord](b, []byte(user))
		if r != nil {
			np := notify.Person(*r)
			p = &np
		}
		return err
	})
	return p, err
}

// updatePerson changes the user's record, made when missing, in one
// transaction.
func (s *Store) updatePerson(ctx context.Context, user string, at time.Time, fn func(r *personRecord)) error {
	return s.writeAside(ctx, bPeople, func(b *bolt.Bucket) error {
		r, err := getJSON[personRecord](b, []byte(user))
		if err != nil {
			return err
		}
		if r == nil {
			r = &personRecord{User: user}
		}
		fn(r)
		r.UpdatedAt = at
		return putJSON(b, []byte(user), r)
	})
}

// SetAddress implements notify.People.
func (s *Store) SetAddress(ctx context.Context, user, email string, at time.Time) error {
	return s.updatePerson(ctx, user, at, func(r *personRecord) { r.Email = email })
}

// SetEmail implements notify.People.
func (s *Store) SetEmail(ctx context.Context, user, roomID string, off bool, at time.Time) error {
	return s.updatePerson(ctx, user, at, func(r *personRecord) {
		switch {
		case roomID == "":
			r.EmailOff = off
		case off && !slices.Contains(r.RoomsOff, roomID):
			r.RoomsOff = append(r.RoomsOff, roomID)
		case !off:
			r.RoomsOff = slices.DeleteFunc(r.RoomsOff, func(id string) bool { return id == roomID })
		}
	})
}

// SetDigest implements notify.People.
func (s *Store) SetDigest(ctx context.Context, user, digest string, at time.Time) error {
	return s.updatePerson(ctx, user, at, func(r *personRecord) { r.Digest = digest })
}

// SetReminders implements notify.People.
func (s *Store) SetReminders(ctx context.Context, user string, off bool, at time.Time) error {
	return s.updatePerson(ctx, user, at, func(r *personRecord) { r.RemindersOff = off })
}

// SetTimeZone implements notify.People.
func (s *Store) SetTimeZone(ctx context.Context, user, zone string, at time.Time) error {
	return s.updatePerson(ctx, user, at, func(r *personRecord) { r.TimeZone = zone })
}

// PeopleAfter implements notify.People.
func (s *Store) PeopleAfter(ctx context.Context, after string, limit int) ([]notify.Person, error) {
	var out []notify.Person
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPeople)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var r personRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, notify.Person(r))
		}
		return nil
	})
	return out, err
}
