package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// view reads one room's state inside a transaction. The first storage
// error sticks, so that the write transaction is abandoned even if the
// decision ignores the error.
type view struct {
	tx   *bolt.Tx
	room string
	wc   *wcache // the writer's cache of rooms and members
	room.FirstError
}

var _ room.View = (*view)(nil)

func (v *view) Room() (*room.Room, error) {
	r, err := v.wc.room(v.tx, v.room)
	return r, v.Note(err)
}

func (v *view) Member(user string) (*room.Member, error) {
	m, err := v.wc.member(v.tx, v.room, user)
	return m, v.Note(err)
}

func (v *view) Members() ([]room.Member, error) {
	ms, err := v.wc.roomMembers(v.tx, v.room)
	return ms, v.Note(err)
}

func (v *view) Task(id string) (*task.Task, error) {
	t, err := getJSON[task.Task](v.tx.Bucket(bTasks), key(v.room, id))
	return t, v.Note(err)
}

func (v *view) TaskStats() (room.PlanStats, error) {
	var st room.PlanStats
	// Only the two fields it needs, unsorted: it runs in the writer, for
	// every new task, over up to 2000 tasks.
	ts, err := scan[struct {
		Visibility dealroom.Visibility `json:"visibility"`
		Position   float64             `json:"position"`
	}](v.tx.Bucket(bTasks), prefix(v.room))
	if v.Note(err) != nil {
		return st, err
	}
	for _, t := range ts {
		st.Add(t.Visibility, t.Position)
	}
	return st, nil
}

func (v *view) Message(id string) (*room.Message, error) {
	m, err := getMessage(v.tx, v.room, id)
	return m, v.Note(err)
}

func (v *view) Attachment(id string) (*room.Attachment, error) {
	a, err := getJSON[room.Attachment](v.tx.Bucket(bAttachments), key(v.room, id))
	return a, v.Note(err)
}

func (v *view) Invite(id string) (*room.Invite, error) {
	i, err := getJSON[room.Invite](v.tx.Bucket(bInvites), []byte(id))
	return i, v.Note(err)
}

// read runs fn in a read transaction, turning storage failures into
// EUNAVAILABLE.
func (s *Store) read(fn func(tx *bolt.Tx) error) error {
	err := s.db.View(fn)
	if err != nil && dealroom.ErrorCode(err) == dealroom.EINTERNAL {
		return dealroom.Unavailable(err)
	}
	return err
}

