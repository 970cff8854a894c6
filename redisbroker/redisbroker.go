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
// # Redis Cluster
//
// With a redis-cluster:// URL (see [New]) the broker uses sharded pub/sub
// (Redis 7): a room's channel is prefix + "room:{" + room ID + "}", the
// room's ID being its hash tag, and a message is an SPUBLISH that only the
// primary owning the channel's slot (and its replicas) carries. The
// broker keeps one subscriber connection per primary, asks the cluster
// (CLUSTER SLOTS) which primary serves which slot, and sends each room's
// SSUBSCRIBE to its slot's primary.
//
// Each connection fails alone, and only its rooms are lost: when one
// breaks (its primary killed, a failover), its rooms wait while the broker
// asks the cluster again who serves their slots (after a failover, the
// promoted replica, at another address), connects there and subscribes
// them again. When a slot moves to another primary (resharding), its old
// owner tells its subscribers with an unasked SUNSUBSCRIBE of each of the
// slot's channels (while the slot migrates, the old owner still serves
// them): those rooms alone are lost and subscribed on the new owner. A
// primary that hands its slots to its replica (CLUSTER FAILOVER) does the
// same for all its channels. A SUBSCRIBE that reaches a primary no longer
// serving the slot is answered MOVED; its rooms wait for the next look at
// the slots. A handler that is a broker.RoomsHandler is told which rooms
// were lost and restored (RoomsLost, RoomsRestored), so that only those
// are repaired; another handler gets FeedLost when a first room is lost
// and FeedRestored when none is. After a failed publish the publishing
// client reloads the slots, so that publishes reach the promoted replica;
// a MOVED answer to a publish is followed by go-redis. The single-node
// channel names stay as they were.
//
// # Redis Sentinel
//
// With a redis-sentinel:// URL (see [New]) the broker works on the master
// the sentinels name, with the single node's channels and commands. A
// failover breaks the subscriber connection, or the sentinels announce it
// (+switch-master): either way the broker calls Handler.FeedLost, connects
// to the master the sentinels name then, and calls FeedRestored, as after
// a restart (see sentinel.go).
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
// An instance has one subscriber connection (a go-redis PubSub; one per
// primary on a cluster) and one goroutine reading each, which calls the
// Handler's Receive in the order Redis sent the messages; the Handler's
// loss and restoration calls are made, in order, by a goroutine of their
// own. Subscriptions are counted per room: the first Subscribe of
// a room sends SUBSCRIBE, the last Unsubscribe sends UNSUBSCRIBE. Subscribe
// returns once Redis confirmed the subscription, so whatever is published
// afterwards is received: the reader matches Redis's confirmations, which
// come back in the order of the commands, to the commands sent per channel,
// and checks the subscription count Redis reports against its own.
// Concurrent Subscribe calls of many rooms each wait for their own
// confirmation only. While the connection is down, Subscribe waits for it
// to come back (up to its context, and at most [WithSubscribeTimeout]).
// A repairer goroutine connects and subscribes whatever waits for a
// connection.
//
// # Loss and restore
//
// When a subscriber connection breaks (Redis stopped or restarted, the
// connection killed, a write failing, or no answer to a health-check PING
// on an idle connection, see [WithHealthCheck]), messages may have been
// lost: the broker calls Handler.FeedLost once (on a single node), then
// reconnects with backoff (at most a second apart by default), subscribes
// every room still counted on the fresh connection, and once Redis
// confirmed every room it had before calls Handler.FeedRestored. The hub
// then reads what it missed from the store; this broker, like Redis
// pub/sub, only carries news. On a cluster the same happens per
// connection, see above.
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
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	neturl "net/url"
	"slices"
	"strconv"
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
	tls              *tls.Config
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

// WithTLS sets what TLS connections to Redis trust and show, for URLs
// that ask for TLS (rediss://, rediss-cluster://, rediss-sentinel://):
// c's RootCAs (nil: the system's), and its Certificates or
// GetClientCertificate, the client certificate for a Redis that asks for
// one (as Redis does by default). The name checked in the server's
// certificate stays the URL's host. New fails when the URL does not ask
// for TLS.
func WithTLS(c *tls.Config) Option { return func(cfg *config) { cfg.tls = c } }

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

