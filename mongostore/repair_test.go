package mongostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"dealroom"
	"dealroom/mongostore"
	"dealroom/room"
	"dealroom/room/roomtest"
	"dealroom/task"
)

var errCrash = errors.New("simulated crash after the event insert")

// seedRoom makes a room owned by Alice with Bob and Carol as writers.
func seedRoom(t *testing.T, ctx context.Context, svc *room.Service) string {
	t.Helper()
	r, err := svc.CreateRoom(ctx, roomtest.Alice, room.Draft{Name: "Acme renewal", Company: "Acme"}, "")
	require.NoError(t, err)
	for _, a := range []dealroom.Actor{roomtest.Bob, roomtest.Carol} {
		_, err := svc.AddMember(ctx, roomtest.Alice, r.ID, room.MemberDraft{UserID: a.ID, Name: a.Name, Kind: a.Kind}, "")
		require.NoError(t, err)
	}
	return r.ID
}

// appliedSeq reads a room's high-water mark straight from the database.
func appliedSeq(t *testing.T, s *mongostore.Store, roomID string) int64 {
	t.Helper()
	var d struct {
		Applied int64 `bson:"applied_seq"`
	}
	require.NoError(t, s.Database().Collection("rooms").FindOne(ctxT(t), bson.D{{Key: "_id", Value: roomID}}).Decode(&d))
	return d.Applied
}

func count(t *testing.T, s *mongostore.Store, coll string, filter bson.D) int64 {
	t.Helper()
	n, err := s.Database().Collection(coll).CountDocuments(ctxT(t), filter)
	require.NoError(t, err)
	return n
}

// TestCrashAfterInsertIsRepaired: a writer that dies between appending an
// event and updating the read models leaves a committed event behind; the
// read models catch up lazily on the next read, on the next write, on a
// retry with the same key, and on Open.
func TestCrashAfterInsertIsRepaired(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	s1 := open(t, uri, db)
	svc1 := &room.Service{Store: s1}
	r := seedRoom(t, ctx, svc1)

	crash := func(on bool) {
		if on {
			mongostore.SetAfterInsert(s1, func(room.Event) error { return errCrash })
		} else {
			mongostore.SetAfterInsert(s1, nil)
		}
	}

	t.Run("lazily on read", func(t *testing.T) {
		crash(true)
		_, err := svc1.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Lost ack", Assignees: []string{"carol"}}, "")
		crash(false)
		require.ErrorIs(t, err, errCrash)
		evs, err := s1.Events(ctx, r, 0, 100, false)
		require.NoError(t, err)
		require.Len(t, evs, 4, "the event is in the log")
		assert.Equal(t, room.TaskCreated, evs[3].Type)
		assert.EqualValues(t, 3, appliedSeq(t, s1, r), "the read models lag behind")
		assert.EqualValues(t, 0, count(t, s1, "tasks", bson.D{{Key: "room_id", Value: r}}))

		// Another instance, which has not looked at the room yet.
		s2 := open(t, uri, db, mongostore.WithRepairOnOpen(false))
		ts, err := s2.Tasks(ctx, r)
		require.NoError(t, err)
		require.Len(t, ts, 1, "the read repairs the room first")
		assert.Equal(t, "Lost ack", ts[0].Title)
		assert.EqualValues(t, 4, appliedSeq(t, s1, r))
		rm, err := s2.Room(ctx, r)
		require.NoError(t, err)
		assert.EqualValues(t, 4, rm.Head)
		inbox, err := s2.Inbox(ctx, "carol", "", 10)
		require.NoError(t, err)
		assert.Equal(t, room.InboxAssignment, inbox[0].Kind, "the inbox is repaired too")
	})

	t.Run("on the next write", func(t *testing.T) {
		crash(true)
		res, err := svc1.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Draft MSA"}, "")
		crash(false)
		require.ErrorIs(t, err, errCrash)
		_ = res
		evs, err := s1.Events(ctx, r, 4, 100, false)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		var created task.Task
		require.NoError(t, json.Unmarshal(evs[0].Data, &created))

		// The same instance (whose reads still trust the room for a
		// moment) changes the task it never saw applied: the decision
		// must see it.
		_, err = svc1.UpdateTask(ctx, roomtest.Alice, r, created.ID, task.Patch{Title: dealroom.Some("Send MSA")}, "")
		require.NoError(t, err)
		got, err := s1.Task(ctx, r, created.ID)
		require.NoError(t, err)
		require.NotNil(t, got)
		assert.Equal(t, "Send MSA", got.Title)
		all, err := s1.Events(ctx, r, 0, 100, false)
		require.NoError(t, err)
		assert.Equal(t, []int64{1, 2, 3, 4, 5, 6}, seqsOf(all))
		assert.EqualValues(t, 6, appliedSeq(t, s1, r))
	})

	t.Run("on a retry with the same key", func(t *testing.T) {
		crash(true)
		_, err := svc1.PostMessage(ctx, roomtest.Carol, r, room.MessageDraft{Body: "@Alice can we talk?"}, "retry-me")
		crash(false)
		require.ErrorIs(t, err, errCrash)
		m, err := svc1.PostMessage(ctx, roomtest.Carol, r, room.MessageDraft{Body: "@Alice can we talk?"}, "retry-me")
		require.NoError(t, err, "the retry gets the first result")
		all, err := s1.Events(ctx, r, 0, 100, false)
		require.NoError(t, err)
		assert.Len(t, all, 7, "and writes nothing new")
		got, err := s1.Message(ctx, r, m.ID)
		require.NoError(t, err)
		require.NotNil(t, got)
		inbox, err := s1.Inbox(ctx, "alice", "", 10)
		require.NoError(t, err)
		require.Len(t, inbox, 1)
		assert.Equal(t, m.ID, inbox[0].MessageID)
		rm, err := s1.Room(ctx, r)
		require.NoError(t, err)
		require.NotNil(t, rm.LastCustomerActivityAt, "activity times are repaired too")
		assert.Equal(t, all[6].At, *rm.LastCustomerActivityAt)
	})

	t.Run("on Open", func(t *testing.T) {
		crash(true)
		inv, err := svc1.CreateInvite(ctx, roomtest.Alice, r, room.InviteDraft{Email: "erin@customer.example"}, "")
		crash(false)
		require.ErrorIs(t, err, errCrash)
		_ = inv
		assert.EqualValues(t, 7, appliedSeq(t, s1, r))
		open(t, uri, db) // repairs every room before it returns
		assert.EqualValues(t, 8, appliedSeq(t, s1, r))
		assert.EqualValues(t, 1, count(t, s1, "invites", bson.D{{Key: "room_id", Value: r}}))
	})
}

