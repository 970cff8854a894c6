package boltstore

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/push"
)

// bPush holds the devices' push subscriptions and the VAPID keys:
//
//	"s" + id           → pushRecord
//	"u" + user 0x00 id → nothing (a person's subscriptions)
//	"vapid"            → the key pair
//
// Made by the first write, like the consumers' buckets.
var bPush = []byte("push")

var _ push.Store = (*Store)(nil)

// pushRecord is a subscription as the file keeps it. The conversions
// stop the build when push.Subscription gains a field this lacks.
type pushRecord struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Endpoint  string    `json:"endpoint"`
	P256dh    string    `json:"p256dh"`
	Auth      string    `json:"auth"`
	CreatedAt time.Time `json:"created_at"`
}

type vapidRecord struct {
	Private string `json:"private"`
	Public  string `json:"public"`
}

func pushSubKey(id string) []byte        { return []byte("s" + id) }
func pushUserKey(user, id string) []byte { return []byte("u" + user + "\x00" + id) }

// AddPushSubscription implements push.Store.
func (s *Store) AddPushSubscription(ctx context.Context, sub push.Subscription) error {
	return s.writeAside(ctx, bPush, func(b *bolt.Bucket) error {
		old, err := getJSON[pushRecord](b, pushSubKey(sub.ID))
		if err != nil {
			return err
		}
		if old != nil && old.User != sub.User {
			if err := b.Delete(pushUserKey(old.User, old.ID)); err != nil {
				return err
			}
		}
		if err := putJSON(b, pushSubKey(sub.ID), pushRecord(sub)); err != nil {
			return err
		}
		return b.Put(pushUserKey(sub.User, sub.ID), []byte{})
	})
}

// PushSubscriptions implements push.Store.
func (s *Store) PushSubscriptions(ctx context.Context, user string) ([]push.Subscription, error) {
	var out []push.Subscription
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPush)
		if b == nil {
			return nil
		}
		prefix := pushUserKey(user, "")
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			r, err := getJSON[pushRecord](b, pushSubKey(string(k[len(prefix):])))
			if err != nil {
				return err
			}
			if r != nil {
				out = append(out, push.Subscription(*r))
			}
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b push.Subscription) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// RemovePushSubscription implements push.Store.
func (s *Store) RemovePushSubscription(ctx context.Context, user, id string) error {
	return s.writeAside(ctx, bPush, func(b *bolt.Bucket) error {
		r, err := getJSON[pushRecord](b, pushSubKey(id))
		if err != nil {
			return err
		}
		if r == nil || r.User != user {
			return dealroom.NotFound("push subscription", id)
		}
		if err := b.Delete(pushSubKey(id)); err != nil {
			return err
		}
		return b.Delete(pushUserKey(user, id))
	})
}

// VAPIDKeys implements push.Store. bbolt has one writer at a time, so the
// read and the write in one transaction keep the first pair.
func (s *Store) VAPIDKeys(ctx context.Context, fresh push.Keys) (push.Keys, error) {
	var k push.Keys
	err := s.writeAside(ctx, bPush, func(b *bolt.Bucket) error {
		old, err := getJSON[vapidRecord](b, []byte("vapid"))
		if err != nil {
			return err
		}
		if old != nil {
			k = push.Keys(*old)
			return nil
		}
		k = fresh
		return putJSON(b, []byte("vapid"), vapidRecord(fresh))
	})
	return k, err
}
