#!/usr/bin/env bash
# cmd/dealroom-bench/run.sh: build the server and the bench from the current
# tree, start servers on 127.0.0.1 (fresh ones for every run), run the
# benchmark scenarios, stop everything it started, and keep the results in
# one directory:
#   NAME.json         the bench's result (NAME.r2.json ... for repeated runs)
#   NAME.txt          its table; NAME.bench.log its progress
#   NAME.*.log        the logs of the servers, mongo-java-server and redis
#   summary.md        the tables of docs/benchmarks.md: the median of the runs
#   compare.md        with runs of the reference server: both side by side
#   cluster.md        with runs on a Redis Cluster: each beside its twin on
#                     one Redis node
#   machine.txt       the machine, the date and the commit
#
#   cmd/dealroom-bench/run.sh                   # every scenario
#   cmd/dealroom-bench/run.sh b1000 c           # only these
#   OUT=/tmp/bench REPEAT=1 PROFILE=1 cmd/dealroom-bench/run.sh b1000-prof
#   cmd/dealroom-bench/run.sh vs                # side by side with Centrifuge
#   cmd/dealroom-bench/run.sh vk-me200 vk-mc    # one Redis node, then a Redis Cluster
#
# Scenarios, on the embedded store (bbolt in a temporary data directory):
#   a1k a5k a10k     idle devices, server memory per connection
#   b200 b500 b1000  100 rooms x 10 devices at 200, 500, 1000 writes/s
#   c                one room, 2000 devices, 20 writes/s
#   d                catch-up of 10000 missed events
#   f                b200 while one member of a room of 300 posts maximal
#                    @-mention floods at 40/s (the rate limit allows 50)
# and on MongoDB + Redis (mongo-java-server, an in-memory Java server that
# speaks the MongoDB wire protocol, not a real MongoDB; redis-server):
#   mb200 mb500 mb1000  as b200, b500, b1000, on one instance
#   md               d on one instance
#   rooms mrooms     ROOMS rooms (10000) with HISTORY messages each (2000),
#                    written by `dealroom-bench seed` before the server
#                    starts (rooms: into its data directory, or a copy of
#                    ROOMS_SEED, a directory with data/ and manifest.json
#                    from an earlier seed, or with ROOMS_SEED_LINK=1 a
#                    hard link to its file, for a seed the disk cannot
#                    hold twice: the run then writes into the seed; mrooms:
#                    MongoDB + Redis), one device each: heap per followed
#                    room
#   me200 me500 me   as b200, b500, b1000 on two instances: writers on one,
#                    devices on the other
#   mc               c with the writer on one instance, the devices on the other
# and the same with the broker on a Redis Cluster that run.sh starts for the
# run (three primaries and three replicas, redis-server in cluster mode on
# 127.0.0.1, joined by `redis-cli --cluster create`, as internal/testenv
# starts one for the tests; sharded pub/sub):
#   ke200 ke500 ke kc  as me200, me500, me, mc
#   vk-S             S (me200, me500, me or mc) and its twin on the Cluster
#                    (ke200 ...) in turn, each REPEAT times (S, kS, S.r2,
#                    kS.r2, ...); cluster.md has both side by side
#   vs-cluster       vk-me200 vk-me500 vk-me vk-mc
# Side by side with the reference server on Centrifuge
# (cmd/dealroom-bench/centrifuge, a module of its own: the fan-out alone,
# in memory, storing nothing), measured by the same client:
#   cf-a1k cf-a5k cf-a10k cf-b200 cf-b500 cf-b1000 cf-c
#                    as a1k ... c, against the reference server
#   vs-S             S and cf-S in turn, each REPEAT times (S, cf-S, S.r2,
#                    cf-S.r2, ...), so that a busy spell of the machine
#                    falls on both; compare.md has the ratios
#   vs               vs-b1000 vs-c vs-a10k: the targets of issue 12
# Diagnostics (with PROFILE=1, DIAG=1 or PPROF=1; the profiled ones once,
# as profiling slows the server down):
#   b1000-prof c-prof mb1000-prof me-prof
#                    `perf record` of the server(s) during the measured
#                    window: NAME.perf.txt (functions), NAME.perf-dso.txt
#   b1000-fsync      the server's fdatasync calls traced: NAME.fsync.txt
#   b1000-tmpfs      the store on tmpfs, where fdatasync costs nothing
#   b1000-gogc400    the server with GOGC=400: a quarter of the collections
#   b1000-gctrace    the server with GODEBUG=gctrace=1: when it collects
#   b1000-trace      the same variant's execution trace of the measured
#                    window (NAME.trace, for `go tool trace`): what the
#                    server did in the slowest moments
#   a10k-pprof b1000-pprof c-pprof
#                    an analysis variant of the server, built with
#                    `go build -overlay` and cmd/dealroom-bench/pprof.go.overlay
#                    (the tree is not changed), that serves net/http/pprof on
#                    a port of its own: NAME.heap.txt, NAME.cpu.txt,
#                    NAME.goroutine.txt
#
# Environment:
#   OUT          result directory (default /tmp/dealroom-bench-results/DATE)
#   REPEAT       runs of every scenario but the diagnostics (3)
#   DURATION     writing time of the fanout scenarios, in seconds (20s)
#   PROFILE=1, DIAG=1, PPROF=1   add the diagnostics above to the default list
#   WAIT_QUIET   how long to wait for other processes to leave the machine
#                quiet before measuring (15m; this machine may be shared)
#   MAX_OTHER    a run during which other processes used more cores than
#                this is run again on fresh servers (0.1), up to TRIES
#                times (4)
#   MONGO_URI    a MongoDB to use instead of starting mongo-java-server
#                (mongodb://host:port, no database: every run gets a
#                database of its own, dealroom_bench_RUN_NAME, left behind)
#   JAVA_OPTS    the JVM options of mongo-java-server (-Xmx4g)
#   SERVER_BIN   a dealroom binary to measure instead of building one from
#                the tree (another commit's, built in a worktree of its own)
#   STORE_TMPFS=1  every embedded store on tmpfs (/dev/shm), where
#                fdatasync costs nothing: any diagnostic without the disk
#                (b1000-trace, b1000-pprof)
#   SERVER_ENV   more VAR=VALUE settings for every Dealroom server, space
#                separated (SERVER_ENV="GOMAXPROCS=1 GOGC=200")
#   RATE_LIMIT   the servers' DEALROOM_RATE_LIMIT (default: the server's
#                own, 50/s per user; the bench keeps each user under 40/s)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${OUT:-${TMPDIR:-/tmp}/dealroom-bench-results/$(date +%Y%m%d-%H%M%S)}"
repeat="${REPEAT:-3}"
duration="${DURATION:-20s}"
wait_quiet="${WAIT_QUIET:-15m}"
max_other="${MAX_OTHER:-0.1}"
tries="${TRIES:-4}"
mkdir -p "$out"
work="$(mktemp -d /tmp/dealroom-bench.XXXXXX)"
pids=()
data_root=""
attempt=1
disturbed=0

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'run.sh: %s\n' "$*" >&2
	exit 1
}

