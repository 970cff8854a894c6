// Command dealroom is the Dealroom server: deal rooms where a seller's team
// and the customer's people work on one opportunity, live.
//
//	dealroom [serve] [flags]   start the server (the embedded default needs nothing else)
//	dealroom token [flags]     mint a development token with the configured secret
//
// Every flag has a DEALROOM_* environment variable; see dealroom serve -h.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"dealroom"
	"dealroom/api"
	"dealroom/backup"
	"dealroom/boltstore"
	"dealroom/broker"
	"dealroom/diskblob"
	"dealroom/frontend"
	"dealroom/hub"
	"dealroom/internal/gcfloor"
	"dealroom/jwtauth"
	"dealroom/mail"
	"dealroom/mongostore"
	"dealroom/oidc"
	"dealroom/redisbroker"
	"dealroom/room"
	"dealroom/session"
	"dealroom/ws"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dealroom:", err)
		}
		os.Exit(1)
	}
}

// run dispatches the subcommand.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "token":
		return token(args, getenv, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, "usage: dealroom [serve] [flags] | dealroom token [flags]; add -h for the flags")
		return nil
	}
	return fmt.Errorf("unknown command %q (want serve or token)", cmd)
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("dealroom serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	app := &App{Config: cfg, Log: log}
	if err := app.Open(ctx); err != nil {
		return err
	}
	defer app.Close()
	if headroom, on := gcHeadroom(cfg, getenv); on {
		floor := &gcfloor.Floor{Headroom: headroom, Log: log}
		fctx, stop := context.WithCancel(ctx)
		defer stop()
		go floor.Run(fctx)
		log.Info("garbage collection", "headroom_mib", headroom>>20)
	}
	url := "http://" + displayAddr(app.Addr())
	fmt.Fprintf(stdout, "Dealroom is listening on %s (%s)\n", url, app.Mode())
	fmt.Fprintf(stdout, "Open %s in a browser. To sign in, make a token:\n", url)
	tokenArgs := "token --sub you --name \"Your Name\" --kind staff --role manager"
	if cfg.DataDir != "dealroom-data" {
		tokenArgs += " --data-dir " + cfg.DataDir
	}
	fmt.Fprintf(stdout, "  dealroom %s\n", tokenArgs)
	fmt.Fprintf(stdout, "  (from a checkout of the source: go run ./cmd/dealroom %s)\n", tokenArgs)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-app.Done():
		return err
	}
}

// gcHeadroom is the heap's headroom between collections for this process
// (gcfloor), and whether to keep one: not when GOGC is set (the operator
// chose the pacing) or the headroom configured is 0.
func gcHeadroom(cfg Config, getenv func(string) string) (uint64, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	h := cfg.GCHeadroom
	if !cfg.GCHeadroomSet {
		h = gcfloor.DefaultHeadroom()
	}
	return h, h > 0
}

