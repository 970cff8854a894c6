package mongostore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/x/mongo/driver/topology"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// eventDoc is an event as stored. Data and Changes keep the exact JSON
// the domain produced, so that every reader of the log gets the same
// bytes; the idempotency key and the request's fingerprint are part of
// the event document, so they are recorded by the same single-document
// insert that takes the seq.
type eventDoc struct {
	OID         primitive.ObjectID  `bson:"_id"`
	ID          string              `bson:"id"`
	RoomID      string              `bson:"room_id"`
	Seq         int64               `bson:"seq"`
	Type        string              `bson:"type"`
	Actor       room.EventActor     `bson:"actor"`
	At          time.Time           `bson:"at"`
	Visibility  dealroom.Visibility `bson:"visibility"`
	Data        string              `bson:"data"`
	Changes     string              `bson:"changes,omitempty"`
	Idem        string              `bson:"idem"`
	Fingerprint string              `bson:"fingerprint,omitempty"`
}

func newEventDoc(ev room.Event, idem, fingerprint string) (eventDoc, error) {
	d := eventDoc{OID: primitive.NewObjectID(), ID: ev.ID, RoomID: ev.RoomID, Seq: ev.Seq, Type: ev.Type,
		Actor: ev.Actor, At: ev.At, Visibility: ev.Visibility, Data: string(ev.Data), Fingerprint: fingerprint}
	if len(ev.Data) == 0 {
		d.Data = "null"
	}
	if len(ev.Changes) > 0 {
		raw, err := json.Marshal(ev.Changes)
		if err != nil {
			return eventDoc{}, err
		}
		d.Changes = string(raw)
	}
	d.Idem = idem
	if d.Idem == "" {
		// No key: a value of its own, so that the unique index on
		// (room_id, idem) holds only real keys apart. (A partial index
		// would do the same on MongoDB, but not on every server that
		// speaks its protocol.)
		d.Idem = "e:" + d.OID.Hex()
	}
	return d, nil
}

func (d *eventDoc) event() (room.Event, error) {
	ev := room.Event{Seq: d.Seq, ID: d.ID, RoomID: d.RoomID, Type: d.Type, Actor: d.Actor, At: d.At,
		Visibility: d.Visibility, Data: json.RawMessage(d.Data)}
	if d.Changes != "" {
		if err := json.Unmarshal([]byte(d.Changes), &ev.Changes); err != nil {
			return room.Event{}, fmt.Errorf("mongostore: event %d of room %s has bad changes: %w", d.Seq, d.RoomID, err)
		}
	}
	return ev, nil
}

// Execute implements room.Store. See the package documentation for the
// algorithm: each attempt decides on the room's state and inserts the
// event at the next seq; an attempt whose seq another writer took is
// tried again.
func (s *Store) Execute(ctx context.Context, cmd room.Command) (room.Executed, error) {
	if err := s.begin(); err != nil {
		return room.Executed{}, err
	}
	unlock, err := s.locks.lock(ctx, cmd.Room)
	if err != nil {
		return room.Executed{}, err
	}
	defer unlock()

	w := write{cmd: cmd, checkKey: cmd.Key != ""}
	if cmd.Key != "" {
		w.idem = room.IdempotencyID(cmd.Actor, cmd.Key)
	}
	for attempt := 1; ; attempt++ {
		x, clash, err := s.attempt(ctx, &w)
		if !clash {
			return x, err
		}
		// Another writer took this seq (or, with the same key, this
		// request): look again, the long way.
		s.clashes.Add(1)
		w.checkKey = cmd.Key != ""
		if attempt >= s.cfg.maxAttempts {
			return room.Executed{}, dealroom.Unavailable(fmt.Errorf(
				"mongostore: room %s: no free seq after %d attempts", cmd.Room, attempt))
		}
		if err := backoff(ctx, attempt); err != nil {
			return room.Executed{}, err
		}
	}
}

// write is one command being executed, across its attempts.
type write struct {
	cmd  room.Command
	idem string // the idempotency id of the key (empty: no key)
	// checkKey says that the key is still to be looked up before the
	// next decision.
	checkKey bool
}

