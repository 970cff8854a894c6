package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"dealroom"
	"dealroom/internal/netguard"
)

// Notification is the payload a device's service worker receives (JSON):
// what it shows, and the page a tap opens.
type Notification struct {
	Title string `json:"title"`
	Body  string `json:"body,omitempty"`
	// URL is the exact item in the room, on the web app's origin.
	URL string `json:"url"`
	// Tag names the notification on the device: a repeat of one replaces
	// it rather than showing twice.
	Tag string `json:"tag,omitempty"`
}

// maxPayload bounds a notification's JSON: RFC 8291 leaves 3993 bytes of
// the 4096 a push service must take; what is left covers padding.
const maxPayload = 3000

// Urgency of a message (RFC 8030 5.3).
const (
	UrgencyNormal = "normal"
	UrgencyHigh   = "high"
)

// ErrGone is wrapped by Send's error when the push service says the
// subscription is no more (404 or 410): the caller removes it.
var ErrGone = errors.New("push: the subscription has expired or was removed")

// Client posts notifications to push services.
type Client struct {
	keys    Keys
	subject string
	http    *http.Client
	ttl     time.Duration // the TTL header (RFC 8030 5.2)
}

// DefaultTTL is how long a push service keeps a message for an offline
// device: a day, the time after which the outbox gives a message up.
const DefaultTTL = 24 * time.Hour

// NewClient returns a client that signs with keys, names the sender as
// subject (a mailto: or https: URI, RFC 8292 2.1) and posts through the
// guard's client. ttl 0 means DefaultTTL.
func NewClient(keys Keys, subject string, g *netguard.Guard, ttl time.Duration) (*Client, error) {
	if _, err := KeysOf(keys.Private); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(subject, "mailto:") && !strings.HasPrefix(subject, "https://") {
		return nil, dealroom.Invalid("vapid_subject", "must be a mailto: or https: URI")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Client{keys: keys, subject: subject, http: g.Client(), ttl: ttl}, nil
}

// PublicKey is the VAPID public key the web app subscribes with.
func (c *Client) PublicKey() string { return c.keys.Public }

// Send encrypts n for the device of s and posts it. Its error wraps
// ErrGone for a subscription that is no more, is EUNAVAILABLE for what
// may pass (the push service unreachable or timing out, 429, 5xx) and of
// another code for a refusal that will not (400, 401, 403, 413).
func (c *Client) Send(ctx context.Context, s Subscription, n Notification, urgency string) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if len(body) > maxPayload {
		return dealroom.Invalid("payload", "the notification is %d bytes, more than %d", len(body), maxPayload)
	}
	// The library writes "mailto:" before any subject that is not an
	// https URL; give it the address alone.
	sub := strings.TrimPrefix(c.subject, "mailto:")
	res, err := webpush.SendNotificationWithContext(ctx, body, &webpush.Subscription{
		Endpoint: s.Endpoint, Keys: webpush.Keys{P256dh: s.P256dh, Auth: s.Auth},
	}, &webpush.Options{HTTPClient: c.http, Subscriber: sub, TTL: int(c.ttl / time.Second),
		Urgency: webpush.Urgency(urgency), Topic: topic(n.Tag),
		VAPIDPublicKey: c.keys.Public, VAPIDPrivateKey: c.keys.Private})
	if err != nil {
		if errors.Is(err, netguard.ErrRefused) {
			return dealroom.Errorf(dealroom.EFORBIDDEN, "push to %s: %v", host(s.Endpoint), err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return dealroom.Unavailable(fmt.Errorf("push to %s: %w", host(s.Endpoint), err))
	}
	defer res.Body.Close()
	// The answer's body is not needed: read a little of it, so the
	// connection can be used again, and no more.
	detail, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusNotFound || code == http.StatusGone:
		return fmt.Errorf("%w (%s answered %d)", ErrGone, host(s.Endpoint), code)
	case code == http.StatusTooManyRequests || code >= 500 || code == http.StatusRequestTimeout:
		return dealroom.Unavailable(fmt.Errorf("push to %s: %d %s", host(s.Endpoint), code, oneLine(detail)))
	default:
		return dealroom.Errorf(dealroom.EBADREQUEST, "push to %s refused: %d %s", host(s.Endpoint), code, oneLine(detail))
	}
}

// topic makes the Topic header (RFC 8030 5.4: up to 32 base64url
// characters) of a tag: a message waiting for an offline device is
// replaced by a later one of the same topic.
func topic(tag string) string {
	var b strings.Builder
	for _, r := range tag {
		if b.Len() == 32 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func host(endpoint string) string {
	rest, ok := strings.CutPrefix(endpoint, "https://")
	if !ok {
		return "the push service"
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func oneLine(b []byte) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "")), " ")
}
