package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSentinel is a Redis Sentinel setup owned by one test, made by
// [StartRedisSentinel]: a master, two replicas following it and three
// sentinels watching it, all redis-server processes on 127.0.0.1 that
// keep nothing on disk but the sentinels' configuration files, in the
// test's temporary directory. The sentinels agree that the master is down
// after a second of silence (two of them suffice), so a killed master's
// replica is promoted within a few seconds.
type RedisSentinel struct {
	tb        testing.TB
	dir       string
	nodes     []*sentinelProc // the master first, then the replicas
	sentinels []*sentinelProc
	// With TLS (StartRedisSentinelTLS): the files, and the settings of
	// the setup's own clients.
	tls       *TLSFiles
	clientTLS *tls.Config
}

// sentinelProc is one process of the setup: a Redis node or a sentinel.
type sentinelProc struct {
	port int
	mu   sync.Mutex
	proc *process
}

func (p *sentinelProc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

func (p *sentinelProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc != nil && !p.proc.exited()
}

func (p *sentinelProc) signal(kill bool) {
	p.mu.Lock()
	pr := p.proc
	p.mu.Unlock()
	switch {
	case pr == nil:
	case kill:
		pr.kill()
	default:
		pr.stop(5 * time.Second)
	}
}

const (
	// sentinelMasterName is the name the sentinels know the master by.
	sentinelMasterName = "dealroom"
	// sentinelDownAfter is how long, in milliseconds, the master may be
	// silent before a sentinel holds it down.
	sentinelDownAfter = 1000
	// sentinelFailoverTimeout bounds, in milliseconds, each step of a
	// failover, and is half the wait before a failed one is tried again.
	sentinelFailoverTimeout = 2000
)

// StartRedisSentinel starts a master with two replicas and three sentinels
// (quorum two) for tb alone, and returns once every sentinel names the
// master, knows both replicas with their link to it up, and knows the two
// other sentinels. Everything is stopped in tb's cleanup. If redis-server
// cannot be had, tb is skipped (or failed when CI=true).
func StartRedisSentinel(tb testing.TB) *RedisSentinel {
	tb.Helper()
	return startRedisSentinel(tb, false)
}

// StartRedisSentinelTLS starts the same setup speaking TLS alone: every
// node and sentinel listens on a TLS port only, with a certificate for
// 127.0.0.1 and localhost signed by an authority made for the test, asks
// clients for a certificate of that authority, and speaks TLS to the
// others (replication, the sentinels' links). [RedisSentinel.URL] is then
// a rediss-sentinel:// URL, and [RedisSentinel.TLSFiles] has the files.
func StartRedisSentinelTLS(tb testing.TB) *RedisSentinel {
	tb.Helper()
	return startRedisSentinel(tb, true)
}

func startRedisSentinel(tb testing.TB, withTLS bool) *RedisSentinel {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "redis-server is not on PATH: %s", redisInstallHint)
		return nil
	}
	s := &RedisSentinel{tb: tb, dir: tb.TempDir()}
	if withTLS {
		files, err := writeTLSFiles(tb.TempDir())
		if err == nil {
			s.clientTLS, err = files.ClientConfig()
		}
		if err != nil {
			tb.Fatalf("testenv: TLS files for the sentinel setup: %v", err)
		}
		s.tls = &files
	}
	tb.Cleanup(s.stop)
	if err := s.start(bin); err != nil {
		unavailable(tb, "%v", err)
		return nil
	}
	return s
}

// TLSFiles returns the certificate files of a setup made by
// StartRedisSentinelTLS.
func (s *RedisSentinel) TLSFiles() TLSFiles { return *s.tls }

// tlsArgs are the TLS settings of a node or sentinel listening on port.
func (s *RedisSentinel) tlsArgs(port int) []string {
	return []string{"--port", "0", "--tls-port", strconv.Itoa(port), "--tls-replication", "yes",
		"--tls-cert-file", s.tls.ServerCert, "--tls-key-file", s.tls.ServerKey,
		"--tls-ca-cert-file", s.tls.CA, "--tls-auth-clients", "yes"}
}

