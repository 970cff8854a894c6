package redisbroker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/broker"
	"dealroom/broker/brokertest"
	"dealroom/internal/testenv"
	"dealroom/redisbroker"
)

// The conformance suite on a Redis Cluster, with sharded pub/sub.
func TestClusterConformance(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	conformance(t, func(*testing.T) string { return c.URL() + "&" })
}

func clusterClient(t testing.TB, c *testenv.RedisCluster) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// A room's channel is a shard channel named after the room's hash tag, on
// the primary that owns its slot, and only there.
func TestClusterChannelLayout(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	b := open(t, c.URL(), rec) // default prefix
	require.NoError(t, b.Subscribe(ctx, "r1"))

	rdb := clusterClient(t, c)
	const name = "dealroom:room:{r1}"
	owner, err := rdb.MasterForKey(ctx, name)
	require.NoError(t, err)
	slot, err := rdb.ClusterKeySlot(ctx, name).Result()
	require.NoError(t, err)
	tagSlot, err := rdb.ClusterKeySlot(ctx, "r1").Result()
	require.NoError(t, err)
	assert.Equal(t, tagSlot, slot, "the room's ID is the hash tag")
	for _, addr := range c.Primaries() {
		n := raw(t, addr)
		chans, err := n.PubSubShardChannels(ctx, "*").Result()
		require.NoError(t, err)
		plain, err := n.PubSubChannels(ctx, "*").Result()
		require.NoError(t, err)
		assert.Empty(t, plain, "no plain channel on %s", addr)
		if addr == owner.Options().Addr {
			assert.Equal(t, []string{name}, chans, "the owner %s", addr)
		} else {
			assert.Empty(t, chans, "%s does not own the slot", addr)
		}
	}

	require.NoError(t, b.Publish(ctx, ev("r1", "hello")))
	rec.WaitFor(t, wait, "the message", has("r1", "hello"))
	assert.Equal(t, "r1", rec.Messages()[0].Room)
}

func TestClusterURL(t *testing.T) {
	rec := brokertest.NewRecorder()
	ctx := ctxT(t)
	_, err := redisbroker.New(ctx, "redis-cluster://127.0.0.1:1?addr=127.0.0.1:2&nonsense=1", rec)
	assert.ErrorContains(t, err, "invalid Redis URL")
	_, err = redisbroker.New(ctx, "redis-cluster://user:secret@%zz", rec)
	assert.ErrorContains(t, err, "invalid Redis URL")
	assert.NotContains(t, err.Error(), "secret", "no password in the error")
	_, err = redisbroker.New(ctx, "redis-cluster://127.0.0.1:1?addr=127.0.0.1:2", rec)
	assert.ErrorContains(t, err, "cannot reach Redis at 127.0.0.1:1,127.0.0.1:2")
}

// roomsOn returns, of rooms, those whose channel's slot the primary at
// addr serves, and the others.
func roomsOn(t *testing.T, rdb *redis.ClusterClient, p, addr string, rooms []string) (on, off []string) {
	t.Helper()
	for _, r := range rooms {
		n, err := rdb.MasterForKey(context.Background(), p+"room:{"+r+"}")
		require.NoError(t, err)
		if n.Options().Addr == addr {
			on = append(on, r)
		} else {
			off = append(off, r)
		}
	}
	return on, off
}

// A primary killed with SIGKILL during a stream of publishes: its replica
// takes over. A subscriber whose handler is a broker.RoomsHandler is told
// that the rooms of that shard were lost, and then restored, and no other
// room: those keep receiving every message. One whose handler is not
// gets FeedLost and FeedRestored once. Live delivery in the failed
// shard's rooms is back within 10 seconds of the kill, and every message
// published after a room's restoration arrives, once and in order.
func TestClusterPrimaryKilled(t *testing.T) {
	testShardFails(t, "the kill", func(c *testenv.RedisCluster, primary string) { c.Kill(primary) })
}

// The same when an operator hands a primary's slots to its replica
// (CLUSTER FAILOVER): the old primary, alive, tells its subscribers with
// an unasked SUNSUBSCRIBE of every channel.
func TestClusterManualFailover(t *testing.T) {
	testShardFails(t, "the failover", func(c *testenv.RedisCluster, primary string) { c.Failover(primary) })
}

