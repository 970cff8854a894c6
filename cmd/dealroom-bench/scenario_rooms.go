package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/mongostore"
	"dealroom/room"
)

// The followed-rooms scenario (-scenario rooms) measures what a followed
// room costs the server's heap: many rooms with a long history, one
// device each, subscribed and caught up, then a little live traffic.
// Writing millions of events through the API would take hours, so the
// history is written beforehand by `dealroom-bench seed`, straight
// through the store with room.Service (the same events the API would
// append), before the server starts on that store.

// seedManifest is what `dealroom-bench seed` wrote: the rooms and their
// people.
type seedManifest struct {
	Store     string     `json:"store"`
	Events    int        `json:"events_per_room"`
	BodyBytes int        `json:"body_bytes"`
	Seconds   float64    `json:"seconds"`
	Rooms     []seedRoom `json:"rooms"`
}

type seedRoom struct {
	ID     string `json:"id"`
	Owner  string `json:"owner"`  // writes the history and the live traffic
	Device string `json:"device"` // a reader whose device follows the room
	Head   int64  `json:"head"`
}

// runSeed is `dealroom-bench seed`: it writes rooms with a history of
// messages into a store that no server uses yet.
//
//	dealroom-bench seed -data DIR | -mongo URI -rooms 10000 -events 2000 -manifest FILE
func runSeed(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("dealroom-bench seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "the embedded store's data directory (DEALROOM_DATA_DIR of the server started after)")
	mongoURI := fs.String("mongo", "", "a MongoDB URI with its database (DEALROOM_MONGO_URI of the server started after)")
	rooms := fs.Int("rooms", 10000, "rooms to make")
	events := fs.Int("events", 2000, "messages of each room's history")
	body := fs.Int("body-bytes", 450, "size of a message's body")
	conc := fs.Int("concurrency", 256, "messages written at once (the embedded store commits up to 256 commands together)")
	perRoom := fs.Int("room-writers", 32, "of those, messages written at once to the same room")
	manifest := fs.String("manifest", "", "where to write the rooms made (JSON), for -scenario rooms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*dataDir == "") == (*mongoURI == "") || *manifest == "" || *rooms < 1 || *events < 0 || *perRoom < 1 || *conc < *perRoom {
		return errors.New("seed needs one of -data or -mongo, -manifest, -rooms >= 1, -events >= 0 and -concurrency >= -room-writers >= 1")
	}
	var store room.Store
	m := seedManifest{Events: *events, BodyBytes: max(*body, 40)}
	if *dataDir != "" {
		bs, err := boltstore.Open(*dataDir)
		if err != nil {
			return err
		}
		defer bs.Close()
		store, m.Store = bs, "embedded"
	} else {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ms, err := mongostore.Open(octx, *mongoURI)
		cancel()
		if err != nil {
			return err
		}
		defer ms.Close()
		store, m.Store = ms, "mongodb"
	}
	svc := &room.Service{Store: store}
	run := randomID()
	m.Rooms = make([]seedRoom, *rooms)
	start := time.Now()
	var written atomic.Int64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := written.Load()
				fmt.Fprintf(stderr, "%s  seed: %d events, %.0f/s\n", time.Now().Format("15:04:05"), n, float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	err := parallel(ctx, *rooms, *conc / *perRoom, func(ctx context.Context, i int) error {
		r, err := seedOne(ctx, svc, run, i, *events, m.BodyBytes, *perRoom, &written)
		m.Rooms[i] = r
		return err
	})
	close(done)
	if err != nil {
		return err
	}
	m.Seconds = time.Since(start).Seconds()
	fmt.Fprintf(stderr, "seed: %d rooms of %d messages in %.0fs (%.0f events/s)\n", *rooms, *events, m.Seconds, float64(written.Load())/m.Seconds)
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(*manifest, b, 0o644)
}

// seedOne makes room i: its owner, one reader, and events messages,
// writers of them at once, as an owner posting from several devices
// would. The store gives them their seqs in the order it commits them.
func seedOne(ctx context.Context, svc *room.Service, run string, i, events, body, writers int, written *atomic.Int64) (seedRoom, error) {
	sr := seedRoom{Owner: fmt.Sprintf("seed-%s-r%d-owner", run, i), Device: fmt.Sprintf("seed-%s-r%d-reader", run, i)}
	owner := dealroom.Actor{ID: sr.Owner, Name: sr.Owner, Kind: dealroom.Staff, Role: dealroom.Rep}
	rm, err := svc.CreateRoom(ctx, owner, room.Draft{Name: fmt.Sprintf("Seeded %s room %d", run, i), Company: "Bench Corp"}, "")
	if err != nil {
		return sr, fmt.Errorf("creating room %d: %w", i, err)
	}
	sr.ID = rm.ID
	if _, err := svc.AddMember(ctx, owner, rm.ID, room.MemberDraft{UserID: sr.Device, Name: sr.Device, Kind: dealroom.Staff, Access: "read"}, ""); err != nil {
		return sr, fmt.Errorf("adding the reader of room %d: %w", i, err)
	}
	written.Add(2)
	text := strings.Repeat("History of the deal, as it was written. ", body/40+1)
	err = parallel(ctx, events, writers, func(ctx context.Context, k int) error {
		head := fmt.Sprintf("%d/%d ", i, k)
		if _, err := svc.PostMessage(ctx, owner, rm.ID, room.MessageDraft{Body: head + text[:body-len(head)]}, ""); err != nil {
			return fmt.Errorf("room %d, message %d: %w", i, k, err)
		}
		written.Add(1)
		return nil
	})
	if err != nil {
		return sr, err
	}
	r, err := svc.Store.Room(ctx, rm.ID)
	if err != nil {
		return sr, err
	}
	sr.Head = r.Head
	return sr, nil
}

// RoomsStats is the followed-rooms scenario's result: the server's Go heap
// with every device caught up, while the rooms' latest events are recent,
// and again once they are old.
type RoomsStats struct {
	Rooms         int     `json:"rooms"`
	EventsPerRoom int     `json:"history_events_per_room"`
	BodyBytes     int     `json:"body_bytes"`
	CaughtUp      int64   `json:"events_caught_up"`
	SubscribeS    float64 `json:"subscribe_seconds"`
	LiveWrites    int64   `json:"live_writes"`
	LiveDelivered int64   `json:"live_events_delivered"`
	Lost          int64   `json:"lost"`
	Duplicated    int64   `json:"duplicated"`
	OutOfOrder    int64   `json:"out_of_order"`
	Resyncs       int64   `json:"resyncs"`
	ErrorFrames   int64   `json:"error_frames"`
	// Heap after a collection (go_memstats_heap_alloc_bytes at the first
	// scrape after the count of collections moved), in KiB.
	HeapBeforeKiB float64 `json:"heap_before_kib"`
	HeapLiveKiB   float64 `json:"heap_after_live_traffic_kib"`
	HeapIdleKiB   float64 `json:"heap_after_idle_kib"`
	IdleS         float64 `json:"idle_seconds"`
	// Per followed room: (heap - heap before the devices came) / rooms.
	LivePerRoomKiB float64 `json:"heap_per_room_after_live_kib"`
	IdlePerRoomKiB float64 `json:"heap_per_room_after_idle_kib"`
}

// followedRooms is -scenario rooms: one device per seeded room subscribes
// -events behind the room's head and catches up; then -rate writes per
// second for -duration go to random rooms; the heap is read after a
// collection then, and again after -settle without writes.
func (b *bench) followedRooms(ctx context.Context) error {
	cfg := b.cfg
	raw, err := os.ReadFile(cfg.Manifest)
	if err != nil {
		return fmt.Errorf("-manifest: %w", err)
	}
	var m seedManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("-manifest: %w", err)
	}
	if len(m.Rooms) > cfg.Rooms {
		m.Rooms = m.Rooms[:cfg.Rooms]
	}
	st := &RoomsStats{Rooms: len(m.Rooms), EventsPerRoom: m.Events, BodyBytes: m.BodyBytes}
	b.res.Params.Rooms, b.res.Params.Conns, b.res.Params.BodyBytes, b.res.Params.Events = len(m.Rooms), len(m.Rooms), m.BodyBytes, cfg.Events
	b.rooms = make([]*benchRoom, len(m.Rooms))
	for i, r := range m.Rooms {
		b.rooms[i] = &benchRoom{index: i, id: r.ID, owner: r.Owner, ownerTok: b.mint.token(r.Owner, dealroom.Rep),
			subTokens: []string{b.mint.token(r.Device, dealroom.Rep)}, head: r.Head}
	}
	srv := b.clients[0]
	b.waitQuiet(ctx)
	before, err := b.heapAfterGC(ctx, srv, 3*time.Minute)
	if err != nil {
		return err
	}
	st.HeapBeforeKiB = before
	b.startMeasure(ctx)

	start := time.Now()
	subs := make([]*subscriber, len(b.rooms))
	err = parallel(ctx, len(b.rooms), cfg.DialConc, func(ctx context.Context, i int) error {
		r := b.rooms[i]
		after := max(r.head-int64(cfg.Events), 0)
		// A device that is not answered "subscribed" in time (the server
		// said "unavailable: retry", as a slow store makes it) connects
		// and subscribes again, as an app would.
		for attempt := 1; ; attempt++ {
			conn, err := dial(ctx, b.dialHC, srv.base, r.subTokens[0])
			if err != nil {
				return fmt.Errorf("device %d: %w", i, err)
			}
			s := &subscriber{room: r, conn: conn, clk: b.clk, win: &b.win, seq: newSeqTracker(after),
				lastPresence: &b.lastPresence, done: make(chan struct{})}
			go s.read(context.Background())
			if err := s.subscribe(ctx, after); err != nil {
				return fmt.Errorf("device %d: subscribe: %w", i, err)
			}
			if waitSubscribed(ctx, s, 30*time.Second) || attempt == 5 {
				subs[i] = s
				return nil
			}
			conn.CloseNow()
			<-s.done
			b.logf("device %d: no \"subscribed\" (%s); again", i, s.lastError)
		}
	})
	for _, s := range subs {
		if s != nil {
			b.subs = append(b.subs, s)
			s.room.subs++
		}
	}
	if err != nil {
		return err
	}
	if err := b.waitCaughtUp(ctx, subs, func(s *subscriber) int64 { return s.room.head }, 5*time.Minute); err != nil {
		return err
	}
	st.SubscribeS = time.Since(start).Seconds()
	for _, s := range subs {
		st.CaughtUp += s.contiguous.Load() - s.seq.from
	}
	b.logf("%d devices subscribed and caught up in %.1fs", len(subs), st.SubscribeS)

	// A little live traffic: the owners post to random rooms.
	var sent, failed atomic.Int64
	if cfg.Rate > 0 && cfg.Duration > 0 {
		n := int(cfg.Rate * cfg.Duration.Seconds())
		every := time.Duration(float64(time.Second) / cfg.Rate)
		body := strings.Repeat("Live news of the deal. ", m.BodyBytes/23+1)[:m.BodyBytes]
		err := parallel(ctx, n, 64, func(ctx context.Context, i int) error {
			if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
				time.Sleep(d)
			}
			r := b.rooms[rand.IntN(len(b.rooms))]
			err := b.writer.doRetry(ctx, http.MethodPost, "/api/v1/rooms/"+url.PathEscape(r.id)+"/messages", r.ownerTok,
				fmt.Sprintf("live-%s-%d", b.runID, i), map[string]any{"body": body}, nil)
			if err != nil {
				failed.Add(1)
				return nil
			}
			sent.Add(1)
			return nil
		})
		if err != nil {
			return err
		}
		if failed.Load() > 0 {
			b.problem("%d live writes failed", failed.Load())
		}
		if !b.readHeads(ctx) {
			b.problem("the rooms' heads could not be read")
		}
		if err := b.waitCaughtUp(ctx, subs, func(s *subscriber) int64 { return s.room.head }, 2*time.Minute); err != nil {
			return err
		}
	}
	st.LiveWrites = sent.Load()
	live, err := b.heapAfterGC(ctx, srv, 3*time.Minute)
	if err != nil {
		return err
	}
	st.HeapLiveKiB = live
	idleFrom := time.Now()
	b.logf("heap after live traffic: %.0f KiB; idle for %s", live, cfg.Settle)
	time.Sleep(cfg.Settle)
	idle, err := b.heapAfterGC(ctx, srv, 3*time.Minute)
	if err != nil {
		return err
	}
	st.HeapIdleKiB, st.IdleS = idle, time.Since(idleFrom).Seconds()
	b.endMeasure(ctx)

	for _, s := range subs {
		st.Resyncs += s.resyncs
		st.ErrorFrames += s.errFrames
	}
	dead := map[*subscriber]bool{}
	for _, s := range subs {
		select {
		case <-s.done:
			dead[s] = true
		default:
		}
	}
	if len(dead) > 0 {
		b.problem("%d devices lost their connection (first: %v); their events are not counted", len(dead), firstReadErr(subs))
	}
	b.closeSubscribers()
	for _, s := range subs {
		if dead[s] {
			continue
		}
		t := s.seq
		st.LiveDelivered += t.distinct
		st.Duplicated += t.received - t.distinct
		st.OutOfOrder += t.outOfOrder
		st.Lost += max(s.room.head-t.from, 0) - t.distinct
	}
	st.LiveDelivered -= st.CaughtUp
	n := float64(len(b.rooms))
	st.LivePerRoomKiB = (st.HeapLiveKiB - st.HeapBeforeKiB) / n
	st.IdlePerRoomKiB = (st.HeapIdleKiB - st.HeapBeforeKiB) / n
	b.res.Rooms = st
	b.logf("heap per followed room: %.1f KiB after live traffic, %.1f KiB after %.0fs idle", st.LivePerRoomKiB, st.IdlePerRoomKiB, st.IdleS)
	b.res.Targets = append(b.res.Targets,
		TargetCheck{Name: "heap per followed room, idle", Target: "<= 64 KiB",
			Value: fmt.Sprintf("%.1f KiB", st.IdlePerRoomKiB), Met: st.IdlePerRoomKiB <= 64},
		TargetCheck{Name: "heap per followed room, after live traffic", Target: "<= 64 KiB",
			Value: fmt.Sprintf("%.1f KiB", st.LivePerRoomKiB), Met: st.LivePerRoomKiB <= 64},
		TargetCheck{Name: "nothing lost, doubled or out of order", Target: "0 / 0 / 0",
			Value: fmt.Sprintf("%d / %d / %d", st.Lost, st.Duplicated, st.OutOfOrder),
			Met:   st.Lost == 0 && st.Duplicated == 0 && st.OutOfOrder == 0})
	return nil
}

