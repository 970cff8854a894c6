package room

import (
	"crypto/sha256"
	"encoding/hex"
	"net/mail"
	"strings"
	"time"

	"dealroom"
)

// Invite lifetimes.
const (
	DefaultInviteDays = 14
	MaxInviteDays     = 90
	// RepeatAcceptWindow is how long after its acceptance an invite may be
	// accepted again by the same person (a double click, a second tab);
	// later, the link is refused: a forwarded link is no standing key.
	RepeatAcceptWindow = 10 * time.Minute
)

// Invite lets one customer join a room by a link. Only a hash of its code
// is stored (the invite's ID), so the event log and the database never hold
// a usable code.
type Invite struct {
	ID         string     `json:"id"`
	RoomID     string     `json:"room_id"`
	Email      string     `json:"email"`
	Access     Access     `json:"access"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	AcceptedAt *time.Time `json:"accepted_at,omitempty"`
	AcceptedBy string     `json:"accepted_by,omitempty"`
}

// Status tells where an invite stands at now.
func (i *Invite) Status(now time.Time) string {
	switch {
	case i.RevokedAt != nil:
		return "revoked" // an accepted invite may be revoked too
	case i.AcceptedAt != nil:
		return "accepted"
	case !now.Before(i.ExpiresAt):
		return "expired"
	}
	return "pending"
}

// InviteDraft is the input of a new invite.
type InviteDraft struct {
	Email         string `json:"email"`
	Access        Access `json:"access"`
	ExpiresInDays int    `json:"expires_in_days"`
}

// Acceptance is what a customer gives when accepting an invite.
type Acceptance struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// InviteID returns the id under which the invite with the given code is
// stored.
func InviteID(code string) string {
	sum := sha256.Sum256([]byte(code))
	return "i_" + hex.EncodeToString(sum[:12])
}

// NewInviteCode returns a fresh unguessable code (130 bits).
func NewInviteCode() string { return secret(17) }

func checkEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 || !strings.Contains(email[strings.LastIndex(email, "@")+1:], ".") {
		return "", dealroom.Invalid(field, "%s must be an email address like name@company.com", field)
	}
	return email, nil
}
