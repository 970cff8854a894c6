package hub

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
)

// aheadStore is a roomsStore that checks many rooms' heads in one call
// (HeadsStore), and records the heads of each call.
type aheadStore struct {
	*roomsStore
	mu    sync.Mutex
	calls []map[string]int64
}

var _ HeadsStore = (*aheadStore)(nil)

func (s *aheadStore) Ahead(ctx context.Context, heads map[string]int64) ([]string, error) {
	s.mu.Lock()
	s.calls = append(s.calls, maps.Clone(heads))
	s.mu.Unlock()
	var ahead []string
	for r, head := range heads {
		if l := s.logs[r]; l != nil {
			if rm, _ := l.Room(ctx, r); rm.Head > head {
				ahead = append(ahead, r)
			}
		}
	}
	return ahead, nil
}

// takeCalls returns the heads of the calls made since the last time, and
// forgets them.
func (s *aheadStore) takeCalls() []map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := s.calls
	s.calls = nil
	return calls
}

// blockedRoom makes the start of one room's feed wait until released.
type blockedRoom struct {
	*aheadStore
	room    string
	release chan struct{}
}

func (s *blockedRoom) Room(ctx context.Context, id string) (*room.Room, error) {
	if id == s.room {
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.aheadStore.Room(ctx, id)
}

// TestHeadChecksBatched: with a store that checks many rooms' heads at
// once, a pass asks it once per HeadBatch rooms, with every started
// room's head and no room still starting, and no room's head one by one;
// the rooms that were ahead get what they missed, once and in order, and
// the others nothing.
func TestHeadChecksBatched(t *testing.T) {
	const rooms = 7
	rs := &roomsStore{logs: map[string]*logStore{"starting": {}}, checks: map[string]int{}}
	for i := range rooms {
		rs.logs[fmt.Sprint("r", i)] = &logStore{}
	}
	st := &blockedRoom{aheadStore: &aheadStore{roomsStore: rs}, room: "starting", release: make(chan struct{})}
	t.Cleanup(func() { close(st.release) })
	h := newTestHub(t, Config{HeadCheck: time.Hour, HeadBatch: 3}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sessions := map[string]*Session{}
	for i := range rooms {
		r := fmt.Sprint("r", i)
		rs.logs[r].commit(r, 100) // an event before the device comes
		s := h.NewSession(dealroom.Actor{ID: "u-" + r, Kind: dealroom.Staff})
		defer s.Close()
		s.Subscribe(r, 0)
		require.Equal(t, []int64{1}, readUntilSubscribed(t, ctx, s))
		sessions[r] = s
	}
	// A device subscribes to a room whose feed cannot start yet.
	waiting := h.NewSession(dealroom.Actor{ID: "u-starting", Kind: dealroom.Staff})
	defer waiting.Close()
	waiting.Subscribe("starting", 0)
	require.Eventually(t, func() bool { return h.lookup("starting") != nil }, 20*time.Second, time.Millisecond)

	// Events whose broker messages were lost: three in r1, one in r5.
	for range 3 {
		rs.logs["r1"].commit("r1", 100)
	}
	rs.logs["r5"].commit("r5", 100)
	h.FeedRestored()

	calls := st.takeCalls()
	var sizes []int
	all := map[string]int64{}
	for _, c := range calls {
		sizes = append(sizes, len(c))
		for r, head := range c {
			_, twice := all[r]
			assert.False(t, twice, "room %s checked twice in a pass", r)
			all[r] = head
		}
	}
	slices.Sort(sizes)
	assert.Equal(t, []int{1, 3, 3}, sizes, "one call per batch of 3 rooms")
	want := map[string]int64{}
	for i := range rooms {
		want[fmt.Sprint("r", i)] = 1
	}
	assert.Equal(t, want, all, "every started room's head, and not the one starting")
	for r := range rs.logs {
		assert.Zero(t, rs.headChecks(r), "room %s checked on its own", r)
	}

	assert.Equal(t, []int64{2, 3, 4}, readEvents(t, ctx, sessions["r1"], 3))
	assert.Equal(t, []int64{2}, readEvents(t, ctx, sessions["r5"], 1))
	// The next event of each room is the next each device gets: nothing
	// came twice, and the rooms that were not ahead got nothing more.
	for i := range rooms {
		r := fmt.Sprint("r", i)
		ev := rs.logs[r].commit(r, 100)
		h.Committed(ev)
		assert.Equal(t, []int64{ev.Seq}, readEvents(t, ctx, sessions[r], 1), "room %s", r)
	}

	// Rooms restored: only those are checked, in one call.
	rs.logs["r3"].commit("r3", 100)
	h.RoomsRestored([]string{"r3", "r4", "r-not-followed"})
	assert.Equal(t, []map[string]int64{{"r3": 2, "r4": 2}}, st.takeCalls())
	assert.Equal(t, []int64{3}, readEvents(t, ctx, sessions["r3"], 1))
}

// TestHeadChecksBatchedPeriodic: the periodic pass checks the heads in
// batches too, and a lost event reaches the room's device.
func TestHeadChecksBatchedPeriodic(t *testing.T) {
	rs := &roomsStore{logs: map[string]*logStore{"r1": {}, "r2": {}}, checks: map[string]int{}}
	st := &aheadStore{roomsStore: rs}
	h := newTestHub(t, Config{HeadCheck: 20 * time.Millisecond}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := h.NewSession(dealroom.Actor{ID: "u1", Kind: dealroom.Staff})
	defer s.Close()
	s.Subscribe("r2", 0)
	require.Empty(t, readUntilSubscribed(t, ctx, s))

	rs.logs["r2"].commit("r2", 100) // its message lost
	assert.Equal(t, []int64{1}, readEvents(t, ctx, s, 1))
	assert.NotEmpty(t, st.takeCalls())
	assert.Zero(t, rs.headChecks("r2"), "the room was checked on its own")
}
