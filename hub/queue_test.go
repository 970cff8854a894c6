package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
)

// popAll takes every queued frame without waiting.
func popAll(t *testing.T, q *queue) []string {
	t.Helper()
	var out []string
	for {
		frames, _ := q.len()
		if frames == 0 {
			return out
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b, err := q.pop(ctx)
		cancel()
		require.NoError(t, err)
		out = append(out, string(b))
	}
}

func TestQueueFIFO(t *testing.T) {
	q := newQueue(10, 1<<20)
	require.NoError(t, q.pushEvent("r1", []byte("e1")))
	require.NoError(t, q.pushControl([]byte("c1")))
	require.True(t, q.pushEphemeral("r1", []byte("p1")))
	require.NoError(t, q.pushWait(context.Background(), "r2", []byte("e2")))
	require.NoError(t, q.pushEvent("r2", []byte("e3")))
	frames, bytes := q.len()
	assert.Equal(t, 5, frames)
	assert.Equal(t, 8, bytes, "control frames are not counted in the bytes")
	assert.Equal(t, []string{"e1", "c1", "p1", "e2", "e3"}, popAll(t, q))
	frames, bytes = q.len()
	assert.Zero(t, frames)
	assert.Zero(t, bytes)

	// Interleaved pushes and pops keep the order too.
	var want, got []string
	for i := range 50 {
		s := fmt.Sprintf("f%d", i)
		want = append(want, s)
		require.NoError(t, q.pushEvent("r", []byte(s)))
		if i%3 == 2 {
			got = append(got, popAll(t, q)[:]...)
		}
	}
	got = append(got, popAll(t, q)...)
	assert.Equal(t, want, got)
}

// TestQueueEventsDropEphemeralFirst: an event that does not fit pushes
// presence out, oldest first; when there is none left it is refused.
func TestQueueEventsDropEphemeralFirst(t *testing.T) {
	q := newQueue(4, 1<<20)
	require.NoError(t, q.pushEvent("r1", []byte("e1")))
	require.True(t, q.pushEphemeral("r1", []byte("p1")))
	require.NoError(t, q.pushEvent("r1", []byte("e2")))
	require.True(t, q.pushEphemeral("r2", []byte("p2")))
	// Full: 4 frames.
	require.NoError(t, q.pushEvent("r1", []byte("e3")), "p1 makes room")
	require.NoError(t, q.pushEvent("r1", []byte("e4")), "p2 makes room")
	assert.ErrorIs(t, q.pushEvent("r1", []byte("e5")), errQueueFull, "only events are left")
	assert.False(t, q.pushEphemeral("r3", []byte("p3")), "presence does not fit either")
	assert.Equal(t, []string{"e1", "e2", "e3", "e4"}, popAll(t, q))

	// Once there is room again, events get in.
	require.NoError(t, q.pushEvent("r1", []byte("e5")))
	assert.Equal(t, []string{"e5"}, popAll(t, q))
}

// TestQueueEphemeralReplaces: a newer presence frame of a room replaces
// the queued one, in its place; other rooms' frames stay.
func TestQueueEphemeralReplaces(t *testing.T) {
	q := newQueue(10, 1<<20)
	require.True(t, q.pushEphemeral("r1", []byte("p1-old")))
	require.NoError(t, q.pushEvent("r1", []byte("e1")))
	require.True(t, q.pushEphemeral("r2", []byte("p2")))
	require.True(t, q.pushEphemeral("r1", []byte("p1-new!")))
	frames, bytes := q.len()
	assert.Equal(t, 3, frames)
	assert.Equal(t, len("p1-new!")+len("e1")+len("p2"), bytes, "the replaced frame's bytes are given back")
	assert.Equal(t, []string{"p1-new!", "e1", "p2"}, popAll(t, q))

	// A frame of the room that was taken already is not replaced.
	require.True(t, q.pushEphemeral("r1", []byte("a")))
	assert.Equal(t, []string{"a"}, popAll(t, q))
	require.True(t, q.pushEphemeral("r1", []byte("b")))
	assert.Equal(t, []string{"b"}, popAll(t, q))

	// Full of events and presence: replacement still works, a new room's
	// presence pushes out the oldest presence frame.
	q = newQueue(3, 1<<20)
	require.NoError(t, q.pushEvent("r1", []byte("e1")))
	require.True(t, q.pushEphemeral("r1", []byte("p1")))
	require.True(t, q.pushEphemeral("r2", []byte("p2")))
	require.True(t, q.pushEphemeral("r2", []byte("p2b")), "replacing needs no room")
	require.True(t, q.pushEphemeral("r3", []byte("p3")), "the oldest presence frame makes room")
	assert.Equal(t, []string{"e1", "p2b", "p3"}, popAll(t, q))
}

// TestQueueControlAlwaysGetsIn: acks and errors do not count against the
// bound, up to the hard cap.
func TestQueueControlAlwaysGetsIn(t *testing.T) {
	q := newQueue(2, 8)
	require.NoError(t, q.pushEvent("r", []byte("e1")))
	require.NoError(t, q.pushEvent("r", []byte("e2")))
	require.ErrorIs(t, q.pushEvent("r", []byte("e3")), errQueueFull)
	for i := range controlCap {
		require.NoError(t, q.pushControl([]byte(fmt.Sprintf("a very long control frame number %d", i))), i)
	}
	assert.ErrorIs(t, q.pushControl([]byte("one too many")), errQueueFull, "past the cap, the session is to be closed")
	frames, bytes := q.len()
	assert.Equal(t, 2+controlCap, frames)
	assert.Equal(t, 4, bytes)

	// Taking one control frame out makes room for one more.
	got := popAll(t, q)
	require.Len(t, got, 2+controlCap)
	assert.Equal(t, []string{"e1", "e2"}, got[:2])
	for i := range controlCap {
		require.NoError(t, q.pushControl([]byte("c")), i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := q.pop(ctx)
	require.NoError(t, err)
	assert.NoError(t, q.pushControl([]byte("c")))
	assert.ErrorIs(t, q.pushControl([]byte("c")), errQueueFull)
}

// TestQueueByteBound: the queue holds at most maxBytes of counted frames,
// except a single frame bigger than that, which gets in when the queue is
// empty (or nothing bigger could ever be sent).
func TestQueueByteBound(t *testing.T) {
	q := newQueue(100, 100)
	big := make([]byte, 60)
	require.NoError(t, q.pushEvent("r", big))
	assert.ErrorIs(t, q.pushEvent("r", make([]byte, 50)), errQueueFull, "60+50 > 100")
	require.NoError(t, q.pushEvent("r", make([]byte, 40)), "60+40 fits exactly")
	assert.ErrorIs(t, q.pushEvent("r", []byte("x")), errQueueFull)
	_, bytes := q.len()
	assert.Equal(t, 100, bytes)
	popAll(t, q)

	require.NoError(t, q.pushEvent("r", make([]byte, 500)), "alone, an oversized frame gets in")
	assert.ErrorIs(t, q.pushEvent("r", []byte("x")), errQueueFull)
	assert.False(t, q.pushEphemeral("r", []byte("p")))
	popAll(t, q)

	// Presence gives way to events by bytes too.
	require.True(t, q.pushEphemeral("r1", []byte(strings.Repeat("1", 30))))
	require.True(t, q.pushEphemeral("r2", []byte(strings.Repeat("2", 30))))
	require.NoError(t, q.pushEvent("r", []byte(strings.Repeat("e", 70))), "drops the oldest presence frame")
	frames, bytes := q.len()
	assert.Equal(t, 2, frames)
	assert.Equal(t, 100, bytes)
	assert.Equal(t, []string{strings.Repeat("2", 30), strings.Repeat("e", 70)}, popAll(t, q))
	require.True(t, q.pushEphemeral("r1", []byte(strings.Repeat("1", 30))))
	require.True(t, q.pushEphemeral("r2", []byte(strings.Repeat("2", 30))))
	require.NoError(t, q.pushEvent("r", []byte(strings.Repeat("e", 90))), "drops both presence frames")
	assert.Equal(t, []string{strings.Repeat("e", 90)}, popAll(t, q))

	// pushWait waits by bytes as well.
	require.NoError(t, q.pushEvent("r", make([]byte, 90)))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, q.pushWait(ctx, "r", make([]byte, 20)), context.DeadlineExceeded)
}

// TestQueueEphemeralByteBound: presence frames never take the queue past
// its byte bound (QueueBytes), neither by replacing a smaller queued frame
// nor by pushing out a smaller one.
func TestQueueEphemeralByteBound(t *testing.T) {
	q := newQueue(100, 100)
	require.NoError(t, q.pushEvent("r", make([]byte, 60)))
	require.True(t, q.pushEphemeral("r1", make([]byte, 30)))
	q.pushEphemeral("r1", make([]byte, 80)) // replaces the queued one
	_, bytes := q.len()
	assert.LessOrEqual(t, bytes, 100, "replacing a presence frame took the queue to %d bytes, past its bound of 100", bytes)

	q = newQueue(100, 100)
	require.NoError(t, q.pushEvent("r", make([]byte, 60)))
	require.True(t, q.pushEphemeral("r1", make([]byte, 10)))
	require.True(t, q.pushEphemeral("r2", make([]byte, 30)))
	q.pushEphemeral("r3", make([]byte, 90)) // only the oldest (10 bytes) is pushed out
	_, bytes = q.len()
	assert.LessOrEqual(t, bytes, 100, "a new presence frame took the queue to %d bytes, past its bound of 100", bytes)
}

// TestQueuePushWait: catch-up waits for room, as long as its context
// lasts, and fails when the queue closes.
func TestQueuePushWait(t *testing.T) {
	q := newQueue(2, 1<<20)
	require.NoError(t, q.pushEvent("r", []byte("e1")))
	require.NoError(t, q.pushEvent("r", []byte("e2")))

	// ctx ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	err := q.pushWait(ctx, "r", []byte("late"))
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond, "it waited")
	frames, _ := q.len()
	assert.Equal(t, 2, frames, "nothing was added")

	// A cancelled context fails at once when there is no room.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, q.pushWait(ctx, "r", []byte("late")), context.Canceled)

	// pop makes room: the waiting push completes.
	done := make(chan error, 1)
	go func() { done <- q.pushWait(context.Background(), "r", []byte("e3")) }()
	select {
	case err := <-done:
		t.Fatalf("pushWait returned %v on a full queue", err)
	case <-time.After(50 * time.Millisecond):
	}
	pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
	defer pcancel()
	b, err := q.pop(pctx)
	require.NoError(t, err)
	assert.Equal(t, "e1", string(b))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("pushWait did not complete after pop made room")
	}
	assert.Equal(t, []string{"e2", "e3"}, popAll(t, q))

	// Several waiting producers all get in, in turn, as the consumer pops.
	require.NoError(t, q.pushEvent("r", []byte("x1")))
	require.NoError(t, q.pushEvent("r", []byte("x2")))
	const waiters = 5
	errs := make(chan error, waiters)
	for i := range waiters {
		go func() { errs <- q.pushWait(context.Background(), "r", []byte(fmt.Sprintf("w%d", i))) }()
	}
	got := 0
	deadline := time.After(5 * time.Second)
	for got < waiters+2 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := q.pop(ctx)
		cancel()
		require.NoError(t, err)
		got++
		select {
		case <-deadline:
			t.Fatal("the waiting producers did not all get in")
		default:
		}
	}
	for range waiters {
		require.NoError(t, <-errs)
	}

	// close wakes a waiting producer with errQueueClosed.
	require.NoError(t, q.pushEvent("r", []byte("y1")))
	require.NoError(t, q.pushEvent("r", []byte("y2")))
	go func() { done <- q.pushWait(context.Background(), "r", []byte("y3")) }()
	time.Sleep(20 * time.Millisecond)
	q.close()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, errQueueClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("close did not wake the waiting producer")
	}
}

