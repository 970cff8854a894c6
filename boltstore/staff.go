package boltstore

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/staff"
)

// Buckets of package staff, made by the first write: service accounts
// (account id → record), the index of their keys (key hash → account
// id), and staff people (email → record).
var (
	bServiceAccounts = []byte("service_accounts")
	bServiceKeys     = []byte("service_keys")
	bStaffPeople     = []byte("staff_people")
)

var _ staff.Store = (*Store)(nil)

// accountRecord is an account as the file keeps it (KeyHash has no JSON
// name in staff.Account). The conversions stop the build when
// staff.Account gains a field this lacks.
type accountRecord struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Scopes     []staff.Scope `json:"scopes"`
	KeyStart   string        `json:"key_start"`
	KeyHash    string        `json:"key_hash"`
	CreatedBy  string        `json:"created_by"`
	CreatedAt  time.Time     `json:"created_at"`
	LastUsedAt *time.Time    `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time    `json:"revoked_at,omitempty"`
}

// writeStaff runs fn in a write transaction of its own with the staff
// buckets made.
func (s *Store) writeStaff(ctx context.Context, fn func(accounts, keys, people *bolt.Bucket) error) error {
	return s.writeSessions(ctx, func(tx *bolt.Tx) error {
		var bs [3]*bolt.Bucket
		for i, name := range [][]byte{bServiceAccounts, bServiceKeys, bStaffPeople} {
			b, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			bs[i] = b
		}
		return fn(bs[0], bs[1], bs[2])
	})
}

// CreateAccount implements staff.Store.
func (s *Store) CreateAccount(ctx context.Context, a staff.Account) error {
	return s.writeStaff(ctx, func(accounts, keys, _ *bolt.Bucket) error {
		if accounts.Get([]byte(a.ID)) != nil || keys.Get([]byte(a.KeyHash)) != nil {
			return dealroom.Errorf(dealroom.ECONFLICT, "service account %s exists already", a.ID)
		}
		if err := keys.Put([]byte(a.KeyHash), []byte(a.ID)); err != nil {
			return err
		}
		return putJSON(accounts, []byte(a.ID), accountRecord(a))
	})
}

// AccountByKey implements staff.Store.
func (s *Store) AccountByKey(ctx context.Context, hash string) (*staff.Account, error) {
	var out *staff.Account
	err := s.read(func(tx *bolt.Tx) error {
		keys, accounts := tx.Bucket(bServiceKeys), tx.Bucket(bServiceAccounts)
		if keys == nil || accounts == nil {
			return nil
		}
		id := keys.Get([]byte(hash))
		if id == nil {
			return nil
		}
		r, err := getJSON[accountRecord](accounts, id)
		if r != nil {
			a := staff.Account(*r)
			out = &a
		}
		return err
	})
	return out, err
}

// Accounts implements staff.Store.
func (s *Store) Accounts(ctx context.Context) ([]staff.Account, error) {
	var out []staff.Account
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bServiceAccounts)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var r accountRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, staff.Account(r))
			return nil
		})
	})
	return out, err
}

// updateAccount changes a stored account; found tells whether there was
// one.
func (s *Store) updateAccount(ctx context.Context, id string, fn func(r *accountRecord)) (r *accountRecord, err error) {
	err = s.writeStaff(ctx, func(accounts, _, _ *bolt.Bucket) error {
		if r, err = getJSON[accountRecord](accounts, []byte(id)); err != nil || r == nil {
			return err
		}
		fn(r)
		return putJSON(accounts, []byte(id), r)
	})
	return r, err
}

// RevokeAccount implements staff.Store.
func (s *Store) RevokeAccount(ctx context.Context, id string, at time.Time) (*staff.Account, error) {
	r, err := s.updateAccount(ctx, id, func(r *accountRecord) {
		if r.RevokedAt == nil {
			r.RevokedAt = &at
		}
	})
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, dealroom.NotFound("service account", id)
	}
	a := staff.Account(*r)
	return &a, nil
}

// TouchAccount implements staff.Store.
func (s *Store) TouchAccount(ctx context.Context, id string, at time.Time) error {
	_, err := s.updateAccount(ctx, id, func(r *accountRecord) {
		if r.LastUsedAt == nil || at.After(*r.LastUsedAt) {
			r.LastUsedAt = &at
		}
	})
	return err
}

// SetPerson implements staff.Store.
func (s *Store) SetPerson(ctx context.Context, p staff.Person) error {
	return s.writeStaff(ctx, func(_, _, people *bolt.Bucket) error {
		return putJSON(people, []byte(p.Email), p)
	})
}

// PersonByEmail implements staff.Store.
func (s *Store) PersonByEmail(ctx context.Context, email string) (*staff.Person, error) {
	var out *staff.Person
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bStaffPeople)
		if b == nil {
			return nil
		}
		var err error
		out, err = getJSON[staff.Person](b, []byte(email))
		return err
	})
	return out, err
}
