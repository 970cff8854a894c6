package testenv

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const redisInstallHint = "install it with `apt-get install redis-server` (scripts/test does this)"

// RedisServer is a redis-server process owned by one test, made by
// [StartRedis]. It listens on 127.0.0.1 only, keeps no data on disk, and
// comes back on the same port after [RedisServer.Stop] or
// [RedisServer.Kill] and [RedisServer.Start], so that clients configured
// with [RedisServer.Addr] reconnect to it.
//
// Its methods may be called from several goroutines, except Start and
// Restart: they report failures with tb.Fatalf and so, like tb.Fatalf,
// must be called from the test's goroutine.
type RedisServer struct {
	tb     testing.TB // nil for the shared server
	bin    string
	dir    string
	dbfile string
	port   int // chosen by the first start, then fixed

	// TLS, for a server made by StartRedisTLS: its files, its TLS port
	// and whether it asks clients for a certificate.
	tls        *TLSFiles
	tlsPort    int
	clientAuth bool

	mu   sync.Mutex
	proc *process
}

// Redis returns the host:port of a redis-server shared by all tests of
// the test binary, starting it on first use. With DEALROOM_TEST_REDIS_ADDR
// set, that address is returned instead. If redis-server cannot be
// started, tb is skipped (or failed when CI=true).
//
// Data written by one test is visible to the others: use keys prefixed by
// the test's name, or a server of the test's own from [StartRedis].
func Redis(tb testing.TB) string {
	tb.Helper()
	if addr := os.Getenv("DEALROOM_TEST_REDIS_ADDR"); addr != "" {
		return addr
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.redisErr != nil {
		unavailable(tb, "%v", shared.redisErr)
		return ""
	}
	if shared.redis == nil {
		bin, err := exec.LookPath("redis-server")
		if err != nil {
			shared.redisErr = fmt.Errorf("redis-server is not on PATH: %s", redisInstallHint)
			unavailable(tb, "%v", shared.redisErr)
			return ""
		}
		s := &RedisServer{
			bin:    bin,
			dir:    os.TempDir(),
			dbfile: fmt.Sprintf("dealroom-testenv-%d.rdb", os.Getpid()),
		}
		if err := s.start(); err != nil {
			shared.redisErr = err
			unavailable(tb, "%v", err)
			return ""
		}
		shared.redis = s
	} else if !shared.redis.running() {
		// Someone stopped or killed it: bring it back on the same port.
		if err := shared.redis.start(); err != nil {
			unavailable(tb, "restarting the shared redis-server: %v", err)
			return ""
		}
	}
	return shared.redis.Addr()
}

// StartRedis starts a redis-server for tb alone, stopped in tb's cleanup.
// Use it for tests that stop and restart the server on purpose, or need an
// empty server. If redis-server cannot be started, tb is skipped (or failed
// when CI=true).
func StartRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "redis-server is not on PATH: %s", redisInstallHint)
		return nil
	}
	s := &RedisServer{tb: tb, bin: bin, dir: tb.TempDir(), dbfile: "dump.rdb"}
	if err := s.start(); err != nil {
		unavailable(tb, "%v", err)
		return nil
	}
	tb.Cleanup(func() {
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		if p != nil {
			p.stop(5 * time.Second)
		}
	})
	return s
}

// StartRedisTLS starts a redis-server for tb alone, as StartRedis does,
// that also serves TLS on 127.0.0.1 ([RedisServer.TLSAddr]) with a
// certificate for 127.0.0.1 and localhost signed by an authority made for
// the test ([RedisServer.TLSFiles]). With clientAuth it refuses TLS
// clients without a certificate of that authority (Redis's default). Its
// plain port stays open, for the test's own checks.
func StartRedisTLS(tb testing.TB, clientAuth bool) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "redis-server is not on PATH: %s", redisInstallHint)
		return nil
	}
	dir := tb.TempDir()
	files, err := writeTLSFiles(dir)
	if err != nil {
		tb.Fatalf("testenv: TLS files for redis-server: %v", err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	s := &RedisServer{tb: tb, bin: bin, dir: dir, dbfile: "dump.rdb", tls: &files, tlsPort: port, clientAuth: clientAuth}
	if err := s.start(); err != nil {
		unavailable(tb, "%v", err)
		return nil
	}
	tb.Cleanup(s.Stop)
	return s
}

// TLSAddr returns the host:port of the TLS port of a server made by
// StartRedisTLS, as localhost (the name its certificate carries).
func (s *RedisServer) TLSAddr() string {
	return net.JoinHostPort("localhost", strconv.Itoa(s.tlsPort))
}

// TLSFiles returns the certificate files of a server made by
// StartRedisTLS.
func (s *RedisServer) TLSFiles() TLSFiles { return *s.tls }

// Addr returns the server's host:port, which stays the same across
// restarts.
func (s *RedisServer) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port returns the TCP port the server listens on.
func (s *RedisServer) Port() int { return s.port }

// Running reports whether the server process is running.
func (s *RedisServer) Running() bool { return s.running() }

func (s *RedisServer) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.exited()
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 5s) and waits
// until it has exited. Its data is lost: nothing is saved on disk. Stop on
// a stopped server does nothing.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.stop(5 * time.Second)
	}
}

