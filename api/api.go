// Package api serves Dealroom's public contract over HTTP with Echo: the
// REST routes under /api/v1, health, readiness and metrics. Handlers only
// translate: they read the request, call room.Service, and write JSON; the
// rules live in the domain. Every change of a room is declared once
// (ops.go: its name, route, input type, service call and rate-limit
// class), and both its REST route and its websocket command are made from
// that declaration. Errors are shown through the one table of
// dealroom.PublicOf (errors.go). The websocket route authenticates its
// request and hands it to package ws, the transport.
package api

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"dealroom"
	"dealroom/backup"
	"dealroom/hub"
	"dealroom/jwtauth"
	"dealroom/mail"
	"dealroom/notify"
	"dealroom/oidc"
	"dealroom/room"
	"dealroom/session"
	"dealroom/staff"
	"dealroom/webhook"
	"dealroom/ws"
)

// Config is what the API needs besides the service.
type Config struct {
	// PublicURL is the address people use to reach the server, for invite
	// links ("https://deals.example.com"). Empty: derived from each request.
	PublicURL string
	// MaxUploadBytes bounds an attachment (default 25 MiB).
	MaxUploadBytes int64
	// MaxBodyBytes bounds a JSON request body (default 1 MiB).
	MaxBodyBytes int64
	// CustomerTokenTTL is how long a token issued on invite acceptance lasts
	// (default 30 days).
	CustomerTokenTTL time.Duration
	// RateLimit is the sustained requests per second allowed per user (or
	// per address before sign-in), with bursts of RateBurst. Zero: 50/s, burst 100.
	RateLimit float64
	RateBurst int
	// TrustedProxies are the addresses of the reverse proxies in front of
	// the server: only a request that comes from one of them has its
	// client's address taken from X-Forwarded-For (for rate limits before
	// sign-in and the logs). None by default: the header is ignored.
	TrustedProxies []*net.IPNet
	// IdleTimeout bounds how long a request may go without a byte of its
	// body arriving or of its answer being taken (30s); TransferTimeout
	// bounds an upload's body or a download in all (15m). See transfer.go.
	IdleTimeout     time.Duration
	TransferTimeout time.Duration
	// SpoolDir holds uploads until they are accepted (default: the
	// system's temporary directory, dealroom-uploads); leftovers of a
	// process that died mid-upload are removed at start.
	SpoolDir string
	// OIDC, when set, signs staff in with the company's identity provider
	// (signin_oidc.go); OIDCName names it on the sign-in page. CookieKey
	// seals a sign-in attempt's cookie (at least 32 bytes: the server's
	// secret).
	OIDC      *oidc.RelyingParty
	OIDCName  string
	CookieKey []byte
	// Mail sends customers the sign-in links they ask for
	// (signin_email.go). Links are offered only with Mail, PublicURL (the
	// address they point at) and Sessions; GET /api/v1/auth tells the
	// sign-in page whether they are.
	Mail mail.Sender
	// Sessions keeps the browser sessions (session.go); nil: none, the
	// session cookie is ignored and the session routes answer 503.
	// SessionIdle and SessionMax are their lifetimes without use and in
	// all (defaults: session.DefaultIdle and session.DefaultMax).
	Sessions    session.Store
	SessionIdle time.Duration
	SessionMax  time.Duration
	// Hub serves /api/v1/ws; without one the route answers 503.
	Hub *hub.Hub
	// Realtime tunes the websocket endpoint.
	Realtime ws.Config
	// Notifier, when set, learns signed-in people's addresses and serves
	// the notification routes (notifications.go).
	Notifier *notify.Notifier
	// Staff, when set, accepts service accounts' API keys (Authorization:
	// Bearer drk_...), serves their admin routes and learns staff people
	// by email, for the CRM's upsert (crm.go). Nil: those routes answer
	// 503 and API keys are refused.
	Staff *staff.Service
	// Push, when set, serves the push routes (push.go).
	Push *PushDevices
	// Backup, when set, serves GET /admin/backup: the embedded store and
	// the attachments as one tar stream (nil on MongoDB, whose own tools
	// take its backups).
	Backup *backup.Source
	// Webhooks, when set, serves the admins' webhook routes
	// (webhooks.go); nil: they answer 503.
	Webhooks *webhook.Service
}