// Broker is a broker.Broker on Redis pub/sub, on one node or a Redis
// Cluster. Its methods are safe for concurrent use. Handler methods run on
// the broker's goroutines (Receive on the reader of each subscriber
// connection, the others on the reporter): they may Publish, but must not
// call Subscribe (it waits for a reader) or Close (it waits for the
// broker's goroutines to end).
type Broker struct {
	cfg        config
	h          broker.Handler
	log        *slog.Logger
	addr       string // for messages: the address, a cluster's seeds, or a Sentinel master
	roomPrefix string
	cluster    bool
	tls        bool       // the URL asks for TLS
	sentinel   *sentinels // nil unless on Redis Sentinel (sentinel.go)

	pub    redis.UniversalClient // PUBLISH or SPUBLISH, PING, CLUSTER SLOTS
	subOpt redis.Options         // the subscriber clients' options, but Addr

	// rooms is the handler as a RoomsHandler, on a cluster only: it is
	// told which rooms a loss touched.
	rooms broker.RoomsHandler

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// wake tells the repairer that channels wait for a connection;
	// reported tells the reporter that reports wait.
	wake, reported chan struct{}

	mu     sync.Mutex
	closed bool
	nodes  map[string]*node // subscriber clients by node address
	// links are the live subscriber connections by node address: the
	// one of a single node, or one per primary that the channels need
	// on a cluster. Each lives and fails on its own.
	links map[string]*link
	// owners is the address of each slot's primary, as the cluster said
	// last; nil on a single node.
	owners []string
	chans  map[string]*channel
	// lost is the number of channels lost and not restored yet; down
	// tells whether the feed is down (a channel lost, or the one
	// connection of a single node down).
	lost int
	down bool
	// reports are the handler's loss and restoration calls still to make.
	reports []report
}

// node is the subscriber client of one Redis node. Its dialer refuses
// every dial the broker did not ask for.
type node struct {
	client *redis.Client
	// dials is the number of dials the client may make: one per connect,
	// none for go-redis's own reconnects.
	dials atomic.Int32
}

// link is one subscriber connection, to one node.
type link struct {
	addr string
	ps   *redis.PubSub
	// active is the number of channels Redis confirmed on ps, which Redis
	// repeats in every confirmation. Guarded by Broker.mu.
	active int
	// movedLogged is when the node last told of a slot it no longer
	// serves with a warning in the log. Guarded by Broker.mu.
	movedLogged time.Time
	// reads counts what the reader received; waiting tells it is blocked
	// in Receive. The health check reads both.
	reads   atomic.Uint64
	waiting atomic.Bool
}

// channel is a room's channel: its counted subscriptions and the state of
// its commands on the current connection. Commands alternate, starting on
// a fresh connection with SUBSCRIBE: command k is a SUBSCRIBE iff k is odd,
// so while connected the room is subscribed (or being subscribed) iff sent
// is odd.
type channel struct {
	n     int   // counted subscriptions
	link  *link // the connection its commands go to; nil while down
	sent  int   // commands sent on the current connection
	acked int   // confirmations received for them
	subOp int   // number of the last SUBSCRIBE sent
	// ready is closed once the last SUBSCRIBE sent is confirmed.
	ready       chan struct{}
	readyClosed bool
	// lost tells that the channel was subscribed, its connection lost
	// (or its slot moved), and that it is not subscribed again yet.
	lost bool
}

var _ broker.Broker = (*Broker)(nil)

// Schemes of a cluster's URL.
const (
	clusterScheme    = "redis-cluster"
	clusterTLSScheme = "rediss-cluster"
)

