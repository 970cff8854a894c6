package notify

import (
	"context"
	"slices"
	"time"
)

// Person is what notifications need to know of one user: where to write
// and what they asked for. Users are known by their ids across rooms.
type Person struct {
	User string
	// Email is the address notifications go to: learnt from the email of
	// their sign-in (the token's claim, Notifier.Seen) and from the
	// address a customer's invite was accepted with. Empty: none known,
	// no email.
	Email string
	// EmailOff turns off every email notification; RoomsOff those of the
	// rooms named.
	EmailOff bool
	RoomsOff []string
	// Digest is how often they get a mail of what they have not seen in
	// their rooms: Daily, Weekly or Off; "" is the default (DigestOf).
	Digest string
	// RemindersOff turns off the reminders (steps due tomorrow or
	// overdue, quiet rooms); TimeZone is the IANA name of the zone their
	// days are reckoned in ("" for UTC). See remind.go.
	RemindersOff bool
	TimeZone     string
	UpdatedAt    time.Time
}

// Digest choices.
const (
	Daily  = "daily"
	Weekly = "weekly"
	Off    = "off"
)

// Wants reports whether the person takes email about the room.
func (p *Person) Wants(roomID string) bool {
	return p != nil && p.Email != "" && !p.EmailOff && !slices.Contains(p.RoomsOff, roomID)
}

// People keeps Person records. Implementations: boltstore and mongostore,
// checked by notifytest.TestPeople.
type People interface {
	// Person returns the user's record, nil when there is none.
	Person(ctx context.Context, user string) (*Person, error)
	// SetAddress records the user's address (making the record when there
	// is none), keeping their choices.
	SetAddress(ctx context.Context, user, email string, at time.Time) error
	// SetEmail turns the user's email off or on again: for one room, or
	// for all with room "" (which leaves the rooms' choices as they are).
	// It makes the record when there is none.
	SetEmail(ctx context.Context, user, room string, off bool, at time.Time) error
	// SetDigest records the user's digest choice (Daily, Weekly, Off or
	// "" for the default), making the record when there is none.
	SetDigest(ctx context.Context, user, digest string, at time.Time) error
	// SetReminders turns the user's reminders off or on again, making the
	// record when there is none.
	SetReminders(ctx context.Context, user string, off bool, at time.Time) error
	// SetTimeZone records the user's time zone (an IANA name the caller
	// checked, or "" for UTC), making the record when there is none.
	SetTimeZone(ctx context.Context, user, zone string, at time.Time) error
	// PeopleAfter returns up to limit records of users whose id sorts
	// after after, in the order of their ids: a page of everyone.
	PeopleAfter(ctx context.Context, after string, limit int) ([]Person, error)
}
