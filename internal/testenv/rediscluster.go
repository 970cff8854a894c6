package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisCluster is a Redis Cluster owned by one test, made by
// [StartRedisCluster]: three primaries and three replicas, redis-server
// processes in cluster mode on 127.0.0.1, nothing kept on disk but each
// node's cluster configuration file in the test's temporary directory.
// Its cluster-node-timeout is one second, so a killed primary's replica
// takes over within a few seconds.
type RedisCluster struct {
	tb    testing.TB
	nodes []*clusterNode
	tls   *TLSFiles // made by StartRedisClusterTLS
}

type clusterNode struct {
	port, busPort int
	tlsPort       int // 0 without TLS
	mu            sync.Mutex
	proc          *process
}

func (n *clusterNode) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// clusterNodeTimeout is the cluster-node-timeout of the test cluster, in
// milliseconds: how long a primary may be silent before its replica is
// promoted.
const clusterNodeTimeout = 1000

// StartRedisCluster starts a Redis Cluster of three primaries, each with
// one replica, for tb alone, and returns once every node reports
// cluster_state:ok. The nodes are stopped in tb's cleanup. If redis-server
// or redis-cli cannot be had, tb is skipped (or failed when CI=true).
func StartRedisCluster(tb testing.TB) *RedisCluster {
	tb.Helper()
	return startRedisCluster(tb, false)
}

// StartRedisClusterTLS starts a cluster as StartRedisCluster does whose
// nodes also serve TLS (and speak it to each other on the cluster bus),
// with certificates for 127.0.0.1 and localhost signed by an authority
// made for the test, refusing TLS clients without a certificate of that
// authority ([RedisCluster.TLSFiles]). A client connected over TLS is
// told the nodes' TLS ports; [RedisCluster.TLSURL] names them. The other
// methods use the plain ports.
func StartRedisClusterTLS(tb testing.TB) *RedisCluster {
	tb.Helper()
	return startRedisCluster(tb, true)
}

// TLSFiles returns the certificate files of a cluster made by
// StartRedisClusterTLS.
func (c *RedisCluster) TLSFiles() TLSFiles { return *c.tls }

// TLSURL returns the URL of a cluster made by StartRedisClusterTLS, in
// the form DEALROOM_REDIS_URL takes: rediss-cluster://localhost:port?addr=...
// with every node's TLS port as a seed.
func (c *RedisCluster) TLSURL() string {
	u := "rediss-cluster://"
	for i, n := range c.nodes {
		if i == 1 {
			u += "?addr="
		} else if i > 1 {
			u += "&addr="
		}
		u += net.JoinHostPort("localhost", strconv.Itoa(n.tlsPort))
	}
	return u
}

func startRedisCluster(tb testing.TB, withTLS bool) *RedisCluster {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "redis-server is not on PATH: %s", redisInstallHint)
		return nil
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		unavailable(tb, "redis-cli is not on PATH: %s", redisInstallHint)
		return nil
	}
	c := &RedisCluster{tb: tb}
	// The directory first: cleanups run last-registered first, and the
	// nodes, which rewrite their configuration files when the cluster
	// changes, must be stopped before it is removed.
	dir := tb.TempDir()
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.stop()
			}()
		}
		wg.Wait()
	})
	if withTLS {
		files, err := writeTLSFiles(tb.TempDir())
		if err != nil {
			tb.Fatalf("testenv: TLS files for the cluster: %v", err)
		}
		c.tls = &files
	}
	for i := range 6 {
		n, err := startClusterNode(bin, dir, i, c.tls)
		if err != nil {
			unavailable(tb, "starting a cluster node: %v", err)
			return nil
		}
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		unavailable(tb, "redis-cli --cluster create: %v; output:\n%s", err, out)
		return nil
	}
	if err := c.waitOK(30 * time.Second); err != nil {
		unavailable(tb, "%v", err)
		return nil
	}
	return c
}