# stop_all ends the processes this script started, by their pids.
stop_all() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
	if [ -n "$data_root" ]; then
		rm -rf "$data_root"
		data_root=""
	fi
}
cleanup() {
	stop_all
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n "$(ulimit -Hn)" # each websocket is a file, on both sides

log "building the server and the bench from $(git rev-parse --short HEAD 2>/dev/null || echo '?') (uncommitted changes included)"
if [ -n "${SERVER_BIN:-}" ]; then
	log "measuring the server $SERVER_BIN"
	cp "$SERVER_BIN" "$work/dealroom"
else
	go build -o "$work/dealroom" ./cmd/dealroom
fi
go build -o "$work/dealroom-bench" ./cmd/dealroom-bench
for s in "$@"; do
	case "$s" in
	vs-cluster) ;;
	cf-* | vs | vs-*)
		log "building the reference server on Centrifuge (its own module: cmd/dealroom-bench/centrifuge)"
		(cd cmd/dealroom-bench/centrifuge && go build -o "$work/centrifuge-ref" .)
		break
		;;
	esac
done
if [ "${PPROF:-}" = 1 ] || [[ " $* " == *-pprof* ]] || [[ " $* " == *-trace* ]]; then
	printf '{"Replace":{"%s":"%s"}}' "$root/cmd/dealroom/zz_bench_pprof.go" "$root/cmd/dealroom-bench/pprof.go.overlay" >"$work/overlay.json"
	go build -overlay "$work/overlay.json" -o "$work/dealroom-pprof" ./cmd/dealroom
