package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// shared holds the servers shared by the tests of one test binary.
var shared struct {
	mu       sync.Mutex // guards redis and redisErr
	redis    *RedisServer
	redisErr error // why the shared redis-server cannot be had, once known

	mongoMu  sync.Mutex // guards mongo and mongoErr
	mongo    *mongoServer
	mongoErr error
}

// Main runs the tests of m, stops every server this package started, and
// exits with the tests' exit code. Use it as a package's TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Main is optional: without it the servers are killed when the test
// binary exits (see the package documentation).
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops every server this package started and that still runs,
// shared or not, and waits until they have exited. Call it at the end of a
// custom TestMain; later calls of [Redis] or [MongoURI] start the shared
// servers again.
func Shutdown() {
	stopAll()
	shared.mu.Lock()
	shared.redis = nil
	shared.mu.Unlock()
	shared.mongoMu.Lock()
	shared.mongo = nil
	shared.mongoMu.Unlock()
}

// repoRoot returns the repository root: $DEALROOM_ROOT, or the nearest
// directory at or above the working directory (the test's package
// directory under go test) that holds testenv/mongo-java-server.
func repoRoot() (string, error) {
	if root := os.Getenv("DEALROOM_ROOT"); root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "testenv", "mongo-java-server", "pom.xml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (a directory with testenv/mongo-java-server/pom.xml) above the working directory; set DEALROOM_ROOT")
		}
		dir = parent
	}
}
