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
// (CLUSTER SLOTS) which primary serves which slot when it connects, and
// sends each room's SSUBSCRIBE to its slot's primary. The connections are
// up or down together: when one breaks (its primary killed, a failover,
// a slot moved away, which Redis tells with an unasked SUNSUBSCRIBE), the
// broker closes them all, calls Handler.FeedLost, and reconnects to the
// primaries the cluster names then; FeedRestored follows once every room
// is confirmed again. Rooms of a healthy shard are thus resubscribed too,
// which the hub's repair from the store covers. After a failed publish the
// publishing client reloads the slots, so that publishes reach the
// promoted replica. The single-node channel names stay as they were.
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
// primary on a cluster) and one goroutine reading each, which calls the Handler, in the order Redis sent
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
	"maps"
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

// Broker is a broker.Broker on Redis pub/sub, on one node or a Redis
// Cluster. Its methods are safe for concurrent use. Handler methods run on
// the broker's reader goroutines (one per subscriber connection): they may
// Publish, but must not call Subscribe (it waits for a reader) or Close
// (it waits for the readers to end).
type Broker struct {
	cfg        config
	h          broker.Handler
	log        *slog.Logger
	addr       string // for messages: the address, a cluster's seeds, or a Sentinel master
	roomPrefix string
	cluster    bool
	sentinel   *sentinels // nil unless on Redis Sentinel (sentinel.go)

	pub    redis.UniversalClient // PUBLISH or SPUBLISH, PING, CLUSTER SLOTS
	subOpt redis.Options         // the subscriber clients' options, but Addr

	// up is false between FeedLost and FeedRestored.
	up atomic.Bool

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	nodes  map[string]*node // subscriber clients by node address
	// links are the live subscriber connections by node address: one
	// on a single node, one per primary on a cluster; nil while down.
	// They are up or down together.
	links map[string]*link
	// owners is the address of each slot's primary, as the cluster said
	// when links were made; nil on a single node.
	owners []string
	chans  map[string]*channel
	// initial is the number of confirmations of the SUBSCRIBEs that
	// opened links still to come; the feed is restored when it reaches 0.
	initial int
}

// node is the subscriber client of one Redis node. Its dialer refuses
// every dial the broker did not ask for.
type node struct {
	client *redis.Client
	// dials is the number of dials the client may make: one per connect,
	// none for go-redis's own reconnects.
	dials atomic.Int32
}

