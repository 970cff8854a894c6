package boltstore

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"dealroom/room"
)

// appendEvent writes the event and applies its effects to the read models.
func (s *Store) appendEvent(tx *bolt.Tx, ev room.Event) error {
	fx, err := room.Project(ev)
	if err != nil {
		return err
	}
	if err := putEvent(tx, &s.zip, ev); err != nil {
		return err
	}
	return applyEffects(tx, &s.wc, ev, fx)
}

// applyEffects writes what the event ev changes in the read models (fx,
// from room.Project) and the indexes that go with them, one kind of
// document after the other.
func applyEffects(tx *bolt.Tx, wc *wcache, ev room.Event, fx room.Effects) error {
	if err := putRoom(tx, wc, ev, fx.Room); err != nil {
		return err
	}
	if fx.MembersChanged() {
		wc.membersChanged(ev.RoomID)
	}
	for _, put := range []func(*bolt.Tx, room.Event, room.Effects) error{
		putMembers, putTasks, putMessages, putAttachments, putInvites, putInbox, putBrief,
	} {
		if err := put(tx, ev, fx); err != nil {
			return err
		}
	}
	return nil
}

// putRoom writes the room as the event leaves it: its new settings, if
// the event changed them (settings, nil if not), and its head and
// activity times, which every event moves.
func putRoom(tx *bolt.Tx, wc *wcache, ev room.Event, settings *room.Room) error {
	current, err := wc.room(tx, ev.RoomID)
	if err != nil {
		return err
	}
	r := settings
	if r == nil {
		r = current
	} else if current != nil {
		r.Head, r.LastActivityAt, r.LastCustomerActivityAt = current.Head, current.LastActivityAt, current.LastCustomerActivityAt
	}
	if r == nil {
		return fmt.Errorf("boltstore: event %d of unknown room %s", ev.Seq, ev.RoomID)
	}
	r.Advance(ev)
	if err := putJSON(tx.Bucket(bRooms), []byte(r.ID), r); err != nil {
		return err
	}
	wc.putRoom(r.ID, r)
	return nil
}

// putMembers writes the members added or changed and removes those
// removed, with the index of each user's rooms.
func putMembers(tx *bolt.Tx, ev room.Event, fx room.Effects) error {
	if !fx.MembersChanged() {
		// Nothing to write: the buckets stay unopened (a transaction's
		// first use of a bucket searches the root and allocates about
		// seven objects; most events change no member and no task).
		return nil
	}
	roomID := ev.RoomID
	members, userRooms := tx.Bucket(bMembers), tx.Bucket(bUserRooms)
	for _, m := range fx.Members {
		if err := putJSON(members, key(roomID, m.UserID), m); err != nil {
			return err
		}
		if err := userRooms.Put(key(m.UserID, roomID), nil); err != nil {
			return err
		}
	}
	for _, u := range fx.RemovedMembers {
		if err := members.Delete(key(roomID, u)); err != nil {
			return err
		}
		if err := userRooms.Delete(key(u, roomID)); err != nil {
			return err
		}
	}
	return nil
}

// putTasks writes the tasks created or changed and removes those deleted,
// keeping the index of each user's assigned tasks.
func putTasks(tx *bolt.Tx, ev room.Event, fx room.Effects) error {
	if len(fx.Tasks) == 0 && len(fx.DeletedTasks) == 0 {
		return nil // the buckets stay unopened, as in putMembers
	}
	roomID := ev.RoomID
	tasks, assigned := tx.Bucket(bTasks), tx.Bucket(bAssigned)
	for _, t := range fx.Tasks {
		if err := unassign(tx, roomID, t.ID); err != nil {
			return err
		}
		if err := putJSON(tasks, key(roomID, t.ID), t); err != nil {
			return err
		}
		for _, u := range t.Assignees {
			if err := assigned.Put(key(u, roomID, t.ID), nil); err != nil {
				return err
			}
		}
	}
	for _, id := range fx.DeletedTasks {
		if err := unassign(tx, roomID, id); err != nil {
			return err
		}
		if err := tasks.Delete(key(roomID, id)); err != nil {
			return err
		}
	}
	return nil
}

// unassign removes a stored task from the index of assigned tasks.
func unassign(tx *bolt.Tx, roomID, id string) error {
	old, err := getJSON[taskDoc](tx.Bucket(bTasks), key(roomID, id))
	if err != nil || old == nil {
		return err
	}
	for _, u := range old.Assignees {
		if err := tx.Bucket(bAssigned).Delete(key(u, roomID, id)); err != nil {
			return err
		}
	}
	return nil
}

// taskDoc reads only what the index upkeep needs of a stored task.
type taskDoc struct {
	Assignees []string `json:"assignees"`
}

// putMessages records the messages posted, edited or deleted (deleted
// ones are the domain's tombstones) as the event's data, with the reply
// index and the listings.
func putMessages(tx *bolt.Tx, ev room.Event, fx room.Effects) error {
	roomID := ev.RoomID
	for _, m := range fx.Messages {
		if err := putMessageRef(tx, roomID, m.ID, ev.Seq); err != nil {
			return err
		}
		if m.ParentID != "" {
			if err := packed(tx, bReplies).Put(key(roomID, m.ParentID, m.ID), nil); err != nil {
				return err
			}
		}
		if err := listMessage(tx, roomID, m); err != nil {
			return err
		}
	}
	return nil
}

// putAttachments writes the attachments added, with their listing.
func putAttachments(tx *bolt.Tx, ev room.Event, fx room.Effects) error {
	roomID := ev.RoomID
	for _, a := range fx.Attachments {
		if err := putJSON(packed(tx, bAttachments), key(roomID, a.ID), a); err != nil {
			return err
		}
		if err := listAttachment(tx, roomID, a); err != nil {
			return err
		}
	}
	return nil
}

// putInvites writes the invites created or changed, with the room's
// indexes of them.
func putInvites(tx *bolt.Tx, ev room.Event, fx room.Effects) error {
	roomID := ev.RoomID
	for _, inv := range fx.Invites {
		if err := putJSON(tx.Bucket(bInvites), []byte(inv.ID), inv); err != nil {
			return err
		}
		if err := tx.Bucket(bRoomInvites).Put(key(roomID, inv.ID), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bRoomInvitesAt).Put(inviteAtKey(inv), nil); err != nil {
			return err
		}
	}
	return nil
}

// putInbox writes the inbox items the event makes; an item that is there
// already (the event is applied again) keeps its read mark.
func putInbox(tx *bolt.Tx, _ room.Event, fx room.Effects) error {
	inbox := packed(tx, bInbox)
	for _, it := range fx.Inbox {
		k := key(it.UserID, it.ID)
		if inbox.Get(k) != nil {
			continue
		}
		if err := putJSON(inbox, k, it); err != nil {
			return err
		}
	}
	return nil
}
