// Package mongostore is the production store: room.Store on MongoDB (3.6
// or later; standalone, replica set or sharded cluster), and room.Blobs on
// GridFS in the same database. It needs no multi-document transactions.
// Any number of server instances may share one database.
//
// # Use
//
//	s, err := mongostore.Open(ctx, "mongodb://db1,db2/dealroom?replicaSet=rs0")
//	defer s.Close()
//	blobs, err := s.Blobs(ctx)
//	svc := &room.Service{Store: s, Blobs: blobs}
//
// The database is the one named in the URI's path ("dealroom" when none is
// named; WithDatabase overrides it). Open creates the indexes (creating
// them again is a no-op, so every instance does it at start), then repairs
// any room whose read models lag behind its events (see Repair). Reads go
// to the primary (a readPreference in the URI is overridden), decisions'
// with read concern "local" (the latest) and those of events served to
// devices (Events, and Ahead, the hub's check of many rooms' heads in one
// find) with "majority". Writes use w:"majority" unless the URI
// asks for more nodes; a URI with w=0 or w=1 is refused, since an event
// acknowledged by the primary alone may be rolled back by a failover. Every
// backend failure (server unreachable, connection lost, server error) is
// returned as a dealroom EUNAVAILABLE error; a closed Store answers
// EUNAVAILABLE too. Times are kept with millisecond precision, as
// dealroom.Now makes them.
//
// # Collections
//
// The documents use the JSON field names of the domain types.
//
//   - events: one document per event: _id (ObjectId), id, room_id, seq,
//     type, actor {id, kind, name}, at, visibility, data and changes (the
//     exact JSON of the event's data and changes, as strings), idem and
//     fingerprint (the idempotency key, see below).
//     Indexes: {room_id, seq} unique; {room_id, idem} unique.
//   - rooms: _id = room id; the room's settings (name, stage, ... as in
//     room.Room), settings_seq, last_activity_at, last_customer_activity_at
//     with customer_seq, and applied_seq, the room's high-water mark, which
//     is also its head (room.Room.Head).
//     Index: {created_at: -1, _id: -1}.
//   - members: room_id + room.Member + _seq (+ _del for a removed member).
//     Indexes: {room_id, user_id} unique; {user_id, room_id}.
//   - tasks: task.Task (room_id, id, ...) + _seq (+ _del for a deleted task).
//     Indexes: {room_id, id} unique; {assignees, room_id, id}.
//   - messages: room.Message + _seq. Deleted messages are the domain's
//     tombstones (deleted: true). Indexes: {room_id, id} unique;
//     {room_id, parent_id, id}.
//   - attachments: room.Attachment + _seq. Index: {room_id, id} unique.
//   - invites: _id = invite id (a hash of the code) + room.Invite + _seq.
//     Index: {room_id, created_at: -1}.
//   - inbox: room.InboxItem (one per event and user). Index:
//     {user_id, id} unique.
//   - external_ids: {_id: a room's external id, room_id}: the claims
//     that keep an external id to one room (external.go).
//   - service_accounts ({_id, key_hash unique, ...}) and staff_people
//     ({_id: email, ...}): package staff (staff.go).
//   - briefs: _id = room id + room.Brief (the pipeline's steps and people
//     of the room, brief.go) + _seq.
//   - reads: the read markers per (room, member) (read.go);
//     engagement_people, engagement_files, engagement_days: the
//     engagement figures (engagement.go).
//   - sessions and tickets: browser sessions and one-time tickets
//     (package session).
//   - leases, cursors and outbox: the event-log consumers' lease and
//     cursors, and the notifications to send (packages consume, outbox);
//     people: who is told what, and where (package notify); reply_keys:
//     the keys of reply addresses (replykeys.go); push_subscriptions and
//     vapid_keys: Web Push (package push).
//   - blobs.files, blobs.chunks: a GridFS bucket (see Blobs), and
//     blobs.uploads, the uploads in progress.
//
// room_id leads every index, so the room-scoped collections (events,
// members, tasks, messages, attachments) can be sharded by {room_id: 1},
// and rooms by _id. The exceptions are the lookups that are global by
// nature: every room newest first (rooms {created_at, _id}, for managers),
// the rooms of a user (members {user_id, room_id}), the tasks assigned to
// a user (tasks {assignees, ...}), an invite by its id without knowing the
// room (invites _id; shard it by {_id: "hashed"} if at all), and a user's
// inbox (inbox {user_id, id}; shard it by {user_id: 1}). Those queries
// are answered by every shard on a sharded cluster. The collections of
// people and of background work (sessions, tickets, outbox, webhook
// deliveries, push subscriptions, service accounts, GridFS) are not
// room-scoped at all; docs/capacity.md, "Sharded MongoDB", lists every
// index and how each collection would be sharded or left unsharded.
//
// # Appending an event
//
// Execute(cmd), with the command's room locked within the process (writers
// in other processes are kept apart by the database alone):
//
//  1. With a key, look for an event of the room whose idem is the key:
//     found with the same fingerprint, catch the room up (step 2) and
//     return that event with replayed = true; with another fingerprint,
//     return room.ErrKeyReused. A key older than room.KeyRetention (by the
//     event's time and the command's) is forgotten: it is taken off its
//     event (idem set to "e:" + its ObjectId, as for an event written
//     without a key) and the command goes on as a new one. Keys live in
//     the events, so they cost no storage of their own and need no sweep;
//     a TTL index would delete the events themselves.
//  2. Catch up: read the room's head H (its highest seq in events) and its
//     applied_seq A; if A < H, apply events A+1..H to the read models
//     (see below).
//  3. Run cmd.Decide against a View that reads the read models, which now
//     reflect every event up to H.
//  4. Insert the event with seq = H+1. The insert is the commit: the event
//     document holds the idempotency key (idem: room.IdempotencyID of the
//     actor and key, the rule the embedded store uses too: encoded without
//     ambiguity, hashed when long; an event without a key gets
//     "e:" + its ObjectId, so that the unique index needs no partial
//     filter) and the request's fingerprint, so key and event are recorded
//     by one single-document write.
//     An event that gives the room an external id first claims the id
//     in external_ids (external.go); held by another room, the command
//     is refused (room.ExternalIDTaken) and nothing is inserted.
//  5. On a duplicate key error, unless the document found in the way is
//     this write's own (see below), another writer took seq H+1 (or, with
//     the same key, the same request): go back to step 1, after a short
//     random pause; after WithMaxAttempts attempts, fail with EUNAVAILABLE.
//     Decide is run again then, against the new state, so decisions are
//     serialized: every event was decided against all the events before it.
//  6. Apply the event to the read models and return it. If that fails, the
//     event stands (it is the truth) and is still reported done, with a
//     logged error; the read models are repaired by the next use of the
//     room.
//
// When the insert gets no answer (a connection cut, a primary stepping
// down, a write concern error), it may have happened or not. Execute sends
// the same document again (its _id is made by the store, so no second copy
// can land), and then, as after any duplicate key error, reads it back by
// its _id: on the primary, and with read concern "majority". A document
// of its own that a majority holds is the write done; one the primary
// does not hold means another writer's clash (step 5) or a failed write;
// one the primary holds alone is waited for, and after 10 seconds
// reported as EUNAVAILABLE, its outcome unknown. So a write is reported
// done only when a failover cannot undo it, and never done twice: a
// duplicate key on its own first copy is not taken for another writer's
// seq. See docs/architecture.md, "MongoDB replica set".
//
// A room this process wrote last is written the short way (see hotRooms):
// the process remembers the head its write left and the room and members
// its decision read, and the next write decides on those, skipping steps
// 1 and 2 and the room and member reads (a message then costs 3 round
// trips: the insert, its read-model update and the high-water mark, where
// the long way costs 9). The insert at head+1 is the check: when another
// process wrote the room meanwhile, the seq is taken (step 5), the memory
// of the room is dropped and the write goes the long way. Without step 1,
// a retry is caught by the unique {room_id, idem} index at the insert; a
// retry that its decision would now refuse (the member it removed is gone)
// looks its key up before answering.
//
// # Read models and repair
//
// Applying an event writes what room.Project derives from it, and every
// write is idempotent by seq: each read-model document records in _seq the
// seq of the event that last wrote it, and is replaced only by a later one
// (an upsert filtered on _seq < seq; a duplicate key error then means a
// newer version is there). Removed members and deleted tasks are kept as
// tombstones with the seq of their removal, so that replaying an older
// event cannot bring them back. Inbox items are inserted once and keep
// their read marks. Last comes the room's high-water mark: applied_seq and
// last_activity_at are set to the event's, if higher. Applying an event
// twice, or two instances applying the same events at once, is harmless.
//
// A process that dies between the insert and the read-model update leaves
// a room whose applied_seq is below its head. Such a room is repaired by
// replaying the events after applied_seq through room.Project: by the next
// Execute on it (always, before deciding), by reads of it (Room, Member,
// Members, Tasks, Task, Messages, Message, Attachment(s), Invite(s); a room
// found up to date is trusted for WithRepairCheckInterval, 1s by default,
// before reads check again), by a retry with the same idempotency key, and
// by Repair, which Open runs for every room whose head is beyond its
// applied_seq. Events are read from the log directly, with read concern
// "majority": every event reported done is there; one not yet on a
// majority (its write not yet answered) is not.
// Listings across rooms (Rooms, AssignedTasks, Inbox) do not check each
// room.
package mongostore