// New connects to the Redis at url and returns a broker delivering to h.
// It fails if Redis cannot be reached.
//
// A single node is redis://[user:password@]host:port/db, rediss:// for
// TLS, or unix:// (see redis.ParseURL). A Redis Cluster is
// redis-cluster://[user:password@]host:port?addr=host:port&addr=...
// (rediss-cluster:// for TLS): the seed nodes, the first in the URL's host
// and more in addr parameters, and go-redis's other cluster options as
// parameters (see redis.ParseClusterURL, which reads it once the scheme is
// redis:// or rediss://). A master watched by Redis Sentinel is
// redis-sentinel://[user:password@]host:port?addr=host:port&master=NAME
// (rediss-sentinel:// for TLS), the sentinels being the host and the addr
// parameters, or go-redis's form, redis://...?master_name=NAME&addr=...
// (see parseSentinelURL). With a wrong master name New fails.
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

	b := &Broker{
		cfg:        cfg,
		h:          h,
		log:        cfg.log,
		roomPrefix: cfg.prefix + "room:",
		nodes:      map[string]*node{},
		links:      map[string]*link{},
		chans:      map[string]*channel{},
		wake:       make(chan struct{}, 1),
		reported:   make(chan struct{}, 1),
	}
	err := b.parse(url)
	if err == nil && cfg.tls != nil && !b.tls {
		err = errors.New("TLS settings are given but the URL does not ask for TLS (rediss://, rediss-cluster:// or rediss-sentinel://)")
	}
	if err != nil {
		// A *url.Error repeats the URL, password included.
		if ue, ok := errors.AsType[*neturl.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("redisbroker: invalid Redis URL: %w", err)
	}
	if rh, ok := h.(broker.RoomsHandler); ok && b.cluster {
		b.rooms = rh
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())

	fail := func(err error) (*Broker, error) {
		b.cancel()
		b.pub.Close()
		b.closeNodes()
		b.sentinel.close()
		return nil, fmt.Errorf("redisbroker: cannot reach Redis at %s: %w", b.addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if b.sentinel != nil {
		// Before the publisher's PING, whose error would not say why.
		if _, err := b.sentinel.master(pctx); err != nil {
			return fail(err)
		}
	}
	if err := b.pub.Ping(pctx).Err(); err != nil {
		return fail(err)
	}
	if err := b.connect(ctx); err != nil {
		return fail(err)
	}
	b.wg.Add(3)
	go b.repair()
	go b.report()
	go b.watch()
	if b.sentinel != nil {
		b.wg.Add(1)
		go b.followSentinels()
	}
	return b, nil
}

// parse reads url into the publishing client and the subscriber clients'
// options.
func (b *Broker) parse(url string) error {
	if fo, ok, err := parseSentinelURL(url); ok {
		if err != nil {
			return err
		}
		b.useSentinel(fo)
		return nil
	}
	scheme, rest, _ := strings.Cut(url, "://")
	if scheme != clusterScheme && scheme != clusterTLSScheme {
		// Two option sets, parsed separately: they are adjusted differently.
		pubOpt, err := redis.ParseURL(url)
		if err != nil {
			return err
		}
		subOpt, _ := redis.ParseURL(url)
		b.secure(pubOpt.TLSConfig)
		b.secure(subOpt.TLSConfig)
		// A publish is news: not retried (Redis may have run it already),
		// and bounded by its context.
		if pubOpt.MaxRetries == 0 {
			pubOpt.MaxRetries = -1
		}
		if pubOpt.DialerRetries == 0 {
			pubOpt.DialerRetries = 1
		}
		pubOpt.ContextTimeoutEnabled = true
		b.addr = pubOpt.Addr
		b.pub = redis.NewClient(pubOpt)
		b.subOpt = *subOpt
		return nil
	}
	base := "redis://"
	if scheme == clusterTLSScheme {
		base = "rediss://"
	}
	copt, err := redis.ParseClusterURL(base + rest)
	if err != nil {
		return err
	}
	b.secure(copt.TLSConfig)
	if copt.MaxRetries == 0 {
		copt.MaxRetries = -1
	}
	if copt.DialerRetries == 0 {
		copt.DialerRetries = 1
	}
	copt.ContextTimeoutEnabled = true
	b.cluster = true
	b.addr = strings.Join(copt.Addrs, ",")
	b.subOpt = redis.Options{
		Protocol:     copt.Protocol,
		Username:     copt.Username,
		Password:     copt.Password,
		DialTimeout:  copt.DialTimeout,
		ReadTimeout:  copt.ReadTimeout,
		WriteTimeout: copt.WriteTimeout,
		TLSConfig:    copt.TLSConfig,
	}
	b.pub = redis.NewClusterClient(copt)
	return nil
}

// secure notes that the URL asks for TLS when c, the TLS settings parsed
// from it, is not nil, and puts WithTLS's roots and client certificate
// into c.
func (b *Broker) secure(c *tls.Config) {
	if c == nil {
		return
	}
	b.tls = true
	if t := b.cfg.tls; t != nil {
		c.RootCAs, c.Certificates, c.GetClientCertificate = t.RootCAs, t.Certificates, t.GetClientCertificate
	}
}

// nodeLocked returns the subscriber client of the node at addr, made on
// first use.
func (b *Broker) nodeLocked(addr string) *node {
	if n := b.nodes[addr]; n != nil {
		return n
	}
	n := &node{}
	o := b.subOpt
	if b.cluster || b.sentinel != nil {
		o.Addr = addr
	}
	o.ContextTimeoutEnabled = true
	if o.DialTimeout <= 0 {
		o.DialTimeout = connectTimeout
	}
	dial := redis.NewDialer(&o)
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !n.dials.CompareAndSwap(1, 0) {
			return nil, errors.New("redisbroker: subscriber connection lost (the broker reconnects it, not go-redis)")
		}
		return dial(ctx, network, addr)
	}
	n.client = redis.NewClient(&o)
	b.nodes[addr] = n
	return n
}

func (b *Broker) closeNodes() {
	b.mu.Lock()
	nodes := b.nodes
	b.nodes = map[string]*node{}
	b.mu.Unlock()
	for _, n := range nodes {
		n.client.Close()
	}
}

// channelName returns the room's channel. On a cluster the room's ID is
// the channel's hash tag, so that whatever the broker names after a room
// hashes to the room's slot.
func (b *Broker) channelName(room string) string {
	if b.cluster {
		return b.roomPrefix + "{" + room + "}"
	}
	return b.roomPrefix + room
}

// roomOf returns the room of a channel name.
func (b *Broker) roomOf(name string) (string, bool) {
	room, ok := strings.CutPrefix(name, b.roomPrefix)
	if !ok || !b.cluster {
		return room, ok
	}
	room, ok = strings.CutPrefix(room, "{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(room, "}")
}

// Publish sends m on its room's channel (SPUBLISH on a cluster, to the
// shard that owns the channel's slot).
func (b *Broker) Publish(ctx context.Context, m broker.Message) error {
	if b.isClosed() {
		return broker.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.publishTimeout)
	defer cancel()
	var err error
	if b.cluster {
		err = b.pub.SPublish(ctx, b.channelName(m.Room), encode(m)).Err()
	} else {
		err = b.pub.Publish(ctx, b.channelName(m.Room), encode(m)).Err()
	}
	if err != nil {
		if b.isClosed() {
			return broker.ErrClosed
		}
		b.reloadSlots()
		return fmt.Errorf("redisbroker: publish to room %s: %w", m.Room, err)
	}
	return nil
}

// reloadSlots has the cluster client ask again which primary serves which
// slot (in the background): after a failover it would otherwise keep
// sending a shard's publishes to the dead primary until its periodic
// reload.
func (b *Broker) reloadSlots() {
	if cc, ok := b.pub.(*redis.ClusterClient); ok {
		cc.ReloadState(b.ctx)
	}
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
	if c.sent%2 == 0 {
		if c.link == nil {
			c.link = b.links[b.ownerLocked(name)]
		}
		if c.link != nil {
			b.sendLocked(name, c, true)
		} else {
			// Its node's connection is down, or its slot's primary not
			// connected yet: the repairer subscribes it.
			b.wakeLocked()
		}
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

// ownerLocked returns the address of the node a channel belongs on: the
// primary of the channel's slot as last learned on a cluster, or else the
// node of the one connection ("" while it is down).
func (b *Broker) ownerLocked(name string) string {
	if b.cluster {
		return b.owners[slot(name)]
	}
	for addr := range b.links {
		return addr
	}
	return ""
}

// nodeAddr returns the address of the node off a cluster: the URL's, or
// the master the sentinels name now.
func (b *Broker) nodeAddr(ctx context.Context) (string, error) {
	if b.sentinel != nil {
		return b.sentinel.master(ctx)
	}
	return b.subOpt.Addr, nil
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
	if c.link != nil && c.sent%2 == 1 {
		b.sendLocked(name, c, false)
	}
	if c.acked == c.sent {
		b.forgetLocked(name, c)
	}
}

// forgetLocked removes a channel nobody subscribes and Redis owes no
// confirmation for. A lost room that is forgotten is not restored.
func (b *Broker) forgetLocked(name string, c *channel) {
	delete(b.chans, name)
	if c.lost {
		c.lost = false
		b.lost--
		b.updateFeedLocked()
	}
}

// sendLocked sends SUBSCRIBE or UNSUBSCRIBE (SSUBSCRIBE or SUNSUBSCRIBE on
// a cluster) for one channel on its connection; a failed write ends the
// connection.
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
		err = b.subscribe(ctx, c.link.ps, name)
	} else if b.cluster {
		err = c.link.ps.SUnsubscribe(ctx, name)
	} else {
		err = c.link.ps.Unsubscribe(ctx, name)
	}
	if err != nil {
		b.killLocked(c.link, fmt.Errorf("writing to the subscriber connection: %w", err))
	}
}

// subscribe sends one SUBSCRIBE (SSUBSCRIBE on a cluster, whose channels
// must then share a slot).
func (b *Broker) subscribe(ctx context.Context, ps *redis.PubSub, names ...string) error {
	if b.cluster {
		return ps.SSubscribe(ctx, names...)
	}
	return ps.Subscribe(ctx, names...)
}

// killLocked ends a connection if it is still a current one; its reader
// notices and drops it.
func (b *Broker) killLocked(l *link, reason error) {
	if b.links[l.addr] != l {
		return
	}
	if !b.closed {
		b.log.Warn("redisbroker: dropping a subscriber connection", "addr", l.addr, "err", reason)
	}
	l.ps.Close()
}

// Ping checks Redis, and that no subscription waits for its connection.
func (b *Broker) Ping(ctx context.Context) error {
	if b.isClosed() {
		return broker.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.publishTimeout)
	defer cancel()
	if err := b.pub.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisbroker: ping %s: %w", b.addr, err)
	}
	b.mu.Lock()
	down, lost := b.down, b.lost
	b.mu.Unlock()
	if down {
		if b.cluster {
			return fmt.Errorf("redisbroker: %d rooms wait for their shard's subscriber connection at %s, reconnecting", lost, b.addr)
		}
		return fmt.Errorf("redisbroker: the subscriber connection to %s is down, reconnecting", b.addr)
	}
	return nil
}

