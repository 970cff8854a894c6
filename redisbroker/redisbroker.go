// Package redisbroker implements broker.Broker with Redis pub/sub, for
// several instances of the server sharing one Redis.
//
// # Channels
//
// Every room has one channel, named prefix + "room:" + room ID, where the
// prefix is "dealroom:" unless [WithPrefix] says otherwise (several
// deployments, or tests, can share one Redis with different prefixes).
// Publish sends a PUBLISH on the room's channel; an instance receives the
// message if it subscribed the room, itself included.
//
// # Wire format
//
// A message's payload is binary-safe and compact:
//
//	byte 0      format version (1)
//	byte 1      kind (broker.Kind)
//	uvarint     length of the origin
//	...         the origin (the publishing instance's name)
//	...         the data, up to the end of the payload
//
// The room is not repeated: it is the channel's name. Payloads that do not
// decode (another version, truncated, overlong) are logged and ignored.
//
// # Subscriptions
//
// An instance has one subscriber connection (a go-redis PubSub) and one
// goroutine reading it, which calls the Handler, in the order Redis sent
// the messages. Subscriptions are counted per room: the first Subscribe of
// a room sends SUBSCRIBE, the last Unsubscribe sends UNSUBSCRIBE. Subscribe
// returns once Redis confirmed the subscription, so whatever is published
// afterwards is received: the reader matches Redis's confirmations, which
// come back in the order of the commands, to the commands sent per channel,
// and checks the subscription count Redis reports against its own.
// Concurrent Subscribe calls of many rooms each wait for their own
// confirmation only. While the connection is down, Subscribe waits for it
// to come back (up to its context, and at most [WithSubscribeTimeout]).
//
// # Loss and restore
//
// When the subscriber connection breaks (Redis stopped or restarted, the
// connection killed, a write failing, or no answer to a health-check PING
// on an idle connection, see [WithHealthCheck]), messages may have been
// lost: the reader calls Handler.FeedLost once, then reconnects with
// backoff (at most a second apart by default), subscribes every room still
// counted on the fresh connection, and once Redis confirmed all of them
// calls Handler.FeedRestored. The hub then reads what it missed from the
// store; this broker, like Redis pub/sub, only carries news.
//
// go-redis's PubSub would reconnect and resubscribe on its own after some
// errors, silently, and then nobody would know that messages were lost in
// between. The subscriber client's dialer therefore refuses every dial that
// the broker did not ask for: each PubSub lives on exactly one connection,
// every loss surfaces as an error, and the broker does the reconnecting.
//
// Publishing uses a separate ordinary client, without retries (a lost
// publish is repaired by seq; a retried one could be doubled) and with a
// timeout ([WithPublishTimeout]).
package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"dealroom/broker"
)

// Option configures a Broker.
type Option func(*config)

type config struct {
	prefix           string
	log              *slog.Logger
	publishTimeout   time.Duration
	subscribeTimeout time.Duration
	healthEvery      time.Duration
	minBackoff       time.Duration
	maxBackoff       time.Duration
}

// WithPrefix sets the prefix of the channel names ("dealroom:" by default).
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithLogger sets the logger (slog.Default() by default).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithPublishTimeout bounds a Publish and a Ping (2s by default).
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.publishTimeout = d
		}
	}
}

// WithSubscribeTimeout bounds how long Subscribe waits for Redis to confirm
// a subscription, whatever its context says (10s by default).
func WithSubscribeTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.subscribeTimeout = d
		}
	}
}

// WithHealthCheck sets how often the subscriber connection is checked
// (2s by default): after an interval without any traffic it is sent a
// PING, and if nothing arrives during the next interval it is considered
// dead. This finds connections that die silently (a network partition);
// a stopped Redis closes them and is noticed at once.
func WithHealthCheck(every time.Duration) Option {
	return func(c *config) {
		if every > 0 {
			c.healthEvery = every
		}
	}
}

// WithReconnectBackoff sets the first and the longest wait between two
// attempts to reconnect the subscriber connection (50ms and 1s by
// default).
func WithReconnectBackoff(first, longest time.Duration) Option {
	return func(c *config) {
		if first > 0 {
			c.minBackoff = first
		}
		if longest > 0 {
			c.maxBackoff = longest
		}
	}
}