fi
bench="$work/dealroom-bench"
secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $(git rev-parse HEAD 2>/dev/null || echo '?') ($(git status --porcelain 2>/dev/null | wc -l) files changed)"
	echo "nproc: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "kernel: $(uname -srm)"
	echo "go: $(go version)"
	echo "java: $(java -version 2>&1 | head -1 || true)"
	echo "redis: $(redis-server --version 2>/dev/null || true)"
	echo "open files: $(ulimit -n)"
	echo "free -g:"
	free -g
	echo "disk of the data directories: $(df -h /tmp | tail -1)"
} >"$out/machine.txt"

# start_server NAME [VAR=VALUE ...]: a dealroom on a free port; sets
# server_url and server_pid (and pprof_url with variant=1).
start_server() {
	local name="$1"
	shift
	local port bin="$work/dealroom" pprof_env=()
	port="$("$bench" freeport)"
	if [ "${variant:-}" = 1 ]; then
		bin="$work/dealroom-pprof"
		pprof_url="http://127.0.0.1:$("$bench" freeport)"
		pprof_env=(DEALROOM_BENCH_PPROF="${pprof_url#http://}")
	fi
	# The websocket caps are raised: the idle scenarios hold up to 10,000
	# connections of a few hundred users on one instance, and writers send
	# commands faster than a person's device would.
	env DEALROOM_ADDR="127.0.0.1:$port" DEALROOM_JWT_SECRET="$secret" \
		DEALROOM_WS_MAX_SOCKETS=1000000 DEALROOM_WS_MAX_SOCKETS_PER_USER=1000000 DEALROOM_WS_FRAME_RATE=100000 \
		${RATE_LIMIT:+DEALROOM_RATE_LIMIT="$RATE_LIMIT"} "${pprof_env[@]}" ${SERVER_ENV:-} "$@" \
		"$bin" serve >"$out/$name.log" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	server_url="http://127.0.0.1:$port"
	wait_ready "the server $name" "$out/$name.log"
}

# wait_ready WHAT LOG: waits up to ready_within seconds (30) for
# $server_url/readyz, and stops the run when the process $server_pid exits
# or is not ready by then.
wait_ready() {
	local what="$1" log="$2" within="${ready_within:-30}"
	for _ in $(seq $((within * 10))); do
		if curl -fsS "$server_url/readyz" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$server_pid" 2>/dev/null || die "$what did not start: $(tail -5 "$log")"
		sleep 0.1
	done
	die "$what is not ready after ${within}s"
}

# start_embedded NAME [VAR=VALUE ...]: a server on the embedded store, in a
# fresh data directory under $data_root (default: the work directory, on
# the disk).
start_embedded() {
	local name="$1" data
	shift
	if [ "${STORE_TMPFS:-}" = 1 ] && [ -z "$data_root" ]; then
		data_root="$(mktemp -d /dev/shm/dealroom-bench.XXXXXX)"
	fi
	data="$(mktemp -d "${data_root:-$work}/data.XXXXXX")"
	start_server "$name" DEALROOM_DATA_DIR="$data" "$@"
	server_data="$data"
}

# start_reference NAME: the reference server on Centrifuge on a free port;
# sets server_url and server_pid.
start_reference() {
	local name="$1" port
	port="$("$bench" freeport)"
	"$work/centrifuge-ref" -addr "127.0.0.1:$port" -secret "$secret" >"$out/$name.log" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	server_url="http://127.0.0.1:$port"
	wait_ready "the reference server $name" "$out/$name.log"
}

# start_backends NAME: a redis-server and a mongo-java-server on free
# ports; sets redis_url, mongo_uri, redis_aux and mongo_pid.
start_backends() {
	start_redis "$1"
	start_mongo "$1"
}

# start_cluster_backends NAME: a Redis Cluster (start_cluster) and a
# mongo-java-server.
start_cluster_backends() {
	start_cluster "$1"
	start_mongo "$1"
}

# start_redis NAME: one redis-server on a free port; sets redis_url and
# redis_aux.
start_redis() {
	local name="$1" port pid
	command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
	port="$("$bench" freeport)"
	redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --daemonize no --save '' --appendonly no \
		--dir "$work" --loglevel warning >"$out/$name.redis.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	redis_url="redis://127.0.0.1:$port"
	redis_aux="redis=$pid"
	wait_redis "$port" "$pid" "$out/$name.redis.log"
}

# wait_redis PORT PID LOG: waits up to 10s for the redis-server PID to
# answer PING on PORT.
wait_redis() {
	local port="$1" pid="$2" log="$3"
	for _ in $(seq 100); do
		if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || die "redis-server did not start: $(tail -5 "$log")"
		sleep 0.1
	done
	die "redis-server on port $port did not answer in 10s: $(tail -5 "$log")"
}

