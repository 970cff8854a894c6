// Package testenv starts the real services that Dealroom's tests talk to:
// a redis-server, a MongoDB-compatible server (mongo-java-server with its
// in-memory backend, or a real MongoDB named by DEALROOM_TEST_MONGO_URI)
// and an SMTP server.
//
// It is meant to be imported by _test.go files only.
//
// # Shared and per-test servers
//
// [Redis] and [MongoURI] return the address of a server shared by all tests
// of the calling test binary. It is started lazily by the first test that
// asks for it and lives until the binary exits. Tests sharing it must keep
// their data apart: [MongoDatabase] gives each test its own database; with
// Redis use keys prefixed by the test's name, or a server of the test's own.
//
// [StartRedis] starts a redis-server that belongs to one test only and is
// stopped by the test's cleanup. Its Stop, Kill and Start methods let fault
// tests simulate outages; Start brings it back on the same port.
//
// [StartRedisTLS] starts such a server that also serves TLS, with a
// certificate for 127.0.0.1 and localhost signed by an authority made for
// the test, and, when asked, refuses TLS clients without a certificate of
// that authority ([TLSFiles] has the PEM files of all three).
// [StartRedisClusterTLS] and [StartRedisSentinelTLS] do the same for a
// Cluster and a Sentinel setup, whose servers also speak TLS to each
// other.
//
// [StartRedisCluster] starts a Redis Cluster for one test: three primaries
// and three replicas (redis-server in cluster mode, made with redis-cli
// --cluster create), ready once every node reports cluster_state:ok. Its
// Kill ends a node with SIGKILL, for failover tests.
//
// [StartRedisSentinel] starts a Redis Sentinel setup for one test: a
// master, two replicas and three sentinels (quorum two, a master down
// after one second), ready once every sentinel names the master and knows
// the replicas and the other sentinels. KillMaster ends the master with
// SIGKILL and WaitFailover waits for a replica to be promoted.
//
// # Network faults
//
// [StartFaultProxy] puts a TCP proxy on 127.0.0.1 in front of a server
// for one test. It forwards bytes both ways and, when told, lets a chosen
// request through and resets its connection before the answer comes back
// (an insert that was carried out but whose answer was lost, as in a
// primary's step-down), refuses new connections for a while, or resets
// every open connection at once.
//
// # SMTP
//
// [StartSMTP] runs an SMTP server (github.com/emersion/go-smtp) inside the
// test binary, for one test: nothing to install, so it is never skipped.
// It keeps the messages it accepts, read back for assertions
// ([ReceivedMail]), offers STARTTLS or implicit TLS with a certificate made
// at start and AUTH PLAIN when asked, and can refuse messages or stop
// listening to show a client's retries. [ListenSMTP] starts the same server
// for a process of its own: internal/testenv/cmd/smtpsink, the browser
// tests' mail server, which shows what it received over HTTP.
//
// # Missing services
//
// If a service cannot be had (redis-server, java or mvn not installed, the
// build or the start failing), the calling test is skipped with a message
// saying what to install, unless the environment variable CI is "true" (or
// "1"), in which case the test fails instead. scripts/test installs
// everything that is missing.
//
// # Lifetime of the processes
//
// Every server runs in its own process group and, on Linux, gets SIGKILL
// from the kernel as soon as the test binary dies (PR_SET_PDEATHSIG), so
// nothing is left running even if the binary panics or is killed by
// go test's timeout. mongo-java-server also exits when its stdin, a pipe
// from the test binary, is closed. For an orderly stop at the end of the
// run, use [Main] in TestMain (or call [Shutdown] from one):
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// # Environment
//
//   - CI=true: missing services fail tests instead of skipping them.
//   - DEALROOM_TEST_MONGO_URI: use this MongoDB instead of mongo-java-server.
//   - DEALROOM_TEST_MONGO_ARGS: extra arguments for the mongo-java-server
//     launcher, e.g. "--oplog" (change streams) or "--version 4.0"; see
//     testenv/mongo-java-server.
//   - DEALROOM_TEST_REDIS_ADDR: use this host:port for [Redis] instead of
//     starting a redis-server ([StartRedis] always starts its own).
//   - DEALROOM_ROOT: the repository root (found from the working directory
//     otherwise), where testenv/mongo-java-server lives.
package testenv
