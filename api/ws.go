package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/hub"
	"dealroom/room"
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
}

// wsOps maps the websocket commands to the REST routes that carry them
// out: a command is dispatched through the same router, middleware and
// handlers as the request it stands for, so both follow one set of rules.
// idField names the data field that holds the id in the route's path.
var wsOps = map[string]struct {
	method, path, idField string
}{
	"room.update":    {http.MethodPatch, "", ""},
	"member.add":     {http.MethodPost, "/members", ""},
	"member.update":  {http.MethodPatch, "/members/", "user_id"},
	"member.remove":  {http.MethodDelete, "/members/", "user_id"},
	"task.create":    {http.MethodPost, "/tasks", ""},
	"task.update":    {http.MethodPatch, "/tasks/", "id"},
	"task.delete":    {http.MethodDelete, "/tasks/", "id"},
	"message.post":   {http.MethodPost, "/messages", ""},
	"message.edit":   {http.MethodPatch, "/messages/", "id"},
	"message.delete": {http.MethodDelete, "/messages/", "id"},
	"invite.create":  {http.MethodPost, "/invites", ""},
	"invite.revoke":  {http.MethodDelete, "/invites/", "id"},
}

type preauthKey struct{}

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
	a, err := s.keys.Verify(token)
	if err != nil {
		return err
	}
	rc := s.cfg.Realtime
	conn, err := websocket.Accept(smallBuffers{c.Response()}, c.Request(), &websocket.AcceptOptions{
		OriginPatterns:  rc.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered already (bad handshake, or an origin that
		// is not allowed: 403).
		s.log.Debug("websocket upgrade refused", "err", err, "origin", c.Request().Header.Get("Origin"))
		return nil
	}
	conn.SetReadLimit(rc.MaxFrameBytes)
	if s.metrics != nil {
		s.metrics.Counter("dealroom_ws_connections_total", "Websocket connections accepted.").Add(1)
	}
	sess := h.NewSession(a)
	ws := &wsConn{s: s, conn: conn, sess: sess, rc: rc}
	// The connection is ours now: serve it from a fresh goroutine and let
	// the HTTP handler's (deep) stack go.
	go ws.run()
	return nil
}

// smallBuffers hands the websocket smaller buffers than the HTTP server's
// 4 KiB ones: an idle device should cost little, and frames are small.
type smallBuffers struct{ *echo.Response }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := w.Response.Hijack()
	if err != nil {
		return conn, brw, err
	}
	if err := brw.Writer.Flush(); err != nil {
		return conn, brw, err
	}
	// Bytes the client sent after its handshake are kept.
	n := brw.Reader.Buffered()
	buffered, _ := brw.Reader.Peek(n)
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn), max(1024, n))
	if n > 0 {
		r.Peek(n)
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, 1024)), nil
}

type wsConn struct {
	s    *Server
	conn *websocket.Conn
	sess *hub.Session
	rc   RealtimeConfig

	// Commands run one at a time, in order, on a goroutine of their own
	// (alive only while some wait), so that a slow store never keeps the
	// reader from answering pings.
	cmdMu      sync.Mutex
	cmds       []hub.Frame
	cmdRunning bool
}

// maxPendingCommands bounds the commands a connection may have waiting.
const maxPendingCommands = 64

// enqueue queues a command for the connection's command goroutine.
func (w *wsConn) enqueue(ctx context.Context, f hub.Frame) {
	w.cmdMu.Lock()
	if len(w.cmds) >= maxPendingCommands {
		w.cmdMu.Unlock()
		w.sess.Send(hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.ERATELIMITED,
			"more than %d commands wait for their answers; wait for acks before sending more", maxPendingCommands)))
		return
	}
	w.cmds = append(w.cmds, f)
	if w.cmdRunning {
		w.cmdMu.Unlock()
		return
	}
	w.cmdRunning = true
	w.cmdMu.Unlock()
	go func() {
		for {
			w.cmdMu.Lock()
			if len(w.cmds) == 0 {
				w.cmdRunning = false
				w.cmds = nil
				w.cmdMu.Unlock()
				return
			}
			f := w.cmds[0]
			w.cmds = w.cmds[1:]
			w.cmdMu.Unlock()
			if ctx.Err() != nil {
				continue // the connection is gone: drop what is left
			}
			w.sess.Send(w.s.command(ctx, w.sess.Actor(), f))
		}
	}()
}