// attempt makes one attempt at a write: the key, the decision on the
// room's state, the insert at the next seq and the read models' update.
// clash reports that another writer took the seq first.
func (s *Store) attempt(ctx context.Context, w *write) (x room.Executed, clash bool, err error) {
	cmd := w.cmd
	// A room this instance wrote last is decided on what it knows
	// (see hotRooms); the insert below checks that nobody wrote since.
	known, hot := s.hot.get(cmd.Room)
	if w.checkKey && !hot {
		ev, found, err := s.replay(ctx, cmd, w.idem)
		if err != nil || found {
			return room.Executed{Event: ev, Replayed: found}, false, err
		}
		w.checkKey = false
	}
	head, exists := known.head, true
	if !hot {
		if head, exists, err = s.catchUp(ctx, cmd.Room); err != nil {
			return room.Executed{}, false, s.fail(ctx, err)
		}
	}
	v := &view{s: s, ctx: ctx, room: cmd.Room, hot: &known}
	d, derr := cmd.Run(v)
	if err := v.Err(); err != nil {
		s.hot.drop(cmd.Room)
		return room.Executed{}, false, s.fail(ctx, err)
	}
	if derr != nil || d.Event.Type == "" {
		x, err := s.nothingToAppend(ctx, w, hot, d, derr)
		return x, false, err
	}
	ev, fx, err := nextEvent(d.Event, cmd.Room, head, exists)
	if err != nil {
		return room.Executed{}, false, err
	}
	if err := s.claimExternal(ctx, ev); err != nil {
		return room.Executed{}, false, err
	}
	if clash, err := s.insert(ctx, ev, w); clash || err != nil {
		s.hot.drop(cmd.Room)
		return room.Executed{}, clash, err
	}
	if s.afterInsert != nil {
		if err := s.afterInsert(ev); err != nil {
			s.hot.drop(cmd.Room)
			return room.Executed{}, false, err
		}
	}
	if s.applyInserted(ctx, ev, fx) {
		s.hot.put(cmd.Room, known.after(ev, fx))
		s.fresh.mark(cmd.Room, s.cfg.freshFor)
	} else {
		s.hot.drop(cmd.Room)
		s.fresh.forget(cmd.Room)
	}
	return room.Executed{Event: ev, Result: d.Result}, false, nil
}

// nothingToAppend answers a decision that appends nothing: refused (derr)
// or changing nothing. On the short way (hot) the key was not looked up:
// a retry whose first attempt is in may be refused now (a message it
// deleted), and its key, not this decision, gives the answer.
func (s *Store) nothingToAppend(ctx context.Context, w *write, hot bool, d room.Decision, derr error) (room.Executed, error) {
	if hot && w.checkKey {
		ev, found, err := s.replay(ctx, w.cmd, w.idem)
		if err != nil || found {
			return room.Executed{Event: ev, Replayed: found}, err
		}
	}
	if derr != nil {
		return room.Executed{}, derr
	}
	return room.Executed{Result: d.Result}, nil
}

// nextEvent makes the decided event the room's event at head+1, with its
// effects on the read models.
func nextEvent(ev room.Event, roomID string, head int64, exists bool) (room.Event, room.Effects, error) {
	ev.Seq = head + 1
	ev.RoomID = roomID
	fx, err := room.Project(ev)
	if err != nil {
		return ev, fx, fmt.Errorf("mongostore: %w", err)
	}
	if fx.Room == nil && !exists {
		return ev, fx, fmt.Errorf("mongostore: event %s (%s) of unknown room %s", ev.ID, ev.Type, ev.RoomID)
	}
	return ev, fx, nil
}

// insertTries bounds how often insert sends an event document that got
// no answer.
const insertTries = 3

