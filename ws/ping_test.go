package ws

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPingerSpreadsConnections: devices that connect at the same moment
// (after a deploy) are spread over the wheel's slots, so that their pings
// do not all go out, and their pongs come back, in one burst; and none is
// pinged before 90% of the interval has passed (a device busy catching up
// is not asked at once).
func TestPingerSpreadsConnections(t *testing.T) {
	p := &pinger{every: 15 * time.Second}
	p.running = true // no goroutine: only the wheel is looked at
	p.cur = 40       // the wheel has turned a while
	conns := make([]*conn, 1500)
	for i := range conns {
		conns[i] = &conn{}
		p.add(conns[i])
	}
	require.Len(t, p.slots, 150, "a slot per 100 ms of the interval")
	used := 0
	for i, slot := range p.slots {
		if len(slot) == 0 {
			continue
		}
		used++
		assert.Len(t, slot, 100, "slot %d", i)
		ticks := (i - p.cur + len(p.slots)) % len(p.slots)
		assert.GreaterOrEqual(t, ticks, 134, "slot %d is pinged after %d of 150 ticks", i, ticks)
	}
	assert.Equal(t, 15, used, "spread over the last tenth of the wheel")
	for _, w := range conns[:750] {
		p.remove(w)
	}
	assert.Equal(t, 750, p.n)
	total := 0
	for _, slot := range p.slots {
		total += len(slot)
	}
	assert.Equal(t, 750, total)

	short := &pinger{every: 50 * time.Millisecond}
	short.running = true
	short.add(&conn{})
	assert.Len(t, short.slots, 1, "an interval under a tick still has its slot")
}
