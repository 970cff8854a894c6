package api

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/hub"
)

// RealtimeConfig tunes the websocket endpoint. Zero values take defaults.
type RealtimeConfig struct {
	// AllowedOrigins are the host patterns (path.Match syntax, as
	// "app.example.com" or "*.example.com") whose pages may open a
	// websocket besides the server's own origin.
	AllowedOrigins []string
	// MaxFrameBytes bounds a client frame (128 KiB); a bigger one closes
	// the connection with status 1009.
	MaxFrameBytes int64
	// PingEvery is the keep-alive interval (15s); a device that does not
	// answer a ping within PingTimeout (10s) is disconnected, and its
	// presence ends.
	PingEvery   time.Duration
	PingTimeout time.Duration
	// WriteTimeout bounds one frame's write (10s).
	WriteTimeout time.Duration
	// MaxBadFrames is how many unreadable frames a connection may send
	// before it is closed (10).
	MaxBadFrames int
	// MaxSockets bounds the websockets of the instance (10000): one more
	// is refused with 503 before the upgrade. MaxSocketsPerUser bounds one
	// user's (20; 429).
	MaxSockets        int
	MaxSocketsPerUser int
	// MaxSubscriptions bounds the rooms one connection follows (100); a
	// subscribe past it is refused with rate_limited.
	MaxSubscriptions int
	// FrameRate is the sustained rate of each kind of frame (subscribe,
	// unsubscribe, presence, ping, command) a connection may send, per
	// second and kind (20), with bursts of FrameBurst (twice the rate;
	// subscribe and unsubscribe at least MaxSubscriptions, so that a
	// device that reconnects subscribes again at once). A frame over it
	// is refused with rate_limited.
	FrameRate  float64
	FrameBurst int
	// Now is the clock that ends a connection when its token expires
	// (time.Now).
	Now func() time.Time
}

