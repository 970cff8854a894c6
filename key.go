package dealroom

import "strconv"

// MaxKey is the longest idempotency key: the REST Idempotency-Key header
// and a websocket command's id, which serves as the same key, follow one
// rule, so that a client can use one id generator for both.
const MaxKey = 200

// ValidKey tells whether k can serve as an idempotency key: 1 to MaxKey
// printable ASCII characters without spaces (they are stored and compared
// byte for byte, and travel in an HTTP header).
func ValidKey(k string) bool {
	if k == "" || len(k) > MaxKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// KeyRule says what ValidKey accepts, for error messages.
func KeyRule() string {
	return "1 to " + strconv.Itoa(MaxKey) + " printable ASCII characters without spaces"
}
