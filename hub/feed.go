package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
	"unsafe"

	"dealroom"
	"dealroom/presence"
	"dealroom/room"
)

// entry is one event as sessions receive it: its frame for staff and its
// frame for customers (nil when customers do not see it), encoded once.
type entry struct {
	seq      int64
	staff    []byte
	customer []byte
	// removed is the user an event of type member.removed took out;
	// member the user a member.added or member.updated event is about,
	// memberKind their kind in the room from then on.
	removed    string
	member     string
	memberKind dealroom.Kind
	// message is the id of the message a message.posted or message.edited
	// event shows, for redaction once the message is deleted; tombstone is
	// the deleted message of a message.deleted event.
	message   string
	tombstone *room.Message
	// revoked is the accepted invite an invite.revoked event revokes: the
	// sessions of its tokens end.
	revoked string
	// kept is when a feed took the entry into its memory (Unix ns).
	kept int64
}

// entrySize is what an entry costs besides its frames and strings: the
// struct and its place in the feed's list.
const entrySize = int(unsafe.Sizeof(entry{})) + int(unsafe.Sizeof(&entry{}))

// size returns the bytes the entry holds: what a feed counts against its
// budget.
func (e *entry) size() int {
	n := entrySize + cap(e.staff) + len(e.removed) + len(e.member) + len(e.message) + len(e.revoked)
	if len(e.customer) > 0 && (len(e.staff) == 0 || &e.customer[0] != &e.staff[0]) {
		n += cap(e.customer)
	}
	if m := e.tombstone; m != nil {
		n += int(unsafe.Sizeof(*m)) + len(m.ID) + len(m.Body)
	}
	return n
}

func newEntry(ev room.Event, raw []byte) *entry {
	if raw == nil {
		raw, _ = json.Marshal(ev)
	}
	e := &entry{seq: ev.Seq, staff: eventFrame(ev.RoomID, raw)}
	if c, ok := ev.ForCustomer(); ok {
		cb, err := json.Marshal(c)
		switch {
		case err != nil:
		case bytes.Equal(cb, raw):
			e.customer = e.staff // most events read the same for everyone: keep them once
		default:
			e.customer = eventFrame(ev.RoomID, cb)
		}
	}
	switch ev.Type {
	case room.MessagePosted, room.MessageEdited:
		e.message = ev.MessageOf()
	case room.MessageDeleted:
		var m room.Message
		if json.Unmarshal(ev.Data, &m) == nil {
			e.tombstone = &m
		}
	}
	e.revoked = revokedInvite(ev)
	switch ev.Type {
	case room.MemberRemoved:
		var d room.MemberRemovedData
		if json.Unmarshal(ev.Data, &d) == nil {
			e.removed = d.UserID
		}
	case room.MemberAdded, room.MemberUpdated:
		var m room.Member
		if json.Unmarshal(ev.Data, &m) == nil {
			e.member, e.memberKind = m.UserID, m.Kind
		}
	}
	return e
}

// errAccessChanged ends a subscription whose view of the room changed: its
// person became a customer-kind member (or stopped being one).
var errAccessChanged = errors.New("access to the room changed")

// endsView tells why the entry ends sub's view of the room, if it does:
// sub's person was removed (errRemoved), or became a member of another
// kind, so that the frames they may see changed (errAccessChanged). The
// frames before and including the entry's were already meant for them.
func (e *entry) endsView(sb *sub) error {
	a := sb.sess.actor
	switch {
	case e.revoked != "" && e.revoked == a.Invite:
		return ErrSignedOut
	case e.removed != "" && e.removed == a.ID:
		if !sb.oversees {
			return errRemoved
		}
		// A manager or admin keeps seeing the room, now as staff (unless
		// the token says customer).
		if sb.customer != a.IsCustomer() {
			return errAccessChanged
		}
	case e.member != "" && e.member == a.ID:
		if customer := a.IsCustomer() || e.memberKind != dealroom.Staff; customer != sb.customer {
			return errAccessChanged
		}
	}
	return nil
}

// frameFor returns what sub's session receives of the entry, nil when
// nothing.
func (e *entry) frameFor(s *sub) []byte {
	if s.customer {
		return e.customer
	}
	return e.staff
}

// feed follows one room for the local sessions.
type feed struct {
	h    *Hub
	room string

	// Set by start before ready is closed.
	ready chan struct{}
	err   error

	// Guarded by h.mu.
	users  int
	linger *time.Timer

	mu   sync.Mutex
	head int64 // every event up to head was delivered
	// recent are the latest events, recent[i].seq ==
	// head-len(recent)+1+i, within the budget of the hub's config
	// (RecentBytes, RecentAge, Recent); recentBytes is their size.
	recent      []*entry
	recentBytes int
	// pending are events that came before the ones they follow (nil when
	// none: a map keeps its room once grown).
	pending map[int64]*entry
	filling bool
	// staleHead is a head the store showed beyond ours (head check).
	staleHead int64
	live      map[*sub]struct{}
	// reads is the highest read marker passed on, by person (nil until
	// the first): markers only move forward, and two of one person may
	// arrive out of order (hub/read.go).
	reads map[string]int64
	// presence broadcast pacing
	presenceDirty bool
	presenceTimer *time.Timer
	lastPresence  time.Time
	localDirty    bool
}

