// Package hub delivers the rooms' events to the connected sessions of one
// instance: live, in order, exactly once, and filtered for each session by
// what its person may see.
//
// Each room followed by a local session has a feed. The feed learns of
// events from the broker (which may lose, reorder or repeat them) and
// repairs that from the store by seq: it moves its head forward only by
// one, parks early arrivals and reads a gap from the store when it does
// not close by itself. It keeps the room's latest events, encoded once per
// visibility, within a budget of bytes and of age, so that a device back
// from a short absence catches up from memory.
//
// A session subscribes by catching up from the seq it last processed: it
// reads the store (through a cache of fixed pages of events shared by every
// session) and the feed's memory, at its own pace, until it reaches the
// feed's head; then, under the feed's lock, it joins live delivery and gets
// "subscribed". Nothing is buffered for it meanwhile, so nothing can be
// doubled or skipped at the seam: both parts come from one ordered list.
//
// Every session has a bounded send queue. Live delivery never waits: when
// a session's queue is full its presence frames go first, and if that is
// not enough it is told to resync and leaves live delivery of that room.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"dealroom"
	"dealroom/broker"
	"dealroom/presence"
	"dealroom/room"
)

// Store is what the hub reads: events for catch-up and repair, and the
// room's head.
type Store interface {
	Events(ctx context.Context, room string, after int64, limit int, sharedOnly bool) ([]room.Event, error)
	Room(ctx context.Context, id string) (*room.Room, error)
}

// HeadsStore checks many rooms' heads in one read. When the hub's Store
// has it too, the head checks ask it for HeadBatch rooms at a time instead
// of reading one event per room: on MongoDB a round trip for hundreds of
// rooms rather than for each.
type HeadsStore interface {
	// Ahead returns those rooms of heads whose log holds an event with a
	// seq greater than the head given for the room (a negative head counts
	// as 0), each once, in no particular order. Rooms the store does not
	// know, and rooms at or past their head, are not returned; no rooms
	// given, none returned. It sees the events that Events serves, so that
	// a room reported ahead can be read up to the event found. A failure
	// of the backend is EUNAVAILABLE.
	Ahead(ctx context.Context, heads map[string]int64) (rooms []string, err error)
}

// Access tells what an actor may do in a room (room.Service does).
type Access interface {
	Access(ctx context.Context, a dealroom.Actor, room string) (room.Perm, error)
	// TaskVisibility returns the visibility of a task the actor may see,
	// ENOTFOUND otherwise.
	TaskVisibility(ctx context.Context, a dealroom.Actor, room, task string) (dealroom.Visibility, error)
}

// Config tunes a hub. Zero values take the defaults.
type Config struct {
	// Instance names this instance in broker messages (random by default).
	Instance string
	// QueueFrames and QueueBytes bound a session's send queue (512 frames,
	// 1 MiB).
	QueueFrames int
	QueueBytes  int
	// RecentBytes bounds the encoded events a followed room's feed keeps
	// in memory, so that a device that was away a moment catches up
	// without a store read (32 KiB). Older catch-up comes from the shared
	// page cache and the store.
	RecentBytes int
	// RecentAge is how long the feed keeps an event after it took it in
	// (1m): a room that is quiet costs no more than its bookkeeping.
	RecentAge time.Duration
	// Recent bounds the count of events the feed keeps, within RecentBytes
	// (1024), and of early events it holds while a gap is filled.
	Recent int
	// PageSize is the number of events of a shared catch-up page (256).
	PageSize int
	// CachedPages and CachedBytes bound the shared page cache (256 pages,
	// 32 MiB of events).
	CachedPages int
	CachedBytes int
	// GapWait is how long an early event waits for the missing ones before
	// the gap is read from the store (30ms).
	GapWait time.Duration
	// HeadCheck is how often each followed room's head is compared with the
	// store's, to find events whose broker message was lost (5s).
	HeadCheck time.Duration
	// HeadChecks is how many of those store reads run at once (8): on
	// MongoDB each is a round trip, and one after another they would
	// bound the rooms an instance can follow by the round trip's time.
	HeadChecks int
	// HeadBatch is how many rooms one of those reads checks when the
	// store checks many at once (HeadsStore) (500); otherwise a read
	// checks one room.
	HeadBatch int
	// Linger keeps a room followed this long after its last session left,
	// so that reconnecting devices find its recent events in memory (30s).
	Linger time.Duration
	// PresenceTTL is how long another instance's presence announcement
	// holds without renewal (30s); announcements are renewed every third
	// of it.
	PresenceTTL time.Duration
	// PresenceEvery is the shortest time between two presence frames of
	// one room (100ms; longer in big rooms).
	PresenceEvery time.Duration
	// Now is the clock of the feeds' memory (time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Instance == "" {
		var b [6]byte
		rand.Read(b[:])
		c.Instance = hex.EncodeToString(b[:])
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.QueueFrames, 512)
	def(&c.QueueBytes, 1<<20)
	def(&c.RecentBytes, 32<<10)
	defd(&c.RecentAge, time.Minute)
	def(&c.Recent, 1024)
	def(&c.PageSize, 256)
	def(&c.CachedPages, 256)
	def(&c.CachedBytes, 32<<20)
	defd(&c.GapWait, 30*time.Millisecond)
	defd(&c.HeadCheck, 5*time.Second)
	def(&c.HeadChecks, 8)
	def(&c.HeadBatch, 500)
	defd(&c.Linger, 30*time.Second)
	defd(&c.PresenceTTL, 30*time.Second)
	defd(&c.PresenceEvery, 100*time.Millisecond)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Stats are the hub's counters.
