package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis Sentinel
//
// With a Sentinel URL the broker works on the master that the sentinels
// name, with the single node's channels and commands (PUBLISH, SUBSCRIBE).
// Publishing goes through go-redis's failover client, which asks the
// sentinels for the master when it dials and drops its connections to a
// master they replaced. The subscriber connection is the broker's own,
// dialed to the address the sentinels name, so that a failover is seen
// and reported like any other loss. (go-redis's failover client would
// hide which node it is on, and it hands its dialer and its OnConnect
// hook to its connections to the sentinels too, so the subscriber's
// dialer, which refuses the dials the broker did not ask for, cannot be
// given to it.)
//
//   - the master dies: the subscriber connection breaks, the broker calls
//     Handler.FeedLost and asks the sentinels again (with backoff) until
//     they name the promoted replica, subscribes there, and calls
//     FeedRestored;
//   - the master is replaced while the connection stays up (a manual
//     failover, a partition between the master and the sentinels): the
//     broker follows the sentinels' +switch-master announcements (one
//     sentinel at a time, asked for the master again when it has been
//     silent for [WithHealthCheck]'s interval) and drops the connection to
//     a master that is no longer theirs, which leads to the same;
//   - a sentinel still names the old master for a moment after a
//     failover: every connection, the publisher's and the subscriber's,
//     checks with ROLE that its node is a master, and one that is not is
//     refused and dialed again;
//   - the old master lives on after a failover: go-redis's failover
//     client moves the publisher when the sentinel it follows announces
//     the switch, which may be a moment after the subscriber moved, and
//     until the sentinels demote the old master it takes publishes. Those
//     are lost, as news may be: the hub's head check finds the gap.

// Schemes of a Sentinel URL.
const (
	sentinelScheme    = "redis-sentinel"
	sentinelTLSScheme = "rediss-sentinel"
)

// parseSentinelURL reads a Sentinel URL into go-redis's failover options.
// ok is false when url is not one (it is then a single node's or a
// cluster's). Two forms are Sentinel URLs:
//
//	redis-sentinel://[user:password@]host:port?addr=host:port&master=NAME
//	redis://[user:password@]host:port?addr=host:port&master_name=NAME
//
// (rediss-sentinel:// and rediss:// for TLS): the second is the one
// redis.ParseFailoverURL reads, and the first is read by it once the
// scheme is redis:// or rediss:// and master is spelled master_name. The
// sentinels are the URL's host and the addr parameters. As in
// redis.ParseFailoverURL, the user and password before the host are the
// sentinels'; the master's are the username and password parameters; the
// database is db=N or the path.
func parseSentinelURL(url string) (opt *redis.FailoverOptions, ok bool, err error) {
	scheme, _, _ := strings.Cut(url, "://")
	switch scheme {
	case sentinelScheme, sentinelTLSScheme:
		u, err := neturl.Parse(url)
		if err != nil {
			return nil, true, err
		}
		q := u.Query()
		if q.Has("master") {
			if q.Has("master_name") {
				return nil, true, errors.New("both master and master_name are given")
			}
			q["master_name"] = q["master"]
			delete(q, "master")
		}
		u.RawQuery = q.Encode()
		u.Scheme = "redis"
		if scheme == sentinelTLSScheme {
			u.Scheme = "rediss"
		}
		url = u.String()
	case "redis", "rediss":
		u, err := neturl.Parse(url)
		if err != nil || !u.Query().Has("master_name") {
			return nil, false, nil // a single node's, or its parser says what is wrong
		}
	default:
		return nil, false, nil
	}
	opt, err = redis.ParseFailoverURL(url)
	if err != nil {
		return nil, true, err
	}
	if opt.MasterName == "" {
		return nil, true, errors.New("the master's name is missing: add master=NAME")
	}
	return opt, true, nil
}

