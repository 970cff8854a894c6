package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/outbox"
)

// The outbox (package outbox): records by id, and the pending ones by
// when they are due. Made by the first write to them, like the consumers'
// buckets.
var (
	bOutbox    = []byte("outbox")     // id → outboxRecord
	bOutboxDue = []byte("outbox_due") // due (unix ns, 8 bytes) id → "": the pending records
)

var _ outbox.Store = (*Store)(nil)

// outboxRecord is a record as the file keeps it. The conversions stop the
// build when outbox.Record gains a field this lacks.
type outboxRecord struct {
	ID        string          `json:"id"`
	Channel   string          `json:"channel"`
	Recipient string          `json:"recipient"`
	RoomID    string          `json:"room_id"`
	EventID   string          `json:"event_id"`
	Seq       int64           `json:"seq,omitempty"`
	Batch     string          `json:"batch,omitempty"`
	Payload   json.RawMessage `json:"payload"`
	State     string          `json:"state"`
	CreatedAt time.Time       `json:"created_at"`
	Due       time.Time       `json:"due"`
	Attempts  int             `json:"attempts,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	SettledAt time.Time       `json:"settled_at,omitzero"`
}

func dueKey(due time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(due.UnixNano())), id...)
}

// writeOutbox runs fn in a write transaction with both outbox buckets.
func (s *Store) writeOutbox(ctx context.Context, fn func(recs, due *bolt.Bucket) error) error {
	return s.writeAside(ctx, bOutbox, func(recs *bolt.Bucket) error {
		due, err := recs.Tx().CreateBucketIfNotExists(bOutboxDue)
		if err != nil {
			return err
		}
		return fn(recs, due)
	})
}

// AddOutbox implements outbox.Store.
func (s *Store) AddOutbox(ctx context.Context, recs []outbox.Record) (int, error) {
	added := 0
	err := s.writeOutbox(ctx, func(b, due *bolt.Bucket) error {
		added = 0
		for _, r := range recs {
			if b.Get([]byte(r.ID)) != nil {
				continue
			}
			if err := putJSON(b, []byte(r.ID), outboxRecord(r)); err != nil {
				return err
			}
			if r.State == outbox.Pending {
				if err := due.Put(dueKey(r.Due, r.ID), nil); err != nil {
					return err
				}
			}
			added++
		}
		return nil
	})
	return added, err
}

// DueOutbox implements outbox.Store.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]outbox.Record, error) {
	var out []outbox.Record
	err := s.read(func(tx *bolt.Tx) error {
		due, recs := tx.Bucket(bOutboxDue), tx.Bucket(bOutbox)
		if due == nil || recs == nil {
			return nil
		}
		end := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())+1)
		c := due.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0 && len(out) < limit; k, _ = c.Next() {
			r, err := getJSON[outboxRecord](recs, k[8:])
			if err != nil {
				return err
			}
			if r != nil && r.State == outbox.Pending {
				out = append(out, outbox.Record(*r))
			}
		}
		return nil
	})
	return out, err
}

// SettleOutbox implements outbox.Store.
func (s *Store) SettleOutbox(ctx context.Context, rs ...outbox.Record) error {
	return s.writeOutbox(ctx, func(b, due *bolt.Bucket) error {
		for _, r := range rs {
			if err := settleOutbox(b, due, r); err != nil {
				return err // the transaction, and what it wrote, is dropped
			}
		}
		return nil
	})
}

// settleOutbox writes the outcome of an attempt at one record.
func settleOutbox(b, due *bolt.Bucket, r outbox.Record) error {
	old, err := getJSON[outboxRecord](b, []byte(r.ID))
	if err != nil {
		return err
	}
	if old == nil {
		return dealroom.NotFound("outbox record", r.ID)
	}
	if old.State != outbox.Pending {
		return nil
	}
	if err := due.Delete(dueKey(old.Due, old.ID)); err != nil {
		return err
	}
	old.State, old.Due, old.Attempts, old.LastError, old.SettledAt = r.State, r.Due, r.Attempts, r.LastError, r.SettledAt
	old.Batch = r.Batch
	if old.State == outbox.Pending {
		if err := due.Put(dueKey(old.Due, old.ID), nil); err != nil {
			return err
		}
	}
	return putJSON(b, []byte(r.ID), old)
}

// SweepOutbox implements outbox.Store: it removes the records settled
// (sent, skipped or given up) before before.
func (s *Store) SweepOutbox(ctx context.Context, before time.Time) (int, error) {
	return s.sweep(ctx, bOutbox, func(_, v []byte) (bool, error) {
		var r outboxRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return false, err
		}
		return r.State != outbox.Pending && r.SettledAt.Before(before), nil
	}, nil)
}
