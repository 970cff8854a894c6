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
