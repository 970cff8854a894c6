package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testenv"
	"dealroom/internal/wstest"
)

// redisSetup is the Redis deployment a failover test runs on: the URL
// the instances are given, and what the test must know of its primaries
// to kill the one that carries a room. A Redis Cluster has three
// primaries, a Sentinel setup one.
type redisSetup struct {
	cluster *testenv.RedisCluster // nil for Sentinel
	url     string
	// primaries is how many primaries share the rooms' channels.
	primaries int
	// owner returns the address of the primary that holds a room's
	// channel now.
	owner func(t *testing.T, room string) string
	// killOwner ends the primary that holds a room's channel with SIGKILL
	// and returns once it has exited (or, for a slot move, takes the
	// room's channel away from it).
	killOwner func(t *testing.T, room string)
	// failure says what killOwner does, for the log.
	failure string
}

// clusterSetup starts a Redis Cluster of three primaries and three
// replicas for t. The owner of a room's channel is the primary of the
// slot of its name, dealroom:room:{ID}, which go-redis looks up in the
// cluster's slot table.
func clusterSetup(t *testing.T) redisSetup {
	c := testenv.StartRedisCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { rdb.Close() })
	owner := func(t *testing.T, room string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := rdb.MasterForKey(ctx, "dealroom:room:{"+room+"}")
		require.NoError(t, err)
		return n.Options().Addr
	}
	return redisSetup{
		cluster:   c,
		url:       c.URL(),
		primaries: 3,
		owner:     owner,
		killOwner: func(t *testing.T, room string) { c.Kill(owner(t, room)) },
		failure:   "killing",
	}
}

// slotMoveSetup is clusterSetup, where the failure is the move of the
// room's slot to another primary, as an operator resharding the cluster
// does, with no node failing.
func slotMoveSetup(t *testing.T) redisSetup {
	rs := clusterSetup(t)
	c := rs.cluster
	rs.killOwner = func(t *testing.T, room string) {
		from := rs.owner(t, room)
		to := ""
		for _, p := range c.Primaries() {
			if p != from {
				to = p
				break
			}
		}
		require.NotEmpty(t, to, "another primary")
		rdb := redis.NewClient(&redis.Options{Addr: from})
		defer rdb.Close()
		slot, err := rdb.ClusterKeySlot(context.Background(), "dealroom:room:{"+room+"}").Result()
		require.NoError(t, err)
		c.MoveSlot(int(slot), to)
	}
	rs.failure = "moving the slot away from"
	return rs
}

// TestClusterFailoverDevices: the primary of a Redis Cluster shard is
// killed during a stream of writes, with the test's failover scenario
// (testFailoverDevices).
func TestClusterFailoverDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster and three server processes")
	}
	testFailoverDevices(t, clusterSetup(t))
}

// sentinelSetup starts a Redis master, two replicas and three sentinels
// for t: every room's channel is on the master, and killing it makes the
// sentinels promote a replica.
func sentinelSetup(t *testing.T) redisSetup {
	s := testenv.StartRedisSentinel(t)
	return redisSetup{
		url:       s.URL(),
		primaries: 1,
		owner:     func(*testing.T, string) string { return s.Master() },
		killOwner: func(*testing.T, string) { s.KillMaster() },
		failure:   "killing",
	}
}

// TestClusterSlotMoveDevices: the slot of a room's channel moves to
// another primary during a stream of writes, with the same scenario.
func TestClusterSlotMoveDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster and three server processes")
	}
	testFailoverDevices(t, slotMoveSetup(t))
}

// TestSentinelFailoverDevices: the Redis master that the sentinels name
// is killed during a stream of writes, with the same scenario.
func TestSentinelFailoverDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis with three sentinels and three server processes")
	}
	testFailoverDevices(t, sentinelSetup(t))
}

// The figures of the failover scenario.
const (
	writeRate     = 80               // writes per second, over all rooms
	maxInFlight   = 32               // writes waiting for their answer at once
	beforeKill    = 4 * time.Second  // stream before the kill
	afterKill     = 12 * time.Second // stream after the kill
	recoveryBound = 10 * time.Second // the bound on live delivery's return
	roam          = 3 * time.Second  // the longest connection of a roaming device
	// liveLag is what separates live delivery from repair: the hub's
	// periodic head check (every 5 s) also brings events when the
	// broker brings none, but in bursts, up to 5 s after their write,
	// and there is always a burst after the bound with some more than
	// 2 s late; live, nearly all arrive within milliseconds (a loaded
	// machine stalling for 2 s is the margin).
	liveLag = 2 * time.Second
)