// token mints a token with the configured secret, for development and for
// scripts: dealroom token --sub alice --name Alice --kind staff --role manager
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dealroom token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "user id (required)")
	name := fs.String("name", "", "display name")
	email := fs.String("email", "", "email address")
	kind := fs.String("kind", "staff", "staff or customer")
	role := fs.String("role", "rep", "for staff: rep, manager or admin")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime")
	dataDir := fs.String("data-dir", envOr(getenv, "DEALROOM_DATA_DIR", "dealroom-data"), "the server's data directory, whose secret is used when none is given ($DEALROOM_DATA_DIR)")
	secret := fs.String("jwt-secret", "", "HS256 secret ($DEALROOM_JWT_SECRET)")
	issuer := fs.String("jwt-issuer", getenv("DEALROOM_JWT_ISSUER"), "iss ($DEALROOM_JWT_ISSUER)")
	audience := fs.String("jwt-audience", getenv("DEALROOM_JWT_AUDIENCE"), "aud ($DEALROOM_JWT_AUDIENCE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" { // not shown as a default in -h
		*secret = getenv("DEALROOM_JWT_SECRET")
	}
	a := dealroom.Actor{ID: *sub, Name: *name, Email: *email, Kind: dealroom.Kind(*kind), Role: dealroom.Role(*role)}
	switch {
	case a.ID == "":
		return errors.New("token: --sub is required")
	case !a.Kind.Valid():
		return errors.New("token: --kind must be staff or customer")
	case a.Kind == dealroom.Staff && !a.Role.Valid():
		return errors.New("token: --role must be rep, manager or admin")
	case *ttl <= 0:
		return errors.New("token: --ttl must be positive")
	}
	if a.Kind == dealroom.Customer {
		a.Role = ""
	}
	// The token is only useful if the server accepts it: use the server's
	// secret, never make one (a new secret in the data directory would not
	// be the one a running server uses, and would replace none).
	cfg := Config{DataDir: *dataDir, JWTSecret: *secret}
	key, err := cfg.existingJWTSecret()
	if errors.Is(err, errNoSecret) {
		return fmt.Errorf("token: no JWT secret: set DEALROOM_JWT_SECRET (or --jwt-secret) to the server's secret, "+
			"or point DEALROOM_DATA_DIR (or --data-dir) at the server's data directory, which holds %s once the server has started",
			filepath.Join(*dataDir, "jwt-secret"))
	}
	if err != nil {
		return fmt.Errorf("token: reading the JWT secret: %w", err)
	}
	keys, err := jwtauth.New(jwtauth.Config{Secret: key, Issuer: *issuer, Audience: *audience})
	if err != nil {
		return err
	}
	tok, err := keys.Issue(a, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// displayAddr turns a listen address into one to type in a browser.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// App is one running server: its store, its HTTP listener and the parts in
// between, wired by hand. Tests run the same App on port 0.
type App struct {
	Config Config
	Log    *slog.Logger

	store    room.Store
	listener net.Listener
	http     *http.Server
	done     chan error
	closers  []func() error
	mode     string
	mail     mail.Sender      // nil without -smtp-url
	replies  net.Listener     // nil without -smtp-listen
	push     *api.PushDevices // nil when the server does not push
}

// Mail returns the sender of the server's email, nil when none is
// configured (sign-in links and notifications are then not sent).
func (a *App) Mail() mail.Sender { return a.mail }

// Open wires the parts and starts serving in the background: the token
// keys, the backend of the mode (openEmbedded, or openCluster with
// MongoDB and Redis), the service, the hub and its broker, the API.
func (a *App) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	cfg := a.Config
	if a.Log == nil {
		a.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a.Log.Info("starting", cfg.Masked()...)
	keys, err := openKeys(cfg)
	if err != nil {
		return err
	}
	if a.mail, err = cfg.openMail(); err != nil {
		return err
	}
	metrics := api.NewMetrics()
	var be backend
	if cfg.MongoURI != "" {
		be, err = a.openCluster(ctx, cfg)
	} else {
		be, err = a.openEmbedded(cfg, metrics)
	}
	if err != nil {
		return err
	}
	signIn, err := a.openSignIn(ctx, cfg, be.sessions)
	if err != nil {
		return err
	}
	a.store = be.store
	a.mode = be.mode

	appended := metrics.Counter("dealroom_events_appended_total", "Events appended to room logs by this instance.")
	svc := &room.Service{Store: be.store, Blobs: be.blobs}
	h := hub.New(hub.Config{PresenceTTL: cfg.PresenceTTL}, hubStore(be.store, cfg.MongoURI == "" || cfg.MongoHeadBatch), svc, a.Log)
	b, err := be.broker(ctx, h)
	if err != nil {
		return err
	}
	if be.instance {
		a.mode += ", instance " + h.Instance()
	}
	h.Start(b)
	a.closers = append(a.closers, func() error { h.Close(); return b.Close() })
	notifier, notifications, err := a.openNotify(cfg, be.store, metrics)
	if err != nil {
		return err
	}
	if err := a.openReplies(cfg, notifier, svc); err != nil {
		return err
	}
	hooks, hookRunner, err := a.openWebhooks(cfg, be.store, metrics)
	if err != nil {
		return err
	}
	svc.Committed = func(ev room.Event) {
		appended.Add(1)
		h.Committed(ev)
		if notifications != nil {
			notifications.Wake(ev.RoomID)
		}
		if hookRunner != nil {
			hookRunner.Wake(ev.RoomID)
		}
	}
	svc.ReadMoved = h.ReadMoved
	registerHubMetrics(metrics, h)
	gcCtx, stopGC := context.WithCancel(context.Background())
	gcDone := make(chan struct{})
	go a.housekeep(gcCtx, svc, be.sessions, gcDone)
	a.closers = append(a.closers, func() error { stopGC(); <-gcDone; return nil })
	warnPlainPublicURL(a.Log, cfg.PublicURL)
	srv := api.New(api.Config{PublicURL: cfg.PublicURL, TrustedProxies: cfg.TrustedProxies, MaxUploadBytes: cfg.MaxUploadBytes,
		CustomerTokenTTL: cfg.CustomerTTL, RateLimit: cfg.RateLimit, RateBurst: int(2 * cfg.RateLimit),
		Sessions: be.sessions, SessionIdle: cfg.SessionIdle, SessionMax: cfg.SessionMax,
		OIDC: signIn.rp, OIDCName: cfg.OIDCName, CookieKey: signIn.cookieKey, Mail: a.mail, Notifier: notifier, Staff: staffOf(be.store, a.Log),
		Push: a.push, Webhooks: hooks, Backup: be.backup,
		Hub: h, Realtime: ws.Config{AllowedOrigins: cfg.AllowedOrigins, PingEvery: cfg.WSPing, PingTimeout: cfg.WSPing,
			MaxSockets: cfg.WSMaxSockets, MaxSocketsPerUser: cfg.WSMaxSocketsPerUser,
			MaxSubscriptions: cfg.WSMaxSubscriptions, FrameRate: cfg.WSFrameRate}},
		svc, keys, a.Log, metrics, be.ready)
	frontend.Register(srv.Echo())
	a.closers = append(a.closers, srv.Close)

	a.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	a.http = &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	a.done = make(chan error, 1)
	hs, l := a.http, a.listener // Close may clear a.http before this goroutine runs
	go func() {
		if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			a.done <- err
		}
		close(a.done)
	}()
	a.Log.Info("listening", "addr", a.Addr(), "mode", a.mode)
	return nil
}

// openKeys makes the token verifier of the configuration.
func openKeys(cfg Config) (*jwtauth.Keys, error) {
	secret, err := cfg.jwtSecret()
	if err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	jcfg := jwtauth.Config{Secret: secret, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}
	if cfg.JWTPublicKey != "" {
		pem, err := os.ReadFile(cfg.JWTPublicKey)
		if err != nil {
			return nil, fmt.Errorf("jwt public key: %w", err)
		}
		if jcfg.PublicKey, err = jwtauth.ParsePublicKey(pem); err != nil {
			return nil, err
		}
	}
	return jwtauth.New(jcfg)
}

// signIn is how staff sign in: with the company's identity provider when
// one is configured.
type signIn struct {
	rp        *oidc.RelyingParty // nil without -oidc-issuer
	cookieKey []byte             // seals sign-in attempts' cookies
}

// openSignIn asks the identity provider for its configuration (OpenID
// discovery): a provider that cannot be reached or that names another
// issuer stops the start, rather than every sign-in later. Finished
// sign-ins are remembered as tickets in the store, so that a replayed
// callback is refused on every instance.
func (a *App) openSignIn(ctx context.Context, cfg Config, tickets session.Tickets) (signIn, error) {
	if cfg.OIDCIssuer == "" {
		return signIn{}, nil
	}
	secret, err := cfg.jwtSecret()
	if err != nil {
		return signIn{}, fmt.Errorf("jwt secret: %w", err)
	}
	// A key of its own, derived from the server's secret, for one purpose.
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("dealroom oidc sign-in attempt"))
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ocfg := cfg.oidcConfig()
	ocfg.Used = oidc.StoreUsed{Tickets: tickets}
	rp, err := oidc.New(octx, ocfg)
	if err != nil {
		return signIn{}, fmt.Errorf("-oidc-issuer / DEALROOM_OIDC_ISSUER %s: %w", cfg.OIDCIssuer, err)
	}
	return signIn{rp: rp, cookieKey: mac.Sum(nil)}, nil
}

