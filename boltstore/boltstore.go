// Package boltstore is the embedded store: the event log and read models of
// every room in one bbolt file in the data directory. bbolt is pure Go,
// keeps one writer and many readers with consistent snapshots, and makes
// every committed transaction durable with fsync, so an acknowledged write
// survives kill -9 and power loss.
//
// Writes go through one goroutine that commits them in groups: every
// command that arrives while a commit is being synced joins the next one,
// so many writers share one fsync without any of them being acknowledged
// before its event is on disk.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
)

// Buckets. Keys join ids with a 0 byte; seqs are 8-byte big-endian so that
// they sort.
var (
	bMeta        = []byte("meta")
	bRooms       = []byte("rooms")          // room → Room
	bEvents      = []byte("events")         // room 0 seq → Event, compressed (log.go)
	bIdem        = []byte("idempotency")    // room 0 room.IdempotencyID(actor, key) → idemRecord (idem.go)
	bIdemAt      = []byte("idempotency_at") // dropped: files from before kept the records by age here (idem.go)
	bMembers     = []byte("members")        // room 0 user → Member
	bUserRooms   = []byte("user_rooms")     // user 0 room → ""
	bTasks       = []byte("tasks")          // room 0 task → Task
	bAssigned    = []byte("assigned")       // user 0 room 0 task → ""
	bMessages    = []byte("messages")       // room 0 message → seq of its last event (log.go), or Message
	bReplies     = []byte("replies")        // room 0 parent 0 message → ""
	bAttachments = []byte("attachments")    // room 0 attachment → Attachment
	bInvites     = []byte("invites")        // invite → Invite
	bRoomInvites = []byte("room_invites")   // room 0 invite → ""
	// room 0 ^created_at (unix ns, 8 bytes, inverted: newest first) invite → ""
	bRoomInvitesAt = []byte("room_invites_at")
	bInbox         = []byte("inbox") // user 0 item → InboxItem

	allBuckets = [][]byte{bMeta, bRooms, bEvents, bIdem, bMembers, bUserRooms, bTasks, bAssigned,
		bMessages, bReplies, bAttachments, bInvites, bRoomInvites, bRoomInvitesAt, bInbox, bListed, bSessions, bUserSessions, bTickets, bReads, bBriefs}
)

// schemaVersion is the form of the file this code writes. Version 2
// stores events compressed, message records as seqs and idempotency
// records in binary (log.go, idem.go); it reads version 1 files, and
// marks them 2 when it opens them, so that older binaries, which would
// misread the new records, refuse the file.
const schemaVersion = "2"

// oldSchemas are the versions this code upgrades in place.
var oldSchemas = []string{"1"}

// maxBatch bounds how many commands share one transaction.
const maxBatch = 256

var _ room.Store = (*Store)(nil)

// Store is the embedded room.Store.
type Store struct {
	db       *bolt.DB
	requests chan *request
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	// sending guards requests against Close: once closed is set under the
	// write lock, no request can be queued that the writer would not see.
	sending sync.RWMutex
	closed  bool
	// briefs keeps the briefs the pipeline decoded (brief.go).
	briefs room.BriefCache
	// wc is the writer's cache of decoded rooms and members, zip its
	// compressor of events.
	wc  wcache
	zip zipper
	// legacyKeys is the time of the newest idempotency record of the old
	// rule (zero: none; see idem.go).
	legacyKeys time.Time
	// sweepFrom is the idempotency record the next sweep starts from
	// (nil: the first); the writer's alone.
	sweepFrom []byte
	// observe, when set, is told of every commit.
	observe atomic.Pointer[func(commands int, d time.Duration)]
}

// OnCommit sets a function told of every durable commit: how many commands
// it held and how long it took (for metrics). It runs on the writer, so it
// must be quick.
func (s *Store) OnCommit(f func(commands int, d time.Duration)) {
	s.observe.Store(&f)
}