// testFailoverDevices runs three instances on one MongoDB and the Redis
// of rs, with devices of staff and of a customer on each, following rooms
// whose channels fall on every primary. A stream of writes (shared and
// internal messages and tasks, the customer's messages) goes through all
// instances; during it the primary of a room's channel is killed. Then:
//
//   - every acknowledged write is in its room's log, once, seqs gap-free;
//   - every device ends with exactly what its person may see (staff
//     everything, the customer nothing internal), once and in seq order;
//   - live delivery comes back within 10 s of the kill: in the rooms
//     written through one instance only, each device on another instance
//     (so that the events reach it through Redis, not from its own
//     instance) receives, within 10 s of the kill, an event from which on
//     every event of the room arrives within 2 s of its write's
//     answer, to the end of the stream (see checkRecovery).
//
// Half of the rooms are written through one instance (their home), to
// measure that; the other half through all three, so that a feed also
// mixes its own instance's events with repaired ones during the loss.
func testFailoverDevices(t *testing.T, rs redisSetup) {
	mongoURI, _ := testenv.MongoDatabase(t)
	var nodes []*instance
	for range 3 {
		// At level info an instance logs when its broker's subscriptions
		// are restored: the server's side of the recovery.
		nodes = append(nodes, startInstance(t, mongoURI, rs.url, "DEALROOM_LOG_LEVEL=info"))
	}
	repTok, buyerTok := token(t, rep), token(t, buyer)
	tokens := map[string]string{rep.ID: repTok, buyer.ID: buyerTok}

	rooms := failoverRooms(t, nodes, rs, repTok)
	owners := map[string]string{}
	for _, r := range rooms {
		owners[r.id] = rs.owner(t, r.id)
	}
	victim := rooms[0] // written through one instance
	victimOwner := owners[victim.id]
	var desc []string
	for _, r := range rooms {
		kind := "written through all instances"
		if r.home >= 0 {
			kind = fmt.Sprintf("written through instance %d", r.home)
		}
		desc = append(desc, fmt.Sprintf("%s on %s, %s", r.id, owners[r.id], kind))
	}
	t.Logf("rooms: %s", strings.Join(desc, "; "))

	// Devices: for every room and instance, one of the staff and one of
	// the customer, following that room and the next; half of them start
	// after the room's head instead of from the beginning, and a third
	// roam from instance to instance.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var devices []*failoverDevice
	for i := range rooms {
		follows := []string{rooms[i].id, rooms[(i+1)%len(rooms)].id}
		for k := range nodes {
			for _, a := range []dealroom.Actor{rep, buyer} {
				n := len(devices)
				d := &failoverDevice{
					Device: wstest.NewDevice(fmt.Sprintf("device %d (%s, instance %d)", n, a.ID, k), tokens[a.ID], follows...),
					actor:  a, first: k, from: map[string]int64{}, live: map[string]bool{},
				}
				if n%3 == 2 {
					d.roam = roam
				}
				if n/2%2 == 1 {
					for _, r := range follows {
						tl := timeline(t, nodes[0].URL, repTok, r)
						d.from[r] = wstest.SeqOf(tl[len(tl)-1])
						d.SetLast(r, d.from[r])
					}
				}
				devices = append(devices, d)
			}
		}
	}
	var dw sync.WaitGroup
	for _, d := range devices {
		dw.Go(func() { d.run(ctx, nodes) })
	}
	subscribed := waitFor(t, 60*time.Second, "every device subscribed to its rooms", func() string {
		var behind []string
		for _, d := range devices {
			if !d.isReady() {
				behind = append(behind, d.Name)
			}
		}
		return strings.Join(behind, ", ")
	})
	if !subscribed {
		t.FailNow()
	}

	// The stream of writes.
	w := &writer{t: t, nodes: nodes, rooms: rooms, tokens: tokens, writes: map[string]*failoverWrite{}}
	wctx, stopWriting := context.WithCancel(ctx)
	started := time.Now()
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		w.run(wctx)
	}()
	time.Sleep(beforeKill)
	t.Logf("%s %s, the primary of room %s's channel", rs.failure, victimOwner, victim.id)
	killed := time.Now() // the failure begins (a slot move takes a while to finish)
	rs.killOwner(t, victim.id)
	time.Sleep(afterKill)
	stopWriting()
	<-writing
	all, took := w.count(time.Time{}, false), time.Since(started)
	t.Logf("%d writes in %s (%.0f/s), %d acknowledged; after the kill %d, %d acknowledged",
		all, took.Round(time.Millisecond), float64(all)/took.Seconds(),
		w.count(time.Time{}, true), w.count(killed, false), w.count(killed, true))
	t.Logf("write latency before the kill: %s", w.latency(started, killed))
	t.Logf("write latency in the 5 s after the kill: %s", w.latency(killed, killed.Add(5*time.Second)))

	// The logs, read over REST as each person.
	want := map[string]map[string][]json.RawMessage{}
	for _, a := range []dealroom.Actor{rep, buyer} {
		want[a.ID] = map[string][]json.RawMessage{}
		for _, r := range rooms {
			want[a.ID][r.id] = timeline(t, nodes[0].URL, tokens[a.ID], r.id)
		}
	}
	w.checkLogs(want[rep.ID], want[buyer.ID])

	// Every device catches up on what it follows, then the comparison.
	wantOf := func(d *failoverDevice) map[string][]json.RawMessage {
		m := map[string][]json.RawMessage{}
		for _, r := range d.Rooms {
			for _, ev := range want[d.actor.ID][r] {
				if wstest.SeqOf(ev) > d.from[r] {
					m[r] = append(m[r], ev)
				}
			}
		}
		return m
	}
	settled := waitFor(t, 90*time.Second, "every device caught up after the writes stopped", func() string {
		var behind []string
		for _, d := range devices {
			if !d.CaughtUp(wantOf(d)) {
				behind = append(behind, d.Name)
			}
		}
		return strings.Join(behind, ", ")
	})
	if settled {
		time.Sleep(500 * time.Millisecond) // room for a doubled event to show
	}
	cancel()
	dw.Wait()
	conns := 0
	for _, d := range devices {
		d.Check(t, wantOf(d))
		conns += d.conns
		if len(d.lost) > 0 {
			t.Logf("%s lost %d connections: %s", d.Name, len(d.lost), strings.Join(d.lost, "; "))
		}
	}
	t.Logf("%d devices, %d connections", len(devices), conns)

	// Live delivery came back, first in the killed primary's rooms.
	checkRecovery(t, devices, rooms, owners, victimOwner, w, killed)
	for i, in := range nodes {
		t.Logf("instance %d: broker subscriptions restored %s after the kill", i, restoredAfter(in, killed))
	}
}