// Kill ends the server abruptly with SIGKILL, as in a crash, and waits
// until it has exited.
func (s *RedisServer) Kill() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Start starts a stopped server again on the same port and waits until it
// answers PING. It fails the test if the server cannot be started. Start
// on a running server does nothing.
func (s *RedisServer) Start() {
	if s.tb != nil {
		s.tb.Helper()
	}
	if err := s.start(); err != nil {
		if s.tb != nil {
			s.tb.Fatalf("testenv: restarting redis-server: %v", err)
		}
	}
}

// Restart stops the server and starts it again on the same port.
func (s *RedisServer) Restart() {
	if s.tb != nil {
		s.tb.Helper()
	}
	s.Stop()
	s.Start()
}

// start starts the process, on s.port if it is set (retrying for a while
// if the port is still busy) or else on a free port.
func (s *RedisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.exited() {
		return nil
	}
	fixed := s.port != 0
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for attempt := 0; ; attempt++ {
		port := s.port
		if !fixed {
			var err error
			if port, err = freePort(); err != nil {
				return err
			}
		}
		p, err := s.startOn(port)
		if err == nil {
			if !fixed {
				s.port = port // set once: Addr reads it without locking
			}
			s.proc = p
			return nil
		}
		lastErr = err
		// A port taken between freePort and the bind, or not yet released
		// after a restart: try again. Anything else is final.
		if !strings.Contains(err.Error(), "in use") || time.Now().After(deadline) || (!fixed && attempt >= 5) {
			return lastErr
		}
		if fixed {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (s *RedisServer) startOn(port int) (*process, error) {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--dbfilename", s.dbfile,
		"--logfile", "",
		"--loglevel", "warning",
	)
	if s.tls != nil {
		auth := "no"
		if s.clientAuth {
			auth = "yes"
		}
		cmd.Args = append(cmd.Args, "--tls-port", strconv.Itoa(s.tlsPort),
			"--tls-cert-file", s.tls.ServerCert, "--tls-key-file", s.tls.ServerKey,
			"--tls-ca-cert-file", s.tls.CA, "--tls-auth-clients", auth)
	}
	out := newTailBuffer(8 << 10)
	p, err := startProcess("redis-server", cmd, out, false)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", s.bin, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.exited() {
			return nil, p.exitError()
		}
		if err := redisCheck(addr, cmd.Process.Pid); err == nil {
			return p, nil
		} else if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("redis-server on %s did not answer within 30s: %v; output:\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisCheck asks the redis-server at addr for INFO and checks that it is
// the process pid (and not, after a port clash, someone else's server).
func redisCheck(addr string, pid int) error { return redisCheckTLS(addr, pid, nil) }

// redisCheckTLS is redisCheck over TLS with t (plain when t is nil).
func redisCheckTLS(addr string, pid int, t *tls.Config) error {
	var c net.Conn
	var err error
	if t != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, t)
	} else {
		c, err = net.DialTimeout("tcp", addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	head = strings.TrimSpace(head)
	if !strings.HasPrefix(head, "$") {
		return errors.New("unexpected reply to INFO: " + head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 {
		return errors.New("unexpected reply to INFO: " + head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	want := "process_id:" + strconv.Itoa(pid)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.TrimSpace(line) == want {
			return nil
		}
	}
	return fmt.Errorf("the server on %s is not the redis-server we started (pid %d)", addr, pid)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
