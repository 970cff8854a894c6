package boltstore

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom/notify"
)

// bReplyKeys holds the keys of reply addresses (notify.ReplyKeys): key →
// replyKeyRecord. Made by the first write, like the consumers' buckets.
var bReplyKeys = []byte("reply_keys")

var _ notify.ReplyKeys = (*Store)(nil)

// replyKeyRecord is a reply key as the file keeps it. The conversions
// stop the build when notify.ReplyKey gains a field this lacks.
type replyKeyRecord struct {
	Key       string    `json:"key"`
	User      string    `json:"user"`
	Room      string    `json:"room"`
	Thread    string    `json:"thread"`
	CreatedAt time.Time `json:"created_at"`
}

// AddReplyKey implements notify.ReplyKeys. Most keys are recorded already
// (every notification about a thread makes its address again), so a read
// comes first and a write transaction only for a new key; bbolt has one
// writer at a time, so its read and write are atomic.
func (s *Store) AddReplyKey(ctx context.Context, k notify.ReplyKey) error {
	kept, err := s.ReplyKey(ctx, k.Key)
	if err != nil || kept != nil {
		return err
	}
	return s.writeAside(ctx, bReplyKeys, func(b *bolt.Bucket) error {
		if b.Get([]byte(k.Key)) != nil {
			return nil
		}
		return putJSON(b, []byte(k.Key), replyKeyRecord(k))
	})
}

// ReplyKey implements notify.ReplyKeys.
func (s *Store) ReplyKey(ctx context.Context, key string) (*notify.ReplyKey, error) {
	var k *notify.ReplyKey
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bReplyKeys)
		if b == nil {
			return nil
		}
		r, err := getJSON[replyKeyRecord](b, []byte(key))
		if r != nil {
			nk := notify.ReplyKey(*r)
			k = &nk
		}
		return err
	})
	return k, err
}
