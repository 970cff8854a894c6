package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"dealroom"
)

// MinKeyLen is the shortest key Seal and OpenAttempt accept, in bytes.
const MinKeyLen = 32

// sealLabel separates the MACs of attempts from any other use of the key.
const sealLabel = "dealroom oidc attempt\x00"

// Seal encodes a for a cookie: its JSON and an HMAC-SHA256 of it with key,
// both in unpadded base64url, joined by a dot. The attempt is signed, not
// encrypted: the cookie must be HttpOnly and Secure, and live no longer
// than the attempt (its Expires). key must be at least MinKeyLen bytes,
// and should serve nothing else (derive it from the server's secret).
func (a Attempt) Seal(key []byte) (string, error) {
	if len(key) < MinKeyLen {
		return "", errors.New("oidc: the attempt key is shorter than 32 bytes")
	}
	payload, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(key, p)), nil
}

// OpenAttempt decodes an attempt sealed with key. It fails
// (unauthenticated) when sealed was not made by Seal with this key or was
// changed since. Whether the attempt has expired is Finish's to say.
func OpenAttempt(key []byte, sealed string) (Attempt, error) {
	refused := dealroom.Errorf(dealroom.EUNAUTH, "this sign-in cannot be read; start again")
	if len(key) < MinKeyLen {
		return Attempt{}, errors.New("oidc: the attempt key is shorter than 32 bytes")
	}
	p, sig, ok := strings.Cut(sealed, ".")
	if !ok {
		return Attempt{}, refused
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, p)) {
		return Attempt{}, refused
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Attempt{}, refused
	}
	var a Attempt
	if err := json.Unmarshal(payload, &a); err != nil {
		return Attempt{}, refused
	}
	return a, nil
}

// mac is the HMAC-SHA256 of an encoded attempt.
func mac(key []byte, payload string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(sealLabel))
	h.Write([]byte(payload))
	return h.Sum(nil)
}
