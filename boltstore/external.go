package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"dealroom/room"
)

// bExternal is the index of rooms by external id (room.ExternalIndex):
// external id → room id. Made by the first claim. An external id is
// never changed or removed once set, so entries are never removed.
var bExternal = []byte("external_ids")

var _ room.ExternalIndex = (*Store)(nil)

// claimExternal claims the external id that ev gives its room, in the
// writer's transaction: as every command of every room is decided and
// written by that one writer, no other event can take the id between the
// look-up and the write. refused is room.ExternalIDTaken when another
// room holds it; err is a storage failure.
func claimExternal(tx *bolt.Tx, roomID string, ev room.Event) (refused, err error) {
	id, err := room.ExternalOf(ev)
	if err != nil || id == "" {
		return nil, err
	}
	b, err := tx.CreateBucketIfNotExists(bExternal)
	if err != nil {
		return nil, err
	}
	switch held := b.Get([]byte(id)); {
	case held == nil:
		return nil, b.Put([]byte(id), []byte(roomID))
	case string(held) != roomID:
		return room.ExternalIDTaken(id), nil
	}
	return nil, nil
}

// RoomOfExternal implements room.ExternalIndex.
func (s *Store) RoomOfExternal(ctx context.Context, externalID string) (string, error) {
	var roomID string
	err := s.read(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bExternal); b != nil {
			roomID = string(b.Get([]byte(externalID)))
		}
		return nil
	})
	return roomID, err
}