// Close ends the subscriptions and the connections. It waits for the
// broker's goroutines, so no Handler method runs once it returned.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	links := b.links
	b.links = map[string]*link{}
	clear(b.chans)
	b.reports = nil
	b.mu.Unlock()
	b.cancel()
	for _, l := range links {
		l.ps.Close()
	}
	b.wg.Wait()
	err := ignoreClosed(b.pub.Close())
	b.closeNodes()
	b.sentinel.close()
	return err
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

// connect opens the first subscriber connections: to the node (the
// master the sentinels name), or to every primary of a cluster.
func (b *Broker) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var addrs []string
	if !b.cluster {
		addr, err := b.nodeAddr(ctx)
		if err != nil {
			return err
		}
		addrs = []string{addr}
	} else {
		owners, primaries, err := b.slotOwners(ctx)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.owners = owners
		b.mu.Unlock()
		addrs = primaries
	}
	var links []*link
	for _, addr := range addrs {
		l, err := b.dial(ctx, addr)
		if err != nil {
			for _, l := range links {
				l.ps.Close()
			}
			return err
		}
		links = append(links, l)
	}
	for _, l := range links {
		b.start(l)
	}
	return nil
}

// dial opens a subscriber connection to the node at addr.
func (b *Broker) dial(ctx context.Context, addr string) (*link, error) {
	b.mu.Lock()
	n := b.nodeLocked(addr)
	b.mu.Unlock()
	ps := n.client.Subscribe(ctx) // no channels: does not dial yet
	n.dials.Store(1)
	err := ps.Ping(ctx) // dials, and the PONG is the first reply
	n.dials.Store(0)
	if err != nil {
		ps.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return &link{addr: addr, ps: ps}, nil
}

// start makes l the connection to its node and starts its reader, unless
// the broker is closed or has a connection there already.
func (b *Broker) start(l *link) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.links[l.addr] != nil {
		l.ps.Close()
		return
	}
	b.links[l.addr] = l
	b.updateFeedLocked()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.read(l)
	}()
}