const (
	writeTimeout   = 3 * time.Second // SUBSCRIBE, UNSUBSCRIBE and PING writes
	connectTimeout = 5 * time.Second // dial and handshake of the subscriber
	subscribeChunk = 512             // channels per SUBSCRIBE when resubscribing
)

// Broker is a broker.Broker on Redis pub/sub. Its methods are safe for
// concurrent use. Handler methods run on the broker's reader goroutine:
// they may Publish, but must not call Subscribe (it waits for the reader)
// or Close (it waits for the reader to end).
type Broker struct {
	cfg        config
	h          broker.Handler
	log        *slog.Logger
	addr       string
	roomPrefix string

	pub *redis.Client // PUBLISH, PING
	sub *redis.Client // the subscriber connection only

	// dials is the number of dials the subscriber client may make: one per
	// connect, none for go-redis's own reconnects.
	dials atomic.Int32
	// up is false between FeedLost and FeedRestored; written by the reader.
	up atomic.Bool
	// reads counts what the reader received; waiting tells it is blocked
	// in Receive. The health check reads both.
	reads   atomic.Uint64
	waiting atomic.Bool

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	ps     *redis.PubSub // the live subscriber connection; nil while down
	chans  map[string]*channel
	// active is the number of channels Redis confirmed on ps, which Redis
	// repeats in every confirmation.
	active int
	// initial is the number of confirmations of the SUBSCRIBE that opened
	// ps still to come; the feed is restored when it reaches 0.
	initial int
}

// channel is a room's channel: its counted subscriptions and the state of
// its commands on the current connection. Commands alternate, starting on
// a fresh connection with SUBSCRIBE: command k is a SUBSCRIBE iff k is odd,
// so while connected the room is subscribed (or being subscribed) iff sent
// is odd.
type channel struct {
	n     int // counted subscriptions
	sent  int // commands sent on the current connection
	acked int // confirmations received for them
	subOp int // number of the last SUBSCRIBE sent
	// ready is closed once the last SUBSCRIBE sent is confirmed.
	ready       chan struct{}
	readyClosed bool
}

var _ broker.Broker = (*Broker)(nil)

