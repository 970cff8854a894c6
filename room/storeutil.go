package room

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"dealroom"
)

// What the stores do the same way, whatever they store in: one rule for
// idempotency keys, the room's bookkeeping after an event, the filters of
// a listing, and the first storage error of a decision's view.

// IdempotencyID is the one rule by which a store names the idempotency
// record of a command within its room: the actor and the key, joined
// without ambiguity (user ids may hold any separator, so the actor's
// length comes first), and hashed when long, to keep index entries small.
// Two commands get the same id exactly when they have the same actor and
// the same key (a hash collision aside).
func IdempotencyID(actor, key string) string {
	k := "k:" + strconv.Itoa(len(actor)) + ":" + actor + ":" + key
	if len(k) > maxIdempotencyID {
		sum := sha256.Sum256([]byte(k))
		return "h:" + hex.EncodeToString(sum[:])
	}
	return k
}

// maxIdempotencyID is the longest id IdempotencyID does not hash.
const maxIdempotencyID = 400

// Advance moves the room's head and activity times to ev, as every event
// of the room does (see Effects).
func (r *Room) Advance(ev Event) {
	r.Head = ev.Seq
	r.LastActivityAt = ev.At
	if ev.Actor.Kind == dealroom.Customer {
		at := ev.At
		r.LastCustomerActivityAt = &at
	}
}

// Set sets the tally of one visibility, for a store that counts tasks
// itself (PlanStats.Add counts them one by one).
func (p *PlanStats) Set(v dealroom.Visibility, t TaskTally) {
	if v == dealroom.Internal {
		p.Internal = t
	} else {
		p.Shared = t
	}
}

// MembersChanged tells whether the effects add, change or remove a
// member: what a store's memory of the room's members must forget.
func (fx Effects) MembersChanged() bool {
	return len(fx.Members) > 0 || len(fx.RemovedMembers) > 0
}

// Match tells whether a room passes the filter's settings (stage, owner,
// close window); membership and paging are the store's to apply.
func (f RoomFilter) Match(r Room) bool {
	return (f.Stage == "" || r.Stage == f.Stage) && (f.Owner == "" || r.OwnerID == f.Owner) &&
		(f.CloseWindow == "" || r.CloseWindow == f.CloseWindow)
}

// FirstError keeps the first storage error a store's View met. A View
// answers each call, but a decision may ignore an error it was given; the
// store checks Err after the decision and then abandons the write, so
// that nothing is decided on a failed read.
type FirstError struct{ err error }

// Note records err if it is the first, and returns it.
func (f *FirstError) Note(err error) error {
	if err != nil && f.err == nil {
		f.err = err
	}
	return err
}

// Err returns the first error noted, nil when there was none.
func (f *FirstError) Err() error { return f.err }
