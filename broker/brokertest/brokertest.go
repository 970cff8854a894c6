// Package brokertest is the conformance suite of the broker port: every
// implementation runs it, so the in-process bus and Redis behave alike.
package brokertest

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

	"dealroom/broker"
)

// Backend makes, for one test, a fresh backend and returns a function that
// connects a new broker (an instance) to it, delivering to h. The suite
// closes the brokers it connects.
type Backend func(t *testing.T) (connect func(h broker.Handler) broker.Broker)

// Recorder is a Handler that keeps what it receives. It is a
// broker.RoomsHandler too, which counts how often each room was lost and
// restored; [Recorder.Plain] hides that.
type Recorder struct {
	mu            sync.Mutex
	msgs          []broker.Message
	lost          int
	restored      int
	lostRooms     map[string]int
	restoredRooms map[string]int
	changed       chan struct{}
}

var _ broker.RoomsHandler = (*Recorder)(nil)

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{changed: make(chan struct{}, 1), lostRooms: map[string]int{}, restoredRooms: map[string]int{}}
}

func (r *Recorder) Receive(m broker.Message) {
	m.Data = slices.Clone(m.Data)
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	r.poke()
}

func (r *Recorder) FeedLost() {
	r.mu.Lock()
	r.lost++
	r.mu.Unlock()
	r.poke()
}

func (r *Recorder) FeedRestored() {
	r.mu.Lock()
	r.restored++
	r.mu.Unlock()
	r.poke()
}

func (r *Recorder) RoomsLost(rooms []string) {
	r.mu.Lock()
	for _, room := range rooms {
		r.lostRooms[room]++
	}
	r.mu.Unlock()
	r.poke()
}

func (r *Recorder) RoomsRestored(rooms []string) {
	r.mu.Lock()
	for _, room := range rooms {
		r.restoredRooms[room]++
	}
	r.mu.Unlock()
	r.poke()
}

// Plain returns the recorder as a Handler that is not a RoomsHandler: a
// broker then tells it of every loss with FeedLost and FeedRestored.
func (r *Recorder) Plain() broker.Handler { return plain{r} }

type plain struct{ r *Recorder }

func (p plain) Receive(m broker.Message) { p.r.Receive(m) }
func (p plain) FeedLost()                { p.r.FeedLost() }
func (p plain) FeedRestored()            { p.r.FeedRestored() }

func (r *Recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Messages returns what was received so far.
func (r *Recorder) Messages() []broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// Counts returns how often the feed was lost and restored (FeedLost,
// FeedRestored).
func (r *Recorder) Counts() (lost, restored int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost, r.restored
}

// RoomCounts returns how often each room was named by RoomsLost and by
// RoomsRestored.
func (r *Recorder) RoomCounts() (lost, restored map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.lostRooms), maps.Clone(r.restoredRooms)
}

// RoomRestored tells whether every loss of room was followed by its
// restoration, and there was one at least.
func (r *Recorder) RoomRestored(room string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restoredRooms[room] > 0 && r.restoredRooms[room] == r.lostRooms[room]
}

// WaitFor waits until cond holds for the received messages.
func (r *Recorder) WaitFor(t testing.TB, d time.Duration, what string, cond func([]broker.Message) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		if cond(r.Messages()) {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s; got %d messages", d, what, len(r.Messages()))
		}
	}
}

// Run runs the suite.
func Run(t *testing.T, backend Backend) {
	t.Run("DeliversToSubscribersOnly", func(t *testing.T) { deliversToSubscribersOnly(t, backend) })
	t.Run("KeepsFieldsAndBytes", func(t *testing.T) { keepsFields(t, backend) })
	t.Run("KeepsOrderOfOnePublisher", func(t *testing.T) { keepsOrder(t, backend) })
	t.Run("CountsSubscriptions", func(t *testing.T) { countsSubscriptions(t, backend) })
	t.Run("ManyRoomsManyPublishers", func(t *testing.T) { manyRooms(t, backend) })
	t.Run("Close", func(t *testing.T) { closes(t, backend) })
}

const wait = 5 * time.Second

