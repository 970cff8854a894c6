package testenv_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
)

// The sentinels name the first node as the master and know the two
// replicas; after the master is killed they promote a replica, which
// accepts writes, and the go-redis failover client follows them.
func TestRedisSentinel(t *testing.T) {
	s := testenv.StartRedisSentinel(t)
	require.Len(t, s.SentinelAddrs(), 3)
	nodes := s.Addrs()
	require.Len(t, nodes, 3)
	old := s.Master()
	assert.Equal(t, nodes[0], old, "the first node is the master")
	assert.Contains(t, s.URL(), "redis-sentinel://"+s.SentinelAddrs()[0]+"?")
	assert.Contains(t, s.URL(), "master="+s.MasterName())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName(), SentinelAddrs: s.SentinelAddrs()})
	defer rdb.Close()
	require.NoError(t, rdb.Set(ctx, "k", "before", 0).Err())
	for _, replica := range nodes[1:] {
		c := redis.NewClient(&redis.Options{Addr: replica})
		require.Eventually(t, func() bool { return c.Get(ctx, "k").Val() == "before" }, 5*time.Second, 20*time.Millisecond,
			"the replica %s has the master's write", replica)
		c.Close()
	}

	assert.Equal(t, old, s.KillMaster())
	promoted := s.WaitFailover(old, 30*time.Second)
	assert.NotEqual(t, old, promoted)
	assert.True(t, slices.Contains(nodes[1:], promoted), "a replica, %s, was promoted", promoted)
	assert.Equal(t, promoted, s.Master())
	require.Eventually(t, func() bool { return rdb.Set(ctx, "k", "after", 0).Err() == nil }, 10*time.Second, 50*time.Millisecond,
		"the failover client writes to the new master")
	c := redis.NewClient(&redis.Options{Addr: promoted})
	defer c.Close()
	assert.Equal(t, "after", c.Get(ctx, "k").Val())
}