var restoredRE = regexp.MustCompile(`time=(\S+) level=INFO msg="redisbroker: subscriptions restored"`)

// restoredAfter tells, from an instance's log, when its broker's
// subscriptions were restored after t0.
func restoredAfter(in *instance, t0 time.Time) string {
	var after []string
	for _, m := range restoredRE.FindAllStringSubmatch(in.logs.String(), -1) {
		if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && at.After(t0) {
			after = append(after, at.Sub(t0).Round(time.Millisecond).String())
		}
	}
	if len(after) == 0 {
		return "never"
	}
	return strings.Join(after, ", ")
}

// failoverRoom is a room of the scenario; home is the instance its writes
// go through, or -1 for all of them.
type failoverRoom struct {
	id   string
	home int
}

// failoverRooms makes rooms, each with the rep as owner and the buyer as a
// customer, until every primary of rs holds the channels of two (of six
// when there is one primary). Of each primary's rooms, every other one is
// written through one instance, starting with the first, and the rest
// through all.
func failoverRooms(t *testing.T, nodes []*instance, rs redisSetup, repTok string) []failoverRoom {
	t.Helper()
	// Two rooms a primary, and six at least.
	per := max(2, (6+rs.primaries-1)/rs.primaries)
	byOwner := map[string][]string{}
	var order []string // the primaries in the order of their first room
	for made := 0; ; made++ {
		full := 0
		for _, ids := range byOwner {
			if len(ids) == per {
				full++
			}
		}
		if full == rs.primaries {
			break
		}
		require.Less(t, made, 200, "200 rooms made and still not %d on each of %d primaries: %v", per, rs.primaries, byOwner)
		st, data := call(t, nodes[made%3].URL, repTok, "POST", "/rooms", map[string]any{"name": fmt.Sprint("Failover ", made), "company": "Acme"})
		require.Equal(t, 201, st, "%s", data)
		var r struct{ ID string }
		require.NoError(t, json.Unmarshal(data, &r))
		o := rs.owner(t, r.ID)
		if len(byOwner[o]) == per {
			continue
		}
		st, data = call(t, nodes[(made+1)%3].URL, repTok, "POST", "/rooms/"+r.ID+"/members",
			map[string]any{"user_id": buyer.ID, "name": buyer.Name, "kind": "customer", "access": "write"})
		require.Equal(t, 201, st, "%s", data)
		if len(byOwner[o]) == 0 {
			order = append(order, o)
		}
		byOwner[o] = append(byOwner[o], r.ID)
	}
	var rooms []failoverRoom
	homes := 0
	for _, o := range order {
		for j, id := range byOwner[o] {
			home := -1
			if j%2 == 0 {
				home = homes % len(nodes)
				homes++
			}
			rooms = append(rooms, failoverRoom{id: id, home: home})
		}
	}
	return rooms
}