func TestQueuePopWaits(t *testing.T) {
	q := newQueue(10, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err := q.pop(ctx)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "pop waits for a frame as long as ctx lasts")

	got := make(chan string, 1)
	go func() {
		b, err := q.pop(context.Background())
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b)
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, q.pushControl([]byte("hello")))
	select {
	case s := <-got:
		assert.Equal(t, "hello", s)
	case <-time.After(2 * time.Second):
		t.Fatal("a push did not wake the waiting pop")
	}

	// close wakes a waiting pop.
	errc := make(chan error, 1)
	go func() {
		_, err := q.pop(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	q.close()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, errQueueClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("close did not wake the waiting pop")
	}
}

// TestQueueClose: after close nothing gets in, what was queued is still
// handed out, then pop fails.
func TestQueueClose(t *testing.T) {
	q := newQueue(10, 1<<20)
	require.NoError(t, q.pushEvent("r", []byte("e1")))
	require.NoError(t, q.pushControl([]byte("c1")))
	require.True(t, q.pushEphemeral("r", []byte("p1")))
	q.close()
	assert.ErrorIs(t, q.pushEvent("r", []byte("e2")), errQueueClosed)
	assert.ErrorIs(t, q.pushControl([]byte("c2")), errQueueClosed)
	assert.False(t, q.pushEphemeral("r2", []byte("p2")))
	assert.ErrorIs(t, q.pushWait(context.Background(), "r", []byte("e3")), errQueueClosed)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, want := range []string{"e1", "c1", "p1"} {
		b, err := q.pop(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
	}
	_, err := q.pop(ctx)
	assert.ErrorIs(t, err, errQueueClosed)
	_, err = q.pop(ctx)
	assert.ErrorIs(t, err, errQueueClosed, "and keeps failing")
	assert.True(t, errors.Is(err, errQueueClosed))
	q.close() // twice is harmless
}

// TestQueueShut: shut forgets what was queued.
func TestQueueShut(t *testing.T) {
	q := newQueue(10, 1<<20)
	require.NoError(t, q.pushEvent("r", []byte("e1")))
	require.NoError(t, q.pushControl([]byte("c1")))
	q.shut()
	frames, bytes := q.len()
	assert.Zero(t, frames)
	assert.Zero(t, bytes)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := q.pop(ctx)
	assert.ErrorIs(t, err, errQueueClosed)
	assert.ErrorIs(t, q.pushEvent("r", []byte("e2")), errQueueClosed)
}

// TestQueueBackingArrayBounded: a queue that is never empty when a frame
// is added (a steady stream with the writer a frame behind) must not grow
// without bound: memory stays proportional to what is queued.
func TestQueueBackingArrayBounded(t *testing.T) {
	q := newQueue(16, 1<<20)
	require.NoError(t, q.pushEvent("r", []byte("first")))
	ctx := context.Background()
	for i := range 100_000 {
		require.NoError(t, q.pushEvent("r", []byte("x")), i)
		_, err := q.pop(ctx)
		require.NoError(t, err)
	}
	frames, _ := q.len()
	assert.Equal(t, 1, frames)
	q.mu.Lock()
	n, c := len(q.frames), cap(q.frames)
	q.mu.Unlock()
	assert.LessOrEqual(t, c, 1024, "the queue holds one frame but its slice has len %d, cap %d: dead slots before head are never reclaimed", n, c)
}

// TestQueueConcurrent: many producers, one consumer, under -race: every
// accepted frame comes out once.
func TestQueueConcurrent(t *testing.T) {
	q := newQueue(8, 1<<20)
	const producers, each = 4, 200
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, producers)
	for p := range producers {
		go func() {
			for i := range each {
				if err := q.pushWait(ctx, "r", []byte(fmt.Sprintf("%d-%d", p, i))); err != nil {
					errs <- err
					return
				}
				q.pushEphemeral(fmt.Sprint("p", p), []byte("presence"))
				q.pushControl([]byte("ctl"))
			}
			errs <- nil
		}()
	}
	next := make([]int, producers)
	finished := 0
	for finished < producers || func() bool { f, _ := q.len(); return f > 0 }() {
		select {
		case err := <-errs:
			require.NoError(t, err)
			finished++
			continue
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, 20*time.Millisecond)
		b, err := q.pop(pctx)
		pcancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		require.NoError(t, err)
		var p, i int
		if _, err := fmt.Sscanf(string(b), "%d-%d", &p, &i); err == nil {
			require.Equal(t, next[p], i, "producer %d's frames in order, once", p)
			next[p]++
		}
	}
	for p := range producers {
		assert.Equal(t, each, next[p])
	}
}

