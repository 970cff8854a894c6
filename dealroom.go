// Package dealroom holds the vocabulary shared by every part of the server:
// who acts (Actor), what they may see (Visibility), and the one coded Error
// type. It imports nothing of the project; the domain lives in the room and
// task packages, the adapters beside them.
package dealroom

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind tells staff of the selling company from the customer's people.
type Kind string

// The kinds of users.
const (
	Staff    Kind = "staff"
	Customer Kind = "customer"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == Staff || k == Customer }

// Role is a staff member's role in the selling company.
type Role string

// The staff roles. Managers and admins act in every room as writers.
const (
	Rep     Role = "rep"
	Manager Role = "manager"
	Admin   Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == Rep || r == Manager || r == Admin }

// Actor is the authenticated user behind a request, as the token says.
type Actor struct {
	ID    string
	Name  string
	Email string
	Kind  Kind
	Role  Role // staff only
	// Invite is the invite whose acceptance issued the token (customers'
	// tokens from an invite link); the token ends when the invite is
	// revoked. Empty for every other token.
	Invite string
	// Scopes is set for a service account (package staff): the
	// space-separated scopes of its API key ("rooms:read rooms:write"),
	// which limit it to the routes they name. Empty for people.
	Scopes string `json:",omitempty"`
}

// IsService reports whether the actor is a service account acting with
// an API key.
func (a Actor) IsService() bool { return a.Scopes != "" }

// IsCustomer reports whether the actor is one of the customer's people.
func (a Actor) IsCustomer() bool { return a.Kind != Staff }

// Oversees reports whether the actor sees and writes in every room: staff
// managers and admins.
func (a Actor) Oversees() bool {
	return a.Kind == Staff && (a.Role == Manager || a.Role == Admin)
}

// Visibility says who may see an item and the events about it.
type Visibility string

// Shared items are seen by every member; internal ones by staff only.
const (
	Shared   Visibility = "shared"
	Internal Visibility = "internal"
)

// ParseVisibility checks v, with def standing in for an empty value.
func ParseVisibility(field string, v, def Visibility) (Visibility, error) {
	switch v {
	case "":
		return def, nil
	case Shared, Internal:
		return v, nil
	}
	return "", Invalid(field, "%s must be %q or %q, not %q", field, Shared, Internal, Clip(string(v)))
}

// Now returns the current time as the server records it: UTC, millisecond
// precision (what every store keeps exactly).
func Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// Text trims s and checks it against a length range in characters. A string
// that is not valid UTF-8 or holds control characters other than newlines
// and tabs is refused.
func Text(field, s string, min, max int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", Invalid(field, "%s is not valid UTF-8", field)
	}
	n := utf8.RuneCountInString(s)
	if n < min {
		if min == 1 {
			return "", Invalid(field, "%s must not be empty", field)
		}
		return "", Invalid(field, "%s must have at least %d characters", field, min)
	}
	if n > max {
		return "", Invalid(field, "%s must have at most %d characters (it has %d)", field, max, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return "", Invalid(field, "%s contains a control character", field)
		}
	}
	return s, nil
}

// Line is Text for single-line values such as names and titles.
func Line(field, s string, min, max int) (string, error) {
	s, err := Text(field, s, min, max)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", Invalid(field, "%s must be a single line", field)
	}
	return s, nil
}

// CheckJSONText refuses JSON text that encoding/json would silently change
// rather than reject: bytes that are not valid UTF-8, and \u escapes of a
// lone UTF-16 surrogate (\ud800 without its pair). Both come out as
// U+FFFD, so what a client sent would not be what is stored. It returns a
// bad_request error whose message says "not valid UTF-8" and, where it
// can, at which byte; what names the text ("the request body", "a frame").
func CheckJSONText(what string, b []byte) error {
	if !utf8.Valid(b) {
		for i := 0; i < len(b); {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return Errorf(EBADREQUEST, "%s is not valid UTF-8 (at byte %d)", what, i)
			}
			i += n
		}
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] != 'u' {
			i++ // an escape of one character, \\ included
			continue
		}
		r, ok := hex4(b[i+2:])
		switch {
		case !ok: // malformed: left to the JSON decoder
		case r >= 0xd800 && r < 0xdc00:
			if i+11 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if lo, ok := hex4(b[i+8:]); ok && lo >= 0xdc00 && lo < 0xe000 {
					i += 11
					continue
				}
			}
			return Errorf(EBADREQUEST, "%s is not valid UTF-8: the escape at byte %d is half a surrogate pair", what, i)
		case r >= 0xdc00 && r < 0xe000:
			return Errorf(EBADREQUEST, "%s is not valid UTF-8: the escape at byte %d is half a surrogate pair", what, i)
		}
		i += 5
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Clip shortens s for quoting in an error message.
func Clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Opt is an optional field of a partial update (PATCH): Set tells whether
// the field was present at all, Null whether it was present as null.
type Opt[T any] struct {
	Set  bool
	Null bool
	V    T
}

// Some returns a set, non-null Opt.
func Some[T any](v T) Opt[T] { return Opt[T]{Set: true, V: v} }

// UnmarshalJSON records presence, null, and the value.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.V)
}

// MarshalJSON writes the value, or null.
func (o Opt[T]) MarshalJSON() ([]byte, error) {
	if !o.Set || o.Null {
		return []byte("null"), nil
	}
	return json.Marshal(o.V)
}