// startClusterNode starts one node on free ports (its client port and its
// cluster bus port), retrying when a port was taken in between.
func startClusterNode(bin, dir string, i int, files *TLSFiles) (*clusterNode, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		bus, err := freePort()
		if err != nil {
			return nil, err
		}
		n := &clusterNode{port: port, busPort: bus}
		if files != nil {
			if n.tlsPort, err = freePort(); err != nil {
				return nil, err
			}
		}
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port),
			"--cluster-port", strconv.Itoa(bus),
			"--bind", "127.0.0.1",
			"--protected-mode", "yes",
			"--daemonize", "no",
			"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i),
			"--cluster-node-timeout", strconv.Itoa(clusterNodeTimeout),
			// A replica may take over whatever the age of its data: the
			// test's data is news only.
			"--cluster-replica-validity-factor", "0",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--dbfilename", fmt.Sprintf("dump-%d.rdb", i),
			"--logfile", "",
			"--loglevel", "warning",
		)
		if files != nil {
			cmd.Args = append(cmd.Args, "--tls-port", strconv.Itoa(n.tlsPort), "--tls-cluster", "yes", "--tls-replication", "yes",
				"--tls-cert-file", files.ServerCert, "--tls-key-file", files.ServerKey,
				"--tls-ca-cert-file", files.CA, "--tls-auth-clients", "yes")
		}
		out := newTailBuffer(8 << 10)
		p, err := startProcess("redis-server (cluster)", cmd, out, false)
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", bin, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if p.exited() {
				lastErr = p.exitError()
				break
			}
			if err := redisCheck(n.addr(), cmd.Process.Pid); err == nil {
				n.proc = p
				return n, nil
			} else if time.Now().After(deadline) {
				p.kill()
				return nil, fmt.Errorf("redis-server on %s did not answer within 30s: %v; output:\n%s", n.addr(), err, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

func (n *clusterNode) stop() {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p != nil {
		p.stop(5 * time.Second)
	}
}

func (n *clusterNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && !n.proc.exited()
}

// Addrs returns the host:port of every node, primaries and replicas, in
// the order they were started.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	return addrs
}

// URL returns the cluster's URL in the form DEALROOM_REDIS_URL takes:
// redis-cluster://host:port?addr=host:port&... with every node as a seed.
func (c *RedisCluster) URL() string {
	addrs := c.Addrs()
	u := "redis-cluster://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// Primaries returns the host:port of the nodes that are primaries now,
// as the running nodes see them.
func (c *RedisCluster) Primaries() []string {
	c.tb.Helper()
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		out, err := redisCLI(n.addr(), "CLUSTER", "NODES")
		if err != nil {
			continue
		}
		var primaries []string
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			primaries = append(primaries, addr)
		}
		return primaries
	}
	c.tb.Fatalf("testenv: no cluster node answers CLUSTER NODES")
	return nil
}

// Kill ends the node at addr abruptly with SIGKILL, as in a crash, and
// waits until it has exited.
func (c *RedisCluster) Kill(addr string) {
	c.tb.Helper()
	for _, n := range c.nodes {
		if n.addr() == addr {
			n.mu.Lock()
			p := n.proc
			n.mu.Unlock()
			if p != nil {
				p.kill()
			}
			return
		}
	}
	c.tb.Fatalf("testenv: no cluster node at %s", addr)
}

// WaitOK waits until every running node reports cluster_state:ok (and
// every running replica a link to its primary), and
// fails the test if they do not within d.
func (c *RedisCluster) WaitOK(d time.Duration) {
	c.tb.Helper()
	if err := c.waitOK(d); err != nil {
		c.tb.Fatalf("testenv: %v", err)
	}
}

func (c *RedisCluster) waitOK(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		var notOK string
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			out, err := redisCLI(n.addr(), "CLUSTER", "INFO")
			if err != nil || !strings.Contains(out, "cluster_state:ok") {
				notOK = n.addr()
				break
			}
			// A replica counts once it follows its primary: only then can
			// it take over.
			repl, err := redisCLI(n.addr(), "INFO", "replication")
			if err != nil || (strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up")) {
				notOK = n.addr()
				break
			}
		}
		if notOK == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster node %s did not report cluster_state:ok (and, for a replica, a link to its primary) within %s", notOK, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// redisCLI runs one command with redis-cli against addr.
func redisCLI(addr string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return string(out), err
}

// MoveSlot moves a hash slot from the primary that owns it to the primary
// at to, the way an operator resharding the cluster does: the target is
// told it imports the slot and the owner that it migrates it, the slot's
// keys are moved with MIGRATE, and then every primary is told the slot's
// new owner (the target first, then the old owner, which then drops the
// slot and tells the slot's shard channel subscribers with SUNSUBSCRIBE).
// It returns once every running node names the target as the slot's
// owner, and fails the test if that takes more than ten seconds.
func (c *RedisCluster) MoveSlot(slot int, to string) {
	c.tb.Helper()
	if err := c.moveSlot(slot, to); err != nil {
		c.tb.Fatalf("testenv: moving slot %d to %s: %v", slot, to, err)
	}
}