// hubStore is the store as the hub reads it: events with the text of
// deleted messages removed, and, with batch, many rooms' heads checked in
// one read when the store can (both stores can).
//
// On MongoDB batching is off unless DEALROOM_MONGO_HEAD_BATCH asks for
// it: MongoDB answers an $or whose clauses each match an index with an
// index seek per clause, but the only MongoDB server our machines run,
// mongo-java-server, scans the collection for it, and there the batched
// check made me500's p99 17 ms → 66 ms, with a stall every 5 s growing
// with the log (docs/benchmarks.md). It stays off until measured on a
// real MongoDB.
func hubStore(st room.Store, batch bool) hub.Store {
	r := room.Redactor{Store: st}
	if hs, ok := st.(hub.HeadsStore); ok && batch {
		return struct {
			room.Redactor
			hub.HeadsStore
		}{r, hs}
	}
	return r
}

// backend is what a mode gives the app: the store and the blobs, the
// backends /readyz checks, and how the hub's broker is made (the broker
// delivers to the hub, which needs the store first).
type backend struct {
	store room.Store
	blobs room.Blobs
	// sessions keeps the browser sessions: the store, beside the rooms.
	sessions session.Store
	ready    map[string]api.Pinger
	broker   func(ctx context.Context, h *hub.Hub) (broker.Broker, error)
	// backup takes the embedded mode's backups (nil on MongoDB).
	backup *backup.Source
	mode   string
	// instance: the mode runs several instances, named in the log.
	instance bool
}

