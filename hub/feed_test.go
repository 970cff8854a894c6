package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/broker"
	"dealroom/internal/testclock"
	"dealroom/presence"
	"dealroom/room"
)

// logStore is a room's event log in memory.
type logStore struct {
	mu     sync.Mutex
	events []room.Event // events[i].Seq == i+1
}

func (s *logStore) Events(ctx context.Context, roomID string, after int64, limit int, sharedOnly bool) ([]room.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if after >= int64(len(s.events)) {
		return nil, nil
	}
	return append([]room.Event(nil), s.events[after:min(int64(len(s.events)), after+int64(limit))]...), nil
}

func (s *logStore) Room(ctx context.Context, id string) (*room.Room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &room.Room{ID: id, Head: int64(len(s.events))}, nil
}

// commit appends a message of body bytes to the log; the caller hands it
// to the hub.
func (s *logStore) commit(roomID string, body int) room.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := int64(len(s.events) + 1)
	m := room.Message{ID: fmt.Sprint("m", seq), RoomID: roomID, Author: "olivia", Visibility: dealroom.Shared,
		Body: fmt.Sprintf("%06d ", seq) + strings.Repeat("x", body-7)}
	data, _ := json.Marshal(m)
	ev := room.Event{Seq: seq, ID: fmt.Sprint("e", seq), RoomID: roomID, Type: room.MessagePosted,
		Visibility: dealroom.Shared, Data: data}
	s.events = append(s.events, ev)
	return ev
}

// seeAll lets everyone see every room as staff.
type seeAll struct{}

func (seeAll) Access(ctx context.Context, a dealroom.Actor, roomID string) (room.Perm, error) {
	return room.Perm{See: true, Internal: true}, nil
}

func (seeAll) TaskVisibility(ctx context.Context, a dealroom.Actor, roomID, task string) (dealroom.Visibility, error) {
	return dealroom.Shared, nil
}