func newFeed(h *Hub, id string) *feed {
	return &feed{h: h, room: id, ready: make(chan struct{}), head: -1, live: map[*sub]struct{}{}}
}

// startEvents is how many of a room's latest events a feed loads when it
// starts: as many as its budget could hold of small events (256 bytes
// each), however long the room's history.
func (c *Config) startEvents() int { return min(c.Recent, c.RecentBytes/256) }

// start subscribes to the room's messages, then loads the latest events
// from the store (what the feed's budget holds): whatever is committed
// after the load arrives through the broker or is found as a gap.
func (f *feed) start() {
	defer close(f.ready)
	ctx, cancel := context.WithTimeout(f.h.ctx, 10*time.Second)
	defer cancel()
	if err := f.h.broker.Subscribe(ctx, f.room); err != nil {
		f.err = dealroom.Unavailable(err)
		return
	}
	r, err := f.h.store.Room(ctx, f.room)
	if err != nil {
		f.h.broker.Unsubscribe(f.room)
		f.err = err
		return
	}
	after := max(r.Head-int64(f.h.cfg.startEvents()), 0)
	f.h.Stats.StoreReads.Add(1)
	evs, err := f.h.store.Events(ctx, f.room, after, f.h.cfg.startEvents()+f.h.cfg.PageSize, false)
	if err != nil {
		f.h.broker.Unsubscribe(f.room)
		f.err = err
		return
	}
	f.mu.Lock()
	f.head = after
	for _, ev := range evs {
		if ev.Seq == f.head+1 {
			f.push(newEntry(ev, nil))
		}
	}
	f.drainPending()
	f.mu.Unlock()
	// Learn who is here from the other instances (telling them who is
	// here, in order with this instance's other announcements).
	devices, seq := f.h.presence.Snapshot(f.room)
	f.h.publishPresence(f.room, presence.Announcement{Devices: devices, Seq: seq, Query: true})
}

// offer takes an event from the broker.
func (f *feed) offer(e *entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.head < 0 { // still starting: keep it for after the load
		f.park(e)
		return
	}
	if e.seq <= f.head {
		return // known already
	}
	if e.seq == f.head+1 {
		f.push(e)
		f.drainPending()
		return
	}
	f.park(e)
	f.fillGap(f.h.cfg.GapWait)
}

func (f *feed) park(e *entry) {
	if len(f.pending) >= f.h.cfg.Recent {
		// The store has it: the gap fill reads up to it.
		f.staleHead = max(f.staleHead, e.seq)
		return
	}
	if f.pending == nil {
		f.pending = map[int64]*entry{}
	}
	f.pending[e.seq] = e
}

// drainPending delivers parked events that are next; f.mu is held.
func (f *feed) drainPending() {
	for {
		e, ok := f.pending[f.head+1]
		if !ok {
			break
		}
		delete(f.pending, e.seq)
		f.push(e)
	}
	for seq := range f.pending {
		if seq <= f.head {
			delete(f.pending, seq)
		}
	}
	if len(f.pending) == 0 {
		f.pending = nil
	}
}

// push appends the next event and delivers it to the live sessions; f.mu
// is held.
func (f *feed) push(e *entry) {
	f.head = e.seq
	e.kept = f.h.cfg.Now().UnixNano()
	f.recent = append(f.recent, e)
	f.recentBytes += e.size()
	f.trim(0)
	for s := range f.live {
		f.deliver(s, e)
	}
	if e.tombstone != nil {
		f.redact(e.tombstone)
	}
}

// redact replaces what the feed remembers of a deleted message by its
// tombstone, so that catch-up no longer shows its text; f.mu is held.
func (f *feed) redact(m *room.Message) {
	for i, r := range f.recent {
		if r.message != "" && r.message == m.ID {
			// The event is read back from its staff frame: deletions are
			// rare, keeping a decoded copy of every event is not.
			var fr struct {
				Event room.Event `json:"event"`
			}
			if json.Unmarshal(r.staff, &fr) == nil {
				red := newEntry(fr.Event.Redacted(*m), nil)
				red.kept = r.kept
				f.recentBytes += red.size() - r.size()
				f.recent[i] = red
			}
		}
	}
	f.h.pages.forget(f.room)
}

