package jwtauth

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"dealroom"
)

// The cache of verified tokens stays bounded however many tokens come,
// and the newest one is always kept.
func TestVerifiedCacheIsBounded(t *testing.T) {
	var c verifiedCache
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range 3 * maxVerified {
		tok := "token-" + strconv.Itoa(i)
		c.put(tok, verified{actor: dealroom.Actor{ID: tok}, until: now.Add(time.Hour)}, now)
		_, ok := c.get(tok, now)
		assert.True(t, ok)
		if c.len() > maxVerified {
			t.Fatalf("%d tokens held, more than %d", c.len(), maxVerified)
		}
	}
	_, ok := c.get("token-0", now.Add(2*time.Hour))
	assert.False(t, ok)
}