// insert commits the event: one insert that takes its seq and records the
// write's key. clash reports that another writer took the seq (or, with
// the same key, the request) first.
//
// An insert that gets no answer (a connection cut, a primary stepping
// down, a write concern error after the primary applied it) may or may not
// have happened, and a duplicate key error may be this very document's,
// when an earlier send of it landed (the driver's retry, or ours). So the
// same document is sent again, at most insertTries times in all: its _id,
// made here, lets no second copy in. Then settle says what the log holds:
// the document committed (the write is done, whatever the errors said),
// absent (a duplicate key is another writer's: a clash; any other error
// is the answer), or not known.
func (s *Store) insert(ctx context.Context, ev room.Event, w *write) (clash bool, err error) {
	doc, err := newEventDoc(ev, w.idem, w.cmd.Fingerprint)
	if err != nil {
		return false, fmt.Errorf("mongostore: %w", err)
	}
	sent := false // whether a send may have reached a server
	for try := 1; ; try++ {
		_, err = s.events.InsertOne(ctx, doc)
		if err == nil {
			return false, nil
		}
		sent = sent || !errors.As(err, new(topology.ServerSelectionError))
		if mongo.IsDuplicateKeyError(err) || try == insertTries || ctx.Err() != nil || backoff(ctx, try) != nil {
			break
		}
	}
	if !sent {
		// No server was found to send it to: nothing was written.
		return false, s.fail(ctx, err)
	}
	switch got, serr := s.settle(ctx, doc.OID); got {
	case committed:
		return false, nil
	case absent:
		if mongo.IsDuplicateKeyError(err) {
			return true, nil
		}
		return false, s.fail(ctx, err)
	default:
		return false, dealroom.Unavailable(fmt.Errorf(
			"mongostore: event %d of room %s: the insert failed (%v) and whether it is recorded is not known: %w",
			ev.Seq, ev.RoomID, err, serr))
	}
}

// outcome is what a collection holds of a document whose insert got an
// error or no answer (see settleDoc).
type outcome int

const (
	absent    outcome = iota // not on the primary
	committed                // on a majority of the replica set
	unknown                  // on the primary only, or the reads failed
)

// settleTimeout bounds how long settleDoc waits for a document to be
// read back.
const settleTimeout = 10 * time.Second

// settle finds out whether the event document with this _id is in the log
// for good (see settleDoc).
func (s *Store) settle(ctx context.Context, oid primitive.ObjectID) (outcome, error) {
	return settleDoc(ctx, s.events, s.committedEvents, oid)
}

// settleDoc finds out whether the document with this _id, whose insert
// got an error or no answer, is in coll for good. Read on the primary
// (coll), it is absent when it was never written (or was written on a
// primary that has lost its place, which will roll it back). Present
// there, it is committed only once a read with read concern "majority"
// (majority: coll with that read concern) sees it too: a write the
// primary holds alone can still be rolled back by a failover, and must not
// be reported done. The reads are tried again for up to settleTimeout (a
// primary being elected); after that the outcome is unknown.
func settleDoc(ctx context.Context, coll, majority *mongo.Collection, id any) (outcome, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		onPrimary, err := hasDoc(cctx, coll, id)
		if err == nil && !onPrimary {
			return absent, nil
		}
		if err == nil {
			var onMajority bool
			if onMajority, err = hasDoc(cctx, majority, id); err == nil && onMajority {
				return committed, nil
			}
			if err == nil {
				err = errors.New("on the primary, not yet on a majority")
			}
		}
		if berr := backoff(cctx, attempt); berr != nil {
			return unknown, err
		}
	}
}

// hasDoc tells whether coll holds the document with this _id.
func hasDoc(ctx context.Context, coll *mongo.Collection, id any) (bool, error) {
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// duplicate tells whether err is a refusal as a duplicate key and nothing
// else. With a write concern error beside it, the document in the way may
// be on the primary alone, which a failover can roll back: then it is a
// failure like any other.
func duplicate(err error) bool {
	if !mongo.IsDuplicateKeyError(err) {
		return false
	}
	var we mongo.WriteException
	if errors.As(err, &we) && we.WriteConcernError != nil {
		return false
	}
	var bwe mongo.BulkWriteException
	return !errors.As(err, &bwe) || bwe.WriteConcernError == nil
}

// applyInserted brings the read models up to an event just committed:
// from then on it is the truth, and they are updated even if the caller
// gives up. A failure is logged and leaves the room to be repaired on its
// next use (every write, and every read once the room is no longer taken
// for fresh, catches it up): the write is still reported done, since it
// is, and a client told otherwise would make the change a second time.
func (s *Store) applyInserted(ctx context.Context, ev room.Event, fx room.Effects) bool {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.applyTimeout)
	defer cancel()
	if err := s.apply(actx, ev, fx); err != nil {
		s.log.Error("mongostore: event recorded, read models not updated; the room is repaired on its next use",
			"room", ev.RoomID, "seq", ev.Seq, "err", err)
		return false
	}
	return true
}