// deliver queues an event for a live subscription; f.mu is held.
func (f *feed) deliver(s *sub, e *entry) {
	if e.seq <= s.sent {
		return
	}
	if fr := e.frameFor(s); fr != nil {
		if err := s.sess.q.pushEvent(f.room, fr); err != nil {
			f.endLive(s, err)
			return
		}
		f.h.Stats.Delivered.Add(1)
	}
	s.sent = e.seq
	if why := e.endsView(s); why != nil {
		f.endLive(s, why)
	}
}

// endLive takes a subscription out of live delivery; f.mu is held.
func (f *feed) endLive(s *sub, why error) {
	delete(f.live, s)
	s.sess.ended(s, why)
}

// trim drops the oldest events in memory while they are over the feed's
// budget, or were taken in before keptBefore (Unix ns); f.mu is held. A
// device catching up holds the events it was handed; the ones it has yet
// to read it reads from the page cache and the store.
func (f *feed) trim(keptBefore int64) {
	cfg := &f.h.cfg
	n := 0
	for n < len(f.recent) {
		e := f.recent[n]
		if f.recentBytes <= cfg.RecentBytes && len(f.recent)-n <= cfg.Recent && e.kept >= keptBefore {
			break
		}
		f.recentBytes -= e.size()
		f.recent[n] = nil
		n++
	}
	switch {
	case n == len(f.recent):
		f.recent, f.recentBytes = nil, 0 // let the array go
	case n > 0:
		f.recent = f.recent[n:]
		if cap(f.recent) > 4*len(f.recent)+16 {
			// Grown for a burst: a quiet room keeps a small array.
			f.recent = append([]*entry(nil), f.recent...)
		}
	}
}

// expire drops the events the feed took in longer than RecentAge ago.
func (f *feed) expire() {
	keptBefore := f.h.cfg.Now().Add(-f.h.cfg.RecentAge).UnixNano()
	f.mu.Lock()
	f.trim(keptBefore)
	f.mu.Unlock()
}

// firstRecent returns the seq of the oldest event in memory; f.mu is held.
func (f *feed) firstRecent() int64 {
	return f.head - int64(len(f.recent)) + 1
}

// fillGap reads missing events from the store after a wait, unless a fill
// runs already; f.mu is held.
func (f *feed) fillGap(wait time.Duration) {
	if f.filling {
		return
	}
	f.filling = true
	go f.fill(wait)
}

func (f *feed) fill(wait time.Duration) {
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-f.h.ctx.Done():
			t.Stop()
		}
	}
	backoff := 50 * time.Millisecond
	for {
		f.mu.Lock()
		if len(f.pending) == 0 && !f.stale() || f.h.ctx.Err() != nil {
			f.filling = false
			f.mu.Unlock()
			return
		}
		after := f.head
		f.mu.Unlock()

		ctx, cancel := context.WithTimeout(f.h.ctx, 10*time.Second)
		f.h.Stats.StoreReads.Add(1)
		evs, err := f.h.store.Events(ctx, f.room, after, f.h.cfg.PageSize, false)
		cancel()
		f.mu.Lock()
		progress := false
		for _, ev := range evs {
			if ev.Seq == f.head+1 {
				f.push(newEntry(ev, nil))
				progress = true
			}
		}
		f.drainPending()
		if progress {
			f.h.Stats.GapsRepaired.Add(1)
		}
		f.mu.Unlock()
		if err != nil || !progress {
			// The store failed, or does not show yet what the broker
			// announced: try again a little later.
			select {
			case <-time.After(backoff):
			case <-f.h.ctx.Done():
			}
			backoff = min(backoff*2, 2*time.Second)
		}
	}
}

// stale tells whether the store showed more than the feed has; f.mu is
// held.
func (f *feed) stale() bool { return f.staleHead > f.head }

// checkHead compares the feed's head with the store's and fills the
// difference: the repair of broker messages lost without a later event to
// show the gap.
func (f *feed) checkHead() {
	head := f.currentHead()
	if head < 0 {
		return // not started
	}
	// Is there an event after ours? One event asked for: for a store an
	// exact key (seqs have no holes), cheaper than reading the room.
	ctx, cancel := context.WithTimeout(f.h.ctx, 5*time.Second)
	evs, err := f.h.store.Events(ctx, f.room, head, 1, false)
	cancel()
	if err != nil || len(evs) == 0 {
		return
	}
	f.storeHas(evs[0].Seq)
}

// currentHead returns the feed's head, -1 while it starts.
func (f *feed) currentHead() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// storeHas tells the feed that the store holds the event seq: when that
// is past the feed's head, the feed reads up to it.
func (f *feed) storeHas(seq int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq > f.head {
		f.staleHead = max(f.staleHead, seq)
		f.fillGap(0)
	}
}