// waitSubscribed waits until s got "subscribed", its connection ended or
// within passed, and tells whether it got it.
func waitSubscribed(ctx context.Context, s *subscriber, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for s.subscribedAt.Load() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-s.done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s.subscribedAt.Load() != 0
}

// waitCaughtUp waits until every device that is still connected has every
// event up to want(s). A device whose connection the server closed (on a
// busy machine, a pong that came too late) is left out; the run says how
// many there were.
func (b *bench) waitCaughtUp(ctx context.Context, subs []*subscriber, want func(*subscriber) int64, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		behind, dead := 0, 0
		for _, s := range subs {
			select {
			case <-s.done:
				dead++
				continue
			default:
			}
			if s.subscribedAt.Load() == 0 || s.contiguous.Load() < want(s) {
				behind++
			}
		}
		switch {
		case dead > len(subs)/100:
			return fmt.Errorf("%d devices lost their connection (first: %v)", dead, firstReadErr(subs))
		case behind == 0:
			return nil
		case time.Now().After(deadline):
			// What the server told them, read once their readers ended.
			b.closeSubscribers()
			why := ""
			for _, s := range subs {
				if s.lastError != "" {
					why = ": " + s.lastError
					break
				}
			}
			return fmt.Errorf("%d of %d devices are not caught up after %s%s", behind, len(subs), within, why)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heapAfterGC returns the server's Go heap (KiB) after its next
// collection: the least go_memstats_heap_alloc_bytes of the scrapes of
// the 5 seconds after the count of collections moved. Right after a
// collection the heap still counts the garbage that is not swept yet,
// which the background sweeper frees over the next moments. An idle Go
// program collects at least every two minutes.
func (b *bench) heapAfterGC(ctx context.Context, c *client, within time.Duration) (float64, error) {
	first, err := scrapeMetrics(ctx, b.hc, c.base)
	if err != nil {
		return 0, err
	}
	gcs := first["go_gc_duration_seconds_count"]
	deadline := time.Now().Add(within)
	var sweptBy time.Time // set once a collection was seen
	least := 0.0
	for {
		time.Sleep(100 * time.Millisecond)
		met, err := scrapeMetrics(ctx, b.hc, c.base)
		if err != nil {
			return 0, err
		}
		heap := met["go_memstats_heap_alloc_bytes"] / 1024
		switch {
		case !sweptBy.IsZero():
			least = min(least, heap)
			if time.Now().After(sweptBy) {
				return least, nil
			}
		case met["go_gc_duration_seconds_count"] != gcs:
			sweptBy, least = time.Now().Add(5*time.Second), heap
		case time.Now().After(deadline):
			return 0, fmt.Errorf("the server did not collect its heap within %s", within)
		}
	}
}
