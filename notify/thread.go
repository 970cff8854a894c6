package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"

	"dealroom"
	dmail "dealroom/mail"
	"dealroom/outbox"
	"dealroom/room"
	"dealroom/task"
)

// Two instant notifications are not inbox items: a reply in a thread the
// person wrote in, and a new due date of a step assigned to them, set by
// someone else. Who wrote in a thread is not in the reply's event, and
// room.Project derives the inbox from the event alone; a moved date is
// news for the mailbox, not something new to do. So the notifier decides
// them here, from the event and the store, under the same rules: never the
// actor, only a member who may see the item and wants the room's email,
// one record per recipient and event.

// threadPages bounds the pages of replies read to find who wrote in a
// thread before a reply.
const threadPages = 10

// threadAndDue returns the records of ev's replies and due dates, leaving
// out the recipients of told (the records of ev's inbox items: one record
// per recipient and event).
func (n *Notifier) threadAndDue(ctx context.Context, ev room.Event, told []outbox.Record) ([]outbox.Record, error) {
	users, vis, say, thread, err := n.threadOrDue(ctx, ev)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	var recs []outbox.Record
	var rm *room.Room
	for _, u := range users {
		if u == ev.Actor.ID || slices.ContainsFunc(told, func(r outbox.Record) bool { return r.Recipient == u }) {
			continue
		}
		p, err := n.recipient(ctx, room.InboxItem{RoomID: ev.RoomID, UserID: u, Visibility: vis})
		if err != nil {
			return nil, err
		}
		if p == nil {
			continue
		}
		if rm == nil {
			if rm, err = n.rooms.Room(ctx, ev.RoomID); err != nil {
				if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
					return nil, nil
				}
				return nil, err
			}
		}
		c := say(rm)
		c.Unsubscribe = n.publicURL + "/api/v1/notifications/unsubscribe?token=" + n.UnsubscribeToken(p.User, rm.ID)
		m, err := n.render(p, c)
		if err != nil {
			return nil, err
		}
		if m.ReplyTo, err = n.ReplyAddress(ctx, p.User, rm.ID, thread); err != nil {
			return nil, err
		}
		rec, err := n.eventRecord(ev, p, m, c)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// threadOrDue returns who is told of ev as a reply in a thread they
// wrote in or as their step's moved due date (none for other events),
// the visibility of what they are told of, what they are told, and the
// thread a reply by email goes into ("" for a due date).
func (n *Notifier) threadOrDue(ctx context.Context, ev room.Event) (users []string, vis dealroom.Visibility, say func(rm *room.Room) content, thread string, err error) {
	switch ev.Type {
	case room.MessagePosted:
		var m room.Message
		if err := json.Unmarshal(ev.Data, &m); err != nil || m.ParentID == "" {
			return nil, "", nil, "", nil
		}
		writers, err := n.threadWriters(ctx, m)
		if err != nil {
			return nil, "", nil, "", err
		}
		return writers, m.Visibility, func(rm *room.Room) content { return n.replyContent(ev, m, rm) }, m.ParentID, nil
	case room.TaskUpdated:
		change, ok := ev.Changes["due"]
		var t task.Task
		if !ok || json.Unmarshal(ev.Data, &t) != nil || t.Status == task.Done {
			return nil, "", nil, "", nil
		}
		var was *task.Date
		_ = json.Unmarshal(change.From, &was)
		return t.Assignees, t.Visibility, func(rm *room.Room) content { return n.dueContent(ev, t, was, rm) }, "", nil
	}
	return nil, "", nil, "", nil
}

// threadWriters returns who wrote in m's thread before m: the author of
// its first message and of the replies before m, each once.
func (n *Notifier) threadWriters(ctx context.Context, m room.Message) ([]string, error) {
	root, err := n.rooms.Message(ctx, m.RoomID, m.ParentID)
	if err != nil || root == nil {
		return nil, err
	}
	users := []string{root.Author}
	after := ""
	for range threadPages {
		page, err := n.rooms.Messages(ctx, room.MessageFilter{Room: m.RoomID, ParentID: m.ParentID, After: after, Limit: 200})
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			if r.ID == m.ID || r.CreatedAt.After(m.CreatedAt) {
				return users, nil
			}
			if !slices.Contains(users, r.Author) {
				users = append(users, r.Author)
			}
		}
		if len(page) < 200 {
			break
		}
		after = page[len(page)-1].ID
	}
	return users, nil
}

func actorName(ev room.Event) string {
	if ev.Actor.Name == "" {
		return "Someone"
	}
	return ev.Actor.Name
}

// replyContent is what the mail of a reply says.
func (n *Notifier) replyContent(ev room.Event, m room.Message, rm *room.Room) content {
	who := actorName(ev)
	c := content{RoomName: rm.Name, Subject: who + " replied in a thread you wrote in, in " + rm.Name,
		Lead: who + " replied in a thread you wrote in, in " + rm.Name + ":", Excerpt: excerpt(m.Body)}
	roomPath := n.publicURL + "/room/" + url.PathEscape(rm.ID)
	if m.TaskID != "" {
		c.Link, c.LinkText = roomPath+"/task/"+url.PathEscape(m.TaskID), "Open the step's discussion"
	} else {
		c.Link, c.LinkText = roomPath+"/discussion", "Open the discussion"
	}
	return c
}

// dueContent is what the mail of a moved due date says.
func (n *Notifier) dueContent(ev room.Event, t task.Task, was *task.Date, rm *room.Room) content {
	who := actorName(ev)
	now, before := "no due date any more", "none"
	if t.Due != nil {
		now = "due " + t.Due.String()
	}
	if was != nil {
		before = was.String()
	}
	return content{RoomName: rm.Name, Title: t.Title,
		Subject: who + " changed the due date of “" + shorten(t.Title, 80) + "” in " + rm.Name,
		Lead:    who + " changed the due date of your step in " + rm.Name + ":",
		Excerpt: "Now " + now + " (was " + before + ").",
		Link:    n.publicURL + "/room/" + url.PathEscape(rm.ID) + "/task/" + url.PathEscape(t.ID), LinkText: "Open the step"}
}

// render makes the mail to p that says c.
func (n *Notifier) render(p *Person, c content) (dmail.Message, error) {
	var text, html bytes.Buffer
	if err := textTmpl.Execute(&text, c); err != nil {
		return dmail.Message{}, err
	}
	if err := htmlTmpl.Execute(&html, c); err != nil {
		return dmail.Message{}, err
	}
	return dmail.Message{To: p.Email, Subject: oneLine(c.Subject), Text: text.String(), HTML: html.String(),
		Unsubscribe: c.Unsubscribe}, nil
}
