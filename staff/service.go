package staff

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"dealroom"
)

// DefaultTouchEvery is how often, at most, a key's last use is written:
// enough to tell a key in use from a forgotten one, without a write per
// request.
const DefaultTouchEvery = time.Minute

// Service manages service accounts and the people directory on a Store.
type Service struct {
	Store Store
	// Now is the clock (default dealroom.Now).
	Now func() time.Time
	// TouchEvery is how often, at most, an account's last use is written
	// (default DefaultTouchEvery).
	TouchEvery time.Duration
	// Log reports failures that do not fail the request (nil: none).
	Log *slog.Logger

	mu sync.Mutex
	// seen are the people recorded by this process, user id → what was
	// recorded, so that a sign-in already known writes nothing.
	seen map[string]Person
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Millisecond)
	}
	return dealroom.Now()
}

func (s *Service) touchEvery() time.Duration {
	if s.TouchEvery > 0 {
		return s.TouchEvery
	}
	return DefaultTouchEvery
}

// onlyAdmins refuses everyone but people who are admins: a service
// account manages no accounts, whatever its scopes.
func onlyAdmins(a dealroom.Actor) error {
	if a.Kind != dealroom.Staff || a.Role != dealroom.Admin || a.IsService() {
		return dealroom.Errorf(dealroom.EFORBIDDEN, "only admins manage service accounts")
	}
	return nil
}

// Create makes a service account with the scopes named and returns it
// with its key, which is shown this once: only its hash is kept. Admins
// only. Errors: EFORBIDDEN, EINVALID (name, scopes).
//
// idem is the request's Idempotency-Key, or empty. With one, the
// account's id is derived from the admin and the key, so a retry never
// makes a second account; since the first key cannot be shown again,
// the retry is ECONFLICT naming the account made the first time (to be
// revoked if its key was lost).
func (s *Service) Create(ctx context.Context, admin dealroom.Actor, name string, scopes []Scope, idem string) (Account, string, error) {
	if err := onlyAdmins(admin); err != nil {
		return Account{}, "", err
	}
	name, err := dealroom.Line("name", name, 1, MaxName)
	if err != nil {
		return Account{}, "", err
	}
	if len(scopes) == 0 {
		return Account{}, "", dealroom.Invalid("scopes", "scopes must name at least one of %v", Scopes)
	}
	var kept []Scope
	for _, sc := range Scopes { // known ones, once each, in their order
		if slices.Contains(scopes, sc) {
			kept = append(kept, sc)
		}
	}
	for _, want := range scopes {
		if !slices.Contains(kept, want) {
			return Account{}, "", dealroom.Invalid("scopes", "scopes are among %v, not %q", Scopes, dealroom.Clip(string(want)))
		}
	}
	id := newID()
	if idem != "" {
		id = keyedID(admin.ID, idem)
	}
	key := newKey()
	a := Account{ID: id, Name: name, Scopes: kept, KeyStart: key[:len(KeyPrefix)+6], KeyHash: HashKey(key),
		CreatedBy: admin.ID, CreatedAt: s.now()}
	if err := s.Store.CreateAccount(ctx, a); err != nil {
		if idem != "" && dealroom.ErrorCode(err) == dealroom.ECONFLICT {
			return Account{}, "", dealroom.Errorf(dealroom.ECONFLICT,
				"service account %s was made with this Idempotency-Key; its key was shown once and cannot be shown again "+
					"(if that answer was lost, revoke %s and create another with a new key)", id, id)
		}
		return Account{}, "", err
	}
	return a, key, nil
}

// keyedID is the id of the account an admin creates with an
// Idempotency-Key: a hash of both, in the form of newID's.
func keyedID(admin, idem string) string {
	h := sha256.Sum256([]byte("service-account-create\x00" + admin + "\x00" + idem))
	return "sa_" + base64.RawURLEncoding.EncodeToString(h[:12])
}

// Accounts lists every service account, revoked ones included. Admins
// only.
func (s *Service) Accounts(ctx context.Context, admin dealroom.Actor) ([]Account, error) {
	if err := onlyAdmins(admin); err != nil {
		return nil, err
	}
	return s.Store.Accounts(ctx)
}

// Revoke ends an account's key at once: its next request is refused
// (401). Revoking twice keeps the first time. Admins only. Errors:
// EFORBIDDEN, ENOTFOUND.
func (s *Service) Revoke(ctx context.Context, admin dealroom.Actor, id string) (*Account, error) {
	if err := onlyAdmins(admin); err != nil {
		return nil, err
	}
	return s.Store.RevokeAccount(ctx, id, s.now())
}

// errBadKey refuses a key that is unknown or revoked, alike.
var errBadKey = dealroom.Errorf(dealroom.EUNAUTH, "this API key is not valid (unknown or revoked)")

// Authenticate returns the actor of an API key: EUNAUTH when the key is
// unknown or revoked. It reads the account on every request, so that a
// revocation holds at once on every instance, and writes its last use
// when the one recorded is TouchEvery old or more.
func (s *Service) Authenticate(ctx context.Context, key string) (dealroom.Actor, error) {
	if !IsKey(key) || len(key) > 100 {
		return dealroom.Actor{}, errBadKey
	}
	a, err := s.Store.AccountByKey(ctx, HashKey(key))
	if err != nil {
		return dealroom.Actor{}, err
	}
	if a == nil || a.RevokedAt != nil {
		return dealroom.Actor{}, errBadKey
	}
	now := s.now()
	if a.LastUsedAt == nil || now.Sub(*a.LastUsedAt) >= s.touchEvery() {
		if err := s.Store.TouchAccount(ctx, a.ID, now); err != nil && s.Log != nil {
			s.Log.Warn("recording an API key's use failed", "account", a.ID, "err", err)
		}
	}
	return a.Actor(), nil
}

// Seen records a staff person who signed in, under their email, so that
// integrations can name them (Owner). What this process recorded already
// is not written again. Failures are logged, not returned: signing in
// does not depend on it.
func (s *Service) Seen(ctx context.Context, a dealroom.Actor) {
	if a.Kind != dealroom.Staff || a.IsService() || a.Email == "" || a.ID == "" {
		return
	}
	p := Person{UserID: a.ID, Name: a.Name, Email: strings.ToLower(a.Email), Role: a.Role}
	s.mu.Lock()
	known := s.seen[a.ID] == p
	s.mu.Unlock()
	if known {
		return
	}
	p.SeenAt = s.now()
	if err := s.Store.SetPerson(ctx, p); err != nil {
		if s.Log != nil {
			s.Log.Warn("recording a staff person failed", "user", a.ID, "err", err)
		}
		return
	}
	p.SeenAt = time.Time{}
	s.mu.Lock()
	if s.seen == nil || len(s.seen) > 100_000 {
		s.seen = map[string]Person{}
	}
	s.seen[a.ID] = p
	s.mu.Unlock()
}

// Owner returns the staff person recorded under an email (any case), as
// an actor; a zero Actor when nobody is.
func (s *Service) Owner(ctx context.Context, email string) (dealroom.Actor, error) {
	p, err := s.Store.PersonByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if err != nil || p == nil {
		return dealroom.Actor{}, err
	}
	return dealroom.Actor{ID: p.UserID, Name: p.Name, Email: p.Email, Kind: dealroom.Staff, Role: p.Role}, nil
}
