package ws

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"dealroom"
	"dealroom/hub"
)

// Service is what a connection needs of the rest of the server besides
// the hub: the commands it carries out, and whether its sign-in still
// holds.
type Service interface {
	// Authorize checks that the actor's sign-in was not ended since the
	// token was issued (an invite revoked), nor the browser session
	// signIn ("" for a token) the connection was opened with: EUNAUTH if
	// it was. Other errors are the store's.
	Authorize(ctx context.Context, a dealroom.Actor, signIn string) error
	// Command carries out a command frame of the actor and returns the
	// frame that answers it (an ack, or an error frame naming the
	// command's id). It is called for one command of a connection at a
	// time, with a context cancelled when the connection ends.
	Command(ctx context.Context, a dealroom.Actor, f hub.Frame) []byte
	// Read records that the actor has seen the room up to seq (a read
	// frame). Errors are sent back as error frames.
	Read(ctx context.Context, a dealroom.Actor, room string, seq int64) error
}

// Server accepts websockets and serves each as a session of the hub. It
// holds what the connections of an instance share: the count of open
// sockets and the keep-alive wheel.
type Server struct {
	// Accepted, if set, is called for every websocket accepted (for a
	// metric). Set it before the first Serve.
	Accepted func()

	cfg     Config
	hub     *hub.Hub
	svc     Service
	log     *slog.Logger
	pings   pinger
	sockets sockets
}

// New returns a server of websockets whose connections are sessions of
// h, and whose commands svc carries out. log (nil: none) takes the
// refused upgrades, at debug level.
func New(cfg Config, h *hub.Hub, svc Service, log *slog.Logger) *Server {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, hub: h, svc: svc, log: log}
	s.pings.every = cfg.PingEvery
	return s
}

// Serve upgrades the request to a websocket and serves it as a session of
// a, whose token expires at until. The caller has authenticated the
// request. Serve returns at once; the connection is served by goroutines
// of its own.
//
// An error means the socket was refused before the upgrade, and nothing
// was written: ERATELIMITED when the user holds MaxSocketsPerUser sockets
// already, EUNAVAILABLE when the instance holds MaxSockets. A refused
// upgrade (a bad handshake, an origin that is not allowed) has been
// answered already, and is nil.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, a dealroom.Actor, until time.Time) error {
	return s.ServeSignIn(w, r, a, until, "")
}

// ServeSignIn is Serve for a request authenticated by the browser session
// signIn (its id, package session): the connection is closed when that
// session ends (hub.EndSignIns).
func (s *Server) ServeSignIn(w http.ResponseWriter, r *http.Request, a dealroom.Actor, until time.Time, signIn string) error {
	// Counted before the upgrade, so that a refusal is a plain HTTP answer
	// with the contract's error body.
	if err := s.sockets.acquire(a.ID, s.cfg.MaxSocketsPerUser, s.cfg.MaxSockets); err != nil {
		return err
	}
	var out *gatherWriter
	ws, err := websocket.Accept(smallBuffers{w, &out}, r, &websocket.AcceptOptions{
		OriginPatterns:  s.cfg.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered already (bad handshake, or an origin that
		// is not allowed: 403).
		s.log.Debug("websocket upgrade refused", "err", err, "origin", r.Header.Get("Origin"))
		s.sockets.release(a.ID)
		return nil
	}
	ws.SetReadLimit(s.cfg.MaxFrameBytes)
	if s.Accepted != nil {
		s.Accepted()
	}
	sess := s.hub.NewSignedInSession(a, signIn)
	sess.SetAgent(r.UserAgent())
	c := &conn{s: s, ws: ws, out: out, sess: sess, until: until}
	// The connection is ours now: serve it from a fresh goroutine and let
	// the HTTP handler's (deep) stack go.
	go c.run()
	return nil
}
