package mongostore

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// findOne decodes the first document matching filter, nil when there is
// none.
func findOne[T any](ctx context.Context, coll *mongo.Collection, filter any, opts ...*options.FindOneOptions) (*T, error) {
	var v T
	err := coll.FindOne(ctx, filter, opts...).Decode(&v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// findAll decodes every document matching filter (nil when none).
func findAll[T any](ctx context.Context, coll *mongo.Collection, filter any, opts ...*options.FindOptions) ([]T, error) {
	cur, err := coll.Find(ctx, filter, opts...)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var out []T
	for cur.Next(ctx) {
		var v T
		if err := cur.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, cur.Err()
}

func sortBy(keys ...string) bson.D {
	d := make(bson.D, 0, len(keys))
	for _, k := range keys {
		dir := 1
		if k[0] == '-' {
			k, dir = k[1:], -1
		}
		d = append(d, bson.E{Key: k, Value: dir})
	}
	return d
}

func inRoom(roomID string, more ...bson.E) bson.D {
	return append(bson.D{{Key: "room_id", Value: roomID}}, more...)
}

// roomDoc is a room as stored: its settings, its activity times, and the
// high-water mark of its read models, which is the room's head.
type roomDoc struct {
	room.Room  `bson:",inline"`
	AppliedSeq int64 `bson:"applied_seq"`
}

func (d *roomDoc) room() room.Room {
	r := d.Room
	r.Head = d.AppliedSeq
	return r
}

// The store's queries, shared by the view and the Store's reads.

func (s *Store) getRoom(ctx context.Context, id string) (*room.Room, error) {
	d, err := findOne[roomDoc](ctx, s.rooms, bson.D{{Key: "_id", Value: id}})
	if err != nil || d == nil {
		return nil, err
	}
	r := d.room()
	return &r, nil
}

func (s *Store) getMember(ctx context.Context, roomID, user string) (*room.Member, error) {
	return findOne[room.Member](ctx, s.members, inRoom(roomID, bson.E{Key: "user_id", Value: user}, notDeleted))
}

func (s *Store) getMembers(ctx context.Context, roomID string) ([]room.Member, error) {
	return findAll[room.Member](ctx, s.members, inRoom(roomID, notDeleted),
		options.Find().SetSort(sortBy("added_at", "user_id")))
}

func (s *Store) getTask(ctx context.Context, roomID, id string) (*task.Task, error) {
	return findOne[task.Task](ctx, s.tasks, inRoom(roomID, bson.E{Key: "id", Value: id}, notDeleted))
}

func (s *Store) getMessage(ctx context.Context, roomID, id string) (*room.Message, error) {
	return findOne[room.Message](ctx, s.messages, inRoom(roomID, bson.E{Key: "id", Value: id}))
}

func (s *Store) getAttachment(ctx context.Context, roomID, id string) (*room.Attachment, error) {
	return findOne[room.Attachment](ctx, s.attachments, inRoom(roomID, bson.E{Key: "id", Value: id}))
}

func (s *Store) getInvite(ctx context.Context, id string) (*room.Invite, error) {
	return findOne[room.Invite](ctx, s.invites, bson.D{{Key: "_id", Value: id}})
}

// view reads one room's read models for a decision. The first storage
// error sticks, so that Execute fails even if the decision ignores it.
type view struct {
	s    *Store
	ctx  context.Context
	room string
	// hot holds what this instance knows of the room from its last write
	// (see hotRooms); reads of the room and its members are answered from
	// it and recorded in it.
	hot *hotRoom
	room.FirstError
}

var _ room.View = (*view)(nil)

func (v *view) Room() (*room.Room, error) {
	if v.hot != nil && v.hot.room != nil {
		return v.hot.room.Clone(), nil
	}
	r, err := v.s.getRoom(v.ctx, v.room)
	if err == nil && r != nil && v.hot != nil {
		v.hot.room = r.Clone()
	}
	return r, v.Note(err)
}

func (v *view) Member(user string) (*room.Member, error) {
	if v.hot == nil {
		m, err := v.s.getMember(v.ctx, v.room, user)
		return m, v.Note(err)
	}
	ms, err := v.Members()
	if err != nil {
		return nil, err
	}
	return room.FindMember(ms, user), nil
}

func (v *view) Members() ([]room.Member, error) {
	if v.hot != nil && v.hot.hasMembers {
		return slices.Clone(v.hot.members), nil
	}
	ms, err := v.s.getMembers(v.ctx, v.room)
	if err == nil && v.hot != nil {
		v.hot.members, v.hot.hasMembers = slices.Clone(ms), true
	}
	return ms, v.Note(err)
}

func (v *view) Task(id string) (*task.Task, error) {
	t, err := v.s.getTask(v.ctx, v.room, id)
	return t, v.Note(err)
}

func (v *view) TaskStats() (room.PlanStats, error) {
	var out room.PlanStats
	cur, err := v.s.tasks.Aggregate(v.ctx, mongo.Pipeline{
		{{Key: "$match", Value: inRoom(v.room, notDeleted)}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$visibility"},
			{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
			{Key: "max", Value: bson.D{{Key: "$max", Value: "$position"}}}}}},
	})
	if v.Note(err) != nil {
		return out, err
	}
	defer cur.Close(v.ctx)
	for cur.Next(v.ctx) {
		var st struct {
			Vis dealroom.Visibility `bson:"_id"`
			N   int                 `bson:"n"`
			Max float64             `bson:"max"`
		}
		if err := cur.Decode(&st); v.Note(err) != nil {
			return out, err
		}
		out.Set(st.Vis, room.TaskTally{Count: st.N, Last: st.Max})
	}
	if v.Note(cur.Err()) != nil {
		return out, cur.Err()
	}
	return out, nil
}

func (v *view) Message(id string) (*room.Message, error) {
	m, err := v.s.getMessage(v.ctx, v.room, id)
	return m, v.Note(err)
}

func (v *view) Attachment(id string) (*room.Attachment, error) {
	a, err := v.s.getAttachment(v.ctx, v.room, id)
	return a, v.Note(err)
}

func (v *view) Invite(id string) (*room.Invite, error) {
	i, err := v.s.getInvite(v.ctx, id)
	return i, v.Note(err)
}

// readRoom prepares a read of one room's read models: it refuses work on
// a closed store and repairs the room if they lag behind its events.
func (s *Store) readRoom(ctx context.Context, roomID string) error {
	if err := s.begin(); err != nil {
		return err
	}
	if s.fresh.recent(roomID, s.cfg.freshFor) {
		return nil
	}
	_, _, err := s.catchUp(ctx, roomID)
	return s.fail(ctx, err)
}

// readIn returns what fn reads of a room's read models, after readRoom,
// with backend failures turned into EUNAVAILABLE.
func readIn[T any](ctx context.Context, s *Store, roomID string, fn func() (T, error)) (T, error) {
	if err := s.readRoom(ctx, roomID); err != nil {
		var zero T
		return zero, err
	}
	v, err := fn()
	return v, s.fail(ctx, err)
}

// Events implements room.Store. They come from the log itself, read with
// read concern "majority": what devices, timelines and consumers get of a
// room cannot be rolled back by a failover (an event the primary holds
// alone belongs to a write not yet reported done; a device that got it and
// then the event that took its seq after a rollback would keep the wrong
// one). Every event reported done is majority-committed before it is, so
// it is there. Decisions read the primary's latest instead (see catchUp).
func (s *Store) Events(ctx context.Context, roomID string, after int64, limit int, sharedOnly bool) ([]room.Event, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	var seq any = bson.D{{Key: "$gt", Value: after}}
	if limit == 1 && !sharedOnly {
		// A room's seqs have no holes: the event after `after` is
		// after+1, an exact key of the {room_id, seq} index (a range is
		// a scan on servers that use a unique index only for exact keys,
		// such as mongo-java-server). The hub's head checks read many
		// rooms' next events at once instead (Ahead).
		seq = after + 1
	}
	if sharedOnly {
		// The scan's budget (room.SharedScan): a range of the
		// {room_id, seq} index, however few of it are shared.
		seq = bson.D{{Key: "$gt", Value: after}, {Key: "$lte", Value: room.SharedScanEnd(after, limit)}}
	}
	q := inRoom(roomID, bson.E{Key: "seq", Value: seq})
	if sharedOnly {
		q = append(q, bson.E{Key: "visibility", Value: dealroom.Shared})
	}
	docs, err := findAll[eventDoc](ctx, s.committedEvents, q, options.Find().SetSort(sortBy("seq")).SetLimit(int64(limit)))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	var out []room.Event
	for i := range docs {
		ev, err := docs[i].event()
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// Ahead implements hub.HeadsStore in one find: an $or of exact keys of the
// {room_id, seq} index, the seq after each room's head, projected to the
// room. A room's seqs have no holes (an event is inserted at seq n+1 only
// once n is in the log, and a rollback takes a room's later events with
// the earlier ones), so the room is ahead exactly when that event is
// there. Read with read concern "majority", as Events: a room reported
// ahead can be read up to the event found.
func (s *Store) Ahead(ctx context.Context, heads map[string]int64) ([]string, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	if len(heads) == 0 {
		return nil, nil
	}
	or := make(bson.A, 0, len(heads))
	for r, head := range heads {
		or = append(or, inRoom(r, bson.E{Key: "seq", Value: max(head, 0) + 1}))
	}
	docs, err := findAll[struct {
		RoomID string `bson:"room_id"`
	}](ctx, s.committedEvents, bson.D{{Key: "$or", Value: or}},
		options.Find().SetProjection(bson.D{{Key: "room_id", Value: 1}, {Key: "_id", Value: 0}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	ahead := make([]string, len(docs))
	for i, d := range docs {
		ahead[i] = d.RoomID
	}
	return ahead, nil
}

// Room implements room.Store.
func (s *Store) Room(ctx context.Context, id string) (*room.Room, error) {
	if err := s.readRoom(ctx, id); err != nil {
		return nil, err
	}
	r, err := s.getRoom(ctx, id)
	if err == nil && r == nil {
		err = dealroom.NotFound("room", id)
	}
	return r, s.fail(ctx, err)
}

// Rooms implements room.Store. It reads the rooms' documents as they are,
// without checking each room for a pending repair.
func (s *Store) Rooms(ctx context.Context, f room.RoomFilter) ([]room.Room, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	var q bson.D
	var memberOf []string
	if f.Member != "" {
		ms, err := findAll[struct {
			RoomID string `bson:"room_id"`
		}](ctx, s.members, bson.D{{Key: "user_id", Value: f.Member}, notDeleted},
			options.Find().SetProjection(bson.D{{Key: "room_id", Value: 1}}))
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		if len(ms) == 0 {
			return nil, nil
		}
		for _, m := range ms {
			memberOf = append(memberOf, m.RoomID)
		}
		q = append(q, bson.E{Key: "_id", Value: bson.D{{Key: "$in", Value: memberOf}}})
	}
	if f.Stage != "" {
		q = append(q, bson.E{Key: "stage", Value: f.Stage})
	}
	if f.Owner != "" {
		q = append(q, bson.E{Key: "owner_id", Value: f.Owner})
	}
	if f.CloseWindow != "" {
		q = append(q, bson.E{Key: "close_window", Value: f.CloseWindow})
	}
	if f.Before != "" {
		// Continue after the cursor's room if it is in the listing; an
		// unknown cursor starts from the top.
		b, err := s.getRoom(ctx, f.Before)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		if b != nil && (f.Member == "" || slices.Contains(memberOf, b.ID)) && f.Match(*b) {
			q = append(q, bson.E{Key: "$or", Value: bson.A{
				bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: b.CreatedAt}}}},
				bson.D{{Key: "created_at", Value: b.CreatedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: b.ID}}}},
			}})
		}
	}
	if q == nil {
		q = bson.D{}
	}
	opts := options.Find().SetSort(sortBy("-created_at", "-_id"))
	if f.Limit > 0 {
		opts.SetLimit(int64(f.Limit))
	}
	docs, err := findAll[roomDoc](ctx, s.rooms, q, opts)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	var out []room.Room
	for i := range docs {
		out = append(out, docs[i].room())
	}
	return out, nil
}

// Member implements room.Store.
func (s *Store) Member(ctx context.Context, roomID, user string) (*room.Member, error) {
	return readIn(ctx, s, roomID, func() (*room.Member, error) { return s.getMember(ctx, roomID, user) })
}

// Members implements room.Store.
func (s *Store) Members(ctx context.Context, roomID string) ([]room.Member, error) {
	return readIn(ctx, s, roomID, func() ([]room.Member, error) { return s.getMembers(ctx, roomID) })
}

// Memberships implements room.Store.
func (s *Store) Memberships(ctx context.Context, user string, rooms []string) (map[string]room.Member, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	out := make(map[string]room.Member, len(rooms))
	if len(rooms) == 0 {
		return out, nil
	}
	ms, err := findAll[struct {
		RoomID      string `bson:"room_id"`
		room.Member `bson:",inline"`
	}](ctx, s.members, bson.D{{Key: "user_id", Value: user},
		{Key: "room_id", Value: bson.D{{Key: "$in", Value: rooms}}}, notDeleted})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	for _, m := range ms {
		out[m.RoomID] = m.Member
	}
	return out, nil
}

// Tasks implements room.Store.
func (s *Store) Tasks(ctx context.Context, roomID string) ([]task.Task, error) {
	return readIn(ctx, s, roomID, func() ([]task.Task, error) {
		return findAll[task.Task](ctx, s.tasks, inRoom(roomID, notDeleted), options.Find().SetSort(sortBy("position", "id")))
	})
}

// Task implements room.Store.
func (s *Store) Task(ctx context.Context, roomID, id string) (*task.Task, error) {
	return readIn(ctx, s, roomID, func() (*task.Task, error) { return s.getTask(ctx, roomID, id) })
}

// AssignedTasks implements room.Store, ordered by room and task id.
func (s *Store) AssignedTasks(ctx context.Context, user string) ([]task.Task, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	ts, err := findAll[task.Task](ctx, s.tasks, bson.D{{Key: "assignees", Value: user}, notDeleted},
		options.Find().SetSort(sortBy("room_id", "id")))
	return ts, s.fail(ctx, err)
}

// Messages implements room.Store.
func (s *Store) Messages(ctx context.Context, f room.MessageFilter) ([]room.Message, error) {
	if err := s.readRoom(ctx, f.Room); err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		return nil, nil
	}
	q := inRoom(f.Room)
	roots := f.ParentID == ""
	if roots {
		q = append(q, bson.E{Key: "parent_id", Value: bson.D{{Key: "$in", Value: bson.A{nil, ""}}}})
		if f.TaskID != "" {
			q = append(q, bson.E{Key: "task_id", Value: f.TaskID})
		}
	} else {
		q = append(q, bson.E{Key: "parent_id", Value: f.ParentID})
	}
	if f.SharedOnly {
		q = append(q, bson.E{Key: "visibility", Value: dealroom.Shared})
	}
	if f.After != "" {
		q = append(q, bson.E{Key: "id", Value: bson.D{{Key: "$gt", Value: f.After}}})
	}
	out, err := findAll[room.Message](ctx, s.messages, q, options.Find().SetSort(sortBy("id")).SetLimit(int64(f.Limit)))
	if err != nil || !roots || len(out) == 0 {
		return out, s.fail(ctx, err)
	}
	// Reply counts of the roots, in one query. Replies share their root's
	// visibility, so whoever sees the root sees all of them.
	ids := make([]string, len(out))
	for i, m := range out {
		ids[i] = m.ID
	}
	cur, err := s.messages.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: inRoom(f.Room, bson.E{Key: "parent_id", Value: bson.D{{Key: "$in", Value: ids}}})}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$parent_id"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	defer cur.Close(ctx)
	counts := map[string]int{}
	for cur.Next(ctx) {
		var c struct {
			Parent string `bson:"_id"`
			N      int    `bson:"n"`
		}
		if err := cur.Decode(&c); err != nil {
			return nil, s.fail(ctx, err)
		}
		counts[c.Parent] = c.N
	}
	if err := cur.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	for i := range out {
		out[i].ReplyCount = counts[out[i].ID]
	}
	return out, nil
}