# start_cluster NAME: a Redis Cluster of three primaries and three replicas,
# redis-server in cluster mode on free ports of 127.0.0.1 (client and
# cluster bus ports), nothing kept on disk but each node's cluster file,
# joined by `redis-cli --cluster create`; returns once every node reports
# cluster_state:ok. Sets redis_url (redis-cluster://, three nodes as seeds:
# the client learns the rest from them) and redis_aux (redis1=PID, ...,
# redis6=PID: each node's CPU is reported apart). The node timeout is 5s,
# not the tests' 1s: on a busy machine a node that is slow to answer must
# not be failed over in the middle of a measurement.
start_cluster() {
	local name="$1" dir i port bus pid ports=() addrs=()
	command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
	command -v redis-cli >/dev/null || die "redis-cli is not installed (apt-get install redis-tools)"
	dir="$(mktemp -d "$work/cluster.XXXXXX")"
	redis_aux=""
	for i in 1 2 3 4 5 6; do
		port="$("$bench" freeport)"
		bus="$("$bench" freeport)"
		redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 --protected-mode yes --daemonize no \
			--cluster-enabled yes --cluster-config-file "nodes-$i.conf" --cluster-node-timeout 5000 \
			--save '' --appendonly no --dir "$dir" --dbfilename "dump-$i.rdb" --loglevel warning \
			>"$out/$name.redis$i.log" 2>&1 &
		pid=$!
		pids+=("$pid")
		wait_redis "$port" "$pid" "$out/$name.redis$i.log"
		ports+=("$port")
		addrs+=("127.0.0.1:$port")
		redis_aux+="${redis_aux:+,}redis$i=$pid"
	done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$out/$name.cluster.log" 2>&1 ||
		die "redis-cli --cluster create failed: $(tail -5 "$out/$name.cluster.log")"
	for _ in $(seq 300); do
		local ok=0
		for port in "${ports[@]}"; do
			redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && ok=$((ok + 1))
		done
		if [ "$ok" = 6 ]; then
			redis_url="redis-cluster://${addrs[0]}?addr=${addrs[1]}&addr=${addrs[2]}"
			return 0
		fi
		sleep 0.1
	done
	die "the Redis Cluster is not ok after 30s: $(redis-cli -p "${ports[0]}" cluster info | head -3 | tr '\r\n' '  ')"
}

# start_mongo NAME: a mongo-java-server on a free port (or a database of
# MONGO_URI); sets mongo_uri and mongo_pid.
start_mongo() {
	local name="$1" jar="$root/testenv/mongo-java-server/target/mongo-java-server-testenv.jar"
	if [ -z "${MONGO_URI:-}" ] && ! command -v java >/dev/null; then
		die "java is not installed (or set MONGO_URI)"
	fi
	if [ -z "${MONGO_URI:-}" ] && [ ! -f "$jar" ]; then
		log "building mongo-java-server with Maven"
		(cd "$root/testenv/mongo-java-server" && mvn -B -q package) || die "mvn package failed"
	fi
	if [ -n "${MONGO_URI:-}" ]; then
		mongo_uri="${MONGO_URI%/}/dealroom_bench_$(echo "$name" | tr -c 'a-zA-Z0-9\n' _)_$RANDOM"
		mongo_pid=""
		return 0
	fi
	rm -f "$work/mongo.out"
	java ${JAVA_OPTS:--Xmx4g} -jar "$jar" --host 127.0.0.1 --port 0 --ignore-stdin >"$work/mongo.out" 2>"$out/$name.mongo.log" &
	mongo_pid=$!
	pids+=("$mongo_pid")
	for _ in $(seq 300); do
		if grep -q '^LISTENING ' "$work/mongo.out" 2>/dev/null; then
			break
		fi
		kill -0 "$mongo_pid" 2>/dev/null || die "mongo-java-server did not start: $(tail -5 "$out/$name.mongo.log")"
		sleep 0.1
	done
	local addr
	addr="$(sed -n 's/^LISTENING //p' "$work/mongo.out" | head -1)"
	[ -n "$addr" ] || die "mongo-java-server did not say where it listens"
	mongo_uri="mongodb://$addr/dealroom_bench"
}

# aux_pids: the -aux-pid value for the backends this script started.
aux_pids() {
	echo "$redis_aux${mongo_pid:+,mongo=$mongo_pid}"
}

