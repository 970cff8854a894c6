package ws

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"dealroom"
	"dealroom/hub"
	"dealroom/internal/lazy"
)

// conn is one websocket: a device's connection, serving one session of
// the hub (it is the session's hub.Transport).
type conn struct {
	s    *Server
	ws   *websocket.Conn
	out  *gatherWriter // where ws writes
	sess *hub.Session
	// until is when the token expires: the connection ends then (checked
	// with every frame and every keep-alive ping).
	until time.Time

	// The reader goroutine only reads, so that its stack stays small and
	// nothing keeps it from answering pings. What it reads is handled, in
	// order, on a goroutine that runs only while frames wait; commands run
	// one at a time on another such goroutine, so that a slow store holds
	// back neither the device's subscriptions nor its keep-alive.
	frames lazy.Queue[[]byte]
	cmds   lazy.Queue[hub.Frame]
	bad    int         // malformed frames so far; owned by the frames goroutine
	limits frameLimits // owned by the frames goroutine
	// checked is when the sign-in was last found valid by
	// Service.Authorize; owned by the commands goroutine.
	checked time.Time

	pingSlot int         // the pinger's slot; guarded by the pinger's mu
	pinging  atomic.Bool // a ping waits for its pong
}

// maxPendingFrames bounds the frames read but not yet handled: the reader
// waits for room (the client's frames then wait in its socket).
const maxPendingFrames = 16

// maxPendingCommands bounds the commands a connection may have waiting:
// more are refused with rate_limited.
const maxPendingCommands = 64

// run serves the connection: it is the reader goroutine, and when it
// ends, the connection, its session and its socket's count end with it.
func (c *conn) run() {
	defer c.s.sockets.release(c.sess.Actor().ID)
	defer c.sess.Close()
	c.frames.Limit, c.frames.Wait, c.frames.Handle = maxPendingFrames, true, c.handle
	c.cmds.Limit, c.cmds.Handle = maxPendingCommands, c.runCommand
	c.sess.Attach(c)
	c.s.pings.add(c)
	defer c.s.pings.remove(c)

	// Read with a context that is never cancelled (an idle connection then
	// holds no context): the connection is ended by closing it.
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			break
		}
		if typ != websocket.MessageText {
			c.stop()
			c.ws.Close(websocket.StatusUnsupportedData, "frames are JSON text")
			break
		}
		c.frames.Put(data) // after stop, dropped while the close completes
	}
	c.stop()
	c.ws.CloseNow()
}

// WriteFrame writes a frame of the session (hub.Transport). Frames are
// written by a goroutine that runs only while some wait; the frames that
// wait together go out in one write call.
//
// The library's write gets no deadline of its own (a context and a timer
// per frame, 10,000 a second under load): while gathering, what it writes
// only goes into the gathering buffer, and the write to the socket is the
// gatherWriter's, which has WriteTimeout as its deadline. Its locks are
// held by other writes for their own timeouts at most.
func (c *conn) WriteFrame(fr []byte, more bool) error {
	c.out.gather(c.s.cfg.WriteTimeout)
	err := c.ws.Write(context.Background(), websocket.MessageText, fr)
	c.out.pause()
	if err == nil && !more {
		err = c.out.send()
	}
	return err
}

// Flush sends what was gathered (hub.Transport).
func (c *conn) Flush() error { return c.out.send() }

// WriteFailed ends the connection after a failed write (hub.Transport).
func (c *conn) WriteFailed(error) {
	c.stop()
	c.ws.CloseNow()
	c.out.abandon()
}

// End ends the connection when the hub says so (hub.Transport).
func (c *conn) End(why error) {
	switch {
	case errors.Is(why, hub.ErrOverrun):
		c.end(websocket.StatusPolicyViolation, "too many unanswered commands")
	case errors.Is(why, hub.ErrSignedOut):
		c.end(StatusSignedOut, signedOutReason)
	default:
		c.end(websocket.StatusGoingAway, "the server is shutting down")
	}
}