// New connects to the Redis at url (redis://[user:password@]host:port/db,
// rediss:// for TLS, or unix://; see redis.ParseURL) and returns a broker
// delivering to h. It fails if Redis cannot be reached.
func New(ctx context.Context, url string, h broker.Handler, opts ...Option) (*Broker, error) {
	if h == nil {
		return nil, errors.New("redisbroker: nil handler")
	}
	cfg := config{
		prefix:           "dealroom:",
		log:              slog.Default(),
		publishTimeout:   2 * time.Second,
		subscribeTimeout: 10 * time.Second,
		healthEvery:      2 * time.Second,
		minBackoff:       50 * time.Millisecond,
		maxBackoff:       time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.maxBackoff = max(cfg.maxBackoff, cfg.minBackoff)

	// Two option sets, parsed separately: they are adjusted differently.
	pubOpt, err := redis.ParseURL(url)
	if err != nil {
		// A *url.Error repeats the URL, password included.
		if ue, ok := errors.AsType[*neturl.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("redisbroker: invalid Redis URL: %w", err)
	}
	subOpt, _ := redis.ParseURL(url)

	// A publish is news: not retried (Redis may have run it already), and
	// bounded by its context.
	if pubOpt.MaxRetries == 0 {
		pubOpt.MaxRetries = -1
	}
	if pubOpt.DialerRetries == 0 {
		pubOpt.DialerRetries = 1
	}
	pubOpt.ContextTimeoutEnabled = true

	b := &Broker{
		cfg:        cfg,
		h:          h,
		log:        cfg.log,
		addr:       pubOpt.Addr,
		roomPrefix: cfg.prefix + "room:",
		chans:      map[string]*channel{},
	}
	subOpt.ContextTimeoutEnabled = true
	subOpt.Dialer = b.gatedDialer(subOpt)

	b.pub = redis.NewClient(pubOpt)
	b.sub = redis.NewClient(subOpt)
	b.ctx, b.cancel = context.WithCancel(context.Background())

	fail := func(err error) (*Broker, error) {
		b.cancel()
		b.pub.Close()
		b.sub.Close()
		return nil, fmt.Errorf("redisbroker: cannot reach Redis at %s: %w", b.addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := b.pub.Ping(pctx).Err(); err != nil {
		return fail(err)
	}
	ps, _, err := b.connect(ctx)
	if err != nil {
		return fail(err)
	}
	b.up.Store(true)
	b.wg.Add(2)
	go b.run(ps)
	go b.watch()
	return b, nil
}

// gatedDialer returns the subscriber client's dialer: the usual one, but
// only while the broker itself connects.
func (b *Broker) gatedDialer(opt *redis.Options) func(context.Context, string, string) (net.Conn, error) {
	o := *opt
	if o.DialTimeout <= 0 {
		o.DialTimeout = connectTimeout
	}
	dial := redis.NewDialer(&o)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !b.dials.CompareAndSwap(1, 0) {
			return nil, errors.New("redisbroker: subscriber connection lost (the broker reconnects it, not go-redis)")
		}
		return dial(ctx, network, addr)
	}
}

// channelName returns the room's channel.
func (b *Broker) channelName(room string) string { return b.roomPrefix + room }

// Publish sends m on its room's channel.
func (b *Broker) Publish(ctx context.Context, m broker.Message) error {
	if b.isClosed() {
		return broker.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.publishTimeout)
	defer cancel()
	if err := b.pub.Publish(ctx, b.channelName(m.Room), encode(m)).Err(); err != nil {
		if b.isClosed() {
			return broker.ErrClosed
		}
		return fmt.Errorf("redisbroker: publish to room %s: %w", m.Room, err)
	}
	return nil
}

// Subscribe counts one more subscription of room and returns once Redis
// confirmed it.
func (b *Broker) Subscribe(ctx context.Context, room string) error {
	name := b.channelName(room)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return broker.ErrClosed
	}
	c := b.chans[name]
	if c == nil {
		c = &channel{ready: make(chan struct{})}
		b.chans[name] = c
	}
	c.n++
	if b.ps != nil && c.sent%2 == 0 {
		b.sendLocked(name, c, true)
	}
	ready := c.ready
	b.mu.Unlock()

	select {
	case <-ready:
		return nil
	default:
	}
	timer := time.NewTimer(b.cfg.subscribeTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-ready:
		return nil
	case <-b.ctx.Done():
		return broker.ErrClosed
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("no confirmation from Redis at %s within %s", b.addr, b.cfg.subscribeTimeout)
	}
	b.Unsubscribe(room)
	return fmt.Errorf("redisbroker: subscribe to room %s: %w", room, err)
}

// Unsubscribe counts one subscription of room less; the last one sends
// UNSUBSCRIBE. It does not wait for Redis.
func (b *Broker) Unsubscribe(room string) {
	name := b.channelName(room)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	c := b.chans[name]
	if c == nil || c.n == 0 {
		b.log.Warn("redisbroker: Unsubscribe without Subscribe", "room", room)
		return
	}
	c.n--
	if c.n > 0 {
		return
	}
	if b.ps != nil && c.sent%2 == 1 {
		b.sendLocked(name, c, false)
	}
	if c.n == 0 && c.acked == c.sent {
		delete(b.chans, name)
	}
}

// sendLocked sends SUBSCRIBE or UNSUBSCRIBE for one channel on the current
// connection; a failed write ends the connection.
func (b *Broker) sendLocked(name string, c *channel, subscribe bool) {
	c.sent++
	ctx, cancel := context.WithTimeout(b.ctx, writeTimeout)
	defer cancel()
	var err error
	if subscribe {
		c.subOp = c.sent
		if c.readyClosed {
			c.ready, c.readyClosed = make(chan struct{}), false
		}
		err = b.ps.Subscribe(ctx, name)
	} else {
		err = b.ps.Unsubscribe(ctx, name)
	}
	if err != nil {
		b.killLocked(fmt.Errorf("writing to the subscriber connection: %w", err))
	}
}

// killLocked ends the current connection; the reader notices and
// reconnects.
func (b *Broker) killLocked(reason error) {
	ps := b.ps
	if ps == nil {
		return
	}
	b.markDownLocked()
	if !b.closed {
		b.log.Warn("redisbroker: dropping the subscriber connection", "addr", b.addr, "err", reason)
	}
	ps.Close()
}

// markDownLocked forgets the current connection: the channels still
// counted wait for the next one.
func (b *Broker) markDownLocked() {
	b.ps, b.active, b.initial = nil, 0, 0
	for name, c := range b.chans {
		if c.n == 0 {
			delete(b.chans, name)
			continue
		}
		c.sent, c.acked, c.subOp = 0, 0, 0
		if c.readyClosed {
			c.ready, c.readyClosed = make(chan struct{}), false
		}
	}
}

// Ping checks Redis, and that the subscriber connection is up.
func (b *Broker) Ping(ctx context.Context) error {
	if b.isClosed() {
		return broker.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.publishTimeout)
	defer cancel()
	if err := b.pub.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisbroker: ping %s: %w", b.addr, err)
	}
	if !b.up.Load() {
		return fmt.Errorf("redisbroker: the subscriber connection to %s is down, reconnecting", b.addr)
	}
	return nil
}

// Close ends the subscriptions and the connections. It waits for the
// reader, so no Handler method runs once it returned.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ps := b.ps
	b.markDownLocked()
	clear(b.chans)
	b.mu.Unlock()
	b.cancel()
	if ps != nil {
		ps.Close()
	}
	b.wg.Wait()
	return errors.Join(ignoreClosed(b.pub.Close()), ignoreClosed(b.sub.Close()))
}