// openEmbedded opens the embedded mode: bbolt and files in the data
// directory, the in-process broker.
func (a *App) openEmbedded(cfg Config, metrics *api.Metrics) (backend, error) {
	bs, err := boltstore.Open(cfg.DataDir)
	if err != nil {
		return backend{}, err
	}
	a.closers = append(a.closers, bs.Close)
	commits := metrics.Histogram("dealroom_store_commit_seconds",
		"Durable commits of the embedded store: each writes a group of commands with one fsync'd transaction.")
	commands := metrics.Counter("dealroom_store_commands_total", "Commands written by the embedded store's commits.")
	bs.OnCommit(func(n int, d time.Duration) {
		commits.Observe(d)
		commands.Add(float64(n))
	})
	blobs, err := diskblob.Open(filepath.Join(cfg.DataDir, "attachments"))
	if err != nil {
		return backend{}, err
	}
	return backend{store: bs, sessions: bs, blobs: blobs, ready: map[string]api.Pinger{"store": bs},
		broker: func(_ context.Context, h *hub.Hub) (broker.Broker, error) { return broker.NewLocal(h), nil },
		backup: &backup.Source{Store: bs, StoreFile: boltstore.File, Files: blobs, FilesDir: "attachments", Spool: cfg.DataDir},
		mode:   "embedded store in " + cfg.DataDir}, nil
}

// openCluster opens the production mode, which runs any number of
// instances: MongoDB (events, read models, GridFS attachments) and Redis
// pub/sub between the instances.
func (a *App) openCluster(ctx context.Context, cfg Config) (backend, error) {
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ms, err := mongostore.Open(octx, cfg.MongoURI, mongostore.WithLogger(a.Log))
	if err != nil {
		return backend{}, fmt.Errorf("mongodb: %w", err)
	}
	a.closers = append(a.closers, ms.Close)
	blobs, err := ms.Blobs(octx)
	if err != nil {
		return backend{}, fmt.Errorf("mongodb attachments: %w", err)
	}
	db, _ := mongostore.DatabaseFromURI(cfg.MongoURI)
	ready := map[string]api.Pinger{"store": ms}
	return backend{store: ms, sessions: ms, blobs: blobs, ready: ready,
		broker: func(ctx context.Context, h *hub.Hub) (broker.Broker, error) {
			redis.SetLogger(redisLog{a.Log})
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			opts := []redisbroker.Option{redisbroker.WithLogger(a.Log)}
			if t, err := cfg.redisTLS(); err != nil {
				return nil, err
			} else if t != nil {
				opts = append(opts, redisbroker.WithTLS(t))
			}
			rb, err := redisbroker.New(rctx, cfg.RedisURL, h, opts...)
			if err != nil {
				return nil, fmt.Errorf("redis: %w", err)
			}
			ready["broker"] = rb
			return rb, nil
		},
		mode: "MongoDB (database " + db + ") and Redis", instance: true}, nil
}