// backoff waits a little, more after more failed attempts.
func backoff(ctx context.Context, attempt int) error {
	limit := min(time.Millisecond<<min(attempt, 6), 50*time.Millisecond)
	t := time.NewTimer(rand.N(limit) + time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// replay looks up an earlier event under the command's key.
func (s *Store) replay(ctx context.Context, cmd room.Command, idem string) (room.Event, bool, error) {
	doc, err := findOne[eventDoc](ctx, s.events, bson.D{{Key: "room_id", Value: cmd.Room}, {Key: "idem", Value: idem}})
	if err != nil {
		return room.Event{}, false, s.fail(ctx, err)
	}
	if doc == nil {
		return room.Event{}, false, nil
	}
	if at := cmd.At; room.KeyExpired(doc.At, cmp.Or(at, time.Now())) {
		// Forgotten (room.KeyRetention): the key is taken off the event,
		// as if it had been written without one, so that the command is
		// carried out anew and its insert may take the key.
		_, err := s.events.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.OID}, {Key: "idem", Value: idem}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "idem", Value: "e:" + doc.OID.Hex()}}}})
		if err != nil {
			return room.Event{}, false, s.fail(ctx, err)
		}
		return room.Event{}, false, nil
	}
	if doc.Fingerprint != cmd.Fingerprint {
		return room.Event{}, false, room.ErrKeyReused
	}
	// The first request's answer is given again only if its event is
	// there for good (see settle).
	switch got, err := s.settle(ctx, doc.OID); got {
	case absent:
		return room.Event{}, false, nil
	case unknown:
		return room.Event{}, false, dealroom.Unavailable(fmt.Errorf(
			"mongostore: room %s: the event of the key is not yet on a majority: %w", cmd.Room, err))
	}
	ev, err := doc.event()
	if err != nil {
		return room.Event{}, false, s.fail(ctx, err)
	}
	// The first attempt may have died before updating the read models.
	if _, _, err := s.catchUp(ctx, cmd.Room); err != nil {
		return room.Event{}, false, s.fail(ctx, err)
	}
	return ev, true, nil
}

// head returns the room's last seq in the event log, 0 when it has none.
func (s *Store) head(ctx context.Context, roomID string) (int64, error) {
	var d struct {
		Seq int64 `bson:"seq"`
	}
	err := s.events.FindOne(ctx, bson.D{{Key: "room_id", Value: roomID}},
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).
			SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "_id", Value: 0}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	return d.Seq, err
}

// roomMeta is the bookkeeping part of a room document.
type roomMeta struct {
	AppliedSeq int64 `bson:"applied_seq"`
}

// catchUp brings the room's read models up to its event log: it replays
// the events after the room's high-water mark (applied_seq). It returns the
// log's head and whether the room exists.
func (s *Store) catchUp(ctx context.Context, roomID string) (head int64, exists bool, err error) {
	if head, err = s.head(ctx, roomID); err != nil {
		return 0, false, err
	}
	meta, err := findOne[roomMeta](ctx, s.rooms, bson.D{{Key: "_id", Value: roomID}},
		options.FindOne().SetProjection(bson.D{{Key: "applied_seq", Value: 1}}))
	if err != nil {
		return 0, false, err
	}
	exists = meta != nil
	var applied int64
	if meta != nil {
		applied = meta.AppliedSeq
	}
	if applied < head {
		if err := s.replayEvents(ctx, roomID, applied, head); err != nil {
			return 0, false, err
		}
		exists = true
	}
	s.fresh.mark(roomID, s.cfg.freshFor)
	return head, exists, nil
}

