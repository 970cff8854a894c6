package hub

import (
	"context"
	"errors"
	"sync"

	"dealroom/internal/lazy"
)

// frameKind tells how a queued frame may be treated under pressure.
type frameKind uint8

const (
	// kindEvent frames count against the bound and are never dropped
	// silently: when one does not fit, the room's subscription is ended
	// with a resync instead.
	kindEvent frameKind = iota
	// kindEphemeral frames (presence) are dropped first, and a newer one of
	// the same room replaces the queued one.
	kindEphemeral
	// kindControl frames (acks, errors, subscribed, resync) always get in,
	// up to a hard cap that only a client flooding commands while never
	// reading reaches.
	kindControl
)

type qframe struct {
	data []byte
	kind frameKind
	room string
}

// queue is a session's bounded send queue: many producers (the room feeds,
// catch-up, command answers), one consumer (the connection's writer).
type queue struct {
	mu        sync.Mutex
	frames    []qframe // FIFO; head at index 0 of the live window
	head      int
	counted   int // event + ephemeral frames queued
	bytes     int // bytes of counted frames
	control   int
	maxFrames int
	maxBytes  int
	closed    bool
	// ready and space wake a waiting consumer (pop) or producer
	// (pushWait); made when one first waits, signalled with mu held.
	ready chan struct{} // a frame was added
	space chan struct{} // a frame was taken
	// write, set by Session.Attach, is the writer's body; writer starts
	// it on a goroutine when a frame is added and none runs. It takes
	// frames with next and ends when next reports the queue empty, so an
	// idle session has no goroutine writing for it.
	write  func()
	writer lazy.Runner
}

var (
	errQueueClosed = errors.New("hub: session closed")
	errQueueFull   = errors.New("hub: send queue full")
)

const controlCap = 256

func newQueue(maxFrames, maxBytes int) *queue {
	return &queue{maxFrames: maxFrames, maxBytes: maxBytes}
}

// signal wakes whoever waits on c, if anyone (c may be nil).
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (q *queue) full(n int) bool {
	return q.counted >= q.maxFrames || (q.counted > 0 && q.bytes+n > q.maxBytes)
}

// dropEphemeral removes the oldest queued ephemeral frame; false when
// there is none.
func (q *queue) dropEphemeral() bool {
	for i := q.head; i < len(q.frames); i++ {
		if q.frames[i].kind == kindEphemeral {
			q.remove(i)
			return true
		}
	}
	return false
}

func (q *queue) remove(i int) {
	f := q.frames[i]
	q.counted--
	q.bytes -= len(f.data)
	copy(q.frames[i:], q.frames[i+1:])
	q.frames[len(q.frames)-1] = qframe{}
	q.frames = q.frames[:len(q.frames)-1]
}

func (q *queue) append(f qframe) {
	if q.head > 0 && (q.head == len(q.frames) || q.head >= len(q.frames)/2) {
		// Reuse the front: move what is still queued there, so that the
		// backing array stays as big as the queue, not as its history.
		n := copy(q.frames, q.frames[q.head:])
		clear(q.frames[n:])
		q.frames, q.head = q.frames[:n], 0
	}
	q.frames = append(q.frames, f)
	if f.kind == kindControl {
		q.control++
	} else {
		q.counted++
		q.bytes += len(f.data)
	}
	signal(q.ready)
	if q.write != nil {
		q.writer.Wake(q.write)
	}
}

// next takes the next frame for the writer, and tells whether more
// frames wait after it. ok false means the queue is empty (or closed and
// empty); if end is set the writer has then ended and must return (a
// later frame starts a new one), else it keeps running and asks again
// (after sending what it gathered).
func (q *queue) next(end bool) (data []byte, more, ok bool) {
	q.mu.Lock()
	if q.head >= len(q.frames) {
		if end {
			q.writer.Idle()
			// Idle: give the backing array back (an idle device should
			// cost little; the next frame makes a small one).
			q.frames, q.head = nil, 0
		}
		q.mu.Unlock()
		return nil, false, false
	}
	data = q.takeLocked()
	more = q.head < len(q.frames)
	signal(q.space)
	q.mu.Unlock()
	return data, more, true
}

// takeLocked removes the first frame, which must exist; q.mu is held.
func (q *queue) takeLocked() []byte {
	f := q.frames[q.head]
	q.frames[q.head] = qframe{}
	q.head++
	if f.kind == kindControl {
		q.control--
	} else {
		q.counted--
		q.bytes -= len(f.data)
	}
	return f.data
}

// pushEvent adds an event frame unless the queue is full even after
// dropping ephemeral frames.
func (q *queue) pushEvent(room string, data []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errQueueClosed
	}
	for q.full(len(data)) {
		if !q.dropEphemeral() {
			return errQueueFull
		}
	}
	q.append(qframe{data: data, kind: kindEvent, room: room})
	return nil
}

// pushEphemeral adds a presence frame, replacing a queued one of the same
// room; when the queue is full it is dropped (a newer one will follow) and
// the answer is false.
func (q *queue) pushEphemeral(room string, data []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	for i := q.head; i < len(q.frames); i++ {
		if f := &q.frames[i]; f.kind == kindEphemeral && f.room == room {
			// The newer one takes the older one's place in line.
			q.bytes += len(data) - len(f.data)
			f.data = data
			for q.bytes > q.maxBytes && q.counted > 1 {
				if !q.dropEphemeral() {
					break
				}
			}
			return q.bytes <= q.maxBytes || q.counted <= 1
		}
	}
	for q.full(len(data)) {
		if !q.dropEphemeral() {
			return false
		}
	}
	q.append(qframe{data: data, kind: kindEphemeral, room: room})
	return true
}

// pushControl adds a frame that must not be dropped; it fails only past
// the hard cap, and then the session must be closed.
func (q *queue) pushControl(data []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errQueueClosed
	}
	if q.control >= controlCap {
		return errQueueFull
	}
	q.append(qframe{data: data, kind: kindControl})
	return nil
}

// pushWait adds an event frame, waiting for room: catch-up goes at the
// pace of the client.
func (q *queue) pushWait(ctx context.Context, room string, data []byte) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return errQueueClosed
		}
		if !q.full(len(data)) {
			q.append(qframe{data: data, kind: kindEvent, room: room})
			// Another producer may wait for room too: let it look again.
			signal(q.space)
			q.mu.Unlock()
			return nil
		}
		if q.space == nil {
			q.space = make(chan struct{}, 1)
		}
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pop takes the next frame, waiting for one.
func (q *queue) pop(ctx context.Context) ([]byte, error) {
	for {
		q.mu.Lock()
		if q.head < len(q.frames) {
			data := q.takeLocked()
			signal(q.space)
			q.mu.Unlock()
			return data, nil
		}
		closed := q.closed
		if q.ready == nil {
			q.ready = make(chan struct{}, 1)
		}
		ready := q.ready
		q.mu.Unlock()
		if closed {
			return nil, errQueueClosed
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// len returns the number of queued frames and their bytes (control frames
// included in the count, not in the bytes).
func (q *queue) len() (frames, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.counted + q.control, q.bytes
}

// close wakes the consumer and every waiting producer; queued frames are
// still handed out by pop until none is left.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	signal(q.ready)
	signal(q.space)
	q.mu.Unlock()
}

// shut closes the queue and forgets its frames.
func (q *queue) shut() {
	q.mu.Lock()
	q.closed = true
	q.frames, q.head, q.counted, q.bytes, q.control = nil, 0, 0, 0, 0
	signal(q.ready)
	signal(q.space)
	q.mu.Unlock()
}
