package room

import (
	"context"
	"time"

	"dealroom"
)

// ReadMarker is how far one person has seen a room's timeline: the
// highest seq they viewed, and when they viewed it. It is not an event of
// the room: it moves each time someone reads, and writing it to the log
// would flood the log and every device with bookkeeping. It is a read
// model of its own, which only moves forward.
type ReadMarker struct {
	UserID string    `json:"user_id"`
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
}

// ReadStore keeps the read markers. Both stores implement it beside
// room.Store; the Service finds it on its Store.
type ReadStore interface {
	// SetRead moves user's marker in room to seq, seen at at, when seq is
	// past the marker (a marker never moves back). It returns the marker
	// as it stands afterwards, and whether this call moved it. Errors:
	// EUNAVAILABLE when the backend fails.
	SetRead(ctx context.Context, room, user string, seq int64, at time.Time) (ReadMarker, bool, error)
	// ReadMarkers returns every marker of the room, by user id order.
	// It may hold markers of people who left the room: callers keep
	// those of current members.
	ReadMarkers(ctx context.Context, room string) ([]ReadMarker, error)
	// UserReadMarkers returns user's markers in those of rooms where they
	// have one, by room id, in one read.
	UserReadMarkers(ctx context.Context, user string, rooms []string) (map[string]ReadMarker, error)
}

// RoomRead is a marker that moved, with its room: what the hub sends to
// the room's devices.
type RoomRead struct {
	Room string
	ReadMarker
}

// UnreadScan is how many of the events after a person's marker one
// unread count looks at: a listing of rooms reads at most this many
// events per room with something unread.
const UnreadScan = 100

// Unread is what a person has not seen of a room.
type Unread struct {
	// Seq is the person's marker (0: they never read the room).
	Seq int64 `json:"seq"`
	// Count is the events after Seq that the person may see and did not
	// cause, among the next UnreadScan events they may see.
	Count int `json:"count"`
	// More says the count stopped at that bound: there are more.
	More bool `json:"more,omitempty"`
}

// reads returns the store's read markers, EUNAVAILABLE when the store
// keeps none.
func (s *Service) reads() (ReadStore, error) {
	rs, ok := s.Store.(ReadStore)
	if !ok {
		return nil, dealroom.Errorf(dealroom.EUNAVAILABLE, "this store keeps no read state")
	}
	return rs, nil
}

// SetRead records that the actor has seen the room up to seq (clamped to
// the room's head; a seq at or behind their marker changes nothing). It
// returns the marker as it stands. When the marker moved, ReadMoved is
// told. Errors: ENOTFOUND when the actor may not see the room; EINVALID
// for a negative seq.
func (s *Service) SetRead(ctx context.Context, a dealroom.Actor, room string, seq int64) (ReadMarker, error) {
	if seq < 0 {
		return ReadMarker{}, dealroom.Invalid("seq", "seq is a seq of the room: a whole number, 0 or more")
	}
	rs, err := s.reads()
	if err != nil {
		return ReadMarker{}, err
	}
	if err := s.Authorize(ctx, a); err != nil {
		return ReadMarker{}, err
	}
	r, _, err := s.visibleRoom(ctx, a, room)
	if err != nil {
		return ReadMarker{}, err
	}
	return s.setRead(ctx, rs, room, a.ID, min(seq, r.Head))
}

func (s *Service) setRead(ctx context.Context, rs ReadStore, room, user string, seq int64) (ReadMarker, error) {
	m, moved, err := rs.SetRead(ctx, room, user, seq, s.now())
	if err != nil {
		return ReadMarker{}, err
	}
	if moved && s.ReadMoved != nil {
		s.ReadMoved(RoomRead{Room: room, ReadMarker: m})
	}
	return m, nil
}

