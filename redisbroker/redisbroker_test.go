package redisbroker_test

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

func TestMain(m *testing.M) { testenv.Main(m) }

const wait = 5 * time.Second

// --- helpers ---

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// prefix returns a channel prefix of the test's own on a shared server.
func prefix(t testing.TB) string {
	var b [4]byte
	crand.Read(b[:])
	name := regexp.MustCompile(`[^A-Za-z0-9_]+`).ReplaceAllString(t.Name(), "_")
	return "test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

func urlOf(addr string) string { return "redis://" + addr + "/0" }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t testing.TB, url string, h broker.Handler, opts ...redisbroker.Option) *redisbroker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	b, err := redisbroker.New(ctx, url, h, append([]redisbroker.Option{redisbroker.WithLogger(logger(t))}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

func raw(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func ev(room, data string) broker.Message {
	return broker.Message{Room: room, Kind: broker.Event, Origin: "test", Data: []byte(data)}
}

func has(room, data string) func([]broker.Message) bool {
	return func(ms []broker.Message) bool {
		return slices.ContainsFunc(ms, func(m broker.Message) bool { return m.Room == room && string(m.Data) == data })
	}
}

func waitCounts(t testing.TB, r *brokertest.Recorder, lost, restored int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		l, rs := r.Counts()
		if l == lost && rs == restored {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: FeedLost %d times and FeedRestored %d times, want %d and %d", d, l, rs, lost, restored)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publishEventually publishes m, retrying while the publisher's connection
// pool recovers from an outage.
func publishEventually(t testing.TB, b broker.Broker, m broker.Message) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := b.Publish(context.Background(), m)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// numsub returns how many subscribers Redis counts on each channel.
func numsub(t testing.TB, rdb *redis.Client, channels ...string) map[string]int64 {
	t.Helper()
	n, err := rdb.PubSubNumSub(context.Background(), channels...).Result()
	require.NoError(t, err)
	return n
}

// --- conformance ---

func TestConformance(t *testing.T) {
	conformance(t, func(t *testing.T) string { return urlOf(testenv.Redis(t)) + "?" })
}

// conformance runs the broker suite over RESP3 and RESP2 on the Redis
// that base's URL names; base ends with "?" or "&", where the protocol
// parameter is added.
func conformance(t *testing.T, base func(t *testing.T) string, opts ...redisbroker.Option) {
	for _, proto := range []string{"3", "2"} {
		t.Run("RESP"+proto, func(t *testing.T) {
			brokertest.Run(t, func(t *testing.T) func(h broker.Handler) broker.Broker {
				url := base(t) + "protocol=" + proto
				p := prefix(t)
				return func(h broker.Handler) broker.Broker {
					return open(t, url, h, append([]redisbroker.Option{redisbroker.WithPrefix(p)}, opts...)...)
				}
			})
		})
	}
}

// --- construction ---

func TestNewFails(t *testing.T) {
	rec := brokertest.NewRecorder()
	ctx := ctxT(t)

	_, err := redisbroker.New(ctx, "http://localhost:6379", rec)
	assert.ErrorContains(t, err, "invalid Redis URL")

	_, err = redisbroker.New(ctx, "redis://user:secret@%zz/0", rec)
	assert.ErrorContains(t, err, "invalid Redis URL")
	assert.NotContains(t, err.Error(), "secret", "no password in the error")

	_, err = redisbroker.New(ctx, urlOf(testenv.Redis(t)), nil)
	assert.Error(t, err, "nil handler")

	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	_, err = redisbroker.New(ctx, urlOf(addr), rec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot reach Redis at "+addr)
	assert.Less(t, time.Since(start), 3*time.Second, "fails promptly")
}

// --- layout and wire format ---

func TestChannelLayoutAndPayload(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	b := open(t, urlOf(srv.Addr()), rec) // default prefix
	rdb := raw(t, srv.Addr())

	require.NoError(t, b.Subscribe(ctx, "r1"))
	chans, err := rdb.PubSubChannels(ctx, "*").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"dealroom:room:r1"}, chans)

	spy := rdb.Subscribe(ctx, "dealroom:room:r1")
	defer spy.Close()
	_, err = spy.Receive(ctx) // the confirmation
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, broker.Message{Room: "r1", Kind: broker.Presence, Origin: "ab", Data: []byte("x\x00z")}))
	msg, err := spy.ReceiveMessage(ctx)
	require.NoError(t, err)
	assert.Equal(t, "\x01\x02\x02abx\x00z", msg.Payload, "version, kind, origin length, origin, data")
	rec.WaitFor(t, wait, "the message", func(ms []broker.Message) bool { return len(ms) == 1 })
	assert.Equal(t, broker.Message{Room: "r1", Kind: broker.Presence, Origin: "ab", Data: []byte("x\x00z")}, rec.Messages()[0])
	require.NoError(t, spy.Close())

	b.Unsubscribe("r1")
	assert.Eventually(t, func() bool {
		chans, err := rdb.PubSubChannels(ctx, "*").Result()
		return err == nil && len(chans) == 0
	}, wait, 10*time.Millisecond, "UNSUBSCRIBE sent")
}

func TestMalformedPayloadsAreIgnored(t *testing.T) {
	addr := testenv.Redis(t)
	p := prefix(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	b := open(t, urlOf(addr), rec, redisbroker.WithPrefix(p))
	rdb := raw(t, addr)
	require.NoError(t, b.Subscribe(ctx, "r1"))
	for _, junk := range []string{"", "\x01", "\x02\x01\x00new version", "\x01\x01\x09short", "\x01\x01\x80\x00", `{"seq":1}`} {
		require.NoError(t, rdb.Publish(ctx, p+"room:r1", junk).Err())
	}
	require.NoError(t, b.Publish(ctx, ev("r1", "fine")))
	rec.WaitFor(t, wait, "the good message", has("r1", "fine"))
	assert.Len(t, rec.Messages(), 1)
	lost, restored := rec.Counts()
	assert.Zero(t, lost+restored, "junk is not a connection problem")
}

// --- counting and concurrency ---

func TestCountsWithRedis(t *testing.T) {
	addr := testenv.Redis(t)
	p := prefix(t)
	ctx := ctxT(t)
	b := open(t, urlOf(addr), brokertest.NewRecorder(), redisbroker.WithPrefix(p))
	rdb := raw(t, addr)
	ch := p + "room:r1"

	require.NoError(t, b.Subscribe(ctx, "r1"))
	require.NoError(t, b.Subscribe(ctx, "r1"))
	assert.EqualValues(t, 1, numsub(t, rdb, ch)[ch], "one SUBSCRIBE per room")
	b.Unsubscribe("r1")
	time.Sleep(50 * time.Millisecond)
	assert.EqualValues(t, 1, numsub(t, rdb, ch)[ch], "still subscribed once")
	b.Unsubscribe("r1")
	assert.Eventually(t, func() bool { return numsub(t, rdb, ch)[ch] == 0 }, wait, 10*time.Millisecond)
	b.Unsubscribe("r1") // one too many: ignored
	require.NoError(t, b.Subscribe(ctx, "r1"))
	assert.EqualValues(t, 1, numsub(t, rdb, ch)[ch])
}

// phased counts the messages of room "r" received after a phase began.
type phased struct {
	brokertest.Recorder
	after atomic.Bool
	late  atomic.Int64
}

func (h *phased) Receive(m broker.Message) {
	if h.after.Load() && strings.HasPrefix(string(m.Data), "old") {
		h.late.Add(1)
	}
	h.Recorder.Receive(m)
}

// TestResubscribeDropsTheEndedSubscriptionsMessages: messages of a
// subscription that was ended, still on their way to the subscriber
// connection when the room is subscribed again, are not delivered as if
// the new subscription had them: they come before Redis confirmed the
// UNSUBSCRIBE, and the new subscription starts at its own confirmation
// (the hub reads what it missed from the store). Before, a room
// unsubscribed and subscribed again at once received a burst of the old
// subscription's messages, and the conformance suite's CountsSubscriptions
// saw a message published before the unsubscribe arrive after its probe
// (CI, 2026-12-05).
func TestResubscribeDropsTheEndedSubscriptionsMessages(t *testing.T) {
	addr := testenv.Redis(t)
	p := prefix(t)
	ctx := ctxT(t)
	h := &phased{Recorder: *brokertest.NewRecorder()}
	b := open(t, urlOf(addr), h, redisbroker.WithPrefix(p))
	rdb := raw(t, addr)
	ch := p + "room:r"
	payload := func(data string) string { // the wire's version 1, an event from "test"
		b := binary.AppendUvarint([]byte{1, byte(broker.Event)}, 4)
		return string(append(append(b, "test"...), data...))
	}
	old := payload("old " + strings.Repeat("x", 200))
	for round := range 3 {
		require.NoError(t, b.Subscribe(ctx, "r"))
		// Redis has sent all of these to the subscriber connection once
		// the pipeline's answers are in; its reader is still at them.
		_, err := rdb.Pipelined(ctx, func(pp redis.Pipeliner) error {
			for range 3000 {
				pp.Publish(ctx, ch, old)
			}
			return nil
		})
		require.NoError(t, err)
		b.Unsubscribe("r")
		h.after.Store(true)
		require.NoError(t, b.Subscribe(ctx, "r"))
		fresh := fmt.Sprint("new ", round)
		require.NoError(t, rdb.Publish(ctx, ch, payload(fresh)).Err())
		h.WaitFor(t, wait, "the message after subscribing again", has("r", fresh))
		// One message may have been checked before the Unsubscribe and
		// handed over after it returned.
		assert.LessOrEqual(t, h.late.Load(), int64(1), "round %d: messages of the ended subscription delivered", round)
		h.after.Store(false)
		h.late.Store(0)
		b.Unsubscribe("r")
	}
}

func TestConcurrentSubscribes(t *testing.T) {
	addr := testenv.Redis(t)
	p := prefix(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	b := open(t, urlOf(addr), rec, redisbroker.WithPrefix(p))
	const rooms = 300
	var wg sync.WaitGroup
	for i := range rooms {
		wg.Go(func() { assert.NoError(t, b.Subscribe(ctx, fmt.Sprintf("r%d", i))) })
	}
	wg.Wait()
	for i := range rooms {
		require.NoError(t, b.Publish(ctx, ev(fmt.Sprintf("r%d", i), "hello")))
	}
	rec.WaitFor(t, wait, "a message per room", func(ms []broker.Message) bool { return len(ms) == rooms })
	lost, _ := rec.Counts()
	assert.Zero(t, lost)
}

// TestChurn subscribes and unsubscribes a few rooms from many goroutines:
// the confirmations must match the commands throughout (a mismatch would
// drop the connection and show up as FeedLost).
func TestChurn(t *testing.T) {
	for _, proto := range []string{"3", "2"} {
		t.Run("RESP"+proto, func(t *testing.T) { churn(t, proto) })
	}
}

func churn(t *testing.T, proto string) {
	addr := testenv.Redis(t)
	p := prefix(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	b := open(t, urlOf(addr)+"?protocol="+proto, rec, redisbroker.WithPrefix(p))
	rdb := raw(t, addr)
	require.NoError(t, b.Subscribe(ctx, "stable"))

	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for k := range 100 {
				room := fmt.Sprintf("churn%d", (g+k)%4)
				if err := b.Subscribe(ctx, room); err != nil {
					t.Error(err)
					return
				}
				if rand.IntN(4) == 0 {
					time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
				}
				b.Unsubscribe(room)
			}
		})
	}
	wg.Wait()

	assert.Eventually(t, func() bool {
		chans, err := rdb.PubSubChannels(ctx, p+"*").Result()
		return err == nil && slices.Equal(chans, []string{p + "room:stable"})
	}, wait, 10*time.Millisecond, "only the stable room is left subscribed")
	require.NoError(t, b.Publish(ctx, ev("stable", "still here")))
	rec.WaitFor(t, wait, "the stable room's message", has("stable", "still here"))
	lost, restored := rec.Counts()
	assert.Zero(t, lost+restored, "no confirmation mismatch")
}

// --- faults ---

// TestRedisDown stops (or kills) Redis under a subscriber of several
// rooms, and starts it again.
func TestRedisDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(*testenv.RedisServer)
	}{
		{"Stop", (*testenv.RedisServer).Stop},
		{"Kill", (*testenv.RedisServer).Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			ctx := ctxT(t)
			rec := brokertest.NewRecorder()
			sub := open(t, urlOf(srv.Addr()), rec)
			pub := open(t, urlOf(srv.Addr()), brokertest.NewRecorder())
			rooms := []string{"r1", "r2", "r3", "r4", "r5"}
			for _, r := range rooms {
				require.NoError(t, sub.Subscribe(ctx, r))
			}
			require.NoError(t, sub.Subscribe(ctx, "r1")) // counted twice
			for _, r := range rooms {
				require.NoError(t, pub.Publish(ctx, ev(r, "before")))
			}
			for _, r := range rooms {
				rec.WaitFor(t, wait, r+" before", has(r, "before"))
			}

			tc.down(srv)
			waitCounts(t, rec, 1, 0, wait)

			start := time.Now()
			assert.Error(t, pub.Publish(ctx, ev("r1", "lost")), "Publish while Redis is down")
			assert.Error(t, sub.Publish(ctx, ev("r1", "lost")), "Publish while Redis is down")
			assert.Less(t, time.Since(start), 3*time.Second, "Publish fails promptly")
			assert.Error(t, sub.Ping(ctx), "Ping while Redis is down")
			sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			err := sub.Subscribe(sctx, "r6")
			cancel()
			assert.ErrorIs(t, err, context.DeadlineExceeded, "Subscribe waits for Redis, up to its context")
			time.Sleep(300 * time.Millisecond) // some failed reconnects
			waitCounts(t, rec, 1, 0, 0)

			srv.Start()
			start = time.Now()
			waitCounts(t, rec, 1, 1, wait)
			t.Logf("feed restored %s after Redis answered again", time.Since(start).Round(time.Millisecond))
			assert.NoError(t, sub.Ping(ctx))

			publishEventually(t, pub, ev("r1", "after"))
			for _, r := range rooms[1:] {
				require.NoError(t, pub.Publish(ctx, ev(r, "after")))
			}
			for _, r := range rooms {
				rec.WaitFor(t, wait, r+" after the restart", has(r, "after"))
			}
			t.Logf("live delivery resumed %s after Redis answered again", time.Since(start).Round(time.Millisecond))

			// Every counted room is subscribed once again, the failed
			// Subscribe was not counted.
			rdb := raw(t, srv.Addr())
			var chans []string
			for _, r := range append(rooms, "r6") {
				chans = append(chans, "dealroom:room:"+r)
			}
			n := numsub(t, rdb, chans...)
			for _, r := range rooms {
				assert.EqualValues(t, 1, n["dealroom:room:"+r], r)
			}
			assert.EqualValues(t, 0, n["dealroom:room:r6"], "the failed Subscribe")
			sub.Unsubscribe("r1")
			time.Sleep(50 * time.Millisecond)
			assert.EqualValues(t, 1, numsub(t, rdb, "dealroom:room:r1")["dealroom:room:r1"], "r1 is still counted once")
			waitCounts(t, rec, 1, 1, 0)
		})
	}
}