// Message implements room.Store.
func (s *Store) Message(ctx context.Context, roomID, id string) (*room.Message, error) {
	return readIn(ctx, s, roomID, func() (*room.Message, error) { return s.getMessage(ctx, roomID, id) })
}

// DeletedMessages implements room.Store.
func (s *Store) DeletedMessages(ctx context.Context, roomID string, ids []string) ([]room.Message, error) {
	if err := s.readRoom(ctx, roomID); err != nil {
		return nil, err
	}
	// A room's deleted messages are few: all of them, through their index,
	// cost one cheap query, where an $in of a page's ids costs the server
	// a test of every id against every message of the room (MongoDB itself
	// would seek each one; servers that speak its protocol may not).
	all, err := findAll[room.Message](ctx, s.messages, inRoom(roomID, bson.E{Key: "deleted", Value: true}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := all[:0]
	for _, m := range all {
		if want[m.ID] {
			out = append(out, m)
		}
	}
	return out, nil
}

// Attachment implements room.Store.
func (s *Store) Attachment(ctx context.Context, roomID, id string) (*room.Attachment, error) {
	return readIn(ctx, s, roomID, func() (*room.Attachment, error) { return s.getAttachment(ctx, roomID, id) })
}

// Attachments implements room.Store.
func (s *Store) Attachments(ctx context.Context, roomID, after string, limit int, sharedOnly bool) ([]room.Attachment, error) {
	if err := s.readRoom(ctx, roomID); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	q := inRoom(roomID)
	if after != "" {
		q = append(q, bson.E{Key: "id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	if sharedOnly {
		q = append(q, bson.E{Key: "visibility", Value: dealroom.Shared})
	}
	as, err := findAll[room.Attachment](ctx, s.attachments, q, options.Find().SetSort(sortBy("id")).SetLimit(int64(limit)))
	return as, s.fail(ctx, err)
}

// Invite implements room.Store.
func (s *Store) Invite(ctx context.Context, id string) (*room.Invite, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	inv, err := s.getInvite(ctx, id)
	if err != nil || inv == nil || s.fresh.recent(inv.RoomID, s.cfg.freshFor) {
		return inv, s.fail(ctx, err)
	}
	// Repair the invite's room if needed, and read again.
	if err := s.readRoom(ctx, inv.RoomID); err != nil {
		return nil, err
	}
	inv, err = s.getInvite(ctx, id)
	return inv, s.fail(ctx, err)
}

// Invites implements room.Store.
func (s *Store) Invites(ctx context.Context, roomID string, after *room.Invite, limit int) ([]room.Invite, error) {
	if err := s.readRoom(ctx, roomID); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	q := inRoom(roomID)
	if after != nil {
		// After it, newest first: older, or as old with a greater id.
		q = append(q, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: after.CreatedAt}}}},
			bson.D{{Key: "created_at", Value: after.CreatedAt}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: after.ID}}}},
		}})
	}
	invs, err := findAll[room.Invite](ctx, s.invites, q, options.Find().SetSort(sortBy("-created_at", "_id")).SetLimit(int64(limit)))
	return invs, s.fail(ctx, err)
}

// Inbox implements room.Store.
func (s *Store) Inbox(ctx context.Context, user, before string, limit int) ([]room.InboxItem, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	q := bson.D{{Key: "user_id", Value: user}}
	if before != "" {
		q = append(q, bson.E{Key: "id", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	items, err := findAll[room.InboxItem](ctx, s.inbox, q, options.Find().SetSort(sortBy("-id")).SetLimit(int64(limit)))
	return items, s.fail(ctx, err)
}

// MarkRead implements room.Store.
func (s *Store) MarkRead(ctx context.Context, user, item string, at time.Time) error {
	if err := s.begin(); err != nil {
		return err
	}
	key := bson.D{{Key: "user_id", Value: user}, {Key: "id", Value: item}}
	res, err := s.inbox.UpdateOne(ctx, append(key, bson.E{Key: "read_at", Value: nil}),
		bson.D{{Key: "$set", Value: bson.D{{Key: "read_at", Value: at}}}})
	if err != nil {
		return s.fail(ctx, err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	n, err := s.inbox.CountDocuments(ctx, key)
	if err != nil {
		return s.fail(ctx, err)
	}
	if n == 0 {
		return dealroom.NotFound("inbox item", item)
	}
	return nil
}