// useSentinel sets the broker up for the master the sentinels of fo
// name.
func (b *Broker) useSentinel(fo *redis.FailoverOptions) {
	b.secure(fo.TLSConfig)
	pubOpt := *fo
	// As on a single node: a publish is news, not retried, and bounded by
	// its context.
	if pubOpt.MaxRetries == 0 {
		pubOpt.MaxRetries = -1
	}
	if pubOpt.DialerRetries == 0 {
		pubOpt.DialerRetries = 1
	}
	pubOpt.ContextTimeoutEnabled = true
	pubOpt.OnConnect = requireMaster
	b.pub = redis.NewFailoverClient(&pubOpt)
	b.subOpt = redis.Options{
		Protocol:     fo.Protocol,
		Username:     fo.Username,
		Password:     fo.Password,
		DB:           fo.DB,
		DialTimeout:  fo.DialTimeout,
		ReadTimeout:  fo.ReadTimeout,
		WriteTimeout: fo.WriteTimeout,
		TLSConfig:    fo.TLSConfig,
		OnConnect:    requireMaster,
	}
	b.sentinel = &sentinels{opt: fo, addrs: slices.Clone(fo.SentinelAddrs), clients: map[string]*redis.SentinelClient{}}
	b.addr = fmt.Sprintf("master %q of Sentinel %s", fo.MasterName, strings.Join(fo.SentinelAddrs, ","))
}

// requireMaster refuses a connection to a replica: a sentinel may name
// the old master for a moment after a failover. go-redis runs it on its
// connections to the sentinels too, which it lets through. A user whose
// ACL forbids ROLE is let through unchecked.
func requireMaster(ctx context.Context, cn *redis.Conn) error {
	role, err := cn.Do(ctx, "ROLE").Slice()
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOPERM") {
			return nil
		}
		return fmt.Errorf("ROLE: %w", err)
	}
	var r any
	if len(role) > 0 {
		r = role[0]
	}
	if r != "master" && r != "sentinel" {
		return fmt.Errorf("the node's role is %v, not master: the sentinels have not caught up", r)
	}
	return nil
}

// sentinels are the sentinels a broker asks, with a client for each.
type sentinels struct {
	opt *redis.FailoverOptions

	mu sync.Mutex
	// addrs in the order to ask them: the one that answered last first.
	addrs   []string
	clients map[string]*redis.SentinelClient
	closed  bool
}

// sentinelAsk bounds one question to one sentinel.
const sentinelAsk = 2 * time.Second

// client returns the client of the sentinel at addr, made on first use;
// nil once closed.
func (s *sentinels) client(addr string) *redis.SentinelClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	c := s.clients[addr]
	if c == nil {
		c = redis.NewSentinelClient(&redis.Options{
			Addr:                  addr,
			Username:              s.opt.SentinelUsername,
			Password:              s.opt.SentinelPassword,
			TLSConfig:             s.opt.TLSConfig,
			DialTimeout:           sentinelAsk,
			DialerRetries:         1,
			MaxRetries:            -1,
			ContextTimeoutEnabled: true,
		})
		s.clients[addr] = c
	}
	return c
}

func (s *sentinels) order() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

// prefer moves addr to the front (it answered) or to the back (it did
// not).
func (s *sentinels) prefer(addr string, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.addrs, addr)
	if i < 0 {
		return
	}
	s.addrs = slices.Delete(s.addrs, i, i+1)
	if first {
		s.addrs = slices.Insert(s.addrs, 0, addr)
	} else {
		s.addrs = append(s.addrs, addr)
	}
}

// master asks the sentinels in turn for the master's address, and returns
// the first answer.
func (s *sentinels) master(ctx context.Context) (string, error) {
	var errs []error
	unknown := false
	for _, addr := range s.order() {
		c := s.client(addr)
		if c == nil {
			return "", errors.New("closed")
		}
		actx, cancel := context.WithTimeout(ctx, sentinelAsk)
		a, err := c.GetMasterAddrByName(actx, s.opt.MasterName).Result()
		cancel()
		if err == nil && len(a) == 2 {
			s.prefer(addr, true)
			return net.JoinHostPort(a[0], a[1]), nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if errors.Is(err, redis.Nil) {
			unknown = true
			err = errors.New("no such master")
		}
		errs = append(errs, fmt.Errorf("Sentinel %s: %w", addr, err))
		s.prefer(addr, false)
	}
	if unknown {
		return "", fmt.Errorf("no Sentinel knows a master named %q (%w)", s.opt.MasterName, errors.Join(errs...))
	}
	return "", fmt.Errorf("no Sentinel answers: %w", errors.Join(errs...))
}

// close closes the sentinels' clients. It does nothing on a nil
// receiver, which is not a Sentinel broker.
func (s *sentinels) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	clients := s.clients
	s.clients, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
}