func seqsOf(evs []room.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// TestRepairOfEventsInsertedDirectly: the event log alone is the truth.
// Events written into the collection by hand (as another instance that
// died would leave them, in the documented format) become read models on
// Open, including a room that had no read models at all.
func TestRepairOfEventsInsertedDirectly(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	s := open(t, uri, db)
	svc := &room.Service{Store: s}
	r := seedRoom(t, ctx, svc)
	rm, err := s.Room(ctx, r)
	require.NoError(t, err)

	at := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	renamed := *rm
	renamed.Name = "Acme renewal 2027"
	renamed.Head, renamed.LastActivityAt, renamed.LastCustomerActivityAt = 0, time.Time{}, nil
	newRoom := room.RoomCreatedData{
		Room: room.Room{ID: "r_orphan", Name: "Globex", Company: "Globex", Stage: room.Discovery,
			Pipeline: room.DefaultPipeline, CloseWindow: room.Unknown, OwnerID: "bob", CreatedBy: "bob", CreatedAt: at, UpdatedAt: at},
		Members: []room.Member{{UserID: "bob", Name: "Bob", Kind: dealroom.Staff, Access: room.Write, RoleInRoom: room.Owner, AddedBy: "bob", AddedAt: at}},
	}
	insert := func(roomID string, seq int64, typ string, actor room.EventActor, data any) {
		oid := primitive.NewObjectID()
		_, err := s.Database().Collection("events").InsertOne(ctx, bson.D{
			{Key: "_id", Value: oid}, {Key: "id", Value: room.NewID("e", at)}, {Key: "room_id", Value: roomID},
			{Key: "seq", Value: seq}, {Key: "type", Value: typ},
			{Key: "actor", Value: bson.D{{Key: "id", Value: actor.ID}, {Key: "kind", Value: string(actor.Kind)}}},
			{Key: "at", Value: at}, {Key: "visibility", Value: "shared"},
			{Key: "data", Value: string(mustJSON(t, data))}, {Key: "idem", Value: "e:" + oid.Hex()},
		})
		require.NoError(t, err)
	}
	insert(r, 4, room.RoomUpdated, room.EventActor{ID: "alice", Kind: dealroom.Staff}, renamed)
	insert("r_orphan", 1, room.RoomCreated, room.EventActor{ID: "bob", Kind: dealroom.Staff}, newRoom)

	s2 := open(t, uri, db)
	assert.EqualValues(t, 4, appliedSeq(t, s2, r))
	assert.EqualValues(t, 1, appliedSeq(t, s2, "r_orphan"))
	got, err := s2.Room(ctx, r)
	require.NoError(t, err)
	assert.Equal(t, "Acme renewal 2027", got.Name)
	assert.EqualValues(t, 4, got.Head)
	assert.True(t, got.LastActivityAt.Equal(at))
	orphan, err := s2.Room(ctx, "r_orphan")
	require.NoError(t, err)
	assert.Equal(t, "Globex", orphan.Name)
	bob, err := s2.Member(ctx, "r_orphan", "bob")
	require.NoError(t, err)
	require.NotNil(t, bob)
	assert.Equal(t, room.Owner, bob.RoleInRoom)
}

// snapshot is everything the read models say about a room.
type snapshot struct {
	Room        *room.Room
	Members     []room.Member
	Tasks       []task.Task
	Roots       []room.Message
	Attachments []room.Attachment
	Invites     []room.Invite
	Inbox       map[string][]room.InboxItem
	Carol       []string
}

func snap(t *testing.T, s *mongostore.Store, r string) snapshot {
	t.Helper()
	ctx := ctxT(t)
	var sn snapshot
	var err error
	sn.Room, err = s.Room(ctx, r)
	require.NoError(t, err)
	sn.Members, err = s.Members(ctx, r)
	require.NoError(t, err)
	sn.Tasks, err = s.Tasks(ctx, r)
	require.NoError(t, err)
	sn.Roots, err = s.Messages(ctx, room.MessageFilter{Room: r, Limit: 100})
	require.NoError(t, err)
	sn.Attachments, err = s.Attachments(ctx, r, "", 1000, false)
	require.NoError(t, err)
	sn.Invites, err = s.Invites(ctx, r, nil, 1000)
	require.NoError(t, err)
	sn.Inbox = map[string][]room.InboxItem{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		sn.Inbox[u], err = s.Inbox(ctx, u, "", 100)
		require.NoError(t, err)
	}
	rooms, err := s.Rooms(ctx, room.RoomFilter{Member: "carol"})
	require.NoError(t, err)
	for _, x := range rooms {
		sn.Carol = append(sn.Carol, x.ID)
	}
	return sn
}

// TestReplayingEverythingChangesNothing: applying every event of a room a
// second time (its high-water mark reset to 0) leaves the read models as
// they were: deleted tasks stay deleted, removed members stay removed,
// read marks stay.
func TestReplayingEverythingChangesNothing(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	s := open(t, uri, db, mongostore.WithRepairCheckInterval(0))
	svc := &room.Service{Store: s}
	r := seedRoom(t, ctx, svc)
	a, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "A", Assignees: []string{"carol", "bob"}}, "")
	require.NoError(t, err)
	b, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "B"}, "")
	require.NoError(t, err)
	_, err = svc.UpdateTask(ctx, roomtest.Alice, r, a.ID, task.Patch{Title: dealroom.Some("A2"), Assignees: dealroom.Some([]string{"bob"})}, "")
	require.NoError(t, err)
	_, err = svc.DeleteTask(ctx, roomtest.Alice, r, b.ID, "")
	require.NoError(t, err)
	m, err := svc.PostMessage(ctx, roomtest.Alice, r, room.MessageDraft{Body: "@Carol hello"}, "")
	require.NoError(t, err)
	_, err = svc.PostMessage(ctx, roomtest.Carol, r, room.MessageDraft{Body: "hi", ParentID: m.ID}, "")
	require.NoError(t, err)
	_, err = svc.EditMessage(ctx, roomtest.Alice, r, m.ID, room.MessageEdit{Body: "@Carol hello again"}, "")
	require.NoError(t, err)
	_, err = svc.AddMember(ctx, roomtest.Alice, r, room.MemberDraft{UserID: "dave", Name: "Dave", Kind: dealroom.Customer}, "")
	require.NoError(t, err)
	_, err = svc.RemoveMember(ctx, roomtest.Alice, r, "dave", "")
	require.NoError(t, err)
	_, err = svc.RemoveMember(ctx, roomtest.Alice, r, "carol", "")
	require.NoError(t, err)
	_, err = svc.UpdateRoom(ctx, roomtest.Alice, r, room.Patch{Stage: dealroom.Some(room.Signing)}, "")
	require.NoError(t, err)
	_, err = svc.CreateInvite(ctx, roomtest.Alice, r, room.InviteDraft{Email: "erin@customer.example"}, "")
	require.NoError(t, err)
	items, err := s.Inbox(ctx, "carol", "", 10)
	require.NoError(t, err)
	require.NotEmpty(t, items)
	require.NoError(t, s.MarkRead(ctx, "carol", items[0].ID, time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)))

	before := snap(t, s, r)
	require.Len(t, before.Tasks, 1)
	assert.Empty(t, before.Carol)

	_, err = s.Database().Collection("rooms").UpdateOne(ctx, bson.D{{Key: "_id", Value: r}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "applied_seq", Value: 0}}}})
	require.NoError(t, err)
	require.NoError(t, s.Repair(ctx))
	after := snap(t, s, r)
	assert.Equal(t, before, after)
	evs, err := s.Events(ctx, r, 0, 1000, false)
	require.NoError(t, err)
	assert.EqualValues(t, len(evs), after.Room.Head)
}
