// Package push sends Web Push notifications to people's browsers and
// phones: the subscriptions of their devices (Subscription, kept by a
// Store), the server's VAPID key pair (RFC 8292), one in the store for
// every instance, and the Client that encrypts a notification for a
// device (RFC 8291, aes128gcm) and posts it to the device's push service
// (RFC 8030), on github.com/SherClockHolmes/webpush-go. What is pushed,
// to whom and when is notify's decision: push is a channel of the same
// outbox as email.
//
// A subscription's endpoint is a URL its browser chose, so the requests go
// through netguard's client: https, public addresses only unless allowed.
package push

import (
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"dealroom"
	"dealroom/internal/netguard"
)

// Subscription is one device's push subscription: where to post and the
// keys to encrypt for (the browser's PushSubscription).
type Subscription struct {
	// ID is derived from the endpoint (IDOf): an endpoint belongs to one
	// person, the last who registered it (a shared browser signed into
	// by someone else moves to them).
	ID       string
	User     string
	Endpoint string
	// P256dh is the device's P-256 public key (65 bytes, uncompressed) and
	// Auth its 16-byte authentication secret, both unpadded base64url as
	// the browser gives them.
	P256dh    string
	Auth      string
	CreatedAt time.Time
}

// MaxPerUser bounds the devices one person registers.
const MaxPerUser = 20

// maxEndpoint bounds an endpoint's length; push services' are about 200
// to 500 bytes.
const maxEndpoint = 2048

// IDOf returns the id of the subscription of an endpoint.
func IDOf(endpoint string) string {
	h := sha256.Sum256([]byte(endpoint))
	return "ps" + hex.EncodeToString(h[:16])
}

// NewSubscription checks what a browser sent and returns the subscription
// of user: the endpoint an https URL the guard lets through (EINVALID
// "endpoint"), the keys unpadded or padded base64url of a P-256 point
// (EINVALID "keys.p256dh") and of 16 bytes (EINVALID "keys.auth").
func NewSubscription(g *netguard.Guard, user, endpoint, p256dh, auth string, now time.Time) (Subscription, error) {
	if len(endpoint) > maxEndpoint {
		return Subscription{}, dealroom.Invalid("endpoint", "must be at most %d bytes", maxEndpoint)
	}
	if _, err := g.CheckURL("endpoint", endpoint); err != nil {
		return Subscription{}, err
	}
	key, err := decodeKey(p256dh)
	if err != nil || len(key) != 65 {
		return Subscription{}, dealroom.Invalid("keys.p256dh", "must be the base64url of an uncompressed P-256 public key (65 bytes)")
	}
	if _, err := ecdh.P256().NewPublicKey(key); err != nil {
		return Subscription{}, dealroom.Invalid("keys.p256dh", "is not a point of P-256")
	}
	secret, err := decodeKey(auth)
	if err != nil || len(secret) != 16 {
		return Subscription{}, dealroom.Invalid("keys.auth", "must be the base64url of 16 bytes")
	}
	return Subscription{ID: IDOf(endpoint), User: user, Endpoint: endpoint,
		P256dh: base64.RawURLEncoding.EncodeToString(key), Auth: base64.RawURLEncoding.EncodeToString(secret),
		CreatedAt: now.UTC()}, nil
}

// decodeKey reads base64url, padded or not (browsers give it unpadded;
// some libraries pad).
func decodeKey(s string) ([]byte, error) {
	if b, err := base64.RawURLEncoding.Strict().DecodeString(s); err == nil {
		return b, nil
	}
	return base64.URLEncoding.Strict().DecodeString(s)
}

// Keys is a VAPID key pair: the P-256 private scalar (32 bytes) and the
// uncompressed public point (65 bytes), unpadded base64url. The public
// key is what the web app subscribes with (applicationServerKey).
type Keys struct {
	Private string
	Public  string
}

// GenerateKeys makes a new VAPID key pair.
func GenerateKeys() (Keys, error) {
	k, err := ecdh.P256().GenerateKey(nil)
	if err != nil {
		return Keys{}, err
	}
	return keysOf(k), nil
}

// KeysOf returns the pair of a private key given as base64url (a
// configured one): EINVALID when it is not a P-256 private key.
func KeysOf(private string) (Keys, error) {
	b, err := decodeKey(private)
	if err != nil || len(b) != 32 {
		return Keys{}, dealroom.Invalid("vapid_private_key", "must be the base64url of a 32-byte P-256 private key")
	}
	k, err := ecdh.P256().NewPrivateKey(b)
	if err != nil {
		return Keys{}, dealroom.Invalid("vapid_private_key", "is not a P-256 private key")
	}
	return keysOf(k), nil
}

func keysOf(k *ecdh.PrivateKey) Keys {
	return Keys{Private: base64.RawURLEncoding.EncodeToString(k.Bytes()),
		Public: base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes())}
}

// Store keeps subscriptions and the VAPID keys. Implementations:
// boltstore and mongostore, checked by pushtest.TestStore.
type Store interface {
	// AddPushSubscription keeps s under its ID, replacing the
	// subscription of the same endpoint (whoever had it: the endpoint is
	// now s.User's).
	AddPushSubscription(ctx context.Context, s Subscription) error
	// PushSubscriptions returns the user's subscriptions, oldest first.
	PushSubscriptions(ctx context.Context, user string) ([]Subscription, error)
	// RemovePushSubscription removes the user's subscription of that id:
	// ENOTFOUND when the user has none of it.
	RemovePushSubscription(ctx context.Context, user, id string) error
	// VAPIDKeys returns the server's key pair: the one kept, or fresh,
	// kept now, when none is. Instances that start together all get the
	// one that was kept first.
	VAPIDKeys(ctx context.Context, fresh Keys) (Keys, error)
}

// LoadKeys returns the key pair every instance uses: the one kept in st,
// made now when there is none.
func LoadKeys(ctx context.Context, st Store) (Keys, error) {
	fresh, err := GenerateKeys()
	if err != nil {
		return Keys{}, err
	}
	return st.VAPIDKeys(ctx, fresh)
}
