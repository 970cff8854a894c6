package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"dealroom"

	"github.com/coder/websocket"
)

// benchRoom is a room the bench made, with its people.
type benchRoom struct {
	index     int
	id        string
	owner     string
	ownerTok  string
	writers   []*writer
	subTokens []string
	subs      int // devices following it
	head      int64
	// ackedMeasured counts acknowledged writes of the measured window.
	ackedMeasured atomic.Int64
	sent          atomic.Int64 // writes sent into it
}

// bench is one run against one or several servers.
type bench struct {
	cfg        Config
	log        io.Writer
	res        *Result
	clk        clock
	win        window
	hc         *http.Client // REST
	dialHC     *http.Client // websocket handshakes
	clients    []*client    // one per -url
	writer     *client      // where writes and set-up go
	readerURLs []string
	mint       *minter
	runID      string

	rooms        []*benchRoom
	subs         []*subscriber
	writers      []*writer
	lastPresence atomic.Int64
	profile      *exec.Cmd

	cpu0        cpuPoint
	quietWaited time.Duration
	busy        bool // other processes disturbed the measurement
	probes      []serverProbe
}

type serverProbe struct {
	client  *client
	pid     int
	start   procSample
	metrics map[string]float64
}

func newBench(cfg Config, log io.Writer) (*bench, error) {
	m, err := newMinter(cfg.Secret)
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, log: log, clk: clock{start: time.Now()}, mint: m, runID: randomID(),
		hc: newHTTPClient(512), dialHC: newHTTPClient(0)}
	for _, u := range cfg.URLs {
		b.clients = append(b.clients, &client{base: u, hc: b.hc})
	}
	b.writer = b.clients[0]
	b.readerURLs = cfg.URLs[:1]
	if len(cfg.URLs) > 1 {
		b.readerURLs = cfg.URLs[1:]
	}
	b.res = &Result{Scenario: cfg.Preset, Label: cfg.Label, Started: time.Now().UTC(), Params: Params{
		Target: cfg.Target, URLs: cfg.URLs, WriterURL: cfg.URLs[0], ReaderURLs: b.readerURLs, Conns: cfg.Conns, Rooms: cfg.Rooms,
		RoomUsers: cfg.RoomUsers, WSWrites: cfg.WSWrites, BodyBytes: cfg.BodyBytes}}
	return b, nil
}

// centrifuge tells whether the server is the reference on Centrifuge.
func (b *bench) centrifuge() bool { return b.cfg.Target == "centrifuge" }

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func (b *bench) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.res.Problems = append(b.res.Problems, msg)
	b.logf("PROBLEM: %s", msg)
}

// close ends every connection left open.
func (b *bench) close() {
	for _, s := range b.subs {
		s.conn.CloseNow()
	}
	for _, w := range b.writers {
		if w.conn != nil {
			w.conn.CloseNow()
		}
	}
	b.stopProfile()
}