func (c *Config) defaults() {
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = 25 << 20
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.CustomerTokenTTL <= 0 {
		c.CustomerTokenTTL = 30 * 24 * time.Hour
	}
	if c.RateLimit <= 0 {
		c.RateLimit = 50
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 100
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.TransferTimeout <= 0 {
		c.TransferTimeout = 15 * time.Minute
	}
	if c.SpoolDir == "" {
		c.SpoolDir = filepath.Join(os.TempDir(), "dealroom-uploads")
	}
}

// Pinger is a backend whose reachability /readyz reports.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server is the HTTP face of Dealroom.
type Server struct {
	cfg     Config
	svc     *room.Service
	keys    *jwtauth.Keys
	log     *slog.Logger
	echo    *echo.Echo
	metrics *Metrics
	ready   map[string]Pinger
	ws      *ws.Server                         // nil without a hub
	routes  routeTable                         // the API's routes, for 405 and 404
	limits  *middleware.RateLimiterMemoryStore // requests per user
	// sessions: nil without Config.Sessions.
	sessions *session.Sessions
	// links sends sign-in links by email; nil when they are not offered.
	links *emailLinks
	// engage counts engagement (engagement.go); nil when the store keeps none.
	engage *engagement
}

// New builds the server's routes. ready names the backends /readyz checks.
func New(cfg Config, svc *room.Service, keys *jwtauth.Keys, log *slog.Logger, metrics *Metrics, ready map[string]Pinger) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, svc: svc, keys: keys, log: log, echo: echo.New(), metrics: metrics, ready: ready}
	if cfg.Sessions != nil {
		s.sessions = &session.Sessions{Store: cfg.Sessions, Idle: cfg.SessionIdle, Max: cfg.SessionMax}
	}
	s.links = newEmailLinks(cfg)
	s.engage = newEngagement(s)
	if cfg.Hub != nil {
		s.ws = ws.New(cfg.Realtime, cfg.Hub, wsService{s}, log)
		if metrics != nil {
			accepted := metrics.Counter("dealroom_ws_connections_total", "Websocket connections accepted.")
			s.ws.Accepted = func() { accepted.Add(1) }
		}
	}
	if err := cleanSpool(cfg.SpoolDir, time.Now(), cfg.TransferTimeout+spoolAge); err != nil {
		log.Warn("the upload spool directory could not be cleaned", "dir", cfg.SpoolDir, "err", err)
	}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	// The client's address (rate limits before sign-in) is taken from
	// X-Forwarded-For only when a configured proxy set it: anyone else
	// could write any address there, and get a rate limit of its own for
	// each.
	e.IPExtractor = echo.ExtractIPDirect()
	if len(cfg.TrustedProxies) > 0 {
		trust := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range cfg.TrustedProxies {
			trust = append(trust, echo.TrustIPRange(n))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(trust...)
	}
	e.HTTPErrorHandler = s.handleError
	// Echo's Any covers the common methods only; the API's paths answer
	// any other (QUERY, PROPFIND, ...) here, like the catch-all below,
	// before a group's middleware could ask for a token first.
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if r := c.Request(); strings.HasPrefix(r.URL.Path, "/api/v1/") && !slices.Contains(anyMethods, r.Method) {
				return s.noRoute(c)
			}
			return next(c)
		}
	})
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic", "err", err, "path", c.Path(), "stack", string(stack))
			return err
		}}))
	e.Use(middleware.RequestID())
	e.Use(s.observe)
	e.Use(s.deadlines)
	e.Use(securityHeaders)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.serveMetrics)

	v1 := e.Group("/api/v1")
	v1.GET("/openapi.yaml", serveOpenAPI)
	s.limits = middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(s.cfg.RateLimit), Burst: s.cfg.RateBurst, ExpiresIn: 3 * time.Minute})
	limiter := s.rateLimiter()
	v1.POST("/invites/:code/accept", s.acceptInvite, limiter)
	v1.POST("/session", s.createSession, limiter)
	v1.GET("/auth", s.signInConfig, limiter)
	v1.GET("/auth/oidc/login", s.oidcLogin, limiter)
	v1.GET("/auth/oidc/callback", s.oidcCallback, limiter)
	v1.POST("/auth/email-link", s.requestEmailLink, limiter)
	v1.POST("/auth/email-link/redeem", s.redeemEmailLink, limiter)

	e.GET(wsRoute, s.serveWS)

	a := v1.Group("", s.authenticate, limiter)
	a.GET("/me", s.me)
	a.GET("/me/tasks", s.myTasks)
	a.GET("/me/inbox", s.inbox)
	a.POST("/me/inbox/:item/read", s.markRead)
	a.GET("/templates", s.templates)
	s.registerNotifications(v1, a, limiter)
	s.registerPush(a)

	a.GET("/session", s.getSession)
	a.DELETE("/session", s.deleteSession)
	a.POST("/session/end-all", s.endAllSessions)
	a.DELETE("/users/:user/sessions", s.endSessionsOf)

	a.GET("/rooms", s.listRooms)
	a.GET("/pipeline", s.pipeline)
	a.POST("/rooms", s.createRoom)
	a.GET("/rooms/:room", s.getRoom)
	a.GET("/rooms/:room/events", s.events)

	a.GET("/rooms/:room/members", s.listMembers)

	a.GET("/rooms/:room/tasks", s.listTasks)
	a.GET("/rooms/:room/tasks/:task", s.getTask)

	a.GET("/rooms/:room/messages", s.listMessages)
	a.GET("/rooms/:room/messages/:msg", s.getMessage)

	a.GET("/rooms/:room/attachments", s.listAttachments)
	a.POST("/rooms/:room/attachments", s.upload)
	a.GET("/rooms/:room/attachments/:id", s.download)

	a.GET("/rooms/:room/invites", s.listInvites)
	s.registerReads(a)
	s.registerCRM(a)
	s.registerWebhooks(a)
	s.registerEngagement(v1, a, limiter)

	// The changes of a room: the same declarations serve the websocket's
	// commands (ops.go).
	for _, o := range operations {
		o.register(s, a)
	}

	// Everything else under /api/v1 is answered here, in the contract's
	// shape, rather than by the web app's pages: 405 with Allow for a
	// route's other methods, 404 for a path that is no route.
	s.routes = newRouteTable(e.Routes(), "/api/v1/")
	v1.Any("/*", s.noRoute)
	return s
}

