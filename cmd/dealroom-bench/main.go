// Command dealroom-bench measures a running Dealroom server from outside,
// over real websockets and HTTP: end-to-end delivery delay, write
// acknowledgement delay, throughput, exactly-once delivery, server memory
// per idle connection and the catch-up of missed events.
//
//	dealroom-bench -url http://127.0.0.1:8080 -secret $DEALROOM_JWT_SECRET -scenario b
//	dealroom-bench freeport    print a free TCP port on 127.0.0.1 (for run.sh)
//	dealroom-bench summary RESULT.json...   markdown tables of results (median of repeated runs)
//	dealroom-bench compare RESULT.json...   Dealroom's runs NAME beside the reference server's cf-NAME, with ratios
//	dealroom-bench compare-cluster RESULT.json...   runs on one Redis node (mNAME) beside their twins on a Redis Cluster (kNAME)
//
// It creates its own rooms and members through the REST API, signing
// tokens with the server's HS256 secret. Scenarios (flags given override
// the preset):
//
//	a, idle     -conns 10000 -rooms 1000: idle subscribed devices; memory per connection (-pid)
//	b, fanout   -conns 1000 -rooms 100 -rate 1000: writes fanned out to the subscribers
//	c           -conns 2000 -rooms 1 -rate 20: one big room
//	d, catchup  -events 10000: devices subscribe from 0 to a room with that many events
//	e           b with writers on the first -url and readers on the others
//	f           b at 200 writes/s while one member of a room of 300 posts
//	            maximal @-mention floods at 40/s (-flood-rate): the other
//	            rooms' p99 should not move
//	rooms       -manifest FILE -events 100 -rate 100: one device per room
//	            written by `dealroom-bench seed` (scenario_rooms.go); heap
//	            per followed room
//
// With -target centrifuge it drives the reference server of
// cmd/dealroom-bench/centrifuge instead (scenarios a, b and c): the same
// client code, the same payload and accounting, Centrifuge's framing.
//
// Run cmd/dealroom-bench/run.sh to build and start servers and run them all;
// docs/benchmarks.md has the figures.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "freeport" {
		port, err := freePort()
		if err != nil {
			fmt.Fprintln(os.Stderr, "dealroom-bench:", err)
			os.Exit(1)
		}
		fmt.Println(port)
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "seed" {
		if err := runSeed(context.Background(), os.Args[2:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "dealroom-bench:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "summary" || os.Args[1] == "compare" || os.Args[1] == "compare-cluster") {
		sum := runSummary
		switch os.Args[1] {
		case "compare":
			sum = runCompare
		case "compare-cluster":
			sum = runCompareCluster
		}
		if err := sum(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "dealroom-bench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errBusy) {
			os.Exit(3)
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dealroom-bench:", err)
		}
		os.Exit(1)
	}
}

// Config is a run's settings.
type Config struct {
	URLs       []string
	PIDs       []int
	AuxPIDs    []auxPID
	Secret     string
	Scenario   string // idle, fanout or catchup, after presets
	Preset     string // what -scenario said
	Target     string // dealroom, or centrifuge: the reference server
	Label      string
	Conns      int
	Rooms      int
	RoomUsers  int
	UserRate   float64 // most writes per second per writer user
	Rate       float64
	Duration   time.Duration
	Warmup     time.Duration
	WSWrites   float64
	Events     int
	Manifest   string // rooms: what `dealroom-bench seed` wrote
	BodyBytes  int
	JSON       string
	DialConc   int
	SetupConc  int
	Settle     time.Duration
	ProfileCmd string
	DataDir    string // the server's data directory, to size the store
	AtPeakCmd  string
	// A shared machine: wait for quiet, and flag runs that others disturbed.
	WaitQuiet     time.Duration
	QuietCores    float64
	MaxOtherCores float64
	// Targets checked in the result (zero: none).
	TargetP99     time.Duration
	TargetRSSKiB  float64
	TargetCatchup time.Duration
	// A mention flood beside the fanout (-flood-rate): one member of a
	// room of FloodMembers posts maximal mention floods.
	FloodRate    float64
	FloodMembers int
}

// auxPID is a process the server depends on (mongo, redis), whose CPU
// time is reported apart.
type auxPID struct {
	name string
	pid  int
}

type preset struct {
	kind                  string
	conns, rooms, events  int
	rate                  float64
	duration              time.Duration
	needsSeveralInstances bool
	floodRate             float64
}

var presets = map[string]preset{
	"a":       {kind: "idle", conns: 10000, rooms: 1000},
	"idle":    {kind: "idle", conns: 10000, rooms: 1000},
	"b":       {kind: "fanout", conns: 1000, rooms: 100, rate: 1000, duration: 20 * time.Second},
	"fanout":  {kind: "fanout", conns: 1000, rooms: 100, rate: 1000, duration: 20 * time.Second},
	"c":       {kind: "fanout", conns: 2000, rooms: 1, rate: 20, duration: 20 * time.Second},
	"d":       {kind: "catchup", conns: 1, rooms: 1, events: 10000},
	"catchup": {kind: "catchup", conns: 1, rooms: 1, events: 10000},
	"e":       {kind: "fanout", conns: 1000, rooms: 100, rate: 1000, duration: 20 * time.Second, needsSeveralInstances: true},
	"f":       {kind: "fanout", conns: 1000, rooms: 100, rate: 200, duration: 20 * time.Second, floodRate: 40},
	"rooms":   {kind: "rooms", conns: 1, rooms: 1 << 30, events: 100, rate: 100, duration: 10 * time.Second},
}

// listFlag collects a flag given several times or comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	var urls, pids, aux listFlag
	fs := flag.NewFlagSet("dealroom-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&urls, "url", "server base URL; repeat or comma-separate for several instances: writers use the first, readers the others (default http://127.0.0.1:8080)")
	fs.Var(&pids, "pid", "server process id(s), in the order of -url, to read RSS and CPU time from /proc (same machine only)")
	fs.Var(&aux, "aux-pid", "NAME=PID of a process the servers depend on (mongo=123,redis=456): its CPU time is reported apart")
	fs.DurationVar(&c.WaitQuiet, "wait-quiet", 0, "before measuring, wait up to this long until other processes leave the machine quiet (a shared machine)")
	fs.Float64Var(&c.QuietCores, "quiet-cores", 0.15, "what -wait-quiet calls quiet: other processes use less than this many cores")
	fs.Float64Var(&c.MaxOtherCores, "max-other-cores", 0, "if other processes used more cores than this during the measurement, say so and exit with status 3 (0: do not check)")
	fs.StringVar(&c.Secret, "secret", "", "the server's HS256 secret, to mint tokens ($DEALROOM_JWT_SECRET)")
	fs.StringVar(&c.Preset, "scenario", "b", "a|idle, b|fanout, c, d|catchup, e, f (see the package doc)")
	fs.StringVar(&c.Label, "label", "", "name of the run in the report")
	fs.StringVar(&c.Target, "target", "dealroom", "dealroom, or centrifuge: the reference server of cmd/dealroom-bench/centrifuge (scenarios a, b, c)")
	fs.IntVar(&c.Conns, "conns", 0, "subscribed devices (catchup: devices catching up at once)")
	fs.IntVar(&c.Rooms, "rooms", 0, "rooms; devices are spread over them")
	fs.IntVar(&c.RoomUsers, "room-users", 0, "distinct subscriber users per room, all members (0: one per device, at most 400)")
	fs.Float64Var(&c.UserRate, "user-rate", 40, "most writes per second per writer user (the server limits each user to DEALROOM_RATE_LIMIT, 50/s)")
	fs.Float64Var(&c.Rate, "rate", 0, "writes per second, over all rooms (fanout)")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to write (fanout)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "first part of -duration whose writes are not measured")
	fs.Float64Var(&c.WSWrites, "ws-writes", 0.5, "fraction of writes sent as websocket commands instead of REST requests")
	fs.IntVar(&c.Events, "events", 0, "missed events to catch up (catchup; rooms: per device)")
	fs.StringVar(&c.Manifest, "manifest", "", "rooms: the rooms `dealroom-bench seed` wrote")
	fs.IntVar(&c.BodyBytes, "body-bytes", 100, "size of a written message's body")
	fs.StringVar(&c.JSON, "json", "", "write the result as JSON to this file")
	fs.IntVar(&c.DialConc, "dial-concurrency", 100, "websocket dials at once")
	fs.IntVar(&c.SetupConc, "setup-concurrency", 32, "set-up requests at once")
	fs.DurationVar(&c.Settle, "settle", 5*time.Second, "idle: wait this long with every device connected before reading the memory")
	fs.StringVar(&c.DataDir, "data-dir", "", "fanout: the server's data directory (same machine): its size per stored event is reported")
	fs.StringVar(&c.ProfileCmd, "profile-cmd", "", "shell command started when the measured window starts and sent SIGINT when it ends (for example perf record -p PID)")
	fs.StringVar(&c.AtPeakCmd, "at-peak-cmd", "", "shell command run (and waited for) while every device is still connected, after the measurement (for example a heap profile download)")
	fs.DurationVar(&c.TargetP99, "target-p99", 0, "fanout: check p99 end-to-end against this")
	fs.Float64Var(&c.TargetRSSKiB, "target-rss-kib", 0, "idle: check server RSS per connection against this")
	fs.Float64Var(&c.FloodRate, "flood-rate", 0, "fanout: one member of a room of -flood-members also posts maximal @-mention floods at this rate (0: none)")
	fs.IntVar(&c.FloodMembers, "flood-members", 300, "members of the flood room")
	fs.DurationVar(&c.TargetCatchup, "target-catchup", 0, "catchup: check the time until subscribed against this")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	p, ok := presets[c.Preset]
	if !ok {
		return c, fmt.Errorf("-scenario %q: want a, b, c, d, e, f, idle, fanout or catchup", c.Preset)
	}
	c.Scenario = p.kind
	if !set["conns"] {
		c.Conns = p.conns
	}
	if !set["rooms"] {
		c.Rooms = p.rooms
	}
	if !set["rate"] {
		c.Rate = p.rate
	}
	if !set["duration"] {
		c.Duration = p.duration
	}
	if !set["events"] {
		c.Events = p.events
	}
	if !set["flood-rate"] {
		c.FloodRate = p.floodRate
	}
	if c.Secret == "" {
		c.Secret = getenv("DEALROOM_JWT_SECRET")
	}
	if len(urls) == 0 {
		urls = listFlag{"http://127.0.0.1:8080"}
	}
	for _, u := range urls {
		c.URLs = append(c.URLs, strings.TrimRight(u, "/"))
	}
	for _, s := range pids {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("-pid %q is not a process id", s)
		}
		c.PIDs = append(c.PIDs, n)
	}
	for _, s := range aux {
		name, v, ok := strings.Cut(s, "=")
		n, err := strconv.Atoi(v)
		if !ok || name == "" || err != nil || n <= 0 {
			return c, fmt.Errorf("-aux-pid %q: want NAME=PID", s)
		}
		c.AuxPIDs = append(c.AuxPIDs, auxPID{name, n})
	}
	switch {
	case c.Secret == "":
		return c, errors.New("-secret (or DEALROOM_JWT_SECRET) is required: the server's HS256 secret")
	case p.needsSeveralInstances && len(c.URLs) < 2:
		return c, errors.New("scenario e needs two -url: writers on the first, readers on the others")
	case len(c.PIDs) > len(c.URLs):
		return c, errors.New("more -pid than -url")
	case c.Rooms < 1 || c.Conns < 1:
		return c, errors.New("-rooms and -conns must be at least 1")
	case c.Scenario == "fanout" && (c.Rate <= 0 || c.Duration <= c.Warmup):
		return c, errors.New("fanout needs -rate > 0 and -duration longer than -warmup")
	case c.Scenario == "catchup" && c.Events < 1:
		return c, errors.New("catchup needs -events")
	case c.WSWrites < 0 || c.WSWrites > 1:
		return c, errors.New("-ws-writes is a fraction between 0 and 1")
	case c.UserRate <= 0:
		return c, errors.New("-user-rate must be positive")
	case c.FloodRate < 0 || (c.FloodRate > 0 && c.FloodMembers < 1):
		return c, errors.New("-flood-rate must be 0 or more, with -flood-members at least 1")
	case c.Target != "dealroom" && c.Target != "centrifuge":
		return c, fmt.Errorf("-target %q: want dealroom or centrifuge", c.Target)
	case c.Target == "centrifuge" && (c.Scenario == "catchup" || c.FloodRate > 0 || len(c.URLs) > 1):
		return c, errors.New("-target centrifuge runs scenarios a, b and c on one instance: it stores nothing to catch up from")
	}
	if c.Scenario == "catchup" {
		c.Rooms = 1
	}
	if c.RoomUsers <= 0 {
		c.RoomUsers = min((c.Conns+c.Rooms-1)/c.Rooms, 400)
	}
	c.BodyBytes = max(c.BodyBytes, 40)
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	limit, err := raiseFileLimit()
	if err != nil {
		fmt.Fprintln(stderr, "dealroom-bench: cannot raise the open files limit:", err)
	}
	if need := uint64(cfg.Conns + 200); limit > 0 && limit < need {
		return fmt.Errorf("%d connections need about %d open files; the limit is %d (raise the hard limit: ulimit -Hn)", cfg.Conns, need, limit)
	}
	b, err := newBench(cfg, stderr)
	if err != nil {
		return err
	}
	b.res.Machine = machine(limit)
	defer b.close()
	for _, c := range b.clients {
		if err := c.readyz(ctx, 30*time.Second); err != nil {
			return err
		}
	}
	switch cfg.Scenario {
	case "idle":
		err = b.idle(ctx)
	case "fanout":
		err = b.fanout(ctx)
	case "catchup":
		err = b.catchup(ctx)
	case "rooms":
		err = b.followedRooms(ctx)
	}
	if err != nil {
		return err
	}
	printReport(stdout, b.res)
	if cfg.JSON != "" {
		if err := writeJSON(cfg.JSON, b.res); err != nil {
			return err
		}
	}
	if b.busy {
		return errBusy
	}
	return nil
}

// errBusy says that other processes disturbed the measurement: exit status 3.
var errBusy = errors.New("other processes disturbed the measurement (-max-other-cores)")

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
