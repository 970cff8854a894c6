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
package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"strings"
	"time"
)

// Channels.
const (
	Email = "email"
)

// States of a record.
const (
	Pending = "pending" // to be sent at Due
	Sent    = "sent"    // accepted by the channel's server
	Failed  = "failed"  // given up: a permanent refusal, or a day of failures
)

// Record is one message to one recipient about one event.
type Record struct {
	// ID is Key(Channel, Recipient, EventID).
	ID        string
	Channel   string
	Recipient string // the user id
	RoomID    string
	EventID   string
	// Payload is what the channel sends (Email: a mail.Message as JSON),
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
	h := sha256.New()
	for _, p := range []string{channel, recipient, eventID} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "o" + strings.ToLower(keyEncoding.EncodeToString(h.Sum(nil)[:20]))
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
	// SettleOutbox writes the outcome of an attempt at a Pending record:
	// its State, Due, Attempts, LastError and SettledAt. A record that is
	// no longer Pending is left as it is. ENOTFOUND when there is none.
	SettleOutbox(ctx context.Context, r Record) error
	// SweepOutbox removes the records settled before before and returns how
	// many. Pending records stay.
	SweepOutbox(ctx context.Context, before time.Time) (int, error)
}
