package boltstore

import (
	"bytes"
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
)

// The listings a filter narrows (thread roots, a task's discussion, what
// customers see) read the bListed index, so that a page costs the items
// it returns: scanning the messages of a room for the few that match
// would cost a customer's page every internal message and reply of the
// room. Keys are room 0 scope 0 id; an item's keys are written with it
// and never removed (messages and attachments are never taken out of
// their room; a listing checks each item it reads all the same).
var bListed = []byte("listed")

// The scopes of bListed.
const (
	scopeRoots       = "m"   // thread roots
	scopeSharedRoots = "ms"  // shared thread roots
	scopeTaskRoots   = "mt:" // + task: the roots of a task's discussion
	scopeTaskShared  = "ms:" // + task: its shared roots
	scopeSharedFiles = "as"  // shared attachments
)

// rootScope is the scope a listing of thread roots reads.
func rootScope(task string, sharedOnly bool) string {
	switch {
	case task != "" && sharedOnly:
		return scopeTaskShared + task
	case task != "":
		return scopeTaskRoots + task
	case sharedOnly:
		return scopeSharedRoots
	}
	return scopeRoots
}

// listMessage indexes a message in the listings it belongs to.
func listMessage(tx *bolt.Tx, roomID string, m room.Message) error {
	if m.ParentID != "" {
		return nil // replies are listed by bReplies
	}
	shared := m.Visibility == dealroom.Shared
	scopes := []string{rootScope("", false)}
	if shared {
		scopes = append(scopes, rootScope("", true))
	}
	if m.TaskID != "" {
		scopes = append(scopes, rootScope(m.TaskID, false))
		if shared {
			scopes = append(scopes, rootScope(m.TaskID, true))
		}
	}
	b := packed(tx, bListed)
	for _, sc := range scopes {
		if err := b.Put(key(roomID, sc, m.ID), nil); err != nil {
			return err
		}
	}
	return nil
}

// listAttachment indexes an attachment in the listings it belongs to.
func listAttachment(tx *bolt.Tx, roomID string, a room.Attachment) error {
	if a.Visibility != dealroom.Shared {
		return nil
	}
	return packed(tx, bListed).Put(key(roomID, scopeSharedFiles, a.ID), nil)
}

// fillListed indexes the messages and attachments of a file from before
// bListed.
func fillListed(tx *bolt.Tx) error {
	err := tx.Bucket(bMessages).ForEach(func(k, raw []byte) error {
		roomID := string(k[:bytes.IndexByte(k, 0)]) // room 0 message
		m, err := messageOf(tx, roomID, raw)
		if err != nil {
			return err
		}
		return listMessage(tx, roomID, *m)
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bAttachments).ForEach(func(_, raw []byte) error {
		var a room.Attachment
		if err := json.Unmarshal(raw, &a); err != nil {
			return err
		}
		return listAttachment(tx, a.RoomID, a)
	})
}
