// Package webhook posts the rooms' events to the HTTPS endpoints admins
// configure, signed as the Standard Webhooks specification says
// (webhook-id, webhook-timestamp, webhook-signature).
//
// Delivery semantics. The consumer "webhooks" of the event log
// (consume.Runner, under the lease "webhooks": one instance works at a
// time) turns each event into a Delivery per endpoint that wants it,
// inserted only when absent: its id, which is also its webhook-id, is
// derived from (endpoint, event) (Key), so an event handled twice makes
// one delivery. The Sender, a job of the same runner, posts each
// endpoint's pending deliveries room by room in seq order: the first
// pending one of a room that fails holds back the later ones of that room
// for that endpoint (not other rooms, not other endpoints) until it
// passes. A crash between the endpoint's answer and the delivery's mark
// posts it again under the same webhook-id: at least once, in order per
// room and endpoint, a repeat only under the same id.
//
// Failures. A failed attempt is tried again after a wait that doubles
// from Sender.Backoff up to an hour, with jitter; when a room's first
// pending delivery has failed for a day (Sender.GiveUpAfter), the
// endpoint is paused (Endpoint.Paused, PausedReason) and its deliveries
// wait, in order, until an admin resumes it. Events keep being recorded
// for a paused endpoint, so that resuming loses none.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"dealroom"
	"dealroom/room"
)

// Consumer is the name of the event log's consumer that records
// deliveries, and of the lease its runner holds.
const Consumer = "webhooks"

// Endpoint is a URL that receives events, configured by an admin.
type Endpoint struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Events lists the event types sent (room.MessagePosted, ...); empty:
	// every type.
	Events []string `json:"events"`
	// RoomTags, when not empty, limits the endpoint to the rooms that
	// carry at least one of these tags (when the event is recorded);
	// empty: every room.
	RoomTags []string `json:"room_tags"`
	// Internal lets internal events (staff-only notes, internal steps)
	// reach the endpoint; without it they never do.
	Internal bool `json:"internal"`
	// Secret signs the deliveries: "whsec_" and the base64 of the key.
	// Shown only when it is made (at creation and rotation).
	Secret string `json:"-"`
	// Paused endpoints receive nothing; their deliveries wait.
	Paused bool `json:"paused"`
	// PausedReason says why the server paused the endpoint (empty when
	// an admin did).
	PausedReason string    `json:"paused_reason,omitempty"`
	PausedAt     time.Time `json:"paused_at,omitzero"`
	// ResumedAt is when the endpoint was last resumed: a delivery's day
	// of failures counts from then at the earliest, and one waiting for
	// its next attempt is tried at once.
	ResumedAt time.Time `json:"resumed_at,omitzero"`
	CreatedBy string    `json:"created_by"`
	// CreatedByEmail is the address of the admin who made the endpoint:
	// told when the server pauses it.
	CreatedByEmail string    `json:"created_by_email,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Wants reports whether the endpoint receives ev, an event of a room with
// the given tags.
func (e Endpoint) Wants(ev room.Event, tags []string) bool {
	if ev.Visibility == dealroom.Internal && !e.Internal {
		return false
	}
	if ev.At.Before(e.CreatedAt) {
		return false // before it existed
	}
	if len(e.Events) > 0 && !slices.Contains(e.Events, ev.Type) {
		return false
	}
	if len(e.RoomTags) > 0 && !slices.ContainsFunc(e.RoomTags, func(t string) bool { return slices.Contains(tags, t) }) {
		return false
	}
	return true
}

// States of a delivery.
const (
	Pending   = "pending"   // to be posted (again)
	Delivered = "delivered" // the endpoint answered 2xx
)

// Delivery is one event for one endpoint, and how its attempts went.
type Delivery struct {
	// ID is Key(Endpoint, EventID): the webhook-id of every attempt.
	ID        string    `json:"id"`
	Endpoint  string    `json:"endpoint"`
	RoomID    string    `json:"room_id"`
	Seq       int64     `json:"seq"`
	EventID   string    `json:"event_id"`
	Type      string    `json:"type"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	// Due is when the next attempt may be made.
	Due      time.Time `json:"due"`
	Attempts int       `json:"attempts"`
	// FailingSince is the first failed attempt since the last success
	// (zero when the last attempt passed or none was made).
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Status is the HTTP status of the last answer (0: none came).
	Status    int    `json:"status"`
	LatencyMS int64  `json:"latency_ms"`
	LastError string `json:"last_error,omitempty"`
	// At is when the delivery was last attempted, or made.
	At          time.Time `json:"at"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
}

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key returns the id of the delivery of an event to an endpoint, its
// webhook-id: the same on every instance, attempt and replay.
func Key(endpoint, eventID string) string {
	h := sha256.New()
	h.Write([]byte(endpoint))
	h.Write([]byte{0})
	h.Write([]byte(eventID))
	return "msg_" + strings.ToLower(keyEncoding.EncodeToString(h.Sum(nil)[:20]))
}

// SecretPrefix begins every endpoint secret, as Standard Webhooks does.
const SecretPrefix = "whsec_"

// NewSecret returns a new secret: the prefix and 32 random bytes in
// standard base64.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Sign returns the webhook-signature header of a delivery: "v1," and the
// base64 of HMAC-SHA256, keyed by the secret's decoded bytes, of
// id "." timestamp "." body.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return "", dealroom.Invalid("secret", "is not base64")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// Store keeps endpoints and deliveries. Implementations: boltstore and
// mongostore, checked by webhooktest.TestStore.
type Store interface {
	// CreateEndpoint records a new endpoint. ECONFLICT when its id is
	// taken.
	CreateEndpoint(ctx context.Context, e Endpoint) error
	// Endpoint returns the endpoint id. ENOTFOUND when there is none.
	Endpoint(ctx context.Context, id string) (Endpoint, error)
	// Endpoints returns every endpoint, oldest first.
	Endpoints(ctx context.Context) ([]Endpoint, error)
	// UpdateEndpoint applies fn to the endpoint id and writes the result,
	// atomically: a change made meanwhile by another instance is not
	// overwritten (fn may then run again on the new state). An error of
	// fn is returned and nothing is written. ENOTFOUND when there is none.
	UpdateEndpoint(ctx context.Context, id string, fn func(*Endpoint) error) (Endpoint, error)
	// DeleteEndpoint removes the endpoint and its deliveries. ENOTFOUND
	// when there is none.
	DeleteEndpoint(ctx context.Context, id string) error

	// AddDeliveries inserts those of ds whose ID no delivery has and
	// whose endpoint exists, and returns how many it inserted. A delivery
	// of an endpoint deleted while it runs does not stay.
	AddDeliveries(ctx context.Context, ds []Delivery) (int, error)
	// SaveDelivery writes d over the delivery of its ID. ENOTFOUND when
	// there is none (its endpoint was deleted).
	SaveDelivery(ctx context.Context, d Delivery) error
	// PendingDeliveries returns up to limit pending deliveries of the
	// endpoint in the order (room, seq), those after (afterRoom,
	// afterSeq): a page of the sender's walk.
	PendingDeliveries(ctx context.Context, endpoint, afterRoom string, afterSeq int64, limit int) ([]Delivery, error)
	// Deliveries returns the endpoint's latest deliveries, up to limit,
	// by At, latest first: its delivery log.
	Deliveries(ctx context.Context, endpoint string, limit int) ([]Delivery, error)
	// SweepDeliveries removes the deliveries delivered before before and
	// any left of a deleted endpoint, and returns how many. Other pending
	// ones stay.
	SweepDeliveries(ctx context.Context, before time.Time) (int, error)
}