// link is one subscriber connection.
type link struct {
	addr string
	ps   *redis.PubSub
	// active is the number of channels Redis confirmed on ps, which Redis
	// repeats in every confirmation. Guarded by Broker.mu.
	active int
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
		chans:      map[string]*channel{},
	}
	if err := b.parse(url); err != nil {
		// A *url.Error repeats the URL, password included.
		if ue, ok := errors.AsType[*neturl.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("redisbroker: invalid Redis URL: %w", err)
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
	links, _, err := b.connect(ctx)
	if err != nil {
		return fail(err)
	}
	b.up.Store(true)
	b.wg.Add(2)
	go b.run(links)
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
	if b.links != nil && c.sent%2 == 0 {
		if c.link == nil {
			c.link = b.linkForLocked(name)
		}
		if c.link == nil {
			// The slot moved since the links were made: make them again.
			b.killLocked(fmt.Errorf("the slot of channel %s is no longer served by the connected primaries", name))
		} else {
			b.sendLocked(name, c, true)
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

// linkForLocked returns the connection a channel belongs on: the one link
// of a single node, or the link to the primary of the channel's slot.
func (b *Broker) linkForLocked(name string) *link {
	if !b.cluster {
		for _, l := range b.links {
			return l
		}
		return nil
	}
	return b.links[b.owners[slot(name)]]
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
	if b.links != nil && c.sent%2 == 1 {
		b.sendLocked(name, c, false)
	}
	if c.n == 0 && c.acked == c.sent {
		delete(b.chans, name)
	}
}

// sendLocked sends SUBSCRIBE or UNSUBSCRIBE (SSUBSCRIBE or SUNSUBSCRIBE on
// a cluster) for one channel on its connection; a failed write ends the
// connections.
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
		b.killLocked(fmt.Errorf("writing to the subscriber connection: %w", err))
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

// killLocked ends the current connections; the readers notice and the
// broker reconnects.
func (b *Broker) killLocked(reason error) {
	links := b.links
	if links == nil {
		return
	}
	b.markDownLocked()
	if !b.closed {
		b.log.Warn("redisbroker: dropping the subscriber connections", "addr", b.addr, "err", reason)
	}
	for _, l := range links {
		l.ps.Close()
	}
}

// markDownLocked forgets the current connections: the channels still
// counted wait for the next ones.
func (b *Broker) markDownLocked() {
	b.links, b.owners, b.initial = nil, nil, 0
	for name, c := range b.chans {
		if c.n == 0 {
			delete(b.chans, name)
			continue
		}
		c.link, c.sent, c.acked, c.subOp = nil, 0, 0, 0
		if c.readyClosed {
			c.ready, c.readyClosed = make(chan struct{}), false
		}
	}
}

// Ping checks Redis, and that the subscriber connections are up.
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
// readers, so no Handler method runs once it returned.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	links := b.links
	b.markDownLocked()
	clear(b.chans)
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

// connect opens the subscriber connections (one, or one per primary of a
// cluster) and subscribes every counted room on them. It returns the
// number of confirmations to wait for.
func (b *Broker) connect(ctx context.Context) (map[string]*link, int, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	stop := context.AfterFunc(b.ctx, cancel)
	defer stop()

	addrs := []string{b.subOpt.Addr}
	var owners []string
	if b.cluster {
		b.reloadSlots()
		var err error
		if owners, addrs, err = b.slotOwners(ctx); err != nil {
			return nil, 0, err
		}
	} else if b.sentinel != nil {
		master, err := b.sentinel.master(ctx)
		if err != nil {
			return nil, 0, err
		}
		addrs = []string{master}
	}
	links := make(map[string]*link, len(addrs))
	closeAll := func() {
		for _, l := range links {
			l.ps.Close()
		}
	}
	for _, addr := range addrs {
		b.mu.Lock()
		n := b.nodeLocked(addr)
		b.mu.Unlock()
		ps := n.client.Subscribe(ctx) // no channels: does not dial yet
		n.dials.Store(1)
		err := ps.Ping(ctx) // dials, and the PONG is the first reply
		n.dials.Store(0)
		if err != nil {
			ps.Close()
			closeAll()
			return nil, 0, fmt.Errorf("%s: %w", addr, err)
		}
		links[addr] = &link{addr: addr, ps: ps}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		closeAll()
		return nil, 0, broker.ErrClosed
	}
	b.links, b.owners = links, owners
	// Channels grouped by connection, and on a cluster by slot: one
	// SSUBSCRIBE names channels of one slot only.
	groups := map[*link]map[int][]string{}
	count := 0
	for name, c := range b.chans {
		if c.n == 0 {
			delete(b.chans, name)
			continue
		}
		l := b.linkForLocked(name)
		c.link, c.sent, c.acked, c.subOp = l, 1, 0, 1
		k := 0
		if b.cluster {
			k = slot(name)
		}
		if groups[l] == nil {
			groups[l] = map[int][]string{}
		}
		groups[l][k] = append(groups[l][k], name)
		count++
	}
	for l, bySlot := range groups {
		for _, names := range bySlot {
			for chunk := range slices.Chunk(names, subscribeChunk) {
				if err := b.subscribe(ctx, l.ps, chunk...); err != nil {
					b.markDownLocked()
					closeAll()
					return nil, 0, err
				}
			}
		}
	}
	b.initial = count
	return links, count, nil
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

// run reads the connections until one fails, reports the loss,
// reconnects and reads again, until Close.
func (b *Broker) run(links map[string]*link) {
	defer b.wg.Done()
	for {
		var readers sync.WaitGroup
		for _, l := range links {
			readers.Add(1)
			go func() {
				defer readers.Done()
				b.read(l)
			}()
		}
		readers.Wait()
		if b.ctx.Err() != nil || b.isClosed() {
			return
		}
		if b.up.Swap(false) {
			b.h.FeedLost()
		}
		var pending int
		links, pending = b.reconnect()
		if links == nil {
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
func (b *Broker) reconnect() (map[string]*link, int) {
	delay := b.cfg.minBackoff
	for attempt := 1; ; attempt++ {
		// Full jitter between half the delay and the delay.
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-b.ctx.Done():
			return nil, 0
		case <-time.After(wait):
		}
		links, pending, err := b.connect(b.ctx)
		if err == nil {
			b.log.Info("redisbroker: subscriber connection re-established",
				"addr", b.addr, "attempts", attempt, "rooms", pending)
			return links, pending
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

// read delivers what l receives until it fails.
func (b *Broker) read(l *link) {
	for {
		l.waiting.Store(true)
		msg, err := l.ps.Receive(b.ctx)
		l.waiting.Store(false)
		l.reads.Add(1)
		if err != nil {
			b.drop(l, err)
			return
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.deliver(m)
		case *redis.Subscription:
			restored, err := b.confirm(l, m)
			if err != nil {
				b.drop(l, err)
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

// drop closes a failed connection, and the others with it: the feed is
// lost as a whole and restored as a whole.
func (b *Broker) drop(l *link, err error) {
	b.mu.Lock()
	current := b.links[l.addr] == l
	var links map[string]*link
	if current {
		links = b.links
		b.markDownLocked()
	}
	closed := b.closed
	b.mu.Unlock()
	l.ps.Close()
	for _, o := range links {
		o.ps.Close()
	}
	if current && !closed {
		b.log.Warn("redisbroker: subscriber connection lost", "addr", l.addr, "err", err)
	}
}

var errStale = errors.New("connection replaced")

// confirm takes Redis's confirmation of a SUBSCRIBE or UNSUBSCRIBE. It
// reports whether the feed is restored by it. An error means the
// connection is not what the broker thinks it is, and must be dropped: a
// cluster node that lost a slot tells its subscribers with an unasked
// SUNSUBSCRIBE, which lands here.
func (b *Broker) confirm(l *link, s *redis.Subscription) (restored bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.links[l.addr] != l {
		return false, errStale
	}
	c := b.chans[s.Channel]
	if c == nil || c.link != l || c.acked >= c.sent {
		return false, fmt.Errorf("unexpected confirmation %q of channel %q", s.Kind, s.Channel)
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
		return false, fmt.Errorf("confirmation %q of channel %q where %q was expected", s.Kind, s.Channel, want)
	}
	if subscribed {
		l.active++
		if c.acked == c.subOp && !c.readyClosed {
			close(c.ready)
			c.readyClosed = true
		}
	} else {
		l.active--
	}
	if s.Count != l.active {
		return false, fmt.Errorf("Redis counts %d subscriptions on the connection, the broker %d", s.Count, l.active)
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
	on := c != nil && c.n > 0 && !b.closed
	b.mu.Unlock()
	if on {
		b.h.Receive(m)
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

// killLink ends the connections if l is still one of them.
func (b *Broker) killLink(l *link, reason error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.links[l.addr] == l {
		b.killLocked(reason)
	}
}