func connect(t *testing.T, backend Backend, n int) ([]broker.Broker, []*Recorder) {
	c := backend(t)
	var bs []broker.Broker
	var rs []*Recorder
	for range n {
		r := NewRecorder()
		b := c(r)
		t.Cleanup(func() { b.Close() })
		bs, rs = append(bs, b), append(rs, r)
	}
	return bs, rs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func count(room string, kind broker.Kind) func([]broker.Message) int {
	return func(ms []broker.Message) int {
		n := 0
		for _, m := range ms {
			if m.Room == room && m.Kind == kind {
				n++
			}
		}
		return n
	}
}

func deliversToSubscribersOnly(t *testing.T, backend Backend) {
	bs, rs := connect(t, backend, 3)
	c := ctx(t)
	require.NoError(t, bs[0].Subscribe(c, "r_a"))
	require.NoError(t, bs[1].Subscribe(c, "r_a"))
	require.NoError(t, bs[2].Subscribe(c, "r_b"))

	require.NoError(t, bs[2].Publish(c, broker.Message{Room: "r_a", Kind: broker.Event, Origin: "i2", Data: []byte("a1")}))
	require.NoError(t, bs[0].Publish(c, broker.Message{Room: "r_b", Kind: broker.Event, Origin: "i0", Data: []byte("b1")}))
	// Publishing on a room nobody subscribed is fine and reaches no one.
	require.NoError(t, bs[0].Publish(c, broker.Message{Room: "r_none", Kind: broker.Event, Origin: "i0", Data: []byte("x")}))
	// A marker after everything: once it arrives, nothing else can.
	require.NoError(t, bs[2].Publish(c, broker.Message{Room: "r_b", Kind: broker.Event, Origin: "i2", Data: []byte("end")}))
	for i := range 2 {
		rs[i].WaitFor(t, wait, "r_a's message", func(ms []broker.Message) bool { return count("r_a", broker.Event)(ms) == 1 })
	}
	rs[2].WaitFor(t, wait, "r_b's messages", func(ms []broker.Message) bool { return count("r_b", broker.Event)(ms) == 2 })
	require.NoError(t, bs[0].Publish(c, broker.Message{Room: "r_a", Kind: broker.Event, Origin: "i0", Data: []byte("end")}))
	for i := range 2 {
		rs[i].WaitFor(t, wait, "the end marker", func(ms []broker.Message) bool { return count("r_a", broker.Event)(ms) == 2 })
		for _, m := range rs[i].Messages() {
			assert.Equal(t, "r_a", m.Room, "broker %d got a message of a room it did not subscribe", i)
		}
	}
	for _, m := range rs[2].Messages() {
		assert.Equal(t, "r_b", m.Room)
	}
}

func keepsFields(t *testing.T, backend Backend) {
	bs, rs := connect(t, backend, 2)
	c := ctx(t)
	require.NoError(t, bs[1].Subscribe(c, "r_f"))
	data := []byte("{\"x\":\"é ✓ \\u0000\"}\x00\xff\n binary")
	sent := []broker.Message{
		{Room: "r_f", Kind: broker.Event, Origin: "inst-0", Data: data},
		{Room: "r_f", Kind: broker.Presence, Origin: "inst-0", Data: []byte("{}")},
		{Room: "r_f", Kind: broker.Event, Origin: "inst-0", Data: []byte{}},
	}
	for _, m := range sent {
		require.NoError(t, bs[0].Publish(c, m))
	}
	rs[1].WaitFor(t, wait, "three messages", func(ms []broker.Message) bool { return len(ms) == 3 })
	got := rs[1].Messages()
	for i := range sent {
		assert.Equal(t, sent[i].Room, got[i].Room)
		assert.Equal(t, sent[i].Kind, got[i].Kind)
		assert.Equal(t, sent[i].Origin, got[i].Origin)
		assert.Equal(t, string(sent[i].Data), string(got[i].Data))
	}
}

func keepsOrder(t *testing.T, backend Backend) {
	bs, rs := connect(t, backend, 2)
	c := ctx(t)
	for _, b := range bs {
		require.NoError(t, b.Subscribe(c, "r_o"))
	}
	const n = 500
	for i := range n {
		require.NoError(t, bs[0].Publish(c, broker.Message{Room: "r_o", Kind: broker.Event, Origin: "p", Data: fmt.Appendf(nil, "%d", i)}))
	}
	for _, r := range rs {
		r.WaitFor(t, wait, "all messages", func(ms []broker.Message) bool { return len(ms) == n })
		for i, m := range r.Messages() {
			require.Equal(t, fmt.Sprint(i), string(m.Data), "message %d out of order", i)
		}
	}
}

func countsSubscriptions(t *testing.T, backend Backend) {
	bs, rs := connect(t, backend, 2)
	c := ctx(t)
	sub, pub, r := bs[0], bs[1], rs[0]
	require.NoError(t, sub.Subscribe(c, "r_c"))
	require.NoError(t, sub.Subscribe(c, "r_c"))
	sub.Unsubscribe("r_c")
	require.NoError(t, pub.Publish(c, broker.Message{Room: "r_c", Kind: broker.Event, Data: []byte("1")}))
	r.WaitFor(t, wait, "a message while one subscription is left", func(ms []broker.Message) bool { return len(ms) == 1 })

	sub.Unsubscribe("r_c")
	// Unsubscribe takes effect asynchronously in some backends: probe with
	// a second room, published after the first, until it is received.
	require.NoError(t, sub.Subscribe(c, "r_probe"))
	require.NoError(t, pub.Publish(c, broker.Message{Room: "r_c", Kind: broker.Event, Data: []byte("2")}))
	require.NoError(t, pub.Publish(c, broker.Message{Room: "r_probe", Kind: broker.Event, Data: []byte("p")}))
	r.WaitFor(t, wait, "the probe", func(ms []broker.Message) bool { return count("r_probe", broker.Event)(ms) == 1 })
	assert.Equal(t, 1, count("r_c", broker.Event)(r.Messages()), "no message after the last Unsubscribe")

	// A room can be subscribed again.
	require.NoError(t, sub.Subscribe(c, "r_c"))
	require.NoError(t, pub.Publish(c, broker.Message{Room: "r_c", Kind: broker.Event, Data: []byte("3")}))
	r.WaitFor(t, wait, "a message after subscribing again", func(ms []broker.Message) bool { return count("r_c", broker.Event)(ms) == 2 })
}

func manyRooms(t *testing.T, backend Backend) {
	bs, rs := connect(t, backend, 3)
	c := ctx(t)
	const rooms, per = 20, 50
	for i := range rooms {
		for j, b := range bs {
			if (i+j)%3 != 0 { // each room has two of the three subscribed
				require.NoError(t, b.Subscribe(c, fmt.Sprintf("r_%d", i)))
			}
		}
	}
	var wg sync.WaitGroup
	for p, b := range bs {
		wg.Go(func() {
			for k := range per {
				for i := range rooms {
					m := broker.Message{Room: fmt.Sprintf("r_%d", i), Kind: broker.Event, Origin: fmt.Sprint(p), Data: fmt.Appendf(nil, "%d/%d", p, k)}
					if err := b.Publish(c, m); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for j, r := range rs {
		want := 0
		for i := range rooms {
			if (i+j)%3 != 0 {
				want += per * len(bs)
			}
		}
		r.WaitFor(t, wait, "every message", func(ms []broker.Message) bool { return len(ms) >= want })
		seen := map[string]bool{}
		next := map[string]int{} // room/publisher → next k
		for _, m := range r.Messages() {
			id := m.Room + " " + string(m.Data)
			require.False(t, seen[id], "broker %d got %s twice", j, id)
			seen[id] = true
			var p, k int
			_, err := fmt.Sscanf(string(m.Data), "%d/%d", &p, &k)
			require.NoError(t, err)
			key := fmt.Sprintf("%s/%d", m.Room, p)
			require.Equal(t, next[key], k, "broker %d: %s out of order", j, key)
			next[key]++
		}
		assert.Len(t, seen, want)
	}
}

func closes(t *testing.T, backend Backend) {
	bs, rs := connect(t, backend, 2)
	c := ctx(t)
	require.NoError(t, bs[0].Subscribe(c, "r_x"))
	require.NoError(t, bs[0].Ping(c))
	require.NoError(t, bs[0].Close())
	require.NoError(t, bs[0].Close(), "Close twice")
	assert.Error(t, bs[0].Publish(c, broker.Message{Room: "r_x", Kind: broker.Event}), "Publish after Close")
	assert.Error(t, bs[0].Ping(c), "Ping after Close")
	require.NoError(t, bs[1].Subscribe(c, "r_x"))
	require.NoError(t, bs[1].Publish(c, broker.Message{Room: "r_x", Kind: broker.Event, Data: []byte("after")}))
	rs[1].WaitFor(t, wait, "the other broker's own message", func(ms []broker.Message) bool { return len(ms) == 1 })
	assert.Empty(t, rs[0].Messages(), "a closed broker delivers nothing")
}