// readTx returns what fn reads in a read transaction (see read).
func readTx[T any](s *Store, fn func(tx *bolt.Tx) (T, error)) (T, error) {
	var v T
	err := s.read(func(tx *bolt.Tx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v, err
}

// Events implements room.Store.
func (s *Store) Events(ctx context.Context, roomID string, after int64, limit int, sharedOnly bool) ([]room.Event, error) {
	var out []room.Event
	err := s.read(func(tx *bolt.Tx) error {
		var end []byte // with sharedOnly, the last key the scan may look at (room.SharedScan)
		if sharedOnly {
			end = seqKey(roomID, room.SharedScanEnd(after, limit))
		}
		c := tx.Bucket(bEvents).Cursor()
		p := prefix(roomID)
		for k, raw := c.Seek(seqKey(roomID, after+1)); k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, raw = c.Next() {
			if end != nil && bytes.Compare(k, end) > 0 {
				break // the scan's budget (room.SharedScan)
			}
			var ev room.Event
			if err := decodeEvent(raw, &ev); err != nil {
				return err
			}
			if sharedOnly && ev.Visibility != dealroom.Shared {
				continue
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// Ahead implements hub.HeadsStore: one read transaction, a seek in the
// log of each room given.
func (s *Store) Ahead(ctx context.Context, heads map[string]int64) ([]string, error) {
	if len(heads) == 0 {
		return nil, nil
	}
	var ahead []string
	err := s.read(func(tx *bolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		for r, head := range heads {
			if k, _ := c.Seek(seqKey(r, max(head, 0)+1)); k != nil && bytes.HasPrefix(k, prefix(r)) {
				ahead = append(ahead, r)
			}
		}
		return nil
	})
	return ahead, err
}

// Room implements room.Store.
func (s *Store) Room(ctx context.Context, id string) (*room.Room, error) {
	r, err := readTx(s, func(tx *bolt.Tx) (*room.Room, error) { return getJSON[room.Room](tx.Bucket(bRooms), []byte(id)) })
	if err == nil && r == nil {
		err = dealroom.NotFound("room", id)
	}
	return r, err
}

// Rooms implements room.Store.
func (s *Store) Rooms(ctx context.Context, f room.RoomFilter) ([]room.Room, error) {
	var all []room.Room
	err := s.read(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(bRooms)
		add := func(raw []byte) error {
			var r room.Room
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			if f.Match(r) {
				all = append(all, r)
			}
			return nil
		}
		if f.Member == "" {
			return rooms.ForEach(func(_, raw []byte) error { return add(raw) })
		}
		c := tx.Bucket(bUserRooms).Cursor()
		p := prefix(f.Member)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			if raw := rooms.Get(k[len(p):]); raw != nil {
				if err := add(raw); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.After(all[j].CreatedAt)
		}
		return all[i].ID > all[j].ID
	})
	if f.Before != "" {
		i := slices.IndexFunc(all, func(r room.Room) bool { return r.ID == f.Before })
		all = all[i+1:] // an unknown cursor (i = -1) starts from the top
	}
	if f.Limit > 0 && len(all) > f.Limit {
		all = all[:f.Limit]
	}
	return all, nil
}

// Member implements room.Store.
func (s *Store) Member(ctx context.Context, roomID, user string) (*room.Member, error) {
	return readTx(s, func(tx *bolt.Tx) (*room.Member, error) {
		return getJSON[room.Member](tx.Bucket(bMembers), key(roomID, user))
	})
}

// Memberships implements room.Store.
func (s *Store) Memberships(ctx context.Context, user string, rooms []string) (map[string]room.Member, error) {
	out := make(map[string]room.Member, len(rooms))
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMembers)
		for _, id := range rooms {
			m, err := getJSON[room.Member](b, key(id, user))
			if err != nil {
				return err
			}
			if m != nil {
				out[id] = *m
			}
		}
		return nil
	})
	return out, err
}

// Members implements room.Store.
func (s *Store) Members(ctx context.Context, roomID string) ([]room.Member, error) {
	return readTx(s, func(tx *bolt.Tx) ([]room.Member, error) { return members(tx, roomID) })
}

func members(tx *bolt.Tx, roomID string) ([]room.Member, error) {
	out, err := scan[room.Member](tx.Bucket(bMembers), prefix(roomID))
	sort.SliceStable(out, func(i, j int) bool { return out[i].AddedAt.Before(out[j].AddedAt) })
	return out, err
}

// Tasks implements room.Store.
func (s *Store) Tasks(ctx context.Context, roomID string) ([]task.Task, error) {
	return readTx(s, func(tx *bolt.Tx) ([]task.Task, error) { return tasks(tx, roomID) })
}

func tasks(tx *bolt.Tx, roomID string) ([]task.Task, error) {
	out, err := scan[task.Task](tx.Bucket(bTasks), prefix(roomID))
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Position != out[j].Position {
			return out[i].Position < out[j].Position
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// Task implements room.Store.
func (s *Store) Task(ctx context.Context, roomID, id string) (*task.Task, error) {
	return readTx(s, func(tx *bolt.Tx) (*task.Task, error) { return getJSON[task.Task](tx.Bucket(bTasks), key(roomID, id)) })
}

// AssignedTasks implements room.Store.
func (s *Store) AssignedTasks(ctx context.Context, user string) ([]task.Task, error) {
	var out []task.Task
	err := s.read(func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bTasks)
		c := tx.Bucket(bAssigned).Cursor()
		p := prefix(user)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			t, err := getJSON[task.Task](tasks, k[len(p):]) // room 0 task
			if err != nil {
				return err
			}
			if t != nil {
				out = append(out, *t)
			}
		}
		return nil
	})
	return out, err
}

// Messages implements room.Store.
func (s *Store) Messages(ctx context.Context, f room.MessageFilter) ([]room.Message, error) {
	var out []room.Message
	err := s.read(func(tx *bolt.Tx) error {
		replies := tx.Bucket(bReplies)
		keep := func(m *room.Message) bool {
			return m != nil && (!f.SharedOnly || m.Visibility == dealroom.Shared) &&
				(f.ParentID != "" || (m.ParentID == "" && (f.TaskID == "" || m.TaskID == f.TaskID)))
		}
		if f.ParentID != "" {
			c := replies.Cursor()
			p := prefix(f.Room, f.ParentID)
			start := p
			if f.After != "" {
				start = append(key(f.Room, f.ParentID, f.After), 1)
			}
			for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, p) && len(out) < f.Limit; k, _ = c.Next() {
				m, err := getMessage(tx, f.Room, string(k[len(p):]))
				if err != nil {
					return err
				}
				if keep(m) {
					out = append(out, *m)
				}
			}
			return nil
		}
		// Thread roots, through the index of the listing asked for: every
		// entry read is one to return.
		c := tx.Bucket(bListed).Cursor()
		scope := rootScope(f.TaskID, f.SharedOnly)
		p := prefix(f.Room, scope)
		start := p
		if f.After != "" {
			start = append(key(f.Room, scope, f.After), 1)
		}
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, p) && len(out) < f.Limit; k, _ = c.Next() {
			m, err := getMessage(tx, f.Room, string(k[len(p):]))
			if err != nil {
				return err
			}
			if !keep(m) {
				continue
			}
			// Replies share their root's visibility, so whoever sees the
			// root sees all of them.
			m.ReplyCount = countReplies(tx, f.Room, m.ID)
			out = append(out, *m)
		}
		return nil
	})
	return out, err
}

func countReplies(tx *bolt.Tx, roomID, parent string) int {
	n := 0
	c := tx.Bucket(bReplies).Cursor()
	p := prefix(roomID, parent)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	return n
}