func (c *RealtimeConfig) defaults() {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 128 << 10
	}
	if c.PingEvery <= 0 {
		c.PingEvery = 15 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxBadFrames <= 0 {
		c.MaxBadFrames = 10
	}
	if c.MaxSockets <= 0 {
		c.MaxSockets = 10000
	}
	if c.MaxSocketsPerUser <= 0 {
		c.MaxSocketsPerUser = 20
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 100
	}
	if c.FrameRate <= 0 {
		c.FrameRate = 20
	}
	if c.FrameBurst <= 0 {
		c.FrameBurst = max(1, int(2*c.FrameRate))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// serveWS upgrades to a websocket session.
func (s *Server) serveWS(c echo.Context) error {
	h := s.cfg.Hub
	if h == nil {
		return dealroom.Errorf(dealroom.EUNAVAILABLE, "realtime is not enabled on this server")
	}
	token, ok := bearer(c.Request())
	if !ok {
		token = c.QueryParam("token")
	}
	if token == "" {
		return dealroom.Errorf(dealroom.EUNAUTH, "send the token in an Authorization: Bearer header or, from a browser, as ?token=")
	}
	a, until, err := s.keys.VerifyUntil(token)
	if err != nil {
		return err
	}
	if err := s.svc.Authorize(c.Request().Context(), a); err != nil {
		return err
	}
	rc := &s.cfg.Realtime
	// Counted before the upgrade, so that a refusal is a plain HTTP answer
	// with the contract's error body.
	if err := s.sockets.acquire(a.ID, rc.MaxSocketsPerUser, rc.MaxSockets); err != nil {
		if dealroom.ErrorCode(err) == dealroom.ERATELIMITED {
			c.Response().Header().Set("Retry-After", "5")
		}
		return err
	}
	var out *gatherWriter
	conn, err := websocket.Accept(smallBuffers{c.Response(), &out}, c.Request(), &websocket.AcceptOptions{
		OriginPatterns:  rc.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered already (bad handshake, or an origin that
		// is not allowed: 403).
		s.log.Debug("websocket upgrade refused", "err", err, "origin", c.Request().Header.Get("Origin"))
		s.sockets.release(a.ID)
		return nil
	}
	conn.SetReadLimit(rc.MaxFrameBytes)
	if s.metrics != nil {
		s.metrics.Counter("dealroom_ws_connections_total", "Websocket connections accepted.").Add(1)
	}
	sess := h.NewSession(a)
	ws := &wsConn{s: s, conn: conn, out: out, sess: sess, rc: rc, until: until}
	// The connection is ours now: serve it from a fresh goroutine and let
	// the HTTP handler's (deep) stack go.
	go ws.run()
	return nil
}

type wsConn struct {
	s    *Server
	conn *websocket.Conn
	out  *gatherWriter // where conn writes
	sess *hub.Session
	rc   *RealtimeConfig
	// until is when the token expires: the connection ends then (checked
	// with every frame and every keep-alive ping).
	until time.Time

	// The reader goroutine only reads, so that its stack stays small and
	// nothing keeps it from answering pings. What it reads is handled, in
	// order, on a goroutine that runs only while frames wait; commands run
	// one at a time on another such goroutine, so that a slow store holds
	// back neither the device's subscriptions nor its keep-alive.
	frames lazyQueue[[]byte]
	cmds   lazyQueue[hub.Frame]
	bad    int         // malformed frames so far; owned by the frames goroutine
	limits frameLimits // owned by the frames goroutine

	pingSlot int         // the pinger's slot; guarded by the pinger's mu
	pinging  atomic.Bool // a ping waits for its pong
}

// maxPendingFrames bounds the frames read but not yet handled: the reader
// waits for room (the client's frames then wait in its socket).
const maxPendingFrames = 16

// maxPendingCommands bounds the commands a connection may have waiting:
// more are refused with rate_limited.
const maxPendingCommands = 64

func (w *wsConn) run() {
	defer w.s.sockets.release(w.sess.Actor().ID)
	defer w.sess.Close()
	w.frames.limit, w.frames.wait, w.frames.handle = maxPendingFrames, true, w.handle
	w.cmds.limit, w.cmds.handle = maxPendingCommands, w.runCommand
	w.sess.Attach(w)
	w.s.pings.add(w)
	defer w.s.pings.remove(w)

	// Read with a context that is never cancelled (an idle connection then
	// holds no context): the connection is ended by closing it.
	for {
		typ, data, err := w.conn.Read(context.Background())
		if err != nil {
			break
		}
		if typ != websocket.MessageText {
			w.stop()
			w.conn.Close(websocket.StatusUnsupportedData, "frames are JSON text")
			break
		}
		w.frames.put(data) // after stop, dropped while the close completes
	}
	w.stop()
	w.conn.CloseNow()
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
func (w *wsConn) WriteFrame(fr []byte, more bool) error {
	w.out.gather(w.rc.WriteTimeout)
	err := w.conn.Write(context.Background(), websocket.MessageText, fr)
	w.out.pause()
	if err == nil && !more {
		err = w.out.send()
	}
	return err
}

// Flush sends what was gathered (hub.Transport).
func (w *wsConn) Flush() error { return w.out.send() }

// WriteFailed ends the connection after a failed write (hub.Transport).
func (w *wsConn) WriteFailed(error) {
	w.stop()
	w.conn.CloseNow()
	w.out.abandon()
}

// End ends the connection when the hub says so (hub.Transport).
func (w *wsConn) End(why error) {
	switch {
	case errors.Is(why, hub.ErrOverrun):
		w.end(websocket.StatusPolicyViolation, "too many unanswered commands")
	case errors.Is(why, hub.ErrSignedOut):
		w.end(StatusSignedOut, signedOutReason)
	default:
		w.end(websocket.StatusGoingAway, "the server is shutting down")
	}
}

// ping sends a keep-alive ping and waits for its pong; a device that does
// not answer in time is disconnected.
func (w *wsConn) ping() {
	if w.expired() {
		w.endExpired()
		return
	}
	if !w.pinging.CompareAndSwap(false, true) {
		return // the last ping still waits for its pong (or its timeout)
	}
	defer w.pinging.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), w.rc.PingTimeout)
	err := w.conn.Ping(ctx)
	cancel()
	if err != nil {
		w.stop()
		w.conn.CloseNow()
	}
}

// handle carries out one frame of the client, on the frames goroutine.
func (w *wsConn) handle(ctx context.Context, data []byte) {
	if w.expired() {
		w.endExpired()
		return
	}
	f, err := hub.DecodeFrame(data)
	if err != nil {
		w.sess.Send(hub.ErrorFrame(f.ID, f.Room, err))
		if w.bad++; w.bad >= w.rc.MaxBadFrames {
			w.end(websocket.StatusPolicyViolation, "too many malformed frames")
		}
		return
	}
	if !w.limits.allow(w.rc, f.Type, w.rc.Now()) {
		w.sess.Send(hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.ERATELIMITED,
			"too many %s frames: at most %g a second; slow down and send it again", f.Type, w.rc.FrameRate)))
		return
	}
	switch f.Type {
	case hub.Subscribe:
		if n := w.sess.Subscriptions(); n >= w.rc.MaxSubscriptions && !w.sess.Subscribed(f.Room) {
			w.sess.Send(hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.ERATELIMITED,
				"a connection follows at most %d rooms; unsubscribe from one first", w.rc.MaxSubscriptions)))
			return
		}
		w.sess.Subscribe(f.Room, f.After)
	case hub.Unsubscribe:
		w.sess.Unsubscribe(f.Room)
	case hub.Presence:
		if err := w.sess.SetPresence(ctx, f.Room, f.State, f.TaskID, f.Visibility); err != nil {
			w.sess.Send(hub.ErrorFrame(f.ID, f.Room, err))
		}
	case hub.Command:
		if !w.cmds.put(f) {
			w.sess.Send(hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.ERATELIMITED,
				"more than %d commands wait for their answers; wait for acks before sending more", maxPendingCommands)))
		}
	case hub.Ping:
		w.sess.Send(hub.PongFrame)
	}
}