func testShardFails(t *testing.T, what string, fail func(c *testenv.RedisCluster, primary string)) {
	c := testenv.StartRedisCluster(t)
	ctx := ctxT(t)
	p := prefix(t)
	pub := open(t, c.URL(), brokertest.NewRecorder(), redisbroker.WithPrefix(p))
	rec, plainRec := brokertest.NewRecorder(), brokertest.NewRecorder()
	subs := []*redisbroker.Broker{
		open(t, c.URL(), rec, redisbroker.WithPrefix(p)),
		open(t, c.URL(), plainRec.Plain(), redisbroker.WithPrefix(p)),
	}
	var rooms []string
	for i := range 12 {
		rooms = append(rooms, fmt.Sprintf("r%d", i))
	}
	for _, s := range subs {
		for _, r := range rooms {
			require.NoError(t, s.Subscribe(ctx, r))
		}
	}
	rdb := clusterClient(t, c)
	n, err := rdb.MasterForKey(ctx, p+"room:{r0}")
	require.NoError(t, err)
	victim := n.Options().Addr
	victimRooms, otherRooms := roomsOn(t, rdb, p, victim, rooms)
	require.NotEmpty(t, otherRooms)
	t.Logf("%s of %s, the primary of rooms %v", what, victim, victimRooms)

	restored := func(room string) bool {
		if !slices.Contains(victimRooms, room) {
			return true // never lost
		}
		_, plainRestored := plainRec.Counts()
		return rec.RoomRestored(room) && plainRestored > 0
	}
	s := startStream(pub, rooms, restored)
	time.Sleep(500 * time.Millisecond)
	failed := time.Now()
	fail(c, victim)

	for i, r := range []*brokertest.Recorder{rec, plainRec} {
		back := waitLive(t, pub, r, "r0", failed.Add(10*time.Second))
		t.Logf("subscriber %d: live delivery in the failed shard back %s after %s began", i, back.Sub(failed).Round(time.Millisecond), what)
	}
	time.Sleep(300 * time.Millisecond) // more of the stream after the restoration
	s.end()
	endStream(t, pub, rooms, rec, plainRec)

	lost, back := rec.RoomCounts()
	for _, r := range victimRooms {
		assert.Equal(t, 1, lost[r], "room %s of the failed shard: RoomsLost", r)
		assert.Equal(t, 1, back[r], "room %s of the failed shard: RoomsRestored", r)
	}
	for _, r := range otherRooms {
		assert.Zero(t, lost[r], "room %s of a healthy shard: RoomsLost", r)
	}
	feedLost, feedRestored := rec.Counts()
	assert.Zero(t, feedLost+feedRestored, "FeedLost or FeedRestored called on a RoomsHandler")
	feedLost, feedRestored = plainRec.Counts()
	assert.Equal(t, 1, feedLost, "FeedLost of the plain handler")
	assert.Equal(t, 1, feedRestored, "FeedRestored of the plain handler")
	lost, _ = plainRec.RoomCounts()
	assert.Empty(t, lost, "RoomsLost called on a plain handler")

	// Every message in the healthy shards' rooms arrived (checkStream
	// counts them as published after their restoration), and every one
	// published after the failed shard's restoration.
	checkStream(t, s, rec)
	checkStream(t, s, plainRec)
	for _, b := range subs {
		require.NoError(t, b.Ping(ctx))
	}
}

// stream publishes on pub every 5ms until stopped: every other message in
// rooms[0], the others round robin over the other rooms, numbered in
// their data. It keeps the messages Redis acknowledged, each with whether
// restored said, before it was published, that its room was restored.
type stream struct {
	mu     sync.Mutex
	acked  []streamed
	failed int
	stop   chan struct{}
	done   chan struct{}
}

type streamed struct {
	m     broker.Message
	after bool // published once restored(m.Room) held
}