type Stats struct {
	Sessions      atomic.Int64
	Subscriptions atomic.Int64
	Rooms         atomic.Int64
	Delivered     atomic.Int64 // event frames queued to sessions
	Resyncs       atomic.Int64
	StoreReads    atomic.Int64 // Events calls (catch-up pages, gaps, tails)
	GapsRepaired  atomic.Int64
	Dropped       atomic.Int64 // presence frames dropped under pressure
}

// Hub holds an instance's sessions and room feeds.
type Hub struct {
	cfg      Config
	store    Store
	access   Access
	log      *slog.Logger
	broker   broker.Broker
	presence *presence.Tracker
	pages    *pageCache
	Stats    Stats
	watch    atomic.Pointer[DeviceWatch] // devices.go

	mu       sync.Mutex
	feeds    map[string]*feed
	sessions map[*Session]struct{}

	// checking is true while a periodic pass of head checks runs; a tick
	// that finds it running skips its pass.
	checking atomic.Bool
	// publishFailures paces the log of failed event publishes.
	publishFailures logEvery

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a hub; Start connects it to its broker.
func New(cfg Config, store Store, access Access, log *slog.Logger) *Hub {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{cfg: cfg, store: store, access: access, log: log, presence: presence.NewTracker(),
		feeds: map[string]*feed{}, sessions: map[*Session]struct{}{}, ctx: ctx, cancel: cancel}
	h.pages = newPageCache(h, cfg.CachedPages, cfg.CachedBytes)
	return h
}

// Context is cancelled when the hub closes: connections end with it.
func (h *Hub) Context() context.Context { return h.ctx }

// Instance returns the hub's instance name.
func (h *Hub) Instance() string { return h.cfg.Instance }

// Start sets the broker (which delivers to h) and starts the hub's timers.
func (h *Hub) Start(b broker.Broker) {
	h.broker = b
	h.wg.Add(2)
	go h.tick()
	go h.subscribeSessions()
}

// Backlog returns the frames and bytes waiting in every session's send
// queue: what slow devices cost the server right now.
func (h *Hub) Backlog() (frames, bytes int) {
	for _, s := range h.allSessions() {
		f, b := s.q.len()
		frames, bytes = frames+f, bytes+b
	}
	return frames, bytes
}

// Close stops the hub and asks every session's transport to end its
// connection (see Transport.End).
func (h *Hub) Close() {
	h.cancel()
	for _, s := range h.allSessions() {
		s.end(ErrShutdown)
	}
	h.wg.Wait()
}

// Committed publishes a newly committed event; it is the room.Service's
// Committed hook. This instance's followers of the room are given the
// event as it is: the broker's copy of it comes back to this instance
// too, and is not decoded again (Receive skips it).
func (h *Hub) Committed(ev room.Event) {
	data, err := json.Marshal(ev)
	if err != nil {
		h.log.Error("cannot encode an event", "room", ev.RoomID, "seq", ev.Seq, "err", err)
		return
	}
	if f := h.lookup(ev.RoomID); f != nil {
		f.offer(newEntry(ev, data))
	}
	ctx, cancel := context.WithTimeout(h.ctx, time.Second)
	defer cancel()
	if err := h.broker.Publish(ctx, broker.Message{Room: ev.RoomID, Kind: broker.Event, Origin: h.cfg.Instance, Data: data}); err != nil {
		// Not lost: followers find it by seq (the next event, or the
		// periodic head check).
		if ok, skipped := h.publishFailures.allow(time.Now()); ok {
			h.log.Warn("cannot publish an event; followers will read it from the store",
				"room", ev.RoomID, "seq", ev.Seq, "err", err, "not_logged_since_last", skipped)
		}
	}
	h.signedOut(ev)
}

// logEvery lets a repeated log line through at most once per period (a
// broker outage fails every write's publish: one line a period says so,
// with how many were not logged).
type logEvery struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// publishLogPeriod is how often, at most, a failed publish is logged.
const publishLogPeriod = 10 * time.Second

func (l *logEvery) allow(now time.Time) (ok bool, skipped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < publishLogPeriod {
		l.skipped++
		return false, 0
	}
	l.last, skipped, l.skipped = now, l.skipped, 0
	return true, skipped
}

// Receive implements broker.Handler.
func (h *Hub) Receive(m broker.Message) {
	switch m.Kind {
	case broker.Event:
		if m.Origin == h.cfg.Instance {
			return // offered by Committed already
		}
		f := h.lookup(m.Room)
		if f == nil {
			return
		}
		var ev room.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Seq <= 0 || ev.RoomID != m.Room {
			h.log.Warn("ignoring a malformed event message", "room", m.Room, "origin", m.Origin)
			return
		}
		f.offer(newEntry(ev, m.Data))
	case broker.Control:
		h.receiveControl(m)
	case broker.Read:
		h.receiveRead(m)
	case broker.Presence:
		if m.Origin == h.cfg.Instance {
			return
		}
		a, err := presence.DecodeAnnouncement(m.Data)
		if err != nil {
			h.log.Warn("ignoring a malformed presence message", "room", m.Room, "origin", m.Origin)
			return
		}
		f := h.lookup(m.Room)
		if f == nil {
			return
		}
		if a.Query {
			f.announce(false)
		}
		if h.presence.Merge(m.Room, m.Origin, a, time.Now()) {
			f.presenceChanged(false)
		}
	}
}

var _ broker.RoomsHandler = (*Hub)(nil)

// FeedLost implements broker.Handler: messages may be missing.
func (h *Hub) FeedLost() {
	h.log.Warn("broker feed lost; rooms will be repaired from the store")
}

// FeedRestored implements broker.Handler: every followed room is repaired.
func (h *Hub) FeedRestored() {
	h.repair(h.allFeeds())
}

// RoomsLost implements broker.RoomsHandler: messages of these rooms may be
// missing (a Redis Cluster shard failed over, or a slot moved).
func (h *Hub) RoomsLost(rooms []string) {
	h.log.Warn("broker feed lost for some rooms; they will be repaired from the store", "rooms", len(rooms))
}

// RoomsRestored implements broker.RoomsHandler: these rooms, if followed,
// are repaired; the others lost nothing.
func (h *Hub) RoomsRestored(rooms []string) {
	feeds := make([]*feed, 0, len(rooms))
	for _, r := range rooms {
		if f := h.lookup(r); f != nil {
			feeds = append(feeds, f)
		}
	}
	h.repair(feeds)
}

// repair has each feed compare its head with the store's, reading what
// the broker lost, and announces this instance's presence again, which
// the other instances may have missed too.
func (h *Hub) repair(feeds []*feed) {
	h.checkHeads(feeds)
	for _, f := range feeds {
		f.announce(true)
	}
}

// checkHeads has each feed compare its head with the store's, and returns
// when all have: HeadBatch rooms a store read when the store checks many at
// once (HeadsStore), one room a read otherwise; HeadChecks reads at once.
// Feeds still starting are left out: they read the store as they start.
func (h *Hub) checkHeads(feeds []*feed) {
	hs, ok := h.store.(HeadsStore)
	if !ok {
		inParallel(h.cfg.HeadChecks, feeds, (*feed).checkHead)
		return
	}
	started := slices.DeleteFunc(slices.Clone(feeds), func(f *feed) bool { return f.currentHead() < 0 })
	batches := slices.Collect(slices.Chunk(started, h.cfg.HeadBatch))
	inParallel(h.cfg.HeadChecks, batches, func(b []*feed) { h.checkBatch(hs, b) })
}

// checkBatch asks the store which of the started feeds' rooms have an
// event after the feed's head, in one read, and has those feeds read it.
func (h *Hub) checkBatch(hs HeadsStore, feeds []*feed) {
	heads := make(map[string]int64, len(feeds))
	of := make(map[string]*feed, len(feeds))
	for _, f := range feeds {
		heads[f.room], of[f.room] = f.currentHead(), f
	}
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	ahead, err := hs.Ahead(ctx, heads)
	cancel()
	if err != nil {
		return // the next pass checks again
	}
	for _, r := range ahead {
		if f := of[r]; f != nil {
			// Seqs have no holes: the store has the event after the head.
			f.storeHas(heads[r] + 1)
		}
	}
}

// inParallel calls fn for each item, n at a time, and returns when all
// calls have.
func inParallel[T any](n int, items []T, fn func(T)) {
	next := make(chan T)
	var wg sync.WaitGroup
	for range min(n, len(items)) {
		wg.Go(func() {
			for it := range next {
				fn(it)
			}
		})
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
}

// allSessions returns the sessions connected now.
func (h *Hub) allSessions() []*Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	all := make([]*Session, 0, len(h.sessions))
	for s := range h.sessions {
		all = append(all, s)
	}
	return all
}

func (h *Hub) lookup(room string) *feed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.feeds[room]
}

