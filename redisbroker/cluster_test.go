package redisbroker_test

import (
	"context"
	"fmt"
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
	for _, proto := range []string{"3", "2"} {
		t.Run("RESP"+proto, func(t *testing.T) {
			brokertest.Run(t, func(t *testing.T) func(h broker.Handler) broker.Broker {
				url := c.URL() + "&protocol=" + proto
				p := prefix(t)
				return func(h broker.Handler) broker.Broker { return open(t, url, h, redisbroker.WithPrefix(p)) }
			})
		})
	}
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

// A primary killed with SIGKILL during a stream of publishes: its replica
// takes over, the subscriber reports the loss and the restoration, and
// every message published and acknowledged is either received or covered
// by that loss; live delivery in the failed shard's rooms is back within
// 10 seconds of the kill.
func TestClusterPrimaryKilled(t *testing.T) {
	c := testenv.StartRedisCluster(t)
	ctx := ctxT(t)
	p := prefix(t)
	pubRec, subRec := brokertest.NewRecorder(), brokertest.NewRecorder()
	pub := open(t, c.URL(), pubRec, redisbroker.WithPrefix(p))
	sub := open(t, c.URL(), subRec, redisbroker.WithPrefix(p))

	rdb := clusterClient(t, c)
	var rooms []string
	owners := map[string]string{}
	for i := range 12 {
		room := fmt.Sprintf("r%d", i)
		rooms = append(rooms, room)
		require.NoError(t, sub.Subscribe(ctx, room))
		n, err := rdb.MasterForKey(ctx, p+"room:{"+room+"}")
		require.NoError(t, err)
		owners[room] = n.Options().Addr
	}
	victim := owners["r0"]
	var victimRooms []string
	for _, r := range rooms {
		if owners[r] == victim {
			victimRooms = append(victimRooms, r)
		}
	}
	t.Logf("killing %s, the primary of rooms %v", victim, victimRooms)

	// A stream of publishes, round robin over the rooms, every 5ms.
	var mu sync.Mutex
	var acked []broker.Message
	var ackedAfter []broker.Message // published once the subscriber was restored
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			m := ev(rooms[i%len(rooms)], fmt.Sprint(i))
			_, restored := subRec.Counts()
			if pub.Publish(context.Background(), m) == nil {
				mu.Lock()
				acked = append(acked, m)
				if restored > 0 {
					ackedAfter = append(ackedAfter, m)
				}
				mu.Unlock()
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	c.Kill(victim)
	killed := time.Now()

	// Live delivery back in the failed shard: a new message in its room
	// arrives within 10 seconds of the kill.
	deadline := killed.Add(10 * time.Second)
	for i := 0; ; i++ {
		data := fmt.Sprintf("live-%d", i)
		err := pub.Publish(context.Background(), ev("r0", data))
		if err != nil && i%20 == 0 {
			t.Logf("publishing to r0: %v", err)
		}
		if err == nil {
			// Published before the subscriber was back, it may be lost:
			// publish another after a while.
			ok := false
			for again := time.Now().Add(300 * time.Millisecond); time.Now().Before(again) && !ok; {
				ok = has("r0", data)(subRec.Messages())
				time.Sleep(20 * time.Millisecond)
			}
			if ok {
				break
			}
		}
		if time.Now().After(deadline) {
			lost, restored := subRec.Counts()
			t.Fatalf("no live delivery in room r0 within 10s of the kill (FeedLost %d, FeedRestored %d)", lost, restored)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("live delivery in the failed shard back %s after the kill", time.Since(killed).Round(time.Millisecond))
	close(stop)
	<-done

	// The subscriber noticed: it lost its feed and got it back.
	lost, restored := subRec.Counts()
	assert.Equal(t, 1, lost, "FeedLost")
	assert.Equal(t, 1, restored, "FeedRestored")
	require.NoError(t, sub.Ping(ctx))

	// Every acknowledged message published after the restoration was
	// received; any missing one lies before it, which the loss covers.
	mu.Lock()
	defer mu.Unlock()
	got := map[string]bool{}
	for _, m := range subRec.Messages() {
		got[m.Room+"/"+string(m.Data)] = true
	}
	missing := 0
	for _, m := range acked {
		if !got[m.Room+"/"+string(m.Data)] {
			missing++
		}
	}
	t.Logf("%d messages acknowledged during the run, %d of them not received (covered by FeedLost)", len(acked), missing)
	for _, m := range ackedAfter {
		assert.True(t, got[m.Room+"/"+string(m.Data)], "message %s in %s, published after FeedRestored, not received", m.Data, m.Room)
	}
	t.Logf("%d messages acknowledged after FeedRestored, every one received", len(ackedAfter))

	// And every room, of every shard, delivers again.
	for _, r := range rooms {
		publishEventually(t, pub, ev(r, "after"))
	}
	for _, r := range rooms {
		subRec.WaitFor(t, wait, "after in "+r, has(r, "after"))
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
	t.Logf("%d messages acknowledged (%d after their room's restoration), %d failed, %d not received",
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
// an unasked SUNSUBSCRIBE, the subscribers report the loss, subscribe the
// room on its new owner and report the restoration; the publisher follows
// the MOVED answers. Live delivery is back within 10 seconds, and every
// message published after the restoration arrives, once and in order.
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
	rooms := []string{"r0", "r1", "r2", "r3", "r4", "r5"}
	for _, s := range subs {
		for _, r := range rooms {
			require.NoError(t, s.Subscribe(ctx, r))
		}
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

	restored := func(string) bool {
		for _, r := range recs {
			if _, n := r.Counts(); n == 0 {
				return false
			}
		}
		return true
	}
	s := startStream(pub, rooms, restored)
	time.Sleep(300 * time.Millisecond)
	t.Logf("moving slot %d (room r0) from %s to %s", slot, from, to)
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
		lost, restored := r.Counts()
		assert.Equal(t, 1, lost, "subscriber %d: FeedLost", i)
		assert.Equal(t, 1, restored, "subscriber %d: FeedRestored", i)
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