func (c *RedisCluster) moveSlot(slot int, to string) error {
	from, err := c.slotOwner(c.nodeAt(to), slot)
	if err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("%s owns the slot already", to)
	}
	fromID, err := c.nodeID(from)
	if err != nil {
		return err
	}
	toID, err := c.nodeID(to)
	if err != nil {
		return err
	}
	s := strconv.Itoa(slot)
	if err := redisCLIOK(to, "CLUSTER", "SETSLOT", s, "IMPORTING", fromID); err != nil {
		return err
	}
	if err := redisCLIOK(from, "CLUSTER", "SETSLOT", s, "MIGRATING", toID); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(to)
	for {
		out, err := redisCLI(from, "CLUSTER", "GETKEYSINSLOT", s, "100")
		if err != nil {
			return fmt.Errorf("CLUSTER GETKEYSINSLOT on %s: %v: %s", from, err, out)
		}
		keys := strings.Fields(out)
		if len(keys) == 0 {
			break
		}
		args := append([]string{"MIGRATE", host, port, "", "0", "5000", "KEYS"}, keys...)
		if err := redisCLIOK(from, args...); err != nil {
			return err
		}
	}
	// The target first, so that the slot is never without an owner that
	// accepts it; then the old owner; then the other primaries, which
	// would also learn it from the cluster bus.
	order := []string{to, from}
	for _, p := range c.Primaries() {
		if p != to && p != from {
			order = append(order, p)
		}
	}
	for _, addr := range order {
		if err := redisCLIOK(addr, "CLUSTER", "SETSLOT", s, "NODE", toID); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.nodes {
		for n.running() {
			owner, err := c.slotOwner(n, slot)
			if err == nil && owner == to {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s still names %q as the owner (%v)", n.addr(), owner, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// SlotOwner returns the address of the primary that owns slot, as the
// first running node sees it.
func (c *RedisCluster) SlotOwner(slot int) string {
	c.tb.Helper()
	for _, n := range c.nodes {
		if n.running() {
			owner, err := c.slotOwner(n, slot)
			if err != nil {
				c.tb.Fatalf("testenv: %v", err)
			}
			return owner
		}
	}
	c.tb.Fatalf("testenv: no cluster node is running")
	return ""
}

func (c *RedisCluster) nodeAt(addr string) *clusterNode {
	for _, n := range c.nodes {
		if n.addr() == addr {
			return n
		}
	}
	c.tb.Fatalf("testenv: no cluster node at %s", addr)
	return nil
}

// slotOwner asks n (CLUSTER NODES) which primary owns slot.
func (c *RedisCluster) slotOwner(n *clusterNode, slot int) (string, error) {
	out, err := redisCLI(n.addr(), "CLUSTER", "NODES")
	if err != nil {
		return "", fmt.Errorf("CLUSTER NODES on %s: %v: %s", n.addr(), err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "master") {
			continue
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated or imported
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && l <= slot && slot <= h {
				addr, _, _ := strings.Cut(f[1], "@")
				return addr, nil
			}
		}
	}
	return "", fmt.Errorf("%s names no owner of slot %d", n.addr(), slot)
}

// nodeID returns the cluster node ID of the node at addr.
func (c *RedisCluster) nodeID(addr string) (string, error) {
	out, err := redisCLI(addr, "CLUSTER", "MYID")
	if err != nil {
		return "", fmt.Errorf("CLUSTER MYID on %s: %v: %s", addr, err, out)
	}
	return strings.TrimSpace(out), nil
}

// redisCLIOK runs one command with redis-cli against addr and fails unless
// Redis answers OK.
func redisCLIOK(addr string, args ...string) error {
	out, err := redisCLI(addr, args...)
	if err != nil || strings.TrimSpace(out) != "OK" {
		return fmt.Errorf("%s on %s: %v: %s", strings.Join(args, " "), addr, err, strings.TrimSpace(out))
	}
	return nil
}

// Failover has the replica of the primary at addr take its place, the way
// an operator does before maintenance (CLUSTER FAILOVER on the replica:
// the primary stops taking writes, the replica catches up and is
// promoted, the old primary becomes its replica). It returns the new
// primary's address once every running node sees it as the primary, and
// fails the test if that takes more than ten seconds.
func (c *RedisCluster) Failover(addr string) string {
	c.tb.Helper()
	replica, err := c.replicaOf(addr)
	if err != nil {
		c.tb.Fatalf("testenv: %v", err)
	}
	if err := redisCLIOK(replica, "CLUSTER", "FAILOVER"); err != nil {
		c.tb.Fatalf("testenv: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		primaries := c.Primaries()
		if slices.Contains(primaries, replica) && !slices.Contains(primaries, addr) {
			return replica
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("testenv: %s did not take over from %s within 10s (primaries %v)", replica, addr, primaries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaOf returns the address of a replica of the primary at addr.
func (c *RedisCluster) replicaOf(addr string) (string, error) {
	id, err := c.nodeID(addr)
	if err != nil {
		return "", err
	}
	out, err := redisCLI(addr, "CLUSTER", "NODES")
	if err != nil {
		return "", fmt.Errorf("CLUSTER NODES on %s: %v: %s", addr, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[3] == id && strings.Contains(f[2], "slave") && !strings.Contains(f[2], "fail") {
			replica, _, _ := strings.Cut(f[1], "@")
			return replica, nil
		}
	}
	return "", fmt.Errorf("the primary %s has no replica", addr)
}