// slotOwners asks the cluster which primary serves each slot. It fails
// if a slot has none.
func (b *Broker) slotOwners(ctx context.Context) (owners, primaries []string, err error) {
	ranges, err := b.pub.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	owners = make([]string, slotCount)
	for _, r := range ranges {
		if len(r.Nodes) == 0 || r.Start < 0 || r.End >= slotCount {
			continue
		}
		addr := r.Nodes[0].Addr
		if !slices.Contains(primaries, addr) {
			primaries = append(primaries, addr)
		}
		for s := r.Start; s <= r.End; s++ {
			owners[s] = addr
		}
	}
	if i := slices.Index(owners, ""); i >= 0 {
		return nil, nil, fmt.Errorf("slot %d is served by no primary", i)
	}
	return owners, primaries, nil
}

// wakeLocked tells the repairer that a subscription waits for a
// connection.
func (b *Broker) wakeLocked() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// repair subscribes the channels that wait for a connection, connecting
// to their nodes first, with backoff, whenever it is woken, until Close.
func (b *Broker) repair() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
		}
		delay := b.cfg.minBackoff
		for attempt := 1; ; attempt++ {
			// Full jitter between half the delay and the delay: several
			// instances do not come back at once, and what breaks together
			// (the channels of one slot) is repaired together.
			wait := delay/2 + rand.N(delay/2+1)
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(wait):
			}
			placed, err := b.place(b.ctx)
			if err == nil {
				if attempt > 1 || placed > 0 {
					b.log.Info("redisbroker: subscribed the rooms that waited for a connection",
						"addr", b.addr, "attempts", attempt, "rooms", placed)
				}
				break
			}
			if b.ctx.Err() != nil {
				return
			}
			level := slog.LevelDebug
			if attempt == 1 || attempt%30 == 0 {
				level = slog.LevelWarn
			}
			b.log.Log(b.ctx, level, "redisbroker: cannot reconnect a subscriber connection",
				"addr", b.addr, "attempt", attempt, "err", err)
			delay = min(2*delay, b.cfg.maxBackoff)
		}
	}
}

