package mongostore

import (
	"sync"

	"dealroom/room"
)

// hotRooms remembers, per room, the state this instance left the room in
// with its last write: the head, and the room and its members as that
// write's decision read them (brought up to the write's own event).
//
// The next write of the room on this instance decides on that state and
// skips the key lookup, the head and high-water reads and the room and
// member reads: four to six round trips of the ten a write costs. Its
// insert at head+1 is the check. If another instance wrote the room
// meanwhile, that seq is taken, the entry is dropped and the write goes
// the long way (key, catch-up, fresh reads). Writes of a room on one
// instance are serialized by its room lock, so an entry is used by one
// write at a time.
type hotRooms struct {
	mu sync.Mutex
	m  map[string]hotRoom
}

type hotRoom struct {
	head       int64
	room       *room.Room // nil: not read yet
	members    []room.Member
	hasMembers bool
}

const hotRoomsMax = 10000

func (h *hotRooms) get(id string) (hotRoom, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[id]
	return e, ok
}

func (h *hotRooms) put(id string, e hotRoom) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= hotRoomsMax {
		h.m = make(map[string]hotRoom)
	}
	h.m[id] = e
}

func (h *hotRooms) drop(id string) {
	h.mu.Lock()
	delete(h.m, id)
	h.mu.Unlock()
}

// after returns the entry as the event ev, with effects fx, leaves it.
func (e hotRoom) after(ev room.Event, fx room.Effects) hotRoom {
	e.head = ev.Seq
	if fx.Room != nil {
		e.room = nil // read again next time
	} else if e.room != nil {
		r := e.room.Clone()
		r.Advance(ev)
		e.room = r
	}
	if fx.MembersChanged() {
		e.members, e.hasMembers = nil, false
	}
	return e
}
