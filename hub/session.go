package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"dealroom"
	"dealroom/presence"
)

// Session is one connected device: its subscriptions and its send queue.
// The transport (the websocket handler) feeds it the client's frames and
// writes out what Next returns.
type Session struct {
	h     *Hub
	id    string
	actor dealroom.Actor
	q     *queue

	mu     sync.Mutex
	subs   map[string]*sub
	closed bool
	kill   chan struct{} // closed when the session must be ended
	onKill func()
}

// sub is a session's subscription to one room.
type sub struct {
	sess     *Session
	room     string
	customer bool // sees the room as a customer does
	oversees bool // sees the room without being a member
	// sent is the last seq handed to the session's queue (or skipped as
	// invisible): owned by the catch-up goroutine until the sub is live,
	// then guarded by the feed's lock.
	sent int64
	feed *feed
	// state is what the device said it does in the room; live tells that
	// it is in the room's presence. Both are guarded by the session's mu.
	state  presence.Device
	live   bool
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when catch-up is over
	once   sync.Once
}

var errRemoved = errors.New("removed from the room")

// NewSession registers a connected device of the actor.
func (h *Hub) NewSession(a dealroom.Actor) *Session {
	var b [8]byte
	rand.Read(b[:])
	h.Stats.Sessions.Add(1)
	s := &Session{h: h, id: h.cfg.Instance + "-" + hex.EncodeToString(b[:]), actor: a,
		q: newQueue(h.cfg.QueueFrames, h.cfg.QueueBytes), subs: map[string]*sub{}, kill: make(chan struct{})}
	h.mu.Lock()
	h.sessions[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// ID returns the session's id.
func (s *Session) ID() string { return s.id }

// Actor returns who the session belongs to.
func (s *Session) Actor() dealroom.Actor { return s.actor }

// Next returns the next frame to write, waiting for one. It fails once the
// session is closed and its queue is empty.
func (s *Session) Next(ctx context.Context) ([]byte, error) { return s.q.pop(ctx) }

// Killed is closed when the session broke the protocol's limits (it sent
// commands faster than it read their answers) and must be closed.
func (s *Session) Killed() <-chan struct{} { return s.kill }

// OnKill sets a function called once when the session must be ended (see
// Killed), instead of a goroutine waiting on Killed for each connection.
func (s *Session) OnKill(f func()) {
	s.mu.Lock()
	s.onKill = f
	s.mu.Unlock()
}

// Write starts delivery through write: each queued frame is handed to
// write, in order, by a goroutine that runs only while there are frames
// (an idle device costs no goroutine). When write fails, done is called
// once with its error and nothing more is written. Call Write once,
// instead of reading Next.
func (s *Session) Write(write func([]byte) error, done func(error)) {
	var once sync.Once
	var failed bool
	run := func() {
		for {
			fr, ok := s.q.next()
			if !ok {
				return
			}
			if failed {
				continue // drop: the connection is gone
			}
			if err := write(fr); err != nil {
				failed = true
				once.Do(func() { done(err) })
			}
		}
	}
	s.q.mu.Lock()
	s.q.onReady = func() { go run() }
	if s.q.head < len(s.q.frames) && !s.q.active {
		s.q.active = true
		go run()
	}
	s.q.mu.Unlock()
}

// Queued returns how many frames wait to be written, and their bytes.
func (s *Session) Queued() (frames, bytes int) { return s.q.len() }

// Send queues a control frame (an ack, an error, a pong).
func (s *Session) Send(frame []byte) {
	if err := s.q.pushControl(frame); errors.Is(err, errQueueFull) {
		s.mu.Lock()
		var f func()
		if !s.closed {
			select {
			case <-s.kill:
			default:
				close(s.kill)
				f = s.onKill
			}
		}
		s.mu.Unlock()
		if f != nil {
			f()
		}
	}
}

// Subscribe starts the subscription of a room from the seq after: catch-up
// in order, then "subscribed", then live events. Subscribing to a room the
// session follows already starts over from after. Failures are sent as
// error frames naming the room.
func (s *Session) Subscribe(roomID string, after int64) {
	ctx, cancel := context.WithTimeout(s.h.ctx, 10*time.Second)
	p, err := s.h.access.Access(ctx, s.actor, roomID)
	cancel()
	if err != nil {
		s.Send(ErrorFrame("", roomID, err))
		return
	}
	s.Unsubscribe(roomID)
	sctx, scancel := context.WithCancel(s.h.ctx)
	sb := &sub{sess: s, room: roomID, customer: !p.Internal, oversees: s.actor.Oversees(),
		sent: after, ctx: sctx, cancel: scancel, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		scancel()
		return
	}
	s.subs[roomID] = sb
	s.mu.Unlock()
	s.h.Stats.Subscriptions.Add(1)
	go func() {
		err := sb.catchUp()
		close(sb.done)
		if err != nil {
			if sb.ctx.Err() == nil && !errors.Is(err, errRemoved) { // not cancelled by the session itself
				s.forget(sb)
				s.Send(ErrorFrame("", roomID, err))
			}
			sb.release()
		}
	}()
}

// Unsubscribe ends the subscription of a room, if any.
func (s *Session) Unsubscribe(roomID string) {
	s.mu.Lock()
	sb := s.subs[roomID]
	delete(s.subs, roomID)
	s.mu.Unlock()
	if sb != nil {
		sb.cancel()
		sb.release()
	}
}

// Subscribed tells whether the session follows the room.
func (s *Session) Subscribed(roomID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs[roomID] != nil
}

// SetPresence records what the device does in a room it follows.
func (s *Session) SetPresence(ctx context.Context, roomID string, st presence.State, taskID string) error {
	s.mu.Lock()
	sb := s.subs[roomID]
	s.mu.Unlock()
	if sb == nil {
		return dealroom.Errorf(dealroom.ECONFLICT, "subscribe to room %s before sending presence", dealroom.Clip(roomID))
	}
	d := s.device(st)
	if taskID != "" {
		vis, err := s.h.access.TaskVisibility(ctx, s.actor, roomID, taskID)
		if err != nil {
			return err
		}
		d.TaskID, d.TaskInternal = taskID, vis == dealroom.Internal
	}
	s.mu.Lock()
	if s.subs[roomID] != sb {
		s.mu.Unlock()
		return nil // unsubscribed meanwhile
	}
	sb.state = d
	changed := sb.live && s.h.presence.Set(roomID, d)
	s.mu.Unlock()
	if changed {
		sb.feed.presenceChanged(true)
	}
	return nil
}

func (s *Session) device(st presence.State) presence.Device {
	return presence.Device{Session: s.id, UserID: s.actor.ID, Name: s.actor.Name, Kind: s.actor.Kind, State: st}
}

// Close ends every subscription and the queue.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	subs := s.subs
	s.subs = map[string]*sub{}
	s.mu.Unlock()
	for _, sb := range subs {
		sb.cancel()
		sb.release()
	}
	s.q.shut()
	s.h.Stats.Sessions.Add(-1)
	s.h.mu.Lock()
	delete(s.h.sessions, s)
	s.h.mu.Unlock()
}

// forget removes sb from the session's subscriptions if it is still the
// current one of its room.
func (s *Session) forget(sb *sub) {
	s.mu.Lock()
	if s.subs[sb.room] == sb {
		delete(s.subs, sb.room)
	}
	s.mu.Unlock()
}

// ended is told by a feed that it took sb out of live delivery; the feed's
// lock is held.
func (s *Session) ended(sb *sub, why error) {
	s.forget(sb)
	if errors.Is(why, errRemoved) {
		s.Send(unsubscribedFrame(sb.room, "you are no longer a member of this room"))
	} else if !errors.Is(why, errQueueClosed) {
		s.h.Stats.Resyncs.Add(1)
		s.Send(resyncFrame(sb.room, "this device fell behind; subscribe again with the last seq it processed"))
	}
	sb.cancel()
	go sb.release()
}

// release undoes what the subscription holds, once its catch-up is over.
func (sb *sub) release() {
	sb.once.Do(func() {
		<-sb.done
		sb.sess.h.Stats.Subscriptions.Add(-1)
		f := sb.feed
		if f == nil {
			return
		}
		f.mu.Lock()
		delete(f.live, sb)
		f.mu.Unlock()
		sb.sess.mu.Lock()
		sb.live = false
		removed := sb.sess.h.presence.Remove(sb.room, sb.sess.id)
		sb.sess.mu.Unlock()
		if removed {
			f.presenceChanged(true)
		}
		sb.sess.h.unfollow(f)
	})
}

// catchUp sends the events after sb.sent in order, from the shared pages
// of the store and the feed's memory, then joins live delivery.
func (sb *sub) catchUp() error {
	h := sb.sess.h
	f, err := h.follow(sb.ctx, sb.room)
	if err != nil {
		return err
	}
	sb.feed = f
	for stalls := 0; ; {
		if err := sb.ctx.Err(); err != nil {
			return err
		}
		f.mu.Lock()
		if sb.sent >= f.head {
			f.live[sb] = struct{}{}
			head := f.head
			sb.sess.mu.Lock()
			if sb.state.Session == "" {
				sb.state = sb.sess.device(presence.Viewing)
			}
			sb.live = true
			h.presence.Set(sb.room, sb.state)
			sb.sess.mu.Unlock()
			sb.sess.Send(subscribedFrame(sb.room, head))
			f.mu.Unlock()
			f.presenceChanged(true)
			sb.cancel() // catch-up is over: its context is no longer needed
			return nil
		}
		var batch []*entry
		if first := f.firstRecent(); len(f.recent) > 0 && sb.sent+1 >= first {
			i := int(sb.sent + 1 - first)
			batch = append(batch, f.recent[i:min(len(f.recent), i+h.cfg.PageSize)]...)
		}
		f.mu.Unlock()
		if batch == nil {
			if batch, err = h.pages.get(sb.ctx, sb.room, sb.sent+1); err != nil {
				return err
			}
		}
		progress := false
		for _, e := range batch {
			if e.seq <= sb.sent {
				continue
			}
			if e.seq != sb.sent+1 {
				break // a hole in what was read: read again
			}
			if fr := e.frameFor(sb); fr != nil {
				if err := sb.sess.q.pushWait(sb.ctx, sb.room, fr); err != nil {
					return err
				}
				h.Stats.Delivered.Add(1)
			}
			sb.sent, progress = e.seq, true
			if e.removed != "" && e.removed == sb.sess.actor.ID && !sb.oversees {
				sb.sess.forget(sb)
				sb.sess.Send(unsubscribedFrame(sb.room, "you are no longer a member of this room"))
				return errRemoved
			}
		}
		if !progress {
			if stalls++; stalls > 20 {
				return dealroom.Unavailable(errors.New("the room's events could not be read"))
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-sb.ctx.Done():
			}
		}
	}
}
