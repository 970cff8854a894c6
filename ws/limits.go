package ws

import (
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"dealroom"
	"dealroom/hub"
)

// StatusTokenExpired is the close code of a websocket whose token expired:
// the client connects again with a fresh token (reconnecting with the same
// one is refused with 401).
const StatusTokenExpired websocket.StatusCode = 4001

// tokenExpiredReason is the close reason sent with StatusTokenExpired.
const tokenExpiredReason = "token expired: reconnect with a fresh token"

// StatusSignedOut is the close code of a websocket whose sign-in was ended
// (the invite its token came from was revoked): the token will not be
// accepted again, and the device signs out.
const StatusSignedOut websocket.StatusCode = 4003

// signedOutReason is the close reason sent with StatusSignedOut.
const signedOutReason = "signed out: this sign-in was ended; sign in again"

// sockets counts the open websockets, in all and per user, so that one
// token cannot hold the server's memory with connections.
type sockets struct {
	mu     sync.Mutex
	total  int
	byUser map[string]int
}

// acquire counts one more socket of the user, or refuses it: ERATELIMITED
// (429) past the per-user cap, EUNAVAILABLE (503) past the total one.
func (c *sockets) acquire(user string, perUser, total int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= total {
		return dealroom.Errorf(dealroom.EUNAVAILABLE, "this server holds as many websockets as it may (%d); retry later or on another instance", total)
	}
	if c.byUser[user] >= perUser {
		return dealroom.Errorf(dealroom.ERATELIMITED, "you have %d websockets open, the most one user may; close one (one socket carries every room)", perUser)
	}
	if c.byUser == nil {
		c.byUser = map[string]int{}
	}
	c.total++
	c.byUser[user]++
	return nil
}

// release counts a socket of the user less.
func (c *sockets) release(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.byUser[user]--; c.byUser[user] <= 0 {
		delete(c.byUser, user)
	}
}

// frameKinds are the client frame types, each with its own token bucket.
var frameKinds = [...]string{hub.Subscribe, hub.Unsubscribe, hub.Presence, hub.Ping, hub.Command, hub.Read}

// frameLimits are a connection's token buckets, one per frame kind, made
// when a kind is first sent (an idle connection holds none). Used by the
// frames goroutine only.
type frameLimits struct {
	buckets [len(frameKinds)]*rate.Limiter
}

// allow takes a token of the frame kind's bucket at now.
func (l *frameLimits) allow(rc *Config, kind string, now time.Time) bool {
	for i, k := range frameKinds {
		if k != kind {
			continue
		}
		if l.buckets[i] == nil {
			burst := rc.FrameBurst
			if kind == hub.Subscribe || kind == hub.Unsubscribe {
				// A device that reconnects subscribes again to every
				// room it follows, at once.
				burst = max(burst, rc.MaxSubscriptions)
			}
			l.buckets[i] = rate.NewLimiter(rate.Limit(rc.FrameRate), burst)
		}
		return l.buckets[i].AllowN(now, 1)
	}
	return true
}

// expired tells whether the connection's token has expired.
func (c *conn) expired() bool { return !c.s.cfg.Now().Before(c.until) }

// endExpired closes the connection of an expired token.
func (c *conn) endExpired() { c.end(StatusTokenExpired, tokenExpiredReason) }