// replayEvents applies the room's events after seq `after` up to `upTo`.
func (s *Store) replayEvents(ctx context.Context, roomID string, after, upTo int64) error {
	cur, err := s.events.Find(ctx, bson.D{{Key: "room_id", Value: roomID},
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: after}, {Key: "$lte", Value: upTo}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	want := after + 1
	for cur.Next(ctx) {
		var d eventDoc
		if err := cur.Decode(&d); err != nil {
			return err
		}
		if d.Seq != want {
			return fmt.Errorf("mongostore: room %s: event %d is missing from the log", roomID, want)
		}
		ev, err := d.event()
		if err != nil {
			return err
		}
		fx, err := room.Project(ev)
		if err != nil {
			return fmt.Errorf("mongostore: room %s, seq %d: %w", roomID, ev.Seq, err)
		}
		if err := s.apply(ctx, ev, fx); err != nil {
			return err
		}
		s.log.Info("mongostore: repaired read models", "room", roomID, "seq", ev.Seq, "type", ev.Type)
		want++
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if want <= upTo {
		return fmt.Errorf("mongostore: room %s: event %d is missing from the log", roomID, want)
	}
	return nil
}

// Repair brings the read models of every room up to its events. Open runs
// it (see WithRepairOnOpen); it is safe to run at any time, from any
// number of processes.
func (s *Store) Repair(ctx context.Context) error {
	if err := s.begin(); err != nil {
		return err
	}
	// The head of every room's log, from the (room_id, seq) index.
	cur, err := s.events.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$sort", Value: bson.D{{Key: "room_id", Value: 1}, {Key: "seq", Value: -1}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$room_id"}, {Key: "head", Value: bson.D{{Key: "$first", Value: "$seq"}}}}}},
	})
	if err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: repair: %w", err))
	}
	defer cur.Close(ctx)
	var batch []roomHead
	for cur.Next(ctx) {
		var h roomHead
		if err := cur.Decode(&h); err != nil {
			return s.fail(ctx, err)
		}
		batch = append(batch, h)
		if len(batch) == 500 {
			if err := s.repairRooms(ctx, batch); err != nil {
				return s.fail(ctx, fmt.Errorf("mongostore: repair: %w", err))
			}
			batch = batch[:0]
		}
	}
	if err := cur.Err(); err != nil {
		return s.fail(ctx, fmt.Errorf("mongostore: repair: %w", err))
	}
	if len(batch) > 0 {
		if err := s.repairRooms(ctx, batch); err != nil {
			return s.fail(ctx, fmt.Errorf("mongostore: repair: %w", err))
		}
	}
	return nil
}

// roomHead is the last seq of a room's log.
type roomHead struct {
	Room string `bson:"_id"`
	Head int64  `bson:"head"`
}