// anyMethods are the methods Echo's Any registers a route for.
var anyMethods = []string{http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead,
	http.MethodOptions, http.MethodPatch, http.MethodPost, echo.PROPFIND, http.MethodPut, http.MethodTrace, echo.REPORT}

// noRoute answers a request under /api/v1 that no route serves: 405 with
// Allow when the path is a route's with other methods, else 404. The
// catch-all route calls it, and the Pre middleware for the methods that
// Echo's Any does not cover (QUERY, ...).
func (s *Server) noRoute(c echo.Context) error {
	r := c.Request()
	if allow := s.routes.allow(r.URL.Path); allow != "" {
		c.Response().Header().Set(echo.HeaderAllow, allow)
		return dealroom.Errorf(dealroom.EMETHOD, "%s %s: this route answers %s", r.Method, r.URL.Path, allow)
	}
	return dealroom.Errorf(dealroom.ENOTFOUND, "no such route: %s %s", r.Method, r.URL.Path)
}

// routeTable answers which methods the routes matching a path serve.
type routeTable []struct {
	segments []string // ":name" matches any one non-empty segment
	methods  []string
}

// newRouteTable collects the routes whose paths start with prefix.
func newRouteTable(routes []*echo.Route, prefix string) routeTable {
	var t routeTable
	byPath := map[string]int{}
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Path, prefix) || strings.Contains(rt.Path, "*") {
			continue
		}
		i, ok := byPath[rt.Path]
		if !ok {
			i = len(t)
			byPath[rt.Path] = i
			t = append(t, struct {
				segments []string
				methods  []string
			}{segments: strings.Split(rt.Path, "/")})
		}
		t[i].methods = append(t[i].methods, rt.Method)
	}
	return t
}

