package room

import (
	"context"
	"time"

	"dealroom"
)

// MessageResult is a message after a change, with the @-mentions that
// reached no one.
type MessageResult struct {
	Message
	UnresolvedMentions []string `json:"unresolved_mentions"`
	Written
}

// messageReplay is the answer to the replay of a message's posting or
// edit: the message as that request left it, with the mentions that
// reached no one (the first answer's were not stored).
func (s *Service) messageReplay(ctx context.Context, ev Event) (MessageResult, error) {
	m, err := decodeData[Message](ev)
	if err != nil {
		return MessageResult{}, err
	}
	return MessageResult{Message: m, UnresolvedMentions: orEmpty(s.unresolvedAgain(ctx, ev.RoomID, m.Body, m.Visibility))}, nil
}

// Messages lists messages the actor may see: thread roots (all, or those
// under one task), or the replies of one thread.
func (s *Service) Messages(ctx context.Context, a dealroom.Actor, f MessageFilter) ([]Message, error) {
	p, err := s.perm(ctx, a, f.Room)
	if err != nil {
		return nil, err
	}
	if f.ParentID != "" {
		parent, err := s.Store.Message(ctx, f.Room, f.ParentID)
		if err != nil {
			return nil, err
		}
		if parent == nil || !p.Sees(parent.Visibility) {
			return nil, dealroom.NotFound("message", f.ParentID)
		}
	}
	if f.TaskID != "" {
		t, err := s.Store.Task(ctx, f.Room, f.TaskID)
		if err != nil {
			return nil, err
		}
		if t == nil || !p.Sees(t.Visibility) {
			return nil, dealroom.NotFound("task", f.TaskID)
		}
	}
	f.SharedOnly = !p.Internal
	return s.Store.Messages(ctx, f)
}

// Message returns one message the actor may see.
func (s *Service) Message(ctx context.Context, a dealroom.Actor, room, id string) (*Message, error) {
	p, err := s.perm(ctx, a, room)
	if err != nil {
		return nil, err
	}
	m, err := s.Store.Message(ctx, room, id)
	if err != nil {
		return nil, err
	}
	if m == nil || !p.Sees(m.Visibility) {
		return nil, dealroom.NotFound("message", id)
	}
	return m, nil
}

// PostMessage posts to the room's discussion, to a task's discussion, or as
// a reply in a thread. Writers only. A message is as visible as its thread
// and its task: under anything internal it is internal.
func (s *Service) PostMessage(ctx context.Context, a dealroom.Actor, room string, d MessageDraft, key string) (MessageResult, error) {
	found, err := s.findMentions(ctx, room, d.Body)
	if err != nil {
		return MessageResult{}, err
	}
	return run(ctx, s, change[MessageResult]{actor: a, room: room, key: key, op: "message.post", input: d,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, MessageResult, error) {
			if !p.Write {
				return Event{}, MessageResult{}, forbidden("you have read access to this room")
			}
			m := Message{ID: NewID("m", now), RoomID: room, Author: a.ID, AuthorName: a.Name, CreatedAt: now,
				ParentID: d.ParentID, TaskID: d.TaskID}
			if p.Member != nil {
				m.AuthorName = p.Member.Name
			}
			var err error
			if m.Body, err = dealroom.Text("body", d.Body, 1, MaxBody); err != nil {
				return Event{}, MessageResult{}, err
			}
			inherited := dealroom.Shared
			if d.ParentID != "" {
				parent, err := v.Message(d.ParentID)
				if err != nil {
					return Event{}, MessageResult{}, err
				}
				if parent == nil || !p.Sees(parent.Visibility) {
					return Event{}, MessageResult{}, dealroom.Invalid("parent_id", "message %s does not exist in this room", dealroom.Clip(d.ParentID))
				}
				if parent.ParentID != "" {
					return Event{}, MessageResult{}, dealroom.Invalid("parent_id", "replies are one level deep: reply to the thread's first message %s", parent.ParentID)
				}
				if d.TaskID != "" && d.TaskID != parent.TaskID {
					return Event{}, MessageResult{}, dealroom.Invalid("task_id", "a reply belongs to the task of its thread")
				}
				m.TaskID = parent.TaskID
				inherited = parent.Visibility
			}
			if m.TaskID != "" {
				t, err := v.Task(m.TaskID)
				if err != nil {
					return Event{}, MessageResult{}, err
				}
				switch {
				case t == nil && d.ParentID != "":
					// The thread's task was deleted; its discussion lives on.
				case t == nil || !p.Sees(t.Visibility):
					return Event{}, MessageResult{}, dealroom.Invalid("task_id", "task %s does not exist in this room", dealroom.Clip(m.TaskID))
				case t.Visibility == dealroom.Internal:
					inherited = dealroom.Internal
				}
			}
			if m.Visibility, err = dealroom.ParseVisibility("visibility", d.Visibility, inherited); err != nil {
				return Event{}, MessageResult{}, err
			}
			if m.Visibility == dealroom.Internal && !p.Internal {
				return Event{}, MessageResult{}, forbidden("customers can only post shared messages")
			}
			if m.Visibility == dealroom.Shared && inherited == dealroom.Internal {
				return Event{}, MessageResult{}, dealroom.Invalid("visibility", "a message in an internal thread or under an internal task is internal")
			}
			if d.ParentID != "" && m.Visibility != inherited {
				// A thread is read as one conversation: an internal aside in
				// a customer's thread would leave them answering half of it.
				return Event{}, MessageResult{}, dealroom.Invalid("visibility", "a reply has the visibility of its thread (%s); start an internal thread for internal notes", inherited)
			}
			if m.Attachments, err = checkAttachments(v, p, d.Attachments, m.Visibility); err != nil {
				return Event{}, MessageResult{}, err
			}
			mt, err := found.Check(v, m.Body, m.Visibility, "body")
			if err != nil {
				return Event{}, MessageResult{}, err
			}
			m.Mentions = orEmpty(mt.Users)
			ev, err := newEvent(MessagePosted, room, a, now, m.Visibility, m)
			return ev, MessageResult{Message: m, UnresolvedMentions: orEmpty(mt.Unresolved)}, err
		},
		replay: func(ev Event) (MessageResult, error) { return s.messageReplay(ctx, ev) }})
}

