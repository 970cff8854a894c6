package ws

import "time"

// Config tunes the websocket endpoint. Zero values take defaults.
type Config struct {
	// AllowedOrigins are the host patterns (path.Match syntax, as
	// "app.example.com" or "*.example.com") whose pages may open a
	// websocket besides the server's own origin.
	AllowedOrigins []string
	// MaxFrameBytes bounds a client frame (128 KiB); a bigger one closes
	// the connection with status 1009.
	MaxFrameBytes int64
	// PingEvery is the keep-alive interval (15s); a device that does not
	// answer a ping within PingTimeout (10s) is disconnected, and its
	// presence ends.
	PingEvery   time.Duration
	PingTimeout time.Duration
	// WriteTimeout bounds one frame's write (10s).
	WriteTimeout time.Duration
	// MaxBadFrames is how many unreadable frames a connection may send
	// before it is closed (10).
	MaxBadFrames int
	// MaxSockets bounds the websockets of the instance (10000): one more
	// is refused with 503 before the upgrade. MaxSocketsPerUser bounds one
	// user's (20; 429).
	MaxSockets        int
	MaxSocketsPerUser int
	// MaxSubscriptions bounds the rooms one connection follows (100); a
	// subscribe past it is refused with rate_limited.
	MaxSubscriptions int
	// FrameRate is the sustained rate of each kind of frame (subscribe,
	// unsubscribe, presence, ping, command) a connection may send, per
	// second and kind (20), with bursts of FrameBurst (twice the rate;
	// subscribe and unsubscribe at least MaxSubscriptions, so that a
	// device that reconnects subscribes again at once). A frame over it
	// is refused with rate_limited.
	FrameRate  float64
	FrameBurst int
	// Now is the clock that ends a connection when its token expires,
	// and that times the recheck of its sign-in (time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 128 << 10
	}
	if c.PingEvery <= 0 {
		c.PingEvery = 15 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxBadFrames <= 0 {
		c.MaxBadFrames = 10
	}
	if c.MaxSockets <= 0 {
		c.MaxSockets = 10000
	}
	if c.MaxSocketsPerUser <= 0 {
		c.MaxSocketsPerUser = 20
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 100
	}
	if c.FrameRate <= 0 {
		c.FrameRate = 20
	}
	if c.FrameBurst <= 0 {
		c.FrameBurst = max(1, int(2*c.FrameRate))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}