start_mongo_redis() {
	local name="$1"
	shift
	start_server "$name" DEALROOM_MONGO_URI="$mongo_uri" DEALROOM_REDIS_URL="$redis_url" "$@"
}

# run_bench NAME ARGS...: runs the bench once. When other processes
# disturbed it (exit status 3), its files are set aside as
# NAME.busyN.* and `disturbed` is set: the main loop runs the scenario
# again, on fresh servers.
run_bench() {
	local name="$1" rc
	shift
	log "$name: dealroom-bench $*"
	set +e
	"$bench" -secret "$secret" -label "$name" -json "$out/$name.json" \
		-wait-quiet "$wait_quiet" -max-other-cores "$max_other" "$@" \
		>"$out/$name.txt" 2>"$out/$name.bench.log"
	rc=$?
	set -e
	cat "$out/$name.txt" >&2
	case "$rc" in
	0) ;;
	3)
		disturbed=1
		mv "$out/$name.json" "$out/$name.busy$attempt.json.disturbed"
		mv "$out/$name.txt" "$out/$name.busy$attempt.txt"
		;;
	*) die "$name failed (exit $rc): $(tail -5 "$out/$name.bench.log")" ;;
	esac
}

# profiled NAME PIDS BENCH-ARGS...: the bench with perf recording the
# server processes (comma-separated PIDS) during the measured window.
profiled() {
	local name="$1" ppids="$2"
	shift 2
	command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
	run_bench "$name" -profile-cmd "exec perf record -F 499 -g -p $ppids -o $work/$name.perf.data" "$@"
	perf report -i "$work/$name.perf.data" --stdio --children -g none --sort sym --percent-limit 1.5 \
		>"$out/$name.perf.txt" 2>/dev/null || true
	perf report -i "$work/$name.perf.data" --stdio --no-children -g none --sort comm,dso \
		>"$out/$name.perf-dso.txt" 2>/dev/null || true
}

# profiled_fsync NAME BENCH-ARGS...: the bench with the server's
# fdatasync calls traced during the measured window; NAME.fsync.txt has
# their count, rate and durations (bbolt syncs twice per commit: the pages,
# then the meta page).
profiled_fsync() {
	local name="$1"
	shift
	command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
	run_bench "$name" -profile-cmd "exec perf record -e syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync -p $server_pid -o $work/$name.fsync.data" "$@"
	perf script -i "$work/$name.fsync.data" -F tid,time,event 2>/dev/null | awk '
		{ t = $2; sub(":", "", t); if (first == "") first = t; last = t }
		$3 ~ /enter/ { start[$1] = t; next }
		($1 in start) { print (t - start[$1]) * 1000; delete start[$1] }
		END { printf "%.3f\n", last - first > "/dev/stderr" }' 2>"$work/fsync.span" | sort -n >"$work/fsync.ms"
	awk -v span="$(cat "$work/fsync.span")" '{ d[NR] = $1; sum += $1 }
		END {
			if (NR == 0) { print "no fdatasync traced"; exit }
			printf "fdatasync calls: %d in %.1fs (%.0f/s, %.0f commits/s at two per commit)\n", NR, span, NR / span, NR / span / 2
			printf "duration ms: mean %.3f  p50 %.3f  p95 %.3f  p99 %.3f  max %.3f\n", sum / NR,
				d[int(NR * 0.50) + 1], d[int(NR * 0.95) + 1], d[int(NR * 0.99) + 1], d[NR]
			printf "time in fdatasync: %.0f%% of the window\n", 100 * sum / 1000 / span
		}' "$work/fsync.ms" >"$out/$name.fsync.txt"
	cat "$out/$name.fsync.txt" >&2
}

# twice NAME DEFAULT: twice the median p99 end-to-end of the embedded runs
# NAME of this result directory (the target of the MongoDB + Redis runs),
# or twice DEFAULT when there are none.
twice() {
	local p99=""
	p99="$(cat "$out/$1".json "$out/$1".r[0-9]*.json 2>/dev/null | jq -s -r '[.[].delivery.end_to_end.p99_ms] | sort |
		if length > 0 then .[(length - 1) / 2 | floor] else empty end' 2>/dev/null || true)"
	awk -v p="${p99:-$2}" 'BEGIN { printf "%.2f", 2 * p }'
}