// EditMessage changes the body of the actor's own message.
func (s *Service) EditMessage(ctx context.Context, a dealroom.Actor, room, id string, e MessageEdit, key string) (MessageResult, error) {
	found, err := s.findMentions(ctx, room, e.Body)
	if err != nil {
		return MessageResult{}, err
	}
	return run(ctx, s, change[MessageResult]{actor: a, room: room, key: key, op: "message.edit", input: []any{id, e},
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, MessageResult, error) {
			old, err := visibleMessage(v, p, id)
			if err != nil {
				return Event{}, MessageResult{}, err
			}
			switch {
			case !p.Write:
				return Event{}, MessageResult{}, forbidden("you have read access to this room")
			case old.Author != a.ID:
				return Event{}, MessageResult{}, forbidden("only the author can edit a message")
			case old.Deleted:
				return Event{}, MessageResult{}, conflict("message %s was deleted", id)
			}
			n := *old
			if n.Body, err = dealroom.Text("body", e.Body, 1, MaxBody); err != nil {
				return Event{}, MessageResult{}, err
			}
			if n.Body == old.Body {
				return noChange, MessageResult{Message: *old, UnresolvedMentions: []string{}}, nil
			}
			mt, err := found.Check(v, n.Body, n.Visibility, "body")
			if err != nil {
				return Event{}, MessageResult{}, err
			}
			n.Mentions = orEmpty(mt.Users)
			n.EditedAt = &now
			n.ReplyCount = 0
			ev, err := newEvent(MessageEdited, room, a, now, n.Visibility, n)
			if err == nil {
				ev.Changes, err = diff(old, &n, []string{"body", "mentions"})
			}
			return ev, MessageResult{Message: n, UnresolvedMentions: orEmpty(mt.Unresolved)}, err
		},
		replay: func(ev Event) (MessageResult, error) { return s.messageReplay(ctx, ev) }})
}

// DeleteMessage replaces a message by a tombstone. Authors delete their own
// messages; owners, managers and admins any.
func (s *Service) DeleteMessage(ctx context.Context, a dealroom.Actor, room, id, key string) (Written, error) {
	return run(ctx, s, change[Written]{actor: a, room: room, key: key, op: "message.delete", input: id,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, Written, error) {
			old, err := visibleMessage(v, p, id)
			if err != nil {
				return Event{}, Written{}, err
			}
			if !p.Write || (old.Author != a.ID && !p.Manage) {
				return Event{}, Written{}, forbidden("only the author, the room's owners, managers and admins can delete a message")
			}
			if old.Deleted {
				return noChange, Written{}, nil
			}
			n := *old
			n.Body, n.Mentions, n.Attachments, n.Deleted, n.DeletedAt, n.ReplyCount = "", []string{}, []string{}, true, &now, 0
			ev, err := newEvent(MessageDeleted, room, a, now, n.Visibility, n)
			return ev, Written{}, err
		}})
}

func visibleMessage(v View, p Perm, id string) (*Message, error) {
	m, err := v.Message(id)
	if err != nil {
		return nil, err
	}
	if m == nil || !p.Sees(m.Visibility) {
		return nil, dealroom.NotFound("message", id)
	}
	return m, nil
}

// checkAttachments makes sure a message only carries files of its room
// that everyone who sees the message may see.
func checkAttachments(v View, p Perm, ids []string, vis dealroom.Visibility) ([]string, error) {
	if len(ids) > MaxMessageAttachments {
		return nil, dealroom.Invalid("attachments", "a message carries at most %d attachments", MaxMessageAttachments)
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		at, err := v.Attachment(id)
		if err != nil {
			return nil, err
		}
		if at == nil || !p.Sees(at.Visibility) {
			return nil, dealroom.Invalid("attachments", "attachment %s does not exist in this room", dealroom.Clip(id))
		}
		if vis == dealroom.Shared && at.Visibility == dealroom.Internal {
			return nil, dealroom.Invalid("attachments", "attachment %s is internal and cannot go into a shared message", id)
		}
		out = appendNew(out, id)
	}
	return out, nil
}