func (w *wsConn) run() {
	ctx, cancel := context.WithCancel(w.s.cfg.Hub.Context())
	defer cancel()
	defer w.sess.Close()

	// Frames are written by a goroutine that runs only while some wait.
	w.sess.Write(func(fr []byte) error {
		wctx, wcancel := context.WithTimeout(ctx, w.rc.WriteTimeout)
		defer wcancel()
		return w.conn.Write(wctx, websocket.MessageText, fr)
	}, func(error) {
		w.conn.CloseNow()
		cancel()
	})
	w.sess.OnKill(func() {
		go w.conn.Close(websocket.StatusPolicyViolation, "too many unanswered commands")
		cancel()
	})

	// Keep-alive: a timer, not a goroutine, between pings.
	var ping *time.Timer
	ping = time.AfterFunc(w.rc.PingEvery, func() {
		pctx, pcancel := context.WithTimeout(ctx, w.rc.PingTimeout)
		err := w.conn.Ping(pctx)
		pcancel()
		if err != nil {
			w.conn.CloseNow()
			cancel()
			return
		}
		ping.Reset(w.rc.PingEvery)
	})
	defer ping.Stop()

	bad := 0
	for {
		typ, data, err := w.conn.Read(ctx)
		if err != nil {
			break
		}
		if typ != websocket.MessageText {
			w.conn.Close(websocket.StatusUnsupportedData, "frames are JSON text")
			break
		}
		f, err := hub.DecodeFrame(data)
		if err != nil {
			w.sess.Send(hub.ErrorFrame(f.ID, f.Room, err))
			if bad++; bad >= w.rc.MaxBadFrames {
				w.conn.Close(websocket.StatusPolicyViolation, "too many malformed frames")
				break
			}
			continue
		}
		switch f.Type {
		case hub.Subscribe:
			w.sess.Subscribe(f.Room, f.After)
		case hub.Unsubscribe:
			w.sess.Unsubscribe(f.Room)
		case hub.Presence:
			if err := w.sess.SetPresence(ctx, f.Room, f.State, f.TaskID); err != nil {
				w.sess.Send(hub.ErrorFrame(f.ID, f.Room, err))
			}
		case hub.Command:
			w.enqueue(ctx, f)
		case hub.Ping:
			w.sess.Send(hub.PongFrame)
		}
	}
	cancel()
	w.conn.CloseNow()
}

// command carries out a command frame through the REST router and returns
// its answer frame.
func (s *Server) command(ctx context.Context, a dealroom.Actor, f hub.Frame) []byte {
	op, ok := wsOps[f.Op]
	if !ok {
		return hub.ErrorFrame(f.ID, f.Room, dealroom.Invalid("op", "unknown op %q", dealroom.Clip(f.Op)))
	}
	path := "/api/v1/rooms/" + url.PathEscape(f.Room) + op.path
	body := f.Data
	if op.idField != "" {
		var fields map[string]json.RawMessage
		if len(body) > 0 {
			if err := json.Unmarshal(body, &fields); err != nil {
				return hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.EBADREQUEST, "data is not a JSON object"))
			}
		}
		var id string
		if raw, ok := fields[op.idField]; !ok || json.Unmarshal(raw, &id) != nil || id == "" {
			return hub.ErrorFrame(f.ID, f.Room, dealroom.Invalid(op.idField, "%s needs data.%s", f.Op, op.idField))
		}
		delete(fields, op.idField)
		path += url.PathEscape(id)
		body, _ = json.Marshal(fields)
	}
	if op.method == http.MethodDelete {
		body = nil
	} else if len(body) == 0 {
		body = []byte("{}")
	}
	var out room.Outcome
	rctx := context.WithValue(room.WithOutcome(ctx, &out), preauthKey{}, a)
	req, err := http.NewRequestWithContext(rctx, op.method, path, bytes.NewReader(body))
	if err != nil {
		return hub.ErrorFrame(f.ID, f.Room, dealroom.Invalid("room", "room is not a room id"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", f.ID)
	req.RemoteAddr = "websocket"
	rec := &recorder{header: http.Header{}}
	s.echo.ServeHTTP(rec, req)
	if rec.status >= 400 {
		var eb errorBody
		if json.Unmarshal(rec.body.Bytes(), &eb) != nil || eb.Error.Code == "" {
			eb.Error = errorDetail{Code: "internal", Message: "internal error"}
		}
		return errorFrame(f.ID, f.Room, eb.Error)
	}
	var data json.RawMessage
	if b := bytes.TrimSpace(rec.body.Bytes()); len(b) > 0 {
		data = b
	}
	return hub.AckFrame(f.ID, out.Seq, data)
}

func errorFrame(id, roomID string, e errorDetail) []byte {
	b, _ := json.Marshal(struct {
		Type  string      `json:"type"`
		ID    string      `json:"id,omitempty"`
		Room  string      `json:"room,omitempty"`
		Error errorDetail `json:"error"`
	}{"error", id, roomID, e})
	return b
}

// recorder is the response writer of a dispatched command.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// preauthenticated returns the actor of a dispatched command.
func preauthenticated(r *http.Request) (dealroom.Actor, bool) {
	a, ok := r.Context().Value(preauthKey{}).(dealroom.Actor)
	return a, ok
}
