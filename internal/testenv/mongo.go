package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

const (
	mongoJarName     = "mongo-java-server-testenv.jar"
	mongoInstallHint = "install a JDK (17+) and Maven (`apt-get install openjdk-17-jdk-headless maven`), " +
		"or set DEALROOM_TEST_MONGO_URI to a MongoDB"
)

// MongoURI returns the connection string of a MongoDB-compatible server
// shared by all tests of the test binary.
//
// With DEALROOM_TEST_MONGO_URI set, that URI (a real MongoDB) is returned
// as is. Otherwise mongo-java-server with its in-memory backend, reporting
// MongoDB 3.6, is started on first use on a free port of 127.0.0.1, and
// "mongodb://127.0.0.1:PORT" is returned. Its jar is built from
// testenv/mongo-java-server with Maven first if it is missing or older
// than its sources; a file lock keeps test binaries running in parallel
// from building it at the same time.
//
// If the server cannot be had, tb is skipped (or failed when CI=true).
// Tests sharing the server should each use a database of their own: see
// [MongoDatabase].
func MongoURI(tb testing.TB) string {
	tb.Helper()
	if uri := os.Getenv("DEALROOM_TEST_MONGO_URI"); uri != "" {
		return uri
	}
	shared.mongoMu.Lock()
	defer shared.mongoMu.Unlock()
	if shared.mongoErr != nil {
		unavailable(tb, "%v", shared.mongoErr)
		return ""
	}
	if shared.mongo == nil {
		s, err := newMongoServer()
		if err == nil {
			err = s.start()
		}
		if err != nil {
			shared.mongoErr = err
			unavailable(tb, "%v", err)
			return ""
		}
		shared.mongo = s
	} else if !shared.mongo.running() {
		if err := shared.mongo.start(); err != nil {
			unavailable(tb, "restarting mongo-java-server: %v", err)
			return ""
		}
	}
	return shared.mongo.uri()
}

// MongoDatabase returns the URI of the shared server (see [MongoURI]) and
// the name of a database for tb alone: "t_", part of the test's name, and
// a random suffix, at most 63 characters of [A-Za-z0-9_]. The database is
// dropped in tb's cleanup (a failure to drop it is only logged).
func MongoDatabase(tb testing.TB) (uri, dbName string) {
	tb.Helper()
	uri = MongoURI(tb)
	dbName = mongoDBName(tb.Name())
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).
			SetServerSelectionTimeout(5*time.Second))
		if err != nil {
			tb.Logf("testenv: dropping database %s: %v", dbName, err)
			return
		}
		defer client.Disconnect(context.Background())
		if err := client.Database(dbName).Drop(ctx); err != nil {
			tb.Logf("testenv: dropping database %s: %v", dbName, err)
		}
	})
	return uri, dbName
}

// mongoDBName makes a database name from a test name.
func mongoDBName(testName string) string {
	var b strings.Builder
	for _, r := range testName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 44 {
		name = name[:44]
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	return "t_" + name + "_" + hex.EncodeToString(suffix[:]) // ≤ 2+44+1+16 = 63
}

// mongoServer is a mongo-java-server process.
type mongoServer struct {
	java string
	jar  string

	mu   sync.Mutex
	port int // 0 until first started; kept across restarts
	proc *process
}

// newMongoServer finds java and the jar, building it if needed.
func newMongoServer() (*mongoServer, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("java is not on PATH, needed for mongo-java-server: %s", mongoInstallHint)
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	jar, err := buildMongoJar(filepath.Join(root, "testenv", "mongo-java-server"))
	if err != nil {
		return nil, err
	}
	return &mongoServer{java: java, jar: jar}, nil
}

// buildMongoJar returns the path of the launcher jar in dir/target,
// running Maven first if the jar is missing or older than the sources.
func buildMongoJar(dir string) (string, error) {
	jar := filepath.Join(dir, "target", mongoJarName)
	if jarFresh(jar, dir) {
		return jar, nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("mvn is not on PATH, needed to build %s: %s", jar, mongoInstallHint)
	}
	if err := os.MkdirAll(filepath.Join(dir, "target"), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "target", ".build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close() // releases the lock
	if err := lockFile(lock); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	if jarFresh(jar, dir) { // built by another test binary meanwhile
		return jar, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mvn, "-B", "-q", "package")
	cmd.Dir = dir
	out := newTailBuffer(16 << 10)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building mongo-java-server with `mvn -B -q package` in %s failed: %v\n%s", dir, err, out.String())
	}
	if !jarFresh(jar, dir) {
		return "", fmt.Errorf("`mvn -B -q package` in %s did not produce %s", dir, jar)
	}
	return jar, nil
}

// jarFresh reports whether jar exists and is newer than dir's pom.xml and
// everything under dir/src.
func jarFresh(jar, dir string) bool {
	st, err := os.Stat(jar)
	if err != nil {
		return false
	}
	built := st.ModTime()
	stale := false
	check := func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			stale = true
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.ModTime().After(built) {
			stale = true
			return fs.SkipAll
		}
		return nil
	}
	if st, err := os.Stat(filepath.Join(dir, "pom.xml")); err != nil || st.ModTime().After(built) {
		return false
	}
	filepath.WalkDir(filepath.Join(dir, "src"), check)
	return !stale
}

func (s *mongoServer) uri() string {
	return "mongodb://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

func (s *mongoServer) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.exited()
}

// start starts the server, on its previous port if it had one.
func (s *mongoServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.exited() {
		return nil
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		p, port, err := s.startOn(s.port)
		if err == nil {
			s.proc = p
			if s.port == 0 {
				s.port = port
			}
			return nil
		}
		if s.port == 0 || !strings.Contains(err.Error(), "in use") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startOn starts the server on port (0: a free one) and waits until it
// reports its address.
func (s *mongoServer) startOn(port int) (*process, int, error) {
	args := []string{
		"-XX:TieredStopAtLevel=1", // starts faster; plenty for tests
		"-XX:+UseSerialGC",
		"-XX:-UsePerfData", // no hsperfdata files in /tmp
		"-Xmx512m",
		"-jar", s.jar,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
	}
	args = append(args, strings.Fields(os.Getenv("DEALROOM_TEST_MONGO_ARGS"))...)
	cmd := exec.Command(s.java, args...)
	listening := make(chan string, 1)
	out := newTailBuffer(16 << 10)
	out.onLine = func(line string) {
		if addr, ok := strings.CutPrefix(line, "LISTENING "); ok {
			select {
			case listening <- strings.TrimSpace(addr):
			default:
			}
		}
	}
	// The server exits when its stdin closes, i.e. when we go away.
	p, err := startProcess("mongo-java-server", cmd, out, true)
	if err != nil {
		return nil, 0, fmt.Errorf("starting %s: %w", s.java, err)
	}
	select {
	case addr := <-listening:
		_, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			p.kill()
			return nil, 0, fmt.Errorf("mongo-java-server printed a bad address %q", addr)
		}
		bound, err := strconv.Atoi(portStr)
		if err != nil {
			p.kill()
			return nil, 0, fmt.Errorf("mongo-java-server printed a bad address %q", addr)
		}
		return p, bound, nil
	case <-p.done:
		return nil, 0, p.exitError()
	case <-time.After(90 * time.Second):
		p.kill()
		return nil, 0, errors.New("mongo-java-server did not report LISTENING within 90s; output:\n" + out.String())
	}
}