// place subscribes every channel that has no connection on the node that
// serves it now (on a cluster, asking the cluster which primary serves
// which slot), connecting to the nodes it lacks. It returns the number of
// channels it subscribed, and an error if some still wait.
func (b *Broker) place(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if b.cluster {
		b.reloadSlots()
		owners, _, err := b.slotOwners(ctx)
		if err != nil {
			return 0, err
		}
		b.mu.Lock()
		b.owners = owners
		b.mu.Unlock()
	}
	dialErr := b.connectMissing(ctx)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, broker.ErrClosed
	}
	placed, waiting := b.subscribeWaitingLocked()
	switch {
	case dialErr != nil:
		return placed, dialErr
	case waiting > 0:
		return placed, fmt.Errorf("%d rooms wait for a connection", waiting)
	}
	return placed, nil
}

// connectMissing connects to the nodes that waiting channels need (off a
// cluster, to the node if the connection is down). It returns the first
// error, having tried every node: the channels of the others need not
// wait for one.
func (b *Broker) connectMissing(ctx context.Context) error {
	b.mu.Lock()
	need := map[string]bool{}
	down := !b.cluster && len(b.links) == 0
	for name, c := range b.chans {
		if addr := b.ownerLocked(name); b.cluster && c.n > 0 && c.link == nil && b.links[addr] == nil {
			need[addr] = true
		}
	}
	b.mu.Unlock()
	if down {
		addr, err := b.nodeAddr(ctx)
		if err != nil {
			return err
		}
		need[addr] = true
	}
	var first error
	for addr := range need {
		l, err := b.dial(ctx, addr)
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		b.start(l)
	}
	return first
}

// subscribeWaitingLocked subscribes every channel without a connection on
// its node's connection, if there is one. It returns the number of
// channels subscribed and of those still waiting.
func (b *Broker) subscribeWaitingLocked() (placed, waiting int) {
	// Channels grouped by connection, and on a cluster by slot: one
	// SSUBSCRIBE names channels of one slot only.
	groups := map[*link]map[int][]string{}
	for name, c := range b.chans {
		if c.n == 0 || c.link != nil {
			continue
		}
		l := b.links[b.ownerLocked(name)]
		if l == nil { // connection lost again meanwhile
			waiting++
			continue
		}
		c.link, c.sent, c.acked, c.subOp = l, 1, 0, 1
		k := 0
		if b.cluster {
			k = slot(name)
		}
		if groups[l] == nil {
			groups[l] = map[int][]string{}
		}
		groups[l][k] = append(groups[l][k], name)
		placed++
	}
	for l, bySlot := range groups {
	send:
		for _, names := range bySlot {
			for chunk := range slices.Chunk(names, subscribeChunk) {
				ctx, cancel := context.WithTimeout(b.ctx, writeTimeout)
				err := b.subscribe(ctx, l.ps, chunk...)
				cancel()
				if err != nil {
					// The reader drops the connection and its channels
					// wait again.
					b.killLocked(l, fmt.Errorf("writing to the subscriber connection: %w", err))
					break send
				}
			}
		}
	}
	return placed, waiting
}

// read delivers what l receives until it fails.
func (b *Broker) read(l *link) {
	for {
		l.waiting.Store(true)
		msg, err := l.ps.Receive(b.ctx)
		l.waiting.Store(false)
		l.reads.Add(1)
		if err != nil {
			if b.moved(l, err) {
				continue
			}
			b.drop(l, err)
			return
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.deliver(l, m)
		case *redis.Subscription:
			if err := b.confirm(l, m); err != nil {
				b.drop(l, err)
				return
			}
		case *redis.Pong:
		default:
			b.log.Warn("redisbroker: unexpected reply on the subscriber connection", "type", fmt.Sprintf("%T", msg))
		}
	}
}

// drop forgets a failed connection: its channels are lost and wait for
// the repairer. Other connections are left alone.
func (b *Broker) drop(l *link, err error) {
	b.mu.Lock()
	if b.links[l.addr] == l {
		delete(b.links, l.addr)
		var lost []string
		for name, c := range b.chans {
			if c.link == l && b.resetLocked(name, c) {
				lost = append(lost, name)
			}
		}
		if !b.closed {
			b.log.Warn("redisbroker: subscriber connection lost", "addr", l.addr, "rooms", len(lost), "err", err)
		}
		b.lostLocked(lost)
		b.updateFeedLocked()
		b.wakeLocked()
	}
	b.mu.Unlock()
	l.ps.Close()
}