func ignoreClosed(err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return nil
	}
	return err
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// connect opens a subscriber connection and subscribes every counted room
// on it. It returns the number of confirmations to wait for.
func (b *Broker) connect(ctx context.Context) (*redis.PubSub, int, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	stop := context.AfterFunc(b.ctx, cancel)
	defer stop()

	ps := b.sub.Subscribe(ctx) // no channels: does not dial yet
	b.dials.Store(1)
	err := ps.Ping(ctx) // dials, and the PONG is the first reply
	b.dials.Store(0)
	if err != nil {
		ps.Close()
		return nil, 0, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		ps.Close()
		return nil, 0, broker.ErrClosed
	}
	names := make([]string, 0, len(b.chans))
	for name, c := range b.chans {
		if c.n == 0 {
			delete(b.chans, name)
			continue
		}
		c.sent, c.acked, c.subOp = 1, 0, 1
		names = append(names, name)
	}
	for chunk := range slices.Chunk(names, subscribeChunk) {
		if err := ps.Subscribe(ctx, chunk...); err != nil {
			b.markDownLocked()
			ps.Close()
			return nil, 0, err
		}
	}
	b.ps, b.active, b.initial = ps, 0, len(names)
	return ps, len(names), nil
}

// run is the reader: it reads the connection until it fails, reports the
// loss, reconnects and reads again, until Close.
func (b *Broker) run(ps *redis.PubSub) {
	defer b.wg.Done()
	for {
		b.read(ps)
		if b.ctx.Err() != nil || b.isClosed() {
			return
		}
		if b.up.Swap(false) {
			b.h.FeedLost()
		}
		var pending int
		ps, pending = b.reconnect()
		if ps == nil {
			return
		}
		if pending == 0 {
			b.restored()
		}
	}
}

func (b *Broker) restored() {
	b.up.Store(true)
	b.log.Info("redisbroker: subscriptions restored", "addr", b.addr)
	b.h.FeedRestored()
}

// reconnect connects again, with backoff, until it succeeds or the broker
// is closed (then it returns nil).
func (b *Broker) reconnect() (*redis.PubSub, int) {
	delay := b.cfg.minBackoff
	for attempt := 1; ; attempt++ {
		// Full jitter between half the delay and the delay.
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-b.ctx.Done():
			return nil, 0
		case <-time.After(wait):
		}
		ps, pending, err := b.connect(b.ctx)
		if err == nil {
			b.log.Info("redisbroker: subscriber connection re-established",
				"addr", b.addr, "attempts", attempt, "rooms", pending)
			return ps, pending
		}
		if b.ctx.Err() != nil {
			return nil, 0
		}
		level := slog.LevelDebug
		if attempt == 1 || attempt%30 == 0 {
			level = slog.LevelWarn
		}
		b.log.Log(b.ctx, level, "redisbroker: cannot reconnect the subscriber connection",
			"addr", b.addr, "attempt", attempt, "err", err)
		delay = min(2*delay, b.cfg.maxBackoff)
	}
}