func TestRedisRestartsRepeatedly(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	sub := open(t, urlOf(srv.Addr()), rec)
	pub := open(t, urlOf(srv.Addr()), brokertest.NewRecorder())
	rooms := []string{"a", "b", "c"}
	for _, r := range rooms {
		require.NoError(t, sub.Subscribe(ctx, r))
	}
	for i := 1; i <= 3; i++ {
		srv.Restart()
		waitCounts(t, rec, i, i, wait)
		data := fmt.Sprintf("after restart %d", i)
		publishEventually(t, pub, ev("a", data))
		for _, r := range rooms[1:] {
			require.NoError(t, pub.Publish(ctx, ev(r, data)))
		}
		for _, r := range rooms {
			rec.WaitFor(t, wait, r+" "+data, has(r, data))
		}
	}
}

// TestChurnDuringRestarts subscribes and unsubscribes from many goroutines
// while Redis restarts: afterwards Redis has exactly the counted rooms.
func TestChurnDuringRestarts(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	b := open(t, urlOf(srv.Addr()), rec)
	pub := open(t, urlOf(srv.Addr()), brokertest.NewRecorder())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 10
	for g := range workers {
		wg.Go(func() {
			if err := b.Subscribe(ctx, fmt.Sprint("keep", g)); err != nil {
				t.Error(err)
				return
			}
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				room := fmt.Sprint("churn", (g+k)%6)
				if err := b.Subscribe(ctx, room); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				b.Unsubscribe(room)
			}
		})
	}
	for i := 1; i <= 2; i++ {
		time.Sleep(150 * time.Millisecond)
		srv.Restart()
		waitCounts(t, rec, i, i, wait)
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()

	var want []string
	for g := range workers {
		want = append(want, fmt.Sprint("dealroom:room:keep", g))
	}
	slices.Sort(want)
	rdb := raw(t, srv.Addr())
	assert.Eventually(t, func() bool {
		chans, err := rdb.PubSubChannels(ctx, "*").Result()
		slices.Sort(chans)
		return err == nil && slices.Equal(chans, want)
	}, wait, 10*time.Millisecond, "exactly the kept rooms are subscribed")
	waitCounts(t, rec, 2, 2, 0)
	for g := range workers {
		publishEventually(t, pub, ev(fmt.Sprint("keep", g), "end"))
	}
	for g := range workers {
		rec.WaitFor(t, wait, "the kept rooms' messages", has(fmt.Sprint("keep", g), "end"))
	}
}