func startStream(pub broker.Broker, rooms []string, restored func(room string) bool) *stream {
	s := &stream{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			room := rooms[0]
			if i%2 == 1 && len(rooms) > 1 {
				room = rooms[1+(i/2)%(len(rooms)-1)]
			}
			m := ev(room, fmt.Sprint(i))
			after := restored(room)
			err := pub.Publish(context.Background(), m)
			s.mu.Lock()
			if err == nil {
				s.acked = append(s.acked, streamed{m, after})
			} else {
				s.failed++
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *stream) end() {
	close(s.stop)
	<-s.done
}

// endStream publishes a last message in each room and waits until every
// recorder has it: then they have all the stream they will get.
func endStream(t *testing.T, pub broker.Broker, rooms []string, recs ...*brokertest.Recorder) {
	t.Helper()
	for _, r := range rooms {
		publishEventually(t, pub, ev(r, "end"))
	}
	for _, rec := range recs {
		for _, r := range rooms {
			rec.WaitFor(t, wait, "the end of the stream in "+r, has(r, "end"))
		}
	}
}

// checkStream checks what rec received of the stream: in each room the
// messages in the order published, none twice, and every acknowledged
// message published after its room's restoration. It returns how many
// acknowledged messages were not received (lost before the restoration).
func checkStream(t *testing.T, s *stream, rec *brokertest.Recorder) (missing int) {
	t.Helper()
	last := map[string]int{}
	got := map[string]bool{}
	for _, m := range rec.Messages() {
		var n int
		if _, err := fmt.Sscan(string(m.Data), &n); err != nil {
			continue // not of the stream
		}
		if prev, ok := last[m.Room]; ok && n <= prev {
			t.Errorf("in room %s message %d came after %d", m.Room, n, prev)
		}
		last[m.Room] = n
		got[m.Room+"/"+string(m.Data)] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	after := 0
	for _, a := range s.acked {
		switch {
		case got[a.m.Room+"/"+string(a.m.Data)]:
		case a.after:
			t.Errorf("message %s in %s, published after its room was restored, not received", a.m.Data, a.m.Room)
		default:
			missing++
		}
		if a.after {
			after++
		}
	}
	t.Logf("%d messages acknowledged (%d of them in a room never lost or after its restoration), %d failed, %d not received",
		len(s.acked), after, s.failed, missing)
	return missing
}

// waitLive publishes in room until rec receives a message published
// there, and fails the test if that takes past deadline. It returns when
// the message that arrived was published.
func waitLive(t *testing.T, pub broker.Broker, rec *brokertest.Recorder, room string, deadline time.Time) time.Time {
	t.Helper()
	for i := 0; ; i++ {
		data := fmt.Sprintf("live-%d", i)
		sent := time.Now()
		err := pub.Publish(context.Background(), ev(room, data))
		if err != nil && i%20 == 0 {
			t.Logf("publishing to %s: %v", room, err)
		}
		if err == nil {
			// Published before the subscriber was back, it may be lost:
			// publish another after a while.
			for again := time.Now().Add(100 * time.Millisecond); time.Now().Before(again); {
				if has(room, data)(rec.Messages()) {
					return sent
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if time.Now().After(deadline) {
			lost, restored := rec.Counts()
			t.Fatalf("no live delivery in room %s by the deadline (FeedLost %d, FeedRestored %d)", room, lost, restored)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A room's slot moved to another primary during a stream of publishes,
// the way an operator reshards: the old owner tells its subscribers with
// an unasked SUNSUBSCRIBE; each subscriber reports that room lost (and no
// other, not even the rooms of the same primary, which keep receiving),
// subscribes it on its new owner and reports it restored; the publisher
// follows the MOVED answers. Live delivery is back within 10 seconds, and
// every message published after the restoration arrives, once and in
// order.
func TestClusterSlotMoved(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	ctx := ctxT(t)
	p := prefix(t)
	pub := open(t, c.URL(), brokertest.NewRecorder(), redisbroker.WithPrefix(p))
	recs := []*brokertest.Recorder{brokertest.NewRecorder(), brokertest.NewRecorder()}
	var subs []*redisbroker.Broker
	for _, r := range recs {
		subs = append(subs, open(t, c.URL(), r, redisbroker.WithPrefix(p)))
	}
	rdb := clusterClient(t, c)
	slot, err := rdb.ClusterKeySlot(ctx, p+"room:{r0}").Result()
	require.NoError(t, err)
	from := c.SlotOwner(int(slot))
	var to string
	for _, a := range c.Primaries() {
		if a != from {
			to = a
			break
		}
	}
	// r0, a room of the same primary and rooms of others.
	var candidates []string
	for i := 1; i < 40; i++ {
		candidates = append(candidates, fmt.Sprintf("r%d", i))
	}
	same, others := roomsOn(t, rdb, p, from, candidates)
	require.NotEmpty(t, same)
	rooms := append([]string{"r0", same[0]}, others[:4]...)
	for _, s := range subs {
		for _, r := range rooms {
			require.NoError(t, s.Subscribe(ctx, r))
		}
	}

	restored := func(room string) bool {
		if room != "r0" {
			return true // never lost
		}
		for _, r := range recs {
			if !r.RoomRestored(room) {
				return false
			}
		}
		return true
	}
	s := startStream(pub, rooms, restored)
	time.Sleep(300 * time.Millisecond)
	t.Logf("moving slot %d (room r0) from %s (also serving %s) to %s", slot, from, same[0], to)
	moved := time.Now()
	c.MoveSlot(int(slot), to)
	t.Logf("the cluster agrees on the new owner %s after the move began", time.Since(moved).Round(time.Millisecond))

	for i, r := range recs {
		back := waitLive(t, pub, r, "r0", moved.Add(10*time.Second))
		t.Logf("subscriber %d: live delivery in r0 back %s after the move began", i, back.Sub(moved).Round(time.Millisecond))
	}
	time.Sleep(300 * time.Millisecond) // more of the stream after the restoration
	s.end()
	endStream(t, pub, rooms, recs...)

	for i, r := range recs {
		lost, back := r.RoomCounts()
		assert.Equal(t, map[string]int{"r0": 1}, lost, "subscriber %d: RoomsLost", i)
		assert.Equal(t, map[string]int{"r0": 1}, back, "subscriber %d: RoomsRestored", i)
		checkStream(t, s, r)
		require.NoError(t, subs[i].Ping(ctx))
	}

	// The room's channel lives on its new owner only.
	for _, a := range c.Primaries() {
		chans, err := raw(t, a).PubSubShardChannels(ctx, p+"*").Result()
		require.NoError(t, err)
		if a == to {
			assert.Contains(t, chans, p+"room:{r0}", "the new owner %s", a)
		} else {
			assert.NotContains(t, chans, p+"room:{r0}", "%s", a)
		}
	}
}

// A room subscribed after its slot moved, which the broker was not told
// of: its SSUBSCRIBE goes to the old owner, which answers MOVED; the
// broker subscribes it on the new owner, and the other rooms of the old
// owner's connection lose nothing.
func TestClusterSubscribeAfterSlotMoved(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	ctx := ctxT(t)
	p := prefix(t)
	pub := open(t, c.URL(), brokertest.NewRecorder(), redisbroker.WithPrefix(p))
	rec := brokertest.NewRecorder()
	sub := open(t, c.URL(), rec, redisbroker.WithPrefix(p))
	rdb := clusterClient(t, c)
	slot, err := rdb.ClusterKeySlot(ctx, p+"room:{late}").Result()
	require.NoError(t, err)
	from := c.SlotOwner(int(slot))
	var candidates []string
	for i := range 40 {
		candidates = append(candidates, fmt.Sprintf("r%d", i))
	}
	same, _ := roomsOn(t, rdb, p, from, candidates)
	require.NotEmpty(t, same)
	require.NoError(t, sub.Subscribe(ctx, same[0]))

	var to string
	for _, a := range c.Primaries() {
		if a != from {
			to = a
			break
		}
	}
	c.MoveSlot(int(slot), to)
	require.NoError(t, sub.Subscribe(ctx, "late"))
	chans, err := raw(t, to).PubSubShardChannels(ctx, p+"*").Result()
	require.NoError(t, err)
	assert.Contains(t, chans, p+"room:{late}", "the room is subscribed on the slot's new owner")

	publishEventually(t, pub, ev("late", "hello"))
	publishEventually(t, pub, ev(same[0], "still"))
	rec.WaitFor(t, wait, "the late room's message", has("late", "hello"))
	rec.WaitFor(t, wait, "the other room's message", has(same[0], "still"))
	lost, _ := rec.RoomCounts()
	assert.Empty(t, lost, "rooms reported lost")
	feedLost, _ := rec.Counts()
	assert.Zero(t, feedLost)
}
