package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/webhook"
)

// Webhooks (package webhook): endpoints by id; deliveries by (endpoint,
// room, seq), so that an endpoint's walk in (room, seq) order is a cursor
// over its prefix; the pending ones again under the same key in a bucket
// of their own, so that the walk skips the delivered. Made by the first
// write to them.
var (
	bWebhooks        = []byte("webhooks")               // id → webhookEndpoint
	bWebhookLog      = []byte("webhook_deliveries")     // endpoint 0 room 0 seq(8) → webhookDelivery
	bWebhookPending  = []byte("webhook_pending")        // the same keys → "": pending deliveries
	bWebhookDelivery = []byte("webhook_delivery_by_id") // delivery id → its key above
)

var _ webhook.Store = (*Store)(nil)

// webhookEndpoint is an endpoint as the file keeps it (with its secret).
type webhookEndpoint struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Events       []string  `json:"events"`
	RoomTags     []string  `json:"room_tags"`
	Internal     bool      `json:"internal,omitempty"`
	Secret       string    `json:"secret"`
	Paused       bool      `json:"paused,omitempty"`
	PausedReason string    `json:"paused_reason,omitempty"`
	PausedAt     time.Time `json:"paused_at,omitzero"`
	ResumedAt    time.Time `json:"resumed_at,omitzero"`
	CreatedBy    string    `json:"created_by"`
	CreatedEmail string    `json:"created_by_email,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func toWebhookEndpoint(e webhook.Endpoint) webhookEndpoint {
	return webhookEndpoint{ID: e.ID, URL: e.URL, Events: e.Events, RoomTags: e.RoomTags, Internal: e.Internal, Secret: e.Secret,
		Paused: e.Paused, PausedReason: e.PausedReason, PausedAt: e.PausedAt, ResumedAt: e.ResumedAt, CreatedBy: e.CreatedBy, CreatedEmail: e.CreatedByEmail,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

func (w webhookEndpoint) endpoint() webhook.Endpoint {
	return webhook.Endpoint{ID: w.ID, URL: w.URL, Events: w.Events, RoomTags: w.RoomTags, Internal: w.Internal, Secret: w.Secret,
		Paused: w.Paused, PausedReason: w.PausedReason, PausedAt: w.PausedAt, ResumedAt: w.ResumedAt, CreatedBy: w.CreatedBy, CreatedByEmail: w.CreatedEmail,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

// webhookDelivery is a delivery as the file keeps it. The conversion
// stops the build when webhook.Delivery gains a field this lacks.
type webhookDelivery struct {
	ID           string    `json:"id"`
	Endpoint     string    `json:"endpoint"`
	RoomID       string    `json:"room_id"`
	Seq          int64     `json:"seq"`
	EventID      string    `json:"event_id"`
	Type         string    `json:"type"`
	State        string    `json:"state"`
	CreatedAt    time.Time `json:"created_at"`
	Due          time.Time `json:"due"`
	Attempts     int       `json:"attempts,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	Status       int       `json:"status,omitempty"`
	LatencyMS    int64     `json:"latency_ms,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	At           time.Time `json:"at"`
	DeliveredAt  time.Time `json:"delivered_at,omitzero"`
}

func deliveryKey(endpoint, roomID string, seq int64) []byte {
	k := append([]byte(endpoint), 0)
	k = append(append(k, roomID...), 0)
	return binary.BigEndian.AppendUint64(k, uint64(seq))
}

// writeWebhooks runs fn in a write transaction with every webhook bucket.
func (s *Store) writeWebhooks(ctx context.Context, fn func(eps, log, pending, byID *bolt.Bucket) error) error {
	return s.writeAside(ctx, bWebhooks, func(eps *bolt.Bucket) error {
		tx := eps.Tx()
		var bs [3]*bolt.Bucket
		for i, name := range [][]byte{bWebhookLog, bWebhookPending, bWebhookDelivery} {
			b, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			bs[i] = b
		}
		return fn(eps, bs[0], bs[1], bs[2])
	})
}

// CreateEndpoint implements webhook.Store.
func (s *Store) CreateEndpoint(ctx context.Context, e webhook.Endpoint) error {
	return s.writeWebhooks(ctx, func(eps, _, _, _ *bolt.Bucket) error {
		if eps.Get([]byte(e.ID)) != nil {
			return dealroom.Errorf(dealroom.ECONFLICT, "webhook endpoint %s exists", e.ID)
		}
		return putJSON(eps, []byte(e.ID), toWebhookEndpoint(e))
	})
}

// Endpoint implements webhook.Store.
func (s *Store) Endpoint(ctx context.Context, id string) (webhook.Endpoint, error) {
	return readTx(s, func(tx *bolt.Tx) (webhook.Endpoint, error) {
		if b := tx.Bucket(bWebhooks); b != nil {
			w, err := getJSON[webhookEndpoint](b, []byte(id))
			if err != nil || w != nil {
				return w.endpointOr(), err
			}
		}
		return webhook.Endpoint{}, dealroom.NotFound("webhook endpoint", id)
	})
}

func (w *webhookEndpoint) endpointOr() webhook.Endpoint {
	if w == nil {
		return webhook.Endpoint{}
	}
	return w.endpoint()
}

// Endpoints implements webhook.Store.
func (s *Store) Endpoints(ctx context.Context) ([]webhook.Endpoint, error) {
	out, err := readTx(s, func(tx *bolt.Tx) ([]webhook.Endpoint, error) {
		var out []webhook.Endpoint
		b := tx.Bucket(bWebhooks)
		if b == nil {
			return nil, nil
		}
		err := b.ForEach(func(_, v []byte) error {
			var w webhookEndpoint
			if err := json.Unmarshal(v, &w); err != nil {
				return err
			}
			out = append(out, w.endpoint())
			return nil
		})
		return out, err
	})
	slices.SortFunc(out, func(a, b webhook.Endpoint) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	return out, err
}

// UpdateEndpoint implements webhook.Store: bbolt has one writer at a time,
// so the read, fn and the write are atomic.
func (s *Store) UpdateEndpoint(ctx context.Context, id string, fn func(*webhook.Endpoint) error) (webhook.Endpoint, error) {
	var out webhook.Endpoint
	err := s.writeWebhooks(ctx, func(eps, _, _, _ *bolt.Bucket) error {
		w, err := getJSON[webhookEndpoint](eps, []byte(id))
		if err != nil {
			return err
		}
		if w == nil {
			return dealroom.NotFound("webhook endpoint", id)
		}
		e := w.endpoint()
		if err := fn(&e); err != nil {
			return err
		}
		e.ID = id
		out = e
		return putJSON(eps, []byte(id), toWebhookEndpoint(e))
	})
	return out, err
}

// DeleteEndpoint implements webhook.Store.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	return s.writeWebhooks(ctx, func(eps, log, pending, byID *bolt.Bucket) error {
		if eps.Get([]byte(id)) == nil {
			return dealroom.NotFound("webhook endpoint", id)
		}
		if err := eps.Delete([]byte(id)); err != nil {
			return err
		}
		prefix := append([]byte(id), 0)
		var keys [][]byte
		c := log.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var d webhookDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			keys = append(keys, bytes.Clone(k))
			if err := byID.Delete([]byte(d.ID)); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if err := log.Delete(k); err != nil {
				return err
			}
			if err := pending.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddDeliveries implements webhook.Store: one transaction, which reads
// the endpoints as DeleteEndpoint leaves them.
func (s *Store) AddDeliveries(ctx context.Context, ds []webhook.Delivery) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	added := 0
	err := s.writeWebhooks(ctx, func(eps, log, pending, byID *bolt.Bucket) error {
		added = 0
		for _, d := range ds {
			if byID.Get([]byte(d.ID)) != nil || eps.Get([]byte(d.Endpoint)) == nil {
				continue
			}
			if err := putDelivery(log, pending, byID, d); err != nil {
				return err
			}
			added++
		}
		return nil
	})
	return added, err
}

func putDelivery(log, pending, byID *bolt.Bucket, d webhook.Delivery) error {
	k := deliveryKey(d.Endpoint, d.RoomID, d.Seq)
	if err := putJSON(log, k, webhookDelivery(d)); err != nil {
		return err
	}
	if err := byID.Put([]byte(d.ID), k); err != nil {
		return err
	}
	if d.State == webhook.Pending {
		return pending.Put(k, nil)
	}
	return pending.Delete(k)
}

// SaveDelivery implements webhook.Store.
func (s *Store) SaveDelivery(ctx context.Context, d webhook.Delivery) error {
	return s.writeWebhooks(ctx, func(_, log, pending, byID *bolt.Bucket) error {
		if byID.Get([]byte(d.ID)) == nil {
			return dealroom.NotFound("webhook delivery", d.ID)
		}
		return putDelivery(log, pending, byID, d)
	})
}

// PendingDeliveries implements webhook.Store.
func (s *Store) PendingDeliveries(ctx context.Context, endpoint, afterRoom string, afterSeq int64, limit int) ([]webhook.Delivery, error) {
	return readTx(s, func(tx *bolt.Tx) ([]webhook.Delivery, error) {
		pending, log := tx.Bucket(bWebhookPending), tx.Bucket(bWebhookLog)
		if pending == nil || log == nil {
			return nil, nil
		}
		prefix := append([]byte(endpoint), 0)
		from := prefix
		if afterRoom != "" || afterSeq > 0 {
			from = deliveryKey(endpoint, afterRoom, afterSeq+1)
		}
		var out []webhook.Delivery
		c := pending.Cursor()
		for k, _ := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			d, err := getJSON[webhookDelivery](log, k)
			if err != nil {
				return nil, err
			}
			if d != nil {
				out = append(out, webhook.Delivery(*d))
			}
		}
		return out, nil
	})
}

// Deliveries implements webhook.Store: a read of the endpoint's kept
// deliveries (the sweep bounds them), sorted.
func (s *Store) Deliveries(ctx context.Context, endpoint string, limit int) ([]webhook.Delivery, error) {
	out, err := readTx(s, func(tx *bolt.Tx) ([]webhook.Delivery, error) {
		log := tx.Bucket(bWebhookLog)
		if log == nil {
			return nil, nil
		}
		prefix := append([]byte(endpoint), 0)
		var out []webhook.Delivery
		c := log.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var d webhookDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return nil, err
			}
			out = append(out, webhook.Delivery(d))
		}
		return out, nil
	})
	slices.SortStableFunc(out, func(a, b webhook.Delivery) int { return b.At.Compare(a.At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// SweepDeliveries implements webhook.Store.
func (s *Store) SweepDeliveries(ctx context.Context, before time.Time) (int, error) {
	return s.sweep(ctx, bWebhookLog, func(_, v []byte) (bool, error) {
		var d webhookDelivery
		if err := json.Unmarshal(v, &d); err != nil {
			return false, err
		}
		return d.State == webhook.Delivered && d.DeliveredAt.Before(before), nil
	}, func(tx *bolt.Tx, _, v []byte) error {
		var d webhookDelivery
		if err := json.Unmarshal(v, &d); err != nil {
			return err
		}
		if b := tx.Bucket(bWebhookDelivery); b != nil {
			return b.Delete([]byte(d.ID))
		}
		return nil
	})
}