// TestConnectionKilled kills the subscriber connection while Redis stays
// up. go-redis's PubSub would reconnect and resubscribe by itself without
// telling; the broker must report the loss and resubscribe every room.
func TestConnectionKilled(t *testing.T) {
	for _, proto := range []string{"3", "2"} {
		t.Run("RESP"+proto, func(t *testing.T) { connectionKilled(t, proto) })
	}
}

func connectionKilled(t *testing.T, proto string) {
	srv := testenv.StartRedis(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	sub := open(t, urlOf(srv.Addr())+"?protocol="+proto, rec)
	rdb := raw(t, srv.Addr())
	rooms := []string{"k1", "k2", "k3", "k4"}
	for _, r := range rooms {
		require.NoError(t, sub.Subscribe(ctx, r))
	}
	for i := 1; i <= 3; i++ {
		killed, err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, killed)
		waitCounts(t, rec, i, i, wait)

		data := fmt.Sprint("after kill ", i)
		for _, r := range rooms {
			require.NoError(t, sub.Publish(ctx, ev(r, data)))
		}
		for _, r := range rooms {
			rec.WaitFor(t, wait, r+" "+data, has(r, data))
		}
		list, err := rdb.ClientList(ctx).Result()
		require.NoError(t, err)
		assert.Len(t, regexp.MustCompile(`flags=[A-Za-z]*P`).FindAllString(list, -1), 1,
			"one subscriber connection:\n%s", list)
		for _, r := range rooms {
			ch := "dealroom:room:" + r
			assert.EqualValues(t, 1, numsub(t, rdb, ch)[ch])
		}
	}
}

func TestSubscribeWhileDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	sub := open(t, urlOf(srv.Addr()), rec)
	pub := open(t, urlOf(srv.Addr()), brokertest.NewRecorder())
	srv.Stop()
	waitCounts(t, rec, 1, 0, wait)

	done := make(chan error, 1)
	go func() { done <- sub.Subscribe(ctx, "late") }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Subscribe returned while Redis is down: %v", err)
	default:
	}
	srv.Start()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("Subscribe did not return after Redis came back")
	}
	waitCounts(t, rec, 1, 1, wait)
	publishEventually(t, pub, ev("late", "hello"))
	rec.WaitFor(t, wait, "the late room's message", has("late", "hello"))
}

func TestSubscribeTimeout(t *testing.T) {
	srv := testenv.StartRedis(t)
	rec := brokertest.NewRecorder()
	sub := open(t, urlOf(srv.Addr()), rec, redisbroker.WithSubscribeTimeout(300*time.Millisecond))
	srv.Stop()
	start := time.Now()
	err := sub.Subscribe(context.Background(), "r")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no confirmation from Redis")
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestCloseWhileDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	b, err := redisbroker.New(ctx, urlOf(srv.Addr()), rec, redisbroker.WithLogger(logger(t)))
	require.NoError(t, err)
	require.NoError(t, b.Subscribe(ctx, "r1"))
	srv.Kill()
	waitCounts(t, rec, 1, 0, wait)

	waiting := make(chan error, 1)
	go func() { waiting <- b.Subscribe(ctx, "r2") }()
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	require.NoError(t, b.Close())
	assert.Less(t, time.Since(start), time.Second, "Close returns promptly")
	select {
	case err := <-waiting:
		assert.ErrorIs(t, err, broker.ErrClosed, "a waiting Subscribe")
	case <-time.After(time.Second):
		t.Fatal("a waiting Subscribe did not return on Close")
	}
	require.NoError(t, b.Close(), "twice")
	assert.ErrorIs(t, b.Publish(ctx, ev("r1", "x")), broker.ErrClosed)
	assert.ErrorIs(t, b.Subscribe(ctx, "r1"), broker.ErrClosed)
	assert.ErrorIs(t, b.Ping(ctx), broker.ErrClosed)
	b.Unsubscribe("r1") // harmless

	// Nothing reconnects after Close.
	srv.Start()
	time.Sleep(300 * time.Millisecond)
	waitCounts(t, rec, 1, 0, 0)
	list, err := raw(t, srv.Addr()).ClientList(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(list, "\n"), "only the CLIENT LIST caller:\n%s", list)
}

