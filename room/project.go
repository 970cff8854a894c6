package room

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"dealroom"
	"dealroom/task"
)

// Inbox item kinds.
const (
	InboxMention    = "mention"
	InboxAssignment = "assignment"
	InboxInvitation = "invitation"
)

// InboxItem tells one user that something in a room is addressed to them.
// Its ID is the ID of the event that caused it: one event, one item per
// user, so replaying an event cannot double an item.
type InboxItem struct {
	ID         string              `json:"id"`
	UserID     string              `json:"user_id"`
	Kind       string              `json:"kind"`
	RoomID     string              `json:"room_id"`
	Seq        int64               `json:"seq"`
	Actor      EventActor          `json:"actor"`
	TaskID     string              `json:"task_id,omitempty"`
	MessageID  string              `json:"message_id,omitempty"`
	Visibility dealroom.Visibility `json:"visibility"`
	At         time.Time           `json:"at"`
	ReadAt     *time.Time          `json:"read_at"`
	// Filled when read, from the current state of what the item is about,
	// so that an edit or a deletion shows at once.
	RoomName string `json:"room_name,omitempty"`
	Title    string `json:"title,omitempty"`
	Excerpt  string `json:"excerpt,omitempty"`
}

// Effects are the changes one event makes to the read models. Every store
// applies them the same way; applying them twice changes nothing more.
// Besides these, every event moves its room's head and activity times.
type Effects struct {
	Room           *Room // new settings (room.created, room.updated)
	Members        []Member
	RemovedMembers []string
	Tasks          []task.Task
	DeletedTasks   []string
	Messages       []Message
	Attachments    []Attachment
	Invites        []Invite
	Inbox          []InboxItem
}

// Project derives the read-model changes of e from e alone, so that a store
// can rebuild its read models by replaying events.
func Project(e Event) (Effects, error) {
	var fx Effects
	var err error
	decode := func(v any) {
		if err == nil {
			err = json.Unmarshal(e.Data, v)
		}
	}
	switch e.Type {
	case RoomCreated:
		var d RoomCreatedData
		decode(&d)
		fx.Room, fx.Members, fx.Tasks = &d.Room, d.Members, d.Tasks
		for _, t := range d.Tasks {
			fx.Inbox = append(fx.Inbox, taskNotices(e, t, nil, nil)...)
		}
	case RoomUpdated:
		var r Room
		decode(&r)
		fx.Room = &r
	case MemberAdded, MemberUpdated:
		var m Member
		decode(&m)
		fx.Members = []Member{m}
		if e.Type == MemberAdded && m.UserID != e.Actor.ID {
			fx.Inbox = append(fx.Inbox, notice(e, m.UserID, InboxInvitation, dealroom.Shared))
		}
	case MemberRemoved:
		var d MemberRemovedData
		decode(&d)
		fx.RemovedMembers = []string{d.UserID}
	case TaskCreated, TaskUpdated:
		var t task.Task
		decode(&t)
		fx.Tasks = []task.Task{t}
		var oldAssignees, oldMentions []string
		if err == nil && e.Type == TaskUpdated {
			oldAssignees, err = previous[[]string](e, "assignees")
			if err == nil {
				oldMentions, err = previous[[]string](e, "mentions")
			}
		}
		if err == nil {
			fx.Inbox = taskNotices(e, t, oldAssignees, oldMentions)
		}
	case TaskDeleted:
		var d TaskDeletedData
		decode(&d)
		fx.DeletedTasks = []string{d.ID}
	case MessagePosted, MessageEdited, MessageDeleted:
		var m Message
		decode(&m)
		fx.Messages = []Message{m}
		var old []string
		if err == nil && e.Type == MessageEdited {
			old, err = previous[[]string](e, "mentions")
		}
		if e.Type != MessageDeleted {
			for _, u := range m.Mentions {
				if u != e.Actor.ID && !slices.Contains(old, u) {
					it := notice(e, u, InboxMention, m.Visibility)
					it.MessageID, it.TaskID = m.ID, m.TaskID
					fx.Inbox = append(fx.Inbox, it)
				}
			}
		}
	case AttachmentAdded:
		var a Attachment
		decode(&a)
		fx.Attachments = []Attachment{a}
	case InviteCreated, InviteRevoked:
		var i Invite
		decode(&i)
		fx.Invites = []Invite{i}
	case InviteAccepted:
		var d InviteAcceptedData
		decode(&d)
		fx.Invites, fx.Members = []Invite{d.Invite}, []Member{d.Member}
	default:
		return fx, fmt.Errorf("room: unknown event type %q", e.Type)
	}
	if err != nil {
		return Effects{}, fmt.Errorf("room: event %s (%s) has bad data: %w", e.ID, e.Type, err)
	}
	return fx, nil
}

// taskNotices tells new assignees and newly mentioned members about t.
func taskNotices(e Event, t task.Task, oldAssignees, oldMentions []string) []InboxItem {
	var out []InboxItem
	for _, u := range t.Assignees {
		if u != e.Actor.ID && !slices.Contains(oldAssignees, u) {
			it := notice(e, u, InboxAssignment, t.Visibility)
			it.TaskID = t.ID
			out = append(out, it)
		}
	}
	for _, u := range t.Mentions {
		if u != e.Actor.ID && !slices.Contains(oldMentions, u) && !slices.Contains(t.Assignees, u) {
			it := notice(e, u, InboxMention, t.Visibility)
			it.TaskID = t.ID
			out = append(out, it)
		}
	}
	return out
}

func notice(e Event, user, kind string, v dealroom.Visibility) InboxItem {
	return InboxItem{ID: e.ID, UserID: user, Kind: kind, RoomID: e.RoomID, Seq: e.Seq, Actor: e.Actor, Visibility: v, At: e.At}
}

// previous returns the value a field had before an update: from the
// event's changes, or, when the field did not change, from its data.
func previous[T any](e Event, field string) (T, error) {
	var v T
	c, ok := e.Changes[field]
	if !ok {
		// Unchanged: the old value is the new one, read from data.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(e.Data, &m); err != nil {
			return v, err
		}
		if raw, ok := m[field]; ok {
			return v, json.Unmarshal(raw, &v)
		}
		return v, nil
	}
	if len(c.From) == 0 {
		return v, nil
	}
	return v, json.Unmarshal(c.From, &v)
}