// Reads returns the markers of the room's current members, for "seen by".
// Every member sees every member's marker: a marker is a seq, which
// tells nothing of what is at it; a customer's client shows it only
// against the items it has. Errors: ENOTFOUND when the actor may not see
// the room.
func (s *Service) Reads(ctx context.Context, a dealroom.Actor, room string) ([]ReadMarker, error) {
	rs, err := s.reads()
	if err != nil {
		return nil, err
	}
	if _, err := s.Access(ctx, a, room); err != nil {
		return nil, err
	}
	members, err := s.Store.Members(ctx, room)
	if err != nil {
		return nil, err
	}
	all, err := rs.ReadMarkers(ctx, room)
	if err != nil {
		return nil, err
	}
	out := []ReadMarker{}
	for _, m := range all {
		if FindMember(members, m.UserID) != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// SeenSeq returns the highest seq user has seen in room (0 when they
// never read it). It checks no permission: it is for the server's own
// work, such as notifications that skip what a person already saw.
func (s *Service) SeenSeq(ctx context.Context, room, user string) (int64, error) {
	rs, err := s.reads()
	if err != nil {
		return 0, err
	}
	ms, err := rs.UserReadMarkers(ctx, user, []string{room})
	if err != nil {
		return 0, err
	}
	return ms[room].Seq, nil
}

// Unread counts, for each listed room, what the actor has not seen: the
// events after their marker that they may see (no internal ones for
// whoever sees the room as a customer) and did not cause themselves. It
// costs one read of the actor's markers, and one bounded read of events
// (UnreadScan) per room they are a member of whose head is past the
// marker; rooms read to their head, and rooms a manager or admin sees
// without being a member (counted as nothing unread), cost nothing more.
func (s *Service) Unread(ctx context.Context, a dealroom.Actor, rooms []Listed) (map[string]Unread, error) {
	rs, err := s.reads()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rooms))
	for i := range rooms {
		ids[i] = rooms[i].Room.ID
	}
	marks, err := rs.UserReadMarkers(ctx, a.ID, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Unread, len(rooms))
	for _, l := range rooms {
		u := Unread{Seq: marks[l.Room.ID].Seq}
		// A manager's listing of every room counts only the rooms they
		// are a member of: the others are not theirs to read, and would
		// cost a read each.
		if l.Perm.Member != nil && l.Room.Head > u.Seq {
			evs, err := s.Store.Events(ctx, l.Room.ID, u.Seq, UnreadScan, !l.Perm.Internal)
			if err != nil {
				return nil, err
			}
			for _, e := range evs {
				if e.Actor.ID != a.ID {
					u.Count++
				}
			}
			last := u.Seq
			if len(evs) > 0 {
				last = evs[len(evs)-1].Seq
			}
			u.More = len(evs) == UnreadScan && last < l.Room.Head
			if !l.Perm.Internal && len(evs) < UnreadScan && SharedScanEnd(u.Seq, UnreadScan) < l.Room.Head {
				u.More = true // the shared scan stopped before the head
			}
		}
		out[l.Room.ID] = u
	}
	return out, nil
}

// ReadAll moves the actor's marker in every room they are a member of to
// its head, and marks their inbox items read. It returns how many
// markers moved.
func (s *Service) ReadAll(ctx context.Context, a dealroom.Actor) (int, error) {
	rs, err := s.reads()
	if err != nil {
		return 0, err
	}
	if err := s.Authorize(ctx, a); err != nil {
		return 0, err
	}
	moved := 0
	f := RoomFilter{Member: a.ID, Limit: 200}
	for {
		rooms, err := s.Store.Rooms(ctx, f)
		if err != nil {
			return moved, err
		}
		ids := make([]string, len(rooms))
		for i := range rooms {
			ids[i] = rooms[i].ID
		}
		marks, err := rs.UserReadMarkers(ctx, a.ID, ids)
		if err != nil {
			return moved, err
		}
		for _, r := range rooms {
			if r.Head > marks[r.ID].Seq {
				if _, err := s.setRead(ctx, rs, r.ID, a.ID, r.Head); err != nil {
					return moved, err
				}
				moved++
			}
		}
		if len(rooms) < f.Limit {
			break
		}
		f.Before = rooms[len(rooms)-1].ID
	}
	return moved, s.readInbox(ctx, a)
}

// readInbox marks every unread item of the actor's inbox read.
func (s *Service) readInbox(ctx context.Context, a dealroom.Actor) error {
	before := ""
	for {
		items, err := s.Store.Inbox(ctx, a.ID, before, 200)
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.ReadAt == nil {
				if err := s.Store.MarkRead(ctx, a.ID, it.ID, s.now()); err != nil && dealroom.ErrorCode(err) != dealroom.ENOTFOUND {
					return err
				}
			}
		}
		if len(items) < 200 {
			return nil
		}
		before = items[len(items)-1].ID
	}
}