// repairRooms catches up those of the rooms whose read models lag behind
// their heads, each under its lock.
func (s *Store) repairRooms(ctx context.Context, heads []roomHead) error {
	ids := make([]string, len(heads))
	for i, h := range heads {
		ids[i] = h.Room
	}
	metas, err := findAll[struct {
		ID         string `bson:"_id"`
		AppliedSeq int64  `bson:"applied_seq"`
	}](ctx, s.rooms, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "applied_seq", Value: 1}}))
	if err != nil {
		return err
	}
	applied := make(map[string]int64, len(metas))
	for _, m := range metas {
		applied[m.ID] = m.AppliedSeq
	}
	for _, h := range heads {
		if applied[h.Room] >= h.Head {
			continue
		}
		unlock, err := s.locks.lock(ctx, h.Room)
		if err != nil {
			return err
		}
		_, _, err = s.catchUp(ctx, h.Room)
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Read-model documents. Each carries _seq, the seq of the event that last
// wrote it; a write happens only over an older version, so that replaying
// an event, or applying two events out of order, cannot go back in time.
// Removed members and deleted tasks stay as tombstones (_del) holding the
// seq of their removal, for the same reason.
type (
	memberDoc struct {
		RoomID      string `bson:"room_id"`
		room.Member `bson:",inline"`
		Seq         int64 `bson:"_seq"`
	}
	taskDoc struct {
		task.Task `bson:",inline"`
		Seq       int64 `bson:"_seq"`
	}
	messageDoc struct {
		room.Message `bson:",inline"`
		Seq          int64 `bson:"_seq"`
	}
	attachmentDoc struct {
		room.Attachment `bson:",inline"`
		Seq             int64 `bson:"_seq"`
	}
	inviteDoc struct {
		Key         string `bson:"_id"`
		room.Invite `bson:",inline"`
		Seq         int64 `bson:"_seq"`
	}
	tombstone struct {
		RoomID  string `bson:"room_id"`
		UserID  string `bson:"user_id,omitempty"`
		ID      string `bson:"id,omitempty"`
		Seq     int64  `bson:"_seq"`
		Deleted bool   `bson:"_del"`
	}
)

// notDeleted leaves tombstones out of a query.
var notDeleted = bson.E{Key: "_del", Value: bson.D{{Key: "$ne", Value: true}}}

// derived are the room fields kept from every event rather than from the
// room's settings.
var derived = []string{"head", "last_activity_at", "last_customer_activity_at"}

// apply writes the effects of ev to the read models and then moves the
// room's high-water mark to ev.Seq. Every write is idempotent by seq. The
// caller has made sure that every event before ev is applied.
func (s *Store) apply(ctx context.Context, ev room.Event, fx room.Effects) error {
	n := ev.Seq
	if fx.Room != nil {
		if err := s.putSettings(ctx, ev, fx.Room); err != nil {
			return err
		}
	}
	key := func(field, id string) bson.D {
		return bson.D{{Key: "room_id", Value: ev.RoomID}, {Key: field, Value: id}}
	}
	// An event that creates a document inserts it: one round trip on an
	// equality index; only when it is there already (a replay, a repair)
	// does the conditional replace decide.
	created := func(t string) func(context.Context, *mongo.Collection, bson.D, int64, any) error {
		if ev.Type == t || ev.Type == room.RoomCreated {
			return s.createOrReplace
		}
		return s.condReplace
	}
	for _, m := range fx.Members {
		if err := created(room.MemberAdded)(ctx, s.members, key("user_id", m.UserID), n, memberDoc{RoomID: ev.RoomID, Member: m, Seq: n}); err != nil {
			return err
		}
	}
	for _, u := range fx.RemovedMembers {
		if err := s.condReplace(ctx, s.members, key("user_id", u), n, tombstone{RoomID: ev.RoomID, UserID: u, Seq: n, Deleted: true}); err != nil {
			return err
		}
	}
	for _, t := range fx.Tasks {
		t.RoomID = ev.RoomID
		if err := created(room.TaskCreated)(ctx, s.tasks, key("id", t.ID), n, taskDoc{Task: t, Seq: n}); err != nil {
			return err
		}
	}
	for _, id := range fx.DeletedTasks {
		if err := s.condReplace(ctx, s.tasks, key("id", id), n, tombstone{RoomID: ev.RoomID, ID: id, Seq: n, Deleted: true}); err != nil {
			return err
		}
	}
	for _, m := range fx.Messages {
		m.RoomID = ev.RoomID
		if err := created(room.MessagePosted)(ctx, s.messages, key("id", m.ID), n, messageDoc{Message: m, Seq: n}); err != nil {
			return err
		}
	}
	for _, a := range fx.Attachments {
		a.RoomID = ev.RoomID
		if err := created(room.AttachmentAdded)(ctx, s.attachments, key("id", a.ID), n, attachmentDoc{Attachment: a, Seq: n}); err != nil {
			return err
		}
	}
	for _, inv := range fx.Invites {
		inv.RoomID = ev.RoomID
		if err := created(room.InviteCreated)(ctx, s.invites, bson.D{{Key: "_id", Value: inv.ID}}, n, inviteDoc{Key: inv.ID, Invite: inv, Seq: n}); err != nil {
			return err
		}
	}
	for _, it := range fx.Inbox {
		// One item per event and user: an item that is there already
		// keeps its read mark.
		if _, err := s.inbox.InsertOne(ctx, it); err != nil && !duplicate(err) {
			return err
		}
	}
	if err := s.putBrief(ctx, ev, fx); err != nil {
		return err
	}
	return s.advance(ctx, ev)
}

// putSettings writes the room's settings as the event ev sets them,
// creating the room's document if needed, unless a later event's are
// there.
func (s *Store) putSettings(ctx context.Context, ev room.Event, r *room.Room) error {
	set, err := marshalD(r, derived...)
	if err != nil {
		return err
	}
	set = append(set, bson.E{Key: "settings_seq", Value: ev.Seq})
	update := bson.D{{Key: "$set", Value: set}, {Key: "$setOnInsert", Value: bson.D{
		{Key: "applied_seq", Value: int64(0)}, {Key: "customer_seq", Value: int64(0)},
		{Key: "last_activity_at", Value: ev.At}}}}
	return s.condWrite(ctx, s.rooms, bson.D{{Key: "_id", Value: ev.RoomID}}, "settings_seq", ev.Seq, func(filter bson.D) error {
		_, err := s.rooms.UpdateOne(ctx, filter, update, options.Update().SetUpsert(true))
		return err
	})
}

// advance moves the room's high-water mark and activity times to ev.
func (s *Store) advance(ctx context.Context, ev room.Event) error {
	res, err := s.rooms.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: ev.RoomID}, {Key: "applied_seq", Value: bson.D{{Key: "$lt", Value: ev.Seq}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "applied_seq", Value: ev.Seq}, {Key: "last_activity_at", Value: ev.At}}}})
	if err != nil {
		return err
	}
	if ev.Actor.Kind == dealroom.Customer {
		_, err := s.rooms.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: ev.RoomID}, {Key: "customer_seq", Value: bson.D{{Key: "$lt", Value: ev.Seq}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "customer_seq", Value: ev.Seq}, {Key: "last_customer_activity_at", Value: ev.At}}}})
		if err != nil {
			return err
		}
	}
	if res.MatchedCount == 0 {
		n, err := s.rooms.CountDocuments(ctx, bson.D{{Key: "_id", Value: ev.RoomID}})
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("mongostore: event %d (%s) of unknown room %s", ev.Seq, ev.Type, ev.RoomID)
		}
	}
	return nil
}