func newTestHub(t *testing.T, cfg Config, st Store) *Hub {
	t.Helper()
	h := New(cfg, st, seeAll{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b := broker.NewLocal(h)
	h.Start(b)
	t.Cleanup(func() { h.Close(); b.Close() })
	return h
}

// readUntilSubscribed reads a session's frames until "subscribed" and
// returns the seqs of the events before it.
func readUntilSubscribed(t *testing.T, ctx context.Context, s *Session) []int64 {
	t.Helper()
	var seqs []int64
	for {
		fr, err := s.Next(ctx)
		require.NoError(t, err, "no \"subscribed\"")
		var f struct {
			Type  string `json:"type"`
			Event struct {
				Seq int64 `json:"seq"`
			} `json:"event"`
		}
		require.NoError(t, json.Unmarshal(fr, &f))
		switch f.Type {
		case "event":
			seqs = append(seqs, f.Event.Seq)
		case "subscribed":
			return seqs
		case "presence":
		default:
			t.Fatalf("unexpected frame %s", fr)
		}
	}
}

// readEvents reads a session's frames until it has n events, and returns
// their seqs.
func readEvents(t *testing.T, ctx context.Context, s *Session, n int) []int64 {
	t.Helper()
	var seqs []int64
	for len(seqs) < n {
		fr, err := s.Next(ctx)
		require.NoError(t, err, "%d events of %d", len(seqs), n)
		var f struct {
			Type  string `json:"type"`
			Event struct {
				Seq int64 `json:"seq"`
			} `json:"event"`
		}
		require.NoError(t, json.Unmarshal(fr, &f))
		if f.Type == "event" {
			seqs = append(seqs, f.Event.Seq)
		}
	}
	return seqs
}

// followRoom reads a session's frames of room until it has the events up
// to seq upTo, subscribing again after the last one it got when the hub
// says it fell behind (a resync), as a device does; it returns the seqs
// of every event frame in the order they came. It reports an error, not a
// fatal one, since it runs on a goroutine of its own.
func followRoom(t *testing.T, ctx context.Context, s *Session, room string, after, upTo int64) []int64 {
	var seqs []int64
	last := after
	for last < upTo {
		fr, err := s.Next(ctx)
		if err != nil {
			t.Errorf("following %s from %d: %d events, then %v", room, after, len(seqs), err)
			return seqs
		}
		var f struct {
			Type  string `json:"type"`
			Event struct {
				Seq int64 `json:"seq"`
			} `json:"event"`
		}
		if err := json.Unmarshal(fr, &f); err != nil {
			t.Errorf("frame %s: %v", fr, err)
			return seqs
		}
		switch f.Type {
		case "event":
			seqs = append(seqs, f.Event.Seq)
			last = max(last, f.Event.Seq)
		case "resync":
			s.Subscribe(room, last)
		}
	}
	return seqs
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// checkBudget checks what a feed keeps against its budget, counting the
// bytes of its frames.
func checkBudget(t *testing.T, f *feed) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	total, frames := 0, 0
	for i, e := range f.recent {
		require.Equal(t, f.head-int64(len(f.recent))+1+int64(i), e.seq, "the feed's events follow each other up to its head")
		total += e.size()
		frames += len(e.staff)
		if len(e.customer) > 0 && &e.customer[0] != &e.staff[0] {
			frames += len(e.customer)
		}
	}
	assert.Equal(t, total, f.recentBytes, "the feed counts what it keeps")
	assert.LessOrEqual(t, f.recentBytes, f.h.cfg.RecentBytes, "the feed keeps more than its budget")
	assert.LessOrEqual(t, frames, f.h.cfg.RecentBytes, "the frames kept are more than the budget")
	assert.LessOrEqual(t, cap(f.recent), 4*len(f.recent)+16, "the feed's list keeps room for far more than it holds")
}

// TestFeedOverBudgetDeliversEverything: a room whose recent events are far
// more than its feed keeps; a live device gets every event, and devices
// that subscribe from far behind, while events keep coming, get every one
// in order, once, from the store's pages and the feed.
func TestFeedOverBudgetDeliversEverything(t *testing.T) {
	st := &logStore{}
	for range 300 {
		st.commit("r1", 450)
	}
	h := newTestHub(t, Config{RecentBytes: 8 << 10, PageSize: 16, CachedPages: 4}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	live := h.NewSession(dealroom.Actor{ID: "u1", Kind: dealroom.Staff})
	defer live.Close()
	live.Subscribe("r1", 290)
	require.Equal(t, seqRange(291, 300), readUntilSubscribed(t, ctx, live))

	for range 200 {
		h.Committed(st.commit("r1", 450))
	}
	assert.Equal(t, seqRange(301, 500), readEvents(t, ctx, live, 200), "the live device")
	f := h.lookup("r1")
	checkBudget(t, f)
	f.mu.Lock()
	kept := len(f.recent)
	f.mu.Unlock()
	require.Less(t, kept, 20, "the test wants a feed that keeps few events")

	// Devices far behind subscribe while events keep coming.
	var writes sync.WaitGroup
	writes.Go(func() {
		for range 100 {
			h.Committed(st.commit("r1", 450))
			time.Sleep(time.Millisecond)
		}
	})
	// Each device reads as a device does, at the same time as the others,
	// and, told it fell behind (its queue is bounded; the machine may be
	// slow), subscribes again after the last seq it got, as the protocol
	// says: it still gets every event once, in order.
	froms := []int64{0, 7, 250, 490}
	got := make([][]int64, len(froms))
	var readers sync.WaitGroup
	for i, from := range froms {
		s := h.NewSession(dealroom.Actor{ID: fmt.Sprint("far", i), Kind: dealroom.Staff})
		defer s.Close()
		s.Subscribe("r1", from)
		readers.Go(func() { got[i] = followRoom(t, ctx, s, "r1", from, 600) })
	}
	writes.Wait()
	readers.Wait()
	for i, from := range froms {
		assert.Equal(t, seqRange(from+1, 600), got[i], "device from %d", from)
	}
	assert.Equal(t, seqRange(501, 600), readEvents(t, ctx, live, 100), "the live device")
	checkBudget(t, f)
}

// TestFeedMemoryWithinBudget: however many events a room receives, its
// feed keeps at most its budget of bytes, and once they are older than
// RecentAge, only its bookkeeping; devices that come after still get
// every event.
func TestFeedMemoryWithinBudget(t *testing.T) {
	clk := testclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	st := &logStore{}
	h := newTestHub(t, Config{Now: clk.Now, HeadCheck: time.Hour, QueueFrames: 4096, QueueBytes: 16 << 20}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	live := h.NewSession(dealroom.Actor{ID: "u1", Kind: dealroom.Staff})
	defer live.Close()
	live.Subscribe("r1", 0)
	require.Empty(t, readUntilSubscribed(t, ctx, live))

	const events = 3000
	for i := range events {
		h.Committed(st.commit("r1", 450))
		if i%100 == 0 {
			clk.Advance(time.Second)
		}
	}
	require.Equal(t, seqRange(1, events), readEvents(t, ctx, live, events))
	f := h.lookup("r1")
	checkBudget(t, f)
	f.mu.Lock()
	assert.Greater(t, f.recentBytes, h.cfg.RecentBytes/2, "the feed keeps what its budget holds")
	assert.Nil(t, f.pending, "the feed keeps no map of early events once they are delivered")
	f.mu.Unlock()

	clk.Advance(h.cfg.RecentAge + time.Second)
	f.expire()
	f.mu.Lock()
	assert.Nil(t, f.recent, "events older than RecentAge are kept")
	assert.Zero(t, f.recentBytes)
	f.mu.Unlock()

	// A device that comes back now reads the store.
	back := h.NewSession(dealroom.Actor{ID: "u2", Kind: dealroom.Staff})
	defer back.Close()
	back.Subscribe("r1", events-50)
	assert.Equal(t, seqRange(events-49, events), readUntilSubscribed(t, ctx, back))
	h.Committed(st.commit("r1", 450))
	assert.Equal(t, []int64{events + 1}, readEvents(t, ctx, back, 1))
	assert.Equal(t, []int64{events + 1}, readEvents(t, ctx, live, 1))
}

// TestFeedLostEventsPastPendingAreRead: when more early events arrive than
// the feed parks, the ones it does not park are read from the store
// without waiting for a later event.
func TestFeedLostEventsPastPendingAreRead(t *testing.T) {
	st := &logStore{}
	h := newTestHub(t, Config{Recent: 4, PageSize: 2, HeadCheck: time.Hour}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := h.NewSession(dealroom.Actor{ID: "u1", Kind: dealroom.Staff})
	defer s.Close()
	s.Subscribe("r1", 0)
	require.Empty(t, readUntilSubscribed(t, ctx, s))

	// Event 1's message is lost; 2 to 10 arrive, more than the feed parks.
	st.commit("r1", 100)
	for range 9 {
		h.Committed(st.commit("r1", 100))
	}
	assert.Equal(t, seqRange(1, 10), readEvents(t, ctx, s, 10))
}

// TestLiveOverflowLeavesNoHole: a live device whose queue overflows gets
// the events that fitted, with no hole, then "resync", and no event of the
// room after it, even once its queue has room again; subscribing again
// after the last event it got, it gets every later event once, in order.
// (Were later events still queued after a dropped one, the device would
// see 1-4, 9, then resync from 9 and never get 5-8.)
func TestLiveOverflowLeavesNoHole(t *testing.T) {
	st := &logStore{}
	h := newTestHub(t, Config{QueueFrames: 4, QueueBytes: 1 << 20, HeadCheck: time.Hour}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := h.NewSession(dealroom.Actor{ID: "u1", Kind: dealroom.Staff})
	defer s.Close()
	s.Subscribe("r1", 0)
	require.Empty(t, readUntilSubscribed(t, ctx, s))

	// Nobody reads: the fifth event does not fit. Live delivery hands the
	// feed's events to the queue as they come, so this is deterministic.
	for range 8 {
		h.Committed(st.commit("r1", 100))
	}
	var last int64
	for {
		fr, err := s.Next(ctx)
		require.NoError(t, err, "no resync after %d", last)
		var f struct {
			Type  string `json:"type"`
			Event struct {
				Seq int64 `json:"seq"`
			} `json:"event"`
		}
		require.NoError(t, json.Unmarshal(fr, &f))
		if f.Type == "event" {
			require.Equal(t, last+1, f.Event.Seq, "an event after %d", last)
			last = f.Event.Seq
			continue
		}
		if f.Type == "resync" {
			break
		}
		require.Equal(t, "presence", f.Type, "frame %s", fr)
	}
	require.EqualValues(t, 4, last, "the events that fitted come before the resync")

	// The queue is empty now: events committed before the device
	// subscribes again are not queued for the subscription that ended.
	for range 3 {
		h.Committed(st.commit("r1", 100))
	}
	frames, _ := s.Queued()
	assert.Zero(t, frames, "frames queued after the resync")
	s.Subscribe("r1", last)
	assert.Equal(t, seqRange(5, 11), readUntilSubscribed(t, ctx, s), "after subscribing again")
	h.Committed(st.commit("r1", 100))
	assert.Equal(t, []int64{12}, readEvents(t, ctx, s, 1), "live again")
	assert.EqualValues(t, 1, h.Stats.Resyncs.Load())
}

// roomsStore keeps a log per room, and counts the head checks (reads of
// one event) made in each.
type roomsStore struct {
	logs   map[string]*logStore
	mu     sync.Mutex
	checks map[string]int
}

func (s *roomsStore) Events(ctx context.Context, roomID string, after int64, limit int, sharedOnly bool) ([]room.Event, error) {
	if limit == 1 {
		s.mu.Lock()
		s.checks[roomID]++
		s.mu.Unlock()
	}
	return s.logs[roomID].Events(ctx, roomID, after, limit, sharedOnly)
}

func (s *roomsStore) Room(ctx context.Context, id string) (*room.Room, error) {
	return s.logs[id].Room(ctx, id)
}

func (s *roomsStore) headChecks(roomID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checks[roomID]
}

// TestRoomsRestoredRepairsThoseRooms: when the broker says that only some
// rooms lost messages (a Redis Cluster shard failed over), those rooms
// read what they missed from the store, and the others are left alone.
func TestRoomsRestoredRepairsThoseRooms(t *testing.T) {
	st := &roomsStore{logs: map[string]*logStore{"r1": {}, "r2": {}}, checks: map[string]int{}}
	h := newTestHub(t, Config{HeadCheck: time.Hour}, st)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sessions := map[string]*Session{}
	for _, r := range []string{"r1", "r2"} {
		s := h.NewSession(dealroom.Actor{ID: "u-" + r, Kind: dealroom.Staff})
		defer s.Close()
		s.Subscribe(r, 0)
		require.Empty(t, readUntilSubscribed(t, ctx, s))
		sessions[r] = s
	}

	// One event in each room whose broker message was lost.
	st.logs["r1"].commit("r1", 100)
	st.logs["r2"].commit("r2", 100)
	h.RoomsLost([]string{"r1"})
	h.RoomsRestored([]string{"r1", "r-not-followed"})
	assert.Equal(t, []int64{1}, readEvents(t, ctx, sessions["r1"], 1), "the lost room is repaired")
	assert.Positive(t, st.headChecks("r1"))
	assert.Zero(t, st.headChecks("r2"), "a room that lost nothing is not checked")
	assert.Zero(t, st.headChecks("r-not-followed"))

	// The whole feed restored: every room is repaired.
	h.FeedRestored()
	assert.Equal(t, []int64{1}, readEvents(t, ctx, sessions["r2"], 1))
}

// stuckStore answers head checks (reads of one event) only when released,
// and counts how many wait at once.
type stuckStore struct {
	*roomsStore
	release          chan struct{}
	mu               sync.Mutex
	waiting, mostNow int
}

func (s *stuckStore) Events(ctx context.Context, roomID string, after int64, limit int, sharedOnly bool) ([]room.Event, error) {
	if limit == 1 {
		s.mu.Lock()
		s.waiting++
		s.mostNow = max(s.mostNow, s.waiting)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
		}()
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.roomsStore.Events(ctx, roomID, after, limit, sharedOnly)
}

func (s *stuckStore) most() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mostNow
}

// countingBroker counts the presence messages published.
type countingBroker struct {
	broker.Broker
	presence atomic.Int64
}

func (b *countingBroker) Publish(ctx context.Context, m broker.Message) error {
	if m.Kind == broker.Presence {
		b.presence.Add(1)
	}
	return b.Broker.Publish(ctx, m)
}

// TestHeadChecksRunBeside: the periodic head checks run several at once
// (on MongoDB each is a round trip: one after another they would bound
// the rooms an instance can follow), and a store that does not answer
// them holds back neither presence renewals nor the next subscriptions.
func TestHeadChecksRunBeside(t *testing.T) {
	const rooms = 12
	rs := &roomsStore{logs: map[string]*logStore{}, checks: map[string]int{}}
	for i := range rooms {
		rs.logs[fmt.Sprint("r", i)] = &logStore{}
	}
	st := &stuckStore{roomsStore: rs, release: make(chan struct{})}
	h := New(Config{HeadCheck: 20 * time.Millisecond, HeadChecks: 4, PresenceTTL: 300 * time.Millisecond},
		st, seeAll{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b := &countingBroker{Broker: broker.NewLocal(h)}
	h.Start(b)
	t.Cleanup(func() { close(st.release); h.Close(); b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for i := range rooms {
		r := fmt.Sprint("r", i)
		s := h.NewSession(dealroom.Actor{ID: "u-" + r, Kind: dealroom.Staff})
		defer s.Close()
		s.Subscribe(r, 0)
		require.Empty(t, readUntilSubscribed(t, ctx, s))
		require.NoError(t, s.SetPresence(ctx, r, presence.Viewing, "", ""))
	}
	require.Eventually(t, func() bool { return st.most() == 4 }, 20*time.Second, 5*time.Millisecond,
		"four head checks wait at once")
	before := b.presence.Load()
	require.Eventually(t, func() bool { return b.presence.Load() >= before+2*rooms }, 20*time.Second, 10*time.Millisecond,
		"presence is renewed while the head checks wait")
	assert.Equal(t, 4, st.most(), "a pass still running is not doubled")
}

// failingBroker refuses every publish, as a broker whose backend is down.
type failingBroker struct{ broker.Broker }

func (failingBroker) Publish(context.Context, broker.Message) error {
	return errors.New("redis: connection refused")
}

// TestPublishFailuresLoggedPaced: during a broker outage every write's
// publish fails; the log says so once per period, with a count, instead
// of a line per write.
func TestPublishFailuresLoggedPaced(t *testing.T) {
	var buf syncBuffer
	st := &logStore{}
	h := New(Config{HeadCheck: time.Hour}, st, seeAll{}, slog.New(slog.NewTextHandler(&buf, nil)))
	b := failingBroker{broker.NewLocal(h)}
	h.Start(b)
	t.Cleanup(func() { h.Close(); b.Close() })
	for range 50 {
		h.Committed(st.commit("r1", 20))
	}
	assert.Equal(t, 1, strings.Count(buf.String(), "cannot publish an event"), buf.String())

	// A period later the next failure is logged, with the count of those
	// that were not.
	var l logEvery
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ok, _ := l.allow(t0)
	assert.True(t, ok)
	for i := range 3 {
		ok, _ = l.allow(t0.Add(time.Duration(i+1) * time.Second))
		assert.False(t, ok)
	}
	ok, skipped := l.allow(t0.Add(publishLogPeriod))
	assert.True(t, ok)
	assert.Equal(t, 3, skipped)
}

// syncBuffer is a log destination safe for the hub's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