# pprof_peak NAME: a command for -at-peak-cmd that keeps the variant's heap
# and goroutine profiles.
pprof_peak() {
	echo "curl -fsS -o $out/$1.heap.pb.gz $pprof_url/debug/pprof/heap &&" \
		"curl -fsS -o $out/$1.goroutine.txt '$pprof_url/debug/pprof/goroutine?debug=1' &&" \
		"curl -fsS '$pprof_url/debug/pprof/heap?debug=1' | sed -n '/^# runtime.MemStats/,\$p' >$out/$1.memstats.txt"
}

# pprof_text NAME: the variant's profiles as text.
pprof_text() {
	local f
	for f in heap cpu; do
		[ -f "$out/$1.$f.pb.gz" ] || continue
		go tool pprof -top -nodecount=60 "$work/dealroom-pprof" "$out/$1.$f.pb.gz" >"$out/$1.$f.txt" 2>/dev/null || true
		go tool pprof -top -cum -nodecount=80 "$work/dealroom-pprof" "$out/$1.$f.pb.gz" >"$out/$1.$f-cum.txt" 2>/dev/null || true
	done
}

# scenario S NAME: one run of scenario S, its files named NAME.
scenario() {
	local s="$1" n="$2" rate secs args=()
	variant=""
	case "$s" in
	a1k | a5k | a10k)
		local conns=${s#a}
		conns=$((${conns%k} * 1000))
		# What a connection costs: the growth of RSS from before the
		# connections to with them. The heap's headroom between collections
		# (DEALROOM_GC_HEADROOM, a fixed cost of the instance, up to 128
		# MiB) is left out: it would fill before the connections and hide
		# part of their cost while the live heap is under it.
		start_embedded "$n.server" DEALROOM_GC_HEADROOM=0
		run_bench "$n" -scenario a -url "$server_url" -pid "$server_pid" -conns "$conns" -rooms $((conns / 10)) -target-rss-kib 18
		;;
	b200 | b500 | b1000)
		start_embedded "$n.server"
		run_bench "$n" -scenario b -url "$server_url" -pid "$server_pid" -rate "${s#b}" -duration "$duration" -target-p99 10ms \
			-data-dir "$server_data"
		;;
	c)
		start_embedded "$n.server"
		run_bench "$n" -scenario c -url "$server_url" -pid "$server_pid" -duration "$duration" -target-p99 200ms \
			-data-dir "$server_data"
		;;
	cf-a1k | cf-a5k | cf-a10k)
		local conns=${s#cf-a}
		conns=$((${conns%k} * 1000))
		start_reference "$n.server"
		run_bench "$n" -target centrifuge -scenario a -url "$server_url" -pid "$server_pid" -conns "$conns" -rooms $((conns / 10))
		;;
	cf-b200 | cf-b500 | cf-b1000)
		start_reference "$n.server"
		run_bench "$n" -target centrifuge -scenario b -url "$server_url" -pid "$server_pid" -rate "${s#cf-b}" -duration "$duration"
		;;
	cf-c)
		start_reference "$n.server"
		run_bench "$n" -target centrifuge -scenario c -url "$server_url" -pid "$server_pid" -duration "$duration"
		;;
	f)
		start_embedded "$n.server"
		run_bench "$n" -scenario f -url "$server_url" -pid "$server_pid" -duration "$duration" -target-p99 10ms
		;;
	d)
		start_embedded "$n.server"
		run_bench "$n" -scenario d -url "$server_url" -pid "$server_pid" -target-catchup 1s
		;;
	b1000-prof | c-prof)
		start_embedded "$n.server"
		args=(-scenario b -rate 1000 -target-p99 10ms)
		[ "$s" = c-prof ] && args=(-scenario c -target-p99 200ms)
		profiled "$n" "$server_pid" "${args[@]}" -url "$server_url" -pid "$server_pid" -duration "$duration"
		;;
	b1000-fsync)
		start_embedded "$n.server"
		profiled_fsync "$n" -scenario b -rate 1000 -url "$server_url" -pid "$server_pid" -duration "$duration"
		;;
	b1000-tmpfs)
		[ -d /dev/shm ] || die "no /dev/shm"
		data_root="$(mktemp -d /dev/shm/dealroom-bench.XXXXXX)"
		start_embedded "$n.server"
		run_bench "$n" -scenario b -rate 1000 -url "$server_url" -pid "$server_pid" -duration "$duration" -target-p99 10ms
		;;
	b1000-gctrace)
		# Diagnostic: every collection logged (NAME.server.log, "gc N @T s"),
		# to set against the slowest stretches of NAME.json's timeline.
		start_embedded "$n.server" GODEBUG=gctrace=1
		run_bench "$n" -scenario b -rate 1000 -url "$server_url" -pid "$server_pid" -duration "$duration" -target-p99 10ms
		;;
	b1000-gogc400)
		start_embedded "$n.server" GOGC=400
		run_bench "$n" -scenario b -rate 1000 -url "$server_url" -pid "$server_pid" -duration "$duration" -target-p99 10ms
		;;
	a10k-pprof)
		variant=1
		start_embedded "$n.server"
		run_bench "$n" -scenario a -url "$server_url" -pid "$server_pid" -conns 10000 -rooms 1000 -at-peak-cmd "$(pprof_peak "$n")"
		pprof_text "$n"
		;;
	b1000-pprof | c-pprof)
		variant=1
		start_embedded "$n.server"
		args=(-scenario b -rate 1000)
		[ "$s" = c-pprof ] && args=(-scenario c)
		# The CPU profile covers the writing but its warm-up.
		secs=$(($(echo "$duration" | tr -dc 0-9) - 2))
		run_bench "$n" "${args[@]}" -url "$server_url" -pid "$server_pid" -duration "$duration" \
			-profile-cmd "exec curl -fsS -o $out/$n.cpu.pb.gz '$pprof_url/debug/pprof/profile?seconds=$secs'" \
			-at-peak-cmd "$(pprof_peak "$n")"
		pprof_text "$n"
		;;
	b1000-trace)
		variant=1
		start_embedded "$n.server"
		secs=$(($(echo "$duration" | tr -dc 0-9) - 2))
		run_bench "$n" -scenario b -rate 1000 -url "$server_url" -pid "$server_pid" -duration "$duration" \
			-profile-cmd "exec curl -fsS -o $out/$n.trace '$pprof_url/debug/pprof/trace?seconds=$secs'"
		;;
	mb200 | mb500 | mb1000 | mb1000-prof)
		start_backends "$n"
		start_mongo_redis "$n.server"
		rate=${s#mb}
		rate=${rate%-prof}
		args=(-scenario b -url "$server_url" -pid "$server_pid" -aux-pid "$(aux_pids)"
			-rate "$rate" -duration "$duration" -target-p99 "$(twice "b$rate" 10)ms")
		if [ "$s" = mb1000-prof ]; then
			profiled "$n" "$server_pid" "${args[@]}"
		else
			run_bench "$n" "${args[@]}"
		fi
		;;
	rooms)
		local data
		data="$(mktemp -d "${data_root:-$work}/data.XXXXXX")"
		if [ -n "${ROOMS_SEED:-}" ] && [ "${ROOMS_SEED_LINK:-}" = 1 ]; then
			cp -al "$ROOMS_SEED/data/." "$data/" && cp "$ROOMS_SEED/manifest.json" "$out/$n.manifest.json"
		elif [ -n "${ROOMS_SEED:-}" ]; then
			cp -a "$ROOMS_SEED/data/." "$data/" && cp "$ROOMS_SEED/manifest.json" "$out/$n.manifest.json"
		else
			"$bench" seed -data "$data" -rooms "${ROOMS:-10000}" -events "${HISTORY:-2000}" -manifest "$out/$n.manifest.json"
		fi
		# Opening a file of millions of events takes minutes: bbolt
		# walks it to find its free pages. The heap is read after a
		# collection, which with the headroom of DEALROOM_GC_HEADROOM
		# could wait long on idle devices: Go's own pacing here.
		ready_within=900 start_server "$n.server" DEALROOM_DATA_DIR="$data" DEALROOM_GC_HEADROOM=0
		run_bench "$n" -scenario rooms -manifest "$out/$n.manifest.json" -url "$server_url" -pid "$server_pid" -settle 75s
		;;
	mrooms)
		start_backends "$n"
		# One writer per room: concurrent appends to one room clash on
		# MongoDB and are tried again.
		"$bench" seed -mongo "$mongo_uri" -rooms "${ROOMS:-10000}" -events "${HISTORY:-2000}" -room-writers 1 \
			-manifest "$out/$n.manifest.json"
		start_mongo_redis "$n.server" DEALROOM_GC_HEADROOM=0
		# mongo-java-server scans a collection for each query: devices
		# subscribe ten at a time, so that each one's reads end in time.
		run_bench "$n" -scenario rooms -manifest "$out/$n.manifest.json" -url "$server_url" -pid "$server_pid" -aux-pid "$(aux_pids)" \
			-settle 75s -dial-concurrency 10
		;;
	md)
		start_backends "$n"
		start_mongo_redis "$n.server"
		run_bench "$n" -scenario d -url "$server_url" -pid "$server_pid" -aux-pid "$(aux_pids)" -target-catchup 1s
		;;
	me | me200 | me500 | me-prof | mc | ke | ke200 | ke500 | kc)
		# k...: the same, with the broker on a Redis Cluster.
		case "$s" in
		k*) start_cluster_backends "$n" ;;
		*) start_backends "$n" ;;
		esac
		start_mongo_redis "$n.server1"
		local url1="$server_url" pid1="$server_pid"
		start_mongo_redis "$n.server2"
		rate=1000
		case "$s" in me200 | me500 | ke200 | ke500) rate=${s#?e} ;; esac
		args=(-scenario e -url "$url1,$server_url" -pid "$pid1,$server_pid"
			-aux-pid "$(aux_pids)" -duration "$duration")
		if [ "$s" = mc ] || [ "$s" = kc ]; then
			args+=(-conns 2000 -rooms 1 -rate 20 -target-p99 "$(twice c 200)ms")
		else
			args+=(-rate "$rate" -target-p99 "$(twice "b$rate" 10)ms")
		fi
		if [ "$s" = me-prof ]; then
			profiled "$n" "$pid1,$server_pid" "${args[@]}"
		else
			run_bench "$n" "${args[@]}"
		fi
		;;
	*) die "unknown scenario $s" ;;
	esac
	stop_all
}