// recordingTransport records what a session's writer hands it; the first
// WriteFrame waits for release.
type recordingTransport struct {
	mu      sync.Mutex
	frames  []string
	mores   []bool
	flushes int
	release chan struct{}
	once    sync.Once
}

func (r *recordingTransport) WriteFrame(fr []byte, more bool) error {
	r.once.Do(func() { <-r.release })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames, r.mores = append(r.frames, string(fr)), append(r.mores, more)
	return nil
}

func (r *recordingTransport) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushes++
	return nil
}

func (r *recordingTransport) WriteFailed(error) {}
func (r *recordingTransport) End(error)         {}

// TestSessionWriterFlushesWhenTheRestIsGone: a frame written with "more to
// come" is followed by a Flush when the rest never comes (the session was
// closed meanwhile, dropping its queue): a transport that gathers frames
// must not keep them.
func TestSessionWriterFlushesWhenTheRestIsGone(t *testing.T) {
	h := New(Config{}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s := h.NewSession(dealroom.Actor{ID: "u1", Kind: dealroom.Staff})
	s.Send([]byte(`{"type":"one"}`))
	s.Send([]byte(`{"type":"two"}`))
	tr := &recordingTransport{release: make(chan struct{})}
	s.Attach(tr)
	time.Sleep(20 * time.Millisecond) // the writer waits in the first WriteFrame
	s.Close()
	close(tr.release)
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.flushes == 1
	}, 5*time.Second, 5*time.Millisecond, "the writer flushes")
	tr.mu.Lock()
	defer tr.mu.Unlock()
	assert.Equal(t, []string{`{"type":"one"}`}, tr.frames)
	assert.Equal(t, []bool{true}, tr.mores, "the first frame was written with more to come")
}

// endingTransport records why its session was ended.
type endingTransport struct {
	recordingTransport
	ended []error
}

func (e *endingTransport) End(why error) { e.ended = append(e.ended, why) }

// TestSessionEndedBeforeItsTransport: a hub that closes (or signs a
// session out) between a websocket's upgrade and its transport's Attach
// still ends it: the transport is told when it attaches.
func TestSessionEndedBeforeItsTransport(t *testing.T) {
	h := New(Config{}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s := h.NewSession(dealroom.Actor{ID: "u1", Kind: dealroom.Staff})
	s.end(ErrShutdown)
	tr := &endingTransport{recordingTransport: recordingTransport{release: make(chan struct{})}}
	s.Attach(tr)
	assert.Equal(t, []error{ErrShutdown}, tr.ended)
	s.end(ErrOverrun)
	assert.Len(t, tr.ended, 1, "a session is ended once")

	attached := &endingTransport{recordingTransport: recordingTransport{release: make(chan struct{})}}
	s2 := h.NewSession(dealroom.Actor{ID: "u2", Kind: dealroom.Staff})
	s2.Attach(attached)
	s2.end(ErrSignedOut)
	assert.Equal(t, []error{ErrSignedOut}, attached.ended)
}
