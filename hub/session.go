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
// The transport (a websocket connection, package ws) feeds it the client's
// frames and writes out its frames (see Attach, or Next).
type Session struct {
	h     *Hub
	id    string
	actor dealroom.Actor
	// signIn is the browser session (package session) the device was
	// connected with; "" for a bearer token.
	signIn string
	// agent is the User-Agent the device connected with (SetAgent).
	agent string
	q     *queue

	mu     sync.Mutex
	subs   subList
	closed bool
	ending bool  // end was called
	endWhy error // why, for a transport attached after it

	transport   Transport // set by Attach
	writeFailed bool      // owned by the queue's writer (writeOut)
}

// Why a session is ended by the hub (see Transport.End).
var (
	// ErrOverrun: the device sent commands faster than it read their
	// answers, and its queue of answers overflowed.
	ErrOverrun = errors.New("too many unanswered commands")
	// ErrShutdown: the hub is closing.
	ErrShutdown = errors.New("the server is shutting down")
)

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
	state presence.Device
	live  bool
	// cancel stops the catch-up; nil once it is over (the context is then
	// let go: a live subscription holds none). Guarded by the session's mu.
	cancel context.CancelFunc
	caught sync.WaitGroup // done when catch-up is over
	once   sync.Once
}

// stop cancels the subscription's catch-up, if it still runs.
func (sb *sub) stop() {
	sb.sess.mu.Lock()
	c := sb.cancel
	sb.cancel = nil
	sb.sess.mu.Unlock()
	if c != nil {
		c()
	}
}

var errRemoved = errors.New("removed from the room")

// NewSession registers a connected device of the actor.
func (h *Hub) NewSession(a dealroom.Actor) *Session { return h.NewSignedInSession(a, "") }

