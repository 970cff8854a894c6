package gcfloor

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		live, headroom uint64
		want           int
	}{
		{32 * mib, 128 * mib, 400},   // a small heap grows by the headroom
		{100 * mib, 128 * mib, 128},  // ...
		{128 * mib, 128 * mib, Base}, // the runtime's own from there
		{1024 * mib, 128 * mib, Base},
		{32 * mib, 0, Base},        // no headroom: the default
		{1 * mib, 128 * mib, 3200}, // a heap under 4 MiB counts as 4 MiB
		{0, 128 * mib, 3200},       // ...
		{1, 1 << 62, maxPercent},   // bounded
		{6 * mib, 8 * mib, 133},    // rounded down
		{64 * mib, 96 * mib, 150},
	} {
		assert.Equal(t, tt.want, Percent(tt.live, tt.headroom), "live %d, headroom %d", tt.live, tt.headroom)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "1048576": 1 << 20, "128MiB": 128 << 20, "64 KiB": 64 << 10, "2GiB": 2 << 30} {
		got, ok := ParseSize(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "12MB", "1.5GiB", "MiB", "99999999999999999999GiB"} {
		_, ok := ParseSize(in)
		assert.False(t, ok, in)
	}
}

// TestFloorFollowsTheLiveHeap: the percent follows the live heap as it
// grows and shrinks, is set again only on a real change, and goes back to
// the default when the floor stops.
func TestFloorFollowsTheLiveHeap(t *testing.T) {
	const mib = 1 << 20
	var mu sync.Mutex
	live := uint64(32 * mib)
	var sets []int
	f := &Floor{Headroom: 128 * mib, Every: time.Millisecond,
		live: func() uint64 { mu.Lock(); defer mu.Unlock(); return live },
		set:  func(p int) int { mu.Lock(); defer mu.Unlock(); sets = append(sets, p); return 0 }}
	setLive := func(n uint64) { mu.Lock(); live = n; mu.Unlock() }
	seen := func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), sets...) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()

	require.Eventually(t, func() bool { return len(seen()) == 1 }, 5*time.Second, time.Millisecond)
	setLive(0) // as before the first collection: nothing changes
	time.Sleep(20 * time.Millisecond)
	setLive(33 * mib) // 387: less than a tenth from 400
	time.Sleep(20 * time.Millisecond)
	setLive(64 * mib)
	require.Eventually(t, func() bool { return len(seen()) == 2 }, 5*time.Second, time.Millisecond)
	setLive(512 * mib)
	require.Eventually(t, func() bool { return len(seen()) == 3 }, 5*time.Second, time.Millisecond)
	setLive(16 * mib)
	require.Eventually(t, func() bool { return len(seen()) == 4 }, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	assert.Equal(t, []int{400, 200, Base, 800, Base}, seen())
}

// TestFloorOnTheRuntime: with the real runtime, a small heap runs with a
// percent above the default while the floor runs, and with the default
// after.
func TestFloorOnTheRuntime(t *testing.T) {
	runtime.GC() // a live heap to read
	f := &Floor{Headroom: 1 << 40, Every: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	require.Eventually(t, func() bool {
		p := getPercent()
		return p > Base
	}, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	assert.Equal(t, Base, getPercent())
}

// getPercent reads the GC percent without changing it.
func getPercent() int {
	p := debug.SetGCPercent(Base)
	debug.SetGCPercent(p)
	return p
}