type request struct {
	ctx    context.Context
	cmd    room.Command
	result chan result
}

type result struct {
	room.Executed
	err error
}

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	// The free page list is not written by every commit (a page less per
	// commit) but found again when the file is opened, by a walk of the
	// file; the hashmap list is the quick one to search when the file is
	// big and fragmented.
	db, err := bolt.Open(filepath.Join(dir, File), 0o600, &bolt.Options{Timeout: 5 * time.Second,
		InitialMmapSize: initialMmap, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w (is another dealroom running on this data directory?)", dir, err)
	}
	var legacyKeys time.Time
	err = db.Update(func(tx *bolt.Tx) (err error) {
		legacyKeys, err = prepare(tx)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	s := &Store{db: db, requests: make(chan *request, maxBatch), done: make(chan struct{}), legacyKeys: legacyKeys}
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

// prepare readies a file for this code: it creates the buckets, fills the
// indexes a file from before them lacks, checks the schema, and returns
// the time of the newest idempotency record of the old rule (see idem.go).
func prepare(tx *bolt.Tx) (legacyKeys time.Time, err error) {
	indexInvites := tx.Bucket(bRoomInvitesAt) == nil && tx.Bucket(bInvites) != nil
	indexListed := tx.Bucket(bListed) == nil && tx.Bucket(bMessages) != nil
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return legacyKeys, err
		}
	}
	if indexInvites {
		// A file from before the invites were indexed by time.
		err := tx.Bucket(bInvites).ForEach(func(_, raw []byte) error {
			var inv room.Invite
			if err := json.Unmarshal(raw, &inv); err != nil {
				return err
			}
			return tx.Bucket(bRoomInvitesAt).Put(inviteAtKey(inv), nil)
		})
		if err != nil {
			return legacyKeys, err
		}
	}
	if indexListed {
		// A file from before the listings were indexed.
		if err := fillListed(tx); err != nil {
			return legacyKeys, err
		}
	}
	meta := tx.Bucket(bMeta)
	switch v := meta.Get([]byte("schema")); {
	case v == nil || slices.Contains(oldSchemas, string(v)):
		if err := meta.Put([]byte("schema"), []byte(schemaVersion)); err != nil {
			return legacyKeys, err
		}
	case string(v) != schemaVersion:
		return legacyKeys, fmt.Errorf("data directory has schema %s, this binary knows %s", v, schemaVersion)
	}
	if legacyKeys, err = markIdemRule(tx); err != nil {
		return legacyKeys, err
	}
	if tx.Bucket(bIdemAt) != nil {
		// The index of the idempotency records by age, which files from
		// before the sweep's walk kept (idem.go).
		if err := tx.DeleteBucket(bIdemAt); err != nil {
			return legacyKeys, err
		}
	}
	return legacyKeys, nil
}

// Close stops the writer after the commands it holds and closes the file.
// Calling it twice is safe.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.sending.Lock()
		s.closed = true
		s.sending.Unlock()
		close(s.done)
		s.wg.Wait()
		err = s.db.Close()
	})
	return err
}

// File is the name of the store's file in its directory.
const File = "dealroom.db"

// Snapshot writes to w a copy of the store's file as one read transaction
// sees it: every commit acknowledged before the call, whole, and nothing
// half written; opened as a file of its own (named File in a directory),
// it is the store as of that moment. It returns the bytes written. The
// writer goes on committing meanwhile; only a file that outgrows its
// mapping (1 GiB, then each further GiB) waits for the copy to end before
// it is mapped anew, so copy to a local disk, not to a slow client.
func (s *Store) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	if err := s.Ping(ctx); err != nil {
		return 0, err
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return 0, dealroom.Unavailable(err)
	}
	defer tx.Rollback()
	n, err := tx.WriteTo(ctxWriter{ctx, w})
	if err != nil && ctx.Err() != nil {
		err = ctx.Err() // bbolt's message keeps its text only
	}
	return n, err
}