// blobGrace is how old stored bytes that no attachment refers to must be
// to be collected: far longer than any upload takes from its bytes to its
// record.
const blobGrace = 24 * time.Hour

// housekeep removes, at start and then daily, the bytes of uploads whose
// record failed after they were stored, the browser sessions that have
// ended and the expired sign-in tickets (every instance may: the
// removals are conditional).
func (a *App) housekeep(ctx context.Context, svc *room.Service, sessions session.Store, done chan<- struct{}) {
	defer close(done)
	for {
		n, err := svc.CollectBlobs(ctx, time.Now().Add(-blobGrace))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.Log.Warn("collecting unused attachment bytes failed", "err", err)
		case n > 0:
			a.Log.Info("collected unused attachment bytes", "blobs", n)
		}
		if sessions != nil {
			n, err := sessions.SweepSessions(ctx, time.Now())
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				a.Log.Warn("removing ended sessions failed", "err", err)
			case n > 0:
				a.Log.Info("removed ended sessions", "sessions", n)
			}
			n, err = sessions.SweepTickets(ctx, time.Now())
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				a.Log.Warn("removing expired sign-in tickets failed", "err", err)
			case n > 0:
				a.Log.Info("removed expired sign-in tickets", "tickets", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(24 * time.Hour):
		}
	}
}

// Addr is the address the server listens on (with the real port when the
// configured one was 0).
func (a *App) Addr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// Mode says which deployment runs.
func (a *App) Mode() string { return a.mode }

// Done delivers an error if serving stops on its own.
func (a *App) Done() <-chan error { return a.done }

// Close stops accepting requests, lets running ones finish for a few
// seconds, and closes the store. Calling it twice is safe.
func (a *App) Close() error {
	var errs []error
	if a.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		a.http = nil
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	a.closers = nil
	return errors.Join(errs...)
}

// registerHubMetrics exposes the realtime hub's counters.
func registerHubMetrics(m *api.Metrics, h *hub.Hub) {
	st := &h.Stats
	for _, g := range []struct {
		name, help string
		v          *atomic.Int64
	}{
		{"dealroom_ws_sessions", "Connected websocket sessions.", &st.Sessions},
		{"dealroom_ws_subscriptions", "Room subscriptions of connected sessions.", &st.Subscriptions},
		{"dealroom_hub_rooms", "Rooms followed by this instance.", &st.Rooms},
		{"dealroom_hub_delivered_total", "Event frames queued to sessions.", &st.Delivered},
		{"dealroom_hub_resyncs_total", "Subscriptions ended with resync because the device fell behind.", &st.Resyncs},
		{"dealroom_hub_store_reads_total", "Event reads from the store for catch-up and repair.", &st.StoreReads},
		{"dealroom_hub_gaps_repaired_total", "Gaps in the broker feed repaired from the store.", &st.GapsRepaired},
		{"dealroom_hub_presence_dropped_total", "Presence frames dropped for slow devices.", &st.Dropped},
	} {
		v := g.v
		read := func() float64 { return float64(v.Load()) }
		if strings.HasSuffix(g.name, "_total") {
			m.CounterFunc(g.name, g.help, read)
		} else {
			m.Gauge(g.name, g.help, read)
		}
	}
}

// redisLog sends go-redis's own messages (dial failures during an outage,
// which the broker reports itself) to the debug log instead of stderr.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug("redis: " + fmt.Sprintf(format, v...))
}

// warnPlainPublicURL warns when the public URL is plain http on a host
// other than this machine: browsers are then given session cookies not
// marked Secure, and sign-in links travel in clear. A development server
// on localhost is left alone.
func warnPlainPublicURL(log *slog.Logger, publicURL string) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme != "http" {
		return
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return
	}
	log.Warn("DEALROOM_PUBLIC_URL is plain http: session cookies are not marked Secure and links travel unencrypted; serve it over https", "public_url", publicURL)
}