// TestSilentConnectionDeath cuts the subscriber connection without closing
// it (a network partition): the health check finds it.
func TestSilentConnectionDeath(t *testing.T) {
	srv := testenv.StartRedis(t)
	px := startProxy(t, srv.Addr())
	ctx := ctxT(t)
	rec := brokertest.NewRecorder()
	sub := open(t, urlOf(px.addr()), rec, redisbroker.WithHealthCheck(100*time.Millisecond))
	pub := open(t, urlOf(srv.Addr()), brokertest.NewRecorder())
	rooms := []string{"s1", "s2", "s3"}
	for _, r := range rooms {
		require.NoError(t, sub.Subscribe(ctx, r))
	}
	// Idle for a while: the health check's PINGs are answered.
	time.Sleep(500 * time.Millisecond)
	waitCounts(t, rec, 0, 0, 0)

	px.blackhole()
	waitCounts(t, rec, 1, 1, wait) // lost, then restored on a new connection
	for _, r := range rooms {
		require.NoError(t, pub.Publish(ctx, ev(r, "after")))
	}
	for _, r := range rooms {
		rec.WaitFor(t, wait, r+" after", has(r, "after"))
	}
}

// --- a TCP proxy that can swallow traffic ---

type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	pipes  []*pipe
}

type pipe struct {
	a, b net.Conn
	dead atomic.Bool // swallow everything, close nothing
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pp := range p.pipes {
			pp.a.Close()
			pp.b.Close()
		}
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		pp := &pipe{a: a, b: b}
		p.mu.Lock()
		p.pipes = append(p.pipes, pp)
		p.mu.Unlock()
		go pp.copy(a, b)
		go pp.copy(b, a)
	}
}

// blackhole makes every current connection silent; new ones work.
func (p *proxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pp := range p.pipes {
		pp.dead.Store(true)
	}
}

func (pp *pipe) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if pp.dead.Load() {
			if err != nil {
				return
			}
			continue
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if !pp.dead.Load() {
				pp.a.Close()
				pp.b.Close()
			}
			return
		}
	}
}
