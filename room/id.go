package room

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

// ids are Crockford-style base32 in lower case: URL-safe, case-insensitive
// to read aloud, and sortable by creation time.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix + "_" + a 26-character id whose first 10 characters
// encode the millisecond of t, so ids sort by creation time, and whose rest
// is 80 random bits.
func NewID(prefix string, t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	// 48 bits of time, then 80 random bits.
	if _, err := rand.Read(b[6:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// derivedID returns prefix + "_" + a stable id computed from parts, for ids
// that must come out the same on a retry (a room created under an
// idempotency key) or for the same person (a customer's email).
func derivedID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + "_" + idEncoding.EncodeToString(h.Sum(nil)[:16])
}

// CustomerID returns the user id of the customer with the given email: the
// same person gets the same id in every room they are invited to.
func CustomerID(email string) string {
	return derivedID("c", strings.ToLower(strings.TrimSpace(email)))
}

// secret returns n random bytes in the id alphabet, for invite codes.
func secret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return idEncoding.EncodeToString(b)
}