// NewSignedInSession registers a connected device of the actor that
// authenticated with the browser session signIn (its id): the device is
// disconnected when that session ends (see EndSignIns).
func (h *Hub) NewSignedInSession(a dealroom.Actor, signIn string) *Session {
	var b [8]byte
	rand.Read(b[:])
	h.Stats.Sessions.Add(1)
	s := &Session{h: h, id: h.cfg.Instance + "-" + hex.EncodeToString(b[:]), actor: a, signIn: signIn,
		q: newQueue(h.cfg.QueueFrames, h.cfg.QueueBytes)}
	h.mu.Lock()
	h.sessions[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// ID returns the session's id.
func (s *Session) ID() string { return s.id }

// SignIn returns the id of the browser session the device connected
// with, "" when it connected with a token.
func (s *Session) SignIn() string { return s.signIn }

// Actor returns who the session belongs to.
func (s *Session) Actor() dealroom.Actor { return s.actor }

// Next returns the next frame to write, waiting for one. It fails once the
// session is closed and its queue is empty.
func (s *Session) Next(ctx context.Context) ([]byte, error) { return s.q.pop(ctx) }

// Transport carries a session's frames to its device: a websocket
// connection.
type Transport interface {
	// WriteFrame writes a frame. more tells whether other frames wait
	// behind it: a transport that gathers frames into one write call
	// sends what it gathered when more is false, or on Flush.
	WriteFrame(frame []byte, more bool) error
	// Flush sends what was gathered: the frames that were said to wait
	// behind the last one are gone (a newer presence frame replaced or
	// dropped them).
	Flush() error
	// WriteFailed is called once, when WriteFrame failed: nothing more is
	// written.
	WriteFailed(err error)
	// End is called once when the hub ends the session: why is ErrOverrun
	// (the device broke the protocol's limits), ErrSignedOut (the sign-in
	// of its token was ended) or ErrShutdown (the hub closes). The
	// transport closes its connection, then calls Close.
	End(why error)
}

// Attach starts delivery through t: each queued frame is handed to
// t.WriteFrame, in order, by a goroutine that runs only while there are
// frames (an idle device costs no goroutine; see package lazy). Call
// Attach once, instead of reading Next.
func (s *Session) Attach(t Transport) {
	s.mu.Lock()
	s.transport = t
	// The hub may have ended the session before its transport came (a
	// shutdown right after the upgrade): the transport ends it now.
	endedBefore := s.endWhy
	s.mu.Unlock()
	if endedBefore != nil {
		defer t.End(endedBefore)
	}
	s.q.mu.Lock()
	s.q.write = s.writeOut
	if s.q.head < len(s.q.frames) {
		s.q.writer.Wake(s.q.write)
	}
	s.q.mu.Unlock()
}

// writeOut writes the queued frames, as the queue's writer: one runs at a
// time, and until it has sent what it gathered, so writeFailed needs no
// lock.
func (s *Session) writeOut() {
	pending := false // frames were written with more, and not sent yet
	for {
		fr, more, ok := s.q.next(!pending)
		if !ok {
			if !pending {
				return // the writer has ended
			}
			// The frames said to follow are gone (a newer presence frame
			// replaced or dropped them): send what was gathered, then
			// look again.
			pending = false
			if !s.writeFailed {
				if err := s.transport.Flush(); err != nil {
					s.writeFailed = true
					s.transport.WriteFailed(err)
				}
			}
			continue
		}
		if s.writeFailed {
			continue // drop: the connection is gone
		}
		pending = more
		if err := s.transport.WriteFrame(fr, more); err != nil {
			s.writeFailed = true
			s.transport.WriteFailed(err)
		}
	}
}

// end asks the transport, once, to end the session.
func (s *Session) end(why error) {
	s.mu.Lock()
	var t Transport
	if !s.closed && !s.ending {
		s.ending = true
		if t = s.transport; t == nil {
			s.endWhy = why // Attach ends it
		}
	}
	s.mu.Unlock()
	if t != nil {
		t.End(why)
	}
}

// Queued returns how many frames wait to be written, and their bytes.
func (s *Session) Queued() (frames, bytes int) { return s.q.len() }

// Send queues a control frame (an ack, an error, a pong).
func (s *Session) Send(frame []byte) {
	if err := s.q.pushControl(frame); errors.Is(err, errQueueFull) {
		s.end(ErrOverrun)
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
	if dealroom.ErrorCode(err) == dealroom.EUNAUTH {
		s.end(ErrSignedOut)
		return
	}
	if err != nil {
		s.Send(ErrorFrame("", roomID, err))
		return
	}
	s.Unsubscribe(roomID)
	sctx, scancel := context.WithCancel(s.h.ctx)
	sb := &sub{sess: s, room: roomID, customer: !p.Internal, oversees: s.actor.Oversees(),
		sent: after, cancel: scancel}
	sb.caught.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		scancel()
		return
	}
	s.subs.set(sb)
	s.mu.Unlock()
	s.h.Stats.Subscriptions.Add(1)
	go func() {
		err := sb.catchUp(sctx)
		sb.caught.Done()
		if err != nil {
			// Not cancelled by the session itself, nor ended with its
			// own frame:
			if sctx.Err() == nil && !errors.Is(err, errRemoved) && !errors.Is(err, errAccessChanged) && !errors.Is(err, ErrSignedOut) {
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
	sb := s.subs.get(roomID)
	s.subs.del(roomID)
	s.mu.Unlock()
	if sb != nil {
		sb.stop()
		sb.release()
	}
}

// Subscribed tells whether the session follows the room.
func (s *Session) Subscribed(roomID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs.get(roomID) != nil
}

// Subscriptions returns how many rooms the session follows (or is
// catching up with).
func (s *Session) Subscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// SetPresence records what the device does in a room it follows: st, on
// the task taskID (if any); vis internal says that it works on something
// customers must not learn of (an internal note), so that they see it as
// viewing. A room the session does not follow is refused (EINVALID, field
// room); so is a task the person may not see (ENOTFOUND).
func (s *Session) SetPresence(ctx context.Context, roomID string, st presence.State, taskID string, vis dealroom.Visibility) error {
	s.mu.Lock()
	sb := s.subs.get(roomID)
	s.mu.Unlock()
	if sb == nil {
		return dealroom.Invalid("room", "not subscribed: subscribe to room %s before sending presence in it", dealroom.Clip(roomID))
	}
	d := sb.device(st)
	d.TaskInternal = vis == dealroom.Internal
	if taskID != "" {
		tv, err := s.h.access.TaskVisibility(ctx, s.actor, roomID, taskID)
		if err != nil {
			return err
		}
		d.TaskID = taskID
		d.TaskInternal = d.TaskInternal || tv == dealroom.Internal
	}
	s.mu.Lock()
	if s.subs.get(roomID) != sb {
		s.mu.Unlock()
		return nil // unsubscribed meanwhile
	}
	sb.state = d
	live := sb.live
	changed := live && s.h.presence.Set(roomID, d)
	s.mu.Unlock()
	if changed {
		sb.feed.presenceChanged(true)
	}
	if live {
		s.h.watchDevice(roomID, d, s.agent)
	}
	return nil
}

// device is what the room's presence shows of the subscription's device:
// the person as the room knows them, the stricter of token and membership
// (a staff token on a customer-kind membership shows as a customer, as it
// does everywhere else).
func (sb *sub) device(st presence.State) presence.Device {
	a := sb.sess.actor
	kind := a.Kind
	if sb.customer {
		kind = dealroom.Customer
	}
	return presence.Device{Session: sb.sess.id, UserID: a.ID, Name: a.Name, Kind: kind, State: st}
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
	s.subs = nil
	s.mu.Unlock()
	for _, sb := range subs {
		sb.stop()
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
	if s.subs.get(sb.room) == sb {
		s.subs.del(sb.room)
	}
	s.mu.Unlock()
}

// ended is told by a feed that it took sb out of live delivery; the feed's
// lock is held.
func (s *Session) ended(sb *sub, why error) {
	s.forget(sb)
	switch {
	case errors.Is(why, ErrSignedOut):
		go s.end(ErrSignedOut) // the feed's lock is held
	case errors.Is(why, errRemoved):
		s.Send(unsubscribedFrame(sb.room, "you are no longer a member of this room"))
	case errors.Is(why, errAccessChanged):
		s.Send(resyncFrame(sb.room, "your access to this room changed; subscribe again with the last seq you processed"))
	case !errors.Is(why, errQueueClosed):
		s.h.Stats.Resyncs.Add(1)
		s.Send(resyncFrame(sb.room, "this device fell behind; subscribe again with the last seq it processed"))
	}
	sb.stop()
	go sb.release()
}

// release undoes what the subscription holds, once its catch-up is over.
func (sb *sub) release() {
	sb.once.Do(func() {
		sb.caught.Wait()
		sb.sess.h.Stats.Subscriptions.Add(-1)
		f := sb.feed
		if f == nil {
			return
		}
		f.mu.Lock()
		delete(f.live, sb)
		f.mu.Unlock()
		sb.sess.mu.Lock()
		wasLive := sb.live
		sb.live = false
		removed := sb.sess.h.presence.Remove(sb.room, sb.sess.id)
		state := sb.state
		sb.sess.mu.Unlock()
		if removed {
			f.presenceChanged(true)
		}
		if wasLive {
			state.State = ""
			sb.sess.h.watchDevice(sb.room, state, sb.sess.agent)
		}
		sb.sess.h.unfollow(f)
	})
}

// catchUp sends the events after sb.sent in order, from the shared pages
// of the store and the feed's memory, then joins live delivery.
func (sb *sub) catchUp(ctx context.Context) error {
	h := sb.sess.h
	f, err := h.follow(ctx, sb.room)
	if err != nil {
		return err
	}
	sb.feed = f
	checked := int64(0) // membership changes up to this seq are known to leave the view as it is
	for stalls := 0; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.mu.Lock()
		if sb.sent >= f.head {
			f.live[sb] = struct{}{}
			head := f.head
			sb.sess.mu.Lock()
			if sb.state.Session == "" {
				sb.state = sb.device(presence.Viewing)
			}
			sb.live = true
			h.presence.Set(sb.room, sb.state)
			state := sb.state
			stop := sb.cancel
			sb.cancel = nil
			sb.sess.mu.Unlock()
			// Told before the device hears it is subscribed, so that
			// what it asks next finds its visit counted.
			h.watchDevice(sb.room, state, sb.sess.agent)
			sb.sess.Send(subscribedFrame(sb.room, head))
			f.mu.Unlock()
			f.presenceChanged(true)
			if stop != nil {
				stop() // catch-up is over: its context is no longer needed
			}
			return nil
		}
		var batch []*entry
		first := f.firstRecent()
		if len(f.recent) > 0 && sb.sent+1 >= first {
			i := int(sb.sent + 1 - first)
			batch = append(batch, f.recent[i:min(len(f.recent), i+h.cfg.PageSize)]...)
		}
		upTo := f.head // the store is read up to the events kept in memory
		if len(f.recent) > 0 {
			upTo = first - 1
		}
		f.mu.Unlock()
		if batch == nil {
			if batch, err = h.pages.get(ctx, sb.room, sb.sent+1, upTo); err != nil {
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
				if err := sb.sess.q.pushWait(ctx, sb.room, fr); err != nil {
					return err
				}
				h.Stats.Delivered.Add(1)
			}
			sb.sent, progress = e.seq, true
			if e.seq > checked && e.endsView(sb) != nil {
				// A change of the person's membership, maybe long ago:
				// what they may see is decided by the membership they
				// have now (they may have been added back since). One
				// answer covers every change up to the head it was
				// asked at: a history of many changes costs one ask.
				f.mu.Lock()
				head := f.head
				f.mu.Unlock()
				if err := sb.checkView(ctx); err != nil {
					return err
				}
				checked = head
			}
		}
		if !progress {
			if stalls++; stalls > 20 {
				return dealroom.Unavailable(errors.New("the room's events could not be read"))
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}

// checkView asks what the subscription's person may see of the room now.
// It ends the subscription, with the frame that tells the device so, when
// they may no longer see it (errRemoved) or see it with other eyes than
// the subscription's (errAccessChanged: they subscribe again).
func (sb *sub) checkView(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	p, err := sb.sess.h.access.Access(actx, sb.sess.actor, sb.room)
	cancel()
	switch {
	case dealroom.ErrorCode(err) == dealroom.EUNAUTH:
		go sb.sess.end(ErrSignedOut)
		return ErrSignedOut
	case dealroom.ErrorCode(err) == dealroom.ENOTFOUND || err == nil && !p.See:
		sb.sess.forget(sb)
		sb.sess.Send(unsubscribedFrame(sb.room, "you are no longer a member of this room"))
		return errRemoved
	case err != nil:
		return err
	case p.Internal == sb.customer:
		sb.sess.forget(sb)
		sb.sess.Send(resyncFrame(sb.room, "your access to this room changed; subscribe again with the last seq you processed"))
		return errAccessChanged
	}
	return nil
}

// subList is a session's subscriptions. Most devices follow a room or a
// few, so a slice costs less than a map and is as quick to search; a
// device that follows hundreds still pays only a scan per (un)subscribe.
type subList []*sub

func (l subList) get(roomID string) *sub {
	for _, sb := range l {
		if sb.room == roomID {
			return sb
		}
	}
	return nil
}

// set adds sb, replacing the subscription of its room if there is one.
func (l *subList) set(sb *sub) {
	for i, old := range *l {
		if old.room == sb.room {
			(*l)[i] = sb
			return
		}
	}
	*l = append(*l, sb)
}

func (l *subList) del(roomID string) {
	for i, sb := range *l {
		if sb.room == roomID {
			last := len(*l) - 1
			(*l)[i] = (*l)[last]
			(*l)[last] = nil
			*l = (*l)[:last]
			if last == 0 {
				*l = nil
			}
			return
		}
	}
}