// resetLocked takes a channel off its connection, to wait for the
// repairer. It reports whether the channel is newly lost: subscribed and
// confirmed before, so that messages may have been missed.
func (b *Broker) resetLocked(name string, c *channel) (lost bool) {
	if c.n == 0 {
		b.forgetLocked(name, c)
		return false
	}
	if c.readyClosed && !c.lost {
		c.lost = true
		b.lost++
		lost = true
	}
	c.link, c.sent, c.acked, c.subOp = nil, 0, 0, 0
	if c.readyClosed {
		c.ready, c.readyClosed = make(chan struct{}), false
	}
	return lost
}

// moved takes a MOVED error from l: a SUBSCRIBE sent to a primary that no
// longer serves the slot (the broker's map of slots was older than the
// move). The channels of that slot waiting for a confirmation on l wait
// for the repairer instead, which asks the cluster again. It reports
// whether err was such an error.
func (b *Broker) moved(l *link, err error) bool {
	var rerr redis.Error
	if !b.cluster || !errors.As(err, &rerr) {
		return false
	}
	f := strings.Fields(rerr.Error())
	if len(f) != 3 || f[0] != "MOVED" {
		return false
	}
	s, perr := strconv.Atoi(f[1])
	if perr != nil || s < 0 || s >= slotCount {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.links[l.addr] != l {
		return true // dropped already
	}
	var lost []string
	for name, c := range b.chans {
		if c.link == l && c.acked < c.sent && slot(name) == s {
			if b.resetLocked(name, c) {
				lost = append(lost, name)
			}
		}
	}
	b.log.Debug("redisbroker: a subscription was sent to a primary that no longer serves its slot",
		"addr", l.addr, "slot", s, "owner", f[2])
	b.lostLocked(lost)
	b.updateFeedLocked()
	b.wakeLocked()
	return true
}

var errStale = errors.New("connection replaced")

// confirm takes Redis's confirmation of a SUBSCRIBE or UNSUBSCRIBE, and a
// cluster node's unasked SUNSUBSCRIBE of a channel whose slot it no
// longer serves (the slot moved to another primary): that channel is
// lost and waits for the repairer. An error means the connection is not
// what the broker thinks it is, and must be dropped.
func (b *Broker) confirm(l *link, s *redis.Subscription) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.links[l.addr] != l {
		return errStale
	}
	c := b.chans[s.Channel]
	if b.cluster && s.Kind == "sunsubscribe" && c != nil && c.link == l && c.sent%2 == 1 && c.acked == c.sent {
		l.active--
		if s.Count != l.active {
			return fmt.Errorf("Redis counts %d subscriptions on the connection, the broker %d", s.Count, l.active)
		}
		// One line per channel would be thousands when a primary hands
		// all its slots to its replica (a manual failover).
		level := slog.LevelDebug
		if now := time.Now(); now.Sub(l.movedLogged) > 10*time.Second {
			level, l.movedLogged = slog.LevelWarn, now
		}
		b.log.Log(b.ctx, level, "redisbroker: a room's slot is no longer served by this primary (a slot moved, a failover); resubscribing its rooms where it is served now",
			"addr", l.addr, "channel", s.Channel)
		if b.resetLocked(s.Channel, c) {
			b.lostLocked([]string{s.Channel})
		}
		b.updateFeedLocked()
		b.wakeLocked()
		return nil
	}
	if c == nil || c.link != l || c.acked >= c.sent {
		return fmt.Errorf("unexpected confirmation %q of channel %q", s.Kind, s.Channel)
	}
	c.acked++
	subscribed := c.acked%2 == 1
	want := "unsubscribe"
	if subscribed {
		want = "subscribe"
	}
	if b.cluster {
		want = "s" + want
	}
	if s.Kind != want {
		return fmt.Errorf("confirmation %q of channel %q where %q was expected", s.Kind, s.Channel, want)
	}
	if subscribed {
		l.active++
		if c.acked == c.subOp && !c.readyClosed {
			close(c.ready)
			c.readyClosed = true
			if c.lost {
				c.lost = false
				b.lost--
				b.queueLocked(roomsRestored, s.Channel)
				b.updateFeedLocked()
			}
		}
	} else {
		l.active--
	}
	if s.Count != l.active {
		return fmt.Errorf("Redis counts %d subscriptions on the connection, the broker %d", s.Count, l.active)
	}
	if c.n == 0 && c.acked == c.sent {
		b.forgetLocked(s.Channel, c)
	}
	return nil
}

