// Package outbox keeps the messages a consumer of the event log decided to
// send, and sends them.
//
// Delivery semantics. A record is keyed by what it is about: its ID is
// derived from (channel, recipient, event) (Key), and Add inserts a record
// only when no record of that ID exists. So the consumer that writes
// records may handle an event twice (after a crash before its cursor
// moved, or with two instances at once) and still leaves one record per
// recipient and event. The Sender sends a due record and then marks it
// sent: a crash between the mail server's acceptance and that mark sends
// it again, with the same Message-ID (the record's, fixed when it was
// made), which mail clients and servers use to recognise the repeat.
// Everything else is exactly once: no record lost, none made twice.
//
// Grouping. A record may wait before it is sent (its Due, set by who
// makes it): at send time the Sender drops the records whose recipient has
// since seen the event (Skipped), and sends the others of one recipient
// and room as one message. Such a message is fixed before its first
// attempt: each of its records is marked with the message's id (Batch,
// made from the records' ids), so that a retry or a repeat after a crash
// sends the same records under the same Message-ID. Each record is still
// settled on its own: sent, skipped or given up once.
package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Channels.
const (
	Email = "email"
	Push  = "push" // Web Push to a person's devices (package push)
)

// States of a record.
const (
	Pending = "pending" // to be sent at Due
	Sent    = "sent"    // accepted by the channel's server
	Failed  = "failed"  // given up: a permanent refusal, or a day of failures
	Skipped = "skipped" // not sent: the recipient saw the event before it was due
)

// Record is one message to one recipient about one event.
type Record struct {
	// ID is Key(Channel, Recipient, EventID).
	ID        string
	Channel   string
	Recipient string // the user id
	RoomID    string
	EventID   string
	// Seq is the event's seq in its room: the record is skipped when the
	// recipient has seen the room up to it by the time it is sent (see
	// Sender.Seen). 0: unknown, never skipped.
	Seq int64
	// Batch, when set, is the id of the one message that carries this
	// record with others (BatchKey of their ids), fixed before the
	// message's first attempt.
	Batch string
	// Payload is what the channel sends (Email: a mail.Message as JSON;
	// Push: what Sender.Push reads),
	// fixed when the record is made, Message-ID included.
	Payload   json.RawMessage
	State     string
	CreatedAt time.Time
	// Due is when the next attempt may be made.
	Due       time.Time
	Attempts  int
	LastError string
	// SettledAt is when the record was sent or given up.
	SettledAt time.Time
}

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key returns the id of the record of a channel, recipient and event: the
// same inputs give the same id, on every instance and after a restart.
func Key(channel, recipient, eventID string) string {
	return hashKey("o", channel, recipient, eventID)
}

// BatchKey returns the id of the one message that carries recs: it
// depends only on the records' ids, not on their order.
func BatchKey(recs []Record) string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	slices.Sort(ids)
	return hashKey("b", ids...)
}

func hashKey(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + strings.ToLower(keyEncoding.EncodeToString(h.Sum(nil)[:20]))
}

// Store keeps records. Implementations: boltstore and mongostore, checked
// by outboxtest.TestStore.
type Store interface {
	// AddOutbox inserts those of recs whose ID no record has (whatever its
	// state) and returns how many it inserted. EUNAVAILABLE when the
	// backend fails (some may have been inserted: adding again is safe).
	AddOutbox(ctx context.Context, recs []Record) (added int, err error)
	// DueOutbox returns up to limit Pending records with Due not after
	// now, earliest Due first.
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]Record, error)
	// SettleOutbox writes the outcome of an attempt at Pending records,
	// or the message they go in: their State, Due, Attempts, LastError,
	// SettledAt and Batch. The records of one call are written together,
	// all or none, so that a message's records never part: a crash
	// between two of them would leave some to be sent again in a smaller
	// message under the same Message-ID. A record that is no longer
	// Pending is left as it is. ENOTFOUND, and nothing written, when one
	// of them does not exist.
	SettleOutbox(ctx context.Context, rs ...Record) error
	// SweepOutbox removes the records settled before before and returns how
	// many. Pending records stay.
	SweepOutbox(ctx context.Context, before time.Time) (int, error)
}