// Message implements room.Store.
func (s *Store) Message(ctx context.Context, roomID, id string) (*room.Message, error) {
	return readTx(s, func(tx *bolt.Tx) (*room.Message, error) { return getMessage(tx, roomID, id) })
}

// DeletedMessages implements room.Store.
func (s *Store) DeletedMessages(ctx context.Context, roomID string, ids []string) ([]room.Message, error) {
	var out []room.Message
	err := s.read(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMessages)
		for _, id := range ids {
			raw := b.Get(key(roomID, id))
			if raw == nil || (raw[0] == '{' && !bytes.Contains(raw, []byte(`"deleted":true`))) {
				continue
			}
			m, err := messageOf(tx, roomID, raw)
			if err != nil {
				return err
			}
			if m.Deleted {
				out = append(out, *m)
			}
		}
		return nil
	})
	return out, err
}

// Attachment implements room.Store.
func (s *Store) Attachment(ctx context.Context, roomID, id string) (*room.Attachment, error) {
	return readTx(s, func(tx *bolt.Tx) (*room.Attachment, error) {
		return getJSON[room.Attachment](tx.Bucket(bAttachments), key(roomID, id))
	})
}

// Attachments implements room.Store.
func (s *Store) Attachments(ctx context.Context, roomID, after string, limit int, sharedOnly bool) ([]room.Attachment, error) {
	var out []room.Attachment
	err := s.read(func(tx *bolt.Tx) error {
		if sharedOnly {
			// Through the index of shared attachments: every entry read
			// is one to return.
			atts := tx.Bucket(bAttachments)
			c := tx.Bucket(bListed).Cursor()
			p := prefix(roomID, scopeSharedFiles)
			for k, _ := c.Seek(append(key(roomID, scopeSharedFiles, after), 1)); k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, _ = c.Next() {
				a, err := getJSON[room.Attachment](atts, key(roomID, string(k[len(p):])))
				if err != nil {
					return err
				}
				if a != nil && a.Visibility == dealroom.Shared {
					out = append(out, *a)
				}
			}
			return nil
		}
		c := tx.Bucket(bAttachments).Cursor()
		p := prefix(roomID)
		k, raw := c.Seek(key(roomID, after))
		if after != "" && k != nil && bytes.Equal(k, key(roomID, after)) {
			k, raw = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, raw = c.Next() {
			var a room.Attachment
			if err := json.Unmarshal(raw, &a); err != nil {
				return err
			}
			if sharedOnly && a.Visibility != dealroom.Shared {
				continue
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// Invite implements room.Store.
func (s *Store) Invite(ctx context.Context, id string) (*room.Invite, error) {
	return readTx(s, func(tx *bolt.Tx) (*room.Invite, error) { return getJSON[room.Invite](tx.Bucket(bInvites), []byte(id)) })
}

// Invites implements room.Store.
func (s *Store) Invites(ctx context.Context, roomID string, after *room.Invite, limit int) ([]room.Invite, error) {
	var out []room.Invite
	err := s.read(func(tx *bolt.Tx) error {
		invites := tx.Bucket(bInvites)
		c := tx.Bucket(bRoomInvitesAt).Cursor()
		p := prefix(roomID)
		k, _ := c.Seek(p)
		if after != nil {
			from := inviteAtKey(*after)
			if k, _ = c.Seek(from); k != nil && bytes.Equal(k, from) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, _ = c.Next() {
			inv, err := getJSON[room.Invite](invites, k[len(p)+8:])
			if err != nil {
				return err
			}
			if inv != nil {
				out = append(out, *inv)
			}
		}
		return nil
	})
	return out, err
}

// Inbox implements room.Store.
func (s *Store) Inbox(ctx context.Context, user, before string, limit int) ([]room.InboxItem, error) {
	var out []room.InboxItem
	err := s.read(func(tx *bolt.Tx) error {
		c := tx.Bucket(bInbox).Cursor()
		p := prefix(user)
		var k, raw []byte
		if before == "" {
			// Position after the user's last key, then step back.
			k, raw = c.Seek(append(key(user), 1))
		} else {
			k, raw = c.Seek(key(user, before))
		}
		if k == nil {
			k, raw = c.Last()
		} else {
			k, raw = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, raw = c.Prev() {
			var it room.InboxItem
			if err := json.Unmarshal(raw, &it); err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// MarkRead implements room.Store. It is not an event: read marks are one
// person's bookkeeping, not a change to a room.
func (s *Store) MarkRead(ctx context.Context, user, item string, at time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bInbox)
		it, err := getJSON[room.InboxItem](b, key(user, item))
		if err != nil {
			return err
		}
		if it == nil {
			return dealroom.NotFound("inbox item", item)
		}
		if it.ReadAt != nil {
			return nil
		}
		it.ReadAt = &at
		return putJSON(b, key(user, item), it)
	})
	if err != nil && dealroom.ErrorCode(err) == dealroom.EINTERNAL {
		return dealroom.Unavailable(err)
	}
	return err
}

// scan decodes every value whose key starts with p.
func scan[T any](b *bolt.Bucket, p []byte) ([]T, error) {
	var out []T
	c := b.Cursor()
	for k, raw := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