// ctxWriter stops writing once its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.done:
		return dealroom.Unavailable(errors.New("store closed"))
	default:
		return nil
	}
}

// Execute implements room.Store.
func (s *Store) Execute(ctx context.Context, cmd room.Command) (room.Executed, error) {
	req := &request{ctx: ctx, cmd: cmd, result: make(chan result, 1)}
	s.sending.RLock()
	if s.closed {
		s.sending.RUnlock()
		return room.Executed{}, dealroom.Unavailable(errors.New("store closed"))
	}
	select {
	case s.requests <- req:
		s.sending.RUnlock()
	case <-ctx.Done():
		s.sending.RUnlock()
		return room.Executed{}, ctx.Err()
	}
	// Once queued, the command is carried out even if ctx ends: the caller
	// learns nothing about it then, and a retry with its key is safe.
	select {
	case r := <-req.result:
		return r.Executed, r.err
	case <-ctx.Done():
		return room.Executed{}, ctx.Err()
	}
}

// writer commits queued commands in groups until the store closes.
func (s *Store) writer() {
	defer s.wg.Done()
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-s.requests:
			batch = gather(s.requests, append(batch[:0], r))
		case <-s.done:
			// Answer whatever is still queued.
			for {
				select {
				case r := <-s.requests:
					r.result <- result{err: dealroom.Unavailable(errors.New("store closed"))}
				default:
					return
				}
			}
		}
		s.commit(batch)
	}
}