// read delivers what ps receives until it fails.
func (b *Broker) read(ps *redis.PubSub) {
	for {
		b.waiting.Store(true)
		msg, err := ps.Receive(b.ctx)
		b.waiting.Store(false)
		b.reads.Add(1)
		if err != nil {
			b.drop(ps, err)
			return
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.deliver(m)
		case *redis.Subscription:
			restored, err := b.confirm(ps, m)
			if err != nil {
				b.drop(ps, err)
				return
			}
			if restored {
				b.restored()
			}
		case *redis.Pong:
		default:
			b.log.Warn("redisbroker: unexpected reply on the subscriber connection", "type", fmt.Sprintf("%T", msg))
		}
	}
}

// drop closes a failed connection.
func (b *Broker) drop(ps *redis.PubSub, err error) {
	b.mu.Lock()
	current := b.ps == ps
	if current {
		b.markDownLocked()
	}
	closed := b.closed
	b.mu.Unlock()
	ps.Close()
	if current && !closed {
		b.log.Warn("redisbroker: subscriber connection lost", "addr", b.addr, "err", err)
	}
}

var errStale = errors.New("connection replaced")

// confirm takes Redis's confirmation of a SUBSCRIBE or UNSUBSCRIBE. It
// reports whether the feed is restored by it. An error means the
// connection is not what the broker thinks it is, and must be dropped.
func (b *Broker) confirm(ps *redis.PubSub, s *redis.Subscription) (restored bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ps != ps {
		return false, errStale
	}
	c := b.chans[s.Channel]
	if c == nil || c.acked >= c.sent {
		return false, fmt.Errorf("unexpected confirmation %q of channel %q", s.Kind, s.Channel)
	}
	c.acked++
	subscribed := c.acked%2 == 1
	want := "unsubscribe"
	if subscribed {
		want = "subscribe"
	}
	if s.Kind != want {
		return false, fmt.Errorf("confirmation %q of channel %q where %q was expected", s.Kind, s.Channel, want)
	}
	if subscribed {
		b.active++
		if c.acked == c.subOp && !c.readyClosed {
			close(c.ready)
			c.readyClosed = true
		}
	} else {
		b.active--
	}
	if s.Count != b.active {
		return false, fmt.Errorf("Redis counts %d subscriptions on the connection, the broker %d", s.Count, b.active)
	}
	if c.n == 0 && c.acked == c.sent {
		delete(b.chans, s.Channel)
	}
	if b.initial > 0 {
		b.initial--
		return b.initial == 0 && !b.up.Load(), nil
	}
	return false, nil
}

// deliver decodes a message and hands it to the handler if its room is
// subscribed.
func (b *Broker) deliver(msg *redis.Message) {
	room, ok := strings.CutPrefix(msg.Channel, b.roomPrefix)
	if !ok {
		b.log.Warn("redisbroker: message on an unknown channel", "channel", msg.Channel)
		return
	}
	m, err := decode(room, msg.Payload)
	if err != nil {
		b.log.Warn("redisbroker: ignoring a malformed message", "room", room, "bytes", len(msg.Payload), "err", err)
		return
	}
	b.mu.Lock()
	c := b.chans[msg.Channel]
	on := c != nil && c.n > 0 && !b.closed
	b.mu.Unlock()
	if on {
		b.h.Receive(m)
	}
}

// watch is the health check of an idle subscriber connection.
func (b *Broker) watch() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.healthEvery)
	defer t.Stop()
	var last uint64
	var pinged *redis.PubSub
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		reads := b.reads.Load()
		b.mu.Lock()
		ps := b.ps
		b.mu.Unlock()
		switch {
		case ps == nil || reads != last || !b.waiting.Load():
			// Down, or traffic since the last tick, or the reader busy
			// in the handler: nothing to check.
			pinged = nil
		case pinged == ps:
			// Pinged a tick ago, nothing received since.
			b.mu.Lock()
			if b.ps == ps {
				b.killLocked(fmt.Errorf("no answer to PING within %s", b.cfg.healthEvery))
			}
			b.mu.Unlock()
			pinged = nil
		default:
			ctx, cancel := context.WithTimeout(b.ctx, writeTimeout)
			err := ps.Ping(ctx)
			cancel()
			if err != nil {
				b.mu.Lock()
				if b.ps == ps {
					b.killLocked(fmt.Errorf("PING: %w", err))
				}
				b.mu.Unlock()
			} else {
				pinged = ps
			}
		}
		last = reads
	}
}