// runCommand carries out a command, on the commands goroutine. A command
// that waited past the token's expiry is not carried out: the connection
// ends, and the client sends it again (same id) with a fresh token.
func (w *wsConn) runCommand(ctx context.Context, f hub.Frame) {
	if w.expired() {
		w.endExpired()
		return
	}
	if err := w.s.svc.Authorize(ctx, w.sess.Actor()); dealroom.ErrorCode(err) == dealroom.EUNAUTH {
		w.End(hub.ErrSignedOut) // the command waits for the device's next sign-in
		return
	}
	w.sess.Send(w.s.command(ctx, w.sess.Actor(), f))
}

// stop drops the frames and commands that wait and cancels the ones
// running: the connection is over.
func (w *wsConn) stop() {
	w.frames.stop()
	w.cmds.stop()
}

// end closes the connection with a close frame; the reader ends when the
// client answers it (or the close handshake times out).
func (w *wsConn) end(code websocket.StatusCode, reason string) {
	w.stop()
	go w.conn.Close(code, reason)
}

// pinger sends the keep-alive pings of every connection from one
// goroutine, instead of a timer per connection: connections are spread
// over the slots of a wheel that turns once per PingEvery, a slot every
// 100 ms, and the goroutine runs only while there are connections.
// A new connection goes to one of the slots pinged last, in turn over the
// last tenth of the wheel: its first ping comes after 90 to 100% of the
// interval, and a thousand devices that connect at once (a deploy, a
// network coming back) are pinged a few dozen at a time, not all in the
// same instant.
type pinger struct {
	every time.Duration

	mu      sync.Mutex
	slots   []map[*wsConn]struct{}
	cur     int // the slot pinged at the next tick
	turn    int // counts connections, to spread them
	n       int
	running bool
}

const pingTick = 100 * time.Millisecond

func (p *pinger) add(w *wsConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slots == nil {
		p.slots = make([]map[*wsConn]struct{}, max(1, int(p.every/pingTick)))
	}
	n := len(p.slots)
	i := (p.cur - 1 - p.turn%max(1, n/10) + 2*n) % n
	p.turn++
	if p.slots[i] == nil {
		p.slots[i] = map[*wsConn]struct{}{}
	}
	p.slots[i][w] = struct{}{}
	w.pingSlot = i
	p.n++
	if !p.running {
		p.running = true
		go p.run()
	}
}

func (p *pinger) remove(w *wsConn) {
	p.mu.Lock()
	if _, ok := p.slots[w.pingSlot][w]; ok {
		delete(p.slots[w.pingSlot], w)
		p.n--
	}
	p.mu.Unlock()
}

func (p *pinger) run() {
	p.mu.Lock()
	t := time.NewTicker(p.every / time.Duration(len(p.slots)))
	p.mu.Unlock()
	defer t.Stop()
	var due []*wsConn
	for range t.C {
		p.mu.Lock()
		if p.n == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		for w := range p.slots[p.cur] {
			due = append(due, w)
		}
		p.cur = (p.cur + 1) % len(p.slots)
		p.mu.Unlock()
		for i, w := range due {
			go w.ping()
			due[i] = nil
		}
		due = due[:0]
	}
}

// lazyQueue hands items, in order, to handle, on a goroutine that exists
// only while items wait: an idle connection costs no goroutine. Each run
// of that goroutine has a context, cancelled by stop.
type lazyQueue[T any] struct {
	limit  int  // items that may wait
	wait   bool // put waits for room instead of refusing the item
	handle func(context.Context, T)

	mu      sync.Mutex
	items   []T
	running bool
	stopped bool
	cancel  context.CancelFunc // the running goroutine's
	room    *sync.Cond         // made when put first waits
}

// put queues item. It reports false when the item was refused: the queue
// is full (and wait is not set) or stopped.
func (q *lazyQueue[T]) put(item T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) >= q.limit && q.wait && !q.stopped {
		if q.room == nil {
			q.room = sync.NewCond(&q.mu)
		}
		q.room.Wait()
	}
	if q.stopped || len(q.items) >= q.limit {
		return false
	}
	q.items = append(q.items, item)
	if !q.running {
		q.running = true
		ctx, cancel := context.WithCancel(context.Background())
		q.cancel = cancel
		go q.run(ctx)
	}
	return true
}

func (q *lazyQueue[T]) run(ctx context.Context) {
	for {
		q.mu.Lock()
		if len(q.items) == 0 || q.stopped {
			q.running = false
			q.items = nil
			q.cancel()
			q.cancel = nil
			q.mu.Unlock()
			return
		}
		item := q.items[0]
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		if q.room != nil {
			q.room.Signal()
		}
		q.mu.Unlock()
		q.handle(ctx, item)
	}
}

// stop drops the items that wait, cancels the running handler's context
// and refuses what is put from now on.
func (q *lazyQueue[T]) stop() {
	q.mu.Lock()
	q.stopped = true
	q.items = nil
	if q.cancel != nil {
		q.cancel()
	}
	if q.room != nil {
		q.room.Broadcast()
	}
	q.mu.Unlock()
}