all=(a1k a5k a10k b200 b500 b1000 c d mb200 mb500 mb1000 md me200 me500 me mc)
[ "${PROFILE:-}" = 1 ] && all+=(b1000-prof c-prof b1000-fsync mb1000-prof me-prof)
[ "${DIAG:-}" = 1 ] && all+=(b1000-tmpfs b1000-gogc400 b1000-gctrace)
[ "${PPROF:-}" = 1 ] && all+=(a10k-pprof b1000-pprof c-pprof b1000-trace)
[ $# -gt 0 ] && all=("$@")
if [ "${all[*]}" = vs ]; then
	all=(vs-b1000 vs-c vs-a10k)
fi
expanded=()
for s in "${all[@]}"; do
	case "$s" in
	vs-cluster) expanded+=(vk-me200 vk-me500 vk-me vk-mc) ;;
	*) expanded+=("$s") ;;
	esac
done
all=("${expanded[@]}")
for s in "${all[@]}"; do
	runs="$repeat"
	case "$s" in *-prof | *-fsync | *-pprof | *-trace) runs=1 ;; esac
	# vs-S runs S and the reference server's cf-S in turn.
	turns=("$s")
	# vk-mS runs mS and its twin on a Redis Cluster, kS.
	case "$s" in
	vs-*) turns=("${s#vs-}" "cf-${s#vs-}") ;;
	vk-m*) turns=("${s#vk-}" "k${s#vk-m}") ;;
	vk-*) die "$s: vk- pairs a single-node scenario (me200, me500, me, mc) with its Cluster twin" ;;
	esac
	for r in $(seq "$runs"); do
		for t in "${turns[@]}"; do
			name="$t"
			[ "$r" -gt 1 ] && name="$t.r$r"
			for attempt in $(seq "$tries"); do
				disturbed=0
				scenario "$t" "$name"
				[ "$disturbed" = 0 ] && break
				log "$name: other processes disturbed the run (see $name.busy$attempt.txt)"
			done
			if [ "$disturbed" = 1 ]; then
				# Keep the last disturbed run; its problems say that it was.
				cp "$out/$name.busy$tries.json.disturbed" "$out/$name.json"
				cp "$out/$name.busy$tries.txt" "$out/$name.txt"
				log "$name: still disturbed after $tries tries; kept the last run"
			fi
		done
	done
done
"$bench" summary "$out"/*.json >"$out/summary.md"
cat "$out/summary.md" >&2
if compgen -G "$out/cf-*.json" >/dev/null; then
	"$bench" compare "$out"/*.json >"$out/compare.md" || true
	cat "$out/compare.md" >&2
fi
if compgen -G "$out/k*.json" >/dev/null; then
	"$bench" compare-cluster "$out"/*.json >"$out/cluster.md" || true
	cat "$out/cluster.md" >&2
fi
log "results in $out"
