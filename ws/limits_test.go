package ws

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/hub"
)

// TestSocketsCaps: a user holds up to the per-user cap (then 429's code),
// the instance up to the total (then 503's), and a released socket makes
// room again.
func TestSocketsCaps(t *testing.T) {
	var s sockets
	require.NoError(t, s.acquire("ann", 2, 3))
	require.NoError(t, s.acquire("ann", 2, 3))
	assert.Equal(t, dealroom.ERATELIMITED, dealroom.ErrorCode(s.acquire("ann", 2, 3)))
	require.NoError(t, s.acquire("bob", 2, 3))
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(s.acquire("cid", 2, 3)))

	s.release("ann")
	require.NoError(t, s.acquire("cid", 2, 3), "a released socket makes room")
	s.release("ann")
	s.release("bob")
	s.release("cid")
	assert.Zero(t, s.total)
	assert.Empty(t, s.byUser, "a user without sockets is forgotten")
}

// TestFrameLimits: each kind of frame has its own bucket, of FrameBurst
// frames refilled at FrameRate a second; subscribe and unsubscribe burst
// to MaxSubscriptions at least, so that a device that reconnects follows
// its rooms again at once; and a connection that sent nothing holds no
// bucket.
func TestFrameLimits(t *testing.T) {
	cfg := Config{FrameRate: 1, FrameBurst: 3, MaxSubscriptions: 5}
	cfg.defaults()
	var l frameLimits
	for _, b := range l.buckets {
		assert.Nil(t, b)
	}
	now := time.Now()
	for i := range 3 {
		assert.True(t, l.allow(&cfg, hub.Presence, now), "presence %d", i)
	}
	assert.False(t, l.allow(&cfg, hub.Presence, now), "past the burst")
	assert.True(t, l.allow(&cfg, hub.Ping, now), "another kind has its own bucket")
	for i := range 5 {
		assert.True(t, l.allow(&cfg, hub.Subscribe, now), "subscribe %d", i)
	}
	assert.False(t, l.allow(&cfg, hub.Subscribe, now))
	assert.True(t, l.allow(&cfg, hub.Presence, now.Add(time.Second)), "a token a second comes back")
	assert.False(t, l.allow(&cfg, hub.Presence, now.Add(time.Second)))
}
