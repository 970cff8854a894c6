// Package consume reads the event log of every room durably, for work
// that must happen once per event outside the request that appended it:
// notifications today, webhooks and digests later.
//
// A consumer has a name and a cursor per room: the seq of the last event
// it handled there. A Runner finds rooms whose head is past the cursor,
// hands the events after it to the consumer in seq order and moves the
// cursor only once the handler returned without error. So an event is
// handled at least once, in order per room; a crash between the handler's
// work and the cursor's move repeats the event, which handlers make
// harmless by writing with a key of their own (the outbox's dedupe key).
//
// Several instances share the store; a named lease in it lets one of them
// (its holder) do the work, and the others wait to take it over when the
// holder stops renewing it. The lease keeps the work in one place; it is
// not what makes it correct: the cursors only move forward and handlers are
// idempotent, so two holders at once (a paused process waking after its
// lease passed) repeat work but lose none.
//
// Where a consumer starts: the first time a consumer runs on a store, it
// sets its cursor of every existing room to that room's head and records
// that it did (the cursor of the room "", see Started): it does not act on
// the history (no mail about last year's mentions). Rooms created after that
// have no cursor and are read from their first event.
package consume

import (
	"context"
	"time"

	"dealroom/room"
)

// Lease is who holds a named lease, and until when.
type Lease struct {
	Name   string
	Holder string
	// Epoch grows by one each time the lease changes hands (not when its
	// holder renews it): work stamped with it can be fenced against a
	// holder that lost the lease without noticing.
	Epoch int64
	Until time.Time
}

// Held reports whether holder holds the lease at now.
func (l Lease) Held(holder string, now time.Time) bool {
	return l.Holder == holder && now.Before(l.Until)
}

// Head is a room and the seq of the last event of its log.
type Head struct {
	Room string
	Seq  int64
}

// Started is the room whose cursor records that a consumer set its cursors
// of the rooms that existed when it first ran (see the package comment).
// No room has the empty id.
const Started = ""

// Store keeps leases and cursors. Implementations: boltstore and
// mongostore, checked by consumetest.TestStore.
type Store interface {
	// AcquireLease takes the lease name for holder until now+ttl, when it
	// is free (never taken, or its Until is not after now) or already
	// holder's (a renewal: Until moves, Epoch stays). It returns the lease
	// as it stands after the call and whether holder holds it; of two
	// holders that try at once, at most one gets it. EUNAVAILABLE when the
	// backend fails.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (Lease, bool, error)
	// ReleaseLease ends holder's lease name at once, so that another
	// instance takes it over without waiting for it to expire; nothing
	// when holder does not hold it.
	ReleaseLease(ctx context.Context, name, holder string) error

	// Cursors returns the consumer's cursors of those of rooms it has
	// one for.
	Cursors(ctx context.Context, consumer string, rooms []string) (map[string]int64, error)
	// Advance moves the consumer's cursor of each room of seqs to its seq,
	// unless it is there or further already: cursors never move back. The
	// embedded store writes them in one transaction (one fsync for a whole
	// pass); MongoDB in one unordered bulk write. On an error some may
	// have moved.
	Advance(ctx context.Context, consumer string, seqs map[string]int64) error

	// Heads returns up to limit rooms with an id greater than after, in
	// the order of their ids, with the head of each: a full pass over every
	// room, one page at a time. A head may lag the log for a moment (a
	// read model catching up) but not for good.
	Heads(ctx context.Context, after string, limit int) ([]Head, error)
}

// Events reads a room's log (room.Store has it).
type Events interface {
	// Events returns up to limit events of the room with seq > after, in
	// order (room.Store.Events).
	Events(ctx context.Context, room string, after int64, limit int, sharedOnly bool) ([]room.Event, error)
}
