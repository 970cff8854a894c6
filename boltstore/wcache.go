package boltstore

import (
	"slices"

	bolt "go.etcd.io/bbolt"

	"dealroom/room"
)

// wcache holds decoded rooms and member lists for the writer. Every
// command's decision reads its room and its members, and the store reads
// the room again to append; decoding them from JSON each time took a fifth
// of the writer's time, inside the transaction that every write waits
// for. Only the writer goroutine uses the cache. Rooms and members are
// written only by applyEffects, which keeps it current within the
// transaction; a transaction that fails empties it, since what it wrote
// is rolled back.
type wcache struct {
	rooms   map[string]*room.Room
	members map[string][]room.Member // as members() returns them
}

// wcacheRooms bounds the rooms the cache holds; past it, it starts over.
const wcacheRooms = 4096

func (c *wcache) reset() {
	c.rooms, c.members = nil, nil
}

// room returns a copy of the room, reading it through tx if needed.
func (c *wcache) room(tx *bolt.Tx, id string) (*room.Room, error) {
	r, ok := c.rooms[id]
	if !ok {
		var err error
		if r, err = getJSON[room.Room](tx.Bucket(bRooms), []byte(id)); err != nil {
			return nil, err
		}
		c.putRoom(id, r)
	}
	return r.Clone(), nil
}

// putRoom records the room as the transaction now has it (nil: none).
func (c *wcache) putRoom(id string, r *room.Room) {
	if c.rooms == nil || len(c.rooms) >= wcacheRooms {
		c.rooms = make(map[string]*room.Room)
	}
	c.rooms[id] = r.Clone()
}

// roomMembers returns a copy of the room's members, reading them through
// tx if needed.
func (c *wcache) roomMembers(tx *bolt.Tx, id string) ([]room.Member, error) {
	ms, err := c.cachedMembers(tx, id)
	return slices.Clone(ms), err
}

// member returns one member of the room (nil: not a member).
func (c *wcache) member(tx *bolt.Tx, roomID, user string) (*room.Member, error) {
	ms, err := c.cachedMembers(tx, roomID)
	if err != nil {
		return nil, err
	}
	if m := room.FindMember(ms, user); m != nil {
		cp := *m
		return &cp, nil
	}
	return nil, nil
}

// cachedMembers returns the cached members of the room (not to be changed),
// reading them through tx if needed.
func (c *wcache) cachedMembers(tx *bolt.Tx, id string) ([]room.Member, error) {
	if ms, ok := c.members[id]; ok {
		return ms, nil
	}
	ms, err := members(tx, id)
	if err != nil {
		return nil, err
	}
	if c.members == nil || len(c.members) >= wcacheRooms {
		c.members = make(map[string][]room.Member)
	}
	c.members[id] = ms
	return ms, nil
}

// membersChanged forgets the room's members: the transaction wrote them.
func (c *wcache) membersChanged(roomID string) {
	delete(c.members, roomID)
}