// allow returns the Allow header for path ("GET, PATCH"), or "" when no
// route matches it.
func (t routeTable) allow(path string) string {
	segs := strings.Split(path, "/")
	var methods []string
	for _, rt := range t {
		if matchSegments(rt.segments, segs) {
			methods = append(methods, rt.methods...)
		}
	}
	slices.Sort(methods)
	return strings.Join(slices.Compact(methods), ", ")
}

func matchSegments(pattern, segs []string) bool {
	if len(pattern) != len(segs) {
		return false
	}
	for i, p := range pattern {
		if strings.HasPrefix(p, ":") {
			if segs[i] == "" {
				return false
			}
		} else if p != segs[i] {
			return false
		}
	}
	return true
}

// Close stops the server's background work: sign-in links still queued
// go out for a few seconds more. Safe to call twice.
func (s *Server) Close() error {
	if s.links != nil {
		s.links.close()
	}
	s.engage.close()
	return nil
}

// Echo returns the router, so that more routes (the websocket, the web
// page) can be added beside the API.
func (s *Server) Echo() *echo.Echo { return s.echo }

// ServeHTTP lets the server be used as an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz pings every backend. Those named by exclude parameters are
// pinged and reported too, but do not make the answer 503: a readiness
// probe may leave out the broker, whose outage every instance shares and
// which they survive (they repair what they missed from the store).
func (s *Server) readyz(c echo.Context) error {
	excluded := c.QueryParams()["exclude"]
	for _, name := range excluded {
		if _, ok := s.ready[name]; !ok {
			names := slices.Sorted(maps.Keys(s.ready))
			return dealroom.Invalid("exclude", "exclude names no backend of this server (%s), not %q", strings.Join(names, ", "), dealroom.Clip(name))
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	for name, p := range s.ready {
		if err := p.Ping(ctx); err != nil {
			status[name] = "unavailable"
			if !slices.Contains(excluded, name) {
				code = http.StatusServiceUnavailable
			}
			s.log.Warn("readiness check failed", "backend", name, "err", err)
		} else {
			status[name] = "ok"
		}
	}
	return c.JSON(code, status)
}

// rateLimiter limits requests per user, or per address for requests that
// carry no identity yet.
func (s *Server) rateLimiter() echo.MiddlewareFunc {
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: s.limits,
		IdentifierExtractor: func(c echo.Context) (string, error) {
			if a, ok := c.Get(actorKey).(dealroom.Actor); ok {
				return "user:" + a.ID, nil
			}
			return "addr:" + c.RealIP(), nil
		},
		DenyHandler: func(c echo.Context, id string, err error) error {
			c.Response().Header().Set("Retry-After", "1")
			return errRateLimited
		},
	})
}

// errRateLimited refuses a request or a command over its user's budget.
var errRateLimited = dealroom.Errorf(dealroom.ERATELIMITED, "too many requests; slow down and retry in a moment")

// allow takes one request of a's budget of class c (a websocket command;
// REST requests pass the limiter middleware).
func (s *Server) allow(c rateClass, a dealroom.Actor) bool {
	switch c {
	case perUser:
		ok, err := s.limits.Allow("user:" + a.ID)
		return ok && err == nil
	}
	return false
}

func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// Invite codes travel in URLs: never leak them to other sites.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		return next(c)
	}
}
