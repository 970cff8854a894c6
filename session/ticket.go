package session

import (
	"context"
	"time"
)

// Ticket is a record kept for a short time and used at most once, in the
// store so that every instance sees it: the code of a sign-in link sent
// by email (taken once, by whoever redeems it first), the state and the
// nonce of a finished OpenID sign-in (added once: a second add is a
// replay), a slot of a per-address sending budget.
type Ticket struct {
	// ID names the ticket, with a prefix that says what it is for
	// ("link:", "oidc:", ...). For a secret it holds the secret's Hash,
	// never the secret: a copy of the store redeems nothing.
	ID string
	// Subject is what the ticket is about, like the email address a
	// sign-in link was sent to; it may be empty.
	Subject string
	// CreatedAt is when the ticket was added; ExpiresAt is when it stops
	// counting: it can no longer be taken, and a new ticket of the same ID
	// may replace it.
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Expired reports whether the ticket no longer counts at now.
func (t Ticket) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// Tickets keeps tickets. Implementations: boltstore and mongostore
// (conformance suite: sessiontest.TestStore). Every method is atomic on
// its own: of concurrent calls on one ID, on any instance, exactly one
// adds or takes the ticket.
type Tickets interface {
	// AddTicket records t. It reports false, and changes nothing, when a
	// ticket of t.ID is held that has not expired at t.CreatedAt; an
	// expired one is replaced.
	AddTicket(ctx context.Context, t Ticket) (added bool, err error)
	// TakeTicket removes the ticket of id and returns it. ENOTFOUND when
	// there is none or it has expired at now (an expired one is removed
	// too).
	TakeTicket(ctx context.Context, id string, now time.Time) (Ticket, error)
	// SweepTickets removes the tickets expired at now and returns how
	// many: the server runs it daily with SweepSessions.
	SweepTickets(ctx context.Context, now time.Time) (int, error)
}

// NewSecret returns a random secret of 32 bytes (256 bits), URL-safe
// base64: the code of a sign-in link. Only its Hash is stored.
func NewSecret() string { return random(32) }
