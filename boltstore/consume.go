package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/consume"
)

// The event log's consumers (package consume). These buckets are created
// by the first write to them, not by prepare: a file from before them
// needs nothing, and reads treat a missing bucket as empty.
var (
	bLeases  = []byte("leases")  // name → leaseRecord
	bCursors = []byte("cursors") // consumer 0 room → seq (8 bytes)
)

var _ consume.Store = (*Store)(nil)

// leaseRecord is a lease as the file keeps it.
type leaseRecord struct {
	Holder string    `json:"holder"`
	Epoch  int64     `json:"epoch"`
	Until  time.Time `json:"until"`
}

// writeAside runs fn in a write transaction of its own, beside the room
// writer (these records have no events), with the bucket b made if
// missing.
func (s *Store) writeAside(ctx context.Context, b []byte, fn func(b *bolt.Bucket) error) error {
	return s.writeSessions(ctx, func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(b)
		if err != nil {
			return err
		}
		return fn(bk)
	})
}

// AcquireLease implements consume.Store. bbolt has one writer at a time,
// so the read and the write in one transaction are atomic.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (consume.Lease, bool, error) {
	var l leaseRecord
	held := false
	err := s.writeAside(ctx, bLeases, func(b *bolt.Bucket) error {
		old, err := getJSON[leaseRecord](b, []byte(name))
		if err != nil {
			return err
		}
		if old != nil {
			l = *old
		}
		switch {
		case old == nil || !now.Before(old.Until):
			if old == nil || old.Holder != holder {
				l.Epoch++
			}
		case old.Holder != holder:
			return nil
		}
		l.Holder, l.Until, held = holder, now.Add(ttl), true
		return putJSON(b, []byte(name), l)
	})
	if err != nil {
		return consume.Lease{}, false, err
	}
	return consume.Lease{Name: name, Holder: l.Holder, Epoch: l.Epoch, Until: l.Until}, held, nil
}

// ReleaseLease implements consume.Store: the lease ends now, its epoch
// stays.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	return s.writeAside(ctx, bLeases, func(b *bolt.Bucket) error {
		old, err := getJSON[leaseRecord](b, []byte(name))
		if err != nil || old == nil || old.Holder != holder {
			return err
		}
		old.Holder, old.Until = "", time.Time{}
		return putJSON(b, []byte(name), old)
	})
}

// Cursors implements consume.Store.
func (s *Store) Cursors(ctx context.Context, consumer string, rooms []string) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCursors)
		if b == nil {
			return nil
		}
		for _, r := range rooms {
			if v := b.Get(key(consumer, r)); len(v) == 8 {
				out[r] = int64(binary.BigEndian.Uint64(v))
			}
		}
		return nil
	})
	return out, err
}

// Advance implements consume.Store, in one transaction.
func (s *Store) Advance(ctx context.Context, consumer string, seqs map[string]int64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.writeAside(ctx, bCursors, func(b *bolt.Bucket) error {
		for roomID, seq := range seqs {
			k := key(consumer, roomID)
			if v := b.Get(k); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= seq {
				continue
			}
			if err := b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(seq))); err != nil {
				return err
			}
		}
		return nil
	})
}

// Heads implements consume.Store from the rooms bucket, whose records
// carry their heads (moved in the transaction that appends the event).
func (s *Store) Heads(ctx context.Context, after string, limit int) ([]consume.Head, error) {
	var out []consume.Head
	err := s.read(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRooms).Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && bytes.Equal(k, []byte(after)) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return dealroom.Unavailable(err)
			}
			var h struct {
				Head int64 `json:"head"`
			}
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			out = append(out, consume.Head{Room: string(k), Seq: h.Head})
		}
		return nil
	})
	return out, err
}
