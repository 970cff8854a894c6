// Package staff knows who acts for the selling company besides the people
// who sign in: service accounts, whose API keys integrations (a CRM) use
// instead of a person's token, and the staff people the server has seen,
// found by email, so that an integration can name a room's owner.
//
// An API key is "drk_" followed by 43 characters of base64url: 32 random
// bytes. Only its SHA-256 is stored, and a request's key is found by that
// hash in one read. A fast hash is enough here, unlike for passwords: a
// key of 256 random bits cannot be guessed however fast each guess is,
// and bcrypt or argon2 would cost tens of milliseconds of CPU on every
// request and need a second identifier to find the record to compare
// with.
package staff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"dealroom"
)

// Scope names what a service account may do.
type Scope string

// The scopes. A service account may call only the routes its scopes name
// (the API's table); people's tokens are not scoped.
const (
	RoomsRead  Scope = "rooms:read"  // read rooms and their timelines
	RoomsWrite Scope = "rooms:write" // create and update rooms (the CRM's upsert)
	ExportRead Scope = "export:read" // export a room's timeline
	BackupRead Scope = "backup:read" // take a backup of the embedded store (all of it)
)

// Scopes are every scope, in the order they are shown.
var Scopes = []Scope{RoomsRead, RoomsWrite, ExportRead, BackupRead}

// KeyPrefix starts every API key, so that a key is recognised on sight
// (by people and by secret scanners) and told from a JWT.
const KeyPrefix = "drk_"

// MaxName bounds an account's name.
const MaxName = 100

// Account is a service account. Its key is never kept: KeyHash is the
// hex SHA-256 of it, and KeyStart its first characters, to recognise it
// in a list.
type Account struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []Scope    `json:"scopes"`
	KeyStart   string     `json:"key_start"`
	KeyHash    string     `json:"-"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Actor is who the account acts as: staff with a manager's reach over
// rooms, narrowed by its scopes. Its id is "svc:" and the account's.
func (a Account) Actor() dealroom.Actor {
	names := make([]string, len(a.Scopes))
	for i, s := range a.Scopes {
		names[i] = string(s)
	}
	return dealroom.Actor{ID: "svc:" + a.ID, Name: a.Name, Kind: dealroom.Staff, Role: dealroom.Manager,
		Scopes: strings.Join(names, " ")}
}

// Has reports whether an actor may act in scope sc: people always (their
// role decides), service accounts when their key has the scope.
func Has(a dealroom.Actor, sc Scope) bool {
	return !a.IsService() || slices.Contains(strings.Fields(a.Scopes), string(sc))
}

// Person is a staff person as the server last saw them sign in.
type Person struct {
	UserID string        `json:"user_id"`
	Name   string        `json:"name"`
	Email  string        `json:"email"` // lower case
	Role   dealroom.Role `json:"role"`
	SeenAt time.Time     `json:"seen_at"`
}

// Store keeps accounts and people. Implementations: boltstore and
// mongostore, checked by stafftest.TestStore.
type Store interface {
	// CreateAccount stores a new account. ECONFLICT when its id or key
	// hash is taken.
	CreateAccount(ctx context.Context, a Account) error
	// AccountByKey returns the account whose key hashes to hash, revoked
	// or not; nil when there is none.
	AccountByKey(ctx context.Context, hash string) (*Account, error)
	// Accounts returns every account, by id.
	Accounts(ctx context.Context) ([]Account, error)
	// RevokeAccount sets the account's revocation time unless it is set
	// and returns the account as it is then. ENOTFOUND when there is none.
	RevokeAccount(ctx context.Context, id string, at time.Time) (*Account, error)
	// TouchAccount moves the account's last use to at, unless it is later
	// already. No error when there is no such account.
	TouchAccount(ctx context.Context, id string, at time.Time) error
	// SetPerson records a staff person under their email (lower case),
	// replacing what was recorded under it.
	SetPerson(ctx context.Context, p Person) error
	// PersonByEmail returns the person recorded under the email (lower
	// case), nil when there is none.
	PersonByEmail(ctx context.Context, email string) (*Person, error)
}

// HashKey returns the hash under which a key is stored.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// IsKey reports whether a bearer credential is an API key (rather than a
// token).
func IsKey(credential string) bool { return strings.HasPrefix(credential, KeyPrefix) }

// newKey returns a new API key.
func newKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// newID returns a new account id.
func newID() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return "sa_" + base64.RawURLEncoding.EncodeToString(b)
}