// deliver decodes a message that l received and hands it to the handler
// if its room is subscribed on l, confirmed, with no UNSUBSCRIBE sent
// since. Messages come on a connection in order with its confirmations:
// one that arrives after an UNSUBSCRIBE was sent and before it is
// confirmed belongs to the subscription that was ended, even when the room
// was subscribed again meanwhile (the new subscription starts at its own
// confirmation, and what it missed is read from the store).
func (b *Broker) deliver(l *link, msg *redis.Message) {
	room, ok := b.roomOf(msg.Channel)
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
	on := c != nil && c.n > 0 && !b.closed && c.link == l && c.acked == c.sent && c.acked%2 == 1
	b.mu.Unlock()
	if on {
		b.h.Receive(m)
	}
}

// A report is a call of the handler about loss and restoration, made by
// the reporter goroutine in the order the broker decided them.
type report struct {
	kind     reportKind
	channels []string // for roomsLost and roomsRestored
}

type reportKind int

const (
	feedLost reportKind = iota
	feedRestored
	roomsLost
	roomsRestored
)

// lostLocked reports newly lost channels to a RoomsHandler; for another
// handler, updateFeedLocked reports the feed lost.
func (b *Broker) lostLocked(channels []string) {
	if len(channels) > 0 {
		b.queueLocked(roomsLost, channels...)
	}
}

// updateFeedLocked notes whether the feed is down (a lost channel waits,
// or the one connection of a single node is down) and, for a handler
// that is not a RoomsHandler, reports the change.
func (b *Broker) updateFeedLocked() {
	down := b.lost > 0 || !b.cluster && len(b.links) == 0
	if down == b.down {
		return
	}
	b.down = down
	if down {
		b.queueLocked(feedLost)
	} else {
		b.queueLocked(feedRestored)
	}
}

// queueLocked queues a report for the reporter; the rooms reports go to
// a RoomsHandler only, the feed reports to another handler only. Channels
// join the last report if it is of the same kind.
func (b *Broker) queueLocked(kind reportKind, channels ...string) {
	forRooms := kind == roomsLost || kind == roomsRestored
	if b.closed || forRooms != (b.rooms != nil) {
		return
	}
	if n := len(b.reports); n > 0 && forRooms && b.reports[n-1].kind == kind {
		b.reports[n-1].channels = append(b.reports[n-1].channels, channels...)
	} else {
		b.reports = append(b.reports, report{kind: kind, channels: channels})
	}
	select {
	case b.reported <- struct{}{}:
	default:
	}
}

// report makes the handler's loss and restoration calls, in order, until
// Close.
func (b *Broker) report() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.reported:
		}
		b.mu.Lock()
		reports := b.reports
		b.reports = nil
		b.mu.Unlock()
		for _, r := range reports {
			if b.ctx.Err() != nil {
				return
			}
			b.call(r)
		}
	}
}

func (b *Broker) call(r report) {
	switch r.kind {
	case feedLost:
		b.h.FeedLost()
	case feedRestored:
		b.log.Info("redisbroker: subscriptions restored", "addr", b.addr)
		b.h.FeedRestored()
	case roomsLost, roomsRestored:
		rooms := make([]string, 0, len(r.channels))
		for _, name := range r.channels {
			if room, ok := b.roomOf(name); ok {
				rooms = append(rooms, room)
			}
		}
		if r.kind == roomsLost {
			b.rooms.RoomsLost(rooms)
		} else {
			b.log.Info("redisbroker: subscriptions restored", "addr", b.addr, "rooms", len(rooms))
			b.rooms.RoomsRestored(rooms)
		}
	}
}

// watch is the health check of idle subscriber connections.
func (b *Broker) watch() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.healthEvery)
	defer t.Stop()
	last := map[*link]uint64{}
	pinged := map[*link]bool{}
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		links := slices.Collect(maps.Values(b.links))
		b.mu.Unlock()
		seen := map[*link]uint64{}
		for _, l := range links {
			reads := l.reads.Load()
			seen[l] = reads
			if prev, ok := last[l]; !ok || reads != prev || !l.waiting.Load() {
				// New, or traffic since the last tick, or the reader busy
				// in the handler: nothing to check.
				delete(pinged, l)
				continue
			}
			if pinged[l] {
				// Pinged a tick ago, nothing received since.
				b.killLink(l, fmt.Errorf("no answer to PING from %s within %s", l.addr, b.cfg.healthEvery))
				delete(pinged, l)
				continue
			}
			ctx, cancel := context.WithTimeout(b.ctx, writeTimeout)
			err := l.ps.Ping(ctx)
			cancel()
			if err != nil {
				b.killLink(l, fmt.Errorf("PING %s: %w", l.addr, err))
			} else {
				pinged[l] = true
			}
		}
		last = seen
		for l := range pinged {
			if _, ok := seen[l]; !ok {
				delete(pinged, l)
			}
		}
	}
}

// killLink ends l if it is still a current connection.
func (b *Broker) killLink(l *link, reason error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.killLocked(l, reason)
}
