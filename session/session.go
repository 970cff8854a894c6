// Package session keeps browser sessions: after a sign-in, the browser
// holds a random token in an HttpOnly cookie, and the session it names is
// kept in the store, so that every instance knows it and it can be ended
// at once (sign out, sign out everywhere, an admin ending a person's
// sessions). Only the SHA-256 of a token is stored: a copy of the store
// signs nobody in.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"dealroom"
)

// Via says how a session was signed in.
type Via string

// The ways to sign in.
const (
	ViaInvite Via = "invite" // a customer accepted an invite
	ViaEmail  Via = "email"  // a customer redeemed a sign-in link sent by email
	ViaOIDC   Via = "oidc"   // a staff member signed in with the company's identity provider
	ViaToken  Via = "token"  // a bearer token was exchanged (scripts, development)
)

// Session is one browser's sign-in.
type Session struct {
	// ID is the hex SHA-256 of the session's token; the token itself is
	// only ever in the browser's cookie.
	ID    string
	Actor dealroom.Actor
	// CSRF is the value a cookie-authenticated request that changes
	// something must repeat in its X-CSRF-Token header.
	CSRF      string
	Via       Via
	CreatedAt time.Time
	// LastSeen is when the session was last used (to within RefreshEvery).
	LastSeen time.Time
	// IdleUntil is when the session ends unless used again; ExpiresAt is
	// when it ends in any case.
	IdleUntil time.Time
	ExpiresAt time.Time
}

// Ended reports whether the session is over at now.
func (s Session) Ended(now time.Time) bool {
	return !now.Before(s.IdleUntil) || !now.Before(s.ExpiresAt)
}

// Store keeps sessions, and the tickets of the sign-ins that lead to
// them. Implementations: boltstore and mongostore (conformance suite:
// sessiontest.TestStore).
type Store interface {
	Tickets
	// CreateSession records s (its ID set). ECONFLICT when the id exists.
	CreateSession(ctx context.Context, s Session) error
	// Session returns the session of an id, ended or not; ENOTFOUND when
	// there is none (never was, was ended, or was cleaned away).
	Session(ctx context.Context, id string) (Session, error)
	// TouchSession records that the session was used at seen, and lives
	// until idleUntil unless used again. A session that is gone is no
	// error.
	TouchSession(ctx context.Context, id string, seen, idleUntil time.Time) error
	// EndSession removes a session; one that is gone is no error.
	EndSession(ctx context.Context, id string) error
	// EndUserSessions removes every session of a user and returns their
	// ids (none: empty, no error).
	EndUserSessions(ctx context.Context, user string) ([]string, error)
	// UserSessions returns a user's sessions, oldest first; a store may
	// leave out the ended ones.
	UserSessions(ctx context.Context, user string) ([]Session, error)
	// SweepSessions removes every session ended at now (idle or past its
	// absolute end) and returns how many: the server runs it daily, so
	// that sessions of people who never come back do not stay for ever.
	SweepSessions(ctx context.Context, now time.Time) (int, error)
}

// Defaults of Sessions' lifetimes.
const (
	// DefaultIdle: a week. Customers have no password and no identity
	// provider: their session is their way back into the room until a new
	// invite, so one who looks in weekly stays signed in; a session left
	// unused for longer (a lost laptop, a shared computer) ends.
	DefaultIdle = 7 * 24 * time.Hour
	// DefaultMax: 30 days whatever the use (the default lifetime of the
	// token a customer gets on accepting an invite), so that a stolen
	// cookie does not last for ever and a changed role or a person who
	// left is seen at the next sign-in.
	DefaultMax = 30 * 24 * time.Hour
	// RefreshEvery bounds how often use of a session is written: at most
	// once a minute, not once per request.
	RefreshEvery = time.Minute
)

// Sessions opens, finds and ends sessions, with their lifetimes.
type Sessions struct {
	Store Store
	// Idle is how long a session lives without use (DefaultIdle); Max how
	// long it lives at most (DefaultMax).
	Idle, Max time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (m *Sessions) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Sessions) lifetimes() (idle, max time.Duration) {
	idle, max = m.Idle, m.Max
	if idle <= 0 {
		idle = DefaultIdle
	}
	if max <= 0 {
		max = DefaultMax
	}
	return idle, max
}

// Hash returns the id of the session of token: what the store keeps.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// random returns n random bytes, URL-safe base64.
func random(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create opens a session of a, signed in via how, and returns the token
// for the browser's cookie with the session. A non-zero notAfter ends the
// session then at the latest (the end of the token it was exchanged for:
// a session never outlives the sign-in it came from).
func (m *Sessions) Create(ctx context.Context, a dealroom.Actor, via Via, notAfter time.Time) (token string, s Session, err error) {
	now := m.now()
	idle, max := m.lifetimes()
	token = random(32)
	s = Session{ID: Hash(token), Actor: a, CSRF: random(32), Via: via,
		CreatedAt: now, LastSeen: now, IdleUntil: now.Add(idle), ExpiresAt: now.Add(max)}
	if !notAfter.IsZero() && notAfter.Before(s.ExpiresAt) {
		s.ExpiresAt = notAfter
	}
	if s.IdleUntil.After(s.ExpiresAt) {
		s.IdleUntil = s.ExpiresAt
	}
	if err := m.Store.CreateSession(ctx, s); err != nil {
		return "", Session{}, err
	}
	return token, s, nil
}

// Get returns the session of token, and records its use (at most once per
// RefreshEvery). EUNAUTH when there is no such session or it has ended.
func (m *Sessions) Get(ctx context.Context, token string) (Session, error) {
	if token == "" {
		return Session{}, errNoSession
	}
	s, err := m.Store.Session(ctx, Hash(token))
	if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
		return Session{}, errNoSession
	}
	if err != nil {
		return Session{}, err
	}
	now := m.now()
	if s.Ended(now) {
		// Gone for good: clean it away (a failure here changes nothing).
		_ = m.Store.EndSession(ctx, s.ID)
		return Session{}, errNoSession
	}
	if now.Sub(s.LastSeen) >= RefreshEvery {
		idle, _ := m.lifetimes()
		s.LastSeen, s.IdleUntil = now, now.Add(idle)
		if s.IdleUntil.After(s.ExpiresAt) {
			s.IdleUntil = s.ExpiresAt
		}
		if err := m.Store.TouchSession(ctx, s.ID, s.LastSeen, s.IdleUntil); err != nil {
			return Session{}, err
		}
	}
	return s, nil
}

// Alive checks that the session of an id has not ended, without
// recording a use (a websocket's command checks its session so): EUNAUTH
// when it has.
func (m *Sessions) Alive(ctx context.Context, id string) error {
	s, err := m.Store.Session(ctx, id)
	if dealroom.ErrorCode(err) == dealroom.ENOTFOUND || (err == nil && s.Ended(m.now())) {
		return errNoSession
	}
	return err
}

var errNoSession = dealroom.Errorf(dealroom.EUNAUTH, "this session has ended; sign in again")

// End ends one session.
func (m *Sessions) End(ctx context.Context, id string) error {
	return m.Store.EndSession(ctx, id)
}

// EndUser ends every session of a user and returns their ids.
func (m *Sessions) EndUser(ctx context.Context, user string) ([]string, error) {
	return m.Store.EndUserSessions(ctx, user)
}

// List returns a user's sessions that have not ended, oldest first.
func (m *Sessions) List(ctx context.Context, user string) ([]Session, error) {
	all, err := m.Store.UserSessions(ctx, user)
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := []Session{}
	for _, s := range all {
		if !s.Ended(now) {
			out = append(out, s)
		}
	}
	return out, nil
}