func (h *Hub) allFeeds() []*feed {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*feed, 0, len(h.feeds))
	for _, f := range h.feeds {
		out = append(out, f)
	}
	return out
}

// follow returns the room's feed, creating it, with one more user counted;
// it waits until the feed knows its head.
func (h *Hub) follow(ctx context.Context, roomID string) (*feed, error) {
	h.mu.Lock()
	f := h.feeds[roomID]
	if f == nil {
		f = newFeed(h, roomID)
		h.feeds[roomID] = f
		h.Stats.Rooms.Add(1)
		go f.start()
	}
	f.users++
	if f.linger != nil {
		f.linger.Stop()
		f.linger = nil
	}
	h.mu.Unlock()
	select {
	case <-f.ready:
	case <-ctx.Done():
		h.unfollow(f)
		return nil, ctx.Err()
	}
	if f.err != nil {
		h.unfollow(f)
		return nil, f.err
	}
	return f, nil
}

// unfollow counts one user of the feed less; a feed nobody uses lingers,
// then stops.
func (h *Hub) unfollow(f *feed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.users--
	if f.users > 0 {
		return
	}
	if f.err != nil { // a feed that failed to start is dropped at once
		h.drop(f)
		return
	}
	f.linger = time.AfterFunc(h.cfg.Linger, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if f.users == 0 && h.feeds[f.room] == f {
			h.drop(f)
		}
	})
}

