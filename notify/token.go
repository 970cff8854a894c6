package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"dealroom"
)

// Unsubscribe tokens name a user and a room ("" for every room) and carry
// an HMAC-SHA256 of both under the notifier's key, so that a link in an
// email turns off that person's email without their signing in, and
// nobody can make one for someone else. They do not expire: an old email's
// link must still work (RFC 8058 expects that).

var b64 = base64.RawURLEncoding

// tokenKey derives the key of unsubscribe tokens from the server's secret,
// for this one purpose.
func tokenKey(secret []byte) []byte { return purposeKey(secret, "dealroom email unsubscribe") }

// purposeKey derives a key for one purpose from the server's secret, so
// that a token made for one purpose is worth nothing for another.
func purposeKey(secret []byte, purpose string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

func (n *Notifier) mac(user, roomID string) []byte {
	mac := hmac.New(sha256.New, n.key)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(roomID))
	return mac.Sum(nil)[:16]
}

// UnsubscribeToken returns the token that turns off user's email about
// roomID ("": all of it).
func (n *Notifier) UnsubscribeToken(user, roomID string) string {
	return b64.EncodeToString([]byte(user)) + "." + b64.EncodeToString([]byte(roomID)) + "." +
		b64.EncodeToString(n.mac(user, roomID))
}

// errBadToken answers a token that was not made here, or was changed.
var errBadToken = dealroom.Errorf(dealroom.ENOTFOUND, "this unsubscribe link is not valid")

// openToken returns the user and the room a token names; ENOTFOUND when
// it is not one of ours.
func (n *Notifier) openToken(token string) (user, roomID string, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 600 {
		return "", "", errBadToken
	}
	var raw [3][]byte
	for i, p := range parts {
		if raw[i], err = b64.DecodeString(p); err != nil {
			return "", "", errBadToken
		}
	}
	user, roomID = string(raw[0]), string(raw[1])
	if user == "" || !hmac.Equal(raw[2], n.mac(user, roomID)) {
		return "", "", errBadToken
	}
	return user, roomID, nil
}