// condReplace replaces the document under key with doc unless it holds a
// version at least as new as seq.
func (s *Store) condReplace(ctx context.Context, coll *mongo.Collection, key bson.D, seq int64, doc any) error {
	return s.condWrite(ctx, coll, key, "_seq", seq, func(filter bson.D) error {
		_, err := coll.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true))
		return err
	})
}

// createOrReplace inserts doc, which an event creates; when the document
// is there already (the event is applied again, or its key was used by an
// older document that was removed), condReplace decides. The insert is an
// equality lookup on the unique index, where the conditional replace has
// a range in its filter, which some servers that speak MongoDB's protocol
// (mongo-java-server) answer by scanning the collection.
func (s *Store) createOrReplace(ctx context.Context, coll *mongo.Collection, key bson.D, seq int64, doc any) error {
	_, err := coll.InsertOne(ctx, doc)
	if err == nil || !duplicate(err) {
		return err
	}
	return s.condReplace(ctx, coll, key, seq, doc)
}

// condWrite runs an upserting write filtered on key and seqField < seq. A
// duplicate key error means that the document exists with a version at
// least as new (nothing to do), or that another writer inserted it between
// the write's match and its insert (try again).
func (s *Store) condWrite(ctx context.Context, coll *mongo.Collection, key bson.D, seqField string, seq int64, write func(filter bson.D) error) error {
	with := func(op string) bson.D {
		f := make(bson.D, len(key), len(key)+1)
		copy(f, key)
		return append(f, bson.E{Key: seqField, Value: bson.D{{Key: op, Value: seq}}})
	}
	older, newer := with("$lt"), with("$gte")
	for range 5 {
		err := write(older)
		if err == nil || !duplicate(err) {
			return err
		}
		n, err := coll.CountDocuments(ctx, newer)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("mongostore: cannot write %s %v at seq %d", coll.Name(), key, seq)
}