// ping sends a keep-alive ping and waits for its pong; a device that does
// not answer in time is disconnected.
func (c *conn) ping() {
	if c.expired() {
		c.endExpired()
		return
	}
	if !c.pinging.CompareAndSwap(false, true) {
		return // the last ping still waits for its pong (or its timeout)
	}
	defer c.pinging.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.PingTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		c.stop()
		c.ws.CloseNow()
	}
}

// handle carries out one frame of the client, on the frames goroutine.
func (c *conn) handle(ctx context.Context, data []byte) {
	if c.expired() {
		c.endExpired()
		return
	}
	f, err := hub.DecodeFrame(data)
	if err != nil {
		c.sess.Send(hub.ErrorFrame(f.ID, f.Room, err))
		if c.bad++; c.bad >= c.s.cfg.MaxBadFrames {
			c.end(websocket.StatusPolicyViolation, "too many malformed frames")
		}
		return
	}
	if !c.limits.allow(&c.s.cfg, f.Type, c.s.cfg.Now()) {
		c.sess.Send(hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.ERATELIMITED,
			"too many %s frames: at most %g a second; slow down and send it again", f.Type, c.s.cfg.FrameRate)))
		return
	}
	switch f.Type {
	case hub.Subscribe:
		if n := c.sess.Subscriptions(); n >= c.s.cfg.MaxSubscriptions && !c.sess.Subscribed(f.Room) {
			c.sess.Send(hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.ERATELIMITED,
				"a connection follows at most %d rooms; unsubscribe from one first", c.s.cfg.MaxSubscriptions)))
			return
		}
		c.sess.Subscribe(f.Room, f.After)
	case hub.Unsubscribe:
		c.sess.Unsubscribe(f.Room)
	case hub.Presence:
		if err := c.sess.SetPresence(ctx, f.Room, f.State, f.TaskID, f.Visibility); err != nil {
			c.sess.Send(hub.ErrorFrame(f.ID, f.Room, err))
		}
	case hub.Command, hub.Read:
		// A read writes to the store: it waits with the commands, off
		// the frames goroutine.
		if !c.cmds.Put(f) {
			c.sess.Send(hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.ERATELIMITED,
				"more than %d commands wait for their answers; wait for acks before sending more", maxPendingCommands)))
		}
	case hub.Ping:
		c.sess.Send(hub.PongFrame)
	}
}

// authRecheck is how long a connection's sign-in, once found valid, is
// trusted for its commands without asking the store again. An ended
// session or a revoked invite closes its sockets at once on every
// instance (hub's sign-out news); this check is the backstop for news
// lost with the broker, and costs a store read (two on MongoDB for a
// customer's browser session) per command without the window.
const authRecheck = 5 * time.Second

// runCommand carries out a command, on the commands goroutine. A command
// that waited past the token's expiry is not carried out: the connection
// ends, and the client sends it again (same id) with a fresh token.
func (c *conn) runCommand(ctx context.Context, f hub.Frame) {
	if c.expired() {
		c.endExpired()
		return
	}
	if now := c.s.cfg.Now(); now.Sub(c.checked) >= authRecheck {
		err := c.s.svc.Authorize(ctx, c.sess.Actor(), c.sess.SignIn())
		if dealroom.ErrorCode(err) == dealroom.EUNAUTH {
			c.End(hub.ErrSignedOut) // the command waits for the device's next sign-in
			return
		}
		if err == nil {
			c.checked = now
		}
	}
	if f.Type == hub.Read {
		if err := c.s.svc.Read(ctx, c.sess.Actor(), f.Room, f.Seq); err != nil {
			c.sess.Send(hub.ErrorFrame(f.ID, f.Room, err))
		}
		return
	}
	c.sess.Send(c.s.svc.Command(ctx, c.sess.Actor(), f))
}

// stop drops the frames and commands that wait and cancels the ones
// running: the connection is over.
func (c *conn) stop() {
	c.frames.Stop()
	c.cmds.Stop()
}

// end closes the connection with a close frame; the reader ends when the
// client answers it (or the close handshake times out).
func (c *conn) end(code websocket.StatusCode, reason string) {
	c.stop()
	go c.ws.Close(code, reason)
}
