package redisbroker_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/broker"
	"dealroom/broker/brokertest"
	"dealroom/internal/testenv"
	"dealroom/redisbroker"
)

// The conformance suite on the master of a Redis Sentinel setup.
func TestSentinelConformance(t *testing.T) {
	s := testenv.StartRedisSentinel(t)
	conformance(t, func(*testing.T) string { return s.URL() + "&" })
}

func TestSentinelURL(t *testing.T) {
	s := testenv.StartRedisSentinel(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	addrs := s.SentinelAddrs()

	_, err := redisbroker.New(ctx, strings.Replace(s.URL(), "master="+s.MasterName(), "master=nope", 1), rec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no Sentinel knows a master named "nope"`)

	for _, url := range []string{
		"redis-sentinel://" + addrs[0] + "?addr=" + addrs[1],                         // no master
		"redis-sentinel://" + addrs[0] + "?master=a&master_name=b",                   // two names
		"redis-sentinel://" + addrs[0] + "?master=" + s.MasterName() + "&nonsense=1", // unknown option
		"redis-sentinel://user:secret@%zz?master=m",
	} {
		_, err := redisbroker.New(ctx, url, rec)
		assert.ErrorContains(t, err, "invalid Redis URL", url)
		if err != nil {
			assert.NotContains(t, err.Error(), "secret", "no password in the error")
		}
	}
	_, err = redisbroker.New(ctx, "redis-sentinel://127.0.0.1:1?addr=127.0.0.1:2&master=m", rec)
	assert.ErrorContains(t, err, `cannot reach Redis at master "m" of Sentinel 127.0.0.1:1,127.0.0.1:2: no Sentinel answers`)

	// go-redis's own form (redis.ParseFailoverURL) works too.
	url := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2] + "&master_name=" + s.MasterName()
	b := open(t, url, rec, redisbroker.WithPrefix(prefix(t)))
	require.NoError(t, b.Subscribe(ctx, "r1"))
	require.NoError(t, b.Publish(ctx, ev("r1", "hello")))
	rec.WaitFor(t, wait, "the message", has("r1", "hello"))
	require.NoError(t, b.Ping(ctx))
}

// timedRecorder notes when the feed was restored and when the first
// message after that arrived.
type timedRecorder struct {
	*brokertest.Recorder
	mu         sync.Mutex
	restoredAt time.Time
	firstAfter time.Time
}

func (r *timedRecorder) FeedRestored() {
	r.mu.Lock()
	r.restoredAt = time.Now()
	r.mu.Unlock()
	r.Recorder.FeedRestored()
}

func (r *timedRecorder) Receive(m broker.Message) {
	r.mu.Lock()
	if !r.restoredAt.IsZero() && r.firstAfter.IsZero() {
		r.firstAfter = time.Now()
	}
	r.mu.Unlock()
	r.Recorder.Receive(m)
}

func (r *timedRecorder) times() (restored, first time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restoredAt, r.firstAfter
}

// sent is a message a publisher sent and Redis acknowledged, and which
// receivers had their feed restored before it was sent.
type sent struct {
	m     broker.Message
	after []bool
}

// The master killed with SIGKILL while two instances publish every 5 ms
// into rooms both follow: each instance reports the loss once and the
// restoration once, live delivery comes back within 10 seconds of the
// kill, and every message published after an instance's restoration
// reaches it, once, and each publisher's messages in the order sent.
func TestSentinelMasterKilled(t *testing.T) {
	sentinelMasterKilled(t, testenv.StartRedisSentinel(t))
}

// The same over TLS alone: the broker finds the promoted replica through
// the sentinels and checks its role on TLS connections.
func TestSentinelTLSMasterKilled(t *testing.T) {
	s := testenv.StartRedisSentinelTLS(t)
	sentinelMasterKilled(t, s, redisbroker.WithTLS(clientTLS(t, s.TLSFiles(), true)))
}

func sentinelMasterKilled(t *testing.T, s *testenv.RedisSentinel, opts ...redisbroker.Option) {
	ctx := ctxT(t)
	p := prefix(t)
	names := []string{"A", "B"}
	var recs []*timedRecorder
	var brokers []*redisbroker.Broker
	for range names {
		r := &timedRecorder{Recorder: brokertest.NewRecorder()}
		recs = append(recs, r)
		brokers = append(brokers, open(t, s.URL(), r, append([]redisbroker.Option{redisbroker.WithPrefix(p)}, opts...)...))
	}
	var rooms []string
	for i := range 6 {
		rooms = append(rooms, fmt.Sprintf("r%d", i))
		for _, b := range brokers {
			require.NoError(t, b.Subscribe(ctx, rooms[i]))
		}
	}

	// Each instance publishes every 5 ms, round robin over the rooms.
	var mu sync.Mutex
	var acked []sent
	stop := make(chan struct{})
	var publishers sync.WaitGroup
	for i, b := range brokers {
		publishers.Add(1)
		go func() {
			defer publishers.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				m := broker.Message{Room: rooms[n%len(rooms)], Kind: broker.Event, Origin: names[i], Data: []byte(strconv.Itoa(n))}
				after := make([]bool, len(recs))
				for j, r := range recs {
					_, restored := r.Counts()
					after[j] = restored > 0
				}
				if b.Publish(context.Background(), m) == nil {
					mu.Lock()
					acked = append(acked, sent{m, after})
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	old := s.KillMaster()
	killed := time.Now()
	t.Logf("killed the master %s", old)

	// Live delivery back on every instance within 10 seconds of the kill.
	deadline := killed.Add(10 * time.Second)
	for i, r := range recs {
		for {
			if _, first := r.times(); !first.IsZero() {
				t.Logf("instance %s: feed restored and live delivery back %s after the kill", names[i], first.Sub(killed).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				lost, restored := r.Counts()
				t.Fatalf("instance %s: no live delivery within 10s of the kill (FeedLost %d, FeedRestored %d)", names[i], lost, restored)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("the sentinels name %s the master", s.WaitFailover(old, 10*time.Second))
	time.Sleep(500 * time.Millisecond) // more traffic on the new master
	close(stop)
	publishers.Wait()

	mu.Lock()
	defer mu.Unlock()
	for i, r := range recs {
		lost, restored := r.Counts()
		assert.Equal(t, 1, lost, "instance %s: FeedLost", names[i])
		assert.Equal(t, 1, restored, "instance %s: FeedRestored", names[i])
		require.NoError(t, brokers[i].Ping(ctx))

		var want []string
		for _, a := range acked {
			if a.after[i] {
				want = append(want, a.m.Origin+"/"+a.m.Room+"/"+string(a.m.Data))
			}
		}
		require.NotEmpty(t, want, "instance %s: messages published after its restoration", names[i])
		r.WaitFor(t, wait, "every message published after the restoration", func(ms []broker.Message) bool {
			got := map[string]bool{}
			for _, m := range ms {
				got[m.Origin+"/"+m.Room+"/"+string(m.Data)] = true
			}
			for _, w := range want {
				if !got[w] {
					return false
				}
			}
			return true
		})

		// Once each, and each publisher's in the order it sent them.
		seen := map[string]bool{}
		last := map[string]int{}
		for _, m := range r.Messages() {
			key := m.Origin + "/" + m.Room + "/" + string(m.Data)
			assert.False(t, seen[key], "instance %s received %s twice", names[i], key)
			seen[key] = true
			n, err := strconv.Atoi(string(m.Data))
			require.NoError(t, err)
			if prev, ok := last[m.Origin]; ok {
				assert.Greater(t, n, prev, "instance %s: %s's message %d after %d", names[i], m.Origin, n, prev)
			}
			last[m.Origin] = n
		}
		t.Logf("instance %s: %d messages received, %d of them published after its restoration", names[i], len(seen), len(want))
	}
	t.Logf("%d messages acknowledged during the run", len(acked))
}

// A failover asked of the sentinels while the old master lives on (it
// becomes a replica): the instance leaves it, reports the loss and the
// restoration, and is subscribed on the new master.
func TestSentinelManualFailover(t *testing.T) {
	s := testenv.StartRedisSentinel(t)
	ctx := ctxT(t)
	p := prefix(t)
	rec := brokertest.NewRecorder()
	b := open(t, s.URL(), rec, redisbroker.WithPrefix(p))
	require.NoError(t, b.Subscribe(ctx, "r1"))
	old := s.Master()

	require.NoError(t, sentinelFailover(t, s))
	promoted := s.WaitFailover(old, 20*time.Second)
	waitCounts(t, rec, 1, 1, 20*time.Second)

	assert.Equal(t, map[string]int64{p + "room:r1": 1}, numsub(t, raw(t, promoted), p+"room:r1"), "subscribed on the new master")
	assert.Equal(t, map[string]int64{p + "room:r1": 0}, numsub(t, raw(t, old), p+"room:r1"), "and no longer on the old one")
	// The publisher's failover client follows its own sentinel, which may
	// announce the switch a moment later: until then its publishes go to
	// the old master and are lost, as news may be (the hub repairs from
	// the store). Publish until one arrives.
	arrived := func(ms []broker.Message) bool {
		return slices.ContainsFunc(ms, func(m broker.Message) bool { return strings.HasPrefix(string(m.Data), "after-") })
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !arrived(rec.Messages()); i++ {
		require.True(t, time.Now().Before(deadline), "no message through the new master within 10s")
		_ = b.Publish(ctx, ev("r1", fmt.Sprint("after-", i)))
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, b.Ping(ctx))
}

// sentinelFailover asks a sentinel for a failover.
func sentinelFailover(t *testing.T, s *testenv.RedisSentinel) error {
	c := raw(t, s.SentinelAddrs()[0])
	return c.Do(context.Background(), "SENTINEL", "FAILOVER", s.MasterName()).Err()
}