// followSentinels listens to the sentinels' +switch-master announcements,
// one sentinel at a time, moving to the next when it fails, until Close.
func (b *Broker) followSentinels() {
	defer b.wg.Done()
	delay := b.cfg.minBackoff
	for {
		addr := b.sentinel.order()[0]
		heard, err := b.followSentinel(addr)
		if b.ctx.Err() != nil {
			return
		}
		if heard {
			delay = b.cfg.minBackoff
		}
		b.log.Debug("redisbroker: lost the Sentinel's announcements, trying the next one", "sentinel", addr, "err", err)
		b.sentinel.prefer(addr, false)
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(delay/2 + rand.N(delay/2+1)):
		}
		delay = min(2*delay, b.cfg.maxBackoff)
	}
}

// followSentinel listens to one sentinel until its connection fails. It
// reports whether it got as far as asking the sentinel for the master.
func (b *Broker) followSentinel(addr string) (heard bool, err error) {
	c := b.sentinel.client(addr)
	if c == nil {
		return false, errors.New("closed")
	}
	ps := c.Subscribe(b.ctx) // no channel yet: does not dial
	defer ps.Close()
	stop := context.AfterFunc(b.ctx, func() { ps.Close() })
	defer stop()
	ctx, cancel := context.WithTimeout(b.ctx, connectTimeout)
	err = ps.Subscribe(ctx, "+switch-master")
	cancel()
	if err != nil {
		return false, err
	}
	// What was announced while no sentinel was followed is asked for, and
	// so is the master when the sentinel is silent: an announcement may
	// have come while the subscriber was connecting to the master before.
	if err := b.checkMaster(c); err != nil {
		return false, err
	}

	// A silent connection is sent a PING; one that stays silent is
	// given up.
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(b.ctx, b.cfg.healthEvery)
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && !pinged && b.ctx.Err() == nil {
				pinged = true
				if err = b.checkMaster(c); err == nil {
					ctx, cancel := context.WithTimeout(b.ctx, writeTimeout)
					err = ps.Ping(ctx)
					cancel()
				}
				if err == nil {
					continue
				}
			}
			return true, err
		}
		pinged = false
		if m, ok := msg.(*redis.Message); ok {
			// <name> <old ip> <old port> <new ip> <new port>
			f := strings.Fields(m.Payload)
			if len(f) == 5 && f[0] == b.sentinel.opt.MasterName {
				b.masterIs(net.JoinHostPort(f[3], f[4]))
			}
		}
	}
}

// checkMaster asks the sentinel of c for the master. If the subscriber
// is on another node, and the one named says it is a master (a sentinel
// may lag behind the others for a moment), the connection is dropped.
func (b *Broker) checkMaster(c *redis.SentinelClient) error {
	ctx, cancel := context.WithTimeout(b.ctx, sentinelAsk)
	defer cancel()
	a, err := c.GetMasterAddrByName(ctx, b.sentinel.opt.MasterName).Result()
	if err != nil || len(a) != 2 {
		return fmt.Errorf("asking for the master: %w", err)
	}
	addr := net.JoinHostPort(a[0], a[1])
	b.mu.Lock()
	on := len(b.links) == 0 || b.links[addr] != nil
	b.mu.Unlock()
	if on {
		return nil
	}
	o := b.subOpt
	o.Addr, o.MaxRetries, o.DialerRetries, o.ContextTimeoutEnabled = addr, -1, 1, true
	o.OnConnect = nil
	node := redis.NewClient(&o)
	defer node.Close()
	cn := node.Conn()
	defer cn.Close()
	if requireMaster(ctx, cn) == nil {
		b.masterIs(addr)
	}
	return nil
}

// masterIs drops the subscriber connection if it is not to addr, the
// master the sentinels name: the broker reconnects to the one they name
// then.
func (b *Broker) masterIs(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.links) == 0 || b.links[addr] != nil {
		return // down, reconnecting; or on that master
	}
	for _, l := range b.links {
		b.killLocked(l, fmt.Errorf("the sentinels name %s the master %q", addr, b.sentinel.opt.MasterName))
	}
}