// setup creates the rooms (each with its own owner) and adds the writers
// (write access) and subscriber users (read access) as members. Member
// changes are made by a pool of admins so that no one user meets the
// server's rate limit.
func (b *bench) setup(ctx context.Context, writersPerRoom, subUsers int) error {
	start := time.Now()
	cfg := b.cfg
	b.rooms = make([]*benchRoom, cfg.Rooms)
	b.logf("setup: %d rooms with %d writers and %d subscriber users each", cfg.Rooms, writersPerRoom, subUsers)
	err := parallel(ctx, cfg.Rooms, cfg.SetupConc, func(ctx context.Context, i int) error {
		r := &benchRoom{index: i, owner: fmt.Sprintf("bench-%s-r%d-owner", b.runID, i)}
		r.ownerTok = b.mint.token(r.owner, dealroom.Rep)
		if b.centrifuge() {
			// A channel is there to subscribe to: nothing to create.
			r.id = fmt.Sprintf("bench-%s-r%d", b.runID, i)
			b.rooms[i] = r
			return nil
		}
		var out struct {
			ID string `json:"id"`
		}
		err := b.writer.doRetry(ctx, http.MethodPost, "/api/v1/rooms", r.ownerTok, fmt.Sprintf("room-%s-%d", b.runID, i),
			map[string]any{"name": fmt.Sprintf("Bench %s room %d", b.runID, i), "company": "Bench Corp"}, &out)
		if err != nil {
			return fmt.Errorf("creating room %d: %w", i, err)
		}
		r.id = out.ID
		b.rooms[i] = r
		return nil
	})
	if err != nil {
		return err
	}
	type add struct {
		r      *benchRoom
		user   string
		access string
	}
	var adds []add
	for _, r := range b.rooms {
		for k := range writersPerRoom {
			u := fmt.Sprintf("bench-%s-r%d-w%d", b.runID, r.index, k)
			adds = append(adds, add{r, u, "write"})
			w := &writer{user: u, token: b.mint.token(u, dealroom.Rep), room: r, pending: map[string]pendingCmd{}, done: make(chan struct{})}
			r.writers = append(r.writers, w)
			b.writers = append(b.writers, w)
		}
		for k := range subUsers {
			u := fmt.Sprintf("bench-%s-r%d-u%d", b.runID, r.index, k)
			adds = append(adds, add{r, u, "read"})
			r.subTokens = append(r.subTokens, b.mint.token(u, dealroom.Rep))
		}
	}
	if b.centrifuge() {
		adds = nil // anyone may subscribe and publish
	}
	err = parallel(ctx, len(adds), cfg.SetupConc, func(ctx context.Context, i int) error {
		a := adds[i]
		admin := b.mint.token(fmt.Sprintf("bench-%s-admin%d", b.runID, i%64), dealroom.Admin)
		err := b.writer.doRetry(ctx, http.MethodPost, "/api/v1/rooms/"+url.PathEscape(a.r.id)+"/members", admin,
			"member-"+a.user, map[string]any{"user_id": a.user, "name": a.user, "kind": "staff", "access": a.access}, nil)
		if err != nil {
			return fmt.Errorf("adding %s to room %s: %w", a.user, a.r.id, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.res.Setup = SetupStats{Seconds: time.Since(start).Seconds(), Rooms: len(b.rooms), Members: len(adds)}
	b.res.Params.WritersPerRoom = writersPerRoom
	b.logf("setup done in %.1fs", b.res.Setup.Seconds)
	return nil
}

// connectWriters opens the websocket of every writer (on the first URL).
func (b *bench) connectWriters(ctx context.Context) error {
	return parallel(ctx, len(b.writers), b.cfg.DialConc, func(ctx context.Context, i int) error {
		w := b.writers[i]
		conn, err := dial(ctx, b.dialHC, b.writer.base, w.token)
		if err != nil {
			return fmt.Errorf("writer websocket: %w", err)
		}
		w.conn, w.cf = conn, b.centrifuge()
		if w.cf {
			if err := conn.Write(ctx, websocket.MessageText, cfConnectFrame()); err != nil {
				return fmt.Errorf("writer websocket: connect: %w", err)
			}
		}
		go w.readAcks(context.Background(), b.clk)
		return nil
	})
}

// connectSubscribers opens n devices, spread over the rooms and the reader
// URLs, each subscribing from seq after; it waits until every one got
// "subscribed".
func (b *bench) connectSubscribers(ctx context.Context, n int, after int64) ([]*subscriber, error) {
	subs := make([]*subscriber, n)
	start := time.Now()
	err := parallel(ctx, n, b.cfg.DialConc, func(ctx context.Context, i int) error {
		r := b.rooms[i%len(b.rooms)]
		tok := r.subTokens[(i/len(b.rooms))%len(r.subTokens)]
		conn, err := dial(ctx, b.dialHC, b.readerURLs[i%len(b.readerURLs)], tok)
		if err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		s := &subscriber{room: r, conn: conn, clk: b.clk, win: &b.win, seq: newSeqTracker(after),
			cf: b.centrifuge(), rooms: len(b.rooms), lastPresence: &b.lastPresence, done: make(chan struct{})}
		subs[i] = s
		go s.read(context.Background())
		if err := s.subscribe(ctx, after); err != nil {
			return fmt.Errorf("device %d: subscribe: %w", i, err)
		}
		return nil
	})
	for _, s := range subs {
		if s != nil {
			b.subs = append(b.subs, s)
			s.room.subs++
		}
	}
	if err != nil {
		return nil, err
	}
	b.logf("%d devices connected in %.1fs; waiting for every \"subscribed\"", n, time.Since(start).Seconds())
	deadline := time.Now().Add(3 * time.Minute)
	for {
		waiting, dead := 0, 0
		for _, s := range subs {
			select {
			case <-s.done:
				dead++
				continue
			default:
			}
			if s.subscribedAt.Load() == 0 {
				waiting++
			}
		}
		if dead > 0 {
			return nil, fmt.Errorf("%d devices lost their connection while subscribing (first: %v)", dead, firstReadErr(subs))
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d devices got no \"subscribed\" within 3 minutes", waiting, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return subs, nil
}

func firstReadErr(subs []*subscriber) error {
	for _, s := range subs {
		select {
		case <-s.done:
			return s.readErr
		default:
		}
	}
	return nil
}

// waitPresenceQuiet waits until no presence frame arrived for a while:
// the server paces presence frames, more slowly in big rooms (one per
// 100ms per 50 devices), and a join announces itself to the whole room.
func (b *bench) waitPresenceQuiet(ctx context.Context) float64 {
	start := time.Now()
	perRoom := (len(b.subs) + len(b.rooms) - 1) / len(b.rooms)
	quiet := time.Second + time.Duration(perRoom/50)*100*time.Millisecond
	deadline := start.Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		last := time.Duration(b.lastPresence.Load())
		if b.clk.now()-last > quiet {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start).Seconds()
}

// cpuPoint is the CPU time used so far by the machine, the bench and the
// processes it watches (-pid, -aux-pid).
type cpuPoint struct {
	at      time.Time
	machine time.Duration
	self    time.Duration
	procs   map[int]procSample
	all     map[int]procCPU // every process, to name the others
}

func (b *bench) cpuNow() cpuPoint {
	p := cpuPoint{at: time.Now(), self: selfCPU(), procs: map[int]procSample{}, all: allProcs()}
	p.machine, _ = machineCPU()
	for _, pid := range b.watched() {
		if s, err := readProc(pid); err == nil {
			p.procs[pid] = s
		}
	}
	return p
}

// watched returns the pids of -pid and -aux-pid.
func (b *bench) watched() []int {
	pids := slices.Clone(b.cfg.PIDs)
	for _, a := range b.cfg.AuxPIDs {
		pids = append(pids, a.pid)
	}
	return pids
}

// load tells who kept the machine busy between two points.
func (b *bench) load(from, to cpuPoint) *Load {
	secs := to.at.Sub(from.at).Seconds()
	cores := func(d time.Duration) float64 { return d.Seconds() / secs }
	proc := func(pid int) time.Duration {
		s, ok1 := from.procs[pid]
		e, ok2 := to.procs[pid]
		if !ok1 || !ok2 {
			return 0
		}
		return e.cpuTime - s.cpuTime
	}
	l := &Load{Seconds: secs, MachineCores: cores(to.machine - from.machine), BenchCores: cores(to.self - from.self)}
	known := to.self - from.self
	for _, pid := range b.cfg.PIDs {
		known += proc(pid)
		l.ServerCores += cores(proc(pid))
	}
	for _, a := range b.cfg.AuxPIDs {
		if l.AuxCores == nil {
			l.AuxCores = map[string]float64{}
		}
		known += proc(a.pid)
		l.AuxCores[a.name] += cores(proc(a.pid))
	}
	l.OtherCores = max(cores(to.machine-from.machine-known), 0)
	// Name the busiest of the others.
	mine := map[int]bool{os.Getpid(): true}
	for _, pid := range b.watched() {
		mine[pid] = true
	}
	type busy struct {
		name  string
		cores float64
	}
	var others []busy
	var seen float64
	for pid, e := range to.all {
		s := from.all[pid] // a process started meanwhile counts from 0
		if mine[pid] || e.cpu <= s.cpu {
			continue
		}
		others = append(others, busy{fmt.Sprintf("%s[%d]", e.comm, pid), cores(e.cpu - s.cpu)})
		seen += cores(e.cpu - s.cpu)
	}
	slices.SortFunc(others, func(a, b busy) int { return cmp.Compare(b.cores, a.cores) })
	for _, o := range others[:min(len(others), 4)] {
		if o.cores >= 0.01 {
			l.TopOthers = append(l.TopOthers, fmt.Sprintf("%s %.2f", o.name, o.cores))
		}
	}
	if rest := l.OtherCores - seen; rest >= 0.05 {
		// Processes that ended within the window (a build's compiler
		// runs, tests) are gone from /proc before the bench looks.
		l.TopOthers = append(l.TopOthers, fmt.Sprintf("processes that exited meanwhile %.2f", rest))
	}
	return l
}

// waitQuiet waits, up to -wait-quiet, until the processes the bench does
// not know (other people's builds and tests on a shared machine) have used
// less than -quiet-cores for three seconds in a row.
func (b *bench) waitQuiet(ctx context.Context) {
	if b.cfg.WaitQuiet <= 0 {
		return
	}
	start := time.Now()
	deadline := start.Add(b.cfg.WaitQuiet)
	quiet, prev := 0, b.cpuNow()
	for quiet < 3 && ctx.Err() == nil {
		if time.Now().After(deadline) {
			b.problem("the machine did not become quiet within %s: other processes keep it busy", b.cfg.WaitQuiet)
			break
		}
		time.Sleep(time.Second)
		now := b.cpuNow()
		if b.load(prev, now).OtherCores < b.cfg.QuietCores {
			quiet++
		} else {
			quiet = 0
		}
		prev = now
	}
	b.quietWaited += time.Since(start)
	if w := time.Since(start); w > 5*time.Second {
		b.logf("waited %.0fs for other processes to leave the machine quiet", w.Seconds())
	}
}

// startMeasure notes the servers' and the bench's CPU, memory and metrics
// at the start of the measured part.
func (b *bench) startMeasure(ctx context.Context) {
	b.probes = nil
	for i, c := range b.clients {
		p := serverProbe{client: c}
		if i < len(b.cfg.PIDs) {
			p.pid = b.cfg.PIDs[i]
			s, err := readProc(p.pid)
			if err != nil {
				b.problem("reading /proc of pid %d: %v", p.pid, err)
				p.pid = 0
			}
			p.start = s
		}
		p.metrics, _ = scrapeMetrics(ctx, b.hc, c.base)
		b.probes = append(b.probes, p)
	}
	b.cpu0 = b.cpuNow()
}

// endMeasure fills the servers' and the machine's figures of the measured
// part.
func (b *bench) endMeasure(ctx context.Context) {
	b.res.Load = b.load(b.cpu0, b.cpuNow())
	b.res.Load.QuietWaitS = b.quietWaited.Seconds()
	// CPU times tick in 10ms: in a short window one tick of another
	// process looks like a lot, so a few ticks are let pass.
	if l, m := b.res.Load, b.cfg.MaxOtherCores; m > 0 && l.OtherCores > m && l.OtherCores*l.Seconds > 0.05 {
		b.busy = true
		b.problem("other processes used %.2f cores during the measurement (more than -max-other-cores %.2f): the figures are not the server's alone; busiest: %s",
			b.res.Load.OtherCores, m, strings.Join(b.res.Load.TopOthers, ", "))
	}
	b.res.Servers = nil
	for _, p := range b.probes {
		st := ServerStats{URL: p.client.base, PID: p.pid, MetricsBefore: p.metrics}
		if p.pid != 0 {
			if t, err := procStart(p.pid); err == nil {
				st.StartUnix = float64(t.UnixNano()) / 1e9
			}
			if s, err := readProc(p.pid); err == nil {
				st.CPUSeconds = (s.cpuTime - p.start.cpuTime).Seconds()
				st.CPUCores = st.CPUSeconds / s.at.Sub(p.start.at).Seconds()
				st.RSSStartKiB, st.RSSEndKiB = p.start.rssKiB, s.rssKiB
				if s.diskWrite >= 0 && p.start.diskWrite >= 0 {
					st.DiskWriteMiB = float64(s.diskWrite-p.start.diskWrite) / (1 << 20)
				}
			}
		}
		st.MetricsAfter, _ = scrapeMetrics(ctx, b.hc, p.client.base)
		if st.MetricsBefore != nil && st.MetricsAfter != nil {
			st.Store = storeCommits(st.MetricsBefore, st.MetricsAfter, b.res.Load.Seconds)
		}
		b.res.Servers = append(b.res.Servers, st)
	}
}

// idle measures the server's memory per connected, subscribed, idle
// device.
func (b *bench) idle(ctx context.Context) error {
	if err := b.setup(ctx, 0, b.cfg.RoomUsers); err != nil {
		return err
	}
	// The memory is read on the instance the devices connect to.
	idx := 0
	if len(b.cfg.URLs) > 1 {
		idx = 1
	}
	pid := 0
	if idx < len(b.cfg.PIDs) {
		pid = b.cfg.PIDs[idx]
	}
	srv := b.clients[idx]
	time.Sleep(2 * time.Second)
	b.waitQuiet(ctx)
	before, err := b.memory(ctx, srv, pid, 1)
	if err != nil {
		return err
	}
	b.startMeasure(ctx)
	start := time.Now()
	if _, err := b.connectSubscribers(ctx, b.cfg.Conns, 0); err != nil {
		return err
	}
	b.res.Connect = &ConnectStats{Conns: b.cfg.Conns, Seconds: time.Since(start).Seconds()}
	b.res.Connect.PresenceQuietS = b.waitPresenceQuiet(ctx)
	b.logf("all subscribed; settling %s before reading the memory", b.cfg.Settle)
	time.Sleep(b.cfg.Settle)
	after, err := b.memory(ctx, srv, pid, 3)
	if err != nil {
		return err
	}
	b.endMeasure(ctx)
	n := float64(b.cfg.Conns)
	m := &MemoryStats{Conns: b.cfg.Conns, RSSBeforeKiB: before.rss, RSSAfterKiB: after.rss,
		AnonBeforeKiB: before.anon, AnonAfterKiB: after.anon,
		HeapBeforeKiB: before.heap, HeapAfterKiB: after.heap, SysBeforeKiB: before.sys, SysAfterKiB: after.sys,
		GoroutinesBefore: before.goroutines, GoroutinesAfter: after.goroutines, SessionsAfter: after.sessions}
	if pid != 0 {
		m.RSSPerConnKiB = float64(after.rss-before.rss) / n
		m.AnonPerConnKiB = float64(after.anon-before.anon) / n
	}
	if b.cfg.AtPeakCmd != "" {
		b.runAtPeak()
	}
	m.HeapPerConnKiB = (after.heap - before.heap) / n
	m.GoroutinesPerConn = (after.goroutines - before.goroutines) / n
	b.res.Memory = m
	if after.sessions != n {
		b.problem("the server counts %.0f websocket sessions, the bench holds %d", after.sessions, b.cfg.Conns)
	}
	lost := b.closeSubscribers()
	if lost > 0 {
		b.problem("%d devices lost their connection while idle", lost)
	}
	time.Sleep(3 * time.Second)
	if closed, err := b.memory(ctx, srv, pid, 1); err == nil {
		m.RSSAfterCloseKiB, m.GoroutinesAfterDone = closed.rss, closed.goroutines
	}
	if b.cfg.TargetRSSKiB > 0 && pid != 0 {
		b.res.Targets = append(b.res.Targets, TargetCheck{Name: fmt.Sprintf("server memory per idle connection (%d conns)", b.cfg.Conns),
			Target: fmt.Sprintf("<= %.0f KiB", b.cfg.TargetRSSKiB), Value: fmt.Sprintf("%.1f KiB", m.RSSPerConnKiB),
			Met: m.RSSPerConnKiB <= b.cfg.TargetRSSKiB})
	}
	return nil
}

type memSample struct {
	rss, anon                              int64
	heap, stack, sys, goroutines, sessions float64
}

// memory reads the server's RSS (median of samples taken a second apart)
// and its Go metrics.
func (b *bench) memory(ctx context.Context, c *client, pid, samples int) (memSample, error) {
	var m memSample
	var rss, anon []int64
	for i := range samples {
		if i > 0 {
			time.Sleep(time.Second)
		}
		if pid != 0 {
			s, err := readProc(pid)
			if err != nil {
				return m, err
			}
			rss, anon = append(rss, s.rssKiB), append(anon, s.anonKiB)
		}
	}
	if len(rss) > 0 {
		slices.Sort(rss)
		slices.Sort(anon)
		m.rss, m.anon = rss[len(rss)/2], anon[len(anon)/2]
	}
	met, err := scrapeMetrics(ctx, b.hc, c.base)
	if err != nil {
		return m, err
	}
	m.heap = met["go_memstats_heap_alloc_bytes"] / 1024
	m.sys = met["go_memstats_sys_bytes"] / 1024
	m.goroutines = met["go_goroutines"]
	m.sessions = met["dealroom_ws_sessions"]
	if b.centrifuge() {
		m.sessions = met["centrifuge_ref_ws_sessions"]
	}
	return m, nil
}

// closeSubscribers closes every device and returns how many had lost
// their connection before.
func (b *bench) closeSubscribers() (lost int) {
	for _, s := range b.subs {
		select {
		case <-s.done:
			lost++
		default:
		}
		s.conn.CloseNow()
	}
	for _, s := range b.subs {
		<-s.done
	}
	b.subs = nil
	return lost
}

// fanout writes at a steady rate into every room while the devices
// follow them, and measures every event's way to every device.
func (b *bench) fanout(ctx context.Context) error {
	cfg := b.cfg
	perRoom := cfg.Rate / float64(cfg.Rooms)
	writersPerRoom := max(1, int(math.Ceil(perRoom/cfg.UserRate)))
	b.res.Params.Rate, b.res.Params.Duration, b.res.Params.Warmup = cfg.Rate, cfg.Duration.String(), cfg.Warmup.String()
	if err := b.setup(ctx, writersPerRoom, cfg.RoomUsers); err != nil {
		return err
	}
	start := time.Now()
	if cfg.WSWrites > 0 {
		if err := b.connectWriters(ctx); err != nil {
			return err
		}
	}
	if _, err := b.connectSubscribers(ctx, cfg.Conns, 0); err != nil {
		return err
	}
	b.res.Connect = &ConnectStats{Conns: cfg.Conns, Seconds: time.Since(start).Seconds()}
	if cfg.WSWrites > 0 {
		b.res.Connect.WriterConns = len(b.writers)
	}
	b.res.Connect.PresenceQuietS = b.waitPresenceQuiet(ctx)

	var floodRoom, floodTok string
	if cfg.FloodRate > 0 {
		var err error
		if floodRoom, floodTok, err = b.floodRoom(ctx); err != nil {
			return err
		}
	}
	b.waitQuiet(ctx)
	b.startMeasure(ctx)
	b.startProfile()
	var flooded chan *FloodStats
	if cfg.FloodRate > 0 {
		b.logf("one member floods a room of %d with @-mentions at %.0f/s", cfg.FloodMembers+1, cfg.FloodRate)
		flooded = make(chan *FloodStats, 1)
		go func() { flooded <- b.flood(ctx, floodRoom, floodTok) }()
	}
	b.logf("writing %.0f/s for %s", cfg.Rate, cfg.Duration)
	wr := b.writeLoad(ctx)
	if flooded != nil {
		b.res.Flood = <-flooded
	}
	b.stopProfile()
	b.endMeasure(ctx)
	b.res.Writes = wr
	if cfg.AtPeakCmd != "" {
		b.runAtPeak()
	}

	d := &DeliveryStats{}
	b.res.Delivery = d
	drainStart := time.Now()
	heads := b.readHeads(ctx)
	d.HeadsAgree = heads
	d.Drained = b.waitDrained(ctx, 30*time.Second)
	d.DrainSeconds = time.Since(drainStart).Seconds()
	if !d.Drained {
		b.problem("devices did not reach their room's head within 30s of the last write")
	}
	subs := b.subs
	d.ConnsLost = b.closeSubscribers()
	lostWriters := 0
	for _, w := range b.writers {
		if w.conn == nil {
			continue
		}
		select {
		case <-w.done:
			lostWriters++
			if lostWriters == 1 {
				b.problem("a writer's websocket ended before the end: %v", w.err)
			}
		default:
		}
		w.conn.CloseNow()
		<-w.done
	}
	if lostWriters > 0 {
		b.problem("%d of %d writer websockets ended before the end; their unanswered commands count as failed", lostWriters, len(b.writers))
	}
	var delays, sent []int64
	for _, s := range subs {
		d.Accounting.add(s.seq.check(s.room.head))
		delays = append(delays, s.delays...)
		sent = append(sent, s.sentAt...)
		d.Resyncs += s.resyncs
		d.ErrorFrames += s.errFrames
		d.PresenceFrames += s.presence
		if s.errFrames > 0 && len(b.res.Problems) < 10 {
			b.problem("error frame: %s", s.lastError)
		}
	}
	b.eventSizes(d, subs)
	d.Timeline = timeline(sent, delays, b.win.from.Load(), 250*time.Millisecond)
	d.WindowStart = float64(b.clk.start.Add(time.Duration(b.win.from.Load())).UnixNano()) / 1e9
	d.EndToEnd = summarize(delays)
	d.Deliveries = int64(len(delays))
	for _, r := range b.rooms {
		d.ExpectedMeasured += r.ackedMeasured.Load() * int64(r.subs)
	}
	d.DeliveriesPerSec = float64(d.Deliveries) / wr.WindowSeconds
	if a := d.Accounting; a.Lost > 0 || a.Duplicated > 0 || a.Unknown > 0 {
		b.problem("exactly-once broken: %d lost, %d doubled, %d unknown", a.Lost, a.Duplicated, a.Unknown)
	}
	if d.ConnsLost > 0 {
		b.problem("%d devices lost their connection", d.ConnsLost)
	}
	if cfg.TargetP99 > 0 {
		p99 := time.Duration(d.EndToEnd.P99 * float64(time.Millisecond))
		b.res.Targets = append(b.res.Targets,
			TargetCheck{Name: "p99 end-to-end", Target: "< " + cfg.TargetP99.String(),
				Value: fmt.Sprintf("%.2f ms", d.EndToEnd.P99), Met: p99 < cfg.TargetP99 && d.EndToEnd.Count > 0},
			TargetCheck{Name: "nothing lost or doubled", Target: "0 / 0",
				Value: fmt.Sprintf("%d / %d", d.Accounting.Lost, d.Accounting.Duplicated),
				Met:   d.Accounting.Lost == 0 && d.Accounting.Duplicated == 0 && d.Accounting.Unknown == 0 && d.Drained})
	}
	return nil
}

// eventSizes fills the size of an event as devices receive it and, for
// Dealroom, what the store holds per event.
func (b *bench) eventSizes(d *DeliveryStats, subs []*subscriber) {
	var frames, bytes, envelope int64
	for _, s := range subs {
		frames += s.seq.received
		bytes += s.eventBytes
		if !s.cf {
			// {"type":"event","room":"ID","event":...}
			envelope += s.seq.received * int64(len(`{"type":"event","room":"","event":}`)+len(s.room.id))
		}
	}
	if frames > 0 {
		d.EventJSONBytes = float64(bytes-envelope) / float64(frames)
	}
	if b.centrifuge() {
		return
	}
	for _, r := range b.rooms {
		d.EventsStored += r.head
	}
	if b.cfg.DataDir == "" || d.EventsStored == 0 {
		return
	}
	size, alloc, err := diskUsage(b.cfg.DataDir)
	if err != nil {
		b.problem("sizing the data directory: %v", err)
		return
	}
	d.Store = &StoreSize{Bytes: size, AllocatedBytes: alloc, PerEvent: float64(alloc) / float64(d.EventsStored)}
}

// writeLoad sends cfg.Rate writes per second for cfg.Duration, open loop:
// each write leaves at its scheduled time whether or not earlier ones were
// answered, so a slow server cannot slow the offered load down.
func (b *bench) writeLoad(ctx context.Context) *WriteStats {
	cfg := b.cfg
	wr := &WriteStats{Failed: map[string]int{}}
	var (
		mu               sync.Mutex
		restAcks, wsAcks []int64
	)
	record := func(r *benchRoom, viaWS bool) func(time.Duration, bool, string) {
		return func(ack time.Duration, measured bool, failure string) {
			mu.Lock()
			defer mu.Unlock()
			if failure != "" {
				wr.Failed[failure]++
				return
			}
			wr.Acked++
			if !measured {
				return
			}
			wr.MeasuredAcked++
			r.ackedMeasured.Add(1)
			if viaWS {
				wsAcks = append(wsAcks, int64(ack))
			} else {
				restAcks = append(restAcks, int64(ack))
			}
		}
	}
	base := b.clk.now()
	b.win.from.Store(int64(base + cfg.Warmup))
	b.win.to.Store(int64(base + cfg.Duration))
	pad := strings.Repeat("x", max(cfg.BodyBytes-40, 1))

	type job struct {
		n int64
		w *writer
	}
	jobs := make(chan job, 8192)
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				sent := b.clk.now()
				measured := b.win.contains(sent)
				err := b.writer.do(ctx, http.MethodPost, "/api/v1/rooms/"+url.PathEscape(j.w.room.id)+"/messages", j.w.token,
					fmt.Sprintf("w-%s-%d", b.runID, j.n), map[string]string{"body": messageBody(sent, j.n, pad)}, nil)
				failure := ""
				if err != nil {
					failure = "rest transport"
					if st := statusOf(err); st != 0 {
						failure = "rest " + strconv.Itoa(st)
					}
				}
				record(j.w.room, false)(b.clk.now()-sent, measured, failure)
			}
		}()
	}
	var lag time.Duration
	for n := int64(0); ctx.Err() == nil; n++ {
		due := base + time.Duration(float64(n)*float64(time.Second)/cfg.Rate)
		if due >= base+cfg.Duration {
			break
		}
		if d := due - b.clk.now(); d > 0 {
			time.Sleep(d)
		} else {
			lag = max(lag, -d)
		}
		r := b.rooms[n%int64(len(b.rooms))]
		w := r.writers[(n/int64(len(b.rooms)))%int64(len(r.writers))]
		wr.Sent++
		r.sent.Add(1)
		// The first ws-writes share of every run of writes goes over the
		// websocket, spread evenly.
		viaWS := cfg.WSWrites > 0 && math.Floor(float64(n+1)*cfg.WSWrites) > math.Floor(float64(n)*cfg.WSWrites)
		if !viaWS {
			jobs <- job{n, w}
			continue
		}
		sent := b.clk.now()
		err := w.command(ctx, fmt.Sprintf("w-%s-%d", b.runID, n), messageBody(sent, n, pad), sent, b.win.contains(sent), record(r, true))
		if err != nil {
			record(r, true)(0, false, "ws send")
		}
	}
	close(jobs)
	wg.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for _, w := range b.writers {
		if w.conn != nil {
			w.waitPending(deadline)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	wr.WindowSeconds = (cfg.Duration - cfg.Warmup).Seconds()
	wr.EventsPerSec = float64(wr.MeasuredAcked) / wr.WindowSeconds
	wr.AckREST = summarize(restAcks)
	wr.AckWS = summarize(wsAcks)
	wr.SchedulerLagMax = float64(lag) / float64(time.Millisecond)
	// Failed stays a map (empty ones are left out of the JSON): a writer
	// whose connection ends late still fails its pending commands into it.
	return wr
}

// readHeads asks the server for every room's head, and checks it against
// the room's timeline; it tells whether both agree everywhere.
func (b *bench) readHeads(ctx context.Context) bool {
	if b.centrifuge() {
		// Nothing is stored: a room's last publication is its last write.
		for _, r := range b.rooms {
			r.head = r.sent.Load()
		}
		return true
	}
	var disagree atomic.Int64
	err := parallel(ctx, len(b.rooms), b.cfg.SetupConc, func(ctx context.Context, i int) error {
		r := b.rooms[i]
		head, err := b.writer.roomHead(ctx, r.ownerTok, r.id)
		if err != nil {
			return err
		}
		r.head = head
		last, _, err := b.writer.lastEventSeq(ctx, r.ownerTok, r.id, max(head-1, 0))
		if err != nil {
			return err
		}
		if last != head {
			disagree.Add(1)
		}
		return nil
	})
	if err != nil {
		b.problem("reading the rooms' heads: %v", err)
		return false
	}
	return disagree.Load() == 0
}

// waitDrained waits until every device has every event up to its room's
// head.
func (b *bench) waitDrained(ctx context.Context, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for ctx.Err() == nil {
		behind := 0
		for _, s := range b.subs {
			if s.contiguous.Load() < s.room.head {
				select {
				case <-s.done: // lost: it will not catch up
				default:
					behind++
				}
			}
		}
		if behind == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// catchup writes cfg.Events events into a room nobody follows, then lets
// devices subscribe from 0 and times them until "subscribed": first cold
// (the server does not follow the room yet), then warm (it does, and has
// read the pages before).
func (b *bench) catchup(ctx context.Context) error {
	cfg := b.cfg
	b.res.Params.Events = cfg.Events
	// Each writer stays within the server's burst of requests per user.
	per := max(int(cfg.UserRate*2), 1)
	writers := min((cfg.Events+per-1)/per, 400)
	if err := b.setup(ctx, writers, min(cfg.Conns, 50)); err != nil {
		return err
	}
	r := b.rooms[0]
	c := &CatchupStats{Events: int64(cfg.Events)}
	b.res.Catchup = c
	b.waitQuiet(ctx)
	b.logf("writing %d events with %d writers", cfg.Events, writers)
	var (
		mu    sync.Mutex
		acks  []int64
		fails int
	)
	pad := strings.Repeat("x", max(cfg.BodyBytes-40, 1))
	start := time.Now()
	err := parallel(ctx, writers, 64, func(ctx context.Context, k int) error {
		w := r.writers[k]
		for n := k; n < cfg.Events; n += writers {
			sent := b.clk.now()
			err := b.writer.doRetry(ctx, http.MethodPost, "/api/v1/rooms/"+url.PathEscape(r.id)+"/messages", w.token,
				fmt.Sprintf("w-%s-%d", b.runID, n), map[string]string{"body": messageBody(sent, int64(n), pad)}, nil)
			ack := b.clk.now() - sent
			mu.Lock()
			if err != nil {
				fails++
			} else {
				acks = append(acks, int64(ack))
			}
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.WriteSeconds = time.Since(start).Seconds()
	c.WriteEventsPerSec = float64(len(acks)) / c.WriteSeconds
	c.WriteAck = summarize(acks)
	if fails > 0 {
		b.problem("%d of %d writes failed", fails, cfg.Events)
	}
	head, err := b.writer.roomHead(ctx, r.ownerTok, r.id)
	if err != nil {
		return err
	}
	r.head, c.Head = head, head
	time.Sleep(time.Second)

	reader := b.clients[0]
	if len(b.clients) > 1 {
		reader = b.clients[1]
	}
	for _, name := range []string{"cold", "warm"} {
		run, err := b.catchupRun(ctx, name, reader)
		if err != nil {
			return err
		}
		c.Runs = append(c.Runs, run)
		if run.Accounting.Lost > 0 || run.Accounting.Duplicated > 0 {
			b.problem("catch-up %s: %d lost, %d doubled", name, run.Accounting.Lost, run.Accounting.Duplicated)
		}
	}
	t0 := time.Now()
	last, n, err := reader.lastEventSeq(ctx, r.ownerTok, r.id, 0)
	if err != nil {
		return err
	}
	c.RESTPagesSeconds, c.RESTEvents = time.Since(t0).Seconds(), n
	if last != head {
		b.problem("the timeline ends at %d, the head is %d", last, head)
	}
	if cfg.TargetCatchup > 0 && len(c.Runs) > 0 {
		cold := c.Runs[0].Seconds.Max
		b.res.Targets = append(b.res.Targets, TargetCheck{Name: fmt.Sprintf("catch-up of %d missed events (cold, slowest device)", cfg.Events),
			Target: "< " + cfg.TargetCatchup.String(), Value: fmt.Sprintf("%.0f ms", cold),
			Met: time.Duration(cold*float64(time.Millisecond)) < cfg.TargetCatchup})
	}
	return nil
}

// catchupRun connects cfg.Conns devices, then subscribes them all from 0
// at once and times each until its "subscribed".
func (b *bench) catchupRun(ctx context.Context, name string, reader *client) (CatchupRun, error) {
	r := b.rooms[0]
	run := CatchupRun{Name: name, Devices: b.cfg.Conns}
	devs := make([]*subscriber, b.cfg.Conns)
	err := parallel(ctx, len(devs), b.cfg.DialConc, func(ctx context.Context, i int) error {
		conn, err := dial(ctx, b.dialHC, reader.base, r.subTokens[i%len(r.subTokens)])
		if err != nil {
			return err
		}
		devs[i] = &subscriber{room: r, conn: conn, clk: b.clk, win: &b.win, seq: newSeqTracker(0),
			lastPresence: &b.lastPresence, done: make(chan struct{})}
		go devs[i].read(context.Background())
		return nil
	})
	b.subs = nil
	for _, d := range devs {
		if d != nil {
			b.subs = append(b.subs, d)
		}
	}
	if err != nil {
		return run, err
	}
	b.waitQuiet(ctx)
	before, _ := scrapeMetrics(ctx, b.hc, reader.base)
	b.startMeasure(ctx)
	sentAt := make([]time.Duration, len(devs))
	for i, d := range devs {
		sentAt[i] = b.clk.now()
		if err := d.subscribe(ctx, 0); err != nil {
			return run, err
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		waiting := 0
		for _, d := range devs {
			if d.subscribedAt.Load() == 0 {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			return run, fmt.Errorf("catch-up %s: %d devices got no \"subscribed\" within 2 minutes", name, waiting)
		}
		time.Sleep(time.Millisecond)
	}
	b.endMeasure(ctx)
	after, _ := scrapeMetrics(ctx, b.hc, reader.base)
	run.StoreReads = after["dealroom_hub_store_reads_total"] - before["dealroom_hub_store_reads_total"]
	run.Load = b.res.Load
	b.closeSubscribers()
	var untilSub, untilFirst []int64
	var bytes int64
	for i, d := range devs {
		untilSub = append(untilSub, d.subscribedAt.Load()-int64(sentAt[i]))
		if f := d.firstEventAt.Load(); f != 0 {
			untilFirst = append(untilFirst, f-int64(sentAt[i]))
		}
		run.Accounting.add(d.seq.check(r.head))
		bytes += d.eventBytes
	}
	run.Seconds = summarize(untilSub)
	run.FirstEvent = summarize(untilFirst)
	secs := run.Seconds.Mean / 1000
	if secs > 0 {
		run.EventsPerSec = float64(r.head) / secs
		run.MiBPerSec = float64(bytes) / float64(len(devs)) / secs / (1 << 20)
	}
	return run, nil
}
