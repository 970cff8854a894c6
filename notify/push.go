package notify

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"dealroom"
	"dealroom/outbox"
	"dealroom/push"
	"dealroom/room"
)

// Push is the notifier's second channel: the same notifications as
// instant email, pushed to every device a person turned them on for. An
// outbox record is made per (push, person, event), like email's, so that
// it is made once across instances and restarts and waits the same delay;
// at send time it goes to each of the person's devices.
type Push struct {
	Client *push.Client
	Store  push.Store
}

// pushPayload is a push record's payload: the notification, and what the
// sender checks again before it sends.
type pushPayload struct {
	Notification push.Notification `json:"notification"`
	Visibility   string            `json:"visibility"`
	Urgency      string            `json:"urgency"`
}

// pushRecords makes the push records of items (addressed to others than
// the event's actor): to those who may still see the item, have not
// turned the room's notifications off and have a device to push to.
func (n *Notifier) pushRecords(ctx context.Context, ev room.Event, items []room.InboxItem, rm *room.Room) ([]outbox.Record, error) {
	var recs []outbox.Record
	for _, it := range items {
		ok, p, err := n.mayPush(ctx, it)
		if err != nil {
			return nil, err
		}
		if !ok {
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
		// The email's words, so that both channels say the same and show
		// a customer only what the email would.
		_, c, err := n.message(ev, it, p, rm)
		if err != nil {
			return nil, err
		}
		urgency := push.UrgencyNormal
		if it.Kind == room.InboxMention {
			urgency = push.UrgencyHigh // someone is waiting for an answer
		}
		rec, err := n.pushRecord(ev, p, c, it.Visibility, urgency)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// pushRecord is the push record of ev to p that says c.
func (n *Notifier) pushRecord(ev room.Event, p *Person, c content, vis dealroom.Visibility, urgency string) (outbox.Record, error) {
	id := outbox.Key(outbox.Push, p.User, ev.ID)
	body := c.Excerpt
	if body == "" {
		body = c.Title
	}
	raw, err := json.Marshal(pushPayload{Notification: push.Notification{Title: oneLine(c.Subject),
		Body: shorten(body, 200), URL: c.Link, Tag: id}, Visibility: string(vis), Urgency: urgency})
	if err != nil {
		return outbox.Record{}, err
	}
	now := n.now()
	return outbox.Record{ID: id, Channel: outbox.Push, Recipient: p.User, RoomID: ev.RoomID,
		EventID: ev.ID, Seq: ev.Seq, Payload: raw, State: outbox.Pending, CreatedAt: now, Due: now.Add(n.delay)}, nil
}

// pushThreadAndDue makes the push records of a reply in a thread and of a
// step's moved due date (thread.go), the same as their email, to those
// not pushed to already for the event (a mention in the reply: pushed).
func (n *Notifier) pushThreadAndDue(ctx context.Context, ev room.Event, pushed []room.InboxItem, rm *room.Room) ([]outbox.Record, error) {
	users, vis, say, _, err := n.threadOrDue(ctx, ev)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	var recs []outbox.Record
	for _, u := range users {
		if u == ev.Actor.ID || slices.ContainsFunc(pushed, func(it room.InboxItem) bool { return it.UserID == u }) {
			continue
		}
		ok, p, err := n.mayPush(ctx, room.InboxItem{RoomID: ev.RoomID, UserID: u, Visibility: vis})
		if err != nil {
			return nil, err
		}
		if !ok {
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
		rec, err := n.pushRecord(ev, p, say(rm), vis, push.UrgencyNormal)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// mayPush reports whether an item may be pushed to its recipient now: a
// member who may see it, who has not turned the room's notifications off
// (the per-room choice covers both channels; turning all email off does
// not stop pushes, which are turned off per device) and has a device.
func (n *Notifier) mayPush(ctx context.Context, it room.InboxItem) (bool, *Person, error) {
	// Most people have no device: that is asked first.
	subs, err := n.push.Store.PushSubscriptions(ctx, it.UserID)
	if err != nil || len(subs) == 0 {
		return false, nil, err
	}
	m, err := n.rooms.Member(ctx, it.RoomID, it.UserID)
	if err != nil || m == nil {
		return false, nil, err
	}
	if !room.PermOf(dealroom.Actor{ID: m.UserID, Kind: m.Kind}, m).Sees(it.Visibility) {
		return false, nil, nil
	}
	p, err := n.store.Person(ctx, it.UserID)
	if err != nil {
		return false, nil, err
	}
	if p == nil {
		p = &Person{User: it.UserID}
	}
	if slices.Contains(p.RoomsOff, it.RoomID) {
		return false, nil, nil
	}
	return true, p, nil
}

// SendPush is the outbox sender's Push: it sends a push record to each of
// its recipient's devices, after checking again that they may see it (a
// customer removed from the room, or an item made internal since, gets
// nothing). A device whose push service says it is gone is forgotten. It
// fails for now when a device's push service does (the record is tried
// again, on every device: the notification's tag makes a device that had
// it replace it, not show it twice), and for good when every device
// refused it.
func (n *Notifier) SendPush(ctx context.Context, r outbox.Record) error {
	if n.push == nil {
		return dealroom.Invalid("channel", "this server does not push")
	}
	var pl pushPayload
	if err := json.Unmarshal(r.Payload, &pl); err != nil {
		return dealroom.Invalid("payload", "record %s: %v", r.ID, err)
	}
	ok, _, err := n.mayPush(ctx, room.InboxItem{RoomID: r.RoomID, UserID: r.Recipient, Visibility: dealroom.Visibility(pl.Visibility)})
	if err != nil {
		return err
	}
	if !ok {
		// Sent to nobody: the person may no longer be told, or has no device.
		return nil
	}
	subs, err := n.push.Store.PushSubscriptions(ctx, r.Recipient)
	if err != nil {
		return err
	}
	var later, refused error
	sent := 0
	for _, s := range subs {
		err := n.push.Client.Send(ctx, s, pl.Notification, pl.Urgency)
		switch {
		case err == nil:
			sent++
		case errors.Is(err, push.ErrGone):
			n.log.Info("a push subscription is gone and is removed", "user", s.User, "subscription", s.ID, "err", err)
			if err := n.push.Store.RemovePushSubscription(ctx, s.User, s.ID); err != nil && dealroom.ErrorCode(err) != dealroom.ENOTFOUND {
				return err
			}
		case dealroom.ErrorCode(err) == dealroom.EUNAVAILABLE || ctx.Err() != nil:
			later = err
		default:
			n.log.Warn("a push service refused a notification", "user", s.User, "subscription", s.ID, "err", err)
			refused = err
		}
	}
	switch {
	case later != nil:
		return later
	case sent == 0 && refused != nil:
		return refused
	}
	return nil
}