// waitFor polls until pending returns "" (nothing pending) and tells
// whether it did within d; if not, the test fails naming what was still
// pending.
func waitFor(t *testing.T, d time.Duration, what string, pending func() string) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		p := pending()
		if p == "" {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("not within %s: %s; still pending: %s", d, what, p)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failoverDevice is a wstest.Device that connects as a real client does
// (again after a lost connection, to the next instance, subscribing after
// its last seq; again after a resync) and notes when and through which
// instance each event of a write arrived.
type failoverDevice struct {
	*wstest.Device
	actor dealroom.Actor
	first int // the instance it connects to first
	// roam, when not zero, ends each connection after a random time of
	// up to roam, as a phone that changes networks: the device then
	// connects to the next instance.
	roam time.Duration
	from map[string]int64 // per room, the seq it started after

	mu       sync.Mutex
	live     map[string]bool // per room: its "subscribed" came on this connection
	arrivals []arrival
	conns    int
	roamed   int      // connections ended by roam
	ready    bool     // every room was live on one connection once
	lost     []string // why connections ended otherwise
}

// arrival is an event of one of the test's writes reaching a device.
type arrival struct {
	room, marker string
	at           time.Time
	instance     int
}

var markerRE = regexp.MustCompile(`fo-[0-9]+\b`)

// run connects until ctx ends, to the next instance each time.
func (d *failoverDevice) run(ctx context.Context, nodes []*instance) {
	rng := rand.New(rand.NewPCG(uint64(d.first), uint64(len(d.Name))))
	for k := d.first; ctx.Err() == nil; k++ {
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if d.roam > 0 {
			sctx, cancel = context.WithTimeout(ctx, d.roam/4+time.Duration(rng.Int64N(int64(d.roam*3/4))))
		}
		err := d.session(sctx, nodes, k%len(nodes))
		roamed := sctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		d.mu.Lock()
		if roamed {
			d.roamed++
		} else {
			d.lost = append(d.lost, fmt.Sprintf("instance %d: %v", k%len(nodes), err))
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// session serves one connection to instance k.
func (d *failoverDevice) session(ctx context.Context, nodes []*instance, k int) error {
	url := "ws" + strings.TrimPrefix(nodes[k].URL, "http") + "/api/v1/ws?token=" + d.Token
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)
	d.mu.Lock()
	d.conns++
	clear(d.live)
	d.mu.Unlock()
	if err := d.SubscribeAll(ctx, conn); err != nil {
		return err
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		d.note(data, time.Now(), k)
		if r := d.Handle(data); r != "" {
			if err := d.Subscribe(ctx, conn, r); err != nil {
				return err
			}
		}
	}
}

// note keeps what a frame tells of timing: a room's live delivery
// beginning ("subscribed", after its catch-up) or ending, and the
// arrival of an event of a write.
func (d *failoverDevice) note(data []byte, at time.Time, k int) {
	var f struct {
		Type  string          `json:"type"`
		Room  string          `json:"room"`
		Event json.RawMessage `json:"event"`
	}
	if json.Unmarshal(data, &f) != nil {
		return // Handle reports it
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch f.Type {
	case "subscribed":
		d.live[f.Room] = true
		d.ready = d.ready || !slices.ContainsFunc(d.Rooms, func(r string) bool { return !d.live[r] })
	case "resync", "unsubscribed":
		d.live[f.Room] = false
	case "event":
		if m := markerRE.Find(f.Event); m != nil {
			d.arrivals = append(d.arrivals, arrival{room: f.Room, marker: string(m), at: at, instance: k})
		}
	}
}

// isReady tells whether every room the device follows was live on one
// connection once.
func (d *failoverDevice) isReady() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready
}

// failoverWrite is one write of the stream; marker is in its text.
type failoverWrite struct {
	marker, room string
	internal     bool
	start, ack   time.Time // ack is zero unless it was answered 2xx
	status       int
	answer       string
}

// writer posts the stream of writes.
type writer struct {
	t      *testing.T
	nodes  []*instance
	rooms  []failoverRoom
	tokens map[string]string

	mu     sync.Mutex
	writes map[string]*failoverWrite
}

// run posts writeRate writes a second, each on its own goroutine (at most
// maxInFlight at once, so that slow answers during the failover do not
// slow the stream), until ctx ends, and waits for their answers.
func (w *writer) run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(17, 1))
	tick := time.NewTicker(time.Second / writeRate)
	defer tick.Stop()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r := w.rooms[rng.IntN(len(w.rooms))]
		k := r.home
		if k < 0 {
			k = n % len(w.nodes)
		}
		fw := &failoverWrite{marker: fmt.Sprint("fo-", n), room: r.id}
		actor, path, body := rep, "/messages", map[string]any{}
		switch p := rng.IntN(20); {
		case p < 7: // a shared message of the rep
		case p < 11: // an internal note
			fw.internal = true
		case p < 13: // an internal task
			path = "/tasks"
			fw.internal = true
		case p < 15: // a shared task
			path = "/tasks"
		default: // the customer's message
			actor = buyer
		}
		text := fw.marker + " from " + actor.Name
		if path == "/tasks" {
			body["title"] = text
		} else {
			body["body"] = text
		}
		if fw.internal {
			body["visibility"] = "internal"
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			fw.start = time.Now()
			st, data := w.post(w.nodes[k].URL+"/api/v1/rooms/"+r.id+path, w.tokens[actor.ID], body)
			w.mu.Lock()
			defer w.mu.Unlock()
			fw.status = st
			if st/100 == 2 {
				fw.ack = time.Now()
			} else {
				fw.answer = string(data)
			}
			w.writes[fw.marker] = fw
		})
	}
}

