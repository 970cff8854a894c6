package room

import (
	"context"
	"fmt"
	"math"
	"time"

	"dealroom"
	"dealroom/task"
)

// View is a consistent reading of one room's state, given to a command's
// decision. Methods return (nil, nil) for things that do not exist and an
// error only when the store fails.
type View interface {
	// Room returns the room, nil when it does not exist yet.
	Room() (*Room, error)
	Member(userID string) (*Member, error)
	Members() ([]Member, error)
	Task(id string) (*task.Task, error)
	// TaskStats sums up the room's tasks by visibility.
	TaskStats() (PlanStats, error)
	Message(id string) (*Message, error)
	Attachment(id string) (*Attachment, error)
	Invite(id string) (*Invite, error)
}

// Command is one change to a room, to be decided against its state and
// recorded as one event.
type Command struct {
	Room string
	// Actor and Key make the idempotency key: the same actor retrying with
	// the same key in the same room gets the first event back. Key may be
	// empty (no idempotency).
	Actor string
	Key   string
	// Fingerprint identifies the request; a key reused with another
	// fingerprint is a conflict, not a retry.
	Fingerprint string
	// At is when the request was made (the service's clock; zero: the
	// store's). A key recorded KeyRetention or longer before it is
	// forgotten: the command is carried out anew.
	At time.Time
	// Decide turns the room's state into the event to append (its Seq is
	// set by the store) and the caller's result. It must have no side
	// effects: a store may call it again after a concurrent append, and
	// only the last run's decision counts.
	Decide func(View) (Decision, error)
}

// Decision is what a command's Decide returns: the event to append (an
// event with an empty Type when there is nothing to change) and what the
// caller wants back, for the state the event was decided on.
type Decision struct {
	Event  Event
	Result any
}

// Executed is what Store.Execute did with a command: the event appended,
// with its seq (empty Type: the decision changed nothing), or the first
// event of an earlier request with the same key (Replayed: Decide did not
// run, and Result is nil); Result is the recorded decision's.
type Executed struct {
	Event    Event
	Replayed bool
	Result   any
}

// Run runs the command's decision against v, turning a panic into an
// error, so that one faulty decision cannot take a store's writer down.
// Stores call it instead of Decide.
func (c Command) Run(v View) (d Decision, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = Decision{}, fmt.Errorf("room %s: decision panicked: %v", c.Room, p)
		}
	}()
	if c.Decide == nil {
		return Decision{}, nil
	}
	return c.Decide(v)
}

// Store is the source of truth: the events of every room and the read
// models they imply.
type Store interface {
	// Execute runs cmd.Decide against the room's current state and appends
	// the event it returns as the room's next seq, atomically with the
	// idempotency key and the read models' update. When the key was used
	// before by the same actor in the room, it returns that first event,
	// Replayed, without deciding anything (unless the key expired:
	// KeyRetention). Errors: those of Decide;
	// ECONFLICT when the key was used for another request; EUNAVAILABLE
	// when the backend fails: nothing is written then, except when the
	// answer of a write the backend may have carried out was lost and
	// could not be settled by reading it back (MongoDB during a failover:
	// the outcome is unknown, and a retry with the same key finds the
	// event if it was written; the message says so).
	Execute(ctx context.Context, cmd Command) (Executed, error)

	// Events returns up to limit events of the room with seq > after, in
	// order. With sharedOnly, internal events are left out (and the limit
	// counts only those returned), and the store looks at the events with
	// a seq up to after+SharedScan(limit) only: a customer's read of a room
	// of many internal events costs a bounded scan, and fewer than limit
	// events does not mean the end of the room.
	Events(ctx context.Context, room string, after int64, limit int, sharedOnly bool) ([]Event, error)

	// Room returns a room, ENOTFOUND when there is none.
	Room(ctx context.Context, id string) (*Room, error)
	// Rooms lists rooms newest first, by the filter.
	Rooms(ctx context.Context, f RoomFilter) ([]Room, error)
	// Member returns a user's membership, nil when they are not a member.
	Member(ctx context.Context, room, user string) (*Member, error)
	// Members returns the room's members in the order they joined.
	Members(ctx context.Context, room string) ([]Member, error)
	// Memberships returns user's memberships in those of rooms they
	// belong to, by room id, in one read: a listing of rooms shows each
	// as its reader's membership allows.
	Memberships(ctx context.Context, user string, rooms []string) (map[string]Member, error)
	// Tasks returns the room's tasks ordered by position, then id.
	Tasks(ctx context.Context, room string) ([]task.Task, error)
	// Task returns a task, nil when there is none.
	Task(ctx context.Context, room, id string) (*task.Task, error)
	// AssignedTasks returns the tasks assigned to a user across all rooms.
	AssignedTasks(ctx context.Context, user string) ([]task.Task, error)
	// Messages lists messages oldest first by the filter, with ReplyCount
	// filled for thread roots.
	Messages(ctx context.Context, f MessageFilter) ([]Message, error)
	// Message returns a message, nil when there is none.
	Message(ctx context.Context, room, id string) (*Message, error)
	// DeletedMessages returns those of the messages ids that are deleted
	// (their tombstones), in one read: a page of the timeline is redacted
	// with it.
	DeletedMessages(ctx context.Context, room string, ids []string) ([]Message, error)
	// Attachment returns an attachment's metadata, nil when there is none.
	Attachment(ctx context.Context, room, id string) (*Attachment, error)
	// Attachments returns up to limit of the room's attachments, oldest
	// first (by id), those with an id greater than after; with sharedOnly,
	// internal ones are left out (the limit counts those returned).
	Attachments(ctx context.Context, room, after string, limit int, sharedOnly bool) ([]Attachment, error)
	// Invite returns an invite by id, nil when there is none.
	Invite(ctx context.Context, id string) (*Invite, error)
	// BlobsInUse returns the sha256 of the bytes of every attachment of
	// every room.
	BlobsInUse(ctx context.Context) (map[string]struct{}, error)
	// Invites returns up to limit of the room's invites, newest first (by
	// CreatedAt, then id), those after the invite after in that order (nil:
	// from the newest).
	Invites(ctx context.Context, room string, after *Invite, limit int) ([]Invite, error)

	// Inbox returns a user's inbox items newest first, starting after the
	// item with id before (empty: from the newest).
	Inbox(ctx context.Context, user, before string, limit int) ([]InboxItem, error)
	// MarkRead sets the read time of an inbox item unless it is set
	// already; ENOTFOUND when the user has no such item.
	MarkRead(ctx context.Context, user, item string, at time.Time) error

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store; calling it twice is safe.
	Close() error
}