func (s *RedisSentinel) start(bin string) error {
	master, err := startSentinelProc(bin, s.clientTLS, "redis-server (master)", func(port int) ([]string, error) {
		return s.nodeArgs(port, 0, ""), nil
	})
	if err != nil {
		return err
	}
	s.nodes = append(s.nodes, master)
	for i := 1; i <= 2; i++ {
		replica, err := startSentinelProc(bin, s.clientTLS, "redis-server (replica)", func(port int) ([]string, error) {
			return s.nodeArgs(port, i, master.addr()), nil
		})
		if err != nil {
			return err
		}
		s.nodes = append(s.nodes, replica)
	}
	// The sentinels learn the replicas from the master's INFO, which they
	// ask for at once and then every ten seconds: start them once both
	// replicas are there.
	if err := waitReplicas(master.addr(), s.clientTLS, 2, 30*time.Second); err != nil {
		return err
	}
	for i := range 3 {
		sentinel, err := startSentinelProc(bin, s.clientTLS, "redis-server (sentinel)", func(port int) ([]string, error) {
			conf := filepath.Join(s.dir, fmt.Sprintf("sentinel-%d.conf", i))
			if err := os.WriteFile(conf, []byte(sentinelConf(port, s.dir, master.port)), 0o600); err != nil {
				return nil, err
			}
			if s.tls != nil {
				return append([]string{conf, "--sentinel"}, s.tlsArgs(port)...), nil
			}
			return []string{conf, "--sentinel"}, nil
		})
		if err != nil {
			return err
		}
		s.sentinels = append(s.sentinels, sentinel)
	}
	return s.waitReady(master.addr(), 30*time.Second)
}

// nodeArgs are the arguments of the Redis node i on port; a replica
// follows master.
func (s *RedisSentinel) nodeArgs(port, i int, master string) []string {
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--dbfilename", fmt.Sprintf("dump-%d.rdb", i),
		// A replica's first sync starts at once, not after five seconds.
		"--repl-diskless-sync", "yes",
		"--repl-diskless-sync-delay", "0",
		"--replica-announce-ip", "127.0.0.1",
		"--logfile", "",
		"--loglevel", "warning",
	}
	if master != "" {
		host, port, _ := net.SplitHostPort(master)
		args = append(args, "--replicaof", host, port)
	}
	if s.tls != nil {
		args = append(args, s.tlsArgs(port)...)
	}
	return args
}

// sentinelConf is the configuration file of a sentinel on port watching
// the master on masterPort. Sentinel rewrites it as it learns.
func sentinelConf(port int, dir string, masterPort int) string {
	name := sentinelMasterName
	return strings.Join([]string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"daemonize no",
		`logfile ""`,
		"loglevel warning",
		"dir " + dir,
		// Announced to the other sentinels and to clients as they are.
		"sentinel announce-ip 127.0.0.1",
		"sentinel announce-port " + strconv.Itoa(port),
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", name, masterPort),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", name, sentinelDownAfter),
		fmt.Sprintf("sentinel failover-timeout %s %d", name, sentinelFailoverTimeout),
		fmt.Sprintf("sentinel parallel-syncs %s 1", name),
	}, "\n") + "\n"
}

// startSentinelProc starts one process on a free port, with the arguments
// args makes for it, retrying when the port was taken in between.
func startSentinelProc(bin string, t *tls.Config, name string, args func(port int) ([]string, error)) (*sentinelProc, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		a, err := args(port)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, a...)
		out := newTailBuffer(8 << 10)
		p, err := startProcess(name, cmd, out, false)
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", bin, err)
		}
		sp := &sentinelProc{port: port}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if p.exited() {
				lastErr = p.exitError()
				break
			}
			if err := redisCheckTLS(sp.addr(), cmd.Process.Pid, t); err == nil {
				sp.proc = p
				return sp, nil
			} else if time.Now().After(deadline) {
				p.kill()
				return nil, fmt.Errorf("%s on %s did not answer within 30s: %v; output:\n%s", name, sp.addr(), err, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

// waitReplicas waits until the master at addr has n replicas online.
func waitReplicas(addr string, t *tls.Config, n int, d time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, TLSConfig: t})
	defer c.Close()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "replication").Result()
		cancel()
		if err == nil && strings.Count(info, ",state=online,") == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the master %s did not have %d replicas online within %s: %v\n%s", addr, n, d, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until every sentinel names master, knows two replicas
// whose link to it is up and knows the other sentinels.
func (s *RedisSentinel) waitReady(master string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := s.ready(master)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sentinels are not ready within %s: %w", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *RedisSentinel) ready(master string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, sp := range s.sentinels {
		c := s.sentinelClient(sp.addr())
		m, err := c.Master(ctx, sentinelMasterName).Result()
		if err != nil {
			c.Close()
			return fmt.Errorf("sentinel %s: %w", sp.addr(), err)
		}
		replicas, err := c.Replicas(ctx, sentinelMasterName).Result()
		c.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", sp.addr(), err)
		}
		switch {
		case net.JoinHostPort(m["ip"], m["port"]) != master || m["flags"] != "master":
			return fmt.Errorf("sentinel %s names %s:%s (%s), not %s", sp.addr(), m["ip"], m["port"], m["flags"], master)
		case m["num-other-sentinels"] != strconv.Itoa(len(s.sentinels)-1):
			return fmt.Errorf("sentinel %s knows %s other sentinels", sp.addr(), m["num-other-sentinels"])
		case len(replicas) != len(s.nodes)-1:
			return fmt.Errorf("sentinel %s knows %d replicas", sp.addr(), len(replicas))
		}
		for _, r := range replicas {
			if r["flags"] != "slave" || r["master-link-status"] != "ok" {
				return fmt.Errorf("sentinel %s: replica %s:%s is %s, its link %s", sp.addr(), r["ip"], r["port"], r["flags"], r["master-link-status"])
			}
		}
	}
	return nil
}