// drop removes a feed; h.mu is held.
func (h *Hub) drop(f *feed) {
	if h.feeds[f.room] != f {
		return
	}
	delete(h.feeds, f.room)
	h.Stats.Rooms.Add(-1)
	if f.err == nil {
		h.broker.Unsubscribe(f.room)
	}
	h.pages.forget(f.room)
}

// tick runs the periodic work: head checks, presence renewal and expiry.
func (h *Hub) tick() {
	defer h.wg.Done()
	heads := time.NewTicker(h.cfg.HeadCheck)
	defer heads.Stop()
	renew := time.NewTicker(h.cfg.PresenceTTL / 3)
	defer renew.Stop()
	expire := time.NewTicker(time.Second)
	defer expire.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-heads.C:
			feeds := h.allFeeds()
			for _, f := range feeds {
				f.expire()
			}
			// The store reads run beside this loop, so that a slow store
			// holds back neither presence renewals nor expiry; a pass
			// still running when the next is due is not doubled.
			if h.checking.CompareAndSwap(false, true) {
				h.wg.Add(1)
				go func() {
					defer h.wg.Done()
					defer h.checking.Store(false)
					h.checkHeads(feeds)
				}()
			}
		case <-renew.C:
			for _, f := range h.allFeeds() {
				f.announce(true)
			}
		case now := <-expire.C:
			for _, r := range h.presence.Expire(now) {
				if f := h.lookup(r); f != nil {
					f.presenceChanged(false)
				}
			}
		}
	}
}