// PlanStats sums up a room's tasks by visibility: what the limit and the
// position of a new task depend on.
type PlanStats struct {
	Shared, Internal TaskTally
}

// TaskTally counts tasks of one visibility; Last is the highest position
// among them (0 when there are none).
type TaskTally struct {
	Count int
	Last  float64
}

// Add counts a task.
func (p *PlanStats) Add(v dealroom.Visibility, position float64) {
	t := &p.Shared
	if v == dealroom.Internal {
		t = &p.Internal
	}
	if t.Count == 0 || position > t.Last {
		t.Last = position
	}
	t.Count++
}

// Of returns the tally of one visibility.
func (p PlanStats) Of(v dealroom.Visibility) TaskTally {
	if v == dealroom.Internal {
		return p.Internal
	}
	return p.Shared
}

// Last is the highest position of every task (0 when there are none).
func (p PlanStats) Last() float64 {
	switch {
	case p.Shared.Count == 0:
		return p.Internal.Last
	case p.Internal.Count == 0:
		return p.Shared.Last
	}
	return max(p.Shared.Last, p.Internal.Last)
}

// SharedScan is how many events a store looks at, at most, to find limit
// shared ones (Store.Events with sharedOnly): ten per event asked for, and
// at least 100.
func SharedScan(limit int) int { return max(10*limit, 100) }

// SharedScanEnd is the last seq a sharedOnly read of limit events after
// seq after looks at.
func SharedScanEnd(after int64, limit int) int64 {
	if n := int64(SharedScan(limit)); after <= math.MaxInt64-n {
		return after + n
	}
	return math.MaxInt64
}

// RoomFilter selects rooms to list.
type RoomFilter struct {
	// Member limits the list to rooms this user is a member of; empty
	// lists every room.
	Member      string
	Stage       Stage
	Owner       string
	CloseWindow CloseWindow
	// Before continues a listing after the room with this id.
	Before string
	Limit  int
}

// hiddenFields names the filters set on room fields that customers do not
// see.
func (f RoomFilter) hiddenFields() []string {
	var out []string
	if f.Owner != "" {
		out = append(out, "owner")
	}
	if f.CloseWindow != "" {
		out = append(out, "close_window")
	}
	return out
}

// KeyRetention is how long an idempotency key is remembered: a retry
// within it gets the first answer, a request with the key after it is a
// new request. Clients retry within minutes; a day covers a device that
// was offline overnight.
const KeyRetention = 24 * time.Hour

// KeyExpired tells whether a key recorded at `at` is forgotten at `now`
// (a record without a time, from before keys expired, is).
func KeyExpired(at, now time.Time) bool {
	return at.IsZero() || now.Sub(at) >= KeyRetention
}

// ErrKeyReused is returned for an idempotency key reused with another
// request.
var ErrKeyReused = &dealroom.Error{Code: dealroom.ECONFLICT,
	Message: "this Idempotency-Key was already used for a different request"}