func (s *RedisSentinel) sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, TLSConfig: s.clientTLS})
}

func (s *RedisSentinel) stop() {
	var wg sync.WaitGroup
	for _, p := range append(s.sentinels, s.nodes...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.signal(false)
		}()
	}
	wg.Wait()
}

// MasterName returns the name the sentinels know the master by.
func (s *RedisSentinel) MasterName() string { return sentinelMasterName }

// SentinelAddrs returns the host:port of the three sentinels.
func (s *RedisSentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, sp := range s.sentinels {
		addrs[i] = sp.addr()
	}
	return addrs
}

// Addrs returns the host:port of the Redis nodes, the first master and
// then the replicas.
func (s *RedisSentinel) Addrs() []string {
	addrs := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		addrs[i] = n.addr()
	}
	return addrs
}

// URL returns the setup's URL in the form DEALROOM_REDIS_URL takes:
// redis-sentinel://host:port?addr=host:port&addr=host:port&master=NAME,
// with every sentinel.
func (s *RedisSentinel) URL() string {
	addrs := s.SentinelAddrs()
	u := "redis-sentinel://" + addrs[0] + "?"
	if s.tls != nil {
		u = "rediss-sentinel://" + addrs[0] + "?"
	}
	for _, a := range addrs[1:] {
		u += "addr=" + a + "&"
	}
	return u + "master=" + sentinelMasterName
}

// Master returns the host:port of the master named by a majority of the
// running sentinels. It fails the test when there is no majority.
func (s *RedisSentinel) Master() string {
	s.tb.Helper()
	addr, err := s.master()
	if err != nil {
		s.tb.Fatalf("testenv: %v", err)
	}
	return addr
}

func (s *RedisSentinel) master() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	votes := map[string]int{}
	var said []string
	for _, sp := range s.sentinels {
		if !sp.running() {
			continue
		}
		c := s.sentinelClient(sp.addr())
		a, err := c.GetMasterAddrByName(ctx, sentinelMasterName).Result()
		c.Close()
		if err != nil {
			said = append(said, fmt.Sprintf("%s: %v", sp.addr(), err))
			continue
		}
		addr := net.JoinHostPort(a[0], a[1])
		votes[addr]++
		said = append(said, sp.addr()+": "+addr)
		if votes[addr] > len(s.sentinels)/2 {
			return addr, nil
		}
	}
	return "", fmt.Errorf("the sentinels do not agree on the master (%s)", strings.Join(said, "; "))
}

// KillMaster ends the current master abruptly with SIGKILL, as in a
// crash, waits until it has exited, and returns its host:port.
func (s *RedisSentinel) KillMaster() string {
	s.tb.Helper()
	addr := s.Master()
	for _, n := range s.nodes {
		if n.addr() == addr {
			n.signal(true)
			return addr
		}
	}
	s.tb.Fatalf("testenv: the master %s is none of the nodes started", addr)
	return ""
}

// WaitFailover waits until every running sentinel names a master other
// than old, and that master accepts writes. It returns the new master's
// host:port, and fails the test if that does not happen within d.
func (s *RedisSentinel) WaitFailover(old string, d time.Duration) string {
	s.tb.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		var addr string
		if addr, err = s.failedOver(old); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("testenv: no failover from %s within %s: %v", old, d, err)
			return ""
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *RedisSentinel) failedOver(old string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var named string
	for _, sp := range s.sentinels {
		if !sp.running() {
			continue
		}
		c := s.sentinelClient(sp.addr())
		a, err := c.GetMasterAddrByName(ctx, sentinelMasterName).Result()
		c.Close()
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", sp.addr(), err)
		}
		addr := net.JoinHostPort(a[0], a[1])
		switch {
		case addr == old:
			return "", fmt.Errorf("sentinel %s still names %s", sp.addr(), old)
		case named != "" && addr != named:
			return "", fmt.Errorf("the sentinels name %s and %s", named, addr)
		}
		named = addr
	}
	if named == "" {
		return "", errors.New("no sentinel runs")
	}
	c := redis.NewClient(&redis.Options{Addr: named, MaxRetries: -1, DialTimeout: time.Second, TLSConfig: s.clientTLS})
	defer c.Close()
	if err := c.Set(ctx, "testenv:failover", old, 0).Err(); err != nil {
		return "", fmt.Errorf("the new master %s: %w", named, err)
	}
	return named, nil
}