// gather adds to batch the commands already queued, up to maxBatch. It
// does not wait for more: those that arrive while this group commits make
// up the next. A pause for company (200 us under load, until December
// 2026) cost a millisecond, not 200 us: a timer shorter than a
// millisecond fires on the runtime's next poll, up to a millisecond later
// when the process is otherwise idle, so every write under load waited
// that long (b1000: p50 1.85 ms with it, 1.03 ms without).
func gather(requests chan *request, batch []*request) []*request {
	for len(batch) < maxBatch {
		select {
		case r := <-requests:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// initialMmap is the address space the file is mapped with from the start.
// When the file outgrows its mapping, bbolt maps it again, and that waits
// for every read transaction and holds off new ones: under load, a stall
// of tens of milliseconds each time the file doubles. Address space costs
// nothing until pages are read, so a 64-bit server maps 1 GiB at once.
const initialMmap = 1 << 30 * (strconv.IntSize / 64)

// appendBuckets are the buckets whose keys grow within each room (seqs,
// ids that sort by time) or in time: their pages are packed fuller when
// they split, as what is left of a page is not written to again. At
// bbolt's default (split half full) 100 rooms written in turn left their
// pages 42% used; packed, about 70%: 40% fewer pages, and fewer levels
// of branches for each commit to write again.
var appendBuckets = [][]byte{bEvents, bAttachments, bInbox}

const appendFill = 0.9

// indexBuckets grow the same way but hold small records (the seq of a
// message's event, or keys alone), many to a page. Each room's records go
// into the middle of a page shared with the next room's; split 90% full,
// the rest of the page, the next room's records, was left on a page of
// its own that nobody writes to again. Split 70% full, their pages are
// 64% used (59% at bbolt's default, 46% at 95%).
var indexBuckets = [][]byte{bMessages, bReplies, bListed}

const indexFill = 0.7

// packed opens one of the append or index buckets to write to, with its
// fill set for the write transaction tx (a bucket's fill is not kept in
// the file). Every write to these buckets opens them so. Only the buckets
// a commit writes to are opened: a transaction's first use of a bucket
// searches the root and allocates about ten objects, and a message's
// commit leaves the attachments, the inbox and the replies alone.
func packed(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	for _, n := range appendBuckets {
		if bytes.Equal(n, name) {
			b.FillPercent = appendFill
		}
	}
	for _, n := range indexBuckets {
		if bytes.Equal(n, name) {
			b.FillPercent = indexFill
		}
	}
	return b
}

// commit carries out a group of commands in one transaction. A command
// whose decision fails only fails itself; a storage failure fails them all,
// and then nothing of any of them is written.
func (s *Store) commit(batch []*request) {
	results := make([]result, len(batch))
	start := time.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		var latest time.Time
		for i, r := range batch {
			if r.ctx.Err() != nil {
				results[i] = result{err: r.ctx.Err()}
				continue
			}
			res, err := s.executeTx(tx, r.cmd)
			if err != nil {
				return err
			}
			results[i] = res
			if t := commandTime(r.cmd); t.After(latest) {
				latest = t
			}
		}
		return s.sweepKeys(tx, latest, sweepBatch)
	})
	if err != nil {
		s.wc.reset() // what the transaction wrote is rolled back
	}
	// Told before anyone is answered, so that what a client was answered
	// is counted when it looks.
	if f := s.observe.Load(); f != nil {
		(*f)(len(batch), time.Since(start))
	}
	for i, r := range batch {
		if err != nil {
			results[i] = result{err: dealroom.Unavailable(err)}
		}
		r.result <- results[i]
	}
}

// executeTx runs one command inside the write transaction: its key, its
// decision, and the event it decides on. Its returned error is a storage
// failure; a refused command is reported in the result.
func (s *Store) executeTx(tx *bolt.Tx, cmd room.Command) (result, error) {
	if cmd.Key != "" {
		if res, done, err := s.replayKey(tx, cmd); err != nil || done {
			return res, err
		}
	}
	v := &view{tx: tx, room: cmd.Room, wc: &s.wc}
	d, derr := cmd.Run(v)
	if err := v.Err(); err != nil {
		return result{}, err
	}
	if derr != nil {
		return result{err: derr}, nil
	}
	if d.Event.Type == "" {
		return result{Executed: room.Executed{Result: d.Result}}, nil
	}
	if refused, err := claimExternal(tx, cmd.Room, d.Event); err != nil || refused != nil {
		return result{err: refused}, err
	}
	ev, err := s.append(tx, cmd.Room, d.Event)
	if err != nil {
		return result{}, err
	}
	if cmd.Key != "" {
		if err := recordKey(tx, cmd, ev.Seq); err != nil {
			return result{}, err
		}
	}
	return result{Executed: room.Executed{Event: ev, Result: d.Result}}, nil
}

// append gives ev the room's next seq and writes it with its effects.
func (s *Store) append(tx *bolt.Tx, roomID string, ev room.Event) (room.Event, error) {
	r, err := s.wc.room(tx, roomID)
	if err != nil {
		return ev, err
	}
	var head int64
	if r != nil {
		head = r.Head
	}
	ev.Seq = head + 1
	ev.RoomID = roomID
	return ev, s.appendEvent(tx, ev)
}

// inviteAtKey is an invite's key in the room's invites newest first.
func inviteAtKey(inv room.Invite) []byte {
	k := binary.BigEndian.AppendUint64(prefix(inv.RoomID), ^uint64(inv.CreatedAt.UnixNano()))
	return append(k, inv.ID...)
}

// commandTime is the time of a command: its own, or now.
func commandTime(cmd room.Command) time.Time {
	if cmd.At.IsZero() {
		return time.Now()
	}
	return cmd.At
}

// key joins parts with 0 bytes.
func key(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// prefix returns key(parts...) followed by a 0 byte: every key under it.
func prefix(parts ...string) []byte { return append(key(parts...), 0) }

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, raw)
}

// getJSON decodes the value under k, nil when there is none.
func getJSON[T any](b *bolt.Bucket, k []byte) (*T, error) {
	raw := b.Get(k)
	if raw == nil {
		return nil, nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("boltstore: corrupt record %q: %w", k, err)
	}
	return &v, nil
}
