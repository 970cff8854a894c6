package boltstore

import (
	"context"
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
)

// bBriefs holds each room's brief (room.BriefStore): room → room.Brief as
// JSON, written with the event that changes it. A room of a file from
// before briefs has none until its next change of tasks or members; until
// then its brief is made from those read models when read.
var bBriefs = []byte("briefs")

var _ room.BriefStore = (*Store)(nil)

// putBrief applies the event's effects to its room's brief. The tasks and
// members are written before it, so a room without a brief yet gets one
// made from them, this event's effects included.
func putBrief(tx *bolt.Tx, ev room.Event, fx room.Effects) error {
	if !fx.TouchesBrief() {
		return nil
	}
	b, err := brief(tx, ev.RoomID)
	if err != nil {
		return err
	}
	b.Apply(fx)
	return putJSON(tx.Bucket(bBriefs), []byte(ev.RoomID), b)
}

// brief reads a room's brief, made from its tasks and members when it has
// none stored.
func brief(tx *bolt.Tx, roomID string) (room.Brief, error) {
	if b, err := getJSON[room.Brief](tx.Bucket(bBriefs), []byte(roomID)); err != nil || b != nil {
		if b == nil {
			return room.Brief{}, err
		}
		return *b, err
	}
	ts, err := tasks(tx, roomID)
	if err != nil {
		return room.Brief{}, err
	}
	ms, err := members(tx, roomID)
	if err != nil {
		return room.Brief{}, err
	}
	return room.BriefOf(ts, ms), nil
}

func decodeBrief(raw []byte) (room.Brief, error) {
	var b room.Brief
	err := json.Unmarshal(raw, &b)
	return b, err
}

// Briefs implements room.BriefStore: one read transaction, one record per
// room, decoded only when it changed since the last read (room.BriefCache).
func (s *Store) Briefs(ctx context.Context, rooms []string) (map[string]room.Brief, error) {
	if err := ctx.Err(); err != nil {
		return nil, dealroom.Unavailable(err)
	}
	return readTx(s, func(tx *bolt.Tx) (map[string]room.Brief, error) {
		out := make(map[string]room.Brief, len(rooms))
		for _, id := range rooms {
			if tx.Bucket(bRooms).Get([]byte(id)) == nil {
				continue
			}
			var b room.Brief
			var err error
			if raw := tx.Bucket(bBriefs).Get([]byte(id)); raw != nil {
				b, err = s.briefs.Decode(id, raw, decodeBrief)
			} else {
				b, err = brief(tx, id)
			}
			if err != nil {
				return nil, err
			}
			out[id] = b
		}
		return out, nil
	})
}
