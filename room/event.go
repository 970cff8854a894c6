package room

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"dealroom"
	"dealroom/task"
)

// Event types. Every change to a room is exactly one event.
const (
	RoomCreated     = "room.created"
	RoomUpdated     = "room.updated"
	MemberAdded     = "member.added"
	MemberUpdated   = "member.updated"
	MemberRemoved   = "member.removed"
	TaskCreated     = "task.created"
	TaskUpdated     = "task.updated"
	TaskDeleted     = "task.deleted"
	MessagePosted   = "message.posted"
	MessageEdited   = "message.edited"
	MessageDeleted  = "message.deleted"
	AttachmentAdded = "attachment.added"
	InviteCreated   = "invite.created"
	InviteRevoked   = "invite.revoked"
	InviteAccepted  = "invite.accepted"
)

// EventActor is who caused an event.
type EventActor struct {
	ID   string        `json:"id"`
	Kind dealroom.Kind `json:"kind"`
	Name string        `json:"name,omitempty"`
}

// Change is a field's value before and after an update.
type Change struct {
	From json.RawMessage `json:"from"`
	To   json.RawMessage `json:"to"`
}

// Event is one change to a room. Events of a room form the gap-free
// sequence Seq = 1, 2, 3, ...; Data carries the new state of the thing
// changed, Changes (on updates) what it was before.
type Event struct {
	Seq        int64               `json:"seq"`
	ID         string              `json:"id"`
	RoomID     string              `json:"room_id"`
	Type       string              `json:"type"`
	Actor      EventActor          `json:"actor"`
	At         time.Time           `json:"at"`
	Visibility dealroom.Visibility `json:"visibility"`
	Data       json.RawMessage     `json:"data"`
	Changes    map[string]Change   `json:"changes,omitempty"`
}

// RoomCreatedData is the data of room.created: the room with its first
// members and the tasks of the template it was made from.
type RoomCreatedData struct {
	Room
	Members []Member    `json:"members"`
	Tasks   []task.Task `json:"tasks"`
}

// MemberRemovedData is the data of member.removed.
type MemberRemovedData struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
}

// TaskDeletedData is the data of task.deleted.
type TaskDeletedData struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// InviteAcceptedData is the data of invite.accepted.
type InviteAcceptedData struct {
	Invite Invite `json:"invite"`
	Member Member `json:"member"`
}

func newEvent(typ string, roomID string, a dealroom.Actor, now time.Time, v dealroom.Visibility, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, err
	}
	return Event{
		ID: NewID("e", now), RoomID: roomID, Type: typ, At: now, Visibility: v, Data: raw,
		Actor: EventActor{ID: a.ID, Kind: a.Kind, Name: a.Name},
	}, nil
}

// diff records the changed fields' JSON values before and after.
func diff(before, after any, fields []string) (map[string]Change, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	b, err := fieldMap(before)
	if err != nil {
		return nil, err
	}
	a, err := fieldMap(after)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Change, len(fields))
	for _, f := range fields {
		out[f] = Change{From: b[f], To: a[f]}
	}
	return out, nil
}

func fieldMap(v any) (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	return m, json.Unmarshal(raw, &m)
}

// ForCustomer returns the event as a customer sees it, and false when a
// customer must not see it at all. Only room events need reshaping: the
// deal's value, forecast and tags are not the customer's business, and
// internal tasks of a template never leave the staff side.
func (e Event) ForCustomer() (Event, bool) {
	if e.Visibility != dealroom.Shared {
		return Event{}, false
	}
	if c, ok := e.Changes["visibility"]; ok && string(c.From) == `"internal"` {
		// The thing was internal until now: what it said before is not the
		// customer's to read. For them it simply appears, as data shows it.
		e.Changes = map[string]Change{"visibility": c}
	}
	switch e.Type {
	case RoomCreated:
		var d RoomCreatedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return Event{}, false
		}
		d.Tasks = slices.DeleteFunc(d.Tasks, func(t task.Task) bool { return t.Visibility != dealroom.Shared })
		e.Data = mustJSON(struct {
			CustomerRoom
			Members []Member    `json:"members"`
			Tasks   []task.Task `json:"tasks"`
		}{d.Room.ForCustomer(), d.Members, d.Tasks})
	case RoomUpdated:
		var r Room
		if err := json.Unmarshal(e.Data, &r); err != nil {
			return Event{}, false
		}
		e.Data = mustJSON(r.ForCustomer())
		ch := make(map[string]Change)
		for f, c := range e.Changes {
			if slices.Contains(customerFields, f) {
				ch[f] = c
			}
		}
		e.Changes = ch
	case InviteAccepted:
		var d InviteAcceptedData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return Event{}, false
		}
		e.Data = mustJSON(struct {
			Member Member `json:"member"`
		}{d.Member})
	}
	return e, true
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("room: cannot encode " + err.Error())
	}
	return b
}

// MessageOf returns the id of the message an event of type message.* is
// about, "" for other events.
func (e Event) MessageOf() string {
	switch e.Type {
	case MessagePosted, MessageEdited, MessageDeleted:
		var m struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(e.Data, &m) == nil {
			return m.ID
		}
	}
	return ""
}

// Redacted returns an event about a message (posted or edited) as it reads
// once the message was deleted: its data is the tombstone, what the
// message said is gone from the timeline too.
func (e Event) Redacted(tombstone Message) Event {
	tombstone.ReplyCount = 0
	e.Data = mustJSON(tombstone)
	e.Changes = nil
	return e
}

// Redactor gives back events with the text of deleted messages removed.
type Redactor struct {
	Store Store
}

// Events reads events like Store.Events, with deleted messages redacted.
func (r Redactor) Events(ctx context.Context, room string, after int64, limit int, sharedOnly bool) ([]Event, error) {
	evs, err := r.Store.Events(ctx, room, after, limit, sharedOnly)
	if err != nil {
		return nil, err
	}
	return r.Redact(ctx, room, evs)
}

// Room reads a room (so that a Redactor can stand in for the store).
func (r Redactor) Room(ctx context.Context, id string) (*Room, error) { return r.Store.Room(ctx, id) }

// Redact replaces, in place, the events about messages that were deleted
// since. The messages are looked up in one read for the whole page.
func (r Redactor) Redact(ctx context.Context, room string, evs []Event) ([]Event, error) {
	var ids []string
	seen := map[string]bool{}
	for _, e := range evs {
		if e.Type != MessagePosted && e.Type != MessageEdited {
			continue
		}
		if id := e.MessageOf(); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return evs, nil
	}
	gone, err := r.Store.DeletedMessages(ctx, room, ids)
	if err != nil {
		return nil, err
	}
	if len(gone) == 0 {
		return evs, nil
	}
	deleted := make(map[string]*Message, len(gone))
	for i := range gone {
		deleted[gone[i].ID] = &gone[i]
	}
	for i, e := range evs {
		if e.Type != MessagePosted && e.Type != MessageEdited {
			continue
		}
		if m := deleted[e.MessageOf()]; m != nil {
			evs[i] = e.Redacted(*m)
		}
	}
	return evs, nil
}