// post sends one write and returns the status (0 when there was no
// answer within 30 s) and the body or the error.
func (w *writer) post(url, tok string, body any) (int, []byte) {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// latency describes how long the acknowledged writes started between
// from and to waited for their answer.
func (w *writer) latency(from, to time.Time) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ds []time.Duration
	for _, fw := range w.writes {
		if fw.start.After(from) && fw.start.Before(to) && !fw.ack.IsZero() {
			ds = append(ds, fw.ack.Sub(fw.start))
		}
	}
	return spread(ds)
}

// count returns how many writes started after since (all with a zero
// since), only the acknowledged ones when acked.
func (w *writer) count(since time.Time, acked bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, fw := range w.writes {
		if fw.start.After(since) && (!acked || !fw.ack.IsZero()) {
			n++
		}
	}
	return n
}

func (w *writer) write(marker string) *failoverWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes[marker]
}

// checkLogs checks the logs as the staff and the customer read them:
// seqs 1..N, every acknowledged write once in its room, the internal ones
// not in the customer's.
func (w *writer) checkLogs(staff, customer map[string][]json.RawMessage) {
	t := w.t
	t.Helper()
	inLog := map[string][]int64{} // marker → seqs in the staff's log
	for _, r := range w.rooms {
		for i, ev := range staff[r.id] {
			if s := wstest.SeqOf(ev); s != int64(i+1) {
				t.Errorf("room %s: event %d of the log has seq %d", r.id, i, s)
				break
			}
			if m := markerRE.Find(ev); m != nil {
				inLog[string(m)] = append(inLog[string(m)], wstest.SeqOf(ev))
				if fw := w.write(string(m)); fw == nil || fw.room != r.id {
					t.Errorf("room %s: seq %d is %s, not a write to this room", r.id, wstest.SeqOf(ev), m)
				}
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var failed []string
	internal := 0
	for _, fw := range w.writes {
		if fw.ack.IsZero() {
			failed = append(failed, fmt.Sprintf("%s: %d %s", fw.marker, fw.status, fw.answer))
			continue
		}
		if fw.internal {
			internal++
		}
		if n := len(inLog[fw.marker]); n != 1 {
			t.Errorf("the acknowledged write %s to room %s is %d times in the log (seqs %v), not once", fw.marker, fw.room, n, inLog[fw.marker])
		}
	}
	if len(failed) > 0 {
		// Allowed (the instance may have answered 500 or 503 while Redis
		// failed over), but worth seeing.
		slices.Sort(failed)
		t.Logf("%d writes not acknowledged: %s", len(failed), strings.Join(failed, "; "))
	}
	require.Positive(t, internal, "internal writes were made")
	for _, r := range w.rooms {
		for _, ev := range customer[r.id] {
			if m := markerRE.Find(ev); m != nil && w.writes[string(m)] != nil && w.writes[string(m)].internal {
				t.Errorf("room %s: the internal write %s is in the customer's log", r.id, m)
			}
		}
	}
}

// checkRecovery measures, for each device and room written through one
// instance, from another instance than that one (so that the room's
// events reach it through Redis), when live delivery came back after the
// kill: the arrival of the first event of a write made after the kill
// from which on every event arrived within liveLag of its write's answer.
// From that moment on, every write reached the device within liveLag.
// The first such event to arrive at all is no measure: the hub's head
// check (every 5 s) reads events from the store without any broker; but
// then they come in bursts, most of them seconds after their write, and
// delivery that stays live to the end of the stream (afterKill, two
// seconds past the bound) is what only the broker gives. (When a head
// check came less than liveLag before the broker was back, the moment
// measured is that head check's.)
func checkRecovery(t *testing.T, devices []*failoverDevice, rooms []failoverRoom, owners map[string]string,
	victimOwner string, w *writer, killed time.Time) {
	t.Helper()
	home := map[string]int{}
	for _, r := range rooms {
		home[r.id] = r.home
	}
	var victimTimes, otherTimes, firstTimes, lags []time.Duration
	for _, d := range devices {
		d.mu.Lock()
		arrivals := slices.Clone(d.arrivals)
		d.mu.Unlock()
		for _, r := range d.Rooms {
			if home[r] < 0 || d.first == home[r] {
				continue
			}
			type lagged struct {
				at  time.Time
				lag time.Duration
			}
			var evs []lagged
			for _, a := range arrivals {
				fw := w.write(a.marker)
				if a.room == r && a.instance != home[r] && fw != nil && fw.start.After(killed) && !fw.ack.IsZero() {
					evs = append(evs, lagged{a.at, max(a.at.Sub(fw.ack), 0)})
				}
			}
			if len(evs) == 0 {
				t.Errorf("%s in room %s: no event of a write made after the kill arrived from another instance", d.Name, r)
				continue
			}
			firstTimes = append(firstTimes, evs[0].at.Sub(killed))
			back := -1
			for i := len(evs) - 1; i >= 0 && evs[i].lag <= liveLag; i-- {
				back = i
			}
			// The events that came late, to show in a failure: the first
			// ones and the last one.
			var late []string
			nLate := 0
			for i, e := range evs {
				if e.lag <= liveLag {
					continue
				}
				nLate++
				if len(late) < 5 || i == len(evs)-1 {
					late = append(late, fmt.Sprintf("%s after the kill (lag %s)", e.at.Sub(killed).Round(time.Millisecond), e.lag.Round(time.Millisecond)))
				}
			}
			lateText := fmt.Sprintf("%d of %d, among them %s", nLate, len(evs), strings.Join(late, ", "))
			where := ""
			if owners[r] == victimOwner {
				where = " (on the killed primary)"
			}
			if back < 0 {
				t.Errorf("%s in room %s%s: live delivery not back by the end of the stream; events that came late: %s", d.Name, r, where, lateText)
				continue
			}
			took := evs[back].at.Sub(killed)
			assert.Less(t, took, recoveryBound, "%s in room %s%s: live delivery back after the kill; events that came late: %s", d.Name, r, where, lateText)
			if where != "" {
				victimTimes = append(victimTimes, took)
			} else {
				otherTimes = append(otherTimes, took)
			}
			for _, e := range evs[back:] {
				lags = append(lags, e.lag)
			}
		}
	}
	t.Logf("live delivery back after the kill, devices in the killed primary's rooms: %s", spread(victimTimes))
	t.Logf("live delivery back after the kill, devices in the other primaries' rooms: %s", spread(otherTimes))
	t.Logf("first event of a write made after the kill, from the store or live: %s", spread(firstTimes))
	t.Logf("from then on, lag from a write's answer to its event's arrival: %s", spread(lags))
	assert.NotEmpty(t, victimTimes, "devices in the killed primary's rooms were measured")
}

// spread describes durations: how many, the least, the median, the 90th
// percentile and the most.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("%d measured, min %s, median %s, p90 %s, max %s",
		len(s), r(s[0]), r(s[len(s)/2]), r(s[len(s)*9/10]), r(s[len(s)-1]))
}
